"""`train`: one reference model trained with the tutorial recipe and measured on the test set.

Used by the CLI's `train`, the playground and the lessons. The run is described by a
`mnist_kit.config.TrainConfig`; the framework is imported only when `train` runs.
`History`, `StopFlag` and `Callback` live in `mnist_kit.history` and are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from mnist_kit.config import TrainConfig, load_backend
from mnist_kit.history import HISTORY_KEYS, Callback, History, StopFlag, as_history_dict

__all__ = [
    "History",
    "StopFlag",
    "Callback",
    "RunResult",
    "TrainConfig",
    "train",
    "HISTORY_KEYS",
    "as_history_dict",
]


@dataclass
class RunResult:
    """Everything one `train` call produced."""

    framework: str
    model_name: str
    model: Any
    history: History
    params: int
    epochs: int
    batch_size: int
    test_accuracy: float
    test_loss: float
    train_seconds: float
    device: str
    stopped: bool = False
    settings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """A JSON-ready dict of the run (no model object)."""
        return {
            "framework": self.framework,
            "model": self.model_name,
            "params": self.params,
            "epochs": self.epochs,
            "epochs_completed": len(self.history.epoch),
            "batch_size": self.batch_size,
            "test_accuracy": round(self.test_accuracy, 4),
            "test_loss": round(self.test_loss, 4),
            "train_seconds": round(self.train_seconds, 2),
            "device": self.device,
            "stopped": self.stopped,
            "history": self.history.history,
            **{k: v for k, v in self.settings.items() if k not in ("framework", "model")},
        }


def _prepared_data(config: TrainConfig, data: tuple | None, data_path: str | None) -> tuple:
    """Scaled training images cut to `train_fraction`, the validation pair (or None), and the test set."""
    from mnist_kit import data as mdata

    (x_train, y_train), (x_test, y_test) = data if data is not None else mdata.load_mnist(data_path)
    x_train, x_test = mdata.scale_pixels(x_train), mdata.scale_pixels(x_test)
    if config.val_fraction > 0:
        (x_tr, y_tr), validation = mdata.train_val_split(
            x_train, y_train, val_fraction=config.val_fraction, seed=config.seed
        )
    else:
        x_tr, y_tr, validation = x_train, y_train, None
    if config.train_fraction < 1.0:
        keep = config.train_images(len(x_tr))
        x_tr, y_tr = x_tr[:keep], y_tr[:keep]
    return (x_tr, y_tr), validation, (x_test, y_test)


def train(
    framework: str | None = None,
    model: str | None = None,
    *,
    config: TrainConfig | None = None,
    data_path: str | None = None,
    data: tuple | None = None,
    callbacks: Iterable[Callback] = (),
    stop: StopFlag | None = None,
    verbose: int = 1,
    tensorboard: str | None = None,
    **settings: Any,
) -> RunResult:
    # Long for its documented keywords; the steps are _prepared_data, build_model, fit, evaluate.
    """Train a reference model with the tutorial recipe and measure it on the test set.

    The recipe: pixels scaled to [0, 1], `val_fraction` of the training set held out
    (seeded split), the chosen optimizer (Adam by default) with sparse categorical
    cross-entropy, then accuracy measured on the 10,000 test images.

    Args:
        framework: "torch" or "keras"; model: "mlp" or "cnn" (both default to `TrainConfig`'s).
        config: a whole `TrainConfig`; `framework`, `model` and `settings` change fields of it.
        settings: any other `TrainConfig` field: epochs=, batch_size=, hidden=, channels=,
            dropout=, lr=, optimizer=, seed=, val_fraction=, train_fraction= (share of the
            post-split training images used, for quick runs).
        data: `((x_train, y_train), (x_test, y_test))` already loaded, else `load_mnist(data_path)`.
        stop: a `StopFlag`; when requested, training ends after the current batch.
        tensorboard: a folder to log each epoch's metrics to, for TensorBoard.

    Raises:
        ValueError: an unknown framework, model or optimizer, or a setting out of range.
        TypeError: a keyword that is not a `TrainConfig` field.
    """
    named = {k: v for k, v in (("framework", framework), ("model", model)) if v is not None}
    config = replace(config or TrainConfig(), **named, **settings)
    backend = load_backend(config.framework)

    from mnist_kit.device import seed_everything

    (x_tr, y_tr), validation, (x_test, y_test) = _prepared_data(config, data, data_path)
    seed_everything(config.seed)
    net = config.build_model(backend)
    start = time.perf_counter()
    history = backend.fit(
        net,
        x_tr,
        y_tr,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=validation,
        lr=config.lr,
        optimizer=config.optimizer,
        callbacks=list(callbacks),
        stop=stop,
        verbose=verbose,
        tensorboard=tensorboard,
    )
    seconds = time.perf_counter() - start
    test_loss, test_acc = backend.evaluate(net, x_test, y_test)
    mlp = config.model == "mlp"
    return RunResult(
        framework=config.framework,
        model_name=config.model,
        model=net,
        history=history,
        params=backend.count_params(net),
        epochs=config.epochs,
        batch_size=config.batch_size,
        test_accuracy=float(test_acc),
        test_loss=float(test_loss),
        train_seconds=seconds,
        device=backend.device_name(net),
        stopped=bool(history.stopped_early),
        settings={
            "hidden": list(config.hidden) if mlp else None,
            "channels": None if mlp else list(config.channels),
            "dropout": config.dropout,
            "lr": config.lr,
            "optimizer": config.optimizer,
            "seed": config.seed,
            "train_fraction": config.train_fraction,
            "train_images": int(len(x_tr)),
        },
    )
