"""The multiclass example (config/examples/multiclass.yaml) end to end offline: the data phase on
the wine sample (3 cultivars), built-in XGBoost with multi:softprob and num_class 3, the
evaluation's multiclass metrics, the accuracy/macro-F1 gate, registration, and a real-time
endpoint answering each row with its three class probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.conftest import MULTICLASS_EXAMPLE
from tests.test_offline_pipeline import HAPPY_PATH, _packages
from tests.test_offline_regression import _test_rows
from tools.offline.runner import OfflineStage

GROUP = "demo-multiclass-models"
ENDPOINT = "demo-multiclass-endpoint"


@pytest.fixture(scope="module")
def multiclass(cloud_assembly_dir: Path):
    with OfflineStage(cloud_assembly_dir, MULTICLASS_EXAMPLE) as stage:  # checks cost tags on exit
        yield stage


def test_multiclass_example_trains_gates_registers_and_serves_class_probabilities(multiclass: OfflineStage) -> None:
    run = multiclass.run({})
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.visited() == HAPPY_PATH
    output = run.output
    assert output["run"]["problem_type"] == "multiclass_classification"
    assert {name: len(records) for name, records in multiclass.feature_store.records.items()} == {
        "demo-multiclass-wine-chemistry": 178}
    # the objective, eval metric and class count the dataset implies (the example leaves them out)
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=output["training"]["job_name"])
    assert {k: job["HyperParameters"][k] for k in ("objective", "eval_metric", "num_class")} == {
        "objective": "multi:softprob", "eval_metric": "mlogloss", "num_class": "3"}
    metrics = output["gate"]["candidate"]
    assert set(metrics) >= {"accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "macro_auc"}
    assert metrics["accuracy"] >= 0.85 and metrics["macro_f1"] >= 0.85
    assert output["gate"]["summary"].startswith("Metric gate passed: accuracy ")
    (package,) = _packages(GROUP)
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=package["ModelPackageArn"])
    bucket, key = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].removeprefix("s3://").split("/", 1)
    report = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    confusion = report["multiclass_classification_metrics"]["confusion_matrix"]
    assert sorted(confusion) == ["0", "1", "2"] and all(sorted(row) == ["0", "1", "2"] for row in confusion.values())
    # a client sends features as text/csv; the container answers each row's class probabilities
    rows = _test_rows(output["run"]["s3"]["test"])
    answers = multiclass.invoke(ENDPOINT, [[float(v) for v in row[1:]] for row in rows])
    assert len(answers) == len(rows) and all(len(p) == 3 and sum(p) == pytest.approx(1, abs=1e-4) for p in answers)
    predicted = [max(range(3), key=p.__getitem__) for p in answers]
    assert sum(int(float(row[0])) == label for row, label in zip(rows, predicted)) >= 0.85 * len(rows)
    assert multiclass.iam_report()["missing"] == {}


def test_a_weak_challenger_is_refused_by_the_gate(multiclass: OfflineStage) -> None:
    versions = len(_packages(GROUP))
    # one stump per class cannot tell three cultivars apart as well as the serving model
    run = multiclass.run({"hyperparameters": {"num_round": 1, "max_depth": 1, "eta": 0.01}})
    assert run.status == "FAILED" and run.error == "MetricGateFailed", (run.error, run.cause)
    assert "champion" in run.cause
    assert len(_packages(GROUP)) == versions
