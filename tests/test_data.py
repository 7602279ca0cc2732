"""The loader's contract: d2l's load_data_fashion_mnist, its batches, checks and CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from d2lcnn import data, sources

pytestmark = pytest.mark.usefixtures("isolated_data")  # tests/conftest.py


def mini(batch_size=256, resize=None, **kw):
    return data.load_data_fashion_mnist(batch_size, resize, source="mini",
                                        verbose=False, **kw)


def test_batches_have_d2l_shapes_dtypes_and_range():
    train_iter, test_iter = mini(256)
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32
    assert y.shape == (256,) and y.dtype == torch.int64
    assert 0.0 <= X.min() and X.max() <= 1.0 and X.max() > 0.9
    assert (X * 255 - (X * 255).round()).abs().max() < 1e-4, "whole grey levels / 255"
    assert len(train_iter) == math.ceil(6000 / 256) == 24
    sizes = [len(y) for _, y in train_iter]
    assert sizes[:-1] == [256] * 23 and sizes[-1] == 6000 - 23 * 256, "last batch kept"
    assert len(test_iter) == 4 and sum(len(y) for _, y in test_iter) == 1000


def test_d2l_positional_call_and_attributes():
    train_iter, test_iter = data.load_data_fashion_mnist(32, 64, source="mini",
                                                         verbose=False)
    assert (train_iter.batch_size, train_iter.resize) == (32, (64, 64))
    assert train_iter.num_examples == 6000 and test_iter.num_examples == 1000
    assert train_iter.source == "mini" and train_iter.device == torch.device("cpu")
    assert next(iter(test_iter))[0].shape == (32, 1, 64, 64)
    text = repr(train_iter)
    for part in ("train", "6,000 examples", "batch_size=32", "188 batches", "64x64",
                 "shuffle=True", "source='mini'"):
        assert part in text


def test_rectangular_resize():
    train_iter, _ = mini(8, (40, 24))
    assert next(iter(train_iter))[0].shape == (8, 1, 40, 24)


def test_train_reshuffles_every_epoch_and_test_keeps_file_order():
    train_iter, test_iter = mini(1000)
    first = torch.cat([y for _, y in train_iter])
    second = torch.cat([y for _, y in train_iter])
    assert not torch.equal(first, second)
    assert torch.equal(first.sort().values, second.sort().values)
    arrays = sources.load_arrays(source="mini", verbose=False)
    for _ in range(2):
        labels = torch.cat([y for _, y in test_iter])
        assert labels.tolist() == arrays.test_labels.tolist()


def test_seed_makes_the_shuffle_reproducible():
    runs = [torch.cat([y for _, y in mini(500, seed=7)[0]]) for _ in range(2)]
    assert torch.equal(*runs)
    torch.manual_seed(3)  # without seed= the global RNG decides, as in a DataLoader
    a = torch.cat([y for _, y in mini(500)[0]])
    torch.manual_seed(3)
    assert torch.equal(a, torch.cat([y for _, y in mini(500)[0]]))


def test_to_device_keeps_settings_and_shuffle_stream():
    train_iter, _ = mini(100, 32, seed=1)
    assert train_iter.to("cpu") is train_iter
    moved = train_iter.to("meta")  # a second device without a GPU
    X, y = next(iter(moved))
    assert X.device.type == y.device.type == "meta"
    assert X.shape == (100, 1, 32, 32)
    assert (moved.batch_size, moved.resize, moved.num_examples) == (100, (32, 32), 6000)
    assert moved.images.dtype == torch.uint8, "the store moves as uint8"
    assert train_iter.to("meta") is moved, "moved once, not on every train_ch6 call"


@pytest.mark.parametrize("size", [224, 96, 20, (40, 17)])
def test_resize_matches_torchvision_resize_on_pil(size):
    transforms = pytest.importorskip("torchvision.transforms")
    from PIL import Image

    images = sources.load_arrays(source="mini", verbose=False).test_images[:16]
    reference = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    expected = torch.stack([reference(Image.fromarray(im)) for im in images])
    batches = data.FashionMNISTBatches(torch.from_numpy(images), torch.zeros(16), 16,
                                       resize=size)
    X, _ = next(iter(batches))
    assert X.shape == expected.shape
    assert (X - expected).abs().max() <= 2 / 255


@pytest.mark.parametrize("size", [224, 96, 20, (40, 17), (28, 56), 1])
def test_matmul_resize_equals_torch_interpolate(size):
    """The loader's two matmuls are torch's antialiased bilinear resize, to float error."""
    images = torch.from_numpy(sources.load_arrays(source="mini", verbose=False)
                              .train_images[:8])
    X, _ = next(iter(data.FashionMNISTBatches(images, torch.zeros(8), 8, resize=size)))
    expected = torch.nn.functional.interpolate(
        images.unsqueeze(1).double() / 255, size=X.shape[-2:], mode="bilinear",
        align_corners=False, antialias=True)
    assert (X.double() - expected).abs().max() < 1e-5


def test_batches_stay_float32_when_iterated_inside_autocast():
    """Evaluation iterates inside autocast; the resize must not drop to bfloat16."""
    images = torch.from_numpy(sources.load_arrays(source="mini", verbose=False)
                              .train_images[:8])
    batches = data.FashionMNISTBatches(images, torch.zeros(8), 8, resize=96)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        X, _ = next(iter(batches))
    assert X.dtype == torch.float32
    assert torch.equal(X, next(iter(batches))[0])


@pytest.mark.parametrize("size", [224, 97, 13])
def test_resized_white_and_black_images_stay_in_unit_range(size):
    images = torch.full((4, 28, 28), 255, dtype=torch.uint8)
    images[:2] = 0
    X, _ = next(iter(data.FashionMNISTBatches(images, torch.zeros(4), 4, resize=size)))
    assert X[2:].max() <= 1.0 and X[2:].min() > 1 - 1e-5
    assert X[:2].abs().max() == 0.0


def test_subset_is_class_balanced_fixed_and_nested():
    train_iter, test_iter = mini(500, subset=1000)
    labels = torch.cat([y for _, y in train_iter])
    assert len(labels) == 1000 and torch.bincount(labels).tolist() == [100] * 10
    assert test_iter.num_examples == 1000, "the test set keeps its size"
    small = set(data._stratified_indices(np.arange(6000) % 10, 50).tolist())
    large = set(data._stratified_indices(np.arange(6000) % 10, 200).tolist())
    assert small < large
    _, test_small = mini(500, subset=10, test_subset=20)
    assert test_small.num_examples == 20


def test_subset_prints_what_it_uses(capsys):
    data.load_data_fashion_mnist(64, source="mini", subset=600)
    out = capsys.readouterr().out
    assert "using 600 train + 1,000 test examples (class-balanced subset" in out


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(subset=6001), ValueError, "subset=6,001 is larger than the 6,000"),
    (dict(test_subset=5000), ValueError, "test_subset<=1000"),
    (dict(subset=0), ValueError, "subset must be a positive integer, got 0"),
    (dict(subset=10.5), TypeError, "pass subset=10"),
    (dict(seed=1.5), TypeError, "seed must be an int"),
])
def test_bad_subset_or_seed_is_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        mini(64, **kwargs)


@pytest.mark.parametrize("batch_size, resize, error, message", [
    (0, None, ValueError, "batch_size must be a positive integer, got 0"),
    (-3, None, ValueError, "got -3"),
    (2.5, None, TypeError, "batch_size must be a positive integer, got 2.5"),
    ("256", None, TypeError, "got '256' \\(str\\)"),
    (True, None, TypeError, "got True"),
    (64, 224.0, TypeError, "pass resize=224"),
    (64, "224", TypeError, "resize must hold integers"),
    (64, 0, ValueError, "resize must be >= 1 pixel, got 0"),
    (64, (224, 224, 3), ValueError, "\\(height, width\\) pair"),
    (64, (96, 96.5), TypeError, "96.5"),
])
def test_bad_batch_size_or_resize_fails_before_loading(batch_size, resize, error,
                                                       message, monkeypatch):
    monkeypatch.setattr(sources, "load_arrays", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(error, match=message):
        data.load_data_fashion_mnist(batch_size, resize)


def test_unwritable_root_names_the_path_and_the_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match=f"{blocker}.*D2LCNN_DATA or pass root="):
        data.load_data_fashion_mnist(64, root=blocker / "data")


def test_missing_root_is_created(tmp_path):
    root = tmp_path / "new" / "root"
    with pytest.warns(sources.MiniDataWarning):
        data.load_data_fashion_mnist(64, root=root, verbose=False)
    assert root.is_dir()


def test_smoke_profile_loads_the_mini_set(monkeypatch):
    monkeypatch.setenv("D2LCNN_PROFILE", "smoke")
    train_iter, _ = data.load_data_fashion_mnist(256, verbose=False)
    assert train_iter.source == "mini" and train_iter.num_examples == 6000


def test_labels_as_d2l_names():
    assert data.get_fashion_mnist_labels([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) == [
        "t-shirt", "trouser", "pullover", "dress", "coat",
        "sandal", "shirt", "sneaker", "bag", "ankle boot"]
    assert data.get_fashion_mnist_labels(torch.tensor([9, 0])) == ["ankle boot",
                                                                   "t-shirt"]
    assert data.get_fashion_mnist_labels(np.array([3])) == ["dress"]
    assert data.get_fashion_mnist_labels(7) == ["sneaker"]
    with pytest.raises(ValueError, match="labels are 0..9, got 10"):
        data.get_fashion_mnist_labels([10])


def test_download_command_reports_what_it_did(tmp_path, monkeypatch, capsys):
    arrays = sources.load_arrays(source="mini", verbose=False)
    folder = tmp_path / "kaggle" / "input" / "fm"
    folder.mkdir(parents=True)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    for split, n in (("train", 20), ("test", 10)):
        images = getattr(arrays, f"{split}_images")
        labels = getattr(arrays, f"{split}_labels")
        rows = np.column_stack([labels[:n], images[:n].reshape(n, -1)])
        np.savetxt(folder / f"fashion-mnist_{split}.csv", rows, fmt="%d", delimiter=",",
                   header=header, comments="")
    monkeypatch.setenv("D2LCNN_SOURCES", "local,kaggle")
    monkeypatch.setenv("D2LCNN_PROFILE", "smoke")  # the command ignores the profile
    assert data.main(["download", "--root", str(tmp_path / "root"), "--kaggle-glob",
                      str(folder / "fashion-mnist_train.csv")]) == 0
    out = capsys.readouterr().out
    assert "20 train + 10 test images from Kaggle CSV" in out and "done:" in out
    copy = sources.own_dir(tmp_path / "root", "kaggle")
    assert (copy / "train-images-idx3-ubyte.gz").exists()


def test_download_command_fails_clearly_when_nothing_works(tmp_path, capsys):
    with pytest.warns(sources.MiniDataWarning):
        assert data.main(["download", "--root", str(tmp_path)]) == 1
    assert "error: no source of the full set worked" in capsys.readouterr().out
