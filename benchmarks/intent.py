"""Intent classification on public benchmarks: our fine-tuned encoder against two baselines.

One run trains and evaluates, on each setting, the product's recipe (`supportbot train`'s
fine-tuning, `bot.nlu.train`) and two baselines: TF-IDF + logistic regression, and frozen sentence
embeddings + logistic regression (the product's `frozen` mode). Settings:

- banking77       BANKING77, full training set (10% held out for early stopping/calibration), test set
- banking77_10shot BANKING77, 10 training examples per intent, seeds 1-3 (`--seeds`; mean ± std), test set
- banking77_5shot  the same with 5 examples per intent
- clinc150        CLINC150 with its out-of-scope data; threshold chosen on the validation split only

Reports accuracy, macro-F1, training time, batch-1 CPU latency (p50/p95), model size; for CLINC150
in-scope accuracy and out-of-scope recall/precision. Prints one table, writes
benchmarks/results/intent.json (merged per setting, so settings can be run one by one) and a
confusion matrix and reliability diagram PNG per data set next to it.

    .venv/bin/python benchmarks/intent.py                      # everything (about 1.5 h on 2 cores)
    .venv/bin/python benchmarks/intent.py --only banking77_10shot --systems tfidf,frozen
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common import RESULTS, arg_parser, quietly
from rich.console import Console
from rich.table import Table
from sklearn.metrics import accuracy_score, f1_score

from bot.config import TrainSettings
from bot.encoders.paths import display_name, offline, resolve
from bot.nlu import calibration
from bot.nlu.data import Example
from bot.nlu.model import IntentModel
from bot.nlu.self_training import self_train
from bot.nlu.train import OOS, train
from bot.stats import percentile

SETTINGS = ("banking77", "banking77_10shot", "banking77_5shot", "clinc150")
SYSTEMS = ("finetune", "frozen", "tfidf")
LATENCY_MESSAGES = 200
console = Console(width=150)


def read_csv(path: Path) -> list[Example]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [Example(r["text"], OOS if r["label"] == "oos" else r["label"]) for r in csv.DictReader(fh)]


def few_shot(examples: list[Example], k: int, seed: int) -> list[Example]:
    by: dict[str, list[Example]] = {}
    for ex in examples:
        by.setdefault(ex.intent, []).append(ex)
    rng = random.Random(seed)
    return [ex for label in sorted(by) for ex in rng.sample(by[label], min(k, len(by[label])))]


def dir_size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


class BenchTrainSettings(TrainSettings):
    few_shot_epochs: int = 20


@dataclass
class Fitted:
    """A trained system: calibrated probabilities, its labels, and what it cost."""

    labels: list[str]
    probs: Callable[[list[str]], np.ndarray]
    train_seconds: float
    size_mb: float
    threshold: float = 0.0
    extra: dict = field(default_factory=dict)


def train_ours(mode: str, train_ex: list[Example], val_ex: list[Example] | None, cfg: TrainSettings,
               workdir: Path, encoder: str, unlabeled: list[str] | None = None) -> tuple[Path, float]:
    """`supportbot train`'s recipe into `workdir/mode`; returns the folder and the seconds taken.
    With `cfg.self_training` and `unlabeled` texts, its self-training (bot.nlu.self_training)."""
    out = workdir / mode
    started = time.perf_counter()
    if cfg.self_training and unlabeled and mode == "finetune":
        self_train(train_ex, unlabeled, cfg, out, encoder, val_examples=val_ex)
    else:
        train(train_ex, cfg, out, encoder, val_examples=val_ex)
    return out, time.perf_counter() - started


def load_ours(out: Path, seconds: float) -> Fitted:
    """A trained model folder as a system to evaluate."""
    model = IntentModel.load(out)
    manifest = model.manifest

    size = dir_size_mb(out) + (dir_size_mb(Path(manifest.base_model)) if manifest.mode == "frozen" else 0.0)
    return Fitted(model.labels, model.probabilities, seconds, size, manifest.oos_threshold,
                  {"epochs_run": manifest.epochs_run, "n_train": manifest.n_train,
                   "n_val": manifest.n_val, "val_accuracy": manifest.val_accuracy,
                   "n_pseudo_labelled": manifest.n_pseudo_labelled,
                   "single": lambda text: model.parse(text)})


def fit_ours(mode: str, train_ex: list[Example], val_ex: list[Example] | None, cfg: TrainSettings,
             workdir: Path, encoder: str, unlabeled: list[str] | None = None) -> Fitted:
    return load_ours(*train_ours(mode, train_ex, val_ex, cfg, workdir, encoder, unlabeled))


def fit_tfidf(train_ex: list[Example], val_ex: list[Example] | None, workdir: Path) -> Fitted:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    labels = sorted({e.intent for e in train_ex})
    index = {label: i for i, label in enumerate(labels)}
    pipe = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(C=20.0, max_iter=3000),
    )
    started = time.perf_counter()
    pipe.fit([e.text for e in train_ex], [index[e.intent] for e in train_ex])
    seconds = time.perf_counter() - started
    path = workdir / "tfidf.pkl"
    path.write_bytes(pickle.dumps(pipe))
    temperature, threshold = 1.0, 0.0
    if val_ex:
        val = [e for e in val_ex if e.intent in index]
        logits = np.log(pipe.predict_proba([e.text for e in val]) + 1e-12)
        y = np.array([index[e.intent] for e in val])
        temperature = calibration.fit_temperature(logits, y)
        threshold = calibration.choose_oos_threshold(
            calibration.softmax(logits, temperature), y, index.get(OOS))

    def probs(texts: list[str]) -> np.ndarray:
        return calibration.softmax(np.log(pipe.predict_proba(texts) + 1e-12), temperature)

    return Fitted(labels, probs, seconds, dir_size_mb(path), threshold,
                  {"single": lambda text: pipe.predict_proba([text])})


def evaluate(fitted: Fitted, test: list[Example]) -> dict:
    texts = [e.text for e in test]
    index = {label: i for i, label in enumerate(fitted.labels)}
    y = np.array([index.get(e.intent, -1) for e in test])
    started = time.perf_counter()
    probs = fitted.probs(texts)
    batch_ms = (time.perf_counter() - started) * 1000 / max(1, len(texts))
    pred = probs.argmax(1)
    conf = probs.max(1)
    result: dict = {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro", zero_division=0)), 4),
        "batched_ms_per_message": round(batch_ms, 2),
    }
    oos = index.get(OOS)
    if oos is not None:
        rejected = (pred == oos) | (conf < fitted.threshold)
        final = np.where(rejected, oos, pred)
        result.update({
            "oos_threshold": fitted.threshold,
            "macro_f1": round(float(f1_score(y, final, average="macro", zero_division=0)), 4),
            **rejection_scores(pred, y, rejected, oos),
        })
        pred = final
    result["ece"] = round(expected_calibration_error(pred == y, conf), 4)
    single = fitted.extra.pop("single")
    rng = random.Random(0)
    sample = rng.sample(texts, min(LATENCY_MESSAGES, len(texts)))
    single(sample[0])  # warm-up

    def timed() -> list[float]:
        times = []
        for text in sample:
            t0 = time.perf_counter()
            single(text)
            times.append((time.perf_counter() - t0) * 1000)
        return times

    times, load = quietly(timed)
    result.update({
        **load,
        "latency_ms_p50": round(percentile(times, 50), 2),
        "latency_ms_p95": round(percentile(times, 95), 2),
        "train_seconds": round(fitted.train_seconds, 1),
        "size_mb": fitted.size_mb,
        **{k: v for k, v in fitted.extra.items() if not callable(v)},
    })
    result["_pred"], result["_y"], result["_conf"] = pred, y, conf
    return result


def rejection_scores(pred: np.ndarray, y: np.ndarray, rejected: np.ndarray, oos: int) -> dict[str, float]:
    """Accuracy with the `rejected` messages counted as out of scope, in-scope accuracy, and
    out-of-scope recall and precision."""
    ins = y != oos
    final = np.where(rejected, oos, pred)
    return {"accuracy": round(float((final == y).mean()), 4),
            "in_scope_accuracy": round(float((final == y)[ins].mean()), 4),
            "oos_recall": round(float(rejected[~ins].mean()), 4),
            "oos_precision": round(float((~ins)[rejected].mean()) if rejected.any() else 0.0, 4)}


def expected_calibration_error(correct: np.ndarray, conf: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total / max(1, len(conf)))


def plots(name: str, labels: list[str], y: np.ndarray, pred: np.ndarray, conf: np.ndarray) -> None:
    """Confusion matrix and reliability diagram of our model on one data set's test set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, pred, labels=list(range(len(labels))))
    fig, ax = plt.subplots(figsize=(14, 14))
    ax.imshow(np.log1p(cm), cmap="Blues")
    step = 1 if len(labels) <= 80 else 2
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=5)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=5)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{name}: confusion matrix (test, log scale)")
    fig.tight_layout()
    fig.savefig(RESULTS / f"intent_{name}_confusion.png", dpi=100)
    plt.close(fig)

    bins = np.linspace(0, 1, 11)
    correct = pred == y
    centers, accs, counts = [], [], []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            centers.append((lo + hi) / 2)
            accs.append(correct[mask].mean())
            counts.append(int(mask.sum()))
    ece = sum(c * abs(a - m) for c, a, m in zip(counts, accs, centers, strict=True)) / max(1, len(y))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.bar(centers, accs, width=0.09, alpha=0.7, label="accuracy per confidence bin")
    ax.set_xlabel("calibrated confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{name}: reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"intent_{name}_reliability.png", dpi=100)
    plt.close(fig)


def run_setting(setting: str, data: Path, systems: list[str], cfg: BenchTrainSettings,
                encoder: str, seeds: tuple[int, ...] = (1, 2, 3)) -> list[dict]:
    rows: list[dict] = []
    if setting.startswith("banking77"):
        full, test = read_csv(data / "banking77/train.csv"), read_csv(data / "banking77/test.csv")
        if setting == "banking77":
            runs = [(None, full, None, banking77_recipe(cfg))]
        else:  # no validation data in a few-shot setting: fixed epochs, no early stopping
            shot = cfg.model_copy(update={"val_fraction": 0.0, "epochs": cfg.few_shot_epochs})
            k = int(setting.removeprefix("banking77_").removesuffix("shot"))
            runs = [(s, few_shot(full, k, s), None, shot.model_copy(update={"seed": s}))
                    for s in seeds]
    else:
        full = []
        train_ex, val = read_csv(data / "clinc150/train.csv"), read_csv(data / "clinc150/val.csv")
        test = read_csv(data / "clinc150/test.csv")
        runs = [(None, train_ex, val, cfg)]
    for system in systems:
        per_seed = []
        for seed, train_ex, val_ex, run_cfg in runs:
            console.print(f"[bold]{setting}[/] {system}" + (f" seed {seed}" if seed else "")
                          + f": {len(train_ex)} training examples")
            with tempfile.TemporaryDirectory() as tmp:
                if system == "tfidf":
                    fitted = fit_tfidf(train_ex, val_ex, Path(tmp))
                else:
                    mode_cfg = run_cfg.model_copy(update={"mode": system})
                    unlabeled = [e.text for e in full] if setting.endswith("shot") else None
                    fitted = fit_ours(system, train_ex, val_ex, mode_cfg, Path(tmp), encoder, unlabeled)
                result = evaluate(fitted, test)
            pred, y, conf = result.pop("_pred"), result.pop("_y"), result.pop("_conf")
            if system == "finetune" and seed in (None, 1) and not setting.endswith("shot"):
                plots(setting, fitted.labels, y, pred, conf)
            console.print({k: v for k, v in result.items() if not k.startswith("_")})
            per_seed.append(result)
        row = summarise(setting, system, per_seed)
        row["encoder"] = "-" if system == "tfidf" else display_name(encoder)
        if system == "finetune":
            row["pooling"] = cfg.pooling
            row["tuned_layers"] = cfg.tuned_layers or "all"
            if cfg.contrastive_pairs:
                row["contrastive_pairs"] = cfg.contrastive_pairs
            if cfg.label_smoothing:
                row["label_smoothing"] = cfg.label_smoothing
            if cfg.rdrop:
                row["rdrop"] = cfg.rdrop
            if cfg.self_training and setting.endswith("shot"):
                row["self_training"] = cfg.self_training
            row["epochs"] = cfg.few_shot_epochs if setting.endswith("shot") else cfg.epochs
        rows.append(row)
    return rows


def banking77_recipe(cfg: BenchTrainSettings, mode: str = "finetune") -> BenchTrainSettings:
    """The full-BANKING77 setting: 10 % of the training set held out for early stopping and
    calibration (the data set has no validation split)."""
    return cfg.model_copy(update={"val_fraction": 0.1, "mode": mode})


def summarise(setting: str, system: str, results: list[dict]) -> dict:
    row: dict = {"setting": setting, "system": system, "runs": len(results)}
    for key in results[0]:
        values = [r[key] for r in results if isinstance(r.get(key), int | float)
                  and not isinstance(r.get(key), bool)]
        if len(values) != len(results):  # load averages, busy flags: per run
            row[key] = results[0][key] if len(results) == 1 else [r.get(key) for r in results]
            continue
        row[key] = round(statistics.fmean(values), 4)
        if len(values) > 1:
            row[f"{key}_std"] = round(statistics.stdev(values), 4)
    if len(results) > 1:
        row["per_seed"] = results
    return row


def show(rows: list[dict]) -> None:
    table = Table(title="Intent classification (test sets)")
    for col in ("setting", "system", "accuracy", "macro-F1", "in-scope acc", "OOS recall",
                "OOS prec.", "train s", "p50 ms", "p95 ms", "size MB"):
        table.add_column(col, justify="left" if col in ("setting", "system") else "right")

    def fmt(row: dict, key: str, percent: bool = True) -> str:
        if key not in row:
            return "–"
        value = f"{row[key] * 100:.2f}" if percent else f"{row[key]:g}"
        if f"{key}_std" in row:
            value += f" ± {row[f'{key}_std'] * 100 if percent else row[f'{key}_std']:.2f}"
        return value

    for row in rows:
        system = f"{row['system']} ({row.get('encoder', '-')})"
        if row.get("pooling"):
            system += f" [{row['pooling']} pool, {row.get('tuned_layers', 'all')} layers tuned"
            pairs, smoothing = row.get("contrastive_pairs"), row.get("label_smoothing")
            system += f", {pairs} contrastive pairs" if pairs else ""
            system += f", label smoothing {smoothing}" if smoothing else ""
            system += f", R-Drop {row['rdrop']}" if row.get("rdrop") else ""
            system += f", self-training {row['self_training']}/intent" if row.get("self_training") else ""
            system += f", {row.get('epochs', 5)} epochs]"
        table.add_row(row["setting"], system, fmt(row, "accuracy"), fmt(row, "macro_f1"),
                      fmt(row, "in_scope_accuracy"), fmt(row, "oos_recall"), fmt(row, "oos_precision"),
                      f"{row['train_seconds']:.0f}", f"{row['latency_ms_p50']:.1f}",
                      f"{row['latency_ms_p95']:.1f}", f"{row['size_mb']:.1f}")
    console.print(table)


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    """The fine-tuning recipe's options (shared with benchmarks/onnx_int8.py)."""
    parser.add_argument("--encoder", default=None, help="local encoder path (default: MiniLM-L6 wheel)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--few-shot-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--pooling", default="mean", choices=["mean", "cls"],
                        help="fine-tuning head on mean-pooled tokens (product default) or [CLS]")
    parser.add_argument("--tuned-layers", default=str(TrainSettings().tuned_layers),
                        help="top encoder layers trained ('all' or a number; default: the product's)")
    parser.add_argument("--label-smoothing", type=float, default=TrainSettings().label_smoothing)
    parser.add_argument("--rdrop", type=float, default=TrainSettings().rdrop,
                        help="R-Drop's KL weight (0: off)")
    parser.add_argument("--self-training", type=int, default=0,
                        help="few-shot settings: pseudo-labelled messages per intent from the rest of the "
                             "training set, read without its labels (0: off)")
    parser.add_argument("--contrastive-pairs", type=int, default=TrainSettings().contrastive_pairs,
                        help="SetFit-style contrastive pairs per message before the classifier (0: off)")


def recipe(args: argparse.Namespace) -> BenchTrainSettings:
    tuned = None if args.tuned_layers in ("all", "None") else int(args.tuned_layers)
    return BenchTrainSettings(epochs=args.epochs, few_shot_epochs=args.few_shot_epochs,
                              batch_size=args.batch_size, learning_rate=args.learning_rate,
                              max_length=args.max_length, patience=2, pooling=args.pooling,
                              tuned_layers=tuned, contrastive_pairs=args.contrastive_pairs,
                              label_smoothing=args.label_smoothing, rdrop=args.rdrop,
                              self_training=args.self_training)


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--only", default=",".join(SETTINGS))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--seeds", default="1,2,3", help="the few-shot settings' seeds")
    add_recipe_args(parser)
    args = parser.parse_args()
    offline()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    if not (args.datasets / "banking77").is_dir():
        raise SystemExit(f"{args.datasets}: public data sets not found (pass --datasets)")
    cfg = recipe(args)
    encoder = resolve(args.encoder)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "intent.json"
    previous = json.loads(out.read_text()) if out.exists() else {"rows": []}
    systems = [s for s in args.systems.split(",") if s]
    only = [s for s in args.only.split(",") if s]
    started = time.perf_counter()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    rows = [r for setting in only for r in run_setting(setting, args.datasets, systems, cfg,
                                                       encoder, seeds)]
    def key(r: dict) -> tuple:
        return (r["setting"], r["system"], r.get("encoder"), r.get("pooling"), r.get("tuned_layers", "all"),
                r.get("contrastive_pairs", 0), r.get("label_smoothing", 0.0), r.get("rdrop", 0.0),
                r.get("epochs", 20 if r["setting"].endswith("shot") else 5), r.get("self_training", 0))

    kept = [r for r in previous["rows"] if key(r) not in {key(r2) for r2 in rows}]
    merged = sorted(kept + rows, key=lambda r: (SETTINGS.index(r["setting"]), r["system"]))
    show(merged)
    out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "recipe": cfg.model_dump(),
        "last_run_seconds": round(time.perf_counter() - started, 1),
        "rows": merged,
    }, indent=2))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
