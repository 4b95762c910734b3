"""IntentModel: the trained model directory behind one `parse(text) -> Parse` call."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bot.encoders.manifest import Manifest
from bot.encoders.paths import offline
from bot.nlu import calibration
from bot.nlu.oos import DistanceScorer, load_scorer
from bot.nlu.train import OOS
from bot.nlu.trainers.multilingual import MultilingualFeatures
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
    the threshold `train` chose on validation data (or the one given in settings), or, for a model
    trained with a distance `oos_method`, its sentence vector lies farther from the training
    messages than the distance chosen on validation (bot.nlu.oos).
    """

    def __init__(self, directory: Path, threshold: float | None = None, ranking: int = 5,
                 runtime: str = "torch", threads: int | None = None,
                 logits: Callable[[list[str]], np.ndarray] | None = None) -> None:
        """`runtime` "onnx-int8" runs the torch encoder of a finetune or frozen model through ONNX
        Runtime with int8 weights (`bot.encoders.onnx`; `threads` are its intra-op threads);
        the multilingual model has no torch encoder and keeps its own. `logits` replaces a
        fine-tuned model's own network (the pass it shares with the FAQ embedder,
        bot.encoders.shared)."""
        if runtime not in ("torch", "onnx-int8"):
            raise ValueError(f"unknown intent runtime {runtime!r} (torch or onnx-int8)")
        offline()
        self.manifest = Manifest.load(directory)
        self.labels = self.manifest.labels
        self.threshold = self.manifest.oos_threshold if threshold is None else threshold
        self.ranking = ranking
        self.runtime = "torch" if self.manifest.mode == "multilingual" else runtime
        self._onnx: Callable[[list[str]], np.ndarray] | None = None
        self._scorer: DistanceScorer | None = load_scorer(directory) if self.manifest.distance_oos else None
        # the confidence threshold: the model's own rule, or one given in settings (which applies
        # on top of a distance as well)
        self._softmax_rule = self._scorer is None or threshold is not None
        if logits is not None and self.manifest.mode == "finetune":
            self._onnx = logits
        elif self.runtime == "onnx-int8":
            from bot.encoders.onnx import load_int8

            self._onnx = load_int8(directory, self.manifest, threads)
        if self.manifest.mode == "finetune":
            if self._onnx is not None:
                return
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            self._torch = torch
            self._tokenizer = AutoTokenizer.from_pretrained(directory / "model")
            if self.manifest.pooling == "mean":
                from bot.encoders.network import MeanPoolClassifier

                self._model = MeanPoolClassifier.load(directory / "model", len(self.labels))
            else:
                self._model = AutoModelForSequenceClassification.from_pretrained(directory / "model")
            self._model.eval()
        else:
            head = np.load(directory / "head.npz")
            self._coef, self._intercept = head["coef"], head["intercept"]
            self._features: Callable[[list[str]], Any]
            if self._onnx is not None:
                self._features = self._onnx
            elif self.manifest.mode == "multilingual":
                self._features = MultilingualFeatures.load(directory)
            else:
                from sentence_transformers import SentenceTransformer

                encoder = SentenceTransformer(self.manifest.base_model, device="cpu")
                self._features = partial(encoder.encode, normalize_embeddings=True,
                                         show_progress_bar=False, convert_to_numpy=True)

    @classmethod
    def load(cls, directory: Path, threshold: float | None = None, runtime: str = "torch",
             threads: int | None = None, logits: Callable[[list[str]], np.ndarray] | None = None
             ) -> IntentModel:
        if not (directory / "manifest.json").exists():
            raise FileNotFoundError(f"{directory}: no trained model (run `supportbot train`)")
        return cls(directory, threshold, runtime=runtime, threads=threads, logits=logits)

    def logits(self, texts: list[str]) -> np.ndarray:
        if self.manifest.mode == "finetune":
            if self._onnx is not None:  # a distance model's graphs give its vectors after the logits
                return self._onnx(texts)[:, : len(self.labels)]
            with self._torch.inference_mode():
                enc = self._tokens(texts)
                out = self._model(**enc)
                return (out if isinstance(out, self._torch.Tensor) else out.logits).float().numpy()
        return np.asarray(self._features(texts) @ self._coef.T) + self._intercept

    def probabilities(self, texts: list[str], batch: int = 128) -> np.ndarray:
        """Calibrated intent probabilities of many texts (a data set, a support log), in batches of
        similar length: less padding per batch."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            logits[idx] = self.logits([texts[i] for i in idx])
        return calibration.softmax(logits, self.manifest.temperature)

    def vectors_and_logits(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """A fine-tuned mean-pooled model's sentence vectors and logits, from one pass."""
        n = len(self.labels)
        if self.manifest.mode != "finetune" or self.manifest.pooling != "mean":
            raise ValueError(f"a {self.manifest.mode} model has no fine-tuned sentence vectors")
        if self._onnx is not None:
            if not self.manifest.distance_oos:
                raise ValueError("this runtime gives the vectors of a distance-trained model only")
            out = self._onnx(texts)
            return out[:, n:], out[:, :n]
        with self._torch.inference_mode():
            pooled = self._model.embed(**self._tokens(texts))
            return pooled.float().numpy(), self._model.classifier(pooled).float().numpy()

    def _tokens(self, texts: list[str]) -> Any:
        return self._tokenizer(texts, padding=True, truncation=True, max_length=self.manifest.max_length,
                               return_tensors="pt")

    def parse_batch(self, texts: list[str], language: str | None = None) -> list[Parse]:
        """One forward pass for all `texts` (micro-batched turns share it)."""
        if not texts:
            return []
        if self._scorer is not None:
            vectors, logits = self.vectors_and_logits(texts)
            far = self._scorer.score(vectors) > float(self.manifest.oos_distance or 0.0)
        else:
            logits, far = self.logits(texts), np.zeros(len(texts), dtype=bool)
        probs = calibration.softmax(logits, self.manifest.temperature)
        parses = []
        for text, p, distant in zip(texts, probs, far, strict=True):
            order = np.argsort(-p)[: self.ranking]
            ranking = [IntentScore(name=self.labels[i], confidence=round(float(p[i]), 4)) for i in order]
            top = ranking[0]
            oos = top.name == OOS or bool(distant) or (self._softmax_rule and top.confidence < self.threshold)
            parses.append(Parse(text=text, intent=top.name, confidence=top.confidence,
                                ranking=ranking, out_of_scope=oos))
        return parses

    def parse(self, text: str, language: str | None = None) -> Parse:
        """`language` is accepted for the routed model's sake; one model parses every language."""
        return self.parse_batch([text])[0]


class LanguageRoutedIntentModel:
    """The default language's fine-tuned model parses its own language; the multilingual head
    (e5 + character n-grams, trained on every language's logs) parses the others."""

    def __init__(self, default: IntentModel, multilingual: IntentModel | None, default_language: str) -> None:
        self.default, self.multilingual = default, multilingual
        self.default_language = default_language
        self.manifest, self.labels = default.manifest, default.labels

    def for_language(self, language: str | None) -> IntentModel:
        if self.multilingual is None or language is None or language == self.default_language:
            return self.default
        return self.multilingual

    def parse(self, text: str, language: str | None = None) -> Parse:
        return self.for_language(language).parse(text)

    def parse_batch(self, texts: list[str], language: str | None = None) -> list[Parse]:
        return self.for_language(language).parse_batch(texts)


class EntityTaggedModel:
    """An intent model whose parses also carry the entities a Rasa project's extractor finds
    (learned tags, regexes, lookup tables, synonyms), in Rasa's shape and as `entities`."""

    def __init__(self, model: IntentModel | LanguageRoutedIntentModel | EntityTaggedModel,
                 extractor: Any) -> None:
        self.model, self.extractor = model, extractor
        self.manifest: Manifest = model.manifest
        self.labels: list[str] = model.labels

    def parse(self, text: str, language: str | None = None) -> Parse:
        return self._tag(self.model.parse(text, language))

    def parse_batch(self, texts: list[str], language: str | None = None) -> list[Parse]:
        return [self._tag(p) for p in self.model.parse_batch(texts, language)]

    def _tag(self, parse: Parse) -> Parse:
        parse.spans = self.extractor.extract(parse.text)
        parse.entities.update({str(s["entity"]): str(s["value"]) for s in parse.spans})
        return parse
