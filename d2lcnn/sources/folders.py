"""Folders of IDX files: the data root, reading a set as found, writing d2lcnn's own.

Rules (docs/data.md): a file d2lcnn did not create is never overwritten, moved or
deleted. d2lcnn writes new sets only into folders of its own under the data root
(``d2lcnn-<source>/FashionMNIST/raw``), or into torchvision's folder when none of the
file names it would write exist there. A folder d2lcnn wrote carries a manifest with the
md5 of each file; an unpacked copy it made of a ``.gz`` is listed with the sha256 of its
bytes, and read only while that still holds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .arrays import (
    FILES,
    FashionMNISTArrays,
    SourceUnavailable,
    check_consistent,
    idx_bytes,
    parse_idx,
    sha256_bytes,
)

__all__ = ["OFFICIAL_SPLIT", "ROOT_ENV_VAR", "choose_root", "default_root", "own_dir", "raw_dir",
           "read_folder", "resolve_root", "write_set"]

ROOT_ENV_VAR = "D2LCNN_DATA"
MANIFEST = "d2lcnn-manifest.json"  # what d2lcnn wrote into a folder, with md5s
UNPACKED = "d2lcnn-unpacked.json"  # unpacked copies d2lcnn made, with sha256s
Report = Callable[[str], None]


def default_root() -> Path:
    """The data root when none is passed: ``$D2LCNN_DATA``, else a per-user cache.

    Example:
        >>> isinstance(default_root(), Path)
        True
    """
    return choose_root(None)[0]


def choose_root(root) -> tuple[Path, str]:
    """The data root and why it was chosen: ``root=``, then the variable, then default.

    Example:
        >>> choose_root("/data")
        (PosixPath('/data'), 'root=')
    """
    if root is not None:
        if not isinstance(root, str | os.PathLike):
            raise TypeError(f"root must be a path (str or os.PathLike), got "
                            f"{type(root).__name__} {root!r}; pass e.g. root='~/data'")
        return Path(root).expanduser(), "root="
    if os.environ.get(ROOT_ENV_VAR):
        return Path(os.environ[ROOT_ENV_VAR]).expanduser(), f"${ROOT_ENV_VAR}"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "d2lcnn", "default"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "d2lcnn", "default"


def resolve_root(root) -> Path:
    """``root`` (or the default) as an existing folder; created when missing.

    Example:
        >>> resolve_root(tempfile.mkdtemp()).is_dir()
        True
    """
    path, why = choose_root(root)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"data root {path} ({why}) is a file, not a folder; "
                                 f"set ${ROOT_ENV_VAR} or pass root= to a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(
            f"cannot create the data root {path} ({why}; {err.strerror}); set "
            f"${ROOT_ENV_VAR} or pass root= to a writable folder") from err
    return path


def raw_dir(root: Path) -> Path:
    """torchvision's folder for the files: ``root/FashionMNIST/raw``.

    Example:
        >>> raw_dir(Path("/data")).as_posix()
        '/data/FashionMNIST/raw'
    """
    return Path(root) / "FashionMNIST" / "raw"


def own_dir(root: Path, source: str) -> Path:
    """The folder d2lcnn writes ``source``'s set into (never a user's folder).

    Example:
        >>> own_dir(Path("/data"), "npm").as_posix()
        '/data/d2lcnn-npm/FashionMNIST/raw'
    """
    return Path(root) / f"d2lcnn-{source}" / "FashionMNIST" / "raw"


def require_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"the data folder {folder} is not writable ({err.strerror}); set "
            f"${ROOT_ENV_VAR} or pass root= to a writable folder") from err


def _read_json(path: Path, report: Report) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    except (OSError, ValueError):
        pass
    report(f"ignoring unreadable {path.name} in {path.parent}")
    return {}


# ---------------------------------------------------------------- reading


def _read_unpacked(plain: Path, entry, report: Report, part: str):
    """An unpacked copy d2lcnn made, if its bytes are still the ones it wrote."""
    data = plain.read_bytes()
    if sha256_bytes(data) == entry.get("sha256"):
        return parse_idx(data, part, plain), entry.get("how", "unverified")
    report(f"{plain} changed since d2lcnn unpacked it (sha256 differs); reading the "
           f".gz instead (delete {plain.name} to let d2lcnn unpack it again)")
    return None


def _read_gz(gz: Path, part: str, official_md5: dict | None, known_md5: dict):
    if official_md5 is None:  # torchvision's, imported only when a .gz is checked
        from .download import official_md5 as torchvision_md5

        official_md5 = torchvision_md5()
    packed = gz.read_bytes()
    digest = hashlib.md5(packed).hexdigest()  # of the bytes already read: one pass
    how = ("official" if digest == official_md5.get(gz.name)
           else "manifest" if digest == known_md5.get(gz.name) else "unofficial")
    try:
        data = gzip.decompress(packed)
    except (OSError, EOFError) as err:  # truncated or not gzip at all
        raise ValueError(f"{gz}: not a readable .gz file ({err})") from err
    return parse_idx(data, part, gz), how, data


def _keep_unpacked(plain: Path, data: bytes, how: str, index: dict) -> None:
    if plain.exists():  # never overwrite a file d2lcnn did not create (or has edited)
        return
    try:
        atomic_write(plain, data)
    except OSError:
        return  # a read-only data root: the .gz is read each time
    index[plain.name] = {"sha256": sha256_bytes(data), "how": how}


def _read_part(folder: Path, part: str, official_md5: dict | None, known_md5: dict,
               index: dict, report: Report) -> tuple[np.ndarray, str, bytes | None]:
    """One file: (array, how it was checked, the unpacked bytes of a .gz read)."""
    name = FILES[part]
    gz, plain = folder / f"{name}.gz", folder / name
    if plain.exists() and name in index:
        found = _read_unpacked(plain, index[name], report, part)
        if found is not None:
            return (*found, None)
    if gz.exists():
        return _read_gz(gz, part, official_md5, known_md5)
    if plain.exists():  # unpacked files with no .gz: no published checksum to check
        return parse_idx(plain.read_bytes(), part, plain), "unverified", None
    raise SourceUnavailable(f"no {name}[.gz] in {folder}")


OFFICIAL_SPLIT = "official split (md5 verified)"


def _split_of(hows: set[str], manifest: dict, folder: Path) -> str:
    if hows == {"official"}:
        return OFFICIAL_SPLIT
    if hows == {"manifest"}:
        return str(manifest.get("split", "written by d2lcnn"))
    if "manifest" in hows and "official" in hows:
        raise ValueError(f"{folder} mixes official files with files d2lcnn rebuilt "
                         "from another source; their train and test sets overlap")
    return ("not the official files (md5 differs or unpacked files without a "
            "checksum): used as found")


def read_folder(folder: Path, report: Report, official_md5: dict | None = None,
                source: str = "local") -> FashionMNISTArrays:
    """The set in ``folder`` as found; ``SourceUnavailable`` naming what is wrong.

    Example:
        >>> read_folder(Path(tempfile.mkdtemp()), print, {})
        Traceback (most recent call last):
        ...
        d2lcnn.sources.arrays.SourceUnavailable: no train-images-idx3-ubyte[.gz] in ...
    """
    manifest = _read_json(folder / MANIFEST, report)
    if manifest.get("complete") is False:
        raise SourceUnavailable(f"{folder} holds a set d2lcnn was interrupted writing; "
                                "the next rebuild replaces it")
    known_md5 = manifest.get("md5") if isinstance(manifest.get("md5"), dict) else {}
    index = _read_json(folder / UNPACKED, report)
    before = json.dumps(index, sort_keys=True)
    parts, hows, unpacked = {}, set(), {}
    try:
        for part in FILES:
            parts[part], how, unpacked[part] = _read_part(
                folder, part, official_md5, known_md5, index, report)
            hows.add(how)
        check_consistent(parts, str(folder))
        split = _split_of(hows, manifest, folder)
    except ValueError as err:
        report(f"corrupt data: {err}; not using {folder} (its files are left as they "
               "are)")
        raise SourceUnavailable(str(err)) from err
    if hows in ({"official"}, {"manifest"}):  # a verified set: unpack it once (speed)
        for part, data in unpacked.items():
            if data is not None:
                _keep_unpacked(folder / FILES[part], data, next(iter(hows)), index)
    if json.dumps(index, sort_keys=True) != before:
        try:
            atomic_write(folder / UNPACKED, json.dumps(index, indent=1).encode())
        except OSError:
            pass
    origin = str(manifest.get("origin", folder)) if hows == {"manifest"} else str(folder)
    return FashionMNISTArrays(**parts, source=source, origin=origin, split=split)


# ---------------------------------------------------------------- writing


def _check_ours(folder: Path, ours: set, index: dict) -> None:
    """Raise unless every file ``write_set`` would replace is one d2lcnn wrote."""
    for name in FILES.values():
        gz, plain = folder / f"{name}.gz", folder / name
        if gz.exists() and gz.name not in ours:
            raise FileExistsError(f"{gz} exists and was not written by d2lcnn; it is "
                                  "left as it is")
        if plain.exists() and plain.name not in ours:
            entry = index.get(plain.name)
            if not entry or sha256_bytes(plain.read_bytes()) != entry.get("sha256"):
                raise FileExistsError(f"{plain} exists and is not (or no longer) the "
                                      "copy d2lcnn unpacked; it is left as it is")


def write_set(folder: Path, arrays: FashionMNISTArrays) -> Path:
    """Write ``arrays`` as torchvision-layout ``.gz`` files plus a manifest, atomically.

    Only into a folder that holds no file of those names, or files d2lcnn wrote itself
    (named in its manifest, or unpacked copies whose sha256 still holds). A manifest
    marked incomplete is written first and the final one last: a set interrupted
    half-way is never taken for complete, and the next write may replace it.

    Example:
        >>> folder = Path(tempfile.mkdtemp())
        >>> z = np.zeros((1, 28, 28), np.uint8); one = np.zeros(1, np.uint8)
        >>> arrays = FashionMNISTArrays(z, one, z, one, "npm", "x", "split")
        >>> write_set(folder, arrays).name == folder.name
        True
        >>> _ = (folder / "mine").mkdir(); _ = (folder / "mine" / "t10k-labels-idx1-ubyte.gz"
        ...     ).write_bytes(b"a user's file")
        >>> write_set(folder / "mine", arrays)
        Traceback (most recent call last):
        ...
        FileExistsError: ... exists and was not written by d2lcnn; it is left as it is
    """
    require_writable(folder)
    manifest = _read_json(folder / MANIFEST, lambda _: None)
    ours = set(manifest.get("md5", {})) | set(manifest.get("writing", []))
    _check_ours(folder, ours, _read_json(folder / UNPACKED, lambda _: None))
    names = [f"{name}{ext}" for name in FILES.values() for ext in (".gz", "")]
    atomic_write(folder / MANIFEST, json.dumps({"complete": False,
                                                "writing": names}).encode())
    (folder / UNPACKED).unlink(missing_ok=True)
    checksums = {}
    for part, name in FILES.items():
        (folder / name).unlink(missing_ok=True)  # our unpacked copy (checked above)
        # mtime=0 makes the .gz bytes (and md5) depend on the content only
        data = gzip.compress(idx_bytes(getattr(arrays, part)), compresslevel=6, mtime=0)
        atomic_write(folder / f"{name}.gz", data)
        checksums[f"{name}.gz"] = hashlib.md5(data).hexdigest()
    manifest = {"complete": True, "source": arrays.source, "origin": arrays.origin,
                "split": arrays.split, "md5": checksums}
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
    return folder
