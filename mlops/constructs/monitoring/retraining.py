"""When the training pipeline runs on its own: the ``retrain`` handler, started by the
retraining schedule and by the drift and model-quality alarms, with storm protection (no run
while one runs; at most one alarm-triggered run per window — see the handler)."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.config import RetrainingConfig
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.nag import acknowledge, acknowledge_inline_policy

RETRAINING_CRON = {  # EventBridge Scheduler cron (UTC): minutes hours day-of-month month day-of-week year
    "daily": "cron(0 4 * * ? *)",
    "weekly": "cron(0 4 ? * MON *)",
    "monthly": "cron(0 4 1 * ? *)",
}


def trigger_dead_letters(scope: Construct, resources: StageResources) -> sqs.Queue:
    """The dead-letter queue of the monitoring schedule, the retraining schedule and the alarm rule."""
    return resources.queue(scope, "TriggerDeadLetters", name="triggers",
                           holds="the monitoring schedule, the retraining schedule and the alarm rule")


def schedule_role(scope: Construct, construct_id: str, resources: StageResources) -> iam.Role:
    """The role one schedule runs as. EventBridge Scheduler delivers a failed invocation to
    the dead-letter queue as this role ("Configuring a schedule's dead-letter queue"), and
    the queue is encrypted with the data key, so besides sqs:SendMessage (granted by the
    target) the role may use the key to send."""
    role = iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal(
        "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(scope).account}}),
        description=f"{resources.prefix}: EventBridge Scheduler target and dead-letter delivery")
    acknowledge_inline_policy(role, f"EventBridge Scheduler's role for {construct_id.removesuffix('Role')}")
    resources.data_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
    return role


def retraining(scope: Construct, *, resources: StageResources, config: RetrainingConfig, training: sfn.IStateMachine,
               dead_letters: sqs.IQueue, alarm_sources: dict[str, str]) -> PipelineFunction:
    """The ``retrain`` function, its schedule (``retraining.schedule``) and the rule on the
    drift and quality alarms (``retraining.on_alarm``). ``alarm_sources``: alarm name -> the
    trigger the run records."""
    retrain = resources.function(
        scope, "Retrain", folder="retrain",
        description="start retraining (schedule, drift and quality alarms) with storm protection",
        environment={"STATE_MACHINE_ARN": training.state_machine_arn, "ALARM_SOURCES": json.dumps(alarm_sources),
                     "ALARM_WINDOW_HOURS": str(config.alarm_window_hours)},
    )
    triggers = [trigger for trigger, on in (("EventBridge Scheduler (the retraining schedule)", config.schedule),
                                            ("an EventBridge rule on the drift and quality alarms",
                                             config.on_alarm and alarm_sources)) if on]
    resources.invoked_asynchronously(retrain, by=" and ".join(triggers) or "an operator only (no trigger configured)")
    training.grant_start_execution(retrain.role)
    retrain.role.add_to_policy(iam.PolicyStatement(actions=["states:ListExecutions"], resources=[training.state_machine_arn]))
    acknowledge(retrain.function, "AwsSolutions-L1", "The retrain handler is pinned to Python 3.13, the newest "
                "runtime the Powertools v3 layer it imports is published for.")
    if config.schedule:
        role = schedule_role(scope, "RetrainingScheduleRole", resources)
        scheduler.Schedule(
            scope, "RetrainingSchedule", description=f"{resources.prefix}: {config.schedule} retraining",
            schedule=scheduler.ScheduleExpression.expression(RETRAINING_CRON[config.schedule]),
            target=scheduler_targets.LambdaInvoke(
                retrain.function, role=role, dead_letter_queue=dead_letters, retry_attempts=3,
                max_event_age=cdk.Duration.hours(6),
                input=scheduler.ScheduleTargetInput.from_object({"source": "schedule", "reason": config.schedule})),
        )
        logical_id = cdk.Stack.of(scope).get_logical_id(retrain.function.node.default_child)  # type: ignore[arg-type]
        acknowledge(role, "AwsSolutions-IAM5", "CDK's Scheduler LambdaInvoke target grants invoking the retrain "
                    "function's versions and aliases; the schedule calls that one function only.",
                    applies_to=f"Resource::<{logical_id}.Arn>:*")
    if config.on_alarm and alarm_sources:
        events.Rule(
            scope, "RetrainOnAlarm", description=f"{resources.prefix}: drift or model-quality alarm → retraining",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"], detail_type=["CloudWatch Alarm State Change"],
                detail={"alarmName": sorted(alarm_sources), "state": {"value": ["ALARM"]}}),
            targets=[targets.LambdaFunction(retrain.function, dead_letter_queue=dead_letters,
                                            retry_attempts=8, max_event_age=cdk.Duration.hours(24))],
        )
    return retrain
