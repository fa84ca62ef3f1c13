"""asl-validator (npm, pinned) on every resolved definition: ASL rules that neither
cfn-lint nor CDK check (payload templates, intrinsic syntax, paths, dangling states)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tools.lint import state_machine_definitions

VALIDATOR = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "asl-validator"


def _validate(definition: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60)


def test_every_definition_is_valid_asl(stacks, tmp_path: Path) -> None:
    """All definitions in one validator run (it takes any number of ``--json-path``; one Node
    start instead of one per definition), each file named after its stack and state machine."""
    paths = []
    for key, stack in stacks.items():
        for logical_id, definition in state_machine_definitions(stack.template).items():
            path = tmp_path / f"{key.replace('/', '-')}-{logical_id}.json"
            path.write_text(json.dumps(definition))
            paths.append(path)
    # data, training (+ monitoring on the open-source backend) of dev, prod, mm, pinned and the three examples
    assert len(paths) == 20
    result = subprocess.run([str(VALIDATOR), *(part for path in paths for part in ("--json-path", str(path)))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"
    assert result.stdout.count("is valid") == len(paths)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["States"]["Train model"].update(Next="Nowhere"), "MISSING_TRANSITION_TARGET"),
        (lambda d: d["States"]["Train model"]["Parameters"]["ResourceConfig"].update({"InstanceType.$": "not-a-path"}),
         "is invalid"),
    ],
)
def test_canary_invalid_definitions_fail(stacks, tmp_path: Path, edit, expected: str) -> None:
    definition = next(d for d in state_machine_definitions(stacks["dev/Pipeline"].template).values()
                      if "Train model" in d["States"])
    edit(definition)
    result = _validate(definition, tmp_path)
    assert result.returncode != 0 and expected in result.stdout + result.stderr
