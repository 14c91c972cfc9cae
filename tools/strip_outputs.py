"""Remove outputs, execution counts and saved widget state from notebooks, in place.

Usage: python tools/strip_outputs.py course/*.ipynb [--check]
With --check nothing is written; the exit status is 1 when any notebook still has outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

# Cell metadata that Jupyter fills in when a cell runs; none of it belongs in the repository.
RUN_METADATA = ("execution", "collapsed", "scrolled")


def strip(notebook: nbformat.NotebookNode) -> bool:
    """Clear one notebook in memory; return True when anything was removed."""
    changed = False
    for cell in notebook.cells:
        for key in RUN_METADATA:
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
        if cell.cell_type != "code":
            continue
        if cell.outputs or cell.execution_count is not None:
            cell.outputs = []
            cell.execution_count = None
            changed = True
    if "widgets" in notebook.metadata:
        del notebook.metadata["widgets"]
        changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--check", action="store_true", help="report notebooks with outputs, change nothing"
    )
    args = parser.parse_args(argv)
    dirty = []
    for path in args.notebooks:
        if not path.is_file():
            print(f"{path}: no such file", file=sys.stderr)
            return 2
        notebook = nbformat.read(path, as_version=4)
        if strip(notebook):
            dirty.append(path)
            if not args.check:
                nbformat.write(notebook, path)
    verb = "has outputs" if args.check else "stripped"
    for path in dirty:
        print(f"{path}: {verb}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
