"""``python -m d2lcnn train MODEL``: trains a chapter's net with its settings, prints d2l's
closing lines, records ``<out>/<name>.json`` and ``.png``; a user's mistake exits 2 in one line.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch

from .data import load_data_fashion_mnist
from .plot import Animator
from .results import save_result
from .settings import PROFILES, Settings, build_model, list_models, profile_name, settings_for
from .summary import ShapeError, check_input_shape
from .train import train_ch6
from .utils import check_device, try_gpu

__all__ = ["main"]


def _positive(kind):
    """An argparse type: a positive ``kind`` (int or float), or a message saying what is."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            name = "integer" if kind is int else "number such as 0.1"
            raise argparse.ArgumentTypeError(f"expected a positive {name}, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("python -m d2lcnn", description="Train the chapters' nets.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the registered models and their settings")
    train = commands.add_parser(
        "train", help="train one model, print d2l's closing lines, record the run",
        description="Train MODEL on Fashion-MNIST with its chapter's settings in a profile "
        "(full: the book's, with a GPU; cpu: without; smoke: the mini set); flags override them.")
    train.add_argument("model", metavar="MODEL", help="a model name (python -m d2lcnn list)")
    train.add_argument("--profile", choices=PROFILES, help="default: $D2LCNN_PROFILE, else by GPU")
    train.add_argument("--epochs", type=_positive(int), dest="num_epochs", metavar="EPOCHS")
    train.add_argument("--lr", type=_positive(float))
    train.add_argument("--batch-size", type=_positive(int))
    train.add_argument("--resize", type=_positive(int), help="image side in pixels")
    train.add_argument("--subset", type=_positive(int), help="train images (class-balanced)")
    train.add_argument("--test-subset", type=_positive(int))
    train.add_argument("--precision", choices=("fp32", "bf16", "auto"), help="auto: the fastest")
    train.add_argument("--compile", action="store_true", help="torch.compile (pays on GPUs)")
    train.add_argument("--device", help="e.g. cpu, cuda:1 (default: the first GPU)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--name", help="record name (default: MODEL)")
    train.add_argument("--out", type=Path, default=Path("results"), help="default: ./results")
    train.add_argument("--data-root", type=Path, help="default: $D2LCNN_DATA or ~/.cache/d2lcnn")
    train.set_defaults(subparser=train)  # its .error() names the subcommand
    return parser


def _check(parser, args, net, resize: int):
    """Everything that can fail on the user's input fails here, before any work."""
    name = args.name or args.model
    if Path(name).name != name or name in (".", ".."):
        parser.error(f"--name must be a plain file name such as 'alexnet-run2', got {name!r}")
    try:
        check_input_shape(net, (1, 1, resize, resize))
    except ShapeError as err:
        parser.error(f"{args.model} cannot take {resize}x{resize} images: {err}; pass "
                     "--resize with a size it accepts")
    try:
        device = check_device(args.device) if args.device else try_gpu()
    except ValueError as err:
        parser.error(f"--device: {err}")
    if args.data_root is not None and args.data_root.exists() and not args.data_root.is_dir():
        parser.error(f"--data-root {args.data_root} is a file; pass a folder")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=args.out).close()  # a file can be written there
    except OSError as err:
        parser.error(f"cannot write results to {args.out} ({err.strerror or err}); pass "
                     "--out with a writable folder")
    return name, device


def train_command(args, parser: argparse.ArgumentParser) -> int:
    if args.model not in list_models():
        parser.error(f"unknown model {args.model!r}; choose one of: {', '.join(list_models())}")
    try:
        profile = args.profile or profile_name()
    except ValueError as err:  # a bad $D2LCNN_PROFILE: the user's mistake, one line
        parser.error(str(err))
    try:
        hp = settings_for(args.model, profile)
    except ValueError:  # a learner's net registered without settings: d2l's defaults
        hp = Settings(lr=0.1, batch_size=256, num_epochs=dict(full=10, cpu=3, smoke=1)[profile])
        if profile == "smoke":
            hp = hp.replace(subset=512, test_subset=256, source="mini")
    flags = ("num_epochs", "lr", "batch_size", "resize", "subset", "test_subset", "precision")
    hp = hp.replace(**{k: getattr(args, k) for k in flags if getattr(args, k) is not None})
    torch.manual_seed(args.seed)
    net = build_model(args.model, profile, hp.resize)
    name, device = _check(parser, args, net, hp.resize or 28)
    print(f"profile: {profile}; {hp}")
    train_iter, test_iter = load_data_fashion_mnist(
        hp.batch_size, hp.resize, root=args.data_root, subset=hp.subset,
        test_subset=hp.test_subset, source=hp.source, seed=args.seed)
    if profile != "smoke" and train_iter.source == "mini":
        print(f"error: the {profile} profile trains on the full set, but only the bundled "
              "mini set was found (see the lines above); run python -m d2lcnn.data "
              "download, or pass --profile smoke")
        return 2
    animator = Animator(xlabel="epoch", xlim=[0, hp.num_epochs], title=name,
                        legend=["train loss", "train acc", "test acc"])
    model = torch.compile(net) if args.compile else net
    history = train_ch6(model, train_iter, test_iter, hp.num_epochs, hp.lr, device,
                        animator=animator, precision=hp.precision, recipe=hp.recipe)
    history.settings.update(model=args.model, profile=profile, seed=args.seed)
    if len(history):  # force: a smoke run on the mini set is recorded too
        path = save_result(name, history, profile=profile, directory=args.out, force=True)
        animator.save(path.with_suffix(".png"))
        print(f"curve -> {path.with_suffix('.png')}")
    return 0 if history.status == "completed" else 1


def list_command() -> int:
    for name in list_models():
        try:
            hp = settings_for(name, "full")
            print(f"{name:14s} lr {hp.lr:<5g} batch {hp.batch_size:<4d} resize {hp.resize or 28}")
        except ValueError:  # registered without settings (a learner's own net)
            print(f"{name:14s} (no chapter settings)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m d2lcnn``; returns the exit code.

    Example:
        >>> main(["list"])  # doctest: +ELLIPSIS
        alexnet ...
        0
    """
    args = build_parser().parse_args(argv)
    return list_command() if args.command == "list" else train_command(args, args.subparser)
