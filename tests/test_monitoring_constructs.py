"""The monitoring side's pieces, each alone on a bare stack (tests/constructs_harness.py)."""

from __future__ import annotations

import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template

from mlops.config import DatasetConfig, MonitoringConfig, bundled_dataset
from mlops.constructs.monitoring import Monitoring
from mlops.constructs.monitoring.alarms import AlarmBook
from mlops.constructs.monitoring.backend import ModelMonitorBackend, OpenSourceBackend, monitoring_backend
from mlops.constructs.monitoring.drift_workflow import DriftWorkflow
from mlops.constructs.monitoring.model_monitor import ModelMonitorSetup
from mlops.constructs.monitoring.retraining import retraining
from mlops.images import ImageMapping
from tests.constructs_harness import PREFIX, actions, bare_stage, definition, dev_config, statements


def _machines(stack) -> dict[str, sfn.StateMachine]:  # noqa: ANN001
    return {kind: sfn.StateMachine(stack, f"{kind}Machine", definition_body=sfn.DefinitionBody.from_chainable(
        sfn.Pass(stack, f"{kind} step"))) for kind in ("data", "training")}


def test_alarm_book_pages_the_topic_with_every_alarm_it_makes() -> None:
    stack, resources = bare_stage()
    book = AlarmBook(stack, prefix=PREFIX, topic=resources.topic)
    book.state_machines(_machines(stack))
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::CloudWatch::Alarm", 6)
    template.all_resources_properties("AWS::CloudWatch::Alarm", {"AlarmActions": [Match.any_value()],
                                                                 "TreatMissingData": "notBreaching"})
    assert list(book.alarms) == ["data-failed", "data-timed-out", "data-aborted", "training-failed", "training-timed-out",
                                 "training-aborted"]


def test_drift_workflow_runs_the_drift_job_with_the_window_the_handler_prepares() -> None:
    stack, resources = bare_stage()
    config = dev_config()
    drift = DriftWorkflow(stack, resources=resources, monitoring=config.monitoring, pipeline=config.pipeline,
                          group=f"{PREFIX}-models", endpoint_name=f"{PREFIX}-endpoint", image_uri="sklearn-image",
                          image_repository="sagemaker-scikit-learn")
    template = Template.from_stack(stack)
    states = definition(template)["States"]
    check = states["Check drift"]["Parameters"]
    assert check["ProcessingInputs"][3]["S3Input"]["S3DataType"] == "ManifestFile"  # exactly the window's captured objects
    arguments = check["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--namespace") + 1] == "MLOps/demo"
    assert states["Captured data in the window?"]["Default"] == "Nothing to monitor"
    job = statements(template, "DriftJobRole")
    (metrics,) = [s for s in job if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MLOps/demo"}}
    assert "s3:PutObject" in actions(job) and drift.function.node.id == "PrepareMonitoring"


def test_retraining_is_scheduled_and_alarm_driven_with_dead_letters() -> None:
    stack, resources = bare_stage()
    config = dev_config()
    queue = sqs.Queue(stack, "DeadLetters")
    retraining(stack, resources=resources, config=config.retraining, training=_machines(stack)["training"],
               dead_letters=queue, alarm_sources={f"{PREFIX}-drift": "drift-alarm"})
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Scheduler::Schedule", {"ScheduleExpression": "cron(0 4 ? * MON *)",
                                                                  "Target": Match.object_like({
                                                                      "DeadLetterConfig": Match.any_value(),
                                                                      "RetryPolicy": Match.any_value()})})
    template.has_resource_properties("AWS::Events::Rule", {"EventPattern": {
        "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [f"{PREFIX}-drift"], "state": {"value": ["ALARM"]}}}})
    assert {"kms:GenerateDataKey", "kms:Decrypt", "sqs:SendMessage"} <= actions(statements(template, "RetrainingScheduleRole"))


def test_model_monitor_setup_grants_its_jobs_and_handler_the_stage_only() -> None:
    stack, resources = bare_stage()
    config = dev_config()
    monitoring = config.monitoring.model_copy(update={"backend": "model-monitor"})
    setup = ModelMonitorSetup(stack, "ModelMonitor", resources=resources, monitoring=monitoring, pipeline=config.pipeline,
                              image_uri="analyzer", image_repository="sagemaker-model-monitor-analyzer")
    template = Template.from_stack(stack)
    handler = statements(template, "ScheduleModelMonitor")
    assert {"sagemaker:CreateMonitoringSchedule", "iam:PassRole"} <= actions(handler)
    assert setup.baseline_parameters("name")["Environment"]["dataset_format"] == \
        '{"csv": {"header": false, "output_columns_position": "START"}}'


@pytest.mark.parametrize("backend", ["open-source", "model-monitor"])
def test_monitoring_alone_has_the_same_alarm_names_for_either_backend(backend: str) -> None:
    stack, resources = bare_stage()
    config = dev_config()
    monitoring = config.monitoring.model_copy(update={"backend": backend})
    chosen = monitoring_backend(monitoring, config.pipeline)
    assert isinstance(chosen, OpenSourceBackend if backend == "open-source" else ModelMonitorBackend)
    images = ImageMapping(stack, "Images", images={"sklearn": ("sklearn", "1.2-1", "cpu", "py3"), **chosen.images()})
    chosen.bind(images, resources)
    alarms = {name: cloudwatch.Alarm(stack, name, metric=cloudwatch.Metric(namespace="n", metric_name=name), threshold=1,
                                     evaluation_periods=1) for name in ("endpoint-5xx", "endpoint-latency-p99")}
    built = Monitoring(stack, "Monitoring", resources=resources, backend=chosen, monitoring=monitoring,
                       retraining_config=config.retraining, alarms=config.alarms, group=f"{PREFIX}-models",
                       endpoint_name=f"{PREFIX}-endpoint", state_machines=_machines(stack), endpoint_alarms=alarms)
    assert {"drift", "endpoint-4xx-rate", "endpoint-5xx", "training-failed"} <= set(built.alarms)
    assert (built.state_machine is not None) is (backend == "open-source")
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": f"{PREFIX}-ml"})
    kind = "AWS::CloudWatch::Alarm" if backend == "open-source" else "AWS::CloudWatch::CompositeAlarm"
    assert any(r["Properties"].get("AlarmName") == f"{PREFIX}-drift" for r in template.find_resources(kind).values())


def test_the_backend_is_read_from_config_in_one_place() -> None:
    with pytest.raises(KeyError):
        monitoring_backend(MonitoringConfig.model_construct(backend="evidently"), dev_config().pipeline)


def test_regression_quality_alarms_watch_the_drift_jobs_regression_metrics() -> None:
    """A regression stage's business threshold (``rmse <= 55``) becomes an alarm on the `rmse`
    the drift job publishes from ground truth, firing above the threshold."""
    from mlops.config import MetricThreshold

    stack, resources = bare_stage()
    config = dev_config()
    pipeline = config.pipeline.model_copy(update={"dataset": DatasetConfig.model_validate(bundled_dataset("diabetes"))})
    monitoring = config.monitoring.model_copy(update={
        "ground_truth_prefix": "monitoring/ground-truth/",
        "quality_thresholds": [MetricThreshold(metric="rmse", direction="<=", value=55),
                               MetricThreshold(metric="r2", direction=">=", value=0.4)]})
    chosen = monitoring_backend(monitoring, pipeline)
    chosen.bind(ImageMapping(stack, "Images", images={"sklearn": ("sklearn", "1.2-1", "cpu", "py3")}), resources)
    alarms = {name: cloudwatch.Alarm(stack, name, metric=cloudwatch.Metric(namespace="n", metric_name=name), threshold=1,
                                     evaluation_periods=1) for name in ("endpoint-5xx", "endpoint-latency-p99")}
    built = Monitoring(stack, "Monitoring", resources=resources, backend=chosen, monitoring=monitoring,
                       retraining_config=config.retraining, alarms=config.alarms, group=f"{PREFIX}-models",
                       endpoint_name=f"{PREFIX}-endpoint", state_machines=_machines(stack), endpoint_alarms=alarms)
    assert {"quality-rmse", "quality-r2"} <= set(built.alarms)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "AlarmName": f"{PREFIX}-quality-rmse", "MetricName": "rmse", "Namespace": "MLOps/demo", "Threshold": 55,
        "ComparisonOperator": "GreaterThanThreshold", "Statistic": "Maximum"})
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "AlarmName": f"{PREFIX}-quality-r2", "MetricName": "r2", "ComparisonOperator": "LessThanThreshold"})
    check = definition(template, "Monitoring")["States"]["Check drift"]["Parameters"]["AppSpecification"]["ContainerArguments"]
    assert check[check.index("--problem-type") + 1] == "regression" and "--ground-truth-dir" in check
