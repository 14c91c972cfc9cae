"""Does nbgrader's `autograde`, with FencedExecute in place of Execute, grade as `mnist-kit grade` does?

The quick tests feed FencedExecute and ReleasedChecksumFilter made-up results and log records.
The slow ones build a real course folder, hand in the 01-data solution, the untouched exercise
and hostile notebooks, run `nbgrader autograde` in a subprocess and compare nbgrader's gradebook,
question by question, with the kit's `Grader` on the same files.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from crafted import EXERCISE_01 as EXERCISE  # tests/crafted.py
from crafted import ROOT
from crafted import SOLUTION_01 as SOLUTION
from nbgrader.preprocessors import Execute
from nbgrader.utils import compute_checksum, determine_grade, is_grade, is_solution
from traitlets.config.loader import PyFileConfigLoader

from mnist_kit.grading import nbgrader_fence
from mnist_kit.grading.nbgrader_fence import (
    CHANGED_WARNING,
    FencedExecute,
    ReleasedChecksumFilter,
    graded_cell_outputs,
)
from mnist_kit.grading.results import GradeResult, TestResult

REQUIRE_SANDBOX = os.environ.get("MNIST_KIT_REQUIRE_SANDBOX") == "1"
HIDDEN_SECRET = "expected 12,000 validation images, got 11,999"  # a hidden test's message


def _test(question, name, points, passed, *, hidden=False, extra=False, about="", message=""):
    return TestResult(
        name=name, question=question, points=points if passed else 0.0, max_points=points,
        passed=passed, message="passed" if passed else message or f"{name} failed",
        hidden=hidden, extra_credit=extra, description=f"Does {name} hold?", about=about,
    )  # fmt: skip


def _result(error: str | None = None, notes=()) -> GradeResult:
    """A made-up 01-data result: 1 of 2, 5 of 6 (a hidden test failed) and 2 of 2 points."""
    tests = [
        _test("q1_scale", "test_scale_dtype", 1, True),
        _test("q1_scale", "test_scale_range", 1, False, message="255 became 255.0; divide by 255"),
        *(_test("q1_split", f"test_split_{n}", 1, True) for n in range(4)),
        _test("q1_split", "test_split_other_seed", 1, True, hidden=True, about="another seed"),
        _test("q1_split", "test_split_other_fraction", 1, False, hidden=True,
              about="the split with a different validation fraction", message=HIDDEN_SECRET),
        _test("q1_show", "test_show_ten_digits", 1, True),
        _test("q1_show", "test_show_right_images", 1, True),
    ]  # fmt: skip
    return GradeResult.build("01-data.ipynb", "01-data", tests, 1.0, error, list(notes))


def _graded_cells(nb) -> dict:
    return {
        c.metadata.nbgrader["grade_id"]: c
        for c in nb.cells
        if c.cell_type == "code" and is_grade(c) and not is_solution(c)
    }


def _text(cell) -> str:
    return "".join(
        o.get("text", "") + str(o.get("data", "")) + o.get("evalue", "") for o in cell.outputs
    )


def _fenced(monkeypatch, result: GradeResult):
    """The solution notebook after FencedExecute, with `result` as the kit's grade."""
    monkeypatch.setattr(FencedExecute, "grade", lambda self, nb, assignment: result)
    nb = nbformat.read(str(SOLUTION), as_version=4)
    resources = {"nbgrader": {"assignment": "01-data", "notebook": "01-data", "student": "ada"}}
    return FencedExecute().preprocess(nb, resources)[0]


# --- quick: the outputs FencedExecute writes -----------------------------------------------------


def test_nbgrader_reads_the_kits_points_from_each_test_cell(monkeypatch):
    """Does nbgrader's determine_grade give every test cell exactly the kit's points for its question?"""
    nb = _fenced(monkeypatch, _result())
    scores = {grade_id: determine_grade(cell) for grade_id, cell in _graded_cells(nb).items()}
    assert scores == {"q1_scale": (1.0, 2.0), "q1_split": (5.0, 6.0), "q1_show": (2.0, 2.0)}
    for cell in _graded_cells(nb).values():
        assert not any(o.get("name") == "stderr" for o in cell.outputs)


def test_test_cells_show_the_feedback_but_never_a_hidden_message(monkeypatch):
    """Do test cells show visible messages and hidden counts with their `about`, but no hidden message?"""
    nb = _fenced(monkeypatch, _result())
    cells = _graded_cells(nb)
    assert "255 became 255.0; divide by 255" in _text(cells["q1_scale"])
    split = _text(cells["q1_split"])
    assert "Hidden tests: 1 of 2 passed (1 / 2 points)" in split
    assert "checks the split with a different validation fraction" in split
    assert HIDDEN_SECRET not in "".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert "test_split_other_fraction" not in split  # nor a hidden test's name


def test_other_cells_keep_the_students_code_and_the_notes_go_first(monkeypatch):
    """Are non-test cells left as handed in, and the grader's notes shown once, in the first test cell?"""
    original = nbformat.read(str(SOLUTION), as_version=4)
    nb = _fenced(monkeypatch, _result(notes=["cell 9: NameError: name 'x' is not defined"]))
    for before, after in zip(original.cells, nb.cells, strict=True):
        assert after.source == before.source
        if after.cell_type == "code" and not is_grade(after):
            assert after.outputs == before.outputs
    texts = [_text(c) for c in _graded_cells(nb).values()]
    assert "cell 9: NameError" in texts[0] and not any("cell 9" in t for t in texts[1:])


def test_a_submission_that_cannot_be_graded_gets_zero_and_the_reason_everywhere(monkeypatch):
    """Does GradeResult.error give every test cell an error output (0 points) with the reason?"""
    nb = _fenced(monkeypatch, _result(error="not graded: the file is empty"))
    for cell in _graded_cells(nb).values():
        assert determine_grade(cell)[0] == 0
        assert [o.output_type for o in cell.outputs] == ["error"]
        assert cell.outputs[0].evalue == "not graded: the file is empty"


def test_extra_credit_is_left_out_and_points_never_exceed_the_cell():
    """Is extra credit left to the teacher (nbgrader has none automatic), and a cell capped at its points?"""
    result = GradeResult.build(
        "x.ipynb", "06-beyond-99",
        [_test("q6_accuracy", "test_acc", 8, True), _test("q6_accuracy", "test_99", 2, True, extra=True),
         _test("q6_budget", "test_budget", 3, True)],
        1.0,
    )  # fmt: skip
    for question, points, expected in (("q6_accuracy", 8.0, 8.0), ("q6_budget", 2.0, 2.0)):
        cell = nbformat.v4.new_code_cell(
            metadata={
                "nbgrader": {
                    "grade": True,
                    "solution": False,
                    "grade_id": question,
                    "points": points,
                }
            }
        )
        cell.outputs = graded_cell_outputs(result, question, points)
        assert determine_grade(cell) == (expected, points)


def test_a_test_cell_the_kit_has_no_tests_for_gets_zero_and_says_so():
    """Does a graded cell with a grade id the kit does not know get 0 points and a message?"""
    outputs = graded_cell_outputs(_result(), "q1_extra", 3.0)
    assert [o.output_type for o in outputs] == ["error"]
    assert "no tests for the graded cell 'q1_extra'" in outputs[0].evalue


def test_the_kernel_never_sees_nbgraders_execution_flag(monkeypatch, tmp_path):
    """Is NBGRADER_EXECUTION unset while the kit grades, so a notebook cannot tell the paths apart?"""
    seen = {}

    class Recorder:
        assignment = type("A", (), {"notebook": "01-data.ipynb"})

        def grade(self, path):
            seen["flag"] = os.environ.get("NBGRADER_EXECUTION")
            seen["name"] = Path(path).name
            seen["cells"] = len(nbformat.read(str(path), as_version=4).cells)
            return _result()

    monkeypatch.setattr(nbgrader_fence, "_grader", lambda assignment, options: Recorder())
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    nb = nbformat.read(str(SOLUTION), as_version=4)
    FencedExecute().grade(nb, "01-data")
    assert seen == {"flag": None, "name": "01-data.ipynb", "cells": len(nb.cells)}
    assert os.environ["NBGRADER_EXECUTION"] == "autograde"


@pytest.mark.parametrize(
    ("resources", "expected"),
    [({"assignment": "01-data", "notebook": "01-data"}, "01-data"),
     ({"assignment": "week-1", "notebook": "01-data"}, "01-data")],
)  # fmt: skip
def test_the_assignment_comes_from_nbgraders_ids(resources, expected):
    """Is the kit's assignment nbgrader's assignment id, or else the notebook's name?"""
    assert FencedExecute()._assignment({"nbgrader": resources}) == expected


def test_an_assignment_the_kit_does_not_know_stops_with_a_reason():
    """Does an assignment the kit has no tests for fail loudly instead of grading 0 for everyone?"""
    with pytest.raises(ValueError, match="no assignment called 'essay'"):
        FencedExecute()._assignment({"nbgrader": {"assignment": "essay", "notebook": "essay"}})


# --- quick: the checksum warnings and the config --------------------------------------------------


def _record(*args) -> logging.LogRecord:
    return logging.LogRecord(
        "AutogradeApp", logging.WARNING, __file__, 1, CHANGED_WARNING, args, None
    )


def test_checksum_warnings_for_released_cells_are_dropped_and_real_edits_kept(tmp_path):
    """Is the warning dropped for a test cell as released, and kept for one the student edited?"""
    shutil.copytree(ROOT / "exercises" / "01-data", tmp_path / "01-data")
    released = _graded_cells(nbformat.read(str(EXERCISE), as_version=4))["q1_split"]
    source = _graded_cells(nbformat.read(str(SOLUTION), as_version=4))["q1_split"]
    edited = nbformat.from_dict(released)
    edited.source = "print('all tests passed')"
    keep = ReleasedChecksumFilter(tmp_path).filter
    assert not keep(
        _record("checksum", "q1_split", compute_checksum(source), compute_checksum(released))
    )
    assert keep(_record("checksum", "q1_split", compute_checksum(source), compute_checksum(edited)))
    assert keep(_record("points", "q1_split", 6.0, 60.0))
    other = logging.LogRecord(
        "AutogradeApp", logging.WARNING, __file__, 1, "Skipping %s", ("x",), None
    )
    assert keep(other)


def test_the_config_replaces_only_execute_in_nbgraders_autograde_steps():
    """Is autograde_preprocessors nbgrader's own list with Execute, and nothing else, replaced?"""
    from nbgrader.converters.autograde import Autograde

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    steps = config.Autograde.autograde_preprocessors
    assert Execute in default and Execute not in steps
    assert steps == [FencedExecute if step is Execute else step for step in default]
    assert config.OverwriteCells.add_missing_cells is True
    assert Path(config.FencedExecute.autograder) == ROOT / "autograder"


# --- slow: a real course folder, nbgrader autograde in a subprocess -------------------------------

TAMPER = """
# Every test cell reports full marks: check() redefined here and in the kit, the tests emptied.
import mnist_kit.grading
import mnist_kit.grading.check as kit_check
import mnist_kit.grading.suites.data as suite
FULL = {"q1_scale": 2.0, "q1_split": 6.0, "q1_show": 2.0}
def check(question, hidden=False):
    return FULL[question]
kit_check.check = mnist_kit.grading.check = check
for name in [n for n in dir(suite) if n.startswith("test_")]:
    try:
        getattr(suite, name).__code__ = (lambda submission: None).__code__
    except (AttributeError, ValueError):
        pass
"""
STDERR = """
import sys, warnings
sys.stderr.write("a note on stderr\\n")
warnings.warn("and a Python warning")
"""
SEES_NBGRADER = """
import os
if os.environ.get("NBGRADER_EXECUTION"):
    def scale_images(images):  # wrong, but only where nbgrader's flag shows
        return images
"""


def _cells(path: Path, change) -> nbformat.NotebookNode:
    nb = nbformat.read(str(path), as_version=4)
    change(nb.cells)
    return nb


def _by_id(cells, grade_id: str):
    return next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _tamper(cells):
    cells.insert(2, nbformat.v4.new_code_cell(TAMPER))
    _by_id(cells, "q1_scale").source = "2.0  # full marks"
    cells.remove(_by_id(cells, "q1_show"))


def _raise(cells):
    split = _by_id(cells, "split_train_val")
    split.source = 'raise RuntimeError("a bug left in")\n' + split.source


def _stderr(cells):
    scale = _by_id(cells, "scale_images")
    docstring = '"""The images as float32 in [0, 1]."""'
    assert docstring in scale.source
    scale.source = scale.source.replace(
        docstring, docstring + '\n    import sys\n    print("scaling", file=sys.stderr)'
    )
    cells.append(nbformat.v4.new_code_cell(STDERR))


def _sees_nbgrader(cells):
    cells.append(nbformat.v4.new_code_cell(SEES_NBGRADER))


SUBMISSIONS = {
    "solution": lambda: nbformat.read(str(SOLUTION), as_version=4),
    "blank": lambda: nbformat.read(str(EXERCISE), as_version=4),
    "tamper": lambda: _cells(EXERCISE, _tamper),
    "raises": lambda: _cells(SOLUTION, _raise),
    "stderr": lambda: _cells(SOLUTION, _stderr),
    "sees-nbgrader": lambda: _cells(SOLUTION, _sees_nbgrader),
}


def _nbgrader(course: Path, env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder with every submission autograded by nbgrader: (folder, autograde log)."""
    from mnist_kit.grading.sandbox import bubblewrap_problem

    if REQUIRE_SANDBOX and bubblewrap_problem() is not None:
        pytest.fail(f"bubblewrap cannot be used here: {bubblewrap_problem()}")
    assert os.environ.get("MNIST_KIT_DATA"), "set MNIST_KIT_DATA so the notebooks find MNIST"
    folder = tmp_path_factory.mktemp("nbgrader") / "course"
    folder.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    shutil.copytree(ROOT / "solutions" / "01-data", folder / "solutions" / "01-data")
    shutil.copytree(ROOT / "autograder", folder / "autograder")
    env = dict(os.environ, MNIST_KIT_CACHE=str(tmp_path_factory.getbasetemp() / "mnist-kit-cache"))
    _nbgrader(folder, env, "generate_assignment", "01-data", "--force")
    for student, make in SUBMISSIONS.items():
        target = folder / "submitted" / student / "01-data"
        target.mkdir(parents=True)
        nbformat.write(make(), str(target / "01-data.ipynb"))
    log = _nbgrader(folder, env, "autograde", "01-data", "--create")
    return folder, log


@pytest.fixture(scope="module")
def kit_grades(course):
    """What `mnist-kit grade --assignment 01` gives each submitted file, by student."""
    from mnist_kit.grading.engine import Grader

    folder, _ = course
    grader = Grader("01-data", autograder=folder / "autograder")
    return {
        s: grader.grade(folder / "submitted" / s / "01-data" / "01-data.ipynb") for s in SUBMISSIONS
    }


def _nbgrader_scores(folder: Path) -> dict[str, dict[str, float]]:
    """student -> grade id -> the score nbgrader's gradebook holds."""
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{folder / 'gradebook.db'}", "mnist-kit") as book:
        for student in SUBMISSIONS:
            notebook = book.find_submission_notebook("01-data", "01-data", student)
            assert not notebook.needs_manual_grade, student
            scores[student] = {grade.name: grade.score for grade in notebook.grades}
    return scores


def _kit_scores(result: GradeResult) -> dict[str, float]:
    scores: dict[str, float] = {}
    for test in result.tests:
        if not test.extra_credit:
            scores[test.question] = scores.get(test.question, 0.0) + test.points
    return scores


@pytest.mark.slow
def test_autograde_gives_every_student_the_kits_points_per_question(course, kit_grades):
    """Does nbgrader's gradebook hold, per student and question, the points mnist-kit grade gives?"""
    folder, _ = course
    theirs = _nbgrader_scores(folder)
    for student, result in kit_grades.items():
        assert result.error is None, (student, result.error)
        assert theirs[student] == pytest.approx(_kit_scores(result)), student
    assert kit_grades["solution"].score == kit_grades["stderr"].score == 10
    assert kit_grades["sees-nbgrader"].score == 10
    assert 0 < kit_grades["raises"].score < 10


@pytest.mark.slow
def test_tampering_in_the_kernel_gets_the_same_low_score(course, kit_grades):
    """Does a notebook that redefines check() and edits or deletes test cells still get 0 under nbgrader?"""
    folder, log = course
    assert kit_grades["tamper"].score == 0
    assert sum(_nbgrader_scores(folder)["tamper"].values()) == 0
    assert "Missing grade cell q1_show encountered, adding to notebook" in log


@pytest.mark.slow
def test_the_log_warns_only_about_test_cells_a_student_edited(course):
    """Is the autograde log free of checksum warnings for released cells, and of Python warnings?"""
    _, log = course
    student, warned = None, []
    for line in log.splitlines():
        found = re.search(r"Sanitizing .*/submitted/([^/]+)/", line)
        student = found.group(1) if found else student
        if "Attribute 'checksum' for cell" in line:
            warned.append((student, line.split("for cell ")[1].split()[0]))
    assert warned == [("tamper", "q1_scale")]
    assert not re.search(r"\w+Warning: ", log), log  # no Python warnings (SQLAlchemy, nbformat)


@pytest.mark.slow
def test_autograded_test_cells_hold_the_kits_feedback_and_no_stderr(course, kit_grades):
    """Does each autograded test cell show the kit's messages, with nothing on stderr?"""
    folder, _ = course
    nb = nbformat.read(
        str(folder / "autograded" / "blank" / "01-data" / "01-data.ipynb"), as_version=4
    )
    cells = _graded_cells(nb)
    assert set(cells) == {"q1_scale", "q1_split", "q1_show"}
    blank = kit_grades["blank"]
    for test in (t for t in blank.tests if not t.hidden):
        assert " ".join(test.message.split()) in _text(cells[test.question])
    assert "Hidden tests: 0 of 2 passed" in _text(cells["q1_split"])
    for cell in cells.values():
        assert not any(o.get("name") == "stderr" for o in cell.outputs)
