"""Accuracy against training wall time for one chapter net and one recipe (issue 17).

Trains a registered model with ``train_ch6(recipe=...)`` and appends the run — the
settings, the CPU model, the data split, and per epoch the cumulative training time
and test accuracy — to ``benchmarks/recipes/<model>.json``, so each chapter's chosen
cpu recipe is justified by committed runs. Nothing else runs meanwhile, or the times
mean nothing: check ``uptime`` first.

    .venv/bin/python benchmarks/recipes.py alexnet --resize 72 --batch-size 128 \\
        --lr 0.03 --epochs 2 --momentum 0.9 --nesterov --weight-decay 5e-4 \\
        --schedule onecycle --label-smoothing 0.1 --init kaiming --arg resolution=72
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import d2lcnn as d2l  # noqa: E402
from d2lcnn.utils import atomic_write, device_name  # noqa: E402

OUT = Path(__file__).resolve().parent / "recipes"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--resize", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--test-subset", type=int, default=None)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--nesterov", action="store_true")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--schedule", default="constant")
    parser.add_argument("--warmup", type=float, default=0.25)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--init", default="xavier", choices=["xavier", "kaiming"])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--arg", action="append", default=[],
                        help="builder keyword, e.g. resolution=72 (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", default="auto", help="data source (default auto)")
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def builder_kwargs(pairs: list[str]) -> dict:
    """``["resolution=72", "ratio=4"]`` as keyword arguments.

    Example:
        >>> builder_kwargs(["resolution=72", "width_mult=0.5"])
        {'resolution': 72, 'width_mult': 0.5}
    """
    kwargs = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        kwargs[key] = ast.literal_eval(value)
    return kwargs


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    recipe = d2l.Recipe(momentum=args.momentum, nesterov=args.nesterov,
                        weight_decay=args.weight_decay, schedule=args.schedule,
                        warmup=args.warmup, label_smoothing=args.label_smoothing,
                        init=args.init)
    net = d2l.get_model(args.model, **builder_kwargs(args.arg))
    train_iter, test_iter = d2l.load_data_fashion_mnist(
        args.batch_size, args.resize, subset=args.subset, test_subset=args.test_subset,
        source=args.source, seed=args.seed)
    start = time.perf_counter()
    history = d2l.train_ch6(net, train_iter, test_iter, args.epochs, args.lr,
                            d2l.try_gpu(), recipe=recipe, precision=args.precision,
                            animator=False)
    wall = time.perf_counter() - start
    if history.settings.get("data_source") == "mini":
        raise SystemExit("trained on the bundled mini set: not a recipe result; get the "
                         "full set with python -m d2lcnn.data download")
    elapsed = [sum(history.wall_time[:i + 1]) for i in range(len(history))]
    return {"args": {k: (str(v) if isinstance(v, Path) else v)
                     for k, v in vars(args).items()},
            "status": history.status, "test_acc": history.test_acc,
            "train_acc": history.train_acc, "epoch_end_seconds": elapsed,
            "total_seconds": wall, "settings": history.settings,
            "device": history.device, "device_name": device_name(history.device),
            "threads": torch.get_num_threads(),
            "load_before": os.getloadavg()[0], "torch": torch.__version__}


def main(argv=None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f} before the run: other work shares "
              "the CPU and the times will be too long", flush=True)
    result = run(args)
    path = args.out or OUT / f"{args.model}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(path.read_text()) if path.exists() else []
    runs.append(result)
    atomic_write(path, (json.dumps(runs, indent=1) + "\n").encode())
    best = max(result["test_acc"]) if result["test_acc"] else float("nan")
    print(f"{args.model}: test acc {best:.3f} after {result['total_seconds']:.0f} s "
          f"({result['device_name']}) -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
