"""What ``train_ch6`` checks before its first update, each failure said with its fix."""

from __future__ import annotations

import math

import torch
from torch import nn

from .history import History
from .utils import to_device

__all__ = ["check_arguments", "check_first_batches", "check_first_loss"]


def check_arguments(net, train_iter, optimizer, stop, history) -> None:
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


def check_first_loss(history: History, batch_loss, y_hat, lr, verbose: bool) -> None:
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
            return net(to_device(X[:2], device))  # two examples: enough for the shapes
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
