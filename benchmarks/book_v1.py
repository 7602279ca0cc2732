"""The d2l 1.0 path against train_ch6: is ``Trainer.fit`` as fast on the same net and data?

LeNet (d2l's: sigmoid, average pooling) on the bundled mini set (6,000 train + 1,000
test images, 28 px), batch 256, lr 0.9, 2 epochs, fp32, on this machine's default
device. After one untimed warm-up run of each, the two paths alternate, each timed
from the call to its return (training and the per-epoch evaluation; data loading and
model construction are outside), with plotting off on both sides. Prints the medians
and the ratio Trainer / train_ch6.

    .venv/bin/python benchmarks/book_v1.py [--reps 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import d2lcnn as d2l
from d2lcnn.settings import build_model
from d2lcnn.utils import cpu_model


def time_train_ch6(train_iter, test_iter, epochs: int, lr: float, device) -> tuple:
    net = build_model("lenet", "full")  # the book's LeNet, as chapter 1 builds it
    start, cpu_start = time.perf_counter(), time.process_time()
    history = d2l.train_ch6(net, train_iter, test_iter, epochs, lr, device,
                            animator=False, progress=False, verbose=False)
    return time.perf_counter() - start, time.process_time() - cpu_start, history


def time_trainer(data, epochs: int, lr: float, device) -> tuple:
    model = d2l.LeNet(lr=lr)
    model.board.display = False
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    num_gpus = 1 if device.type != "cpu" else 0
    trainer = d2l.Trainer(max_epochs=epochs, num_gpus=num_gpus, verbose=False)
    start, cpu_start = time.perf_counter(), time.process_time()
    history = trainer.fit(model, data)
    return time.perf_counter() - start, time.process_time() - cpu_start, history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.9)
    args = parser.parse_args(argv)
    device = d2l.try_gpu()
    train_iter, test_iter = d2l.load_data_fashion_mnist(args.batch_size, source="mini")
    data = d2l.FashionMNIST(batch_size=args.batch_size, source="mini", verbose=False)
    # untimed warm-up of both: the first call in a process pays one-off costs
    time_train_ch6(train_iter, test_iter, 1, args.lr, device)
    time_trainer(data, 1, args.lr, device)
    times: dict[str, list[float]] = {"train_ch6": [], "Trainer.fit": []}
    cpu_times: dict[str, list[float]] = {"train_ch6": [], "Trainer.fit": []}
    for rep in range(args.reps):
        for name in (("train_ch6", "Trainer.fit") if rep % 2 == 0
                     else ("Trainer.fit", "train_ch6")):  # alternate the order
            if name == "train_ch6":
                seconds, cpu_seconds, history = time_train_ch6(
                    train_iter, test_iter, args.epochs, args.lr, device)
            else:
                seconds, cpu_seconds, history = time_trainer(data, args.epochs,
                                                             args.lr, device)
            times[name].append(seconds)
            cpu_times[name].append(cpu_seconds)
            print(f"rep {rep + 1} {name:>11}: {seconds:6.2f} s wall, {cpu_seconds:6.2f} "
                  f"s CPU, test acc {history.test_acc[-1]:.3f}", flush=True)
    cpu = cpu_model()
    print(f"\nLeNet, mini set ({train_iter.num_examples:,} train), 28 px, batch "
          f"{args.batch_size}, {args.epochs} epochs, {device}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} "
          f"cores, {cpu}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:>11}: median {median:.2f} s wall (min {min(times[name]):.2f}), "
              f"{statistics.median(cpu_times[name]):.2f} s CPU, of {args.reps}; "
              f"{args.epochs * train_iter.num_examples / median:,.0f} examples/s")
    # On a shared machine wall time also counts other jobs; CPU time mostly does not.
    for label, table, pick in (("median wall", times, statistics.median),
                               ("min wall", times, min),
                               ("median CPU", cpu_times, statistics.median)):
        ratio = pick(table["Trainer.fit"]) / pick(table["train_ch6"])
        print(f"ratio Trainer.fit / train_ch6, {label}: {ratio:.3f}")
    print("(1.0 = as fast; below 1 = faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
