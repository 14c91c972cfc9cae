"""Where the network goes wrong: a gallery of misclassified digits and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from mnist_kit.analysis import (
    as_labels,
    as_probabilities,
    confusion_matrix,
    find_misclassified,
    most_confused_pairs,
)
from mnist_kit.plots._common import (
    WRONG,
    as_images,
    grid_shape,
    message_figure,
    new_figure,
    show_digit,
)

__all__ = ["plot_misclassified", "plot_confusion_matrix", "SORTS"]

SORTS = ("confidence", "index")


def plot_misclassified(
    x: Any, probs: Any, y: Any, n: int = 25, sort: str = "confidence", cols: int = 5
) -> Figure:
    """A gallery of misclassified digits, each titled with predicted label, confidence and true label.

    Args:
        probs: `(N, 10)` probabilities or logits for the images in x.
        sort: "confidence" shows the most confident mistakes first; "index" keeps dataset order.

    Returns a figure holding only a message when every prediction is right.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}; got {sort!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    images, p, labels = as_images(x), as_probabilities(probs), as_labels(y)
    if not len(images) == len(p) == len(labels):
        raise ValueError(
            f"x, probs and y must describe the same images; got {len(images)}, {len(p)} and "
            f"{len(labels)} rows"
        )
    wrong = find_misclassified(p, labels)
    if len(wrong) == 0:
        return message_figure(
            f"No misclassified images: all {len(labels):,} predictions are correct.",
            title="Misclassified digits",
        )
    guesses = np.argmax(p, axis=1)
    confidence = p[np.arange(len(p)), guesses]
    if sort == "confidence":
        # Stable sort keeps dataset order among equal confidences.
        wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    shown = wrong[:n]
    rows, cols = grid_shape(len(shown), cols)
    fig = new_figure(1.7 * cols, 1.95 * rows + 0.4)
    for k, i in enumerate(shown):
        ax = fig.add_subplot(rows, cols, k + 1)
        show_digit(ax, images[i])
        ax.set_title(
            f"pred {guesses[i]} ({confidence[i]:.0%})\ntrue {labels[i]}  #{i}",
            color=WRONG,
            fontsize=9,
        )
    order = "most confident first" if sort == "confidence" else "in dataset order"
    fig.suptitle(
        f"{len(wrong)} of {len(labels):,} misclassified ({len(wrong) / len(labels):.1%}); "
        f"showing {len(shown)}, {order}"
    )
    return fig


def plot_confusion_matrix(
    y_true: Any, y_pred: Any, normalize: bool = False, k: int = 5, n_classes: int = 10
) -> Figure:
    """The confusion matrix as a heat map, with the k most-confused pairs outlined and listed.

    Args:
        y_true: true labels.
        y_pred: predicted labels, or `(N, 10)` probabilities/logits (argmax is taken).
        normalize: show each row as fractions of that true class (row sums 1) instead of counts.
        k: how many of the most-confused (true, predicted) pairs to call out.
    """
    counts = confusion_matrix(y_true, y_pred, n_classes=n_classes)
    per_class = counts.sum(axis=1, keepdims=True)
    shown = counts / np.maximum(per_class, 1) if normalize else counts
    total = int(counts.sum())
    accuracy = np.trace(counts) / max(total, 1)
    pairs = most_confused_pairs(counts, k=k)

    fig = new_figure(9.5, 6.2)
    ax, ax_list = fig.subplots(1, 2, width_ratios=[2.6, 1])
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=shown.max() or 1)
    ax.set_xticks(range(n_classes))
    ax.set_yticks(range(n_classes))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    kind = "fraction of each true class" if normalize else "counts"
    ax.set_title(f"Confusion matrix ({kind}): accuracy {accuracy:.2%} on {total:,} images")
    threshold = 0.5 * (shown.max() or 1)
    for t in range(n_classes):
        for p in range(n_classes):
            if counts[t, p] == 0:
                continue
            text = f"{shown[t, p]:.2f}" if normalize else str(counts[t, p])
            colour = "white" if shown[t, p] > threshold else "black"
            ax.text(p, t, text, ha="center", va="center", fontsize=8, color=colour)
    for t, p, _ in pairs:
        ax.add_patch(Rectangle((p - 0.5, t - 0.5), 1, 1, fill=False, edgecolor=WRONG, lw=2))

    ax_list.axis("off")
    ax_list.set_title(f"Most confused (top {len(pairs)})")
    lines = [
        f"true {t} → pred {p}: {count:,}  ({count / max(per_class[t, 0], 1):.1%} of {t}s)"
        for t, p, count in pairs
    ] or ["no mistakes at all"]
    ax_list.text(
        0.0,
        0.97,
        "\n".join(lines),
        va="top",
        ha="left",
        fontsize=11,
        linespacing=1.8,
        transform=ax_list.transAxes,
        color=WRONG if pairs else "black",
    )
    return fig
