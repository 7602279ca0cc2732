"""The d2l 0.17 / zh-2.0 style: book-like cells run with ``import d2lcnn as d2l``.

The cells are written for these tests in the book's style (the convolution basics, a
from-scratch edge detector, LeNet with its own evaluate_accuracy_gpu); they use only
``d2l.<name>`` calls a reader of those chapters meets.
"""

import pytest
import torch
from torch import nn

import d2lcnn as d2l
from d2lcnn.book import NAMES


@pytest.fixture
def data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LCNN_DATA", str(tmp_path))  # the mini set is bundled: no data root


def test_every_book_name_resolves_and_stays_out_of_all():
    for name in NAMES:
        assert getattr(d2l, name) is not None, name
        assert name not in d2l.__all__, name
    assert d2l.concat is torch.cat and d2l.batch_matmul is torch.bmm
    assert d2l.float32 is torch.float32 and d2l.int64 is torch.int64


def test_unknown_name_says_it_is_not_a_d2l_name():
    with pytest.raises(AttributeError, match="module 'd2lcnn' has no attribute "
                       "'load_data_time_machine': it is not a d2l name d2lcnn provides"):
        d2l.load_data_time_machine  # noqa: B018 - the lookup is the test
    assert not hasattr(d2l, "no_such_name")
    assert {"plt", "np", "nn", "F", "Trainer", "reshape"} <= set(dir(d2l))


def test_method_aliases_pass_arguments_through():
    X = d2l.reshape(d2l.arange(12, dtype=d2l.float32), (3, 4))
    assert d2l.size(X) == 12 and X.shape == (3, 4)
    assert d2l.reshape(X, -1).shape == (12,)
    assert d2l.reduce_sum(X, axis=0).tolist() == [12.0, 15.0, 18.0, 21.0]
    assert d2l.reduce_mean(X).item() == 5.5
    assert d2l.transpose(X).shape == (4, 3)
    assert d2l.argmax(X, axis=1).tolist() == [3, 3, 3]
    assert d2l.astype(X, d2l.int32).dtype == torch.int32
    assert d2l.expand_dims(X, 0).shape == (1, 3, 4)
    assert d2l.swapaxes(X, 0, 1).shape == (4, 3)
    assert d2l.repeat(d2l.tensor([1, 2]), 2).tolist() == [1, 2, 1, 2]
    grad = d2l.ones(2, requires_grad=True)
    assert d2l.numpy(grad * 2).tolist() == [2.0, 2.0]
    assert d2l.to(X, torch.float64).dtype == torch.float64
    assert d2l.reshape.__name__ == "reshape" and "x.reshape" in d2l.reshape.__doc__


def test_corr2d_finds_the_edges_and_a_kernel_is_learned():
    X = d2l.ones((6, 8))
    X[:, 2:6] = 0
    K = d2l.tensor([[1.0, -1.0]])
    Y = d2l.corr2d(X, K)
    assert Y.shape == (6, 7)
    assert Y[:, 1].tolist() == [1.0] * 6 and Y[:, 5].tolist() == [-1.0] * 6
    assert d2l.reduce_sum(d2l.abs(Y)).item() == 12
    assert d2l.reduce_sum(d2l.abs(d2l.corr2d(d2l.transpose(X), K))).item() == 0

    torch.manual_seed(0)
    conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    X, Y = d2l.reshape(X, (1, 1, 6, 8)), d2l.reshape(Y, (1, 1, 6, 7))
    losses = []
    for _ in range(30):
        loss = ((conv2d(X) - Y) ** 2).sum()
        conv2d.zero_grad()
        loss.backward()
        conv2d.weight.data[:] -= 3e-2 * conv2d.weight.grad
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]
    learned = d2l.reshape(conv2d.weight.data, (1, 2))
    assert torch.allclose(learned, K, atol=0.05)


def test_a_scratch_conv_layer_trains_through_corr2d():
    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(d2l.zeros(1))

        def forward(self, x):
            return d2l.corr2d(x, self.weight) + self.bias

    torch.manual_seed(0)
    X = d2l.ones((6, 8))
    X[:, 2:6] = 0
    Y = d2l.corr2d(X, d2l.tensor([[1.0, -1.0]]))
    layer = Conv2D((1, 2))
    first = None
    for _ in range(20):
        loss = ((layer(X) - Y) ** 2).sum()
        layer.zero_grad()
        loss.backward()
        for p in layer.parameters():
            p.data -= 1e-2 * p.grad
        first = loss.item() if first is None else first
    assert loss.item() < 0.1 * first


def test_corr2d_names_bad_shapes():
    with pytest.raises(ValueError, match="larger than the input"):
        d2l.corr2d(d2l.ones((2, 2)), d2l.ones((3, 1)))
    with pytest.raises(ValueError, match="corr2d_multi_in"):
        d2l.corr2d(d2l.ones((1, 3, 3)), d2l.ones((2, 2)))


def test_channels_and_pooling_cells():
    def corr2d_multi_in(X, K):
        return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

    def corr2d_multi_in_out(X, K):
        return d2l.stack([corr2d_multi_in(X, k) for k in K], 0)

    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        X = d2l.reshape(X, (c_i, h * w))
        return d2l.reshape(d2l.matmul(d2l.reshape(K, (K.shape[0], c_i)), X),
                           (K.shape[0], h, w))

    def pool2d(X, pool_size, mode="max"):
        p_h, p_w = pool_size
        Y = d2l.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                window = X[i: i + p_h, j: j + p_w]
                Y[i, j] = window.max() if mode == "max" else window.mean()
        return Y

    X = d2l.stack([d2l.reshape(d2l.arange(9.0), (3, 3)),
                   d2l.reshape(d2l.arange(1.0, 10.0), (3, 3))])
    K = d2l.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    assert corr2d_multi_in(X, K).tolist() == [[56.0, 72.0], [104.0, 120.0]]
    K3 = d2l.stack((K, K + 1, K + 2), 0)
    assert corr2d_multi_in_out(X, K3).shape == (3, 2, 2)
    X1, K1 = d2l.normal(0, 1, (3, 3, 3)), d2l.normal(0, 1, (2, 3, 1, 1))
    assert float(d2l.reduce_sum(d2l.abs(
        corr2d_multi_in_out_1x1(X1, K1) - corr2d_multi_in_out(X1, K1)))) < 1e-5
    P = d2l.reshape(d2l.arange(9.0), (3, 3))
    assert pool2d(P, (2, 2)).tolist() == [[4.0, 5.0], [7.0, 8.0]]
    assert pool2d(P, (2, 2), "avg").tolist() == [[2.0, 3.0], [5.0, 6.0]]


def test_padding_and_strides_cells():
    def comp_conv2d(conv2d, X):
        X = X.reshape((1, 1) + X.shape)
        return conv2d(X).reshape(conv2d(X).shape[2:])

    X = torch.rand(size=(8, 8))
    assert comp_conv2d(nn.Conv2d(1, 1, kernel_size=3, padding=1), X).shape == (8, 8)
    assert comp_conv2d(nn.Conv2d(1, 1, (5, 3), padding=(2, 1)), X).shape == (8, 8)
    assert comp_conv2d(nn.Conv2d(1, 1, 3, padding=1, stride=2), X).shape == (4, 4)
    conv = nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
    assert comp_conv2d(conv, X).shape == (2, 2)


def test_residual_takes_both_editions_signatures():
    X = torch.rand(4, 3, 6, 6)
    assert d2l.Residual(3, 3)(X).shape == (4, 3, 6, 6)  # 0.17: in and out channels
    assert d2l.Residual(3, 6, use_1x1conv=True, strides=2)(X).shape == (4, 6, 3, 3)
    assert d2l.Residual(6, use_1x1conv=True, strides=2)(X).shape == (4, 6, 3, 3)
    assert d2l.Residual(6, True, 2)(X).shape == (4, 6, 3, 3)  # 1.0, lazy
    with pytest.raises(TypeError, match="num_channels"):
        d2l.Residual(use_1x1conv=True)
    with pytest.raises(TypeError, match="unexpected keyword"):
        d2l.Residual(64, stride=2)
    assert d2l.Residual(64, 128, True, 2).conv3.stride == (2, 2)  # 0.17, positional
    assert d2l.ResNeXtBlock(32, 16, 1)(torch.rand(2, 32, 8, 8)).shape == (2, 32, 8, 8)


def test_lenet_with_the_chapters_own_evaluate_accuracy_gpu(data_root):
    def evaluate_accuracy_gpu(net, data_iter, device=None):
        if isinstance(net, nn.Module):
            net.eval()
            if not device:
                device = next(iter(net.parameters())).device
        metric = d2l.Accumulator(2)
        with torch.no_grad():
            for X, y in data_iter:
                X, y = X.to(device), y.to(device)
                metric.add(d2l.accuracy(net(X), y), d2l.size(y))
        return metric[0] / metric[1]

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=128, source="mini")
    before = evaluate_accuracy_gpu(net, test_iter)
    d2l.train_ch6(net, train_iter, test_iter, 1, 0.3, d2l.try_gpu())
    after = evaluate_accuracy_gpu(net, test_iter)
    assert after > max(0.4, before + 0.2)  # chance is 0.1
    assert after == pytest.approx(d2l.evaluate_accuracy_gpu(net, test_iter), abs=1e-6)
