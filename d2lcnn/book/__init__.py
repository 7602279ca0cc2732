"""The rest of d2l's names, for the book's own code: ``d2l.<name>`` after
``import d2lcnn as d2l``.

``d2lcnn``'s top level holds the names its chapters use (``train_ch6``,
``load_data_fashion_mnist``, ...). Everything else the book's convolution chapters
call — d2l's tensor shortcuts (``aliases``), the names they save with ``#@save``
(``conv``) and the d2l 1.0 object API (``v1``, ``board``, ``trainer``) — is looked up
here on first use by ``d2lcnn.__getattr__``, so it stays out of ``d2lcnn.__all__``.
"""

from __future__ import annotations

import importlib

from .aliases import NAMES as _ALIAS_NAMES

__all__ = ["NAMES", "lookup"]

# Where each name lives; modules are imported on first use (matplotlib comes with v1).
_WHERE = {name: "aliases" for name in _ALIAS_NAMES}
_WHERE.update(dict.fromkeys(("corr2d", "init_cnn", "Residual", "ResNeXtBlock"), "conv"))
_WHERE.update(dict.fromkeys(("HyperParameters", "ProgressBoard"), "board"))
_WHERE.update(dict.fromkeys(("Module", "Classifier", "DataModule", "FashionMNIST",
                             "LeNet", "add_to_class", "cpu", "gpu"), "v1"))
_WHERE["Trainer"] = "trainer"
# d2l's module also re-exports what it imports; book code uses d2l.plt and friends
_MODULES = {"plt": "matplotlib.pyplot", "np": "numpy", "torch": "torch",
            "nn": "torch.nn", "F": "torch.nn.functional"}

NAMES = tuple(sorted({*_WHERE, *_MODULES}))


def lookup(name: str):
    """The d2l name ``name``, or AttributeError saying d2lcnn does not provide it.

    Example:
        >>> lookup("reduce_sum")(lookup("ones")(2, 3))
        tensor(6.)
        >>> lookup("load_data_cifar")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AttributeError: ... 'load_data_cifar': it is not a d2l name d2lcnn provides ...
    """
    if name in _WHERE:
        module = importlib.import_module(f".{_WHERE[name]}", __name__)
        return getattr(module, name)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'd2lcnn' has no attribute {name!r}: it is not a d2l "
                         "name d2lcnn provides (d2lcnn covers the convolution "
                         "chapters; see d2lcnn.book.NAMES)")
