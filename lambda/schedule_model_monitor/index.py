"""Points SageMaker Model Monitor at the model the training run just deployed
(``monitoring.backend: model-monitor``).

Event (from the training state machine, after the baselining job)::

    {"endpoint": "<prefix>-endpoint", "prefix": "<project>-<stage>", "version": "<run id>",
     "baseline_uri": "s3://<curated>/.../baseline/",   # the baselining job's statistics.json + constraints.json
     "output_uri": "s3://<monitoring>/model-monitor/", "image_uri": "...", "role_arn": "...",
     "kms_key_arn": "...", "instance_type": "ml.m5.large", "volume_size_gb": 30,
     "max_runtime_seconds": 3600, "network_isolation": true,
     "schedule_expression": "cron(0 0 ? * * *)", "drift_threshold": 0.1,
     "problem_type": "binary_classification",
     "model_quality": null | {"ground_truth_uri": "s3://<monitoring>/monitoring/ground-truth/",
                              "probability_threshold": 0.5,
                              "thresholds": [{"metric": "f1", "direction": ">=", "value": 0.9}]}}

What it does, each step safe to repeat (Step Functions retries the task):

1. Tunes the suggested constraints: the drift threshold from config
   (``distribution_constraints.comparison_threshold``), metrics and evaluation on. The
   baseline is the training split with the label first; Model Monitor lines the endpoint's
   output up with that column (``output_columns_position: START``). A classifier answers
   with a probability where the label is 0/1, so that column's type becomes Fractional.
2. Creates the job definitions ``<prefix>-dq-<version>`` (and ``<prefix>-mq-<version>``
   with ground truth: the problem type, the probability in the output's first column and
   the business thresholds as Model Monitor constraints).
3. Creates the schedules ``<prefix>-data-quality`` / ``<prefix>-model-quality`` or points
   the existing ones at the new definitions, then deletes the definitions they used before.
   Without ground truth a model-quality schedule left by an earlier configuration is
   deleted: its alarms are gone from the stack.

A bad event is the state machine's bug, not user input: it fails with the field named.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="schedule-model-monitor")

S3_PREFIX = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(.+/)?$"
ENDPOINT_INPUT = "/opt/ml/processing/input/endpoint"
OUTPUT = "/opt/ml/processing/output"
COMPARISON = {">=": "LessThanThreshold", "<=": "GreaterThanThreshold"}  # the constraint is violated when...
# Model quality for multiclass is not scheduled: the stage config refuses it (the built-in XGBoost
# answers class probabilities, and the multiclass job reads one predicted-label column).
PROBLEM_TYPES = {"binary_classification": "BinaryClassification", "regression": "Regression"}
CONSTRAINT_SECTIONS = {"binary_classification": "binary_classification_constraints",
                       "regression": "regression_constraints"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Threshold(_Model):
    metric: str = Field(min_length=1)
    direction: Literal[">=", "<="]
    value: float


class ModelQuality(_Model):
    ground_truth_uri: str = Field(pattern=S3_PREFIX)
    probability_threshold: float = Field(gt=0, lt=1)
    thresholds: list[Threshold] = Field(default_factory=list)


class Event(_Model):
    endpoint: str = Field(min_length=1, max_length=63)
    prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    version: str = Field(pattern=r"^[a-zA-Z0-9]{1,16}$")
    baseline_uri: str = Field(pattern=S3_PREFIX)
    output_uri: str = Field(pattern=S3_PREFIX)
    image_uri: str = Field(min_length=1)
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    kms_key_arn: str = Field(min_length=1)
    instance_type: str = Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    volume_size_gb: int = Field(ge=1, le=512)
    max_runtime_seconds: int = Field(ge=60, le=86_400)
    network_isolation: bool
    schedule_expression: str = Field(pattern=r"^cron\(.+\)$")
    drift_threshold: float = Field(gt=0, le=1)
    problem_type: Literal["binary_classification", "multiclass_classification", "regression"]
    model_quality: ModelQuality | None = None  # binary classification or regression (the config refuses multiclass)
    tags: dict[str, str] = Field(default_factory=dict)  # the stage's cost-allocation tags, on everything created


@lru_cache(maxsize=None)
def _client(service: str):
    return boto3.client(service)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _read_json(uri: str) -> dict[str, Any]:
    bucket, key = _split(uri)
    return json.loads(_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def _write_json(uri: str, body: dict[str, Any], kms_key_arn: str) -> None:
    bucket, key = _split(uri)
    _client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(body, indent=2).encode(),
                             ContentType="application/json", ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_arn)


def tune_constraints(constraints: dict[str, Any], *, drift_threshold: float, problem_type: str) -> dict[str, Any]:
    """The baselining job's suggested constraints with the platform's settings."""
    tuned = json.loads(json.dumps(constraints))
    features = tuned.get("features")
    if not features:
        raise ValueError("the baselining job suggested no feature constraints (empty training split?)")
    config = tuned.setdefault("monitoring_config", {})
    config["evaluate_constraints"] = "Enabled"
    config["emit_metrics"] = "Enabled"
    distribution = config.setdefault("distribution_constraints", {})
    distribution["perform_comparison"] = "Enabled"
    distribution["comparison_threshold"] = drift_threshold
    if problem_type == "binary_classification":
        features[0]["inferred_type"] = "Fractional"  # the output column: a probability, baselined on 0/1 labels
    return tuned


def quality_constraints(problem_type: str, thresholds: list[Threshold]) -> dict[str, Any]:
    """Business thresholds as Model Monitor model-quality constraints."""
    return {"version": 0.0, CONSTRAINT_SECTIONS[problem_type]: {
        threshold.metric: {"threshold": threshold.value, "comparison_operator": COMPARISON[threshold.direction]}
        for threshold in thresholds}}


def _tags(event: Event) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(event.tags.items())]


def _common(event: Event, kind: str) -> dict[str, Any]:
    return {
        "RoleArn": event.role_arn,
        "Tags": _tags(event),
        "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": event.instance_type,
                                           "VolumeSizeInGB": event.volume_size_gb, "VolumeKmsKeyId": event.kms_key_arn}},
        "NetworkConfig": {"EnableNetworkIsolation": event.network_isolation,
                          "EnableInterContainerTrafficEncryption": True},
        "StoppingCondition": {"MaxRuntimeInSeconds": event.max_runtime_seconds},
        f"{kind}JobOutputConfig": {"KmsKeyId": event.kms_key_arn, "MonitoringOutputs": [{"S3Output": {
            "S3Uri": f"{event.output_uri}{'data' if kind == 'DataQuality' else 'model'}-quality/",
            "LocalPath": OUTPUT, "S3UploadMode": "EndOfJob"}}]},
    }


def _endpoint_input(event: Event) -> dict[str, Any]:
    return {"EndpointName": event.endpoint, "LocalPath": ENDPOINT_INPUT, "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated"}


def _definition_exists(kind: str, name: str) -> bool:
    describe = getattr(_client("sagemaker"), f"describe_{kind}_job_definition")
    try:
        describe(JobDefinitionName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException"):
            return False
        raise
    return True


def data_quality_definition(event: Event, constraints_uri: str) -> str:
    name = f"{event.prefix}-dq-{event.version}"
    if not _definition_exists("data_quality", name):
        _client("sagemaker").create_data_quality_job_definition(
            JobDefinitionName=name,
            DataQualityBaselineConfig={"ConstraintsResource": {"S3Uri": constraints_uri},
                                       "StatisticsResource": {"S3Uri": f"{event.baseline_uri}statistics.json"}},
            DataQualityAppSpecification={"ImageUri": event.image_uri,
                                         "Environment": {"publish_cloudwatch_metrics": "Enabled"}},
            DataQualityJobInput={"EndpointInput": _endpoint_input(event)},
            **_common(event, "DataQuality"),
        )
    return name


def model_quality_definition(event: Event, quality: ModelQuality, constraints_uri: str) -> str:
    name = f"{event.prefix}-mq-{event.version}"
    if not _definition_exists("model_quality", name):
        # The built-in XGBoost answers one CSV column: P(label = 1) for a classifier (the
        # predicted label is derived with the stage's threshold), the value for a regressor.
        endpoint_input = _endpoint_input(event) | (
            {"ProbabilityAttribute": "0", "ProbabilityThresholdAttribute": quality.probability_threshold}
            if event.problem_type == "binary_classification" else {"InferenceAttribute": "0"})
        _client("sagemaker").create_model_quality_job_definition(
            JobDefinitionName=name,
            ModelQualityBaselineConfig={"ConstraintsResource": {"S3Uri": constraints_uri}},
            ModelQualityAppSpecification={"ImageUri": event.image_uri, "ProblemType": PROBLEM_TYPES[event.problem_type],
                                          "Environment": {"publish_cloudwatch_metrics": "Enabled"}},
            ModelQualityJobInput={"EndpointInput": endpoint_input,
                                  "GroundTruthS3Input": {"S3Uri": quality.ground_truth_uri}},
            **_common(event, "ModelQuality"),
        )
    return name


def _current_definition(schedule: str) -> str | None:
    """The job definition a schedule uses now; None when there is no such schedule."""
    try:
        described = _client("sagemaker").describe_monitoring_schedule(MonitoringScheduleName=schedule)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException"):
            return None
        raise
    return described["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName", "")


def point_schedule(schedule: str, definition: str, monitoring_type: str, event: Event, kind: str) -> dict[str, Any]:
    """Create the schedule or move it to ``definition``; delete the definition it leaves."""
    sagemaker = _client("sagemaker")
    config = {"ScheduleConfig": {"ScheduleExpression": event.schedule_expression},
              "MonitoringJobDefinitionName": definition, "MonitoringType": monitoring_type}
    previous = _current_definition(schedule)
    if previous is None:
        sagemaker.create_monitoring_schedule(MonitoringScheduleName=schedule, MonitoringScheduleConfig=config,
                                             Tags=_tags(event))
        action = "created"
    else:
        sagemaker.update_monitoring_schedule(MonitoringScheduleName=schedule, MonitoringScheduleConfig=config)
        action = "updated"
        if previous and previous != definition:
            _delete_definition(kind, previous)
    return {"schedule": schedule, "job_definition": definition, "action": action, "replaced": previous}


def _delete_definition(kind: str, name: str) -> None:
    try:
        getattr(_client("sagemaker"), f"delete_{kind}_job_definition")(JobDefinitionName=name)
    except ClientError as error:  # already gone, or still held by a running execution: harmless
        logger.warning("job definition not deleted", extra={"name": name, "error": str(error)})


def remove_schedule(schedule: str, kind: str) -> str | None:
    previous = _current_definition(schedule)
    if previous is None:
        return None
    _client("sagemaker").delete_monitoring_schedule(MonitoringScheduleName=schedule)
    if previous:
        _delete_definition(kind, previous)
    return schedule


def schedule(event: Event) -> dict[str, Any]:
    suggested = _read_json(f"{event.baseline_uri}constraints.json")
    constraints_uri = f"{event.baseline_uri}monitoring-constraints.json"
    _write_json(constraints_uri, tune_constraints(suggested, drift_threshold=event.drift_threshold,
                                                  problem_type=event.problem_type), event.kms_key_arn)
    result: dict[str, Any] = {"data_quality": point_schedule(
        f"{event.prefix}-data-quality", data_quality_definition(event, constraints_uri), "DataQuality", event,
        "data_quality")}
    quality_schedule = f"{event.prefix}-model-quality"
    if event.model_quality is None:
        result["model_quality"] = {"removed": remove_schedule(quality_schedule, "model_quality")}
    else:
        quality_uri = f"{event.baseline_uri}model-quality-constraints.json"
        _write_json(quality_uri, quality_constraints(event.problem_type, event.model_quality.thresholds),
                    event.kms_key_arn)
        result["model_quality"] = point_schedule(
            quality_schedule, model_quality_definition(event, event.model_quality, quality_uri), "ModelQuality",
            event, "model_quality")
    return result


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"malformed schedule-model-monitor event: {field}: {first['msg']} "
                         f"(got {first.get('input')!r})") from None
    result = schedule(parsed)
    logger.info("model monitor scheduled", extra=result)
    return result
