"""Property tests of the batch iterator's contract over (batch_size, resize, subset).

Each example's image is a constant grey level equal to its index, which survives
resizing, so the batches tell exactly which examples they hold.
"""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from d2lcnn import data

FAST = settings(max_examples=25, deadline=None)
resizes = st.one_of(st.none(), st.integers(1, 40),
                    st.tuples(st.integers(1, 40), st.integers(1, 40)))


def indexed_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, 28, 28)
    return images.contiguous(), torch.arange(n) % 10


def decode(X: torch.Tensor) -> list[int]:
    return (X[:, 0, 0, 0] * 255).round().long().tolist()


@FAST
@given(n=st.integers(1, 200), batch_size=st.integers(1, 64), resize=resizes,
       shuffle=st.booleans())
def test_every_example_once_per_epoch_with_right_shapes(n, batch_size, resize, shuffle):
    images, labels = indexed_images(n)
    batches = data.FashionMNISTBatches(images, labels, batch_size, resize=resize,
                                       shuffle=shuffle, seed=0)
    height, width = (28, 28) if resize is None else (
        (resize, resize) if isinstance(resize, int) else resize)
    assert len(batches) == math.ceil(n / batch_size)
    for _epoch in range(2):
        seen, count = [], 0
        for X, y in batches:
            count += 1
            assert X.dtype == torch.float32 and y.dtype == torch.int64
            assert X.shape == (len(y), 1, height, width)
            assert 1 <= len(y) <= batch_size
            assert 0 <= X.min() and X.max() <= 1
            ids = decode(X)
            corner = X[:, :, :1, :1].expand_as(X)
            assert torch.allclose(X, corner, rtol=0, atol=1e-5), "constant images stay"
            assert y.tolist() == [i % 10 for i in ids], "labels travel with images"
            seen += ids
        assert count == len(batches)
        assert sorted(seen) == list(range(n))
        if not shuffle:
            assert seen == list(range(n))


def mini_batches(count: int | None, split: str) -> torch.Tensor:
    key = "subset" if split == "train" else "test_subset"
    batches = data.load_data_fashion_mnist(64, source="mini", verbose=False, **{key: count})
    return batches[split == "test"]


@FAST
@given(count=st.integers(1, 1000), smaller=st.integers(1, 1000))
def test_subsets_are_distinct_balanced_and_nested(count, smaller):
    smaller = min(count, smaller)
    chosen, small = mini_batches(count, "test"), mini_batches(smaller, "test")
    assert chosen.num_examples == count
    per_class = torch.bincount(chosen.labels, minlength=10)
    assert per_class.max() - per_class.min() <= 1, "balanced over the classes"
    rows = {image.tobytes() for image in chosen.images.numpy()}
    assert len(rows) == count, "distinct examples"
    assert {image.tobytes() for image in small.images.numpy()} <= rows, "nested"
    full = mini_batches(None, "test")
    positions = [i for i, image in enumerate(full.images.numpy()) if image.tobytes() in rows]
    assert torch.equal(full.labels[positions], chosen.labels), "in the file's order"


@FAST
@given(batch_size=st.integers(1, 3000),
       subset=st.one_of(st.none(), st.integers(1, 6000)),
       resize=st.one_of(st.none(), st.integers(8, 32)))
def test_loader_contract_on_the_mini_set(batch_size, subset, resize):
    train_iter, test_iter = data.load_data_fashion_mnist(
        batch_size, resize, source="mini", subset=subset, verbose=False)
    n = subset or 6000
    assert train_iter.num_examples == n and test_iter.num_examples == 1000
    assert len(train_iter) == math.ceil(n / batch_size)
    X, y = next(iter(train_iter))
    side = resize or 28
    assert X.shape == (min(batch_size, n), 1, side, side) and y.dtype == torch.int64
