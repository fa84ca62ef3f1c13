"""A bare ``cdk.Stack()`` with a ``StageResources`` bundle, for testing one construct or phase
alone (the cdklabs aws-cdk-testing-examples style): no stage, no other stacks, no nag."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from mlops.config import StageConfig, load_stage_config
from mlops.constructs.resources import ZONES, StageResources
from tools.lint import state_machine_definitions

PREFIX = "demo-test"


def dev_config() -> StageConfig:
    return load_stage_config("dev")


def bare_stage() -> tuple[cdk.Stack, StageResources]:
    """A stack in a fixed account/region and the bundle every workflow construct takes."""
    stack = cdk.Stack(cdk.App(), "Test", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key(stack, "DataKey")
    buckets = {zone: s3.Bucket(stack, f"{zone.capitalize()}Bucket", encryption_key=key) for zone in ZONES}
    resources = StageResources(
        project="demo", stage="test", prefix=PREFIX, data_key=key, buckets=buckets,
        exports={zone: f"{PREFIX}-{zone}-bucket" for zone in ZONES},
        topic=sns.Topic(stack, "Topic"), topic_key=kms.Key(stack, "TopicKey"),
        layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Layer", "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:27"),
        log_retention=logs.RetentionDays.ONE_MONTH, tags={"ml-project": "demo", "stage": "test"},
        failed_invocations=sqs.Queue(stack, "FailedInvocations", encryption_master_key=key),
    )
    return stack, resources


def machine(stack: cdk.Stack, start: sfn.IChainable, construct_id: str = "Machine") -> sfn.StateMachine:
    """A state machine around a phase's states, so the template shows their definition."""
    return sfn.StateMachine(stack, construct_id, definition_body=sfn.DefinitionBody.from_chainable(start))


def definition(template: Template, name_fragment: str = "") -> dict[str, Any]:
    """The (one, or the named) state machine definition of the template, tokens resolved."""
    found = {logical_id: d for logical_id, d in state_machine_definitions(template.to_json()).items()
             if name_fragment in logical_id}
    (only,) = found.values()
    return only


def statements(template: Template, role_fragment: str) -> list[dict[str, Any]]:
    """Every policy statement attached to the roles whose logical id contains ``role_fragment``."""
    found = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in template.find_resources(kind).values():
            if any(role_fragment in json.dumps(role) for role in policy["Properties"].get("Roles", [])):
                found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions(statements_: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements_ for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}


def fail_state(stack: cdk.Stack) -> sfn.Fail:
    return sfn.Fail(stack, "Failed (test)")
