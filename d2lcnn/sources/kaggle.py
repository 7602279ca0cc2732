"""Source 3: the ``fashion-mnist_{train,test}.csv`` files of a Kaggle input folder."""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .arrays import IMAGE_SHAPE, OFFICIAL_COUNTS, PIXELS, FashionMNISTArrays, SourceUnavailable
from .folders import own_dir, write_set

__all__ = ["KAGGLE_GLOB", "parse_kaggle_csv", "read_kaggle"]

KAGGLE_GLOB = "/kaggle/input/**/fashion-mnist_train.csv"  # any data set's folder


def parse_kaggle_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A Kaggle ``fashion-mnist_*.csv`` (``label,pixel1..pixel784``) as arrays.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "fashion-mnist_test.csv"
        >>> header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
        >>> _ = path.write_text(header + "\\n3," + ",".join(["0"] * 784) + "\\n")
        >>> images, labels = parse_kaggle_csv(path)
        >>> images.shape, labels.tolist()
        ((1, 28, 28), [3])
    """
    with open(path) as f:
        header = f.readline().strip().split(",")
        if header[:2] != ["label", "pixel1"] or len(header) != 1 + PIXELS:
            raise ValueError(f"{path}: header is not 'label,pixel1,...,pixel784'")
        table = np.loadtxt(f, delimiter=",", dtype=np.int32, ndmin=2)
    low, high = table.min(initial=0), table.max(initial=0)
    if table.shape[1] != 1 + PIXELS or low < 0 or high > 255:
        raise ValueError(f"{path}: rows must be 785 integers in 0..255")
    labels = table[:, 0]
    if labels.max(initial=0) > 9:
        raise ValueError(f"{path}: label {labels.max()} outside 0..9")
    images = table[:, 1:].astype(np.uint8).reshape(-1, *IMAGE_SHAPE)
    return images, labels.astype(np.uint8)


def kaggle_split(n_train: int, n_test: int) -> str:
    """How to name a Kaggle CSV pair: the official split only at full size.

    Example:
        >>> kaggle_split(1000, 200)
        'a subset of the official split (Kaggle CSV: 1,000 + 200 rows, not 60,000 + 10,000)'
    """
    if (n_train, n_test) == OFFICIAL_COUNTS:
        return "official split (Kaggle CSV)"
    return (f"a subset of the official split (Kaggle CSV: {n_train:,} + {n_test:,} "
            f"rows, not {OFFICIAL_COUNTS[0]:,} + {OFFICIAL_COUNTS[1]:,})")


def read_kaggle(root: Path, report: Callable[[str], None], *,
                pattern: str = KAGGLE_GLOB) -> FashionMNISTArrays:
    """The CSV pair found by ``pattern``; a copy is saved under the root for next time."""
    hits = sorted(glob.glob(pattern, recursive=True))
    if not hits:
        raise SourceUnavailable(f"no file matches {pattern}")
    train_csv = Path(hits[0])
    test_csv = train_csv.with_name("fashion-mnist_test.csv")
    if not test_csv.exists():
        raise SourceUnavailable(f"{test_csv} is missing next to {train_csv}")
    copy = own_dir(root, "kaggle")
    try:
        train_images, train_labels = parse_kaggle_csv(train_csv)
        test_images, test_labels = parse_kaggle_csv(test_csv)
    except ValueError as err:
        report(f"corrupt Kaggle file: {err}; skipping it")
        raise SourceUnavailable(str(err)) from err
    arrays = FashionMNISTArrays(
        train_images, train_labels, test_images, test_labels, source="kaggle",
        origin=f"Kaggle CSV {train_csv.parent}",
        split=kaggle_split(len(train_labels), len(test_labels)))
    try:
        write_set(copy, arrays)
    except (PermissionError, FileExistsError) as err:
        report(f"not saved for next time: {err}")
    return arrays

