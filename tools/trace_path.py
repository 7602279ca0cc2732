"""Which d2lcnn files run for the book's LeNet path, traced with ``sys.setprofile``.

The path: ``import d2lcnn as d2l``; ``d2l.load_data_fashion_mnist(256)``; the book's
sigmoid LeNet trained for one epoch by ``d2l.train_ch6(net, train_iter, test_iter, 1,
0.9, d2l.try_gpu())``. Every Python function call is recorded (module and class bodies
run at import are not functions); the files of the d2lcnn package whose functions ran
are printed with their call counts.

Usage: python tools/trace_path.py [--source auto|mini] [--subset N]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import inspect
import io
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "d2lcnn"


def trace(source: str = "auto", subset: int | None = None) -> collections.Counter:
    """Calls per d2lcnn file (relative to the package) while the path runs."""
    calls: collections.Counter = collections.Counter()

    def profile(frame, event, arg):
        # functions only: a module's or class's body runs once, at import (no CO_OPTIMIZED)
        if event == "call" and frame.f_code.co_flags & inspect.CO_OPTIMIZED:
            path = Path(frame.f_code.co_filename)
            if PACKAGE in path.parents:
                calls[str(path.relative_to(PACKAGE))] += 1

    sys.setprofile(profile)
    try:
        import torch
        from torch import nn

        import d2lcnn as d2l

        with contextlib.redirect_stdout(io.StringIO()):
            train_iter, test_iter = d2l.load_data_fashion_mnist(256, source=source,
                                                                subset=subset)
            net = nn.Sequential(  # the book's LeNet, as d2l 0.17 writes it
                nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
                nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
                nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
            d2l.train_ch6(net, train_iter, test_iter, 1, 0.9, torch.device("cpu"))
    finally:
        sys.setprofile(None)
    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="auto", help="data source (default: auto)")
    parser.add_argument("--subset", type=int, help="train on this many images")
    args = parser.parse_args()
    calls = trace(args.source, args.subset)
    for name, count in sorted(calls.items()):
        print(f"{count:8d}  d2lcnn/{name}")
    print(f"{len(calls)} d2lcnn files ran")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
