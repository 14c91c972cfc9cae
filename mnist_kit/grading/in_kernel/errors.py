"""One line for an exception raised by the student's code, naming where it happened."""

from __future__ import annotations

import traceback

__all__ = ["error_text"]


def error_text(exc: BaseException) -> str:
    """One line naming the exception and where in the student's code it happened."""
    text = (
        f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc) else type(exc).__name__
    )
    notebook = ("ipykernel", "<ipython", "<string>")  # frames from notebook cells, not libraries
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if any(n in f.filename for n in notebook)
    ]
    if frames and frames[-1].name not in ("<module>",):
        text += f" (in {frames[-1].name}, line {frames[-1].lineno})"
    return text[:400]
