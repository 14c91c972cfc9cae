"""Writing files so that a killed process never leaves half of one behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["write_atomically"]


def write_atomically(
    target: str | Path, write: Callable[[IO[Any]], object], text: bool = False
) -> Path:
    """Call `write(handle)` on a temporary file next to `target`, fsync it, then rename it over `target`.

    A reader, or a process killed at any moment, sees the old file or the new one, never half
    of one. `text=True` opens the handle as UTF-8 text with `newline=""` (what `csv` wants).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        options = {"mode": "w", "newline": "", "encoding": "utf-8"} if text else {"mode": "wb"}
        with os.fdopen(fd, **options) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return target


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
