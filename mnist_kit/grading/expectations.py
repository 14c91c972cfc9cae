"""The `expect_*` checks the suites share: architecture layer by layer, parameter count, accuracy.

Each raises `Fail` with a message that says what the model has, what was expected, and
what to change. They work the same for Keras models and PyTorch programs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from mnist_kit.grading.architecture import (
    WEIGHTED,
    Layer,
    Places,
    Step,
    align,
    layer_list,
    pairs,
    parse_spec,
)
from mnist_kit.grading.declare import Fail, expect
from mnist_kit.grading.graded_model import GradedModel, mnist_test_set

__all__ = [
    "expect_layer_kinds",
    "expect_layer_sizes",
    "expect_activations",
    "expect_params",
    "expect_accuracy",
    "expect_learned",
    "expect_class_recall",
    "expect_compiled",
    "expect_fit_history",
    "expect_kept_history",
    "expect_keras_sequential",
    "Recipe",
    "training_note",
]

COMPARED = ("Dense", "Conv2D", "MaxPooling2D", "Dropout")  # kinds whose settings are compared


def _aligned(
    model: GradedModel, expected: str
) -> tuple[list[Layer], list[Layer], list[Step], Places]:
    """The model's layers, the expected ones, their alignment and the names of the model's places."""
    spec, have = parse_spec(expected), model.layers
    steps = align(have, spec.layers)
    return have, spec.layers, steps, Places(spec, have, steps, model.framework)


def expect_layer_kinds(model: GradedModel, expected: str) -> None:
    """The model's layers are of the expected kinds, in the expected order.

    Layers are aligned first, so the message names what is missing, extra, swapped or of
    another kind where it is, not wherever the first difference in position falls.
    """
    have, want, steps, places = _aligned(model, expected)
    fw = model.framework
    problems = []
    next_have = 0  # the model's layer after the current place
    for step in steps:
        if step.op == "missing":
            item = (
                f" (item {places.spec.items[step.want]} of the list)"
                if places.style == "items"
                else ""
            )
            problems.append(
                f"a {want[step.want].show(fw)}{item} is missing {places.gap(next_have)}"
            )
        elif step.op == "extra":
            problems.append(f"{places.extra(step.have)} is extra")
        elif step.op == "swapped":
            first, second = want[step.want].show(fw), want[step.want + 1].show(fw)
            problems.append(
                f"{places.layer(step.have)} and {places.layer(step.have + 1)} are swapped: "
                f"put {first} before {second}"
            )
        elif step.op == "replaced":
            problems.append(
                f"{places.layer(step.have)} is {have[step.have].show(fw)}; expected {want[step.want].show(fw)}"
            )
        if step.have is not None:
            next_have = step.have + (2 if step.op == "swapped" else 1)
    if not problems:
        return
    raise Fail(
        f"{'; '.join(problems[:3])}. Your model has {len(have)} layers: {layer_list(have, fw) or 'none'}; "
        f"expected {len(want)}: {layer_list(want, fw)}"
    )


def _settings(layer: Layer, fields: list[str]) -> tuple[str, str]:
    """ "32 units and a 5x5 kernel" and, for one setting, its bare value too ("32")."""
    values = {
        "size": str(layer.size),
        "kernel": f"{layer.kernel[0]}x{layer.kernel[1]}" if layer.kernel else "none",
        "rate": f"{layer.rate:g}" if layer.rate is not None else "none",
    }
    words = {
        "size": f"{values['size']} {'filters' if layer.kind == 'Conv2D' else 'units'}",
        "kernel": f"a {values['kernel']} {'kernel' if layer.kind in WEIGHTED else 'pool'}",
        "rate": f"rate {values['rate']}",
    }
    phrase = " and ".join(words[f] for f in fields)
    return phrase, values[fields[0]] if len(fields) == 1 else phrase


def expect_layer_sizes(model: GradedModel, expected: str) -> None:
    """Units, filters, kernel and pool sizes and dropout rates match, layer by aligned layer."""
    have, want, steps, places = _aligned(model, expected)
    problems = []
    for i, j in pairs(steps):
        mine, theirs = have[i], want[j]
        if mine.kind != theirs.kind or mine.kind not in COMPARED:
            continue
        fields = [f for f in ("size", "kernel", "rate") if getattr(mine, f) != getattr(theirs, f)]
        if not fields:
            continue
        # "layer 4 has 32 units; expected 64", "... has 16 filters and a 5x5 kernel; expected 32 filters and a 3x3 kernel"
        problems.append(
            f"{places.layer(i)} has {_settings(mine, fields)[0]}; expected {_settings(theirs, fields)[1]}"
        )
    counts = {k: (sum(x.kind == k for x in have), sum(x.kind == k for x in want)) for k in COMPARED}
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
    """Every Dense/Conv2D layer has the expected activation (the last one included), aligned layer by layer."""
    have, want, steps, places = _aligned(model, expected)
    fw = model.framework
    for i, j in pairs(steps):
        mine, theirs = have[i], want[j]
        if mine.kind != theirs.kind or mine.kind not in WEIGHTED:
            continue
        got, wanted = mine.activation or "linear", theirs.activation or "linear"
        if got == wanted:
            continue
        has = "has no activation" if got == "linear" else f"has activation {got}"
        asked = "no activation" if wanted == "linear" else wanted
        hint = _activation_hint(model, mine, wanted)
        shown = replace(mine, activation="linear").show(
            fw
        )  # "Dense(128)": which layer, not its activation
        raise Fail(f"{places.layer(i)}, {shown}, {has}; expected {asked}: {hint}")


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


@dataclass(frozen=True)
class Recipe:
    """The training an assignment asks for: epochs at a batch size over `images` training images."""

    epochs: int
    batch_size: int
    images: int = 48_000  # MNIST's 60,000 less the 20% held out for validation

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.images // self.batch_size)

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def _epochs(count: float) -> str:
    return f"{count:.1f}".removesuffix(".0") + (" epoch" if count == 1 else " epochs")


def training_note(model: GradedModel, recipe: Recipe | None) -> str:
    """What the model's own step count says about how it was trained, or "" when it is as asked.

    The count comes from the student's kernel, so it only shapes the advice, never the grade.
    """
    steps = model.steps
    if recipe is None or steps is None or steps == recipe.steps:
        return ""
    asked = f"the assignment asks for {_epochs(recipe.epochs)} at batch size {recipe.batch_size} ({recipe.steps:,} steps)"
    if steps == 0:
        return f"`{model.name}` looks untrained (it took 0 optimizer steps); {asked}"
    per_epoch = model.steps_per_epoch or recipe.steps_per_epoch
    done = f"`{model.name}` took {steps:,} optimizer steps (about {_epochs(round(steps / per_epoch, 1))} of {per_epoch:,} batches)"
    if per_epoch != recipe.steps_per_epoch:
        return f"{done}; {asked}: check batch_size and the training images you pass"
    if steps > recipe.steps:
        return (
            f"{done}, more than {asked}: running the fit cell again keeps training the same model; "
            "run the cell that builds the model, then compile and fit it once"
        )
    return f"{done}; {asked}"


def expect_accuracy(
    model: GradedModel, threshold: float, how_to_train: str, recipe: Recipe | None = None
) -> None:
    """Accuracy on the 10,000 MNIST test images, measured by the grader, reaches the threshold.

    On a failure the message says what the model's training looked like next to the recipe.
    """
    accuracy = model.test_accuracy
    if accuracy >= threshold:
        expect_learned(model)
        return
    measured = f"test accuracy {accuracy:.4f} (measured by the grader on the 10,000 MNIST test images) is below {threshold}"
    note = training_note(model, recipe)
    if note:
        raise Fail(f"{measured}: {note}")
    if accuracy < 0.3:
        raise Fail(
            f"{measured}: `{model.name}` looks untrained; {how_to_train} before the end of the notebook"
        )
    raise Fail(f"{measured}: {how_to_train}, and feed it pixels scaled to [0, 1]")


VALIDATION_LOSS_TOLERANCE = (
    0.03  # relative: Keras computes from logits, the grader clips probabilities
)


def expect_fit_history(
    history: object, recipe: Recipe, model: GradedModel | None = None, name: str = "history"
) -> None:
    """`history` is what model.fit returned: a History holding the validation curves, epoch by epoch.

    With the graded `model`, its last fit ran the recipe's batches per epoch, and the last
    validation loss is the one the grader measures on the validation split (not the test set).
    """
    expect(
        isinstance(history, dict) and "loss" in history,
        f"`{name}` should hold what model.fit returned: write {name} = model.fit(...)",
    )
    expect(
        "val_loss" in history and "val_accuracy" in history,
        f"`{name}` has no validation curves ({', '.join(sorted(history))}): "
        "pass validation_data=(x_val, y_val) to model.fit",
    )
    epochs = len(np.atleast_1d(history["loss"]))
    expect(
        epochs == recipe.epochs,
        f"`{name}` holds {_epochs(epochs)}; expected one fit of {_epochs(recipe.epochs)}",
    )
    if model is None:
        return
    per_epoch = model.steps_per_epoch
    expect(
        per_epoch in (None, recipe.steps_per_epoch),
        f"the last fit ran {per_epoch:,} batches per epoch; batch_size={recipe.batch_size} gives "
        f"{recipe.steps_per_epoch:,} for the {recipe.images:,} training images",
    )
    logged = float(np.atleast_1d(history["val_loss"])[-1])
    measured = model.validation_loss
    expect(
        abs(logged - measured) <= max(VALIDATION_LOSS_TOLERANCE * measured, 0.002),
        f"`{name}`'s last val_loss is {logged:.4f}, but on the validation split (x_val, y_val) the "
        f"model's loss is {measured:.4f} (measured by the grader): pass validation_data=(x_val, y_val), "
        "not the test set, and keep the history of the model's only fit",
    )


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


def expect_kept_history(submission, probe, recipe: Recipe, model: str = "model") -> None:
    """The notebook kept what `model.fit` returned in `probe`'s variable, as `expect_fit_history` asks."""
    try:
        history = submission.call(probe)
    except Fail:
        raise Fail(
            f"no `{probe.name}` to read: keep what fit returns, {probe.name} = {model}.fit(..., "
            "validation_data=(x_val, y_val))"
        ) from None
    expect_fit_history(history, recipe, submission.model(model), probe.name)


def expect_keras_sequential(model: GradedModel, input_shape: tuple[int, ...]) -> None:
    """The Keras model is a `keras.Sequential` that takes images shaped `input_shape`."""
    kind = type(model.obj).__name__
    expect(
        kind == "Sequential",
        f"`{model.name}` is a {kind} model; build it as keras.Sequential([...]) with the listed layers",
    )
    shape = tuple(model.obj.inputs[0].shape[1:])
    expect(
        shape == input_shape,
        f"`{model.name}` takes inputs shaped {shape}; start it with keras.Input(shape={input_shape})",
    )


def expect_compiled(
    model: GradedModel,
    optimizer: str | None = None,
    loss: str | None = None,
    metric: str | None = None,
    learning_rate: float | None = None,
) -> None:
    """The Keras model was compiled with the expected optimizer (and rate), loss and metric."""
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
    if learning_rate is not None:
        settings = config.get("optimizer")
        settings = settings.get("config", {}) if isinstance(settings, dict) else {}
        rate = settings.get("learning_rate")
        expect(
            isinstance(rate, (int, float))
            and abs(rate - learning_rate) <= 1e-6 * learning_rate + 1e-9,
            f"the optimizer's learning rate is {rate!r}; expected {learning_rate:g}: "
            f"keras.optimizers.Adam(learning_rate={learning_rate:g})",
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
