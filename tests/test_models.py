"""Tests of the reference models: identical layer sizes and parameter counts in both frameworks."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_kit import keras_kit, torch_kit


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("mlp", {}, 109_386),
        ("cnn", {}, 225_034),
        ("mlp", {"hidden": (32,)}, 784 * 32 + 32 + 32 * 10 + 10),
        (
            "mlp",
            {"hidden": (256, 128, 64)},
            784 * 256 + 256 + 256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10,
        ),
        (
            "cnn",
            {"channels": (16, 32)},
            16 * 9 + 16 + 32 * 16 * 9 + 32 + 32 * 25 * 128 + 128 + 128 * 10 + 10,
        ),
    ],
)
def test_parameter_counts_agree_across_frameworks(name, kwargs, expected):
    """Do the Keras and PyTorch builders give the same, hand-computed parameter count?"""
    assert keras_kit.count_params(getattr(keras_kit, name)(**kwargs)) == expected
    assert torch_kit.count_params(getattr(torch_kit, name)(**kwargs)) == expected


def test_layer_shapes_match_layer_by_layer():
    """Are the weight tensors the same sizes, in the same order, in both CNNs?"""
    k_shapes = [tuple(w.shape) for w in keras_kit.cnn().trainable_weights]
    t_shapes = [tuple(p.shape) for p in torch_kit.cnn().parameters()]
    # Keras stores conv kernels as (h, w, in, out) and dense as (in, out); PyTorch as (out, in, h, w) / (out, in).
    to_torch = [
        (s[3], s[2], s[0], s[1]) if len(s) == 4 else (s[1], s[0]) if len(s) == 2 else s
        for s in k_shapes
    ]
    assert to_torch == t_shapes


def test_outputs_are_probabilities_from_predict(mnist):
    """Does predict() give rows of ten probabilities summing to one in both frameworks?"""
    x = mnist[1][0][:7]
    for kit in (keras_kit, torch_kit):
        for model in (kit.mlp(), kit.cnn()):
            probs = kit.predict(model, x)
            assert probs.shape == (7, 10)
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
