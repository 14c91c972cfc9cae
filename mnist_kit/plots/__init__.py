"""Plots for the lessons; every function returns a matplotlib Figure and never opens a window.

The figures are made without pyplot, so they work headless (Agg), never leak open
figures, and show up in Jupyter when they are the last value of a cell. Histories
may be a Keras History, an `mnist_kit.history.History`, or a dict of metric lists.
"""

from mnist_kit.analysis import find_misclassified, misclassified
from mnist_kit.plots.activations import plot_activations
from mnist_kit.plots.history import compare_optimizers, plot_history, plot_optimizers
from mnist_kit.plots.learned import plot_conv_filters, plot_dense_weights, plot_feature_maps
from mnist_kit.plots.mistakes import plot_confusion_matrix, plot_misclassified
from mnist_kit.plots.samples import plot_prediction, plot_predictions, plot_samples

__all__ = [
    "plot_samples",
    "plot_history",
    "plot_prediction",
    "plot_predictions",
    "misclassified",
    "find_misclassified",
    "plot_misclassified",
    "plot_confusion_matrix",
    "plot_dense_weights",
    "plot_conv_filters",
    "plot_feature_maps",
    "plot_activations",
    "plot_optimizers",
    "compare_optimizers",
]
