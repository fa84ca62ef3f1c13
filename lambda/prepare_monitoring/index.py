"""What one monitoring run compares: the serving model's training split (the baseline)
against the inference data the endpoint captured in the last window.

Event (from the monitoring state machine)::

    {"endpoint": "...", "model_package_group": "...", "window_hours": 24,
     "capture_uri": "s3://<monitoring>/data-capture/", "output_uri": "s3://<monitoring>/monitoring/",
     "execution": "<execution name>"}

The baseline is the training split (``train_data`` in its lineage, set at registration) of the
model serving what is monitored: the newest version whose ``serving`` property (set by the run
that deployed it, once the deployment was confirmed) names the real-time endpoint, or batch for
a batch run's output. An approved version that never served is never the baseline. The
captured objects of the window are listed into a SageMaker manifest file, so the processing
job reads exactly that window. With no serving version or no captured data, ``has_data`` is
false and the run ends without a job.

A training run that scored a prefix in batch starts a run with the execution input
``{"batch_output": "s3://<artifacts>/runs/<run>/transform/"}``: the window is then that batch
transform's output (features joined with the predictions) instead of captured traffic.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="prepare-monitoring")


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str = Field(min_length=1, max_length=63)
    model_package_group: str = Field(min_length=1)
    window_hours: int = Field(ge=1, le=24 * 31)
    capture_uri: str = Field(pattern=r"^s3://[^/]+/.*/$")
    output_uri: str = Field(pattern=r"^s3://[^/]+/.*/$")
    execution: str = Field(min_length=1, max_length=80)
    batch_uri: str = Field(pattern=r"^s3://[^/]+/.*/$")  # where batch transform outputs land (runs/<run>/transform/)
    input: Any = None  # the execution input: {} from the schedule, {"batch_output": ...} from a batch run


class BatchInput(BaseModel):
    model_config = ConfigDict(extra="ignore")
    batch_output: str = Field(pattern=r"^s3://[^/]+/.+/$")


@lru_cache(maxsize=None)
def _client(service: str):
    return boto3.client(service)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


SCAN_LIMIT = 100  # versions looked at, newest first, for the one serving


def baseline(group: str, mode: str) -> tuple[str, str] | None:
    """(model package ARN, training-split URI) of the newest version serving in ``mode``."""
    sagemaker = _client("sagemaker")
    pages = sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
    for index, summary in enumerate(s for page in pages for s in page["ModelPackageSummaryList"]):
        if index >= SCAN_LIMIT:
            break
        properties = sagemaker.describe_model_package(
            ModelPackageName=summary["ModelPackageArn"]).get("CustomerMetadataProperties", {})
        if properties.get("serving", "").split(" ")[0] == mode:
            return (summary["ModelPackageArn"], properties["train_data"]) if properties.get("train_data") else None
    return None


def captured(capture_uri: str, endpoint: str, since: datetime) -> list[str]:
    bucket, prefix = _split(capture_uri)
    keys = []
    for page in _client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{endpoint}/"):
        keys += [item["Key"] for item in page.get("Contents", []) if item["LastModified"] >= since]
    return sorted(keys)


def batch_output(event: Event) -> str | None:
    """The batch transform output to monitor, when a batch run started this one (under the
    stage's transform outputs only), else None."""
    if not (isinstance(event.input, dict) and "batch_output" in event.input):
        return None
    uri = BatchInput.model_validate(event.input).batch_output
    bucket, key = _split(uri)
    root_bucket, root = _split(event.batch_uri)
    if bucket != root_bucket or not key.startswith(root) or "/transform/" not in key:
        raise ValueError(f"input.batch_output: must be a batch transform output of this stage "
                         f"(s3://{root_bucket}/{root}<run>/transform/), got {uri}")
    return uri


def listed(uri: str) -> list[str]:
    bucket, prefix = _split(uri)
    return sorted(item["Key"] for page in _client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                  for item in page.get("Contents", []))


def prepare(event: Event, now: datetime) -> dict[str, Any]:
    batch = batch_output(event)
    mode = "batch" if batch else "realtime"
    found = baseline(event.model_package_group, mode)
    if found is None:
        return {"has_data": False, "reason": f"no version of {event.model_package_group} serves in {mode} mode yet "
                                             "to compare against"}
    package, train = found
    if batch:
        keys, source = listed(batch), "batch"
        if not keys:
            return {"has_data": False, "reason": f"the batch transform wrote nothing under {batch}"}
    else:
        keys, source = captured(event.capture_uri, event.endpoint, now - timedelta(hours=event.window_hours)), "capture"
        if not keys:
            return {"has_data": False, "reason": f"{event.endpoint} captured nothing in the last {event.window_hours} h"}
    bucket, _ = _split(batch or event.capture_uri)
    out_bucket, out_prefix = _split(event.output_uri)
    manifest_key = f"{out_prefix}manifests/{event.execution}.json"
    # SageMaker manifest file: a common prefix, then the keys relative to it
    _client("s3").put_object(Bucket=out_bucket, Key=manifest_key,
                             Body=json.dumps([{"prefix": f"s3://{bucket}/"}, *keys]).encode())
    return {
        "has_data": True,
        "model_package": package,
        "baseline": train,
        "manifest": f"s3://{out_bucket}/{manifest_key}",
        "report": f"{event.output_uri}reports/{event.execution}/",
        "objects": len(keys),
        "source": source,
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:  # the state machine's own payload is wrong: a bug, not user input
        raise ValueError(f"malformed prepare-monitoring event: {error}") from None
    result = prepare(parsed, datetime.now(timezone.utc))
    logger.info("monitoring window", extra={k: v for k, v in result.items() if k != "manifest"})
    return result
