"""Tests of mnist_kit.device: device choice (without pretending a GPU exists), seeds, threads."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from mnist_kit.device import choose_torch_device, seed_everything, set_cpu_threads, torch_device


@pytest.mark.parametrize(
    ("cuda", "mps", "prefer", "expected"),
    [
        (0, False, None, "cpu"),
        (2, False, None, "cuda:0"),
        (0, True, None, "mps"),
        (1, True, None, "cuda:0"),  # CUDA wins over MPS
        (2, False, "cuda:1", "cuda:1"),
        (1, False, "cuda:3", "cpu"),  # never a GPU that does not exist
        (0, False, "mps", "cpu"),
        (2, True, "cpu", "cpu"),
    ],
)
def test_choice_prefers_cuda_then_mps_then_cpu(cuda, mps, prefer, expected):
    """Does the selection logic pick the best device present and never one that is absent?"""
    assert choose_torch_device(cuda, mps, prefer) == expected


def test_unknown_device_name_is_a_clear_error():
    """Is a typo in a device name a ValueError that lists the choices?"""
    with pytest.raises(ValueError, match="'cuda', 'cuda:N', 'mps' or 'cpu'"):
        choose_torch_device(0, False, "gpu")


def test_torch_device_matches_this_machine():
    """Does torch_device() agree with what PyTorch itself reports here?"""
    import torch

    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert torch_device().type == expected


def test_seed_everything_repeats_python_numpy_and_torch():
    """Do two seedings give the same random draws in Python, numpy and PyTorch?"""
    import torch

    draws = []
    for _ in range(2):
        seed_everything(123)
        draws.append((random.random(), np.random.rand(), torch.rand(3).tolist()))
    assert draws[0] == draws[1]
    seed_everything(124)
    assert random.random() != draws[0][0]


def test_import_mnist_kit_loads_no_framework():
    """Does `import mnist_kit` stay free of TensorFlow and PyTorch (they cost seconds)?"""
    code = "import sys, mnist_kit, mnist_kit.data, mnist_kit.training, mnist_kit.device; print('tensorflow' in sys.modules, 'torch' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False", "False"]


def test_keras_import_is_quiet_on_stderr():
    """Does importing the kit's Keras side keep TensorFlow's start-up lines off stderr?"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")
    result = subprocess.run(
        [sys.executable, "-c", "import mnist_kit.keras_kit"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_set_cpu_threads_configures_torch():
    """Does set_cpu_threads set PyTorch's pool to the requested size?"""
    import torch

    before = torch.get_num_threads()
    try:
        assert set_cpu_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_tensorflow_is_configured_once():
    """After importing the Keras side, does configure_tensorflow return what it found, not ask again?"""
    code = (
        "import mnist_kit.keras_kit, tensorflow as tf;"
        "from mnist_kit.device import configure_tensorflow;"
        "found = configure_tensorflow();"
        "tf.config.list_physical_devices = lambda *a: 1 / 0;"  # a second look would fail
        "assert configure_tensorflow() is found and isinstance(found, tuple);"
        "print(mnist_kit.keras_kit.device_name())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("CPU", "GPU")
