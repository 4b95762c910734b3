"""Fine-tune a transformer encoder with a classification head on labelled support messages.

`finetune` trains the whole encoder (the product's recipe); `frozen` fits a logistic-regression head
on frozen sentence embeddings (the tiny-data mode and the benchmark baseline); `multilingual` fits
one on multilingual-e5 vectors plus character n-grams (languages other than English, e.g. Chinese).
All write a model directory with `manifest.json` that `IntentModel.load` reads.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from bot.config import TrainSettings
from bot.nlu import calibration
from bot.nlu.data import Example, data_hash, deduplicate
from bot.nlu.encoders import resolve

OOS = "out_of_scope"
Progress = Callable[[str, int, int], None]


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

    def save(self, directory: Path) -> None:
        (directory / "manifest.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        return cls(**json.loads((directory / "manifest.json").read_text()))


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out by a hash of each text, not by shuffling.

    A message stays on the same side when data is added, so a retrained model is compared with the
    current one on messages that neither has trained on (`promote`). Intents too rare to split
    stay in training only.
    """
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.intent] = counts.get(ex.intent, 0) + 1
    if fraction <= 0 or sum(c for c in counts.values() if c >= 4) < 10:
        return examples, []
    train_ex: list[Example] = []
    val_ex: list[Example] = []
    for ex in examples:
        held = counts[ex.intent] >= 4 and _bucket(ex.text, seed) < fraction
        (val_ex if held else train_ex).append(ex)
    return train_ex, val_ex


def _bucket(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{' '.join(text.lower().split())}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _batches(n: int, size: int, rng: np.random.Generator, lengths: list[int]) -> list[np.ndarray]:
    """Length-bucketed shuffled batches: similar lengths pad less (dynamic padding pays off)."""
    order = rng.permutation(n)
    chunks = [order[i : i + size * 8] for i in range(0, n, size * 8)]
    batches: list[np.ndarray] = []
    for chunk in chunks:
        chunk = sorted(chunk, key=lambda i: lengths[i])
        batches.extend(np.array(chunk[i : i + size]) for i in range(0, len(chunk), size))
    rng.shuffle(batches)
    return batches


class _Finetuner:
    def __init__(self, base: str, labels: list[str], cfg: TrainSettings) -> None:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

        from bot.nlu.network import MeanPoolClassifier

        self.torch = torch
        self.cfg = cfg
        self.n = len(labels)
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        if cfg.pooling == "mean":
            self.model = MeanPoolClassifier(AutoModel.from_pretrained(base), len(labels))
        else:  # the [CLS] pooler of a BERT-style classifier (models trained before mean pooling)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)})

    def _forward(self, enc):
        out = self.model(**enc)
        return out if isinstance(out, self.torch.Tensor) else out.logits

    def logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        torch = self.torch
        self.model.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = self.tokenizer(
                    texts[i : i + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.cfg.max_length,
                    return_tensors="pt",
                )
                out.append(self._forward(enc).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n))

    def fit(self, texts: list[str], y: np.ndarray, val_texts: list[str], val_y: np.ndarray,
            progress: Progress | None) -> int:
        torch = self.torch
        cfg = self.cfg
        if cfg.pooling == "mean":
            self._init_head(texts, y)
        head = [p for n, p in self.model.named_parameters() if n.startswith("classifier")]
        body = [p for n, p in self.model.named_parameters() if not n.startswith("classifier")]
        optim = torch.optim.AdamW(
            [{"params": body, "lr": cfg.learning_rate}, {"params": head, "lr": cfg.head_learning_rate}],
            weight_decay=0.01,
        )
        rng = np.random.default_rng(cfg.seed)
        lengths = [len(t) for t in texts]
        steps_per_epoch = -(-len(texts) // cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        warmup = max(1, total // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(
            optim, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup))
        )
        best_f1, best_state, stale, epochs_run, step = -1.0, None, 0, 0, 0
        for epoch in range(cfg.epochs):
            self.model.train()
            for idx in _batches(len(texts), cfg.batch_size, rng, lengths):
                enc = self.tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True,
                    max_length=cfg.max_length, return_tensors="pt",
                )
                loss = torch.nn.functional.cross_entropy(self._forward(enc), torch.tensor(y[idx]))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                optim.step()
                sched.step()
                optim.zero_grad()
                step += 1
                if progress:
                    progress(f"epoch {epoch + 1}/{cfg.epochs} loss {loss.item():.3f}", step, total)
            epochs_run = epoch + 1
            if len(val_y) == 0:
                continue
            f1 = f1_score(val_y, self.logits(val_texts).argmax(1), average="macro", zero_division=0)
            if f1 > best_f1 + 1e-6:
                best_f1, stale = f1, 0
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return epochs_run

    def _init_head(self, texts: list[str], y: np.ndarray, batch_size: int = 64) -> None:
        torch = self.torch
        self.model.eval()
        pooled = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = self.tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                                     max_length=self.cfg.max_length, return_tensors="pt")
                pooled.append(self.model.embed(**enc))
        self.model.init_from_centroids(torch.cat(pooled).clone(), torch.tensor(y))

    def save(self, directory: Path) -> None:
        if self.cfg.pooling == "mean":
            self.model.save(directory / "model")
        else:
            self.model.save_pretrained(directory / "model")
        self.tokenizer.save_pretrained(directory / "model")


class _FrozenHead:
    C = 10.0

    def __init__(self, base: str, labels: list[str], cfg: TrainSettings) -> None:
        from sentence_transformers import SentenceTransformer

        self.encoder = SentenceTransformer(base, device="cpu")
        self.cfg = cfg
        self.n = len(labels)
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, batch_size=64, normalize_embeddings=True,
                                   show_progress_bar=False, convert_to_numpy=True)

    def logits(self, texts: list[str]) -> np.ndarray:
        assert self.coef is not None and self.intercept is not None
        return self.embed(texts) @ self.coef.T + self.intercept

    def fit(self, texts: list[str], y: np.ndarray, val_texts: list[str], val_y: np.ndarray,
            progress: Progress | None) -> int:
        if progress:
            progress("embedding", 0, 2)
        x = self.embed(texts)
        if progress:
            progress("fitting head", 1, 2)
        self.coef, self.intercept = fit_linear_head(x, y, self.n, self.C, self.cfg.seed)
        if progress:
            progress("done", 2, 2)
        return 1

    def save(self, directory: Path) -> None:
        assert self.coef is not None and self.intercept is not None
        np.savez(directory / "head.npz", coef=self.coef, intercept=self.intercept)


def fit_linear_head(x: object, y: np.ndarray, n: int, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression as (coef, intercept) over all `n` labels; absent labels never win."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x, y)
    dim = clf.coef_.shape[1]
    coef = np.zeros((n, dim), dtype=np.float32)
    intercept = np.full(n, -1e4, dtype=np.float32)  # classes absent from training
    if len(clf.classes_) > 2:
        coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    else:  # binary: sklearn keeps one row for the positive class
        coef[clf.classes_] = np.vstack([-clf.coef_, clf.coef_])
        intercept[clf.classes_] = [-clf.intercept_[0], clf.intercept_[0]]
    return coef, intercept


class MultilingualFeatures:
    """multilingual-e5-small sentence vectors beside character 1–3-gram TF-IDF.

    No multilingual encoder can be fine-tuned here (e5 ships as a 4-bit C engine), so a linear head
    is trained on features: e5 carries meaning across languages, character n-grams catch the
    domain words and product names that Chinese needs no spaces for (never split by whitespace).
    On SMP2019-ECDT this beat either alone (benchmarks/multilingual.py)."""

    E5_WEIGHT = 2.0  # chosen on SMP2019-ECDT's validation split

    def __init__(self, vectorizer: object | None = None) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        from bot.knowledge.embedder import E5Embedder

        self.e5 = E5Embedder()
        self.vectorizer = vectorizer or TfidfVectorizer(analyzer="char", ngram_range=(1, 3),
                                                        sublinear_tf=True, lowercase=True)

    def fit(self, texts: list[str]) -> MultilingualFeatures:
        self.vectorizer.fit(texts)  # type: ignore[attr-defined]
        return self

    def __call__(self, texts: list[str]) -> object:
        from scipy.sparse import csr_matrix, hstack

        lexical = self.vectorizer.transform(texts)  # type: ignore[attr-defined]
        return hstack([lexical, csr_matrix(self.e5.encode(texts) * self.E5_WEIGHT)]).tocsr()

    def save(self, directory: Path) -> None:
        import joblib

        joblib.dump(self.vectorizer, directory / "char_tfidf.joblib")

    @classmethod
    def load(cls, directory: Path) -> MultilingualFeatures:
        import joblib

        return cls(joblib.load(directory / "char_tfidf.joblib"))


class _MultilingualHead(_FrozenHead):
    C = 100.0  # chosen on SMP2019-ECDT's validation split

    def __init__(self, base: str, labels: list[str], cfg: TrainSettings) -> None:
        self.features = MultilingualFeatures()
        self.cfg = cfg
        self.n = len(labels)
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None

    def embed(self, texts: list[str]) -> object:  # type: ignore[override]
        return self.features(texts)

    def logits(self, texts: list[str]) -> np.ndarray:
        return np.asarray(super().logits(texts))

    def fit(self, texts: list[str], y: np.ndarray, val_texts: list[str], val_y: np.ndarray,
            progress: Progress | None) -> int:
        self.features.fit(texts)  # the character vocabulary comes from the training texts only
        return super().fit(texts, y, val_texts, val_y, progress)

    def save(self, directory: Path) -> None:
        super().save(directory)
        self.features.save(directory)


LEARNERS = {"finetune": _Finetuner, "frozen": _FrozenHead, "multilingual": _MultilingualHead}


def train(
    examples: list[Example],
    cfg: TrainSettings,
    out_dir: Path,
    base_model: str | None = None,
    progress: Progress | None = None,
    val_examples: list[Example] | None = None,
) -> Manifest:
    """Train, calibrate on the validation split, and write the model directory with its report.

    Without `val_examples` a stratified `cfg.val_fraction` of `examples` is held out; a data set
    with its own validation split (CLINC150) passes it instead, so nothing is tuned on test data.
    """
    import torch
    import transformers

    base = "multilingual-e5-small" if cfg.mode == "multilingual" else resolve(base_model)
    seed_everything(cfg.seed)
    examples = deduplicate(examples)
    digest = data_hash(examples)
    if cfg.max_examples:
        examples = _stratified_subset(examples, cfg.max_examples, cfg.seed)
    labels = sorted({ex.intent for ex in examples})
    if len(labels) < 2:
        raise ValueError("training needs at least two intents")
    index = {label: i for i, label in enumerate(labels)}
    if val_examples is None:
        train_ex, val_ex = split(examples, cfg.val_fraction, cfg.seed)
    else:
        known = set(labels)
        train_ex, val_ex = examples, [e for e in deduplicate(val_examples) if e.intent in known]
    texts, y = [e.text for e in train_ex], np.array([index[e.intent] for e in train_ex])
    val_texts, val_y = [e.text for e in val_ex], np.array([index[e.intent] for e in val_ex], dtype=int)

    learner = LEARNERS[cfg.mode](base, labels, cfg)
    started = time.perf_counter()
    epochs_run = learner.fit(texts, y, val_texts, val_y, progress)
    seconds = time.perf_counter() - started

    val_logits = learner.logits(val_texts) if val_texts else np.zeros((0, len(labels)))
    temperature = calibration.fit_temperature(val_logits, val_y)
    probs = calibration.softmax(val_logits, temperature)
    oos = index.get(OOS)
    threshold = calibration.choose_oos_threshold(probs, val_y, oos) if len(val_y) else 0.0
    pred = probs.argmax(1) if len(val_y) else np.array([], dtype=int)

    out_dir.mkdir(parents=True, exist_ok=True)
    learner.save(out_dir)
    manifest = Manifest(
        base_model=base,
        mode=cfg.mode,
        data_hash=digest,
        labels=labels,
        n_train=len(train_ex),
        n_val=len(val_ex),
        val_accuracy=round(float(accuracy_score(val_y, pred)), 4) if len(val_y) else 0.0,
        val_macro_f1=round(float(f1_score(val_y, pred, average="macro", zero_division=0)), 4)
        if len(val_y) else 0.0,
        temperature=round(temperature, 4),
        oos_threshold=threshold,
        seed=cfg.seed,
        epochs_run=epochs_run,
        train_seconds=round(seconds, 1),
        max_length=cfg.max_length,
        pooling=cfg.pooling if cfg.mode == "finetune" else "mean",
        versions={"torch": torch.__version__, "transformers": transformers.__version__},
    )
    manifest.save(out_dir)
    with (out_dir / "validation.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": e.text, "intent": e.intent}, ensure_ascii=False) + "\n"
                      for e in val_ex)
    if len(val_y):
        write_report(out_dir, labels, val_y, pred, val_texts)
    return manifest


def _stratified_subset(examples: list[Example], n: int, seed: int) -> list[Example]:
    rng = random.Random(seed)
    by_intent: dict[str, list[Example]] = {}
    for ex in examples:
        by_intent.setdefault(ex.intent, []).append(ex)
    per = max(1, n // max(1, len(by_intent)))
    subset: list[Example] = []
    for intent in sorted(by_intent):
        items = by_intent[intent][:]
        rng.shuffle(items)
        subset.extend(items[:per])
    return subset


def write_report(out_dir: Path, labels: list[str], y: np.ndarray, pred: np.ndarray,
                 texts: list[str]) -> None:
    """Confusion matrix PNG and the misclassified validation messages, for a human to review."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = confusion_matrix(y, pred, labels=list(range(len(labels))))
    size = max(6, len(labels) * 0.35)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("tagged by agent")
    ax.set_title("Validation confusion matrix")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_matrix.png", dpi=110)
    plt.close(fig)
    errors = [
        {"text": t, "tagged": labels[a], "predicted": labels[b]}
        for t, a, b in zip(texts, y, pred, strict=True) if a != b
    ]
    (out_dir / "report.json").write_text(json.dumps({"errors": errors}, indent=2))
