"""How a run ends early without losing anything: Stop, Ctrl-C, divergence, out of memory.

A training loop (``train_ch6``, the d2l 1.0 ``Trainer``) raises ``TrainingStopped`` at a
batch boundary; the loop's caller turns it into a History status and message. Ctrl-C is
deferred to the next batch boundary by ``deferred_ctrl_c``; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import torch

__all__ = ["TrainingStopped", "deferred_ctrl_c", "is_out_of_memory", "stop_requested"]


class TrainingStopped(Exception):
    """Raised inside the loop to end a run early; carries the status and message.

    Example:
        >>> TrainingStopped("stopped", "stopped on request").status
        'stopped'
    """

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


@contextlib.contextmanager
def deferred_ctrl_c():
    """Turn the first Ctrl-C into a flag checked at batch boundaries; a second aborts.

    Only the main thread can own signal handlers; elsewhere (a panel's worker thread)
    the flag never rises and the caller's ``stop`` does the job.

    Example:
        >>> with deferred_ctrl_c() as pressed:
        ...     pressed.is_set()
        False
    """
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return

    def handler(signum, frame):
        if pressed.is_set():
            raise KeyboardInterrupt
        pressed.set()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # e.g. an embedded interpreter without signal support
        yield pressed
        return
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_requested(stop) -> bool:
    """Whether ``stop`` (None, a ``threading.Event`` or a callable) asks to stop.

    Example:
        >>> event = threading.Event(); event.set()
        >>> stop_requested(None), stop_requested(event), stop_requested(lambda: False)
        (False, True, False)
    """
    if stop is None:
        return False
    if hasattr(stop, "is_set"):
        return stop.is_set()
    return bool(stop())


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an out-of-memory error of any device (or of the host).

    Example:
        >>> is_out_of_memory(RuntimeError("CUDA out of memory")), is_out_of_memory(
        ...     ValueError("x"))
        (True, False)
    """
    if isinstance(error, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text)
