"""The training workflow's notices to the operations topic and its failure ending."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.constructs.resources import StageResources
from mlops.constructs.workflow import FailureNames, failure_ending, notify


def outcome_notice(scope: Construct, resources: StageResources, name: str, outcome: str,
                   detail_path: str) -> tasks.SnsPublish:
    """"Execution <id> <OUTCOME>: <detail>" to the operations topic."""
    return notify(scope, name, topic=resources.topic, subject=f"{resources.prefix} training pipeline: {outcome}",
                  message=f"Execution {{}} {outcome}: {{}}", paths=[detail_path])


def training_failure(scope: Construct, resources: StageResources) -> sfn.IChainable:
    """Notify, then fail. A run stopped by the data state machine's quality gate ends
    ``DataQualityFailed`` (with the failed rules in the cause), whatever Step Functions named
    the nested execution's failure."""
    data_failed = sfn.Fail(scope, "Data quality failed", error="DataQualityFailed", cause_path="$.error.Cause")
    return failure_ending(
        scope, names=FailureNames(notify="Notify failure", choice="Reserved error name?", step_failed="Step failed",
                                  failed="Run failed"),
        topic=resources.topic, subject=f"{resources.prefix} training pipeline: FAILED",
        message="Execution {} FAILED: {}", message_paths=["$.error.Cause"],
        first=[(sfn.Condition.string_matches("$.error.Cause", "*DataQualityFailed*"), data_failed)])
