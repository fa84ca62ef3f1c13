"""retrain (storm protection) and prepare_monitoring handlers against moto, malformed events included."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from tests.conftest import FakeLambdaContext, load_lambda

retrain = load_lambda("retrain")
prepare = load_lambda("prepare_monitoring")
ROLE = "arn:aws:iam::123456789012:role/r"
WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
NOW = datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc)
SOURCES = {"p-drift": "drift-alarm", "p-quality-f1": "quality-alarm"}


@pytest.fixture
def aws(aws_credentials):
    with mock_aws():
        retrain._sfn.cache_clear()
        prepare._client.cache_clear()
        yield


@pytest.fixture
def machine(aws) -> str:
    return boto3.client("stepfunctions").create_state_machine(name="p-training", definition=json.dumps(WAIT),
                                                               roleArn=ROLE)["stateMachineArn"]


def _alarm(name: str = "p-drift", state: str = "ALARM") -> dict:
    return {"version": "0", "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": name, "state": {"value": state, "reason": "Threshold Crossed: 1 datapoint"}}}


def _decide(event: dict, machine: str, now: datetime = NOW) -> dict:
    return retrain.decide(event, state_machine_arn=machine, alarm_sources=SOURCES, window_hours=24, now=now)


def _stop_all(machine: str) -> None:
    sfn = boto3.client("stepfunctions")
    for execution in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])


def test_alarm_starts_one_run_with_the_trigger_recorded(machine: str) -> None:
    outcome = _decide(_alarm(), machine)
    assert outcome["started"] and outcome["source"] == "drift-alarm"
    described = boto3.client("stepfunctions").describe_execution(executionArn=outcome["execution"])
    assert json.loads(described["input"]) == {"trigger": {"source": "drift-alarm",
                                                          "reason": "p-drift: Threshold Crossed: 1 datapoint"}}
    assert described["name"] == "alarm-20261123T0000"


def test_no_second_run_while_one_is_running(machine: str) -> None:
    assert _decide(_alarm(), machine)["started"]
    refused = _decide(_alarm("p-quality-f1"), machine, NOW + timedelta(days=2))
    assert not refused["started"] and "is running" in refused["reason"]
    scheduled = _decide({"source": "schedule", "reason": "weekly"}, machine, NOW + timedelta(days=2))
    assert not scheduled["started"] and "is running" in scheduled["reason"]


def test_at_most_one_alarm_run_per_window(machine: str) -> None:
    assert _decide(_alarm(), machine)["started"]
    _stop_all(machine)  # the first run has ended; the window has not
    again = _decide(_alarm("p-quality-f1"), machine, NOW + timedelta(hours=5))
    assert not again["started"] and "already started in this window" in again["reason"]
    _stop_all(machine)
    assert _decide(_alarm(), machine, NOW + timedelta(days=1))["started"]  # next window


def test_alarm_back_to_ok_does_nothing(machine: str) -> None:
    assert _decide(_alarm(state="OK"), machine) == {"started": False, "reason": "p-drift is OK, not ALARM"}
    assert boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []


def test_schedule_starts_a_run(machine: str) -> None:
    outcome = _decide({"source": "schedule", "reason": "weekly"}, machine)
    assert outcome["started"] and outcome["source"] == "schedule"


@pytest.mark.parametrize(("event", "expected"), [
    ({"source": "cron"}, "source"),
    (_alarm("someone-elses-alarm"), "detail.alarmName: 'someone-elses-alarm' does not trigger retraining; allowed: p-drift"),
    ({"detail-type": "CloudWatch Alarm State Change", "detail": {"state": {"value": "ALARM"}}}, "alarmName"),
])
def test_malformed_events_name_the_field(machine: str, monkeypatch: pytest.MonkeyPatch, event: dict, expected: str) -> None:
    monkeypatch.setenv("STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("ALARM_SOURCES", json.dumps(SOURCES))
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        retrain.handler(event, FakeLambdaContext())


# ---------------------------------------------------------------- prepare_monitoring
EVENT = {"endpoint": "ep", "model_package_group": "g", "window_hours": 24,
         "capture_uri": "s3://mon/data-capture/", "output_uri": "s3://mon/monitoring/", "execution": "run-1",
         "batch_uri": "s3://art/runs/", "input": {}}


def _registry(*servings: str | None) -> None:
    """One version per entry, oldest first, each trained on runs/r<n>/train/ and serving as given."""
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    for number, serving in enumerate(servings or ("realtime since 2026-11-01T10:00:00Z",), start=1):
        sagemaker.create_model_package(
            ModelPackageGroupName="g", ModelApprovalStatus="Approved",
            InferenceSpecification={"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"]},
            CustomerMetadataProperties={"train_data": f"s3://cur/breast_cancer/runs/r{number}/train/",
                                        **({"serving": serving} if serving else {})})


def test_window_lists_captured_objects_into_a_manifest(aws) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="mon", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    _registry()
    for key in ("data-capture/ep/AllTraffic/2026/11/23/09/a.jsonl", "data-capture/ep/AllTraffic/2026/11/23/10/b.jsonl",
                "data-capture/other/AllTraffic/2026/11/23/10/c.jsonl"):
        s3.put_object(Bucket="mon", Key=key, Body=b"{}")
    result = prepare.prepare(prepare.Event.model_validate(EVENT), datetime.now(timezone.utc))
    assert result["has_data"] and result["objects"] == 2 and result["baseline"] == "s3://cur/breast_cancer/runs/r1/train/"
    assert result["report"] == "s3://mon/monitoring/reports/run-1/"
    manifest = json.loads(s3.get_object(Bucket="mon", Key="monitoring/manifests/run-1.json")["Body"].read())
    assert manifest == [{"prefix": "s3://mon/"}, "data-capture/ep/AllTraffic/2026/11/23/09/a.jsonl",
                        "data-capture/ep/AllTraffic/2026/11/23/10/b.jsonl"]
    later = prepare.prepare(prepare.Event.model_validate(EVENT), datetime.now(timezone.utc) + timedelta(days=2))
    assert later == {"has_data": False, "reason": "ep captured nothing in the last 24 h"}


def test_a_batch_runs_window_is_its_transform_output(aws) -> None:
    s3 = boto3.client("s3")
    for bucket in ("mon", "art"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    _registry("batch since 2026-11-01T10:00:00Z", "realtime since 2026-11-02T10:00:00Z")
    s3.put_object(Bucket="art", Key="runs/r2/transform/rows.csv.out", Body=b"1,2,0.9\n")
    s3.put_object(Bucket="mon", Key="data-capture/ep/AllTraffic/2026/11/23/09/a.jsonl", Body=b"{}")  # not this run's
    batch = {**EVENT, "input": {"batch_output": "s3://art/runs/r2/transform/",
                                "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "arn:aws:states:eu-west-1:1:execution:t:e"}}
    result = prepare.prepare(prepare.Event.model_validate(batch), datetime.now(timezone.utc))
    assert result["has_data"] and result["source"] == "batch" and result["objects"] == 1
    assert result["baseline"] == "s3://cur/breast_cancer/runs/r1/train/"  # the batch model's, not the endpoint's
    manifest = json.loads(s3.get_object(Bucket="mon", Key="monitoring/manifests/run-1.json")["Body"].read())
    assert manifest == [{"prefix": "s3://art/"}, "runs/r2/transform/rows.csv.out"]
    with pytest.raises(ValueError, match="input.batch_output: must be a batch transform output of this stage"):
        prepare.prepare(prepare.Event.model_validate({**EVENT, "input": {"batch_output": "s3://mon/monitoring/"}}),
                        datetime.now(timezone.utc))


def test_the_baseline_is_the_serving_versions_training_split(aws) -> None:
    """The newest version is approved but never served (its update rolled back): the
    endpoint still serves r1's model, so r1's training split is the baseline."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="mon", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="mon", Key="data-capture/ep/AllTraffic/2026/11/23/09/a.jsonl", Body=b"{}")
    _registry("realtime since 2026-11-01T10:00:00Z", None)
    result = prepare.prepare(prepare.Event.model_validate(EVENT), datetime.now(timezone.utc))
    assert result["baseline"] == "s3://cur/breast_cancer/runs/r1/train/"


def test_no_serving_model_means_nothing_to_compare(aws) -> None:
    boto3.client("s3").create_bucket(Bucket="mon", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    _registry(None)
    result = prepare.prepare(prepare.Event.model_validate(EVENT), datetime.now(timezone.utc))
    assert result == {"has_data": False, "reason": "no version of g serves in realtime mode yet to compare against"}


def test_malformed_monitoring_event(aws) -> None:
    with pytest.raises(ValueError, match="capture_uri"):
        prepare.handler({**EVENT, "capture_uri": "data-capture/"}, FakeLambdaContext())
