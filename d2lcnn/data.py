"""Fashion-MNIST for the chapters: d2l's ``load_data_fashion_mnist``, held in memory.

The whole set lives in one uint8 tensor; a batch is built by indexing it, then converted
to float and resized on the device it is used on. That avoids d2l's per-image PIL work
and its 4 worker processes. Where the arrays come from is ``d2lcnn.sources``' job.

Resizing is two small matmuls per batch (``resize_matrix``), which write the float
batch once, straight from the 28x28 images. Measured on a 2-core Xeon, batch 256:
0.8 ms at 96x96 and 5 ms at 224x224, against 4 and 22 ms for resizing uint8 and
converting after, and 8 ms at 224 for merely indexing a pre-resized uint8 cache, so
there is no cache (it would cost 3 GB at 224).

Run ``python -m d2lcnn.data download [--root DIR]`` to fetch the full set once.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import operator
import os
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from . import sources
from .devices import best_device, keep_freed_memory
from .preflight import check_positive_int

__all__ = ["TEXT_LABELS", "FashionMNISTBatches", "get_fashion_mnist_labels",
           "load_data_fashion_mnist", "resize_matrix"]

TEXT_LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")
SUBSET_SEED = 0  # subsets are the same examples in every run and every chapter


def get_fashion_mnist_labels(labels) -> list[str]:
    """Text names of Fashion-MNIST labels (ints, a list, an array or a tensor).

    Example:
        >>> get_fashion_mnist_labels(torch.tensor([0, 9]))
        ['t-shirt', 'ankle boot']
    """
    if isinstance(labels, torch.Tensor | np.ndarray):
        labels = labels.reshape(-1).tolist()
    elif not isinstance(labels, Iterable):
        labels = [labels]
    names = []
    for label in labels:
        index = operator.index(label)
        if not 0 <= index < len(TEXT_LABELS):
            raise ValueError(f"Fashion-MNIST labels are 0..9, got {index}")
        names.append(TEXT_LABELS[index])
    return names


def _resize_pair(resize) -> tuple[int, int] | None:
    if resize is None:
        return None
    sizes = resize if isinstance(resize, tuple | list) else (resize, resize)
    if len(sizes) != 2:
        raise ValueError(
            f"resize must be an int or a (height, width) pair, got {resize!r}")
    pair = []
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int | np.integer):
            hint = f"; pass resize={round(size)}" if isinstance(size, float) else ""
            raise TypeError(f"resize must hold integers, got {size!r} "
                            f"({type(size).__name__}){hint}")
        if size < 1:
            raise ValueError(
                f"resize must be >= 1 pixel, got {size}; pass e.g. resize=224")
        pair.append(int(size))
    return pair[0], pair[1]


def _positive_int(name: str, value, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    return check_positive_int(name, value)


def resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """The ``(size_out, size_in)`` matrix of a 1-D bilinear, antialiased resize.

    Resizing is linear and separable, so a batch of images ``X`` of shape (B, H, W)
    resizes to ``resize_matrix(H, h) @ X @ resize_matrix(W, w).T``. The weights are
    torch's own (``F.interpolate`` applied to the identity), which are PIL's.

    Example:
        >>> resize_matrix(2, 4)
        tensor([[1.0000, 0.0000],
                [0.7500, 0.2500],
                [0.2500, 0.7500],
                [0.0000, 1.0000]])
    """
    eye = torch.eye(size_in, dtype=torch.float64).view(1, 1, size_in, size_in)
    matrix = F.interpolate(eye, size=(size_out, size_in), mode="bilinear",
                           align_corners=False, antialias=True)
    return matrix[0, 0].float()


def _autocast_off(device: torch.device):
    try:
        return torch.autocast(device.type, enabled=False)
    except RuntimeError:  # a device type autocast does not know: nothing to turn off
        return contextlib.nullcontext()


class FashionMNISTBatches:
    """Re-iterable batches ``(X, y)`` over an in-memory uint8 image tensor.

    ``X`` is float32 in [0, 1] of shape ``(B, 1, H, W)``; ``y`` is int64. With
    ``shuffle`` every pass is a new permutation (from ``seed``'s generator, else from
    torch's global RNG as a DataLoader would); the last partial batch is kept.

    Example:
        >>> images = torch.zeros(10, 28, 28, dtype=torch.uint8)
        >>> batches = FashionMNISTBatches(images, torch.arange(10) % 10, 4, resize=32)
        >>> len(batches), next(iter(batches))[0].shape
        (3, torch.Size([4, 1, 32, 32]))
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *,
                 resize: int | tuple[int, int] | None = None, shuffle: bool = False,
                 seed: int | None = None, device: torch.device | str | None = None,
                 source: str = "memory", split: str = "train",
                 data_split: str = "", _generator: torch.Generator | None = None):
        if images.dtype != torch.uint8 or images.dim() != 3:
            raise ValueError(f"images must be a (N, H, W) uint8 tensor, got "
                             f"{images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.batch_size = _positive_int("batch_size", batch_size)
        self.resize = _resize_pair(resize)
        self.shuffle, self.source, self.split = shuffle, source, split
        self.data_split = data_split  # how the data set's train/test were chosen
        self.device = torch.device(device) if device is not None else images.device
        self.images = images.to(self.device)  # moved once; batches are cut there
        self.labels = labels.to(self.device, torch.int64)
        if _generator is None and seed is not None:
            _generator = torch.Generator().manual_seed(seed)
        self._generator = _generator  # None: torch's global RNG, as a DataLoader uses
        self._moved: dict[torch.device, FashionMNISTBatches] = {}
        self._resize_matrices = None
        if self.resize is not None and self.resize != tuple(images.shape[-2:]):
            # 1/255 folded in, a hair less so float rounding never takes white past 1.0
            scale = (1 - 2**-20) / 255
            rows = resize_matrix(images.shape[-2], self.resize[0]) * scale
            cols = resize_matrix(images.shape[-1], self.resize[1]).T.contiguous()
            self._resize_matrices = rows.to(self.device), cols.to(self.device)

    @property
    def num_examples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, size = self.num_examples, self.batch_size
        order = None
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator).to(self.device)
        for start in range(0, n, size):
            stop = start + size
            index = slice(start, stop) if order is None else order[start:stop]
            yield self._to_float(self.images[index]), self.labels[index]

    def peek(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first batch in file order, without drawing a shuffle (for checks).

        Example:
            >>> batches = FashionMNISTBatches(torch.zeros(5, 28, 28, dtype=torch.uint8),
            ...                               torch.arange(5), 2, shuffle=True)
            >>> batches.peek()[1]
            tensor([0, 1])
        """
        if self.num_examples == 0:
            raise StopIteration
        index = slice(0, self.batch_size)
        return self._to_float(self.images[index]), self.labels[index]

    def _to_float(self, images: torch.Tensor) -> torch.Tensor:
        if self._resize_matrices is None:
            return images.unsqueeze(1).float().div_(255)
        # Two small matmuls write the float batch once, straight from the 28x28
        # images: 5x faster at 224x224 than resizing uint8 and converting after.
        rows, cols = self._resize_matrices
        batch, height, width = images.shape
        # the caller may iterate inside autocast (evaluation does): stay in float32
        with _autocast_off(images.device):
            x = images.float().view(batch * height, width) @ cols  # resize the width
            x = torch.matmul(rows, x.view(batch, height, -1))  # then the height
        return x.unsqueeze(1)  # (B, h, w) -> (B, 1, h, w)

    def to(self, device: torch.device | str) -> FashionMNISTBatches:
        """The same batches produced on ``device`` (the uint8 store moves there once).

        Example:
            >>> batches = FashionMNISTBatches(torch.zeros(4, 28, 28, dtype=torch.uint8),
            ...                               torch.zeros(4), 2)
            >>> batches.to("cpu").device
            device(type='cpu')
        """
        device = torch.device(device)
        if device == self.device:
            return self
        if device not in self._moved:  # train_ch6 calls .to() on every run
            self._moved[device] = FashionMNISTBatches(
                self.images, self.labels, self.batch_size, resize=self.resize,
                shuffle=self.shuffle, device=device, source=self.source,
                split=self.split, data_split=self.data_split,
                _generator=self._generator)
        return self._moved[device]

    def __repr__(self) -> str:
        size = "28x28" if self.resize is None else f"{self.resize[0]}x{self.resize[1]}"
        return (f"FashionMNISTBatches({self.split}: {self.num_examples:,} examples, "
                f"batch_size={self.batch_size}, {len(self)} batches, {size}, "
                f"shuffle={self.shuffle}, device={self.device}, "
                f"source={self.source!r})")


def _stratified_indices(labels: np.ndarray, count: int) -> np.ndarray:
    """``count`` indices balanced over the classes, drawn with a fixed seed.

    Examples are ranked within their class after a seeded shuffle; taking the lowest
    ranks first keeps classes balanced and makes smaller subsets part of larger ones.
    """
    order = np.random.default_rng(SUBSET_SEED).permutation(len(labels))
    shuffled = labels[order]
    rank = np.empty(len(labels), np.int64)
    for label in np.unique(shuffled):
        members = np.flatnonzero(shuffled == label)
        rank[members] = np.arange(len(members))
    chosen = order[np.argsort(rank, kind="stable")[:count]]
    return np.sort(chosen)  # file order, so a test subset keeps the file's order


def _select(images: np.ndarray, labels: np.ndarray, count: int | None, name: str,
            source: str) -> tuple[np.ndarray, np.ndarray]:
    if count is None or count == len(labels):
        return images, labels
    if count > len(labels):
        raise ValueError(f"{name}={count:,} is larger than the {len(labels):,} "
                         f"examples available from source {source!r}; pass "
                         f"{name}<={len(labels)} or None for all")
    index = _stratified_indices(labels, count)
    return images[index], labels[index]


def load_data_fashion_mnist(
        batch_size: int, resize: int | tuple[int, int] | None = None, *,
        root: str | os.PathLike | None = None, subset: int | None = None,
        test_subset: int | None = None, source: str = "auto",
        device: torch.device | str | None = None, seed: int | None = None,
        verbose: bool = True) -> tuple[FashionMNISTBatches, FashionMNISTBatches]:
    """Fashion-MNIST as d2l's ``(train_iter, test_iter)``, held in memory.

    Args:
        batch_size: examples per batch (the last partial batch is kept).
        resize: None (28x28), a side length, or ``(height, width)``; bilinear with
            antialiasing, as torchvision's ``Resize`` on PIL images (within 1/255:
            PIL rounds to 8 bits between its two passes, d2lcnn stays in float).
        root: data folder; default ``$D2LCNN_DATA``, else ``~/.cache/d2lcnn``.
        subset: use this many training examples, a class-balanced sample drawn with a
            fixed seed (0), the same in every run; None for all.
        test_subset: the same for the test set (default: the whole test set).
        source: 'auto' (the order in docs/data.md), or force 'local', 'download', 'kaggle',
            'npm' or 'mini'. The smoke profile makes 'auto' use the mini set.
        device: where the uint8 store lives and batches are produced (default CPU);
            ``train_iter.to(device)`` moves it later.
        seed: seed of the training shuffle; None uses torch's global RNG.
        verbose: print the line saying which source was used.

    Example:
        >>> train_iter, test_iter = load_data_fashion_mnist(256, source="mini",
        ...                                                 verbose=False)
        >>> X, y = next(iter(train_iter))
        >>> X.shape, X.dtype, y.dtype
        (torch.Size([256, 1, 28, 28]), torch.float32, torch.int64)
    """
    batch_size = _positive_int("batch_size", batch_size)
    resize = _resize_pair(resize)
    subset = _positive_int("subset", subset, allow_none=True)
    test_subset = _positive_int("test_subset", test_subset, allow_none=True)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer | None):
        raise TypeError(f"seed must be an int or None, got {seed!r} "
                        f"({type(seed).__name__})")
    arrays = sources.load_arrays(root, source, verbose=verbose)
    if torch.device(device or "cpu").type == "cpu" and best_device().type == "cpu":
        keep_freed_memory(verbose=verbose)  # batches then reuse freed memory
    train = _select(arrays.train_images, arrays.train_labels, subset, "subset",
                    arrays.source)
    test = _select(arrays.test_images, arrays.test_labels, test_subset, "test_subset",
                   arrays.source)
    if verbose and (subset or test_subset):
        print(f"Fashion-MNIST: using {len(train[1]):,} train + {len(test[1]):,} test "
              f"examples (class-balanced subset, seed {SUBSET_SEED})")
    common = dict(resize=resize, device=device, source=arrays.source,
                  data_split=arrays.split)
    train_iter = FashionMNISTBatches(*map(torch.from_numpy, train), batch_size,
                                     shuffle=True, seed=seed, split="train", **common)
    test_iter = FashionMNISTBatches(*map(torch.from_numpy, test), batch_size,
                                    shuffle=False, split="test", **common)
    return train_iter, test_iter


def main(argv: list[str] | None = None) -> int:
    """``python -m d2lcnn.data download [--root DIR] [--source S] [--kaggle-glob P]``."""
    parser = argparse.ArgumentParser(
        prog="python -m d2lcnn.data",
        description="Fetch Fashion-MNIST into the data root.")
    parser.add_argument("command", choices=["download"])
    parser.add_argument("--root", help="data folder (default: $D2LCNN_DATA or "
                        f"{sources.default_root()})")
    parser.add_argument("--source", default="auto", choices=sources.SOURCES[1:-1],
                        help="force one source (default: try them in order)")
    parser.add_argument("--kaggle-glob", default=sources.KAGGLE_GLOB,
                        help="where to look for fashion-mnist_train.csv")
    args = parser.parse_args(argv)
    options = sources.SourceOptions(kaggle_glob=args.kaggle_glob)
    try:
        root = sources.resolve_root(args.root)
        arrays = sources.load_arrays(args.root, args.source, options=options,
                                     mini_in_smoke=False)
    except (RuntimeError, OSError, ValueError) as err:
        print(f"error: {err}")
        return 1
    if arrays.source == "mini":
        print("error: no source of the full set worked (see the lines above)")
        return 1
    print("done: load_data_fashion_mnist() will find the set under "
          f"{root} ({arrays.describe()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
