"""Script-mode models in the offline SageMaker emulation (tools/offline/jobs.py and
tools/offline/service_rules.py): training jobs, tuning, batch transform and endpoints of a model
trained by the user's own script (models/wine_sklearn) in the scikit-learn framework container,
with the request shapes the SageMaker Python SDK's framework estimators and models produce.

moto plays S3 and SageMaker's records; the jobs run for real; the execution role's policy is a
hand-written one, enforced as the offline runs enforce the stage's synthesized policies."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path
from typing import Any, Iterator

import boto3
import joblib
import numpy as np
import pytest
from moto import mock_aws
from sklearn.datasets import load_wine
from sklearn.metrics import log_loss

from mlops.source_bundle import sourcedir_tarball
from tools.offline import adapter, jobs, runner, service_rules
from tools.offline.iam import PolicyModel

ACCOUNT, REGION = "123456789012", "eu-west-1"
BUCKET = "artifacts"
SKLEARN_IMAGE = f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:1.7-1"
EXAMPLE = Path(__file__).resolve().parent.parent / "models" / "wine_sklearn"
WINE_SOURCE = f"s3://{BUCKET}/code/wine/sourcedir.tar.gz"
METRICS = [{"Name": name, "Regex": f"{name}=([0-9.eE+-]+)"}
           for name in ("train:mlogloss", "validation:mlogloss", "validation:accuracy")]
SERVING_ROLE, NO_CODE_ROLE = "ServingRole", "NoCodeRole"
ECR = {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
       "Resource": "*"}
POLICIES = {
    SERVING_ROLE: [ECR, {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                         "Resource": f"arn:aws:s3:::{BUCKET}/*"}],
    # may read the model artifacts, not the code the serving container downloads
    NO_CODE_ROLE: [ECR, {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/models/*"}],
}


def _role_arn(role: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{role}"


def _put(key: str, body: bytes) -> str:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def _get(uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def _exists(uri: str) -> bool:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=key)["KeyCount"] > 0


@pytest.fixture(scope="module")
def hooks() -> Iterator[adapter.Hooks]:
    """moto with the offline patches and call enforcement; the wine splits in the platform's
    format (no header, label first) and the example's sourcedir.tar.gz in its S3."""
    hooks = adapter.Hooks(policies=PolicyModel(identity=POLICIES))
    with runner._fake_credentials(), mock_aws(config=runner.MOTO_CONFIG), adapter.patched(hooks), \
            runner._recording_calls(hooks):
        boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        features, labels = load_wine(return_X_y=True)
        rows = np.column_stack([labels, features])[np.random.default_rng(7).permutation(len(labels))]
        for name, part in (("train", rows[:100]), ("validation", rows[100:140]), ("test", rows[140:])):
            buffer = io.StringIO()
            np.savetxt(buffer, part, delimiter=",", fmt="%.6g")
            _put(f"data/{name}/part-00000.csv", buffer.getvalue().encode())
        _put("code/wine/sourcedir.tar.gz", sourcedir_tarball(EXAMPLE))
        yield hooks


def _channel(name: str, data: str = "data") -> dict[str, Any]:
    return {"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{data}/{name}/", "S3DataDistributionType": "FullyReplicated"}}}


def _framework(program: str, source: str) -> dict[str, str]:
    """The SDK's JSON-encoded framework hyperparameters."""
    return {"sagemaker_program": json.dumps(program), "sagemaker_submit_directory": json.dumps(source),
            "sagemaker_container_log_level": "20", "sagemaker_region": json.dumps(REGION)}


def _training(name: str, hyperparameters: dict[str, str], *, image: str = SKLEARN_IMAGE,
              metrics: list[dict[str, str]] | None = None, channels: tuple[str, ...] = ("train", "validation"),
              data: str = "data") -> dict[str, Any]:
    """A CreateTrainingJob request, created in moto (botocore checks its shape); its channels
    read ``s3://<BUCKET>/<data>/<channel>/``."""
    algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File"}
    if metrics:
        algorithm["MetricDefinitions"] = metrics
    request = {"TrainingJobName": name, "RoleArn": _role_arn(SERVING_ROLE), "AlgorithmSpecification": algorithm,
               "HyperParameters": hyperparameters, "InputDataConfig": [_channel(c, data) for c in channels],
               "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
               "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
               "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    boto3.client("sagemaker").create_training_job(**request)
    return request


def _wine_request(name: str) -> dict[str, Any]:
    return _training(name, {"C": "1.0", "max_iter": "500", **_framework("train.py", WINE_SOURCE)}, metrics=METRICS)


def _artifact(name: str) -> str:
    return f"s3://{BUCKET}/models/{name}/output/model.tar.gz"


def _members(uri: str) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(_get(uri))) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def _test_split() -> np.ndarray:
    return np.loadtxt(io.StringIO(_get(f"s3://{BUCKET}/data/test/part-00000.csv").decode()), delimiter=",", ndmin=2)


@pytest.fixture(scope="module")
def wine(hooks: adapter.Hooks) -> tuple[dict[str, Any], Any]:
    """The example trained by a script-mode training job: (its outcome, the fitted pipeline)."""
    outcome = jobs.train(_wine_request("wine-script"))
    assert "failure" not in outcome, outcome
    return outcome, joblib.load(io.BytesIO(_members(_artifact("wine-script"))["model.joblib"]))


def _script_container(model_data: str) -> dict[str, Any]:
    """CreateModel's container for a script model, as the SDK's SKLearnModel writes it."""
    return {"Image": SKLEARN_IMAGE, "ModelDataUrl": model_data, "Environment": {
        "SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY": WINE_SOURCE,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": REGION}}


# --- training -----------------------------------------------------------------------------------
def test_a_script_training_job_saves_the_model_where_sagemaker_does_and_reports_its_metrics(
        wine: tuple[dict[str, Any], Any]) -> None:
    outcome, model = wine
    assert list(_members(_artifact("wine-script"))) == ["model.joblib"]  # at the archive root
    assert set(outcome["metrics"]) == {d["Name"] for d in METRICS}
    validation = np.loadtxt(io.StringIO(_get(f"s3://{BUCKET}/data/validation/part-00000.csv").decode()), delimiter=",")
    expected = log_loss(validation[:, 0], model.predict_proba(validation[:, 1:]), labels=model.classes_)
    assert outcome["metrics"]["validation:mlogloss"] == pytest.approx(expected, abs=1e-5)  # this run's, from its log
    assert outcome["metrics"]["validation:accuracy"] > 0.85
    assert json.loads(outcome["hyperparameters"]["sagemaker_program"]) == "train.py"


def test_a_request_without_sagemaker_program_still_trains_the_built_in_xgboost(hooks: adapter.Hooks) -> None:
    outcome = jobs.train(_training("wine-xgboost", {"objective": "multi:softprob", "num_class": "3", "num_round": "2"},
                                   image=XGBOOST_IMAGE))
    assert list(_members(_artifact("wine-xgboost"))) == ["xgboost-model"]
    assert "validation:mlogloss" in outcome["metrics"]


def test_a_failing_script_fails_the_job_with_its_reason(hooks: adapter.Hooks, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text('raise ValueError("the train channel has no label column")\n')
    source = _put("code/broken/sourcedir.tar.gz", sourcedir_tarball(tmp_path))
    request = _training("broken-script", _framework("train.py", source), metrics=METRICS)
    outcome = jobs.train(request)
    assert outcome == {"failure": "AlgorithmError: ValueError: the train channel has no label column"}
    assert not _exists(_artifact("broken-script"))
    adapter._record_job_outcome("sagemaker", "create_training_job", request, {}, outcome)  # as the Step Functions task does
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName="broken-script")
    assert (described["TrainingJobStatus"], described["FailureReason"]) == ("Failed", outcome["failure"])


@pytest.mark.parametrize("kind", ["script", "xgboost"])
def test_an_injected_failure_fails_either_kind_without_training(hooks: adapter.Hooks, kind: str) -> None:
    name = f"injected-{kind}"
    request = (_wine_request(name) if kind == "script"
               else _training(name, {"objective": "multi:softprob", "num_class": "3"}, image=XGBOOST_IMAGE))
    assert jobs.train(request, fault="fail") == {"failure": "AlgorithmError: injected training failure (offline scenario)"}
    assert not _exists(_artifact(name))


# --- tuning -------------------------------------------------------------------------------------
QUADRATIC = """\
    import argparse, os, sys
    parser = argparse.ArgumentParser()
    parser.add_argument("-x", type=float)
    x = parser.parse_args().x
    if x > 8:
        sys.exit("diverged: x is too large")
    print(f"validation:loss={(x - 3) ** 2:.6f}")
    open(os.path.join(os.environ["SM_MODEL_DIR"], "x.txt"), "w").write(str(x))
"""


def _tuning(name: str, low: float, high: float, tmp_path: Path) -> dict[str, Any]:
    """A tuning request over QUADRATIC's ``x``: the objective is a metric definition's name."""
    (tmp_path / "train.py").write_text(textwrap.dedent(QUADRATIC))
    source = _put(f"code/{name}/sourcedir.tar.gz", sourcedir_tarball(tmp_path))
    definition = _training(f"{name}-template", {}, metrics=[{"Name": "validation:loss",
                                                             "Regex": "validation:loss=([0-9.eE+-]+)"}],
                           channels=("train",))
    definition.pop("TrainingJobName")
    definition.pop("HyperParameters")
    return {"HyperParameterTuningJobName": name, "HyperParameterTuningJobConfig": {
        "Strategy": "Random", "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:loss"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 1},
        "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": str(low), "MaxValue": str(high)}]}},
        "TrainingJobDefinition": {**definition, "StaticHyperParameters": _framework("train.py", source)}}


def _tuned_jobs(name: str) -> list[dict[str, Any]]:
    sagemaker = boto3.client("sagemaker")
    return [sagemaker.describe_training_job(TrainingJobName=job["TrainingJobName"])
            for job in sagemaker.list_training_jobs(NameContains=f"{name}-0", MaxResults=100)["TrainingJobSummaries"]]


def test_tuning_over_a_script_picks_the_best_by_its_metric_definition(hooks: adapter.Hooks, tmp_path: Path) -> None:
    outcome = jobs.run_tuning(_tuning("tune-script", 0, 10, tmp_path))
    described = _tuned_jobs("tune-script")
    failed = [job for job in described if job["TrainingJobStatus"] == "Failed"]
    assert len(described) == 6 and failed  # the draws include an x above 8: that job failed
    assert all("diverged" in job["FailureReason"] for job in failed)
    completed = {job["TrainingJobName"]: float(job["HyperParameters"]["x"]) for job in described if job not in failed}
    best = min(completed, key=lambda name: (completed[name] - 3) ** 2)
    assert outcome["best"]["TrainingJobName"] == best
    assert outcome["best"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        (completed[best] - 3) ** 2, abs=1e-5)
    assert _exists(_artifact(best))


def test_tuning_fails_only_when_no_training_job_succeeds(hooks: adapter.Hooks, tmp_path: Path) -> None:
    outcome = jobs.run_tuning(_tuning("tune-diverging", 8.5, 10, tmp_path))
    assert outcome["failure"].startswith("No training job succeeded after 6 attempts")
    assert "diverged" in outcome["failure"]


# --- batch transform --------------------------------------------------------------------------
@pytest.mark.parametrize(("join", "output_filter"), [("None", "$"), ("Input", "$[0,-1]")])
def test_a_batch_transform_of_a_script_model_writes_one_line_per_row(wine: tuple[dict[str, Any], Any], join: str,
                                                                     output_filter: str) -> None:
    model_name, output = f"wine-candidate-{join.lower()}", f"s3://{BUCKET}/predictions/{join.lower()}/"
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(ModelName=model_name, ExecutionRoleArn=_role_arn(SERVING_ROLE),
                           PrimaryContainer=_script_container(_artifact("wine-script")))
    request = {"TransformJobName": f"predict-{join.lower()}", "ModelName": model_name, "BatchStrategy": "MultiRecord",
               "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                  "S3Uri": f"s3://{BUCKET}/data/test/"}},
                                  "ContentType": "text/csv", "SplitType": "Line"},
               "TransformOutput": {"S3OutputPath": output, "Accept": "text/csv", "AssembleWith": "Line"},
               "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
               "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": join, "OutputFilter": output_filter}}
    sagemaker.create_transform_job(**request)
    assert jobs.run_transform(request) == {}
    lines = _get(f"{output}part-00000.csv.out").decode().splitlines()
    values = np.array([[float(v) for v in line.split(",")] for line in lines])
    test = _test_split()
    probabilities = wine[1].predict_proba(test[:, 1:])  # the label filtered out: 13 features per row
    if join == "None":  # the answer line of each row: its 3 class probabilities
        np.testing.assert_allclose(values, probabilities, atol=1e-4)
    else:  # the row's values, then the answer's: the label and the last class's probability kept
        np.testing.assert_allclose(values, np.column_stack([test[:, 0], probabilities[:, -1]]), atol=1e-4)


# --- endpoints ----------------------------------------------------------------------------------
def _endpoint_config(name: str, role: str, container: dict[str, Any], **config: Any) -> dict[str, Any]:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=_role_arn(role), PrimaryContainer=container)
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        **config)
    return sagemaker.describe_endpoint_config(EndpointConfigName=name)


def test_an_endpoint_serving_a_packaged_script_model_answers_real_time_requests(
        wine: tuple[dict[str, Any], Any]) -> None:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="wine")
    package = sagemaker.create_model_package(ModelPackageGroupName="wine", InferenceSpecification={
        "Containers": [_script_container(_artifact("wine-script"))], "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
    _endpoint_config("wine-live", SERVING_ROLE, {"ModelPackageName": package})
    sagemaker.create_endpoint(EndpointName="wine-live", EndpointConfigName="wine-live")
    assert sagemaker.describe_endpoint(EndpointName="wine-live")["EndpointStatus"] == "InService"
    rows = _test_split()[:4, 1:]
    body = "\n".join(",".join(f"{v:.6g}" for v in row) for row in rows)
    answer = boto3.client("sagemaker-runtime").invoke_endpoint(EndpointName="wine-live", ContentType="text/csv",
                                                                Body=body.encode())["Body"].read().decode()
    values = np.array([[float(v) for v in line.split(",")] for line in answer.splitlines()])
    np.testing.assert_allclose(values, wine[1].predict_proba(rows), atol=1e-4)  # one line of 3 per row


def test_an_async_endpoint_serving_a_script_model_writes_its_answer(wine: tuple[dict[str, Any], Any]) -> None:
    _endpoint_config("wine-async", SERVING_ROLE, _script_container(_artifact("wine-script")),
                     AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/async-output/"}})
    boto3.client("sagemaker").create_endpoint(EndpointName="wine-async", EndpointConfigName="wine-async")
    rows = _test_split()[:2, 1:]
    request = _put("async-input/r.csv", "\n".join(",".join(f"{v:.6g}" for v in row) for row in rows).encode())
    answer = boto3.client("sagemaker-runtime").invoke_endpoint_async(EndpointName="wine-async", InputLocation=request,
                                                                      InferenceId="r")
    values = np.array([[float(v) for v in line.split(",")] for line in _get(answer["OutputLocation"]).decode().split()])
    np.testing.assert_allclose(values, wine[1].predict_proba(rows), atol=1e-4)


def test_a_role_that_may_not_read_the_submit_directory_cannot_load_the_model(
        hooks: adapter.Hooks, wine: tuple[dict[str, Any], Any]) -> None:
    config = _endpoint_config("wine-no-code", NO_CODE_ROLE, _script_container(_artifact("wine-script")))
    hooks.denied.clear()
    with pytest.raises(service_rules.ServiceRefused, match=f"could not download the source code {WINE_SOURCE} as "
                                                           f"{NO_CODE_ROLE}"):
        service_rules.load_variants(config)
    assert [(call.action, call.resource) for call in hooks.denied] == [
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/code/wine/sourcedir.tar.gz")]
    boto3.client("sagemaker").create_endpoint(EndpointName="wine-no-code", EndpointConfigName="wine-no-code")
    described = boto3.client("sagemaker").describe_endpoint(EndpointName="wine-no-code")
    assert described["EndpointStatus"] == "Failed" and "source code" in described["FailureReason"]


def test_the_offline_stage_trains_through_the_dispatch(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {}}))
    assert runner.OfflineStage(tmp_path).hooks.jobs["createTrainingJob"] is jobs.train


@pytest.mark.parametrize(("answer", "rows", "expected"), [
    ("0.1,0.9,0.3", 3, [0.1, 0.9, 0.3]),                       # the built-in XGBoost, real time: one line
    ("[0.1, 0.9],[0.8, 0.2]", 2, [[0.1, 0.9], [0.8, 0.2]]),    # its multi:softprob vectors
    ("0.1,0.7,0.2\n0.6,0.3,0.1\n", 2, [[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]]),  # a script's CSV: one line per row
    ("0.1,0.7,0.2\n", 1, [[0.1, 0.7, 0.2]]),                   # one row of three probabilities, not three scores
    ("51.5\n60.25\n", 2, [51.5, 60.25]),                       # one value per line
])
def test_a_client_reads_each_containers_answer_per_row(answer: str, rows: int, expected: list) -> None:
    from tools.offline.runner import parse_answer

    assert parse_answer(answer, rows) == expected


def test_the_teams_own_image_is_refused_offline_saying_why(hooks: adapter.Hooks) -> None:
    """pipeline.model.container: the runner has no Docker; the training job fails naming the image
    and what does run offline, rather than training something else in its place."""
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-model:2.1"
    outcome = jobs.train(_training("own-image", {"epochs": "5"}, image=image))
    assert outcome["failure"].startswith(f"ClientError: the offline runner cannot run the image {image}: ")
    assert "built-in XGBoost and script-mode models only" in outcome["failure"]


def test_a_pytorch_script_is_refused_offline_saying_why(hooks: adapter.Hooks) -> None:
    """framework: pytorch trains in AWS's PyTorch image; offline there is no torch: the job fails
    naming the image and what does run offline, before anything downloads or runs."""
    image = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312"
    source = _put("code/torch/sourcedir.tar.gz", sourcedir_tarball(EXAMPLE.parent))
    outcome = jobs.train(_training("torch-script", {"epochs": "5", **_framework("train.py", source)}, image=image))
    assert outcome["failure"].startswith("ClientError: the offline runner does not run the pytorch framework image "
                                         "pytorch-training:2.6.0-cpu-py312: ")
    assert "this script trains and serves in AWS" in outcome["failure"]


class _Echo:
    """A model whose answer for each record is the record's first value and how many values it got."""

    def records(self, body: str) -> list[list[str]]:
        import csv

        return [[row[0], str(len(row))] for row in csv.reader(io.StringIO(body))]


def test_a_transform_reads_and_writes_quoted_csv_values_as_one_value_each() -> None:
    """A text category may hold a comma (quoted in the CSV): the filters and the join count it as
    one value, and it stays quoted in the output."""
    lines = jobs._transform_lines(_Echo(), '1,"north, coast",12\n0,south,3\n',
                                  {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$"})
    assert lines == ['1,"north, coast",12,"north, coast",2', "0,south,3,south,2"]
    # two serial containers: the first one's text/csv answer is the second one's request
    pipeline = jobs.PipelinePredictor([type("Upper", (), {"answer": lambda self, body: body.upper()})(), _Echo()])
    assert pipeline.records("a,b\nc,d") == [["A", "2"], ["C", "2"]]


def test_a_script_in_the_xgboost_image_trains_and_serves_with_that_containers_defaults(hooks: adapter.Hooks) -> None:
    """sagemaker_program with the XGBoost image: the script runs (not the built-in algorithm), and
    the model serves through the XGBoost framework container's defaults (its model_fn, then
    text/csv to a DMatrix)."""
    source = _put("code/wine-xgboost/sourcedir.tar.gz", sourcedir_tarball(EXAMPLE.parent / "wine_xgboost"))
    xgboost_script = XGBOOST_IMAGE.replace(":1.7-1", ":3.2-0")
    outcome = jobs.train(_training("wine-xgb-script", {"num_round": "20", **_framework("train.py", source)},
                                   image=xgboost_script, metrics=[METRICS[2]]))
    assert "failure" not in outcome, outcome
    assert list(_members(_artifact("wine-xgb-script"))) == ["xgboost-model"] and outcome["metrics"][
        "validation:accuracy"] > 0.85
    predictor = jobs.load_predictor({"Image": xgboost_script, "ModelDataUrl": _artifact("wine-xgb-script"),
                                     "Environment": {"SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY": source}})
    lines = predictor.answer("\n".join(",".join(f"{v:g}" for v in row[1:]) for row in _test_split()[:2])).splitlines()
    assert len(lines) == 2 and all(len(line.split(",")) == 3 for line in lines)  # class probabilities per row
