"""IntentModel: the trained model directory behind one `parse(text) -> Parse` call."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from bot.nlu import calibration
from bot.nlu.encoders import offline
from bot.nlu.train import OOS, Manifest
from bot.types import IntentScore, Parse

_PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z_][\w-]*)(?P<slots>\{.*\})?$", re.S)


def parse_payload(payload: str) -> Parse | None:
    """A button payload in Rasa's shape (`/intent` or `/intent{"slot": "value"}`): certain, no model."""
    m = _PAYLOAD.match(payload.strip())
    if not m:
        return None
    entities: dict[str, str] = {}
    if m.group("slots"):
        try:
            raw = json.loads(m.group("slots"))
        except json.JSONDecodeError:
            return None
        if not isinstance(raw, dict):
            return None
        entities = {str(k): str(v) for k, v in raw.items()}
    intent = m.group("intent")
    return Parse(text=payload, intent=intent, confidence=1.0,
                 ranking=[IntentScore(name=intent, confidence=1.0)], entities=entities)


class IntentModel:
    """Calibrated intent classification with out-of-scope detection.

    Out of scope means: the explicit out-of-scope class won, or the calibrated confidence is under
    the threshold `train` chose on validation data (or the one given in settings).
    """

    def __init__(self, directory: Path, threshold: float | None = None, ranking: int = 5) -> None:
        offline()
        self.manifest = Manifest.load(directory)
        self.labels = self.manifest.labels
        self.threshold = self.manifest.oos_threshold if threshold is None else threshold
        self.ranking = ranking
        if self.manifest.mode == "finetune":
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            self._torch = torch
            self._tokenizer = AutoTokenizer.from_pretrained(directory / "model")
            if self.manifest.pooling == "mean":
                from bot.nlu.network import MeanPoolClassifier

                self._model = MeanPoolClassifier.load(directory / "model", len(self.labels))
            else:
                self._model = AutoModelForSequenceClassification.from_pretrained(directory / "model")
            self._model.eval()
        else:
            from sentence_transformers import SentenceTransformer

            head = np.load(directory / "head.npz")
            self._coef, self._intercept = head["coef"], head["intercept"]
            self._encoder = SentenceTransformer(self.manifest.base_model, device="cpu")

    @classmethod
    def load(cls, directory: Path, threshold: float | None = None) -> IntentModel:
        if not (directory / "manifest.json").exists():
            raise FileNotFoundError(f"{directory}: no trained model (run `supportbot train`)")
        return cls(directory, threshold)

    def logits(self, texts: list[str]) -> np.ndarray:
        if self.manifest.mode == "finetune":
            with self._torch.inference_mode():
                enc = self._tokenizer(texts, padding=True, truncation=True,
                                      max_length=self.manifest.max_length, return_tensors="pt")
                out = self._model(**enc)
                return (out if isinstance(out, self._torch.Tensor) else out.logits).float().numpy()
        emb = self._encoder.encode(texts, normalize_embeddings=True, show_progress_bar=False,
                                   convert_to_numpy=True)
        return emb @ self._coef.T + self._intercept

    def parse_batch(self, texts: list[str]) -> list[Parse]:
        if not texts:
            return []
        probs = calibration.softmax(self.logits(texts), self.manifest.temperature)
        parses = []
        for text, p in zip(texts, probs, strict=True):
            order = np.argsort(-p)[: self.ranking]
            ranking = [IntentScore(name=self.labels[i], confidence=round(float(p[i]), 4)) for i in order]
            top = ranking[0]
            oos = top.name == OOS or top.confidence < self.threshold
            parses.append(Parse(text=text, intent=top.name, confidence=top.confidence,
                                ranking=ranking, out_of_scope=oos))
        return parses

    def parse(self, text: str) -> Parse:
        return self.parse_batch([text])[0]
