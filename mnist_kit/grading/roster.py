"""Who each submitted file belongs to: a roster, and the layouts teachers actually have.

    students = read_roster("roster.csv")            # id, name, optional email (and more)
    plan = plan_class(paths, students, latest=False)
    plan.owners     # {file: Student}, one file per student
    plan.unmatched  # files no roster student claims
    plan.missing    # roster students with no file
    plan.problems   # what stops grading before it starts (two files for one student, ...)

A file's owner is read from its path, first match wins:

1. nbgrader's layout, `submitted/<student>/<assignment>/<file>.ipynb` (or `autograded/`);
2. a Canvas bulk download, `<name>[_LATE]_<userid>_<submissionid>_<file>.ipynb`;
3. a Moodle bulk download, `<Full Name>_<participant>_assignsubmission_file_[<file>]`, as a
   folder or as the file's name;
4. one folder per student (`alice/02-keras-mlp.ipynb`), when the file is named after the
   assignment;
5. the file's name (`alice.ipynb`).

With a roster, a clue matches a student by id, by any other roster column (a Canvas user id,
an SIS id), by name (letters and digits only, either name order) or by the e-mail's user part.
Without one, the student is the clue itself, normalised so `Ann Lee` and `Ann_Lee` are one.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Student", "RosterError", "ClassPlan", "read_roster", "clues", "plan_class"]

ID_COLUMNS = ("id", "student_id", "student id", "studentid", "sis user id", "username", "login")
NAME_COLUMNS = ("name", "student", "student name", "full name", "fullname")
EMAIL_COLUMNS = ("email", "e-mail", "email address", "mail")
_CANVAS = re.compile(r"^(?P<name>[a-z]+)(?:_late)?_(?P<user>\d+)_(?P<submission>\d+)_(?P<file>.+)$")
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<participant>\d+)_assignsubmission_(?:file|onlinetext)_?")


class RosterError(ValueError):
    """The roster file cannot be used (no id column, a duplicate id, ...)."""


@dataclass(frozen=True)
class Student:
    """One student: `id` is the key of every output; `extra` keeps the roster's other columns."""

    id: str
    name: str = ""
    email: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        """ "Ann Lee (s1234)", or just the id."""
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id

    def column(self, name: str) -> str:
        return dict(self.extra).get(name, "")


def _column(header: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    return next((lowered[n] for n in names if n in lowered), None)


def read_roster(path: str | Path) -> list[Student]:
    """The students of a roster CSV: an id column (id, student_id, ...), name and email optional."""
    path = Path(path)
    if not path.is_file():
        raise RosterError(f"no roster file {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        id_column = _column(header, ID_COLUMNS)
        if id_column is None:
            raise RosterError(
                f"{path} has no student id column (one of: {', '.join(ID_COLUMNS)}); "
                f"its columns are: {', '.join(header) or 'none'}"
            )
        name_column, email_column = _column(header, NAME_COLUMNS), _column(header, EMAIL_COLUMNS)
        students: dict[str, Student] = {}
        for line, row in enumerate(reader, start=2):
            sid = (row.get(id_column) or "").strip()
            if not sid:
                raise RosterError(f"{path}, line {line}: the student id is empty")
            if sid in students:
                raise RosterError(f"{path}, line {line}: student id {sid!r} appears twice")
            extra = tuple(
                (k.strip().lower(), (v or "").strip())
                for k, v in row.items()
                if k not in (id_column, name_column, email_column) and k
            )
            students[sid] = Student(
                sid,
                (row.get(name_column) or "").strip() if name_column else "",
                (row.get(email_column) or "").strip() if email_column else "",
                extra,
            )
    if not students:
        raise RosterError(f"{path} lists no students")
    return list(students.values())


def _plain(text: str) -> str:
    """Letters and digits only, lower case: "Ann  Lee" and "ann_lee" are both "annlee"."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def clues(path: Path, notebook: str = "") -> list[str]:
    """What the path says about its owner, strongest first (see the module's rules)."""
    parts = path.parts
    found: list[str] = []
    for i, part in enumerate(parts[:-1]):
        if part in ("submitted", "autograded") and i + 1 < len(parts) - 1:
            found.append(parts[i + 1])
    for part in reversed(parts):
        canvas = _CANVAS.match(part.lower())
        if canvas:
            found += [canvas["user"], canvas["name"]]
        moodle = _MOODLE.match(part)
        if moodle:
            found += [moodle["name"], moodle["participant"]]
    stem = path.stem
    generic = notebook and _plain(stem) in (_plain(notebook), _plain(notebook[3:]))
    if len(parts) > 1 and generic:
        found.append(parts[-2])
    found.append(stem)
    return found


class _Index:
    """Find a roster student from one clue."""

    def __init__(self, students: list[Student]):
        self.keys: dict[str, set[str]] = {}
        self.students = {s.id: s for s in students}
        for s in students:
            words = s.name.replace(",", " ").split()
            names = {_plain(s.name), _plain("".join(reversed(words)))} if words else set()
            values = {_plain(s.id), _plain(s.email.split("@")[0]), *names}
            values |= {_plain(v) for _, v in s.extra if v}
            for value in values - {""}:
                self.keys.setdefault(value, set()).add(s.id)

    def find(self, clue: str) -> Student | None:
        ids = self.keys.get(_plain(clue), set())
        return self.students[next(iter(ids))] if len(ids) == 1 else None


def _student_of(clue: str) -> Student:
    """Without a roster: the clue as an id, spaces and odd characters made `_`."""
    sid = re.sub(r"[^\w.-]+", "_", clue.strip()).strip("_") or "student"
    return Student(sid)


@dataclass
class ClassPlan:
    """Who each file belongs to, and what is wrong before grading starts."""

    owners: dict[Path, Student] = field(default_factory=dict)
    unmatched: list[Path] = field(default_factory=list)
    missing: list[Student] = field(default_factory=list)
    superseded: dict[Path, Path] = field(default_factory=dict)  # older file -> the one graded
    problems: list[str] = field(default_factory=list)
    roster: list[Student] = field(default_factory=list)


def feedback_names(ids: Iterable[str]) -> dict[str, str]:
    """Stems safe on every file system; ids whose safe forms collide get a short hash each."""
    ids = sorted(set(ids))
    safe = {i: re.sub(r"[^A-Za-z0-9._-]+", "_", i).strip("._") or "student" for i in ids}
    counts: dict[str, int] = {}
    for stem in safe.values():
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    return {
        i: stem
        if counts[stem.lower()] == 1
        else f"{stem}-{hashlib.sha1(i.encode()).hexdigest()[:6]}"
        for i, stem in safe.items()
    }


def plan_class(
    paths: list[Path], roster: list[Student] | None, notebook: str = "", latest: bool = False
) -> ClassPlan:
    """Match every file to one student; two files for one student is a problem unless `latest`."""
    plan = ClassPlan(roster=list(roster or []))
    index = _Index(roster) if roster else None
    claimed: dict[str, list[Path]] = {}
    students: dict[str, Student] = {}
    for path in paths:
        found = clues(path, notebook)
        if index is None:
            student = _student_of(found[0])
        else:
            student = next((s for s in map(index.find, found) if s is not None), None)
        if student is None:
            plan.unmatched.append(path)
            continue
        students[student.id] = student
        claimed.setdefault(student.id, []).append(path)
    for sid, files in claimed.items():
        if len(files) > 1 and not latest:
            shown = ", ".join(str(f) for f in files)
            plan.problems.append(
                f"{len(files)} files belong to student {students[sid].label}: {shown} "
                "(keep one, or give --latest to grade the newest)"
            )
            continue
        newest = max(files, key=lambda f: (f.stat().st_mtime if f.exists() else 0, str(f)))
        plan.owners[newest] = students[sid]
        plan.superseded.update({f: newest for f in files if f != newest})
    plan.missing = [s for s in plan.roster if s.id not in claimed]
    return plan
