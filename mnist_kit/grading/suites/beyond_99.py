"""Visible tests of assignment 6, the beyond-99% challenge (after course/08-beyond-99.ipynb)."""

from __future__ import annotations

from mnist_kit.grading.declare import expect, graded
from mnist_kit.grading.expectations import expect_accuracy, expect_learned

BUDGET = 100_000  # trainable parameters; the 225,034-parameter CNN of assignment 3 is over it
THRESHOLD = 0.99
EXTRA_CREDIT = 0.993
HOW_TO_TRAIN = (
    "train it longer, or add batch normalization, augmentation or a learning-rate schedule"
)


def _within_budget(model, what: str) -> None:
    expect(
        model.params <= BUDGET,
        f"the model has {model.params:,} trainable parameters, over the budget of {BUDGET:,}{what}: "
        "use fewer filters or units, or pooling before the Dense layer",
    )


@graded("q6_budget", 2)
def test_parameter_budget(submission):
    """Does the model stay within 100,000 trainable parameters?"""
    _within_budget(submission.model("model"), "")


@graded("q6_accuracy", 8)
def test_accuracy(submission):
    """Does the model reach 99% accuracy on the MNIST test set (measured by the grader)?"""
    model = submission.model("model")
    _within_budget(model, " (accuracy counts only within the budget)")
    expect_accuracy(model, THRESHOLD, HOW_TO_TRAIN)


@graded("q6_extra_credit", 2, extra_credit=True)
def test_extra_credit(submission):
    """Extra credit: does the model reach 99.3%?"""
    model = submission.model("model")
    _within_budget(model, " (accuracy counts only within the budget)")
    accuracy = model.test_accuracy
    expect(
        accuracy >= EXTRA_CREDIT,
        f"test accuracy {accuracy:.4f} is below {EXTRA_CREDIT} (extra credit only)",
    )
    expect_learned(model)
