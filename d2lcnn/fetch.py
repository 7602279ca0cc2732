"""The Fashion-MNIST sources beyond the data root: torchvision's download and a Kaggle input
folder's CSV files (``d2lcnn.data`` turns to them when the root holds no set), and
``python -m d2lcnn.data download``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import data
from .data import FILES, _read_folder, raw_dir

__all__ = ["download", "main", "read_kaggle"]


def download(root: Path, report) -> tuple[dict, str]:
    """torchvision's download (its mirrors and md5s), moved in only once complete."""
    from torchvision.datasets import FashionMNIST
    target = raw_dir(root)
    if any((target / f"{name}{ext}").exists() for name in FILES.values()
           for ext in ("", ".gz")):  # never overwrite a file d2lcnn did not create
        target = raw_dir(root, "download")
        report(f"{raw_dir(root)} holds files of those names (left as they are); the "
               f"download goes to {target}")
    try:
        with tempfile.TemporaryDirectory(dir=root, prefix=".d2lcnn-download-") as tmp:
            FashionMNIST(tmp, download=True)
            target.mkdir(parents=True, exist_ok=True)
            for path in Path(tmp, "FashionMNIST", "raw").glob("*.gz"):
                os.replace(path, target / path.name)  # verified and complete
    except Exception as err:  # whatever torchvision's download raises: try the next
        raise ConnectionError(" ".join(str(err).split()) or repr(err)) from err
    return _read_folder(target, report)


def read_kaggle(root: Path, report) -> tuple[dict, str]:
    """The CSV pair of a Kaggle input folder (read in place: ~1.5 s for the full set)."""
    train_csv = min(data.KAGGLE_INPUT.glob("**/fashion-mnist_train.csv"), default=None)
    if train_csv is None:
        raise FileNotFoundError(f"no {data.KAGGLE_INPUT}/**/fashion-mnist_train.csv")
    parts = {}
    for split in ("train", "test"):
        path = train_csv.with_name(f"fashion-mnist_{split}.csv")
        with open(path) as f:  # label,pixel1,...,pixel784
            if f.readline().strip().split(",")[:2] != ["label", "pixel1"]:
                raise ValueError(f"{path}: header is not 'label,pixel1,...,pixel784'")
            try:
                table = np.loadtxt(f, delimiter=",", dtype=np.int32, ndmin=2)
            except ValueError:  # numpy counts rows its own way: name the file's line
                f.seek(0)
                line = next((n for n, row in enumerate(f, 1) if n > 1 and row.strip() and (
                    len(cells := row.strip().split(",")) != 785
                    or not all(map(str.isdigit, cells)))), "?")
                raise ValueError(f"{path} line {line}: not 785 whole numbers (a label and "
                                 "784 pixels); fix or delete that line, or download the "
                                 "data set's CSV files again") from None
        if (table.shape[1] != 785 or table.min(initial=0) < 0 or table.max(initial=0) > 255
                or table[:, 0].max(initial=0) > 9):
            raise ValueError(f"{path}: rows must be a label 0..9 and 784 pixels 0..255")
        parts[f"{split}_images"] = table[:, 1:].astype(np.uint8).reshape(-1, 28, 28)
        parts[f"{split}_labels"] = table[:, 0].astype(np.uint8)
    n, m = len(parts["train_labels"]), len(parts["test_labels"])
    return parts, ("official split (Kaggle CSV)" if (n, m) == (60_000, 10_000) else
                   f"a subset of the official split (Kaggle CSV: {n:,} + {m:,} rows)")


def main(argv: list[str] | None = None) -> int:
    """``python -m d2lcnn.data download [--root DIR]``: fetch the full set once."""
    parser = argparse.ArgumentParser("python -m d2lcnn.data", description="Fetch the full set.")
    parser.add_argument("command", choices=["download"])
    parser.add_argument("--root", help="data folder (default: $D2LCNN_DATA or ~/.cache/d2lcnn)")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", data.MiniDataWarning)  # the error below says it
            if data.load_data_fashion_mnist(1, root=args.root)[0].source == "mini":
                parser.error("no source of the full set worked (see the line above)")
    except (OSError, ValueError) as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
