"""keep_freed_memory: glibc keeps large freed blocks for reuse instead of unmapping them."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

PROBE = """
import ctypes
import torch
from d2lcnn.utils import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
import sys
tuned = keep_freed_memory() if sys.argv[1:] == ["tune"] else False
batch = torch.empty(256, 1, 224, 224)  # 51 MiB: mmapped by default glibc settings
print(tuned, libc.mallinfo2().hblkhd >= batch.nbytes)
"""


def glibc_with_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not glibc_with_mallinfo2(), reason="needs glibc >= 2.33")
@pytest.mark.parametrize("args, expected", [(["tune"], "True False"), ([], "False True")])
def test_large_batches_come_from_the_heap_once_tuned(args, expected):
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                         text=True, check=True).stdout.split()
    assert " ".join(out) == expected
