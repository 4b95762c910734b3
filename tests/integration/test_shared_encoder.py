"""One encoder pass per message: a model trained with `tuned_layers` keeps its base encoder's
lower layers, and the FAQ embedder (that same base) reads the message through them once with it.

The model here is tiny (1 epoch on 150 messages) for speed; what is checked does not depend on its
quality: the frozen layers are bit for bit the base's, the shared pass answers exactly as the two
separate passes do, a turn costs one pass, and a model whose layers differ is not shared.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.config import Settings
from bot.encoders.manifest import Manifest
from bot.encoders.onnx import SHARED_FILE
from bot.encoders.paths import resolve
from bot.knowledge.embedder import Embedder, SharedEmbedder
from bot.services import build_services, load_models, shared_encoder
from bot.types import Message
from tests.conftest import TINY_FINETUNE, demo_settings, tiny_finetuned

pytestmark = pytest.mark.integration

TINY_SHARED = TINY_FINETUNE
MESSAGES = ["where is my parcel?", "Can I pay with PayPal?", "i want to return the kettle, it leaks",
            "how long does delivery to Germany take and what does it cost", "ok thanks, bye"]


@pytest.fixture(scope="module")
def shared_dir(demo_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's index and multilingual model, with a tiny top-2-layer intent model of its own."""
    return tiny_finetuned(demo_assets, tmp_path_factory.mktemp("shared"))


def settings_for(data: Path, **overrides: object) -> Settings:
    """torch unless a test names int8: the shared pass's exactness is torch's (same bits)."""
    overrides.setdefault("models__nlu_runtime", "torch")
    overrides.setdefault("models__embedder_runtime", "torch")
    return demo_settings(data, train=TINY_SHARED, **overrides)


def _default_kb(knowledge: object) -> object:
    return getattr(knowledge, "default", knowledge)


def test_only_the_top_layers_are_trained(shared_dir: Path) -> None:
    from transformers import AutoModel

    manifest = Manifest.load(shared_dir / "models" / "intent")
    assert manifest.frozen_layers == 4
    base = AutoModel.from_pretrained(resolve(None)).state_dict()
    tuned = AutoModel.from_pretrained(shared_dir / "models" / "intent" / "model").state_dict()
    same = {name for name in base if torch.equal(base[name], tuned[name])}
    assert {n for n in base if n.startswith(("embeddings.", "encoder.layer.0.", "encoder.layer.3."))} <= same
    assert any(n.startswith("encoder.layer.5.") for n in base if n not in same)


def test_the_shared_pass_answers_as_two_passes_do(shared_dir: Path) -> None:
    nlu, knowledge = load_models(settings_for(shared_dir))
    apart_nlu, apart_knowledge = load_models(settings_for(shared_dir, models__share_encoder=False))
    assert isinstance(_default_kb(knowledge).embedder, SharedEmbedder)  # type: ignore[attr-defined]
    for ours, theirs in zip(nlu.parse_batch(MESSAGES), apart_nlu.parse_batch(MESSAGES), strict=True):
        assert (ours.intent, ours.confidence) == (theirs.intent, pytest.approx(theirs.confidence, abs=1e-4))
    for text in MESSAGES:
        ours_hits, their_hits = knowledge.search(text, 3, "en"), apart_knowledge.search(text, 3, "en")
        assert [h.entry_id for h in ours_hits] == [h.entry_id for h in their_hits]
        assert [h.score for h in ours_hits] == pytest.approx([h.score for h in their_hits], abs=1e-4)


@pytest.fixture
def shared_settings(shared_dir: Path, tmp_path: Path, redis_url: str) -> Iterator[Settings]:
    data = tmp_path / "data"
    data.mkdir()
    for part in ("models", "index"):
        (data / part).symlink_to(shared_dir / part)
    yield settings_for(data, redis__url=redis_url, sessions__key_prefix=f"sbshared-{uuid.uuid4().hex[:8]}")


async def test_a_turn_reads_the_message_once(shared_settings: Settings) -> None:
    models = load_models(shared_settings)
    embedder = _default_kb(models[1]).embedder  # type: ignore[attr-defined]
    assert isinstance(embedder, SharedEmbedder)
    async with build_services(shared_settings, models, generator=None) as services:
        async def say(text: str) -> None:
            await services.pipeline.handle(Message(channel="web", conversation_id=uuid.uuid4().hex,
                                                   message_id=uuid.uuid4().hex, text=text))
        await say("how much is delivery to Germany?")  # encodes the FAQ entry the coverage check reads
        before = embedder.shared.passes
        await say("what does shipping to Germany cost?")
        assert embedder.shared.passes - before == 1


def test_a_model_whose_lower_layers_differ_is_not_shared(shared_dir: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    shutil.copytree(shared_dir / "models" / "intent", data / "models" / "intent")
    (data / "index").symlink_to(shared_dir / "index")
    manifest_file = data / "models" / "intent" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["frozen_layers"] = 6  # claims all layers are the base's: layers 4 and 5 are not
    manifest_file.write_text(json.dumps(manifest))
    settings = settings_for(data, models__multilingual_embedder="")
    assert shared_encoder(settings) is None
    assert "is not the FAQ embedder's" in caplog.text
    _, knowledge = load_models(settings)
    assert isinstance(_default_kb(knowledge).embedder, Embedder)  # type: ignore[attr-defined]


def test_int8_runs_all_three_in_one_graph(shared_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(shared_dir / "models" / "intent", data / "models" / "intent")
    (data / "index").symlink_to(shared_dir / "index")
    settings = settings_for(data, models__multilingual_embedder="", models__nlu_runtime="onnx-int8",
                            models__embedder_runtime="onnx-int8")
    nlu, knowledge = load_models(settings)
    graph = data / "models" / "intent" / "onnx" / SHARED_FILE
    assert graph.exists()
    embedder = _default_kb(knowledge).embedder  # type: ignore[attr-defined]
    assert isinstance(embedder, SharedEmbedder) and embedder.runtime == "onnx-int8"
    torch_nlu, torch_kb = load_models(settings_for(data, models__multilingual_embedder=""))
    int8 = nlu.logits(MESSAGES)  # type: ignore[union-attr]
    exact = torch_nlu.logits(MESSAGES)  # type: ignore[union-attr]
    top2 = np.sort(exact, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1.0
    assert (int8.argmax(1) == exact.argmax(1))[clear].all()
    exact_vectors = _default_kb(torch_kb).embedder.encode(MESSAGES)  # type: ignore[attr-defined]
    vectors = embedder.encode(MESSAGES)
    assert (vectors * exact_vectors).sum(1).min() > 0.95  # int8 embedder alone: 0.96 ("ok thanks, bye")
    stamp = graph.stat().st_mtime_ns
    load_models(settings)  # a second start reuses the graph
    assert graph.stat().st_mtime_ns == stamp
