"""Animator: a recording core, tested without a display, and both renderers."""

import sys

import IPython.display
import torch

import d2lcnn as d2l
import d2lcnn.plot  # noqa: F401  (d2l.plot is d2l's function; the module is:)

plot = sys.modules["d2lcnn.plot"]


def test_add_skips_none_like_d2l():
    animator = d2l.Animator(legend=["loss", "acc"], display=False)
    animator.add(0.5, (1.0, None))
    animator.add(1, (0.5, 0.7))
    assert animator.X == [[0.5, 1], [1]]
    assert animator.Y == [[1.0, 0.5], [0.7]]
    assert repr(animator) == "Animator(series=['loss', 'acc'], points=3)"


def test_console_renderer_prints_one_row_per_epoch_without_figure_noise(capsys):
    animator = d2l.Animator(xlabel="epoch", legend=["train loss", "test acc"])
    assert not animator.notebook
    animator.add(0.5, (1.0, None))
    animator.add(1, (0.5, None))
    animator.add(1, (None, 0.75))  # same epoch: merged into one row
    animator.add(2, (0.25, 0.5))
    animator.finish()
    out = capsys.readouterr().out
    assert "<Figure" not in out
    assert out.splitlines() == [
        "       epoch   train loss     test acc",
        "           1       0.5000       0.7500",
        "           2       0.2500       0.5000",
    ]


def test_save_writes_the_final_figure(tmp_path):
    animator = d2l.Animator(legend=["loss"], display=False)
    for x in range(1, 4):
        animator.add(x, 1.0 / x)
    animator.save(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


class FakeHandle:
    def __init__(self):
        self.updates = []

    def update(self, obj):
        self.updates.append(obj)


def test_notebook_renderer_updates_one_display_handle_with_png(monkeypatch):
    shown = []
    handle = FakeHandle()

    def fake_display(obj, display_id=False):
        shown.append(obj)
        return handle

    monkeypatch.setattr(plot, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake_display)
    animator = d2l.Animator(legend=["loss"], min_interval=0.0)
    for x in range(1, 4):
        animator.add(x, 1.0 / x)
    assert len(shown) == 1 and len(handle.updates) == 2  # one output, updated in place
    assert all(img.format == "png" for img in shown + handle.updates)


def test_show_images_and_plot_return_axes():
    axes = d2l.show_images(torch.zeros(4, 28, 28), 2, 2, titles=list("abcd"))
    assert [ax.get_title() for ax in axes] == list("abcd")
    ax = d2l.plot(list(range(3)), [[0, 1, 4], [0, 1, 2]], legend=["a", "b"])
    assert len(ax.get_lines()) == 2
