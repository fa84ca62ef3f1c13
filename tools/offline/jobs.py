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
    booster = xgboost.train(params, train, num_boost_round=int(hyperparameters.get("num_round", 10)), evals=evals,
                            verbose_eval=False)
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
    return {"hyperparameters": hyperparameters}


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
    sagemaker = boto3.client("sagemaker")
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
