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

from .history import SERIES, STATUSES, History
from .plot import Animator
from .recipe import Recipe, autocast, choose_format, xavier_init
from .utils import (
    Accumulator,
    best_device,
    check_device,
    correct_count,
    keep_freed_memory,
    positive_int,
    positive_number,
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


def _to_device(X, device, channels_last: bool = False):
    if isinstance(X, list | tuple):  # several inputs, as in d2l's BERT chapters
        return [x.to(device) for x in X]
    X = X.to(device, non_blocking=True)
    return X.contiguous(memory_format=torch.channels_last) if channels_last and X.dim() == 4 else X


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
                correct += correct_count(net(_to_device(X, where, channels_last)), y)
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

    As in d2l: Xavier-uniform re-initialisation, plain SGD at ``lr``, cross-entropy, a
    live plot of train loss, train and test accuracy, d2l's two closing lines.

    Args:
        init: ``"xavier"`` (d2l), a function applied to every module, or ``None`` to keep
            the weights (to continue a run, pass its ``history=`` too).
        optimizer, loss, recipe: replace plain SGD / cross-entropy; a ``Recipe`` (or its
            fields as a dict) sets momentum, weight decay, schedule, smoothing and init.
        animator: ``None`` for d2l's plot, ``False`` for none, or an ``add(x, ys)`` object.
        stop: a ``threading.Event`` or callable; when set, the run ends at the next batch.
        history: a History to append to (renderers may have subscribed to it).
        precision: ``"fp32"`` (d2l), ``"bf16"`` autocast, or ``"auto"``: the faster of
            the two where bf16 is native, timed on the first batch.
        channels_last: NHWC images and weights; ``"auto"``: whichever is faster here.
        grad_clip: clip the gradients' total norm to this value.
        progress: a tqdm progress bar over the batches.
        training_step: ``training_step(X, y) -> (loss, y_hat or None)`` in place of
            ``loss(net(X), y)`` (d2l 1.0's ``Trainer`` uses it).
        evaluate: ``evaluate(net, test_iter) -> accuracy`` in place of
            ``evaluate_accuracy_gpu``.
        devices: more than one (``d2l.try_all_gpus()``): DDP on one process each, the net
            given by registry name or as ``"module:function"`` (``d2lcnn.distributed``).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
        >>> data = [(torch.rand(8, 1, 2, 2), torch.randint(0, 10, (8,)))]
        >>> history = train_ch6(net, data, data, 2, 0.1, animator=False, verbose=False)
        >>> history.status, len(history)
        ('completed', 2)
    """
    if devices is not None and len(devices) > 1:  # one process per device: DDP
        from .distributed import train_from_ch6
        return train_from_ch6(net, train_iter, test_iter, num_epochs, lr, devices,
                              recipe=recipe, stop=stop, history=history, verbose=verbose,
                              animator=animator, precision=precision)
    # --- setup: everything that can be checked is checked before the first batch
    num_epochs = positive_int("num_epochs", num_epochs)
    lr = positive_number("lr", lr) if optimizer is None else lr
    grad_clip = positive_number("grad_clip", grad_clip, "1.0") if grad_clip else None
    device = check_device(device if device is not None else best_device())
    recipe = Recipe.of(recipe)
    if verbose:
        print("training on", device)  # d2l's first line
    if device.type == "cpu":
        keep_freed_memory()  # activations reuse freed memory instead of page-faulting
    _check_arguments(net, train_iter, optimizer, stop, history)
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
            net.apply(xavier_init if init == "xavier" else init)
        precision, channels_last = choose_format(net, X, y, device, precision,
                                                 channels_last, loss=loss)
        net.to(memory_format=torch.channels_last if channels_last else torch.preserve_format)
    num_batches, first = len(train_iter), len(history)
    for xs, ys in history.points.values():  # a stopped epoch's points: redrawn when continued
        while xs and xs[-1] > first:
            xs.pop()
            ys.pop()
    scheduler = None
    if optimizer is None and recipe is not None:
        optimizer, scheduler = recipe.optimizer(net, lr, num_epochs * num_batches)
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
                  **{key: getattr(train_iter, attr, None) for key, attr in DATA_SETTINGS})
    plot_every = max(1, num_batches // 5)  # ~5 points per epoch; d2l divides by zero < 5
    check_each_batch = device.type == "cpu"  # a finite check syncs: free on the CPU only
    speed = Accumulator("examples", "seconds")

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
                X, y = _to_device(X, device, channels_last), y.to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                with autocast(device, precision):
                    batch_loss, y_hat = training_step(X, y)
                if epoch == i == 0:  # the loss at init, before any update
                    _check_first_loss(history, batch_loss, y_hat, lr, verbose)
                if check_each_batch and not torch.isfinite(batch_loss):  # before the update
                    bad = float(batch_loss.detach())
                    raise TrainingStopped("diverged", f"the loss became {bad:.4g} at epoch "
                                          f"{epoch + 1}, batch {i + 1}")
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
                    if not math.isfinite(train_l):
                        raise TrainingStopped("diverged", f"the loss became {train_l:.4g} "
                                              f"by epoch {epoch + 1}, batch {i + 1}")
                    train_acc = float(correct) / seen if y_hat is not None else math.nan
                    history.add_point(epoch + (i + 1) / num_batches,
                                      {"train loss": train_l, "train acc": train_acc})
            train_time = time.perf_counter() - start
            test_acc = evaluate(net, test_iter) if test_iter is not None else math.nan
            wall = time.perf_counter() - start
            history.add_epoch(train_l, train_acc, test_acc, seen / train_time, seen / wall,
                              wall)
            speed.add(seen, train_time)

    # --- d2l's closing lines
    if verbose:
        if history.message:
            print(history.message)
        if len(history):
            print(history.summary())
            print(f"{speed['examples'] / max(speed['seconds'], 1e-9):.1f} examples/sec "
                  f"on {device}")
    return history


def _check_first_loss(history: History, batch_loss, y_hat, lr, verbose: bool) -> None:
    """A fresh net predicts every class alike, so its first loss is near ln(classes)
    ("verify the loss at init", Karpathy 2019); far above, say the likely cause."""
    first = float(batch_loss.detach())
    history.settings["first_loss"] = first
    if y_hat is None or y_hat.dim() != 2 or not verbose:
        return
    chance = math.log(y_hat.shape[1])
    if not first <= 2 * chance:  # also NaN
        print(f"check: the first loss is {first:.3g}, far above ln({y_hat.shape[1]}) = "
              f"{chance:.2f}, the loss of a net that knows nothing yet (its logits' std is "
              f"{float(y_hat.detach().float().std()):.3g}): the initial weights are likely "
              f"too large (try init='xavier' or a fan-in He init); at lr {lr} the run may "
              "diverge")


def _check_arguments(net, train_iter, optimizer, stop, history) -> None:
    """What no run can train with, refused before anything is touched."""
    name = type(net).__name__
    parameters = list(net.parameters())
    if optimizer is None and not parameters:
        raise ValueError(f"{name} has no parameters to train; add layers with weights "
                         "(nn.Conv2d, nn.Linear) to the net")
    if optimizer is None and not any(p.requires_grad for p in parameters):
        raise ValueError(f"every parameter of {name} is frozen (requires_grad=False), so "
                         "nothing would train; unfreeze the layers to train with "
                         "layer.requires_grad_(True)")
    if stop is not None and not (hasattr(stop, "is_set") or callable(stop)):
        raise TypeError(f"stop must be a threading.Event or a function that returns True "
                        f"to stop, got {stop!r}; pass stop=event with event = "
                        "threading.Event(), then event.set() to stop")
    try:
        len(train_iter)
    except TypeError:
        raise TypeError(f"train_iter must have a length (batches per epoch), got a "
                        f"{type(train_iter).__name__}, which has none; pass a list, a "
                        "DataLoader or d2l.load_data_fashion_mnist's iterator (wrap a "
                        "generator in list(...))") from None
    if history is not None and not isinstance(history, History):
        hint = ('; load_checkpoint returns a dict: pass state["history"]'
                if isinstance(history, dict) and "history" in history else "")
        raise TypeError(f"history must be a d2lcnn History to continue, got a "
                        f"{type(history).__name__}{hint}")


DATA_SETTINGS = (("batch_size", "batch_size"), ("resize", "resize"),
                 ("train_examples", "num_examples"), ("data_source", "source"),
                 ("data_split", "data_split"))


@contextlib.contextmanager
def _failing_before_epoch_1(history: History):
    try:
        yield
    except BaseException as error:  # nothing trained yet: the run ended before epoch 1
        error.history = history
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        history.end(status, f"{type(error).__name__}: {error}")
        raise


class _Run:
    """What ``_ending`` needs from inside the loop: Ctrl-C's flag, the epoch's weights."""

    def __init__(self, ctrl_c: threading.Event):
        self.ctrl_c, self.saved = ctrl_c, None

    def check_stop(self, stop) -> None:
        if self.ctrl_c.is_set():
            raise TrainingStopped("interrupted", "interrupted by Ctrl-C")
        if stop is not None and (stop.is_set() if hasattr(stop, "is_set") else stop()):
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


# ------------------------------------------------------------------ checks before batch 1

def _first_batch(data_iter, name: str):
    peek = getattr(data_iter, "peek", None)  # d2lcnn's loaders: no shuffle is drawn
    try:
        batch = peek() if peek is not None else next(iter(data_iter))
    except StopIteration:
        raise ValueError(f"{name}_iter is empty: it yields no batch; check its data and "
                         "batch size") from None
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(f"{name}_iter must yield (X, y) pairs, got {type(batch).__name__}")
    return batch


def _forward_two(net: nn.Module, X, device):
    was_training = net.training
    net.eval()  # no batch-norm statistics are updated by this check
    try:
        with torch.no_grad():
            return net(_to_device(X[:2], device))  # two examples: enough for the shapes
    finally:
        net.train(was_training)


def check_first_batches(net: nn.Module, train_iter, test_iter, device) -> tuple:
    """Run the first training and test batch through ``net`` and check the output.

    Also materialises lazy layers (``nn.LazyLinear``) so they can be initialised.
    Returns the first training batch ``(X, y)``.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
        >>> batch = [(torch.zeros(3, 1, 2, 2), torch.tensor([0, 9, 1]))]
        >>> check_first_batches(net, batch, batch, "cpu")[1]
        tensor([0, 9, 1])
    """
    X, y = _first_batch(train_iter, "train")
    shape = tuple(X.shape)
    try:
        y_hat = _forward_two(net, X, device)
    except RuntimeError as err:
        from .summary import check_input_shape  # names the layer and the size that works

        try:
            check_input_shape(net, shape)
        except ValueError as diagnosed:
            raise diagnosed from err
        except Exception:  # noqa: BLE001 - the inspector could not tell: PyTorch's text
            pass
        raise RuntimeError(f"the net failed on the first training batch, of shape {shape}: "
                           f"{err}") from err
    if not isinstance(y_hat, torch.Tensor):
        raise TypeError(f"the net returned {type(y_hat).__name__} for a batch of shape "
                        f"{shape}; train_ch6 needs a tensor of logits (B, classes)")
    if y_hat.dim() != 2:
        raise ValueError(f"the net's output for a batch of shape {shape} has shape "
                         f"{tuple(y_hat.shape)}; it must be (B, classes): end the net with "
                         "nn.Flatten() and an nn.Linear(..., 10)")
    highest = int(y.max()) if y.numel() else 0
    if y_hat.shape[1] <= highest:
        raise ValueError(f"the net outputs {y_hat.shape[1]} class score(s) per example, but "
                         f"the labels go up to {highest}; its last layer needs "
                         f"{highest + 1} outputs (Fashion-MNIST: nn.Linear(..., 10))")
    if test_iter is not None:
        X_test, _ = _first_batch(test_iter, "test")
        try:
            _forward_two(net, X_test, device)
        except RuntimeError as err:
            raise ValueError(f"the net takes training batches of shape {shape} but failed "
                             f"on the first test batch, of shape {tuple(X_test.shape)} "
                             f"({err}); load both iterators with the same resize") from err
    return X, y
