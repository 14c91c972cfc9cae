"""Tests of architecture advice: layers are aligned with the assignment's list, not compared by position.

Most tests compare plain `Layer` lists (no framework); the last ones build small real Keras
models and PyTorch modules and go through the same description path the grader uses.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mnist_kit.grading.architecture import Step, align, parse_layers, parse_spec
from mnist_kit.grading.declare import Fail
from mnist_kit.grading.expectations import (
    expect_activations,
    expect_layer_kinds,
    expect_layer_sizes,
)
from mnist_kit.grading.suites import keras_cnn, keras_mlp, pytorch

MLP = keras_mlp.LAYERS
CNN = keras_cnn.LAYERS
CNN_TEXT = (
    "Conv2D(32, 3x3, relu); MaxPooling2D(2x2); Conv2D(64, 3x3, relu); MaxPooling2D(2x2); "
    "Flatten; Dense(128, relu); Dropout(0.5); Dense(10, softmax)"
)


def _model(text: str, framework: str = "keras"):
    """A stand-in for a GradedModel: the checks read only its layers and framework."""
    return SimpleNamespace(layers=parse_layers(text), framework=framework)


def _message(check, model, expected: str) -> str:
    with pytest.raises(Fail) as failure:
        check(model, expected)
    return str(failure.value)


def _passes(check, model, expected: str) -> bool:
    try:
        check(model, expected)
    except Fail:
        return False
    return True


def test_spec_numbers_layers_like_the_notebook_lists():
    """Is keras.Input item 1 of the MLP list, and do the CNN's items hold several layers each?"""
    mlp = parse_spec(MLP)
    assert [str(x) for x in mlp.layers] == [
        "Flatten",
        "Dense(128, relu)",
        "Dense(64, relu)",
        "Dense(10, softmax)",
    ]
    assert mlp.items == [2, 3, 4, 5] and not mlp.grouped
    cnn = parse_spec(CNN)
    assert cnn.layers == parse_layers(CNN_TEXT)
    assert cnn.items == [2, 2, 3, 3, 4, 4, 4, 5] and cnn.grouped
    assert parse_spec(pytorch.MLP_LAYERS).items == [1, 2, 3, 4]


def test_alignment_finds_a_missing_layer_instead_of_shifting_the_rest():
    """Is a model without Dense(64) aligned as one missing layer, the output still matched?"""
    have = parse_layers("Flatten; Dense(128, relu); Dense(10, softmax)")
    assert align(have, parse_spec(MLP).layers) == [
        Step("same", 0, 0),
        Step("same", 1, 1),
        Step("missing", None, 2),
        Step("same", 2, 3),
    ]


def test_alignment_tells_changed_extra_and_swapped_layers():
    """Are a resized layer, an extra layer and two swapped neighbours each one step?"""
    want = parse_spec(MLP).layers
    resized = parse_layers("Flatten; Dense(128, relu); Dense(32, relu); Dense(10, softmax)")
    assert [s.op for s in align(resized, want)] == ["same", "same", "changed", "same"]
    extra = parse_layers(
        "Flatten; Dense(128, relu); Dense(64, relu); Dense(32, relu); Dense(10, softmax)"
    )
    assert Step("extra", 3, None) in align(extra, want)
    swapped = parse_layers(CNN_TEXT.replace("Conv2D(32, 3x3, relu); MaxPooling2D(2x2)", "MaxPooling2D(2x2); Conv2D(32, 3x3, relu)", 1))  # fmt: skip
    assert align(swapped, parse_spec(CNN).layers)[0] == Step("swapped", 0, 0)


def test_missing_dense_is_named_missing_between_the_right_layers():
    """Is a missing Dense(64) named as missing, between layer 3 and the output, not as a wrong layer 4?"""
    model = _model("Flatten; Dense(128, relu); Dense(10, softmax)")
    message = _message(expect_layer_kinds, model, MLP)
    assert message.startswith("a Dense(64, relu) is missing between layer 3 and the output. ")
    assert message.endswith(
        "Your model has 3 layers: Flatten, Dense(128, relu), Dense(10, softmax); "
        "expected 4: Flatten, Dense(128, relu), Dense(64, relu), Dense(10, softmax)"
    )
    assert "softmax); expected Dense(64" not in message  # the old advice: a 64-unit softmax
    assert _message(expect_layer_sizes, model, MLP) == "the model has 2 Dense layers; expected 3"
    assert _passes(expect_activations, model, MLP)  # the output's softmax is not compared with relu


def test_extra_dense_is_named_extra_and_not_the_output():
    """Is an extra Dense(32) named as the extra layer 5, leaving the output layer alone?"""
    model = _model(
        "Flatten; Dense(128, relu); Dense(64, relu); Dense(32, relu); Dense(10, softmax)"
    )
    message = _message(expect_layer_kinds, model, MLP)
    assert message.startswith("layer 5, Dense(32, relu), is extra. Your model has 5 layers: ")
    assert "Dense(10, softmax)) should not be there" not in message
    assert _message(expect_layer_sizes, model, MLP) == "the model has 4 Dense layers; expected 3"
    assert _passes(expect_activations, model, MLP)


def test_wrong_size_is_named_with_the_notebook_number():
    """Does a 32-unit second hidden layer read "layer 4" (item 4 of the notebook's list), with both sizes?"""
    model = _model("Flatten; Dense(128, relu); Dense(32, relu); Dense(10, softmax)")
    assert _passes(expect_layer_kinds, model, MLP) and _passes(expect_activations, model, MLP)
    assert _message(expect_layer_sizes, model, MLP) == "layer 4 has 32 units; expected 64"


def test_wrong_activation_names_the_layer_and_the_fix():
    """Does a sigmoid in Dense(64) read "layer 4 has activation sigmoid; expected relu", with what to pass?"""
    model = _model("Flatten; Dense(128, relu); Dense(64, sigmoid); Dense(10, softmax)")
    assert _passes(expect_layer_kinds, model, MLP) and _passes(expect_layer_sizes, model, MLP)
    assert _message(expect_activations, model, MLP) == (
        "layer 4, Dense(64), has activation sigmoid; expected relu: "
        "pass activation='relu' to that layer"
    )


def test_activation_of_a_layer_after_a_missing_one_is_still_compared():
    """With Dense(128) missing, is a sigmoid output still compared with the expected softmax output?"""
    model = _model("Flatten; Dense(64, relu); Dense(10, sigmoid)")
    assert _message(expect_activations, model, MLP).startswith(
        "layer 4, Dense(10), has activation sigmoid; expected softmax"
    )


def test_swapped_flatten_and_dense_read_as_a_swap():
    """Is a Dense(128) placed before Flatten reported as two swapped layers, with the right order?"""
    model = _model("Dense(128, relu); Flatten; Dense(64, relu); Dense(10, softmax)")
    assert _message(expect_layer_kinds, model, MLP).startswith(
        "layer 2 and layer 3 are swapped: put Flatten before Dense(128, relu). "
    )
    assert _passes(expect_layer_sizes, model, MLP) and _passes(expect_activations, model, MLP)


def test_cnn_pooling_before_convolution_reads_as_a_swap_in_item_2():
    """Is MaxPooling2D before the first Conv2D named as a swap in item 2 of the CNN list?"""
    model = _model(CNN_TEXT.replace("Conv2D(32, 3x3, relu); MaxPooling2D(2x2)", "MaxPooling2D(2x2); Conv2D(32, 3x3, relu)", 1))  # fmt: skip
    assert _message(expect_layer_kinds, model, CNN).startswith(
        "the MaxPooling2D of item 2 and the Conv2D of item 2 are swapped: "
        "put Conv2D(32, 3x3, relu) before MaxPooling2D(2x2). "
    )
    assert _passes(expect_layer_sizes, model, CNN) and _passes(expect_activations, model, CNN)


def test_cnn_missing_dropout_and_wrong_filters_name_their_items():
    """Are a missing Dropout and a 32-filter second Conv2D named by their items of the CNN list?"""
    model = _model(
        "Conv2D(32, 3x3, relu); MaxPooling2D(2x2); Conv2D(32, 3x3, relu); MaxPooling2D(2x2); "
        "Flatten; Dense(128, relu); Dense(10, softmax)"
    )
    assert _message(expect_layer_kinds, model, CNN).startswith(
        "a Dropout(0.5) (item 4 of the list) is missing between the Dense of item 4 and the output. "
    )
    assert _message(expect_layer_sizes, model, CNN) == (
        "the Conv2D of item 3 has 32 filters; expected 64; the model has 0 Dropout layers; expected 1"
    )


def test_cnn_kernel_pool_and_rate_are_compared_on_aligned_layers():
    """Are a 5x5 kernel, a 3x3 pool and a 0.2 dropout rate each named, with the expected value?"""
    model = _model(
        "Conv2D(32, 5x5, relu); MaxPooling2D(3x3); Conv2D(64, 3x3, relu); MaxPooling2D(2x2); "
        "Flatten; Dense(128, relu); Dropout(0.2); Dense(10, softmax)"
    )
    assert _passes(expect_layer_kinds, model, CNN)
    assert _message(expect_layer_sizes, model, CNN) == (
        "the Conv2D of item 2 has a 5x5 kernel; expected 3x3; "
        "the MaxPooling2D of item 2 has a 3x3 pool; expected 2x2; "
        "the Dropout of item 4 has rate 0.2; expected 0.5"
    )


def test_cnn_other_kind_and_extra_layer():
    """Are an AveragePooling2D in place of MaxPooling2D and an extra Dense named where they stand?"""
    model = _model(
        "Conv2D(32, 3x3, relu); AveragePooling2D(2x2); Conv2D(64, 3x3, relu); MaxPooling2D(2x2); "
        "Flatten; Dense(128, relu); Dense(32, relu); Dropout(0.5); Dense(10, softmax)"
    )
    assert _message(expect_layer_kinds, model, CNN).startswith(
        "the second layer of item 2 is AveragePooling2D(2x2); expected MaxPooling2D(2x2); "
        "the Dense(32, relu) after the Dense of item 4 is extra. "
    )


def test_torch_layers_are_named_by_kind_in_torch_words():
    """In a PyTorch MLP, is a missing Linear(64) placed after "your first Linear", in Linear words?"""
    model = _model("Flatten; Dense(128, relu); Dense(10)", "torch")
    assert _message(expect_layer_kinds, model, pytorch.MLP_LAYERS).startswith(
        "a Linear(64, relu) is missing between your first Linear and the output. "
        "Your model has 3 layers: Flatten, Linear(128, relu), Linear(10); "
    )
    resized = _model("Flatten; Dense(128, relu); Dense(32, relu); Dense(10)", "torch")
    assert (
        _message(expect_layer_sizes, resized, pytorch.MLP_LAYERS)
        == "your second Linear has 32 units; expected 64"
    )


# Real models, described the way the grader describes them.


@pytest.fixture(scope="module")
def keras():
    from mnist_kit.device import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def _keras_model(keras, hidden):
    layers = [keras.Input(shape=(28, 28)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def test_real_keras_models_get_the_missing_and_extra_layers_named(keras):
    """Do real Keras models without Dense(64), or with an extra Dense(32), get the right layer named?"""
    from mnist_kit.grading.model_layers import describe_keras

    missing = SimpleNamespace(layers=describe_keras(_keras_model(keras, (128,))), framework="keras")
    assert _message(expect_layer_kinds, missing, MLP).startswith(
        "a Dense(64, relu) is missing between layer 3 and the output. "
    )
    extra = SimpleNamespace(
        layers=describe_keras(_keras_model(keras, (128, 64, 32))), framework="keras"
    )
    assert _message(expect_layer_kinds, extra, MLP).startswith(
        "layer 5, Dense(32, relu), is extra. "
    )
    assert _passes(expect_activations, extra, MLP)


def test_real_torch_modules_are_aligned_after_export(tmp_path):
    """Are an exported nn.Module without its second Linear, and a CNN with pooling first, named in torch words?"""
    from torch import nn

    from mnist_kit.grading.assignments import collect_tests, find_assignment, suite_module
    from mnist_kit.grading.check import live_submission
    from mnist_kit.grading.results import run_tests

    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    cnn = nn.Sequential(
        nn.MaxPool2d(2), nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
    )  # fmt: skip
    suite = suite_module(find_assignment("04"))
    tests = [(f, i) for f, i in collect_tests(suite) if i.question in ("q4_mlp", "q4_cnn")]
    namespace = {"mlp_model": mlp, "cnn_model": cnn}
    results = {r.name: r for r in run_tests(tests, live_submission(namespace, tmp_path))}
    assert results["test_mlp_layers"].message.startswith(
        "a Linear(64, relu) is missing between your first Linear and the output. "
    )
    assert results["test_mlp_activations"].passed
    assert results["test_cnn_layers"].message.startswith(
        "your first MaxPool2d and your first Conv2d are swapped: "
        "put Conv2d(32, 3x3, relu) before MaxPool2d(2x2). "
    )
    assert results["test_cnn_activations"].passed
