"""Grading a class: students from a roster or the paths, one submission each, outputs a course
system takes, and messages and exit codes that mean one thing."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crafted import EXERCISE_01 as EXERCISE  # tests/crafted.py
from crafted import SOLUTION_01 as SOLUTION

from mnist_kit.grading.batch import QueuedFile, already_graded
from mnist_kit.grading.classroom import UsageError, expand, intake, write_canvas, write_moodle
from mnist_kit.grading.engine import SubmissionError, read_submission
from mnist_kit.grading.report import feedback_markdown, gradebook_rows
from mnist_kit.grading.results import GradeResult, TestResult
from mnist_kit.grading.roster import (
    RosterError,
    Student,
    clues,
    feedback_names,
    plan_class,
    read_roster,
)

ROSTER = """id,name,email,canvas id,section
s01,"Lee, Ann",ann@uni.edu,1001,A
s02,Bob Stone,bob@uni.edu,1002,A
s03,Zhang Wei,wei@uni.edu,1003,B
"""


def _roster(tmp_path: Path, text: str = ROSTER) -> list[Student]:
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return read_roster(path)


def _files(folder: Path, names: list[str], source: Path = EXERCISE) -> list[Path]:
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        paths.append(path)
    return paths


def _grade(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MNIST_KIT_DATA": os.environ.get("MNIST_KIT_DATA", "")}
    return subprocess.run([sys.executable, "-m", "mnist_kit.cli", "grade", *argv],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=900)  # fmt: skip


# --- the roster and the paths --------------------------------------------------------------


def test_a_roster_is_read_and_its_mistakes_named(tmp_path):
    """Are ids, names, emails and other columns read, and a missing, empty or repeated id refused?"""
    students = _roster(tmp_path)
    assert [s.id for s in students] == ["s01", "s02", "s03"]
    assert students[0].name == "Lee, Ann" and students[0].email == "ann@uni.edu"
    assert students[0].column("canvas id") == "1001" and students[2].column("section") == "B"
    for text, fragment in (
        ("name,email\nAnn,a@x\n", "no student id column"),
        ("id,name\n,Ann\n", "line 2: the student id is empty"),
        ("id,name\ns1,Ann\ns1,Bob\n", "line 3: student id 's1' appears twice"),
        ("id,name\n", "lists no students"),
    ):
        with pytest.raises(RosterError, match=fragment):
            _roster(tmp_path, text)


@pytest.mark.parametrize(
    ("path", "first"),
    [
        ("course/submitted/s02/01-data/01-data.ipynb", "s02"),  # nbgrader
        ("download/leeann_1001_555_01-data.ipynb", "1001"),  # Canvas
        ("download/leeann_LATE_1001_556_01-data-1.ipynb", "1001"),  # Canvas, late
        ("m/Bob Stone_77_assignsubmission_file_/01-data.ipynb", "Bob Stone"),  # Moodle folder
        ("m/Bob Stone_77_assignsubmission_file_01-data.ipynb", "Bob Stone"),  # Moodle file
        ("class/wei/01-data.ipynb", "wei"),  # a folder per student
        ("class/s03.ipynb", "s03"),  # the file's name
    ],
)
def test_each_layout_names_its_student_first(path, first):
    """Does each layout teachers have put its student clue first?"""
    assert clues(Path(path), "01-data")[0] == first


def test_files_are_matched_by_id_other_columns_name_or_email(tmp_path):
    """Canvas user id, name in either order, e-mail and nbgrader folder all find the right student,
    and an unknown file and a student without a file are both listed."""
    students = _roster(tmp_path)
    paths = [Path("d/leeann_1001_1_01-data.ipynb"), Path("d/stonebob_9_2_x.ipynb"),
             Path("submitted/wei/01-data/01-data.ipynb"), Path("d/mallory.ipynb")]  # fmt: skip
    plan = plan_class(paths, students, "01-data")
    assert {str(p): s.id for p, s in plan.owners.items()} == {
        "d/leeann_1001_1_01-data.ipynb": "s01",
        "d/stonebob_9_2_x.ipynb": "s02",
        "submitted/wei/01-data/01-data.ipynb": "s03",
    }
    assert plan.unmatched == [Path("d/mallory.ipynb")] and plan.missing == [] and not plan.problems
    alone = plan_class(paths[:1], students, "01-data")
    assert [s.id for s in alone.missing] == ["s02", "s03"]


def test_two_files_for_one_student_stop_grading_unless_latest(tmp_path):
    """Two different files of one student: an error naming both, or with --latest the newest."""
    old, new = _files(tmp_path, ["leeann_1001_1_01-data.ipynb", "leeann_LATE_1001_2_01-data.ipynb"])
    os.utime(old, (time.time() - 100, time.time() - 100))
    plan = plan_class([old, new], _roster(tmp_path), "01-data")
    assert len(plan.problems) == 1 and str(old) in plan.problems[0] and str(new) in plan.problems[0]
    assert "Lee, Ann (s01)" in plan.problems[0] and "--latest" in plan.problems[0]
    latest = plan_class([old, new], _roster(tmp_path), "01-data", latest=True)
    assert list(latest.owners) == [new] and latest.superseded == {old: new}


def test_without_a_roster_colliding_students_stop_grading_before_anything_runs(tmp_path):
    """`Ann Lee.ipynb` and `Ann_Lee.ipynb` are one student (an error); `x/y-z` and `x-y/z` are two."""
    same = plan_class([Path("Ann Lee.ipynb"), Path("Ann_Lee.ipynb")], None, "01-data")
    assert len(same.problems) == 1 and "student Ann_Lee" in same.problems[0]
    apart = plan_class([Path("x/y-z.ipynb"), Path("x-y/z.ipynb")], None, "01-data")
    assert not apart.problems and sorted(s.id for s in apart.owners.values()) == ["y-z", "z"]
    files = [*_files(tmp_path, ["Ann Lee.ipynb"]), *_files(tmp_path, ["Ann_Lee.ipynb"], SOLUTION)]
    code = _grade("--assignment", "01", *map(str, files), "--out", "gb.csv", cwd=tmp_path)
    assert code.returncode == 2 and "2 files belong to student Ann_Lee" in code.stderr
    assert not (tmp_path / "gb.csv").exists()  # nothing graded, nothing written


def test_feedback_names_are_unique_for_any_ids():
    """However ids are spelled (spaces, case, slashes, accents), do no two share a feedback file?"""
    ids = [
        "Ann Lee",
        "Ann_Lee",
        "ann_lee",
        "x/y-z",
        "x-y/z",
        "x_y_z",
        "Zoë",
        "Zo_",
        "..",
        "",
        "a" * 3,
    ]
    stems = feedback_names(ids)
    assert len({s.lower() for s in stems.values()}) == len(set(ids))
    assert all("/" not in s and s not in ("", ".", "..") for s in stems.values())


def test_the_same_file_under_two_paths_is_one_submission(tmp_path):
    """`class/eve.ipynb` and `g/class/eve.ipynb` with the same bytes: graded once, one student."""
    (tmp_path / "g" / "class").mkdir(parents=True)
    first = _files(tmp_path, ["class/eve.ipynb"])[0]
    second = tmp_path / "g" / "class" / "eve.ipynb"
    shutil.copyfile(first, second)
    found = intake(
        [first, second, tmp_path / "class" / ".." / "class" / "eve.ipynb"], None, "01-data"
    )
    assert [s.key for s in found.submissions] == [str(first)] and len(found.repeated) == 2
    assert not found.plan.problems


def test_identical_files_of_two_students_are_graded_once_and_reported(tmp_path):
    """Two students who hand in the same bytes: one grading, both get rows, the teacher is told."""
    paths = _files(tmp_path, ["leeann_1001_1_01-data.ipynb", "stonebob_1002_2_01-data.ipynb"])
    found = intake(paths, _roster(tmp_path), "01-data")
    assert [s.key for s in found.to_grade] == [str(paths[0])]
    assert found.copies == {str(paths[1]): str(paths[0])}


def test_resuming_does_not_reuse_rows_of_another_assignment():
    """A gradebook holding the same file graded as 02 does not count as graded for 01."""
    submission = QueuedFile("a.ipynb", Path("a.ipynb"), "abc")
    rows = {"a.ipynb": [{"sha256": "abc", "assignment": "02-keras-mlp", "test": "TOTAL"}]}
    assert already_graded([submission], rows, "01-data") == ([], [submission])
    assert already_graded([submission], rows, "02-keras-mlp") == ([submission], [])


# --- what the teacher typed ---------------------------------------------------------------


def test_missing_files_folders_and_empty_globs_are_usage_errors(tmp_path):
    """Each names the path and suggests the glob that was meant; a quoted glob is expanded."""
    _files(tmp_path, ["class/a.ipynb", "class/b.ipynb"])
    with pytest.raises(
        UsageError, match=r"no such file: .*typo\.ipynb \(did you mean .*class/\*\.ipynb\?\)"
    ):
        expand([str(tmp_path / "class" / "typo.ipynb")])
    with pytest.raises(
        UsageError, match=r"is a folder; give the notebooks in it, e\.g\. '.*class/\*\.ipynb'"
    ):
        expand([str(tmp_path / "class")])
    with pytest.raises(UsageError, match="no file matches"):
        expand([str(tmp_path / "nothing" / "*.ipynb")])
    assert [p.name for p in expand([str(tmp_path / "class" / "*.ipynb")])] == ["a.ipynb", "b.ipynb"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--assignment", "99", "x.ipynb"], "no assignment called '99'; choose one of: 01-data"),
        (["--assignment", "01", "missing.ipynb"], "no such file: missing.ipynb"),
        (["--assignment", "01", "."], "is a folder"),
    ],
)
def test_what_the_teacher_typed_wrong_exits_2_with_one_line(tmp_path, argv, fragment):
    """Exit code 2 (1 is kept for "the grader failed"), one error line, nothing graded."""
    done = _grade(*argv, cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert done.returncode == 2 and len(errors) == 1 and fragment in errors[0], done.stderr


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("hw.py", "import numpy as np\nprint(1)\n", "this is a Python script, not a notebook"),
        ("hw.ipynb", "# My answers\n\nsome text\n", "this is a text or Markdown file"),
        (
            "hw.html",
            "<!DOCTYPE html><html></html>",
            "this is an HTML page (an export of a notebook?)",
        ),
        ("hw.ipynb", '{"cells": [{"cell_type": "code", "sou', "a cut-off or damaged notebook"),
        ("hw.ipynb", "\x01garbage", "not a Jupyter notebook (not JSON)"),
    ],
)
def test_every_not_graded_reason_says_what_the_file_is(tmp_path, name, text, reason):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SubmissionError) as failure:
        read_submission(path)
    assert str(failure.value).startswith(reason)


# --- what comes out -----------------------------------------------------------------------


def _result(points: list[float], error: str | None = None, extra: float = 0) -> GradeResult:
    tests = [TestResult(f"test_{i}", "q1_scale", p, 1.0, p == 1.0, "passed" if p else "wrong")
             for i, p in enumerate(points)]  # fmt: skip
    if extra:
        tests.append(TestResult("test_extra", "q6_extra_credit", extra, 1.0, True, "passed",
                                extra_credit=True))  # fmt: skip
    return GradeResult.build("alice.ipynb", "01-data", tests, 1.0, error,
                             measurements={"model.test_accuracy": 0.97})  # fmt: skip


def test_the_total_row_has_one_type_per_column_and_a_pass_mark():
    """passed: graded and at least half the points; hidden False; extra_credit True/False."""
    cases = [(_result([1, 1, 0, 0]), "True"), (_result([1, 0, 0, 0]), "False"),
             (_result([0, 0], error="not graded: the file is empty"), "False")]  # fmt: skip
    for result, passed in cases:
        total = gradebook_rows(result, "abc", "s01")[-1]
        assert total["test"] == "TOTAL" and total["passed"] == passed, total
        assert total["hidden"] == "False" and total["extra_credit"] == "False"
        assert (
            total["student"] == "s01" and total["measurements"] == '{"model.test_accuracy": 0.97}'
        )
    assert gradebook_rows(_result([1], extra=1.0))[-1]["extra_credit"] == "True"


def test_feedback_names_its_student_file_assignment_date_and_grader():
    from markdown_it import MarkdownIt

    from mnist_kit import __version__

    text = feedback_markdown(_result([1, 0]), "Lee, Ann (s01)")
    head = text.splitlines()[2]
    assert head.startswith(
        "Student: Lee, Ann (s01). Assignment: 01-data (Data). File: alice.ipynb."
    )
    assert time.strftime("%Y-%m-%d") in head and f"mnist-kit {__version__}" in head
    page = MarkdownIt("commonmark").enable("table").render(text)
    assert "<table>" in page and "<li>" not in page.split("<table>")[0].rsplit("</ul>", 1)[-1]


def test_canvas_and_moodle_files_have_the_layout_their_imports_expect(tmp_path):
    """Compared with samples written by hand from Canvas' and Moodle's import documentation."""
    students = _roster(tmp_path)
    rows = [{"student_id": "s01", "name": "Lee, Ann", "email": "ann@uni.edu", "total": "8"},
            {"student_id": "s02", "name": "Bob Stone", "email": "bob@uni.edu", "total": ""}]  # fmt: skip
    write_canvas(rows, "01-data Data", "10", students, tmp_path / "canvas.csv")
    assert (tmp_path / "canvas.csv").read_text().splitlines() == [
        "Student,ID,SIS User ID,SIS Login ID,Section,01-data Data",
        "Points Possible,,,,,10",
        '"Lee, Ann",1001,s01,ann@uni.edu,A,8',
        "Bob Stone,1002,s02,bob@uni.edu,A,",
    ]
    write_moodle(rows, "01-data Data", tmp_path / "moodle.csv")
    assert (tmp_path / "moodle.csv").read_text().splitlines() == [
        "ID number,Email address,Full name,01-data Data",
        's01,ann@uni.edu,"Lee, Ann",8',
        "s02,bob@uni.edu,Bob Stone,",
    ]


# --- a class, graded for real --------------------------------------------------------------

CLASS = [  # (student id, name, e-mail, Canvas user id, file in the download or None, source)
    ("s01", "Lee, Ann", "ann@uni.edu", "1001", "leeann_1001_11_01-data.ipynb", SOLUTION),
    ("s02", "Bob Stone", "bob@uni.edu", "1002", "stonebob_1002_12_01-data.ipynb", EXERCISE),
    ("s03", "Zhang Wei", "wei@uni.edu", "1003", "zhangwei_1003_13_01-data.ipynb", "scale"),
    ("s04", "Ana Silva", "ana@uni.edu", "1004", "silvaana_1004_14_01-data.ipynb", "split"),
    ("s05", "Omar Haddad", "omar@uni.edu", "1005", "haddadomar_1005_15_01-data.ipynb", SOLUTION),
    ("s06", "Mia Wong", "mia@uni.edu", "1006", "wongmia_LATE_1006_16_01-data.ipynb", SOLUTION),
    ("s07", "Ivan Petrov", "ivan@uni.edu", "1007", "petrovivan_1007_17_hw.py", "script"),
    ("s08", "Sara Cohen", "sara@uni.edu", "1008", "cohensara_1008_18_01-data.ipynb", "raises"),
    ("s09", "Li Na", "na@uni.edu", "1009", "lina_1009_19_01-data.ipynb", EXERCISE),
    ("s10", "Tom Berg", "tom@uni.edu", "1010", "bergtom_1010_20_01-data.ipynb", "scale"),
    ("s11", "Eva Novak", "eva@uni.edu", "1011", "novakeva_1011_21_01-data.ipynb", SOLUTION),
    ("s12", "Noah King", "noah@uni.edu", "1012", None, None),  # handed nothing in
]


def _make_class(folder: Path) -> Path:
    """A Canvas bulk download: 11 students' files, one student's older attempt, one stray file."""
    import nbformat

    download = folder / "submissions"
    download.mkdir(parents=True)
    edits = {  # a cell at the end undoes one answer (as in tests/test_grading_batch.py)
        "scale": "def scale_images(images):\n    return images",
        "split": "def split_train_val(images, labels, val_fraction=0.2, seed=42):\n    return None",
        "raises": "raise RuntimeError('my own bug')",
    }
    for _, _, _, _, name, source in CLASS:
        if name is None:
            continue
        target = download / name
        if source == "script":
            target.write_text("import numpy as np\nprint('my answers')\n")
        elif source in edits:
            nb = nbformat.read(str(SOLUTION), as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell(edits[source]))
            nbformat.write(nb, str(target))
        else:
            shutil.copyfile(source, target)
    older = download / "wongmia_1006_9_01-data.ipynb"  # Mia's first attempt, before the late one
    shutil.copyfile(EXERCISE, older)
    os.utime(older, (time.time() - 3600, time.time() - 3600))
    shutil.copyfile(SOLUTION, download / "unknownperson_4242_30_01-data.ipynb")
    with (folder / "roster.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "email", "canvas id"])
        writer.writerows(row[:4] for row in CLASS)
    return download


@pytest.mark.slow
def test_a_class_in_a_canvas_download_gives_one_row_and_one_page_per_student(tmp_path):
    """12 roster students, a Canvas download: summary keyed by id, strays and copies listed,
    one feedback page per student naming them, Canvas and Moodle files, nothing stray left."""
    download = _make_class(tmp_path)
    done = _grade("--assignment", "01", str(download / "*"), "--roster", "roster.csv", "--latest",
                  "--out", "gb.csv", "--summary", "summary.csv", "--canvas", "canvas.csv",
                  "--moodle", "moodle.csv", "--feedback", "feedback", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    err = done.stderr
    assert "not graded, no roster student matches: " in err and "unknownperson_4242" in err
    assert "no file from: Noah King (s12)" in err
    assert "wongmia_1006_9_01-data.ipynb is older than" in err
    assert err.count("identical files, graded once") == 4  # s05, s06, s11 = s01; s09 = s02
    summary = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["student_id"] for r in summary] == [f"s{i:02d}" for i in range(1, 13)]
    by_id = {r["student_id"]: r for r in summary}
    assert by_id["s01"]["total"] == by_id["s06"]["total"] == "10" and by_id["s02"]["total"] == "0"
    assert by_id["s03"]["total"] == by_id["s10"]["total"] == "8" and by_id["s03"]["q1_scale"] == "0"
    assert by_id["s04"]["total"] == "4"
    assert by_id["s07"]["status"] == "not graded" and "Python script" in by_id["s07"]["reason"]
    assert by_id["s08"]["total"] == "10"  # a cell that raises is noted, the rest still counts
    assert by_id["s12"]["status"] == "not graded" and by_id["s12"]["reason"] == "no submission"
    # graded in path order, so Omar's (haddadomar_...) is the copy graded; the others point to it
    assert set(by_id["s05"]["same_file_as"].split(", ")) == {"s01", "s06", "s11"}
    assert by_id["s01"]["same_file_as"] == by_id["s11"]["same_file_as"] == "s05"
    pages = sorted(p.name for p in (tmp_path / "feedback").glob("*.md"))
    assert pages == [f"s{i:02d}.md" for i in range(1, 12)]
    for student_id, name, *_ in CLASS[:11]:
        head = (tmp_path / "feedback" / f"{student_id}.md").read_text().splitlines()[2]
        assert head.startswith(f"Student: {name} ({student_id}). Assignment: 01-data"), head
    canvas = (tmp_path / "canvas.csv").read_text().splitlines()
    assert canvas[0].startswith("Student,ID,SIS User ID") and len(canvas) == 2 + 12
    assert len((tmp_path / "moodle.csv").read_text().splitlines()) == 1 + 12
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "submissions",
            "roster.csv",
            "gb.csv",
            "summary.csv",
            "canvas.csv",
            "moodle.csv",
            "feedback",
        ]
    )  # no .benchmarks/ or other stray folders in the teacher's folder
