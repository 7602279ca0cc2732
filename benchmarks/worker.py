"""One benchmark measurement in a fresh process: d2lcnn or the d2l reference.

``run.py`` starts this file with the main environment's Python for d2lcnn and with
``benchmarks/.venv-bench``'s Python for the reference (d2l 1.0.3, imported unchanged),
passing one case as JSON. The result is printed as one line ``RESULT {json}``.

The reference reads its data from d2l's hard-coded ``../data``: run.py starts it in a
folder whose parent holds ``data/FashionMNIST/raw`` with the same files d2lcnn reads.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nets  # noqa: E402  (the reference's nets: the book's code, without d2lcnn)

CLOSING_LINE = re.compile(
    r"loss ([\d.naninf]+), train acc ([\d.]+), test acc ([\d.]+)")
SPEED_LINE = re.compile(r"([\d.]+) examples/sec on")


def reference_loaders(case: dict):
    """d2l's own ``load_data_fashion_mnist``; subsets keep its DataLoader settings."""
    from d2l import torch as d2l

    train_iter, test_iter = d2l.load_data_fashion_mnist(case["batch_size"],
                                                        case["resize"])
    indices = case.get("indices") or {}
    loaders = []
    for split, loader, shuffle in (("train", train_iter, True),
                                   ("test", test_iter, False)):
        if split in indices:
            subset = torch.utils.data.Subset(loader.dataset, indices[split])
            loader = torch.utils.data.DataLoader(
                subset, case["batch_size"], shuffle=shuffle,
                num_workers=d2l.get_dataloader_workers())
        loaders.append(loader)
    return loaders


def d2lcnn_loaders(case: dict):
    import d2lcnn.data

    return d2lcnn.data.load_data_fashion_mnist(
        case["batch_size"], case["resize"], subset=case.get("subset"),
        test_subset=case.get("test_subset"), source="local", verbose=False)


def run_loader(impl: str, case: dict) -> dict:
    start = time.perf_counter()
    loaders = reference_loaders(case) if impl == "reference" else d2lcnn_loaders(case)
    train_iter = loaders[0]
    built = time.perf_counter()
    images = 0
    checksum = 0.0
    for X, _ in train_iter:
        images += X.shape[0]
        checksum += float(X[:, :, 0, 0].sum())  # touch every batch, cheaply
    end = time.perf_counter()
    return {"seconds": end - start, "setup_seconds": built - start,
            "images": images, "images_per_sec": images / (end - start),
            "shape": list(X.shape[1:])}


def build_net(impl: str, case: dict):
    """The same architecture on both sides: the book's code for the reference, the
    registry's net (as its chapter builds it in the full profile) for d2lcnn."""
    if impl == "reference":
        return nets.build(case["net"], case["resize"])
    from d2lcnn.settings import build_model

    return build_model(case["net"], "full", case["resize"])


def run_train(impl: str, case: dict) -> dict:
    net = build_net(impl, case)
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        if impl == "reference":
            from d2l import torch as d2l

            train_iter, test_iter = reference_loaders(case)
            d2l.train_ch6(net, train_iter, test_iter, case["epochs"], case["lr"],
                          d2l.try_gpu())
        else:
            from d2lcnn.train import train_ch6
            from d2lcnn.utils import try_gpu

            train_iter, test_iter = d2lcnn_loaders(case)
            train_ch6(net, train_iter, test_iter, case["epochs"], case["lr"],
                      try_gpu(), progress=False, **case.get("options", {}))
    seconds = time.perf_counter() - start
    text = out.getvalue()
    closing = CLOSING_LINE.findall(text)
    speed = SPEED_LINE.findall(text)
    if not closing or not speed:
        raise RuntimeError(f"{impl} printed no closing lines; its output:\n{text}")
    loss, train_acc, test_acc = map(float, closing[-1])
    return {"seconds": seconds, "train_loss": loss, "train_acc": train_acc,
            "test_acc": test_acc, "step_examples_per_sec": float(speed[-1]),
            "closing_lines": text.strip().splitlines()[-2:]}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (d2l's loader workers).

    Unlike wall time it barely changes when other work shares the cores, where the
    reference's five processes would get a larger share than d2lcnn's one.
    """
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main() -> int:
    impl, case = sys.argv[1], json.loads(sys.argv[2])
    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    # Imports are not timed, on either side (d2l's import of pandas and scipy would
    # count). That includes torch._dynamo, 0.9 s here: `import d2l.torch` imports it
    # up front, while d2lcnn's first torch.optim.SGD would import it inside the timing.
    started = time.perf_counter()
    if impl == "reference":
        import d2l.torch  # noqa: F401
    else:
        import d2lcnn.data  # noqa: F401
        import d2lcnn.train  # noqa: F401
    importlib.import_module("torch._dynamo")
    import_seconds = time.perf_counter() - started
    torch.manual_seed(case.get("seed", 0))
    runner = run_loader if case["kind"] == "loader" else run_train
    cpu_before = cpu_seconds()
    result = runner(impl, case)
    result["cpu_seconds"] = cpu_seconds() - cpu_before
    result["threads"] = torch.get_num_threads()
    result["import_seconds"] = import_seconds
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
