"""Recorded results: each chapter's run saved as JSON for the README and comparison chapter.

A record holds the model name, the profile, the device (GPU name or CPU model), the
data source and split, the d2lcnn and torch versions, and the History. A run on the
bundled mini set is never recorded, so the test suite (smoke profile, mini set) cannot
overwrite the results of a real run.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .history import History
from .settings import profile_name
from .utils import atomic_write, cpu_model, device_name

__all__ = ["load_results", "save_result", "seeds_report"]


def save_result(name: str, history: History, *, directory="results",
                profile: str | None = None, force: bool = False) -> Path | None:
    """Record a finished run as ``<directory>/<name>.json`` (a chapter runs in
    ``notebooks/``, so its records go to ``notebooks/results``); mini-set runs are
    skipped unless ``force``.

    Example:
        >>> h = History(device="cpu", settings={"data_source": "mini"})
        >>> h.add_epoch(0.5, 0.8, 0.79, 1e3, 9e2, 1.0)
        >>> save_result("demo", h) is None
        not recorded: 'demo' was trained on the bundled mini set, not the full data
        True
    """
    if not len(history):
        raise ValueError(f"history for {name!r} has no finished epoch; nothing to record")
    data = history.settings.get("data_source")
    if data == "mini" and not force:
        print(f"not recorded: {name!r} was trained on the bundled mini set, not the full data")
        return None
    from . import __version__

    record = {
        "name": name,
        "profile": profile or profile_name(),
        "device": history.device,
        "device_name": device_name(history.device),
        "cpu_model": cpu_model(),  # also for a GPU run: the host decides the data path
        "data_source": data,
        "data_split": history.settings.get("data_split"),
        "d2lcnn": __version__,
        "torch": torch.__version__,
        "history": history.to_dict(),
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    seeds = json.loads(path.read_text()) if path.exists() else {}
    if isinstance(seeds, dict) and seeds.get("seeds"):  # benchmarks/recipes.py's seeds record
        seeds["chapter_run"] = record  # kept beside it: one run never replaces several
        record = seeds
        print(f"{name}'s {len(seeds['seeds'])}-seed record kept; this run is its chapter_run")
    path = atomic_write(path, (json.dumps(record, indent=1) + "\n").encode())
    print(f"recorded {name}: test acc {history.test_acc[-1]:.3f} ({record['profile']} "
          f"profile, {history.device}) -> {path}")
    return path


def load_results(directory="results") -> dict[str, dict]:
    """All recorded chapter runs by name, each with ``history`` as a History (league
    files, ``league-*.json``, hold rows of many runs: ``benchmarks/league.py`` reads them).

    Example:
        >>> import tempfile
        >>> load_results(tempfile.mkdtemp())
        {}
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no results folder {directory.resolve()}; pass directory= "
                                "(the chapters write notebooks/results)")
    records = {}
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("league-"):
            continue
        try:
            record = json.loads(path.read_text())
            for run in (record, record.get("chapter_run") or {}):
                if "history" in run:
                    run["history"] = History.from_dict(run["history"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a readable result record ({error}); delete it "
                             "or run its chapter again to rewrite it") from error
        records[record["name"]] = record
    return records


def seeds_report(name: str, directory="results") -> dict | None:
    """Print a chapter's headline: test accuracy per seed, mean with its 95 % t interval,
    the minimum, how the settings were chosen, the maps at the last stage, the CPU and the
    split (``benchmarks/recipes.py --final --record`` writes the record). Returns it.

    Example:
        >>> import tempfile
        >>> seeds_report("nin", tempfile.mkdtemp()) is None
        no seeds record for 'nin' yet: run benchmarks/recipes.py nin ... --final --record
        True
    """
    path = Path(directory) / f"{name}.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    if not record.get("seeds"):
        print(f"no seeds record for {name!r} yet: run benchmarks/recipes.py {name} ... "
              "--final --record")
        return None
    from .stats import mean_interval

    runs = [s for s in record["seeds"] if s.get("test_acc") is not None]
    for run in runs:
        print(f"seed {run['seed']}: test acc {run['test_acc']:.3f}, val acc "
              f"{run['val_acc']:.3f}, {run['train_seconds']:.0f} s of training")
    tests = [run["test_acc"] for run in runs]
    mean, half = mean_interval(tests)  # one seed: an infinite half width
    sweep = record.get("sweep") or {}
    chosen = (f"lr {record['lr']:g} chosen on {record.get('valid_images', 0):,} validation "
              f"images from {', '.join(f'{lr:g}' for lr in sweep['lrs'])}" if sweep else
              f"lr {record['lr']:g}")
    maps = record.get("maps") or {}
    side = maps.get("global_pool") or maps.get("last_conv") or ["?", "?"]
    print(f"{name}: test acc {mean:.3f} ± {half:.3f} (95 % t interval over {len(tests)} "
          f"seeds), min {min(tests):.3f}; {chosen}; {record.get('resolution')} px, "
          f"last maps {side[0]}x{side[1]}; {record['epochs']} epochs, "
          f"{record.get('precision')}; {record['cpu_model']} "
          f"({', '.join(record.get('cpu_flags', []))}); {_split(record.get('data_split'))}")
    return record


def _split(split: str | None) -> str:
    if not split:
        return "split not recorded"
    official = split.startswith("official")
    return "official split" if official else "npm rebuild, not the official split"
