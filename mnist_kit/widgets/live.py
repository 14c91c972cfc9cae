"""Progress shared between the training thread (which writes) and the widget updater (which reads)."""

from __future__ import annotations

import threading
import time

from mnist_kit.history import Callback, StopFlag

__all__ = ["LiveState", "LiveCallback", "POINTS_PER_EPOCH"]

POINTS_PER_EPOCH = 100  # running-metric points kept per epoch for the live curve


class LiveState:
    """A lock-protected snapshot of a run in progress: phase, position, and curve points."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clicked_at = time.perf_counter()
        self.phase = "starting"
        self.epochs = 0
        self.steps = 0
        self.epoch = 0
        self.batch = 0
        self.running: dict[str, float] = {}
        self.train_points: list[tuple[float, float, float]] = []  # (epoch position, loss, accuracy)
        self.val_points: list[
            tuple[float, float, float]
        ] = []  # (epochs done, val_loss, val_accuracy)
        self.began_at: float | None = None  # on_train_begin: data ready, framework imported
        self.first_point_at: float | None = None
        self.stop_requested_at: float | None = None
        self.halted_at: float | None = None
        self.done = False
        self.version = 0  # bumped on every change, so readers can skip unchanged snapshots

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self.phase = phase
            self.version += 1

    def begin(self, epochs: int, steps: int) -> None:
        with self._lock:
            self.epochs, self.steps, self.phase = int(epochs), int(steps), "training"
            self.began_at = time.perf_counter()
            self.version += 1

    def start_epoch(self, epoch: int) -> None:
        with self._lock:
            self.epoch, self.batch = int(epoch), 0
            self.version += 1

    def add_batch(self, batch: int, logs: dict) -> None:
        with self._lock:
            self.batch = int(batch) + 1
            self.running = {k: float(v) for k, v in logs.items()}
            every = max(1, self.steps // POINTS_PER_EPOCH)
            if "loss" in logs and (self.batch % every == 0 or not self.train_points):
                position = self.epoch + self.batch / max(1, self.steps)
                self.train_points.append(
                    (position, float(logs["loss"]), float(logs.get("accuracy", float("nan"))))
                )
                if self.first_point_at is None:
                    self.first_point_at = time.perf_counter()
            self.version += 1

    def end_epoch(self, epoch: int, logs: dict) -> None:
        with self._lock:
            if "val_loss" in logs:
                done = epoch + (self.batch / max(1, self.steps) if self.halted_at else 1.0)
                self.val_points.append((done, float(logs["val_loss"]), float(logs["val_accuracy"])))
            self.version += 1

    def request_stop(self) -> None:
        with self._lock:
            if self.stop_requested_at is None:
                self.stop_requested_at = time.perf_counter()
            self.version += 1

    def mark_halted(self) -> None:
        with self._lock:
            if self.halted_at is None:
                self.halted_at = time.perf_counter()
            self.version += 1

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self.version += 1

    @property
    def epochs_done(self) -> float:
        """Epochs completed, fractional when the run stopped inside one."""
        with self._lock:
            return self.epoch + self.batch / max(1, self.steps) if self.steps else 0.0

    def snapshot(self) -> dict:
        """A consistent copy of everything, safe to read in another thread."""
        with self._lock:
            return {
                "version": self.version,
                "phase": self.phase,
                "epochs": self.epochs,
                "steps": self.steps,
                "epoch": self.epoch,
                "batch": self.batch,
                "running": dict(self.running),
                "train_points": list(self.train_points),
                "val_points": list(self.val_points),
                "began_seconds": None if self.began_at is None else self.began_at - self.clicked_at,
                "first_point_seconds": None
                if self.first_point_at is None
                else self.first_point_at - self.clicked_at,
                "stop_latency": None
                if self.halted_at is None or self.stop_requested_at is None
                else self.halted_at - self.stop_requested_at,
                "stop_requested": self.stop_requested_at is not None,
                "halted": self.halted_at is not None,
                "done": self.done,
            }


class LiveCallback(Callback):
    """Records a run's progress into a LiveState; notices when a requested stop took effect."""

    def __init__(self, live: LiveState, stop: StopFlag | None = None) -> None:
        self.live, self.stop = live, stop

    def on_train_begin(self, logs: dict) -> None:
        self.live.begin(logs.get("epochs", 0), logs.get("steps", 0))

    def on_epoch_begin(self, epoch: int) -> None:
        self.live.start_epoch(epoch)

    def on_batch_end(self, batch: int, logs: dict) -> None:
        self.live.add_batch(batch, logs)
        # Both backends check the flag right after this hook: this batch is the last one.
        if self.stop is not None and self.stop.requested:
            self.live.mark_halted()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.live.end_epoch(epoch, logs)

    def on_train_end(self, logs: dict) -> None:
        if logs.get("stopped"):
            self.live.mark_halted()
