"""Digits and what the network said about them: sample grids, probability bars, prediction grids."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mnist_kit.analysis import as_labels, as_probabilities
from mnist_kit.plots._common import (
    OTHER,
    RIGHT,
    WRONG,
    as_image,
    as_images,
    grid_shape,
    new_figure,
    show_digit,
)

__all__ = ["plot_samples", "plot_prediction", "plot_predictions"]


def _check_count(n: int, available: int, what: str) -> int:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if available == 0:
        raise ValueError(f"no {what} to plot: the array is empty")
    return min(n, available)


def plot_samples(
    x: Any, y: Any = None, n: int = 10, cols: int = 10, predictions: Any = None
) -> Figure:
    """A grid of the first n digits titled with their labels (and predictions, when given).

    Args:
        x: images, `(N, 28, 28)` or with a channel axis, uint8 or scaled floats.
        y: the true labels, or None for untitled digits.
        predictions: predicted labels `(N,)` or probabilities/logits `(N, 10)`; each title
            then reads "pred P / true T", blue when right and red when wrong.
    """
    images = as_images(x)
    n = _check_count(n, len(images), "images")
    labels = None if y is None else as_labels(y)
    guesses = None if predictions is None else as_labels(predictions)
    rows, cols = grid_shape(n, cols)
    fig = new_figure(1.1 * cols, 1.25 * rows + 0.2)
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        show_digit(ax, images[i])
        if guesses is not None:
            truth = "" if labels is None else f"\ntrue {labels[i]}"
            right = labels is None or guesses[i] == labels[i]
            ax.set_title(f"pred {guesses[i]}{truth}", color=RIGHT if right else WRONG, fontsize=9)
        elif labels is not None:
            ax.set_title(str(labels[i]), fontsize=10)
    return fig


def draw_prediction(ax_image, ax_bars, image: Any, probs: Any, true_label: int | None) -> bool:
    """Draw one digit and its ten probability bars on two axes; return True when the prediction is right."""
    p = as_probabilities(np.asarray(probs, dtype=np.float64).reshape(1, -1))[0]
    predicted = int(np.argmax(p))
    right = true_label is None or predicted == int(true_label)
    colours = [OTHER] * len(p)
    if true_label is not None:
        colours[int(true_label)] = RIGHT
    colours[predicted] = RIGHT if right else WRONG
    show_digit(ax_image, as_image(image))
    ax_bars.bar(range(len(p)), p, color=colours)
    ax_bars.set_xticks(range(len(p)))
    ax_bars.set_ylim(0, 1)
    ax_bars.set_yticks([0, 0.5, 1])
    ax_bars.tick_params(labelsize=8)
    ax_bars.spines[["top", "right"]].set_visible(False)
    return right


def plot_prediction(image: Any, probs: Any, true_label: int | None = None) -> Figure:
    """One digit next to a bar chart of its ten class probabilities.

    The predicted bar is blue when right and red when wrong; the true class's bar is
    always blue, so a mistake shows one red and one blue bar. `probs` may be logits.
    """
    p = as_probabilities(np.asarray(probs, dtype=np.float64).reshape(1, -1))[0]
    predicted = int(np.argmax(p))
    fig = new_figure(6.5, 2.8)
    ax_image, ax_bars = fig.subplots(1, 2, width_ratios=[1, 1.8])
    right = draw_prediction(ax_image, ax_bars, image, p, true_label)
    colour = RIGHT if right else WRONG
    ax_image.set_title("input" if true_label is None else f"true label {int(true_label)}")
    ax_bars.set_title(f"predicted {predicted} ({p[predicted]:.1%})", color=colour)
    ax_bars.set_xlabel("class")
    ax_bars.set_ylabel("probability")
    if true_label is not None and not right:
        handles = [Patch(color=WRONG, label="predicted (wrong)"), Patch(color=RIGHT, label="true")]
        ax_bars.legend(handles=handles, fontsize=8, frameon=False, loc="upper right")
    return fig


def plot_predictions(x: Any, probs: Any, y: Any, n: int = 12, cols: int = 4) -> Figure:
    """A grid of (digit, probability bars) pairs for the first n images.

    Each digit's title reads "pred P (confidence) / true T": blue when right, red when wrong.
    """
    images = as_images(x)
    p = as_probabilities(probs)
    labels = as_labels(y)
    if not len(images) == len(p) == len(labels):
        raise ValueError(
            f"x, probs and y must describe the same images; got {len(images)}, {len(p)} and "
            f"{len(labels)} rows"
        )
    n = _check_count(n, len(images), "images")
    rows, cols = grid_shape(n, cols)
    fig = new_figure(3.3 * cols, 1.75 * rows + 0.3)
    grid = fig.add_gridspec(rows, 2 * cols, width_ratios=[1, 1.4] * cols)
    wrong = 0
    for i in range(n):
        r, c = divmod(i, cols)
        ax_image = fig.add_subplot(grid[r, 2 * c])
        ax_bars = fig.add_subplot(grid[r, 2 * c + 1])
        right = draw_prediction(ax_image, ax_bars, images[i], p[i], labels[i])
        wrong += not right
        guess = int(np.argmax(p[i]))
        ax_image.set_title(
            f"pred {guess} ({p[i, guess]:.0%})\ntrue {labels[i]}",
            color=RIGHT if right else WRONG,
            fontsize=9,
        )
        if i + cols < n:  # another pair sits below: its class numbers are enough
            ax_bars.set_xticklabels([])
    fig.suptitle(f"{n - wrong} of {n} right (blue right, red wrong)")
    return fig
