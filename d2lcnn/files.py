"""Writing files so that an interrupted write never leaves one that looks complete."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "temp_file"]


def temp_file(target: Path) -> tuple[int, str]:
    """A temporary file next to ``target`` with the permissions a plain open() gives.

    Example:
        >>> import tempfile
        >>> fd, tmp = temp_file(Path(tempfile.mkdtemp()) / "x.json"); os.close(fd)
        >>> Path(tmp).name.startswith(".x.json.")
        True
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                               suffix=".part")
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide a shared data root
    return fd, tmp


def atomic_write(path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    Example:
        >>> import tempfile
        >>> atomic_write(Path(tempfile.mkdtemp()) / "a.txt", b"hi").read_bytes()
        b'hi'
    """
    path = Path(path)
    fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
