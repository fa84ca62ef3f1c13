"""The churn example (config/examples/churn.yaml) end to end offline: a dataset declared column by
column (an id, a date, two PII columns, categorical and numeric features, a text label in the
middle), the built-in XGBoost trained on a one-hot encoding fitted on the train split
(jobs/encode/encode.py), and an inference pipeline (that encoder, then XGBoost) behind an
endpoint that takes a raw row, categories as text."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest

from tests.conftest import CHURN_EXAMPLE
from tests.test_offline_pipeline import HAPPY_PATH, _packages
from tools.offline.runner import OfflineStage

GROUP = "demo-churn-models"
ENDPOINT = "demo-churn-endpoint"
FEATURES = ["plan", "region", "tenure_months", "monthly_charges", "support_calls", "contract"]


@pytest.fixture(scope="module")
def churn(cloud_assembly_dir: Path):
    with OfflineStage(cloud_assembly_dir, CHURN_EXAMPLE) as stage:  # checks cost tags on exit
        yield stage


def _rows(location: str) -> list[list[str]]:
    """Every CSV row under an S3 prefix (files in key order)."""
    bucket, prefix = location.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    return [row for key in keys
            for row in csv.reader(io.StringIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()))]


def test_churn_example_trains_on_the_declared_features_and_serves_raw_rows(churn: OfflineStage) -> None:
    run = churn.run({})
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    # the happy path, with the encoding between the data and the model
    assert run.visited() == [*HAPPY_PATH[:3], "Encode categorical features", *HAPPY_PATH[3:]]
    output = run.output
    # the training matrix: the label's class index ("no" 0, "yes" 1), then the six features, text
    # categories as they are; no id, no date, no PII
    test = _rows(output["run"]["s3"]["test"])
    assert {row[0] for row in test} == {"0", "1"} and all(len(row) == 1 + len(FEATURES) for row in test)
    assert {row[1] for row in test} <= {"basic", "standard", "premium"}
    assert {row[6] for row in test} <= {"monthly", "annual"}
    # the curated catalog copy keeps the id and the masked phone (SHA-256), never the email
    curated = output["run"]["s3"]["test"].removeprefix("s3://").split("/", 1)[0]
    catalog = _rows(f"s3://{curated}/catalog/churn/")
    header = catalog[0]
    assert "email" not in header and {"customer_id", "phone", "churned", *FEATURES} <= set(header)
    phones = {row[header.index("phone")] for row in catalog[1:] if row != header}
    assert all(len(phone) == 64 and "+44" not in phone for phone in phones)
    # the feature group is keyed by the customer id
    records = churn.feature_store.records["demo-churn-customer-profile"]
    assert len(records) == 1000 and all(customer.startswith("C") for customer in records)
    # XGBoost trained on the encoded splits: numbers only, the three categories one-hot
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
    job = sagemaker.describe_training_job(TrainingJobName=output["training"]["job_name"])
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert channels == {"train": output["run"]["s3"]["encoded_train"],
                        "validation": output["run"]["s3"]["encoded_validation"]}
    encoded = _rows(channels["train"])
    assert all(float(value) == float(value) for row in encoded for value in row)  # every cell a number
    bucket, key = output["run"]["s3"]["encoder_model"].removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as archive:
        encoding = json.load(archive.extractfile("encoding.json"))
    # plan (3), region (4) and contract (2) one-hot, the 3 numbers as they are: 12 columns, the label first
    assert encoding["encoded_features"] == 12 and all(len(row) == 13 for row in encoded)
    assert {position: len(values) for position, values in encoding["categorical"].items()} == {"0": 3, "1": 4, "5": 2}
    metrics = output["gate"]["candidate"]
    assert metrics["auc"] >= 0.8 and metrics["recall"] >= 0.55
    # the model version serves raw rows: the fitted encoder in AWS's scikit-learn image, then XGBoost
    (package,) = _packages(GROUP)
    containers = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])[
        "InferenceSpecification"]["Containers"]
    assert [c["Image"].rsplit("/", 1)[1] for c in containers] == ["sagemaker-scikit-learn:1.9-0-cpu-py3",
                                                                   "sagemaker-xgboost:1.7-1"]
    assert containers[0]["ModelDataUrl"] == output["run"]["s3"]["encoder_model"]
    assert containers[0]["Environment"]["SAGEMAKER_PROGRAM"] == "encode.py"
    assert containers[0]["Environment"]["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] == "text/csv"
    # a client sends raw rows: the categories as text, in the dataset's feature order
    answers = churn.invoke(ENDPOINT, [["premium", "north", 12, 80.5, 3, "monthly"], ["basic", "south", 60, 20.0, 0,
                                                                                       "annual"]])
    assert len(answers) == 2 and all(0 < answer < 1 for answer in answers)
    assert answers[0] > 0.5 > answers[1]  # a new monthly customer with support calls churns; a loyal annual one stays
    assert churn.iam_report()["missing"] == {}
