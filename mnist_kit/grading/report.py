"""Write grades out: a CSV gradebook, per-student feedback in Markdown and HTML, JSON lines."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Iterable
from pathlib import Path

from mnist_kit.files import write_atomically
from mnist_kit.grading.results import GradeResult, TestResult

__all__ = [
    "GRADEBOOK_COLUMNS",
    "write_gradebook",
    "gradebook_rows",
    "write_gradebook_rows",
    "read_gradebook",
    "open_gradebook",
    "feedback_markdown",
    "feedback_html",
    "write_feedback",
    "json_line",
]

GRADEBOOK_COLUMNS = (
    "submission", "student", "assignment", "test", "question", "points", "max_points", "passed",
    "hidden", "extra_credit", "message", "sha256", "measurements",
)  # fmt: skip
TOTAL = "TOTAL"  # the `test` value of each submission's summary row


def gradebook_rows(result: GradeResult, sha256: str = "", student: str = "") -> list[dict]:
    """The gradebook rows of one submission: one per test, then TOTAL.

    `sha256` is the graded file's, `student` the id it belongs to (empty without a roster
    match). On the TOTAL row `passed` means graded and at or above the assignment's pass mark,
    `hidden` is False, `extra_credit` whether any extra credit was earned, and `measurements`
    a JSON object of what the grader measured ({"model.test_accuracy": 0.9712, ...}).
    """
    rows = [{k: "" if v is None else str(v) for k, v in row.items()} for row in _rows(result)]
    for row in rows:
        row["sha256"], row["student"] = sha256, student
    return rows


def passed_mark(result: GradeResult) -> bool:
    """Whether a graded result reached its assignment's pass mark (half the points by default)."""
    from mnist_kit.grading.assignments import ASSIGNMENTS

    assignment = ASSIGNMENTS.get(result.assignment)
    mark = assignment.pass_mark if assignment else 0.5
    return result.error is None and result.score >= mark * result.max_score - 1e-9


def _rows(result: GradeResult) -> Iterable[dict]:
    for test in result.tests:
        yield {
            "submission": result.submission,
            "assignment": result.assignment,
            "test": test.name,
            "question": test.question,
            "points": f"{test.points:g}",
            "max_points": f"{test.max_points:g}",
            "passed": test.passed,
            "hidden": test.hidden,
            "extra_credit": test.extra_credit,
            "message": test.message,
        }
    summary = result.error or "; ".join(result.notes) or ""
    yield {
        "submission": result.submission,
        "assignment": result.assignment,
        "test": TOTAL,
        "question": "",
        "points": f"{result.score:g}",
        "max_points": f"{result.max_score:g}",
        "passed": passed_mark(result),
        "hidden": False,
        "extra_credit": result.extra_credit > 0,
        "message": summary,
        "measurements": json.dumps(result.measurements, sort_keys=True),
    }


def write_gradebook(results: Iterable[GradeResult], path: str | Path) -> Path:
    """Write one row per submission and test, plus a TOTAL row per submission (atomically)."""
    return write_gradebook_rows((row for r in results for row in gradebook_rows(r)), path)


def write_gradebook_rows(rows: Iterable[dict], path: str | Path) -> Path:
    """Write gradebook rows atomically: a temporary file in the same folder, fsync, os.replace.

    A reader (or a grader killed at any moment) sees the old gradebook or the new one, never
    half of one.
    """
    rows = list(rows)

    def write(out) -> None:
        writer = csv.DictWriter(out, fieldnames=GRADEBOOK_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    return write_atomically(path, write, text=True)


def read_gradebook(path: str | Path) -> dict[str, list[dict]]:
    """A gradebook's rows by submission, in file order; {} when the file does not exist.

    Only submissions with a TOTAL row are returned (a gradebook written by this module always
    has one per submission). Older gradebooks without a `sha256` column read with it empty.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"submission", "test", "points"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{path} is not a gradebook written by mnist-kit grade "
                f"(no {', '.join(sorted(missing))} column)"
            )
        grouped: dict[str, list[dict]] = {}
        for row in reader:
            row = {column: row.get(column) or "" for column in GRADEBOOK_COLUMNS}
            grouped.setdefault(row["submission"], []).append(row)
    return {key: rows for key, rows in grouped.items() if any(r["test"] == TOTAL for r in rows)}


def open_gradebook(path: str | Path, fresh: bool = False) -> dict[str, list[dict]]:
    """What the gradebook at `path` already holds ({} with `fresh`), to resume grading into it.

    A killed grader's temporary copies next to it are removed, and a fresh or new gradebook is
    written (empty) at once, so that a path that cannot be written fails before any grading.
    """
    out = Path(path)
    for stale in out.parent.glob(f".{out.name}.*.part"):  # a killed grader's temporary copy
        stale.unlink(missing_ok=True)
    book = {} if fresh else read_gradebook(path)
    if fresh or not out.exists():
        write_gradebook_rows([], path)
    return book


def _questions(tests: Iterable[TestResult]) -> dict[str, list[TestResult]]:
    """The tests grouped by question id, questions in the order their first test ran."""
    grouped: dict[str, list[TestResult]] = {}
    for test in tests:
        grouped.setdefault(test.question, []).append(test)
    return grouped


def _heading(question: str) -> str:
    """A question's section heading: its title as the notebook shows it, and its id."""
    from mnist_kit.grading.questions import question_title

    title = question_title(question)
    return f"{title} ({question})" if title != question else question


def _not_graded(error: str) -> str:
    """The reason a notebook was not graded, without the "not graded: " the engine puts first."""
    return error[len("not graded: ") :] if error.startswith("not graded: ") else error


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _visible_row(test: TestResult) -> tuple[str, str, str, str]:
    """A visible test's row: mark, name, points, what to change (empty when it passed)."""
    bonus = " (extra credit)" if test.extra_credit else ""
    return (
        "pass" if test.passed else "FAIL",
        f"{test.description}{bonus}",
        f"{test.points:g} / {test.max_points:g}",
        "" if test.passed else test.message,
    )


def _hidden_summary(tests: list[TestResult]) -> tuple[str, list[str]] | None:
    """How a question's hidden tests did, and one line per failed one saying what it checks.

    Only counts, points and each test's public `about` are used: never a hidden test's name,
    docstring or message, which can hold its inputs and expected values.
    """
    hidden = [t for t in tests if t.hidden]
    if not hidden:
        return None
    passed = sum(t.passed for t in hidden)
    earned = sum(t.points for t in hidden)
    total = sum(t.max_points for t in hidden)
    unit = "point" if total == 1 else "points"
    summary = f"Hidden tests: {passed} of {len(hidden)} passed ({earned:g} / {total:g} {unit})."
    if passed < len(hidden):
        summary += " Not passed:"
    failed = [
        f"FAIL ({t.points:g} / {t.max_points:g}{' extra credit' if t.extra_credit else ''}): "
        + (f"checks {_one_line(t.about)}" if t.about else "a hidden test")
        for t in hidden
        if not t.passed
    ]
    return summary, failed


def _grader_lines(result: GradeResult) -> list[str]:
    """The measurements and notes shown above the tests."""
    lines = [
        f"Measured by the grader: `{key[: -len('.test_accuracy')]}` test accuracy {value:.4f}"
        for key, value in result.measurements.items()
        if key.endswith(".test_accuracy")
    ]
    return lines + [f"Note: {note}" for note in result.notes]


def _owner_line(result: GradeResult, owner: str) -> str:
    """Whose page this is: the student (or the file), the assignment, the date, the grader."""
    import datetime

    from mnist_kit import __version__
    from mnist_kit.grading.assignments import ASSIGNMENTS

    assignment = ASSIGNMENTS.get(result.assignment)
    title = f" ({assignment.title})" if assignment else ""
    day = datetime.date.today().isoformat()
    return (
        f"Student: {owner or result.submission}. Assignment: {result.assignment}{title}. "
        f"File: {Path(result.submission).name}. Graded on {day} by mnist-kit {__version__}."
    )


def feedback_markdown(result: GradeResult, owner: str = "") -> str:
    """Feedback for the student, a section per question: each visible test with its message,
    then how many hidden tests passed and what each failed hidden test checks (never its message).

    Every list and table has a blank line before and after it, as CommonMark needs to tell them
    apart.
    """
    lines = [
        f"# Feedback: {result.assignment}",
        "",
        _owner_line(result, owner),
        "",
        f"**Score: {result.score:g} / {result.max_score:g}**"
        + (f" (including {result.extra_credit:g} extra credit)" if result.extra_credit else ""),
        "",
    ]
    if result.error:
        lines += [f"Your notebook could not be graded: {_not_graded(result.error)}", ""]
    grader = _grader_lines(result)
    if grader:
        lines += [f"- {line}" for line in grader] + [""]
    for question, tests in _questions(result.tests).items():
        lines += [f"## {_heading(question)}", ""]
        visible = [t for t in tests if not t.hidden]
        if visible:
            lines += ["| | Test | Points | What to change |", "|---|---|---|---|"]
            for test in visible:
                cells = (_one_line(c).replace("|", "\\|") for c in _visible_row(test))
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        hidden = _hidden_summary(tests)
        if hidden:
            summary, failed = hidden
            lines += [summary, ""]
            if failed:
                lines += [f"- {line}" for line in failed] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def feedback_html(result: GradeResult, owner: str = "") -> str:
    """The same feedback as a small standalone HTML page."""
    body = []
    for question, tests in _questions(result.tests).items():
        body.append(f"<h2>{html.escape(_heading(question))}</h2>")
        visible = [t for t in tests if not t.hidden]
        if visible:
            rows = []
            for test in visible:
                mark, name, points, what = _visible_row(test)
                color = "#1a7f37" if test.passed else "#cf222e"
                rows.append(
                    f"<tr><td style='color:{color}'>{mark}</td><td>{html.escape(name)}</td>"
                    f"<td>{points}</td><td>{html.escape(what)}</td></tr>"
                )
            body.append(
                "<table><tr><th></th><th>Test</th><th>Points</th><th>What to change</th></tr>"
                + "".join(rows)
                + "</table>"
            )
        hidden = _hidden_summary(tests)
        if hidden:
            summary, failed = hidden
            body.append(f"<p>{html.escape(summary)}</p>")
            if failed:
                body.append(
                    "<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in failed) + "</ul>"
                )
    grader = "".join(f"<li>{html.escape(line)}</li>" for line in _grader_lines(result))
    error = (
        f"<p><b>Not graded:</b> {html.escape(_not_graded(result.error))}</p>"
        if result.error
        else ""
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Feedback: {html.escape(result.assignment)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.3em .6em;"
        "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>Feedback: {html.escape(result.assignment)}</h1>"
        f"<p class='owner'>{html.escape(_owner_line(result, owner))}</p>"
        f"<p><b>Score: {result.score:g} / {result.max_score:g}</b></p>{error}"
        + (f"<ul>{grader}</ul>" if grader else "")
        + "".join(body)
        + "</body></html>\n"
    )


def write_feedback(
    result: GradeResult, folder: str | Path, stem: str, owner: str = ""
) -> list[Path]:
    """Write `<stem>.md` and `<stem>.html` for one submission; return both paths.

    `stem` comes from the student's id (roster.feedback_names), so two students never share a
    page; `owner` names the student on the page.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    pages = ((".md", feedback_markdown(result, owner)), (".html", feedback_html(result, owner)))
    for suffix, text in pages:
        target = folder / f"{stem}{suffix}"
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def json_line(result: GradeResult) -> str:
    """One submission as a single JSON line."""
    return json.dumps(result.to_json(), sort_keys=False)
