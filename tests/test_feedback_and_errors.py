"""Fast tests of assignment 5's checks (gallery titles, most_confused) and of student feedback.

Everything runs in this process: the student's functions are plain Python functions (or the
solution notebook's own code), called through the same export-and-load path the grader uses.
"""

from __future__ import annotations

import ast
import html
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from mnist_kit.grading.assignments import (
    ASSIGNMENTS,
    collect_tests,
    find_assignment,
    find_autograder,
    load_module,
    suite_module,
)
from mnist_kit.grading.check import live_submission
from mnist_kit.grading.declare import Fail
from mnist_kit.grading.in_kernel import to_arrays
from mnist_kit.grading.report import feedback_html, feedback_markdown
from mnist_kit.grading.results import GradeResult, TestResult, run_tests
from mnist_kit.grading.submission import _rebuild
from mnist_kit.grading.suites.errors import expect_most_confused, expect_title, read_title

ROOT = Path(__file__).resolve().parents[1]
ERRORS = find_assignment("05")


def _autograder():
    return load_module(find_autograder() / ERRORS.autograder_file)


def _solution_functions() -> dict:
    """The function definitions of the assignment-5 solution notebook, run here (no model, no data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat

    nb = nbformat.read(str(ROOT / "solutions" / ERRORS.name / ERRORS.notebook), as_version=4)
    namespace: dict = {"np": np, "plt": plt}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        exec(compile(ast.Module(functions, type_ignores=[]), "<solution>", "exec"), namespace)
    return namespace


def _gallery(title):
    """A show_misclassified that titles each image with `title(predicted, true)`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def show_misclassified(images, outputs, labels, max_images=12):
        predicted = np.asarray(outputs).argmax(axis=1)
        wrong = np.nonzero(predicted != labels)[0][:max_images]
        figure, axes = plt.subplots(1, len(wrong), squeeze=False)
        for ax, index in zip(axes[0], wrong, strict=True):
            ax.imshow(images[index])
            ax.set_title(title(predicted[index], labels[index]))
        return figure

    return show_misclassified


def _grade(namespace: dict, tmp_path, module=None, question=None) -> dict[str, TestResult]:
    module = module or suite_module(ERRORS)
    tests = [(f, i) for f, i in collect_tests(module) if question in (None, i.question)]
    return {r.name: r for r in run_tests(tests, live_submission(namespace, tmp_path))}


@pytest.mark.parametrize(
    "title",
    [
        "pred {p}, true {t}",
        "predicted: {p} true: {t}",
        "{p} (true {t})",
        "p={p} t={t}",
        "true {t}, pred {p}",
        "label {t}, predicted as {p}",
        "Pred {p} (87%)\nTrue {t}  #12",
        "guess {p} / actual {t}",
        "{p}, {t}",
        "{p}/{t}",
        "image 7: {p} (true {t})",
        "#2 idx 4: {p}, {t}",
    ],
)
def test_gallery_titles_in_natural_forms_pass(title):
    """Does every natural way of writing "predicted 3, true 5" read as predicted 3 and true 5?"""
    text = title.format(p=3, t=5)
    assert read_title(text)[:2] == (3, 5), text
    expect_title(text, 3, 5, 1)


@pytest.mark.parametrize(
    ("title", "hint"),
    [
        ("pred {t}, true {p}", ""),
        ("{t} (true {p})", ""),
        ("true {p}, predicted {t}", ""),
        ("{t}, {p}", "unlabelled digits are read predicted first"),
    ],
)
def test_gallery_titles_with_the_digits_swapped_fail_and_say_so(title, hint):
    """Does a title with the predicted and true digits swapped fail with a message saying which is which?"""
    text = title.format(p=3, t=5)
    with pytest.raises(Fail) as failure:
        expect_title(text, 3, 5, 2)
    message = str(failure.value)
    assert message.startswith(
        f"image 2's title {text!r} has the predicted and true digits swapped: "
        "the model predicted 3, the label is 5"
    )
    assert hint in message


def test_gallery_titles_that_do_not_say_which_is_which_fail():
    """Do titles missing a digit, with a wrong one, or with too many bare digits fail with a hint?"""
    for text in ["pred 3", "wrong!", "1: 3, 5", "#3: 3, 5, 7"]:
        with pytest.raises(Fail, match="saying which is which, e.g. 'pred 3, true 5'"):
            expect_title(text, 3, 5, 1)
    with pytest.raises(Fail, match="reads as predicted 3, true 4; the model predicted 3"):
        expect_title("pred 3, true 4", 3, 5, 1)


def test_gallery_check_fails_swapped_titles_and_passes_the_solution(tmp_path):
    """Does the visible gallery test fail swapped titles, pass the kit's own form and the solution's code?"""
    swapped = _grade({"show_misclassified": _gallery(lambda p, t: f"pred {t}, true {p}")},
                     tmp_path / "swapped", question="q5_gallery")["test_gallery"]  # fmt: skip
    assert not swapped.passed and "has the predicted and true digits swapped" in swapped.message
    right = _grade({"show_misclassified": _gallery(lambda p, t: f"{p} (true {t})")},
                   tmp_path / "right", question="q5_gallery")["test_gallery"]  # fmt: skip
    assert right.passed, right.message
    solution = _grade(_solution_functions(), tmp_path / "solution", module=_autograder())
    assert all(r.passed for r in solution.values()), {
        n: r.message for n, r in solution.items() if not r.passed
    }


def test_most_confused_keeping_zero_pairs_fails_only_the_new_hidden_test(tmp_path):
    """Does a most_confused that pads the list with zero-count pairs lose the hidden point, told why without the answer?"""

    def keeps_zeros(matrix, k=3):
        matrix = np.asarray(matrix)
        cells = [(-int(matrix[t, p]), t, p) for t in range(10) for p in range(10) if t != p]
        return [(t, p, -c) for c, t, p in sorted(cells)[:k]]

    module = _autograder()
    results = _grade({"most_confused": keeps_zeros}, tmp_path, module, "q5_most_confused")
    assert results["test_most_confused"].passed and results["test_most_confused_ties"].passed
    failed = results["test_most_confused_fewer_than_k"]
    assert not failed.passed and failed.hidden
    assert "included pairs with a count of 0" in failed.message
    expected = str(module.reference_most_confused(module._FEW_MATRIX, 5).tolist())
    assert "expected" not in failed.message and expected not in failed.message


def test_most_confused_accepts_short_and_empty_answers():
    """Do a list shorter than k and an empty list (after the trip through the export) pass when they are right?"""
    few = np.diag(np.full(10, 40))
    few[3, 8], few[7, 1] = 6, 2
    perfect = np.diag(np.full(10, 30))
    for answer, matrix in (([(3, 8, 6), (7, 1, 2)], few), ([], perfect)):
        arrays, structure = to_arrays(answer)
        back = _rebuild(structure, arrays)
        expect_most_confused(back, matrix, 5, "most_confused(matrix, k=5)", reveal=False)
        expect_most_confused(answer, matrix, 5, "most_confused(matrix, k=5)")
    expect_most_confused(np.empty((0, 3), dtype=int), perfect, 3, "most_confused(matrix, k=3)")
    with pytest.raises(Fail, match="return at most k=1"):
        expect_most_confused([(3, 8, 6), (7, 1, 2)], few, 1, "most_confused(matrix, k=1)")


def test_every_hidden_test_says_what_it_checks_without_numbers():
    """Does every hidden test have a one-line `about`, with no digits that could be expected values?"""
    for assignment in ASSIGNMENTS.values():
        for function, info in collect_tests(
            load_module(find_autograder() / assignment.autograder_file)
        ):
            if not info.hidden:
                assert not info.about, function.__name__
                continue
            assert info.about and "\n" not in info.about, function.__name__
            assert not re.search(r"\d", info.about), (function.__name__, info.about)
            assert info.about != inspect.getdoc(function), function.__name__


def _result(error=None, notes=()):
    tests = [
        TestResult("test_a", "q5_x", 1.0, 1.0, True, "passed", description="Is a right?"),
        TestResult(
            "test_b",
            "q5_x",
            0.0,
            1.0,
            False,
            "secret input [1, 3]",
            hidden=True,
            description="Secret docstring?",
            about="the result on a tricky input",
        ),  # fmt: skip
        TestResult("test_c", "q5_x", 1.0, 1.0, True, "passed", hidden=True, about="the empty case"),
        TestResult(
            "test_d",
            "q5_y",
            0.0,
            1.0,
            False,
            "return indices | not labels",
            description="Is d right?",
        ),  # fmt: skip
    ]
    return GradeResult.build("bob/05-errors.ipynb", "05-errors", tests, 2.0, error, list(notes))


def test_feedback_groups_tests_by_question_with_hidden_counts():
    """Does each question get a section: its visible rows, then hidden tests passed and what each failed one checks?"""
    text = feedback_markdown(_result())
    x, y = text.index("## q5_x\n"), text.index("## q5_y\n")
    section = text[x:y]
    assert "| pass | Is a right? | 1 / 1 |  |" in section
    assert "Hidden tests: 1 of 2 passed (1 / 2 points). Not passed:" in section
    assert "- FAIL (0 / 1): checks the result on a tricky input" in section
    assert "the empty case" not in text  # passed hidden tests are only counted
    assert "| FAIL | Is d right? | 0 / 1 | return indices \\| not labels |" in text[y:]
    assert "Hidden tests" not in text[y:]  # q5_y has no hidden tests
    page = feedback_html(_result())
    assert (
        page.index("<h2>q5_x</h2>")
        < page.index("Hidden tests: 1 of 2 passed")
        < page.index("<h2>q5_y</h2>")
    )
    assert "<li>FAIL (0 / 1): checks the result on a tricky input</li>" in page


def test_feedback_markdown_keeps_lists_and_tables_apart_and_says_not_graded_once():
    """Does a note list end before the table (as CommonMark needs), and is "not graded:" said once?"""
    result = _result(error="not graded: the kernel died", notes=["cell 4 raised NameError"])
    text = feedback_markdown(result)
    assert "Your notebook could not be graded: the kernel died" in text
    assert "not graded: not graded" not in text.lower() and "graded: not graded" not in text
    assert "- Note: cell 4 raised NameError\n\n" in text
    assert "<b>Not graded:</b> the kernel died" in feedback_html(result)
    lines = text.splitlines()
    for i, line in enumerate(lines[1:], start=1):  # every block starts after a blank line
        if line.startswith("| |") or line.startswith("## ") or line.startswith("Hidden tests"):
            assert lines[i - 1] == "", (i, line)
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    assert rendered.count("<table>") == 2 and "<li>Note: cell 4 raised NameError</li>" in rendered


def _failing_submission() -> dict:
    """An assignment-5 submission that passes most visible tests and fails every hidden one."""

    def last_max(outputs, labels):  # takes the last of tied maxima, unlike np.argmax
        outputs = np.asarray(outputs)
        predicted = outputs.shape[1] - 1 - outputs[:, ::-1].argmax(axis=1)
        wrong = np.nonzero(predicted != labels)[0]
        return wrong if len(wrong) else np.array([-1])  # and never empty

    def by_seen_digits(labels, predicted):  # a row/column only for the digits that occur
        rows, columns = np.unique(labels), np.unique(predicted)
        return np.array([[np.sum((labels == t) & (predicted == p)) for p in columns] for t in rows])

    def keeps_zeros_and_last_ties(matrix, k=3):
        matrix = np.asarray(matrix)
        cells = [(-int(matrix[t, p]), -t, -p) for t in range(10) for p in range(10) if t != p]
        return [(-t, -p, -c) for c, t, p in sorted(cells)[:k]]

    return {
        "find_misclassified": last_max,
        "confusion_matrix": by_seen_digits,
        "most_confused": keeps_zeros_and_last_ties,
        "show_misclassified": _gallery(lambda p, t: f"pred {t}, true {p}"),
    }


def test_feedback_never_leaks_hidden_tests(tmp_path):
    """Is no hidden test's code, name, docstring, message, probe label or expected answer in the feedback?"""
    module = _autograder()
    tests = collect_tests(module)
    results = run_tests(tests, live_submission(_failing_submission(), tmp_path))
    hidden = [r for r in results if r.hidden]
    assert hidden and not any(r.passed for r in hidden)
    result = GradeResult.build("carol/05-errors.ipynb", ERRORS.name, results, 1.0)
    pages = {"markdown": feedback_markdown(result), "html": feedback_html(result)}
    visible_messages = " ".join(r.message for r in results if not r.hidden)

    secrets = []
    for function, info in tests:
        if not info.hidden:
            continue
        secrets.append(function.__name__)
        secrets.append(inspect.getdoc(function))
        source = inspect.getsource(function).splitlines()
        secrets += [line.strip() for line in source if len(line.strip()) > 12]
    for r in hidden:
        secrets.append(r.message)
        secrets += re.findall(r"expected [^;(]+", r.message)
    hidden_probes = [p for name, p in vars(module).items() if name.isupper() and hasattr(p, "label")
                     and not hasattr(suite_module(ERRORS), name)]  # fmt: skip
    assert hidden_probes
    secrets += [p.label for p in hidden_probes]
    secrets += [
        str(module.reference_most_confused(module._FEW_MATRIX, 5).tolist()),
        str(module.reference_most_confused(module._TIED_MATRIX, 3).tolist()),
        str(np.nonzero(module._TIES.argmax(axis=1) != module._TIE_LABELS)[0].tolist()),
    ]
    for kind, page in pages.items():
        assert "Hidden tests: 0 of 2 passed" in page and "checks the result when every" in page
        for secret in secrets:
            if secret in visible_messages:  # the visible tests may say it themselves
                continue
            assert secret not in page and html.escape(secret) not in page, (kind, secret)
