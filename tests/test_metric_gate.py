"""Metric gate: thresholds and champion/challenger, decided purely and read from S3/registry."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.conftest import FakeLambdaContext, load_lambda

gate = load_lambda("metric_gate")
T = gate.Threshold


def test_all_thresholds_met_without_champion() -> None:
    decision = gate.decide({"f1": 0.95, "auc": 0.99}, [T(metric="f1", direction=">=", value=0.9)], {}, 0.01)
    assert decision["passed"] is True
    assert decision["summary"] == "Metric gate passed: f1 0.9500 >= 0.9: ok"


def test_threshold_missed() -> None:
    decision = gate.decide({"f1": 0.85}, [T(metric="f1", direction=">=", value=0.9)], {}, 0.01)
    assert decision["passed"] is False and "f1 0.8500 >= 0.9: FAILED" in decision["summary"]


def test_lower_is_better_metrics() -> None:
    thresholds = [T(metric="rmse", direction="<=", value=60)]
    assert gate.decide({"rmse": 55.0}, thresholds, {}, 0)["passed"] is True
    assert gate.decide({"rmse": 61.0}, thresholds, {}, 0)["passed"] is False
    # champion 50, 4 % margin: the challenger may be at most 50 + 2 = 52 (the absolute margin does not apply)
    assert gate.decide({"rmse": 51.5}, thresholds, {"rmse": 50.0}, 0.01, 4)["passed"] is True
    decision = gate.decide({"rmse": 52.5}, thresholds, {"rmse": 50.0}, 0.01, 4)
    assert decision["passed"] is False
    assert decision["summary"] == ("Metric gate failed: rmse 52.5000 <= 60: ok; champion 50.0000 (margin 4%: <= 52.0000): "
                                   "WORSE")


def test_error_metrics_take_a_relative_margin_at_any_scale() -> None:
    """mse on the diabetes data is about 3,000: an absolute margin capped at 1 would mean "no worse at all"."""
    thresholds = [T(metric="mse", direction="<=", value=4000), T(metric="mae", direction="<=", value=60)]
    champion = {"mse": 3000.0, "mae": 45.0}
    assert gate.decide({"mse": 3140.0, "mae": 47.0}, thresholds, champion, 0.01, 5)["passed"] is True  # within 5 %
    failed = gate.decide({"mse": 3160.0, "mae": 47.0}, thresholds, champion, 0.01, 5)
    assert [c["passed"] for c in failed["checks"]] == [False, True]
    assert "champion 3000.0000 (margin 5%: <= 3150.0000): WORSE" in failed["summary"]
    # no relative margin given: an error may not be worse than the champion's at all
    assert gate.decide({"mse": 3000.5, "mae": 45.0}, thresholds, champion, 0.01)["passed"] is False
    assert gate.decide({"mse": 2999.0, "mae": 44.0}, thresholds, champion, 0.01)["passed"] is True


def test_r2_is_bounded_and_takes_the_absolute_margin() -> None:
    thresholds = [T(metric="r2", direction=">=", value=0.3)]
    assert gate.decide({"r2": 0.445}, thresholds, {"r2": 0.45}, 0.01, 50)["passed"] is True
    decision = gate.decide({"r2": 0.435}, thresholds, {"r2": 0.45}, 0.01, 50)
    assert decision["passed"] is False and "champion 0.4500 (margin 0.01): WORSE" in decision["summary"]


def test_false_rates_are_better_when_lower() -> None:
    thresholds = [T(metric="false_positive_rate", direction="<=", value=0.1)]
    assert gate.decide({"false_positive_rate": 0.05}, thresholds, {"false_positive_rate": 0.045}, 0.01)["passed"] is True
    assert gate.decide({"false_positive_rate": 0.06}, thresholds, {"false_positive_rate": 0.045}, 0.01)["passed"] is False


def test_the_gate_and_the_config_agree_on_metric_kinds() -> None:
    from mlops.config import LOWER_IS_BETTER, METRICS, UNBOUNDED_METRICS

    known = set().union(*METRICS.values())
    assert gate.BOUNDED_METRICS == known - UNBOUNDED_METRICS
    assert gate.LOWER_IS_BETTER == LOWER_IS_BETTER


def test_worse_than_champion_beyond_margin_fails_even_above_threshold() -> None:
    thresholds = [T(metric="f1", direction=">=", value=0.9)]
    decision = gate.decide({"f1": 0.93}, thresholds, {"f1": 0.96}, 0.01)
    assert decision["passed"] is False
    assert "champion 0.9600 (margin 0.01): WORSE" in decision["summary"]
    assert gate.decide({"f1": 0.955}, thresholds, {"f1": 0.96}, 0.01)["passed"] is True


def test_missing_metric_fails_and_says_what_exists() -> None:
    decision = gate.decide({"mse": 1.0}, [T(metric="f1", direction=">=", value=0.9)], {}, 0)
    assert decision["passed"] is False and "f1 missing from the evaluation (have: mse)" in decision["summary"]



def _evaluation(f1: float) -> bytes:
    return json.dumps({"binary_classification_metrics": {
        "f1": {"value": f1, "standard_deviation": 0.01},
        "auc": {"value": "NaN", "standard_deviation": "NaN"},
        "confusion_matrix": {"0": {"0": 1, "1": 0}, "1": {"0": 0, "1": 1}},
    }}).encode()


@pytest.fixture
def aws(aws_credentials):
    gate._client.cache_clear()
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield s3, boto3.client("sagemaker")
    gate._client.cache_clear()


def _event(**overrides) -> dict:
    return {"evaluation_uri": "s3://artifacts/runs/r2/evaluation/evaluation.json",
            "thresholds": [{"metric": "f1", "direction": ">=", "value": 0.9}],
            "champion_margin": 0.01, "model_package_group": "mlops-demo-dev-models",
            "deployment_mode": "realtime", **overrides}


def _register(sagemaker, s3, version_uri: str, f1: float, status: str, **properties: str) -> None:
    bucket, key = version_uri[5:].split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=_evaluation(f1))
    sagemaker.create_model_package(
        ModelPackageGroupName="mlops-demo-dev-models", ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "x.dkr.ecr.eu-west-1.amazonaws.com/xgb:1", "ModelDataUrl": "s3://artifacts/m.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": version_uri}}},
        **({"CustomerMetadataProperties": properties} if properties else {}),
    )


def test_handler_without_registry_group_has_no_champion(aws) -> None:
    s3, _ = aws
    s3.put_object(Bucket="artifacts", Key="runs/r2/evaluation/evaluation.json", Body=_evaluation(0.95))
    decision = gate.handler(_event(), FakeLambdaContext())
    assert decision["passed"] is True and decision["candidate"] == {"f1": 0.95}
    assert decision["champion"] == {"model_package_arn": None, "metrics": {}}


def test_champion_is_the_version_serving_in_the_runs_mode(aws) -> None:
    s3, sagemaker = aws
    sagemaker.create_model_package_group(ModelPackageGroupName="mlops-demo-dev-models")
    _register(sagemaker, s3, "s3://artifacts/runs/r0/evaluation/evaluation.json", 0.97, "Approved",
              serving="realtime since 2026-11-01T10:00:00Z")
    _register(sagemaker, s3, "s3://artifacts/runs/r1/evaluation/evaluation.json", 0.98, "Approved",
              serving="batch since 2026-11-02T10:00:00Z")
    _register(sagemaker, s3, "s3://artifacts/runs/r9/evaluation/evaluation.json", 0.99, "Rejected")
    s3.put_object(Bucket="artifacts", Key="runs/r2/evaluation/evaluation.json", Body=_evaluation(0.965))
    decision = gate.handler(_event(), FakeLambdaContext())
    # the rejected 0.99 is no champion, nor the 0.98 that serves batch runs
    assert decision["champion"]["metrics"] == {"f1": 0.97}
    assert decision["champion"]["model_package_arn"].endswith("/1")
    assert decision["passed"] is True
    batch = gate.handler(_event(deployment_mode="batch"), FakeLambdaContext())
    assert batch["champion"]["metrics"] == {"f1": 0.98}
    assert batch["passed"] is False and "champion 0.9800 (margin 0.01): WORSE" in batch["summary"]


def test_an_approved_version_that_never_served_is_no_champion(aws) -> None:
    """A blue/green update that rolled back leaves its version Approved but not serving:
    the next run is compared with what the endpoint kept serving."""
    s3, sagemaker = aws
    sagemaker.create_model_package_group(ModelPackageGroupName="mlops-demo-dev-models")
    _register(sagemaker, s3, "s3://artifacts/runs/r0/evaluation/evaluation.json", 0.92, "Approved",
              serving="realtime since 2026-11-01T10:00:00Z")
    _register(sagemaker, s3, "s3://artifacts/runs/r1/evaluation/evaluation.json", 0.99, "Approved",
              rolled_back="ep kept serving cfg-0 (execution r1)")
    s3.put_object(Bucket="artifacts", Key="runs/r2/evaluation/evaluation.json", Body=_evaluation(0.93))
    decision = gate.handler(_event(), FakeLambdaContext())
    assert decision["champion"]["metrics"] == {"f1": 0.92} and decision["passed"] is True


def test_approved_versions_none_serving_means_no_champion(aws) -> None:
    s3, sagemaker = aws
    sagemaker.create_model_package_group(ModelPackageGroupName="mlops-demo-dev-models")
    _register(sagemaker, s3, "s3://artifacts/runs/r0/evaluation/evaluation.json", 0.99, "Approved")
    s3.put_object(Bucket="artifacts", Key="runs/r2/evaluation/evaluation.json", Body=_evaluation(0.93))
    decision = gate.handler(_event(), FakeLambdaContext())
    assert decision["champion"] == {"model_package_arn": None, "metrics": {}}


def test_malformed_event(aws) -> None:
    with pytest.raises(ValueError, match="malformed metric-gate event"):
        gate.handler(_event(thresholds=[]), FakeLambdaContext())
    with pytest.raises(ValueError, match="deployment_mode"):
        gate.handler(_event(deployment_mode="canary"), FakeLambdaContext())


def test_regression_challenger_within_the_relative_margin_of_the_champion(aws) -> None:
    s3, sagemaker = aws
    sagemaker.create_model_package_group(ModelPackageGroupName="mlops-demo-dev-models")
    regression = lambda rmse, r2: json.dumps({"regression_metrics": {  # noqa: E731
        "mse": {"value": rmse ** 2, "standard_deviation": "NaN"}, "rmse": {"value": rmse, "standard_deviation": "NaN"},
        "r2": {"value": r2, "standard_deviation": "NaN"}}}).encode()
    s3.put_object(Bucket="artifacts", Key="runs/r0/evaluation/evaluation.json", Body=regression(54.0, 0.45))
    sagemaker.create_model_package(
        ModelPackageGroupName="mlops-demo-dev-models", ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                      "S3Uri": "s3://artifacts/runs/r0/evaluation/evaluation.json"}}},
        CustomerMetadataProperties={"serving": "realtime since 2026-11-01T10:00:00Z"})
    s3.put_object(Bucket="artifacts", Key="runs/r2/evaluation/evaluation.json", Body=regression(55.5, 0.44))
    thresholds = [{"metric": "rmse", "direction": "<=", "value": 60}, {"metric": "r2", "direction": ">=", "value": 0.35}]
    decision = gate.handler(_event(thresholds=thresholds, champion_margin_percent=5), FakeLambdaContext())
    assert decision["passed"] is True, decision["summary"]
    assert "rmse 55.5000 <= 60: ok; champion 54.0000 (margin 5%: <= 56.7000): ok" in decision["summary"]
    assert "r2 0.4400 >= 0.35: ok; champion 0.4500 (margin 0.01): ok" in decision["summary"]
    strict = gate.handler(_event(thresholds=thresholds, champion_margin_percent=2), FakeLambdaContext())
    assert strict["passed"] is False and "(margin 2%: <= 55.0800): WORSE" in strict["summary"]
