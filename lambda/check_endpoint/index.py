"""Before deploying: does the serving endpoint exist, and may it be changed now?

Returns ``{"exists": bool, "status": str | None, "endpoint_config_name": str | None}``.
Raises ``EndpointBusy`` while the endpoint is Creating, Updating, SystemUpdating,
RollingBack or Deleting: SageMaker rejects an update then, so the state machine retries
this state with backoff (bounded) instead of failing the run or touching the endpoint.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="check-endpoint")

BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


class EndpointBusy(Exception):
    """The endpoint is in a transitional state; retry later."""


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@lru_cache(maxsize=None)
def _sagemaker():
    return boto3.client("sagemaker")


def endpoint_state(name: str) -> dict[str, Any]:
    try:
        described = _sagemaker().describe_endpoint(EndpointName=name)
    except ClientError as error:
        # SageMaker answers a missing endpoint with ValidationException "Could not find endpoint ..."
        message = error.response["Error"].get("Message", "")
        if error.response["Error"]["Code"] == "ValidationException" and "Could not find endpoint" in message:
            return {"exists": False, "status": None, "endpoint_config_name": None}
        raise
    status = described["EndpointStatus"]
    if status in BUSY:
        raise EndpointBusy(f"endpoint {name} is {status}; waiting before deploying")
    return {"exists": True, "status": status, "endpoint_config_name": described["EndpointConfigName"]}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:
        raise ValueError(f"malformed check-endpoint event: {error}") from None
    state = endpoint_state(parsed.endpoint_name)
    logger.info("endpoint state", extra=state)
    return state
