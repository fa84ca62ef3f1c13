"""Monitoring, alarms, the dashboard and the retraining loop of a stage."""

from __future__ import annotations

from typing import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.config import AlarmsConfig, MonitoringConfig, RetrainingConfig
from mlops.constructs.monitoring.alarms import AlarmBook, dashboard
from mlops.constructs.monitoring.backend import MonitoringBackend
from mlops.constructs.monitoring.retraining import retraining, trigger_dead_letters
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.constructs.training.endpoint import EndpointMetrics


class Monitoring(Construct):
    """Provisions, for the stage's real-time endpoint:

    * the monitoring workflow of the chosen backend (``open-source``: the scheduled drift
      workflow ``<prefix>-monitoring``; ``model-monitor``: none here — the training run sets
      Model Monitor up — but alarms on what it emits, under the same names);
    * alarms to the operations topic: each state machine failed / timed out / aborted, endpoint
      5XX, 4XX rate, p99 latency, drift, model quality (with ground truth);
    * a dashboard ``<prefix>-ml``: runs, endpoint health, drift over time;
    * retraining: the ``retrain`` handler, started by the retraining schedule and by the drift
      and quality alarms; every EventBridge and Scheduler target has a retry policy and a
      dead-letter queue.

    Exposes ``alarms`` (name -> alarm), ``state_machine`` (or None), ``functions``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, resources: StageResources, backend: MonitoringBackend,
                 monitoring: MonitoringConfig, retraining_config: RetrainingConfig, alarms: AlarmsConfig,
                 group: str, endpoint_name: str, state_machines: Mapping[str, sfn.IStateMachine],
                 endpoint_alarms: Mapping[str, cloudwatch.Alarm]) -> None:
        super().__init__(scope, construct_id)
        dead_letters = trigger_dead_letters(self, resources)
        self.functions: dict[str, PipelineFunction] = {}
        workflow = backend.workflow(self, group=group, endpoint=endpoint_name, dead_letters=dead_letters)
        self.state_machine = workflow.state_machine if workflow else None
        machines = dict(state_machines)
        if workflow is not None:
            machines["monitoring"] = workflow.state_machine
            self.functions["prepare_monitoring"] = workflow.function
        book = AlarmBook(self, prefix=resources.prefix, topic=resources.topic)
        book.state_machines(machines)
        for name, alarm in endpoint_alarms.items():  # the blue/green rollback alarms also page
            book.adopt(name, alarm)
        endpoint = EndpointMetrics(endpoint_name)
        book.add("endpoint-4xx-rate", f"Endpoint: more than {alarms.endpoint_4xx_rate_percent}% of requests rejected (4XX)",
                 endpoint.rejection_rate(), threshold=alarms.endpoint_4xx_rate_percent, periods=3)
        drift = backend.drift_alarm(self, book, endpoint_name)
        quality = self._quality_alarms(book, monitoring, *backend.quality_metrics(endpoint_name))
        self.alarms = book.alarms
        self.functions["retrain"] = retraining(
            self, resources=resources, config=retraining_config, training=state_machines["training"],
            dead_letters=dead_letters, alarm_sources={drift.alarm_name: "drift-alarm",
                                                      **{alarm.alarm_name: "quality-alarm" for alarm in quality}})
        # last: every function and queue of the stage exists by now (Monitoring is built after the workflows)
        book.functions(resources.functions)
        book.queues(resources.queues)
        resources.acknowledge_invocations()
        dashboard(self, prefix=resources.prefix, machines=machines, endpoint=endpoint, alarms=list(book.alarms.values()),
                  drift=backend.drift_widgets(endpoint_name))

    @staticmethod
    def _quality_alarms(book: AlarmBook, monitoring: MonitoringConfig, namespace: str,
                        dimensions: dict[str, str]) -> list[cloudwatch.Alarm]:
        """One alarm per business threshold on the model-quality metrics (needs ground truth)."""
        alarms = []
        for threshold in monitoring.quality_thresholds:
            below = threshold.direction == ">="
            alarms.append(book.add(
                f"quality-{threshold.metric}", f"Model quality on ground truth: {threshold.metric} "
                f"{'below' if below else 'above'} {threshold.value}", cloudwatch.Metric(
                    namespace=namespace, metric_name=threshold.metric, dimensions_map=dimensions,
                    statistic="Minimum" if below else "Maximum", period=cdk.Duration.hours(1)),
                threshold=threshold.value,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD if below
                else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD))
        return alarms
