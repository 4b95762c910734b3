"""One encoder pass per message for the intent model and the FAQ embedder.

A model trained with `tuned_layers` (bot.nlu.trainers.finetune) keeps the embeddings and the lower
layers of its base encoder untouched. When the FAQ embedder is that same base, both read the same
token states up to that layer, so a message goes through them once; from there the intent model's
tuned layers give its logits and the embedder's own layers give the FAQ vector and the token vectors
the coverage check aligns. The pipeline asks for the intent and the FAQ hits in separate calls, so
each message's results are kept in a small cache keyed by its text: the second call finds them.

Two runtimes: torch (the embedder's vectors are exactly what `supportbot index` built the index
with), or one ONNX Runtime graph with int8 weights for all three outputs (bot.encoders.onnx).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bot.encoders.manifest import Manifest
from bot.encoders.memo import RecentByText
from bot.encoders.network import MeanPoolClassifier, mean_pool, top, trunk

OUTPUTS = ("logits", "sentence", "tokens")


@dataclass(frozen=True)
class Encoded:
    """What one message's pass gives: intent logits, the FAQ sentence vector (unit length) and the
    FAQ token vectors of its non-special tokens with their character spans."""

    logits: np.ndarray
    sentence: np.ndarray
    spans: list[tuple[int, int]]
    tokens: np.ndarray


class SharedNet(torch.nn.Module):
    """(input_ids, attention_mask) -> (intent logits, FAQ unit vectors, FAQ token states)."""

    def __init__(self, faq: Any, intent: MeanPoolClassifier, split: int) -> None:
        super().__init__()
        self.faq, self.intent, self.split = faq, intent, split

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        states = trunk(self.faq, input_ids, attention_mask, self.split)
        logits = self.intent.from_trunk(states, attention_mask, self.split)
        tokens = top(self.faq, states, attention_mask, self.split)
        sentence = torch.nn.functional.normalize(mean_pool(tokens, attention_mask), dim=-1)
        return logits, sentence, tokens


def sentence_max_length(path: str, default: int = 256) -> int:
    config = Path(path) / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", default))
    return default


def load_net(model_dir: Path, manifest: Manifest, embedder_path: str) -> SharedNet:
    """The shared network, after checking that the intent model's frozen layers are the
    embedder's weights (a model trained on another base, or a retrained embedder, is refused)."""
    from transformers import AutoModel

    from bot.encoders.onnx import tokenizer_folder

    if not manifest.shares_encoder_with(embedder_path):
        raise ValueError(f"{model_dir}: the intent model has no frozen layers of {embedder_path} to share")
    faq = AutoModel.from_pretrained(tokenizer_folder(embedder_path)).eval()
    intent = MeanPoolClassifier.load(model_dir / "model", len(manifest.labels), vectors=manifest.distance_oos)
    split = manifest.frozen_layers
    ours, theirs = intent.encoder.state_dict(), faq.state_dict()
    frozen = ("embeddings.", *(f"encoder.layer.{i}." for i in range(split)))
    for name, value in ours.items():
        if name.startswith(frozen) and not (name in theirs and torch.equal(value, theirs[name])):
            raise ValueError(f"{model_dir}: layer {name} is not the FAQ embedder's ({embedder_path})")
    return SharedNet(faq, intent, split).eval()


class SharedEncoder:
    """Texts -> `Encoded`, one pass each, remembered for the turn's next call (LRU by text)."""

    def __init__(self, run: Callable[[Any, Any], tuple[np.ndarray, np.ndarray, np.ndarray]],
                 tokenizer: Any, max_length: int, runtime: str, cache_size: int = 256) -> None:
        self._run, self.tokenizer, self.max_length = run, tokenizer, max_length
        self.runtime = runtime
        self._recent: RecentByText[Encoded] = RecentByText(cache_size)

    @classmethod
    def load(cls, model_dir: Path, manifest: Manifest, embedder_path: str, runtime: str = "torch",
             threads: int | None = None) -> SharedEncoder:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir / "model")
        max_length = sentence_max_length(embedder_path)
        if runtime == "onnx-int8":
            from bot.encoders.onnx import OnnxGraph, ensure_shared_int8

            graph = OnnxGraph(ensure_shared_int8(model_dir, manifest, embedder_path), threads)
            return cls(graph.run, tokenizer, max_length, runtime)
        if runtime != "torch":
            raise ValueError(f"unknown runtime {runtime!r} (torch or onnx-int8)")
        net = load_net(model_dir, manifest, embedder_path)

        def run(input_ids: Any, attention_mask: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            with torch.inference_mode():
                out = net(torch.as_tensor(input_ids), torch.as_tensor(attention_mask))
            return tuple(o.float().numpy() for o in out)
        return cls(run, tokenizer, max_length, runtime)

    @property
    def passes(self) -> int:
        """Texts that went through the network (the others were remembered)."""
        return self._recent.misses

    def encode(self, texts: list[str]) -> list[Encoded]:
        return self._recent.get_or_compute(texts, self._pass)

    def logits(self, texts: list[str]) -> np.ndarray:
        return np.stack([e.logits for e in self.encode(texts)]) if texts else np.zeros((0, 0))

    def _pass(self, texts: list[str]) -> list[Encoded]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_offsets_mapping=True, return_tensors="np")
        logits, sentences, tokens = self._run(np.asarray(enc["input_ids"], dtype=np.int64),
                                              np.asarray(enc["attention_mask"], dtype=np.int64))
        result = []
        for i, spans in enumerate(enc["offset_mapping"].tolist()):
            keep = [j for j, (start, end) in enumerate(spans) if end > start]
            result.append(Encoded(np.asarray(logits[i], dtype=np.float32),
                                  np.ascontiguousarray(sentences[i], dtype=np.float32),
                                  [(int(spans[j][0]), int(spans[j][1])) for j in keep],
                                  np.asarray(tokens[i, keep], dtype=np.float32)))
        return result
