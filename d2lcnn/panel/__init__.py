"""The training panel, in layers: settings → probe → controller → view/plot → widgets.

``settings``, ``probe``, ``controller``, ``view`` and ``plot`` import no ipywidgets
and are tested without a browser; ``ui`` is the thin ipywidgets layer.
"""

from .controller import PanelController, PanelRun
from .plot import draw_runs

__all__ = ["PanelController", "PanelRun", "TrainingPanel", "draw_runs"]


def __getattr__(name):
    # ipywidgets is imported only for the widget itself: the rest runs without it
    if name == "TrainingPanel":
        from .ui import TrainingPanel

        return TrainingPanel
    raise AttributeError(f"module 'd2lcnn.panel' has no attribute {name!r}")
