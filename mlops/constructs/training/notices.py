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
    """Describe, notify, then fail. A run stopped by the data state machine's quality gate ends
    ``DataQualityFailed`` (the nested run's own error name, with its failed rules in the cause)."""
    return failure_ending(
        scope, names=FailureNames(describe="Describe failure", notify="Notify failure", failed="Run failed",
                                  undescribed="Failure not described"),
        resources=resources, state_machine_name=f"{resources.prefix}-training",
        subject=f"{resources.prefix} training pipeline: FAILED")
