"""`auto` runtimes: ONNX int8 where it was measured to win (a fine-tuned model sharing its lower
layers with the FAQ embedder), torch elsewhere; explicit settings win."""

from __future__ import annotations

from bot.config import Settings
from bot.encoders.manifest import Manifest
from bot.encoders.paths import resolve
from bot.encoders.sharing import runtimes, shared_embedder


def manifest(mode: str = "finetune", frozen_layers: int = 4, base: str | None = None) -> Manifest:
    return Manifest(base_model=base or resolve(None), mode=mode, data_hash="h", labels=["a", "b"], n_train=2,
                    n_val=0, val_accuracy=0.0, val_macro_f1=0.0, temperature=1.0, oos_threshold=0.0, seed=1,
                    epochs_run=1, train_seconds=1.0, max_length=32, pooling="mean",
                    frozen_layers=frozen_layers)


def test_auto_is_int8_for_the_shared_pass_and_torch_elsewhere() -> None:
    settings = Settings()
    shared = manifest()
    assert runtimes(settings, shared) == ("onnx-int8", "onnx-int8")
    assert shared_embedder(settings, shared) == resolve(None)
    for other in (manifest(mode="frozen"), manifest(frozen_layers=0), manifest(base="/elsewhere"), None):
        assert runtimes(settings, other) == ("torch", "torch")
    assert runtimes(settings.updated({"models.share_encoder": False}), shared) == ("torch", "torch")


def test_explicit_runtimes_win_and_only_equal_ones_share() -> None:
    torch = Settings().updated({"models.nlu_runtime": "torch", "models.embedder_runtime": "torch"})
    assert runtimes(torch, manifest()) == ("torch", "torch") and shared_embedder(torch, manifest())
    mixed = Settings().updated({"models.embedder_runtime": "torch"})
    assert runtimes(mixed, manifest()) == ("onnx-int8", "torch")
    assert shared_embedder(mixed, manifest()) is None  # two runtimes: two passes
    forced = Settings().updated({"models.nlu_runtime": "onnx-int8"})
    assert runtimes(forced, manifest(mode="frozen")) == ("onnx-int8", "torch")
