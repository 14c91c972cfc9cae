"""The shape of the package: no import circle, small modules and functions, one public API."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mnist_kit"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
REASON = re.compile(r"\blong\b[:\s]", re.I)  # "# Long: why" / "long: why" in the first lines


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The kit's modules `name` imports anywhere: at import time or later, inside a function
    (a lazy import only hides a circle until the function runs)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in known and m != name}


def test_no_module_of_the_kit_imports_itself_in_a_circle():
    """Walking every import of every module (lazy ones too), is there no cycle?"""
    modules = _modules()
    graph = {n: _imports(n, p, set(modules)) for n, p in modules.items()}
    # a package imports its submodules' names; a submodule importing its own package's
    # __init__ is how Python works, not a circle: drop child -> ancestor edges
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)


def test_modules_and_functions_are_small_or_say_why():
    """No module over 400 lines, no function over 60, without a "# long: why" at its top
    (for a module, "long: why" in its docstring)."""
    too_long = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        doc = ast.get_docstring(tree) or ""
        if len(lines) > MAX_MODULE_LINES and not REASON.search(doc):
            too_long.append(f"{name}: {len(lines)} lines")
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1
            head = "\n".join(lines[node.lineno - 1 : node.body[0].lineno + 1]).lower()
            if length > MAX_FUNCTION_LINES and not re.search(r"#\s*long\b", head):
                too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, "too long, with no 'long: why' at the top:\n" + "\n".join(too_long)


def test_importing_the_kit_imports_no_framework():
    """Does `import mnist_kit` (and its grading package) leave TensorFlow and PyTorch unloaded?"""
    code = (
        "import sys, mnist_kit, mnist_kit.grading\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules]\n"
        "print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
