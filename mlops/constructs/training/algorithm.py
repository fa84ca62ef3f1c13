"""What trains and serves the model: a built-in algorithm (XGBoost or Linear Learner), the team's
own script in AWS's scikit-learn, XGBoost or PyTorch framework container (script mode), or the
team's own image in ECR.

``algorithm()`` returns one ``Algorithm`` that every phase reads: the image training, tuning,
the test-split predictions and the endpoints run; the metric definitions SageMaker reads from
the training log; the hyperparameters the framework adds to the run's own; the serving
container's environment; and what the execution role needs to read and pull. For a script,
it also packages ``source_dir`` as ``sourcedir.tar.gz`` (an S3 asset, deterministic bytes). A
built-in algorithm on a dataset with categorical features gets an ``Encoder``
(``encoding.py``): its models are then inference pipelines, the fitted encoder first.

The script-mode contract is the SageMaker Python SDK's (``sagemaker.estimator.Framework``):
``sagemaker_program`` and ``sagemaker_submit_directory`` hyperparameters, JSON-encoded, for
training; ``SAGEMAKER_PROGRAM`` and ``SAGEMAKER_SUBMIT_DIRECTORY`` in the model's environment
for serving ("Use Scikit-learn with the SageMaker Python SDK", "Deploy Endpoints from Model
Data": https://sagemaker.readthedocs.io/en/stable/frameworks/sklearn/using_sklearn.html).

Linear Learner (``builtin: linear-learner``) runs SageMaker's image ``linear-learner:1`` from the
SDK's region tables. It trains on the same text/csv channels, label in the first column
("Linear learner algorithm", Input/Output interface: CSV training data without a header, the
label first), and serves text/csv requests; it never answers in CSV: its responses are JSON,
JSON Lines or RecordIO-protobuf ("Linear learner response formats",
https://docs.aws.amazon.com/sagemaker/latest/dg/LL-in-formats.html; requests: "Common data
formats for inference", https://docs.aws.amazon.com/sagemaker/latest/dg/cdf-inference.html).
The test-split transform therefore asks it for ``application/jsonlines`` (one ``{"score": ...}``
per record), which the evaluation reads (``Algorithm.transform_accept``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from mlops.config import FRAMEWORK_NAMES, REPO_ROOT, PipelineConfig, ScriptConfig
from mlops.constructs.sagemaker_jobs import read_assets
from mlops.constructs.training.encoding import ENCODER_FRAMEWORK_VERSION, Encoder, encoder
from mlops.constructs.workflow import JOBS_DIR
from mlops.images import ImageMapping, table_entry
from mlops.source_bundle import sourcedir_tarball

XGBOOST_REPOSITORY = "sagemaker-xgboost"
LINEAR_LEARNER_IMAGE = ("linear-learner", "1")  # the SDK's framework name and its one version
CSV = "text/csv"
JSON_LINES = "application/jsonlines"
# Linear Learner's request and response types ("Common data formats for inference", "Linear
# learner response formats"): CSV, JSON or RecordIO-protobuf in; JSON, JSON Lines or RecordIO out.
LINEAR_LEARNER_CONTENT_TYPES = (CSV, "application/json", "application/x-recordio-protobuf")
LINEAR_LEARNER_RESPONSE_TYPES = ("application/json", JSON_LINES, "application/x-recordio-protobuf")


@dataclass(frozen=True)
class Algorithm:
    """One algorithm as the workflow's phases use it."""

    image_uri: str
    repository: str | None  # the image's repository in SageMaker's per-region accounts (None: the team's own)
    description: str  # for state comments: what trains
    serving_image_uri: str | None = None  # where serving takes another image than training (PyTorch's inference image)
    serving_repository: str | None = None
    metric_definitions: list[dict[str, str]] = field(default_factory=list)
    framework_hyperparameters: dict[str, str] = field(default_factory=dict)  # added to every run's own
    environment: dict[str, str] = field(default_factory=dict)  # the serving container's
    source: s3_assets.Asset | None = None  # the script's sourcedir.tar.gz
    own_repository_arn: str | None = None  # the team's own image's ECR repository
    encoder: Encoder | None = None  # a built-in algorithm's categorical encoding, served first
    content_types: tuple[str, ...] = (CSV,)  # what its serving container reads (the model package's)
    response_types: tuple[str, ...] = (CSV,)  # what it answers in
    transform_accept: str = CSV  # the response type a batch transform asks for: one line per record

    @property
    def package_types(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Its model package's ``SupportedContentTypes`` and ``SupportedResponseMIMETypes``: what
        the first container reads (an encoder in front reads text/csv only) and what the
        algorithm's container answers in."""
        return ((CSV,) if self.encoder else self.content_types), self.response_types

    @property
    def script(self) -> bool:
        return self.source is not None

    @property
    def own_code(self) -> bool:
        """The team's own script or image: hyperparameters are its own, not XGBoost's."""
        return self.source is not None or self.own_repository_arn is not None

    def container(self, model_data_path: str) -> dict:
        """A container definition (CreateModel's PrimaryContainer, a model package's container)
        serving the model artifact at the state path ``model_data_path``."""
        return {"Image": self.serving_image_uri or self.image_uri, "ModelDataUrl.$": model_data_path,
                **({"Environment": dict(self.environment)} if self.environment else {})}

    def channels(self) -> list[dict]:
        """The training job's train and validation channels: the run's splits, or their encoded
        copies (``encoding.py``) where the algorithm trains on those."""
        splits = "$.run.s3.encoded_" if self.encoder else "$.run.s3."
        return [{"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri.$": f"{splits}{name}", "S3DataDistributionType": "FullyReplicated"}}}
            for name in ("train", "validation")]

    def model_containers(self) -> dict:
        """CreateModel's container parameters: ``PrimaryContainer``, or an inference pipeline's ``Containers``."""
        containers = self.containers("$.training.model_data")
        return {"PrimaryContainer": containers[0]} if len(containers) == 1 else {"Containers": containers}

    def package_containers(self) -> dict:
        """The model package's inference containers."""
        return {"Containers": self.containers("$.training.model_data")}

    def containers(self, model_data_path: str) -> list[dict]:
        """The model's serving containers, in order: the encoder's where there is one, then
        the algorithm's (``container``)."""
        return [*([self.encoder.container()] if self.encoder else []), self.container(model_data_path)]

    @property
    def repositories(self) -> set[str]:
        """The images of SageMaker's per-region accounts the jobs and the serving containers pull."""
        return {name for name in (self.repository, self.serving_repository, self.encoder and self.encoder.repository)
                if name}

    def grant_execution(self, role: iam.IRole) -> None:
        """The execution role downloads a script's code in training jobs and in the serving
        container (by key: no listing), and pulls the team's own image from its one repository
        (the XGBoost and scikit-learn images: ``allow_job_runtime``)."""
        if self.source is not None:
            read_assets(role, [self.source], listed=False)
        if self.encoder is not None:  # the encoding job's code (a processing input), the encoder's (by key)
            read_assets(role, [self.encoder.script])
            read_assets(role, [self.encoder.source], listed=False)
        if self.own_repository_arn is not None:  # one repository of the team's account: no wildcard
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[self.own_repository_arn]))


def algorithm(scope: Construct, pipeline: PipelineConfig, images: ImageMapping, *, image_key: str = "script",
              encoding: Encoder | None = None) -> Algorithm:
    """The stage's algorithm; ``images`` holds ``xgboost``, for a script ``image_key`` and, for a
    built-in algorithm on categorical features, ``encoder`` (``encoding``: an encoder the stage's
    candidates share; none given, one is made). Linear Learner adds its image to ``images``."""
    if pipeline.candidates:
        raise ValueError("a pipeline with candidates has one algorithm per candidate: candidates.stage_algorithm")
    script, container = pipeline.script, pipeline.model.container
    if container is not None:
        partition = cdk.Stack.of(scope).partition
        return Algorithm(
            image_uri=container.image_uri, repository=None, description=f"Image {container.image_uri}",
            metric_definitions=[{"Name": d.name, "Regex": d.regex} for d in container.metric_definitions],
            environment=dict(container.environment),
            own_repository_arn=f"arn:{partition}:ecr:{container.region}:{container.account}:repository/{container.repository}")
    if script is None:
        if pipeline.dataset.categorical_features and encoding is None:
            encoding = stage_encoder(scope, pipeline, images)
        encoder = encoding if pipeline.dataset.categorical_features else None
        if pipeline.linear_learner:
            return Algorithm(image_uri=images.add("linearlearner", LINEAR_LEARNER_IMAGE),
                             repository=ImageMapping.repository(*LINEAR_LEARNER_IMAGE),
                             description=f"Built-in Linear Learner {LINEAR_LEARNER_IMAGE[1]} "
                                         f"({pipeline.hyperparameters['predictor_type']})",
                             encoder=encoder, content_types=LINEAR_LEARNER_CONTENT_TYPES,
                             response_types=LINEAR_LEARNER_RESPONSE_TYPES, transform_accept=JSON_LINES)
        return Algorithm(image_uri=images.uri("xgboost"), repository=XGBOOST_REPOSITORY,
                         description=f"Built-in XGBoost {pipeline.xgboost_version}", encoder=encoder)
    source = s3_assets.Asset(scope, "TrainingCode", path=str(_tarball(REPO_ROOT / script.source_dir)))
    region = cdk.Stack.of(scope).region
    serving = script_serving_image(script)
    return Algorithm(
        image_uri=images.uri(image_key),
        repository=ImageMapping.repository(script.framework, script.framework_version),
        **({"serving_image_uri": images.uri(f"{image_key}serving"),
            "serving_repository": ImageMapping.repository(*serving[:2], serving[4])} if serving else {}),
        description=f"{script.source_dir}/{script.entry_point} on {FRAMEWORK_NAMES[script.framework]} "
                    f"{script.framework_version}",
        metric_definitions=[{"Name": d.name, "Regex": d.regex} for d in script.metric_definitions],
        framework_hyperparameters={
            "sagemaker_program": json.dumps(script.entry_point),
            "sagemaker_submit_directory": json.dumps(source.s3_object_url),
            "sagemaker_container_log_level": "20",
            "sagemaker_region": json.dumps(region),
        },
        environment={"SAGEMAKER_PROGRAM": script.entry_point, "SAGEMAKER_SUBMIT_DIRECTORY": source.s3_object_url,
                     "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": region},
        source=source,
    )


SERVING_FORMAT = "$.predict_format"  # the winner's formats, where candidates differ ("Winner answers in?")
Formats = tuple[str, tuple[str, ...], tuple[str, ...]]  # transform Accept, package content and response types


def serving_formats(algorithm: Any) -> dict[Formats, list[str]]:
    """Each distinct way the model (an ``Algorithm``) or the candidates (a ``CandidateSet``) serve:
    the response type a transform asks for, one line per record (``transform_accept``), and the
    model package's content and response types (``package_types``), with the names of the
    candidates serving that way."""
    members = getattr(algorithm, "algorithms", None) or (("", algorithm),)
    formats: dict[Formats, list[str]] = {}
    for name, member in members:
        formats.setdefault((member.transform_accept, *member.package_types), []).append(name)
    return formats


def package_types(algorithm: Any) -> dict:
    """CreateModelPackage's ``SupportedContentTypes`` and ``SupportedResponseMIMETypes``: the
    serving algorithm's; with candidates that serve differently, the winner's, which "Winner
    answers in?" put at ``SERVING_FORMAT`` before the test split was predicted."""
    formats = serving_formats(algorithm)
    if len(formats) == 1:
        ((_, content_types, response_types),) = formats
        return {"SupportedContentTypes": list(content_types), "SupportedResponseMIMETypes": list(response_types)}
    return {"SupportedContentTypes.$": f"{SERVING_FORMAT}.content_types",
            "SupportedResponseMIMETypes.$": f"{SERVING_FORMAT}.response_types"}


def script_image(script: ScriptConfig) -> tuple[str, ...]:
    """A script's framework image, as ``ImageMapping`` looks it up: scikit-learn's CPU, Python 3
    image, the XGBoost image (the built-in algorithm's, which runs a script when given one), or
    PyTorch's CPU training image with its version's Python."""
    version = str(script.framework_version)
    if script.framework == "xgboost":
        return ("xgboost", version)
    if script.framework == "pytorch":
        return ("pytorch", version, "cpu", table_entry("pytorch", version)["py_versions"][-1])
    return ("sklearn", version, "cpu", "py3")


def script_serving_image(script: ScriptConfig) -> tuple[str, ...] | None:
    """The image that serves a script's model where it is not the training image: PyTorch's CPU
    inference image (``ImageMapping`` key ``<training key>serving``); None for the others."""
    if script.framework != "pytorch":
        return None
    version = str(script.framework_version)
    return ("pytorch", version, "cpu", table_entry("pytorch", version, "inference")["py_versions"][-1], "inference")


def stage_encoder(scope: Construct, pipeline: PipelineConfig, images: ImageMapping) -> Encoder:
    """The one-hot encoder of a stage's categorical features (``images`` holds ``encoder``)."""
    dataset = pipeline.dataset
    return encoder(scope, image_uri=images.uri("encoder"),
                   categorical=[dataset.features.index(name) for name in dataset.categorical_features],
                   repository=ImageMapping.repository("sklearn", ENCODER_FRAMEWORK_VERSION),
                   sourcedir=s3_assets.Asset(scope, "EncoderCode", path=str(_tarball(JOBS_DIR / "encode"))))


def _tarball(directory: Path) -> Path:
    """``sourcedir.tar.gz`` of ``directory`` in a file named by its content (the asset copies it
    into the cloud assembly; the same code always gives the same asset hash)."""
    data = sourcedir_tarball(directory)
    path = Path(tempfile.gettempdir()) / "mlops-sourcedir" / f"{hashlib.sha256(data).hexdigest()}.tar.gz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: parallel synths never read half a file
    return path
