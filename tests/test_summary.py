"""Shape inspector: rows, totals, FLOPs, shape errors and minimum input sizes."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import d2lcnn
from d2lcnn.summary import (
    LayerSummary,
    ShapeError,
    check_input_shape,
    count_flops,
    count_params,
    layer_summary,
    min_input_size,
)

torch.set_num_threads(1)


# ------------------------------------------------------------ d2l's chapter nets


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )  # fmt: skip


def alexnet():
    return d2lcnn.get_model("alexnet")  # the chapter's own net, Linear(6400) at 224


def vgg_block(num_convs, in_channels, out_channels):
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg11_features():
    conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    blocks, in_channels = [], 1
    for num_convs, out_channels in conv_arch:
        blocks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    return nn.Sequential(*blocks)


def nin_block(in_channels, out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


def nin():
    return nn.Sequential(
        nin_block(1, 96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        nin_block(384, 10, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )


class Inception(nn.Module):
    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


class Residual(nn.Module):
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(
            input_channels, num_channels, kernel_size=3, padding=1, stride=strides
        )
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (
            nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
            if use_1x1conv
            else None
        )
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet_ish():
    # d2l's ResNet with one residual block per stage and an unpadded stem, so the
    # minimum size is not trivially 1
    stem = nn.Sequential(nn.Conv2d(1, 16, kernel_size=7, stride=2), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2))  # fmt: skip
    stages = nn.Sequential(
        Residual(16, 16),
        Residual(16, 32, use_1x1conv=True, strides=2),
        Residual(32, 64, use_1x1conv=True, strides=2),
    )
    head = [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(stem, stages, *head)


# ---------------------------------------------------------------- rows and totals


def test_lenet_rows_and_totals():
    summary = layer_summary(lenet(), (1, 1, 28, 28))
    assert isinstance(summary, LayerSummary)
    assert summary.total_params == 61_706
    assert [row.type for row in summary.rows] == [
        "Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d",
        "Flatten", "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear",
    ]  # fmt: skip
    assert [row.name for row in summary.rows] == [str(i) for i in range(12)]
    assert [row.output_shape for row in summary.rows[:7]] == [
        (1, 6, 28, 28), (1, 6, 28, 28), (1, 6, 14, 14),
        (1, 16, 10, 10), (1, 16, 10, 10), (1, 16, 5, 5), (1, 400),
    ]  # fmt: skip
    assert [row.params for row in summary.rows if row.params] == [
        156, 2416, 48120, 10164, 850
    ]
    assert sum(row.params for row in summary.rows) == 61_706
    assert summary.output_shape == (1, 10)
    assert all(row.depth == 1 for row in summary.rows)


def test_lenet_text_is_exact_and_deterministic():
    expected = """\
Input shape: (1, 1, 28, 28)
Layer (type)   Output shape     Params  FLOPs
---------------------------------------------
0 (Conv2d)     (1, 6, 28, 28)      156   235K
1 (Sigmoid)    (1, 6, 28, 28)       --     --
2 (AvgPool2d)  (1, 6, 14, 14)       --     --
3 (Conv2d)     (1, 16, 10, 10)   2,416   480K
4 (Sigmoid)    (1, 16, 10, 10)      --     --
5 (AvgPool2d)  (1, 16, 5, 5)        --     --
6 (Flatten)    (1, 400)             --     --
7 (Linear)     (1, 120)         48,120  96.0K
8 (Sigmoid)    (1, 120)             --     --
9 (Linear)     (1, 84)          10,164  20.2K
10 (Sigmoid)   (1, 84)              --     --
11 (Linear)    (1, 10)             850  1.68K
---------------------------------------------
Total          (1, 10)          61,706   833K
Params: 61,706 (61,706 trainable)  FLOPs per forward: 833,040 (multiply-add = 2)"""
    first = str(layer_summary(lenet(), (1, 1, 28, 28)))
    assert first == expected
    assert repr(layer_summary(lenet(), (1, 1, 28, 28))) == first
    # the real-tensor pass gives the same table as the default meta pass
    assert str(layer_summary(lenet(), (1, 1, 28, 28), device="cpu")) == first


def test_html_table_for_jupyter():
    page = layer_summary(lenet(), (1, 1, 28, 28))._repr_html_()
    assert page.startswith("<table>") and page.endswith("</table>")
    assert page.count("<tr") == 1 + 12 + 1  # header, layers, total
    assert "61,706" in page


def test_inception_rows_follow_execution_order():
    block = Inception(192, 64, (96, 128), (16, 32), 32)
    summary = layer_summary(block, (1, 192, 28, 28))
    assert [row.name for row in summary.rows] == [
        "p1_1", "p2_1", "p2_2", "p3_1", "p3_2", "p4_1", "p4_2"
    ]  # fmt: skip
    assert summary.output_shape == (1, 64 + 128 + 32 + 32, 28, 28)
    assert summary.total_params == sum(p.numel() for p in block.parameters())
    # cat and relu cost no FLOPs, so the branches add up to the block
    assert sum(row.flops for row in summary.rows) == summary.total_flops


def test_residual_block_rows_and_nesting():
    block = Residual(3, 6, use_1x1conv=True, strides=2)
    summary = layer_summary(block, (4, 3, 6, 6))
    assert [row.name for row in summary.rows] == ["conv1", "bn1", "conv2", "bn2", "conv3"]
    assert summary.output_shape == (4, 6, 3, 3)
    assert summary.total_params == sum(p.numel() for p in block.parameters())

    net = resnet_ish()
    shallow = layer_summary(net, (1, 1, 96, 96), depth=1)
    deep = layer_summary(net, (1, 1, 96, 96), depth=3)
    assert [row.name for row in shallow.rows] == ["0", "1", "2", "3", "4"]
    assert "1.1.conv3" in [row.name for row in deep.rows]
    assert max(row.depth for row in deep.rows) == 3
    assert shallow.total_params == deep.total_params == count_params(net)
    assert sum(row.params for row in shallow.rows) == count_params(net)
    text = str(deep)
    assert "\n    1.1.conv3 (Conv2d)" in text  # indented two levels


def test_shared_module_counts_params_once_and_restores_training_mode():
    shared = nn.Linear(8, 8)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    net.train()
    net[1].eval()
    summary = layer_summary(net, (2, 8))
    assert [row.params for row in summary.rows] == [72, 0, 0]
    assert summary.total_params == 72
    assert summary.total_flops == 2 * (2 * 2 * 8 * 8)
    assert net.training and net[0].training and not net[1].training


# ---------------------------------------------------------------------- FLOPs


def test_conv_and_linear_flops_equal_closed_form():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    macs = 2 * 8 * 16 * 16 * 3 * 3 * 3  # N * C_out * H * W * C_in * k * k
    assert count_flops(conv, (2, 3, 16, 16)) == 2 * macs

    depthwise = nn.Conv2d(8, 8, kernel_size=3, groups=8)
    assert count_flops(depthwise, (1, 8, 10, 10)) == 2 * (8 * 8 * 8 * 1 * 3 * 3)

    linear = nn.Linear(20, 30)
    assert count_flops(linear, (4, 20)) == 2 * 4 * 20 * 30
    assert count_flops(linear, (4, 20), device="cpu") == 2 * 4 * 20 * 30


@pytest.mark.parametrize("groups", [512, 1])
def test_backward_flops_of_a_depthwise_conv_equal_the_formula(groups):
    # PyTorch 2.14's counter alone counts a depthwise weights' gradient dense: 514x
    conv = nn.Conv2d(512, 512, 3, padding=1, groups=groups, bias=False)
    forward = 2 * 512 * 14 * 14 * (512 // groups) * 9  # 2 * C_out * H * W * C_in/g * k*k
    assert count_flops(conv, (1, 512, 14, 14)) == forward
    # first layer: the weights' gradient only (the input needs none)
    assert count_flops(conv, (1, 512, 14, 14), backward=True) == 2 * forward
    pointwise = nn.Conv2d(512, 512, 1, bias=False)  # before it: the input's gradient too
    net = nn.Sequential(pointwise, conv)
    pointwise_forward = 2 * 512 * 14 * 14 * 512
    assert count_flops(net, (1, 512, 14, 14), backward=True) == (
        2 * pointwise_forward + 3 * forward)


def test_count_params_trainable_only():
    net = lenet()
    net[0].requires_grad_(False)
    assert count_params(net) == 61_706
    assert count_params(net, trainable_only=True) == 61_706 - 156


# ---------------------------------------------------------------------- errors


def test_alexnet_too_small_names_pooling_layer_and_minimum():
    with pytest.raises(ShapeError) as info:
        layer_summary(alexnet(), (1, 1, 64, 64))
    error = info.value
    assert isinstance(error, ValueError)
    message = str(error)
    assert "'features.12' (MaxPool2d)" in message
    assert "(1, 256, 2, 2)" in message
    assert "65x65" in message and "64x64" in message
    assert (error.layer, error.layer_type, error.min_size) == ("features.12", "MaxPool2d", 65)


def test_wrong_channel_count():
    with pytest.raises(ShapeError, match=r"'0' \(Conv2d\) expects 1 input channel, got 3"):
        layer_summary(lenet(), (1, 3, 28, 28))
    with pytest.raises(ShapeError, match="expects 3 input channels, got 1"):
        check_input_shape(nn.Conv2d(3, 8, 3), (1, 1, 28, 28))


def test_flatten_size_mismatch_says_which_size_fits():
    with pytest.raises(ShapeError) as info:
        layer_summary(alexnet(), (1, 1, 96, 96))
    message = str(info.value)
    assert "'classifier.0' (Linear) expects 6400 input features, got 256" in message
    assert "193x193 to 224x224" in message

    with pytest.raises(ShapeError, match="expects 400 input features, got 576"):
        layer_summary(lenet(), (1, 1, 32, 32))


def test_flatten_mismatch_without_any_fitting_size():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(7, 2))
    with pytest.raises(ShapeError, match="no square input gives 7 features"):
        check_input_shape(net, (1, 1, 8, 8))


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_shape must be positive ints"):
        layer_summary(lenet(), (1, 1, 0, 28))
    with pytest.raises(ValueError, match="depth must be >= 1"):
        layer_summary(lenet(), (1, 1, 28, 28), depth=0)


def test_errors_that_are_not_about_shapes_pass_through():
    class Broken(nn.Module):
        def forward(self, x):
            raise KeyError("not a shape problem")

    with pytest.raises(KeyError):
        layer_summary(Broken(), (1, 1, 8, 8))


# ----------------------------------------------------------- minimum input size


@pytest.mark.parametrize(
    ("build", "conv_part", "expected"),
    [
        (lenet, lambda net: net[:6], 12),  # (s // 2 - 4) // 2 >= 1
        (alexnet, lambda net: net.features, 65),  # Linear(6400) is not part of the search
        (vgg11_features, lambda net: net, 32),  # five 2x2 poolings
        (nin, lambda net: net, 67),
        (resnet_ish, lambda net: net, 11),  # unpadded 7x7/2 stem, then 3x3/2 pooling
    ],
)
def test_min_input_size_of_chapter_nets(build, conv_part, expected):
    net = build()
    assert min_input_size(net) == expected
    assert min_input_size(conv_part(net)) == expected
    # checked against the net itself: the minimum works, one less fails
    check_input_shape(conv_part(net), (1, 1, expected, expected))
    with pytest.raises(ShapeError, match=f"at least {expected}"):
        check_input_shape(conv_part(net), (1, 1, expected - 1, expected - 1))


def test_min_input_size_including_linear_layers():
    assert min_input_size(lenet(), include_linear=True) == 28
    assert min_input_size(alexnet(), include_linear=True) == 193
    assert min_input_size(nin(), include_linear=True) == 67


def test_min_input_size_with_three_channels_and_wrong_channels():
    net = nn.Sequential(nn.Conv2d(3, 8, kernel_size=5), nn.MaxPool2d(2))
    assert min_input_size(net, channels=3) == 6
    with pytest.raises(ShapeError, match="expects 3 input channels, got 1"):
        min_input_size(net)


def test_lazy_layers_get_shapes_and_min_size_leaves_them_lazy():
    net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.Flatten(), nn.LazyLinear(10))
    assert min_input_size(net, include_linear=True) == 6
    assert isinstance(net[3], nn.LazyLinear)  # probing used a copy
    summary = layer_summary(net, (1, 1, 28, 28))
    assert summary.rows[3].params == 6 * 12 * 12 * 10 + 10
    assert summary.total_params == count_params(net)


# ------------------------------------------- nets whose forward is not one tensor


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.meta = nn.Linear(3, 4), nn.Linear(5, 4)

    def forward(self, x, y):
        return self.image(x) + self.meta(y)


class DictInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, batch):
        return self.fc(batch["image"])


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")  # torch, on batch["image"]
@pytest.mark.parametrize("net", [TwoInputs(), DictInput()], ids=["two", "dict"])
def test_forward_that_is_not_one_tensor_says_how_to_pass_an_example(net):
    with pytest.raises(TypeError) as info:
        layer_summary(net, (2, 3))
    message = str(info.value)
    assert "feeds one zero tensor of shape (2, 3)" in message
    assert "example_input=(x, y)" in message and "example_input={'image': x}" in message
    assert info.value.__cause__ is not None  # PyTorch's own error stays attached


def test_example_input_as_arguments_or_dict():
    two = layer_summary(TwoInputs(), example_input=(torch.ones(2, 3), torch.ones(2, 5)))
    assert [row.name for row in two.rows] == ["image", "meta"]
    assert two.total_params == 16 + 24 and two.output_shape == (2, 4)
    assert str(two).startswith("Input shape: [(2, 3), (2, 5)]\n")
    one = layer_summary(DictInput(), example_input={"image": torch.ones(2, 3)})
    assert str(one).startswith("Input shape: {'image': (2, 3)}\n")
    assert one.total_flops == 2 * 2 * 3 * 4
    # a single tensor as the example is the same as its shape
    same = layer_summary(lenet(), example_input=torch.rand(1, 1, 28, 28))
    assert str(same) == str(layer_summary(lenet(), (1, 1, 28, 28)))
    with pytest.raises(ShapeError, match="expects 1 input channel, got 3"):
        layer_summary(lenet(), example_input=torch.rand(1, 3, 28, 28))


def test_input_shape_and_example_input_exclude_each_other():
    with pytest.raises(ValueError, match="pass input_shape or example_input, not both"):
        layer_summary(lenet(), (1, 1, 28, 28), example_input=torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="pass input_shape, e.g."):
        layer_summary(lenet())
