"""What a trained intent-model directory holds: `manifest.json`, written by `train`, read by
`IntentModel.load`, the ONNX export and `promote`."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Manifest:
    base_model: str
    mode: str
    data_hash: str
    labels: list[str]
    n_train: int
    n_val: int
    val_accuracy: float
    val_macro_f1: float
    temperature: float
    oos_threshold: float
    seed: int
    epochs_run: int
    train_seconds: float
    max_length: int
    created_at: float = field(default_factory=time.time)
    versions: dict[str, str] = field(default_factory=dict)
    pooling: str = "cls"  # finetune: "mean" (current recipe) or "cls" (older model dirs)
    promotion: dict | None = None  # `promote`: both models' scores on the same validation set
    frozen_layers: int = 0  # finetune: bottom transformer layers left as the base encoder's
    oos_method: str = "softmax"  # or a distance (bot.nlu.oos): "knn", "mahalanobis"
    oos_distance: float | None = None  # the distance threshold, chosen on validation
    n_pseudo_labelled: int = 0  # self-training: unlabelled messages the final run learnt as labelled

    @property
    def distance_oos(self) -> bool:
        """Out of scope is decided by a distance, so the network outputs its pooled vectors too."""
        return self.oos_method != "softmax"

    def shares_encoder_with(self, encoder: str) -> bool:
        """Whether the FAQ embedder at `encoder` is this model's base with the frozen layers left
        as they were (bot.encoders.shared checks the weights themselves when it loads)."""
        return (self.mode == "finetune" and self.pooling == "mean" and self.frozen_layers > 0
                and Path(encoder).resolve() == Path(self.base_model).resolve())

    def save(self, directory: Path) -> None:
        (directory / "manifest.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        return cls(**json.loads((directory / "manifest.json").read_text()))
