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

__all__ = ["TrainingStopped", "deferred_ctrl_c", "epochs_kept", "is_out_of_memory",
           "oom_message", "restore_if_diverged", "snapshot", "stop_requested",
           "supervise"]


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


def epochs_kept(n: int) -> str:
    """``"1 finished epoch"`` / ``"3 finished epochs"``.

    Example:
        >>> epochs_kept(1), epochs_kept(2)
        ('1 finished epoch', '2 finished epochs')
    """
    return f"{n} finished epoch" + ("" if n == 1 else "s")


def snapshot(module: torch.nn.Module) -> dict:
    """A copy of ``module``'s weights and buffers, to hand back after a divergence.

    Example:
        >>> layer = torch.nn.Linear(2, 2); saved = snapshot(layer)
        >>> _ = layer.weight.data.fill_(float("nan")); restore_if_diverged(
        ...     layer, saved, TrainingStopped("diverged", "nan"))
        True
    """
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def restore_if_diverged(module: torch.nn.Module, saved: dict,
                        stopped: TrainingStopped) -> bool:
    """After a divergence, load ``saved`` if any weight is no longer finite.

    Returns whether it did; the stop message then says the weights are the epoch's
    starting ones, the last finite weights known.
    """
    if stopped.status != "diverged":
        return False
    if all(bool(torch.isfinite(p).all()) for p in module.parameters()):
        return False
    module.load_state_dict(saved)
    stopped.restored = True
    return True


def oom_message(history, device) -> str:
    """What to do after running out of memory; the finished epochs are kept."""
    return (f"out of memory at epoch {len(history) + 1} on {device}: use a smaller "
            f"batch_size or resize, then run again; the model and the "
            f"{epochs_kept(len(history))} so far are kept")


def supervise(history, body, *, stop=None, describe=None, device=None):
    """Run ``body(should_stop)``; whatever ends it, record how in ``history``.

    ``should_stop()`` raises ``TrainingStopped`` after a Ctrl-C or when ``stop`` is
    set; ``body`` calls it between batches. A ``TrainingStopped`` ends the run with
    its status and ``describe(stopped)`` as the message; out of memory ends it as
    ``out_of_memory``; any other exception is re-raised carrying ``.history``.
    Returns ``body``'s result, or None when the run ended early.

    Example:
        >>> from d2lcnn.history import History
        >>> h = History()
        >>> supervise(h, lambda should_stop: 42), h.status
        (42, 'completed')
    """
    try:
        with deferred_ctrl_c() as ctrl_c:
            def should_stop() -> None:
                if ctrl_c.is_set():
                    raise TrainingStopped("interrupted", "interrupted by Ctrl-C")
                if stop_requested(stop):
                    raise TrainingStopped("stopped", "stopped on request")

            result = body(should_stop)
        history.end("completed")
        return result
    except TrainingStopped as stopped:
        history.end(stopped.status, describe(stopped) if describe else str(stopped))
    except BaseException as error:
        if not is_out_of_memory(error):
            error.history = history  # nothing is lost: the caller can still read it
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            history.end(status, f"{type(error).__name__}: {error}")
            raise
        history.end("out_of_memory", oom_message(history, device))
        del error
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return None
