"""From the paths a teacher typed to one submission per student, and back to files a course
system takes: a summary with one row per student, and Canvas and Moodle grade imports.

`mnist-kit grade` (cli.py) calls, in order: `expand` (paths and quoted globs to files, or
UsageError before anything is graded), `intake` (owners from the roster or the paths,
identical files graded once), then after grading `write_class_files` (`write_summary`,
`write_canvas`, `write_moodle`) from the gradebook's rows.
"""

from __future__ import annotations

import csv
import functools
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from mnist_kit.files import write_atomically
from mnist_kit.grading.assignments import Assignment, collect_tests, suite_module
from mnist_kit.grading.batch import QueuedFile, file_sha256
from mnist_kit.grading.report import TOTAL
from mnist_kit.grading.roster import ClassPlan, Student, feedback_names, plan_class

__all__ = ["UsageError", "Intake", "expand", "intake", "write_class_files", "summary_rows",
           "write_summary", "write_canvas", "write_moodle"]  # fmt: skip


class UsageError(ValueError):
    """What the teacher typed cannot be graded (a missing file, a folder): exit code 2."""


def expand(raw_paths: list[str]) -> list[Path]:
    """Each path as given, or the files a quoted glob matches; UsageError names what is wrong."""
    files: list[Path] = []
    for raw in raw_paths:
        path = Path(raw)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            nested = "**/" if any(path.glob("*/**/*.ipynb")) else ""
            raise UsageError(
                f"{raw} is a folder; give the notebooks in it, e.g. '{path / (nested + '*.ipynb')}'"
                + (" (quoted, so the grader expands it)" if nested else "")
            )
        elif glob.has_magic(raw):
            matched = sorted(Path(p) for p in glob.glob(raw, recursive=True) if Path(p).is_file())
            if not matched:
                raise UsageError(f"no file matches {raw}")
            files += matched
        else:
            hint = _near(path)
            raise UsageError(f"no such file: {raw}" + (f" (did you mean {hint}?)" if hint else ""))
    return files


def _near(path: Path) -> str:
    """A glob for the notebooks beside a mistyped path, if there are any."""
    folder = path.parent if path.parent.is_dir() else None
    if folder is None or not any(folder.glob("*.ipynb")):
        return ""
    return str(folder / "*.ipynb")


@dataclass
class Intake:
    """What to grade: one QueuedFile per student, plus who shares identical files."""

    plan: ClassPlan
    submissions: list[QueuedFile] = field(default_factory=list)
    owner: dict[str, Student] = field(default_factory=dict)  # submission key -> student
    copies: dict[str, str] = field(default_factory=dict)  # key -> key of the identical file graded
    repeated: list[str] = field(default_factory=list)  # one student's same file given twice

    @property
    def to_grade(self) -> list[QueuedFile]:
        return [s for s in self.submissions if s.key not in self.copies]

    @functools.cached_property
    def feedback_stems(self) -> dict[str, str]:
        """Each student id's feedback file stem, unique by construction (worked out once)."""
        return feedback_names(s.id for s in self.owner.values())


def intake(
    files: list[Path], roster: list[Student] | None, notebook: str, latest: bool = False
) -> Intake:
    """Owners for `files`; the same file under two paths, or twice for one student, counts once."""
    seen: dict[str, Path] = {}
    digests: dict[Path, str] = {}
    repeated: list[str] = []
    for path in files:
        same = os.path.realpath(path)
        digest = file_sha256(path)
        key = same if not digest else f"{digest}:{_plan_key(path, roster, notebook)}"
        if key in seen or same in seen:
            repeated.append(f"{path} (the same as {seen.get(key, seen.get(same))})")
            continue
        seen[key] = seen[same] = path
        digests[path] = digest
    plan = plan_class(list(digests), roster, notebook, latest)
    result = Intake(plan, repeated=repeated)
    groups: dict[str, list[str]] = {}
    for path, student in plan.owners.items():  # in the order given: graded in that order
        submission = QueuedFile(str(path), path, digests[path])
        result.submissions.append(submission)
        result.owner[submission.key] = student
        if submission.sha256:
            groups.setdefault(submission.sha256, []).append(submission.key)
    for keys in groups.values():  # the first by name is graded, whatever the order given
        result.copies.update({k: min(keys) for k in keys if k != min(keys)})
    return result


def _plan_key(path: Path, roster: list[Student] | None, notebook: str) -> str:
    """The student a single file maps to, for spotting one student's file given twice."""
    plan = plan_class([path], roster, notebook)
    owners = list(plan.owners.values())
    return owners[0].id if owners else f"unmatched:{path}"


# ------------------------------------------------------------------------------ outputs


def write_class_files(
    book: dict[str, list[dict]],
    found: Intake,
    assignment: Assignment,
    summary: str | Path | None = None,
    canvas: str | Path | None = None,
    moodle: str | Path | None = None,
) -> None:
    """--summary, --canvas and --moodle, from every row the gradebook holds for this class."""
    if not (summary or canvas or moodle):
        return
    visible = [i.question for _, i in collect_tests(suite_module(assignment))]
    graded = [r["question"] for rows in book.values() for r in rows if r["question"]]
    questions = list(dict.fromkeys(visible + graded))
    rows = summary_rows(book, found, questions)
    if summary:
        write_summary(rows, questions, summary)
    maximum = next((r["max_score"] for r in rows if r["max_score"]), "")
    title = f"{assignment.name} {assignment.title}"
    if canvas:
        write_canvas(rows, title, maximum, found.plan.roster, canvas)
    if moodle:
        write_moodle(rows, title, moodle)


def summary_rows(book: dict[str, list[dict]], found: Intake, questions: list[str]) -> list[dict]:
    """One row per student (roster order, then the rest): points per question and the total."""
    by_student = {
        found.owner[key].id: (key, rows) for key, rows in book.items() if key in found.owner
    }
    students = found.plan.roster or [found.owner[s.key] for s in found.submissions]
    students += [s for s in (found.owner[x.key] for x in found.submissions) if s not in students]
    out = []
    for student in students:
        row = {"student_id": student.id, "name": student.name, "email": student.email}
        key, rows = by_student.get(student.id, ("", []))
        total = next((r for r in rows if r["test"] == TOTAL), None)
        row["file"] = key
        row["same_file_as"] = ", ".join(
            found.owner[k].id for k, of in found.copies.items() if of == key
        ) or (found.owner[found.copies[key]].id if key in found.copies else "")
        for question in questions:
            points = [float(r["points"]) for r in rows if r["question"] == question]
            row[question] = f"{sum(points):g}" if total else ""
        graded = total is not None and not total["message"].startswith("not graded")
        extra = sum(
            float(r["points"]) for r in rows if r["extra_credit"] == "True" and r["test"] != TOTAL
        )
        row.update(
            total=total["points"] if total else "",
            max_score=total["max_points"] if total else "",
            extra_credit=f"{extra:g}" if total else "",
            status="graded" if graded else "not graded",
            reason=(total["message"] if total and not graded else "" if total else "no submission"),
        )
        out.append(row)
    return out


def write_summary(rows: list[dict], questions: list[str], path: str | Path) -> Path:
    columns = ["student_id", "name", "email", "file", *questions, "total", "max_score",
               "extra_credit", "status", "reason", "same_file_as"]  # fmt: skip
    return _write_csv(path, columns, rows)


def write_canvas(rows: list[dict], title: str, points_possible: str, roster: list[Student],
                 path: str | Path) -> Path:  # fmt: skip
    """Canvas' gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, one column
    named after the assignment, and the "Points Possible" row Canvas' own export has."""
    students = {s.id: s for s in roster}
    columns = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", title]
    lines = [dict.fromkeys(columns, ""), *[{} for _ in rows]]
    lines[0].update({"Student": "Points Possible", title: points_possible})
    for line, row in zip(lines[1:], rows, strict=True):
        s = students.get(row["student_id"], Student(row["student_id"], row["name"], row["email"]))
        line.update({
            "Student": s.name or s.id,
            "ID": s.column("canvas id") or s.column("canvas_id") or s.column("canvas user id"),
            "SIS User ID": s.column("sis user id") or s.column("sis_user_id") or s.id,
            "SIS Login ID": s.column("sis login id") or s.column("sis_login_id") or s.email,
            "Section": s.column("section"),
            title: row["total"],
        })  # fmt: skip
    return _write_csv(path, columns, lines)


def write_moodle(rows: list[dict], title: str, path: str | Path) -> Path:
    """Moodle's "Import grades from CSV": an identifier column (ID number or Email address,
    mapped to the user field at import) and one grade column mapped to the grade item."""
    columns = ["ID number", "Email address", "Full name", title]
    lines = [
        {"ID number": r["student_id"], "Email address": r["email"], "Full name": r["name"],
         title: r["total"]}
        for r in rows
    ]  # fmt: skip
    return _write_csv(path, columns, lines)


def _write_csv(path: str | Path, columns: list[str], rows: list[dict]) -> Path:
    def write(out) -> None:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    return write_atomically(path, write, text=True)
