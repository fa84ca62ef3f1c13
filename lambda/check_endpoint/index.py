"""Before deploying: does the serving endpoint exist, and may it be changed now?

Event: ``{"endpoint_name": str, "instance_types": [str]}`` (the instance types of the new
endpoint config's variants; none for serverless).

Returns ``{"exists": bool, "status": str | None, "endpoint_config_name": str | None,
"deregister_scaling": bool}``. Raises ``EndpointBusy`` while the endpoint is Creating,
Updating, SystemUpdating, RollingBack or Deleting: SageMaker rejects an update then, so the
state machine retries this state with backoff (bounded) instead of failing the run or
touching the endpoint.

``deregister_scaling`` is true when a variant registered with Application Auto Scaling would
change instance type: SageMaker refuses that update until the variant is deregistered
("Update endpoints that use auto scaling", SageMaker Developer Guide). The state machine
deregisters it, updates, and registers the variant again once the endpoint is in service.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

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
    instance_types: list[Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]] = Field(default_factory=list,
                                                                                                max_length=10)


@lru_cache(maxsize=None)
def _sagemaker():
    return boto3.client("sagemaker")


@lru_cache(maxsize=None)
def _autoscaling():
    return boto3.client("application-autoscaling")


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


def scaling_blocks_update(name: str, config_name: str, instance_types: list[str]) -> bool:
    """Would updating to ``instance_types`` change a variant that is a scalable target?"""
    if not instance_types:
        return False
    variants = _sagemaker().describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    changed = {f"endpoint/{name}/variant/{v['VariantName']}" for v in variants if v.get("InstanceType") not in instance_types}
    if not changed:
        return False
    targets = _autoscaling().describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=sorted(changed))
    return bool(targets["ScalableTargets"])


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:
        raise ValueError(f"malformed check-endpoint event: {error}") from None
    state = endpoint_state(parsed.endpoint_name)
    state["deregister_scaling"] = bool(state["exists"]) and scaling_blocks_update(
        parsed.endpoint_name, state["endpoint_config_name"], parsed.instance_types)
    logger.info("endpoint state", extra=state)
    return state
