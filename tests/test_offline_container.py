"""A team's own image offline (pipeline.model.container with ``local.command``): the example
program models/churn_container/main.py trains under SageMaker's container contract, reports its
metrics, predicts the test split in a batch transform that the evaluation scores, and serves an
endpoint over HTTP; serving processes are gone when the offline stage's ``local_containers``
closes. Without a local command the job fails saying how to add one; mistakes in ``local`` are
refused at synth naming the field.

moto plays S3 and SageMaker's records, as in tests/test_offline_script_jobs.py; the requests have
the shapes the synthesized state machine sends for a container model (no ``sagemaker_*``
hyperparameters, the image's own). A full stage run of the same model (synth, data phase on
Spark, every state) takes about 30 s, beyond this file's budget: the jobs are exercised here
directly, each as the stage's state would start it."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import pickle
import tarfile
import textwrap
from pathlib import Path
from typing import Any, Iterator

import boto3
import numpy as np
import pytest
import yaml
from moto import mock_aws
from sklearn.metrics import roc_auc_score

from mlops.config import REPO_ROOT, ConfigError, load_stage_config
from tools.offline import adapter, jobs, runner, script_mode
from tests import test_offline_script_jobs as script_jobs
from tests.test_offline_script_jobs import ACCOUNT, BUCKET, REGION, _get, _put
from tools.offline.iam import PolicyModel

IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-model:1.0"
PROBE_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/probe:1"
DROP_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/drop-columns:1"
METRICS = [{"Name": name, "Regex": f"{name}=([0-9.eE+-]+)"} for name in ("validation:auc", "validation:logloss")]
ROLE = "ServingRole"
POLICIES = {ROLE: [{"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage",
                                                  "ecr:GetDownloadUrlForLayer", "s3:GetObject", "s3:PutObject"],
                    "Resource": "*"}]}
# The features in the training layout's order: the dataset's feature columns as declared (churn.yaml)
FEATURES = ("plan", "region", "tenure_months", "monthly_charges", "support_calls", "contract")

# A stand-in image that shows what it was given: its argv, environment and /opt/ml-like tree.
PROBE = """\
    import json, os, sys
    from pathlib import Path
    config = Path(os.environ["SM_INPUT_CONFIG_DIR"])
    seen = {"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k.startswith("SM_")},
            "hyperparameters": json.loads((config / "hyperparameters.json").read_text()),
            "inputdataconfig": json.loads((config / "inputdataconfig.json").read_text()),
            "train_files": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])), "cwd": os.getcwd()}
    if seen["hyperparameters"].get("fail"):
        Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text("the probe was told to fail")
        sys.exit(3)
    Path(os.environ["SM_MODEL_DIR"], "seen.json").write_text(json.dumps(seen))
    print("validation:auc=0.5")
"""
# A stand-in first container of an inference pipeline: drops DROP_COLUMNS leading columns (its
# container Environment) of each text/csv row and answers the rest.
DROP = """\
    import http.server, os
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            drop = int(os.environ["DROP_COLUMNS"])
            answer = "".join(",".join(line.split(",")[drop:]) + "\\n" for line in body.splitlines()).encode()
            self.send_response(200); self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(answer))); self.end_headers(); self.wfile.write(answer)
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", int(os.environ["SAGEMAKER_BIND_TO_PORT"])), Handler).serve_forever()
"""


def _churn_rows() -> list[list[str]]:
    """The churn sample in the training layout: the label's class index first (no 0, yes 1),
    then the features, categories as text, missing values as the raw file has them."""
    with (REPO_ROOT / "data" / "sample" / "churn" / "churn.csv").open() as file:
        return [["1" if row["churned"] == "yes" else "0", *(row[name] for name in FEATURES)]
                for row in csv.DictReader(file)]


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Image URI -> argv: the example's (as the stage config resolves it) and the two stand-ins."""
    directory = tmp_path_factory.mktemp("images")
    (directory / "probe.py").write_text(textwrap.dedent(PROBE))
    (directory / "drop.py").write_text(textwrap.dedent(DROP))
    config = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    config["pipeline"]["model"] = {"container": {"image_uri": IMAGE, "local": {
        "command": ["python", "models/churn_container/main.py"]}}}
    config["pipeline"]["hyperparameters"] = {"C": "1.0"}
    config["pipeline"].pop("tuning")
    (directory / "dev.yaml").write_text(yaml.safe_dump(config))
    local = runner.local_containers_of(load_stage_config("dev", directory))
    python = local[IMAGE][0]
    return {**local, PROBE_IMAGE: [python, str(directory / "probe.py")], DROP_IMAGE: [python, str(directory / "drop.py")]}


@pytest.fixture(scope="module")
def stage(programs: dict[str, list[str]]) -> Iterator[adapter.Hooks]:
    """moto with the offline patches and call enforcement, the churn splits in S3 (600 train,
    200 validation, 200 test rows) and the images' local commands, as an OfflineStage has them."""
    hooks = adapter.Hooks(policies=PolicyModel(identity=POLICIES))
    with jobs.local_containers(programs), runner._fake_credentials(), mock_aws(config=runner.MOTO_CONFIG), \
            adapter.patched(hooks), runner._recording_calls(hooks):
        boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        rows = _churn_rows()
        for name, part in (("train", rows[:600]), ("validation", rows[600:800]), ("test", rows[800:])):
            _put(f"data/{name}/part-00000.csv", _csv(part))
        yield hooks


def _training(name: str, image: str, hyperparameters: dict[str, str]) -> dict[str, Any]:
    """CreateTrainingJob as "Train model" sends it for an image: its hyperparameters as they are."""
    return script_jobs._training(name, hyperparameters, image=image, metrics=METRICS)


def _members(uri: str) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(_get(uri))) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


@pytest.fixture(scope="module")
def trained(stage: adapter.Hooks) -> tuple[dict[str, Any], dict[str, Any]]:
    """The example image trained offline: (the job's outcome, what it saved to the model dir)."""
    outcome = jobs.train(_training("churn-image", IMAGE, {"C": "1.0", "max_iter": "1000"}))
    assert "failure" not in outcome, outcome
    return outcome, pickle.loads(_members(f"s3://{BUCKET}/models/churn-image/output/model.tar.gz")["model.pkl"])


def _scores(saved: dict[str, Any], rows: list[list[str]]) -> np.ndarray:
    module = _example_module()
    return saved["model"].predict_proba(module.as_table(rows, saved["text_columns"]))[:, 1]


def _example_module():  # noqa: ANN202 - the example program, imported to score as it does
    spec = importlib.util.spec_from_file_location("churn_container_main", REPO_ROOT / "models/churn_container/main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(name: str, containers: list[dict[str, Any]]) -> None:
    boto3.client("sagemaker").create_model(ModelName=name, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{ROLE}",
                                           **({"PrimaryContainer": containers[0]} if len(containers) == 1
                                              else {"Containers": containers}))


def _container(image: str = IMAGE, environment: dict[str, str] | None = None) -> dict[str, Any]:
    """CreateModel's container for the image, as "Create candidate model" sends it."""
    return {"Image": image, "ModelDataUrl": f"s3://{BUCKET}/models/churn-image/output/model.tar.gz",
            "Environment": environment or {}}


# --- training -----------------------------------------------------------------------------------
def test_the_image_trains_offline_and_reports_its_metrics(trained: tuple[dict[str, Any], dict[str, Any]]) -> None:
    outcome, saved = trained
    assert set(outcome["metrics"]) == {"validation:auc", "validation:logloss"}
    validation = _churn_rows()[600:800]
    expected = roc_auc_score([int(row[0]) for row in validation], _scores(saved, [row[1:] for row in validation]))
    assert outcome["metrics"]["validation:auc"] == pytest.approx(expected, abs=1e-5)  # this job's, from its log
    assert outcome["metrics"]["validation:auc"] > 0.75
    assert saved["text_columns"] == [0, 1, 5]  # plan, region, contract: text, one-hot encoded
    assert outcome["hyperparameters"] == {"C": "1.0", "max_iter": "1000"}


def test_the_program_gets_the_containers_contract_and_the_paths_in_sm_variables(stage: adapter.Hooks) -> None:
    outcome = jobs.train(_training("probe", PROBE_IMAGE, {"C": "1.0", "solver": '"lbfgs"'}))
    assert outcome["metrics"] == {"validation:auc": 0.5}
    seen = json.loads(_members(f"s3://{BUCKET}/models/probe/output/model.tar.gz")["seen.json"])
    assert seen["argv"] == ["train"]  # no hyperparameters as options: they are in the file
    assert seen["hyperparameters"] == {"C": "1.0", "solver": '"lbfgs"'}  # raw strings, not JSON-decoded
    assert set(seen["inputdataconfig"]) == {"train", "validation"} and seen["train_files"] == ["part-00000.csv"]
    env = seen["env"]
    root = Path(env["SM_MODEL_DIR"]).parent
    assert env["SM_CHANNEL_TRAIN"] == str(root / "input" / "data" / "train")
    assert env["SM_INPUT_CONFIG_DIR"] == str(root / "input" / "config")
    assert env["SM_OUTPUT_DATA_DIR"] == str(root / "output" / "data") and env["SM_OUTPUT_DIR"] == str(root / "output")
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"] and json.loads(env["SM_HPS"])["C"] == "1.0"
    assert seen["cwd"] == str(REPO_ROOT)


def test_the_programs_failure_file_is_the_jobs_failure_reason(stage: adapter.Hooks) -> None:
    outcome = jobs.train(_training("probe-fails", PROBE_IMAGE, {"fail": "yes"}))
    assert outcome == {"failure": "AlgorithmError: the probe was told to fail"}


def test_an_image_without_a_local_command_fails_saying_how_to_add_one(stage: adapter.Hooks) -> None:
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/other-model:2"
    outcome = jobs.train(_training("no-local", image, {}))
    assert outcome["failure"].startswith(f"ClientError: the offline runner cannot run the image {image}: ")
    assert "pipeline.model.container.local.command" in outcome["failure"]
    assert "pipeline.model.candidates[i].container.local.command" in outcome["failure"]


# --- serving ------------------------------------------------------------------------------------
def test_the_test_split_is_predicted_over_http_and_evaluated(trained: tuple[dict[str, Any], dict[str, Any]],
                                                             tmp_path: Path) -> None:
    """"Predict test split" → "Evaluate on test split": the batch transform sends the rows without
    their label to /invocations; the evaluation scores the answers against the labels."""
    _model("churn-candidate", [_container()])
    request = {"TransformJobName": "predict-test", "ModelName": "churn-candidate", "BatchStrategy": "MultiRecord",
               "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                  "S3Uri": f"s3://{BUCKET}/data/test/"}},
                                  "ContentType": "text/csv", "SplitType": "Line"},
               "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/predictions/", "Accept": "text/csv",
                                   "AssembleWith": "Line"},
               "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
               "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "None", "OutputFilter": "$"}}
    boto3.client("sagemaker").create_transform_job(**request)
    serving = list(jobs._SERVING)  # the endpoints' processes of other tests, if any
    assert jobs.run_transform(request) == {}
    assert not [p for p in jobs._SERVING if p not in serving]  # the transform's server stopped with the job
    answer = _get(f"s3://{BUCKET}/predictions/part-00000.csv.out").decode()
    test = _churn_rows()[800:]
    np.testing.assert_allclose([float(line) for line in answer.splitlines()],
                               _scores(trained[1], [row[1:] for row in test]), atol=1e-9)
    (tmp_path / "predictions").mkdir()
    (tmp_path / "test").mkdir()
    (tmp_path / "predictions" / "part-00000.csv.out").write_text(answer)
    (tmp_path / "test" / "part-00000.csv").write_bytes(_csv(test))
    spec = importlib.util.spec_from_file_location("container_evaluate", REPO_ROOT / "jobs/evaluation/evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    report = evaluate.main(["--problem-type", "binary_classification", "--threshold", "0.35", "--predictions-dir",
                            str(tmp_path / "predictions"), "--test-dir", str(tmp_path / "test"),
                            "--output-dir", str(tmp_path / "evaluation")])
    assert report["binary_classification_metrics"]["auc"]["value"] > 0.75


def test_an_endpoint_answers_raw_rows_from_the_serving_process(trained: tuple[dict[str, Any], dict[str, Any]]) -> None:
    sagemaker = boto3.client("sagemaker")
    _model("churn-live", [_container()])
    sagemaker.create_endpoint_config(EndpointConfigName="churn-live", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "churn-live", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="churn-live", EndpointConfigName="churn-live")
    assert sagemaker.describe_endpoint(EndpointName="churn-live")["EndpointStatus"] == "InService"
    rows = [row[1:] for row in _churn_rows()[800:803]]  # as a client has them: categories as text
    answer = boto3.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="churn-live", ContentType="text/csv", Body=_csv(rows))["Body"].read().decode()
    np.testing.assert_allclose([float(line) for line in answer.splitlines()], _scores(trained[1], rows), atol=1e-9)


def test_an_inference_pipeline_chains_two_serving_processes(trained: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Two containers, each on its own SAGEMAKER_BIND_TO_PORT, each with its Environment: the first
    drops a leading id column, the model scores what it answers."""
    predictor = jobs.load_model([_container(DROP_IMAGE, {"DROP_COLUMNS": "1"}), _container()])
    try:
        first, second = predictor.predictors
        assert first.port != second.port
        rows = [row[1:] for row in _churn_rows()[800:805]]
        answer = predictor.answer(_csv([[f"C{n}", *row] for n, row in enumerate(rows)]).decode())
        np.testing.assert_allclose([float(v) for v in answer.split()], _scores(trained[1], rows), atol=1e-9)
        with pytest.raises(script_mode.HandlerError, match=r"POST /invocations to .*churn-model:1.0 answered 400: "):
            second.answer("basic,east\n")  # two of six features: the program answers 400
    finally:
        jobs.close_predictor(predictor)


def test_a_program_that_never_gets_healthy_fails_to_load_with_its_stderr(
        trained: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.exit('no model.pkl in SM_MODEL_DIR')\n")
    with jobs.local_containers({IMAGE: [jobs.LOCAL_CONTAINERS[IMAGE][0], str(broken)]}):
        with pytest.raises(jobs.LoadFailed, match=r"exited with code 1 before answering GET /ping; its last stderr "
                                                  r"lines: no model.pkl in SM_MODEL_DIR"):
            jobs.load_predictor(_container())


def test_serving_processes_are_gone_when_the_stage_closes(programs: dict[str, list[str]], stage: adapter.Hooks,
                                                          trained: tuple[dict[str, Any], dict[str, Any]]) -> None:
    with jobs.local_containers(programs):  # what OfflineStage enters first and leaves last
        predictor = jobs.load_predictor(_container())
        process = predictor.process
        assert predictor.answer(_csv([_churn_rows()[0][1:]]).decode()).strip()
        assert process.poll() is None
    assert process.poll() is not None and predictor not in jobs._SERVING
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)  # stopped and reaped: no orphan, no zombie
    assert jobs.LOCAL_CONTAINERS == programs  # the enclosing stage's commands are back


# --- config -------------------------------------------------------------------------------------
def _config_with(tmp_path: Path, model: dict[str, Any]) -> Any:
    config = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    config["pipeline"]["model"] = model
    config["pipeline"]["hyperparameters"] = {"C": "1.0"}
    config["pipeline"].pop("tuning")
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(config))
    return load_stage_config("dev", tmp_path)


@pytest.mark.parametrize(("command", "message"), [
    ([], "pipeline.model.container.local.command: needs the program and its arguments"),
    (["python", "models/churn_container/mian.py"], "'models/churn_container/mian.py' is not a file of the repository"),
    (["python", "/opt/program/main.py"], "'/opt/program/main.py': a path must be relative to the repository root"),
    (["python", "../elsewhere/main.py"], "'../elsewhere/main.py': a path must be relative to the repository root"),
    (["python", "main.py"], "'main.py' is not a file of the repository"),
])
def test_mistakes_in_the_local_command_are_refused_naming_the_field(tmp_path: Path, command: list[str],
                                                                    message: str) -> None:
    with pytest.raises(ConfigError, match="pipeline.model.container.local.command: ") as error:
        _config_with(tmp_path, {"container": {"image_uri": IMAGE, "local": {"command": command}}})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_candidates_local_command_is_named_by_its_index(tmp_path: Path) -> None:
    candidates = [{"name": "xgb", "builtin": "xgboost"},
                  {"name": "own", "container": {"image_uri": IMAGE, "local": {"command": ["python", "nope.py"]}}}]
    with pytest.raises(ConfigError, match=r"pipeline\.model\.candidates\[1\]\.container\.local\.command: 'nope.py' "):
        _config_with(tmp_path, {"candidates": candidates})
    with pytest.raises(ConfigError, match=r"pipeline\.model\.container\.local\.cmd: unknown key; allowed keys here: command"):
        _config_with(tmp_path, {"container": {"image_uri": IMAGE, "local": {"cmd": ["python"]}}})


def test_the_local_command_is_resolved_for_this_machine_and_never_reaches_the_template(tmp_path: Path) -> None:
    """``python`` is the runner's interpreter, repository files absolute, a program on PATH left
    as it is; the algorithm the templates are built from is the same with or without ``local``."""
    import aws_cdk as cdk

    from mlops.constructs.training.algorithm import algorithm

    local = {"command": ["python3", "-u", "models/churn_container/main.py", "--verbose"]}
    with_local = _config_with(tmp_path, {"container": {"image_uri": IMAGE, "local": local}})
    assert runner.local_containers_of(with_local, python="/venv/bin/python") == {
        IMAGE: ["/venv/bin/python", "-u", str(REPO_ROOT / "models/churn_container/main.py"), "--verbose"]}
    without = _config_with(tmp_path, {"container": {"image_uri": IMAGE}})
    assert runner.local_containers_of(without) == {}
    built = [algorithm(cdk.Stack(), config.pipeline, images=None) for config in (with_local, without)]
    assert built[0] == built[1]
