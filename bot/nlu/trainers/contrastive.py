"""Contrastive pre-fine-tuning (SetFit's recipe) before the classifier: pairs of training messages,
same intent or not, pull the fine-tuned sentence vectors of an intent together and push others
apart. With a handful of examples per intent this shapes the space the head then reads, which a
cross-entropy step over so few messages cannot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# SetFit's body learning rate for its CosineSimilarityLoss stage.
LEARNING_RATE = 2e-5


def pairs(y: np.ndarray, per_example: int, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`per_example` positive and as many negative partners for each message (SetFit's pair
    generation): (left indices, right indices, 1.0 for the same intent, else 0.0)."""
    by_label = {label: np.flatnonzero(y == label) for label in np.unique(y)}
    not_label = {label: np.flatnonzero(y != label) for label in by_label}
    left: list[int] = []
    right: list[int] = []
    same: list[float] = []
    for i, label in enumerate(y):
        mates, others = by_label[label], not_label[label]
        mates = mates[mates != i]  # an intent's only message has no positive partner
        for _ in range(per_example):
            for partners, label_same in ((mates, 1.0), (others, 0.0)):
                if len(partners):
                    left.append(i)
                    right.append(int(rng.choice(partners)))
                    same.append(label_same)
    return np.array(left), np.array(right), np.array(same, dtype=np.float32)


def pretrain(pooled: Callable[[np.ndarray], Any], parameters: list[Any], y: np.ndarray, per_example: int,
             batch_size: int, seed: int) -> int:
    """One epoch over the pairs with a cosine-similarity regression loss; `pooled(idx)` gives the
    (trainable) sentence vectors of those training messages. Returns the steps taken."""
    import torch

    rng = np.random.default_rng(seed)
    left, right, same = pairs(y, per_example, rng)
    order = rng.permutation(len(left))
    optim = torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=0.01)
    steps = 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        both = pooled(np.concatenate([left[idx], right[idx]]))
        a, b = both[: len(idx)], both[len(idx):]
        cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
        loss = torch.nn.functional.mse_loss(cos, torch.from_numpy(same[idx]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optim.step()
        optim.zero_grad()
        steps += 1
    return steps
