"""Select candidate: the best trained candidate by one final training metric; failed branches reported."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from tests.conftest import FakeLambdaContext, load_lambda

select = load_lambda("select_candidate")

REGION = "eu-west-1"
METRIC = "validation:auc"
NOT_SET = object()


@pytest.fixture
def sagemaker(aws_credentials):
    select._client.cache_clear()
    with mock_aws():
        yield boto3.client("sagemaker")
    select._client.cache_clear()


def _job(sagemaker, name: str, metrics: dict[str, float]) -> str:
    """A completed training job whose FinalMetricDataList holds ``metrics`` (moto's own list
    holds train:progress only, and its API cannot set one: set on the backend's job)."""
    sagemaker.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/xgb:1",
                                "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/training",
        OutputDataConfig={"S3OutputPath": "s3://artifacts/runs/r1/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        HyperParameters={"max_depth": "5"},
    )
    from moto.sagemaker.models import sagemaker_backends

    job = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].training_jobs[name]
    job.final_metric_data_list = [{"MetricName": metric, "Value": value, "Timestamp": job.creation_time}
                                  for metric, value in metrics.items()]
    return name


def _trained(sagemaker, name: str, value: float | object = NOT_SET, **others: float) -> dict:
    metrics = {**({METRIC: value} if value is not NOT_SET else {}), "train:auc": 0.99, **others}
    job_name = _job(sagemaker, f"r1-{name}", metrics)
    model_data = f"s3://artifacts/runs/r1/models/{job_name}/output/model.tar.gz"
    return {"name": name,
            "training": {"job_name": job_name, "model_data": model_data, "hyperparameters": {"max_depth": "5"}},
            "containers": [{"Image": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{name}:1",
                            "ModelDataUrl": model_data}]}


def _failed(name: str, error: str = "States.TaskFailed", cause: str = "AlgorithmError: boom") -> dict:
    return {"name": name, "error": {"Error": error, "Cause": cause}}


def _event(candidates: list[dict], direction: str = "Maximize", metric: str = METRIC) -> dict:
    return {"candidates": candidates, "metric": metric, "direction": direction}


def _run(event: dict) -> dict:
    return select.handler(event, FakeLambdaContext())


@pytest.mark.parametrize("direction, winner, value, others", [
    ("Maximize", "lightgbm", 0.8821, "xgboost 0.8770; sklearn 0.8012"),
    ("Minimize", "sklearn", 0.8012, "xgboost 0.8770; lightgbm 0.8821"),
])
def test_best_of_three(sagemaker, direction: str, winner: str, value: float, others: str) -> None:
    candidates = [_trained(sagemaker, "xgboost", 0.877), _trained(sagemaker, "sklearn", 0.8012),
                  _trained(sagemaker, "lightgbm", 0.8821)]
    result = _run(_event(candidates, direction))
    chosen = next(candidate for candidate in candidates if candidate["name"] == winner)
    assert result["winner"] == winner and result["value"] == value and result["metric"] == METRIC
    assert result["training"] == chosen["training"] and result["containers"] == chosen["containers"]
    assert result["candidates"] == [
        {"name": "xgboost", "status": "trained", "value": 0.877, "job_name": "r1-xgboost"},
        {"name": "sklearn", "status": "trained", "value": 0.8012, "job_name": "r1-sklearn"},
        {"name": "lightgbm", "status": "trained", "value": 0.8821, "job_name": "r1-lightgbm"},
    ]
    assert result["summary"] == f"{winner} won on {METRIC} {value:.4f} ({others})"


@pytest.mark.parametrize("direction", ["Maximize", "Minimize"])
def test_a_tie_goes_to_the_first_listed(sagemaker, direction: str) -> None:
    candidates = [_trained(sagemaker, "sklearn", 0.5), _trained(sagemaker, "xgboost", 0.9),
                  _trained(sagemaker, "lightgbm", 0.9), _trained(sagemaker, "linear", 0.5)]
    assert _run(_event(candidates, direction))["winner"] == ("xgboost" if direction == "Maximize" else "sklearn")


def test_a_failed_branch_does_not_stop_the_trained_one(sagemaker) -> None:
    cause = "AlgorithmError: ExecuteUserScriptError:\nCommand \"/usr/bin/python3 train.py\"\nTraceback ..."
    candidates = [_failed("lightgbm", "States.TaskFailed", cause), _trained(sagemaker, "xgboost", 0.8821)]
    result = _run(_event(candidates))
    assert result["winner"] == "xgboost" and result["training"] == candidates[1]["training"]
    assert result["candidates"][0] == {"name": "lightgbm", "status": "failed",
                                       "error": "States.TaskFailed: AlgorithmError: ExecuteUserScriptError:"}
    assert result["summary"] == ("xgboost won on validation:auc 0.8821 "
                                 "(lightgbm failed: States.TaskFailed: AlgorithmError: ExecuteUserScriptError:)")


def test_a_failure_cause_is_cut_to_300_characters() -> None:
    line = select.error_line(select.BranchError(Error="AlgorithmError", Cause="x" * 1000 + "\nsecond line"))
    assert line == "AlgorithmError: " + "x" * 299 + "…"
    assert select.error_line(select.BranchError(Error="States.Timeout", Cause="")) == "States.Timeout"


def test_a_job_without_the_metric_or_with_nan_is_not_eligible(sagemaker) -> None:
    candidates = [_trained(sagemaker, "xgboost", **{"validation:rmse": 0.3}),  # no validation:auc
                  _trained(sagemaker, "sklearn", float("nan")),
                  _trained(sagemaker, "linear", float("inf")),
                  _trained(sagemaker, "lightgbm", 0.61)]
    result = _run(_event(candidates))
    assert result["winner"] == "lightgbm" and result["value"] == 0.61
    assert result["candidates"][:3] == [
        {"name": "xgboost", "status": "no metric", "job_name": "r1-xgboost"},
        {"name": "sklearn", "status": "no metric", "job_name": "r1-sklearn"},
        {"name": "linear", "status": "no metric", "job_name": "r1-linear"},
    ]
    assert result["summary"] == ("lightgbm won on validation:auc 0.6100 (xgboost reported no validation:auc; "
                                 "sklearn reported validation:auc nan; linear reported validation:auc inf)")


def test_no_eligible_candidate_raises_no_candidate_trained(sagemaker) -> None:
    candidates = [_failed("xgboost", "AlgorithmError", "bad input\nat line 3"), _trained(sagemaker, "sklearn"),
                  _trained(sagemaker, "lightgbm", float("nan"))]
    with pytest.raises(select.NoCandidateTrained) as raised:
        _run(_event(candidates))
    assert type(raised.value).__name__ == "NoCandidateTrained"
    assert str(raised.value) == ("no candidate reports validation:auc: xgboost failed (AlgorithmError: bad input); "
                                 "sklearn trained but reported no validation:auc; "
                                 "lightgbm trained but reported validation:auc nan")


def test_describe_training_job_errors_propagate(sagemaker) -> None:
    candidate = {**_trained(sagemaker, "xgboost", 0.9), "name": "ghost"}
    candidate["training"] = {**candidate["training"], "job_name": "never-created"}
    with pytest.raises(ClientError, match="Could not find training job"):
        _run(_event([candidate]))


TRAINING = {"job_name": "r1-xgboost", "model_data": "s3://artifacts/m.tar.gz", "hyperparameters": {}}
CONTAINERS = [{"Image": "x"}]
GOOD = {"name": "xgboost", "training": TRAINING, "containers": CONTAINERS}
TUNING_JOB = {"job_name": "r1-hpo", "best_training_job": "r1-xgboost",
              "objective": {"Type": "Maximize", "MetricName": METRIC, "Value": 0.9}}


def test_a_tuned_candidate_competes_with_its_best_job_and_says_so(sagemaker) -> None:
    tuned = _trained(sagemaker, "xgboost", 0.91)
    tuned["tuning_job"] = {**TUNING_JOB, "best_training_job": tuned["training"]["job_name"]}
    result = _run(_event([tuned, _trained(sagemaker, "sklearn", 0.88)]))
    assert result["winner"] == "xgboost" and result["summary"] == "xgboost (tuned) won on validation:auc 0.9100 (sklearn 0.8800)"
    assert result["candidates"][0] == {"name": "xgboost", "status": "trained", "value": 0.91,
                                       "job_name": "r1-xgboost", "tuning_job": "r1-hpo"}
    assert "tuning_job" not in result["candidates"][1]
    lost = _run(_event([tuned, _trained(sagemaker, "lgbm", 0.95)]))
    assert lost["summary"] == "lgbm won on validation:auc 0.9500 (xgboost (tuned) 0.9100)"


@pytest.mark.parametrize("event, message", [
    ("not a mapping", "expected a mapping with candidates, metric, direction; got str"),
    (_event([{**GOOD, "error": {"Error": "E", "Cause": "c"}}]),
     "candidates.0: exactly one of training or error is needed; got both"),
    (_event([GOOD, {"name": "sklearn"}]), "candidates.1: exactly one of training or error is needed; got neither"),
    (_event([{"name": "xgboost", "training": TRAINING}]), "candidates.0: containers: required with training"),
    (_event([{**GOOD, "containers": []}]), "candidates.0.containers: List should have at least 1 item"),
    (_event([GOOD, {**GOOD, "name": "sklearn"}, GOOD]), "candidates: 'xgboost' is named twice"),
    (_event([]), "candidates: List should have at least 1 item"),
    (_event([{**GOOD, "training": {**TRAINING, "image": "x"}}]),
     "candidates.0.training.image: unknown key; allowed: job_name, model_data, hyperparameters"),
    (_event([{"name": "x", "error": {"Error": "E"}}]), "candidates.0.error.Cause: required but missing"),
    (_event([{**GOOD, "tuning_job": {**TUNING_JOB, "best_training_job": "r1-other"}}]),
     "candidates.0: tuning_job.best_training_job: 'r1-other' is not the candidate's training job 'r1-xgboost'"),
    (_event([{**_failed("xgboost"), "tuning_job": TUNING_JOB}]), "candidates.0: tuning_job: only with training"),
    (_event([{**GOOD, "tuning_job": {**TUNING_JOB, "name": "x"}}]),
     "candidates.0.tuning_job.name: unknown key; allowed: job_name, best_training_job, objective"),
    (_event([GOOD], metric="auc"), "metric: String should match pattern"),
    (_event([GOOD], metric="test:auc"), "metric: String should match pattern"),
    (_event([GOOD], direction="maximize"), "direction: Input should be 'Maximize' or 'Minimize'"),
    ({"candidates": [GOOD], "metric": METRIC}, "direction: required but missing"),
    ({**_event([GOOD]), "objective": "x"}, "objective: unknown key; allowed: candidates, metric, direction"),
])
def test_malformed_event_names_the_field(event, message: str) -> None:
    with pytest.raises(ValueError, match="^malformed select-candidate event: ") as raised:
        select.handler(event, FakeLambdaContext())
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_sync_jobs_cause_is_read_for_its_failure_reason() -> None:
    """Step Functions' .sync SageMaker tasks fail with the job's description as the cause."""
    cause = json.dumps({"TrainingJobName": "demo-train-sklearn-1", "TrainingJobStatus": "Failed",
                        "FailureReason": "AlgorithmError: ExecuteUserScriptError:\nexit code 1", "HyperParameters": {}})
    line = select.error_line(select.BranchError(Error="States.TaskFailed", Cause=cause))
    assert line == "States.TaskFailed: training job demo-train-sklearn-1 Failed: AlgorithmError: ExecuteUserScriptError: exit code 1"
