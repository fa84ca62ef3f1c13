"""The churn example (config/examples/churn.yaml) end to end offline: a dataset declared column by
column (an id, a date, two PII columns, categorical and numeric features, a text label in the
middle), two candidates trained in parallel (the built-in XGBoost on a one-hot encoding fitted on
the train split, jobs/encode/encode.py; the team's scikit-learn script that encodes the categories
itself, models/churn_sklearn/train.py), the best on validation:auc evaluated, registered and
served behind an endpoint that takes a raw row, categories as text; and a candidate that fails to
train, which does not stop the other, tuned, competing with its tuning job's best job."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import boto3

from tests.conftest import CHURN_EXAMPLE
from tests.test_offline_pipeline import HAPPY_PATH, _packages
from tools.offline.runner import OfflineStage, RunResult

GROUP = "demo-churn-models"
ENDPOINT = "demo-churn-endpoint"
FEATURES = ["plan", "region", "tenure_months", "monthly_charges", "support_calls", "contract"]
# the happy path, with the encoding, the candidates and the choice where a single model trains
TRAINED = [*HAPPY_PATH[:3], "Encode categorical features", "Train candidates", "Select best candidate", "Best candidate",
           *HAPPY_PATH[HAPPY_PATH.index("Train model") + 1:]]
RAW_ROWS = [["premium", "north", 12, 80.5, 3, "monthly"], ["basic", "south", 60, 20.0, 0, "annual"]]


def _top_level(run: RunResult) -> list[str]:
    """The states of the run outside the Parallel state's branches."""
    return [state.name for state in run.states if state.depth == 0]


def _rows(location: str) -> list[list[str]]:
    """Every CSV row under an S3 prefix (files in key order)."""
    bucket, prefix = location.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    return [row for key in keys
            for row in csv.reader(io.StringIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()))]


def test_churn_example_trains_two_candidates_and_serves_the_best_on_raw_rows(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, CHURN_EXAMPLE) as churn:  # checks cost tags on exit
        run = churn.run({})
        assert run.status == "SUCCEEDED", (run.error, run.cause)
        assert _top_level(run) == TRAINED
        assert sorted(state.name for state in run.states if state.depth == 1) == [
            "Train sklearn", "Train xgboost", "Tune xgboost?", "sklearn trained", "xgboost trained"]
        output = run.output
        # the training matrix: the label's class index ("no" 0, "yes" 1), then the six features, text
        # categories as they are; no id, no date, no PII
        test = _rows(output["run"]["s3"]["test"])
        assert {row[0] for row in test} == {"0", "1"} and all(len(row) == 1 + len(FEATURES) for row in test)
        assert {row[1] for row in test} <= {"basic", "standard", "premium"} and {row[6] for row in test} <= {
            "monthly", "annual"}
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
        # both candidates trained and reported validation:auc; the better one goes on
        selection = output["selection"]
        outcomes = {c["name"]: c for c in selection["candidates"]}
        assert {name: c["status"] for name, c in outcomes.items()} == {"xgboost": "trained", "sklearn": "trained"}
        assert selection["winner"] == max(outcomes, key=lambda name: outcomes[name]["value"])
        assert selection["summary"].startswith(f"{selection['winner']} won on validation:auc ")
        sagemaker = boto3.client("sagemaker")
        channels = {name: {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in
                           sagemaker.describe_training_job(TrainingJobName=c["job_name"])["InputDataConfig"]}
                    for name, c in outcomes.items()}
        # XGBoost trained on the encoded splits (numbers only), the script on the splits themselves
        assert channels["xgboost"] == {"train": output["run"]["s3"]["encoded_train"],
                                       "validation": output["run"]["s3"]["encoded_validation"]}
        assert channels["sklearn"] == {"train": output["run"]["s3"]["train"],
                                       "validation": output["run"]["s3"]["validation"]}
        encoded = _rows(channels["xgboost"]["train"])
        assert all(float(value) == float(value) for row in encoded for value in row)  # every cell a number
        encoding = _encoding(output["run"]["s3"]["encoder_model"])
        # plan (3), region (4) and contract (2) one-hot, the 3 numbers as they are: 12 columns, the label first
        assert encoding["encoded_features"] == 12 and all(len(row) == 13 for row in encoded)
        assert {position: len(values) for position, values in encoding["categorical"].items()} == {
            "0": 3, "1": 4, "5": 2}
        assert output["training"]["job_name"] == outcomes[selection["winner"]]["job_name"]
        metrics = output["gate"]["candidate"]
        assert metrics["auc"] >= 0.8 and metrics["recall"] >= 0.55
        (package,) = _packages(GROUP)
        described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
        assert described["CustomerMetadataProperties"]["candidate"] == selection["winner"]
        assert described["InferenceSpecification"]["Containers"] == selection["containers"]
        # a client sends raw rows: the categories as text, in the dataset's feature order
        answers = churn.invoke(ENDPOINT, RAW_ROWS)
        assert len(answers) == 2 and answers[0] > 0.5 > answers[1]  # a new monthly customer churns; a loyal one stays
        assert churn.iam_report()["missing"] == {}


def test_a_candidate_that_fails_to_train_leaves_the_other_to_go_on(cloud_assembly_dir: Path) -> None:
    """With ``"tuning": true`` the XGBoost candidate tunes (its own ``tuning``: 4 jobs over
    max_depth and eta) while the script candidate's job fails: the tuning job's best job wins
    alone, and the version it registers is the inference pipeline of the fitted encoder (AWS's
    scikit-learn image) and XGBoost, which serves raw rows."""
    with OfflineStage(cloud_assembly_dir, CHURN_EXAMPLE, faults={"createTrainingJob:sklearn": ["fail"]}) as churn:
        run = churn.run({"tuning": True})
        assert run.status == "SUCCEEDED", (run.error, run.cause)
        assert _top_level(run) == TRAINED and run.state("Train sklearn").outcome == "failed"
        assert sorted(state.name for state in run.states if state.depth == 1) == [
            "Describe xgboost best job", "Train sklearn", "Tune xgboost", "Tune xgboost?", "sklearn failed",
            "xgboost tuned"]
        selection, candidates = run.output["selection"], run.output["run"]["candidates"]
        assert selection["winner"] == "xgboost"
        failed, tuned = (next(c for c in selection["candidates"] if c["name"] == name) for name in ("sklearn", "xgboost"))
        assert failed["status"] == "failed" and "injected training failure" in failed["error"]
        assert selection["summary"].startswith("xgboost (tuned) won on validation:auc ") and "sklearn failed: " in \
            selection["summary"]
        # the tuning job, named apart from the candidate's training job, kept the candidate's other
        # hyperparameters fixed; its best job is the candidate's, and the run's model
        sagemaker = boto3.client("sagemaker")
        tuning = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuned["tuning_job"])
        assert tuned["tuning_job"].startswith(candidates["xgboost"]["tune"]) and len(tuned["tuning_job"]) <= 32
        assert tuning["BestTrainingJob"]["TrainingJobName"] == tuned["job_name"] == run.output["training"]["job_name"]
        static = candidates["xgboost"]["static_hyperparameters"]
        assert static == {k: v for k, v in candidates["xgboost"]["hyperparameters"].items() if k not in ("max_depth", "eta")}
        assert {"num_round": "200", "subsample": "0.8"}.items() <= static.items()
        jobs = [j["TrainingJobName"] for j in sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]]
        assert sum(job.startswith(tuned["tuning_job"]) for job in jobs) == 4  # max_jobs, each really trained
        best = sagemaker.describe_training_job(TrainingJobName=tuned["job_name"])
        assert {"max_depth", "eta", "num_round", "subsample"} <= set(best["HyperParameters"])
        (package,) = _packages(GROUP)
        containers = boto3.client("sagemaker").describe_model_package(ModelPackageName=package["ModelPackageArn"])[
            "InferenceSpecification"]["Containers"]
        assert [c["Image"].rsplit("/", 1)[1] for c in containers] == ["sagemaker-scikit-learn:1.9-0-cpu-py3",
                                                                       "sagemaker-xgboost:1.7-1"]
        assert containers[0]["ModelDataUrl"] == run.output["run"]["s3"]["encoder_model"]
        assert {k: containers[0]["Environment"][k] for k in ("SAGEMAKER_PROGRAM", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")} \
            == {"SAGEMAKER_PROGRAM": "encode.py", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}
        answers = churn.invoke(ENDPOINT, RAW_ROWS)
        assert len(answers) == 2 and answers[0] > 0.5 > answers[1]
        assert churn.iam_report()["missing"] == {}


def _encoding(uri: str) -> dict:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        return json.load(archive.extractfile("encoding.json"))
