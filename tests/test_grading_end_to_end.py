"""End-to-end grading of real notebooks: solutions, untouched exercises, crafted submissions, nbgrader.

Slow: notebooks train at the assignments' own settings. Every notebook is graded once per
module (fixtures) and reused by all the tests that ask about it. Crafted submissions live in
tests/files/submissions/, broken files in tests/files/broken/.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from mnist_kit.grading.assignments import ASSIGNMENTS
from mnist_kit.grading.cli import add_arguments, run
from mnist_kit.grading.engine import Grader

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "tests" / "files" / "submissions"
NAMES = list(ASSIGNMENTS)


def _grade_all(folder: str) -> dict:
    return {name: Grader(name).grade(ROOT / folder / name / f"{name}.ipynb") for name in NAMES}


@pytest.fixture(scope="module")
def solution_grades():
    """Every solution notebook graded once as a submission."""
    return _grade_all("solutions")


@pytest.fixture(scope="module")
def exercise_grades():
    """Every untouched student notebook graded once."""
    return _grade_all("exercises")


@pytest.fixture(scope="module")
def crafted():
    """The crafted submissions, graded once each, by file name."""
    grades = {}
    for name, assignment in (
        ("02-classic-mlp", "02"), ("03-classic-cnn", "03"), ("02-wrong-layer-size", "02"),
        ("02-missing-activation", "02"), ("02-never-trained", "02"), ("05-labels-not-indices", "05"),
    ):  # fmt: skip
        grades[name] = Grader(assignment).grade(SUBMISSIONS / f"{name}.ipynb")
    return grades


def _by_name(result):
    return {t.name: t for t in result.tests}


@pytest.mark.parametrize("name", NAMES)
def test_solution_gets_full_marks(solution_grades, name):
    """Does each solution notebook, graded as a submission, get every point?"""
    result = solution_grades[name]
    failed = [f"{t.name}: {t.message}" for t in result.tests if not t.passed and not t.extra_credit]
    assert result.error is None and failed == [], failed
    assert result.score >= result.max_score > 0


@pytest.mark.parametrize("name", NAMES)
def test_untouched_exercise_gets_zero_with_messages(exercise_grades, name):
    """Does an exercise handed in untouched get 0 points, a message per test, and no crash?"""
    result = exercise_grades[name]
    assert result.error is None and result.score == 0
    for test in result.tests:
        assert (
            not test.passed
            and test.message
            and not test.message.startswith("the check could not run")
        ), test
    assert any("NotImplementedError" in note for note in result.notes)


def test_classic_tutorial_code_passes(crafted):
    """Do a pasted tutorial Keras MLP and CNN (no kit helpers, no seeds) pass architecture and accuracy?"""
    for name in ("02-classic-mlp", "03-classic-cnn"):
        tests = _by_name(crafted[name])
        for test in (
            "test_layer_kinds",
            "test_layer_sizes",
            "test_activations",
            "test_param_count",
            "test_accuracy",
        ):
            assert tests[test].passed, (name, tests[test].message)


def test_wrong_layer_size_gets_partial_credit(crafted):
    """Does Dense(32) in place of Dense(64) cost the size and parameter points, with the layer named?"""
    result = crafted["02-wrong-layer-size"]
    tests = _by_name(result)
    assert tests["test_layer_sizes"].message == "layer 4 has 32 units; expected 64"
    assert "expected 109,386" in tests["test_param_count"].message
    assert (
        tests["test_layer_kinds"].passed
        and tests["test_activations"].passed
        and tests["test_optimizer"].passed
    )
    assert 0 < result.score < result.max_score


def test_missing_activation_is_named(crafted):
    """Does a Dense(128) without activation lose the activation point with a message saying where?"""
    tests = _by_name(crafted["02-missing-activation"])
    assert tests["test_activations"].message.startswith(
        "layer 3, Dense(128), has no activation; expected relu"
    )
    assert tests["test_layer_sizes"].passed and tests["test_param_count"].passed


def test_never_trained_model_gets_architecture_points_only(crafted):
    """Does a correct but untrained model keep its architecture points and lose the accuracy ones?"""
    result = crafted["02-never-trained"]
    tests = _by_name(result)
    assert "looks untrained" in tests["test_accuracy"].message
    assert all(t.passed for t in result.tests if t.question in ("q2_architecture", "q2_compile"))
    assert result.score == 6


def test_error_finder_returning_labels_gets_partial_credit(crafted):
    """Does returning labels instead of indices fail those tests, say why, and keep the other points?"""
    result = crafted["05-labels-not-indices"]
    tests = _by_name(result)
    assert "returned the predicted digits" in tests["test_misclassified_from_probabilities"].message
    assert tests["test_confusion_matrix"].passed and tests["test_most_confused"].passed
    # The student's gallery calls their own find_misclassified, so it shows the wrong images too.
    assert not tests["test_gallery"].passed
    # Kept: confusion matrix 2 + 1 hidden, most confused 1 + 2 hidden (the second hidden one, fewer
    # non-zero pairs than k, is new), and the hidden all-correct case (an empty result is right
    # whatever it would have held).
    assert result.score == 7


def test_cli_grades_the_good_and_reports_the_broken(tmp_path, broken_notebook):
    """Do broken files get error rows while a good notebook in the same run is still fully graded?"""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    files = [
        broken_notebook(stem, f"broken-{stem}.ipynb") for stem in ("empty", "truncated", "script")
    ]
    files.insert(1, ROOT / "solutions" / "01-data" / "01-data.ipynb")
    args = parser.parse_args(
        ["--assignment", "01-data", *map(str, files), "--json", "--out", str(tmp_path / "grades.csv"),
         "--feedback", str(tmp_path / "feedback")]
    )  # fmt: skip
    out = io.StringIO()
    with redirect_stdout(out):
        assert run(args) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["error"] is None for line in lines] == [False, True, False, False]
    assert lines[1]["score"] == lines[1]["max_score"] == 10
    assert "empty" in lines[0]["error"] and "a Python script, not a notebook" in lines[3]["error"]
    for line in lines:
        assert {
            "submission",
            "assignment",
            "score",
            "max_score",
            "tests",
            "seconds",
            "error",
        } <= set(line)
        assert all(
            {"name", "points", "max_points", "passed", "message"} <= set(t) for t in line["tests"]
        )
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert len(rows) == 4 * (len(lines[1]["tests"]) + 1)
    assert (
        len(list((tmp_path / "feedback").glob("*.md")))
        == len(list((tmp_path / "feedback").glob("*.html")))
        == 4
    )


def _nbgrader(course: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


THROUGH_NBGRADER = ("01-data", "05-errors")  # solutions autograded by nbgrader too (quick ones)


def test_nbgrader_workflow_agrees_with_mnist_kit_grade(tmp_path, solution_grades, exercise_grades):
    """Do generate_assignment, autograde, generate_feedback and export run, and give the same scores?"""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copytree(ROOT / "autograder", course / "autograder")
    _nbgrader(course, "generate_assignment", "*", "--force")
    # Every blank goes through nbgrader; of the solutions only the two quick ones: autograde runs
    # the kit's own grader (tests/test_nbgrader_fence.py), and test_solution_gets_full_marks
    # grades all six solutions already, so the long trainings are not run a second time here.
    for name in NAMES:
        for student, folder in (("solution", "solutions"), ("blank", "exercises")):
            if student == "solution" and name not in THROUGH_NBGRADER:
                continue
            target = course / "submitted" / student / name
            target.mkdir(parents=True)
            shutil.copy(ROOT / folder / name / f"{name}.ipynb", target)
    env_note = os.environ.get("MNIST_KIT_DATA")
    assert env_note, "set MNIST_KIT_DATA so the notebooks find MNIST"
    for name in NAMES:
        _nbgrader(course, "autograde", name, "--create")
        _nbgrader(course, "generate_feedback", name)
    _nbgrader(course, "export")
    rows = {
        (r["assignment"], r["student_id"]): r
        for r in csv.DictReader((course / "grades.csv").open())
    }
    for name in NAMES:
        ours, blank = solution_grades[name], rows[(name, "blank")]
        assert float(blank["max_score"]) == ours.max_score, name
        assert float(blank["score"]) == exercise_grades[name].score == 0, name
        if name not in THROUGH_NBGRADER:
            continue
        theirs = rows[(name, "solution")]
        assert float(theirs["score"]) == ours.score - ours.extra_credit, (
            name
        )  # nbgrader has no automatic extra credit
        feedback = (course / "feedback" / "solution" / name / f"{name}.html").read_text()
        assert "hidden=True" not in feedback and "BEGIN HIDDEN TESTS" not in feedback, name
