"""How long `supportbot train` takes on the demo's data, per recipe, and what it gives on the
held-out 15 %: the product's recipe against the previous one (every layer tuned) in the same run.

Each row trains the intent model from scratch on training_data/ (the same split, seed 13) with 2
torch threads, after waiting for a quiet machine, and records the load average before and after.
The multilingual head and the FAQ index are not part of it (`make run` builds them too; their times
are printed by `supportbot train` and `supportbot index`).

    .venv/bin/python benchmarks/demo_training.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.common import RESULTS, arg_parser, busy, load_average, wait_until_quiet  # noqa: E402
from bot.assets import training_examples  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.encoders.paths import offline  # noqa: E402
from bot.nlu.train import train  # noqa: E402

# name: recipe changes against the product's defaults
RECIPES: dict[str, dict[str, Any]] = {
    "default (top 2 layers, 10 epochs)": {},
    "top 2 layers, 6 epochs": {"epochs": 6},
    "top 1 layer": {"tuned_layers": 1},
    "top 3 layers": {"tuned_layers": 3},
    "every layer (previous default)": {"tuned_layers": None},
}


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--only", action="append", choices=sorted(RECIPES))
    args = parser.parse_args()
    offline()
    import torch

    torch.set_num_threads(2)
    settings = Settings()
    examples = training_examples(settings)
    rows: dict[str, dict[str, Any]] = {}
    for name in args.only or list(RECIPES):
        cfg = type(settings.train).model_validate({**settings.train.model_dump(), **RECIPES[name]})
        before = wait_until_quiet()
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            manifest = train(examples, cfg, Path(tmp))
            seconds = time.perf_counter() - started
        after = load_average()
        rows[name] = {
            "recipe": RECIPES[name], "seconds": round(seconds, 1), "epochs_run": manifest.epochs_run,
            "val_accuracy": round(manifest.val_accuracy, 4), "val_macro_f1": round(manifest.val_macro_f1, 4),
            "n_train": manifest.n_train, "n_val": manifest.n_val, "frozen_layers": manifest.frozen_layers,
            "load_before": before, "load_after": after, "busy": busy(before, after, own=2.5)}
        Console().print(name, rows[name])
    table = Table(title="Demo intent model: training time and held-out accuracy (2 threads)")
    for col in ("recipe", "seconds", "epochs", "val accuracy", "val macro-F1", "load before → after"):
        table.add_column(col)
    for name, row in rows.items():
        table.add_row(name, f"{row['seconds']:.0f}", str(row["epochs_run"]),
                      f"{row['val_accuracy'] * 100:.1f}", f"{row['val_macro_f1'] * 100:.1f}",
                      f"{row['load_before'][0]} → {row['load_after'][0]}")
    Console(width=150).print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "demo_training.json").write_text(json.dumps({
        "rows": rows, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "torch": torch.__version__}}, indent=2))


if __name__ == "__main__":
    main()
