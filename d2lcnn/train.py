"""Training: d2l's ``train_ch6`` — the package's one loop — and ``evaluate_accuracy_gpu``.

d2l's semantics, plus: checks before the first batch; metrics on the device, read ~5
times an epoch; a ``History`` the plot follows; Stop, Ctrl-C, divergence and out of
memory end the run with a status, keeping the finished epochs and the model. d2l 1.0's
``Trainer`` and the panel run on this same loop (``training_step=``).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time

import torch
from torch import nn

from .checks import check_arguments, check_first_batches, check_first_loss
from .history import SERIES, STATUSES, History
from .plot import Animator
from .recipe import Recipe, autocast, choose_format, initialise, xavier_init
from .utils import (
    Accumulator,
    best_device,
    check_device,
    correct_count,
    keep_freed_memory,
    positive_int,
    positive_number,
    to_device,
)

__all__ = ["TrainingStopped", "evaluate_accuracy_gpu", "train_ch6"]


class TrainingStopped(Exception):
    """Raised between batches to end a run early; carries the History status."""

    def __init__(self, status: str, message: str):
        if status not in STATUSES[2:]:
            raise ValueError(f"TrainingStopped's status must be one of {STATUSES[2:]}, got "
                             f"{status!r}; use 'stopped' for a stop of your own")
        super().__init__(message)
        self.status = status


def evaluate_accuracy_gpu(net: nn.Module, data_iter, device=None, *,
                          precision: str = "fp32", channels_last: bool = False) -> float:
    """Accuracy (a ratio in [0, 1]) of ``net`` on ``data_iter``, computed on ``device``.

    ``device`` defaults to that of the net's parameters.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> _ = nn.init.zeros_(net[1].weight), net[1].bias.data.copy_(torch.tensor([1., 0.]))
        >>> evaluate_accuracy_gpu(net, [(torch.ones(3, 1, 2, 2), torch.tensor([0, 1, 0]))])
        0.6666666666666666
    """
    if isinstance(net, nn.Module):
        net.eval()
        if device is None:
            device = next(iter(net.parameters()), torch.empty(0)).device
    correct, count = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            where = torch.device(device) if device is not None else y.device
            y = y.to(where, non_blocking=True)
            with autocast(where, precision):
                correct += correct_count(net(to_device(X, where, channels_last)), y)
            count += y.numel()
    if count == 0:
        raise ValueError("evaluate_accuracy_gpu got an empty data iterator; check its data "
                         "and batch size")
    return float(correct) / count


def train_ch6(net: nn.Module, train_iter, test_iter, num_epochs: int, lr: float,
              device=None, *, init="xavier", optimizer=None, loss=None,
              recipe: Recipe | dict | None = None, animator=None, stop=None,
              history: History | None = None, precision: str = "fp32",
              channels_last: bool | str = "auto", grad_clip: float | None = None,
              progress: bool = False, verbose: bool = True, training_step=None,
              evaluate=None, devices=None) -> History:
    """Train ``net`` with a GPU if there is one (d2l's ``train_ch6``); return a History.

    As in d2l (Xavier init, plain SGD, a live plot, two closing lines), plus keyword-only
    ``init`` (None keeps the weights), ``optimizer``, ``loss``, ``recipe``, ``animator``,
    ``stop`` (an Event or function), ``history`` (continue a run), ``precision``,
    ``channels_last``, ``grad_clip``, ``progress``, the hooks ``training_step(X, y) ->
    (loss, y_hat)`` and ``evaluate(net, test_iter)``, and ``devices`` (several: DDP).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
        >>> data = [(torch.rand(8, 1, 2, 2), torch.randint(0, 10, (8,)))]
        >>> train_ch6(net, data, data, 2, 0.1, animator=False, verbose=False).status
        'completed'
    """
    if devices is not None and len(devices) > 1:  # one process per device: DDP
        from .distributed import train_from_ch6
        return train_from_ch6(net, train_iter, test_iter, num_epochs, lr, devices,
                              recipe=recipe, stop=stop, history=history, verbose=verbose,
                              animator=animator, precision=precision)
    # --- setup: everything that can be checked is checked before the first batch
    (train_iter, test_iter, device, history, optimizer, scheduler, training_step, evaluate,
     precision, channels_last, grad_clip, first) = _setup(
        net, train_iter, test_iter, num_epochs, lr, device, init, optimizer, loss, recipe,
        history, precision, channels_last, grad_clip, stop, verbose, training_step, evaluate)
    num_batches, speed = len(train_iter), Accumulator("examples", "seconds")
    plot_every = max(1, num_batches // 5)  # ~5 points per epoch; d2l divides by zero < 5

    # --- the loop; _ending turns Stop, Ctrl-C, divergence and out of memory into a status
    with _renderers(history, animator, progress, num_batches), \
            _ending(history, net, device, precision) as run:
        for epoch in range(first, first + num_epochs):
            run.saved = {k: v.detach().clone() for k, v in net.state_dict().items()}
            loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device)
            seen, start = 0, time.perf_counter()
            net.train()
            for i, (X, y) in enumerate(train_iter):
                run.check_stop(stop)  # between batches only
                X, y = to_device(X, device, channels_last), y.to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                with autocast(device, precision):
                    batch_loss, y_hat = training_step(X, y)
                if epoch == i == 0:  # the loss at init, before any update
                    check_first_loss(history, batch_loss, y_hat, lr, verbose)
                if device.type == "cpu":  # a finite check syncs: free on the CPU only
                    _check_finite(float(batch_loss.detach()), f"at epoch {epoch + 1}, "
                                  f"batch {i + 1}")  # before the update
                batch_loss.backward()
                if grad_clip:
                    nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                with torch.no_grad():  # accumulate on the device: no synchronisation
                    loss_sum += batch_loss.detach().float() * len(y)
                    correct += correct_count(y_hat, y) if y_hat is not None else 0
                seen += len(y)
                if (i + 1) % plot_every == 0 or i == num_batches - 1:
                    train_l = float(loss_sum) / seen  # the one synchronisation per point
                    _check_finite(train_l, f"by epoch {epoch + 1}, batch {i + 1}")
                    train_acc = float(correct) / seen if y_hat is not None else math.nan
                    history.add_point(epoch + (i + 1) / num_batches,
                                      {"train loss": train_l, "train acc": train_acc})
            train_time = time.perf_counter() - start
            test_acc = evaluate(net, test_iter) if test_iter is not None else math.nan
            wall = time.perf_counter() - start
            history.add_epoch(train_l, train_acc, test_acc, seen / train_time, seen / wall,
                              wall)
            speed.add(seen, train_time)

    if verbose:  # d2l's closing lines
        _print_closing(history, speed, device)
    return history


def _check_finite(loss: float, where: str) -> None:
    if not math.isfinite(loss):
        raise TrainingStopped("diverged", f"the loss became {loss:.4g} {where}")


def _print_closing(history: History, speed: Accumulator, device) -> None:
    if history.message:
        print(history.message)
    if len(history):
        print(history.summary())
        print(f"{speed['examples'] / max(speed['seconds'], 1e-9):.1f} examples/sec on {device}")


def _setup(net, train_iter, test_iter, num_epochs, lr, device, init, optimizer, loss,
           recipe, history, precision, channels_last, grad_clip, stop, verbose,
           training_step, evaluate):
    """``train_ch6``'s checks and preparations, in order; what the loop needs."""
    num_epochs = positive_int("num_epochs", num_epochs)
    lr = positive_number("lr", lr) if optimizer is None else lr
    grad_clip = positive_number("grad_clip", grad_clip, "1.0") if grad_clip else None
    device = check_device(device if device is not None else best_device())
    recipe = Recipe.of(recipe)
    if verbose:
        print("training on", device)  # d2l's first line
    if device.type == "cpu":
        keep_freed_memory()  # activations reuse freed memory instead of page-faulting
    check_arguments(net, train_iter, optimizer, stop, history)
    history = history if history is not None else History(device=str(device))
    loss = loss or (recipe.loss() if recipe else nn.CrossEntropyLoss())
    init = recipe.init_function() if recipe and init == "xavier" else init
    with _failing_before_epoch_1(history):
        if init not in ("xavier", None, False) and not callable(init):
            raise ValueError(f"init must be 'xavier', a function or None, got {init!r}")
        train_iter = train_iter.to(device) if hasattr(train_iter, "to") else train_iter
        test_iter = test_iter.to(device) if hasattr(test_iter, "to") else test_iter
        X, y = check_first_batches(net.to(device), train_iter, test_iter, device)
        if init:
            initialise(net, xavier_init if init == "xavier" else init)
        precision, channels_last = choose_format(net, X, y, device, precision,
                                                 channels_last, loss=loss)
        net.to(memory_format=torch.channels_last if channels_last else torch.preserve_format)
    first = len(history)
    for xs, ys in history.points.values():  # a stopped epoch's points: redrawn when continued
        while xs and xs[-1] > first:
            xs.pop()
            ys.pop()
    scheduler = None
    if optimizer is None and recipe is not None:
        optimizer, scheduler = recipe.optimizer(net, lr, num_epochs * len(train_iter))
    elif optimizer is None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)  # d2l's
    if training_step is None:
        def training_step(X, y):
            y_hat = net(X)
            return loss(y_hat, y), y_hat
    if evaluate is None:
        def evaluate(net, test_iter):
            return evaluate_accuracy_gpu(net, test_iter, device, precision=precision,
                                         channels_last=channels_last)
    history.start(num_epochs=first + num_epochs, lr=lr, model=type(net).__name__,
                  recipe=recipe.to_dict() if recipe else None, precision=precision,
                  channels_last=channels_last, grad_clip=grad_clip,
                  init_seed=torch.initial_seed(),  # the last torch.manual_seed before training
                  **{key: getattr(train_iter, attr, None) for key, attr in DATA_SETTINGS})
    return (train_iter, test_iter, device, history, optimizer, scheduler, training_step,
            evaluate, precision, channels_last, grad_clip, first)


DATA_SETTINGS = (("batch_size", "batch_size"), ("resize", "resize"),
                 ("train_examples", "num_examples"), ("data_source", "source"),
                 ("data_split", "data_split"), ("batch_order_seed", "seed"))


@contextlib.contextmanager
def _failing_before_epoch_1(history: History):
    try:
        yield
    except BaseException as error:  # nothing trained yet: the run ended before epoch 1
        error.history = history
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        history.end(status, f"{type(error).__name__}: {error}")
        raise


def stop_requested(stop) -> bool:
    """Whether ``stop`` (None, a ``threading.Event`` or a function) asks to stop now."""
    return stop is not None and (stop.is_set() if hasattr(stop, "is_set") else bool(stop()))


class _Run:
    """What ``_ending`` needs from inside the loop: Ctrl-C's flag, the epoch's weights."""

    def __init__(self, ctrl_c: threading.Event):
        self.ctrl_c, self.saved = ctrl_c, None

    def check_stop(self, stop) -> None:
        if self.ctrl_c.is_set():
            raise TrainingStopped("interrupted", "interrupted by Ctrl-C")
        if stop_requested(stop):
            raise TrainingStopped("stopped", "stopped on request")


@contextlib.contextmanager
def _ending(history: History, net: nn.Module, device, precision: str):
    """However the loop ends, record it in ``history``; keep the model usable."""
    try:
        with _deferred_ctrl_c() as ctrl_c:
            run = _Run(ctrl_c)
            yield run
            run.check_stop(None)  # a Ctrl-C during the last evaluation
        history.end("completed")
    except TrainingStopped as stopped:
        restored = stopped.status == "diverged" and not all(
            bool(torch.isfinite(p).all()) for p in net.parameters())
        if restored:
            net.load_state_dict(run.saved)  # the epoch's starting weights: the last finite
        history.end(stopped.status, _stop_message(stopped, history, precision, restored))
    except BaseException as error:
        if not _is_out_of_memory(error):
            error.history = history  # nothing is lost: the caller can still read it
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            history.end(status, f"{type(error).__name__}: {error}")
            raise
        history.end("out_of_memory", f"out of memory at epoch {len(history) + 1} on "
                    f"{device}: use a smaller batch_size or resize, then run again; the "
                    f"model and the {_epochs(len(history))} so far are kept")
        del error
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _epochs(n: int) -> str:
    return f"{n} finished epoch" + ("" if n == 1 else "s")


def _stop_message(stopped: TrainingStopped, history: History, precision: str,
                  restored: bool) -> str:
    kept = f"{_epochs(len(history))} kept in the history"
    if stopped.status == "diverged":
        weights = ("the model holds the weights from the start of that epoch, the last "
                   "finite ones" if restored
                   else "the model holds the last finite weights, before that update")
        fp32 = "" if precision == "fp32" else ", use precision='fp32'"
        return (f"Stopped: {stopped}: the learning rate {history.settings.get('lr')} is "
                f"probably too large; try a value 3-10x smaller{fp32}, or clip the "
                f"gradients (grad_clip=1.0). {kept[0].upper()}{kept[1:]}; {weights}.")
    return (f"Stopped at epoch {len(history) + 1} ({stopped}); {kept} and the model "
            "keeps its weights. To continue: train_ch6(net, train_iter, test_iter, "
            "num_epochs, lr, device, init=None, history=history)")


def _is_out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, torch.cuda.OutOfMemoryError | MemoryError) or isinstance(
        error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@contextlib.contextmanager
def _deferred_ctrl_c():
    """The first Ctrl-C sets a flag read between batches; a second one aborts at once.

    Only the main thread owns signal handlers; elsewhere (a panel's worker thread) the
    flag never rises and ``stop=`` does the job.
    """
    pressed = threading.Event()

    def handler(signum, frame):
        if pressed.is_set():
            raise KeyboardInterrupt
        pressed.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError):  # an interpreter without signal support
            previous = signal.signal(signal.SIGINT, handler)
    try:
        yield pressed
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _renderers(history: History, animator, progress: bool, num_batches: int):
    """Connect d2l's plot (or the caller's ``add(x, ys)`` object) and a progress bar."""
    listeners, first = [], len(history)
    if animator is None:
        plot = Animator(xlabel="epoch", xlim=[0, history.settings["num_epochs"]],
                        legend=list(SERIES))
        plot.follow(history)
        listeners.append(plot._on_event)
    elif animator is not False:
        def feed(event: str, history: History) -> None:
            if event == "point":
                animator.add(history.last_x, (history.last("train loss"),
                                              history.last("train acc"), None))
            elif event == "epoch":
                animator.add(len(history), (None, None, history.test_acc[-1]))
        listeners.append(history.subscribe(feed))
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=(history.settings["num_epochs"] - first) * num_batches,
                   leave=False, unit="batch", desc="train")

        def advance(event: str, history: History) -> None:
            bar.update(max(0, round(((history.last_x or first) - first) * num_batches) - bar.n))
            if event == "end":
                bar.close()
        listeners.append(history.subscribe(advance))
    try:
        yield
    finally:
        for listener in listeners:
            history.unsubscribe(listener)
