"""Framework-free training pieces: History, StopFlag, Callback, and `train` (used by the CLI and playground).

Both `mnist_kit.torch_kit.fit` and `mnist_kit.keras_kit.fit` return the same `History`
and accept the same callbacks and stop flag, so one plotting function and one
playground serve both frameworks. No framework is imported here at module level.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History", "StopFlag", "Callback", "RunResult", "train", "HISTORY_KEYS"]

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
FRAMEWORKS = ("keras", "torch")
MODELS = ("mlp", "cnn")


class History:
    """Per-epoch metrics of one training run, shaped like Keras' `History`.

    `history.history` maps "loss", "accuracy" (and "val_loss", "val_accuracy" when
    there was validation data) to one float per finished epoch; `history.epoch`
    lists the epoch indices; `history.params` holds the run's settings.
    """

    def __init__(self, history: dict[str, list[float]] | None = None, params: dict | None = None):
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.params: dict[str, Any] = dict(params or {})
        self.stopped_early = False

    @property
    def epoch(self) -> list[int]:
        return list(range(len(self.history.get("loss", []))))

    def append(self, logs: dict[str, float]) -> None:
        """Record one finished epoch's metrics (keys outside HISTORY_KEYS are kept too)."""
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    @classmethod
    def from_keras(cls, keras_history: Any, params: dict | None = None) -> History:
        """Wrap a Keras `History` (keys "compile_metrics" etc. are dropped)."""
        kept = {k: v for k, v in keras_history.history.items() if k in HISTORY_KEYS}
        return cls(kept, params)

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


def as_history_dict(history: Any) -> dict[str, list[float]]:
    """Return the metrics dict of a Keras History, the kit's History, or a plain dict."""
    if isinstance(history, dict):
        return history
    if hasattr(history, "history") and isinstance(history.history, dict):
        return history.history
    raise TypeError(
        f"expected a History (Keras or mnist_kit) or a dict of metric lists, got {type(history).__name__}"
    )


class StopFlag:
    """A thread-safe "please stop" request that training checks after every batch.

    The playground's Stop button calls `request()`; `fit` finishes the current batch,
    keeps the weights learned so far, and returns.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def __bool__(self) -> bool:
        return self._event.is_set()


class Callback:
    """Hooks called during `fit` in both frameworks; override the ones you need.

    `logs` carry the running "loss" and "accuracy" in `on_batch_end` and the
    epoch's metrics (with "val_*" keys when there is validation data) in `on_epoch_end`.
    `on_train_begin` receives {"epochs", "steps"} (steps per epoch).
    """

    def on_train_begin(self, logs: dict) -> None: ...

    def on_epoch_begin(self, epoch: int) -> None: ...

    def on_batch_end(self, batch: int, logs: dict) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, logs: dict) -> None: ...


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


def _backend(framework: str):
    if framework == "torch":
        from mnist_kit import torch_kit

        return torch_kit
    if framework == "keras":
        from mnist_kit import keras_kit

        return keras_kit
    raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")


def train(
    framework: str = "torch",
    model: str = "mlp",
    *,
    epochs: int = 5,
    batch_size: int = 32,
    hidden: Sequence[int] = (128, 64),
    channels: Sequence[int] = (32, 64),
    dropout: float | None = None,
    lr: float = 1e-3,
    optimizer: str = "adam",
    seed: int = 42,
    val_fraction: float = 0.2,
    train_fraction: float = 1.0,
    data_path: str | None = None,
    data: tuple | None = None,
    callbacks: Iterable[Callback] = (),
    stop: StopFlag | None = None,
    verbose: int = 1,
) -> RunResult:
    """Train a reference model with the tutorial recipe and measure it on the test set.

    The recipe: pixels scaled to [0, 1], `val_fraction` of the training set held out
    (seeded split), the chosen optimizer (Adam by default) with sparse categorical
    cross-entropy, then accuracy measured on the 10,000 test images.

    Args:
        framework: "torch" or "keras".
        model: "mlp" or "cnn".
        train_fraction: share of the (post-split) training images used, for quick runs.
        data: `((x_train, y_train), (x_test, y_test))` already loaded, else `load_mnist(data_path)`.
        stop: a `StopFlag`; when requested, training ends after the current batch.

    Raises:
        ValueError: an unknown framework, model or optimizer, or a setting out of range.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden layer sizes must be positive, got {list(hidden)}")
    backend = _backend(framework)

    from mnist_kit import data as mdata
    from mnist_kit.device import seed_everything

    (x_train, y_train), (x_test, y_test) = data if data is not None else mdata.load_mnist(data_path)
    x_train, x_test = mdata.scale_pixels(x_train), mdata.scale_pixels(x_test)
    if val_fraction > 0:
        (x_tr, y_tr), (x_val, y_val) = mdata.train_val_split(
            x_train, y_train, val_fraction=val_fraction, seed=seed
        )
        validation = (x_val, y_val)
    else:
        x_tr, y_tr, validation = x_train, y_train, None
    if train_fraction < 1.0:
        keep = max(batch_size, int(round(len(x_tr) * train_fraction)))
        x_tr, y_tr = x_tr[:keep], y_tr[:keep]

    seed_everything(seed)
    if model == "mlp":
        net = backend.mlp(hidden=tuple(hidden), dropout=dropout or 0.0)
    else:
        net = backend.cnn(channels=tuple(channels), dropout=0.5 if dropout is None else dropout)

    start = time.perf_counter()
    history = backend.fit(
        net,
        x_tr,
        y_tr,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        lr=lr,
        optimizer=optimizer,
        callbacks=list(callbacks),
        stop=stop,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    test_loss, test_acc = backend.evaluate(net, x_test, y_test)
    settings = {
        "hidden": list(hidden) if model == "mlp" else None,
        "channels": list(channels) if model == "cnn" else None,
        "dropout": dropout,
        "lr": lr,
        "optimizer": optimizer,
        "seed": seed,
        "train_fraction": train_fraction,
        "train_images": int(len(x_tr)),
    }
    return RunResult(
        framework=framework,
        model_name=model,
        model=net,
        history=history,
        params=backend.count_params(net),
        epochs=epochs,
        batch_size=batch_size,
        test_accuracy=float(test_acc),
        test_loss=float(test_loss),
        train_seconds=seconds,
        device=backend.device_name(),
        stopped=bool(history.stopped_early),
        settings=settings,
    )
