"""Grading a whole class: resumable after a kill, parallel, sharded and merged.

Uses assignment 1 (01-data), whose notebook runs in seconds, and variants of its solution:
correct, one function broken, a kernel that exits, a notebook that sleeps past --timeout,
and files that are empty, truncated or not notebooks at all (graded without a kernel).
Graders that should end are checked for leftovers by scanning /proc for processes that carry
the test's own TMPDIR (in their environment or command line) and their descendants.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from mnist_kit.cli import main as kit_main
from mnist_kit.grading.cli import main as grade_main

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "01-data" / "01-data.ipynb"
BREAK_SCALE = "def scale_images(images):\n    return images"  # q1_scale: 2 points lost
BREAK_SPLIT = "def split_train_val(images, labels, val_fraction=0.2, seed=42):\n    return None"


def _notebook(path: Path, extra: str | None = None, at_end: bool = True, tag: str = "") -> Path:
    """The assignment-1 solution with a comment naming it, plus one more code cell."""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    cells = [nbformat.v4.new_code_cell(f"# {tag or path.name}")]
    if extra:
        cells.append(nbformat.v4.new_code_cell(extra))
    nb.cells = [*nb.cells, *cells] if at_end else [*cells, *nb.cells]
    nbformat.write(nb, str(path))
    return path


def _cheap_files(folder: Path) -> dict[str, int | None]:
    """Files graded without a kernel: {path: None} (each gets an error row with 0 points)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = SOLUTION.read_bytes()
    contents = {
        "empty-1.ipynb": b"",
        "empty-2.ipynb": b"",
        "truncated-1.ipynb": text[:100],
        "truncated-2.ipynb": text[: len(text) // 2],
        "truncated-3.ipynb": text[:-10],
        "garbage-1.ipynb": b"not a notebook at all\n",
        "garbage-2.ipynb": bytes(range(256)) * 4,
        "garbage-3.ipynb": json.dumps({"cells": 5}).encode(),
        "garbage-4.ipynb": b"[1, 2, 3]",
    }
    files = {}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        files[str(folder / name)] = None
    return files


def _class_of_20(folder: Path) -> dict[str, int | None]:
    """20 submissions: {path: expected TOTAL points, or None for an error row}.

    The expected points are those each notebook gets graded alone (see test_grading_engine.py).
    """
    expected = _cheap_files(folder)
    for number in range(1, 6):
        expected[str(_notebook(folder / f"good-{number}.ipynb"))] = 10
    expected[str(_notebook(folder / "scale-broken-1.ipynb", BREAK_SCALE))] = 8
    expected[str(_notebook(folder / "scale-broken-2.ipynb", BREAK_SCALE))] = 8
    expected[str(_notebook(folder / "split-broken.ipynb", BREAK_SPLIT))] = 4
    exits = _notebook(folder / "kernel-exits.ipynb", "import os\nos._exit(3)", at_end=False)
    expected[str(exits)] = 0
    raises = _notebook(folder / "raises.ipynb", "raise RuntimeError('my own bug')")
    expected[str(raises)] = 10  # a cell that raises is noted; the others still count
    sleeps = _notebook(folder / "sleeps.ipynb", "import time\ntime.sleep(10**6)")
    expected[str(sleeps)] = 10  # stopped at --timeout, graded on the functions it defined
    assert len(expected) == 20
    order = sorted(expected)
    random.Random(7).shuffle(order)  # good and hostile ones mixed on the command line
    return {path: expected[path] for path in order}


def _totals(gradebook: Path) -> list[dict]:
    return [row for row in csv.DictReader(gradebook.open()) if row["test"] == "TOTAL"]


def _check_gradebook(gradebook: Path, expected: dict[str, int | None]) -> None:
    """Exactly one TOTAL row per submission, with the expected points, rows sorted by path."""
    rows = list(csv.DictReader(gradebook.open()))
    totals = [row for row in rows if row["test"] == "TOTAL"]
    names = [row["submission"] for row in totals]
    assert sorted(names) == sorted(expected), set(names) ^ set(expected)
    assert len(names) == len(set(names)), "duplicate TOTAL rows"
    assert [row["submission"] for row in rows] == sorted(row["submission"] for row in rows)
    for row in totals:
        points = expected[row["submission"]]
        if points is None:
            assert row["passed"] == "False" and row["points"] == "0", row
            assert row["message"].startswith("not graded"), row
        else:
            assert float(row["points"]) == points, row
            assert row["passed"] == str(points >= 5), row  # the pass mark: half of 10 points
    for name in expected:
        assert sum(row["submission"] == name for row in rows) == 11, name  # 10 tests + TOTAL


def _ours(marker: str) -> list[tuple[int, str]]:
    """Live processes started by a grader whose TMPDIR is `marker`, and everything below them."""
    parents, matched = {}, set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            if stat[stat.rfind(b")") + 2 :].split()[0] == b"Z":
                continue
            parents[int(entry)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except (OSError, IndexError):
            continue
        if marker in cmdline or marker.encode() in environ:
            matched.add(int(entry))
    grew = True
    while grew:  # add descendants (a sandboxed kernel sees neither the marker nor TMPDIR)
        more = {pid for pid, ppid in parents.items() if ppid in matched} - matched
        matched |= more
        grew = bool(more)
    found = []
    for pid in sorted(matched):
        try:
            text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found.append((pid, text))
    return found


def _left_over(marker: str, seconds: float = 15.0) -> list[tuple[int, str]]:
    """What `_ours` still finds after waiting up to `seconds` for it to go away."""
    deadline = time.monotonic() + seconds
    while (found := _ours(marker)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return found


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _grade_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mnist_kit.cli", "grade", "--assignment", "01-data", *args]


@pytest.mark.slow
def test_killed_grader_resumes_with_no_row_lost_or_duplicated(tmp_path):
    """Does a grader killed mid-class (SIGKILL, --jobs 2) resume with no row lost or duplicated?"""
    expected = _class_of_20(tmp_path / "class")
    gradebook = tmp_path / "gb.csv"
    marker = str(tmp_path / "scratch")
    Path(marker).mkdir()
    env = {**os.environ, "TMPDIR": marker}
    command = _grade_command(
        *expected, "--jobs", "2", "--timeout", "40", "--sandbox", "none", "--out", str(gradebook)
    )
    kill_after = random.Random(20261130).randint(3, 8)
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(first.stdout, lines), daemon=True).start()
        for _ in range(kill_after):
            assert lines.get(timeout=180) is not None, "the grader ended before the kill"
        deadline = time.monotonic() + 60
        while not any("ipykernel" in cmd for _, cmd in _ours(marker)):
            assert time.monotonic() < deadline, "no kernel ran to be killed"
            time.sleep(0.2)
        workers = [pid for pid, cmd in _ours(marker) if "spawn_main" in cmd]
        assert len(workers) == 2, _ours(marker)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert _left_over(marker) == [], "worker or kernel processes outlived the killed grader"

    graded_before = len(_totals(gradebook))  # the gradebook is whole: written atomically
    assert kill_after - 1 <= graded_before < 20
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming: {graded_before} of 20 already graded" in second.stderr
    assert len(second.stdout.splitlines()) == 20 - graded_before  # nothing graded twice
    _check_gradebook(gradebook, expected)
    timed_out = next(r for r in _totals(gradebook) if r["submission"].endswith("sleeps.ipynb"))
    assert "timed out after 40 s" in timed_out["message"]
    assert _left_over(marker) == []


def test_ctrl_c_stops_at_once_and_keeps_what_was_graded(tmp_path):
    """Does Ctrl-C stop a --jobs 2 run at once, keep what was graded, and leave no kernel running?"""
    folder = tmp_path / "class"
    folder.mkdir()
    files = [str(folder / "empty.ipynb")] + [
        str(_notebook(folder / f"good-{n}.ipynb")) for n in (1, 2, 3)
    ]
    Path(files[0]).write_bytes(b"")
    gradebook = tmp_path / "gb.csv"
    marker = str(tmp_path / "scratch")
    Path(marker).mkdir()
    command = _grade_command(*files, "--jobs", "2", "--sandbox", "none", "--out", str(gradebook))
    grader = subprocess.Popen(
        command, env={**os.environ, "TMPDIR": marker}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert grader.stdout.readline().startswith(files[0])  # the empty file, graded at once
        deadline = time.monotonic() + 60
        while not any("ipykernel" in cmd for _, cmd in _ours(marker)):
            assert time.monotonic() < deadline, "no kernel ran to be interrupted"
            time.sleep(0.2)
        grader.send_signal(signal.SIGINT)
        _, err = grader.communicate(timeout=20)
    finally:
        grader.kill()
    assert grader.returncode == 130, err
    assert "interrupted: " in err and "Traceback" not in err, err
    graded = [row["submission"] for row in _totals(gradebook)]
    assert files[0] in graded and len(graded) < 4
    assert _left_over(marker) == []


def test_two_jobs_give_the_same_grades_as_one(tmp_path, capsys):
    """Does --jobs 2 give exactly the rows --jobs 1 gives (each submission as if graded alone)?"""
    folder = tmp_path / "class"
    folder.mkdir()
    files = [
        str(_notebook(folder / "good.ipynb")),
        str(_notebook(folder / "scale-broken.ipynb", BREAK_SCALE)),
        str(_notebook(folder / "kernel-exits.ipynb", "import os\nos._exit(3)", at_end=False)),
        *list(_cheap_files(folder))[:2],
    ]
    books = {}
    for jobs in ("1", "2"):
        books[jobs] = tmp_path / f"jobs-{jobs}.csv"
        code = grade_main(
            ["--assignment", "01-data", *files, "--jobs", jobs, "--sandbox", "none",
             "--out", str(books[jobs])]
        )  # fmt: skip
        assert code == 0
    one, two = (list(csv.DictReader(books[j].open())) for j in ("1", "2"))
    assert len(one) == 5 * 11
    assert one == two
    scores = {Path(r["submission"]).name: r["points"] for r in one if r["test"] == "TOTAL"}
    assert scores == {"good.ipynb": "10", "scale-broken.ipynb": "8", "kernel-exits.ipynb": "0",
                      "empty-1.ipynb": "0", "empty-2.ipynb": "0"}  # fmt: skip
    err = capsys.readouterr().err
    assert "graded 5/5: " in err and "done: 5 of 5 graded" in err


def _grade(capsys, *args: str) -> tuple[int, str]:
    code = grade_main(["--assignment", "01-data", *args])
    return code, capsys.readouterr().err


def test_shards_are_disjoint_and_merge_to_the_unsharded_gradebook(tmp_path, capsys, monkeypatch):
    """Do --shard 1/3, 2/3, 3/3 split the class disjointly, and --merge rebuild the whole gradebook?"""
    # Relative paths, as a teacher types them (`class/*.ipynb`): the shard of a file is a hash of
    # the path as given, so these nine split 2/4/3 on every machine (an absolute tmp path would
    # leave a shard empty on some runs).
    monkeypatch.chdir(tmp_path)
    expected = {os.path.relpath(path, tmp_path): points
                for path, points in _cheap_files(tmp_path / "class").items()}  # fmt: skip
    files = list(expected)
    whole = tmp_path / "whole.csv"
    assert _grade(capsys, *files, "--out", str(whole))[0] == 0
    _check_gradebook(whole, expected)
    shards, seen = [], []
    for index in (1, 2, 3):
        shards.append(tmp_path / f"shard-{index}.csv")
        code, err = _grade(capsys, *files, "--shard", f"{index}/3", "--out", str(shards[-1]))
        names = {row["submission"] for row in _totals(shards[-1])}
        assert code == 0 and names, f"shard {index} is empty"
        assert f"shard {index}/3: {len(names)} of {len(files)} submissions" in err
        seen.append(names)
    assert sum(len(names) for names in seen) == len(files)  # disjoint ...
    assert set().union(*seen) == set(files)  # ... and together everything
    # The same command gives the same slices (deterministic), even with the files listed backwards.
    again = tmp_path / "again.csv"
    _grade(capsys, *reversed(files), "--shard", "2/3", "--out", str(again))
    assert {row["submission"] for row in _totals(again)} == seen[1]

    merged = tmp_path / "merged.csv"
    copy = tmp_path / "shard-1-copy.csv"
    copy.write_bytes(shards[0].read_bytes())
    assert grade_main(["--merge", *map(str, [shards[2], copy, *shards]), "--out", str(merged)]) == 0
    assert merged.read_bytes() == whole.read_bytes()  # identical duplicates kept once
    assert f"merged 5 gradebooks: {len(files)} submissions" in capsys.readouterr().err

    rows = list(csv.DictReader(shards[1].open()))
    victim = rows[-1]["submission"]
    for row in rows:
        if row["submission"] == victim and row["test"] == "TOTAL":
            row["points"] = "7"
    conflicting = tmp_path / "conflicting.csv"
    with conflicting.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    code = kit_main(["grade", "--merge", str(shards[1]), str(conflicting), "--out", str(merged)])
    err = capsys.readouterr().err
    assert code == 2 and victim in err and "different points" in err, err
    assert merged.read_bytes() == whole.read_bytes()  # a failed merge writes nothing


def test_resume_skips_what_is_graded_and_regrades_a_changed_file(tmp_path, capsys):
    """Is a finished submission skipped on a rerun, a changed one regraded, a duplicate path graded once?"""
    expected = _cheap_files(tmp_path / "class")
    files = list(expected)
    gradebook = tmp_path / "gb.csv"
    twice = [files[0], files[0], str(Path(files[0]).parent / "." / Path(files[0]).name)]
    code, err = _grade(capsys, *twice, *files[1:], "--out", str(gradebook))
    assert code == 0 and f"graded {len(files)}/{len(files)}" in err
    _check_gradebook(gradebook, expected)
    before = {r["submission"]: r["sha256"] for r in _totals(gradebook)}

    changed = Path(files[3])
    changed.write_bytes(b"{")  # resubmitted: still broken, but different
    stale = gradebook.parent / f".{gradebook.name}.killed.part"  # a write cut off by a kill
    stale.write_text("submission,half a row")
    code, err = _grade(capsys, *files, "--out", str(gradebook))
    assert not stale.exists()
    assert code == 0 and f"resuming: {len(files) - 1} of {len(files)} already graded" in err
    assert f"graded {len(files)}/{len(files)}: {changed}" in err
    _check_gradebook(gradebook, expected)
    after = {r["submission"]: r["sha256"] for r in _totals(gradebook)}
    assert {k for k in before if before[k] != after[k]} == {str(changed)}

    code, err = _grade(capsys, *files, "--out", str(gradebook), "--fresh")
    assert code == 0 and "resuming" not in err and f"graded {len(files)}/{len(files)}" in err
    _check_gradebook(gradebook, expected)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--shard", "0/3"], "1 <= I <= N"),
        (["--shard", "4/3"], "1 <= I <= N"),
        (["--shard", "x/y"], "expected I/N with whole numbers"),
        (["--shard", "3"], "expected I/N with whole numbers"),
        (["--jobs", "0"], "must be at least 1"),
        (["--jobs", "two"], "expected a whole number"),
        (["--merge", "a.csv"], "--merge needs --out"),
        (["--sandbox", "docker"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_error_line_and_exit_2(args, fragment, capsys):
    """Are bad --shard/--jobs/--merge arguments one clear error line with exit code 2?"""
    with pytest.raises(SystemExit) as stop:
        kit_main(["grade", "--assignment", "01-data", "x.ipynb", *args])
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and fragment in errors[0], errors


def test_missing_assignment_or_submissions_are_argument_errors(capsys):
    """Without --merge, are --assignment and the submissions still required (exit 2)?"""
    for argv, fragment in ((["grade", "x.ipynb"], "--assignment"),
                           (["grade", "--assignment", "01-data"], "SUBMISSION.ipynb")):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            kit_main(argv)
        assert stop.value.code == 2 and fragment in capsys.readouterr().err
