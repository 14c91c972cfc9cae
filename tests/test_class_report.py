"""Tests of `mnist-kit report`: a class's gradebook summed up as text, JSON and one HTML page.

The gradebook is built the way `mnist-kit grade` builds it (`gradebook_rows` of `GradeResult`s)
for 12 students of 02-keras-mlp: 10 graded with chosen failures, 2 not graded.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import mean

import pytest

from mnist_kit.grading.class_report import class_stats, read_class, text_summary, write_html
from mnist_kit.grading.report import gradebook_rows, write_gradebook_rows
from mnist_kit.grading.results import GradeResult, TestResult

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# 02-keras-mlp's tests as the grader runs them: (name, question, points, hidden)
TESTS = [
    ("test_layer_kinds", "q2_architecture", 1, False),
    ("test_layer_sizes", "q2_architecture", 1, False),
    ("test_activations", "q2_architecture", 1, False),
    ("test_param_count", "q2_architecture", 1, False),
    ("test_optimizer", "q2_compile", 1, False),
    ("test_loss_and_metric", "q2_compile", 1, False),
    ("test_accuracy", "q2_accuracy", 3, False),
    ("test_history", "q2_accuracy", 1, False),
    ("test_every_digit", "q2_accuracy", 1, True),
]
UNTRAINED = "the model was not trained: train it with model.fit(..., epochs=5, batch_size=32)"
DIGIT = "digit 8: accuracy 0.81 < 0.90"  # a hidden test's message: fine for the teacher's page
# Each graded student's failed tests (with their messages) and measured test accuracy.
GRADED = {
    "s01": ({}, 0.9734),
    "s02": ({"test_every_digit": DIGIT}, 0.9712),
    "s03": ({"test_accuracy": UNTRAINED, "test_history": "no history", "test_every_digit": DIGIT}, None),
    "s04": ({"test_optimizer": "compiled with sgd, not adam"}, 0.9688),
    "s05": ({"test_accuracy": "test accuracy 0.9512 < 0.96", "test_every_digit": DIGIT}, 0.9512),
    "s06": ({"test_layer_sizes": "64 units, not 128", "test_param_count": "50,890 parameters",
             "test_accuracy": UNTRAINED}, 0.1021),
    "s07": ({}, 0.9790),
    "s08": ({"test_accuracy": UNTRAINED, "test_history": "no history"}, 0.0987),
    "s09": ({"test_loss_and_metric": "loss mse", "test_accuracy": "test accuracy 0.9433 < 0.96"}, 0.9433),
    "s10": ({"test_activations": "sigmoid, not relu"}, 0.9701),
}  # fmt: skip
NOT_GRADED = {  # student id ("" when no roster matched) -> the engine's reason
    "s11": "not graded: the notebook's structure is broken (JSONDecodeError: Expecting value)",
    "": "not graded: this is the notebook of assignment 03-keras-cnn (CNN in Keras), not 02",
}


def _result(submission: str, failures: dict, accuracy: float | None) -> GradeResult:
    tests = [
        TestResult(name, question, 0.0 if name in failures else points, points,
                   name not in failures, failures.get(name, "passed"), hidden=hidden)
        for name, question, points, hidden in TESTS
    ]  # fmt: skip
    measured = {"model.test_accuracy": accuracy, "model.params": 109386} if accuracy else {}
    return GradeResult.build(submission, "02-keras-mlp", tests, 40.0, measurements=measured)


def _not_graded(submission: str, reason: str) -> GradeResult:
    tests = [TestResult(n, q, 0.0, p, False, reason, hidden=h) for n, q, p, h in TESTS]
    return GradeResult.build(submission, "02-keras-mlp", tests, 1.0, error=reason)


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory) -> Path:
    """The class's gradebook, written as `mnist-kit grade --out` writes it."""
    rows = []
    for student, (failures, accuracy) in GRADED.items():
        rows += gradebook_rows(_result(f"in/{student}.ipynb", failures, accuracy), "ab12", student)
    for i, (student, reason) in enumerate(NOT_GRADED.items()):
        rows += gradebook_rows(_not_graded(f"in/late-{i}.ipynb", reason), "cd34", student)
    return write_gradebook_rows(rows, tmp_path_factory.mktemp("report") / "gradebook.csv")


@pytest.fixture(scope="module")
def stats(gradebook):
    return class_stats(read_class(gradebook))["02-keras-mlp"]


def test_counts_and_scores(stats):
    """Are the submissions counted, graded apart from not graded, and the scores summed up?"""
    assert (stats.submissions, stats.graded, len(stats.not_graded)) == (12, 10, 2)
    # scores by hand: 11, 10, 6, 10, 7, 6, 11, 7, 7, 10 out of 11 (hidden points included)
    assert stats.scores == {
        "count": 10, "mean": 8.5, "median": 8.5, "min": 6.0, "max": 11.0, "max_points": 11.0,
    }  # fmt: skip
    assert stats.score_histogram["counts"] == [0] * 6 + [2, 3, 0, 0, 3, 2]  # a bin per point


def test_question_means_match_the_rows(stats, gradebook):
    """Does each question's mean equal the mean, over graded students, of its points in the CSV?"""
    with gradebook.open(newline="") as handle:
        rows = [
            r for r in csv.DictReader(handle) if r["test"] != "TOTAL" and r["student"] in GRADED
        ]
    by_hand = {}
    for question in ("q2_architecture", "q2_compile", "q2_accuracy"):
        points = {s: 0.0 for s in GRADED}
        for row in (r for r in rows if r["question"] == question):
            points[row["student"]] += float(row["points"])
        by_hand[question] = mean(points.values())
    assert {q["question"]: q["mean"] for q in stats.questions} == pytest.approx(by_hand)
    assert [q["mean"] for q in stats.questions] == [3.7, 1.8, 3.0]
    assert [q["max_points"] for q in stats.questions] == [4, 2, 5]
    assert [q["full_marks"] for q in stats.questions] == [0.8, 0.8, 0.4]
    assert stats.questions[0]["title"] == "Question 1: build the model"
    assert stats.questions[2]["distribution"] == {"0": 1, "1": 2, "2": 2, "4": 1, "5": 4}


def test_most_failed_test_and_its_messages(stats):
    """Is the test failed most (5 times) first, with its most common message counted 3 times?"""
    first, second = stats.failed_tests[:2]
    assert (first["test"], first["question"], first["failed"]) == (
        "test_accuracy",
        "q2_accuracy",
        5,
    )
    assert first["messages"][0] == {"message": UNTRAINED, "count": 3}
    assert [m["count"] for m in first["messages"]] == [3, 1, 1]
    assert (second["test"], second["failed"], second["hidden"]) == ("test_every_digit", 3, True)
    assert second["messages"] == [{"message": DIGIT, "count": 3}]
    assert "not graded" not in json.dumps(stats.failed_tests)  # not-graded rows are not failures


def test_not_graded_are_listed_with_reasons(stats):
    """Are both not-graded submissions listed, by student or else by path, with the reason?"""
    assert stats.not_graded == [
        {"student": "s11", "reason": "the notebook's structure is broken (JSONDecodeError: Expecting value)"},
        {"student": "in/late-1.ipynb", "reason": NOT_GRADED[""].removeprefix("not graded: ")},
    ]  # fmt: skip


def test_accuracy_histogram_counts_graded_students_with_accuracies(stats):
    """Do the accuracy histogram's counts add up to the 9 graded students with a measurement?"""
    measured = [a for _, a in GRADED.values() if a is not None]
    model = stats.accuracies["model"]
    assert sum(model["histogram"]["counts"]) == len(measured) == model["count"] == 9
    assert (model["min"], model["max"]) == (0.0987, 0.979)
    assert model["mean"] == pytest.approx(mean(measured), abs=1e-4)
    assert list(stats.accuracies) == ["model"]  # model.params is not an accuracy


def test_text_summary_says_the_numbers(stats):
    """Does the terminal summary give the counts, scores, a question and the top failure?"""
    text = text_summary({"02-keras-mlp": stats})
    assert "02-keras-mlp (First MLP in Keras): 12 submissions, 10 graded, 2 not graded" in text
    assert "score out of 11: mean 8.5, median 8.5, min 6, max 11" in text
    assert "Question 2: compile it (q2_compile): mean 1.8 / 2, 80% full marks" in text
    assert f"test_accuracy (q2_accuracy) failed by 5: 3 x {UNTRAINED}" in text
    assert "not graded: in/late-1.ipynb: this is the notebook of assignment 03-keras-cnn" in text


def test_html_is_one_escaped_page(stats, tmp_path):
    """Is the page self-contained (two inline PNGs), escaped, and does it list the not graded?"""
    page = write_html({"02-keras-mlp": stats}, tmp_path / "report.html").read_text()
    assert page.count("<img ") == 2 and page.count("src='data:image/png;base64,") == 2
    assert "0.9512 &lt; 0.96" in page and "0.9512 < 0.96" not in page
    assert page.count("<tbody><tr>") == 1 and page.count("</td></tr>") == 3
    assert "structure is broken" in page and DIGIT.replace("<", "&lt;") in page


def _cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mnist_kit.cli", "report", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_cli_report(gradebook, tmp_path):
    """Does `mnist-kit report` print the summary, write the HTML, and give one JSON object?"""
    html_path = tmp_path / "class.html"
    result = _cli(str(gradebook), "--html", str(html_path))
    assert result.returncode == 0, result.stderr
    assert "12 submissions, 10 graded, 2 not graded" in result.stdout
    assert f"report written to {html_path}" in result.stdout and html_path.stat().st_size > 5000
    result = _cli(str(gradebook), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["assignments"]["02-keras-mlp"]["scores"]["mean"] == 8.5


@pytest.mark.parametrize("kind", ["missing", "not a gradebook"])
def test_cli_report_errors(tmp_path, kind):
    """Does a missing file, or a CSV that is no gradebook, give one line on stderr and exit 2?"""
    path = tmp_path / "grades.csv"
    if kind == "not a gradebook":
        path.write_text("name,grade\nalice,A\n")
    result = _cli(str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("mnist-kit report: error: ") and str(path) in result.stderr


@pytest.mark.browser
def test_report_in_chromium(stats, tmp_path):
    """In Chromium: one table row per question, and do both histograms decode as images?"""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).exists():
        if os.environ.get("MNIST_KIT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} or playwright is missing and MNIST_KIT_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} or playwright is missing")
    page_path = write_html({"02-keras-mlp": stats}, tmp_path / "report.html")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(page_path.resolve().as_uri())
            assert page.locator("table.questions tbody tr").count() == len(stats.questions) == 3
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) == 2 and all(w > 0 for w in widths), widths
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "class-report.png"), full_page=True)
        finally:
            browser.close()
