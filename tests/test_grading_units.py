"""Fast tests of the grading pieces: architecture descriptions, checks and their messages, reports.

They build small real models in-process and go through the same save-and-load path the
grader uses; nothing here starts a kernel or trains for more than a moment.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mnist_kit.grading.architecture import Layer, parse_layers, tidy
from mnist_kit.grading.assignments import (
    ASSIGNMENTS,
    assignment_for_question,
    collect_probes,
    collect_tests,
    find_assignment,
    find_autograder,
    load_module,
    suite_module,
)
from mnist_kit.grading.check import Points, live_submission
from mnist_kit.grading.in_kernel import to_arrays
from mnist_kit.grading.report import GRADEBOOK_COLUMNS, feedback_markdown, write_gradebook
from mnist_kit.grading.results import GradeResult, TestResult, run_tests
from mnist_kit.grading.submission import _rebuild

ROOT = Path(__file__).resolve().parents[1]


def _results(suite, namespace, tmp_path, question=None):
    tests = [(f, i) for f, i in collect_tests(suite) if question is None or i.question == question]
    return {r.name: r for r in run_tests(tests, live_submission(namespace, tmp_path))}


@pytest.fixture(scope="module")
def keras():
    from mnist_kit.device import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def _keras_mlp(keras, hidden=(128, 64), activation="relu", compile_with="adam"):
    layers = [keras.Input(shape=(28, 28)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(units, activation=activation) for units in hidden]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    if compile_with:
        model.compile(
            optimizer=compile_with, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    return model


def test_parse_layers_reads_the_compact_spec():
    """Does the spec "Conv2D(32, 3x3, relu); Dropout(0.5); Dense(10)" become the right layers?"""
    layers = parse_layers("Conv2D(32, 3x3, relu); MaxPooling2D(2x2); Dropout(0.5); Dense(10)")
    assert layers == [
        Layer("Conv2D", size=32, kernel=(3, 3), activation="relu"),
        Layer("MaxPooling2D", kernel=(2, 2)),
        Layer("Dropout", rate=0.5),
        Layer("Dense", size=10, activation="linear"),
    ]
    assert (
        str(layers[0]) == "Conv2D(32, 3x3, relu)"
        and layers[0].show("torch") == "Conv2d(32, 3x3, relu)"
    )


def test_tidy_folds_separate_activations_into_their_layer():
    """Is Dense(128) followed by Activation(relu) read as Dense(128, relu)?"""
    layers = tidy(
        [
            Layer("Flatten"),
            Layer("Dense", 128, activation="linear"),
            Layer("Activation", activation="relu"),
        ]
    )
    assert [str(x) for x in layers] == ["Flatten", "Dense(128, relu)"]


def test_keras_mlp_with_wrong_sizes_gets_partial_credit_and_messages(keras, tmp_path):
    """Does a Dense(32) instead of Dense(64), compiled with SGD, lose exactly those points with clear messages?"""
    model = _keras_mlp(keras, hidden=(128, 32), compile_with="sgd")
    results = _results(suite_module(find_assignment("02")), {"model": model}, tmp_path)
    assert results["test_layer_kinds"].passed and results["test_activations"].passed
    assert results["test_layer_sizes"].message == "layer 4 has 32 units; expected 64"
    assert "104,938 trainable parameters; expected 109,386" in results["test_param_count"].message
    assert "'sgd'; expected 'adam'" in results["test_optimizer"].message
    assert results["test_loss_and_metric"].passed
    assert (
        not results["test_accuracy"].passed
        and "looks untrained" in results["test_accuracy"].message
    )


def test_keras_missing_activation_is_named(keras, tmp_path):
    """Does a Dense(128) without activation get a message naming the layer and the fix?"""
    model = _keras_mlp(keras, activation=None)
    results = _results(
        suite_module(find_assignment("02")), {"model": model}, tmp_path, "q2_architecture"
    )
    assert results["test_activations"].message.startswith(
        "layer 3, Dense(128), has no activation; expected relu: pass activation='relu'"
    )
    assert results["test_layer_sizes"].passed and results["test_param_count"].passed


def test_missing_model_and_uncompiled_model_give_actionable_messages(keras, tmp_path):
    """Do a missing `model` and an uncompiled one say what to do instead of crashing?"""
    missing = _results(suite_module(find_assignment("02")), {}, tmp_path / "a", "q2_architecture")
    assert all("no variable named `model`" in r.message for r in missing.values())
    uncompiled = _results(
        suite_module(find_assignment("02")),
        {"model": _keras_mlp(keras, compile_with=None)},
        tmp_path / "b",
    )
    assert "was never compiled" in uncompiled["test_optimizer"].message


def test_torch_modules_are_described_like_keras_models(tmp_path):
    """Are a functional-style nn.Module MLP and an nn.Sequential CNN described layer by layer, with parameter counts?"""
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)

        def forward(self, x):
            x = x.view(x.size(0), -1)
            return torch.softmax(self.c(torch.relu(self.b(torch.relu(self.a(x))))), dim=1)

    cnn = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
    )  # fmt: skip
    suite = suite_module(find_assignment("04"))
    results = _results(suite, {"mlp_model": MLP(), "cnn_model": cnn}, tmp_path)
    assert results["test_mlp_layers"].passed and results["test_mlp_param_count"].passed
    assert results["test_mlp_activations"].message.startswith(
        "your third Linear, Linear(10), has activation softmax; expected no activation"
    )
    assert all(
        results[name].passed
        for name in ("test_cnn_layers", "test_cnn_activations", "test_cnn_param_count")
    )


def test_training_loop_probe_tells_a_working_loop_from_a_broken_one(tmp_path):
    """Does the loss-falls test pass a real loop and fail one that never calls optimizer.step()?"""
    from torch import nn

    def good(model, loader, optimizer, loss_fn):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            loss_fn(model(images), labels).backward()
            optimizer.step()

    def no_step(model, loader, optimizer, loss_fn):
        for images, labels in loader:
            loss_fn(model(images), labels).backward()

    def mlp():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))

    suite = suite_module(find_assignment("04"))
    ok = _results(suite, {"MLP": mlp, "train_one_epoch": good}, tmp_path / "a", "q4_training")
    broken = _results(
        suite, {"MLP": mlp, "train_one_epoch": no_step}, tmp_path / "b", "q4_training"
    )
    assert ok["test_training_lowers_loss"].passed and ok["test_training_mode"].passed
    assert "did not change the weights" in broken["test_training_lowers_loss"].message
    assert "call model.train()" in broken["test_training_mode"].message


def _errors_namespace(find_misclassified):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def confusion_matrix(labels, predicted):
        matrix = np.zeros((10, 10), dtype=int)
        np.add.at(matrix, (labels, predicted), 1)
        return matrix

    def show_misclassified(images, outputs, labels, max_images=12):
        predicted = np.asarray(outputs).argmax(axis=1)
        wrong = np.nonzero(predicted != labels)[0][:max_images]
        figure, axes = plt.subplots(1, len(wrong), squeeze=False)
        for ax, index in zip(axes[0], wrong, strict=True):
            ax.imshow(images[index])
            ax.set_title(f"{predicted[index]} (true {labels[index]})")
        plt.show()
        return figure

    return {"find_misclassified": find_misclassified, "confusion_matrix": confusion_matrix,
            "show_misclassified": show_misclassified}  # fmt: skip


def test_error_finder_returning_labels_is_told_to_return_indices(tmp_path):
    """Does a find_misclassified that returns labels instead of indices get that exact message?"""

    def returns_labels(outputs, labels):
        predicted = np.asarray(outputs).argmax(axis=1)
        return predicted[predicted != labels]

    results = _results(
        suite_module(find_assignment("05")), _errors_namespace(returns_labels), tmp_path
    )
    message = results["test_misclassified_from_probabilities"].message
    assert "returned the predicted digits" in message and "return the indices" in message
    assert results["test_confusion_matrix"].passed
    assert results[
        "test_gallery"
    ].passed  # a figure shown with plt.show() and not returned still counts
    assert "no function named `most_confused`" in results["test_most_confused"].message


def test_hidden_edge_cases_catch_what_visible_tests_miss(tmp_path):
    """Do the hidden tests fail a find_misclassified that breaks ties the wrong way?"""

    def last_max(outputs, labels):  # takes the last of tied maxima, unlike np.argmax
        outputs = np.asarray(outputs)
        predicted = outputs.shape[1] - 1 - outputs[:, ::-1].argmax(axis=1)
        return np.nonzero(predicted != labels)[0]

    module = load_module(ROOT / "autograder" / "test_05_errors.py")
    tests = [(f, i) for f, i in collect_tests(module) if i.question == "q5_misclassified"]
    results = {
        r.name: r for r in run_tests(tests, live_submission(_errors_namespace(last_max), tmp_path))
    }
    assert (
        results["test_misclassified_from_probabilities"].passed
        and results["test_all_correct"].passed
    )
    assert not results["test_ties"].passed and results["test_ties"].hidden


def test_outputs_survive_the_trip_through_npz():
    """Do nested tuples, dicts, lists of triples and None come back from arrays as they went in?"""
    value = ((np.arange(3), np.ones((2, 2))), {"loss": [0.5, 0.25]}, [(4, 9, 30), (3, 5, 25)], None)
    arrays, structure = to_arrays(value)
    back = _rebuild(structure, arrays)
    assert np.array_equal(back[0][0], np.arange(3)) and back[1]["loss"].tolist() == [0.5, 0.25]
    assert back[2].tolist() == [[4, 9, 30], [3, 5, 25]] and back[3] is None


def test_notebook_points_match_the_autograder():
    """Does every graded cell of every solution carry exactly the points of its question's tests?"""
    import nbformat

    for assignment in ASSIGNMENTS.values():
        tests = collect_tests(load_module(find_autograder() / assignment.autograder_file))
        nb = nbformat.read(
            str(ROOT / "solutions" / assignment.name / assignment.notebook), as_version=4
        )
        cells = {
            c.metadata["nbgrader"]["grade_id"]: c
            for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")
        }
        questions = {i.question for _, i in tests if not i.extra_credit}
        assert set(cells) == questions, assignment.name
        for question, cell in cells.items():
            points = sum(
                i.points for _, i in tests if i.question == question and not i.extra_credit
            )
            assert cell.metadata["nbgrader"]["points"] == points, question
            assert f'check("{question}")' in cell.source
            assert ("### BEGIN HIDDEN TESTS" in cell.source) == any(
                i.hidden for _, i in tests if i.question == question
            )


def test_visible_tests_ship_with_the_kit_and_hidden_ones_do_not():
    """Are the package's suites free of hidden tests, and does every autograder module include its suite?"""
    for assignment in ASSIGNMENTS.values():
        suite = collect_tests(suite_module(assignment))
        assert suite and not any(i.hidden for _, i in suite)
        module = load_module(find_autograder() / assignment.autograder_file)
        names = {f.__name__ for f, _ in collect_tests(module)}
        assert {f.__name__ for f, _ in suite} <= names
        assert collect_probes(module) or assignment.models


def test_questions_and_names_resolve():
    """Do question ids, numbers and short names all find their assignment, and do bad ones explain themselves?"""
    assert assignment_for_question("q5_confusion").name == "05-errors"
    assert find_assignment(2).name == find_assignment("keras-mlp").name == "02-keras-mlp"
    with pytest.raises(ValueError, match="choose one of"):
        find_assignment("07-gans")


def test_points_print_as_a_plain_number_for_nbgrader():
    """Does check()'s return value show as a bare float, which nbgrader reads as partial credit?"""
    assert repr(Points(3.0)) == "3.0" and float(repr(Points(2.5))) == 2.5


def test_gradebook_and_feedback_hide_hidden_messages(tmp_path):
    """Does the CSV have a row per test plus a TOTAL row, and does feedback keep hidden-test messages out?"""
    tests = [
        TestResult("test_a", "q5_x", 1.0, 1.0, True, "passed", description="Is a right?"),
        TestResult("test_b", "q5_x", 0.0, 2.0, False, "secret edge case input", hidden=True),
        TestResult(
            "test_c",
            "q5_y",
            0.0,
            1.0,
            False,
            "return indices, not labels",
            description="Is c right?",
        ),
    ]
    result = GradeResult.build("alice/05-errors.ipynb", "05-errors", tests, 3.0)
    path = write_gradebook([result], tmp_path / "grades.csv")
    rows = list(csv.DictReader(path.open()))
    assert tuple(rows[0]) == GRADEBOOK_COLUMNS and len(rows) == 4
    assert (
        rows[-1]["test"] == "TOTAL" and rows[-1]["points"] == "1" and rows[-1]["max_points"] == "4"
    )
    text = feedback_markdown(result)
    assert "return indices, not labels" in text and "secret edge case" not in text
    assert json.loads(json.dumps(result.to_json()))["score"] == 1.0
