"""The playground's engine without any widget: cached data, one live model, runs, estimates.

Everything here runs in the training thread and never touches a widget, so it can be
tested in plain Python with a fake backend (see tests/test_widgets.py).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_kit.config import load_backend
from mnist_kit.history import Callback, StopFlag
from mnist_kit.training import train
from mnist_kit.widgets.live import LiveCallback, LiveState
from mnist_kit.widgets.runs import RunRecord
from mnist_kit.widgets.settings import FRAMEWORKS, Settings, estimate_seconds, format_seconds

__all__ = ["Session", "Estimate", "LatestRun", "shared_mnist"]

_DATA_LOCK = threading.Lock()
_DATA: tuple | None = None


def shared_mnist() -> tuple:
    """MNIST loaded once per Python process (every playground in a kernel shares it)."""
    global _DATA
    with _DATA_LOCK:
        if _DATA is None:
            from mnist_kit.data import load_mnist

            _DATA = load_mnist()
        return _DATA


@dataclass
class Estimate:
    """Training time predicted from a few timed steps of the real model."""

    settings: Settings
    step_seconds: float
    eval_seconds_per_image: float
    steps_timed: int

    @property
    def seconds(self) -> float:
        return estimate_seconds(self.settings, self.step_seconds, self.eval_seconds_per_image)

    def text(self) -> str:
        return (
            f"≈ {format_seconds(self.seconds)} "
            f"({self.step_seconds * 1000:.1f} ms per batch, timed over {self.steps_timed} batches)"
        )


@dataclass
class LatestRun:
    """The newest run's model and test-set predictions (kept for the gallery and your digit)."""

    record: RunRecord
    model: Any
    backend: Any
    predicted: np.ndarray  # (N,) labels of the test images
    probabilities: np.ndarray  # (N, 10)


class _StepTimer(Callback):
    """Times batches after a warm-up and asks training to stop once it has enough."""

    def __init__(
        self, stop: StopFlag, warmup: int = 2, wanted: int = 8, budget: float = 2.0
    ) -> None:
        self.stop, self.warmup, self.wanted, self.budget = stop, warmup, wanted, budget
        self.times: list[float] = []

    def on_batch_end(self, batch: int, logs: dict) -> None:
        self.times.append(time.perf_counter())
        timed = len(self.times) - 1 - self.warmup
        if timed >= self.wanted or (
            timed >= 3 and self.times[-1] - self.times[self.warmup] > self.budget
        ):
            self.stop.request()

    def step_seconds(self) -> tuple[float, int]:
        gaps = np.diff(self.times[self.warmup :])
        if len(gaps) == 0:
            gaps = np.diff(self.times)
        if len(gaps) == 0:
            raise RuntimeError("too few batches ran to time one; try a smaller batch size")
        return float(np.median(gaps)), len(gaps)


class Session:
    """Runs trainings one at a time and remembers them; holds at most one model in memory.

    Args:
        load_data: returns `((x_train, y_train), (x_test, y_test))`; MNIST, cached, by default.
        train_fn: `mnist_kit.training.train` or a stand-in with the same signature.
        load_backend: framework name -> module with mlp/cnn/fit/evaluate/predict/release.
        log_dir: when given, each run logs to `log_dir/run-NN-<framework>-<model>` for
            TensorBoard, so `tensorboard --logdir log_dir` compares the runs.
    """

    def __init__(
        self,
        load_data: Callable[[], tuple] = shared_mnist,
        train_fn: Callable[..., Any] = train,
        load_backend: Callable[[str], Any] = load_backend,
        log_dir: str | None = None,
    ) -> None:
        self.load_data, self.train_fn, self.load_backend = load_data, train_fn, load_backend
        self.log_dir = log_dir
        self.runs: list[RunRecord] = []
        self.latest: LatestRun | None = None
        self.busy = threading.Lock()  # one training or estimate at a time

    def release_model(self) -> None:
        """Free the newest model (each backend's release clears its framework's caches)."""
        latest, self.latest = self.latest, None
        if latest is not None:
            backend, model = latest.backend, latest.model
            latest.model = None
            del latest
            backend.release(model)
            del model
        gc.collect()

    def run(self, settings: Settings, live: LiveState, stop: StopFlag) -> RunRecord:
        """Train one model with `settings`, reporting into `live`; never raises for a failed run."""
        number = len(self.runs) + 1
        with self.busy:
            try:
                record = self._run(number, settings, live, stop)
            except Exception as err:  # shown in the dashboard instead of lost in a thread
                record = RunRecord(
                    number,
                    settings,
                    "failed",
                    error=f"{type(err).__name__}: {err}",
                    epochs_done=live.epochs_done,
                )
                self.release_model()
            finally:
                live.finish()
            snap = live.snapshot()
            record.curve = {"train": snap["train_points"], "val": snap["val_points"]}
            self.runs.append(record)
            return record

    def _run(self, number: int, settings: Settings, live: LiveState, stop: StopFlag) -> RunRecord:
        live.set_phase("Loading MNIST (first run only)…")
        data = self.load_data()
        live.set_phase(f"Loading {FRAMEWORKS[settings.framework]} (first run only)…")
        backend = self.load_backend(settings.framework)
        self.release_model()  # the previous model goes before the next one is built
        live.set_phase("Building the model…")
        logging = {}
        if self.log_dir is not None:
            name = f"run-{number:02d}-{settings.framework}-{settings.model}"
            logging["tensorboard"] = str(Path(self.log_dir) / name)
        result = self.train_fn(
            settings.framework,
            settings.model,
            data=data,
            callbacks=[LiveCallback(live, stop)],
            stop=stop,
            verbose=0,
            **logging,
            **settings.train_kwargs(),
        )
        live.set_phase("Measuring on the test images…")
        x_test, y_test = data[1]
        probabilities = np.asarray(backend.predict(result.model, x_test), dtype=np.float32)
        predicted = probabilities.argmax(axis=1)
        from mnist_kit.analysis import confusion_matrix

        stopped = bool(result.stopped)
        record = RunRecord(
            number=number,
            settings=settings,
            status="stopped" if stopped else "finished",
            history={k: list(v) for k, v in result.history.history.items()},
            test_accuracy=float(result.test_accuracy),
            train_seconds=float(result.train_seconds),
            epochs_done=live.epochs_done if stopped else float(settings.epochs),
            params=int(result.params),
            confusion=confusion_matrix(y_test, predicted),
        )
        self.latest = LatestRun(record, result.model, backend, predicted, probabilities)
        return record

    def estimate(self, settings: Settings, live: LiveState | None = None) -> Estimate:
        """Time a few real training batches and one inference pass of a fresh model."""
        with self.busy:
            if live is not None:
                live.set_phase(f"Loading {FRAMEWORKS[settings.framework]}…")
            (x_train, y_train), (x_test, _) = self.load_data()
            backend = self.load_backend(settings.framework)
            if live is not None:
                live.set_phase("Timing a few batches…")
            stop = StopFlag()
            timer = _StepTimer(stop)
            n = min(len(x_train), settings.batch_size * (timer.warmup + timer.wanted + 1))
            model = settings.train_config().build_model(backend)
            try:
                backend.fit(
                    model,
                    x_train[:n],
                    y_train[:n],
                    epochs=1,
                    batch_size=settings.batch_size,
                    lr=settings.lr,
                    optimizer=settings.optimizer,
                    callbacks=[timer],
                    stop=stop,
                    verbose=0,
                )
                step, timed = timer.step_seconds()
                sample = x_test[:2000]
                backend.predict(model, sample[:64])  # warm-up
                start = time.perf_counter()
                backend.predict(model, sample)
                per_image = (time.perf_counter() - start) / len(sample)
            finally:
                backend.release(model)
                del model
            return Estimate(settings, step, per_image, timed)

    def predict_digit(self, image: np.ndarray) -> np.ndarray:
        """The newest model's ten probabilities for one (28, 28) uint8 digit."""
        latest = self.latest
        if latest is None:
            raise ValueError("no trained model yet: press Train first")
        if not self.busy.acquire(timeout=0.5):
            raise ValueError("a training is running; try again when it has finished")
        try:
            return np.asarray(latest.backend.predict(latest.model, image[None]), dtype=np.float64)[
                0
            ]
        finally:
            self.busy.release()
