"""The real work behind SageMaker jobs in offline runs.

* Training (``train``) takes one of two paths, as the request says:

  - the built-in XGBoost algorithm (``train_xgboost``): the ``xgboost`` package trains on the
    same channels (CSV, label first, no header, read from the emulated S3) with the request's
    hyperparameters, and ``model.tar.gz`` (holding ``xgboost-model``) lands where SageMaker
    would put it: ``<S3OutputPath>/<job name>/output/model.tar.gz``;
  - the built-in Linear Learner (``train_linear_learner``), when the image is SageMaker's
    ``linear-learner``: AWS's algorithm is closed, so it is *emulated* with scikit-learn (a
    linear model of the ``predictor_type``, Linear Learner's default normalization, seeded).
    Its final metrics carry Linear Learner's own names (``validation:mse``, ...) but are the
    emulation's figures, not AWS's; its ``model.tar.gz`` holds the emulation's own model
    (``linear-learner-emulation.json``), not Linear Learner's MXNet artifact;
  - script mode (``train_script``), when the hyperparameters hold the SageMaker Python SDK's
    ``sagemaker_program``: the channels and the ``sagemaker_submit_directory`` tarball come
    from the emulated S3, ``script_mode.run_training`` runs the user's script under the
    training toolkit's contract, and the model directory is packed into ``model.tar.gz`` at
    the same place (its files at the archive root, as SageMaker packs ``/opt/ml/model``).
    Its metrics (SageMaker's FinalMetricDataList) are the last values the request's
    MetricDefinitions find in the script's log.

  - the team's own image (``train_container``), when ``LOCAL_CONTAINERS`` has a local command for
    it (the config's ``container.local.command``): the command runs with ``train`` appended under
    SageMaker's container contract (``script_mode.run_container_training``), packed and measured
    as a script is. An image without one fails, saying how to add it.

  All return ``{"hyperparameters", "metrics"}`` or ``{"failure"}``. Tuning (``run_tuning``)
  trains each of its jobs through the same dispatch.
* Serving (``load_predictor``): a model is loaded once, as its container would load it, into
  a ``Predictor`` that endpoints (``service_rules``) and batch transform (``run_transform``)
  ask for predictions: the built-in XGBoost's booster, the Linear Learner emulation (answering
  in Linear Learner's JSON or JSON Lines response format, never CSV), or a script model served by the
  scikit-learn container's handlers (``script_mode.ScriptModel``) when its container
  Environment holds ``SAGEMAKER_PROGRAM``, or the team's image's program serving over HTTP
  (``ContainerPredictor``) when it has a local command.
* Processing jobs run the container entry point (the repo's script, downloaded from the
  emulated S3 like SageMaker would) as a subprocess, with ``/opt/ml/processing/...``
  mapped to a temp dir; outputs are uploaded to their S3 destinations afterwards. The
  feature-ingestion script runs in-process instead: it calls the Feature Store runtime
  API, which moto does not implement, so it gets ``FeatureStore`` (below) as its client; so
  does the drift job, whose CloudWatch calls must reach the in-process moto.
* Glue job runs: the job's script (``jobs/etl/etl.py``, downloaded from the emulated S3)
  runs on a local Spark session (one per process) with the job's default arguments merged
  with the run's, S3 paths mapped to temp dirs; outputs replace what was under their
  prefixes, as Spark's overwrite mode does.
* DataBrew job runs: ``tools/offline/databrew.py`` applies the published recipe, or
  validates the dataset against the profile job's ruleset and writes the report.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import csv
import hashlib
import http.client
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence
from urllib.parse import urlparse

import boto3
import numpy as np
from botocore.exceptions import ClientError

from tools.offline import environ, script_mode
from tools.offline.iam import Call

PROCESSING_ROOT = "/opt/ml/processing"
# Hyperparameters of the built-in algorithm that are not xgboost.train parameters.
_NOT_PARAMS = {"num_round", "early_stopping_rounds", "csv_weights"}
# The SageMaker Python SDK's framework hyperparameters (JSON-encoded strings) and the container
# environment of the model it creates: their presence is what makes a request script mode.
SCRIPT_PROGRAM, SCRIPT_SUBMIT_DIRECTORY = "sagemaker_program", "sagemaker_submit_directory"
SERVING_PROGRAM, SERVING_SUBMIT_DIRECTORY = "SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY"
JSON_LINES = "application/jsonlines"
MODEL_ROOT = "/opt/ml/model"  # where the serving container extracts model.tar.gz
DEFAULT_MAX_RUNTIME_SECONDS = 86400  # StoppingCondition.MaxRuntimeInSeconds: SageMaker's default, one day

# The team's own images that run here: image URI -> the argv that runs the image's program (the
# stage config's ``container.local.command``, resolved by ``runner.local_containers_of``). Set for
# an offline stage's life by ``local_containers``; an image not in it cannot run offline.
LOCAL_CONTAINERS: dict[str, list[str]] = {}
LOCAL_WORKDIR = Path(__file__).resolve().parent.parent.parent  # local commands run from the repository root
LOCAL_COMMAND_FIELD = "pipeline.model.container.local.command (a candidate's: pipeline.model.candidates[i].container.local.command)"


@contextlib.contextmanager
def local_containers(commands: Mapping[str, Sequence[str]]) -> Iterator[None]:
    """``commands`` (image URI -> argv) run their images' programs while the block runs; every
    serving process started meanwhile is stopped when it ends."""
    previous = dict(LOCAL_CONTAINERS)
    with _SERVING_LOCK:
        running = list(_SERVING)
    LOCAL_CONTAINERS.clear()
    LOCAL_CONTAINERS.update({image: list(command) for image, command in commands.items()})
    try:
        yield
    finally:
        stop_containers(keep=running)
        LOCAL_CONTAINERS.clear()
        LOCAL_CONTAINERS.update(previous)


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


def download_manifest(uri: str, target: Path) -> list[Path]:
    """A SageMaker manifest file input: ``[{"prefix": "s3://bucket/"}, "key", ...]``, each
    object downloaded under its path relative to the prefix, as SageMaker does."""
    s3 = boto3.client("s3")
    bucket, key = _split(uri)
    header, *keys = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    prefix_bucket, prefix = _split(header["prefix"])
    files = []
    for relative in keys:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=prefix_bucket, Key=f"{prefix}{relative}")["Body"].read())
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


def is_script_training(request: Mapping[str, Any]) -> bool:
    """A CreateTrainingJob request from a framework estimator of the SageMaker Python SDK (script
    mode): its hyperparameters name the entry point in ``sagemaker_program``."""
    return SCRIPT_PROGRAM in (request.get("HyperParameters") or {})


def train(request: dict[str, Any], *, fault: str | None = None, **_: Any) -> dict[str, Any]:
    """CreateTrainingJob offline: script mode (``train_script``) when the request is a framework
    estimator's, else the built-in XGBoost algorithm (``train_xgboost``). Returns the job's
    outcome: ``{"hyperparameters", "metrics"}`` or ``{"failure"}``."""
    if is_script_training(request):
        return train_script(request, fault=fault)
    image = request["AlgorithmSpecification"]["TrainingImage"]
    if image in LOCAL_CONTAINERS:  # the team's own image, with a local command for it
        return train_container(request, fault=fault)
    if LINEAR_LEARNER_IMAGE in image:
        return train_linear_learner(request, fault=fault)
    if "/sagemaker-xgboost:" not in image:  # the team's own image (pipeline.model.container), no local command
        return {"failure": f"ClientError: the offline runner cannot run the image {image}: offline runs train the "
                           "built-in XGBoost and script-mode models only, and an image only through a local command "
                           "(an image needs Docker): give the image's container section the command that runs its "
                           f"program here, {LOCAL_COMMAND_FIELD}: [python, path/to/main.py] (docs/bring-your-own-model.md)"}
    return train_xgboost(request, fault=fault)


def train_xgboost(request: dict[str, Any], *, fault: str | None = None, **_: Any) -> dict[str, Any]:
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
    custom = _container_metrics(params)
    history: dict[str, dict[str, list[float]]] = {}
    booster = xgboost.train(params, train, num_boost_round=int(hyperparameters.get("num_round", 10)), evals=evals,
                            evals_result=history, verbose_eval=False, custom_metric=custom)
    with tempfile.TemporaryDirectory() as scratch:
        model_file = Path(scratch) / "xgboost-model"  # the built-in algorithm's file name, no extension
        with warnings.catch_warnings():  # xgboost notes it picks UBJSON for extension-less names
            warnings.simplefilter("ignore", UserWarning)
            booster.save_model(str(model_file))
        _put_job_output(request, "model.tar.gz", _tar_gz(Path(scratch)))
    # final values as the algorithm emits them: "validation:auc", "train:logloss", ...
    metrics = {f"{channel}:{name}": values[-1] for channel, found in history.items() for name, values in found.items()}
    return {"hyperparameters": hyperparameters, "metrics": metrics}


LINEAR_LEARNER_IMAGE = "/linear-learner:"  # SageMaker's repository of the built-in algorithm
LINEAR_LEARNER_MODEL = "linear-learner-emulation.json"  # the emulation's artifact (not AWS's MXNet model)
# Linear Learner's losses the emulation trains, by predictor type ("auto": the type's default,
# logistic, softmax or squared loss: "Linear learner hyperparameters", loss)
_EMULATED_LOSSES = {"binary_classifier": ("auto", "logistic"), "multiclass_classifier": ("auto", "softmax_loss"),
                    "regressor": ("auto", "squared_loss")}


def train_linear_learner(request: dict[str, Any], *, fault: str | None = None, **_: Any) -> dict[str, Any]:
    """Emulate the built-in Linear Learner on a CreateTrainingJob request with scikit-learn:
    AWS's algorithm is closed, so this is an honest stand-in, not the algorithm.

    * Normalization as Linear Learner's defaults do it ("How linear learner works", step 1:
      ``normalize_data`` true shifts and scales every feature of dense data; ``normalize_label``
      auto scales and shifts the label for regression only), from the first
      ``num_point_for_scaler`` (10,000) training rows.
    * The model of the ``predictor_type``, with the type's default loss: logistic regression
      (binary), multinomial logistic regression (multiclass, softmax loss), least squares
      (regressor). ``wd`` (L2) sets the penalty (``auto``: scikit-learn's default strength for
      classifiers, none for the regressor), ``use_bias`` the intercept; seeded. Losses other than
      the default fail the job offline (run them in AWS).
    * Final metrics: Linear Learner's validation metric names for the type ("Tune a linear learner
      model"), computed on the validation channel by scikit-learn; ``objective_loss`` is the mean
      of the training loss (log loss, or squared error in the label's units).
    * Binary: ``predicted_label`` is score >= 0.5 (Linear Learner tunes that threshold on the
      validation data for ``binary_classifier_model_selection_criteria``; the emulation does not).
    """
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    if fault == "fail":
        return {"failure": "AlgorithmError: injected training failure (offline scenario)"}
    hyperparameters = dict(request.get("HyperParameters", {}))
    predictor = hyperparameters.get("predictor_type")
    loss = hyperparameters.get("loss", "auto")
    if predictor not in _EMULATED_LOSSES:
        return {"failure": f"ClientError: predictor_type is required (got {predictor!r})"}
    if loss not in _EMULATED_LOSSES[predictor]:
        return {"failure": f"ClientError: the offline Linear Learner emulation trains the default loss only "
                           f"({', '.join(_EMULATED_LOSSES[predictor][1:])} for {predictor}; got {loss}): run this "
                           "stage's pipeline in AWS"}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    labels, features = _read_channel(channels["train"])
    sample = features[:int(hyperparameters.get("num_point_for_scaler", 10_000))]
    normalize = hyperparameters.get("normalize_data", "true") != "false"
    mean = sample.mean(axis=0) if normalize else np.zeros(features.shape[1])
    scale = sample.std(axis=0) if normalize else np.ones(features.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    scaled = (features - mean) / scale
    bias, wd = hyperparameters.get("use_bias", "true") == "true", hyperparameters.get("wd", "auto")
    model: dict[str, Any] = {"predictor_type": predictor, "feature_mean": mean.tolist(), "feature_scale": scale.tolist()}
    if predictor == "regressor":
        scale_label = hyperparameters.get("normalize_label", "auto") != "false"
        label_mean = float(labels.mean()) if scale_label else 0.0
        label_scale = float(labels.std()) if scale_label and labels.std() > 0 else 1.0
        target = (labels - label_mean) / label_scale
        # L2 weight wd on the mean squared error: Ridge's alpha on the sum of squares is wd * n
        fitted = (LinearRegression(fit_intercept=bias) if wd in ("auto", "0")
                  else Ridge(alpha=float(wd) * len(target), fit_intercept=bias, random_state=0)).fit(scaled, target)
        model.update(coef=[float(c) * label_scale for c in np.ravel(fitted.coef_)],
                     intercept=float(fitted.intercept_) * label_scale + label_mean)
    else:
        # L2 weight wd on the mean log loss: scikit-learn's C weighs the summed loss against ||w||^2 / 2
        penalty = {} if wd == "auto" else {"penalty": None} if float(wd) == 0 else {"C": 1 / (2 * float(wd) * len(labels))}
        fitted = LogisticRegression(max_iter=1000, fit_intercept=bias, random_state=0, **penalty).fit(scaled, labels)
        model.update(coef=np.atleast_2d(fitted.coef_).tolist(), intercept=np.ravel(fitted.intercept_).tolist(),
                     classes=[int(c) for c in fitted.classes_])
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / LINEAR_LEARNER_MODEL).write_text(json.dumps(model))
        _put_job_output(request, "model.tar.gz", _tar_gz(Path(scratch)))
    metrics = {}
    if "validation" in channels:
        v_labels, v_features = _read_channel(channels["validation"])
        metrics = {f"validation:{name}": value
                   for name, value in _linear_learner_metrics(model, v_features, v_labels, hyperparameters).items()}
    return {"hyperparameters": hyperparameters, "metrics": metrics}


def _linear_learner_metrics(model: Mapping[str, Any], features: np.ndarray, labels: np.ndarray,
                            hyperparameters: Mapping[str, str]) -> dict[str, float]:
    """Linear Learner's validation metrics for the model's type, by the emulation's predictions."""
    from sklearn import metrics as skm

    scores = LinearLearnerModel(model).scores(features)
    if model["predictor_type"] == "regressor":
        mse = float(skm.mean_squared_error(labels, scores))
        return {"mse": mse, "absolute_loss": float(skm.mean_absolute_error(labels, scores)), "objective_loss": mse}
    beta = float(hyperparameters.get("f_beta", 1.0))
    if model["predictor_type"] == "binary_classifier":
        predicted = (scores >= 0.5).astype(int)
        return {"binary_classification_accuracy": float(skm.accuracy_score(labels, predicted)),
                "binary_f_beta": float(skm.fbeta_score(labels, predicted, beta=beta, zero_division=0)),
                "precision": float(skm.precision_score(labels, predicted, zero_division=0)),
                "recall": float(skm.recall_score(labels, predicted, zero_division=0)),
                "roc_auc_score": float(skm.roc_auc_score(labels, scores)) if len(set(labels)) == 2 else float("nan"),
                "objective_loss": float(skm.log_loss(labels, scores, labels=[0, 1]))}
    classes, truth = model["classes"], labels.astype(int)
    predicted = np.asarray(classes)[scores.argmax(axis=1)]
    rank = (scores > scores[np.arange(len(truth)), np.searchsorted(classes, truth)][:, None]).sum(axis=1)
    top_k = int(hyperparameters.get("accuracy_top_k", 3))
    return {"multiclass_accuracy": float(skm.accuracy_score(truth, predicted)),
            "macro_precision": float(skm.precision_score(truth, predicted, average="macro", zero_division=0)),
            "macro_recall": float(skm.recall_score(truth, predicted, average="macro", zero_division=0)),
            "macro_f_beta": float(skm.fbeta_score(truth, predicted, beta=beta, average="macro", zero_division=0)),
            "multiclass_top_k_accuracy": float(np.mean(rank < top_k)),
            "dcg": float(np.mean(1 / np.log2(rank + 2))),  # the true class's discounted gain at its rank
            "objective_loss": float(skm.log_loss(truth, scores, labels=classes))}


class LinearLearnerModel:
    """The emulation's model (``linear-learner-emulation.json``): normalized features, then the
    linear function; ``scores`` as Linear Learner's ``score``: the regressor's value, the binary
    classifier's positive-class probability, the multiclass classifier's class probabilities."""

    def __init__(self, model: Mapping[str, Any]) -> None:
        self.predictor_type = model["predictor_type"]
        self.mean, self.scale = np.asarray(model["feature_mean"]), np.asarray(model["feature_scale"])
        self.coef, self.intercept = np.asarray(model["coef"]), np.asarray(model["intercept"])
        self.classes = model.get("classes")

    def scores(self, features: np.ndarray) -> np.ndarray:
        if features.shape[1] != len(self.mean):
            raise ValueError(f"the model has {len(self.mean)} features; a record has {features.shape[1]}")
        raw = ((features - self.mean) / self.scale) @ self.coef.T + self.intercept
        if self.predictor_type == "regressor":
            return raw
        if self.predictor_type == "binary_classifier":
            return 1 / (1 + np.exp(-raw[:, 0]))
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def records(self, features: np.ndarray) -> list[dict[str, Any]]:
        """One response record per row ("Linear learner response formats")."""
        scores = self.scores(features)
        if self.predictor_type == "regressor":
            return [{"score": float(score)} for score in scores]
        if self.predictor_type == "binary_classifier":
            return [{"score": float(score), "predicted_label": int(score >= 0.5)} for score in scores]
        return [{"score": [float(v) for v in row], "predicted_label": int(self.classes[int(row.argmax())])}
                for row in scores]


def _container_metrics(params: dict[str, Any]) -> Callable[..., tuple[str, float]] | None:
    """The metrics SageMaker's XGBoost container computes itself, which the ``xgboost`` package
    does not know: ``mse`` (aws/sagemaker-xgboost-container, ``metrics/custom_metrics.py``:
    scikit-learn's mean squared error, reported as ``validation:mse``; listed in "Tune an XGBoost
    Model"). Taken out of ``params["eval_metric"]`` and returned as ``xgboost.train``'s
    ``custom_metric``; the package's own metrics stay."""
    metrics = [m.strip() for m in str(params.get("eval_metric", "")).split(",") if m.strip()]
    if "mse" not in metrics:
        return None
    own = [m for m in metrics if m != "mse"]
    if own:
        params["eval_metric"] = own
    else:
        params.pop("eval_metric")

    def mse(predictions: np.ndarray, data: Any) -> tuple[str, float]:
        return "mse", float(np.mean((data.get_label() - predictions) ** 2))

    return mse


def train_script(request: dict[str, Any], *, fault: str | None = None, **_: Any) -> dict[str, Any]:
    """A script-mode training job, as a framework container (scikit-learn, or XGBoost when the
    image is the XGBoost one) runs one: SageMaker
    downloads the channels to ``/opt/ml/input/data/<channel>`` (File mode), the container's
    toolkit downloads and extracts ``sagemaker_submit_directory`` and runs ``sagemaker_program``
    with the hyperparameters; SageMaker scans the log with the MetricDefinitions' regexes, stops
    the job after MaxRuntimeInSeconds and uploads ``/opt/ml/model`` as ``model.tar.gz`` (and a
    non-empty ``/opt/ml/output/data`` as ``output.tar.gz``) under ``<S3OutputPath>/<job>/output/``.
    Offline the downloads are the job role's S3 calls and the script runs in a subprocess
    (``script_mode.run_training``)."""
    if fault == "fail":
        return {"failure": "AlgorithmError: injected training failure (offline scenario)"}
    image = request["AlgorithmSpecification"]["TrainingImage"]
    if script_mode.framework_of(image) not in script_mode.CONTAINERS:  # PyTorch: no torch here
        return {"failure": f"ClientError: the offline runner does not run the {script_mode.framework_of(image)} "
                           f"framework image {image.rsplit('/', 1)[-1]}: offline runs emulate the scikit-learn and "
                           "XGBoost containers only (torch is not one of this project's pins); this script trains "
                           "and serves in AWS. Try the pipeline offline with a scikit-learn script first "
                           "(docs/bring-your-own-model.md)"}
    hyperparameters = dict(request["HyperParameters"])
    decoded = script_mode.decode_hyperparameters(hyperparameters)
    submit = str(decoded.get(SCRIPT_SUBMIT_DIRECTORY, ""))
    if not submit.startswith("s3://"):
        return {"failure": f"ClientError: {SCRIPT_SUBMIT_DIRECTORY} must be the S3 URI of a sourcedir.tar.gz, "
                           f"got {submit!r}"}

    def run(root: Path, channels: dict[str, Path], definitions: list[dict[str, str]],
            timeout: float) -> script_mode.TrainingOutcome:
        source = root / "sourcedir.tar.gz"
        source.write_bytes(_read_object(submit, f"download the source code {submit}"))
        return script_mode.run_training(
            source, str(decoded[SCRIPT_PROGRAM]), hyperparameters, channels, root / "model", root / "output-data",
            metric_definitions=definitions, timeout_seconds=timeout, job_name=request["TrainingJobName"],
            framework=script_mode.framework_of(request["AlgorithmSpecification"]["TrainingImage"]))

    return _training_job(request, run)


def train_container(request: dict[str, Any], *, fault: str | None = None, **_: Any) -> dict[str, Any]:
    """A training job of the team's own image whose program runs here through its local command
    (``LOCAL_CONTAINERS``): SageMaker downloads the channels and runs ``docker run <image> train``;
    offline the command runs with ``train`` appended under the same contract
    (``script_mode.run_container_training``), and the model directory is packed as for a script."""
    if fault == "fail":
        return {"failure": "AlgorithmError: injected training failure (offline scenario)"}
    command = LOCAL_CONTAINERS[request["AlgorithmSpecification"]["TrainingImage"]]

    def run(root: Path, channels: dict[str, Path], definitions: list[dict[str, str]],
            timeout: float) -> script_mode.TrainingOutcome:
        return script_mode.run_container_training(
            command, dict(request.get("HyperParameters") or {}), channels, root / "model", root / "output-data",
            metric_definitions=definitions, timeout_seconds=timeout, job_name=request["TrainingJobName"],
            cwd=LOCAL_WORKDIR)

    return _training_job(request, run)


def _training_job(request: dict[str, Any],
                  run: Callable[[Path, dict[str, Path], list[dict[str, str]], float], script_mode.TrainingOutcome],
                  ) -> dict[str, Any]:
    """What SageMaker does around the container of a script or an image: downloads the channels
    to ``/opt/ml/input/data/<channel>`` (File mode) as the job's role, runs the container
    (``run(root, channels, MetricDefinitions, MaxRuntimeInSeconds)``), scans its log with the
    MetricDefinitions' regexes (FinalMetricDataList) and uploads ``/opt/ml/model`` as
    ``model.tar.gz`` (and a non-empty ``/opt/ml/output/data`` as ``output.tar.gz``) under
    ``<S3OutputPath>/<job>/output/``."""
    definitions = [{"Name": d["Name"], "Regex": d["Regex"]}
                   for d in request["AlgorithmSpecification"].get("MetricDefinitions", [])]
    timeout = float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_SECONDS))
    with tempfile.TemporaryDirectory(prefix="training-") as scratch:
        root = Path(scratch)
        try:
            channels = _download_channels(request.get("InputDataConfig", []), root / "data")
            outcome = run(root, channels, definitions, timeout)
        except LoadFailed as error:
            return {"failure": f"ClientError: {error}"}
        except (ValueError, TypeError) as error:  # what CreateTrainingJob itself would have refused
            return {"failure": f"ValidationException: {error}"}
        if outcome.failure_reason:
            return {"failure": outcome.failure_reason}
        _put_job_output(request, "model.tar.gz", _tar_gz(root / "model"))
        if any((root / "output-data").iterdir()):
            _put_job_output(request, "output.tar.gz", _tar_gz(root / "output-data"))
    return {"hyperparameters": dict(request.get("HyperParameters") or {}), "metrics": outcome.metrics}


def _download_channels(channels: list[dict[str, Any]], root: Path) -> dict[str, Path]:
    """File-mode input: each channel's S3 prefix (or manifest) downloaded to its own directory."""
    local = {}
    for channel in channels:
        source = channel["DataSource"]["S3DataSource"]
        target = local[channel["ChannelName"]] = root / channel["ChannelName"]
        target.mkdir(parents=True)
        download = download_manifest if source.get("S3DataType") == "ManifestFile" else download_prefix
        download(source["S3Uri"], target)
    return local


def _tar_gz(directory: Path) -> bytes:
    """A directory's files at the root of a gzipped tar, as SageMaker packs ``/opt/ml/model``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()


def _put_job_output(request: Mapping[str, Any], name: str, body: bytes) -> None:
    """Upload a training job's ``name`` to ``<S3OutputPath>/<job name>/output/<name>``."""
    bucket, prefix = _split(request["OutputDataConfig"]["S3OutputPath"])
    key = f"{prefix.rstrip('/')}/{request['TrainingJobName']}/output/{name}".lstrip("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def _draw(ranges: Mapping[str, list[dict[str, Any]]], rng: np.random.Generator) -> dict[str, str]:
    """One random draw from a tuning job's ParameterRanges, as hyperparameter strings."""
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
    return tuned


def run_tuning(request: dict[str, Any], *, fault: str | None = None, **_: Any) -> dict[str, Any]:
    """Automatic model tuning, offline: ``MaxNumberOfTrainingJobs`` seeded random draws from
    the ranges (SageMaker's Bayesian search is not reproduced), each trained for real through
    ``train`` (built-in XGBoost or script mode: the objective is then one of the
    MetricDefinitions) and recorded as a training job. A job that fails, or emits no objective
    metric, does not count (its ObjectiveStatus is Failed); the best of the others by the
    objective wins, and the tuning job fails only when none succeeded."""
    from tools.offline import adapter

    if fault == "fail":
        return {"failure": "No training job succeeded (injected tuning failure)"}
    config, definition = request["HyperParameterTuningJobConfig"], request["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    rng = np.random.default_rng(0)
    sagemaker = boto3.client("sagemaker")
    results, failures = [], []
    for index in range(config["ResourceLimits"]["MaxNumberOfTrainingJobs"]):
        tuned = _draw(config["ParameterRanges"], rng)
        name = f"{request['HyperParameterTuningJobName']}-{index + 1:03d}-{rng.integers(16**8):08x}"[-63:].lstrip("-")
        job = {key: value for key, value in definition.items() if key not in ("StaticHyperParameters",)}
        job.update(TrainingJobName=name, HyperParameters={**definition.get("StaticHyperParameters", {}), **tuned})
        if request.get("Tags"):  # SageMaker adds the tuning job's tags to each training job it launches (AddTags)
            job["Tags"] = request["Tags"]
        with adapter.principal("sagemaker-service"):  # the tuning service starts these, not our roles
            sagemaker.create_training_job(**job)
        outcome = train(job)
        adapter._record_job_outcome("sagemaker", "create_training_job", job, {}, outcome)  # noqa: SLF001
        value = outcome.get("metrics", {}).get(objective["MetricName"])
        if outcome.get("failure") or value is None:
            failures.append(f"{name}: {outcome.get('failure') or _missing_objective(objective, outcome)}")
            continue
        results.append((value, name, tuned))
    if not results:
        last = f" (last: {failures[-1]})" if failures else ""
        return {"failure": f"No training job succeeded after {len(failures)} attempts{last}"}
    pick = max if objective["Type"] == "Maximize" else min
    value, name, tuned = pick(results, key=lambda result: result[0])
    return {"best": {
        "TrainingJobName": name, "TrainingJobStatus": "Completed", "TunedHyperParameters": tuned,
        "FinalHyperParameterTuningJobObjectiveMetric": {"Type": objective["Type"], "MetricName": objective["MetricName"],
                                                        "Value": float(value)},
        "ObjectiveStatus": "Succeeded",
    }}


def _missing_objective(objective: Mapping[str, str], outcome: Mapping[str, Any]) -> str:
    return f"objective metric {objective['MetricName']} not emitted (have: {sorted(outcome.get('metrics', {}))})"


MODEL_MONITOR_IMAGE = "sagemaker-model-monitor-analyzer"


def suggest_baseline(environment: dict[str, str], local: Callable[[str], str]) -> None:
    """Stand-in for Model Monitor's analyzer in baselining mode (AWS's closed container): reads
    the CSV dataset as ``dataset_format`` describes it and writes ``statistics.json`` and
    ``constraints.json`` in the documented layouts ("Schema for Statistics", "Schema for
    Constraints"), with the analyzer's default monitoring settings. Columns of a file without a
    header are named ``_c0``, ``_c1``… as the analyzer names them."""
    import pandas as pd

    csv = json.loads(environment["dataset_format"])["csv"]
    files = sorted(p for p in Path(local(environment["dataset_source"])).rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"no baseline data under {environment['dataset_source']}")
    table = pd.concat([pd.read_csv(f, header=0 if csv.get("header") else None) for f in files], ignore_index=True)
    if not csv.get("header"):
        table.columns = [f"_c{index}" for index in range(table.shape[1])]
    statistics, constraints = [], []
    for name in table.columns:
        column = pd.to_numeric(table[name], errors="coerce")
        integral = bool(column.notna().all() and (column.dropna() % 1 == 0).all())
        kind = "Integral" if integral else "Fractional"
        present = int(column.notna().sum())
        statistics.append({"name": str(name), "inferred_type": kind, "numerical_statistics": {
            "common": {"num_present": present, "num_missing": int(len(column) - present)},
            "mean": float(column.mean()), "sum": float(column.sum()), "std_dev": float(column.std(ddof=0)),
            "min": float(column.min()), "max": float(column.max())}})
        constraints.append({"name": str(name), "inferred_type": kind, "completeness": present / len(column),
                            "num_constraints": {"is_non_negative": bool((column.dropna() >= 0).all())}})
    output = Path(local(environment["output_path"]))
    output.mkdir(parents=True, exist_ok=True)
    (output / "statistics.json").write_text(json.dumps(
        {"version": 0.0, "dataset": {"item_count": len(table)}, "features": statistics}, indent=2))
    (output / "constraints.json").write_text(json.dumps({"version": 0.0, "features": constraints, "monitoring_config": {
        "evaluate_constraints": "Enabled", "emit_metrics": "Enabled", "datatype_check_threshold": 1.0,
        "domain_content_threshold": 1.0, "distribution_constraints": {
            "perform_comparison": "Enabled", "comparison_threshold": 0.1, "comparison_method": "Robust",
            "categorical_comparison_threshold": 0.1, "categorical_drift_method": "LInfinity"}}}, indent=2))


def run_processing(request: dict[str, Any], *, fault: str | None = None, in_process: dict[str, Any] | None = None,
                   **_: Any) -> dict[str, Any]:
    """Run a CreateProcessingJob request's entry point as a subprocess (or, for the scripts
    in ``in_process`` by S3 object key, in-process: ``runner(module, arguments, local)``;
    Model Monitor's analyzer image: ``suggest_baseline``)."""
    if fault == "fail":
        return {"failure": "AlgorithmError: injected processing failure (offline scenario)"}
    app = request["AppSpecification"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        local = lambda path: str(root / Path(path).relative_to(PROCESSING_ROOT))  # noqa: E731
        for item in request.get("ProcessingInputs", []):
            target = Path(local(item["S3Input"]["LocalPath"]))
            target.mkdir(parents=True, exist_ok=True)
            if item["S3Input"].get("S3DataType") == "ManifestFile":
                download_manifest(item["S3Input"]["S3Uri"], target)
            else:
                download_prefix(item["S3Input"]["S3Uri"], target)
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            Path(local(item["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        if MODEL_MONITOR_IMAGE in app["ImageUri"] and "ContainerEntrypoint" not in app:
            try:
                suggest_baseline(request["Environment"], local)
            except ValueError as error:
                return {"failure": f"AlgorithmError: {error}"}
            for item in outputs:
                upload_dir(Path(local(item["S3Output"]["LocalPath"])), item["S3Output"]["S3Uri"])
            return {}
        script_key = Path(app["ContainerEntrypoint"][-1]).name
        arguments = [local(a) if a.startswith(PROCESSING_ROOT) else a for a in app.get("ContainerArguments", [])]
        if in_process and script_key in in_process:
            module = _load_script(Path(local(app["ContainerEntrypoint"][-1])))
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # the job's log lines, not the caller's output
                    in_process[script_key](module, arguments, local)
            except (ValueError, RuntimeError, SystemExit) as error:
                return {"failure": f"AlgorithmError: {error}"}
            for item in outputs:
                upload_dir(Path(local(item["S3Output"]["LocalPath"])), item["S3Output"]["S3Uri"])
            return {}
        command = [sys.executable if part in ("python3", "python") else part for part in app["ContainerEntrypoint"]]
        command = [local(part) if part.startswith(PROCESSING_ROOT) else part for part in command]
        result = subprocess.run(command + arguments, capture_output=True, text=True, timeout=600,
                                env={**environ.snapshot(), "PROCESSING_ROOT": str(root)})
        if result.returncode != 0:
            return {"failure": script_failure(result.returncode, result.stderr)}
        for item in outputs:
            upload_dir(Path(local(item["S3Output"]["LocalPath"])), item["S3Output"]["S3Uri"])
    return {"stdout": result.stdout}


def _select(values: list[str], expression: str) -> list[str]:
    """The JSONPath subset SageMaker batch transform filters use on CSV rows: ``$``, ``$[a:b]``,
    ``$[i,j,...]`` and their mix, ``$[0,5:]`` (negative indexes allowed; the DataProcessing
    API's OutputFilter examples: "$", "$[0,5:]")."""
    if expression in ("", "$"):
        return values
    selected: list[str] = []
    for part in expression.removeprefix("$[").removesuffix("]").split(","):
        if ":" in part:
            start, _, stop = part.partition(":")
            selected.extend(values[int(start) if start else None:int(stop) if stop else None])
        else:
            selected.append(values[int(part)])
    return selected


class LoadFailed(Exception):
    """What a job or a serving container needs and cannot get: ``could not <what>: <detail>``
    (an S3 object its role may not read, a model the user's code cannot load)."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"could not {what}: {detail}")
        self.what, self.detail = what, detail


def _read_object(uri: str, what: str) -> bytes:
    """An S3 object, read as the current principal; LoadFailed(``what``) when S3 refuses."""
    bucket, key = _split(uri)
    try:
        return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise LoadFailed(what, error.response["Error"]["Message"]) from None


class Predictor(Protocol):
    """A model loaded once, as its serving container holds it (one per endpoint variant or
    transform job), asked for predictions on text/csv rows."""

    def answer(self, body: str) -> str:
        """The InvokeEndpoint response body for a text/csv request of one or more rows."""

    def records(self, body: str) -> list[list[str]]:
        """Batch transform: the output record of each row of a text/csv mini-batch, as its CSV values."""


class XGBoostPredictor:
    """The built-in XGBoost container serving ``xgboost-model`` (aws/sagemaker-xgboost-container,
    ``algorithm_mode/serve.py``)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def _predict(self, body: str) -> np.ndarray:
        import xgboost

        rows = [[float(value) for value in line.split(",")] for line in body.strip().splitlines() if line.strip()]
        return self.booster.predict(xgboost.DMatrix(np.array(rows)))

    def answer(self, body: str) -> str:
        """Every row's prediction on one line, ``",".join(map(str, preds.tolist()))``: ``0.12,0.98``
        for scores, ``[0.1, 0.7, 0.2],[0.3, 0.3, 0.4]`` for multi:softprob's class probabilities
        (``invocations``)."""
        return ",".join(map(str, self._predict(body).tolist()))

    def records(self, body: str) -> list[list[str]]:
        """In batch (``SAGEMAKER_BATCH``) one prediction per line, a class-probability vector as its
        Python list text (``"\\n".join(map(str, preds.tolist()))``): one value per record."""
        return [[str(prediction.tolist()) if np.ndim(prediction) else f"{prediction:.6f}"]
                for prediction in self._predict(body)]


class LinearLearnerPredictor:
    """The Linear Learner emulation served as its container answers a text/csv request: JSON by
    default (``{"predictions": [{"score": ..., "predicted_label": ...}, ...]}``), JSON Lines in a
    batch transform that asks for ``application/jsonlines`` (``json_records``); never CSV
    ("Linear learner response formats")."""

    def __init__(self, model: LinearLearnerModel) -> None:
        self.model = model

    def _records(self, body: str) -> list[dict[str, Any]]:
        rows = [[float(value) for value in line.split(",")] for line in body.strip().splitlines() if line.strip()]
        return self.model.records(np.array(rows, ndmin=2))

    def answer(self, body: str) -> str:
        return json.dumps({"predictions": self._records(body)})

    def records(self, body: str) -> list[list[str]]:
        raise ValueError("Linear Learner does not answer text/csv (its response types: application/json, "
                         "application/jsonlines, application/x-recordio-protobuf); ask for application/jsonlines")

    def json_records(self, body: str) -> list[str]:
        """Batch transform with ``Accept: application/jsonlines``: one JSON record per row."""
        return [json.dumps(record) for record in self._records(body)]


class ScriptPredictor:
    """A script-mode model served by the scikit-learn container's handlers (``ScriptModel``):
    text/csv in, the answer as ``output_fn`` encodes it for ``Accept: text/csv`` (the default
    handler: one line per row, a probability vector as comma-separated values)."""

    def __init__(self, model: script_mode.ScriptModel, workspace: tempfile.TemporaryDirectory[str]) -> None:
        self.model = model
        self._workspace = workspace  # the extracted model.tar.gz, kept while the model serves

    def answer(self, body: str) -> str:
        response, _ = self.model.invoke(body.encode("utf-8"), script_mode.CSV, accept=script_mode.CSV)
        return response.decode("utf-8")

    def records(self, body: str) -> list[list[str]]:
        return [row for row in csv.reader(io.StringIO(self.answer(body))) if row]


class PipelinePredictor:
    """An inference pipeline's serial containers (CreateModel ``Containers``, Serial mode: "Create
    a multi-container endpoint", SageMaker Developer Guide): each container's text/csv response
    is the next one's request; the last one answers."""

    def __init__(self, predictors: list[Predictor]) -> None:
        self.predictors = predictors

    def _forward(self, body: str) -> str:
        for predictor in self.predictors[:-1]:
            body = predictor.answer(body)
        return body

    def answer(self, body: str) -> str:
        return self.predictors[-1].answer(self._forward(body))

    def records(self, body: str) -> list[list[str]]:
        return self.predictors[-1].records(self._forward(body))

    def json_records(self, body: str) -> list[str]:
        last = self.predictors[-1]
        if not hasattr(last, "json_records"):
            raise ValueError("the model's last container answers text/csv only")
        return last.json_records(self._forward(body))


_SERVING: list[ContainerPredictor] = []  # serving processes still running (stopped by stop_containers)
_SERVING_LOCK = threading.Lock()
_START_TIMEOUT_SECONDS = 30.0  # offline's own limit for the program to answer GET /ping with 200
# "A customer's model containers must respond to requests within 60 seconds" (InvokeEndpoint,
# SageMaker Runtime API Reference: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html)
_INVOCATION_TIMEOUT_SECONDS = 60.0
_STDERR_LINES = 10


class ContainerPredictor:
    """The team's own image serving its model, its program started here by its local command with
    ``serve`` appended, as SageMaker runs ``docker run <image> serve`` ("Custom Inference Code with
    Hosting Services", SageMaker Developer Guide:
    https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html): the
    model extracted to a temp dir named by ``SM_MODEL_DIR`` (in the image: ``/opt/ml/model``), the
    container's ``Environment``, and ``SAGEMAKER_BIND_TO_PORT`` set to a free port on 127.0.0.1 —
    the variable SageMaker gives each container of an inference pipeline instead of port 8080
    ("Run Real-time Predictions with an Inference Pipeline":
    https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipeline-real-time.html), so every
    model, and every container of a pipeline, serves on its own port. Ready when ``GET /ping``
    answers 200; each request is ``POST /invocations`` with ``Content-Type`` and ``Accept``
    text/csv; an answer that is not 2xx raises ``script_mode.HandlerError``, as a script model's
    handler error does. The process (its own process group) stops with ``close``, at the latest
    when the offline stage closes (``stop_containers``)."""

    def __init__(self, image: str, process: subprocess.Popen[bytes], port: int,
                 workspace: tempfile.TemporaryDirectory[str], stderr: collections.deque[str]) -> None:
        self.image, self.process, self.port = image, process, port
        self._workspace, self._stderr = workspace, stderr

    @classmethod
    def start(cls, image: str, command: Sequence[str], model_data: str,
              environment: Mapping[str, str]) -> ContainerPredictor:
        """Download and extract the model (as the current principal), start the program and wait
        for its health check. Raises LoadFailed, as the endpoint then fails."""
        workspace = tempfile.TemporaryDirectory(prefix="container-model-")
        model_dir = Path(workspace.name) / "model"
        model_dir.mkdir()
        try:
            archive = _read_object(model_data, f"download the model artifact {model_data}")
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(model_dir, filter="data")
        except LoadFailed:
            workspace.cleanup()
            raise
        port = _free_port()
        env = {key: value for key, value in environ.snapshot().items() if not key.startswith("SM_")}
        env.update(environment)
        env.update(SM_MODEL_DIR=str(model_dir), SAGEMAKER_BIND_TO_PORT=str(port), PYTHONUNBUFFERED="1")
        try:
            process = subprocess.Popen([*command, "serve"], cwd=LOCAL_WORKDIR, env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as error:
            workspace.cleanup()
            raise LoadFailed(f"start {image} with its local command {' '.join(command)!r}",
                             str(error.strerror or error)) from None
        stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        threading.Thread(target=_keep_tail, args=(process.stderr, stderr), daemon=True).start()
        predictor = cls(image, process, port, workspace, stderr)
        with _SERVING_LOCK:
            _SERVING.append(predictor)
        try:
            predictor._wait_until_healthy(command)
        except LoadFailed:
            predictor.close()
            raise
        return predictor

    def _wait_until_healthy(self, command: Sequence[str]) -> None:
        what = f"start {self.image} with its local command {' '.join(command)!r}"
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise LoadFailed(what, f"it exited with code {self.process.returncode} before answering GET /ping"
                                       f"{self._last_stderr()}")
            try:
                status, _ = self._request("GET", "/ping", timeout=1.0)
                if status == 200:
                    return
            except OSError:  # not listening yet
                pass
            if time.monotonic() > deadline:
                raise LoadFailed(what, f"GET /ping on port {self.port} (SAGEMAKER_BIND_TO_PORT) did not answer 200 "
                                       f"within {_START_TIMEOUT_SECONDS:g} s{self._last_stderr()}")
            time.sleep(0.05)

    def _request(self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None,
                 timeout: float = _INVOCATION_TIMEOUT_SECONDS) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _last_stderr(self) -> str:
        lines = [line for line in list(self._stderr) if line.strip()]
        return f"; its last stderr lines: {' | '.join(lines)}" if lines else ""

    def answer(self, body: str) -> str:
        try:
            status, response = self._request("POST", "/invocations", body.encode("utf-8"),
                                              {"Content-Type": script_mode.CSV, "Accept": script_mode.CSV})
        except OSError as error:
            raise script_mode.HandlerError(f"POST /invocations to {self.image} failed: {error}"
                                           f"{self._last_stderr()}") from None
        if not 200 <= status < 300:
            text = " ".join(response.decode("utf-8", "replace").split())[:500]
            raise script_mode.HandlerError(f"POST /invocations to {self.image} answered {status}: {text}"
                                           f"{self._last_stderr() if status >= 500 else ''}")
        return response.decode("utf-8")

    def records(self, body: str) -> list[list[str]]:
        return [row for row in csv.reader(io.StringIO(self.answer(body))) if row]

    def close(self) -> None:
        """Stop the program as SageMaker stops a container (SIGTERM, then SIGKILL) and drop its model."""
        with _SERVING_LOCK:
            if self in _SERVING:
                _SERVING.remove(self)
        if self.process.poll() is None:
            script_mode._stop(self.process)  # noqa: SLF001 - the same stop as a training job's
        self._workspace.cleanup()


def _keep_tail(stream: Any, tail: collections.deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        tail.append(raw.decode("utf-8", "replace").rstrip())
    stream.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_containers(keep: Sequence[ContainerPredictor] = ()) -> None:
    """Stop every serving process still running but those in ``keep`` (an offline stage closing
    stops those it started; this process exiting, all)."""
    with _SERVING_LOCK:
        running = [predictor for predictor in _SERVING if predictor not in keep]
    for predictor in running:
        predictor.close()


atexit.register(stop_containers)  # no orphan even when a scenario never closes its stage


def close_predictor(predictor: Predictor) -> None:
    """Stop what a loaded model holds: the serving processes of its containers, if any."""
    for part in getattr(predictor, "predictors", [predictor]):
        close = getattr(part, "close", None)
        if close is not None:
            close()


def model_containers(model: Mapping[str, Any], describe_package: Callable[[str], Mapping[str, Any]]) -> list[dict]:
    """A model's serving containers, in order: its ``Containers`` (an inference pipeline) or its
    ``PrimaryContainer``; a container naming a model package stands for all of the package's."""
    containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
    resolved = []
    for container in containers:
        if container.get("ModelPackageName"):
            resolved += describe_package(container["ModelPackageName"])["InferenceSpecification"]["Containers"]
        else:
            resolved.append(container)
    return resolved


def load_model(containers: list[Mapping[str, Any]]) -> Predictor:
    """A model's containers loaded as SageMaker starts them (``load_predictor`` each)."""
    predictors = [load_predictor(container) for container in containers]
    return predictors[0] if len(predictors) == 1 else PipelinePredictor(predictors)


def is_script_container(container: Mapping[str, Any]) -> bool:
    """A model container the SDK's framework models create: its Environment names the entry point."""
    return SERVING_PROGRAM in (container.get("Environment") or {})


def load_predictor(container: Mapping[str, Any]) -> Predictor:
    """Load a CreateModel container (``Image``, ``ModelDataUrl``, ``Environment``) as its serving
    container does at start-up, reading S3 as the current principal. Raises LoadFailed."""
    if is_script_container(container):
        return _load_script_model(container["ModelDataUrl"], container["Environment"], container.get("Image", ""))
    if container.get("Image") in LOCAL_CONTAINERS:
        return ContainerPredictor.start(container["Image"], LOCAL_CONTAINERS[container["Image"]],
                                        container["ModelDataUrl"], container.get("Environment") or {})
    if LINEAR_LEARNER_IMAGE in container.get("Image", ""):
        return LinearLearnerPredictor(_load_linear_learner(container["ModelDataUrl"]))
    return XGBoostPredictor(_load_booster(container["ModelDataUrl"]))


def _load_linear_learner(model_data: str) -> LinearLearnerModel:
    archive = _read_object(model_data, f"download the model artifact {model_data}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile(LINEAR_LEARNER_MODEL) if LINEAR_LEARNER_MODEL in tar.getnames() else None
        if member is None:
            raise LoadFailed(f"load the model {model_data}", f"no {LINEAR_LEARNER_MODEL} in it (offline, the Linear "
                                                             "Learner image serves the emulation's models only)")
        return LinearLearnerModel(json.loads(member.read()))


def _load_booster(model_data: str):  # noqa: ANN202
    import xgboost

    xgboost.set_config(verbosity=0)
    archive = _read_object(model_data, f"download the model artifact {model_data}")
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(scratch, filter="data")
        booster = xgboost.Booster()
        booster.load_model(str(Path(scratch) / "xgboost-model"))
    return booster


def _load_script_model(model_data: str, environment: Mapping[str, str], image: str = "") -> ScriptPredictor:
    """The scikit-learn container's start-up: ``model.tar.gz`` extracted to ``/opt/ml/model``, the
    code from ``SAGEMAKER_SUBMIT_DIRECTORY`` (an S3 ``sourcedir.tar.gz``, or a directory inside
    the model such as the SDK's repacked ``/opt/ml/model/code``, the default), ``model_fn`` called
    once. A model the code cannot load fails the container's health check."""
    workspace = tempfile.TemporaryDirectory(prefix="script-model-")
    model_dir = Path(workspace.name) / "model"
    model_dir.mkdir()
    archive = _read_object(model_data, f"download the model artifact {model_data}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(model_dir, filter="data")
    submit = environment.get(SERVING_SUBMIT_DIRECTORY) or f"{MODEL_ROOT}/code"
    if submit.startswith("s3://"):
        source = Path(workspace.name) / "sourcedir.tar.gz"
        source.write_bytes(_read_object(submit, f"download the source code {submit}"))
    elif Path(submit).is_relative_to(MODEL_ROOT):
        source = model_dir / Path(submit).relative_to(MODEL_ROOT)
    else:
        raise LoadFailed(f"find the source code {submit}", f"{SERVING_SUBMIT_DIRECTORY} must be an S3 URI or "
                                                           f"under {MODEL_ROOT}")
    program = environment[SERVING_PROGRAM]
    try:
        model = script_mode.ScriptModel(model_dir, source, program, framework=script_mode.framework_of(image))
    except Exception as error:  # noqa: BLE001 - any error loading the user's code fails the container
        raise LoadFailed(f"load the model with {program}", f"{type(error).__name__}: {error}") from None
    return ScriptPredictor(model, workspace)


def _transform_containers(model_name: str) -> list[dict[str, Any]]:
    """The transform job's model containers, through its model package when it has one."""
    from tools.offline import adapter

    sagemaker = boto3.client("sagemaker")
    with adapter.principal("sagemaker-service"):  # SageMaker resolves the model itself, not the execution role
        return model_containers(sagemaker.describe_model(ModelName=model_name),
                                lambda name: sagemaker.describe_model_package(ModelPackageName=name))


def run_transform(request: dict[str, Any], *, fault: str | None = None, **_: Any) -> dict[str, Any]:
    """Batch transform: the model loaded once as its container would (``load_predictor``), each
    input file sent as one text/csv mini-batch of its lines (SplitType Line, BatchStrategy
    MultiRecord; MaxPayloadInMB is not applied), the request's DataProcessing filters and join
    applied per record, ``<file>.out`` assembled one record per line (AssembleWith Line).
    A script model is asked with ``Accept: text/csv`` only."""
    if fault == "fail":
        return {"failure": "ClientError: injected transform failure (offline scenario)"}
    containers = _transform_containers(request["ModelName"])
    # the first container reads the request's ContentType, the last answers its Accept (an encoder
    # in front of a built-in algorithm hands it text/csv, whatever the transform asks for)
    first, last = (is_script_container(containers[i]) or containers[i].get("Image") in LOCAL_CONTAINERS for i in (0, -1))
    if first or last:
        formats = (request["TransformInput"].get("ContentType") if first else script_mode.CSV,
                   request["TransformOutput"].get("Accept") if last else script_mode.CSV)
        if formats != (script_mode.CSV, script_mode.CSV):
            return {"failure": f"ClientError: offline, the batch transform of a script's or an image's model takes "
                               f"ContentType and Accept text/csv only (got {formats[0]!r}, {formats[1]!r})"}
    try:
        predictor = load_model(containers)
    except LoadFailed as error:
        return {"failure": f"ClientError: {error}"}
    try:
        return _transform(request, predictor)
    finally:
        close_predictor(predictor)  # the transform's instances go away when the job ends


def _transform(request: dict[str, Any], predictor: Predictor) -> dict[str, Any]:
    """Each input file through the model, its ``.out`` file written under S3OutputPath."""
    processing = request.get("DataProcessing", {})
    accept = request["TransformOutput"].get("Accept", script_mode.CSV)
    if accept not in (script_mode.CSV, JSON_LINES):
        return {"failure": f"ClientError: offline, a batch transform's Accept is text/csv or {JSON_LINES} (got {accept!r})"}
    if accept == JSON_LINES and processing.get("JoinSource") == "Input":
        return {"failure": "ClientError: offline, JoinSource Input joins text/csv records only"}
    bucket, prefix = _split(request["TransformOutput"]["S3OutputPath"])
    s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory() as scratch:
        for path in download_prefix(request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"], Path(scratch)):
            try:
                lines = _transform_lines(predictor, path.read_text(), processing, accept)
            except (ValueError, script_mode.HandlerError) as error:
                return {"failure": f"ClientError: {path.name}: {error}"}
            key = f"{prefix.rstrip('/')}/{path.relative_to(scratch)}.out".lstrip("/")
            s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
    return {}


def _transform_lines(predictor: Predictor, text: str, processing: Mapping[str, str],
                     accept: str = "text/csv") -> list[str]:
    """One input file's output lines: InputFilter picks what the model sees, JoinSource Input
    appends each output record's values to its input record's, OutputFilter picks what is kept.
    ``Accept: application/jsonlines``: the model's JSON record per row, as it answers it."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row]  # a quoted value may hold a comma
    body = "\n".join(_csv_line(_select(row, processing.get("InputFilter", "$"))) for row in rows)
    if accept == JSON_LINES:
        if not hasattr(predictor, "json_records"):
            raise ValueError(f"the model answers text/csv only, not {JSON_LINES}")
        return predictor.json_records(body) if rows else []
    records = predictor.records(body) if rows else []
    if processing.get("JoinSource") == "Input":
        if len(records) != len(rows):
            raise ValueError(f"JoinSource Input needs one output record per input record: {len(rows)} in, "
                             f"{len(records)} out")
        records = [row + record for row, record in zip(rows, records)]
    return [_csv_line(_select(record, processing.get("OutputFilter", "$"))) for record in records]


def _csv_line(values: list[str]) -> str:
    """One CSV record, quoted where a value needs it."""
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(values)
    return line.getvalue()


def _load_script(path: Path):  # noqa: ANN202
    name = f"offline_job_{path.stem.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _replace_prefix(source: Path, uri: str, pattern: str = "*") -> None:
    """Upload ``source`` to ``uri`` after deleting what was there (Spark/DataBrew overwrite)."""
    s3 = boto3.client("s3")
    bucket, prefix = _split(uri)
    old = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
           for item in page.get("Contents", [])]
    for key in old:
        s3.delete_object(Bucket=bucket, Key=key)
    for path in sorted(source.rglob(pattern)):
        if path.is_file() and not path.name.startswith((".", "_")):
            s3.put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{path.relative_to(source)}", Body=path.read_bytes())


_SPARK: list[Any] = []
_GLUE_RUNS: dict[str, tuple[dict, dict[str, dict[str, bytes]]]] = {}


def spark_failure(error: BaseException) -> str:
    """A failed Glue job run's ``ErrorMessage``: the exception's name and its message, as Glue
    reports a script's uncaught exception. A JVM exception reaches Python as py4j's
    ``Py4JJavaError`` ("An error occurred while calling o45.csv."): its Java exception is the
    message that says what went wrong."""
    java = getattr(error, "java_exception", None)
    if java is not None:
        text = str(java).strip()
        name, _, message = text.partition(": ")
        return f"{name.rsplit('.', 1)[-1]}: {message.splitlines()[0] if message else ''}".strip()
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".strip()


def script_failure(returncode: int, stderr: str, lines: int = 5) -> str:
    """A failed processing script's ``FailureReason``: ``AlgorithmError``, its exit code and the
    last lines it wrote to stderr (the end of a Python traceback: the exception and the line
    that raised it)."""
    tail = [line for line in stderr.strip().splitlines() if line.strip()][-lines:]
    return f"AlgorithmError: exit code {returncode}" + (": " + "\n".join(tail) if tail else "")


def _spark():  # noqa: ANN202
    if not _SPARK:
        from pyspark.sql import SparkSession

        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # offline: never look for a network interface
        # The JVM inherits stderr at launch and prints its start-up notes there; send them away
        # (errors still arrive as Python exceptions through py4j).
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            _SPARK.append(SparkSession.builder.master("local[1]").appName("offline-glue")
                          .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                          .config("spark.sql.shuffle.partitions", "1")
                          # tiny data: compiling generated code costs more than it saves
                          .config("spark.sql.codegen.wholeStage", "false").config("spark.sql.adaptive.enabled", "false")
                          # a short-lived JVM: C1 only and the serial GC roughly halve start-up and warm-up
                          .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.level=ERROR")
                          .getOrCreate())
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
        _SPARK[0].sparkContext.setLogLevel("ERROR")
    return _SPARK[0]


def run_glue_job(request: dict[str, Any], *, fault: str | None = None, **_: Any) -> dict[str, Any]:
    """A Glue StartJobRun: the job's script on local Spark, S3 mapped to temp dirs. Faults:
    ``fail`` (the run fails at once), ``input-gone`` (the input disappears before the script
    reads it: the script's own Spark exception fails the run)."""
    from moto.glue import models as glue_models

    if fault == "fail":
        return {"failure": "injected Glue job failure (offline scenario)"}
    job = glue_models.glue_backends["123456789012"]["eu-west-1"].jobs[request["JobName"]]
    arguments = {**(job.default_arguments or {}), **request.get("Arguments", {})}
    args = {key.removeprefix("--"): value for key, value in arguments.items()}
    outputs = {key: value for key, value in args.items() if key.startswith("output_")}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        script = root / "script.py"
        bucket, key = _split(job.command["ScriptLocation"])
        script.write_bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        inputs = download_prefix(args["input"], root / "input")
        # The split is deterministic (tests/test_etl.py proves it): within one process, a
        # run with the same script, input and arguments reuses the first run's output files
        # instead of starting Spark again. Only the output locations may differ.
        fingerprint = hashlib.sha256(script.read_bytes() + json.dumps(
            {k: v for k, v in args.items() if k not in outputs}, sort_keys=True).encode())
        for path in sorted(inputs):
            fingerprint.update(path.read_bytes())
        cached = _GLUE_RUNS.get(fingerprint.hexdigest()) if fault != "input-gone" else None
        if fault == "input-gone":
            shutil.rmtree(root / "input", ignore_errors=True)
        if cached is None:
            local = {**args, "input": str(root / "input"), **{name: str(root / name) for name in outputs}}
            try:
                summary = _load_script(script).run(_spark(), local)
            except Exception as error:  # noqa: BLE001 - Glue reports any script error as the run's failure
                return {"failure": spark_failure(error)}
            files = {name: {str(p.relative_to(root / name)): p.read_bytes() for p in (root / name).rglob("*")
                            if p.is_file() and not p.name.startswith((".", "_"))} for name in outputs}
            cached = _GLUE_RUNS[fingerprint.hexdigest()] = (summary, files)
        summary, files = cached
        for name, uri in outputs.items():
            target = root / f"out-{name}"
            for relative, body in files[name].items():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                (target / relative).write_bytes(body)
            target.mkdir(exist_ok=True)
            _replace_prefix(target, uri)
    return {"summary": summary}


def run_databrew_job(request: dict[str, Any], *, fault: str | None = None, response: dict | None = None,
                     **_: Any) -> dict[str, Any]:
    """A DataBrew StartJobRun: recipe jobs apply the published recipe, profile jobs validate
    the dataset against the ruleset and write the validation report."""
    import pandas as pd
    from moto.databrew import models as databrew_models

    from tools.offline import databrew

    if fault == "fail":
        return {"failure": "injected DataBrew job failure (offline scenario)"}
    backend = databrew_models.databrew_backends["123456789012"]["eu-west-1"]
    job = backend.describe_job(request["Name"])
    dataset = backend.describe_dataset(job.dataset_name)
    location = dataset.input["S3InputDefinition"]
    s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory() as scratch:
        files = download_prefix(f"s3://{location['Bucket']}/{location.get('Key', '')}", Path(scratch))
        frame = pd.concat([pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]) for path in sorted(files)
                           if path.suffix == ".csv"], ignore_index=True)
    if job.job_type == "PROFILE":
        output = job.output_location
        (configuration,) = job.validation_configurations
        ruleset = backend.describe_ruleset(configuration["RulesetArn"].rsplit("/", 1)[1])
        key = databrew.report_key(output.get("Key", ""), dataset.name, response["RunId"])
        report = databrew.validate(frame, ruleset.rules, dataset_name=dataset.name, job_name=job.name,
                                   run_id=response["RunId"], ruleset_arn=configuration["RulesetArn"],
                                   location=f"s3://{output['Bucket']}/{key}")
        s3.put_object(Bucket=output["Bucket"], Key=key, Body=json.dumps(report).encode())
        return {}
    recipe = backend.describe_recipe(job.recipe_reference["Name"], recipe_version=None)  # the latest published version
    cleaned = databrew.apply_recipe(frame, recipe.steps)
    (output,) = job.outputs
    with tempfile.TemporaryDirectory() as scratch:
        cleaned.to_csv(Path(scratch) / f"{job.name}_part00000.csv", index=False)
        _replace_prefix(Path(scratch), f"s3://{output['Location']['Bucket']}/{output['Location'].get('Key', '')}")
    return {}


class FeatureStore:
    """The Feature Store runtime's PutRecord, checked against the feature group moto holds:
    every feature must be defined, the record identifier and event time present, values of
    Integral/Fractional features numeric. Records are kept per group, latest per id."""

    def __init__(self, calls: list[Call]) -> None:
        self.records: dict[str, dict[str, dict[str, str]]] = {}
        self._calls = calls
        self.principal = "states"  # the job's role, set when the job starts (PutRecord runs in its thread pool)

    def put_record(self, *, FeatureGroupName: str, Record: list[dict[str, str]]) -> dict:  # noqa: N803 - API names
        from tools.offline import adapter

        from moto.sagemaker import models as sagemaker_models

        self._calls.append(Call(self.principal, "sagemaker:PutRecord"))
        backend = sagemaker_models.sagemaker_backends["123456789012"]["eu-west-1"]
        group = backend.describe_feature_group(FeatureGroupName)  # the backend, not the API: no call of the job's
        records = self.records.setdefault(FeatureGroupName, {})
        types = {d["FeatureName"]: d["FeatureType"] for d in group["FeatureDefinitions"]}
        values = {item["FeatureName"]: item["ValueAsString"] for item in Record}
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise ValueError(f"ValidationException: features not in {FeatureGroupName}: {', '.join(unknown)}")
        for required in (group["RecordIdentifierFeatureName"], group["EventTimeFeatureName"]):
            if not values.get(required):
                raise ValueError(f"ValidationException: record without {required}")
        for name, value in values.items():
            if types[name] == "Integral":
                int(value)
            elif types[name] == "Fractional":
                float(value)
        records[values[group["RecordIdentifierFeatureName"]]] = values
        return {}
