"""Where the class stands: a gradebook's statistics as plain text, JSON and one HTML page.

    stats = class_stats(read_class("gradebook.csv"))
    print(text_summary(stats))
    write_html(stats, "report.html")

`mnist-kit report gradebook.csv --html report.html` does the same. The page is for the
teacher: it shows hidden tests' messages, so never hand it to students.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_kit.grading.assignments import ASSIGNMENTS
from mnist_kit.grading.questions import QUESTION_TITLES
from mnist_kit.grading.report import TOTAL, read_gradebook

__all__ = ["AssignmentStats", "read_class", "class_stats", "text_summary", "write_html"]

NOT_GRADED = "not graded: "  # how a TOTAL message starts when the notebook was not graded
ACCURACY = ".test_accuracy"  # measurement keys the grader wrote after testing a model itself
TOP_TESTS = 10  # most-failed tests listed per assignment
TOP_MESSAGES = 3  # most common failure messages listed per test
ACCURACY_BINS = 10


@dataclass
class AssignmentStats:
    """Where one assignment stands; all but `submissions` and `not_graded` count graded ones only."""

    assignment: str
    title: str  # from ASSIGNMENTS; "" for an assignment this kit does not know
    submissions: int
    graded: int
    not_graded: list[dict]  # {"student", "reason"}
    scores: dict  # count, mean, median, min, max, max_points
    score_histogram: dict  # {"edges", "counts"}, a bin per whole point: 0, 1, 2...
    questions: list[dict]  # see _questions
    failed_tests: list[dict]  # see _failed_tests
    accuracies: dict[str, dict]  # model -> summary and histogram


def read_class(path: str | Path) -> dict[str, list[dict]]:
    """A gradebook's rows by submission, as `read_gradebook` reads them.

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: the file is not a gradebook, or holds no submission's TOTAL row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no gradebook at {path}; give the CSV `mnist-kit grade` wrote")
    try:
        gradebook = read_gradebook(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path} is not a gradebook written by mnist-kit grade ({exc})") from None
    if not gradebook:
        raise ValueError(f"{path} has no TOTAL rows: is it a gradebook from mnist-kit grade?")
    return gradebook


def class_stats(gradebook: dict[str, list[dict]]) -> dict[str, AssignmentStats]:
    """Each assignment in the gradebook (sorted by name) and where its class stands."""
    by_assignment: dict[str, list[list[dict]]] = {}
    for rows in gradebook.values():
        by_assignment.setdefault(_total(rows)["assignment"], []).append(rows)
    return {name: _assignment_stats(name, subs) for name, subs in sorted(by_assignment.items())}


def _total(rows: list[dict]) -> dict:
    """A submission's TOTAL row: its score, pass mark, notes or why it was not graded."""
    return next(row for row in reversed(rows) if row["test"] == TOTAL)


def _assignment_stats(name: str, submissions: list[list[dict]]) -> AssignmentStats:
    """The statistics of one assignment's submissions (each a list of gradebook rows)."""
    graded, not_graded = [], []
    for rows in submissions:
        total = _total(rows)
        if not total["message"].startswith(NOT_GRADED.rstrip()):
            graded.append(rows)
            continue
        reason = total["message"].removeprefix(NOT_GRADED)
        not_graded.append({"student": total["student"] or total["submission"], "reason": reason})
    scores = [float(_total(rows)["points"] or 0) for rows in graded]
    max_points = max((float(_total(rows)["max_points"] or 0) for rows in graded), default=0.0)
    top = max([max_points, *scores])  # extra credit can go past the maximum
    assignment = ASSIGNMENTS.get(name)
    return AssignmentStats(
        assignment=name, title=assignment.title if assignment else "",
        submissions=len(submissions), graded=len(graded), not_graded=not_graded,
        scores={**_summary(scores), "max_points": max_points} if scores else {},
        score_histogram=_histogram(scores, [p - 0.5 for p in range(math.ceil(top) + 2)]),
        questions=_questions(graded), failed_tests=_failed_tests(graded), accuracies=_accuracies(graded),
    )  # fmt: skip


def _summary(values: list[float]) -> dict:
    """Count, mean, median, min and max of some numbers."""
    measures = {"mean": statistics.mean, "median": statistics.median, "min": min, "max": max}
    return {"count": len(values)} | {key: round(f(values), 4) for key, f in measures.items()}


def _histogram(values: list[float], edges: list[float]) -> dict:
    """How many values fall in each bin between consecutive edges (the last bin includes its end)."""
    counts, _ = np.histogram(values, bins=edges)
    return {"edges": [round(float(e), 4) for e in edges], "counts": counts.tolist()}


def _questions(graded: list[list[dict]]) -> list[dict]:
    """Per question, in test order: title, mean and max points, share with full marks, spread."""
    earned: dict[str, list[float]] = {}
    maximum: dict[str, float] = defaultdict(float)
    for rows in graded:
        points, top = defaultdict(float), defaultdict(float)
        for row in (row for row in rows if row["test"] != TOTAL):
            points[row["question"]] += float(row["points"] or 0)
            top[row["question"]] += float(row["max_points"] or 0)
        for question, value in points.items():
            earned.setdefault(question, []).append(round(value, 4))
            maximum[question] = max(maximum[question], round(top[question], 4))
    return [
        {
            "question": question,
            "title": QUESTION_TITLES.get(question, question),
            "mean": round(statistics.mean(values), 4),
            "max_points": maximum[question],
            "full_marks": round(sum(v >= maximum[question] for v in values) / len(values), 4),
            "distribution": {f"{p:g}": n for p, n in sorted(Counter(values).items())},
        }
        for question, values in earned.items()
    ]


def _failed_tests(graded: list[list[dict]]) -> list[dict]:
    """The tests failed most often, each with its most common messages and their counts."""
    messages: dict[tuple[str, str, bool], Counter] = defaultdict(Counter)
    for rows in graded:
        for row in rows:
            if row["test"] != TOTAL and row["passed"] != "True":
                key = (row["question"], row["test"], row["hidden"] == "True")
                messages[key][" ".join(row["message"].split())] += 1
    ranked = sorted(messages.items(), key=lambda item: -item[1].total())  # ties keep file order
    return [
        {
            "test": test,
            "question": question,
            "hidden": hidden,
            "failed": counts.total(),
            "messages": [{"message": m, "count": n} for m, n in counts.most_common(TOP_MESSAGES)],
        }
        for (question, test, hidden), counts in ranked[:TOP_TESTS]
    ]


def _accuracies(graded: list[list[dict]]) -> dict[str, dict]:
    """Per model, the test accuracies the grader measured: summary and a 10-bin histogram."""
    values: dict[str, list[float]] = defaultdict(list)
    for rows in graded:
        try:
            measured = json.loads(_total(rows)["measurements"] or "{}")
        except json.JSONDecodeError:
            measured = {}
        for key, value in measured.items() if isinstance(measured, dict) else ():
            if key.endswith(ACCURACY) and isinstance(value, int | float) and math.isfinite(value):
                values[key.removesuffix(ACCURACY)].append(float(value))
    found = {}
    for model, accuracies in sorted(values.items()):
        low = min(min(accuracies), math.floor(min(accuracies) * 100) / 100)
        high = max(max(accuracies), math.ceil(max(accuracies) * 100) / 100, low + 0.01)
        edges = np.linspace(low, high, ACCURACY_BINS + 1).tolist()
        found[model] = {**_summary(accuracies), "histogram": _histogram(accuracies, edges)}
    return found


def _headline(s: AssignmentStats) -> str:
    """ "02-keras-mlp (First MLP in Keras): 12 submissions, 10 graded, 2 not graded"."""
    counts = f"{s.submissions} submissions, {s.graded} graded, {len(s.not_graded)} not graded"
    return f"{s.assignment} ({s.title}): {counts}" if s.title else f"{s.assignment}: {counts}"


def _spread(summary: dict, spec: str = "g") -> str:
    """ "mean 8.5, median 8.5, min 6, max 11" from a `_summary`."""
    return ", ".join(f"{key} {summary[key]:{spec}}" for key in ("mean", "median", "min", "max"))


def _question_row(q: dict) -> list[str]:
    """A question's cells: title, id, mean, max, share of full marks, students per points value."""
    spread = ", ".join(f"{points}: {n}" for points, n in q["distribution"].items())
    numbers = f"{q['mean']:g}", f"{q['max_points']:g}", f"{q['full_marks']:.0%}"
    return [q["title"], q["question"], *numbers, spread]


def _failed(t: dict) -> tuple[str, list[str]]:
    """A failed test's line ("test_accuracy (q2_accuracy) failed by 5"), a line per message."""
    hidden = ", hidden" if t["hidden"] else ""
    messages = [f"{m['count']} x {m['message']}" for m in t["messages"]]
    return f"{t['test']} ({t['question']}{hidden}) failed by {t['failed']}", messages


def _accuracy_lines(s: AssignmentStats) -> list[str]:
    """Per model: how many test accuracies were measured, their mean, median, min and max."""
    return [
        f"{m} test accuracy, {a['count']} measured: {_spread(a, '.4f')}"
        for m, a in s.accuracies.items()
    ]


def text_summary(stats: dict[str, AssignmentStats]) -> str:
    """A few lines per assignment for the terminal: scores, questions, the 3 most-failed tests."""
    out = []
    for s in stats.values():
        out.append(_headline(s))
        if s.scores:
            out.append(f"  score out of {s.scores['max_points']:g}: {_spread(s.scores)}")
        for title, question, mean, top, full, _ in map(_question_row, s.questions):
            out.append(f"  {title} ({question}): mean {mean} / {top}, {full} full marks")
        for line, messages in map(_failed, s.failed_tests[:3]):
            out.append(f"  {line}: {'; '.join(messages)}")
        out += [f"  {line}" for line in _accuracy_lines(s)]
        out += [f"  not graded: {n['student']}: {n['reason']}" for n in s.not_graded]
    return "\n".join(out)


def _image(css: str, histograms: dict[str, dict]) -> str:
    """An <img> of one bar chart per histogram (x label: histogram), inlined as a base64 PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(max(6.0, 4.5 * len(histograms)), 2.8), layout="constrained")
    FigureCanvasAgg(fig)  # draw with Agg whatever backend pyplot would pick
    axes = fig.subplots(1, len(histograms), squeeze=False)[0]
    for ax, (label, h) in zip(axes, histograms.items(), strict=True):
        edges = h["edges"]
        ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", edgecolor="white")
        ax.set(xlabel=label, ylabel="students")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole students
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img class='{css}' alt='{css} histogram' src='data:image/png;base64,{data}'>"


def _cells(tag: str, texts: list[str]) -> str:
    """Plain texts as escaped HTML elements: `_cells("li", ["a < b"])` is `<li>a &lt; b</li>`."""
    return "".join(f"<{tag}>{html.escape(text)}</{tag}>" for text in texts)


def _html_assignment(s: AssignmentStats) -> str:
    """One assignment's section: scores, questions, failures, accuracies and who was not graded."""
    parts = [f"<section><h2>{html.escape(_headline(s))}</h2>"]
    if s.scores:
        parts.append(f"<p>Score out of {s.scores['max_points']:g}: {_spread(s.scores)}.</p>")
        parts.append(_image("scores", {"score": s.score_histogram}))
    head = _cells("th", ["Question", "Id", "Mean", "Max", "Full marks", "Students per points"])
    rows = "".join(f"<tr>{_cells('td', _question_row(q))}</tr>" for q in s.questions)
    parts.append(f"<h3>Questions</h3><table class='questions'><thead><tr>{head}</tr></thead>")
    parts.append(f"<tbody>{rows}</tbody></table>")
    if s.failed_tests:
        failed = map(_failed, s.failed_tests)
        items = "".join(f"<li>{html.escape(t)}<ul>{_cells('li', m)}</ul></li>" for t, m in failed)
        parts.append(f"<h3>Most failed tests</h3><ol class='failed'>{items}</ol>")
    if s.accuracies:
        charts = {f"{model} test accuracy": a["histogram"] for model, a in s.accuracies.items()}
        parts.append("<h3>Test accuracy measured by the grader</h3>")
        parts.append(f"<ul>{_cells('li', _accuracy_lines(s))}</ul>" + _image("accuracies", charts))
    if s.not_graded:
        lines = [f"{n['student']}: {n['reason']}" for n in s.not_graded]
        parts.append(f"<h3>Not graded</h3><ul class='not-graded'>{_cells('li', lines)}</ul>")
    return "".join(parts) + "</section>"


def write_html(stats: dict[str, AssignmentStats], path: str | Path) -> Path:
    """Write the class report as one self-contained HTML page (figures inlined); return its path."""
    Path(path).write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Class report</title>"
        "<style>body{font-family:sans-serif;max-width:64em;margin:2em auto}td,th{padding:.3em .6em;"
        "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}img{max-width:100%}</style>"
        "</head><body><h1>Where the class stands</h1>"
        "<p>For the teacher only: it shows hidden tests' messages.</p>"
        + "".join(_html_assignment(s) for s in stats.values())
        + "</body></html>\n",
        encoding="utf-8",
    )
    return Path(path)
