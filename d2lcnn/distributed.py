"""Data-parallel training: DistributedDataParallel over ``torchrun``, started as a subprocess.

``train_ddp("resnet18", nproc=2, ...)``, or ``train_ch6(..., devices=d2l.try_all_gpus())``
with several devices, writes the run to ``spec.json`` and starts ``torchrun`` on this module.
Each rank builds the net, wraps it in DDP and trains it with ``train_ch6`` on its shard of
every epoch's permutation; rank 0's History events come back as JSON lines and feed the
caller's History (and so its Animator). A net made in a notebook cell cannot reach another
process: name it (the registry) or pass an importable ``"module:function"``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from .history import History
from .train import _renderers, stop_requested

__all__ = ["RankShard", "train_ddp"]


class RankShard:
    """Rank ``rank``'s part of a FashionMNISTBatches: each epoch one permutation, the same on
    every rank (``seed`` + epoch), of which every ``world``-th example, ``n % world`` dropped
    so all ranks take as many steps; batches of ``batch_size // world``. ``shuffle=False``:
    file order, nothing dropped (evaluation)."""

    def __init__(self, batches, rank: int, world: int, *, seed: int = 0, shuffle=True):
        if batches.batch_size % world:
            raise ValueError(f"batch_size {batches.batch_size} does not split over {world} "
                             "processes; pass a multiple of the process count")
        self.base, self.rank, self.world, self.seed = batches, rank, world, seed
        self.shuffle, self.epoch, self.per_rank = shuffle, 0, batches.batch_size // world

    def __getattr__(self, name):  # batch_size, resize, source: the whole loader's
        return getattr(self.__dict__["base"], name)

    @property
    def num_examples(self) -> int:  # this rank's
        n = self.base.num_examples
        return len(range(self.rank, n - n % self.world if self.shuffle else n, self.world))

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.per_rank)

    def __iter__(self):
        n, base = self.base.num_examples, self.base
        order = torch.arange(n)
        if self.shuffle:
            self.epoch += 1
            order = torch.randperm(n, generator=torch.Generator().manual_seed(
                self.seed + self.epoch - 1))[:n - n % self.world]
        order = order[self.rank::self.world].to(base.device)
        for start in range(0, len(order), self.per_rank):
            index = order[start:start + self.per_rank]
            yield base._to_float(base.images[index]), base.labels[index]

    def peek(self):
        return tuple(t[:self.per_rank] for t in self.base.peek())

    def to(self, device):
        self.base = self.base.to(device)
        return self


def _builder(net) -> str:
    """A registry name or ``"module:function"``; an importable function becomes the latter."""
    where = f"{getattr(net, '__module__', '')}:{getattr(net, '__qualname__', '')}"
    if isinstance(net, str):
        return net
    if not callable(net) or isinstance(net, torch.nn.Module) or where.startswith(
            ("__main__:", ":")) or "<" in where:
        raise TypeError(
            f"several devices train in separate processes, which cannot receive a "
            f"{type(net).__name__} defined in this notebook or script; pass the net by its "
            "registry name (d2l.list_models(), or @d2l.register_model on its builder in a "
            ".py module), or as 'module:function', a builder importable from a .py file")
    return where


def train_ddp(net, *, nproc: int = 2, num_epochs: int = 10, lr: float = 0.1,
              batch_size: int = 256, resize=None, subset=None, test_subset=None,
              source: str = "auto", seed: int = 0, profile: str = "full", device="cpu",
              precision: str = "fp32", recipe=None, checkpoint=None, history=None,
              animator=None, stop=None, verbose: bool = True, torchrun_args=("--standalone",)
              ) -> History:
    """Train ``net`` (a registry name or builder) with DDP on ``nproc`` processes: rank r on
    ``cuda:r`` with NCCL for ``device="cuda"``, else gloo. ``batch_size`` is the global one;
    ``checkpoint``: where rank 0 saves the weights. Returns the History rank 0's events fed.
    """
    spec = dict(net=_builder(net), num_epochs=num_epochs, lr=lr, batch_size=batch_size,
                resize=resize, subset=subset, test_subset=test_subset, source=source,
                seed=seed, profile=profile, device=str(device), precision=precision,
                recipe=recipe, checkpoint=None if checkpoint is None else str(checkpoint))
    folder = Path(tempfile.mkdtemp(prefix="d2lcnn-ddp-"))  # spec, curve and log; removed after
    spec["curve"] = str(folder / "curve.jsonl")
    (folder / "spec.json").write_text(json.dumps(spec))
    history = history if history is not None else History(device=f"{nproc} x {device}")
    history.start(nproc=nproc, run_folder=str(folder), **spec)
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               *torchrun_args, "-m", "d2lcnn.distributed", str(folder / "spec.json")]
    try:  # the caller's plot (d2l's, or an add(x, ys) object) follows rank 0's events
        with _renderers(history, animator, False, 1), open(folder / "log.txt", "w+b") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # Ctrl-C reaches it through us
            status = _follow(process, log, spec["curve"], history, stop, verbose)
            log.seek(0)
            output = log.read().decode(errors="replace")
    except BaseException as error:  # e.g. torchrun could not start: nothing left behind
        if history.status == "running":
            history.end("failed", f"{type(error).__name__}: {error}")
        error.history = history
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if status is not None:
        history.end(status, f"{status}: every rank ended; {len(history)} finished epochs kept")
    elif process.returncode != 0:
        cause = re.findall(r"^\s*(\w+(?:Error|Exception|Interrupt)\b.*)$", output, re.M)
        rank = re.findall(r"rank\s*:\s*(\d+)", output)
        error = RuntimeError(
            f"distributed training failed{' on rank ' + rank[0] if rank else ''}: "
            f"{cause[-1] if cause else 'see below'} (torchrun exited with "
            f"{process.returncode}); the output ends with:\n{output[-2500:]}")
        history.end("failed", str(error).split("\n")[0])
        error.history = history
        raise error
    elif history.status == "running":
        history.end("failed", f"the ranks exited without reporting the end:\n{output[-1500:]}")
    return history


def _follow(process, log, curve: str, history: History, stop, verbose: bool) -> str | None:
    """Replay rank 0's events and echo the output until torchrun exits (None) or the
    caller ends the run ("stopped", "interrupted"): then every rank is ended."""
    done = shown = 0
    try:
        while True:
            finished = process.poll() is not None
            done = _replay(curve, done, history)
            log.seek(shown)
            text = log.read()
            shown += len(text)
            if verbose and text:
                print(text.decode(errors="replace"), end="", flush=True)
            if finished:
                return None
            if stop_requested(stop):
                return "stopped"
            time.sleep(0.1)
    except KeyboardInterrupt:
        return "interrupted"
    finally:
        _end(process)


def train_from_ch6(net, train_iter, test_iter, num_epochs, lr, devices, **options):
    """``train_ch6(..., devices=[...])``: the loaders' settings, one process per device."""
    if not all(hasattr(it, "images") for it in (train_iter, test_iter)):
        raise TypeError("train_ch6(devices=[...]) reloads the data in each process: pass "
                        "the iterators of d2l.load_data_fashion_mnist")
    if test_iter.split != "test":  # the ranks would evaluate on the test set instead
        raise ValueError(f"train_ch6(devices=[...]) evaluates on the test set, but got the "
                         f"{test_iter.split!r} split; tune on one device (devices=None), "
                         "then train the chosen settings on several")
    return train_ddp(net, nproc=len(devices), num_epochs=num_epochs, lr=lr,
                     batch_size=train_iter.batch_size, source=train_iter.source,
                     resize=train_iter.resize[0] if train_iter.resize else None,
                     subset=train_iter.num_examples, test_subset=test_iter.num_examples,
                     device=torch.device(devices[0]).type, **options)


def _replay(path: str, done: int, history: History) -> int:
    """Apply rank 0's complete JSON lines after the first ``done``: ``[method, args]``."""
    with contextlib.suppress(FileNotFoundError), open(path) as lines:
        for number, line in enumerate(lines):
            if number >= done and line.endswith("\n"):
                method, args, *kwargs = json.loads(line)
                getattr(history, method)(*args, **(kwargs[0] if kwargs else {}))
                done = number + 1
    return done


def _end(process: subprocess.Popen) -> None:
    """SIGINT torchrun (it ends its ranks, then itself), then SIGTERM, then SIGKILL."""
    for sent in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            if process.poll() is None:
                os.killpg(process.pid, sent)
            process.wait(timeout=10)
            return


def main(spec_path: str) -> None:
    """One rank (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from .data import load_data_fashion_mnist
    from .recipe import Recipe, initialise, xavier_init
    from .settings import build_model
    from .train import evaluate_accuracy_gpu, train_ch6
    from .utils import native_bf16

    spec = json.loads(Path(spec_path).read_text())
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local, cuda = int(os.environ.get("LOCAL_RANK", 0)), spec["device"].startswith("cuda")
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        torch.manual_seed(spec["seed"])
        train, test = load_data_fashion_mnist(
            spec["batch_size"], spec["resize"], subset=spec["subset"], source=spec["source"],
            test_subset=spec["test_subset"], seed=spec["seed"], verbose=rank == 0)
        train_iter = RankShard(train, rank, world, seed=spec["seed"]).to(device)
        test_iter = RankShard(test, rank, world, shuffle=False).to(device)
        module, _, function = spec["net"].rpartition(":")
        net = (getattr(importlib.import_module(module), function)() if module else
               build_model(function, spec["profile"], spec["resize"])).to(device)
        with torch.no_grad():  # materialise lazy layers, then initialise as train_ch6 does
            net.eval()(train_iter.peek()[0][:2])
        recipe = Recipe.of(spec["recipe"])
        initialise(net, recipe.init_function() if recipe else xavier_init)
        ddp = DistributedDataParallel(net, device_ids=[local] if cuda else None)  # rank 0's

        def evaluate(ddp, test_iter):  # each rank its shard; the counts summed
            count = test_iter.num_examples
            correct = evaluate_accuracy_gpu(net, test_iter, device) * count if count else 0
            counts = torch.tensor([correct, count], dtype=torch.float64, device=device)
            dist.all_reduce(counts)
            return float(counts[0] / counts[1])

        precision = spec["precision"]  # "auto" would time each rank apart: decided here
        if precision == "auto":
            precision = "bf16" if native_bf16(device) else "fp32"
        history = History(device=f"{world} x {device.type}")
        if rank == 0:  # on another machine (torchrun --nnodes) its folder may not exist
            Path(spec["curve"]).parent.mkdir(parents=True, exist_ok=True)
        curve = open(spec["curve"], "a") if rank == 0 else None  # noqa: SIM115
        if curve:  # where the data came from, for the caller's record (save_result)
            _write_line(curve, ["start", [], {"data_source": train.source,
                                              "data_split": train.data_split}])
            history.subscribe(lambda event, h: _write(curve, event, h))
        train_ch6(ddp, train_iter, test_iter, spec["num_epochs"], spec["lr"], device,
                  init=None, recipe=recipe, animator=False, verbose=rank == 0,
                  history=history, precision=precision, channels_last=False,
                  evaluate=evaluate)
        if curve and spec["checkpoint"]:
            from .checkpoint import save_checkpoint
            save_checkpoint(spec["checkpoint"], net, history=history)
    finally:
        dist.destroy_process_group()


def _write(curve, event: str, h: History) -> None:
    """Rank 0's History listener: each event as the call that repeats it, one JSON line."""
    line = (["add_point", [h.last_x, {k: h.last(k) for k in ("train loss", "train acc")}]]
            if event == "point" else
            ["add_epoch", [getattr(h, k)[-1] for k in ("train_loss", "train_acc", "test_acc",
             "examples_per_sec", "examples_per_sec_e2e", "wall_time")]]
            if event == "epoch" else ["end", [h.status, h.message]])
    _write_line(curve, line)


def _write_line(curve, line: list) -> None:
    curve.write(json.dumps(line) + "\n")
    curve.flush()


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(main)(sys.argv[1])
