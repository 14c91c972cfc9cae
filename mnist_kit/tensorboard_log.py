"""Training curves for TensorBoard, the same tags whichever framework trains.

    history = torch_kit.fit(model, x, y, epochs=5, tensorboard="runs/mlp")
    # in a notebook: %load_ext tensorboard  then  %tensorboard --logdir runs

Each epoch writes the scalars `loss`, `accuracy`, `val_loss`, `val_accuracy` (when there is
validation data) and `learning_rate`, at step = epoch number (0-based, like History), with
the framework's own writer: PyTorch's `SummaryWriter` for a PyTorch run, `tf.summary` for a
Keras one. A PyTorch run also writes the model's graph (`add_graph`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnist_kit.config import FRAMEWORKS
from mnist_kit.history import HISTORY_KEYS, Callback

__all__ = ["TensorBoardLog", "SCALAR_TAGS", "read_scalars"]

SCALAR_TAGS = (*HISTORY_KEYS, "learning_rate")


class TensorBoardLog(Callback):
    """A Callback writing each epoch's metrics to `log_dir` as TensorBoard event files."""

    def __init__(self, log_dir: str | Path, framework: str, learning_rate: float | None = None,
                 model: Any = None, example: Any = None):  # fmt: skip
        if framework not in FRAMEWORKS:
            raise ValueError(f"framework must be 'keras' or 'torch', got {framework!r}")
        self.log_dir, self.framework = Path(log_dir), framework
        self.learning_rate, self.model, self.example = learning_rate, model, example
        self._writer: Any = None

    def on_train_begin(self, logs: dict) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.framework == "torch":
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir))
            if self.model is not None and self.example is not None:
                try:  # tracing can fail on unusual modules; the curves matter more than the graph
                    self._writer.add_graph(self.model, self.example)
                except Exception:  # noqa: BLE001
                    pass
        else:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        values = {k: float(v) for k, v in logs.items() if k in SCALAR_TAGS}
        if "learning_rate" not in values and self.learning_rate is not None:
            values["learning_rate"] = float(self.learning_rate)
        if self.framework == "torch":
            for tag, value in values.items():
                self._writer.add_scalar(tag, value, epoch)
            self._writer.flush()
        else:
            import tensorflow as tf

            with self._writer.as_default():
                for tag, value in values.items():
                    tf.summary.scalar(tag, value, step=epoch)
            self._writer.flush()

    def on_train_end(self, logs: dict) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `log_dir`, read with TensorBoard's own reader:
    {tag: [(step, value), ...]} (TF's tensor-style summaries included)."""
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        TENSORS,
        EventAccumulator,
    )

    found: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={SCALARS: 0, TENSORS: 0})
        accumulator.Reload()
        tags = accumulator.Tags()
        for tag in tags.get("scalars", []):
            found.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
        for tag in tags.get("tensors", []):
            from tensorboard.util import tensor_util

            found.setdefault(tag, []).extend(
                (e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
                for e in accumulator.Tensors(tag)
            )
    return {tag: sorted(points) for tag, points in found.items()}
