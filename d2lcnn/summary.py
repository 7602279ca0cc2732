"""Shape inspector and model costs: ``layer_summary``, ``min_input_size``, FLOPs.

Every function probes the net with one forward pass under forward hooks. By default
that pass runs on the ``meta`` device (shapes only, no arithmetic, no memory), so a
summary of VGG at 224x224 is instant on a laptop; nets whose forward needs real values
fall back to the device their parameters live on. FLOPs come from PyTorch's
``FlopCounterMode``, which counts a multiply-add as 2 FLOPs (conv, linear, matmul) and
elementwise ops (ReLU, pooling, bias) as 0.
"""

from __future__ import annotations

import copy
import html
import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "LayerRow",
    "LayerSummary",
    "ShapeError",
    "check_input_shape",
    "count_flops",
    "count_params",
    "layer_summary",
    "min_input_size",
]

_MAX_SIZE = 4096  # largest square side min_input_size searches


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


@dataclass(frozen=True)
class LayerRow:
    """One module call: qualified name, class name, output shape, own costs, nesting.

    ``params`` counts the module's parameters (with its children's) at its first call
    and 0 when the same module runs again; ``flops`` is that call's FLOPs.
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    flops: int
    depth: int


@dataclass(frozen=True)
class LayerSummary:
    """The table ``layer_summary`` returns; prints as text, shows as HTML in Jupyter."""

    rows: list[LayerRow]
    input_shape: tuple[int, ...]
    output_shape: tuple
    total_params: int
    total_flops: int
    trainable_params: int = field(default=0)

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = ["Layer (type)", "Output shape", "Params", "FLOPs"]
        body = [
            [
                "  " * max(row.depth - 1, 0)
                + (f"{row.name} ({row.type})" if row.name else row.type),
                _shape_str(row.output_shape),
                _count_str(row.params),
                _si_str(row.flops),
            ]
            for row in self.rows
        ]
        return header, body

    def __str__(self) -> str:
        header, body = self._table()
        total = [
            "Total",
            _shape_str(self.output_shape),
            f"{self.total_params:,}",
            _si_str(self.total_flops),
        ]
        widths = [max(len(r[i]) for r in [header, total, *body]) for i in range(4)]

        def line(cells: list[str]) -> str:
            left = cells[0].ljust(widths[0])
            mid = cells[1].ljust(widths[1])
            right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
            return "  ".join([left, mid, *right]).rstrip()

        rule = "-" * len(line(["x" * w for w in widths]))
        lines = [f"Input shape: {_shape_str(self.input_shape)}", line(header), rule]
        lines += [line(cells) for cells in body]
        lines += [rule, line(total)]
        lines.append(
            f"Params: {self.total_params:,} ({self.trainable_params:,} trainable)  "
            f"FLOPs per forward: {self.total_flops:,} (multiply-add = 2)"
        )
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        header, body = self._table()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        rows = []
        for row, cells in zip(self.rows, body, strict=True):
            pad = 1.2 * max(row.depth - 1, 0)
            tds = [
                f'<td style="text-align:left;padding-left:{pad:.1f}em">'
                f"{html.escape(cells[0].strip())}</td>",
                f'<td style="text-align:left">{html.escape(cells[1])}</td>',
                *(f'<td style="text-align:right">{c}</td>' for c in cells[2:]),
            ]
            rows.append("<tr>" + "".join(tds) + "</tr>")
        total = (
            f'<tr style="font-weight:bold"><td style="text-align:left">Total</td>'
            f'<td style="text-align:left">{_shape_str(self.output_shape)}</td>'
            f'<td style="text-align:right">{self.total_params:,}</td>'
            f'<td style="text-align:right">{_si_str(self.total_flops)}</td></tr>'
        )
        caption = (
            f"Input shape {_shape_str(self.input_shape)}; FLOPs per forward: "
            f"{self.total_flops:,} (multiply-add = 2)"
        )
        return (
            f"<table><caption>{caption}</caption><thead><tr>{th}</tr></thead>"
            f"<tbody>{''.join(rows)}{total}</tbody></table>"
        )


def count_params(net: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``net`` (shared parameters counted once).

    Example:
        >>> count_params(nn.Linear(400, 120))
        48120
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def count_flops(
    net: nn.Module, input_shape: Sequence[int], *, device: str | torch.device | None = None
) -> int:
    """FLOPs of one forward pass on a batch of ``input_shape`` (multiply-add = 2).

    Example:
        >>> count_flops(nn.Linear(400, 120), (1, 400))  # 2 * 400 * 120
        96000
    """
    return layer_summary(net, input_shape, depth=1, device=device).total_flops


def layer_summary(
    net: nn.Module,
    input_shape: Sequence[int],
    *,
    depth: int | None = 2,
    device: str | torch.device | None = None,
) -> LayerSummary:
    """Run ``net`` once on zeros of ``input_shape`` and tabulate every layer call.

    Rows come in execution order (also for custom ``forward`` with branches), nested
    modules down to ``depth`` levels (None: all). The pass runs in eval mode without
    gradients and restores the modules' training flags afterwards. ``device=None``
    probes on the meta device (instant) and falls back to the net's own device.
    Bad shapes raise ``ShapeError`` naming the layer and the smallest input that works.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Flatten())
        >>> print(layer_summary(net, (1, 1, 28, 28)))
        Input shape: (1, 1, 28, 28)
        Layer (type)  Output shape    Params  FLOPs
        -------------------------------------------
        0 (Conv2d)    (1, 6, 28, 28)     156   235K
        1 (Flatten)   (1, 4704)           --     --
        -------------------------------------------
        Total         (1, 4704)          156   235K
        Params: 156 (156 trainable)  FLOPs per forward: 235,200 (multiply-add = 2)
    """
    input_shape = _check_shape_arg(input_shape)
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be >= 1 or None, got {depth}")
    trace = _run(net, input_shape, device=device, count=True)
    _raise_for(net, input_shape, trace)
    calls = [c for c in trace.calls if c.depth >= 1]
    if not calls:  # a single layer: show the net itself as the only row
        calls = trace.calls[:1]
    rows = [
        LayerRow(c.name, type(c.module).__name__, c.output_shape, c.params, c.flops, c.depth)
        for c in calls
        if depth is None or c.depth <= depth
    ]
    return LayerSummary(
        rows=rows,
        input_shape=input_shape,
        output_shape=trace.calls[0].output_shape,
        total_params=count_params(net),
        total_flops=trace.calls[0].flops,
        trainable_params=count_params(net, trainable_only=True),
    )


def check_input_shape(net: nn.Module, input_shape: Sequence[int]) -> None:
    """Raise ``ShapeError`` if ``net`` cannot take ``input_shape``; cheap (meta device).

    Example:
        >>> check_input_shape(nn.Conv2d(1, 6, 5), (1, 1, 28, 28)) is None
        True
    """
    input_shape = _check_shape_arg(input_shape)
    _raise_for(net, input_shape, _run(net, input_shape, device=None, count=False))


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
    if _has_lazy(net):
        # probing would fix the lazy layers' shapes: probe a copy, and a lazy Linear
        # takes any flattened size, so only the convolutional part limits the size
        net, include_linear = copy.deepcopy(net), False

    def conv_part_ok(size: int) -> bool:
        trace = _run(net, (1, channels, size, size), device=None, count=False)
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
    if not include_linear:
        return high
    sizes = _sizes_matching_linear(net, channels, high, max_size)
    if sizes is None:
        shape = (1, channels, high, high)
        _raise_for(net, shape, _run(net, shape, device=None, count=False))
        raise ValueError(f"no square input from {high} to {max_size} runs the whole net")
    return sizes[0]


# ---------------------------------------------------------------- probing machinery


@dataclass
class _Call:
    module: nn.Module
    name: str
    depth: int
    input_shape: tuple | None
    first_call: bool  # a module run twice shows its parameters once
    flops_before: int
    params: int = 0
    output_shape: tuple = ()
    flops: int = 0


@dataclass
class _Trace:
    calls: list[_Call]
    error: Exception | None = None
    failed: _Call | None = None  # innermost module running when the error happened


def _run(
    net: nn.Module,
    input_shape: tuple[int, ...],
    *,
    device: str | torch.device | None,
    count: bool,
) -> _Trace:
    """One hooked forward pass; records calls, or the innermost failing call."""
    if device is None and _has_lazy(net):
        device = _device_of(net)  # lazy layers get their shapes from a real forward
    if device is None:
        trace = _run_on(net, input_shape, torch.device("meta"), count)
        if trace.error is None or not _needs_real_values(trace):
            return trace
        device = _device_of(net)  # forward needs real values: use the net's device
    return _run_on(net, input_shape, torch.device(device), count)


def _run_on(
    net: nn.Module, input_shape: tuple[int, ...], device: torch.device, count: bool
) -> _Trace:
    names = {m: name for name, m in net.named_modules()}
    trace = _Trace(calls=[])
    stack: list[_Call] = []
    seen: set[nn.Module] = set()
    counter = FlopCounterMode(display=False) if count else None

    def total_flops() -> int:
        return counter.get_total_flops() if counter is not None else 0

    def pre_hook(module: nn.Module, args: tuple) -> None:
        call = _Call(
            module=module,
            name=names[module],
            depth=len(stack),
            input_shape=_first_shape(args),
            first_call=module not in seen,
            flops_before=total_flops(),
        )
        seen.add(module)
        trace.calls.append(call)
        stack.append(call)

    def post_hook(module: nn.Module, args: tuple, output: object) -> None:
        call = stack.pop()
        if call.first_call:  # counted after the call, when lazy layers have shapes
            call.params = count_params(module)
        call.output_shape = _shape_of(output)
        call.flops = total_flops() - call.flops_before

    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    try:
        with _eval_mode(net), torch.no_grad(), _maybe(counter):
            forward = _forward_on(net, device)
            forward(torch.zeros(input_shape, device=device, dtype=_dtype_of(net)))
    except Exception as error:  # reported with the failing layer by the caller
        trace.error = error
        trace.failed = stack[-1] if stack else None
    finally:
        for handle in handles:
            handle.remove()
    return trace


def _forward_on(net: nn.Module, device: torch.device):
    """A forward function running ``net`` on ``device`` without moving ``net``."""
    if _same_device(device, _device_of(net)):
        return net
    # functional_call swaps in copies (meta copies are free) and leaves net untouched
    copies: dict[int, torch.Tensor] = {}  # tied weights must stay one tensor
    state = {}
    for name, tensor in net.state_dict(keep_vars=True).items():
        if id(tensor) not in copies:
            copies[id(tensor)] = (
                torch.empty_like(tensor, device=device)
                if device.type == "meta"
                else tensor.to(device)
            )
        state[name] = copies[id(tensor)]
    return lambda x: functional_call(net, state, (x,))


@contextmanager
def _eval_mode(net: nn.Module) -> Iterator[None]:
    flags = {m: m.training for m in net.modules()}
    net.eval()
    try:
        yield
    finally:
        for module, training in flags.items():
            module.training = training


@contextmanager
def _maybe(counter: FlopCounterMode | None) -> Iterator[None]:
    if counter is None:
        yield
    else:
        with counter:
            yield


def _has_lazy(net: nn.Module) -> bool:
    return any(nn.parameter.is_lazy(t) for t in [*net.parameters(), *net.buffers()])


def _device_of(net: nn.Module) -> torch.device:
    for tensor in [*net.parameters(), *net.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _same_device(a: torch.device, b: torch.device) -> bool:
    # 'cuda' and 'cuda:0' name the same device when 0 is the current one
    if a.type != b.type:
        return False
    if a.type == "cuda":
        current = torch.cuda.current_device()
        return (a.index if a.index is not None else current) == (
            b.index if b.index is not None else current
        )
    return a.index == b.index or None in (a.index, b.index)


def _dtype_of(net: nn.Module) -> torch.dtype:
    for tensor in net.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


# ------------------------------------------------------------------- diagnosis


def _needs_real_values(trace: _Trace) -> bool:
    """True if the meta pass failed for want of real values, not because of shapes."""
    error = trace.error
    return isinstance(error, NotImplementedError) or "meta" in str(error).lower()


def _linear_mismatch(trace: _Trace) -> _Call | None:
    failed = trace.failed
    if failed is None or not isinstance(failed.module, nn.Linear):
        return None
    features = failed.input_shape[-1] if failed.input_shape else None
    return failed if features != failed.module.in_features else None


def _expected_channels(module: nn.Module) -> int | None:
    if isinstance(module, _ConvNd):
        return module.in_channels
    if isinstance(module, _BatchNorm):
        return module.num_features
    return None


def _label(call: _Call) -> str:
    return f"{call.name or 'net'!r} ({type(call.module).__name__})"


def _raise_if_not_size(net: nn.Module, input_shape: tuple, trace: _Trace) -> None:
    """Raise at once for failures that no input size can fix (channels)."""
    failed = trace.failed
    if failed is None or failed.input_shape is None or len(failed.input_shape) < 2:
        return
    expected = _expected_channels(failed.module)
    if expected is not None and failed.input_shape[1] != expected:
        _raise_for(net, input_shape, trace)


def _raise_for(net: nn.Module, input_shape: tuple, trace: _Trace) -> None:
    """Raise the diagnosed error of a failed trace (nothing if it succeeded)."""
    if trace.error is None:
        return
    diagnosed = _diagnose(net, input_shape, trace)
    if diagnosed is trace.error:
        raise trace.error
    raise diagnosed from trace.error


def _diagnose(net: nn.Module, input_shape: tuple, trace: _Trace) -> Exception:
    """Turn PyTorch's bare shape error into one naming layer, shape and the fix."""
    failed, error = trace.failed, trace.error
    if failed is None or failed.input_shape is None:
        return error
    shape = failed.input_shape
    layer = f"layer {_label(failed)}"
    info = {"layer": failed.name, "layer_type": type(failed.module).__name__, "input_shape": shape}
    expected = _expected_channels(failed.module)
    if expected is not None and len(shape) >= 2 and shape[1] != expected:
        fix = (
            f"pass an input with {_plural(expected, 'channel')}, e.g. input_shape="
            f"{(input_shape[0], expected, *input_shape[2:])}, or build the net "
            f"with in_channels={shape[1]}"
            if shape[1] == input_shape[1]
            else "the layer before it produces a different channel count; fix the net"
        )
        return ShapeError(
            f"{layer} expects {_plural(expected, 'input channel')}, got {shape[1]} "
            f"(input shape {shape}); {fix}",
            **info,
        )
    spatial = len(input_shape) == 4
    channels = input_shape[1] if spatial else 1
    mismatch = _linear_mismatch(trace)
    if mismatch is not None:
        wanted = mismatch.module.in_features
        message = (
            f"{layer} expects {_plural(wanted, 'input feature')}, got {shape[-1]} "
            f"(input shape {shape})"
        )
        if not spatial:
            return ShapeError(message, **info)
        conv_min = _safe_min_size(net, channels)
        sizes = _sizes_matching_linear(net, channels, conv_min, _MAX_SIZE) if conv_min else None
        if sizes is None:
            return ShapeError(
                f"{message}; no square input gives {wanted} features: build the "
                f"Linear with in_features={shape[-1]} (or use nn.LazyLinear)",
                **info,
            )
        low, high = sizes
        sizes_text = f"{low}x{low}" if low == high else f"{low}x{low} to {high}x{high}"
        return ShapeError(
            f"{message}; square inputs from {sizes_text} give {wanted} features "
            f"(resize the input, e.g. to {high}x{high}, or change the Linear)",
            min_size=low,
            **info,
        )
    if not spatial:
        return error
    conv_min = _safe_min_size(net, channels)
    got = min(input_shape[2:])
    if conv_min is None or got >= conv_min:
        return error
    message = (
        f"{layer} got input shape {shape}, too small for it (PyTorch: "
        f"{str(error).strip()!r}); the smallest "
        f"square input the convolutional part accepts is {conv_min}x{conv_min}, got "
        f"{input_shape[2]}x{input_shape[3]}; resize the input to at least {conv_min}"
    )
    whole = _sizes_matching_linear(net, channels, conv_min, _MAX_SIZE)
    if whole is not None and whole[0] != conv_min:
        low, high = whole
        message += f" (the whole net, with its Linear layers, takes {low}..{high})"
    return ShapeError(message, min_size=conv_min, **info)


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

    def probe(size: int) -> _Trace:
        return _run(net, (1, channels, size, size), device=None, count=False)

    first = probe(start)
    if first.error is None:
        return start, _last_working(probe, start, max_size)
    mismatch = _linear_mismatch(first)
    if mismatch is None:
        return None
    layer, wanted = mismatch.module, mismatch.module.in_features

    def features(size: int) -> int:
        trace = probe(size)
        for call in trace.calls:
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


def _last_working(probe, start: int, max_size: int) -> int:
    """Largest size in [start, max_size] that still runs, given that start runs."""
    low, high = start, max_size + 1  # low works, high fails (or is out of range)
    if probe(max_size).error is None:
        return max_size
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if probe(mid).error is None else (low, mid)
    return low


# ---------------------------------------------------------------------- helpers


def _check_shape_arg(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(operator.index(d) for d in input_shape)
    except TypeError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ValueError(
            f"input_shape must be positive ints like (1, 1, 224, 224), got {input_shape!r}"
        )
    return shape


def _first_shape(args: tuple) -> tuple | None:
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return tuple(arg.shape)
    return None


def _shape_of(output: object) -> tuple:
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return tuple(_shape_of(o) for o in output)
    return ()


def _shape_str(shape: tuple) -> str:
    if shape and all(isinstance(s, tuple) for s in shape):
        return "[" + ", ".join(_shape_str(s) for s in shape) + "]"
    return str(tuple(shape))


def _count_str(n: int) -> str:
    return f"{n:,}" if n else "--"


def _si_str(n: int) -> str:
    """3 significant digits with K/M/G/T, e.g. 235200 -> '235K'."""
    if n == 0:
        return "--"
    if n < 1000:
        return str(n)
    for exponent, unit in ((12, "T"), (9, "G"), (6, "M"), (3, "K")):
        if n >= 10**exponent:
            value = n / 10**exponent
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f}{unit}"
    return str(n)
