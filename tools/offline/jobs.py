"""The real work behind SageMaker jobs in offline runs.

* Training with the built-in XGBoost algorithm: the ``xgboost`` package trains on the same
  channels (CSV, label first, no header, read from the emulated S3) with the request's
  hyperparameters, and ``model.tar.gz`` (holding ``xgboost-model``) lands where SageMaker
  would put it: ``<S3OutputPath>/<job name>/output/model.tar.gz``.
* Processing jobs run the container entry point (the repo's script, downloaded from the
  emulated S3 like SageMaker would) as a subprocess, with ``/opt/ml/processing/...``
  mapped to a temp dir; outputs are uploaded to their S3 destinations afterwards.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import numpy as np

PROCESSING_ROOT = "/opt/ml/processing"
# Hyperparameters of the built-in algorithm that are not xgboost.train parameters.
_NOT_PARAMS = {"num_round", "early_stopping_rounds", "csv_weights"}


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def download_prefix(uri: str, target: Path) -> list[Path]:
    s3 = boto3.client("s3")
    bucket, prefix = _split(uri)
    files = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):].lstrip("/") or Path(item["Key"]).name
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            # get/put_object, not the threaded transfer manager: calls stay attributable to the job
            path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            files.append(path)
    return files


def upload_dir(source: Path, uri: str) -> None:
    s3 = boto3.client("s3")
    bucket, prefix = _split(uri)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            key = f"{prefix.rstrip('/')}/{path.relative_to(source)}" if prefix else str(path.relative_to(source))
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def _read_channel(uri: str) -> tuple[np.ndarray, np.ndarray]:
    with tempfile.TemporaryDirectory() as scratch:
        files = download_prefix(uri, Path(scratch))
        if not files:
            raise ValueError(f"channel {uri} is empty")
        table = np.vstack([np.loadtxt(path, delimiter=",", ndmin=2) for path in sorted(files)])
    return table[:, 0], table[:, 1:]


def train_xgboost(request: dict[str, Any], *, fault: str | None = None) -> dict[str, Any]:
    """Train like the built-in XGBoost algorithm does, from a CreateTrainingJob request."""
    import xgboost

    xgboost.set_config(verbosity=0)  # the library's own stderr notes would drown the demo's progress
    if fault == "fail":
        return {"failure": "AlgorithmError: injected training failure (offline scenario)"}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    hyperparameters = dict(request.get("HyperParameters", {}))
    params = {key: value for key, value in hyperparameters.items() if key not in _NOT_PARAMS}
    labels, features = _read_channel(channels["train"])
    train = xgboost.DMatrix(features, label=labels)
    evals = [(train, "train")]
    if "validation" in channels:
        v_labels, v_features = _read_channel(channels["validation"])
        evals.append((xgboost.DMatrix(v_features, label=v_labels), "validation"))
    params.setdefault("nthread", 2)
    history: dict[str, dict[str, list[float]]] = {}
    booster = xgboost.train(params, train, num_boost_round=int(hyperparameters.get("num_round", 10)), evals=evals,
                            evals_result=history, verbose_eval=False)
    with tempfile.TemporaryDirectory() as scratch:
        model_file = Path(scratch) / "xgboost-model"  # the built-in algorithm's file name, no extension
        with warnings.catch_warnings():  # xgboost notes it picks UBJSON for extension-less names
            warnings.simplefilter("ignore", UserWarning)
            booster.save_model(str(model_file))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            archive.add(model_file, arcname="xgboost-model")
    bucket, prefix = _split(request["OutputDataConfig"]["S3OutputPath"])
    key = f"{prefix.rstrip('/')}/{request['TrainingJobName']}/output/model.tar.gz".lstrip("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    # final values as the algorithm emits them: "validation:auc", "train:logloss", ...
    metrics = {f"{channel}:{name}": values[-1] for channel, found in history.items() for name, values in found.items()}
    return {"hyperparameters": hyperparameters, "metrics": metrics}


def run_tuning(request: dict[str, Any], *, fault: str | None = None) -> dict[str, Any]:
    """Automatic model tuning, offline: ``MaxNumberOfTrainingJobs`` seeded random draws from
    the ranges (SageMaker's Bayesian search is not reproduced), each trained for real and
    recorded as a training job; the best by the objective metric wins."""
    from tools.offline import adapter

    if fault == "fail":
        return {"failure": "No training job succeeded (injected tuning failure)"}
    config, definition = request["HyperParameterTuningJobConfig"], request["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    ranges = config["ParameterRanges"]
    rng = np.random.default_rng(0)
    sagemaker = boto3.client("sagemaker")
    results = []
    for index in range(config["ResourceLimits"]["MaxNumberOfTrainingJobs"]):
        tuned = {}
        for r in ranges.get("ContinuousParameterRanges", []):
            low, high = float(r["MinValue"]), float(r["MaxValue"])
            log = r.get("ScalingType") == "Logarithmic"
            value = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if log else float(rng.uniform(low, high))
            tuned[r["Name"]] = f"{value:.6g}"
        for r in ranges.get("IntegerParameterRanges", []):
            tuned[r["Name"]] = str(int(rng.integers(int(r["MinValue"]), int(r["MaxValue"]) + 1)))
        for r in ranges.get("CategoricalParameterRanges", []):
            tuned[r["Name"]] = str(rng.choice(r["Values"]))
        name = f"{request['HyperParameterTuningJobName']}-{index + 1:03d}-{rng.integers(16**8):08x}"[-63:].lstrip("-")
        job = {key: value for key, value in definition.items() if key not in ("StaticHyperParameters",)}
        job.update(TrainingJobName=name, HyperParameters={**definition.get("StaticHyperParameters", {}), **tuned})
        with adapter.principal("sagemaker-service"):  # the tuning service starts these, not our roles
            sagemaker.create_training_job(**job)
        outcome = train_xgboost(job)
        value = outcome["metrics"].get(objective["MetricName"])
        if value is None:
            return {"failure": f"objective metric {objective['MetricName']} not emitted (have: {sorted(outcome['metrics'])})"}
        results.append((value, name, tuned))
    pick = max if objective["Type"] == "Maximize" else min
    value, name, tuned = pick(results, key=lambda result: result[0])
    return {"best": {
        "TrainingJobName": name, "TrainingJobStatus": "Completed", "TunedHyperParameters": tuned,
        "FinalHyperParameterTuningJobObjectiveMetric": {"Type": objective["Type"], "MetricName": objective["MetricName"],
                                                        "Value": float(value)},
        "ObjectiveStatus": "Succeeded",
    }}


def run_processing(request: dict[str, Any], *, fault: str | None = None) -> dict[str, Any]:
    """Run a CreateProcessingJob request's entry point as a subprocess."""
    if fault == "fail":
        return {"failure": "AlgorithmError: injected processing failure (offline scenario)"}
    app = request["AppSpecification"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        local = lambda path: str(root / Path(path).relative_to(PROCESSING_ROOT))  # noqa: E731
        for item in request.get("ProcessingInputs", []):
            target = Path(local(item["S3Input"]["LocalPath"]))
            target.mkdir(parents=True, exist_ok=True)
            download_prefix(item["S3Input"]["S3Uri"], target)
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            Path(local(item["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        command = [sys.executable if part in ("python3", "python") else part for part in app["ContainerEntrypoint"]]
        command = [local(part) if part.startswith(PROCESSING_ROOT) else part for part in command]
        arguments = [local(a) if a.startswith(PROCESSING_ROOT) else a for a in app.get("ContainerArguments", [])]
        result = subprocess.run(command + arguments, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "PROCESSING_ROOT": str(root)})
        if result.returncode != 0:
            return {"failure": f"AlgorithmError: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'exit ' + str(result.returncode)}"}
        for item in outputs:
            upload_dir(Path(local(item["S3Output"]["LocalPath"])), item["S3Output"]["S3Uri"])
    return {"stdout": result.stdout}


def _select(values: list[str], expression: str) -> list[str]:
    """The JSONPath subset SageMaker batch transform filters use on CSV rows:
    ``$``, ``$[a:b]`` and ``$[i,j,...]`` (negative indexes allowed)."""
    if expression in ("", "$"):
        return values
    inner = expression.removeprefix("$[").removesuffix("]")
    if ":" in inner:
        start, _, stop = inner.partition(":")
        return values[int(start) if start else None:int(stop) if stop else None]
    return [values[int(index)] for index in inner.split(",")]


def _load_booster(model_data: str):  # noqa: ANN202
    import xgboost

    xgboost.set_config(verbosity=0)
    bucket, key = _split(model_data)
    archive = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(scratch, filter="data")
        booster = xgboost.Booster()
        booster.load_model(str(Path(scratch) / "xgboost-model"))
    return booster


def run_transform(request: dict[str, Any], *, fault: str | None = None) -> dict[str, Any]:
    """Batch transform with the model's artifact (found through its model package),
    honouring the request's DataProcessing filters and join."""
    import xgboost

    if fault == "fail":
        return {"failure": "ClientError: injected transform failure (offline scenario)"}
    from tools.offline import adapter

    sagemaker = boto3.client("sagemaker")
    with adapter.principal("sagemaker-service"):  # SageMaker resolves the model itself, not the execution role
        container = sagemaker.describe_model(ModelName=request["ModelName"])["PrimaryContainer"]
        model_data = container.get("ModelDataUrl")
        if not model_data:
            package = sagemaker.describe_model_package(ModelPackageName=container["ModelPackageName"])
            model_data = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    booster = _load_booster(model_data)
    processing = request.get("DataProcessing", {})
    source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    output = request["TransformOutput"]["S3OutputPath"]
    s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory() as scratch:
        for path in download_prefix(source, Path(scratch)):
            rows = [line.split(",") for line in path.read_text().splitlines() if line.strip()]
            features = np.array([[float(v) for v in _select(row, processing.get("InputFilter", "$"))] for row in rows])
            predictions = booster.predict(xgboost.DMatrix(features))
            lines = []
            for row, prediction in zip(rows, predictions):
                joined = row + [f"{prediction:.6f}"] if processing.get("JoinSource") == "Input" else [f"{prediction:.6f}"]
                lines.append(",".join(_select(joined, processing.get("OutputFilter", "$"))))
            bucket, prefix = _split(output)
            key = f"{prefix.rstrip('/')}/{path.relative_to(scratch)}.out".lstrip("/")
            s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
    return {}
