"""d2lcnn: helpers for the classic-CNN chapters; ``import d2lcnn as d2l`` runs d2l code.

Example:
    >>> import d2lcnn as d2l
    >>> d2l.try_all_gpus()[0].type in {"cpu", "cuda"}
    True
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .history import History
from .plot import Animator, plot, set_axes, set_figsize, show_images, use_svg_display
from .recipe import Recipe
from .results import load_results, save_result, seeds_report
from .settings import (
    Settings,
    build_model,
    choose_profile,
    get_model,
    list_models,
    profile_name,
    register_model,
    settings_for,
)
from .stats import compare, mcnemar, mean_interval
from .summary import ShapeError, count_flops, count_params, layer_summary, min_input_size
from .sweep import lr_sweep
from .train import evaluate_accuracy_gpu, train_ch6
from .utils import (
    Accumulator,
    Timer,
    accuracy,
    get_dataloader_workers,
    num_gpus,
    try_all_gpus,
    try_gpu,
)

__version__ = "0.3.0"

_LAZY = {  # imported on first use: scripts that never draw or show a panel don't pay
    "load_data_fashion_mnist": "data", "get_fashion_mnist_labels": "data",
    "draw_costs": "drawing", "draw_net": "drawing", "net_layout": "drawing",
    "receptive_field": "drawing", "TrainingPanel": "widgets", "check": "exercises",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    from .book import lookup  # the rest of d2l's names; AttributeError if not one

    return lookup(name)


def __dir__():
    from .book import NAMES  # tab completion lists d2l's book names too

    return sorted(set(globals()) | set(_LAZY) | set(NAMES))


__all__ = [
    "Accumulator", "Animator", "History", "Recipe", "Settings", "ShapeError", "Timer",
    "TrainingPanel", "accuracy", "build_model", "check", "choose_profile", "compare",
    "count_flops", "count_params", "draw_costs", "draw_net", "evaluate_accuracy_gpu",
    "get_dataloader_workers", "get_fashion_mnist_labels", "get_model", "layer_summary",
    "list_models", "load_checkpoint", "load_data_fashion_mnist", "load_results", "lr_sweep",
    "mcnemar",
    "mean_interval", "min_input_size", "net_layout", "num_gpus", "plot", "profile_name",
    "receptive_field", "register_model", "save_checkpoint", "save_result", "seeds_report",
    "set_axes",
    "set_figsize", "settings_for", "show_images", "train_ch6", "try_all_gpus", "try_gpu",
    "use_svg_display",
]
