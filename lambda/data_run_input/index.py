"""First task of the data state machine: check the data run's execution input and say where
the run writes.

A training run passes ``{"output_prefix": "s3://<curated>/<dataset>/runs/<run>/", "trigger":
{"source": "training", "run": "<run>"}}``; the new-raw-data rule passes ``{"trigger": {"source":
"new-raw-data", "key": "<object key>"}}``; a person may start a data-only run with ``{}``. Such a
run writes to ``latest`` (the ``<dataset>/latest/`` prefix of the curated bucket).

Anything else fails here with ``InvalidExecutionInput`` and one line naming each bad field and
what it allows: input that is not a JSON object, an unknown field, a wrong type (no coercion:
``"true"`` is not a boolean), an ``output_prefix`` that is not an ``s3://`` URI ending in ``/``.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="data-run-input")

TRIGGER_SOURCES = ("manual", "training", "new-raw-data", "schedule")


class InvalidExecutionInput(Exception):
    """Step Functions sees this class name as the error; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Trigger(_Strict):
    source: Literal[TRIGGER_SOURCES] = "manual"  # type: ignore[valid-type]
    run: str | None = Field(default=None, max_length=256)  # the training run that started the data run
    key: str | None = Field(default=None, max_length=1024)  # the raw object that started it
    reason: str | None = Field(default=None, max_length=500)


class DataRunInput(_Strict):
    output_prefix: str | None = Field(default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(.+/)?$")
    trigger: Trigger = Field(default_factory=Trigger)
    # Step Functions adds this to the input of an execution a parent starts with
    # "AssociateWithParent" (the training run's "Prepare data" state does)
    AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: str | None = Field(default=None, pattern=r"^arn:[a-z-]+:states:")


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Any = None  # the execution input, whatever it is
    latest: str = Field(pattern=r"^s3://.+/$")  # where a data-only run writes


_MODELS = {(): DataRunInput, ("trigger",): Trigger}
_TYPES = {"string_type": "a string", "dict_type": "a JSON object", "model_type": "a JSON object",
          "bool_type": "true or false"}


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        loc = tuple(str(part) for part in item["loc"])
        path, message = ".".join(("input", *loc)), item["msg"]
        if item["type"] == "extra_forbidden":
            message = f"unknown field; allowed: {', '.join(_MODELS.get(loc[:-1], DataRunInput).model_fields)}"
        elif item["type"] == "literal_error":
            message = f"must be one of {item['ctx']['expected']} (got {item['input']!r})"
        elif item["type"] == "string_pattern_mismatch":
            message = f"must be an s3:// URI ending in '/' (got {item['input']!r}); omit it to write to latest"
        elif item["type"] in _TYPES:
            message = f"must be {_TYPES[item['type']]} (got {item['input']!r})"
        problems.append(f"{path}: {message}")
    return "; ".join(problems)


def check(event: Event) -> dict[str, Any]:
    """``{"base": {"prefix": <where the run writes>}, "trigger": {...}}`` or InvalidExecutionInput."""
    if event.input is not None and not isinstance(event.input, dict):
        raise InvalidExecutionInput(f"input: the data run's input must be a JSON object, for example {{}} "
                                    f"(got {type(event.input).__name__} {event.input!r:.80})")
    try:
        run_input = DataRunInput.model_validate(event.input or {})
    except ValidationError as error:
        raise InvalidExecutionInput(_describe(error)) from None
    return {"base": {"prefix": run_input.output_prefix or event.latest},
            "trigger": run_input.trigger.model_dump(exclude_none=True)}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:  # the state machine's own payload is wrong: a bug, not user input
        raise ValueError(f"malformed data-run-input event: {error}") from None
    checked = check(parsed)
    logger.info("data run input checked", extra=checked)
    return checked
