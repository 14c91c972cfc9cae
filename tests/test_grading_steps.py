"""Does each grading step (mnist_kit/grading/steps/) do its one job on its own, and does the
engine run them in the order its docstring lists?

The steps are called one at a time on a `Job`, with a real Grader for assignment 1; no test
here starts a kernel (run_kernel's is replaced). The last one
plays the kernel's part in this process (the solution's functions, then `in_kernel.run_plan`)
and runs the autograder's tests on what that wrote (about ten seconds).
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

import mnist_kit.grading.engine as engine
from mnist_kit.grading import steps
from mnist_kit.grading.engine import STEPS, Grader
from mnist_kit.grading.in_kernel import run_plan
from mnist_kit.grading.job import Job, kept_name
from mnist_kit.grading.kernel import CELL_NUMBER_KEY, RunLog
from mnist_kit.grading.steps.run_kernel import run_notes

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "01-data" / "01-data.ipynb"


@pytest.fixture(scope="module")
def grader() -> Grader:
    return Grader("01-data", sandbox="none")  # no test here starts its kernel


def _job(path: Path, notebook=None) -> Job:
    job = Job(path, "01-data")
    job.notebook = notebook
    return job


def test_the_steps_run_in_the_order_the_engine_docstring_lists():
    """Does engine.STEPS hold the seven steps the docstring numbers, in that order?"""
    listed = re.findall(r"^\d\. `(\w+)`", engine.__doc__, flags=re.MULTILINE)
    assert listed == [step.__name__ for step in STEPS]
    assert len(STEPS) == 7


def test_read_notebook_reads_a_notebook_and_refuses_an_empty_file(grader, tmp_path):
    """Does read_notebook leave the notebook on the job, and end the job on an empty file?"""
    job = _job(SOLUTION)
    steps.read_notebook(job, grader)
    assert job.result is None and len(job.notebook.cells) > 10
    empty = tmp_path / "empty.ipynb"
    empty.write_bytes(b"")
    job = _job(empty)
    steps.read_notebook(job, grader)
    assert job.result.error == "not graded: the file is empty"
    assert len(job.result.tests) == len(grader.tests)
    assert all(t.message == "not graded: the file is empty" for t in job.result.tests)


def test_note_changed_test_cells_names_an_edited_test_cell(grader):
    """Is a graded test cell whose code was edited noted by its grade id, and nothing else?"""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    job = _job(SOLUTION, nb)
    steps.note_changed_test_cells(job, grader)
    assert job.changed == []
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "q1_scale")
    cell.source = "print('all good')"
    steps.note_changed_test_cells(job, grader)
    assert job.changed == ["q1_scale"] and job.result is None


def test_check_assignment_refuses_another_assignments_notebook(grader):
    """Is assignment 2's notebook, graded as assignment 1, refused with the right name?"""
    other = ROOT / "solutions" / "02-keras-mlp" / "02-keras-mlp.ipynb"
    job = _job(other, nbformat.read(str(other), as_version=4))
    steps.check_assignment(job, grader)
    assert job.result.error.startswith(
        "not graded: this is the notebook of assignment 02-keras-mlp"
    )
    mine = _job(SOLUTION, nbformat.read(str(SOLUTION), as_version=4))
    steps.check_assignment(mine, grader)
    assert mine.result is None and mine.identity == []


def test_drop_test_cells_keeps_the_students_cells_with_their_numbers(grader):
    """Are the test cells gone, and does every cell left keep its number as submitted?"""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    total = len(nb.cells)
    job = _job(SOLUTION, nb)
    steps.drop_test_cells(job, grader)
    kept = job.notebook.cells
    assert not any("check(" in c.source for c in kept if c.cell_type == "code")
    assert len(kept) == total - 3  # the three graded test cells of assignment 1
    numbers = [c.metadata[CELL_NUMBER_KEY] for c in kept]
    assert numbers[0] == 1 and numbers == sorted(numbers) and numbers[-1] == total - 1


def test_write_plan_makes_the_scratch_folder_with_the_plan(grader):
    """Does write_plan make work/ and plan/, with plan.json and one input file per probe?"""
    job = _job(SOLUTION)
    steps.write_plan(job, grader)
    try:
        assert job.work.is_dir() and not job.out.exists()
        plan = json.loads((job.plan / "plan.json").read_text())
        assert plan["models"] == []
        assert [p["key"] for p in plan["probes"]] == [p.key for p in grader.probes]
        for probe in grader.probes:
            with np.load(job.plan / f"{probe.key}.in.npz") as saved:
                assert sorted(saved.files) == sorted(probe.arrays())
    finally:
        job.keep_and_clean(None)
    assert not job.scratch.exists()


def test_run_kernel_ends_the_job_when_the_grader_code_did_not_run(grader, monkeypatch):
    """Without the grader's code having run to its end, is there nothing to grade, and why?"""
    died = RunLog(kernel_died=True, exit_reason="the kernel exited with status 3")
    # the module, not the function steps/__init__.py re-exports under the same name
    module = importlib.import_module("mnist_kit.grading.steps.run_kernel")
    monkeypatch.setattr(module, "run_notebook", lambda *a, **k: died)
    job = _job(SOLUTION, nbformat.v4.new_notebook())
    steps.write_plan(job, grader)
    try:
        steps.run_kernel(job, grader)
        assert json.loads((job.scratch / "run.json").read_text())["kernel_died"] is True
    finally:
        job.keep_and_clean(None)
    reason = "the kernel died (the kernel exited with status 3); graded on what finished"
    assert job.result.error is None and job.result.notes == [reason]
    assert all(t.message == f"nothing to grade: {reason}" for t in job.result.tests)


def test_run_notes_put_what_stopped_the_kernel_first():
    """Do the notes name the time-out and the memory cap first, then cell errors and edits?"""
    log = RunLog(timed_out=True, errors=["cell 4: MemoryError: "], output_cut_mb=20)
    notes = run_notes(log, 30, 2048, changed=["q1_scale"], identity=["another note"])
    assert notes[:2] == [
        "timed out after 30 s; graded on what finished",
        "ran out of memory (limit 2048 MB)",
    ]
    assert notes[2] == "cell 4: MemoryError: "
    assert "output was cut at 20 MB" in notes[3] and "(q1_scale)" in notes[4]
    assert notes[5] == "another note"


def test_run_tests_grades_what_the_kernel_wrote(grader, tmp_path):
    """With the solution's objects saved as the kernel would save them, are all points given?"""
    import matplotlib

    matplotlib.use("Agg")
    nb = nbformat.read(str(SOLUTION), as_version=4)
    namespace: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("grade"):
            exec(compile(cell.source, "<cell>", "exec"), namespace)
    job = _job(SOLUTION)
    steps.write_plan(job, grader)
    try:
        run_plan(job.plan, job.out, namespace)
        steps.run_tests(job, grader)
    finally:
        job.keep_and_clean(tmp_path)
    assert job.result.error is None
    assert job.result.score == job.result.max_score == 10
    assert (tmp_path / kept_name(SOLUTION) / "out" / "manifest.json").is_file()


def test_a_step_that_raises_becomes_an_error_row_saying_whose_fault(grader, monkeypatch):
    """Does an exception before write_plan blame the notebook, and from it on the grader?"""

    def broken(job, grader):
        raise KeyError("cells")

    monkeypatch.setattr(engine, "STEPS", (broken,))
    result = grader.grade(SOLUTION)
    assert result.error == "not graded: the notebook's structure is broken (KeyError: 'cells')"
    monkeypatch.setattr(engine, "GRADER_STEPS", (broken,))
    result = grader.grade(SOLUTION)
    assert result.error == "not graded: the grader failed on it (KeyError: 'cells')"
    assert result.score == 0 and len(result.tests) == len(grader.tests)
