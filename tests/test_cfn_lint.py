"""cfn-lint gate over every synthesized template, with state machine definitions
resolved from CDK's Fn::Join to literal JSON so that cfn-lint actually checks them."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from tests.test_snapshots import STACK_KEYS
from tools.lint import definition_graph_errors, lint_template, resolve_definitions, state_machine_definitions


@pytest.mark.parametrize("key", STACK_KEYS)  # one test per template: pytest-xdist spreads them over the workers
def test_every_template_is_lint_clean(stacks, key: str) -> None:
    assert [str(finding) for finding in lint_template(stacks[key].template)] == []


def test_every_stack_is_linted(stacks) -> None:
    assert sorted(stacks) == sorted(STACK_KEYS)


def _state_machine_template(tmp_path: Path, timeout_seconds) -> dict:
    """A real CDK state machine whose definition references a topic, so CDK emits Fn::Join."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "LintCanary")
    topic = sns.Topic(stack, "Topic")
    notify = tasks.SnsPublish(stack, "Notify", topic=topic, message=sfn.TaskInput.from_text("hello"))
    broken = sfn.CustomState(
        stack,
        "Broken",
        state_json={"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "TimeoutSeconds": timeout_seconds,
                    "Parameters": {"TopicArn": topic.topic_arn, "Message": "x"}},
    )
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(notify.next(broken)))
    return app.synth().get_stack_by_name("LintCanary").template


def test_cdk_emits_definitions_as_join(tmp_path: Path) -> None:
    template = _state_machine_template(tmp_path, 30)
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert "Fn::Join" in machine["Properties"]["DefinitionString"]
    resolved = resolve_definitions(template)
    (literal,) = [r for r in resolved["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = json.loads(literal["Properties"]["DefinitionString"])
    assert definition["StartAt"] == "Notify" and set(definition["States"]) == {"Notify", "Broken"}
    assert lint_template(template) == []


def test_canary_broken_definition_is_caught_only_when_resolved(tmp_path: Path) -> None:
    template = _state_machine_template(tmp_path, "thirty")  # TimeoutSeconds must be an integer
    unresolved = [f for f in lint_template(template, resolve=False) if f.rule == "E3601"]
    assert unresolved == [], "cfn-lint started checking Fn::Join definitions: the resolve step may be unnecessary now"
    resolved = [f for f in lint_template(template) if f.rule == "E3601"]
    assert resolved and "TimeoutSeconds" in resolved[0].path


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Gone"}}}, "transitions to missing state 'Gone'"),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}, "B": {"Type": "Pass", "End": True}}}, "'B' is unreachable"),
        ({"StartAt": "X", "States": {"A": {"Type": "Pass", "End": True}}}, "StartAt 'X' names no state"),
        (
            {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
                {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "Next": "Nope"}}}]}}},
            "P.Branches[0]: state 'B1' transitions to missing state 'Nope'",
        ),
        (
            {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Y"}],
                                              "Default": "Z"}, "Y": {"Type": "Succeed"}}},
            "transitions to missing state 'Z'",
        ),
    ],
)
def test_graph_check_catches_what_cfn_lint_does_not(definition: dict, expected: str) -> None:
    errors = definition_graph_errors(definition)
    assert any(expected in error for error in errors), errors


def test_graph_check_accepts_a_valid_definition() -> None:
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "Next": "B",
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}]},
        "B": {"Type": "Succeed"}, "Failed": {"Type": "Fail"}}}
    assert definition_graph_errors(definition) == []


def test_state_machine_definitions_parses_every_machine(tmp_path: Path) -> None:
    definitions = state_machine_definitions(_state_machine_template(tmp_path, 5))
    assert len(definitions) == 1
