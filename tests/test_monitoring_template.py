"""Monitoring, alarms, dashboard and retraining in the synthesized templates,
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


# failure mode -> how to recognise its alarm
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
    quality = {name: a for name, a in prod.items() if "-quality-" in name and "-function-" not in name}
    assert quality and all(a["ComparisonOperator"] == "LessThanThreshold" for a in quality.values())
    assert not any("-quality-" in name and "-function-" not in name for name in _alarms(_pipeline(stacks, "dev")))


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


# --- monitoring.backend: model-monitor (the tests' "mm" stage: dev + Model Monitor + ground truth) ---
def _training_states(template: dict) -> dict:
    (logical_id,) = [k for k, m in resources_of_type(template, "AWS::StepFunctions::StateMachine").items()
                     if m["Properties"]["StateMachineName"].endswith("-training")]
    return state_machine_definitions(template)[logical_id]["States"]


def test_model_monitor_backend_covers_every_failure_mode_with_an_action(stacks) -> None:
    template = _pipeline(stacks, "mm")
    alarms, topic = _alarms(template), _topic_export(stacks, "mm")
    composites = {c["Properties"]["AlarmName"]: c["Properties"]
                  for c in resources_of_type(template, "AWS::CloudWatch::CompositeAlarm").values()}
    (drift_name,) = composites
    drift = composites[drift_name]
    assert drift_name == "mlops-demo-mm-drift" and topic in json.dumps(drift["AlarmActions"])
    groups = {name: a for name, a in alarms.items() if "-drift-features-" in name}
    watched = sorted(int(m["MetricStat"]["Metric"]["MetricName"].removeprefix("feature_baseline_drift__c"))
                     for a in groups.values() for m in a["Metrics"] if "MetricStat" in m)
    assert watched == list(range(1, 31))  # every feature of breast_cancer; _c0 is the model's output
    for name, alarm in groups.items():
        assert len([m for m in alarm["Metrics"] if "MetricStat" in m]) <= 10  # CloudWatch's hard limit
        assert alarm["Threshold"] == 0.15 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert {m["MetricStat"]["Metric"]["Namespace"] for m in alarm["Metrics"] if "MetricStat" in m} == {
            "aws/sagemaker/Endpoints/data-metrics"}
        assert "AlarmActions" not in alarm  # it pages through the composite
    group_ids = [k for k, a in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
                 if "-drift-features-" in a["Properties"]["AlarmName"]]
    assert len(group_ids) == 3 and all(k in json.dumps(drift["AlarmRule"]) for k in group_ids)
    for name, alarm in alarms.items():
        if name not in groups:
            assert topic in json.dumps(alarm.get("AlarmActions", [])), f"{name} does not notify the operations topic"
    failed = alarms["mlops-demo-mm-monitoring-failed"]
    assert (failed["Namespace"], failed["MetricName"]) == ("AWS/Events", "MatchedEvents")
    (rule,) = [r["Properties"] for k, r in resources_of_type(template, "AWS::Events::Rule").items()
               if r["Properties"]["EventPattern"].get("detail-type") == ["SageMaker Processing Job State Change"]]
    assert rule["EventPattern"]["detail"]["ProcessingJobStatus"] == ["Failed"]
    schedules = json.dumps(rule["EventPattern"]["detail"]["MonitoringScheduleArn"])
    assert "monitoring-schedule/mlops-demo-mm-data-quality" in schedules and "mlops-demo-mm-model-quality" in schedules
    quality = alarms["mlops-demo-mm-quality-f1"]
    assert quality["Namespace"] == "aws/sagemaker/Endpoints/model-metrics" and quality["MetricName"] == "f1"
    assert {d["Name"]: d["Value"] for d in quality["Dimensions"]} == {
        "Endpoint": "mlops-demo-mm-endpoint", "MonitoringSchedule": "mlops-demo-mm-model-quality"}
    # the same retraining loop: the composite drift alarm and the quality alarm start runs
    (retrain,) = [r["Properties"] for r in resources_of_type(template, "AWS::Events::Rule").values()
                  if r["Properties"]["EventPattern"].get("source") == ["aws.cloudwatch"]]
    (composite_id,) = resources_of_type(template, "AWS::CloudWatch::CompositeAlarm")
    names = json.dumps(retrain["EventPattern"]["detail"]["alarmName"])
    assert len(retrain["EventPattern"]["detail"]["alarmName"]) == 2 and composite_id in names and "Alarmqualityf1" in names
    # no open-source workflow: no monitoring state machine, only the retraining schedule
    machines = [m["Properties"]["StateMachineName"] for m in resources_of_type(template, "AWS::StepFunctions::StateMachine").values()]
    assert sorted(machines) == ["mlops-demo-mm-data", "mlops-demo-mm-training"]
    assert len(resources_of_type(template, "AWS::Scheduler::Schedule")) == 1


def test_model_monitor_backend_baselines_and_schedules_after_a_realtime_deployment(stacks) -> None:
    template = _pipeline(stacks, "mm")
    states = _training_states(template)
    baseline, schedule = states["Baseline for Model Monitor"], states["Schedule Model Monitor"]
    assert baseline["Next"] == "Schedule Model Monitor" and schedule["Next"] == "Record serving version"
    # only a real-time deployment that did not roll back leads there: serverless, async and batch have no Model Monitor
    assert [s for s, body in states.items() if "Baseline for Model Monitor" in json.dumps(
        {k: v for k, v in body.items() if k in ("Next", "Default", "Choices")})] == ["Deployment rolled back?"]
    rolled_back, realtime = states["Deployment rolled back?"]["Choices"]
    assert rolled_back == {"Not": {"Variable": "$.endpoint_state.config", "StringEqualsPath": "$.run.names.config"},
                           "Next": "Describe failure"}
    assert realtime == {"Variable": "$.deploy.scaling", "StringEquals": "target-tracking", "Next": "Baseline for Model Monitor"}
    parameters = baseline["Parameters"]
    assert baseline["Resource"].endswith(":states:::sagemaker:createProcessingJob.sync")
    assert json.loads(parameters["Environment"]["dataset_format"]) == {"csv": {"header": False, "output_columns_position": "START"}}
    assert parameters["ProcessingInputs"][0]["S3Input"]["S3Uri.$"] == "$.run.s3.train"
    assert parameters["NetworkConfig"] == {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True}
    assert parameters["ProcessingOutputConfig"]["KmsKeyId"] and parameters["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"]
    assert "sagemaker-model-monitor-analyzer" in json.dumps(template["Mappings"])
    payload = schedule["Parameters"]["Payload"]
    assert payload["schedule_expression"] == "cron(0 * ? * * *)" and payload["drift_threshold"] == 0.15
    assert payload["model_quality"]["thresholds"] == [{"metric": "f1", "direction": ">=", "value": 0.9}]
    assert payload["network_isolation"] is True and payload["version.$"] == "$.run.run_id"
    assert any(c.get("Next") == "Describe failure" for c in baseline.get("Catch", []) + schedule.get("Catch", []))
    # open-source stages have none of it
    assert "Baseline for Model Monitor" not in _training_states(_pipeline(stacks, "dev"))


def test_model_monitor_handler_may_touch_the_stage_schedules_only(stacks) -> None:
    template = _pipeline(stacks, "mm")
    policies = [p["Properties"]["PolicyDocument"]["Statement"] for k, p in resources_of_type(template, "AWS::IAM::Policy").items()
                if k.startswith("TrainingModelMonitorScheduleModelMonitor")]
    statements = [s for policy in policies for s in policy]
    (schedules,) = [s for s in statements if "sagemaker:UpdateMonitoringSchedule" in s["Action"]]
    assert [r["Fn::Join"][1][-1] for r in schedules["Resource"]] == [
        ":monitoring-schedule/mlops-demo-mm-data-quality", ":monitoring-schedule/mlops-demo-mm-model-quality"]
    (passing,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert "TrainingModelMonitorJobRole" in json.dumps(passing["Resource"])


def _alarmed_resources(alarms: dict[str, dict], namespace: str, dimension: str) -> set[str]:
    """Logical ids the ``dimension`` of alarms on ``namespace`` refers to (Ref or GetAtt)."""
    found = set()
    for alarm in alarms.values():
        for d in alarm.get("Dimensions", []) if alarm.get("Namespace") == namespace else []:
            if d["Name"] == dimension:
                found.add(d["Value"]["Ref"] if "Ref" in d["Value"] else d["Value"]["Fn::GetAtt"][0])
    return found


@pytest.mark.parametrize("stage", ["dev", "prod", "mm"])
def test_every_function_and_every_undelivered_message_queue_has_an_alarm(stacks, stage: str) -> None:
    """Nothing fails unheard: each workflow function's errors and each queue that holds
    undelivered events or failed asynchronous invocations page the operations topic. CDK's
    own provider functions run only while CloudFormation deploys (a failure there fails the
    deployment) and are left out."""
    template = _pipeline(stacks, stage)
    alarms = _alarms(template)
    functions = {logical_id for logical_id in resources_of_type(template, "AWS::Lambda::Function")
                 if not logical_id.startswith("AWS679f53fac002430cb0da5b7982bd2287")}
    assert len(functions) >= 7  # the handlers of the three workflows, retrain (and approval in prod)
    errors = {n: a for n, a in alarms.items() if a.get("MetricName") == "Errors"}
    assert _alarmed_resources(errors, "AWS/Lambda", "FunctionName") == functions
    assert all(a["Statistic"] == "Sum" and a["Threshold"] == 1 for a in errors.values())
    queues = set(resources_of_type(template, "AWS::SQS::Queue"))
    waiting = {n: a for n, a in alarms.items() if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"}
    assert queues and _alarmed_resources(waiting, "AWS/SQS", "QueueName") == queues
    assert all(a["Statistic"] == "Maximum" and a["Threshold"] == 1 for a in waiting.values())


@pytest.mark.parametrize("stage", ["dev", "prod", "mm"])
def test_every_asynchronously_invoked_function_keeps_its_failures(stacks, stage: str) -> None:
    """A function an EventBridge rule or a schedule invokes (asynchronously) sends the events
    it fails on to an encrypted queue (an on-failure destination), instead of Lambda
    discarding them after its retries."""
    template = _pipeline(stacks, stage)
    targets = [t for r in resources_of_type(template, "AWS::Events::Rule").values() for t in r["Properties"].get("Targets", [])]
    targets += [s["Properties"]["Target"] for s in resources_of_type(template, "AWS::Scheduler::Schedule").values()]
    invoked = {t["Arn"]["Fn::GetAtt"][0] for t in targets if "Fn::GetAtt" in t["Arn"]
               and template["Resources"][t["Arn"]["Fn::GetAtt"][0]]["Type"] == "AWS::Lambda::Function"}
    assert invoked  # retrain everywhere, approval in prod
    configs = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
               for c in resources_of_type(template, "AWS::Lambda::EventInvokeConfig").values()}
    assert set(configs) == invoked
    for config in configs.values():
        queue = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
        assert "KmsMasterKeyId" in template["Resources"][queue]["Properties"]
        assert config["MaximumRetryAttempts"] == 2 and config["MaximumEventAgeInSeconds"] == 6 * 3600
