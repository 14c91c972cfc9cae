"""Assignment 3, a CNN in Keras: the visible tests shipped with the kit, plus hidden tests."""

from mnist_kit.grading.declare import graded
from mnist_kit.grading.expectations import expect_class_recall
from mnist_kit.grading.suites.keras_cnn import *  # noqa: F403 - the visible tests


@graded("q3_accuracy", 1, hidden=True, about="how well the model recognises each digit on its own")
def test_every_digit(submission):
    """Is every digit recognised at least 95% of the time?"""
    expect_class_recall(submission.model("model"), 0.95)
