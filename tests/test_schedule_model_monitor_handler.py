"""schedule_model_monitor handler against moto (monitoring schedules through the offline
adapter's patch 9, which refuses a schedule whose job definition does not exist)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.conftest import FakeLambdaContext, load_lambda
from tools.offline import adapter

handler = load_lambda("schedule_model_monitor")
BUCKET = "mlops-demo-dev-curated"
SUGGESTED = {
    "version": 0.0,
    "features": [{"name": f"_c{index}", "inferred_type": "Integral" if index == 0 else "Fractional",
                  "completeness": 1.0} for index in range(4)],
    "monitoring_config": {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
                          "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                                       "comparison_method": "Robust"}},
}


def _event(version: str = "aaaa1111", **changes) -> dict:
    return {
        "endpoint": "mlops-demo-dev-endpoint", "prefix": "mlops-demo-dev", "version": version,
        "baseline_uri": f"s3://{BUCKET}/baseline/{version}/", "output_uri": "s3://mlops-demo-dev-monitoring/model-monitor/",
        "image_uri": "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        "role_arn": "arn:aws:iam::123456789012:role/monitor", "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/k",
        "instance_type": "ml.m5.large", "volume_size_gb": 30, "max_runtime_seconds": 3600, "network_isolation": True,
        "schedule_expression": "cron(0 0 ? * * *)", "drift_threshold": 0.25, "problem_type": "binary_classification",
        "model_quality": None, **changes,
    }


QUALITY = {"ground_truth_uri": "s3://mlops-demo-dev-monitoring/monitoring/ground-truth/", "probability_threshold": 0.5,
           "thresholds": [{"metric": "f1", "direction": ">=", "value": 0.9}]}


@pytest.fixture
def aws(aws_credentials):
    with mock_aws(), adapter.patched(adapter.Hooks()):
        handler._client.cache_clear()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for version in ("aaaa1111", "bbbb2222"):
            s3.put_object(Bucket=BUCKET, Key=f"baseline/{version}/constraints.json", Body=json.dumps(SUGGESTED))
            s3.put_object(Bucket=BUCKET, Key=f"baseline/{version}/statistics.json", Body="{}")
        yield boto3.client("sagemaker")


def _run(event: dict) -> dict:
    return handler.handler(event, FakeLambdaContext())


def _read(key: str) -> dict:
    return json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_first_run_creates_the_schedule_on_a_tuned_baseline(aws) -> None:
    result = _run(_event())
    assert result["data_quality"] == {"schedule": "mlops-demo-dev-data-quality", "job_definition": "mlops-demo-dev-dq-aaaa1111",
                                      "action": "created", "replaced": None}
    schedule = aws.describe_monitoring_schedule(MonitoringScheduleName="mlops-demo-dev-data-quality")
    assert schedule["MonitoringScheduleConfig"] == {
        "ScheduleConfig": {"ScheduleExpression": "cron(0 0 ? * * *)"},
        "MonitoringJobDefinitionName": "mlops-demo-dev-dq-aaaa1111", "MonitoringType": "DataQuality"}
    definition = aws.describe_data_quality_job_definition(JobDefinitionName="mlops-demo-dev-dq-aaaa1111")
    assert definition["DataQualityBaselineConfig"]["ConstraintsResource"]["S3Uri"] == (
        f"s3://{BUCKET}/baseline/aaaa1111/monitoring-constraints.json")
    assert definition["DataQualityBaselineConfig"]["StatisticsResource"]["S3Uri"] == (
        f"s3://{BUCKET}/baseline/aaaa1111/statistics.json")
    assert definition["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert definition["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"].endswith(":key/k")
    assert definition["DataQualityJobOutputConfig"]["KmsKeyId"].endswith(":key/k")
    assert definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlops-demo-dev-endpoint"
    tuned = _read("baseline/aaaa1111/monitoring-constraints.json")
    assert tuned["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.25
    assert tuned["features"][0]["inferred_type"] == "Fractional"  # the output column: a probability
    assert [f["inferred_type"] for f in tuned["features"][1:]] == ["Fractional"] * 3
    assert result["model_quality"] == {"removed": None}


def test_next_deployment_moves_the_schedule_and_deletes_the_old_definition(aws) -> None:
    _run(_event("aaaa1111"))
    result = _run(_event("bbbb2222"))
    assert result["data_quality"]["action"] == "updated" and result["data_quality"]["replaced"] == "mlops-demo-dev-dq-aaaa1111"
    schedule = aws.describe_monitoring_schedule(MonitoringScheduleName="mlops-demo-dev-data-quality")
    assert schedule["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == "mlops-demo-dev-dq-bbbb2222"
    names = [d["MonitoringJobDefinitionName"] for d in aws.list_data_quality_job_definitions()["JobDefinitionSummaries"]]
    assert names == ["mlops-demo-dev-dq-bbbb2222"]


def test_a_retried_task_changes_nothing(aws) -> None:
    _run(_event())
    again = _run(_event())
    assert again["data_quality"]["action"] == "updated" and again["data_quality"]["replaced"] == "mlops-demo-dev-dq-aaaa1111"
    assert len(aws.list_data_quality_job_definitions()["JobDefinitionSummaries"]) == 1


def test_ground_truth_adds_model_quality_with_the_business_thresholds(aws) -> None:
    result = _run(_event(model_quality=QUALITY))
    assert result["model_quality"]["schedule"] == "mlops-demo-dev-model-quality"
    definition = aws.describe_model_quality_job_definition(JobDefinitionName="mlops-demo-dev-mq-aaaa1111")
    assert definition["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    endpoint_input = definition["ModelQualityJobInput"]["EndpointInput"]
    assert endpoint_input["ProbabilityAttribute"] == "0" and endpoint_input["ProbabilityThresholdAttribute"] == 0.5
    assert "InferenceAttribute" not in endpoint_input
    assert definition["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"].endswith("/monitoring/ground-truth/")
    assert _read("baseline/aaaa1111/model-quality-constraints.json") == {"version": 0.0, "binary_classification_constraints": {
        "f1": {"threshold": 0.9, "comparison_operator": "LessThanThreshold"}}}


def test_regression_reads_the_value_and_flags_errors_above_the_threshold(aws) -> None:
    quality = {**QUALITY, "thresholds": [{"metric": "rmse", "direction": "<=", "value": 60}]}
    _run(_event(problem_type="regression", model_quality=quality))
    definition = aws.describe_model_quality_job_definition(JobDefinitionName="mlops-demo-dev-mq-aaaa1111")
    assert definition["ModelQualityJobInput"]["EndpointInput"]["InferenceAttribute"] == "0"
    assert _read("baseline/aaaa1111/model-quality-constraints.json")["regression_constraints"] == {
        "rmse": {"threshold": 60, "comparison_operator": "GreaterThanThreshold"}}
    assert _read("baseline/aaaa1111/monitoring-constraints.json")["features"][0]["inferred_type"] == "Integral"


def test_ground_truth_removed_from_config_removes_the_model_quality_schedule(aws) -> None:
    _run(_event("aaaa1111", model_quality=QUALITY))
    result = _run(_event("bbbb2222"))
    assert result["model_quality"] == {"removed": "mlops-demo-dev-model-quality"}
    with pytest.raises(aws.exceptions.ClientError, match="ResourceNotFound"):
        aws.describe_monitoring_schedule(MonitoringScheduleName="mlops-demo-dev-model-quality")
    assert aws.list_model_quality_job_definitions()["JobDefinitionSummaries"] == []


def test_empty_suggestion_fails_before_touching_the_schedule(aws) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key="baseline/aaaa1111/constraints.json",
                                  Body=json.dumps({"version": 0.0, "features": []}))
    with pytest.raises(ValueError, match="suggested no feature constraints"):
        _run(_event())
    with pytest.raises(aws.exceptions.ClientError, match="ResourceNotFound"):
        aws.describe_monitoring_schedule(MonitoringScheduleName="mlops-demo-dev-data-quality")


@pytest.mark.parametrize(("changes", "message"), [
    ({"drift_threshold": 0}, "drift_threshold: Input should be greater than 0"),
    ({"schedule_expression": "rate(1 day)"}, "schedule_expression: String should match pattern"),
    ({"model_quality": {**QUALITY, "probability_threshold": 1.5}}, "model_quality.probability_threshold"),
    ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
])
def test_malformed_event_names_the_field(aws, changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"malformed schedule-model-monitor event: {message}"):
        _run(_event(**changes))
