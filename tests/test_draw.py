"""Diagrams from the code: box order, branches, merges, determinism, costs, fields."""

import io

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

import d2lcnn
from d2lcnn.drawing import (
    cost_stages,
    draw_costs,
    draw_net,
    net_layout,
    receptive_field,
)
from d2lcnn.models.densenet import DenseBlock
from d2lcnn.models.googlenet import Inception
from d2lcnn.models.resnet import Residual
from d2lcnn.summary import count_params, min_input_size

torch.set_num_threads(1)


def test_lenet_boxes_in_execution_order():
    layout = net_layout(d2lcnn.get_model("lenet"), (1, 1, 28, 28))
    assert [box.type for box in layout.boxes] == [
        "input", "Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d",
        "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear",
    ]  # fmt: skip
    assert [box.rank for box in layout.boxes] == list(range(12))
    assert {box.lane for box in layout.boxes} == {0}
    assert all(box.preds == (box.index - 1,) for box in layout.boxes[1:])
    labels = [box.label for box in layout.boxes]
    assert labels[1] == "Conv2d 5x5" and labels[3] == "AvgPool2d 2x2/2"
    assert labels[7] == "Linear 400->120"  # torch.flatten in forward: no box
    assert layout.boxes[-1].output_shape == (1, 10)
    assert sum(box.params for box in layout.boxes) == 61_706


def test_inception_block_has_four_parallel_branches_joined_by_concat():
    layout = net_layout(Inception(192, 64, (96, 128), (16, 32), 32), (1, 192, 28, 28))
    starts = [box for box in layout.boxes if box.preds == (0,)]
    assert [box.name for box in starts] == ["p1_1", "p2_1", "p3_1", "p4_1"]
    assert sorted(box.lane for box in starts) == [0, 1, 2, 3]  # side by side
    assert len({box.rank for box in starts}) == 1
    concat = layout.boxes[-1]
    assert concat.type == "concat" and concat.output_shape == (1, 256, 28, 28)
    ends = [layout.boxes[i].name for i in concat.preds]
    assert ends == ["p1_1", "p2_2", "p3_2", "p4_2"]
    assert str(layout).splitlines()[0] == "Inception: 9 boxes in 4 ranks, 4 lanes"


def test_residual_block_shortcut():
    identity = net_layout(Residual(8, 8), (1, 8, 6, 6))
    add = identity.boxes[-1]
    assert add.type == "add" and add.output_shape == (1, 8, 6, 6)
    assert [identity.boxes[i].name for i in add.preds] == ["", "bn2"]  # input and bn2
    projected = net_layout(Residual(8, 16, use_1x1conv=True, strides=2), (1, 8, 6, 6))
    conv3 = next(box for box in projected.boxes if box.name == "conv3")
    assert conv3.preds == (0,) and conv3.lane == 1 and conv3.label == "Conv2d 1x1/2"
    add = projected.boxes[-1]
    assert add.type == "add" and {projected.boxes[i].name for i in add.preds} == {
        "bn2", "conv3"
    }  # fmt: skip


def test_densenet_block_concatenates_every_output():
    layout = net_layout(DenseBlock(3, 4, 5), (1, 4, 8, 8), depth=1)
    blocks = [box for box in layout.boxes if box.name.startswith("net.")]
    assert [box.preds for box in blocks] == [(0,), (0, 1), (0, 1, 2)]  # dense links
    concat = layout.boxes[-1]
    assert concat.type == "concat" and concat.preds == (0, 1, 2, 3)
    assert concat.output_shape == (1, 4 + 3 * 5, 8, 8)


def test_nested_blocks_get_one_merge_each_not_a_pile_of_skips():
    net = nn.Sequential(Residual(4, 4), Residual(4, 4))
    layout = net_layout(net, (1, 4, 6, 6), depth=2)
    adds = [box for box in layout.boxes if box.type == "add"]
    assert len(adds) == 2
    assert len(adds[1].preds) == 2 and adds[0].index in adds[1].preds


def test_functional_block_draws_without_modules_for_the_ops():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return F.relu(self.a(x)) * torch.sigmoid(self.b(x))

    layout = net_layout(Gate(), (1, 2, 4, 4))
    assert [box.type for box in layout.boxes] == ["input", "Conv2d", "Conv2d", "mul"]
    assert layout.boxes[-1].preds == (1, 2)


@pytest.mark.parametrize("name", d2lcnn.list_models())
def test_every_registered_model_draws(name):
    net = d2lcnn.get_model(name)
    side = min_input_size(net, include_linear=True)
    layout = net_layout(net, (1, 1, side, side), depth=1)
    assert layout.boxes[-1].size == 10  # NiN flattens (1, 10, 1, 1) after its last box
    assert sum(box.params for box in layout.boxes) == count_params(net)


def test_figure_is_deterministic_and_sized_by_output():
    def png(fig: Figure) -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()

    block = Inception(192, 64, (96, 128), (16, 32), 32)
    first, second = draw_net(block, (1, 192, 28, 28)), draw_net(block, (1, 192, 28, 28))
    assert isinstance(first, Figure)
    assert png(first) == png(second)
    boxes = [p for p in first.axes[0].patches if type(p).__name__ == "FancyBboxPatch"]
    assert len(boxes) == 9
    widths = {round(p.get_width(), 3) for p in boxes}
    assert len(widths) > 1  # 16x28x28 and 256x28x28 are not drawn alike


def test_nets_drawn_at_one_scale():
    small, large = nn.Sequential(nn.Conv2d(1, 2, 1)), nn.Sequential(nn.Conv2d(1, 64, 1))

    def widest(net):
        fig = draw_net(net, (1, 1, 8, 8), full_width=64 * 8 * 8)
        return max(p.get_width() for p in fig.axes[0].patches if hasattr(p, "get_width"))

    assert widest(small) < widest(large)
    alone = draw_net(small, (1, 1, 8, 8)).axes[0].patches
    assert max(p.get_width() for p in alone if hasattr(p, "get_width")) == widest(large)


def test_draw_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert draw_net(nn.Sequential(nn.Linear(3, 2)), (1, 3), ax=ax) is fig


def test_costs_per_stage_add_up():
    net = d2lcnn.get_model("alexnet")
    stages = cost_stages(net, (1, 1, 224, 224), depth=1)
    labels = [label for label, _, _ in stages]
    assert labels == ["features Sequential", "classifier Sequential"]
    assert sum(params for _, params, _ in stages) == count_params(net)
    # the book's point: the dense part holds the parameters, the conv part the FLOPs
    assert stages[1][1] > stages[0][1] and stages[0][2] > stages[1][2]
    fig = draw_costs(net, (1, 1, 224, 224), depth=1)
    bars = [p.get_width() for p in fig.axes[0].patches]
    assert bars == [params for _, params, _ in stages]


def test_receptive_field_of_stacked_3x3_and_alexnet():
    stack = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)],
                          nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))  # fmt: skip
    rows = receptive_field(stack, (1, 1, 32, 32)).rows
    assert [(r.kernel, r.stride, r.jump, r.field) for r in rows] == [
        (3, 1, 1, 3), (3, 1, 1, 5), (3, 1, 1, 7), (2, 2, 2, 8), (3, 1, 2, 12)
    ]  # fmt: skip
    alex = receptive_field(d2lcnn.get_model("alexnet"), (1, 1, 224, 224))
    assert [r.field for r in alex.rows][:3] == [11, 19, 51]
    assert str(alex).splitlines()[0] == "AlexNet, input 224x224"
    assert "195x195" in str(alex)


def test_receptive_field_refuses_branches():
    with pytest.raises(ValueError, match="follows one chain of layers.*p2_1"):
        receptive_field(Inception(8, 2, (2, 3), (2, 3), 2), (1, 8, 8, 8))


def test_bad_depth_and_bad_input_name_the_problem():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        net_layout(nn.ReLU(), (1, 2), depth=0)
    with pytest.raises(d2lcnn.ShapeError, match="expects 1 input channel, got 3"):
        draw_net(d2lcnn.get_model("lenet"), (1, 3, 28, 28))
