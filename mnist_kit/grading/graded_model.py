"""A model the grader loaded itself, and what it measures on it with the real MNIST data.

`Submission.model(name)` (submission.py) loads the file the kernel saved and hands the tests
a `GradedModel`: its layers, parameter count, predictions, loss and accuracies. Counts the
kernel recorded (optimizer steps) pass through `trusted_count`: kernel output is untrusted.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from mnist_kit.grading.architecture import Layer
from mnist_kit.grading.model_layers import describe_keras, describe_program

__all__ = ["GradedModel", "mnist_test_set", "mnist_train_sample", "trusted_count"]


def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images as float32 in [0, 1] and their labels (loaded once)."""
    global _TEST_SET
    if _TEST_SET is None:
        from mnist_kit.data import load_mnist, scale_pixels

        _, (x_test, y_test) = load_mnist()
        _TEST_SET = (scale_pixels(x_test), y_test.astype(np.int64))
    return _TEST_SET


_TEST_SET: tuple[np.ndarray, np.ndarray] | None = None
_TRAIN_SAMPLE: tuple[np.ndarray, np.ndarray] | None = None
TRAIN_SAMPLE_SIZE = 5000


def mnist_train_sample() -> tuple[np.ndarray, np.ndarray]:
    """A fixed sample of 5,000 MNIST training images (scaled) and labels, loaded once."""
    global _TRAIN_SAMPLE
    if _TRAIN_SAMPLE is None:
        from mnist_kit.data import load_mnist, scale_pixels

        (x_train, y_train), _ = load_mnist()
        pick = np.random.default_rng(0).choice(len(x_train), TRAIN_SAMPLE_SIZE, replace=False)
        _TRAIN_SAMPLE = (scale_pixels(x_train[pick]), y_train[pick].astype(np.int64))
    return _TRAIN_SAMPLE


def trusted_count(value: Any) -> int | None:
    """`value` if it is a count (an int >= 0, not a bool), else None: kernel output is untrusted."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class GradedModel:
    """A model the grader loaded itself: its layers, parameter count and predictions."""

    def __init__(
        self, name: str, framework: str, obj: Any, entry: dict, measurements: dict | None = None
    ):
        self.name, self.framework, self.obj, self.entry = name, framework, obj, entry
        self.measurements = measurements if measurements is not None else {}

    @cached_property
    def layers(self) -> list[Layer]:
        return describe_keras(self.obj) if self.framework == "keras" else describe_program(self.obj)

    @cached_property
    def params(self) -> int:
        """Trainable parameters (Keras' non-trainable BatchNorm statistics are not counted)."""
        if self.framework == "keras":
            return int(sum(int(np.prod(w.shape)) for w in self.obj.trainable_weights))
        state = self.obj.state_dict
        return int(sum(state[name].numel() for name in self.obj.graph_signature.parameters))

    @cached_property
    def compile_config(self) -> dict | None:
        """Keras only: the optimizer, loss and metrics it was compiled with (None if not compiled)."""
        if self.framework != "keras":
            return None
        config = self.obj.get_compile_config()
        return config or None

    def _torch_module(self):
        return self.obj.module()

    def predict(self, images: np.ndarray, state_dict: dict | None = None) -> np.ndarray:
        """Outputs (probabilities or logits) for float images shaped (N, 28, 28)."""
        if self.framework == "keras":
            shape = tuple(self.obj.inputs[0].shape)
            x = images.reshape((len(images), *[d or 1 for d in shape[1:]]))
            return np.asarray(self.obj.predict(x, batch_size=1000, verbose=0))
        import torch

        module = self._torch_module()
        if state_dict is not None:
            module.load_state_dict(state_dict)
        batch = self.entry.get("batch") or 1000
        shape = tuple(self.entry["input_shape"])
        outputs = []
        with torch.no_grad():
            for start in range(0, len(images), batch):
                chunk = images[start : start + batch].reshape((-1, *shape))
                size = len(chunk)
                if self.entry.get("batch") and size < batch:  # a fixed-batch export: pad, then trim
                    chunk = np.concatenate([chunk, np.zeros((batch - size, *shape), np.float32)])
                outputs.append(module(torch.from_numpy(np.ascontiguousarray(chunk))).numpy()[:size])
        return np.concatenate(outputs)

    def loss(self, images: np.ndarray, labels: np.ndarray, state_dict: dict | None = None) -> float:
        """Mean cross-entropy of the model's outputs (logits, or probabilities if they sum to 1)."""
        outputs = self.predict(images, state_dict).astype(np.float64)
        if np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
            log_probs = np.log(np.clip(outputs, 1e-12, 1.0))
        else:
            shifted = outputs - outputs.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_probs[np.arange(len(labels)), labels].mean())

    def _count(self, key: str) -> int | None:
        return trusted_count(self.entry.get(key))

    @property
    def steps(self) -> int | None:
        """Optimizer steps the model took, as the kernel counted them (a hint for messages only)."""
        return self._count("steps")

    @property
    def steps_per_epoch(self) -> int | None:
        """Keras only: batches per epoch in the model's last fit, observed in the kernel.

        test_history compares it with the recipe: forging it gains that check only.
        """
        return self._count("steps_per_epoch")

    @cached_property
    def test_accuracy(self) -> float:
        """Accuracy on the 10,000 MNIST test images, measured by the grader."""
        images, labels = mnist_test_set()
        accuracy = float((self.predict(images).argmax(axis=1) == labels).mean())
        self.measurements[f"{self.name}.test_accuracy"] = accuracy
        self.measurements[f"{self.name}.params"] = self.params
        return accuracy

    @cached_property
    def validation_loss(self) -> float:
        """Loss on the notebooks' validation split (20% of the training set, seed 42), by the grader."""
        from mnist_kit.data import load_mnist, scale_pixels, train_val_split

        (x_train, y_train), _ = load_mnist()
        _, (x_val, y_val) = train_val_split(x_train, y_train, seed=42)
        return self.loss(scale_pixels(x_val), y_val.astype(np.int64))

    @cached_property
    def train_accuracy(self) -> float:
        """Accuracy on a fixed sample of 5,000 MNIST training images, measured by the grader.

        A model that learned does about as well here as on the test set; one that memorised
        the test labels does not.
        """
        images, labels = mnist_train_sample()
        accuracy = float((self.predict(images).argmax(axis=1) == labels).mean())
        self.measurements[f"{self.name}.train_accuracy"] = accuracy
        return accuracy
