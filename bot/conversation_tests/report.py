"""How a run of conversation tests is shown: failed steps with the bot's actual replies, a summary,
and JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from bot.conversation_tests.runner import Result


def show(results: list[Result], console: Console) -> None:
    """Every failed conversation, step by step up to the failure, then one summary line."""
    for result in results:
        if result.passed:
            continue
        c = result.conversation
        console.print(f"[bold red]FAILED[/] {c.id} ({c.source})", highlight=False)
        if result.error:
            console.print(f"  error: {result.error}", markup=False, highlight=False)
        for n, step in enumerate(result.steps, 1):
            mark = "✗" if step.failures else "✓"
            console.print(f"  {mark} {n}. customer: {step.step.said}", markup=False, highlight=False)
            for reply in step.replies:
                buttons = f"  [{' | '.join(b.title for b in reply.buttons)}]" if reply.buttons else ""
                console.print(f"       bot: {reply.text}{buttons}", markup=False, highlight=False)
            for failure in step.failures:
                console.print(f"       [red]{failure}[/]", highlight=False)
    passed = sum(r.passed for r in results)
    unchecked = sum(r.unchecked for r in results)
    note = f"; {unchecked} expectations need the in-process runner and were not checked" if unchecked else ""
    colour = "green" if passed == len(results) else "red"
    console.print(f"[{colour}]{passed}/{len(results)} conversations passed[/]{note}", highlight=False)


def junit(results: list[Result], path: Path) -> None:
    """JUnit XML: one test case per conversation, its failed steps as the failure message."""
    suite = ET.Element("testsuite", name="conversations", tests=str(len(results)),
                       failures=str(sum(not r.passed and r.error is None for r in results)),
                       errors=str(sum(r.error is not None for r in results)),
                       time=f"{sum(r.seconds for r in results):.3f}")
    for result in results:
        c = result.conversation
        case = ET.SubElement(suite, "testcase", classname=c.source or "conversations", name=c.id,
                             time=f"{result.seconds:.3f}")
        if result.error:
            ET.SubElement(case, "error", message=result.error)
        elif not result.passed:
            lines = [f"step {n} ({s.step.said}): {f} | bot: {' / '.join(r.text for r in s.replies)}"
                     for n, s in enumerate(result.steps, 1) for f in s.failures]
            ET.SubElement(case, "failure", message=lines[0]).text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
