"""The panel's text and HTML, as plain functions of its state (no ipywidgets here).

The widget layer puts these strings into ``widgets.HTML``; ``snapshot_html`` joins
them, with the curves as an embedded PNG, into the static copy of the panel that a
saved notebook shows where no kernel runs (GitHub, nbviewer, a rendered book).
"""

from __future__ import annotations

import base64
import html

from .settings import NATIVE_SIZE

__all__ = [
    "controls_html",
    "error_html",
    "estimate_text",
    "info_html",
    "progress_text",
    "runs_table_html",
    "snapshot_html",
    "status_html",
    "summary_text",
]

COLORS = {"completed": "green", "stopped": "darkorange", "running": "steelblue",
          "info": ""}  # any other tone (an error, a refusal, a failed run) is red
CELL = "padding:1px 8px;text-align:right"  # runs-table cells: numbers line up


def _color(tone: str) -> str:
    return COLORS.get(tone, "firebrick")


def status_html(text: str, tone: str = "info") -> str:
    """One escaped status line, coloured by its tone (a run status, or 'info').

    Example:
        >>> status_html("Run #1 completed", "completed")
        "<span style='color:green'>Run #1 completed</span>"
    """
    color = _color(tone)
    return f"<span style='color:{color}'>{html.escape(text)}</span>" if color else (
        html.escape(text))


def progress_text(run) -> str:
    """Where a running run is, read from its History.

    Example:
        >>> from d2lcnn.panel import PanelRun
        >>> run = PanelRun(1, {"num_epochs": 2})
        >>> run.history.add_point(0.5, {"train loss": 0.9, "train acc": 0.6})
        >>> progress_text(run)
        'Run #1 training: 0.50 of 2 epochs done, loss 0.900, train acc 0.600'
    """
    h = run.history
    text = (f"Run #{run.number} training: {h.last_x or 0:.2f} of "
            f"{run.settings['num_epochs']} epochs done")
    if h.last("train loss") is not None:
        text += f", loss {h.last('train loss'):.3f}"
    if h.last("train acc") is not None:
        text += f", train acc {h.last('train acc'):.3f}"
    if h.last("test acc") is not None:
        text += f", test acc {h.last('test acc'):.3f}"
    return text


def summary_text(run) -> str:
    """How a finished run ended, with its test accuracy and where its results are.

    Example:
        >>> from d2lcnn.panel import PanelRun
        >>> run = PanelRun(2, {"num_epochs": 1}, wall_time=3.25)
        >>> run.history.add_epoch(0.6, 0.8, 0.75, 1e3, 1e3, 3.0)
        >>> run.history.end("completed")
        >>> summary_text(run)
        'Run #2 completed after 3.2 s: test acc 0.750'
    """
    text = f"Run #{run.number} {run.status} after {run.wall_time:.1f} s"
    if run.history.last("test acc") is not None:
        text += f": test acc {run.history.last('test acc'):.3f}"
    if run.status == "stopped":  # train_ch6's hint to continue is for cells
        epochs = len(run.history)
        text += (f". {epochs} full epoch{'s' * (epochs != 1)} kept in "
                 f"panel.runs[{run.number - 1}].history, the net in panel.net")
    elif run.message:
        text += f". {run.message}"
    return text


def estimate_text(estimate, num_train: int | None, device) -> str:
    """The epoch-time estimate from a timing, or how to get one.

    Example:
        >>> estimate_text((1e-4, 16), 60_000, "cpu")
        '≈ 6 s per epoch of 60,000 images on cpu (2 timed steps of 16; training only)'
    """
    if estimate is None:
        return "time per epoch: press <i>Time an epoch</i>"
    (per_example, batch), n = estimate, num_train or 60_000
    return (f"≈ {per_example * n:.3g} s per epoch of {n:,} images on {device} "
            f"(2 timed steps of {batch}; training only)")


def info_html(resize: int, channels: int, problem: str = "", details=()) -> str:
    """The line under the controls: input shape, then a problem or the costs.

    Example:
        >>> info_html(28, 1, details=["61.7K parameters"])
        'input 1x28x28 · 61.7K parameters'
    """
    resized = " (Fashion-MNIST resized from 28x28)" if resize != NATIVE_SIZE else ""
    head = f"input {channels}x{resize}x{resize}{resized}"
    if problem:
        return f"{head} · <span style='color:firebrick'>{html.escape(problem)}</span>"
    return " · ".join([head, *details])


def error_html(stage: str, traceback_text: str) -> str:
    """A failure's box: what failed, the innermost frames, where the rest is kept.

    Example:
        >>> "loading the data failed" in error_html("loading the data", "OSError: x")
        True
    """
    lines = traceback_text.rstrip().splitlines()
    tail = "\n".join(lines[-8:])  # the innermost frames and the message
    return (f"<div style='color:firebrick'><b>{html.escape(stage)} failed</b> "
            "(the panel is still usable; full traceback: panel.last_error)"
            f"<pre style='font-size:11px'>{html.escape(tail)}</pre></div>")


def _number(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _row(run, knobs) -> str:
    s, h = run.settings, run.history
    cells = [run.number, s["batch_size"], s["num_epochs"], s["resize"],
             f"{s['lr']:.3g}", *(s[k] for k in knobs), len(h),
             _number(h.last("train loss"), ".3f"), _number(h.last("train acc"), ".3f"),
             _number(h.last("test acc"), ".3f"), _number(run.examples_per_sec, ".0f"),
             _number(run.wall_time or None, ".1f")]
    tds = "".join(f"<td style='{CELL}'>{html.escape(str(c))}</td>" for c in cells)
    title = html.escape(run.message, quote=True)
    status = (f"<td style='{CELL};color:{_color(run.status) or 'inherit'}' "
              f"title='{title}'>{run.status}</td>")
    return f"<tr>{tds}{status}</tr>"


def runs_table_html(runs, knobs=()) -> str:
    """The runs so far, one row each: settings, epochs done, results, status.

    Example:
        >>> runs_table_html([])
        '<i>No runs yet.</i>'
    """
    if not runs:
        return "<i>No runs yet.</i>"
    head = ["#", "batch", "epochs", "res", "lr", *knobs, "done", "train loss",
            "train acc", "test acc", "ex/s", "wall s", "status"]
    ths = "".join(
        f"<th style='{CELL};border-bottom:1px solid #999'>{html.escape(h)}</th>"
        for h in head
    )
    rows = "".join(_row(run, knobs) for run in runs)
    return ("<table style='font-size:12px;border-collapse:collapse'>"
            f"<thead><tr>{ths}</tr></thead><tbody>{rows}</tbody></table>")


def controls_html(settings, knobs=()) -> str:
    """The controls' values as one static line (the snapshot has no sliders).

    Example:
        >>> from types import SimpleNamespace
        >>> s = SimpleNamespace(batch_size=32, num_epochs=2, resize=28, lr=0.1)
        >>> for part in controls_html(s).split(" · "): print(part)
        batch size <b>32</b>
        epochs <b>2</b>
        resolution <b>28</b>
        learning rate <b>0.1</b>
    """
    pairs = [("batch size", settings.batch_size), ("epochs", settings.num_epochs),
             ("resolution", settings.resize), ("learning rate", f"{settings.lr:.3g}"),
             *((k, getattr(settings, k)) for k in knobs)]
    return " · ".join(f"{html.escape(k)} <b>{html.escape(str(v))}</b>"
                      for k, v in pairs)


def snapshot_html(title: str, *, controls: str, info: str, status: str,
                  error: str = "", figure_png: bytes = b"", table: str = "") -> str:
    """The whole panel as static HTML, curves embedded as a PNG.

    Example:
        >>> page = snapshot_html("Panel", controls="epochs <b>2</b>", info="",
        ...                      status="Ready", figure_png=b"\\x89PNG")
        >>> "data:image/png;base64,iVBORw==" in page, "epochs <b>2</b>" in page
        (True, True)
    """
    image = ""
    if figure_png:
        data = base64.b64encode(figure_png).decode("ascii")
        image = (f"<img src='data:image/png;base64,{data}' alt='training curves' "
                 "style='max-width:760px'/>")
    note = ("<i style='color:gray'>A snapshot of the panel as last drawn; run the "
            "notebook to use its controls.</i>")
    parts = [f"<b>{html.escape(title)}</b>", note, controls, info, status, error,
             image, table]
    body = "".join(f"<div>{part}</div>" for part in parts if part)
    return (f"<div class='d2lcnn-panel-snapshot' style='display:inline-block'>{body}"
            "</div>")
