"""Training: d2l's ``train_ch6`` and ``evaluate_accuracy_gpu``, fast and safe to stop.

d2l's semantics are kept (Xavier re-init, plain SGD, cross-entropy, the two closing lines).
What changes: metrics stay on the device and synchronise only at the ~5 curve points per
epoch; a ``History`` is returned; divergence, Ctrl-C, a Stop button and out-of-memory end
the run cleanly, keeping the model and the history, with a message saying what to do.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .devices import best_device, keep_freed_memory
from .files import atomic_write
from .metrics import correct_count
from .plotting import Animator, in_notebook

__all__ = [
    "History",
    "TrainingStopped",
    "evaluate_accuracy_gpu",
    "resolve_channels_last",
    "resolve_precision",
    "train_ch6",
    "xavier_init",
]

PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device) -> str:
    """``"auto"`` becomes ``"bf16"`` where the device computes bf16 natively, else fp32.

    Native bf16: CUDA GPUs from Ampere on, CPUs with AVX512-BF16/AMX.

    Example:
        >>> resolve_precision("fp32", "cpu")
        'fp32'
    """
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        mkldnn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return "bf16" if mkldnn is not None and mkldnn() else "fp32"
    return "fp32"


def resolve_channels_last(channels_last: bool | str, precision: str) -> bool:
    """``"auto"`` becomes True under bf16 autocast, where NHWC was faster for every net
    measured, else False (d2l's NCHW).

    Measured per training step on a 2-core Xeon with AVX512-BF16 (images/s, bf16 ->
    bf16 + channels_last): LeNet 27k -> 32k, AlexNet@96 638 -> 779, ResNet-18@96
    195 -> 255, NiN@72 1007 -> 1404, GoogLeNet@32 484 -> 644, DenseNet@64 491 -> 714,
    MobileNet v1@48 290 -> 339. In fp32 it was mixed (ResNet-18@64 slower).

    Example:
        >>> resolve_channels_last("auto", "bf16"), resolve_channels_last("auto", "fp32")
        (True, False)
    """
    if channels_last == "auto":
        return precision == "bf16"
    return channels_last


@dataclass
class History:
    """What a run produced, epoch by epoch, and how it ended.

    ``status`` is ``running``, ``completed``, ``stopped`` (Stop button / ``stop``),
    ``interrupted`` (Ctrl-C), ``diverged`` (NaN/inf loss) or ``out_of_memory``.

    Example:
        >>> h = History(device="cpu")
        >>> h.add_epoch(0.52, 0.81, 0.79, 5000.0, 4000.0, 12.5)
        >>> len(h), h.test_acc[-1]
        (1, 0.79)
    """

    device: str = "cpu"
    settings: dict = field(default_factory=dict)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    examples_per_sec: list[float] = field(default_factory=list)  # timed train step
    examples_per_sec_e2e: list[float] = field(default_factory=list)  # data+eval too
    wall_time: list[float] = field(default_factory=list)  # seconds per epoch
    status: str = "running"
    message: str = ""

    def add_epoch(
        self,
        train_loss,
        train_acc,
        test_acc,
        examples_per_sec,
        examples_per_sec_e2e,
        wall_time,
    ) -> None:
        self.train_loss.append(float(train_loss))
        self.train_acc.append(float(train_acc))
        self.test_acc.append(float(test_acc))
        self.examples_per_sec.append(float(examples_per_sec))
        self.examples_per_sec_e2e.append(float(examples_per_sec_e2e))
        self.wall_time.append(float(wall_time))

    def __len__(self) -> int:
        return len(self.test_acc)

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self) + 1))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(**data)

    def save(self, path) -> Path:
        """Write the history as JSON (atomically) and return the path."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=1).encode())

    @classmethod
    def load(cls, path) -> History:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __repr__(self) -> str:
        if not len(self):
            return f"History(status={self.status!r}, epochs=0, device={self.device!r})"
        return (
            f"History(status={self.status!r}, epochs={len(self)}, "
            f"train_loss={self.train_loss[-1]:.3f}, train_acc={self.train_acc[-1]:.3f}, "
            f"test_acc={self.test_acc[-1]:.3f}, device={self.device!r})"
        )


class TrainingStopped(Exception):
    """Raised inside the loop to end a run early; carries the status and message."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def xavier_init(module: nn.Module) -> None:
    """d2l's ``init_weights``: Xavier-uniform weights for every Linear and Conv2d.

    Example:
        >>> _ = nn.Sequential(nn.Linear(4, 2)).apply(xavier_init)
    """
    if type(module) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight)


def _autocast(device: torch.device, precision: str):
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def evaluate_accuracy_gpu(
    net: nn.Module,
    data_iter,
    device=None,
    *,
    precision: str = "fp32",
    channels_last: bool = False,
) -> float:
    """Accuracy (a ratio in [0, 1]) of ``net`` on ``data_iter``, computed on ``device``.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> batches = [(torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0]))]
        >>> 0.0 <= evaluate_accuracy_gpu(net, batches) <= 1.0
        True
    """
    if isinstance(net, nn.Module):
        net.eval()
        if device is None:
            device = next(iter(net.parameters())).device
    device = torch.device(device)
    correct = torch.zeros((), device=device)
    count = 0
    with torch.no_grad(), _autocast(device, precision):
        for X, y in data_iter:
            if isinstance(X, list):  # BERT-style inputs, as in d2l
                X = [x.to(device) for x in X]
            else:
                X = X.to(device, non_blocking=True)
                if channels_last:
                    X = X.contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            correct += correct_count(net(X), y)
            count += y.numel()
    if count == 0:
        raise ValueError(
            "evaluate_accuracy_gpu got an empty data iterator; check its batch size"
        )
    return float(correct) / count


@contextlib.contextmanager
def _deferred_ctrl_c():
    """Turn the first Ctrl-C into a flag checked at batch boundaries; a second one aborts.

    Only the main thread can own signal handlers; elsewhere (a panel's worker thread)
    the flag simply never rises and the caller's ``stop`` does the job.
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


def _should_stop(stop) -> bool:
    if stop is None:
        return False
    if hasattr(stop, "is_set"):
        return stop.is_set()
    return bool(stop())


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _check_arguments(num_epochs, lr, precision, channels_last, optimizer) -> None:
    if (
        isinstance(num_epochs, bool)
        or not isinstance(num_epochs, int)
        or num_epochs < 1
    ):
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    if optimizer is None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)):
            raise TypeError(f"lr must be a number such as 0.1, got {lr!r}")
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a finite number > 0 (e.g. 0.1), got {lr!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if channels_last not in (True, False, "auto"):
        raise ValueError(
            f"channels_last must be True, False or 'auto', got {channels_last!r}")


def train_ch6(
    net: nn.Module,
    train_iter,
    test_iter,
    num_epochs: int,
    lr: float,
    device=None,
    *,
    init="xavier",
    optimizer=None,
    loss=None,
    animator=None,
    stop=None,
    precision: str = "fp32",
    channels_last: bool | str = "auto",
    progress: bool | None = None,
    history: History | None = None,
    verbose: bool = True,
) -> History:
    """Train ``net`` with a GPU if there is one (d2l's ``train_ch6``); return a History.

    As in d2l: Linear/Conv2d weights are re-initialised with Xavier-uniform, the optimizer
    is plain SGD at ``lr``, the loss cross-entropy, a live plot shows train loss, train and
    test accuracy, and two closing lines report the result and examples/sec.

    Args:
        init: ``"xavier"`` (d2l), a function applied to every module, or ``None`` to keep
            the current weights (to continue a run: also pass ``history=``).
        optimizer, loss: replace plain SGD / cross-entropy.
        animator: ``None`` draws d2l's plot, ``False`` none, or any object with
            ``add(x, ys)`` (the training panel passes its own).
        stop: a ``threading.Event`` or a callable; when set, the run ends at the next
            batch boundary with status ``stopped``.
        precision: ``"fp32"`` (d2l), ``"bf16"`` (autocast; faster on recent CPUs/GPUs)
            or ``"auto"`` (bf16 where the device supports it natively).
        channels_last: store images and conv weights as NHWC; ``"auto"`` (default)
            does so under bf16 autocast, where it was faster for every net measured.
        history: a History to append to when continuing a run.

    Example:
        >>> from d2lcnn import load_data_fashion_mnist
        >>> train_iter, test_iter = load_data_fashion_mnist(256, source="mini")  # doctest: +SKIP
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> history = train_ch6(net, train_iter, test_iter, 1, 0.1)  # doctest: +SKIP
    """
    _check_arguments(num_epochs, lr, precision, channels_last, optimizer)
    device = torch.device(device) if device is not None else best_device()
    precision = resolve_precision(precision, device)
    channels_last = resolve_channels_last(channels_last, precision)
    if init == "xavier":
        net.apply(xavier_init)
    elif callable(init):
        net.apply(init)
    elif init not in (None, False):
        raise ValueError(f"init must be 'xavier', a function or None, got {init!r}")
    if verbose:
        print("training on", device)
    if device.type == "cpu":
        keep_freed_memory()  # activations and gradients reuse memory, no page faults
    net.to(device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if optimizer is None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = loss if loss is not None else nn.CrossEntropyLoss()
    # Our loaders can move their uint8 store to the device once and resize there.
    if hasattr(train_iter, "to"):
        train_iter = train_iter.to(device)
    if hasattr(test_iter, "to"):
        test_iter = test_iter.to(device)
    num_batches = len(train_iter)
    if num_batches == 0:
        raise ValueError(
            "train_iter is empty: the batch size is larger than the data set"
        )

    if history is None:
        history = History(device=str(device))
    first_epoch = len(history)
    last_epoch = first_epoch + num_epochs
    history.status, history.message = "running", ""
    history.settings.update(
        num_epochs=last_epoch,
        lr=lr,
        batch_size=getattr(train_iter, "batch_size", None),
        resize=getattr(train_iter, "resize", None),
        train_examples=getattr(train_iter, "num_examples", None),
        precision=precision,
        channels_last=channels_last,
        model=type(net).__name__,
    )
    if animator is None:
        animator = Animator(
            xlabel="epoch",
            xlim=[1, last_epoch] if last_epoch > 1 else None,  # [1, 1] makes matplotlib warn
            legend=["train loss", "train acc", "test acc"],
        )
    elif animator is False:
        animator = None
    if progress is None:
        progress = not in_notebook() and verbose
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=num_epochs * num_batches, leave=False, unit="batch", desc="train"
        )

    plot_every = max(1, num_batches // 5)  # d2l divides by zero with < 5 batches
    check_every = 1 if device.type == "cpu" else plot_every  # a finite-loss check syncs
    train_time = examples = 0.0
    train_l = train_acc = float("nan")
    epoch, i, X_shape = first_epoch, -1, None
    with _deferred_ctrl_c() as ctrl_c:
        try:
            for epoch in range(first_epoch, last_epoch):
                epoch_start = time.perf_counter()
                loss_sum = torch.zeros((), device=device)
                correct = torch.zeros((), device=device)
                seen = 0
                epoch_train_time = 0.0
                segment_start = time.perf_counter()
                net.train()
                for i, (X, y) in enumerate(train_iter):
                    # --- stop requests are honoured between batches only
                    if ctrl_c.is_set():
                        raise TrainingStopped("interrupted", "interrupted by Ctrl-C")
                    if _should_stop(stop):
                        raise TrainingStopped("stopped", "stopped on request")
                    # --- forward, loss, backward, update
                    X = X.to(device, non_blocking=True)
                    y = y.to(device, non_blocking=True)
                    X_shape = tuple(X.shape)
                    if channels_last:
                        X = X.contiguous(memory_format=torch.channels_last)
                    optimizer.zero_grad(set_to_none=True)
                    with _autocast(device, precision):
                        y_hat = net(X)
                        batch_loss = loss(y_hat, y)
                    batch_loss.backward()
                    optimizer.step()
                    # --- accumulate on the device, no synchronisation here
                    with torch.no_grad():
                        loss_sum += batch_loss.detach().float() * X.shape[0]
                        correct += correct_count(y_hat, y)
                    seen += X.shape[0]
                    if (i + 1) % check_every == 0 and not torch.isfinite(loss_sum):
                        raise TrainingStopped(
                            "diverged",
                            f"the loss became {float(batch_loss.detach()):.4g} at epoch "
                            f"{epoch + 1}, batch {i + 1}: the learning rate {lr} is "
                            "probably too large; try a value 3-10x smaller",
                        )
                    if bar is not None:
                        bar.update(1)
                    # --- a curve point about 5 times per epoch
                    if (i + 1) % plot_every == 0 or i == num_batches - 1:
                        train_l = float(loss_sum) / seen  # the one sync per point
                        train_acc = float(correct) / seen
                        epoch_train_time += time.perf_counter() - segment_start
                        if animator is not None:
                            animator.add(
                                epoch + (i + 1) / num_batches,
                                (train_l, train_acc, None),
                            )
                        if bar is not None:
                            bar.set_postfix(
                                loss=f"{train_l:.3f}", acc=f"{train_acc:.3f}"
                            )
                        segment_start = time.perf_counter()
                # --- evaluate
                test_acc = evaluate_accuracy_gpu(
                    net,
                    test_iter,
                    device,
                    precision=precision,
                    channels_last=channels_last,
                )
                if animator is not None:
                    animator.add(epoch + 1, (None, None, test_acc))
                train_time += epoch_train_time
                examples += seen
                wall = time.perf_counter() - epoch_start
                history.add_epoch(
                    train_l,
                    train_acc,
                    test_acc,
                    seen / epoch_train_time,
                    seen / wall,
                    wall,
                )
            history.status = "completed"
        except TrainingStopped as stopped:
            history.status = stopped.status
            history.message = _stop_message(stopped, history, epoch, i, num_batches)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as error:
            if not _is_out_of_memory(error):
                error.history = history  # nothing is lost: the caller can still read it
                if i <= 0 and epoch == first_epoch and X_shape is not None:
                    _explain_shape_error(net, X_shape, error, history)
                raise
            history.status = "out_of_memory"
            history.message = (
                f"out of memory at epoch {epoch + 1}, batch {i + 1} on {device}: use a "
                "smaller batch_size or resize, then run again; the model and history so "
                "far are kept"
            )
            del error
            if device.type == "cuda":
                torch.cuda.empty_cache()
        finally:
            if bar is not None:
                bar.close()
    if animator is not None and hasattr(animator, "finish"):
        animator.finish(None if history.status == "completed" else history.status)
    if verbose:
        if history.message:
            print(history.message)
        if len(history):
            print(
                f"loss {history.train_loss[-1]:.3f}, train acc "
                f"{history.train_acc[-1]:.3f}, test acc {history.test_acc[-1]:.3f}"
            )
            print(
                f"{examples / train_time if train_time else 0.0:.1f} examples/sec on "
                f"{device}"
            )
    return history


def _explain_shape_error(net: nn.Module, X_shape: tuple, error: BaseException,
                         history: History) -> None:
    """On a first-batch failure, raise the shape inspector's diagnosis if it has one.

    PyTorch says "Output size is too small" or "mat1 and mat2 shapes cannot be
    multiplied"; ShapeError names the layer, the shape it got and the size that works.
    """
    from .summary import check_input_shape

    try:
        check_input_shape(net, X_shape)
    except ValueError as diagnosed:
        diagnosed.history = history
        raise diagnosed from error
    except Exception:  # the inspector could not tell: keep PyTorch's own error
        return


def _epochs(n: int) -> str:
    return f"{n} full epoch" + ("" if n == 1 else "s")


def _stop_message(
    stopped: TrainingStopped, history: History, epoch: int, batch: int, num_batches: int
) -> str:
    where = f"epoch {epoch + 1}, batch {batch + 1} of {num_batches}"
    if stopped.status == "diverged":
        return f"Stopped: {stopped}. The history so far is kept ({_epochs(len(history))})."
    return (
        f"Stopped at {where} ({stopped}); {_epochs(len(history))} kept in the "
        "history and the model keeps its weights. To continue: "
        "train_ch6(net, train_iter, test_iter, num_epochs, lr, device, init=None, "
        "history=history)"
    )
