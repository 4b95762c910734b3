"""The intent model through ONNX Runtime with int8 weights against torch, on BANKING77, in one run.

Fine-tunes our model on BANKING77 exactly as benchmarks/intent.py's "finetune" system does (same
recipe, same 10 % hold-out), exports it with `bot.encoders.onnx` (the same code as
`SUPPORTBOT_NLU_RUNTIME=onnx-int8`), and evaluates both runtimes on the test set:

- accuracy and macro-F1, the change in points (goal: int8 loses at most 0.5 point), and how often
  the two agree on the top intent;
- latency of one message at a time (`IntentModel.parse`, p50/p95) and ms per message in batches
  of 32 (shuffled test messages, not sorted by length: what micro-batched traffic looks like);
- the ratio onnx/torch of each.

Both runtimes use the same number of threads. They take turns in blocks (ABBA) so that load from
other processes falls on both alike; not message by message, because one runtime's threads right
after a call then slow the other one down. The load average at start and end is recorded. Prints
a table and writes benchmarks/results/onnx_int8.json. The trained model is kept in
benchmarks/work/onnx_int8/.

    .venv/bin/python benchmarks/onnx_int8.py                  # train (~12 min on 2 cores), compare
    .venv/bin/python benchmarks/onnx_int8.py --reuse-model    # compare again on the cached model
    .venv/bin/python benchmarks/onnx_int8.py --max-train 1540 --max-test 500   # quick and rough
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import time
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, arg_parser, quietly
from intent import (
    add_recipe_args,
    banking77_recipe,
    dir_size_mb,
    expected_calibration_error,
    read_csv,
    recipe,
    train_ours,
)
from rich.console import Console
from rich.table import Table
from sklearn.metrics import accuracy_score, f1_score

from bot.encoders.paths import display_name, offline, resolve
from bot.nlu import calibration
from bot.nlu.model import IntentModel
from bot.stats import percentile

GOAL_POINTS = 0.5
RUNTIMES = ("torch", "onnx-int8")
BLOCKS = 6
console = Console(width=150)


def cached_model(args: argparse.Namespace, cfg: dict, workdir: Path) -> Path | None:
    """The model folder of an earlier run with the same recipe and data, if asked to reuse it."""
    folder, stamp = workdir / "finetune", workdir / "recipe.json"
    if not args.reuse_model or not (folder / "manifest.json").exists():
        return None
    if not stamp.exists() or json.loads(stamp.read_text()) != cfg:
        console.print(f"[yellow]{folder} was trained with another recipe: training again[/]")
        return None
    return folder


def turns(n: int, names: list[str], blocks: int = BLOCKS) -> list[tuple[str, range]]:
    """Blocks of item indices, each run by every runtime in turn, who goes first alternating
    (ABBA): load from other processes falls on both alike, and one runtime's idle threads never
    sit between two calls of the other."""
    bounds = np.linspace(0, n, blocks + 1).astype(int)
    order = []
    for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        order += [(name, range(lo, hi)) for name in (names if b % 2 == 0 else names[::-1])]
    return order


def timed_batches(models: dict[str, IntentModel], texts: list[str], size: int
                  ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Logits of every text and ms per message, in batches of `size`."""
    logits = {name: np.zeros((len(texts), len(m.labels)), dtype=np.float32) for name, m in models.items()}
    seconds = dict.fromkeys(models, 0.0)
    starts = list(range(0, len(texts), size))
    for name, block in turns(len(starts), list(models)):
        for start in (starts[i] for i in block):
            batch = texts[start : start + size]
            t0 = time.perf_counter()
            logits[name][start : start + len(batch)] = models[name].logits(batch)
            seconds[name] += time.perf_counter() - t0
    return logits, {name: s * 1000 / max(1, len(texts)) for name, s in seconds.items()}


def timed_singles(models: dict[str, IntentModel], texts: list[str]) -> dict[str, list[float]]:
    """`parse` latency of each message alone, in ms."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for name, block in turns(len(texts), list(models)):
        for text in texts[:3]:  # warm-up: first calls allocate, the other runtime's threads settle
            models[name].parse(text)
        for i in block:
            t0 = time.perf_counter()
            models[name].parse(texts[i])
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def one_at_a_time(model: IntentModel, texts: list[str]) -> np.ndarray:
    """Logits of each text run alone. int8 activations are scaled per batch (dynamic quantization),
    so a message's numbers move a little with the messages it is batched with; this is the
    number a quiet server, which sees one message at a time, gets."""
    return np.concatenate([model.logits([text]) for text in texts])


def scores(model: IntentModel, logits: np.ndarray, truth: list[str]) -> dict:
    index = {label: i for i, label in enumerate(model.labels)}
    y = np.array([index.get(t, -1) for t in truth])
    probs = calibration.softmax(logits, model.manifest.temperature)
    pred = probs.argmax(1)
    return {"accuracy": round(float(accuracy_score(y, pred)), 4),
            "macro_f1": round(float(f1_score(y, pred, average="macro", zero_division=0)), 4),
            "ece": round(expected_calibration_error(pred == y, probs.max(1)), 4)}


def show(result: dict) -> None:
    table = Table(title=f"Intent model on BANKING77 test ({result['n_test']} messages): torch vs ONNX int8, "
                        f"{result['threads']} threads")
    for col in ("runtime", "accuracy", "macro-F1", "ECE", "p50 ms", "p95 ms", "batch-32 ms/msg", "MB"):
        table.add_column(col, justify="left" if col == "runtime" else "right")
    for name in RUNTIMES:
        r = result[name]
        table.add_row(name, f"{r['accuracy'] * 100:.2f}", f"{r['macro_f1'] * 100:.2f}", f"{r['ece']:.4f}",
                      f"{r['latency_ms_p50']:.2f}", f"{r['latency_ms_p95']:.2f}",
                      f"{r['batched_ms_per_message']:.2f}", f"{r['size_mb']:.1f}")
    ratio = result["ratio_onnx_over_torch"]
    table.add_row("onnx / torch", f"{result['delta_accuracy_points']:+.2f} pt",
                  f"{result['delta_macro_f1_points']:+.2f} pt", "", f"{ratio['latency_p50']:.2f}×",
                  f"{ratio['latency_p95']:.2f}×", f"{ratio['batched']:.2f}×", f"{ratio['size']:.2f}×")
    console.print(table)
    goal = "met" if result["goal_met"] else "NOT met"
    o = result["onnx-int8"]
    console.print(f"accuracy change {result['delta_accuracy_points']:+.2f} points in batches of "
                  f"{result['batch']}, "
                  f"{result['delta_accuracy_points_one_at_a_time']:+.2f} one message at a time (goal: a loss "
                  f"of at most {GOAL_POINTS} point: {goal}); same top intent as torch on "
                  f"{result['agreement'] * 100:.1f} % of messages, as itself batched and alone on "
                  f"{o['same_intent_alone_and_batched'] * 100:.1f} %; load average "
                  f"{result['machine']['load_start']} → {result['machine']['load_end']}")


def main() -> None:
    parser = arg_parser(__doc__)
    add_recipe_args(parser)
    parser.add_argument("--workdir", type=Path, default=ROOT / "work" / "onnx_int8",
                        help="where the trained model is kept between runs")
    parser.add_argument("--reuse-model", action="store_true",
                        help="skip training when the work dir holds a model of the same recipe")
    parser.add_argument("--max-train", type=int, default=None,
                        help="train on a stratified subset of this many messages (rougher, faster)")
    parser.add_argument("--max-test", type=int, default=None, help="evaluate on this many test messages")
    parser.add_argument("--latency-messages", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads and ONNX Runtime intra-op threads alike")
    args = parser.parse_args()
    offline()
    import onnxruntime
    import torch

    from bot.encoders.onnx import export_int8

    torch.set_num_threads(args.threads)
    if not (args.datasets / "banking77").is_dir():
        raise SystemExit(f"{args.datasets}: public data sets not found (pass --datasets)")
    load_start = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    encoder = resolve(args.encoder)
    cfg = banking77_recipe(recipe(args)).model_copy(update={"max_examples": args.max_train})
    stamp = {"recipe": cfg.model_dump(), "encoder": display_name(encoder)}
    full = read_csv(args.datasets / "banking77/train.csv")
    test = read_csv(args.datasets / "banking77/test.csv")
    random.Random(0).shuffle(test)
    test = test[: args.max_test] if args.max_test else test

    folder = cached_model(args, stamp, args.workdir)
    if folder is None:
        console.print(f"[bold]banking77[/] finetune: training on {len(full)} messages "
                      f"({'all' if not args.max_train else f'at most {args.max_train}'})")
        shutil.rmtree(args.workdir / "finetune", ignore_errors=True)
        args.workdir.mkdir(parents=True, exist_ok=True)
        folder, _ = train_ours("finetune", full, None, cfg, args.workdir, encoder)
        (args.workdir / "recipe.json").write_text(json.dumps(stamp, indent=2))
    else:
        console.print(f"reusing the model in {folder}")
    manifest = IntentModel.load(folder).manifest
    t0 = time.perf_counter()
    int8_file = export_int8(folder, manifest)
    export_seconds = time.perf_counter() - t0

    models = {"torch": IntentModel.load(folder, runtime="torch"),
              "onnx-int8": IntentModel.load(folder, runtime="onnx-int8", threads=args.threads)}
    texts, truth = [e.text for e in test], [e.intent for e in test]
    console.print(f"evaluating both runtimes on {len(texts)} test messages")
    logits, batched = timed_batches(models, texts, args.batch)
    sample = random.Random(1).sample(texts, min(args.latency_messages, len(texts)))
    singles, load = quietly(lambda: timed_singles(models, sample))
    sizes = {"torch": dir_size_mb(folder / "model"), "onnx-int8": dir_size_mb(int8_file)}
    alone = one_at_a_time(models["onnx-int8"], texts)

    result: dict = {"setting": "banking77", "n_test": len(texts), "threads": args.threads,
                    "batch": args.batch, "latency_messages": len(sample), "latency_load": load}
    for name in RUNTIMES:
        result[name] = {**scores(models[name], logits[name], truth),
                        "latency_ms_p50": round(percentile(singles[name], 50), 2),
                        "latency_ms_p95": round(percentile(singles[name], 95), 2),
                        "batched_ms_per_message": round(batched[name], 2),
                        "size_mb": sizes[name]}
    t, o = result["torch"], result["onnx-int8"]
    result["delta_accuracy_points"] = round((o["accuracy"] - t["accuracy"]) * 100, 2)
    result["delta_macro_f1_points"] = round((o["macro_f1"] - t["macro_f1"]) * 100, 2)
    top = {name: logits[name].argmax(1) for name in RUNTIMES}
    result["agreement"] = round(float((top["torch"] == top["onnx-int8"]).mean()), 4)
    o["accuracy_one_at_a_time"] = scores(models["onnx-int8"], alone, truth)["accuracy"]
    o["same_intent_alone_and_batched"] = round(float((alone.argmax(1) == top["onnx-int8"]).mean()), 4)
    result["delta_accuracy_points_one_at_a_time"] = round(
        (o["accuracy_one_at_a_time"] - t["accuracy"]) * 100, 2)
    result["max_abs_logit_diff"] = round(float(np.abs(logits["torch"] - logits["onnx-int8"]).max()), 3)
    result["goal_met"] = min(result["delta_accuracy_points"],
                             result["delta_accuracy_points_one_at_a_time"]) >= -GOAL_POINTS
    result["ratio_onnx_over_torch"] = {
        "latency_p50": round(o["latency_ms_p50"] / t["latency_ms_p50"], 3),
        "latency_p95": round(o["latency_ms_p95"] / t["latency_ms_p95"], 3),
        "batched": round(o["batched_ms_per_message"] / t["batched_ms_per_message"], 3),
        "size": round(o["size_mb"] / t["size_mb"], 3)}
    result["model"] = {"encoder": display_name(encoder), "pooling": manifest.pooling,
                       "n_train": manifest.n_train, "n_val": manifest.n_val,
                       "epochs_run": manifest.epochs_run, "val_accuracy": manifest.val_accuracy,
                       "train_seconds": manifest.train_seconds, "recipe": cfg.model_dump(),
                       "export": "torch.onnx.export(dynamo=False), opset 17; onnxruntime quantize_dynamic, "
                                 "QInt8 weights per channel",
                       "export_seconds": round(export_seconds, 1)}
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                         "load_start": load_start, "load_end": [round(x, 2) for x in os.getloadavg()]}
    result["run_seconds"] = round(time.perf_counter() - started, 1)
    show(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "onnx_int8.json"
    out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
