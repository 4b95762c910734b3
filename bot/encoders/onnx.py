"""The intent encoder (and the FAQ embedder) through ONNX Runtime with int8 weights: a faster CPU
path, chosen by settings (`nlu_runtime`, `embedder_runtime`).

The exported graph is the torch part of an `IntentModel`, nothing more: the fine-tuned classifier
up to its logits, or the frozen sentence encoder up to its L2-normalised mean-pooled vector (the
numpy head then stays as it is). Weights are quantized to int8 per output channel after export
(`quantize_dynamic`): per-tensor scales flipped about three times as many demo predictions as
per-channel ones. Activations are quantized on the fly with one scale per batch, so a message's
numbers move slightly with the messages batched beside it (torch's do not). benchmarks/onnx_int8.py
measures both effects on BANKING77.

One file, `<model dir>/onnx/model.int8.onnx`, is written with a temporary name and renamed into
place, so replicas that start together never read half a file. Its metadata says what it outputs,
the tokenizer's max length and which training run it was exported from, so a model retrained into
the same folder is never served through an older graph.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bot.encoders.manifest import Manifest
from bot.encoders.network import MeanPoolClassifier

log = logging.getLogger(__name__)

ONNX_DIR = "onnx"
INT8_FILE = "model.int8.onnx"
OPSET = 17
_OUTPUT, _MAX_LENGTH, _SOURCE = "supportbot.output", "supportbot.max_length", "supportbot.source"


def int8_path(model_dir: Path) -> Path:
    return model_dir / ONNX_DIR / INT8_FILE


def source_stamp(manifest: Manifest) -> str:
    """Which training run a graph belongs to: its data hash and the time its manifest was made."""
    return f"{manifest.data_hash}:{manifest.created_at!r}"


def tokenizer_dir(model_dir: Path, manifest: Manifest) -> Path:
    """Where the model's tokenizer lives: beside the fine-tuned weights, or in the frozen encoder's
    transformer folder (a sentence-transformers checkpoint may keep it in a sub-folder)."""
    if manifest.mode == "finetune":
        return model_dir / "model"
    return tokenizer_folder(manifest.base_model)


def tokenizer_folder(path: str | Path) -> Path:
    """A sentence-transformers folder's tokenizer: in its Transformer module's sub-folder, if any."""
    base = Path(path)
    modules = base / "modules.json"
    if modules.exists():
        for module in json.loads(modules.read_text()):
            if module.get("type", "").endswith("Transformer"):
                return base / module.get("path", "")
    return base


class _Logits(torch.nn.Module):
    """A Hugging Face sequence classifier as (input_ids, attention_mask) -> logits."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class _MeanPooledVectors(torch.nn.Module):
    """What `SentenceTransformer.encode(normalize_embeddings=True)` computes for a mean-pooled
    checkpoint: token states, mean over the real tokens, unit length."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)


def _torch_part(model_dir: Path, manifest: Manifest) -> tuple[torch.nn.Module, Any, str, int]:
    """The module to export, its tokenizer, what it outputs ("logits" or "vectors"), max length."""
    if manifest.mode == "finetune":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir / "model")
        if manifest.pooling == "mean":
            module: torch.nn.Module = MeanPoolClassifier.load(model_dir / "model", len(manifest.labels),
                                                               vectors=manifest.distance_oos)
        else:
            module = _Logits(AutoModelForSequenceClassification.from_pretrained(model_dir / "model"))
        return module.eval(), tokenizer, "logits", manifest.max_length
    if manifest.mode != "frozen":
        raise ValueError(f"{manifest.mode!r} models have no torch encoder to export")
    return _sentence_encoder(manifest.base_model)


def _sentence_encoder(path: str) -> tuple[torch.nn.Module, Any, str, int]:
    """A sentence-transformers folder (Transformer + mean pooling [+ Normalize]) as a module that
    outputs unit vectors, its tokenizer and max length."""
    from sentence_transformers import SentenceTransformer

    st: Any = SentenceTransformer(path, device="cpu")
    names = [type(m).__name__ for m in st]
    config = st[1].get_config_dict() if names[1:2] == ["Pooling"] else {}
    mode = config.get("pooling_mode", "mean" if config.get("pooling_mode_mean_tokens") else None)
    if names[0] != "Transformer" or mode != "mean" or set(names[2:]) - {"Normalize"}:
        raise ValueError(f"{path}: only Transformer + mean pooling encoders export ({names})")
    return _MeanPooledVectors(st[0].auto_model).eval(), st[0].tokenizer, "vectors", st.max_seq_length


def export_int8(model_dir: Path, manifest: Manifest | None = None, out: Path | None = None) -> Path:
    """Export the model's torch part to ONNX, quantize its weights to int8 and rename it into
    `out` (default `<model_dir>/onnx/model.int8.onnx`). Returns the path written."""
    manifest = manifest or Manifest.load(model_dir)
    return _export(*_torch_part(model_dir, manifest), source_stamp(manifest), out or int8_path(model_dir))


def _export(module: torch.nn.Module, tokenizer: Any, output: str, max_length: int, stamp: str,
            out: Path) -> Path:
    """`output` names the graph's outputs, comma-separated (the shared graph has three)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.parent.mkdir(parents=True, exist_ok=True)
    # A padded pair traces the attention-mask path that every real batch needs.
    sample = tokenizer(["where is my parcel", "hi"], padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            # dynamo=False: the TorchScript exporter ships with torch; the dynamo one needs onnxscript.
            names = output.split(",")
            axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in names}
            axes.update({name: {0: "batch", 1: "sequence"}
                         for name in ("input_ids", "attention_mask", "tokens")})
            torch.onnx.export(
                module, (sample["input_ids"], sample["attention_mask"]), str(fp32), dynamo=False,
                input_names=["input_ids", "attention_mask"], output_names=names, opset_version=OPSET,
                dynamic_axes=axes)
        with _quiet_quantizer():
            quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
        graph = onnx.load(str(int8))
        onnx.helper.set_model_props(graph, {_OUTPUT: output, _MAX_LENGTH: str(max_length),
                                            _SOURCE: stamp})
        onnx.save(graph, str(int8))
        os.replace(int8, out)  # atomic on one file system: readers see the old file or the new one
    return out


def encoder_stamp(path: str) -> str:
    """Which sentence encoder a graph was exported from: its folder and its weight files."""
    folder = Path(path).resolve()
    weights = sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")])
    files = [f"{w.name}:{w.stat().st_size}:{int(w.stat().st_mtime)}" for w in weights]
    return "|".join([str(folder), *files])


def ensure_sentence_int8(path: str, cache_dir: Path) -> Path:
    """The int8 graph of the sentence encoder at `path` (the FAQ embedder), exported into
    `cache_dir/<stamp hash>/` on first use and reused after (replicas that start together may
    both export it; each renames a whole file into place)."""
    stamp = encoder_stamp(path)
    key = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    fallback = Path(tempfile.gettempdir()) / f"supportbot-embedder-{key}" / INT8_FILE
    return _cached_export(stamp, cache_dir / key / INT8_FILE, fallback, "the FAQ embedder",
                          lambda out: _export(*_sentence_encoder(path), stamp, out))


def _cached_export(stamp: str, path: Path, fallback: Path, what: str, export: Callable[[Path], Path]) -> Path:
    """The graph at `path` (else at `fallback`, in the temporary folder) when it was exported from
    `stamp`; otherwise `export` it to `path`, or to `fallback` when `path` is not writable (a
    read-only model or data folder, such as a container's image layer)."""
    for candidate in (path, fallback):
        if _stamp_of(candidate) == stamp:
            return candidate
    log.warning("exporting %s to ONNX int8 (%s %s)", what, path,
                "is from an older training run" if path.exists() else "is missing")
    try:
        return export(path)
    except OSError as exc:
        log.warning("%s is not writable (%s): exporting to %s instead", path.parent, exc, fallback)
        return export(fallback)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer logs a line per tensor through the root logger; drop those records only (a
    logger filter sees records logged on that logger, not ones propagated from named loggers)."""
    root = logging.getLogger()

    def quiet(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def is_current(path: Path, manifest: Manifest) -> bool:
    """The file exists and was exported from this training run."""
    return _stamp_of(path) == source_stamp(manifest)


def _stamp_of(path: Path) -> str | None:
    if not path.exists():
        return None
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return props.get(_SOURCE)


def ensure_int8(model_dir: Path, manifest: Manifest) -> Path:
    """The int8 file for this model, exported now if it is missing or from an older training run.

    `supportbot train` writes it when the runtime is onnx-int8; this is the fallback. A read-only
    model folder gets its file in the temporary folder instead (named after the model folder and
    training run, so later loads and restarts of the same container reuse it)."""
    stamp = source_stamp(manifest)
    key = hashlib.sha256(f"{model_dir.resolve()}:{stamp}".encode()).hexdigest()[:16]
    fallback = Path(tempfile.gettempdir()) / f"supportbot-onnx-{key}" / INT8_FILE
    return _cached_export(stamp, int8_path(model_dir), fallback, "the intent model",
                          lambda out: export_int8(model_dir, manifest, out))


SHARED_FILE = "shared.int8.onnx"


def ensure_shared_int8(model_dir: Path, manifest: Manifest, embedder_path: str) -> Path:
    """The int8 graph of the shared network (bot.encoders.shared): intent logits, FAQ vector and
    FAQ token states from one pass; exported on first use for this training run and embedder."""
    from bot.encoders.shared import OUTPUTS, load_net, sentence_max_length

    stamp = f"{source_stamp(manifest)}|{encoder_stamp(embedder_path)}"
    key = hashlib.sha256(f"{model_dir.resolve()}:{stamp}".encode()).hexdigest()[:16]
    fallback = Path(tempfile.gettempdir()) / f"supportbot-shared-{key}" / SHARED_FILE

    def export(out: Path) -> Path:
        from transformers import AutoTokenizer

        net = load_net(model_dir, manifest, embedder_path)
        return _export(net, AutoTokenizer.from_pretrained(model_dir / "model"), ",".join(OUTPUTS),
                       sentence_max_length(embedder_path), stamp, out)
    return _cached_export(stamp, model_dir / ONNX_DIR / SHARED_FILE, fallback,
                          "the shared intent and FAQ encoder", export)


def ensure_model_int8(model_dir: Path, manifest: Manifest, shared_embedder: str | None) -> Path:
    """The int8 graph a server with `onnx-int8` loads for this model: the shared graph when the FAQ
    embedder at `shared_embedder` shares its pass (bot.encoders.sharing), else the model's own."""
    if shared_embedder:
        return ensure_shared_int8(model_dir, manifest, shared_embedder)
    return ensure_int8(model_dir, manifest)


def session(path: Path, threads: int | None) -> Any:
    """An ONNX Runtime CPU session whose threads do not busy-wait between calls."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # No busy-waiting between calls: the same cores run the torch FAQ embedder right after the
    # intent model in every turn, and spinning ORT threads made a torch call that followed
    # 2.3x slower (p50 9.7 -> 22.8 ms on 2 cores) for 1 ms of ORT's own latency.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxGraph:
    """A graph of several outputs, run on token ids the caller has made."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.session = session(path, threads)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Any:
        return tuple(self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask}))


class OnnxEncoder:
    """texts -> logits (fine-tuned model) or unit sentence vectors (frozen encoder), like the torch
    model it stands in for, through the same tokenizer."""

    def __init__(self, path: Path, tokenizer: Path, threads: int | None = None) -> None:
        from transformers import AutoTokenizer

        self.session = session(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.output = meta[_OUTPUT]
        self.max_length = int(meta[_MAX_LENGTH])
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)

    def __call__(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="np")
        feeds = {name: np.asarray(enc[name], dtype=np.int64) for name in ("input_ids", "attention_mask")}
        return self.session.run(None, feeds)[0]


def load_int8(model_dir: Path, manifest: Manifest, threads: int | None = None) -> OnnxEncoder:
    return OnnxEncoder(ensure_int8(model_dir, manifest), tokenizer_dir(model_dir, manifest), threads)
