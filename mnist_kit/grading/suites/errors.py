"""Visible tests of assignment 5, finding the errors (after course/07-errors.ipynb).

The student's functions run on small grader-made inputs; the expected answers come from
numpy one-liners here. The `expect_*` helpers are shared with the hidden tests.
"""

from __future__ import annotations

import re

import numpy as np

from mnist_kit.grading.declare import Call, Fail, expect, graded


def short(values, limit: int = 8) -> str:
    """A list for a message: "[3, 7, 12, ...] (25 values)"."""
    flat = np.asarray(values).ravel().tolist()
    text = ", ".join(str(v) for v in flat[:limit])
    return f"[{text}{', ...' if len(flat) > limit else ''}]" + (
        f" ({len(flat)} values)" if len(flat) > limit else ""
    )


def make_outputs(n: int, seed: int, wrong: int, logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """`n` rows of outputs (softmax probabilities, or raw logits) and labels with `wrong` mistakes."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 3.0, size=(n, 10)).astype(np.float32)
    predicted = scores.argmax(axis=1)
    labels = predicted.copy()
    flip = rng.choice(n, size=wrong, replace=False)
    labels[flip] = (predicted[flip] + rng.integers(1, 10, size=wrong)) % 10
    if logits:
        return scores, labels.astype(np.int64)
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32), labels.astype(np.int64)


def expect_indices(result, outputs: np.ndarray, labels: np.ndarray, label: str) -> None:
    """`result` holds the indices of the misclassified rows, in increasing order."""
    expected = np.nonzero(outputs.argmax(axis=1) != labels)[0]
    expect(
        result is not None, f"{label} returned None; return the indices of the misclassified images"
    )
    if isinstance(result, tuple):
        raise Fail(
            f"{label} returned a tuple (np.nonzero returns one); return its first element: np.nonzero(...)[0]"
        )
    got = np.asarray(result)
    if got.dtype == bool and got.shape == labels.shape:
        raise Fail(
            f"{label} returned a True/False mask; return the indices where it is True: np.nonzero(mask)[0]"
        )
    expect(
        got.ndim <= 1,
        f"{label} returned an array shaped {got.shape}; return a 1-D array of indices: np.nonzero(...)[0]",
    )
    got = got.ravel()
    if len(expected) == 0:
        expect(
            len(got) == 0,
            f"{label} returned {short(got)} although every prediction is right; expected an empty array",
        )
        return
    if len(got) == len(expected) and not np.array_equal(got, expected):
        predicted = outputs.argmax(axis=1)
        if np.array_equal(got, predicted[expected]):
            raise Fail(
                f"{label} returned the predicted digits {short(got)}; return the indices (positions) of the misclassified images instead"
            )
        if np.array_equal(got, labels[expected]):
            raise Fail(
                f"{label} returned the true digits {short(got)}; return the indices (positions) of the misclassified images instead"
            )
        if np.array_equal(np.sort(got), expected):
            raise Fail(f"{label} returned the right indices but not in increasing order; sort them")
    expect(
        np.array_equal(got, expected), f"{label} returned {short(got)}; expected {short(expected)}"
    )


def expect_confusion(result, labels: np.ndarray, predicted: np.ndarray, label: str) -> None:
    """`result` is the 10x10 confusion matrix: rows are true digits, columns predicted digits."""
    expected = np.zeros((10, 10), dtype=np.int64)
    np.add.at(expected, (labels, predicted), 1)
    expect(
        result is not None and not isinstance(result, tuple),
        f"{label} should return one 10x10 array",
    )
    got = np.asarray(result)
    expect(
        got.shape == (10, 10),
        f"{label} returned shape {got.shape}; expected (10, 10), with a row and a column for every digit "
        "even when a digit is never predicted (start from np.zeros((10, 10), dtype=int))",
    )
    if np.array_equal(got, expected):
        return
    if np.array_equal(got, expected.T):
        raise Fail(
            f"{label}: rows and columns are swapped; rows are the true digits, columns the predicted ones"
        )
    true, pred = np.argwhere(got != expected)[0]
    raise Fail(
        f"{label}: entry [{true}, {pred}] is {got[true, pred]:g}; expected {expected[true, pred]} (true {true} predicted as {pred})"
    )


def reference_most_confused(matrix: np.ndarray, k: int) -> np.ndarray:
    """(true, predicted, count) for the k largest off-diagonal counts; ties go to the smaller digits."""
    cells = [
        (-int(matrix[t, p]), t, p)
        for t in range(10)
        for p in range(10)
        if t != p and matrix[t, p] > 0
    ]
    return np.array([(t, p, -c) for c, t, p in sorted(cells)[:k]], dtype=np.int64).reshape(-1, 3)


def expect_most_confused(
    result, matrix: np.ndarray, k: int, label: str, reveal: bool = True
) -> None:
    """`result` lists (true, predicted, count) for the k most frequent mistakes, most frequent first.

    Pairs with a count of 0 are not mistakes, so the list is shorter than k (even empty) when
    fewer than k pairs have a non-zero count. `reveal=False` (hidden tests) keeps the expected
    answer out of the message.
    """
    expected = reference_most_confused(matrix, k)
    expect(
        result is not None,
        f"{label} returned None; return a list of (true, predicted, count) tuples",
    )
    got = np.asarray(result)
    if got.size == 0:  # [] travels as an empty 1-D array
        got = got.reshape(0, 3)
    if got.ndim == 2 and got.shape[1] == 2:
        raise Fail(f"{label} returned pairs; return (true, predicted, count) triples")
    expect(
        got.ndim == 2 and got.shape[1] == 3,
        f"{label} returned shape {got.shape}; expected a list of (true, predicted, count)",
    )
    if np.any(got[:, 0] == got[:, 1]):
        raise Fail(
            f"{label} included a correct prediction (true == predicted); leave the diagonal out"
        )
    if np.any(got[:, 2] == 0):
        raise Fail(
            f"{label} included pairs with a count of 0; leave them out, even when that makes "
            "the list shorter than k"
        )
    expect(len(got) <= k, f"{label} returned {len(got)} tuples; return at most k={k}")
    if np.array_equal(got.astype(np.int64), expected):
        return
    order = "largest count first; on equal counts, smaller true digit first, then smaller predicted digit"
    raise Fail(
        f"{label} returned {got.tolist()}; expected {expected.tolist()} ({order})"
        if reveal
        else f"{label} returned {got.tolist()}, which are not the k largest non-zero mistakes "
        f"of the matrix ({order})"
    )


# Reading a gallery title. A digit counts as predicted or true when a word names it ("pred 3",
# "predicted: 3", "p=3", "guess 3"; "true 5", "label: 5", "actual 5", "t=5", "y=5"). A title
# that names only one of them gives the other to its first unnamed digit ("3 (true 5)"). Two
# unnamed digits ("3, 5", "3/5") are read predicted first, in the order of the notebook's
# example "pred 3, true 5". Percentages ("87%"), decimals ("0.87"), "#12" and an image's
# number ("image 7: 3 (true 5)", "idx 4", "no. 2") are not digits.
_PREDICTED_WORDS = r"pred[a-z]*|guess[a-z]*|model|output|y_?hat|y_?pred|p"
_TRUE_WORDS = r"true|truth|actual[a-z]*|label[a-z]*|target|real|correct|gt|y_?true|y|t"
_NAMED_DIGIT = re.compile(
    rf"(?<![a-z0-9_])(?:(?P<pred>{_PREDICTED_WORDS})|(?P<true>{_TRUE_WORDS}))"
    r"(?:[\s:=(\[]|\b(?:digit|class|label|is|was|as)\b)*(?P<digit>\d)(?![\d.%])"
)
_BARE_DIGIT = re.compile(r"(?<![\d.#])\d(?![\d.%])")
_IMAGE_NUMBER = re.compile(
    r"(?<![a-z])(?:image|img|index|idx|sample|example|picture|pic|no\.?|number|nr)\s*[#:=]?\s*\d+"
)


def read_title(text: str) -> tuple[int | None, int | None, bool]:
    """(predicted, true, named) as a gallery title states them; None where it does not say.

    `named` is False when both digits were read by position only (see the rule above).
    """
    text = _IMAGE_NUMBER.sub(" ", str(text).lower())
    said: dict[str, int] = {}
    for match in _NAMED_DIGIT.finditer(text):
        said.setdefault("pred" if match.group("pred") else "true", int(match.group("digit")))
        start, end = match.span()
        text = text[:start] + " " * (end - start) + text[end:]
    bare = [int(d) for d in _BARE_DIGIT.findall(text)]
    if not said:
        return (bare[0], bare[1], False) if len(bare) == 2 else (None, None, False)
    if bare and "pred" not in said:
        said["pred"] = bare[0]
    if bare and "true" not in said:
        said["true"] = bare[0]
    return said.get("pred"), said.get("true"), True


def expect_title(text: str, predicted: int, true: int, position: int) -> None:
    """The title of gallery image `position` names its predicted and its true digit, each as such."""
    said_pred, said_true, named = read_title(text)
    if (said_pred, said_true) == (predicted, true):
        return
    example = f"e.g. 'pred {predicted}, true {true}'"
    if (said_pred, said_true) == (true, predicted):
        raise Fail(
            f"image {position}'s title {text!r} has the predicted and true digits swapped: the "
            f"model predicted {predicted}, the label is {true}"
            + ("" if named else f" (unlabelled digits are read predicted first; {example})")
        )
    if said_pred is None or said_true is None:
        raise Fail(
            f"image {position}'s title {text!r} should name its predicted digit {predicted} and "
            f"true digit {true}, saying which is which, {example}"
        )
    raise Fail(
        f"image {position}'s title {text!r} reads as predicted {said_pred}, true {said_true}; "
        f"the model predicted {predicted} and the label is {true} ({example})"
    )


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28)).astype(np.uint8)


PROBABILITIES = Call(
    "find_misclassified",
    make_outputs(40, 1, 6, logits=False),
    label="find_misclassified(probabilities, labels)",
)
LOGITS = Call(
    "find_misclassified",
    make_outputs(40, 2, 5, logits=True),
    label="find_misclassified(logits, labels)",
)
_CONFUSION_INPUT = (
    np.random.default_rng(3).integers(0, 10, 300),
    np.random.default_rng(4).integers(0, 10, 300),
)
CONFUSION = Call("confusion_matrix", _CONFUSION_INPUT, label="confusion_matrix(labels, predicted)")
_MATRIX = np.diag(np.full(10, 90)) + np.arange(100).reshape(10, 10) % 7
_MATRIX[4, 9], _MATRIX[7, 2], _MATRIX[3, 5] = 30, 20, 25
MOST_CONFUSED = Call("most_confused", (_MATRIX,), {"k": 3}, label="most_confused(matrix, k=3)")
MOST_CONFUSED_DEFAULT = Call("most_confused", (_MATRIX,), label="most_confused(matrix)")
_GALLERY_OUTPUTS, _GALLERY_LABELS = make_outputs(30, 5, 5, logits=False)
GALLERY = Call(
    "show_misclassified",
    (_images(30, 6), _GALLERY_OUTPUTS, _GALLERY_LABELS),
    {"max_images": 12},
    label="show_misclassified(images, probabilities, labels, max_images=12)",
)


@graded("q5_misclassified", 1)
def test_misclassified_from_probabilities(submission):
    """Does find_misclassified return the indices of the wrong predictions, given probabilities?"""
    expect_indices(submission.call(PROBABILITIES), *PROBABILITIES.args, PROBABILITIES.label)


@graded("q5_misclassified", 1)
def test_misclassified_from_logits(submission):
    """Does it work on raw logits (negative numbers, rows not summing to 1) too?"""
    expect_indices(submission.call(LOGITS), *LOGITS.args, LOGITS.label)


@graded("q5_confusion", 2)
def test_confusion_matrix(submission):
    """Is the confusion matrix 10x10, with true digits as rows and predicted digits as columns?"""
    expect_confusion(submission.call(CONFUSION), *CONFUSION.args, CONFUSION.label)


@graded("q5_most_confused", 1)
def test_most_confused(submission):
    """Does most_confused list the k largest mistakes as (true, predicted, count), largest first?"""
    expect_most_confused(submission.call(MOST_CONFUSED), _MATRIX, 3, MOST_CONFUSED.label)
    expect_most_confused(
        submission.call(MOST_CONFUSED_DEFAULT),
        _MATRIX,
        3,
        MOST_CONFUSED_DEFAULT.label + " (k=3 by default)",
    )


def expect_gallery(figure, probe: Call, max_images: int) -> None:
    """The figure shows the first `max_images` misclassified images, in order, each titled."""
    images, outputs, labels = probe.args
    predicted = outputs.argmax(axis=1)
    wrong = np.nonzero(predicted != labels)[0][:max_images]
    expect(
        figure is not None and hasattr(figure, "texts"),
        f"{probe.label} drew no figure; draw the digits with matplotlib (plt.subplots) and return the figure",
    )
    expect(
        figure.returned,
        f"{probe.label} drew the figure but did not return it: end with `return figure`",
    )
    expect(
        len(figure.texts) == len(wrong),
        f"{probe.label} shows {len(figure.texts)} images; expected {len(wrong)}: the first "
        f"max_images={max_images} misclassified digits (or all of them, if fewer)",
    )
    for position, (index, text) in enumerate(zip(wrong, figure.texts, strict=False), start=1):
        expect_title(text, int(predicted[index]), int(labels[index]), position)
    if figure.images is not None:
        shown = figure.images.reshape(len(wrong), -1)
        wanted = images[wrong].reshape(len(wrong), -1).astype(np.float32)
        for position, (a, b) in enumerate(zip(shown, wanted, strict=False), start=1):
            expect(
                np.corrcoef(a, b)[0, 1] > 0.99,
                f"image {position} is not misclassified image {wrong[position - 1]}; show them in order",
            )


_MANY_OUTPUTS, _MANY_LABELS = make_outputs(40, 7, 15, logits=False)
GALLERY_DEFAULT = Call(
    "show_misclassified",
    (_images(40, 8), _MANY_OUTPUTS, _MANY_LABELS),
    label="show_misclassified(images, probabilities, labels) with 15 mistakes",
)


@graded("q5_gallery", 1)
def test_gallery(submission):
    """Does the gallery show the first misclassified digits (12 by default), titled predicted then true?

    Each title must say which digit is which: see `read_title` for the forms accepted.
    """
    expect_gallery(submission.call(GALLERY), GALLERY, 12)
    expect_gallery(submission.call(GALLERY_DEFAULT), GALLERY_DEFAULT, 12)
