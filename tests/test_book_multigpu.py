"""d2l 0.17's "Concise Implementation for Multiple GPUs" (PyTorch tab) with d2lcnn as d2l.

The chapter's code below is the book's, unchanged; the test changes only what it is given:
``num_gpus=1`` (this machine has no GPU, so ``try_gpu(0)`` is the CPU) and a loader that
returns a tiny class-balanced subset of the bundled mini set (``train`` would otherwise
load all of Fashion-MNIST and train ResNet-18 on it for 10 epochs). On a machine without
CUDA, ``nn.DataParallel`` keeps no device ids and calls the net directly, so the book's
``device_ids=[cpu]`` works as written; with GPUs it is the book's DataParallel.
"""

import functools

import torch
from torch import nn

import d2lcnn as d2l


#@save
def resnet18(num_classes, in_channels=1):
    """A slightly modified ResNet-18 model."""
    def resnet_block(in_channels, out_channels, num_residuals,
                     first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(d2l.Residual(in_channels, out_channels,
                                        use_1x1conv=True, strides=2))
            else:
                blk.append(d2l.Residual(out_channels, out_channels))
        return nn.Sequential(*blk)

    # This model uses a smaller convolution kernel, stride, and padding and
    # removes the maximum pooling layer
    net = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU())
    net.add_module("resnet_block1", resnet_block(
        64, 64, 2, first_block=True))
    net.add_module("resnet_block2", resnet_block(64, 128, 2))
    net.add_module("resnet_block3", resnet_block(128, 256, 2))
    net.add_module("resnet_block4", resnet_block(256, 512, 2))
    net.add_module("global_avg_pool", nn.AdaptiveAvgPool2d((1,1)))
    net.add_module("fc", nn.Sequential(nn.Flatten(),
                                       nn.Linear(512, num_classes)))
    return net


def train(net, num_gpus, batch_size, lr):
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)
    devices = [d2l.try_gpu(i) for i in range(num_gpus)]
    def init_weights(m):
        if type(m) in [nn.Linear, nn.Conv2d]:
            nn.init.normal_(m.weight, std=0.01)
    net.apply(init_weights)
    # Set the model on multiple GPUs
    net = nn.DataParallel(net, device_ids=devices)
    trainer = torch.optim.SGD(net.parameters(), lr)
    loss = nn.CrossEntropyLoss()
    timer, num_epochs = d2l.Timer(), 10
    animator = d2l.Animator('epoch', 'test acc', xlim=[1, num_epochs])
    for epoch in range(num_epochs):
        net.train()
        timer.start()
        for X, y in train_iter:
            trainer.zero_grad()
            X, y = X.to(devices[0]), y.to(devices[0])
            l = loss(net(X), y)  # noqa: E741 - the book's name
            l.backward()
            trainer.step()
        timer.stop()
        animator.add(epoch + 1, (d2l.evaluate_accuracy_gpu(net, test_iter),))
    print(f'test acc: {animator.Y[0][-1]:.2f}, {timer.avg():.1f} sec/epoch '
          f'on {str(devices)}')


def test_the_chapters_train_runs_unchanged_on_one_device(monkeypatch, capsys):
    tiny = functools.partial(d2l.load_data_fashion_mnist, subset=8, test_subset=8,
                             source="mini", verbose=False)
    monkeypatch.setattr(d2l, "load_data_fashion_mnist", tiny, raising=False)
    torch.manual_seed(0)
    net = resnet18(10)
    devices = d2l.try_all_gpus()
    assert devices == [torch.device("cpu")]
    train(net, num_gpus=len(devices), batch_size=8, lr=0.1)
    printed = capsys.readouterr().out
    assert "test acc: " in printed and "sec/epoch on [device(type='cpu')]" in printed
