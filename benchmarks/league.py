"""A league: every chapter's net trained on one shared budget, several seeds each.

A study beside the package, not part of it: it trains the nine chapter nets on the same
training images, test images, resolution, epochs and recipe, ``seeds`` times each, and
appends one row per (net, seed) to ``results/league-<budget>.json``: test and train
accuracy, wall time, examples/s, training FLOPs, parameters, peak memory, the device and
CPU, the data split. Each run is its own process (so its peak memory is its own, and a
crash loses one run); an interrupted league continues where it stopped, since finished
rows are kept and skipped. The same budget for every net makes the comparison one of
architectures, not of budgets; the per-chapter runs (each chapter's own settings) are a
different thing.

Example:
    python benchmarks/league.py --budget cpu            # about 30 minutes on 2 cores
    python benchmarks/league.py --budget cpu --seeds 1  # a quicker look
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from d2lcnn.settings import build_model
from d2lcnn.summary import count_flops
from d2lcnn.utils import atomic_write, cpu_model, device_name, try_gpu

# The nine chapters' main nets, in chapter order.
NETS = ("lenet", "alexnet", "vgg11", "nin", "googlenet", "lenet_bn", "resnet18",
        "densenet", "mobilenet_v1")

# One recipe for all: what the chapters' cpu recipes share, with the book's Xavier init
# (GoogLeNet, without batch norm, diverged under Kaiming's larger weights).
RECIPE = dict(momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="onecycle",
              warmup=0.25, label_smoothing=0.1, init="xavier")
BUDGETS = {
    # 72 px is about the smallest size AlexNet's features accept (67); 15,000 training
    # images (class-balanced, the same for every run) once, 5,000 test images.
    "cpu": dict(resize=72, epochs=1, batch_size=64, lr=0.05, subset=15_000,
                test_subset=5_000, seeds=3, recipe=RECIPE, source="auto"),
    # a GPU: the book's 10 epochs on all 60,000 images at 96 px (the book's size for the
    # later chapters; AlexNet, VGG and NiN, shown at 224 in the book, rebuilt for it)
    "full": dict(resize=96, epochs=10, batch_size=128, lr=0.05, subset=None,
                 test_subset=None, seeds=3, recipe=RECIPE, source="auto"),
    # tests: seconds on the bundled mini set
    "smoke": dict(resize=72, epochs=1, batch_size=32, lr=0.05, subset=64,
                  test_subset=64, seeds=1, recipe=RECIPE, source="mini"),
}


def fit_classifier(net: nn.Module, size: int, in_channels: int = 1) -> nn.Module:
    """Resize the first ``nn.Linear`` of ``net`` to what ``size``-pixel images feed it.

    For nets whose dense head was written for one image size (LeNet's ``16 * 5 * 5``);
    a net that already fits is returned unchanged.

    Example:
        >>> from d2lcnn import get_model
        >>> fit_classifier(get_model("lenet"), 72).classifier[0]
        Linear(in_features=4096, out_features=120, bias=True)
    """
    linears = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        return net
    name, first = linears[0]
    seen = {}

    def grab(module, args):
        seen["features"] = args[0].flatten(1).shape[1]
        raise _Probed

    handle = first.register_forward_pre_hook(grab)
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(2, in_channels, size, size))
    except _Probed:
        pass
    finally:
        handle.remove()
        net.train()
    if seen["features"] != first.in_features:
        parent, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent), attr,
                nn.Linear(seen["features"], first.out_features, first.bias is not None))
    return net


class _Probed(Exception):
    """Stops the probing forward pass at the first dense layer."""


def build(name: str, size: int) -> nn.Module:
    """Chapter net ``name`` for ``size``-pixel images (classifier rebuilt where needed).

    Example:
        >>> net = build("lenet_bn", 72)
        >>> net(torch.zeros(2, 1, 72, 72)).shape
        torch.Size([2, 10])
    """
    # the chapter's own net (VGG's narrow ratio 4); all its profiles build the same one
    return fit_classifier(build_model(name, "cpu", size), size)


def training_flops(net: nn.Module, size: int) -> int:
    """FLOPs of one training example at ``size`` px, forward and backward (multiply-add
    = 2), as counted: backward computes the weights' gradients (one forward's FLOPs)
    and the activations' gradients (one more, less the first layer's: the images need
    none); a grouped conv's weights' gradient is counted per group (PyTorch 2.14 alone
    counts it dense: MobileNet v1 at 72 px 1.52 G instead of 0.43 G).

    Example:
        >>> # forward 2*4*3 + the weights' gradient 2*4*3 (the images need none)
        >>> training_flops(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), 2)
        48
    """
    return count_flops(net, (1, 1, size, size), backward=True)


def train_one(name: str, seed: int, budget: str, *, root=None) -> dict:
    """Train ``name`` once on ``budget`` with ``seed``; the league's row for it.

    Example:
        >>> row = train_one("lenet", 0, "smoke")  # doctest: +SKIP
    """
    from d2lcnn import __version__
    from d2lcnn.data import load_data_fashion_mnist
    from d2lcnn.train import train_ch6

    spec = BUDGETS[budget]
    torch.manual_seed(seed)
    net = build(name, spec["resize"])
    flops = training_flops(net, spec["resize"])
    train_iter, test_iter = load_data_fashion_mnist(
        spec["batch_size"], spec["resize"], root=root, subset=spec["subset"],
        test_subset=spec["test_subset"], source=spec["source"], seed=seed)
    device = try_gpu()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    history = train_ch6(net, train_iter, test_iter, spec["epochs"], spec["lr"], device,
                        recipe=spec["recipe"], precision="auto", animator=False,
                        verbose=False)
    wall = time.perf_counter() - start
    examples = train_iter.num_examples * len(history)
    return {
        "net": name, "seed": seed, "budget": budget, "status": history.status,
        "test_acc": history.test_acc[-1] if len(history) else math.nan,
        "train_acc": history.train_acc[-1] if len(history) else math.nan,
        "train_loss": history.train_loss[-1] if len(history) else math.nan,
        "wall_seconds": wall, "train_seconds": sum(history.wall_time),
        "examples_per_sec": examples / max(sum(history.wall_time), 1e-9),
        "training_flops": flops * examples, "flops_per_example": flops,
        "parameters": sum(p.numel() for p in net.parameters()),
        "peak_memory_bytes": _peak_memory(device),
        "precision": history.settings.get("precision"),
        "channels_last": history.settings.get("channels_last"),
        "device": str(device), "device_name": device_name(str(device)),
        "cpu_model": cpu_model(), "threads": torch.get_num_threads(),
        "data_source": train_iter.source, "data_split": train_iter.data_split,
        "train_examples": train_iter.num_examples,
        "test_examples": getattr(test_iter, "num_examples", None),
        "d2lcnn": __version__, "torch": torch.__version__,
    }


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def league_path(budget: str, directory="results") -> Path:
    """Where the league of ``budget`` is recorded: ``<directory>/league-<budget>.json``.

    Example:
        >>> league_path("cpu").as_posix()
        'results/league-cpu.json'
    """
    return Path(directory) / f"league-{budget}.json"


def run_league(budget: str = "cpu", *, nets=NETS, seeds: int | None = None,
               directory="results", root=None, threads: int | None = None) -> list[dict]:
    """Train every (net, seed) of the league not yet in its results file; return all rows.

    Each run is a child process; its row is appended to the file as soon as it ends, so
    an interrupted league loses at most the run in progress and continues from there.

    Example:
        >>> rows = run_league("smoke", nets=["lenet"], directory="/tmp/l")  # doctest: +SKIP
    """
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    unknown = sorted(set(nets) - set(NETS))
    if unknown:
        raise ValueError(f"not league nets: {unknown}; choose from {', '.join(NETS)}")
    path = league_path(budget, directory)
    rows = _read_rows(path)
    done = {(r["net"], r["seed"]) for r in rows if r["status"] == "completed"}
    todo = [(net, seed) for seed in range(seeds or BUDGETS[budget]["seeds"])
            for net in nets if (net, seed) not in done]
    print(f"league {budget}: {len(done)} runs recorded in {path}, {len(todo)} to go")
    for i, (net, seed) in enumerate(todo, 1):
        row = _run_child(net, seed, budget, root, threads)
        rows = [r for r in _read_rows(path) if (r["net"], r["seed"]) != (net, seed)]
        rows.append(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (json.dumps(rows, indent=1) + "\n").encode())
        print(f"[{i}/{len(todo)}] {net} seed {seed}: {row['status']}, test acc "
              f"{row['test_acc']:.3f} in {row['wall_seconds']:.0f} s", flush=True)
    return rows


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a league results file ({err}); move it away "
                         "or pass another results folder") from None


def _run_child(net: str, seed: int, budget: str, root, threads) -> dict:
    """One run in its own process; its row comes back as the last line of its stdout."""
    command = [sys.executable, __file__, "--budget", budget, "--child", net, str(seed)]
    command += ["--data-root", str(root)] if root else []
    command += ["--threads", str(threads)] if threads else []
    done = subprocess.run(command, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"league run {net} seed {seed} failed (exit "
                           f"{done.returncode}):\n" + "\n".join(tail))
    return json.loads(lines[-1])


def league_table(rows: list[dict]) -> list[dict]:
    """Per net: seeds, mean test accuracy and its standard error, mean wall time.

    Example:
        >>> rows = [dict(net="a", test_acc=a, wall_seconds=10, training_flops=1e9,
        ...              parameters=5, status="completed") for a in (0.8, 0.9)]
        >>> t = league_table(rows)[0]; t["seeds"], round(t["mean"], 2), round(t["se"], 2)
        (2, 0.85, 0.05)
    """
    table = []
    for net in dict.fromkeys(r["net"] for r in rows):
        mine = [r for r in rows if r["net"] == net and r["status"] == "completed"]
        if not mine:
            continue
        accs = [r["test_acc"] for r in mine]
        mean = sum(accs) / len(accs)
        var = sum((a - mean) ** 2 for a in accs) / (len(accs) - 1) if len(accs) > 1 else 0
        table.append(dict(
            net=net, seeds=len(accs), mean=mean, se=math.sqrt(var / len(accs)),
            wall_seconds=sum(r["wall_seconds"] for r in mine) / len(mine),
            training_flops=mine[0]["training_flops"], parameters=mine[0]["parameters"]))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the nine chapter nets on one "
                                     "budget (same images, size, epochs, recipe), seeds "
                                     "times each; resumable: recorded runs are skipped.")
    parser.add_argument("--budget", choices=BUDGETS, default="cpu")
    parser.add_argument("--seeds", type=int, help="runs per net (default: the budget's)")
    parser.add_argument("--nets", nargs="+", choices=NETS, default=list(NETS))
    parser.add_argument("--threads", type=int, help="torch.set_num_threads in each run")
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="results folder (default: results); the file is "
                        "league-BUDGET.json")
    parser.add_argument("--data-root", type=Path, help="Fashion-MNIST folder")
    parser.add_argument("--child", nargs=2, metavar=("NET", "SEED"),
                        help=argparse.SUPPRESS)  # one run: its row on the last line
    args = parser.parse_args(argv)
    for flag in ("seeds", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
    if args.child:
        if args.threads:
            torch.set_num_threads(args.threads)
        net, seed = args.child
        print(json.dumps(train_one(net, int(seed), args.budget, root=args.data_root)))
        return 0
    rows = run_league(args.budget, nets=args.nets, seeds=args.seeds, directory=args.out,
                      root=args.data_root, threads=args.threads)
    for row in league_table(rows):
        print(f"{row['net']:13s} {row['mean']:.3f} +- {row['se']:.3f} "
              f"({row['seeds']} seeds, {row['wall_seconds']:.0f} s per run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
