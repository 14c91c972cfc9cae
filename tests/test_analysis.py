"""Tests for mnist_kit.analysis, against numpy one-liners, on a PyTorch MLP trained on real MNIST."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mnist_kit import analysis

N_TEST = 2000  # test images the trained model predicts


@pytest.fixture(scope="module")
def trained(mnist):
    """Probabilities and logits of a torch MLP trained 1 epoch on 4,000 real images, on 2,000 test images."""
    import torch

    from mnist_kit import torch_kit
    from mnist_kit.data import scale_pixels
    from mnist_kit.device import seed_everything

    (x_train, y_train), (x_test, y_test) = mnist
    seed_everything(0)
    model = torch_kit.mlp()
    torch_kit.fit(model, x_train[:4000], y_train[:4000], epochs=1, verbose=0)
    x, y = x_test[:N_TEST], y_test[:N_TEST]
    probs = torch_kit.predict(model, x)
    with torch.no_grad():
        logits = model(torch.as_tensor(scale_pixels(x))).numpy()
    wrong = np.flatnonzero(probs.argmax(axis=1) != y)
    assert 0 < len(wrong) < N_TEST // 4, "the trained model should be decent but not perfect"
    return SimpleNamespace(y=y, probs=probs, logits=logits)


def test_find_misclassified_matches_numpy_one_liner(trained):
    """Does find_misclassified return exactly the indices a numpy one-liner finds?"""
    expected = np.where(trained.probs.argmax(axis=1) != trained.y)[0]
    found = analysis.find_misclassified(trained.probs, trained.y)
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(analysis.misclassified(trained.probs, trained.y), expected)


def test_logits_and_probabilities_give_the_same_indices(trained):
    """Do the model's raw logits and its softmax probabilities flag the same images?"""
    from_logits = analysis.find_misclassified(trained.logits, trained.y)
    np.testing.assert_array_equal(
        from_logits, analysis.find_misclassified(trained.probs, trained.y)
    )
    np.testing.assert_allclose(analysis.as_probabilities(trained.logits), trained.probs, atol=1e-5)


def test_one_hot_labels_are_accepted(trained):
    """Are one-hot true labels read as their argmax?"""
    one_hot = np.eye(10)[trained.y]
    np.testing.assert_array_equal(
        analysis.find_misclassified(trained.probs, one_hot),
        analysis.find_misclassified(trained.probs, trained.y),
    )


def test_ties_go_to_the_lowest_class():
    """When two classes tie for the top score, is the lower one the prediction (like np.argmax)?"""
    probs = np.array([[0.5, 0.5] + [0.0] * 8, [0.0, 0.0, 0.4, 0.4, 0.2] + [0.0] * 5])
    np.testing.assert_array_equal(analysis.find_misclassified(probs, [0, 2]), [])
    np.testing.assert_array_equal(analysis.find_misclassified(probs, [1, 3]), [0, 1])


def test_mismatched_lengths_are_a_clear_error(trained):
    """Does passing labels of other images raise a ValueError that says so?"""
    with pytest.raises(ValueError, match="labels"):
        analysis.find_misclassified(trained.probs, trained.y[:-1])
    with pytest.raises(ValueError, match="shape"):
        analysis.find_misclassified(trained.probs[0], trained.y[:1])


def test_confusion_matrix_matches_a_brute_force_count(trained):
    """Does confusion_matrix count each (true, predicted) pair like a plain double loop?"""
    predicted = trained.probs.argmax(axis=1)
    expected = np.zeros((10, 10), dtype=int)
    for t, p in zip(trained.y, predicted, strict=True):
        expected[t, p] += 1
    cm = analysis.confusion_matrix(trained.y, predicted)
    np.testing.assert_array_equal(cm, expected)
    np.testing.assert_array_equal(analysis.confusion_matrix(trained.y, trained.probs), expected)
    assert cm.sum() == N_TEST
    assert np.trace(cm) == N_TEST - len(analysis.find_misclassified(trained.probs, trained.y))


def test_confusion_matrix_rejects_labels_out_of_range():
    """Is a label of 10 (with 10 classes) reported rather than silently mis-counted?"""
    with pytest.raises(ValueError, match="outside 0..9"):
        analysis.confusion_matrix([1, 10], [1, 1])


def test_most_confused_pairs_orders_by_count_then_class(trained):
    """Are the largest off-diagonal cells returned first, ties in (true, predicted) order?"""
    cm = np.zeros((4, 4), dtype=int)
    cm[np.diag_indices(4)] = 50
    cm[2, 1] = cm[0, 3] = 7
    cm[3, 0] = 9
    cm[1, 2] = 1
    assert analysis.most_confused_pairs(cm, k=3) == [(3, 0, 9), (0, 3, 7), (2, 1, 7)]
    assert len(analysis.most_confused_pairs(cm, k=10)) == 4  # zero cells are not "confused"
    real = analysis.confusion_matrix(trained.y, trained.probs)
    off_diagonal = sorted(
        ((-real[t, p], t, p) for t in range(10) for p in range(10) if t != p and real[t, p]),
    )[:5]
    expected = [(t, p, -negative) for negative, t, p in off_diagonal]
    assert analysis.most_confused_pairs(real, k=5) == expected
