"""Linear Learner end to end offline: the regression example (config/examples/regression.yaml,
bundled diabetes data) with its model switched to ``builtin: linear-learner`` and its tuning to
Linear Learner's ``wd``, synthesized with cdk-nag and run by the offline runner. Offline, Linear
Learner is the scikit-learn emulation in ``tools/offline/jobs.py`` (its figures, not AWS's).

The run trains with ``predictor_type`` derived from the dataset, predicts the test split as
JSON Lines (Linear Learner never answers CSV), the evaluation scores those, the gate passes,
the version is registered and the endpoint answers a client in Linear Learner's JSON; a tuning
run searches ``wd`` on ``validation:objective_loss``. Costs one single-stage synth and two runs."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import yaml

from mlops.config import CONFIG_DIR
from tests.test_offline_regression import _test_rows
from tools.assembly import synth
from tools.offline.runner import OfflineStage

STAGE = "linear"


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory):
    config = yaml.safe_load((CONFIG_DIR / "examples" / "regression.yaml").read_text())
    config["stage"] = STAGE
    config["pipeline"].update(model={"builtin": "linear-learner"}, hyperparameters={"epochs": "15"}, tuning={
        "max_jobs": 3, "max_parallel_jobs": 1,
        "ranges": [{"name": "wd", "type": "continuous", "min": 1e-6, "max": 0.1, "scaling": "Logarithmic"}]})
    config_dir, outdir = tmp_path_factory.mktemp("linear-config"), tmp_path_factory.mktemp("linear-cdk.out")
    (config_dir / f"{STAGE}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    synth(STAGE, outdir, config_dir=config_dir)  # cdk-nag runs here: an unacknowledged finding fails synth
    with OfflineStage(outdir, STAGE) as offline:
        yield offline


def test_linear_learner_trains_evaluates_registers_and_serves_in_its_own_format(stage: OfflineStage) -> None:
    run = stage.run({})
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    output = run.output
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=output["training"]["job_name"])
    assert "/linear-learner:1" in job["AlgorithmSpecification"]["TrainingImage"]
    assert job["HyperParameters"] == {"predictor_type": "regressor", "epochs": "15"}
    transform = boto3.client("sagemaker").describe_transform_job(TransformJobName=output["predictions"]["job_name"])
    assert transform["TransformOutput"]["Accept"] == "application/jsonlines"
    metrics = output["gate"]["candidate"]  # the emulation's least squares on the diabetes split
    assert 40 < metrics["rmse"] < 60 and 0.35 < metrics["r2"] < 0.65
    assert output["gate"]["summary"].startswith("Metric gate passed: rmse ")
    # a client's text/csv request: back Linear Learner's JSON, a score per row
    rows = _test_rows(output["run"]["s3"]["test"])[:3]
    answer = boto3.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=f"demo-{STAGE}-endpoint", ContentType="text/csv",
        Body="\n".join(",".join(row[1:]) for row in rows).encode())["Body"].read()
    predictions = json.loads(answer)["predictions"]
    assert len(predictions) == 3 and all(set(p) == {"score"} and 25 <= p["score"] <= 346 for p in predictions)
    assert stage.iam_report()["missing"] == {}


def test_tuning_searches_wd_on_the_validation_objective_loss(stage: OfflineStage) -> None:
    run = stage.run({"tuning": True})
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert "Tune hyperparameters" in run.visited()
    tuning = boto3.client("sagemaker").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=run.output["tuning_job"]["job_name"])
    objective = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"Type": "Minimize", "MetricName": "validation:objective_loss"}
    hyperparameters = run.output["training"]["hyperparameters"]  # the best job's: its wd drawn from the range
    assert set(hyperparameters) == {"predictor_type", "epochs", "wd"} and 1e-6 <= float(hyperparameters["wd"]) <= 0.1
