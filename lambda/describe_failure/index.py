"""A failed run's cause, for people: one line saying which error, in which state, and why.

Every workflow's failure ending calls this first. Event: ``{"error": {"Error": str, "Cause":
str, "State"?: str}, "execution_arn": str}``: what the state's Catch recorded (``State`` where
the workflow raised the error itself in a Pass state), and the failing execution.

The ``Cause`` Step Functions records depends on who failed, and is usually JSON in a string:

* a Lambda handler: ``{"errorType", "errorMessage", "stackTrace"}`` (Lambda Developer Guide,
  "AWS Lambda function errors in Python");
* a SageMaker ``.sync`` job: the job's ``Describe*Job`` response, whose ``FailureReason`` says
  why; a Glue ``.sync`` job run: the ``JobRun`` with its ``ErrorMessage``; a DataBrew job run:
  ``DescribeJobRun`` with its ``ErrorMessage`` ("Run a job" service integrations, Step
  Functions Developer Guide);
* a nested state machine (``startExecution.sync:2``): the child's ``DescribeExecution``
  response, whose ``Error`` and ``Cause`` are the child's own failure (this function's
  one-line summary, since every workflow ends through it);
* an SDK call (``arn:aws:states:::aws-sdk:*``): the service's error message as text.

Returns ``{"error", "state", "summary", "notice", "detail"}``:

* ``error``: the name the execution fails with: the workflow's own names
  (``InvalidExecutionInput``, ``DataQualityFailed`` …; a nested run's name when the nested run
  failed) as they are, Step Functions' reserved ``States.*`` names as ``StepFailed`` (the
  original name stays at the front of the summary);
* ``state``: the failing state, read from the execution's history (the state whose failure
  event carries this error); ``Prepare data › Check data quality`` when a nested run failed;
* ``summary``: ``<error> in state '<state>': <message>``, one line, followed only by the
  items of a list the message carries (a data-quality failure's rules, one per line);
* ``detail``: the same as structured JSON: ``error``, ``state``, ``execution`` and ``cause``
  (the job's name, status and failure reason; the handler's error type, message and stack
  trace; the nested execution, its state and message), never a JSON document escaped into a
  string;
* ``notice``: the summary, then the detail as indented JSON: the operations topic's message.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="describe-failure")

LINE = 600  # characters of a summary's first line; the detail keeps everything
HISTORY_PAGES = 5  # pages of 100 events, newest first, searched for the failure
_SUMMARY = re.compile(r"^(?P<error>[\w.]+) in state '(?P<state>[^\n]+?)': (?P<message>.*)$", re.DOTALL)
# Describe*Job responses: the job-name key, and a readable kind
_JOBS = {"TrainingJobName": "training job", "ProcessingJobName": "processing job", "TransformJobName": "transform job",
         "HyperParameterTuningJobName": "tuning job"}


class Error(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Error: str = Field(default="States.Unknown", max_length=256)
    Cause: str | None = None
    State: str | None = Field(default=None, max_length=80)


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: Error
    execution_arn: str = Field(pattern=r"^arn:aws[a-z-]*:states:")


@lru_cache(maxsize=None)
def _states():
    return boto3.client("stepfunctions")


def explain(error: str, cause: str | None) -> tuple[str, str, dict[str, Any], str | None]:
    """(error name, message, structured detail, state path inside a nested run) for what a
    Catch recorded."""
    try:
        parsed = json.loads(cause) if cause else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        message = (cause or "").strip() or "no cause given"
        return error, message, {"error": error, "message": message}, None
    if parsed.keys() == {"JobRun"} and isinstance(parsed["JobRun"], dict):
        parsed = parsed["JobRun"]
    if "errorMessage" in parsed or "errorType" in parsed:  # a Lambda handler's exception
        message = str(parsed.get("errorMessage") or parsed.get("errorType"))
        return error, message, {"error_type": parsed.get("errorType", error), "error_message": message,
                                "stack_trace": parsed.get("stackTrace") or parsed.get("trace") or []}, None
    if "ExecutionArn" in parsed and "Status" in parsed:  # a nested execution (startExecution.sync:2)
        child_error, child_cause = str(parsed.get("Error") or error), str(parsed.get("Cause") or "")
        match = _SUMMARY.match(child_cause)
        if match:
            child_error, child_state, message = match["error"], match["state"], match["message"]
        else:
            child_state, message = None, child_cause or f"nested execution {parsed.get('Status')}"
        detail = {"execution": parsed["ExecutionArn"], "status": parsed["Status"], "error": parsed.get("Error"),
                  "state": child_state, "message": message}
        return child_error, message, detail, child_state
    for key, kind in _JOBS.items():
        if key in parsed:
            status = next((v for k, v in parsed.items() if k.endswith("JobStatus")), None)
            reason = " ".join(str(parsed.get("FailureReason") or f"ended {status}").split())
            detail = {"job": parsed[key], "arn": next((v for k, v in parsed.items() if k.endswith("JobArn")), None),
                      "status": status, "failure_reason": parsed.get("FailureReason")}
            return error, f"{kind} {parsed[key]} {status}: {reason}", detail, None
    if "JobName" in parsed and ("JobRunState" in parsed or "State" in parsed):  # Glue job run, DataBrew job run
        state = parsed.get("JobRunState") or parsed.get("State")
        run = parsed.get("Id") or parsed.get("RunId")
        service = "Glue" if "JobRunState" in parsed else "DataBrew"
        reason = " ".join(str(parsed.get("ErrorMessage") or "no error message").split())
        detail = {"service": service, "job": parsed["JobName"], "run": run, "state": state,
                  "error_message": parsed.get("ErrorMessage")}
        return error, f"{service} job {parsed['JobName']} run {run} {state}: {reason}", detail, None
    message = json.dumps(parsed, separators=(",", ":"))
    return error, message, {"error": error, "cause": parsed}, None


def failed_state(execution_arn: str, error: str, cause: str | None) -> str | None:
    """The state whose failure event carries ``error`` (and ``cause``), newest first: follow
    the event's ``previousEventId`` back to the state's ``*StateEntered`` event."""
    events: dict[int, dict[str, Any]] = {}
    token, failure = None, None
    for _ in range(HISTORY_PAGES):
        page = _states().get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=100,
                                               **({"nextToken": token} if token else {}))
        for event in page["events"]:
            events[event["id"]] = event
            kind = event["type"]
            if failure is None and kind.endswith(("Failed", "TimedOut", "Aborted")) and not kind.startswith("Execution"):
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                if details.get("error") == error and (cause is None or details.get("cause", "") == cause):
                    failure = event
        token = page.get("nextToken")
        if failure is not None or not token:
            break
    if failure is None:
        return None
    event: dict[str, Any] | None = failure
    while event is not None and not event["type"].endswith("StateEntered"):
        previous = event.get("previousEventId")
        event = events.get(previous) if previous else None
    if event is None:  # the chain left the fetched pages: the nearest state entered before the failure
        entered = [e for e in events.values() if e["id"] < failure["id"] and e["type"].endswith("StateEntered")]
        event = max(entered, key=lambda e: e["id"]) if entered else None
    return event["stateEnteredEventDetails"]["name"] if event else None


def describe(error: Error, execution_arn: str) -> dict[str, Any]:
    name, message, detail, inner = explain(error.Error, error.Cause)
    try:
        state = error.State or failed_state(execution_arn, error.Error, error.Cause)
    except (ClientError, BotoCoreError) as problem:  # the history is a nicety: explain without it
        logger.warning(f"execution history unreadable: {problem}")
        state = None
    path = " › ".join(part for part in (state or "unknown", inner) if part)
    reported = "StepFailed" if name.startswith("States.") else name
    first, _, rest = message.partition("\n")
    prefix = f"{name} in state '{path}': " if reported == name else f"StepFailed in state '{path}': {name}: "
    first = prefix + first
    if len(first) > LINE:
        first = first[:LINE - 1] + "…"
    summary = first + ("\n" + rest if rest else "")
    detail = {"error": name, "state": path, "execution": execution_arn, "cause": detail}
    notice = f"{summary}\n\n{json.dumps(detail, indent=2, default=str)}"
    return {"error": reported, "state": path, "summary": summary, "notice": notice, "detail": detail}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as problem:
        raise ValueError("malformed failure event: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in problem.errors())) from None
    described = describe(parsed.error, parsed.execution_arn)
    logger.info(described["summary"].partition("\n")[0], extra={"detail": described["detail"]})
    return described
