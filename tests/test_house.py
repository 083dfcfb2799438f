"""The size bars of issue 18 stay met: no module over 500 lines outside tests/, no function over 80 lines.

A module a reader can hold in mind does one job; a function a reader can follow fits on a screen or two. The
tree is walked with `ast`, so a new module or function that grows past the bar fails here, with its name.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80  # def line to last line (ast: end_lineno - lineno + 1), nested functions included
SKIPPED_DIRS = {"tests", "artifacts", "build", "dist", "node_modules", "site-packages"}

# Modules allowed over the bar, with the reason. Keep this short.
LONG_MODULES = {
    "longformer_core/attention.py": "the sliding-window + global attention kernel reads as one thing (the band "
    "layout, its forward and the band <-> dense helpers that test it); splitting it would scatter one algorithm",
}
# Over the bar today and being split in another branch of the same session (issue 18). Each entry must still be
# over the bar: once the split is merged the test fails until the entry is removed, so the list cannot go stale.
PENDING = {}


def _python_files() -> list[Path]:
    """Every .py file of the project outside tests/ and outside hidden, build and virtualenv folders."""
    files = []
    for folder, dirs, names in os.walk(REPO_ROOT):
        dirs[:] = sorted(
            d for d in dirs if d not in SKIPPED_DIRS and not d.startswith((".", "_")) and "venv" not in d
        )
        files += [Path(folder) / n for n in sorted(names) if n.endswith(".py")]
    return files


def _name(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _long_functions(path: Path) -> dict[str, int]:
    """{"file::function": lines} of the functions (methods and nested ones too) over the bar in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found[f"{_name(path)}::{node.name}"] = lines
    return found


def _long_modules() -> dict[str, int]:
    found = {}
    for path in _python_files():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found[_name(path)] = lines
    return found


def test_the_walk_sees_the_project():
    names = {_name(p) for p in _python_files()}
    assert {"app.py", "longformer_core/reader.py", "longformer_core/__main__.py"} <= names
    assert not any(n.startswith("tests/") for n in names)


def test_no_module_over_500_lines():
    over = {n: lines for n, lines in _long_modules().items() if n not in LONG_MODULES and n not in PENDING}
    assert not over, (
        f"modules over {MAX_MODULE_LINES} lines: {over}. Split each by job into modules a reader can hold in "
        "mind (re-export public names where callers import them), as corpus.py, finetune.py and encoding.py were."
    )


def test_no_function_over_80_lines():
    over = {}
    for path in _python_files():
        over |= _long_functions(path)
    over = {n: lines for n, lines in over.items() if n not in PENDING}
    assert not over, (
        f"functions over {MAX_FUNCTION_LINES} lines: {over}. Extract well-named steps (not by cramming lines)."
    )


def test_exceptions_are_still_needed():
    """An allowed or pending entry that is under the bar (split, renamed, gone) must leave the lists."""
    long_modules = _long_modules()
    long_functions = {}
    for path in _python_files():
        long_functions |= _long_functions(path)
    stale = [n for n in LONG_MODULES if n not in long_modules]
    stale += [n for n in PENDING if n not in long_modules and n not in long_functions]
    assert not stale, f"remove {stale} from LONG_MODULES / PENDING in tests/test_house.py: now within the bar"
