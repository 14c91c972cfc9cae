"""What hardware each framework sees, which device to use, threads, and seeds.

Introduced in course/06-pytorch.ipynb. Nothing here imports a framework until asked.
On a machine with a GPU the CUDA/MPS branches are taken; elsewhere everything falls
back to the CPU (like d2l's `try_gpu`).
"""

from __future__ import annotations

import contextlib
import os
import random
import sys

import numpy as np

__all__ = [
    "quiet_stderr",
    "import_tensorflow",
    "describe_devices",
    "choose_torch_device",
    "torch_device",
    "configure_tensorflow",
    "set_cpu_threads",
    "seed_everything",
]


@contextlib.contextmanager
def quiet_stderr():
    """Send the process's own stderr (file descriptor 2) to /dev/null inside the block.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing) ignore TF_CPP_MIN_LOG_LEVEL and
    are written straight to fd 2, where Jupyter shows them as red stderr and nbgrader may
    count them against a graded cell. Python-level `sys.stderr` is left alone.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():
    """Import TensorFlow without its start-up noise on stderr, with GPU memory growth set."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import tensorflow as tf

        configure_tensorflow()
    return tf


def choose_torch_device(cuda_count: int, mps_available: bool, prefer: str | None = None) -> str:
    """Pick a PyTorch device name from what is present: CUDA, then Apple MPS, then CPU.

    Args:
        cuda_count: number of CUDA GPUs visible.
        mps_available: whether Apple's Metal backend is usable.
        prefer: "cuda", "cuda:N", "mps" or "cpu" to ask for one; falls back to the CPU
            (never to a GPU that does not exist).
    """
    if prefer:
        prefer = prefer.lower()
        if prefer == "cpu":
            return "cpu"
        if prefer.startswith("cuda"):
            index = int(prefer.split(":")[1]) if ":" in prefer else 0
            return f"cuda:{index}" if index < cuda_count else "cpu"
        if prefer == "mps":
            return "mps" if mps_available else "cpu"
        raise ValueError(f"unknown device {prefer!r}; use 'cuda', 'cuda:N', 'mps' or 'cpu'")
    if cuda_count > 0:
        return "cuda:0"
    if mps_available:
        return "mps"
    return "cpu"


def torch_device(prefer: str | None = None):
    """The best `torch.device` here (CUDA GPU, else Apple MPS, else CPU)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    return torch.device(choose_torch_device(torch.cuda.device_count(), mps_ok, prefer))


_TF_GPUS: tuple[str, ...] | None = None  # set by the first configure_tensorflow() call


def configure_tensorflow(memory_growth: bool = True) -> tuple[str, ...]:
    """Set TensorFlow up for sharing a GPU, once per process; return the GPU names it sees.

    Memory growth lets TensorFlow and PyTorch share one GPU in one kernel (otherwise
    TensorFlow grabs all its memory). It can only be set before TensorFlow first uses a
    GPU, so only the first call configures; later calls return the names it found.
    """
    global _TF_GPUS
    if _TF_GPUS is not None:
        return _TF_GPUS
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        if memory_growth:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass  # already initialised: growth can only be set before first use
    _TF_GPUS = tuple(gpu.name for gpu in gpus)
    return _TF_GPUS


def set_cpu_threads(n: int | None = None) -> int:
    """Use `n` threads (default: all cores) for PyTorch's and TensorFlow's CPU kernels.

    On small machines one pool the size of the core count avoids over-subscription.
    Only frameworks already imported are configured; returns the count used.
    """
    n = n or os.cpu_count() or 1
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, n))
        except RuntimeError:
            pass  # TensorFlow has already started; its pools are fixed now
    return n


def seed_everything(seed: int = 42, deterministic: bool = False) -> None:
    """Seed Python, numpy, and (when imported or installed) TensorFlow/Keras and PyTorch.

    Args:
        seed: the seed for every generator.
        deterministic: also ask both frameworks for deterministic kernels (slower on GPUs).
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.manual_seed(seed)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)
        if deterministic:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()


def describe_devices() -> dict:
    """Versions and devices each installed framework sees (imports both; takes a few seconds)."""
    info: dict = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        mps = getattr(torch.backends, "mps", None)
        info["torch"] = {
            "version": torch.__version__,
            "cuda": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "mps": bool(mps is not None and mps.is_available()),
            "threads": torch.get_num_threads(),
            "device": str(torch_device()),
        }
    except ImportError as exc:
        info["torch"] = {"error": f"not installed ({exc})"}
    try:
        gpus = configure_tensorflow()
        import keras
        import tensorflow as tf

        info["tensorflow"] = {
            "version": tf.__version__,
            "keras": keras.__version__,
            "gpus": list(gpus),
            "device": "GPU" if gpus else "CPU",
        }
    except ImportError as exc:
        info["tensorflow"] = {"error": f"not installed ({exc})"}
    return info
