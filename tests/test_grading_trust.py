"""Is a grade defensible? Training evidence, instructions checked, and names the student sees.

Real Keras and PyTorch models are trained briefly in-process and go through the grader's own
save-and-load path; the check() tests call check() the way a notebook cell does.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from mnist_kit.grading.assignments import ASSIGNMENTS, collect_tests, find_autograder, load_module
from mnist_kit.grading.check import Points, live_submission
from mnist_kit.grading.declare import Fail
from mnist_kit.grading.expectations import (
    Recipe,
    expect_accuracy,
    expect_fit_history,
    training_note,
)
from mnist_kit.grading.in_kernel import count_optimizer_steps
from mnist_kit.grading.questions import HIDDEN_POINTS, QUESTION_TITLES
from mnist_kit.grading.suites import keras_mlp

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def keras():
    from mnist_kit.device import import_tensorflow

    import_tensorflow()
    import keras

    return keras


@pytest.fixture(scope="module")
def small_mnist(mnist):
    """2,000 scaled training images and their labels, plus a validation slice."""
    from mnist_kit.data import scale_pixels

    (x, y), _ = mnist
    x, y = scale_pixels(x[:2400]), y[:2400]
    return (x[:2000], y[:2000]), (x[2000:], y[2000:])


def _mlp(keras):
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_refit_model_is_told_it_trained_too_long(keras, small_mnist, tmp_path):
    """Does a model whose fit cell ran twice hear that it trained for 2 epochs, not the 1 asked?"""
    (x, y), _ = small_mnist
    model = _mlp(keras)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # the cell run again
    graded = live_submission({"model": model}, tmp_path).model("model")
    recipe = Recipe(epochs=1, batch_size=32, images=2000)
    assert graded.steps == 2 * 63 and graded.steps_per_epoch == 63
    with pytest.raises(Fail) as failed:
        expect_accuracy(graded, 0.999, "train it", recipe)
    message = str(failed.value)
    assert "126 optimizer steps (about 2 epochs of 63 batches)" in message
    assert "running the fit cell again keeps training the same model" in message
    assert "1 epoch at batch size 32 (63 steps)" in message


def test_a_model_trained_as_asked_gets_no_training_note(keras, small_mnist, tmp_path):
    """Is the note left out when the steps are what the recipe gives, and a wrong batch size named?"""
    (x, y), _ = small_mnist
    model = _mlp(keras)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    graded = live_submission({"model": model}, tmp_path).model("model")
    assert training_note(graded, Recipe(epochs=1, batch_size=32, images=2000)) == ""
    note = training_note(graded, Recipe(epochs=1, batch_size=128, images=2000))
    assert "about 1 epoch of 63 batches" in note and "check batch_size" in note
    under = training_note(graded, Recipe(epochs=2, batch_size=32, images=2000))
    assert under.endswith("the assignment asks for 2 epochs at batch size 32 (126 steps)")


def test_history_must_hold_validation_curves_and_the_epochs(keras, small_mnist):
    """Are a fit without validation_data, a fit of the wrong length and no History each named?"""
    (x, y), (x_val, y_val) = small_mnist
    model = _mlp(keras)
    plain = model.fit(x, y, epochs=2, batch_size=256, verbose=0).history
    with pytest.raises(Fail, match="pass validation_data=\\(x_val, y_val\\)"):
        expect_fit_history(plain, Recipe(epochs=2, batch_size=256))
    validated = model.fit(
        x, y, epochs=2, batch_size=256, validation_data=(x_val, y_val), verbose=0
    ).history
    expect_fit_history(validated, Recipe(epochs=2, batch_size=256))
    with pytest.raises(Fail, match="holds 2 epochs; expected one fit of 5 epochs"):
        expect_fit_history(validated, Recipe(epochs=5, batch_size=256))
    with pytest.raises(Fail, match="history = model.fit"):
        expect_fit_history(None, Recipe(epochs=5, batch_size=256))


def test_the_history_check_reads_the_notebooks_history(keras, small_mnist, tmp_path):
    """Does assignment 2's history test fail with no `history` and with one lacking validation?"""
    (x, y), _ = small_mnist
    model = _mlp(keras)
    history = model.fit(x, y, epochs=5, batch_size=500, verbose=0)
    for namespace, expected in (
        ({"model": model}, "no `history` to read"),
        ({"model": model, "history": history}, "pass validation_data"),
    ):
        with pytest.raises(Fail, match=expected):
            keras_mlp.test_history(live_submission(namespace, tmp_path / str(len(namespace))))


def test_torch_optimizer_steps_are_counted_per_model(tmp_path):
    """Are a PyTorch model's optimizer steps counted, separately from another model's?"""
    import torch

    count_optimizer_steps()
    first, second = torch.nn.Linear(784, 10), torch.nn.Linear(784, 10)
    for model, steps in ((first, 7), (second, 3)):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(steps):
            optimizer.zero_grad()
            model(torch.zeros(4, 784)).sum().backward()
            optimizer.step()
    wrapped = {"a": torch.nn.Sequential(torch.nn.Flatten(), first), "b": second}
    submission = live_submission(wrapped, tmp_path)
    assert submission.model("a").steps == 7
    assert submission.model("b").steps == 3


def _run_check(question: str, namespace: dict) -> tuple[str, Points]:
    """check(question) as a notebook cell runs it: in the notebook's namespace."""
    out = io.StringIO()
    namespace = {**namespace, "__name__": "__main__"}
    exec("from mnist_kit.grading import check\n", namespace)
    with contextlib.redirect_stdout(out):
        points = eval(f"check({question!r})", namespace)
    return out.getvalue(), points


def test_check_names_the_question_as_the_notebook_does_and_says_a_reason_once():
    """With nothing written yet, does check() use the notebook's title and say "no model" once?"""
    printed, points = _run_check("q2_architecture", {})
    assert printed.startswith("Question 1: build the model (q2_architecture): 0/4 points")
    assert printed.count("no variable named `model`") == 1
    assert printed.count("(same reason as above)") == 3
    assert points == 0 and repr(points) == "0.0"
    assert Points(3)._repr_html_() == "<code>3 points</code>"


def test_check_says_how_many_points_are_hidden():
    """Does a question with hidden tests say its visible points and how many more are hidden?"""
    printed, _ = _run_check("q2_accuracy", {})
    assert "Question 3: train it (q2_accuracy): 0/4 points from the visible tests" in printed
    assert "1 more from hidden tests when your teacher grades" in printed


def _split_namespace(split_source: str) -> dict:
    """A notebook namespace with assignment 1's `split_train_val` defined by `split_source`."""
    namespace = {"__name__": "__main__"}
    exec("import numpy as np\nfrom mnist_kit.grading import check\n" + split_source, namespace)
    return namespace


def _check(namespace: dict, call: str) -> Points:
    with contextlib.redirect_stdout(io.StringIO()):
        return eval(call, namespace)


SPLIT = """
def split_train_val(images, labels, val_fraction=0.2, seed=42):
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = round(len(images) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return (images[train], labels[train]), (images[val], labels[val])
"""
UNSHUFFLED = SPLIT.replace(
    "np.random.default_rng(seed).permutation(len(images))", "np.arange(len(images))"
)


def test_each_check_call_counts_only_the_tests_it_runs():
    """Does check(hidden=True) give the same points whatever check() calls ran before it in the
    kernel, counting the visible tests it runs again itself, never an earlier call's points?"""
    hidden, visible = "check('q1_split', hidden=True)", "check('q1_split')"
    namespace = _split_namespace(SPLIT)
    alone = _check(namespace, hidden)
    assert alone == 6  # 4 visible + 2 hidden points, all run by this call
    assert _check(namespace, visible) == 4
    assert _check(namespace, hidden) == alone
    exec(UNSHUFFLED, namespace)  # the student breaks the function after a passing check
    broken = _check(namespace, hidden)
    assert broken < alone
    assert broken == _check(_split_namespace(UNSHUFFLED), hidden)
    assert _check(namespace, visible) == _check(_split_namespace(UNSHUFFLED), visible) < 4


def _points(assignment) -> dict[str, tuple[float, float, float]]:
    """question -> (points, hidden points, extra credit) from the autograder."""
    found: dict[str, list[float]] = {}
    for _, info in collect_tests(load_module(find_autograder() / assignment.autograder_file)):
        totals = found.setdefault(info.question, [0.0, 0.0, 0.0])
        totals[2 if info.extra_credit else 0] += info.points
        totals[1] += info.points if info.hidden else 0.0
    return {q: tuple(v) for q, v in found.items()}


def test_question_titles_and_points_match_every_notebook_heading():
    """Does each question's title appear as a heading with the points its tests carry?"""
    for assignment in ASSIGNMENTS.values():
        nb = nbformat.read(ROOT / "solutions" / assignment.name / assignment.notebook, 4)
        headings = {
            line[3:].split(" (")[0]: line
            for cell in nb.cells
            if cell.cell_type == "markdown"
            for line in cell.source.splitlines()
            if line.startswith("## ")
        }
        by_title: dict[str, list[float]] = {}
        for question, (points, hidden, extra) in _points(assignment).items():
            assert HIDDEN_POINTS.get(question, 0.0) == hidden, question
            title = QUESTION_TITLES[question]
            assert title in headings, f"{assignment.name}: no heading '## {title} (...)'"
            totals = by_title.setdefault(title, [0.0, 0.0])
            totals[0] += points
            totals[1] += extra
        for title, (points, extra) in by_title.items():
            heading = headings[title]
            said = re.search(r"\((\d+) points?", heading)
            assert said and float(said.group(1)) == points, heading
            if extra:
                assert f"plus {extra:g} extra credit" in heading, heading


def test_points_print_plainly_for_nbgrader_partial_credit():
    """Does nbgrader read the check cell's output as the points (text/plain stays a number)?"""
    from nbgrader.utils import determine_grade

    cell = nbformat.v4.new_code_cell(
        'check("q2_architecture")',
        metadata={"nbgrader": {"grade": True, "solution": False, "points": 4, "grade_id": "x"}},
    )
    points = Points(3)
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            data={"text/plain": repr(points), "text/html": points._repr_html_()},
            execution_count=1,
        )
    ]
    assert determine_grade(cell) == (3.0, 4.0)
    assert np.isclose(float(points), 3.0)


def _torch_mlp():
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))


def _loop(zero_grad=True, result="mean", by_hand=False, scheduler=False):
    """A train_one_epoch with one of the instructions left out (or followed another way)."""

    def train_one_epoch(model, loader, optimizer, loss_fn):
        import torch

        model.train()
        total, count = 0.0, 0
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, 4) if scheduler else None
        for images, labels in loader:
            if zero_grad and by_hand:
                for parameter in model.parameters():
                    parameter.grad = None
            elif zero_grad:
                optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total += loss.item() * len(labels)
            count += len(labels)
        if result == "sum":
            return total
        if result == "tensor":
            return loss
        return total / count

    return train_one_epoch


def test_the_training_loop_instructions_are_each_checked(tmp_path):
    """Are a loop without zero_grad, one returning the sum, and one returning a tensor each told?

    Clearing the gradients by hand and stepping a learning-rate scheduler are correct too.
    """
    from mnist_kit.grading.assignments import find_assignment, suite_module
    from mnist_kit.grading.results import run_tests

    suite = suite_module(find_assignment("04"))
    tests = [
        (f, i) for f, i in collect_tests(suite) if f.__name__ == "test_training_steps_every_batch"
    ]
    outcomes = {}
    for name, loop in (
        ("good", _loop()),
        ("by_hand", _loop(by_hand=True)),
        ("scheduler", _loop(scheduler=True)),
        ("no_zero_grad", _loop(zero_grad=False)),
        ("sum", _loop(result="sum")),
        ("tensor", _loop(result="tensor")),
    ):
        namespace = {"MLP": _torch_mlp, "train_one_epoch": loop}
        outcomes[name] = run_tests(tests, live_submission(namespace, tmp_path / name))[0]
    for name in ("good", "by_hand", "scheduler"):
        assert outcomes[name].passed, (name, outcomes[name].message)
    assert "in 15 of 16 batches, loss.backward() added to the gradients" in (
        outcomes["no_zero_grad"].message
    )
    assert "not their sum" in outcomes["sum"].message
    assert "returned a Tensor" in outcomes["tensor"].message


def test_evaluate_without_no_grad_is_told(tmp_path):
    """Does an evaluate that leaves autograd on fail with the torch.no_grad() advice?"""
    import torch

    from mnist_kit.grading.suites import pytorch

    def evaluate(model, loader):
        model.eval()
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
        return correct / len(loader.dataset)

    def evaluate_no_grad(model, loader):
        with torch.no_grad():
            return evaluate(model, loader)

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    for function, passes in ((evaluate, False), (evaluate_no_grad, True)):
        namespace = {"cnn_model": model, "evaluate": function}
        submission = live_submission(namespace, tmp_path / function.__name__)
        if passes:
            pytorch.test_evaluate_mode(submission)
        else:
            with pytest.raises(Fail, match="torch.no_grad"):
                pytorch.test_evaluate_mode(submission)


def test_keras_model_must_be_sequential_with_the_listed_input(keras, tmp_path):
    """Are a functional model and a model taking flat (784,) inputs each named?"""
    inputs = keras.Input(shape=(28, 28))
    hidden = keras.layers.Dense(64, activation="relu")(
        keras.layers.Dense(128, activation="relu")(keras.layers.Flatten()(inputs))
    )
    functional = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))
    flat = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    for model, expected in ((functional, "is a Functional model"), (flat, "shaped (784,)")):
        with pytest.raises(Fail, match=re.escape(expected)):
            keras_mlp.test_layer_kinds(live_submission({"model": model}, tmp_path / expected[:8]))


def test_validation_on_the_test_set_and_another_batch_size_are_told(keras, mnist, tmp_path):
    """Does a fit validated on the test set, or at batch size 64, fail the history check?"""
    from mnist_kit.data import scale_pixels, train_val_split

    (x_full, y_full), (x_test, y_test) = mnist
    (x, y), (x_val, y_val) = train_val_split(scale_pixels(x_full), y_full, seed=42)
    x_test = scale_pixels(x_test)
    recipe = Recipe(epochs=1, batch_size=500)
    results = {}
    for name, batch, validation in (
        ("right", 500, (x_val, y_val)),
        ("test set", 500, (x_test, y_test)),
        ("batch", 1000, (x_val, y_val)),
    ):
        model = _mlp(keras)
        history = model.fit(x, y, epochs=1, batch_size=batch, validation_data=validation, verbose=0)
        graded = live_submission({"model": model}, tmp_path / name[:4]).model("model")
        try:
            expect_fit_history(history.history, recipe, graded)
            results[name] = "passed"
        except Fail as failed:
            results[name] = str(failed)
    assert results["right"] == "passed"
    assert "not the test set" in results["test set"]
    assert "the last fit ran 48 batches per epoch; batch_size=500 gives 96" in results["batch"]


def _show_digits(rows=2, columns=5, cmap="gray", returns=True):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def show_digits(images, labels):
        figure, axes = plt.subplots(rows, columns)
        for index, ax in enumerate(np.ravel(axes)[:10]):
            ax.imshow(images[index], cmap=cmap)
            ax.set_title(f"label {labels[index]}")
        return figure if returns else None

    return show_digits


def test_figure_instructions_are_checked(tmp_path):
    """Are a 1x10 grid, another colormap and a figure not returned each told, and the asked one passed?"""
    from mnist_kit.grading.suites import data

    outcomes = {}
    for name, function in (
        ("asked", _show_digits()),
        ("row", _show_digits(rows=1, columns=10)),
        ("viridis", _show_digits(cmap="viridis")),
        ("none", _show_digits(returns=False)),
    ):
        try:
            data.test_show_ten_digits(live_submission({"show_digits": function}, tmp_path / name))
            outcomes[name] = "passed"
        except Fail as failed:
            outcomes[name] = str(failed)
    assert outcomes["asked"] == "passed"
    assert "drew a 1x10 grid; use plt.subplots(2, 5)" in outcomes["row"]
    assert "colormap viridis; pass cmap='gray'" in outcomes["viridis"]
    assert "did not return it: end with `return figure`" in outcomes["none"]


def test_split_default_seed_must_be_42(tmp_path):
    """Is a split whose default seed is not 42 told to make 42 the default?"""
    from mnist_kit.grading.suites import data

    def split_train_val(images, labels, val_fraction=0.2, seed=0):
        order = np.random.default_rng(seed).permutation(len(images))
        n_val = round(len(images) * val_fraction)
        val, train = order[:n_val], order[n_val:]
        return (images[train], labels[train]), (images[val], labels[val])

    with pytest.raises(Fail, match="make seed=42 the default"):
        data.test_split_seeded(live_submission({"split_train_val": split_train_val}, tmp_path))


def test_indices_as_a_column_are_refused(tmp_path):
    """Is an (n, 1) array of indices told to be 1-D?"""
    from mnist_kit.grading.suites import errors

    def find_misclassified(outputs, labels):
        return np.argwhere(np.asarray(outputs).argmax(axis=1) != labels)

    submission = live_submission({"find_misclassified": find_misclassified}, tmp_path)
    with pytest.raises(Fail, match="return a 1-D array of indices"):
        errors.test_misclassified_from_probabilities(submission)


def test_cnn_learning_rate_is_checked(keras, tmp_path):
    """Is a CNN compiled with Adam's default 1e-3, not the asked 3e-3, told the rate to use?"""
    from mnist_kit.grading.suites import keras_cnn

    model = keras.Sequential(
        [keras.Input(shape=(28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(Fail, match=re.escape("keras.optimizers.Adam(learning_rate=0.003)")):
        keras_cnn.test_compiled(live_submission({"model": model}, tmp_path))


def test_the_framework_a_challenge_notebook_imports_is_seeded():
    """Assignment 6 lets the student pick Keras or PyTorch: is the one imported seeded at import,
    and the other never imported by the grader?"""
    import subprocess
    import sys

    from mnist_kit.grading.assignments import find_assignment
    from mnist_kit.grading.engine import kernel_preamble

    code = kernel_preamble(find_assignment("06")) + (
        "\nimport sys\nassert 'torch' not in sys.modules and 'keras' not in sys.modules"
        "\nimport torch\nfirst = torch.rand(3)\ntorch.manual_seed(0)"
        "\nassert torch.equal(first, torch.rand(3)), 'torch was not seeded at import'"
        "\nassert 'keras' not in sys.modules\nprint('seeded')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "seeded", done.stderr[-2000:]
