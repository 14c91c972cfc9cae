"""MNIST loading that works offline and online, plus the preparation every lesson needs.

Introduced in course/02-data.ipynb. `load_mnist()` returns the arrays shaped as Keras' own;
`prepare_digit` (mnist_kit.digits) makes an image of your own look like them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_kit.digits import prepare_digit
from mnist_kit.files import write_atomically

__all__ = [
    "load_mnist",
    "find_mnist",
    "scale_pixels",
    "train_val_split",
    "add_channel_axis",
    "prepare_digit",
    "to_torch",
    "cache_dir",
    "MnistDataError",
    "MnistOfflineError",
    "DataSource",
    "IDX_FILES",
]

# The four IDX files: (stem, magic number, expected item count).
IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", 2051, 60000),
    "y_train": ("train-labels-idx1-ubyte", 2049, 60000),
    "x_test": ("t10k-images-idx3-ubyte", 2051, 10000),
    "y_test": ("t10k-labels-idx1-ubyte", 2049, 10000),
}
NPZ_NAME = "mnist.npz"
CACHE_NAME = "mnist-uint8.npz"  # the kit's own decompressed cache: loads in ~0.1 s

# Official downloads and their checksums (see ../shared/data/mnist/README.md for provenance).
KERAS_NPZ_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
IDX_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IDX_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}

HOW_TO_POINT = (
    "Point the kit at a folder holding the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) "
    "or Keras' mnist.npz: pass path=... (CLI: --path DIR) or set MNIST_KIT_DATA=DIR."
)


class MnistDataError(ValueError):
    """The MNIST files are missing, truncated, corrupt or inconsistent; the message says which."""


class MnistOfflineError(MnistDataError):
    """No local copy was found and the download failed (typically: no internet)."""


@dataclass
class DataSource:
    """Where `load_mnist` will read from: kind is "idx", "npz", "cache" or "download"."""

    kind: str
    path: Path | None
    tried: list[str] = field(default_factory=list)


def cache_dir() -> Path:
    """The kit's cache folder: $MNIST_KIT_CACHE, else ~/.cache/mnist-kit."""
    return Path(os.environ.get("MNIST_KIT_CACHE") or Path.home() / ".cache" / "mnist-kit")


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _classify_folder(folder: Path) -> str | None:
    """Say what kind of MNIST copy a folder (or file) holds, or None."""
    if folder.is_file():
        return "npz" if folder.suffix == ".npz" else None
    if all(_idx_file(folder, stem) for stem, _, _ in IDX_FILES.values()):
        return "idx"
    if (folder / NPZ_NAME).is_file():
        return "npz"
    if (folder / CACHE_NAME).is_file():
        return "cache"
    return None


def _explicit(path: Path, origin: str) -> DataSource:
    if not path.exists():
        raise MnistDataError(f"{origin} {path} does not exist. {HOW_TO_POINT}")
    kind = _classify_folder(path)
    if kind is None:
        present = sorted(p.name for p in path.iterdir()) if path.is_dir() else [path.name]
        missing = [s + ".gz" for s, _, _ in IDX_FILES.values() if not _idx_file(path, s)]
        raise MnistDataError(
            f"{origin} {path} holds no MNIST copy: missing {', '.join(missing)} (and no {NPZ_NAME}); "
            f"found {', '.join(present[:5]) + (', ...' if len(present) > 5 else '') or 'nothing'}. {HOW_TO_POINT}"
        )
    return DataSource(kind, path, [f"{origin} {path}"])


def find_mnist(path: str | os.PathLike | None = None) -> DataSource:
    """Find where MNIST would be read from, in the kit's search order, without reading it.

    Order: `path`, $MNIST_KIT_DATA, ~/.keras/datasets/mnist.npz, the kit's cache; else "download".
    Raises:
        MnistDataError: `path` or $MNIST_KIT_DATA was given but holds no MNIST copy.
    """
    if path is not None:
        return _explicit(Path(path).expanduser(), "path")
    env = os.environ.get("MNIST_KIT_DATA")
    if env:
        return _explicit(Path(env).expanduser(), "MNIST_KIT_DATA=")
    tried = []
    keras_npz = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets" / NPZ_NAME
    tried.append(f"Keras cache {keras_npz}")
    if keras_npz.is_file():
        return DataSource("npz", keras_npz, tried)
    cache = cache_dir()
    tried.append(f"kit cache {cache}")
    kind = _classify_folder(cache) if cache.is_dir() else None
    if kind:
        return DataSource(kind, cache, tried)
    return DataSource("download", cache, tried)


def _read_idx(file: Path, magic: int) -> np.ndarray:
    """Read one IDX file (gzip or raw), checking its magic number, shape and length (not its count)."""
    opener = gzip.open if file.suffix == ".gz" else open
    try:
        with opener(file, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise MnistDataError(
            f"{file}: cannot be decompressed ({exc}); the file is truncated or corrupt. Delete it and fetch it again."
        ) from exc
    if len(raw) < 8:
        raise MnistDataError(f"{file}: only {len(raw)} bytes; an IDX header needs at least 8.")
    found_magic = struct.unpack(">I", raw[:4])[0]
    if found_magic != magic:
        kind = "images (2051)" if magic == 2051 else "labels (2049)"
        raise MnistDataError(
            f"{file}: wrong magic number {found_magic} (0x{found_magic:08x}); expected {kind}. "
            "This is not an MNIST IDX file of that kind."
        )
    ndim = found_magic & 0xFF
    header = 4 + 4 * ndim
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected_bytes = int(np.prod(dims))
    if len(raw) - header != expected_bytes:
        raise MnistDataError(
            f"{file}: header promises {dims} = {expected_bytes} bytes of data, "
            f"found {len(raw) - header}; the file is truncated or padded."
        )
    if ndim == 3 and dims[1:] != (28, 28):
        raise MnistDataError(f"{file}: images are {dims[1]}x{dims[2]}; MNIST's are 28x28.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _check_arrays(arrays: dict[str, np.ndarray], origin: Path) -> None:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            raise MnistDataError(
                f"{origin}: {len(x)} {split} images but {len(y)} {split} labels; the counts must agree."
            )
        if y.size and int(y.max()) > 9:
            raise MnistDataError(
                f"{origin}: {split} labels go up to {int(y.max())}; MNIST labels are 0-9."
            )


def _load_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    """The four IDX files' arrays: images and labels compared first, then the counts MNIST has."""
    arrays = {
        key: _read_idx(_idx_file(folder, stem), magic)
        for key, (stem, magic, _) in IDX_FILES.items()
    }
    _check_arrays(arrays, folder)
    for key, (stem, _, count) in IDX_FILES.items():
        if len(arrays[key]) != count:
            raise MnistDataError(
                f"{_idx_file(folder, stem)}: holds {len(arrays[key])} items; MNIST's has {count}."
            )
    return arrays


def _load_npz(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = [k for k in IDX_FILES if k not in npz.files]
            if missing:
                raise MnistDataError(
                    f"{file}: missing arrays {', '.join(missing)}; expected x_train, y_train, x_test, y_test."
                )
            arrays = {k: np.asarray(npz[k]) for k in IDX_FILES}
    except MnistDataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, OSError
        raise MnistDataError(
            f"{file}: cannot be read as an .npz archive ({exc}); it is truncated or corrupt."
        ) from exc
    for key, array in arrays.items():
        want = (28, 28) if key.startswith("x") else ()
        if array.dtype != np.uint8 or array.shape[1:] != want:
            raise MnistDataError(
                f"{file}: {key} is {array.dtype} {array.shape}; expected uint8 (N{', 28, 28' if want else ''})."
            )
    _check_arrays(arrays, file)
    return arrays


def _save_cache(arrays: dict[str, np.ndarray], file: Path) -> None:
    try:
        write_atomically(file, lambda h: np.savez(h, **arrays))
    except OSError:
        pass  # a read-only cache is not an error: loading simply stays slower


def _download(url: str, target: Path, known_hash: str, verbose: bool) -> None:
    """Fetch `url` into `target` with pooch, kept only if it matches `known_hash` ("md5:..." or SHA-256)."""
    import pooch

    pooch.get_logger().setLevel("WARNING")  # the kit says itself what it downloads, and where
    downloader = pooch.HTTPDownloader(progressbar=verbose, timeout=30)
    try:  # streamed to a temporary file beside `target`, renamed into place once its checksum matches
        pooch.retrieve(url, known_hash, target.name, target.parent, downloader=downloader)
    except ValueError as exc:
        if "hash" not in str(exc):
            raise
        algorithm, _, expected = known_hash.rpartition(":")
        found = re.search(r"but got (\w+)", str(exc))
        raise MnistDataError(
            f"{target}: {(algorithm or 'sha256').upper()} checksum {found[1] if found else '?'} "
            f"does not match the official {expected}; the download was corrupted or tampered "
            "with and has been deleted. Try again."
        ) from None


def _download_mnist(folder: Path, verbose: bool) -> dict[str, np.ndarray]:
    """Download Keras' mnist.npz (else the four IDX files), verify checksums, return the arrays."""
    errors = []
    try:
        _download(KERAS_NPZ_URL, folder / NPZ_NAME, KERAS_NPZ_SHA256, verbose)
        return _load_npz(folder / NPZ_NAME)
    except MnistDataError:
        raise
    except OSError as exc:
        errors.append(f"{KERAS_NPZ_URL}: {exc}")
    for mirror in IDX_MIRRORS:
        try:
            for stem, md5 in IDX_MD5.items():
                _download(mirror + stem + ".gz", folder / (stem + ".gz"), f"md5:{md5}", verbose)
            return _load_idx_folder(folder)
        except OSError as exc:
            errors.append(f"{mirror}: {exc}")
    raise MnistOfflineError(
        "MNIST is not on this machine and could not be downloaded (no internet?). "
        f"Looked for a local copy and found none; download attempts failed ({'; '.join(errors)}). "
        f"{HOW_TO_POINT} Or copy Keras' mnist.npz to ~/.keras/datasets/."
    )


def load_mnist(
    path: str | os.PathLike | None = None, *, download: bool = True, verbose: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as `(x_train, y_train), (x_test, y_test)`, uint8, shaped like Keras' loader.

    Args:
        path: a folder with the four IDX files (.gz or raw) or mnist.npz, or an .npz file.
        download: whether to fetch MNIST (with a progress bar) when no local copy exists.
        verbose: print where the data came from and show download progress.

    Raises:
        MnistDataError: a file is missing, truncated, corrupt, has a wrong magic number, the
            image and label counts disagree, or a download's checksum fails.
        MnistOfflineError: nothing local and the download failed.
    """
    source = find_mnist(path)
    if source.kind == "download":
        if not download:
            raise MnistOfflineError(
                f"MNIST was not found (looked at: {'; '.join(source.tried)}) and download=False. {HOW_TO_POINT}"
            )
        import sys

        print(
            f"MNIST not found locally; downloading it (about 11 MB) to {source.path}",
            file=sys.stderr,
        )
        arrays = _download_mnist(source.path, verbose=True)  # long work: always show progress
        _save_cache(arrays, source.path / CACHE_NAME)
    elif source.kind == "npz":
        file = source.path if source.path.is_file() else source.path / NPZ_NAME
        arrays = _load_npz(file)
    elif source.kind == "cache":
        arrays = _load_npz(source.path / CACHE_NAME)
    else:
        arrays = _load_from_idx_with_cache(source.path)
    if verbose:
        print(
            f"MNIST loaded from {source.path} ({source.kind}): {len(arrays['x_train'])} train, {len(arrays['x_test'])} test images"
        )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _idx_fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the IDX files: changes when any file does."""
    parts = []
    for stem, _, _ in IDX_FILES.values():
        stat = _idx_file(folder, stem).stat()
        parts.append(f"{folder.resolve()}/{stem}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _load_from_idx_with_cache(folder: Path) -> dict[str, np.ndarray]:
    """Read IDX .gz files, with a decoded copy in the kit's cache keyed by their stats (pooch caches only downloads)."""
    cached = cache_dir() / f"idx-{_idx_fingerprint(folder)}.npz"
    if cached.is_file():
        try:
            return _load_npz(cached)
        except MnistDataError:
            cached.unlink(missing_ok=True)
    arrays = _load_idx_folder(folder)
    _save_cache(arrays, cached)
    return arrays


def scale_pixels(x: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1] (uint8 is divided by 255; floats already in range pass through)."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    x = x.astype(np.float32, copy=False)
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(
            f"float pixels must already lie in [0, 1], got range [{x.min():.3g}, {x.max():.3g}]; "
            "pass the uint8 images instead"
        )
    return x


def train_val_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float = 0.2, seed: int = 42
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split into training and validation sets by a seeded permutation (no image lost or repeated)."""
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} items but y has {len(y)}; they must match")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, tr = order[:n_val], order[n_val:]
    return (x[tr], y[tr]), (x[val], y[val])


def add_channel_axis(x: np.ndarray, channels_last: bool = True) -> np.ndarray:
    """(N, 28, 28) -> (N, 28, 28, 1) for Keras, or (N, 1, 28, 28) with channels_last=False for PyTorch."""
    x = np.asarray(x)
    if x.ndim == 4:
        return x
    if x.ndim != 3:
        raise ValueError(f"expected images shaped (N, 28, 28), got {x.shape}")
    return x[..., None] if channels_last else x[:, None]


def to_torch(x: np.ndarray, y: np.ndarray | None = None, device=None):
    """Images as a float32 tensor (N, 1, 28, 28) in [0, 1] (and labels as int64) on `device`."""
    import torch

    images = torch.from_numpy(
        np.ascontiguousarray(add_channel_axis(scale_pixels(x), channels_last=False))
    )
    images = images.to(device) if device is not None else images
    if y is None:
        return images
    labels = torch.from_numpy(np.asarray(y).astype(np.int64))
    return images, (labels.to(device) if device is not None else labels)
