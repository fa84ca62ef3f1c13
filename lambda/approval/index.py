"""Manual approval in the Model Registry, bridged to the waiting execution.

Two events reach this function:

* from the state machine (``.waitForTaskToken``): ``{"task_token", "model_package_arn"}``.
  The token is stored next to the run's artifacts (KMS-encrypted, keyed by the model
  package) and the run waits. If the version was approved or rejected already, the
  answer goes back at once.
* from EventBridge ("SageMaker Model Package State Change"): when someone sets the
  version to Approved or Rejected in the registry, the stored token is read and the
  run resumes (``SendTaskSuccess``) or ends with ``ModelRejected`` (``SendTaskFailure``).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="approval")

DECIDED = ("Approved", "Rejected")


class WaitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_token: str = Field(min_length=1)
    model_package_arn: str = Field(pattern=r"^arn:[a-z-]+:sagemaker:")


class StateChangeDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ModelPackageArn: str
    ModelApprovalStatus: Literal["Approved", "Rejected", "PendingManualApproval"]


class StateChange(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    detail_type: Literal["SageMaker Model Package State Change"] = Field(alias="detail-type")
    detail: StateChangeDetail


@lru_cache(maxsize=None)
def _client(service: str):
    return boto3.client(service)


def _token_key(model_package_arn: str) -> str:
    return f"approvals/{hashlib.sha256(model_package_arn.encode()).hexdigest()}.json"


def _resume(token: str, model_package_arn: str, status: str) -> str:
    sfn = _client("stepfunctions")
    if status == "Approved":
        sfn.send_task_success(taskToken=token, output=json.dumps({"status": status, "model_package_arn": model_package_arn}))
        return "resumed"
    sfn.send_task_failure(
        taskToken=token, error="ModelRejected",
        cause=f"{model_package_arn} was rejected in the Model Registry; nothing is deployed",
    )
    return "ended"


def wait_for_decision(request: WaitRequest, bucket: str) -> str:
    status = _client("sagemaker").describe_model_package(ModelPackageName=request.model_package_arn)["ModelApprovalStatus"]
    if status in DECIDED:  # decided before the run started waiting
        return _resume(request.task_token, request.model_package_arn, status)
    _client("s3").put_object(
        Bucket=bucket, Key=_token_key(request.model_package_arn),
        Body=json.dumps({"task_token": request.task_token, "model_package_arn": request.model_package_arn}).encode(),
    )
    return "waiting"


def on_state_change(change: StateChange, bucket: str) -> str:
    detail = change.detail
    if detail.ModelApprovalStatus not in DECIDED:
        return "ignored"
    key = _token_key(detail.ModelPackageArn)
    s3 = _client("s3")
    try:
        stored = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return "no waiting run"  # approved outside a run, or the run has ended
        raise
    outcome = _resume(stored["task_token"], detail.ModelPackageArn, detail.ModelApprovalStatus)
    s3.delete_object(Bucket=bucket, Key=key)
    return outcome


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    bucket = os.environ["TOKEN_BUCKET"]  # read per call, never at import time
    try:
        if "detail-type" in event:
            outcome = on_state_change(StateChange.model_validate(event), bucket)
        else:
            outcome = wait_for_decision(WaitRequest.model_validate(event), bucket)
    except ValidationError as error:
        raise ValueError(f"malformed approval event: {error}") from None
    logger.info("approval", extra={"outcome": outcome})
    return {"outcome": outcome}
