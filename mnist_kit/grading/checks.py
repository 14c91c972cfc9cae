"""Checks shared by several assignments: architecture layer by layer, parameter count, accuracy.

Each raises `Fail` with a message that says what the model has, what was expected, and
what to change. They work the same for Keras models and PyTorch programs.
"""

from __future__ import annotations

import re

import numpy as np

from mnist_kit.grading.architecture import WEIGHTED, Layer, layer_list, parse_layers
from mnist_kit.grading.spec import Fail, expect
from mnist_kit.grading.submission import GradedModel, mnist_test_set

__all__ = [
    "expect_layer_kinds",
    "expect_layer_sizes",
    "expect_activations",
    "expect_params",
    "expect_accuracy",
    "expect_learned",
    "expect_class_recall",
    "expect_compiled",
]

COMPARED = ("Dense", "Conv2D", "MaxPooling2D", "Dropout")  # kinds whose settings are compared


def _numbered(layers: list[Layer]) -> list[tuple[int, Layer]]:
    return list(enumerate(layers, start=1))


def expect_layer_kinds(model: GradedModel, expected: str) -> None:
    """The model's layers are of the expected kinds, in the expected order."""
    want, have, fw = parse_layers(expected), model.layers, model.framework
    if [layer.kind for layer in have] == [layer.kind for layer in want]:
        return
    for number, (mine, theirs) in enumerate(zip(have, want, strict=False), start=1):
        if mine.kind != theirs.kind:
            detail = f"layer {number} is {mine.show(fw)}; expected {theirs.show(fw)}"
            break
    else:
        shorter = len(have) < len(want)
        extra = (want[len(have)] if shorter else have[len(want)]).show(fw)
        detail = f"layer {min(len(have), len(want)) + 1} " + (
            f"is missing; expected {extra}" if shorter else f"({extra}) should not be there"
        )
    raise Fail(
        f"{detail}. Your model has {len(have)} layers: {layer_list(have, fw) or 'none'}; "
        f"expected {len(want)}: {layer_list(want, fw)}"
    )


def _pairs(have: list[Layer], want: list[Layer]):
    """(number in the student's model, student's layer, expected layer) for each compared kind, in order."""
    for kind in COMPARED:
        mine = [(n, layer) for n, layer in _numbered(have) if layer.kind == kind]
        theirs = [layer for layer in want if layer.kind == kind]
        yield from ((n, m, t) for (n, m), t in zip(mine, theirs, strict=False))


def expect_layer_sizes(model: GradedModel, expected: str) -> None:
    """Units, filters, kernel and pool sizes and dropout rates match, layer by layer."""
    want = parse_layers(expected)
    problems = []
    for number, mine, theirs in _pairs(model.layers, want):
        if (mine.size, mine.kernel, mine.rate) != (theirs.size, theirs.kernel, theirs.rate):
            same_activation = Layer(
                theirs.kind, theirs.size, theirs.kernel, mine.activation, theirs.rate
            )
            problems.append(
                f"layer {number} is {mine.show(model.framework)}; expected {same_activation.show(model.framework)}"
            )
    counts = {
        k: (sum(x.kind == k for x in model.layers), sum(x.kind == k for x in want))
        for k in COMPARED
    }
    for kind, (mine_n, want_n) in counts.items():
        if mine_n != want_n:
            name = Layer(kind).show(model.framework)
            problems.append(
                f"the model has {mine_n} {name} layer{'s' * (mine_n != 1)}; expected {want_n}"
            )
    expect(not problems, "; ".join(problems[:3]))


def _activation_hint(model: GradedModel, layer: Layer, wanted: str) -> str:
    if model.framework == "keras":
        return (
            f"pass activation='{wanted}' to that layer"
            if wanted != "linear"
            else "remove its activation"
        )
    if wanted == "linear":
        return "return raw scores (logits): nn.CrossEntropyLoss applies softmax itself"
    return f"apply torch.{wanted} (or nn.{wanted.capitalize() if wanted != 'relu' else 'ReLU'}()) to its output"


def expect_activations(model: GradedModel, expected: str) -> None:
    """Every Dense/Conv2D layer has the expected activation (the last one included)."""
    want = parse_layers(expected)
    for number, mine, theirs in _pairs(model.layers, want):
        if mine.kind in WEIGHTED and mine.activation != theirs.activation:
            fw = model.framework
            shown = (
                f"{mine.show(fw)} with no activation"
                if mine.activation == "linear"
                else mine.show(fw)
            )
            hint = _activation_hint(model, mine, theirs.activation or "linear")
            raise Fail(f"layer {number} is {shown}; expected {theirs.show(fw)}: {hint}")


def expect_params(model: GradedModel, expected: int) -> None:
    """The model has exactly the expected number of trainable parameters."""
    expect(
        model.params == expected,
        f"the model has {model.params:,} trainable parameters; expected {expected:,} "
        "(compare each layer's size with the assignment)",
    )


MEMORISED_GAP = 0.15  # train accuracy this far below test accuracy: the test set was memorised


def expect_learned(model: GradedModel) -> None:
    """A model with a high test accuracy does about as well on training images it was taught with.

    A "model" that stores the test labels (a lookup, not learning) scores on the test set only.
    """
    accuracy = model.test_accuracy
    if accuracy < 0.9:
        return
    train = model.train_accuracy
    expect(
        train >= accuracy - MEMORISED_GAP,
        f"test accuracy {accuracy:.4f} but only {train:.4f} on 5,000 MNIST training images "
        "(both measured by the grader): the model seems to have memorised the test labels "
        "instead of learning; train it on the training images only",
    )


def expect_accuracy(model: GradedModel, threshold: float, how_to_train: str) -> None:
    """Accuracy on the 10,000 MNIST test images, measured by the grader, reaches the threshold."""
    accuracy = model.test_accuracy
    if accuracy >= threshold:
        expect_learned(model)
        return
    measured = f"test accuracy {accuracy:.4f} (measured by the grader on the 10,000 MNIST test images) is below {threshold}"
    if accuracy < 0.3:
        raise Fail(
            f"{measured}: `{model.name}` looks untrained; {how_to_train} before the end of the notebook"
        )
    raise Fail(f"{measured}: {how_to_train}, and feed it pixels scaled to [0, 1]")


def expect_class_recall(model: GradedModel, minimum: float) -> None:
    """Every digit is recognised: per-class recall on the test set is at least `minimum`."""
    images, labels = mnist_test_set()
    predicted = model.predict(images).argmax(axis=1)
    recall = np.array([(predicted[labels == d] == d).mean() for d in range(10)])
    worst = int(recall.argmin())
    expect(
        recall[worst] >= minimum,
        f"only {recall[worst]:.1%} of the test images of digit {worst} are recognised (at least {minimum:.0%} expected)",
    )


def _name(value) -> str:
    if isinstance(value, dict):
        value = value.get("class_name") or value.get("config", {}).get("name", "")
    snake = re.sub(
        r"(?<=[a-z0-9])([A-Z])", r"_\1", str(value)
    ).lower()  # SparseCategorical -> sparse_categorical
    return snake.replace("cross_entropy", "crossentropy")


def expect_compiled(
    model: GradedModel,
    optimizer: str | None = None,
    loss: str | None = None,
    metric: str | None = None,
) -> None:
    """The Keras model was compiled with the expected optimizer, loss and metric."""
    config = model.compile_config
    expect(
        config is not None,
        f"`{model.name}` was never compiled: call {model.name}.compile(optimizer=..., loss=..., metrics=[...])",
    )
    if optimizer is not None:
        used = _name(config.get("optimizer"))
        expect(
            used == optimizer.lower(),
            f"the model was compiled with optimizer {used!r}; expected {optimizer!r}",
        )
    if loss is not None:
        used = _name(config.get("loss"))
        expect(
            used == loss,
            f"the model was compiled with loss {used!r}; expected {loss!r} (labels are digits 0-9, not one-hot)",
        )
    if metric is not None:
        metrics = config.get("metrics") or []
        names = [_name(m) for m in (metrics if isinstance(metrics, list) else [metrics])]
        expect(
            any(metric in n for n in names),
            f"the model was compiled with metrics {names}; add metrics=['{metric}']",
        )
