"""Script mode offline (tools/offline/script_mode.py): the toolkit's training contract, the
scikit-learn container's serving contract, and the example in models/wine_sklearn, on
scikit-learn's wine data written in the platform's format (CSV, no header, label first)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine

from tools.offline.script_mode import (HandlerError, ScriptModel, TrainingOutcome, UnsupportedFormatError, run_training,
                                       sourcedir_tarball)

EXAMPLE = Path(__file__).resolve().parent.parent / "models" / "wine_sklearn"
METRICS = [{"Name": name, "Regex": f"{name}=([0-9.eE+-]+)"}
           for name in ("train:mlogloss", "train:accuracy", "validation:mlogloss", "validation:accuracy")]
# What the SageMaker Python SDK sends for SKLearn(entry_point="train.py", hyperparameters={"C": 1.0, "max_iter": 500}).
SDK_HYPERPARAMETERS = {"sagemaker_program": '"train.py"',
                       "sagemaker_submit_directory": '"s3://b/code/sourcedir.tar.gz"',
                       "sagemaker_container_log_level": "20", "sagemaker_region": '"eu-west-1"',
                       "C": "1.0", "max_iter": "500"}


def _code(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def _train(tmp_path: Path, source: Path, entry_point: str, channels: dict[str, Path] | None = None,
           **kwargs: object) -> TrainingOutcome:
    hyperparameters = kwargs.pop("hyperparameters", {})
    return run_training(source, entry_point, hyperparameters, channels or {}, tmp_path / "model",
                        tmp_path / "output-data", **kwargs)


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train/validation channels, plus the validation features and labels."""
    features, labels = load_wine(return_X_y=True)
    order = np.random.default_rng(7).permutation(len(labels))
    rows = np.column_stack([labels, features])[order]
    root = tmp_path_factory.mktemp("wine")
    channels = {}
    for name, part in (("train", rows[:140]), ("validation", rows[140:])):
        (root / name).mkdir()
        np.savetxt(root / name / f"part-00000-{name}.csv", part, delimiter=",", fmt="%.6g")
        channels[name] = root / name
    return channels


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, wine: dict[str, Path]) -> tuple[TrainingOutcome, Path]:
    root = tmp_path_factory.mktemp("trained")
    outcome = _train(root, EXAMPLE, "train.py", wine, hyperparameters=SDK_HYPERPARAMETERS, metric_definitions=METRICS)
    return outcome, root / "model"


# --- training ---------------------------------------------------------------------------------


def test_the_example_trains_and_its_metrics_are_read_from_the_log(trained: tuple[TrainingOutcome, Path]) -> None:
    outcome, model_dir = trained
    assert (outcome.exit_code, outcome.failure_reason) == (0, None), outcome.log
    assert set(outcome.metrics) == {d["Name"] for d in METRICS}
    for name, value in outcome.metrics.items():
        assert f"{name}={value:.6f}" in outcome.log
    assert outcome.metrics["validation:accuracy"] >= 0.85
    assert 0 < outcome.metrics["validation:mlogloss"] < 0.5
    assert (model_dir / "model.joblib").is_file()


def test_the_example_uses_its_hyperparameters(tmp_path: Path, wine: dict[str, Path],
                                              trained: tuple[TrainingOutcome, Path]) -> None:
    """C arrives as ``-C`` (one-letter names get one dash): strong regularization must show."""
    strong = _train(tmp_path, EXAMPLE, "train.py", wine, metric_definitions=METRICS,
                    hyperparameters={**SDK_HYPERPARAMETERS, "C": "0.0001"})
    assert strong.exit_code == 0, strong.log
    assert strong.metrics["train:mlogloss"] > 2 * trained[0].metrics["train:mlogloss"]


ECHO = """
    import json, os, sys
    import helper  # a sibling module of the code directory
    env = {k: v for k, v in os.environ.items() if k.startswith("SM_") or k in ("PYTHONPATH", "TRAINING_JOB_NAME")}
    config = os.environ["SM_INPUT_CONFIG_DIR"]
    report = {"argv": sys.argv[1:], "cwd": os.getcwd(), "module": __spec__ is not None, "env": env,
              "config": {name: json.load(open(os.path.join(config, name))) for name in os.listdir(config)},
              "real": {k: os.path.realpath(env[k]) for k in ("SM_CHANNEL_TRAIN", "SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR")},
              "train_files": os.listdir(env["SM_CHANNEL_TRAIN"])}
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "echo.json"), "w") as f:
        json.dump(report, f)
    print("loss=3.5")
    print("loss=not-a-number")
    print("loss=1.25")
    print("noise", file=sys.stderr)
"""
ECHO_HYPERPARAMETERS = {"sagemaker_program": '"echo.py"', "sagemaker_job_name": '"job-1"',
                        "sagemaker_distribution_instance_groups": "[]", "C": "1.0", "max_iter": "500",
                        "solver": '"lbfgs"', "raw": "plain", "flag": "true", "nested": '{"a": 1, "b": "x"}'}


def _echo(tmp_path: Path, wine: dict[str, Path], *,
          files: dict[str, str] | None = None) -> tuple[TrainingOutcome, dict]:
    code = _code(tmp_path / "src", files or {"echo.py": ECHO, "helper.py": ""})
    tarball = tmp_path / "sourcedir.tar.gz"
    tarball.write_bytes(sourcedir_tarball(code))
    outcome = _train(tmp_path, tarball, "echo.py", wine, hyperparameters=ECHO_HYPERPARAMETERS, job_name="job-1",
                     metric_definitions=[{"Name": "loss", "Regex": r"loss=(\S+)"},
                                         {"Name": "absent", "Regex": r"never=(\S+)"}])
    assert outcome.exit_code == 0, outcome.log
    return outcome, json.loads((tmp_path / "output-data" / "echo.json").read_text())


def test_hyperparameters_arrive_json_decoded_as_arguments_without_the_framework_keys(
        tmp_path: Path, wine: dict[str, Path]) -> None:
    _, report = _echo(tmp_path, wine)
    assert report["argv"] == ["-C", "1.0", "--flag", "True", "--max_iter", "500", "--nested", "a=1,b=x",
                              "--raw", "plain", "--solver", "lbfgs"]
    env = report["env"]
    assert json.loads(env["SM_HPS"]) == {"C": 1.0, "flag": True, "max_iter": 500, "nested": {"a": 1, "b": "x"},
                                         "raw": "plain", "solver": "lbfgs"}
    assert (env["SM_HP_C"], env["SM_HP_SOLVER"], env["SM_HP_NESTED"]) == ("1.0", "lbfgs", '{"a":1,"b":"x"}')
    assert not [name for name in env if name.startswith("SM_HP_SAGEMAKER")]
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_distribution_instance_groups": []}
    assert json.loads(env["SM_USER_ARGS"]) == report["argv"]
    assert report["config"]["hyperparameters.json"] == ECHO_HYPERPARAMETERS
    assert report["config"]["resourceconfig.json"]["hosts"] == ["algo-1"]
    assert sorted(report["config"]["inputdataconfig.json"]) == ["train", "validation"]


def test_the_script_sees_the_toolkit_environment(tmp_path: Path, wine: dict[str, Path]) -> None:
    outcome, report = _echo(tmp_path, wine)
    env = report["env"]
    assert Path(report["real"]["SM_CHANNEL_TRAIN"]) == wine["train"].resolve()
    assert report["train_files"] == ["part-00000-train.csv"]
    assert Path(env["SM_CHANNEL_VALIDATION"]) == Path(env["SM_INPUT_DIR"]) / "data" / "validation"
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert sorted(json.loads(env["SM_INPUT_DATA_CONFIG"])) == ["train", "validation"]
    assert Path(report["real"]["SM_MODEL_DIR"]) == (tmp_path / "model").resolve()
    assert Path(report["real"]["SM_OUTPUT_DATA_DIR"]) == (tmp_path / "output-data").resolve()
    assert Path(env["SM_OUTPUT_DIR"]) == Path(env["SM_OUTPUT_DATA_DIR"]).parent
    assert (env["SM_CURRENT_HOST"], env["SM_HOSTS"], env["SM_NUM_GPUS"]) == ("algo-1", '["algo-1"]', "0")
    assert int(env["SM_NUM_CPUS"]) >= 1 and env["SM_LOG_LEVEL"] == "20" and env["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    assert (env["SM_MODULE_NAME"], env["SM_USER_ENTRY_POINT"], env["TRAINING_JOB_NAME"]) == ("echo", "echo.py", "job-1")
    assert json.loads(env["SM_RESOURCE_CONFIG"])["current_host"] == "algo-1"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"] == json.loads(env["SM_HPS"])
    assert training_env["channel_input_dirs"]["train"] == env["SM_CHANNEL_TRAIN"]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == report["cwd"] and report["module"] is False
    assert outcome.metrics == {"loss": 1.25}  # the last line that matches with a number
    assert outcome.log.index("loss=3.5") < outcome.log.index("loss=1.25") and "noise\n" in outcome.log


def test_a_code_directory_with_setup_py_runs_as_a_module(tmp_path: Path, wine: dict[str, Path]) -> None:
    _, report = _echo(tmp_path, wine, files={"echo.py": ECHO, "helper.py": "", "setup.py": ""})
    assert report["module"] is True


@pytest.mark.parametrize(("script", "reason"), [
    ("""
        import os, sys
        with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
            f.write("bad input:\\n  the label column is empty\\n")
        print("written", file=sys.stderr)
        sys.exit(3)
     """, "AlgorithmError: bad input: the label column is empty"),
    ("""
        import sys
        print("loading", file=sys.stderr)
        raise ValueError("no rows in the train channel")
     """, "AlgorithmError: ValueError: no rows in the train channel"),
])
def test_a_failing_script_reports_its_failure_file_or_else_its_last_stderr_line(
        tmp_path: Path, script: str, reason: str) -> None:
    outcome = _train(tmp_path, _code(tmp_path / "src", {"train.py": script}), "train.py")
    assert outcome.exit_code in (1, 3)
    assert outcome.failure_reason == reason


def test_the_failure_reason_is_one_line_of_at_most_1024_characters(tmp_path: Path) -> None:
    script = "raise RuntimeError('x' * 5000)\n"
    outcome = _train(tmp_path, _code(tmp_path / "src", {"train.py": script}), "train.py")
    assert outcome.failure_reason is not None and len(outcome.failure_reason) == 1024
    assert outcome.failure_reason.startswith("AlgorithmError: RuntimeError: xxx") and "\n" not in outcome.failure_reason


def test_a_script_over_max_runtime_is_stopped(tmp_path: Path) -> None:
    script = "import time\nprint('started', flush=True)\ntime.sleep(60)\n"
    start = time.monotonic()
    outcome = _train(tmp_path, _code(tmp_path / "src", {"train.py": script}), "train.py", timeout_seconds=0.5)
    assert time.monotonic() - start < 10
    assert outcome.exit_code != 0 and "started" in outcome.log
    assert outcome.failure_reason == "AlgorithmError: the training script exceeded MaxRuntimeInSeconds (0.5 s)"


MARKER_SCRIPT = "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'ran'), 'w').close()\n"


@pytest.mark.parametrize(("requirements", "named"), [
    ("numpy\nthis-package-is-not-installed-offline==1.0\n", "this-package-is-not-installed-offline"),
    ("# pinned\nscikit-learn>=1\nnumpy<1.0\n", "numpy"),
    ("--index-url https://example.invalid/simple\nnumpy>=1  # comment\nScikit_Learn\n"
     "nothing-here; python_version < '3'\n", None),
])
def test_requirements_must_already_be_installed(tmp_path: Path, requirements: str, named: str | None) -> None:
    code = _code(tmp_path / "src", {"train.py": MARKER_SCRIPT, "requirements.txt": requirements})
    outcome = _train(tmp_path, code, "train.py")
    if named is None:
        assert outcome.exit_code == 0 and (tmp_path / "model" / "ran").exists()
        return
    assert outcome.exit_code != 0 and not (tmp_path / "model" / "ran").exists()
    assert outcome.failure_reason is not None and f"'{named}'" in outcome.failure_reason
    assert "\n" not in outcome.failure_reason


@pytest.mark.parametrize(("entry_point", "words"), [("nope.py", "'nope.py' not found"),
                                                    ("train.sh", "only Python entry points")])
def test_an_entry_point_that_cannot_run_is_named(tmp_path: Path, entry_point: str, words: str) -> None:
    outcome = _train(tmp_path, _code(tmp_path / "src", {"train.py": MARKER_SCRIPT, "train.sh": ""}), entry_point)
    assert outcome.exit_code != 0 and not (tmp_path / "model" / "ran").exists()
    assert outcome.failure_reason is not None and words in outcome.failure_reason


def test_an_archive_escaping_its_directory_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("../escaped.py")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"\n"))
    (tmp_path / "sourcedir.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(tarfile.OutsideDestinationError):
        _train(tmp_path / "job", tmp_path / "sourcedir.tar.gz", "escaped.py")


# --- serving ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(trained: tuple[TrainingOutcome, Path]) -> ScriptModel:
    return ScriptModel(trained[1], EXAMPLE, "train.py")


def _validation_features(wine: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    rows = np.loadtxt(next(wine["validation"].glob("*.csv")), delimiter=",")
    return rows[:, 1:], rows[:, 0].astype(int)


def test_the_served_example_returns_three_probabilities_per_csv_row(served: ScriptModel,
                                                                    wine: dict[str, Path]) -> None:
    features, labels = _validation_features(wine)
    body = "\n".join(",".join(f"{v:.6g}" for v in row) for row in features).encode()
    response, content_type = served.invoke(body, "text/csv", "text/csv")
    probabilities = np.array([[float(v) for v in line.split(",")] for line in response.decode().splitlines()])
    assert content_type == "text/csv" and probabilities.shape == (len(labels), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert (probabilities.argmax(axis=1) == labels).mean() >= 0.85
    one_row, _ = served.invoke(body.splitlines()[0], "text/csv", "text/csv")  # still a 2-D array of one row
    assert len(one_row.decode().splitlines()) == 1 and len(one_row.decode().split(",")) == 3


def test_the_served_example_speaks_json(served: ScriptModel, wine: dict[str, Path]) -> None:
    features, _ = _validation_features(wine)
    body = json.dumps(features[:2].tolist()).encode()
    for accept in ("application/json", "*/*"):
        response, content_type = served.invoke(body, "application/json", accept)
        probabilities = json.loads(response)
        assert content_type == "application/json" and len(probabilities) == 2
        assert all(len(row) == 3 and abs(sum(row) - 1) < 1e-6 for row in probabilities)


def test_the_served_example_refuses_unknown_content_types(served: ScriptModel) -> None:
    with pytest.raises(UnsupportedFormatError, match="application/xml.*text/csv") as refused:
        served.invoke(b"<rows/>", "application/xml", "text/csv")
    assert refused.value.status_code == 415
    with pytest.raises(UnsupportedFormatError, match="text/html") as not_acceptable:
        served.invoke(b"1,2,3,4,5,6,7,8,9,10,11,12,13", "text/csv", "text/html")
    assert not_acceptable.value.status_code == 406


def test_a_model_is_served_from_the_sdk_tarball(tmp_path: Path, trained: tuple[TrainingOutcome, Path]) -> None:
    (tmp_path / "sourcedir.tar.gz").write_bytes(sourcedir_tarball(EXAMPLE))
    model = ScriptModel(trained[1], tmp_path / "sourcedir.tar.gz", "train.py")
    buffer = io.BytesIO()
    np.save(buffer, np.ones((1, 13)))
    response, content_type = model.invoke(buffer.getvalue(), "application/x-npy", "application/x-npy")
    assert content_type == "application/x-npy" and np.load(io.BytesIO(response)).shape == (1, 3)


def test_a_module_without_model_fn_is_refused(tmp_path: Path) -> None:
    code = _code(tmp_path / "src", {"inference.py": "def predict_fn(data, model):\n    return data\n"})
    with pytest.raises(ValueError, match=r"inference\.py defines no model_fn: model_fn\(model_dir\) is required"):
        ScriptModel(tmp_path, code, "inference.py")


HANDLERS = """
    class Model:
        def predict(self, data):
            return data.sum(axis=1)

    def model_fn(model_dir):
        return Model()

    def input_fn(body, content_type):
        if "boom" in body:
            raise KeyError("boom")
        import numpy
        return numpy.array([[float(v) for v in line.split(",")] for line in body.split()])
"""


def test_user_handlers_replace_the_defaults_and_their_errors_name_them(tmp_path: Path) -> None:
    model = ScriptModel(tmp_path, _code(tmp_path / "src", {"handlers.py": HANDLERS}), "handlers.py")
    assert model.invoke(b"1,2\n3,4\n") == (b"3.0\n7.0\n", "text/csv")  # default predict_fn and output_fn
    with pytest.raises(HandlerError, match=r"input_fn \(handlers\.py\) raised KeyError"):
        model.invoke(b"boom", "text/csv")


def test_transform_fn_replaces_the_three_handlers_and_cannot_be_mixed_with_them(tmp_path: Path) -> None:
    transform = "def model_fn(d):\n    return 2\n\ndef transform_fn(model, body, ct, accept):\n" \
                "    return (body * model).encode(), 'text/plain'\n"
    model = ScriptModel(tmp_path, _code(tmp_path / "a", {"t.py": transform}), "t.py")
    assert model.invoke(b"ab", "text/csv", "text/csv") == (b"abab", "text/plain")
    mixed = transform + "\ndef predict_fn(data, model):\n    return data\n"
    with pytest.raises(ValueError, match="transform_fn cannot be used with"):
        ScriptModel(tmp_path, _code(tmp_path / "b", {"t.py": mixed}), "t.py")


# --- sourcedir.tar.gz -------------------------------------------------------------------------


def _tree(root: Path, mtime: int) -> Path:
    files = {"train.py": "print('hi')\n", "lib/util.py": "X = 1\n", "requirements.txt": "numpy\n",
             "__pycache__/train.cpython-311.pyc": "junk", "lib/__pycache__/util.cpython-311.pyc": "junk",
             "lib/stale.pyc": "junk", ".DS_Store": "junk", ".env": "SECRET=1"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for path in [*root.rglob("*"), root]:
        os.utime(path, (mtime, mtime))
    return root


def test_sourcedir_tarball_is_the_same_bytes_for_the_same_content(tmp_path: Path) -> None:
    first = sourcedir_tarball(_tree(tmp_path / "a", 1_000_000))
    second = sourcedir_tarball(_tree(tmp_path / "b", 2_000_000))
    assert first == second
    assert gzip.decompress(first)  # a valid gzip stream
    assert first[4:8] == b"\0\0\0\0"  # gzip header MTIME
    (tmp_path / "b" / "lib" / "util.py").write_text("X = 2\n")
    assert sourcedir_tarball(tmp_path / "b") != first


def test_sourcedir_tarball_holds_the_code_at_its_root_and_skips_caches_and_dot_files(tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(sourcedir_tarball(_tree(tmp_path / "src", 1_000_000)))) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == ["lib", "lib/util.py", "requirements.txt", "train.py"]
    assert {(m.name, m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        ("lib", 0o755, 0, 0, 0, "", ""), ("lib/util.py", 0o644, 0, 0, 0, "", ""),
        ("requirements.txt", 0o644, 0, 0, 0, "", ""), ("train.py", 0o644, 0, 0, 0, "", "")}


# --- the XGBoost framework container ----------------------------------------------------------

XGBOOST_EXAMPLE = Path(__file__).resolve().parent.parent / "models" / "wine_xgboost"


def test_an_xgboost_script_trains_and_serves_through_the_containers_default_handlers(
        tmp_path: Path, wine: dict[str, Path]) -> None:
    """models/wine_xgboost/train.py in the XGBoost framework container: trained under the same
    toolkit contract (the container's own framework module), served with its model_fn and the
    container's defaults: text/csv to a DMatrix, predict(validate_features=False), one line of
    class probabilities per row."""
    metrics = [{"Name": name, "Regex": f"{name}=([0-9.eE+-]+)"} for name in ("validation:mlogloss", "validation:accuracy")]
    outcome = _train(tmp_path, XGBOOST_EXAMPLE, "train.py", wine, framework="xgboost", metric_definitions=metrics,
                     hyperparameters={"sagemaker_program": '"train.py"', "num_round": "30", "max_depth": "3"})
    assert (outcome.exit_code, outcome.failure_reason) == (0, None), outcome.log
    assert outcome.metrics["validation:accuracy"] >= 0.85 and (tmp_path / "model" / "xgboost-model").is_file()
    model = ScriptModel(tmp_path / "model", XGBOOST_EXAMPLE, "train.py", framework="xgboost")
    rows = [line for line in next(wine["validation"].glob("*.csv")).read_text().splitlines()[:2]]
    body = "\n".join(",".join(line.split(",")[1:]) for line in rows).encode()
    answer, content_type = model.invoke(body)
    lines = answer.decode().splitlines()
    assert content_type == "text/csv" and len(lines) == 2
    assert all(len(line.split(",")) == 3 and abs(sum(map(float, line.split(","))) - 1) < 1e-4 for line in lines)
    with pytest.raises(UnsupportedFormatError):  # the default input_fn decodes CSV here (libsvm and protobuf not emulated)
        model.invoke(b"[[1, 2]]", content_type="application/json")


def test_an_xgboost_script_without_model_fn_is_refused_naming_the_container(tmp_path: Path) -> None:
    code = _code(tmp_path / "code", {"inference.py": "def predict_fn(data, model):\n    return data\n"})
    with pytest.raises(ValueError, match="inference.py defines no model_fn: model_fn\\(model_dir\\) is required, the "
                                         "XGBoost container has no default model loader"):
        ScriptModel(tmp_path, code, "inference.py", framework="xgboost")
