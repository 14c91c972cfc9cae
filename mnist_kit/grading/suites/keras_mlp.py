"""Visible tests of assignment 2, a first MLP in Keras (after course/03-first-model.ipynb)."""

from __future__ import annotations

from mnist_kit.grading.declare import Value, graded
from mnist_kit.grading.expectations import (
    Recipe,
    expect_accuracy,
    expect_activations,
    expect_compiled,
    expect_kept_history,
    expect_keras_sequential,
    expect_layer_kinds,
    expect_layer_sizes,
    expect_params,
)

# numbered like the notebook's list, where keras.Input is item 1 (so Dense(64) is layer 4)
LAYERS = "Input; Flatten; Dense(128, relu); Dense(64, relu); Dense(10, softmax)"
PARAMS = 109_386
# Seed study (tools/seed_study.py, docs/seed-study.md): the solution over 10 seeds measured
# mean 0.9711, std 0.0027, min 0.9657; 0.96 leaves 4.1 std below the mean and 0.0057 below the
# minimum. It was 0.97, which 3 of the 10 seeds missed.
THRESHOLD = 0.96
RECIPE = Recipe(epochs=5, batch_size=32)  # the notebook's Question 3
HISTORY = Value("history", "history", label="history.history")
HOW_TO_TRAIN = "train it with model.fit(..., epochs=5, batch_size=32, validation_data=...)"


@graded("q2_architecture", 1)
def test_layer_kinds(submission):
    """Is it a keras.Sequential of (28, 28) images with Flatten, Dense, Dense, Dense, in that order?"""
    expect_keras_sequential(submission.model("model"), (28, 28))
    expect_layer_kinds(submission.model("model"), LAYERS)


@graded("q2_architecture", 1)
def test_layer_sizes(submission):
    """Do the Dense layers have 128, 64 and 10 units?"""
    expect_layer_sizes(submission.model("model"), LAYERS)


@graded("q2_architecture", 1)
def test_activations(submission):
    """Are the activations relu, relu and softmax?"""
    expect_activations(submission.model("model"), LAYERS)


@graded("q2_architecture", 1)
def test_param_count(submission):
    """Does the model have 109,386 trainable parameters?"""
    expect_params(submission.model("model"), PARAMS)


@graded("q2_compile", 1)
def test_optimizer(submission):
    """Was the model compiled with the Adam optimizer?"""
    expect_compiled(submission.model("model"), optimizer="adam")


@graded("q2_compile", 1)
def test_loss_and_metric(submission):
    """Was it compiled with sparse categorical cross-entropy and the accuracy metric?"""
    expect_compiled(
        submission.model("model"), loss="sparse_categorical_crossentropy", metric="accuracy"
    )


@graded("q2_accuracy", 3)
def test_accuracy(submission):
    """Does the trained model reach 96% accuracy on the MNIST test set (measured by the grader)?"""
    expect_accuracy(submission.model("model"), THRESHOLD, HOW_TO_TRAIN, RECIPE)


@graded("q2_accuracy", 1)
def test_history(submission):
    """Does `history` hold one fit of 5 epochs with validation curves (validation_data=...)?"""
    expect_kept_history(submission, HISTORY, RECIPE)
