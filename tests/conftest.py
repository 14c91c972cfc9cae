"""Shared fixtures: the real MNIST copy, a private cache folder, headless matplotlib."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not os.environ.get("MNIST_KIT_DATA") and SHARED_MNIST.is_dir():
    os.environ["MNIST_KIT_DATA"] = str(SHARED_MNIST)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the real MNIST IDX files (MNIST_KIT_DATA, or ../shared/data/mnist)."""
    folder = Path(os.environ["MNIST_KIT_DATA"])
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"real MNIST not found at {folder}; set MNIST_KIT_DATA")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The real MNIST arrays, loaded once per test session."""
    from mnist_kit.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets the same session-wide private cache, never the user's ~/.cache."""
    cache = tmp_path_factory.getbasetemp() / "mnist-kit-cache"
    monkeypatch.setenv("MNIST_KIT_CACHE", str(cache))


BROKEN = Path(__file__).resolve().parent / "files" / "broken"


@pytest.fixture
def broken_notebook(tmp_path):
    """broken_notebook("truncated") copies tests/files/broken/truncated.bad to tmp_path/truncated.ipynb.

    The broken files are kept under another extension so that tools that open every notebook
    in the tree (linters, nbstripout, hooks) are not fed them.
    """

    def copy(stem: str, name: str | None = None) -> Path:
        target = tmp_path / (name or f"{stem}.ipynb")
        shutil.copyfile(BROKEN / f"{stem}.bad", target)
        return target

    return copy
