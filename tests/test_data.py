"""Tests of mnist_kit.data: real loading, search order, every bad-input case, and the helpers."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from mnist_kit import data
from mnist_kit.data import MnistDataError, MnistOfflineError, load_mnist

STEMS = [stem for stem, _, _ in data.IDX_FILES.values()]


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Encode a uint8 array as an IDX file (big-endian header)."""
    magic = magic if magic is not None else 0x800 | array.ndim
    return (
        struct.pack(">I", magic)
        + struct.pack(">" + "I" * array.ndim, *array.shape)
        + array.tobytes()
    )


def copy_of(mnist_dir: Path, target: Path) -> Path:
    """A folder that links to the real files, so one can be replaced by a bad one."""
    target.mkdir()
    for stem in STEMS:
        (target / f"{stem}.gz").symlink_to(mnist_dir / f"{stem}.gz")
    return target


@pytest.fixture
def http_folder(monkeypatch):
    """serve(folder) -> base URL of a local HTTP server for `folder` (no network is used)."""
    servers = []
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy in the environment must not see it
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no request lines on stderr
            pass

    def serve(folder: Path) -> str:
        handler = functools.partial(Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def offline_except(monkeypatch, tmp_path: Path, base_url: str) -> Path:
    """No local copy anywhere: Keras' npz is missing from `base_url`; returns the kit cache."""
    monkeypatch.delenv("MNIST_KIT_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("MNIST_KIT_CACHE", str(cache))
    monkeypatch.setattr(data, "KERAS_NPZ_URL", base_url + "absent.npz")
    return cache


def replace(folder: Path, stem: str, payload: bytes, compress: bool = True) -> Path:
    file = folder / f"{stem}.gz"
    file.unlink()
    file.write_bytes(gzip.compress(payload) if compress else payload)
    return file


def test_real_mnist_has_keras_shapes_dtypes_and_known_labels(mnist):
    """Does load_mnist return exactly what keras.datasets.mnist.load_data() would?"""
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_train)[:2].tolist() == [5923, 6742]


def test_test_set_matches_published_checksums(mnist_dir):
    """Are the decompressed test files byte-identical to the originals (SHA-256 from the data README)?"""
    expected = {
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }
    for stem, sha in expected.items():
        raw = gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == sha


def test_second_load_uses_decompressed_cache_with_same_arrays(mnist_dir, mnist):
    """Does the kit cache a decompressed copy and return identical arrays from it?"""
    again = load_mnist(mnist_dir)
    cached = list(data.cache_dir().glob("idx-*.npz"))
    assert cached, "no decompressed cache was written"
    for a, b in zip(mnist, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_npz_file_and_folder_load(tmp_path, mnist):
    """Can the kit read Keras' mnist.npz, given as a file or as a folder holding it?"""
    (x_train, y_train), (x_test, y_test) = mnist
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for where in (tmp_path, tmp_path / "mnist.npz"):
        (a, b), (c, d) = load_mnist(where)
        np.testing.assert_array_equal(c, x_test)
        assert a.shape == (60000, 28, 28)


def test_uncompressed_idx_files_load(tmp_path, mnist_dir, mnist):
    """Are raw (un-gzipped) IDX files accepted too?"""
    for stem in STEMS:
        (tmp_path / stem).write_bytes(gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes()))
    (_, _), (x_test, _) = load_mnist(tmp_path)
    np.testing.assert_array_equal(x_test, mnist[1][0])


def test_search_order_path_env_keras_cache(tmp_path, monkeypatch, mnist_dir):
    """Is the order path=, $MNIST_KIT_DATA, Keras cache, kit cache, then download?"""
    keras_home = tmp_path / "keras"
    (keras_home / "datasets").mkdir(parents=True)
    (keras_home / "datasets" / "mnist.npz").write_bytes(b"placeholder")
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setenv("MNIST_KIT_DATA", str(mnist_dir))
    assert data.find_mnist(tmp_path / "keras" / "datasets" / "mnist.npz").kind == "npz"
    assert data.find_mnist().path == mnist_dir
    monkeypatch.delenv("MNIST_KIT_DATA")
    assert data.find_mnist().path == keras_home / "datasets" / "mnist.npz"
    (keras_home / "datasets" / "mnist.npz").unlink()
    monkeypatch.setenv("MNIST_KIT_CACHE", str(tmp_path / "empty-cache"))
    source = data.find_mnist()
    assert source.kind == "download"
    assert any("Keras cache" in t for t in source.tried) and any(
        "kit cache" in t for t in source.tried
    )


def test_missing_folder_says_where_and_how(tmp_path):
    """Does a missing folder give an error naming it and how to point the kit at data?"""
    with pytest.raises(MnistDataError, match="does not exist") as info:
        load_mnist(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    assert "MNIST_KIT_DATA" in str(info.value)


def test_folder_without_mnist_lists_missing_files(tmp_path):
    """Does an empty folder name the files it lacks?"""
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MnistDataError, match="train-images-idx3-ubyte.gz") as info:
        load_mnist(tmp_path)
    assert "notes.txt" in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path, mnist_dir):
    """Is a .gz cut short reported as truncated or corrupt, naming the file?"""
    folder = copy_of(mnist_dir, tmp_path / "m")
    good = (mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes()
    bad = replace(folder, "t10k-images-idx3-ubyte", good[: len(good) // 2], compress=False)
    with pytest.raises(MnistDataError, match="truncated or corrupt") as info:
        load_mnist(folder)
    assert str(bad) in str(info.value)


def test_short_payload_behind_valid_header(tmp_path, mnist_dir):
    """Is a complete gzip whose IDX data stops early caught by the header's promise?"""
    folder = copy_of(mnist_dir, tmp_path / "m")
    raw = gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    replace(folder, "t10k-labels-idx1-ubyte", raw[:-100])
    with pytest.raises(MnistDataError, match="header promises"):
        load_mnist(folder)


def test_wrong_magic_number(tmp_path, mnist_dir):
    """Is a labels file in the images' place rejected by its magic number?"""
    folder = copy_of(mnist_dir, tmp_path / "m")
    replace(folder, "t10k-images-idx3-ubyte", idx_bytes(np.zeros(10000, np.uint8)))
    with pytest.raises(MnistDataError, match="wrong magic number 2049") as info:
        load_mnist(folder)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


def test_image_and_label_counts_disagree(tmp_path, mnist_dir):
    """Do 10,000 test images with 9,999 labels give a clear count mismatch?"""
    folder = copy_of(mnist_dir, tmp_path / "m")
    replace(folder, "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(9999, np.uint8)))
    with pytest.raises(MnistDataError, match="10000 test images but 9999 test labels"):
        load_mnist(folder)


def test_idx_files_of_the_wrong_size_are_not_mnist(tmp_path, mnist_dir):
    """Do 100 test images with 100 labels (consistent, but not MNIST) give the count MNIST has?"""
    folder = copy_of(mnist_dir, tmp_path / "m")
    replace(folder, "t10k-images-idx3-ubyte", idx_bytes(np.zeros((100, 28, 28), np.uint8)))
    replace(folder, "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(100, np.uint8)))
    with pytest.raises(MnistDataError, match="holds 100 items; MNIST's has 10000") as info:
        load_mnist(folder)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


def test_labels_out_of_range(tmp_path, mnist_dir):
    """Are labels above 9 rejected?"""
    folder = copy_of(mnist_dir, tmp_path / "m")
    replace(folder, "t10k-labels-idx1-ubyte", idx_bytes(np.full(10000, 12, np.uint8)))
    with pytest.raises(MnistDataError, match="labels go up to 12"):
        load_mnist(folder)


def test_corrupt_npz(tmp_path):
    """Is a broken mnist.npz reported as unreadable, naming the file?"""
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(MnistDataError, match="mnist.npz"):
        load_mnist(tmp_path)


def test_offline_without_copy_is_one_clear_error(tmp_path, monkeypatch, http_folder):
    """With no local copy and nothing to download, is the error an MnistOfflineError that says so?"""
    (tmp_path / "empty").mkdir()
    base = http_folder(tmp_path / "empty")  # every file: 404 Not Found
    offline_except(monkeypatch, tmp_path, base)
    monkeypatch.setattr(
        data, "IDX_MIRRORS", (base + "absent/", "http://127.0.0.1:9/")
    )  # 404, refused
    with pytest.raises(MnistOfflineError, match="could not be downloaded") as info:
        load_mnist()
    assert "absent.npz" in str(info.value) and "127.0.0.1:9" in str(info.value)
    with pytest.raises(MnistOfflineError, match="download=False"):
        load_mnist(download=False)
    assert not list((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


def md5(file: Path) -> str:
    return hashlib.md5(file.read_bytes()).hexdigest()


def test_download_verifies_and_caches(tmp_path, monkeypatch, mnist_dir, mnist, http_folder):
    """Does the download path fetch, verify checksums, cache, and then load from the cache?"""
    mirror = tmp_path / "mirror"
    shutil.copytree(mnist_dir, mirror, ignore=shutil.ignore_patterns("*.md"))
    base = http_folder(mirror)
    cache = offline_except(monkeypatch, tmp_path, base)
    monkeypatch.setattr(data, "IDX_MIRRORS", (base,))
    monkeypatch.setattr(data, "IDX_MD5", {stem: md5(mirror / f"{stem}.gz") for stem in STEMS})
    (_, _), (x_test, _) = load_mnist()
    np.testing.assert_array_equal(x_test, mnist[1][0])
    assert (cache / data.CACHE_NAME).is_file()
    assert data.find_mnist().kind == "idx"  # the verified .gz files now sit in the kit cache
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".") or "tmp" in p.name]


def test_keras_npz_download_is_checked_by_sha256(tmp_path, monkeypatch, mnist, http_folder):
    """Is Keras' mnist.npz, the first choice, fetched, checked by its SHA-256 and loaded?"""
    served = tmp_path / "served"
    served.mkdir()
    (x_train, y_train), (x_test, y_test) = mnist
    npz = served / "mnist.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    base = http_folder(served)
    cache = offline_except(monkeypatch, tmp_path, base)
    monkeypatch.setattr(data, "KERAS_NPZ_URL", base + "mnist.npz")
    monkeypatch.setattr(data, "KERAS_NPZ_SHA256", hashlib.sha256(npz.read_bytes()).hexdigest())
    monkeypatch.setattr(data, "IDX_MIRRORS", ())  # the npz alone must do
    (_, _), (got, _) = load_mnist()
    np.testing.assert_array_equal(got, x_test)
    assert (cache / "mnist.npz").is_file() and data.find_mnist().kind == "npz"


def test_failed_checksum_deletes_the_download(tmp_path, monkeypatch, mnist_dir, http_folder):
    """Is a download whose checksum fails deleted, with an error naming the file and both sums?"""
    mirror = tmp_path / "mirror"
    shutil.copytree(mnist_dir, mirror, ignore=shutil.ignore_patterns("*.md"))
    base = http_folder(mirror)
    cache = offline_except(monkeypatch, tmp_path, base)
    monkeypatch.setattr(data, "IDX_MIRRORS", (base,))
    # The shared copy was re-gzipped, so the official MD5s must fail here.
    with pytest.raises(MnistDataError, match="MD5 checksum") as info:
        load_mnist()
    found = md5(mirror / "train-images-idx3-ubyte.gz")
    assert str(cache / "train-images-idx3-ubyte.gz") in str(info.value)
    assert (
        f"checksum {found} does not match the official {data.IDX_MD5['train-images-idx3-ubyte']}"
        in str(info.value)
    )
    assert list(cache.iterdir()) == []  # neither the file nor a temporary one


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    """Does a download killed half-way leave neither the target nor a temporary file?"""
    import pooch

    def half_then_boom(downloader, url, output_file, pooch_instance, check_only=False):
        with open(output_file, "wb") as handle:
            handle.write(b"x" * 100)
        raise KeyboardInterrupt  # what Ctrl-C or a kill mid-download looks like

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", half_then_boom)
    target = tmp_path / "mnist.npz"
    with pytest.raises(KeyboardInterrupt):
        data._download("https://example.invalid/mnist.npz", target, "0" * 64, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_split_is_reproducible_disjoint_and_complete():
    """Does the 80/20 split keep every image exactly once, the same way for the same seed?"""
    x = np.arange(1000)
    y = np.arange(1000) % 10
    (a, ay), (b, by) = data.train_val_split(x, y, val_fraction=0.2, seed=42)
    (a2, _), (b2, _) = data.train_val_split(x, y, val_fraction=0.2, seed=42)
    assert len(b) == 200 and len(a) == 800
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(1000))
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(ay, a % 10)
    (_, _), (b3, _) = data.train_val_split(x, y, seed=7)
    assert not np.array_equal(b, b3)
    with pytest.raises(ValueError, match="must match"):
        data.train_val_split(x, y[:-1])


def test_scale_channel_axis_and_torch_tensors(mnist):
    """Do the lesson helpers give float32 in [0, 1] and the shapes each framework wants?"""
    x = mnist[1][0][:5]
    scaled = data.scale_pixels(x)
    assert scaled.dtype == np.float32 and scaled.min() >= 0 and scaled.max() == 1.0
    assert data.add_channel_axis(x).shape == (5, 28, 28, 1)
    assert data.add_channel_axis(x, channels_last=False).shape == (5, 1, 28, 28)
    with pytest.raises(ValueError, match="already lie in"):
        data.scale_pixels(x.astype(np.float32))
    with pytest.raises(ValueError, match="expected images shaped"):
        data.add_channel_axis(np.zeros((28, 28)))
    images, labels = data.to_torch(x, mnist[1][1][:5])
    assert tuple(images.shape) == (5, 1, 28, 28) and str(images.dtype) == "torch.float32"
    assert str(labels.dtype) == "torch.int64" and labels.tolist() == [7, 2, 1, 0, 4]
