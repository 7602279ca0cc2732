"""Training panel: change a chapter's settings, re-train with one click, compare runs.

The notebooks' import path (``from d2lcnn.widgets import TrainingPanel``); the code
lives in ``d2lcnn/panel/``: a controller, a view of plain functions, and a thin
ipywidgets layer (core ipywidgets only, 7.6+ and 8, so Colab works). Constructing or
displaying a panel trains nothing.
"""

from .panel.controller import PanelController, PanelRun
from .panel.plot import SERIES_STYLE as SERIES
from .panel.plot import draw_runs
from .panel.ui import TrainingPanel

__all__ = ["PanelController", "PanelRun", "SERIES", "TrainingPanel", "draw_runs"]
