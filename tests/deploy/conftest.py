"""Shared helpers for the deployment tests: paths, SUPPORTBOT_* name resolution, Helm rendering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest
import yaml

from bot.config_reference import env_names, variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "supportbot"

SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY", "AUTH", "DATABASE_URL", "REDIS_URL", "SID")


def looks_secret(name: str) -> bool:
    return any(word in name.upper() for word in SECRET_WORDS)


def settings_field(name: str) -> bool:
    """Whether SUPPORTBOT_<name> sets a real field of bot.config.Settings: one of the names the
    configuration reference lists (its group's prefix, or the nested `__` spelling)."""
    return name.upper() in env_names() | nested_spellings()


def nested_spellings() -> set[str]:
    """SUPPORTBOT_<GROUP>__<FIELD>: pydantic-settings' nested spelling, valid for every group."""
    return {"SUPPORTBOT_" + v.path.upper().replace(".", "__") for v in variables() if "." in v.path}


def unknown_settings(names: typing.Iterable[str]) -> list[str]:
    return sorted({n for n in names if n.upper().startswith("SUPPORTBOT_") and not settings_field(n)})


_RENDER = textwrap.dedent("""
    import json, sys
    import helm_python as helm
    jobs = json.load(sys.stdin)
    out = []
    with helm.Chart.load(jobs["chart"]) as chart:
        for job in jobs["renders"]:
            try:
                out.append({"ok": chart.render(job["values"], name=job["name"],
                                               namespace=job["namespace"])})
            except helm.HelmError as exc:
                out.append({"error": str(exc)})
    lint = helm.lint(jobs["chart"])
    json.dump({"renders": out, "lint": lint}, sys.stdout)
""")


def helm_available() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import helm_python"], capture_output=True)
    return probe.returncode == 0


def render_chart(*values: dict, name: str = "sb", namespace: str = "prod") -> dict:
    """Render the chart once per values dict with Helm's own engine (helm-python-sdk binds Helm
    v4's Go SDK; no cluster, no network). Runs in a subprocess so the Go runtime never shares a
    process with the rest of the suite. Returns {"renders": [{"ok": {path: text}} | {"error"}],
    "lint": {...}}."""
    if not helm_available():
        message = "helm-python-sdk is not installed (it is in the [test] extra)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    jobs = {"chart": str(CHART),
            "renders": [{"values": v, "name": name, "namespace": namespace} for v in values]}
    proc = subprocess.run([sys.executable, "-c", _RENDER], input=json.dumps(jobs), text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def manifests(rendered: dict[str, str]) -> list[dict]:
    """Every Kubernetes object in a render (NOTES.txt and empty templates left out)."""
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return docs


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]
