"""The shape the constructs keep so a reader can find things: phase-sized modules, short
functions, and workflow constructs that only chain their phases."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 80  # anywhere in mlops/
MAX_MODULE_LINES = 450  # each module of mlops/constructs/
MAX_WORKFLOW_FUNCTION_LINES = 60  # the three workflow constructs chain phases, nothing more
WORKFLOWS = ("mlops/constructs/training/pipeline.py", "mlops/constructs/data_preparation/__init__.py",
             "mlops/constructs/monitoring/__init__.py")


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(f"{path.relative_to(REPO)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_function_in_mlops_is_longer_than_80_lines() -> None:
    too_long = [(name, lines) for path in sorted((REPO / "mlops").rglob("*.py"))
                for name, lines in _functions(path) if lines > MAX_FUNCTION_LINES]
    assert too_long == []


def test_no_construct_module_is_longer_than_450_lines() -> None:
    too_long = [(str(path.relative_to(REPO)), len(path.read_text().splitlines()))
                for path in sorted((REPO / "mlops" / "constructs").rglob("*.py"))
                if len(path.read_text().splitlines()) > MAX_MODULE_LINES]
    assert too_long == []


def test_workflow_constructs_only_chain_phases() -> None:
    too_long = [(name, lines) for workflow in WORKFLOWS for name, lines in _functions(REPO / workflow)
                if lines > MAX_WORKFLOW_FUNCTION_LINES]
    assert too_long == []


def test_every_construct_module_says_what_it_provisions() -> None:
    undocumented = [str(path.relative_to(REPO)) for path in sorted((REPO / "mlops" / "constructs").rglob("*.py"))
                    if path.read_text().strip() and not ast.get_docstring(ast.parse(path.read_text()))]
    assert undocumented == []


def test_the_app_imports_nothing_from_tools_or_scripts() -> None:
    """The test assembly's cache digest (``tools.assembly.sources_digest``) leaves tools/ and
    scripts/ out: a synth must not read them."""
    importing = []
    for path in [REPO / "app.py", *sorted((REPO / "mlops").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            importing += [f"{path.relative_to(REPO)}: {name}" for name in names
                          if name.split(".")[0] in ("tools", "scripts", "tests")]
    assert importing == []
