"""How a graded test is declared: its points and question, `Fail` with a message, and probes.

A test is a plain function `test_x(submission)` marked with `@graded(...)`. It raises
`Fail("what to change")` when the submission falls short. Probes (`Call`, `TrainRun`,
`EvalRun`) name the student code the grader runs inside the student's kernel on
grader-made inputs; the kernel saves what came back and the test reads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TestInfo", "graded", "Fail", "expect", "Call", "Value", "TrainRun", "EvalRun", "Probe"]


@dataclass(frozen=True)
class TestInfo:
    """A test's grading metadata: the notebook question it belongs to and its points.

    `about` is a hidden test's public one-line description, e.g. "the confusion matrix when a
    digit is never predicted": the student's feedback shows it when the test fails, in place of
    the test's name, docstring and message. It says what is checked, never the inputs, the
    expected values or how the check works.
    """

    question: str  # the nbgrader grade cell that runs it, e.g. "q2_architecture"
    points: float
    hidden: bool = False  # hidden tests live only in autograder/, never in the package
    extra_credit: bool = False  # counts towards the score but not the maximum
    about: str = ""  # what a hidden test checks, in words safe to show the student


def graded(
    question: str,
    points: float,
    *,
    hidden: bool = False,
    extra_credit: bool = False,
    about: str = "",
):
    """Mark a test function with its question and points (and, if hidden, what it checks)."""
    if points <= 0:
        raise ValueError(f"points must be positive, got {points}")
    about = " ".join(about.split())  # one line, whatever the source's line breaks

    def mark(function: Callable) -> Callable:
        function.grading = TestInfo(question, float(points), hidden, extra_credit, about)
        return function

    return mark


class Fail(AssertionError):
    """A check that did not pass; the message tells the student what to change."""


def expect(condition: Any, message: str) -> None:
    """Raise `Fail(message)` unless the condition holds."""
    if not condition:
        raise Fail(message)


def _digest(parts: list[Any]) -> str:
    """A short stable key for a probe, from its kind, names and input arrays."""
    sha = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            sha.update(str((part.dtype.str, part.shape)).encode())
            sha.update(np.ascontiguousarray(part).tobytes())
        else:
            sha.update(repr(part).encode())
    return sha.hexdigest()[:16]


class Probe:
    """Student code the grader runs in the kernel; subclasses say what and how."""

    kind = "probe"
    label: str
    _arrays: dict[str, np.ndarray] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The grader-made inputs, built once."""
        if self._arrays is None:
            self._arrays = {k: np.asarray(v) for k, v in self._build().items()}
        return self._arrays

    def _build(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Everything besides the arrays that the kernel needs (JSON-serialisable)."""
        raise NotImplementedError

    @property
    def key(self) -> str:
        arrays = self.arrays()
        return f"{self.kind}-{_digest([self.kind, sorted(self.settings().items())] + [arrays[k] for k in sorted(arrays)])}"


@dataclass(eq=False)
class Call(Probe):
    """`function(*args, **kwargs)` on grader-made numpy inputs; `label` names it in messages.

    Scalars (ints, floats, strings) are passed as Python scalars, arrays as numpy arrays.
    `tag` makes two otherwise identical calls distinct (e.g. calling twice to test a seed).
    """

    function: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    tag: str = ""
    kind = "call"

    def __post_init__(self) -> None:
        self.label = self.label or f"{self.function}(...)"

    def _build(self) -> dict[str, np.ndarray]:
        built = {f"arg{i}": v for i, v in enumerate(self.args)}
        built.update({f"kw_{k}": v for k, v in self.kwargs.items()})
        return built

    def scalars(self) -> list[str]:
        """Names of the inputs the kernel must turn back into Python scalars."""
        named = {f"arg{i}": v for i, v in enumerate(self.args)} | {
            f"kw_{k}": v for k, v in self.kwargs.items()
        }
        return sorted(
            k for k, v in named.items() if isinstance(v, (int, float, str, bool, np.generic))
        )

    def settings(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "nargs": len(self.args),
            "kwargs": sorted(self.kwargs),
            "scalars": self.scalars(),
            "tag": self.tag,
        }


def _loader_arrays(data: Callable[[], tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """The grader's (images, labels) as the kernel's DataLoader takes them: float32 and int64."""
    images, labels = data()
    return {"images": images.astype(np.float32), "labels": labels.astype(np.int64)}


@dataclass(eq=False)
class TrainRun(Probe):
    """Build `model_class()`, run `function(model, loader, optimizer, loss_fn)` once on grader data.

    The kernel saves the weights before and after (and whether the model was in training
    mode while it ran); the grader measures the loss itself with both sets of weights.
    `data` returns `(images, labels)`: float32 `(N, 1, 28, 28)` and int64 `(N,)`.
    """

    model_class: str
    function: str
    data: Callable[[], tuple[np.ndarray, np.ndarray]]
    batch_size: int = 32
    lr: float = 3e-3  # Adam; with this rate one epoch on 512 images roughly halves the loss
    seed: int = 0
    label: str = ""
    kind = "train"

    def __post_init__(self) -> None:
        self.label = self.label or f"{self.function}({self.model_class}(), ...)"

    def _build(self) -> dict[str, np.ndarray]:
        return _loader_arrays(self.data)

    def settings(self) -> dict[str, Any]:
        return {
            "model_class": self.model_class,
            "function": self.function,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
        }


@dataclass(eq=False)
class EvalRun(Probe):
    """Run `function(model, loader)` on the notebook's trained `model` with grader data."""

    function: str
    model: str
    data: Callable[[], tuple[np.ndarray, np.ndarray]]
    batch_size: int = 100
    label: str = ""
    kind = "eval"

    def __post_init__(self) -> None:
        self.label = self.label or f"{self.function}({self.model}, loader)"

    def _build(self) -> dict[str, np.ndarray]:
        return _loader_arrays(self.data)

    def settings(self) -> dict[str, Any]:
        return {"function": self.function, "model": self.model, "batch_size": self.batch_size}


@dataclass(eq=False)
class Value(Probe):
    """A variable the notebook defined (or one of its attributes), saved as arrays."""

    name: str
    attribute: str = ""
    label: str = ""
    kind = "value"

    def __post_init__(self) -> None:
        self.label = self.label or (
            f"{self.name}.{self.attribute}" if self.attribute else self.name
        )

    def _build(self) -> dict[str, np.ndarray]:
        return {}

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "attribute": self.attribute}
