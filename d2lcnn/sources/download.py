"""Source 2: the official files from torchvision's mirrors, checked by their md5.

torchvision's ``download_url`` writes straight to the final name; here each file goes
to a temporary name first and is renamed only once complete and verified, so an
interrupted download never leaves a file that looks complete — and never replaces one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.error import HTTPError

from ..files import temp_file
from .arrays import FashionMNISTArrays, SourceUnavailable
from .folders import own_dir, raw_dir, read_folder, require_writable

__all__ = ["download", "fetch_verified", "official_md5", "torchvision_mirrors"]


def torchvision_mirrors() -> list[str]:
    """The mirrors torchvision's FashionMNIST downloads from (read from torchvision).

    Example:
        >>> all(m.endswith("/") for m in torchvision_mirrors())
        True
    """
    from torchvision.datasets import FashionMNIST

    return list(FashionMNIST.mirrors)


def official_md5() -> dict[str, str]:
    """md5 of each official ``.gz`` file, as torchvision records them.

    Example:
        >>> official_md5()["t10k-labels-idx1-ubyte.gz"]
        'bb300cfdad3c16e7a12a480ee83cd310'
    """
    from torchvision.datasets import FashionMNIST

    return dict(FashionMNIST.resources)


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
        if target.exists():  # appeared meanwhile (another process): keep it
            return
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def download_folder(root: Path, checksums: dict[str, str], report) -> Path:
    """torchvision's folder unless it holds other files of those names; then our own."""
    from torchvision.datasets.utils import check_integrity

    folder = raw_dir(root)
    taken = [name for name, md5 in checksums.items()
             if (folder / name).exists() and not check_integrity(str(folder / name), md5)]
    if not taken:
        return folder
    own = own_dir(root, "download")
    report(f"{folder} already holds {', '.join(taken)}, not the official files (left "
           f"as they are); the official set goes to {own}")
    return own


def _fetch_one(name: str, md5: str, target: Path, mirrors: list[str],
               unreachable: set, timeout: float, report) -> str:
    for number, mirror in enumerate(mirrors, 1):
        if mirror in unreachable:
            continue
        try:
            fetch_verified(mirror.rstrip("/") + "/" + name, target, md5, timeout)
            return mirror
        except (OSError, ValueError, http.client.HTTPException) as err:
            if isinstance(err, OSError) and not isinstance(err, HTTPError):
                unreachable.add(mirror)  # no connection: don't wait on it per file
            then = "trying the next" if number < len(mirrors) else "no mirror left"
            report(f"mirror {number}/{len(mirrors)} {mirror} failed for {name}: "
                   f"{err or type(err).__name__}; {then}")
    raise SourceUnavailable(f"no mirror delivered {name} (tried {len(mirrors)})")


def download(root: Path, report: Callable[[str], None], *,
             mirrors: Iterable[str] | None = None, checksums: dict | None = None,
             timeout: float = 10.0) -> FashionMNISTArrays:
    """Fetch the official ``.gz`` files, mirror after mirror, each verified."""
    from torchvision.datasets.utils import check_integrity

    mirrors = list(torchvision_mirrors() if mirrors is None else mirrors)
    checksums = official_md5() if checksums is None else dict(checksums)
    folder = download_folder(Path(root), checksums, report)
    require_writable(folder)
    used, unreachable = set(), set()
    for name, md5 in checksums.items():
        if check_integrity(str(folder / name), md5):
            continue  # already here and verified
        used.add(_fetch_one(name, md5, folder / name, mirrors, unreachable, timeout,
                            report))
    arrays = read_folder(folder, report, checksums, source="download")
    origin = f"{', '.join(sorted(used)) or 'mirrors'} into {folder} (md5 verified)"
    return FashionMNISTArrays(**arrays.parts(), source="download", origin=origin,
                              split=arrays.split)
