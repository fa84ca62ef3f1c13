"""The monitoring backend, chosen once per stage (``monitoring.backend``).

``open-source`` runs the repo's drift job on a schedule (``DriftWorkflow``); ``model-monitor``
has the training run set SageMaker Model Monitor up after each real-time deployment. Both feed
the same alarm names (``<prefix>-drift``, ``<prefix>-quality-<metric>``), dashboard and
retraining rule; this module is the only place that tells them apart.
"""

from __future__ import annotations

from typing import Callable, Protocol

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import MonitoringConfig, PipelineConfig
from mlops.constructs.monitoring.alarms import AlarmBook
from mlops.constructs.monitoring.drift_workflow import DriftWorkflow, metrics_namespace
from mlops.constructs.monitoring.model_monitor import ModelMonitorSetup, model_monitor_alarms, schedule_names
from mlops.constructs.monitoring.retraining import schedule_role
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.constructs.workflow import API_TIMEOUT, catch_all, sagemaker_job, with_suffix
from mlops.images import ImageMapping

SKLEARN_VERSION = "1.2-1"  # AWS's scikit-learn processing image the drift job runs on


class MonitoringBackend(Protocol):
    """What differs between the backends, asked for by the constructs that differ."""

    def images(self) -> dict[str, tuple[str, ...]]:
        """Image mapping entries this backend needs (``ImageMapping`` key -> SDK spec)."""

    def bind(self, images: ImageMapping, resources: StageResources) -> None:
        """The stage's image mapping and resources, once the stack has them."""

    # --- in the training workflow (TrainingPipeline's scope)
    def setup_training(self, scope: Construct) -> dict[str, PipelineFunction]:
        """Build what the training run needs; returns the handler functions it adds."""

    def passed_roles(self) -> list[str]:
        """Role ARNs the training state machine passes to SageMaker for this backend."""

    def after_realtime(self, scope: Construct, endpoint: str,
                       on_failure: sfn.IChainable) -> Callable[[sfn.IChainable], sfn.IChainable] | None:
        """States after a real-time deployment that serves, before ``done`` (or None)."""

    # --- in the Monitoring construct's scope
    def after_batch(self, scope: Construct, on_failure: sfn.IChainable) -> Callable[[sfn.IChainable], sfn.IChainable] | None:
        """What follows a batch transform over the configured prefix before ``done`` (None: nothing)."""

    def workflow(self, scope: Construct, *, group: str, endpoint: str, dead_letters: sqs.IQueue) -> DriftWorkflow | None:
        """The scheduled monitoring workflow, if this backend has one."""

    def drift_alarm(self, scope: Construct, book: AlarmBook, endpoint: str) -> cloudwatch.IAlarm:
        """The alarm named ``<prefix>-drift`` the retraining rule listens for."""

    def quality_metrics(self, endpoint: str) -> tuple[str, dict[str, str]]:
        """(namespace, dimensions) of the model-quality metrics."""

    def drift_widgets(self, endpoint: str) -> list[cloudwatch.IWidget]:
        """The dashboard's drift row."""


class OpenSourceBackend:
    """The repo's drift job (``jobs/drift/drift.py``) in a scheduled workflow."""

    def __init__(self, monitoring: MonitoringConfig, pipeline: PipelineConfig) -> None:
        self._monitoring, self._pipeline = monitoring, pipeline

    def images(self) -> dict[str, tuple[str, ...]]:
        return {}

    def bind(self, images: ImageMapping, resources: StageResources) -> None:
        self._image, self._resources = images.uri("sklearn"), resources

    def setup_training(self, scope: Construct) -> dict[str, PipelineFunction]:
        return {}

    def passed_roles(self) -> list[str]:
        return []

    def after_realtime(self, scope: Construct, endpoint: str, on_failure: sfn.IChainable) -> None:
        return None

    def after_batch(self, scope: Construct, on_failure: sfn.IChainable) -> Callable[[sfn.IChainable], sfn.IChainable]:
        """Start the monitoring workflow on the batch transform's output (features joined with
        the predictions) and go on without waiting: it compares them with the training split
        and feeds the same drift alarm and retraining rule as captured traffic. By name: the
        workflow is built after the training pipeline."""
        machine = sfn.StateMachine.from_state_machine_name(scope, "MonitoringWorkflow", f"{self._resources.prefix}-monitoring")

        def then(done: sfn.IChainable) -> sfn.IChainable:
            return catch_all(tasks.StepFunctionsStartExecution(
                scope, "Monitor batch output", state_machine=machine, associate_with_parent=True,
                integration_pattern=sfn.IntegrationPattern.REQUEST_RESPONSE, task_timeout=API_TIMEOUT,
                input=sfn.TaskInput.from_object({"batch_output": sfn.JsonPath.string_at("$.transform.output")}),
                result_path=sfn.JsonPath.DISCARD,
                comment="The monitoring workflow checks the batch input's drift (it runs on its own)"), on_failure).next(done)

        return then

    def workflow(self, scope: Construct, *, group: str, endpoint: str, dead_letters: sqs.IQueue) -> DriftWorkflow:
        drift = DriftWorkflow(scope, resources=self._resources, monitoring=self._monitoring, pipeline=self._pipeline,
                              group=group, endpoint_name=endpoint, image_uri=self._image,
                              image_repository=ImageMapping.repository("sklearn", SKLEARN_VERSION))
        target = scheduler_targets.StepFunctionsStartExecution(
            drift.state_machine, role=schedule_role(scope, "MonitoringScheduleRole", self._resources),
            dead_letter_queue=dead_letters, retry_attempts=3, max_event_age=cdk.Duration.hours(6),
            input=scheduler.ScheduleTargetInput.from_object({"trigger": "schedule"}))
        scheduler.Schedule(scope, "MonitoringSchedule", description=f"{self._resources.prefix}: drift and quality check "
                           f"of {endpoint}", schedule=scheduler.ScheduleExpression.expression(self._monitoring.schedule),
                           target=target)
        return drift

    def drift_alarm(self, scope: Construct, book: AlarmBook, endpoint: str) -> cloudwatch.IAlarm:
        namespace, dims = self.quality_metrics(endpoint)
        return book.add("drift", f"Drift: at least {self._monitoring.drift_share_threshold:.0%} of the features "
                        "drifted from the training baseline", cloudwatch.Metric(
                            namespace=namespace, metric_name="DriftedFeatureShare", dimensions_map=dims,
                            statistic="Maximum", period=cdk.Duration.hours(1)),
                        threshold=self._monitoring.drift_share_threshold)

    def quality_metrics(self, endpoint: str) -> tuple[str, dict[str, str]]:
        return metrics_namespace(self._resources.project), {"Endpoint": endpoint, "Stage": self._resources.stage}

    def drift_widgets(self, endpoint: str) -> list[cloudwatch.IWidget]:
        namespace, dims = self.quality_metrics(endpoint)
        hour = cdk.Duration.hours(1)
        return [
            cloudwatch.GraphWidget(title="Share of drifted features", width=12, left=[cloudwatch.Metric(
                namespace=namespace, metric_name="DriftedFeatureShare", dimensions_map=dims, statistic="Maximum",
                period=hour)], left_annotations=[cloudwatch.HorizontalAnnotation(
                    value=self._monitoring.drift_share_threshold, label="alarm")]),
            cloudwatch.GraphWidget(title="Drift effect size per feature", width=12, left=[cloudwatch.MathExpression(
                expression=(f"SEARCH('{{{namespace},Endpoint,Feature,Stage}} MetricName=\"FeatureDriftScore\" "
                            f"Endpoint=\"{dims['Endpoint']}\" Stage=\"{dims['Stage']}\"', 'Maximum', 3600)"),
                label="", period=hour)]),
        ]


class ModelMonitorBackend:
    """SageMaker Model Monitor, set up by the training run after each real-time deployment."""

    def __init__(self, monitoring: MonitoringConfig, pipeline: PipelineConfig) -> None:
        self._monitoring, self._pipeline = monitoring, pipeline
        self.setup: ModelMonitorSetup | None = None

    def images(self) -> dict[str, tuple[str, ...]]:
        return {"modelmonitor": ("model-monitor", "")}  # Model Monitor's analyzer

    def bind(self, images: ImageMapping, resources: StageResources) -> None:
        self._image, self._resources = images.uri("modelmonitor"), resources

    def setup_training(self, scope: Construct) -> dict[str, PipelineFunction]:
        self.setup = ModelMonitorSetup(scope, "ModelMonitor", resources=self._resources, monitoring=self._monitoring,
                                       pipeline=self._pipeline, image_uri=self._image,
                                       image_repository=ImageMapping.repository("model-monitor", ""))
        return {"schedule_model_monitor": self.setup.function}

    def passed_roles(self) -> list[str]:
        return [self.setup.role.role_arn] if self.setup else []

    def after_realtime(self, scope: Construct, endpoint: str,
                       on_failure: sfn.IChainable) -> Callable[[sfn.IChainable], sfn.IChainable]:
        """Baseline the run's training split, then create or move the monitoring schedules. A
        failure here fails the run (and notifies); the endpoint keeps serving the new model,
        monitored against the previous baseline."""
        setup, mm = self.setup, self._monitoring.model_monitor
        assert setup is not None

        def then(done: sfn.IChainable) -> sfn.IChainable:
            baseline = sagemaker_job(scope, "Baseline for Model Monitor", "createProcessingJob",
                                     setup.baseline_parameters(with_suffix("$.run.names.baseline")),
                                     result_selector={"job_name.$": "$.ProcessingJobName"}, result_path="$.baseline",
                                     comment="Model Monitor's analyzer suggests statistics and constraints from the training split",
                                     timeout_seconds=mm.max_runtime_minutes * 60, on_failure=on_failure,
                                     tags=self._resources.tag_list)
            schedule = catch_all(tasks.LambdaInvoke(
                scope, "Schedule Model Monitor", lambda_function=setup.function.function,
                task_timeout=API_TIMEOUT, payload=setup.schedule_payload(endpoint),
                result_selector={"data_quality.$": "$.Payload.data_quality", "model_quality.$": "$.Payload.model_quality"},
                result_path="$.monitoring", comment="Data-quality (and model-quality) schedule on the new baseline",
            ), on_failure)
            return baseline.next(schedule).next(done)

        return then

    def after_batch(self, scope: Construct, on_failure: sfn.IChainable) -> None:
        return None  # Model Monitor's batch-transform monitoring is not set up; the open-source backend does it

    def workflow(self, scope: Construct, *, group: str, endpoint: str, dead_letters: sqs.IQueue) -> None:
        return None

    def drift_alarm(self, scope: Construct, book: AlarmBook, endpoint: str) -> cloudwatch.IAlarm:
        return model_monitor_alarms(scope, book, monitoring=self._monitoring, dataset=self._pipeline.dataset,
                                    endpoint_name=endpoint)

    def quality_metrics(self, endpoint: str) -> tuple[str, dict[str, str]]:
        return ("aws/sagemaker/Endpoints/model-metrics",  # what Model Monitor emits
                {"Endpoint": endpoint, "MonitoringSchedule": schedule_names(self._resources.prefix)["model-quality"]})

    def drift_widgets(self, endpoint: str) -> list[cloudwatch.IWidget]:
        schedule = schedule_names(self._resources.prefix)["data-quality"]
        hour = cdk.Duration.hours(1)
        return [cloudwatch.GraphWidget(title="Model Monitor drift distance per feature (_c1… in dataset order)",
                                       width=24, left=[cloudwatch.MathExpression(
            expression=(f"SEARCH('{{aws/sagemaker/Endpoints/data-metrics,Endpoint,MonitoringSchedule}} "
                        f"feature_baseline_drift Endpoint=\"{endpoint}\" "
                        f"MonitoringSchedule=\"{schedule}\"', 'Maximum', 3600)"),
            label="", period=hour)], left_annotations=[cloudwatch.HorizontalAnnotation(
                value=self._monitoring.model_monitor.drift_threshold, label="alarm")])]


def monitoring_backend(monitoring: MonitoringConfig, pipeline: PipelineConfig) -> MonitoringBackend:
    """The one place ``monitoring.backend`` is read."""
    backends = {"open-source": OpenSourceBackend, "model-monitor": ModelMonitorBackend}
    return backends[monitoring.backend](monitoring, pipeline)
