"""Diagrams drawn from the code that runs, built on the shape inspector's probe.

- ``draw_net``: one box per layer or block in execution order, branches side by side;
  ``net_layout`` gives the same boxes as text (compared strictly under nbval);
- ``draw_costs``: where the parameters and FLOPs sit, per stage;
- ``receptive_field``: how much of the input each layer of a conv/pool chain sees.

Matplotlib only: no graphviz binary to install, and the boxes come from the hooks, so
a net the learner edits is drawn as edited.
"""

from .figure import cost_stages, draw_costs, draw_net
from .layout import Box, NetLayout, net_layout
from .receptive import FieldRow, ReceptiveField, receptive_field

__all__ = [
    "Box",
    "FieldRow",
    "NetLayout",
    "ReceptiveField",
    "cost_stages",
    "draw_costs",
    "draw_net",
    "net_layout",
    "receptive_field",
]
