"""`finetune`: the whole transformer encoder trained with a classification head (the product's
recipe): mean-pooled token states and a head that starts from the class centroids (or, for older
model directories, the [CLS] pooler of a BERT-style classifier), AdamW with warm-up and linear
decay, early stopping on validation macro-F1.

With `tuned_layers` only the top layers (and the head) are trained: the layers under them stay the
base encoder's, so at serving time the FAQ embedder (the same base) and the intent model share one
pass through them (bot.encoders.shared), and training computes their token states once instead of
in every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from bot.config import TrainSettings
from bot.nlu.trainers import Progress


def _batches(n: int, size: int, rng: np.random.Generator, lengths: list[int]) -> list[np.ndarray]:
    """Length-bucketed shuffled batches: similar lengths pad less (dynamic padding pays off)."""
    order = rng.permutation(n)
    chunks = [order[i : i + size * 8] for i in range(0, n, size * 8)]
    batches: list[np.ndarray] = []
    for chunk in chunks:
        ordered = sorted(chunk, key=lambda i: lengths[i])
        batches.extend(np.array(ordered[i : i + size]) for i in range(0, len(ordered), size))
    rng.shuffle(batches)
    return batches


def _by_length(items: list[Any], size: int) -> list[list[int]]:
    """Indices in chunks of `size`, shortest items first: a chunk pads to its own longest."""
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    return [order[i : i + size] for i in range(0, len(order), size)]


class _Best:
    """The weights of the best validation macro-F1 so far, and when `patience` epochs brought none."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.f1 = -1.0
        self.state: dict[str, Any] | None = None
        self.stale = 0

    def stop(self, f1: float, model: Any) -> bool:
        if f1 > self.f1 + 1e-6:
            self.f1, self.stale = f1, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience


class Finetuner:
    def __init__(self, base: str, labels: list[str], cfg: TrainSettings) -> None:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

        from bot.encoders.network import MeanPoolClassifier  # torch: imported when training only

        self.torch = torch
        self.cfg = cfg
        self.n = len(labels)
        self._known: dict[str, Any] = {}  # text -> frozen-layer states, kept by `fit` for `vectors`
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.model: Any  # MeanPoolClassifier, or a transformers sequence classifier
        if cfg.pooling == "mean":
            self.model = MeanPoolClassifier(AutoModel.from_pretrained(base), len(labels))
        else:  # the [CLS] pooler of a BERT-style classifier (models trained before mean pooling)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)})

    def _tokens(self, texts: list[str]) -> Any:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.cfg.max_length,
                              return_tensors="pt")

    def _forward(self, enc):
        out = self.model(**enc)
        return out if isinstance(out, self.torch.Tensor) else out.logits

    def logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.model.eval()
        out = []
        with self.torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                out.append(self._forward(self._tokens(texts[i : i + batch_size])).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n))

    def fit(self, texts: list[str], y: np.ndarray, val_texts: list[str], val_y: np.ndarray,
            progress: Progress | None) -> int:
        cfg = self.cfg
        self._freeze()
        states = self._trunk_states(texts) if self.split else None
        val_states = self._trunk_states(val_texts) if self.split and len(val_y) else None
        if states is not None:
            self._known = dict(zip(texts, states, strict=True))
            self._known.update(zip(val_texts, val_states or [], strict=False))
        if cfg.pooling == "mean" and cfg.contrastive_pairs:
            from bot.nlu.trainers.contrastive import pretrain

            self.model.train()
            body = [p for n, p in self.model.named_parameters()
                    if p.requires_grad and not n.startswith("classifier")]
            pretrain(lambda idx: self._batch_pooled(texts, states, idx), body, y, cfg.contrastive_pairs,
                     cfg.batch_size, cfg.seed)
        if cfg.pooling == "mean":
            self.model.init_from_centroids(self.torch.from_numpy(self.vectors(texts)), self.torch.tensor(y))
        total = -(-len(texts) // cfg.batch_size) * cfg.epochs
        optim, sched = self._optimizer(total)
        rng = np.random.default_rng(cfg.seed)
        lengths = [len(t) for t in texts]
        best, epochs_run, step = _Best(cfg.patience), 0, 0
        for epoch in range(cfg.epochs):
            batches = _batches(len(texts), cfg.batch_size, rng, lengths)
            step = self._epoch(texts, y, states, batches, optim, sched, (epoch, step, total), progress)
            epochs_run = epoch + 1
            if len(val_y) == 0:
                continue
            val_logits = self._trunk_logits(val_states) if val_states is not None else self.logits(val_texts)
            f1 = f1_score(val_y, val_logits.argmax(1), average="macro", zero_division=0)
            if best.stop(f1, self.model):
                break
        if best.state is not None:
            self.model.load_state_dict(best.state)
        return epochs_run

    @property
    def split(self) -> int:
        """How many of the encoder's layers stay the base's (0: the whole encoder is trained)."""
        from bot.encoders.network import layer_count

        tuned = self.cfg.tuned_layers
        if tuned is None or self.cfg.pooling != "mean":
            return 0
        return max(0, layer_count(self.model.encoder) - tuned)

    def _freeze(self) -> None:
        encoder = self.model.encoder if self.split else None
        if encoder is not None:
            for module in (encoder.embeddings, *encoder.encoder.layer[: self.split]):
                module.requires_grad_(False)

    def _trunk_states(self, texts: list[str], batch_size: int = 64) -> list[Any]:
        """Each text's token states under the tuned layers: computed once, since they never change."""
        from bot.encoders.network import trunk

        self.model.eval()
        states: list[Any] = [None] * len(texts)
        with self.torch.inference_mode():
            for chunk in _by_length(texts, batch_size):
                enc = self._tokens([texts[i] for i in chunk])
                out = trunk(self.model.encoder, enc["input_ids"], enc["attention_mask"], self.split)
                for j, n in enumerate(enc["attention_mask"].sum(1).tolist()):
                    states[chunk[j]] = out[j, : int(n)].clone()
        return states

    def _padded(self, rows: list[Any]) -> tuple[Any, Any]:
        torch = self.torch
        states = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
        mask = torch.zeros(states.shape[:2], dtype=torch.long)
        for j, row in enumerate(rows):
            mask[j, : len(row)] = 1
        return states, mask

    def _trunk_logits(self, states: list[Any], batch_size: int = 64) -> np.ndarray:
        self.model.eval()
        out = np.zeros((len(states), self.n), dtype=np.float32)
        with self.torch.inference_mode():
            for chunk in _by_length(states, batch_size):
                logits = self.model.from_trunk(*self._padded([states[i] for i in chunk]), self.split)
                out[chunk] = logits.float().numpy()
        return out

    def _batch_logits(self, texts: list[str], states: list[Any] | None, idx: np.ndarray) -> Any:
        if states is None:
            return self._forward(self._tokens([texts[i] for i in idx]))
        return self.model.from_trunk(*self._padded([states[i] for i in idx]), self.split)

    def _optimizer(self, total: int) -> tuple[Any, Any]:
        """AdamW (a faster rate for the head), linear warm-up over a tenth of the steps, then decay."""
        torch, cfg = self.torch, self.cfg
        params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        head = [p for n, p in params if n.startswith("classifier")]
        body = [p for n, p in params if not n.startswith("classifier")]
        optim = torch.optim.AdamW(
            [{"params": body, "lr": cfg.learning_rate}, {"params": head, "lr": cfg.head_learning_rate}],
            weight_decay=0.01,
        )
        warmup = max(1, total // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(
            optim, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup))
        )
        return optim, sched

    def _epoch(self, texts: list[str], y: np.ndarray, states: list[Any] | None, batches: list[np.ndarray],
               optim: Any, sched: Any, where: tuple[int, int, int], progress: Progress | None) -> int:
        """One pass over `batches`; `where` is (epoch, steps so far, total steps). Returns the steps."""
        torch = self.torch
        epoch, step, total = where
        self.model.train()
        for idx in batches:
            loss = self._loss(texts, y, states, idx)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            step += 1
            if progress:
                progress(f"epoch {epoch + 1}/{self.cfg.epochs} loss {loss.item():.3f}", step, total)
        return step

    def _loss(self, texts: list[str], y: np.ndarray, states: list[Any] | None, idx: np.ndarray) -> Any:
        """Cross-entropy (with label smoothing); with `rdrop`, averaged over two dropout draws plus
        their symmetric KL, which keeps the head from leaning on any one dropout pattern."""
        functional, cfg = self.torch.nn.functional, self.cfg
        target = self.torch.tensor(y[idx])
        logits = self._batch_logits(texts, states, idx)
        loss = functional.cross_entropy(logits, target, label_smoothing=cfg.label_smoothing)
        if not cfg.rdrop:
            return loss
        again = self._batch_logits(texts, states, idx)
        loss = (loss + functional.cross_entropy(again, target, label_smoothing=cfg.label_smoothing)) / 2
        p, q = functional.log_softmax(logits, -1), functional.log_softmax(again, -1)
        kl = (functional.kl_div(p, q, log_target=True, reduction="batchmean")
              + functional.kl_div(q, p, log_target=True, reduction="batchmean")) / 2
        return loss + cfg.rdrop * kl

    def _batch_pooled(self, texts: list[str], states: list[Any] | None, idx: Any) -> Any:
        """The mean-pooled sentence vectors of training messages `idx` (from their frozen-layer
        states when there are some)."""
        from bot.encoders.network import mean_pool, top

        if states is None:
            return self.model.embed(**self._tokens([texts[i] for i in idx]))
        padded, mask = self._padded([states[i] for i in idx])
        return mean_pool(top(self.model.encoder, padded, mask, self.split), mask)

    def vectors(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """The mean-pooled sentence vectors the head reads: what it starts from (the class
        centroids) and what an out-of-scope distance is measured on."""
        torch = self.torch
        known = self._known
        states = [known[t] for t in texts] if all(t in known for t in texts) else None
        self.model.eval()
        pooled = np.zeros((len(texts), self.model.classifier.in_features), dtype=np.float32)
        with torch.inference_mode():
            for chunk in _by_length(texts if states is None else states, batch_size):
                pooled[chunk] = self._batch_pooled(texts, states, chunk).float().numpy()
        return pooled

    def save(self, directory: Path) -> None:
        if self.cfg.pooling == "mean":
            self.model.save(directory / "model")
        else:
            self.model.save_pretrained(directory / "model")
        self.tokenizer.save_pretrained(directory / "model")
