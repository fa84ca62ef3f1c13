"""The synthesized training state machine, executed end to end offline (moto + the adapter):
real handlers, a real XGBoost model trained on the sample data, the real data phase and
evaluation scripts. One scenario per behaviour a user relies on."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tools.offline.runner import OfflineStage

DEV_ENDPOINT = "mlops-demo-dev-endpoint"
HAPPY_PATH = [
    "Start run", "Prepare run", "Prepare data", "Tune hyperparameters?", "Train model", "Create candidate model",
    "Predict test split", "Delete candidate model", "Evaluate on test split", "Check metric gate",
    "Metric gate passed?", "Register model version", "Create model", "Deployment mode?", "Create endpoint config",
    "Use real-time endpoint", "Check endpoint", "Deregister autoscaling first?",
    "Endpoint exists?", "Create endpoint", "Start waiting", "Wait for endpoint", "Describe endpoint",
    "Endpoint in service?", "Autoscale?", "Register scalable target", "Put scaling policy", "Deployment rolled back?",
    "Record serving version", "Notify deployed", "Model deployed",
]


def _packages(group: str) -> list[dict]:
    return boto3.client("sagemaker").list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")["ModelPackageSummaryList"]


def _endpoints() -> list[str]:
    return [e["EndpointName"] for e in boto3.client("sagemaker").list_endpoints()["Endpoints"]]


@pytest.fixture(scope="module")
def dev(cloud_assembly_dir: Path):
    """One emulated dev stage shared by the scenarios that build on each other (first
    deployment, then updates): they run in file order."""
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        yield stage


@pytest.fixture(scope="module")
def first_run(dev: OfflineStage):
    return dev.run({})


def test_happy_path_deploys_a_real_model(dev: OfflineStage, first_run) -> None:
    assert first_run.status == "SUCCEEDED", (first_run.error, first_run.cause)
    assert first_run.visited() == HAPPY_PATH
    sagemaker = boto3.client("sagemaker")
    (package,) = _packages("mlops-demo-dev-models")
    described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Approved"  # dev: no manual approval
    # lineage: data, jobs and revision travel with the version
    lineage = described["CustomerMetadataProperties"]
    assert lineage["train_data"].endswith("/train/") and lineage["training_job"].endswith("-0-0")
    assert described["MetadataProperties"]["CommitId"] == "unversioned"
    # the metrics in the registry are the real evaluation of the real model
    report_uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, key = report_uri.removeprefix("s3://").split("/", 1)
    report = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    metrics = report["binary_classification_metrics"]
    assert metrics["f1"]["value"] >= 0.9 and metrics["auc"]["value"] >= 0.95
    assert set(metrics["confusion_matrix"]) == {"0", "1"}
    endpoint = sagemaker.describe_endpoint(EndpointName=DEV_ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["DataCaptureConfig"]["EnableCapture"] is True
    target = boto3.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
    assert [t["MaxCapacity"] for t in target["ScalableTargets"]] == [2]
    assert any("DEPLOYED" in message for message in dev.messages())


def test_split_is_80_10_10_and_names_stay_valid(dev: OfflineStage, first_run) -> None:
    s3 = boto3.client("s3")
    run = first_run.output["run"]
    rows = {}
    for split in ("train", "validation", "test"):
        bucket, prefix = run["s3"][split].removeprefix("s3://").split("/", 1)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
        rows[split] = sum(len(s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()) for k in keys)
    assert rows == {"train": 455, "validation": 57, "test": 57}


def test_existing_endpoint_is_updated_blue_green(dev: OfflineStage, first_run) -> None:
    second = dev.run({"trigger": {"source": "schedule", "reason": "weekly"}})
    assert second.status == "SUCCEEDED", (second.error, second.cause)
    assert "Update endpoint (blue-green)" in second.visited() and "Create endpoint" not in second.visited()
    endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName=DEV_ENDPOINT)
    assert endpoint["EndpointConfigName"] == second.output["run"]["names"]["config"]
    # the challenger was compared with the champion (the first run's version)
    assert second.output["gate"]["champion"]["model_package_arn"].endswith("/1")
    assert "champion" in second.output["gate"]["summary"]


def test_failed_update_leaves_the_old_endpoint_serving(dev: OfflineStage, first_run) -> None:
    serving = boto3.client("sagemaker").describe_endpoint(EndpointName=DEV_ENDPOINT)["EndpointConfigName"]
    dev.hooks.faults["updateEndpoint"] = ["rollback"]
    run = dev.run({})
    assert run.status == "FAILED" and run.error == "DeploymentRolledBack"
    # autoscaling is registered again for the serving fleet, then the run fails with the rollback's cause
    assert run.visited()[-9:] == ["Update rolled back", "Record rolled back", "Autoscale?", "Register scalable target",
                                  "Put scaling policy", "Deployment rolled back?", "Describe failure",
                                  "Notify failure", "Run failed"]
    assert "keeps serving the previous model" in run.cause
    endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName=DEV_ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == serving
    assert boto3.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{DEV_ENDPOINT}/variant/AllTraffic"])["ScalableTargets"]
    # the registry says so: the rolled-back version is Approved but never served, and the
    # version that keeps serving is the next run's champion (and the monitoring baseline)
    sagemaker = boto3.client("sagemaker")
    newest = _packages("mlops-demo-dev-models")[0]["ModelPackageArn"]  # the failed run's, registered before deploying
    rolled_back = sagemaker.describe_model_package(ModelPackageName=newest)
    assert rolled_back["ModelApprovalStatus"] == "Approved"
    assert "serving" not in rolled_back["CustomerMetadataProperties"]
    assert rolled_back["CustomerMetadataProperties"]["rolled_back"].startswith(f"{DEV_ENDPOINT} kept serving {serving}")
    newest_serving = next(
        p["ModelPackageArn"] for p in _packages("mlops-demo-dev-models")
        if "serving" in sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"])["CustomerMetadataProperties"])
    assert newest_serving != rolled_back["ModelPackageArn"]
    next_run = dev.run({})
    assert next_run.status == "SUCCEEDED", (next_run.error, next_run.cause)
    assert next_run.output["gate"]["champion"]["model_package_arn"] == newest_serving


def test_unknown_mode_is_refused_up_front(dev: OfflineStage) -> None:
    run = dev.run({"deployment_mode": "edge"})
    assert run.status == "FAILED" and run.error == "InvalidExecutionInput"
    assert "input.deployment_mode: must be one of 'realtime', 'serverless', 'async' or 'batch'" in run.cause


def test_bad_input_fails_in_the_first_state_naming_the_field(dev: OfflineStage) -> None:
    jobs_before = len(boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"])
    run = dev.run({"hyperparameters": {"max_dept": 3}})
    assert run.status == "FAILED" and run.error == "InvalidExecutionInput"
    assert "input.hyperparameters" in run.cause and "max_dept" in run.cause
    assert run.visited() == ["Start run", "Prepare run", "Describe failure", "Notify failure", "Run failed"]
    assert run.cause.startswith("InvalidExecutionInput in state 'Prepare run': input.hyperparameters")
    assert len(boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]) == jobs_before


@pytest.mark.parametrize(("run_input", "message"), [
    ([1, 2, 3], "input: the execution input must be a JSON object"),
    ({"tuning": "yes"}, "input.tuning: must be true or false (got 'yes')"),
    ({"hyperparameters": {"max_depth": "three"}}, "input.hyperparameters.max_depth: must be an integer >= 0 (got 'three')"),
    ({"hyperparameters": {"objective": "reg:squarederror"}}, "input.hyperparameters.objective: 'reg:squarederror' does "
                                                             "not fit a binary classification dataset"),
    ({"hyperparameters": {"num_round": 1_000_000_000}}, "input.hyperparameters.num_round: must be at most 10000"),
])
def test_bad_input_of_any_shape_fails_first_and_is_notified(dev: OfflineStage, run_input, message: str) -> None:
    """Nothing runs (no data phase, no training) and the operations topic hears of it, even when
    the input is not a JSON object (a Catch needs an object to record the error in)."""
    dev.messages()  # drain
    run = dev.run(run_input)
    assert run.status == "FAILED" and run.error == "InvalidExecutionInput", (run.error, run.cause)
    assert message in run.cause
    assert "Prepare data" not in run.visited()
    assert any("FAILED" in notice for notice in dev.messages())


def test_a_failure_that_cannot_be_described_is_still_notified(dev: OfflineStage, tmp_path: Path) -> None:
    """Should the describe_failure handler itself fail, the raw error and cause are notified and
    the run fails StepFailed with them: a failure is never lost for want of words."""
    describer = dev.functions["describe-failure"]
    saved = dev.hooks.handlers[describer]
    (tmp_path / "index.py").write_text("def handler(event, context):\n    raise RuntimeError('describer down')\n")
    dev.hooks.handlers[describer] = (tmp_path, saved[1])
    dev.messages()  # drain
    try:
        run = dev.run({"tuning": "yes"})
    finally:
        dev.hooks.handlers[describer] = saved
    assert run.status == "FAILED" and run.error == "StepFailed", (run.error, run.cause)
    assert run.cause.startswith("InvalidExecutionInput: ") and "input.tuning: must be true or false" in run.cause
    assert run.visited()[-4:] == ["Describe failure", "Failure not described", "Notify failure", "Run failed"]
    assert any("input.tuning: must be true or false" in notice for notice in dev.messages())


def test_throttled_training_call_is_retried(dev: OfflineStage) -> None:
    dev.hooks.faults["createTrainingJob"] = ["throttle"]
    waits_before = len(dev.hooks.waits)
    run = dev.run({})
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output["training"]["job_name"].endswith("-0-1")  # $$.State.RetryCount keeps names unique
    assert 15 in dev.hooks.waits[waits_before:]  # the Retry interval the definition asks for


def test_metric_gate_failure_registers_and_deploys_nothing(dev: OfflineStage, first_run) -> None:
    versions = len(_packages("mlops-demo-dev-models"))
    serving = boto3.client("sagemaker").describe_endpoint(EndpointName=DEV_ENDPOINT)["EndpointConfigName"]
    run = dev.run({"hyperparameters": {"num_round": 1, "max_depth": 1, "eta": 0.001}})
    assert run.status == "FAILED" and run.error == "MetricGateFailed"
    assert "f1" in run.cause and "FAILED" in run.cause
    assert "Register model version" not in run.visited()
    assert len(_packages("mlops-demo-dev-models")) == versions
    assert boto3.client("sagemaker").describe_endpoint(EndpointName=DEV_ENDPOINT)["EndpointConfigName"] == serving
    assert any("REJECTED BY METRIC GATE" in message for message in dev.messages())


def test_every_call_is_allowed_by_the_callers_synthesized_policy(dev: OfflineStage, first_run) -> None:
    """IAM coverage over everything the dev scenarios above called: the executions' own
    service calls, each handler's calls, and the jobs' S3 access. (``first_run``: pytest-xdist
    may run this test on a worker where none of the others ran.)"""
    report = dev.iam_report()
    assert report["missing"] == {}, report["missing"]
    assert "sagemaker:CreateTrainingJob" in report["called"][dev.role_of["states:mlops-demo-dev-training"]]
    data_calls = report["called"][dev.role_of["states:mlops-demo-dev-data"]]
    assert {"databrew:StartJobRun", "glue:StartJobRun", "glue:StartCrawler", "sagemaker:CreateProcessingJob"} <= set(data_calls)
    # every job ran as its own role: DataBrew, Glue ETL and feature ingestion
    roles = {role for role, calls in report["called"].items() if "sagemaker:PutRecord" in calls or "s3:PutObject" in calls}
    assert {r for r in roles if "DataBrewRole" in r or "EtlRole" in r or "IngestionRole" in r} and len(roles) >= 3
