"""What a classifier got wrong: misclassified images, confusion matrices, most-confused pairs.

Numpy only, so it works on the output of either framework's `predict` (probabilities)
or on a PyTorch model's raw logits; used by `mnist_kit.plots`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "softmax",
    "as_probabilities",
    "predicted_labels",
    "as_labels",
    "find_misclassified",
    "misclassified",
    "confusion_matrix",
    "most_confused_pairs",
]


def softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """Turn scores into probabilities that sum to 1 along `axis` (shifted by the max, so it never overflows)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def _scores(probs_or_logits: Any) -> np.ndarray:
    scores = np.asarray(probs_or_logits, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(
            f"expected one row of class scores per image, shape (N, classes); got shape {scores.shape}. "
            "Pass the output of predict(model, x) or the model's logits."
        )
    return scores


def as_probabilities(probs_or_logits: Any) -> np.ndarray:
    """Return rows of class probabilities, applying softmax when the rows are logits.

    Rows count as probabilities already when every value lies in [0, 1] and each
    row sums to 1 (within 1e-3); anything else is treated as logits.
    """
    scores = _scores(probs_or_logits)
    in_range = scores.size == 0 or (scores.min() >= 0.0 and scores.max() <= 1.0)
    if in_range and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return scores
    return softmax(scores, axis=1)


def predicted_labels(probs_or_logits: Any) -> np.ndarray:
    """The predicted class of each row (the first of tied top scores, like `np.argmax`)."""
    return np.argmax(_scores(probs_or_logits), axis=1)


def as_labels(y: Any) -> np.ndarray:
    """Integer labels from labels, one-hot rows, or per-class scores (argmax of each row)."""
    y = np.asarray(y)
    if y.ndim == 2:
        return np.argmax(y, axis=1)
    if y.ndim != 1:
        raise ValueError(f"expected labels of shape (N,) or (N, classes), got shape {y.shape}")
    if y.size and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError("labels must be whole numbers (class indices such as 0..9)")
    return y.astype(np.int64)


def find_misclassified(probs_or_logits: Any, y_true: Any) -> np.ndarray:
    """Indices (ascending) of the images whose predicted class differs from the true label.

    Args:
        probs_or_logits: `(N, classes)` probabilities or logits; the argmax is the prediction,
            so both give the same indices. Ties go to the lowest class, like `np.argmax`.
        y_true: `(N,)` integer labels or `(N, classes)` one-hot rows.

    Raises:
        ValueError: the two disagree on N, or the scores are not a 2-D array.
    """
    predicted = predicted_labels(probs_or_logits)
    truth = as_labels(y_true)
    if len(predicted) != len(truth):
        raise ValueError(
            f"{len(predicted)} rows of predictions but {len(truth)} labels; pass the labels of the "
            "same images you predicted"
        )
    return np.flatnonzero(predicted != truth)


misclassified = find_misclassified


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int = 10) -> np.ndarray:
    """Count matrix `cm` where `cm[t, p]` is how many images of class t were predicted as p.

    Args:
        y_true: `(N,)` integer labels (or one-hot rows).
        y_pred: `(N,)` predicted labels, or `(N, classes)` probabilities/logits (argmax is taken).
        n_classes: size of the square matrix.

    Raises:
        ValueError: different lengths, or a label outside 0..n_classes-1.
    """
    truth, pred = as_labels(y_true), as_labels(y_pred)
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} true labels but {len(pred)} predictions; they must match")
    for name, labels in (("y_true", truth), ("y_pred", pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(
                f"{name} holds labels from {labels.min()} to {labels.max()}, outside 0..{n_classes - 1};"
                " pass n_classes= if there are more classes"
            )
    flat = np.bincount(truth * n_classes + pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def most_confused_pairs(cm: Any, k: int = 5) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal cells as `(true, predicted, count)`, largest first.

    Cells with a count of 0 are left out; equal counts are ordered by (true, predicted).
    A normalised (float) matrix works too; its counts are then fractions.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"expected a square confusion matrix, got shape {cm.shape}")
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    rows, cols = np.nonzero(~np.eye(len(cm), dtype=bool) & (cm > 0))
    counts = cm[rows, cols]
    # lexsort's last key is the primary one: count descending, then true, then predicted.
    order = np.lexsort((cols, rows, -counts))[:k]
    return [(int(rows[i]), int(cols[i]), counts[i].item()) for i in order]
