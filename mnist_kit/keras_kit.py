"""Keras side of the kit: reference models and `fit`/`evaluate`/`predict` with the kit's hooks.

Introduced in course/03-first-model.ipynb. Same names as `mnist_kit.torch_kit`; `fit` is
Keras' own `model.fit` plus the kit's callbacks, stop flag and History, with opt-in fast
settings (`steps_per_execution`). Importing this module imports TensorFlow (~5 s).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mnist_kit import config
from mnist_kit.config import at_least_one, check_choice
from mnist_kit.data import add_channel_axis, scale_pixels
from mnist_kit.device import configure_tensorflow, import_tensorflow
from mnist_kit.history import HISTORY_KEYS, Callback, History, StopFlag

import_tensorflow()  # before keras: silences TensorFlow's start-up lines, sets GPU memory growth
import keras  # noqa: E402

__all__ = ["mlp", "cnn", "fit", "evaluate", "predict", "count_params", "device_name", "release"]

OPTIMIZERS = {name: getattr(keras.optimizers, cls) for name, cls in config.OPTIMIZERS.items()}


def mlp(hidden: Sequence[int] = (128, 64), dropout: float = 0.0) -> keras.Sequential:
    """Input(28, 28), Flatten, Dense + ReLU (+ Dropout) per hidden size, Dense(10, softmax).

    The default 784-128-64-10 has 109,386 parameters.
    """
    layers: list = [keras.Input(shape=(28, 28)), keras.layers.Flatten()]
    for size in hidden:
        layers.append(keras.layers.Dense(size, activation="relu"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers, name="mlp")


def cnn(
    channels: Sequence[int] = (32, 64), dense: int = 128, dropout: float = 0.5
) -> keras.Sequential:
    """Conv2D 3x3 + ReLU, MaxPooling, twice; Flatten, Dense(dense, relu), Dropout, Dense(10, softmax).

    The default (32, 64) channels and 128 dense units give 225,034 parameters.
    """
    c1, c2 = channels
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(c1, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(c2, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(dense, activation="relu"),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )


def count_params(model: keras.Model) -> int:
    """Number of trainable parameters."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def device_name(model: keras.Model | None = None) -> str:
    """ "GPU" or "CPU": where `model`'s weights live, or (no model) where TensorFlow would put one."""
    if model is not None and model.weights:
        return "GPU" if "GPU" in model.weights[0].value.device.upper() else "CPU"
    return "GPU" if configure_tensorflow() else "CPU"  # the GPUs found when TensorFlow was imported


def _prepare(model: keras.Model, x) -> np.ndarray:
    """Scale to [0, 1] and add the channel axis when the model's input has one."""
    x = scale_pixels(x)
    try:
        want = len(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):  # a model not built yet
        want = x.ndim
    if want == 4 and x.ndim == 3:
        x = add_channel_axis(x)
    return x


class _KitCallbacks(keras.callbacks.Callback):
    """Forwards Keras' hooks to the kit's callbacks and honours a StopFlag after each batch."""

    def __init__(
        self, callbacks: Sequence[Callback], stop: StopFlag | None, epochs: int, steps: int
    ):
        super().__init__()
        self.kit_callbacks, self.stop, self.epochs, self.steps = (
            list(callbacks),
            stop,
            epochs,
            steps,
        )
        self.stopped = False
        self.partial: dict | None = None

    def on_train_begin(self, logs=None):
        for cb in self.kit_callbacks:
            cb.on_train_begin({"epochs": self.epochs, "steps": self.steps})

    def on_epoch_begin(self, epoch, logs=None):
        self.partial = None
        for cb in self.kit_callbacks:
            cb.on_epoch_begin(epoch)

    def on_train_batch_end(self, batch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if k in ("loss", "accuracy")}
        self.partial = logs
        for cb in self.kit_callbacks:
            cb.on_batch_end(batch, logs)
        if self.stop is not None and self.stop.requested:
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.partial = None
        logs = {k: float(v) for k, v in (logs or {}).items() if k in HISTORY_KEYS}
        for cb in self.kit_callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        for cb in self.kit_callbacks:
            cb.on_train_end({"stopped": self.stopped})


def compile_model(
    model: keras.Model,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    lr: float = 1e-3,
    steps_per_execution: int = 1,
) -> keras.Model:
    """Compile with the tutorial recipe: the optimizer, sparse categorical cross-entropy, accuracy."""
    if isinstance(optimizer, str):
        optimizer = OPTIMIZERS[check_choice("optimizer", optimizer.lower(), OPTIMIZERS)](
            learning_rate=lr
        )
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def fit(
    model: keras.Model,
    x,
    y,
    *,
    epochs: int = 5,
    batch_size: int = 32,
    validation_data: tuple | None = None,
    lr: float = 1e-3,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    callbacks: Sequence = (),
    stop: StopFlag | None = None,
    verbose: int = 1,
    steps_per_execution: int = 1,
    compile: bool = True,
    tensorboard: str | None = None,
) -> History:
    # Long for its public keywords and their docs, and the partial epoch a Stop leaves.
    """Compile (unless `compile=False`) and train with Keras' `model.fit`; return the kit's History.

    Args:
        x, y: images (N, 28, 28) uint8 or float in [0, 1], and labels 0-9.
        callbacks: the kit's `Callback`s and/or Keras callbacks (e.g. EarlyStopping).
        stop: a `StopFlag`; Keras stops after the batch during which it was requested.
        steps_per_execution: run this many batches per call into TensorFlow: much faster for
            small models, but callbacks and the stop flag are then checked only every that many batches.
        compile: set False to keep a compile you did yourself.
        tensorboard: a folder ("runs/mlp") to log each epoch's metrics for TensorBoard, with
            the same tags as the PyTorch fit (`mnist_kit.tensorboard_log`).

    Raises:
        ValueError: mismatched lengths, an unknown optimizer, or bad epochs/batch size.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels; they must match")
    at_least_one("epochs", epochs)
    at_least_one("batch_size", batch_size)
    if compile or not model.compiled:
        compile_model(model, optimizer, lr, steps_per_execution)
    x = _prepare(model, x)
    y = np.asarray(y)
    if validation_data is not None:
        validation_data = (_prepare(model, validation_data[0]), np.asarray(validation_data[1]))
    steps = (len(x) + batch_size - 1) // batch_size
    kit_cbs = [cb for cb in callbacks if isinstance(cb, Callback)]
    if tensorboard is not None:
        from mnist_kit.tensorboard_log import TensorBoardLog

        rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        kit_cbs.append(TensorBoardLog(tensorboard, "keras", rate))
    keras_cbs = [cb for cb in callbacks if not isinstance(cb, Callback)]
    bridge = _KitCallbacks(kit_cbs, stop, epochs, steps)
    result = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        callbacks=[bridge, *keras_cbs],
        verbose=verbose,
    )
    history = History.from_keras(
        result, {"epochs": epochs, "steps": steps, "batch_size": batch_size}
    )
    history.stopped_early = bridge.stopped
    if bridge.stopped and bridge.partial is not None:
        # Keras drops the epoch it stopped in; record what it had measured so far.
        logs = dict(bridge.partial)
        if validation_data is not None:
            logs["val_loss"], logs["val_accuracy"] = evaluate(model, *validation_data)
        history.append(logs)
    return history


def evaluate(model: keras.Model, x, y) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on (x, y), computed here from its predictions.

    Works whatever the model was compiled with (or if it never was).
    """
    probs = predict(model, x)
    y = np.asarray(y).astype(np.int64)
    picked = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(-np.log(picked).mean()), float((probs.argmax(axis=1) == y).mean())


def predict(model: keras.Model, x) -> np.ndarray:
    """Class probabilities (N, 10) as a numpy array."""
    return np.asarray(model.predict(_prepare(model, x), batch_size=1024, verbose=0))


def release(model: keras.Model | None = None) -> None:
    """Clear Keras' global state and collect garbage so repeated trainings don't pile up memory."""
    import gc

    del model
    keras.backend.clear_session(free_memory=True)
    gc.collect()
