"""Checkpoints: save a run (model, optimizer, history, settings) and resume it safely.

Files are written to a temporary name and renamed, so an interrupted save never leaves a
file that looks complete, and loaded with ``weights_only=True``, so a checkpoint cannot
run code.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import torch
from torch import nn

from .history import History

__all__ = ["save_checkpoint", "load_checkpoint"]

FORMAT = "d2lcnn-checkpoint-1"
FIELDS = {"format", "architecture", "model", "optimizer", "history", "settings"}


def _architecture(net: nn.Module) -> dict:
    return {
        "class": type(net).__name__,
        "shapes": {k: list(v.shape) for k, v in net.state_dict().items()},
    }


def _plain(value):
    """Settings restricted to what ``weights_only`` loading accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def save_checkpoint(path, net: nn.Module, optimizer=None, history: History | None = None,
                    settings: dict | None = None) -> Path:
    """Write model, optimizer state, history and settings to ``path`` atomically.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "lenet.pt"
        >>> save_checkpoint(path, nn.Linear(2, 2)).name
        'lenet.pt'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT,
        "architecture": _architecture(net),
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "history": _plain(history.to_dict()) if history is not None else None,
        "settings": _plain(settings or {}),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        tmp.replace(path)
    except (OSError, RuntimeError) as error:
        raise _save_error(path, error) from error
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _save_error(path: Path, error: BaseException) -> OSError:
    kept = f"the previous {path.name} is kept" if path.exists() else "nothing was written"
    full = getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error)
    if full:
        return OSError(errno.ENOSPC, f"no space left on the disk to save {path}; "
                       f"{kept}; free some space or save to another folder")
    return OSError(getattr(error, "errno", None) or errno.EIO,
                   f"could not save {path} ({error}); {kept}")


def load_checkpoint(path, net: nn.Module, optimizer=None, *, map_location="cpu") -> dict:
    """Load a checkpoint into ``net`` (and ``optimizer``); return history and settings.

    Raises ValueError, naming the differences, when the file was saved from another
    architecture. Continue training with
    ``train_ch6(net, ..., init=None, history=state["history"])``.

    Example:
        >>> import tempfile
        >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "a.pt", nn.Linear(2, 2))
        >>> load_checkpoint(path, nn.Linear(2, 2))["history"] is None
        True
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; check the path or save one first")
    state = _read(path, map_location)
    # everything is checked before any weight is replaced
    unknown, missing = sorted(set(state) - FIELDS), sorted(FIELDS - set(state))
    if unknown or missing:
        raise ValueError(f"{path} is a d2lcnn checkpoint with unexpected fields "
                         f"(unknown {unknown}, missing {missing}); it was written by "
                         "another version of d2lcnn: load it with that version")
    saved, ours = state["architecture"], _architecture(net)
    if saved != ours:
        raise ValueError(_architecture_mismatch(path, saved, ours))
    history = state["history"]
    history = History.from_dict(history) if history is not None else None
    if optimizer is not None and state["optimizer"] is not None:
        try:  # first: it touches no weight, and it is the load that can still fail
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as error:
            raise ValueError(f"{path}'s optimizer state does not fit this optimizer "
                             f"({error}); build the optimizer as when the checkpoint "
                             "was saved (same type and parameter groups), or pass "
                             "optimizer=None") from error
    net.load_state_dict(state["model"])
    return {"history": history, "settings": state["settings"]}


def _read(path: Path, map_location) -> dict:
    if map_location is not None and not callable(map_location) \
            and not isinstance(map_location, dict):
        from .train import check_device

        check_device(map_location)  # "cuda" without a GPU: say so, not "corrupt file"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path} is not a readable d2lcnn checkpoint ({type(error).__name__}: {error}); "
            "it may be truncated or from another program: save it again"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a d2lcnn checkpoint (no {FORMAT!r} marker)")
    return state


def _architecture_mismatch(path: Path, saved: dict, ours: dict) -> str:
    lines = [f"{path} holds a {saved['class']}, not this {ours['class']}:"]
    for key in sorted(set(saved["shapes"]) | set(ours["shapes"])):
        a, b = saved["shapes"].get(key), ours["shapes"].get(key)
        if a != b:
            lines.append(f"  {key}: saved {a}, this net {b}")
        if len(lines) > 6:
            lines.append("  ...")
            break
    lines.append("Build the same architecture (and resolution) as when it was saved.")
    return "\n".join(lines)
