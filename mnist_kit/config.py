"""One training run described once: the frameworks, models and optimizers the kit knows, and `TrainConfig`.

The CLI's `train`, the playground and `mnist_kit.training.train` all build a `TrainConfig`
(nanoGPT's `GPTConfig` pattern), so each default and each range is written here and
nowhere else; every list of choices in the kit reads the three registries below.
No framework is imported here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = [
    "TrainConfig",
    "SettingError",
    "FRAMEWORKS",
    "MODELS",
    "OPTIMIZERS",
    "check_choice",
    "at_least_one",
    "load_backend",
]

FRAMEWORKS = {"torch": "PyTorch", "keras": "Keras"}  # name -> label, in the playground's order
MODELS = {"mlp": "MLP (dense layers)", "cnn": "CNN (convolutions)"}  # name -> label
# name -> class: torch.optim and keras.optimizers spell all four the same way.
OPTIMIZERS = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


class SettingError(ValueError):
    """A setting outside its range: `.name` says which one, `.problem` what is wrong with it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} {problem}")
        self.name, self.problem = name, problem


def check_choice(kind: str, value: Any, choices: Iterable[str]) -> str:
    """Return `value` when it is one of `choices`; otherwise a ValueError that lists them."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose one of {', '.join(choices)}")
    return value


def at_least_one(name: str, value: int) -> int:
    """Return `value` when it is at least 1 (epochs, batch size, layer sizes); else a SettingError."""
    if value < 1:
        raise SettingError(name, f"must be at least 1, got {value}")
    return value


def load_backend(framework: str) -> ModuleType:
    """`mnist_kit.torch_kit` or `mnist_kit.keras_kit` (imports the framework the first time)."""
    return importlib.import_module(
        f"mnist_kit.{check_choice('framework', framework, FRAMEWORKS)}_kit"
    )


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run is made of; checked when made (a bad value is a clear ValueError)."""

    framework: str = (
        "torch"  # the kit's torch fit trains these models fastest on a CPU (docs/benchmarks.md)
    )
    model: str = "mlp"  # the tutorial's first network
    epochs: int = 5  # enough for the tutorial MLP to pass 97% test accuracy
    batch_size: int = 32  # Keras' default, and the lessons'
    hidden: tuple[int, ...] = (128, 64)  # MLP 784-128-64-10: 109,386 parameters
    channels: tuple[int, int] = (32, 64)  # CNN convolutions: 225,034 parameters, 98.5% in 3 epochs
    dropout: float | None = None  # None: each model's own (MLP 0, CNN 0.5)
    lr: float = 1e-3  # Adam's own default
    optimizer: str = "adam"  # the one that works without tuning
    seed: int = 42  # the same split, weights and order of batches on every run
    val_fraction: float = 0.2  # 12,000 of the 60,000 training images held out, as the lessons do
    train_fraction: float = 1.0  # share of the rest trained on; less for quick runs

    def __post_init__(self) -> None:
        check_choice("framework", self.framework, FRAMEWORKS)
        check_choice("model", self.model, MODELS)
        # Normalised in place (hence object.__setattr__ on a frozen dataclass): "Adam" means
        # "adam", and lists from the command line become tuples.
        optimizer = self.optimizer.lower() if isinstance(self.optimizer, str) else self.optimizer
        object.__setattr__(self, "optimizer", check_choice("optimizer", optimizer, OPTIMIZERS))
        object.__setattr__(self, "hidden", tuple(int(size) for size in self.hidden))
        object.__setattr__(self, "channels", tuple(int(size) for size in self.channels))
        at_least_one("epochs", self.epochs)
        at_least_one("batch_size", self.batch_size)
        if any(size < 1 for size in self.hidden):
            raise SettingError("hidden", f"layer sizes must be positive, got {list(self.hidden)}")
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise SettingError(
                "channels", f"must be two positive numbers, e.g. 32,64, got {list(self.channels)}"
            )
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise SettingError("dropout", f"must be in [0, 1), got {self.dropout}")
        if not self.lr > 0:
            raise SettingError("lr", f"must be greater than 0, got {self.lr}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise SettingError("val_fraction", f"must be in [0, 1), got {self.val_fraction}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise SettingError("train_fraction", f"must be in (0, 1], got {self.train_fraction}")

    def train_images(self, available: int) -> int:
        """How many of `available` training images a run uses (never fewer than one batch)."""
        return max(self.batch_size, int(round(available * self.train_fraction)))

    def architecture(self) -> dict:
        """The recipe `mnist_kit.saving` stores beside PyTorch weights to rebuild the model."""
        if self.model == "mlp":
            return {"model": "mlp", "hidden": list(self.hidden), "dropout": self.dropout or 0.0}
        dropout = 0.5 if self.dropout is None else self.dropout
        return {"model": "cnn", "channels": list(self.channels), "dropout": dropout}

    def build_model(self, backend: ModuleType) -> Any:
        """The model these settings describe, built by `backend` (torch_kit or keras_kit)."""
        if self.model == "mlp":
            return backend.mlp(hidden=self.hidden, dropout=self.dropout or 0.0)
        return backend.cnn(
            channels=self.channels, dropout=0.5 if self.dropout is None else self.dropout
        )
