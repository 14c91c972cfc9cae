"""Argument types shared by the `mnist-kit` commands: bad values become one-line argparse errors."""

from __future__ import annotations

import argparse

__all__ = ["whole_number", "number", "positive_int", "positive_float"]


def whole_number(text: str) -> int:
    """Any whole number; its range is checked by whoever uses it (e.g. `TrainConfig`)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def number(text: str) -> float:
    """Any number; its range is checked by whoever uses it (e.g. `TrainConfig`)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number of at least 1 (worker processes)."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number greater than 0 (seconds of a time limit)."""
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value
