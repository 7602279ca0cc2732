"""The chapters' seeds records drawn as curves: validation accuracy against training time.

``benchmarks/recipes.py --record`` keeps, for every seed of a chapter's headline run, the
validation accuracy after each epoch and the training time at that point. This draws them,
one panel per chapter, one line per seed, with the chapter's test-accuracy target for
reference, so that a reader sees how far each run still climbed at its end and how much the
seeds differ along the way (not only at the end).

    .venv/bin/python benchmarks/seed_curves.py                  # -> docs/seed_curves.png
    .venv/bin/python benchmarks/seed_curves.py --out /tmp/c.png vgg11 nin
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, never a window
from matplotlib.figure import Figure  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's tools/
from tools.results_table import CHAPTERS  # noqa: E402

RESULTS = ROOT / "notebooks" / "results"


def load_records(names, directory=RESULTS) -> dict[str, dict]:
    """The seeds records of ``names`` that exist, in the order given.

    Example:
        >>> load_records(["no_such_net"])
        {}
    """
    records = {}
    for name in names:
        path = Path(directory) / f"{name}.json"
        record = json.loads(path.read_text()) if path.exists() else {}
        if record.get("seeds"):
            records[name] = record
    return records


def plot_seed_curves(records: dict[str, dict], targets: dict[str, float] | None = None,
                     columns: int = 3) -> Figure:
    """One panel per record: each seed's validation accuracy after every epoch against
    its training minutes, a dashed line at the chapter's test target.

    Example:
        >>> seed = {"seed": 0, "val_acc_per_epoch": [0.8, 0.9], "epoch_end_seconds": [60, 120]}
        >>> fig = plot_seed_curves({"lenet": {"seeds": [seed], "epochs": 2}})
        >>> fig.axes[0].lines[0].get_xydata().tolist()
        [[1.0, 0.8], [2.0, 0.9]]
    """
    if not records:
        raise ValueError("no seeds records to draw: run benchmarks/recipes.py <net> ... "
                         "--final --record first")
    targets = targets or {}
    rows = math.ceil(len(records) / columns)
    fig = Figure(figsize=(3.4 * columns, 2.6 * rows), layout="constrained")
    for i, (name, record) in enumerate(records.items()):
        ax = fig.add_subplot(rows, columns, i + 1)
        for seed in record["seeds"]:
            minutes = [s / 60 for s in seed["epoch_end_seconds"]]
            ax.plot(minutes, seed["val_acc_per_epoch"], marker="o", markersize=3,
                    label=f"seed {seed['seed']}")
        if name in targets:
            ax.axhline(targets[name], color="grey", linestyle="--", linewidth=1,
                       label=f"test target {targets[name]:g}")
        ax.set(title=f"{name}: {record.get('epochs', '?')} epochs, "
                     f"{record.get('resolution', '?')} px",
               xlabel="training minutes", ylabel="validation acc")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle("Each seed's validation accuracy after every epoch "
                 f"({next(iter(records.values())).get('cpu_model', 'CPU not recorded')})",
                 fontsize=10)
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(CHAPTERS),
                        help="records to draw (default: every chapter's)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "seed_curves.png")
    args = parser.parse_args(argv)
    records = load_records(args.names)
    missing = [name for name in args.names if name not in records]
    if not records:
        print(f"error: no seeds record among {', '.join(args.names)} in {RESULTS}: run "
              "benchmarks/recipes.py <net> ... --final --record first", file=sys.stderr)
        return 2
    targets = {name: target for name, (*_, target) in CHAPTERS.items()}
    plot_seed_curves(records, targets).savefig(args.out, dpi=110)
    print(f"{len(records)} records drawn -> {args.out}"
          + (f" (no seeds record: {', '.join(missing)})" if missing else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
