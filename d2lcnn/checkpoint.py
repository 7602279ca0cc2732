"""Checkpoints: save a run (model, optimizer, history, settings) and resume it safely.

Written to a temporary name and renamed, so an interrupted save never leaves a file
that looks complete; loaded with ``weights_only=True``, so a checkpoint cannot run code.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import torch
from torch import nn

from .history import History

__all__ = ["load_checkpoint", "save_checkpoint"]

FORMAT = "d2lcnn-checkpoint-1"
FIELDS = {"format", "architecture", "model", "optimizer", "history", "settings"}


def _architecture(net: nn.Module) -> dict:
    return {"class": type(net).__name__,
            "shapes": {k: list(v.shape) for k, v in net.state_dict().items()}}


def _plain(value):
    # only what weights_only loading accepts
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def save_checkpoint(path, net: nn.Module, optimizer=None, history: History | None = None,
                    settings: dict | None = None) -> Path:
    """Write model, optimizer state, history and settings to ``path`` atomically.

    Example:
        >>> import tempfile
        >>> save_checkpoint(Path(tempfile.mkdtemp()) / "lenet.pt", nn.Linear(2, 2)).name
        'lenet.pt'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "architecture": _architecture(net), "model": net.state_dict(),
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "history": _plain(history.to_dict()) if history is not None else None,
             "settings": _plain(settings or {})}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        tmp.replace(path)
    except (OSError, RuntimeError) as error:
        kept = f"the previous {path.name} is kept" if path.exists() else "nothing was written"
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error) \
                or "unexpected pos" in str(error):  # torch's zip writer on a full disk
            raise OSError(errno.ENOSPC, f"no space left on the disk to save {path}; {kept}; "
                          "free some space or save to another folder") from error
        raise OSError(getattr(error, "errno", None) or errno.EIO,
                      f"could not save {path} ({error}); {kept}") from error
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path, net: nn.Module, optimizer=None, *, map_location="cpu") -> dict:
    """Load a checkpoint into ``net`` (and ``optimizer``); return history and settings.

    Everything is checked before any weight changes. Continue training with
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
    if map_location is not None and not callable(map_location) \
            and not isinstance(map_location, dict):
        from .utils import check_device

        check_device(map_location)  # "cuda" without a GPU: say so, not "corrupt file"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable d2lcnn checkpoint ({type(error).__name__}:"
                         f" {error}); it may be truncated or from another program: save it "
                         "again") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a d2lcnn checkpoint (no {FORMAT!r} marker)")
    unknown, missing = sorted(set(state) - FIELDS), sorted(FIELDS - set(state))
    if unknown or missing:
        raise ValueError(f"{path} is a d2lcnn checkpoint with unexpected fields (unknown "
                         f"{unknown}, missing {missing}); it was written by another version "
                         "of d2lcnn: load it with that version")
    saved, ours = state["architecture"], _architecture(net)
    if saved != ours:
        lines = [f"{path} holds a {saved['class']}, not this {ours['class']}:"]
        for key in sorted(set(saved["shapes"]) | set(ours["shapes"])):
            a, b = saved["shapes"].get(key), ours["shapes"].get(key)
            if a != b and len(lines) < 7:
                lines.append(f"  {key}: saved {a}, this net {b}")
        lines.append("Build the same architecture (and resolution) as when it was saved.")
        raise ValueError("\n".join(lines))
    try:
        history = History.from_dict(state["history"]) if state["history"] else None
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}'s history cannot be read ({error}); load the weights with "
                         "torch.load(path, weights_only=True)['model'] instead") from error
    if optimizer is not None and state["optimizer"] is not None:
        try:  # first: it touches no weight, and it is the load that can still fail
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as error:
            raise ValueError(f"{path}'s optimizer state does not fit this optimizer ({error}); "
                             "build the optimizer as when the checkpoint was saved (same type "
                             "and parameter groups), or pass optimizer=None") from error
    net.load_state_dict(state["model"])
    return {"history": history, "settings": state["settings"]}
