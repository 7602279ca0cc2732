"""Shape inspector and model costs: ``layer_summary``, ``min_input_size``, FLOPs.

Three layers, each reading the one below:

- ``probe``: one forward pass under hooks, recording every module call in execution
  order (on the ``meta`` device by default: shapes only, instant even for VGG at 224);
- ``shapes``: which layer rejects an input and the smallest input that works;
- ``table``: the printed table and the costs (parameters, FLOPs).
"""

from .shapes import ShapeError, check_input_shape, min_input_size
from .table import LayerRow, LayerSummary, count_flops, count_params, layer_summary

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
