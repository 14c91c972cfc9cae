"""Assignment 5, finding the errors: the visible tests shipped with the kit, plus hidden edge cases."""

import numpy as np

from mnist_kit.grading.declare import Call, graded
from mnist_kit.grading.suites.errors import *  # noqa: F403 - the visible tests and their probes
from mnist_kit.grading.suites.errors import (
    expect_confusion,
    expect_indices,
    expect_most_confused,
    make_outputs,
)

_CORRECT_OUTPUTS, _ = make_outputs(25, 21, 0, logits=False)
ALL_CORRECT = Call(
    "find_misclassified",
    (_CORRECT_OUTPUTS, _CORRECT_OUTPUTS.argmax(axis=1)),
    label="find_misclassified(probabilities, labels) with every prediction right",
)

# Rows whose top score is shared: the prediction is the smaller digit, as np.argmax decides.
_TIES = np.full((6, 10), 0.02, dtype=np.float32)
_TIES[:, 3] = _TIES[:, 5] = 0.42
_TIE_LABELS = np.array([3, 5, 3, 5, 0, 3])
TIES = Call(
    "find_misclassified",
    (_TIES, _TIE_LABELS),
    label="find_misclassified(outputs with tied top scores, labels)",
)

_NEVER_LABELS = np.random.default_rng(22).integers(0, 10, 120)
_NEVER_PREDICTED = np.where(_NEVER_LABELS == 9, 4, _NEVER_LABELS)  # 9 is never predicted
_NEVER_PREDICTED[::7] = (_NEVER_PREDICTED[::7] + 1) % 9
NEVER_PREDICTED = Call(
    "confusion_matrix",
    (_NEVER_LABELS, _NEVER_PREDICTED),
    label="confusion_matrix(labels, predicted) where 9 is never predicted",
)

_TIED_MATRIX = np.diag(np.full(10, 50))
_TIED_MATRIX[6, 0] = _TIED_MATRIX[2, 7] = _TIED_MATRIX[2, 3] = _TIED_MATRIX[8, 1] = 9
_TIED_MATRIX[5, 3] = 4
MOST_CONFUSED_TIES = Call(
    "most_confused", (_TIED_MATRIX,), {"k": 3}, label="most_confused(matrix with equal counts, k=3)"
)

# Fewer non-zero mistakes than k, then none at all: the answer is shorter than k, then empty.
_FEW_MATRIX = np.diag(np.full(10, 40))
_FEW_MATRIX[3, 8], _FEW_MATRIX[7, 1], _FEW_MATRIX[0, 6] = 6, 2, 2
FEW_MISTAKES = Call(
    "most_confused", (_FEW_MATRIX,), {"k": 5}, label="most_confused(matrix with few mistakes, k=5)"
)
_PERFECT_MATRIX = np.diag(np.full(10, 30))
NO_MISTAKES = Call(
    "most_confused",
    (_PERFECT_MATRIX,),
    {"k": 3},
    label="most_confused(matrix with no mistakes, k=3)",
)


@graded("q5_misclassified", 1, hidden=True, about="the result when every prediction is right")
def test_all_correct(submission):
    """With every prediction right, is the result empty?"""
    expect_indices(submission.call(ALL_CORRECT), *ALL_CORRECT.args, ALL_CORRECT.label)


@graded(
    "q5_misclassified", 1, hidden=True, about="the prediction when two digits share the top score"
)
def test_ties(submission):
    """On tied top scores, is the smaller digit taken as the prediction (like np.argmax)?"""
    expect_indices(submission.call(TIES), *TIES.args, TIES.label)


@graded(
    "q5_confusion", 1, hidden=True, about="the confusion matrix when a digit is never predicted"
)
def test_digit_never_predicted(submission):
    """Is the matrix still 10x10 when one digit is never predicted?"""
    expect_confusion(submission.call(NEVER_PREDICTED), *NEVER_PREDICTED.args, NEVER_PREDICTED.label)


@graded("q5_most_confused", 1, hidden=True, about="the order of mistakes with equal counts")
def test_most_confused_ties(submission):
    """Are equal counts ordered by true digit, then predicted digit?"""
    expect_most_confused(
        submission.call(MOST_CONFUSED_TIES), _TIED_MATRIX, 3, MOST_CONFUSED_TIES.label
    )


@graded(
    "q5_most_confused",
    1,
    hidden=True,
    about="the list when fewer than k digit pairs (or none) have a mistake",
)
def test_most_confused_fewer_than_k(submission):
    """With fewer than k non-zero mistakes, or none, are only the non-zero pairs listed?"""
    expect_most_confused(
        submission.call(FEW_MISTAKES), _FEW_MATRIX, 5, FEW_MISTAKES.label, reveal=False
    )
    expect_most_confused(
        submission.call(NO_MISTAKES), _PERFECT_MATRIX, 3, NO_MISTAKES.label, reveal=False
    )
