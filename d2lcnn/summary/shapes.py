"""Input-size diagnosis: which layer rejects an input, and the smallest one it takes.

Built on the probe (``probe.run``): a failed pass tells which module was running; a
few more meta-device passes find the sizes that work. Only public torch types.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .probe import Call, Feed, Trace, has_lazy, run

_MAX_SIZE = 4096  # largest square side min_input_size searches

# convolutions and batch norms name the channel count they expect
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
          nn.ConvTranspose3d)  # fmt: skip
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class ShapeError(ValueError):
    """An input shape a layer cannot take; names the layer and, if size is the cause,
    the smallest input that works (``min_size``)."""

    def __init__(
        self,
        message: str,
        *,
        layer: str = "",
        layer_type: str = "",
        input_shape: tuple[int, ...] | None = None,
        min_size: int | None = None,
    ) -> None:
        super().__init__(message)
        self.layer = layer
        self.layer_type = layer_type
        self.input_shape = input_shape
        self.min_size = min_size


def check_input_shape(net: nn.Module, input_shape: Sequence[int]) -> None:
    """Raise ``ShapeError`` if ``net`` cannot take ``input_shape``; cheap (meta device).

    Example:
        >>> check_input_shape(nn.Conv2d(1, 6, 5), (1, 1, 28, 28)) is None
        True
        >>> try:
        ...     check_input_shape(nn.Conv2d(1, 6, 5), (1, 1, 4, 4))
        ... except ShapeError as error:
        ...     print(error.layer_type, error.input_shape, error.min_size)
        Conv2d (1, 1, 4, 4) 5
    """
    input_shape = check_shape_arg(input_shape)
    raise_for(net, input_shape, run(net, input_shape, device=None, count=False))


def min_input_size(
    net: nn.Module,
    channels: int = 1,
    *,
    include_linear: bool = False,
    max_size: int = _MAX_SIZE,
) -> int:
    """Smallest side ``s`` such that ``net`` accepts a (1, channels, s, s) input.

    By default only the convolutional part counts: a Linear layer that gets the wrong
    number of features ends the probe as a success, so AlexNet gives 65 (its feature
    extractor's limit) although its Linear(6400) takes only 193..224. With
    ``include_linear=True`` the whole net must run, which gives the smallest
    resolution the net *as built* accepts (193 for d2l's AlexNet). Nets with adaptive
    pooling (NiN, GoogLeNet, ResNet) give the same answer both ways. The search
    assumes that once a size works larger ones do too (true for stacks of convolution
    and pooling); the result is verified to work and the size below it to fail.

    Example:
        >>> min_input_size(nn.Sequential(nn.Conv2d(1, 6, 5), nn.MaxPool2d(2)))
        6
    """
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    if has_lazy(net):
        # probing would fix the lazy layers' shapes: probe a copy, and a lazy Linear
        # takes any flattened size, so only the convolutional part limits the size
        net, include_linear = copy.deepcopy(net), False
    high = _conv_part_min(net, channels, max_size)
    if not include_linear:
        return high
    sizes = _sizes_matching_linear(net, channels, high, max_size)
    if sizes is None:
        shape = (1, channels, high, high)
        raise_for(net, shape, run(net, shape, device=None, count=False))
        raise ValueError(
            f"no square input from {high} to {max_size} runs the whole net"
        )
    return sizes[0]


def _conv_part_min(net: nn.Module, channels: int, max_size: int) -> int:
    """Smallest side that the net runs with, or that reaches a mismatching Linear."""

    def conv_part_ok(size: int) -> bool:
        trace = run(net, (1, channels, size, size), device=None, count=False)
        if trace.error is None:
            return True
        _raise_if_not_size(net, (1, channels, size, size), trace)
        return _linear_mismatch(trace) is not None

    size = 1
    while not conv_part_ok(size):
        if size >= max_size:
            raise ValueError(
                f"no square input up to {max_size}x{max_size} with {channels} channels "
                f"runs through {type(net).__name__}; check the net or raise max_size"
            )
        size = min(size * 2, max_size)
    low, high = size // 2, size  # low fails (or is 0), high works
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if conv_part_ok(mid) else (mid, high)
    return high


def check_shape_arg(input_shape: Sequence[int]) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints, or a ValueError saying so.

    Example:
        >>> check_shape_arg([1, 3, 8, 8])
        (1, 3, 8, 8)
    """
    try:
        shape = tuple(operator.index(d) for d in input_shape)
    except TypeError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ValueError(
            "input_shape must be positive ints like (1, 1, 224, 224), got "
            f"{input_shape!r}"
        )
    return shape


def raise_for(net: nn.Module, feed: Feed | tuple, trace: Trace) -> None:
    """Raise the diagnosed error of a failed trace (nothing if it succeeded)."""
    if trace.error is None:
        return
    feed = feed if isinstance(feed, Feed) else Feed(shape=tuple(feed))
    if feed.shape is not None:
        diagnosed = _wrong_kind_of_input(net, feed.shape, trace) or _diagnose(
            net, feed.shape, trace
        )
    elif len(feed.args) == 1 and isinstance(feed.args[0], torch.Tensor):
        diagnosed = _diagnose(net, tuple(feed.args[0].shape), trace)
    else:  # several example arguments: no search over sizes can vary them
        diagnosed = trace.error
    if diagnosed is trace.error:
        raise trace.error
    raise diagnosed from trace.error


def _wrong_kind_of_input(
    net: nn.Module, input_shape: tuple, trace: Trace
) -> Exception | None:
    """A forward that wants two inputs or a dict fails before any layer runs."""
    if len(trace.calls) != 1 or trace.failed is not trace.calls[0]:
        return None
    if not isinstance(trace.error, (TypeError, IndexError, AttributeError)):
        return None
    name = type(net).__name__
    return TypeError(
        f"{name}.forward could not take the probe's input: the shape inspector feeds "
        f"{Feed(shape=input_shape).describe()} ({type(trace.error).__name__}: "
        f"{trace.error}); if forward takes several inputs or a dict, pass an example "
        f"instead: layer_summary(net, example_input=(x, y)) for two arguments, "
        f"example_input={{'image': x}} for one dict"
    )


def _diagnose(net: nn.Module, input_shape: tuple, trace: Trace) -> Exception:
    """Turn PyTorch's bare shape error into one naming layer, shape and the fix."""
    failed = trace.failed
    if failed is None or failed.input_shape is None:
        return trace.error
    shape = failed.input_shape
    expected = _expected_channels(failed.module)
    if expected is not None and len(shape) >= 2 and shape[1] != expected:
        return _channel_error(failed, expected, input_shape)
    mismatch = _linear_mismatch(trace)
    if mismatch is not None:
        return _linear_error(net, mismatch, input_shape)
    if len(input_shape) != 4:
        return trace.error
    return _too_small_error(net, failed, input_shape, trace.error)


def _info(call: Call) -> dict:
    return {"layer": call.name, "layer_type": type(call.module).__name__,
            "input_shape": call.input_shape}  # fmt: skip


def _channel_error(failed: Call, expected: int, input_shape: tuple) -> ShapeError:
    got = failed.input_shape[1]
    fix = (
        f"pass an input with {_plural(expected, 'channel')}, e.g. input_shape="
        f"{(input_shape[0], expected, *input_shape[2:])}, or build the net "
        f"with in_channels={got}"
        if got == input_shape[1]
        else "the layer before it produces a different channel count; fix the net"
    )
    return ShapeError(
        f"layer {_label(failed)} expects {_plural(expected, 'input channel')}, got "
        f"{got} (input shape {failed.input_shape}); {fix}",
        **_info(failed),
    )


def _linear_error(net: nn.Module, failed: Call, input_shape: tuple) -> ShapeError:
    shape, wanted = failed.input_shape, failed.module.in_features
    message = (
        f"layer {_label(failed)} expects {_plural(wanted, 'input feature')}, got "
        f"{shape[-1]} (input shape {shape})"
    )
    if len(input_shape) != 4:
        return ShapeError(message, **_info(failed))
    channels = input_shape[1]
    conv_min = _safe_min_size(net, channels)
    sizes = None
    if conv_min is not None:
        sizes = _sizes_matching_linear(net, channels, conv_min, _MAX_SIZE)
    if sizes is None:
        return ShapeError(
            f"{message}; no square input gives {wanted} features: build the "
            f"Linear with in_features={shape[-1]} (or use nn.LazyLinear)",
            **_info(failed),
        )
    low, high = sizes
    sizes_text = f"{low}x{low}" if low == high else f"{low}x{low} to {high}x{high}"
    return ShapeError(
        f"{message}; square inputs from {sizes_text} give {wanted} features "
        f"(resize the input, e.g. to {high}x{high}, or change the Linear)",
        min_size=low,
        **_info(failed),
    )


def _too_small_error(
    net: nn.Module, failed: Call, input_shape: tuple, error: Exception
) -> Exception:
    conv_min = _safe_min_size(net, input_shape[1])
    if conv_min is None or min(input_shape[2:]) >= conv_min:
        return error
    message = (
        f"layer {_label(failed)} got input shape {failed.input_shape}, too small for "
        f"it (PyTorch: {str(error).strip()!r}); the smallest "
        f"square input the convolutional part accepts is {conv_min}x{conv_min}, got "
        f"{input_shape[2]}x{input_shape[3]}; resize the input to at least {conv_min}"
    )
    whole = _sizes_matching_linear(net, input_shape[1], conv_min, _MAX_SIZE)
    if whole is not None and whole[0] != conv_min:
        low, high = whole
        message += f" (the whole net, with its Linear layers, takes {low}..{high})"
    return ShapeError(message, min_size=conv_min, **_info(failed))


def _linear_mismatch(trace: Trace) -> Call | None:
    failed = trace.failed
    if failed is None or not isinstance(failed.module, nn.Linear):
        return None
    features = failed.input_shape[-1] if failed.input_shape else None
    return failed if features != failed.module.in_features else None


def _expected_channels(module: nn.Module) -> int | None:
    if isinstance(module, _CONVS):
        return module.in_channels
    if isinstance(module, _NORMS):
        return module.num_features
    return None


def _label(call: Call) -> str:
    return f"{call.name or 'net'!r} ({type(call.module).__name__})"


def _raise_if_not_size(net: nn.Module, input_shape: tuple, trace: Trace) -> None:
    """Raise at once for failures that no input size can fix (channels)."""
    failed = trace.failed
    if failed is None or failed.input_shape is None or len(failed.input_shape) < 2:
        return
    expected = _expected_channels(failed.module)
    if expected is not None and failed.input_shape[1] != expected:
        raise_for(net, input_shape, trace)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _safe_min_size(net: nn.Module, channels: int) -> int | None:
    try:
        return min_input_size(net, channels)
    except ValueError:
        return None


def _sizes_matching_linear(
    net: nn.Module, channels: int, start: int, max_size: int
) -> tuple[int, int] | None:
    """(lowest, highest) sizes >= start that run the whole net, or None.

    The flattened feature count grows with the input size, so the sizes whose count
    equals the first mismatching Linear's in_features form one interval.
    """

    def probe(size: int) -> Trace:
        return run(net, (1, channels, size, size), device=None, count=False)

    first = probe(start)
    if first.error is None:
        return start, _last_working(probe, start, max_size)
    mismatch = _linear_mismatch(first)
    if mismatch is None:
        return None
    layer, wanted = mismatch.module, mismatch.module.in_features

    def features(size: int) -> int:
        for call in probe(size).calls:
            if call.module is layer and call.input_shape:
                return call.input_shape[-1]
        return 0

    if features(start) > wanted:
        return None
    low, high = start, max_size  # smallest size with features >= wanted
    if features(high) < wanted:
        return None
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if features(mid) < wanted else (low, mid)
    if features(high) != wanted or probe(high).error is not None:
        return None
    return high, _last_working(probe, high, max_size)


def _last_working(probe: Callable[[int], Trace], start: int, max_size: int) -> int:
    """Largest size in [start, max_size] that still runs, given that start runs."""
    low, high = start, max_size + 1  # low works, high fails (or is out of range)
    if probe(max_size).error is None:
        return max_size
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if probe(mid).error is None else (low, mid)
    return low
