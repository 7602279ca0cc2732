"""Training-step speed of the book's nets: fp32 vs bf16 autocast vs channels_last.

Times forward + loss + backward + SGD step on random data (no loader), the part
``precision=`` and ``channels_last=`` of ``train_ch6`` change. Used to choose their
defaults per device; run it on the machine in question:

    .venv/bin/python benchmarks/steps.py [--nets lenet alexnet resnet18] [--compile]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from torch import nn

from d2lcnn.settings import build_model

# (net, batch size, resize): the benchmark cases' settings
SETTINGS = {"lenet": (256, 28), "alexnet": (128, 96), "resnet18": (256, 96)}
CONFIGS = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]


def time_steps(name: str, precision: str, channels_last: bool, *, steps: int,
               warmup: int, device: torch.device, compile_net: bool = False,
               repeats: int = 3) -> float:
    """Median images/s of ``steps`` training steps, after ``warmup`` untimed ones.

    Example:
        >>> time_steps("lenet", "fp32", False, steps=1, warmup=1,
        ...            device=torch.device("cpu"), repeats=1) > 0
        True
    """
    batch_size, resize = SETTINGS[name]
    torch.manual_seed(0)
    net = build_model(name, "full", resize).to(device)
    X = torch.rand(batch_size, 1, resize, resize, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    model = torch.compile(net) if compile_net else net
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    loss = nn.CrossEntropyLoss()
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16)
                if precision == "bf16" else contextlib.nullcontext())

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            batch_loss = loss(model(X), y)
        batch_loss.backward()
        optimizer.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    net.train()
    for _ in range(warmup):
        step()
    sync()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=list(SETTINGS),
                        choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile of each configuration")
    parser.add_argument("--device",
                        default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, "
          f"{torch.get_num_threads()} threads")
    print("| net | batch | px | precision | channels_last | compile | images/s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.nets:
        for compile_net in [False, True] if args.compile else [False]:
            for precision, channels_last in CONFIGS:
                start = time.perf_counter()
                rate = time_steps(name, precision, channels_last, steps=args.steps,
                                  warmup=args.warmup, device=device,
                                  compile_net=compile_net, repeats=args.repeats)
                batch_size, resize = SETTINGS[name]
                took = time.perf_counter() - start
                print(f"| {name} | {batch_size} | {resize} | {precision} | "
                      f"{channels_last} | {compile_net} | {rate:,.0f} |  "
                      f"<!-- {took:.0f} s incl. warm-up -->", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
