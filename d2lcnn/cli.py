"""Command-line runner: ``python -m d2lcnn train MODEL`` (Colab, Kaggle, GPUs, bench).

Trains a registered chapter model with the book's settings (``full`` profile) or a
reduced set (``cpu``, ``smoke``), prints d2l's closing lines, and records the run: the
history as ``<name>.json`` (``d2lcnn.results`` format) and the curve as ``<name>.png``.

Example:
    python -m d2lcnn train resnet18 --epochs 5 --precision auto --out results/
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from .animator import Animator
from .data import load_data_fashion_mnist
from .devices import try_gpu
from .precision import PRECISIONS
from .profiles import PROFILES, profile_name
from .registry import chapter_model, list_models, model_settings
from .results import results_dir, save_result
from .train import train_ch6

__all__ = ["choose_settings", "main"]

# A registered model without chapter settings (a learner's own): d2l's defaults.
DEFAULT_SETTINGS = dict(lr=0.1, batch_size=256, resize=None, subset=None,
                        test_subset=None)
DEFAULT_EPOCHS = {"full": 10, "cpu": 3, "smoke": 1}
SMOKE_SUBSETS = (512, 256)  # train, test: seconds on the mini set


def choose_settings(model: str, profile: str, **overrides) -> dict:
    """Training settings of ``model`` in ``profile``; ``None`` overrides are skipped.

    The chapter's own ``SETTINGS`` (its notebook's profile cell), so the CLI trains
    what the chapter trains.

    Example:
        >>> s = choose_settings("alexnet", "full", epochs=2)
        >>> s["lr"], s["batch_size"], s["resize"], s["epochs"]
        (0.01, 128, 224, 2)
    """
    try:
        chapter = model_settings(model, profile)
    except ValueError:
        chapter = {**DEFAULT_SETTINGS, "num_epochs": DEFAULT_EPOCHS[profile]}
        if profile == "smoke":
            chapter["subset"], chapter["test_subset"] = SMOKE_SUBSETS
    settings = {key: chapter.get(key) for key in
                ("lr", "batch_size", "resize", "subset", "test_subset")}
    settings["resize"] = settings["resize"] or 28
    settings["epochs"] = chapter["num_epochs"]
    if "precision" in chapter:
        settings["precision"] = chapter["precision"]
    if chapter.get("recipe"):  # the chapter's cpu recipe (momentum, schedule, ...)
        settings["recipe"] = chapter["recipe"]
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


# ---------------------------------------------------------------- argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number such as 0.1, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m d2lcnn",
        description="Train the chapters' models from the command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the registered models and their settings")
    train = commands.add_parser(
        "train", help="train one model, print d2l's closing lines, record the run",
        description="Train MODEL on Fashion-MNIST with the book's settings (full "
        "profile) or a reduced set (cpu, smoke); flags override single values.")
    train.add_argument("model", metavar="MODEL", help="a registered model name "
                       "(python -m d2lcnn list)")
    train.add_argument("--profile", choices=PROFILES,
                       help="default: $D2LCNN_PROFILE, else full with a GPU, cpu "
                       "without")
    train.add_argument("--epochs", type=_positive_int)
    train.add_argument("--lr", type=_positive_float)
    train.add_argument("--batch-size", type=_positive_int)
    train.add_argument("--resize", type=_positive_int, help="image side in pixels")
    train.add_argument("--subset", type=_positive_int,
                       help="train on this many examples (class-balanced, fixed)")
    train.add_argument("--test-subset", type=_positive_int)
    train.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="the chapter's (default), or auto: fp32 or, where the "
                       "device computes it natively, bf16 autocast, whichever a timed "
                       "step says is faster")
    train.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                       default="auto", help="NHWC memory format (default: auto, i.e. "
                       "where a timed step on the first batch says it is faster)")
    train.add_argument("--compile", action="store_true",
                       help="torch.compile the model first (slow start; try on GPUs)")
    train.add_argument("--device", help="e.g. cpu, cuda:1 (default: the first GPU)")
    train.add_argument("--threads", type=_positive_int,
                       help="torch.set_num_threads for CPU runs")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--name", help="record name (default: MODEL)")
    train.add_argument("--out", type=Path,
                       help=f"results folder (default: {results_dir()}); smoke runs "
                       "are recorded only when --out is given")
    train.add_argument("--data-root", type=Path, help="Fashion-MNIST folder "
                       "(default: $D2LCNN_DATA or the per-user cache)")
    train.set_defaults(subparser=train)  # its .error() names the subcommand
    _add_league(commands)
    return parser


def _add_league(commands) -> None:
    from .league import BUDGETS, NETS

    league = commands.add_parser(
        "league", help="train every chapter's net on one shared budget, several seeds",
        description="Train the nine chapter nets on one budget (same images, size, "
        "epochs, recipe), seeds times each; resumable: recorded runs are skipped.")
    league.add_argument("--budget", choices=BUDGETS, default="cpu")
    league.add_argument("--seeds", type=_positive_int,
                        help="runs per net (default: the budget's, 3)")
    league.add_argument("--nets", nargs="+", choices=NETS, default=list(NETS))
    league.add_argument("--threads", type=_positive_int,
                        help="torch.set_num_threads in each run (CPU)")
    league.add_argument("--out", type=Path, help=f"results folder (default: "
                        f"{results_dir()}); the file is league-BUDGET.json")
    league.add_argument("--data-root", type=Path, help="Fashion-MNIST folder")
    league.set_defaults(subparser=league)


def _check_resize(parser, net, resize: int) -> None:
    from .summary import ShapeError, check_input_shape

    try:
        check_input_shape(net, (1, 1, resize, resize))
    except ShapeError as err:
        parser.error(f"the model cannot take {resize}x{resize} images: {err}; pass "
                     "--resize with a size it accepts")


def _check_output(parser, out: Path | None, name: str) -> None:
    """Fail before training, not after it, when the record cannot be written."""
    if not name or Path(name).name != name or name in (".", ".."):
        parser.error(f"--name must be a plain file name such as 'alexnet-run2', got "
                     f"{name!r}")
    if out is None:  # a smoke run without --out records nothing
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".{name}.write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        parser.error(f"cannot write results to {out} ({err.strerror or err}); pass "
                     "--out with a writable folder")


def train_command(args, parser: argparse.ArgumentParser) -> int:
    names = list_models()
    if args.model not in names:
        parser.error(f"unknown model {args.model!r}; choose one of: "
                     f"{', '.join(names) or '(none registered)'}")
    profile = args.profile or profile_name()
    settings = choose_settings(
        args.model, profile, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, resize=args.resize, subset=args.subset,
        test_subset=args.test_subset)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    net = chapter_model(args.model, profile, settings["resize"])
    _check_resize(parser, net, settings["resize"])
    precision = args.precision or settings.pop("precision", "auto")
    device = torch.device(args.device) if args.device else try_gpu()
    name = args.name or args.model
    keep = profile != "smoke" or args.out is not None
    _check_output(parser, (args.out or results_dir()) if keep else None, name)
    print(f"profile: {profile}; " + ", ".join(f"{k}={v}" for k, v in settings.items())
          + f"; precision={precision}, channels_last={args.channels_last}"
          + (", compiled" if args.compile else ""))

    train_iter, test_iter = load_data_fashion_mnist(
        settings["batch_size"],
        None if settings["resize"] == 28 else settings["resize"],
        root=args.data_root, subset=settings["subset"],
        test_subset=settings["test_subset"],
        source="mini" if profile == "smoke" else "auto", seed=args.seed)
    if profile != "smoke" and train_iter.source == "mini":
        print(f"error: the {profile} profile trains on the full set, but only the "
              "bundled mini set was found (see the lines above); run python -m "
              "d2lcnn.data download, or pass --profile smoke")
        return 2
    animator = Animator(xlabel="epoch", xlim=[0, settings["epochs"]],
                        legend=["train loss", "train acc", "test acc"], title=name)
    model = torch.compile(net) if args.compile else net
    history = train_ch6(model, train_iter, test_iter, settings["epochs"],
                        settings["lr"], device, animator=animator,
                        precision=precision, channels_last=args.channels_last,
                        recipe=settings.get("recipe"))
    history.settings.update(model=args.model, profile=profile, seed=args.seed,
                            subset=settings["subset"],
                            test_subset=settings["test_subset"],
                            compiled=args.compile, threads=torch.get_num_threads())

    if len(history):
        path = save_result(name, history, profile=profile, directory=args.out,
                           force=args.out is not None)
        if path is not None:
            animator.save(path.with_suffix(".png"))
            print(f"curve -> {path.with_suffix('.png')}")
        else:
            print("pass --out DIR to keep the files of a smoke run")
    return 0 if history.status == "completed" else 1


def list_command() -> int:
    names = list_models()
    if not names:
        print("no models registered yet")
    for name in names:
        full = choose_settings(name, "full")
        print(f"{name:14s} lr {full['lr']:<5g} batch {full['batch_size']:<4d} "
              f"resize {full['resize']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m d2lcnn``; returns the exit code.

    Example:
        >>> main(["list"])  # doctest: +SKIP
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        return list_command()
    if args.command == "league":
        from .league import league_table, run_league

        rows = run_league(args.budget, nets=args.nets, seeds=args.seeds,
                          directory=args.out, root=args.data_root, threads=args.threads)
        for row in league_table(rows):
            print(f"{row['net']:13s} {row['mean']:.3f} +- {row['se']:.3f} "
                  f"({row['seeds']} seeds, {row['wall_seconds']:.0f} s per run)")
        return 0
    return train_command(args, args.subparser)


if __name__ == "__main__":
    sys.exit(main())
