"""Out-of-scope detection on CLINC150: the softmax threshold against distances in the fine-tuned
embedding space (bot.nlu.oos), all on one fine-tuned model in one run.

Every score is thresholded on CLINC150's validation split only and reported on its test split:
AUROC (in-scope against out-of-scope test messages), in-scope accuracy, out-of-scope recall and
precision at that threshold. Rows: max softmax probability (calibrated, the product's old rule),
energy (log-sum-exp of the logits), k-NN cosine distance (k = 1, 10) and Mahalanobis distance to
the nearest intent mean, and the product's own `IntentModel` (whatever `supportbot train` chose).
Writes benchmarks/results/oos.json.

    .venv/bin/python benchmarks/oos.py                     # trains the current recipe (~30 min on 2 cores)
    .venv/bin/python benchmarks/oos.py --model /tmp/clinc  # a model trained by an earlier run
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from common import RESULTS, arg_parser
from intent import add_recipe_args, read_csv, recipe, rejection_scores
from rich.console import Console
from rich.table import Table

from bot.encoders.paths import display_name, offline, resolve
from bot.nlu import calibration
from bot.nlu.model import IntentModel
from bot.nlu.oos import KnnScorer, MahalanobisScorer, auroc, choose_distance_threshold
from bot.nlu.train import OOS, train

console = Console(width=150)


def features(model: IntentModel, texts: list[str], batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Each text's pooled sentence vector and logits from the model's own network."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = [model.vectors_and_logits([texts[j] for j in order[i : i + batch]])
             for i in range(0, len(order), batch)]
    back = np.argsort(order)
    return (np.concatenate([v for v, _ in parts])[back].astype(np.float32),
            np.concatenate([z for _, z in parts])[back].astype(np.float32))


def evaluate(name: str, val_scores: np.ndarray, test_scores: np.ndarray, val: tuple, test: tuple,
             oos: int) -> dict:
    (val_pred, val_y), (pred, y) = val, test
    threshold = choose_distance_threshold(val_scores, val_pred, val_y, oos)
    rejected = (test_scores > threshold) | (pred == oos)
    return {"score": name, "auroc": round(auroc(test_scores, y == oos), 4), "threshold": round(threshold, 4),
            **rejection_scores(pred, y, rejected, oos)}


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--model", type=Path, default=None,
                        help="a CLINC150 model folder trained earlier (else one is trained)")
    parser.add_argument("--keep", type=Path, default=Path("/tmp/supportbot-clinc150"),
                        help="where a newly trained model is kept for later runs")
    add_recipe_args(parser)
    args = parser.parse_args()
    offline()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    data = args.datasets / "clinc150"
    train_ex, val_ex, test_ex = (read_csv(data / f"{split}.csv") for split in ("train", "val", "test"))
    cfg = recipe(args)
    encoder = resolve(args.encoder)
    trained_s = None
    if args.model is None:
        started = time.perf_counter()
        train(train_ex, cfg.model_copy(update={"mode": "finetune"}), args.keep, encoder,
              val_examples=val_ex)
        trained_s = round(time.perf_counter() - started, 1)
    model_dir = args.model or args.keep
    model = IntentModel.load(model_dir)
    index = {label: i for i, label in enumerate(model.labels)}
    oos = index[OOS]
    temperature = model.manifest.temperature

    split = {}
    for name, examples in (("train", train_ex), ("val", val_ex), ("test", test_ex)):
        vectors, logits = features(model, [e.text for e in examples])
        split[name] = (vectors, logits, np.array([index[e.intent] for e in examples]))
        console.print(f"encoded {name}: {len(examples)} messages")
    tv, _, ty = split["train"]
    in_scope = ty != oos

    def scores(kind: str, vectors: np.ndarray, logits: np.ndarray) -> np.ndarray:
        if kind == "softmax":
            return 1.0 - calibration.softmax(logits, temperature).max(1)
        if kind == "energy":
            m = logits.max(1)
            return -(m + np.log(np.exp(logits - m[:, None]).sum(1)))
        return scorers[kind].score(vectors)

    scorers = {"knn-1": KnnScorer.fit(tv[in_scope], ty[in_scope], k=1),
               "knn-10": KnnScorer.fit(tv[in_scope], ty[in_scope], k=10),
               "mahalanobis": MahalanobisScorer.fit(tv[in_scope], ty[in_scope])}
    rows = []
    vv, vz, vy = split["val"]
    sv, sz, sy = split["test"]
    for kind in ("softmax", "energy", *scorers):
        rows.append(evaluate(kind, scores(kind, vv, vz), scores(kind, sv, sz),
                             (vz.argmax(1), vy), (sz.argmax(1), sy), oos))
    product = model.parse_batch([e.text for e in test_ex])
    rejected = np.array([p.out_of_scope for p in product])
    pred = np.array([index[p.intent or OOS] for p in product])
    rows.append({"score": f"product ({model.manifest.oos_method})",
                 **rejection_scores(pred, sy, rejected, oos)})

    table = Table(title="CLINC150 out-of-scope detection (test; thresholds from validation)")
    for col in ("score", "AUROC", "in-scope acc", "OOS recall", "OOS prec.", "threshold"):
        table.add_column(col, justify="left" if col == "score" else "right")
    for r in rows:
        table.add_row(r["score"], f"{r['auroc']:.4f}" if "auroc" in r else "–",
                      f"{r['in_scope_accuracy'] * 100:.2f}", f"{r['oos_recall'] * 100:.2f}",
                      f"{r['oos_precision'] * 100:.2f}", f"{r['threshold']:.4f}" if "threshold" in r else "–")
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "oos.json"
    out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "encoder": display_name(model.manifest.base_model), "recipe": cfg.model_dump(),
        "frozen_layers": model.manifest.frozen_layers, "train_seconds": model.manifest.train_seconds,
        "run_trained_it": trained_s is not None,
        "val_accuracy": model.manifest.val_accuracy, "rows": rows}, indent=2))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
