"""Is a notebook of another assignment refused with the right command, and do notes name the
student's own cell numbers?

Most tests compare nbgrader grade ids without a kernel; two grade for real: one refused before
any kernel starts (about a second), one small assignment-1 notebook (a few seconds).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import nbformat
import pytest

from mnist_kit.grading.assignments import ASSIGNMENTS, find_assignment
from mnist_kit.grading.engine import Grader, drop_graded_tests
from mnist_kit.grading.identify import check_assignment, grade_ids, identify_assignment
from mnist_kit.grading.kernel import CELL_NUMBER_KEY, cell_number

ROOT = Path(__file__).resolve().parents[1]


def solution(name: str):
    return nbformat.read(str(ROOT / "solutions" / name / f"{name}.ipynb"), as_version=4)


def cell_with_id(name: str, grade_id: str):
    """A copy of the cell of assignment `name`'s solution whose nbgrader grade id is `grade_id`."""
    for cell in solution(name).cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            cell.id = f"copied-{grade_id}"  # a cell id of its own in the notebook it joins
            return cell
    raise LookupError(grade_id)


class NoKernel:
    """A launcher that fails the test if the grader starts a kernel at all."""

    name = "no-kernel"

    def start(self, workdir, env):
        raise AssertionError("a kernel was started")

    def stop(self, manager):
        pass


@pytest.mark.parametrize("name", list(ASSIGNMENTS))
def test_each_solution_is_identified_as_its_own_assignment(name):
    """Does identify_assignment name each solution notebook's own assignment, with all its ids?"""
    assert identify_assignment(solution(name)) == (name, 1.0)


@pytest.mark.parametrize(
    ("graded_as", "notebook"), list(itertools.product(ASSIGNMENTS, ASSIGNMENTS))
)
def test_every_pair_of_assignments_is_told_apart(graded_as, notebook):
    """Graded as assignment A, is B's solution refused (naming B) exactly when A is not B?"""
    error, notes = check_assignment(solution(notebook), find_assignment(graded_as))
    if graded_as == notebook:
        assert error is None and notes == []
    else:
        title, asked = ASSIGNMENTS[notebook].title, ASSIGNMENTS[graded_as].title
        assert error == (
            f"not graded: this is the notebook of assignment {notebook} ({title}), "
            f"not of {graded_as} ({asked})"
        )
        assert "\n" not in error


def test_a_partial_match_is_a_note_not_an_error():
    """A 02 notebook with one 05 cell mixed in and one of its own ids gone: graded, with notes?"""
    nb = solution("02-keras-mlp")
    nb.cells = [
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "train_model"
    ]
    nb.cells.append(cell_with_id("05-errors", "find_misclassified"))
    assert identify_assignment(nb)[0] == "02-keras-mlp"
    error, notes = check_assignment(nb, find_assignment("02-keras-mlp"))
    assert error is None
    assert notes == [
        "some cells carry another assignment's nbgrader ids (05-errors: find_misclassified); "
        "graded as 02-keras-mlp",
        "cells of 02-keras-mlp are missing or lost their nbgrader ids (train_model)",
    ]


def test_a_notebook_of_another_assignment_with_one_cell_of_this_one_is_graded():
    """A 05 notebook holding one 02 question cell is not refused as 02 (it is partly 02's)?"""
    nb = solution("05-errors")
    nb.cells.append(cell_with_id("02-keras-mlp", "q2_accuracy"))
    error, notes = check_assignment(nb, find_assignment("02-keras-mlp"))
    assert error is None
    assert any("another assignment's nbgrader ids (05-errors:" in note for note in notes)


def test_shared_solution_ids_alone_do_not_refuse():
    """02 and 03 share build_model, compile_model, train_model: are those alone never refused?"""
    nb = solution("03-keras-cnn")
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    assert set(grade_ids(nb)) == {"build_model", "compile_model", "train_model"}
    for name in ("02-keras-mlp", "03-keras-cnn"):
        assert check_assignment(nb, find_assignment(name))[0] is None


def test_a_notebook_without_nbgrader_metadata_is_graded_with_a_note():
    """Code copied into a fresh notebook: no error, one note, and identify says it cannot tell?"""
    nb = solution("05-errors")
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    assert identify_assignment(nb) == (None, 0.0)
    error, notes = check_assignment(nb, find_assignment("02-keras-mlp"))
    assert error is None and len(notes) == 1 and "no nbgrader cell metadata" in notes[0]


def test_the_qn_prefix_is_the_fallback_without_reference_notebooks():
    """With no reference notebooks at all, do "q5_..." question ids still say 05-errors?"""
    nb = solution("05-errors")
    nothing = {name: frozenset() for name in ASSIGNMENTS}
    assert identify_assignment(nb, nothing) == ("05-errors", 1.0)
    error, _ = check_assignment(nb, find_assignment("02-keras-mlp"), nothing)
    assert error is not None and "the notebook of assignment 05-errors" in error


def test_another_assignments_notebook_is_refused_before_any_kernel_starts(tmp_path):
    """Graded as 02, is the 05-errors exercise an error row scoring 0, naming both assignments?"""
    path = tmp_path / "alice.ipynb"
    path.write_bytes((ROOT / "exercises" / "05-errors" / "05-errors.ipynb").read_bytes())
    result = Grader("02-keras-mlp", launcher=NoKernel()).grade(path)
    assert result.error == (
        "not graded: this is the notebook of assignment 05-errors (Finding the errors), "
        f"not of 02-keras-mlp ({ASSIGNMENTS['02-keras-mlp'].title})"
    )
    assert str(path) not in result.error and "mnist-kit" not in result.error  # the student sees it
    assert result.score == 0 and result.max_score > 0
    assert all(not t.passed and t.points == 0 for t in result.tests)


def test_the_teacher_is_given_the_command_the_student_is_not(tmp_path):
    """Does `mnist-kit grade` print the right command for another assignment's notebook, while
    the gradebook's reason (which feedback shows the student) carries no command or path?"""
    import csv
    import subprocess
    import sys

    path = tmp_path / "bob lee.ipynb"
    path.write_bytes((ROOT / "exercises" / "05-errors" / "05-errors.ipynb").read_bytes())
    out = tmp_path / "gradebook.csv"
    run = subprocess.run(
        [sys.executable, "-m", "mnist_kit.cli", "grade", "--assignment", "02", str(path),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert f"to grade it as that: mnist-kit grade --assignment 05-errors '{path}'" in run.stdout
    reasons = {row["message"] for row in csv.DictReader(out.open())}
    assert reasons and all("mnist-kit" not in r and str(path) not in r for r in reasons), reasons


def test_drop_graded_tests_keeps_each_cells_number_as_submitted():
    """After the test cells are dropped, does each kept cell still know its JupyterLab number?"""
    nb = solution("01-data")
    sources = [c.source for c in nb.cells]
    kept = drop_graded_tests(nb)
    assert len(kept.cells) < len(sources)
    for index, cell in enumerate(kept.cells):
        number = cell.metadata[CELL_NUMBER_KEY]
        assert sources[number - 1] == cell.source
        assert cell_number(cell, index) == number


def test_notes_name_the_cell_number_the_student_sees(tmp_path):
    """A NotImplementedError in cell 11 of an 01-data notebook (after test cells 7 and 10): is
    the note "cell 11", and is a cell copied from assignment 05 noted too?"""
    nb = solution("01-data")
    graded = [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade")]
    assert [i + 1 for i in graded] == [7, 10, 13]  # the two before cell 11 are dropped to run
    raising = cell_with_id("05-errors", "find_misclassified")
    raising.source = "raise NotImplementedError()"
    nb.cells.insert(10, raising)  # cell 11 in JupyterLab
    path = tmp_path / "bob.ipynb"
    nbformat.write(nb, str(path))
    result = Grader("01-data").grade(path)
    assert result.error is None
    assert "cell 11: NotImplementedError:" in result.notes, result.notes
    assert not any(note.startswith("cell 9:") for note in result.notes)
    assert any("another assignment's nbgrader ids (05-errors:" in n for n in result.notes)
    assert result.score == result.max_score  # the error did not stop the notebook
