"""The multiclass example (config/examples/multiclass.yaml) end to end offline: the data phase on
the wine sample (3 cultivars), the team's own scikit-learn script (models/wine_sklearn/train.py)
trained under SageMaker's training contract, its predictions on the test split from a batch
transform through its own inference handlers, the evaluation's multiclass metrics, the
accuracy/macro-F1 gate, registration, and a real-time endpoint answering each row with its three
class probabilities."""

from __future__ import annotations

import io
import json
import tarfile
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


def _raw_with_undeclared_columns() -> None:
    """The raw file as a lab might export it: a lot id after the first column and free-text notes
    at the end, neither declared (the example says ``data.extra_columns: ignore``)."""
    location = boto3.client("databrew").describe_dataset(Name="demo-multiclass-raw")["Input"]["S3InputDefinition"]
    s3 = boto3.client("s3")
    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=location["Bucket"], Prefix=location["Key"])["Contents"])
    rows = [line.split(",") for line in s3.get_object(Bucket=location["Bucket"], Key=key)["Body"].read().decode().splitlines()]
    rows = [row[:1] + (["lot_id"] if n == 0 else [f"L{n:04d}"]) + row[1:] + (["notes"] if n == 0 else ["fine"])
            for n, row in enumerate(rows)]
    s3.put_object(Bucket=location["Bucket"], Key=key, Body="\n".join(",".join(row) for row in rows).encode() + b"\n")


def test_multiclass_example_trains_gates_registers_and_serves_class_probabilities(multiclass: OfflineStage) -> None:
    _raw_with_undeclared_columns()
    run = multiclass.run({})
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.visited() == HAPPY_PATH
    output = run.output
    assert output["run"]["problem_type"] == "multiclass_classification"
    # the schema check let the undeclared columns pass, the ETL dropped them: label and 13 features
    assert all(len(row) == 14 for row in _test_rows(output["run"]["s3"]["test"]))
    assert {name: len(records) for name, records in multiclass.feature_store.records.items()} == {
        "demo-multiclass-wine-chemistry": 178}
    # the script ran in the scikit-learn image with SageMaker's script-mode hyperparameters
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
    job = sagemaker.describe_training_job(TrainingJobName=output["training"]["job_name"])
    assert "/sagemaker-scikit-learn:1.9-0-cpu-py3" in job["AlgorithmSpecification"]["TrainingImage"]
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert {job["HyperParameters"][k] for k in ("C", "max_iter")} == {"1.0", "1000"}
    bucket, key = output["training"]["model_data"].removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as archive:
        assert archive.getnames() == ["model.joblib"]  # what train.py saved to SM_MODEL_DIR
    # the test split was predicted by the model's own handlers, one line of probabilities per row
    bucket, prefix = output["predictions"]["output"].removeprefix("s3://").split("/", 1)
    lines = [line for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
             for line in s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode().splitlines()]
    assert len(lines) == len(_test_rows(output["run"]["s3"]["test"])) and all(len(line.split(",")) == 3 for line in lines)
    metrics = output["gate"]["candidate"]
    assert set(metrics) >= {"accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "macro_auc"}
    assert metrics["accuracy"] >= 0.85 and metrics["macro_f1"] >= 0.85
    assert output["gate"]["summary"].startswith("Metric gate passed: accuracy ")
    (package,) = _packages(GROUP)
    described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "train.py"
    bucket, key = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].removeprefix("s3://").split("/", 1)
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    confusion = report["multiclass_classification_metrics"]["confusion_matrix"]
    assert sorted(confusion) == ["0", "1", "2"] and all(sorted(row) == ["0", "1", "2"] for row in confusion.values())
    # a client sends features as text/csv; the script's predict_fn answers each row's class probabilities
    rows = _test_rows(output["run"]["s3"]["test"])
    answers = multiclass.invoke(ENDPOINT, [[float(v) for v in row[1:]] for row in rows])
    assert len(answers) == len(rows) and all(len(p) == 3 and sum(p) == pytest.approx(1, abs=1e-4) for p in answers)
    predicted = [max(range(3), key=p.__getitem__) for p in answers]
    assert sum(int(float(row[0])) == label for row, label in zip(rows, predicted)) >= 0.85 * len(rows)
    assert multiclass.iam_report()["missing"] == {}


def test_a_batch_deployment_keeps_every_class_probability(multiclass: OfflineStage) -> None:
    """Batch over the test split joins each row's answer to it; with three probabilities per row the
    output filter keeps the label and all three ("$[0,14:]": label, 13 features, then the answer)."""
    from tools.offline.jobs import _select

    processing = multiclass.definition["States"]["Run batch transform"]["Parameters"]["DataProcessing"]
    assert processing == {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,14:]"}
    joined = ["1", *(f"f{i}" for i in range(13)), "0.1", "0.7", "0.2"]
    assert _select(joined, processing["OutputFilter"]) == ["1", "0.1", "0.7", "0.2"]


def test_a_weak_challenger_is_refused_by_the_gate(multiclass: OfflineStage) -> None:
    if not _packages(GROUP):  # pytest-xdist may run this test on a worker where the first one did not run
        assert multiclass.run({}).status == "SUCCEEDED"
    versions = len(_packages(GROUP))
    # regularized to near-uniform probabilities, the model cannot tell the cultivars apart
    run = multiclass.run({"hyperparameters": {"C": 0.0001}})
    assert run.status == "FAILED" and run.error == "MetricGateFailed", (run.error, run.cause)
    assert "champion" in run.cause
    assert len(_packages(GROUP)) == versions
