"""Visible tests of assignment 3, a CNN in Keras (after course/05-cnn.ipynb)."""

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

# the notebook's five items: keras.Input, then one block per item ("the Conv2D of item 3")
LAYERS = (
    "Input; Conv2D(32, 3x3, relu) + MaxPooling2D(2x2); Conv2D(64, 3x3, relu) + MaxPooling2D(2x2); "
    "Flatten + Dense(128, relu) + Dropout(0.5); Dense(10, softmax)"
)
PARAMS = 225_034
# Seed study (tools/seed_study.py, docs/seed-study.md), 10 seeds of the solution: mean 0.9892,
# std 0.0010, min 0.9868: 0.985 leaves 4.2 std.
THRESHOLD = 0.985
RECIPE = Recipe(epochs=3, batch_size=128)  # the notebook's Question 3
HISTORY = Value("history", "history", label="history.history")
HOW_TO_TRAIN = "train it with model.fit(...) (3 epochs at batch 128 with Adam at 3e-3 are enough)"


@graded("q3_architecture", 2)
def test_layer_kinds(submission):
    """Is it a keras.Sequential of (28, 28, 1) images with the layers in the listed order?"""
    expect_keras_sequential(submission.model("model"), (28, 28, 1))
    expect_layer_kinds(submission.model("model"), LAYERS)


@graded("q3_architecture", 1)
def test_layer_sizes(submission):
    """Do filters, kernels, pool sizes, units and the dropout rate match the assignment?"""
    expect_layer_sizes(submission.model("model"), LAYERS)


@graded("q3_architecture", 1)
def test_activations(submission):
    """Are the activations relu everywhere and softmax at the end?"""
    expect_activations(submission.model("model"), LAYERS)


@graded("q3_architecture", 1)
def test_param_count(submission):
    """Does the model have 225,034 trainable parameters?"""
    expect_params(submission.model("model"), PARAMS)


@graded("q3_compile", 1)
def test_compiled(submission):
    """Was the model compiled with Adam at 3e-3, sparse categorical cross-entropy and accuracy?"""
    expect_compiled(
        submission.model("model"),
        "adam",
        "sparse_categorical_crossentropy",
        "accuracy",
        learning_rate=3e-3,
    )


@graded("q3_accuracy", 3)
def test_accuracy(submission):
    """Does the trained CNN reach 98.5% accuracy on the MNIST test set (measured by the grader)?"""
    expect_accuracy(submission.model("model"), THRESHOLD, HOW_TO_TRAIN, RECIPE)


@graded("q3_accuracy", 1)
def test_history(submission):
    """Does `history` hold one fit of 3 epochs with validation curves (validation_data=...)?"""
    expect_kept_history(submission, HISTORY, RECIPE)
