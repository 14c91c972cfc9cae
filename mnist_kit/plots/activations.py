"""The activation functions of the lessons, drawn from their numpy definitions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from mnist_kit.analysis import softmax
from mnist_kit.plots._common import new_figure

__all__ = ["plot_activations", "relu", "sigmoid", "tanh", "softmax"]


def relu(z: np.ndarray) -> np.ndarray:
    """max(0, z): passes positives, zeroes negatives."""
    return np.maximum(0.0, z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), squashing any number into (0, 1)."""
    # The same value as 1 / (1 + e^-z), written so that it never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def tanh(z: np.ndarray) -> np.ndarray:
    """The hyperbolic tangent, squashing any number into (-1, 1)."""
    return np.tanh(z)


def plot_activations(
    logits: Sequence[float] = (2.0, 1.0, 0.1, -1.0, 3.0), x_range: tuple[float, float] = (-5.0, 5.0)
) -> Figure:
    """ReLU, sigmoid and tanh as curves, and softmax applied to an example logit vector."""
    z = np.linspace(*x_range, 401)
    fig = new_figure(13, 3.3)
    axes = fig.subplots(1, 4)
    for ax, (name, f, formula) in zip(
        axes,
        (
            ("ReLU", relu, "max(0, z)"),
            ("sigmoid", sigmoid, "1 / (1 + e^(−z))"),
            ("tanh", tanh, "tanh(z)"),
        ),
        strict=False,
    ):
        ax.plot(z, f(z), lw=2)
        ax.axhline(0, color="gray", lw=0.6)
        ax.axvline(0, color="gray", lw=0.6)
        ax.set_title(f"{name}: {formula}")
        ax.set_xlabel("z")
        ax.grid(alpha=0.3)
    logits = np.asarray(logits, dtype=np.float64)
    probs = softmax(logits)
    ax = axes[3]
    positions = np.arange(len(logits))
    ax.bar(positions - 0.2, logits, width=0.4, label="logit z", color="tab:gray")
    bars = ax.bar(positions + 0.2, probs, width=0.4, label="softmax(z)", color="tab:blue")
    ax.bar_label(bars, labels=[f"{p:.2f}" for p in probs], fontsize=7)
    ax.axhline(0, color="gray", lw=0.6)
    ax.set_xticks(positions)
    ax.set_xlabel("class")
    ax.set_title("softmax: e^z / Σ e^z (sums to 1)")
    ax.legend(fontsize=8)
    return fig
