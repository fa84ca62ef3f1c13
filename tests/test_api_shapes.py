"""Every Task's Parameters, in every synthesized state machine, validate against the
AWS API model botocore ships (names, required members, types, enum values)."""

from __future__ import annotations

import copy

import pytest

from tools.api_shapes import operation_of, task_parameter_errors
from tools.lint import state_machine_definitions


@pytest.fixture(scope="module")
def definitions(stacks) -> dict[str, dict]:
    found = {
        f"{key}:{logical_id}": definition
        for key, stack in stacks.items()
        for logical_id, definition in state_machine_definitions(stack.template).items()
    }
    assert found, "expected state machines in the synthesized stages"
    return found


def test_every_task_request_matches_the_api_model(definitions) -> None:
    checked = 0
    for where, definition in definitions.items():
        assert task_parameter_errors(definition) == [], where
        checked += sum(1 for s in definition["States"].values() if s.get("Type") == "Task")
    assert checked >= 20


def test_every_task_calls_a_real_operation(definitions) -> None:
    operations = {operation_of(s["Resource"]) for d in definitions.values() for s in d["States"].values()
                  if s.get("Type") == "Task"}
    assert ("sagemaker", "CreateTrainingJob") in operations and ("sagemaker", "CreateProcessingJob") in operations
    assert ("application-autoscaling", "PutScalingPolicy") in operations
    assert {("glue", "StartJobRun"), ("databrew", "StartJobRun"), ("stepfunctions", "StartExecution")} <= operations


@pytest.mark.parametrize(
    ("state", "edit", "expected"),
    [
        ("Train model", lambda p: p["ResourceConfig"].update(InstanceCont=1), "Unknown parameter in ResourceConfig"),
        ("Train model", lambda p: p.pop("RoleArn"), "Missing required parameter"),
        ("Train model", lambda p: p["AlgorithmSpecification"].update(TrainingInputMode="Streaming"), "is not one of"),
        ("Create endpoint config", lambda p: p["ProductionVariants"][0].update(InitialInstanceCount="two"),
         "Invalid type for parameter"),
    ],
)
def test_canary_broken_requests_are_caught(definitions, state: str, edit, expected: str) -> None:
    definition = copy.deepcopy(next(d for k, d in definitions.items()
                                    if k.startswith("dev/Pipeline") and "Train model" in d["States"]))
    edit(definition["States"][state]["Parameters"])
    errors = task_parameter_errors(definition)
    assert any(expected in error and state in error for error in errors), errors
