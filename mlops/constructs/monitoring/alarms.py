"""The stage's alarms, each paging the operations topic, and its CloudWatch dashboard."""

from __future__ import annotations

from typing import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.training.endpoint import EndpointMetrics


class AlarmBook:
    """Creates the stage's alarms in ``scope`` (construct id ``Alarm-<name>``, alarm name
    ``<prefix>-<name>``), each with the SNS action to the operations topic. ``alarms`` keeps
    them in creation order: the dashboard's alarm widget shows them so."""

    def __init__(self, scope: Construct, *, prefix: str, topic: sns.ITopic) -> None:
        self.scope, self.prefix = scope, prefix
        self.action = cw_actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.IAlarm] = {}

    def add(self, name: str, description: str, metric: cloudwatch.IMetric, *, threshold: float, periods: int = 1,
            comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self.scope, f"Alarm-{name}", alarm_name=f"{self.prefix}-{name}", alarm_description=description,
            metric=metric, threshold=threshold, evaluation_periods=periods, datapoints_to_alarm=periods,
            comparison_operator=comparison, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self.action)
        self.alarms[name] = alarm
        return alarm

    def adopt(self, name: str, alarm: cloudwatch.Alarm) -> None:
        """An alarm made elsewhere (the blue/green rollback alarms) also pages."""
        alarm.add_alarm_action(self.action)
        self.alarms[name] = alarm

    def state_machines(self, machines: Mapping[str, sfn.IStateMachine]) -> None:
        """Each workflow: an execution failed, timed out or was aborted."""
        for kind, machine in machines.items():
            for outcome, metric in (("failed", machine.metric_failed), ("timed-out", machine.metric_timed_out),
                                    ("aborted", machine.metric_aborted)):
                self.add(f"{kind}-{outcome}", f"{kind.capitalize()} state machine: an execution {outcome.replace('-', ' ')}",
                         metric(period=cdk.Duration.minutes(5), statistic="Sum"), threshold=1)


    def functions(self, functions: Mapping[str, PipelineFunction]) -> None:
        """Each workflow function: an invocation failed (a handler's error, a timeout, a
        throttle that used up its retries): nothing the functions do fails unheard."""
        for name, function in sorted(functions.items()):
            self.add(f"function-{name.replace('_', '-')}-errors", f"Function {name}: an invocation failed",
                     function.function.metric_errors(period=cdk.Duration.minutes(5), statistic="Sum"), threshold=1)

    def queues(self, queues: Mapping[str, sqs.IQueue]) -> None:
        """Each queue of undelivered events and failed asynchronous invocations: a message waits
        in it (someone should read it and start what it missed)."""
        for name, queue in sorted(queues.items()):
            self.add(f"undelivered-{name}", f"Queue {name}: an event or invocation could not be delivered and waits "
                     "in the queue", queue.metric_approximate_number_of_messages_visible(
                         period=cdk.Duration.minutes(5), statistic="Maximum"), threshold=1)


def dashboard(scope: Construct, *, prefix: str, machines: Mapping[str, sfn.IStateMachine], endpoint: EndpointMetrics,
              alarms: list[cloudwatch.IAlarm], drift: list[cloudwatch.IWidget]) -> cloudwatch.Dashboard:
    """``<prefix>-ml``: runs of each workflow, endpoint health, the alarms, drift over time."""
    five = cdk.Duration.minutes(5)
    runs = [
        cloudwatch.GraphWidget(
            title=f"{kind} runs", width=8,
            left=[machine.metric_started(period=five), machine.metric_succeeded(period=five),
                  machine.metric_failed(period=five), machine.metric_timed_out(period=five)])
        for kind, machine in machines.items()
    ]
    health = [
        cloudwatch.GraphWidget(title="Endpoint invocations and errors", width=8,
                               left=[endpoint.invocations, endpoint.errors_4xx, endpoint.metric("Invocation5XXErrors")]),
        cloudwatch.GraphWidget(title="Endpoint model latency (µs)", width=8,
                               left=[endpoint.metric("ModelLatency", "p50"), endpoint.metric("ModelLatency", "p99")]),
        cloudwatch.AlarmStatusWidget(title="Alarms", width=8, alarms=alarms),
    ]
    return cloudwatch.Dashboard(scope, "Dashboard", dashboard_name=f"{prefix}-ml", widgets=[runs, health, drift])
