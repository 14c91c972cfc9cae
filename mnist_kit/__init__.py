"""mnist-kit: a Jupyter learning kit for deep learning on MNIST, in Keras and PyTorch.

Importing the package loads no framework: TensorFlow and PyTorch are imported the
first time a function that needs them runs.
"""

from mnist_kit.config import TrainConfig
from mnist_kit.data import (
    MnistDataError,
    add_channel_axis,
    load_mnist,
    scale_pixels,
    to_torch,
    train_val_split,
)
from mnist_kit.device import describe_devices, seed_everything, torch_device
from mnist_kit.history import Callback, History, StopFlag
from mnist_kit.training import train

__version__ = "0.1.0"

__all__ = [
    "load_mnist",
    "scale_pixels",
    "train_val_split",
    "add_channel_axis",
    "to_torch",
    "MnistDataError",
    "describe_devices",
    "torch_device",
    "seed_everything",
    "History",
    "StopFlag",
    "Callback",
    "TrainConfig",
    "train",
    "__version__",
]
