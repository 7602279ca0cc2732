"""d2lcnn: helpers for the classic-CNN chapters; ``import d2lcnn as d2l`` runs d2l code.

Example:
    >>> import d2lcnn as d2l
    >>> d2l.try_all_gpus()[0].type in {"cpu", "cuda"}
    True
"""

from .animator import Animator
from .checkpoint import load_checkpoint, save_checkpoint
from .devices import get_dataloader_workers, num_gpus, try_all_gpus, try_gpu
from .metrics import Accumulator, Timer, accuracy
from .plotting import plot, set_axes, set_figsize, show_images, use_svg_display
from .profiles import choose as choose_profile
from .profiles import profile_name
from .recipe import Recipe
from .registry import get_model, list_models, register_model
from .results import load_results, save_result
from .summary import ShapeError, count_flops, count_params, layer_summary, min_input_size
from .train import History, evaluate_accuracy_gpu, train_ch6

__version__ = "0.2.0"

_LAZY = {
    "draw_costs": "drawing",  # the diagram modules load on first use
    "draw_net": "drawing",
    "net_layout": "drawing",
    "receptive_field": "drawing",
    "load_data_fashion_mnist": "data",
    "get_fashion_mnist_labels": "data",
    "TrainingPanel": "widgets",
    "check": "exercises",
}


def __getattr__(name):
    # Imported on first use: `python -m d2lcnn.data` then runs a module not imported yet,
    # and scripts that never show a panel don't pay for ipywidgets.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    from .book import lookup  # the rest of d2l's names; AttributeError if not one

    return lookup(name)


def __dir__():
    # tab completion lists the lazy names and d2l's book names too
    from .book import NAMES

    return sorted(set(globals()) | set(_LAZY) | set(NAMES))


__all__ = [
    "Accumulator",
    "Animator",
    "History",
    "Recipe",
    "ShapeError",
    "Timer",
    "TrainingPanel",
    "accuracy",
    "check",
    "choose_profile",
    "count_flops",
    "count_params",
    "draw_costs",
    "draw_net",
    "evaluate_accuracy_gpu",
    "get_fashion_mnist_labels",
    "load_data_fashion_mnist",
    "get_dataloader_workers",
    "get_model",
    "layer_summary",
    "list_models",
    "load_checkpoint",
    "save_checkpoint",
    "load_results",
    "save_result",
    "min_input_size",
    "net_layout",
    "receptive_field",
    "num_gpus",
    "plot",
    "profile_name",
    "register_model",
    "set_axes",
    "set_figsize",
    "show_images",
    "train_ch6",
    "try_all_gpus",
    "try_gpu",
    "use_svg_display",
]
