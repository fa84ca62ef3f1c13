"""The regression example (config/examples/regression.yaml) end to end offline: the data phase
on the diabetes sample, built-in XGBoost with reg:squarederror, the evaluation's regression
metrics, the RMSE/R² gate, registration, a real-time endpoint answering with a number. A second
run meets the first run's serving version as champion, compared with the relative margin."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.conftest import REGRESSION_EXAMPLE
from tests.test_offline_pipeline import HAPPY_PATH, _packages
from tools.offline.runner import OfflineStage

GROUP = "demo-regression-models"
ENDPOINT = "demo-regression-endpoint"


@pytest.fixture(scope="module")
def regression(cloud_assembly_dir: Path):
    with OfflineStage(cloud_assembly_dir, REGRESSION_EXAMPLE) as stage:  # checks cost tags on exit
        yield stage


def _test_rows(test_split: str) -> list[list[str]]:
    bucket, prefix = test_split.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3")
    return [line.split(",") for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
            for line in s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode().splitlines()]


def test_regression_example_trains_gates_registers_and_serves(regression: OfflineStage) -> None:
    run = regression.run({})
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.visited() == HAPPY_PATH
    output = run.output
    assert output["run"]["problem_type"] == "regression"
    assert output["data"]["rules_checked"] == 8
    assert {name: len(records) for name, records in regression.feature_store.records.items()} == {
        "demo-regression-patient-baseline": 442, "demo-regression-blood-serum": 442}
    # trained with the objective and eval metric the dataset implies (the example leaves them out)
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=output["training"]["job_name"])
    assert job["HyperParameters"]["objective"] == "reg:squarederror" and job["HyperParameters"]["eval_metric"] == "rmse"
    # the evaluation's regression metrics, and the gate on them (thresholds set with headroom, see the example)
    metrics = output["gate"]["candidate"]
    assert set(metrics) >= {"mse", "rmse", "mae", "r2"}
    assert 40 < metrics["rmse"] < 60 and 0.35 < metrics["r2"] < 0.6 and metrics["mse"] == pytest.approx(metrics["rmse"] ** 2)
    assert output["gate"]["summary"].startswith("Metric gate passed: rmse ")
    (package,) = _packages(GROUP)
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=package["ModelPackageArn"])
    bucket, key = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].removeprefix("s3://").split("/", 1)
    assert "regression_metrics" in json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert boto3.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"
    # a client sends features as text/csv and gets one number per row: the predicted progression score
    rows = _test_rows(output["run"]["s3"]["test"])[:3]
    predictions = regression.invoke(ENDPOINT, [[float(v) for v in row[1:]] for row in rows])
    assert len(predictions) == 3 and all(25 <= p <= 346 for p in predictions)
    assert regression.iam_report()["missing"] == {}


def _serving(stage: OfflineStage) -> None:
    """A version serves: pytest-xdist may run a test on a worker where the first one did not run."""
    if not _packages(GROUP):
        assert stage.run({}).status == "SUCCEEDED"


def test_second_run_is_compared_with_the_serving_version_by_relative_margin(regression: OfflineStage) -> None:
    _serving(regression)
    first = _packages(GROUP)[-1]["ModelPackageArn"]
    run = regression.run({"trigger": {"source": "schedule", "reason": "weekly"}})
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    gate = run.output["gate"]
    assert gate["champion"]["model_package_arn"] == first
    assert set(gate["champion"]["metrics"]) >= {"rmse", "r2"}
    assert "champion" in gate["summary"] and "(margin 5%: <= " in gate["summary"]  # rmse: 5 % of the champion's
    assert "(margin 0.02): ok" in gate["summary"]  # r2: the absolute margin
    assert "Update endpoint (blue-green)" in run.visited()


def test_a_much_worse_challenger_is_refused_by_the_gate(regression: OfflineStage) -> None:
    _serving(regression)
    versions = len(_packages(GROUP))
    run = regression.run({"hyperparameters": {"num_round": 5}})
    assert run.status == "FAILED" and run.error == "MetricGateFailed", (run.error, run.cause)
    assert "rmse" in run.cause and "FAILED" in run.cause
    assert len(_packages(GROUP)) == versions
