"""Start a retraining run of the training state machine, with storm protection.

Two events reach this function:

* from EventBridge Scheduler (the retraining schedule): ``{"source": "schedule", "reason": "weekly"}``;
* from EventBridge ("CloudWatch Alarm State Change") when a drift or model-quality alarm
  goes into ALARM.

Storm protection, in this order:

1. nothing starts while an execution of the training state machine is running;
2. the execution name is derived from the trigger and its time window (``alarm-<window start>``
   for alarms, ``schedule-<date>`` for the schedule). Step Functions refuses a second
   execution with the same name (``ExecutionAlreadyExists``), so at most one alarm-triggered
   run per ``ALARM_WINDOW_HOURS`` starts, however many alarms fire or however often
   EventBridge redelivers — even when two deliveries race.

The trigger goes into the execution input (``trigger.source``/``trigger.reason``) and from
there onto the registered model version.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="retrain")


class ScheduleEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["schedule"]
    reason: str = Field(default="", max_length=200)


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: str
    reason: str = ""


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    alarm_name: str = Field(alias="alarmName", min_length=1)
    state: AlarmState


class AlarmEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    detail: AlarmDetail


@lru_cache(maxsize=None)
def _sfn():
    return boto3.client("stepfunctions")


def _running(state_machine_arn: str) -> str | None:
    executions = _sfn().list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING",
                                        maxResults=1)["executions"]
    return executions[0]["name"] if executions else None


def decide(event: dict[str, Any], *, state_machine_arn: str, alarm_sources: dict[str, str], window_hours: int,
           now: datetime) -> dict[str, Any]:
    """Start (or not) one run; returns what happened and why."""
    if "detail-type" in event:
        alarm = AlarmEvent.model_validate(event)
        if alarm.detail.state.value != "ALARM":
            return {"started": False, "reason": f"{alarm.detail.alarm_name} is {alarm.detail.state.value}, not ALARM"}
        source = alarm_sources.get(alarm.detail.alarm_name)
        if source is None:
            raise ValueError(f"detail.alarmName: {alarm.detail.alarm_name!r} does not trigger retraining; "
                             f"allowed: {', '.join(sorted(alarm_sources))}")
        window = int(now.timestamp()) // (window_hours * 3600) * (window_hours * 3600)
        name = f"alarm-{datetime.fromtimestamp(window, timezone.utc):%Y%m%dT%H%M}"
        reason = f"{alarm.detail.alarm_name}: {alarm.detail.state.reason}"
    else:
        schedule = ScheduleEvent.model_validate(event)
        source, name, reason = "schedule", f"schedule-{now:%Y%m%dT%H%M}", schedule.reason or "scheduled retraining"
    running = _running(state_machine_arn)
    if running:
        return {"started": False, "reason": f"execution {running} is running; no second run while it does"}
    try:
        arn = _sfn().start_execution(
            stateMachineArn=state_machine_arn, name=name,
            input=json.dumps({"trigger": {"source": source, "reason": reason[:500]}}),
        )["executionArn"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return {"started": False, "reason": f"{name} already started in this window"}
        raise
    return {"started": True, "execution": arn, "source": source}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # read per call, never at import time
    state_machine_arn = os.environ["STATE_MACHINE_ARN"]
    alarm_sources = json.loads(os.environ.get("ALARM_SOURCES", "{}"))
    window_hours = int(os.environ.get("ALARM_WINDOW_HOURS", "24"))
    try:
        outcome = decide(event, state_machine_arn=state_machine_arn, alarm_sources=alarm_sources,
                         window_hours=window_hours, now=datetime.now(timezone.utc))
    except ValidationError as error:
        raise ValueError(f"malformed retraining event: {error}") from None
    logger.info("retraining", extra=outcome)
    return outcome
