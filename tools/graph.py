"""Render each synthesized state machine as a graph (``make graph``) so reviewers see the
workflow without the Step Functions console.

    python -m tools.graph CDK_OUT DOCS_DIR      # writes <stage>-<training|data>.dot and .png

DOT comes from the synthesized definition (the JSON CloudFormation deploys); the PNG needs
Graphviz's ``dot`` (Debian package ``graphviz``). Solid edges: the normal flow; dashed red:
Catch; labelled: Choice rules.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.assembly import read_stacks
from tools.lint import state_machine_definitions

_SHAPES = {"Choice": "diamond", "Succeed": "doublecircle", "Fail": "octagon", "Wait": "hexagon", "Pass": "note"}
_COLORS = {"Succeed": "#c8e6c9", "Fail": "#ffcdd2", "Choice": "#fff9c4", "Task": "#bbdefb"}


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _condition(rule: dict[str, Any]) -> str:
    if "And" in rule:
        return " and ".join(_condition(part) for part in rule["And"])
    variable = rule.get("Variable", "").removeprefix("$.")
    for key, value in rule.items():
        if key not in ("Variable", "Next"):
            return f"{variable} {key} {value}".replace("Equals", "=").replace("Path", "")
    return variable


def to_dot(definition: dict[str, Any], title: str) -> str:
    lines = [f"digraph {_quote(title)} {{", '  rankdir=TB; node [fontname="Helvetica" fontsize=11 style=filled];',
             '  edge [fontname="Helvetica" fontsize=9];', f'  labelloc="t"; label={_quote(title)};',
             '  start [shape=circle label="" width=0.25 fillcolor=black];',
             f"  start -> {_quote(definition['StartAt'])};"]
    for name, state in definition["States"].items():
        kind = state["Type"]
        lines.append(f"  {_quote(name)} [shape={_SHAPES.get(kind, 'box')} fillcolor={_quote(_COLORS.get(kind, '#eeeeee'))}];")
        if "Next" in state:
            lines.append(f"  {_quote(name)} -> {_quote(state['Next'])};")
        for rule in state.get("Choices", []):
            lines.append(f"  {_quote(name)} -> {_quote(rule['Next'])} [label={_quote(_condition(rule))}];")
        if "Default" in state:
            lines.append(f"  {_quote(name)} -> {_quote(state['Default'])} [label=\"otherwise\"];")
        for catch in state.get("Catch", []):
            lines.append(f"  {_quote(name)} -> {_quote(catch['Next'])} "
                         f"[style=dashed color=\"#c62828\" label={_quote(', '.join(catch['ErrorEquals']))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    cdk_out, docs = Path(argv[0]), Path(argv[1])
    docs.mkdir(parents=True, exist_ok=True)
    dot = shutil.which("dot")
    for stack in read_stacks(cdk_out):
        for logical_id, definition in state_machine_definitions(stack.template).items():
            kind = stack.template["Resources"][logical_id]["Properties"]["StateMachineName"].rsplit("-", 1)[1]
            base = docs / f"{stack.stage}-{kind}"
            base.with_suffix(".dot").write_text(to_dot(definition, f"{stack.stack_name}: {kind} pipeline"))
            if dot:
                subprocess.run([dot, "-Tpng", "-Gdpi=80", str(base.with_suffix(".dot")), "-o", str(base.with_suffix(".png"))],
                               check=True)
            print(f"{base}.dot" + (" + .png" if dot else " (install Graphviz, Debian package graphviz, for the PNG)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
