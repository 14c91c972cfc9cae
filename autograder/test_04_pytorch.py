"""Assignment 4, the MLP and CNN in PyTorch: the visible tests shipped with the kit, plus hidden tests."""

from mnist_kit.grading.declare import TrainRun, graded
from mnist_kit.grading.suites.pytorch import *  # noqa: F403 - the visible tests and their probes
from mnist_kit.grading.suites.pytorch import expect_loss_falls, training_batch

CNN_TRAIN = TrainRun(
    "CNN",
    "train_one_epoch",
    training_batch,
    label="train_one_epoch(CNN(), loader, optimizer, loss_fn)",
)


@graded("q4_training", 1, hidden=True, about="whether the training loop trains the CNN too")
def test_cnn_training_lowers_loss(submission):
    """Does the same loop also train a fresh CNN?"""
    expect_loss_falls(submission.train_run(CNN_TRAIN), CNN_TRAIN.label)
