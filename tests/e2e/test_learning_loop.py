"""The README's learning loop on the demo support logs, through the CLI: ingest → discover → train."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.nlu.data import load_examples, read_rasa_nlu
from bot.nlu.train import Manifest
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_logs_ingest_discover_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_DOMAIN_FILE", str(ROOT / "training_data" / "domain.yml"))
    monkeypatch.setenv("SUPPORTBOT_KNOWLEDGE_BASE", str(ROOT / "knowledge_base"))
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "var"))
    out = tmp_path / "ingest"

    run("ingest", str(ROOT / "training_data" / "support_logs.jsonl"), "--out", str(out))

    report = json.loads((out / "report.json").read_text())
    logs = (ROOT / "training_data" / "support_logs.jsonl").read_text().splitlines()
    assert report["conversations"] == len(logs) and report["examples"] >= 650
    assert report["redacted"]["ORDER"] > 100 and report["redacted"]["EMAIL"] > 0
    written = (out / "support_logs.jsonl").read_text() + (out / "nlu.yml").read_text()
    assert not re.search(r"\bKK-?\d{6}\b", written)  # order numbers never reach training data
    assert not re.search(r"[\w.+-]+@(?!kettleandkin)[\w-]+\.\w+", written)
    examples = load_examples(out / "support_logs.jsonl")
    assert {e.intent for e in examples} == {e.intent for e in read_rasa_nlu(out / "nlu.yml")}
    assert len({e.intent for e in examples}) >= 25

    discovered = tmp_path / "discovered.yml"
    run("discover", str(out / "support_logs.jsonl"), "--out", str(discovered), "--k", "25")
    clusters = read_rasa_nlu(discovered)
    assert len({e.intent for e in clusters}) == 25
    assert all(e.intent.startswith("candidate_") for e in clusters)

    model = tmp_path / "model"
    monkeypatch.setenv("SUPPORTBOT_TRAIN__MODE", "frozen")
    run("train", "--data", str(out / "nlu.yml"), "--out", str(model))
    manifest = Manifest.load(model)
    assert manifest.val_macro_f1 > 0.6 and len(manifest.labels) >= 25
