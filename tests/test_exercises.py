"""d2l.check: right answers accepted, typical wrong ones get their hint, blanks pass."""

import pytest
import torch
from torch import nn

import d2lcnn as d2l
from d2lcnn.exercises import exercises
from d2lcnn.models.resnet import ResNet
from d2lcnn.models.vgg import VGG


def vgg16(ratio=4, resolution=96):
    return VGG(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), resolution=resolution,
               ratio=ratio)  # fmt: skip


def biases(name):
    net = d2l.get_model(name)
    return sum(p.numel() for n, p in net.named_parameters() if n.endswith("bias"))


def bn(X):
    return (X - X.mean(0)) / torch.sqrt(X.var(0, unbiased=False) + 1e-5)


def bn_unbiased(X):
    return (X - X.mean(0)) / torch.sqrt(X.var(0) + 1e-5)


# (exercise id, the right answer, [(a typical wrong answer, words its hint contains)])
CASES = [
    (
        "lenet.params",
        61706,
        [(61706 - 236, "biases"), (61706 + 236, "twice"), (61706 - 120 * 144, "padding")],
    ),
    (
        "lenet.flatten",
        (16, 5, 5),
        [((16, 10, 10), "before pooling"), (400, "flattened"), ((1, 16, 5, 5), "batch dimension")],
    ),
    ("lenet.min_input", 12, [(28, "the book feeds"), (2, "second 5x5")]),
    ("lenet.field", 14, [(9, "pooling between"), (16, "second pooling")]),
    ("alexnet.params224", 46764746, [(21598922, "96x96 count")]),
    ("alexnet.params96", 21598922, [(46764746, "224x224 count")]),
    ("alexnet.conv1", (96, 54, 54), [((96, 55, 55), "227"), ((96, 26, 26), "max pool")]),
    ("alexnet.most_params", "classifier.0", [("features.3", "most FLOPs")]),
    (
        "alexnet.most_flops",
        "features.3",
        [("classifier.0", "most parameters"), ("features.0", "sort the FLOPs")],
    ),
    ("vgg.params", 128806154, [(d2l.count_params(d2l.get_model("vgg11", ratio=4)), "narrow")]),
    ("vgg.field3", 7, [(9, "adds 2"), (27, "addition")]),
    (
        "vgg.vgg16",
        vgg16(),
        [(vgg16(ratio=1), "ratio=4"), (vgg16(resolution=224), "96"), ("VGG16", "network")],
    ),
    (
        "vgg.features96",
        (128, 3, 3),
        [
            ((128, 7, 7), "224x224"),
            ((512, 3, 3), "ratio=4"),
            (1152, "flattened"),
            ((128, 6, 6), "before the last"),
        ],
    ),
    ("nin.params", 1992166, [(1992166 + biases("nin"), "twice")]),
    ("nin.block_params", 11712 + 2 * 9312, [(11712, "two 1x1")]),
    ("nin.gap_shape", (2, 10, 1, 1), [((2, 10), "flattening"), ((2, 10, 5, 5), "averages")]),
    ("nin.features96", (384, 1, 1), [((384, 5, 5), "224x224")]),
    ("googlenet.min_input", 1, [(96, "trains at"), (32, "real pixel")]),
    ("googlenet.channels", 256, [(368, "reduction"), (208, "reduced")]),
    (
        "googlenet.channels_fn",
        lambda c1, c2, c3, c4: c1 + c2[1] + c3[1] + c4,
        [
            (lambda c1, c2, c3, c4: c1 + sum(c2) + sum(c3) + c4, "reduction"),
            (lambda c1, c2, c3, c4: 1 / 0, "ZeroDivisionError"),
            (256, "function"),
        ],
    ),
    (
        "googlenet.before_gap",
        (1024, 3, 3),
        [((1024, 7, 7), "224x224"), ((1024, 1, 1), "after the global")],
    ),
    ("batchnorm.added", 452, [(226, "two numbers"), (904, "buffers")]),
    ("batchnorm.removable", 226, [(236, "last Linear"), (0, "batch mean")]),
    ("batchnorm.fn", bn, [(bn_unbiased, "unbiased"), (lambda X: X, "wrong result")]),
    (
        "batchnorm.stats_shape",
        (1, 6, 1, 1),
        [((1, 6, 24, 24), "per position"), ((6,), "broadcasts")],
    ),
    ("resnet.params", 11178378, [(11178378 + biases("resnet18"), "twice")]),
    (
        "resnet.block_shape",
        (128, 12, 12),
        [((128, 24, 24), "halves"), ((64, 12, 12), "num_channels")],
    ),
    (
        "resnet.resnet34",
        ResNet(((64, 3), (128, 4), (256, 6), (512, 3))),
        [(ResNet(), "ResNet-18"), (nn.Linear(2, 2), "far too low")],
    ),
    ("resnet.last_share", 0.751, [(0.5, "half"), (75.1, None)]),
    ("densenet.params", 758226, [(11178378, "ResNet-18")]),
    ("densenet.block_channels", 192, [(32, "concatenates"), (128, "64 channels")]),
    ("densenet.final_channels", 248, [(576, "halve"), (496, "last dense block")]),
    ("densenet.transition", (96, 12, 12), [((96, 24, 24), "halves"), ((192, 12, 12), "reduces")]),
    ("mobilenet.params", 3216650, [(3216650 // 5, "far too low")]),
    ("mobilenet.dw_params", 288, [(9216, "standard"), (320, "bias=False")]),
    (
        "mobilenet.ratio",
        1 / 128 + 1 / 9,
        [(1 / 9, "depthwise part"), (1 / (1 / 128 + 1 / 9), "flip")],
    ),
    ("mobilenet.half", 823434, [(3216650 // 2, "both the input"), (3216650, "α = 1")]),
]


def test_every_registered_exercise_is_tested():
    assert sorted(case[0] for case in CASES) == exercises()


@pytest.mark.parametrize("exercise_id, right, wrongs", CASES, ids=[c[0] for c in CASES])
def test_right_answer_accepted_and_wrong_ones_hinted(exercise_id, right, wrongs, capsys):
    assert d2l.check(exercise_id, right) is True
    assert capsys.readouterr().out == f"{exercise_id}: right!\n"
    for wrong, words in wrongs:
        if words is None:  # an equivalent form (a percentage): accepted too
            assert d2l.check(exercise_id, wrong) is True
            continue
        assert d2l.check(exercise_id, wrong) is False
        out = capsys.readouterr().out
        assert out.startswith(f"{exercise_id}: not yet. Hint: ") and words in out, out
        assert out.count("\n") == 1


def test_hints_do_not_give_the_answer_away(capsys):
    d2l.check("lenet.params", 61706 - 236)
    d2l.check("alexnet.params96", 46764746)
    out = capsys.readouterr().out
    assert "61706" not in out.replace(",", "") and "21598922" not in out.replace(",", "")


@pytest.mark.parametrize("blank", [None, ...])
def test_blank_answer_is_not_answered_yet(blank, capsys):
    assert d2l.check("resnet.params", blank) is None
    assert capsys.readouterr().out == "resnet.params: not answered yet\n"


def test_unknown_id_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown exercise 'lenet.nope'.*lenet.params"):
        d2l.check("lenet.nope", 1)
    with pytest.raises(ValueError, match="alexnet.conv1"):
        d2l.check("nochapter.x", 1)
