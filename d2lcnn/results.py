"""Recorded results: each chapter's run saved as JSON for the README and comparison chapter.

A record holds the model name, the profile, device (GPU name or CPU model), data source
and split, d2lcnn and torch versions, the settings and the History. Smoke-profile runs
(tests) are never recorded, and no result of another profile is recorded from the mini
set, so running the test suite cannot overwrite the results of a real run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .devices import cpu_model, device_name
from .files import atomic_write
from .history import History
from .profiles import profile_name

__all__ = ["results_dir", "save_result", "load_results"]

ENV_VAR = "D2LCNN_RESULTS"


def results_dir() -> Path:
    """Where results live: ``$D2LCNN_RESULTS``, else ``results/`` in the working folder
    (a chapter runs in ``notebooks/``, so its records go to ``notebooks/results``).

    Example:
        >>> results_dir().name
        'results'
    """
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path("results")


def save_result(name: str, history: History, *, profile: str | None = None,
                directory=None, force: bool = False) -> Path | None:
    """Record a finished run as ``<results_dir>/<name>.json``; skipped in the smoke profile.

    Example:
        >>> h = History(device="cpu"); h.add_epoch(0.5, 0.8, 0.79, 1e3, 9e2, 1.0)
        >>> save_result("demo", h, profile="smoke") is None
        smoke profile: result for 'demo' not recorded
        True
    """
    profile = profile or profile_name()
    if profile == "smoke" and not force:
        print(f"smoke profile: result for {name!r} not recorded")
        return None
    if not len(history):
        raise ValueError(f"history for {name!r} has no finished epoch; nothing to record")
    data = history.settings.get("data_source")
    if data == "mini" and profile != "smoke" and not force:
        raise ValueError(f"{name!r} was trained on the bundled mini set, so it is not a "
                         f"{profile}-profile result; get the full set (python -m "
                         "d2lcnn.data download) and train again")
    directory = Path(directory) if directory is not None else results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    from . import __version__

    record = {
        "name": name,
        "profile": profile,
        "device": history.device,
        "device_name": device_name(history.device),
        "cpu_model": cpu_model(),  # also for a GPU run: the host decides the data path
        "data_source": data,
        "data_split": history.settings.get("data_split"),
        "d2lcnn": __version__,
        "torch": torch.__version__,
        "history": history.to_dict(),
    }
    path = directory / f"{name}.json"
    atomic_write(path, (json.dumps(record, indent=1) + "\n").encode())
    print(f"recorded {name}: test acc {history.test_acc[-1]:.3f} ({profile} profile, "
          f"{history.device}) -> {path}")
    return path


def load_results(directory=None) -> dict[str, dict]:
    """All recorded chapter runs by name, each with ``history`` as a History (league
    files, ``league-*.json``, are rows of many runs: ``d2lcnn.league`` reads them).

    Example:
        >>> import tempfile
        >>> load_results(tempfile.mkdtemp())
        {}
    """
    directory = Path(directory) if directory is not None else results_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"no results folder {directory.resolve()}; pass "
                                "directory= (the chapters write notebooks/results) or "
                                f"set ${ENV_VAR}")
    records = {}
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("league-"):
            continue
        record = json.loads(path.read_text())
        record["history"] = History.from_dict(record["history"])
        records[record["name"]] = record
    return records
