"""What training reports and listens to, whichever framework trains: History, Callback, StopFlag.

Both `mnist_kit.torch_kit.fit` and `mnist_kit.keras_kit.fit` return the same `History`
and accept the same callbacks and stop flag, so one plotting function and one
playground serve both frameworks. No framework is imported here.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["History", "StopFlag", "Callback", "HISTORY_KEYS", "as_history_dict"]

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


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
