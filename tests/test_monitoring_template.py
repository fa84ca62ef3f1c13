"""Monitoring, alarms, dashboard and retraining in the synthesized templates (issue #6),
including the alarm-coverage test: every alarm has an action, every failure mode has an alarm."""

from __future__ import annotations

import json

import pytest

from tests.conftest import resources_of_type
from tools.lint import state_machine_definitions

STAGES = ("dev", "prod")


def _pipeline(stacks, stage: str) -> dict:
    return stacks[f"{stage}/Pipeline"].template


def _alarms(template: dict) -> dict[str, dict]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()}


def _topic_export(stacks, stage: str) -> str:
    """How the Pipeline stack refers to the Operations stack's topic."""
    operations = stacks[f"{stage}/Operations"].template
    (topic_id,) = resources_of_type(operations, "AWS::SNS::Topic")
    return topic_id


def _metric_names(alarm: dict) -> set[str]:
    if "MetricName" in alarm:
        return {alarm["MetricName"]}
    return {m["MetricStat"]["Metric"]["MetricName"] for m in alarm.get("Metrics", []) if "MetricStat" in m}


# failure mode (issue #6, point 3) -> how to recognise its alarm
FAILURE_MODES = {
    "pipeline execution failed": lambda name, a: name.endswith("-training-failed") and _metric_names(a) == {"ExecutionsFailed"},
    "pipeline execution timed out": lambda name, a: name.endswith("-training-timed-out") and _metric_names(a) == {"ExecutionsTimedOut"},
    "pipeline execution aborted": lambda name, a: name.endswith("-training-aborted") and _metric_names(a) == {"ExecutionsAborted"},
    "data run failed": lambda name, a: name.endswith("-data-failed"),
    "endpoint 5XX": lambda name, a: _metric_names(a) == {"Invocation5XXErrors"},
    "endpoint 4XX rate": lambda name, a: _metric_names(a) == {"Invocations", "Invocation4XXErrors"},
    "ModelLatency p99": lambda name, a: _metric_names(a) == {"ModelLatency"} and a.get("ExtendedStatistic") == "p99",
    "monitoring job failed": lambda name, a: name.endswith("-monitoring-failed") and _metric_names(a) == {"ExecutionsFailed"},
    "drift above threshold": lambda name, a: _metric_names(a) == {"DriftedFeatureShare"},
}


@pytest.mark.parametrize("stage", STAGES)
def test_every_alarm_has_an_action_to_the_operations_topic(stacks, stage: str) -> None:
    alarms = _alarms(_pipeline(stacks, stage))
    topic = _topic_export(stacks, stage)
    assert len(alarms) >= 13  # 3 state machines x 3, 5XX, 4XX rate, p99 latency, drift (+ quality in prod)
    for name, alarm in alarms.items():
        assert alarm.get("AlarmActions"), f"{name} has no action"
        assert topic in json.dumps(alarm["AlarmActions"]), f"{name} does not notify the operations topic"
        assert alarm["TreatMissingData"] == "notBreaching", name


@pytest.mark.parametrize("stage", STAGES)
def test_every_failure_mode_has_an_alarm(stacks, stage: str) -> None:
    alarms = _alarms(_pipeline(stacks, stage))
    uncovered = [mode for mode, matches in FAILURE_MODES.items()
                 if not any(matches(name, alarm) for name, alarm in alarms.items())]
    assert uncovered == []
    # budget alerts are AWS Budgets notifications (not CloudWatch alarms) to the same topic
    (budget,) = resources_of_type(stacks[f"{stage}/Operations"].template, "AWS::Budgets::Budget").values()
    subscribers = [s for n in budget["Properties"]["NotificationsWithSubscribers"] for s in n["Subscribers"]]
    assert subscribers and all(s["SubscriptionType"] in ("SNS", "EMAIL") for s in subscribers)
    assert any(s["SubscriptionType"] == "SNS" for s in subscribers)


def test_alarm_coverage_catches_a_missing_alarm(stacks) -> None:
    """Canary: without the drift alarm, the coverage check reports the gap."""
    alarms = {name: a for name, a in _alarms(_pipeline(stacks, "dev")).items() if not name.endswith("-drift")}
    assert [m for m, matches in FAILURE_MODES.items() if not any(matches(n, a) for n, a in alarms.items())] == [
        "drift above threshold"]


def test_model_quality_alarms_come_with_ground_truth(stacks) -> None:
    prod = _alarms(_pipeline(stacks, "prod"))
    quality = {name: a for name, a in prod.items() if "-quality-" in name}
    assert quality and all(a["ComparisonOperator"] == "LessThanThreshold" for a in quality.values())
    assert not any("-quality-" in name for name in _alarms(_pipeline(stacks, "dev")))


@pytest.mark.parametrize("stage", STAGES)
def test_every_eventbridge_and_scheduler_target_has_retries_and_a_dead_letter_queue(stacks, stage: str) -> None:
    template = _pipeline(stacks, stage)
    targets = [t for r in resources_of_type(template, "AWS::Events::Rule").values() for t in r["Properties"]["Targets"]]
    schedules = [s["Properties"]["Target"] for s in resources_of_type(template, "AWS::Scheduler::Schedule").values()]
    assert len(schedules) == 2  # monitoring and retraining
    for target in targets:
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] >= 3, target["Id"]
    for target in schedules:
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] >= 3


@pytest.mark.parametrize("stage", STAGES)
def test_retraining_is_triggered_by_the_schedule_and_the_drift_and_quality_alarms(stacks, stage: str) -> None:
    template = _pipeline(stacks, stage)
    (rule,) = [r["Properties"] for r in resources_of_type(template, "AWS::Events::Rule").values()
               if r["Properties"]["EventPattern"].get("source") == ["aws.cloudwatch"]]
    names = json.dumps(rule["EventPattern"]["detail"]["alarmName"])
    assert "Alarmdrift" in names and ("Alarmqualityf1" in names) is (stage == "prod")
    assert rule["EventPattern"]["detail"]["state"] == {"value": ["ALARM"]}
    schedules = {s["Properties"]["Description"]: s["Properties"] for s in
                 resources_of_type(template, "AWS::Scheduler::Schedule").values()}
    retraining = next(p for d, p in schedules.items() if "retraining" in d)
    assert retraining["ScheduleExpression"] == "cron(0 4 ? * MON *)"
    assert json.loads(retraining["Target"]["Input"]) == {"source": "schedule", "reason": "weekly"}
    functions = resources_of_type(template, "AWS::Lambda::Function")
    (retrain,) = [f["Properties"] for k, f in functions.items() if k.startswith("MonitoringRetrain")]
    variables = retrain["Environment"]["Variables"]
    assert variables["ALARM_WINDOW_HOURS"] == "24" and "STATE_MACHINE_ARN" in variables


@pytest.mark.parametrize("stage", STAGES)
def test_monitoring_workflow_runs_the_drift_job_on_the_sklearn_image(stacks, stage: str) -> None:
    template = _pipeline(stacks, stage)
    (logical_id,) = [k for k, m in resources_of_type(template, "AWS::StateMachine".replace("AWS::", "AWS::StepFunctions::")).items()
                     if m["Properties"]["StateMachineName"].endswith("-monitoring")]
    states = state_machine_definitions(template)[logical_id]["States"]
    check = states["Check drift"]
    assert check["Resource"].endswith(":states:::sagemaker:createProcessingJob.sync") and "TimeoutSeconds" in check
    arguments = check["Parameters"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--namespace") + 1] == "MLOps/mlops-demo"
    assert arguments[arguments.index("--stage") + 1] == stage
    inputs = {i["InputName"]: i["S3Input"] for i in check["Parameters"]["ProcessingInputs"]}
    assert inputs["capture"]["S3DataType"] == "ManifestFile"
    assert ("ground_truth" in inputs) is (stage == "prod")
    mapping = json.dumps(template["Mappings"])
    assert "sagemaker-scikit-learn:1.2-1-cpu-py3" in mapping
    assert states["Captured data in the window?"]["Default"] == "Nothing to monitor"
    # the drift job publishes metrics into the project's namespace only
    policies = json.dumps([p["Properties"]["PolicyDocument"] for k, p in resources_of_type(template, "AWS::IAM::Policy").items()
                           if k.startswith("MonitoringDriftJobRole")])
    assert '"cloudwatch:namespace": "MLOps/mlops-demo"' in policies


def test_dashboard_shows_runs_endpoint_health_and_drift(stacks) -> None:
    (dashboard,) = resources_of_type(_pipeline(stacks, "dev"), "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in ("ExecutionsFailed", "Invocation5XXErrors", "ModelLatency", "DriftedFeatureShare", "FeatureDriftScore"):
        assert needle in body, needle
