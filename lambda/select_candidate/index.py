"""Select candidate: of the candidate models a run trained in parallel, the best one by one
validation metric; a candidate whose branch failed is reported, never fatal to the others.

A training run trains several candidates at once (a Step Functions Parallel state, one branch
per candidate), following the practice of running many training jobs in parallel and comparing
their models on the same held-out metric rather than betting on one algorithm. Each branch ends
with either its trained result or the failure its Catch caught, so one failing candidate never
stops the others; this handler compares what the branches produced.

Event::

    {"candidates": [                     # at least 1, in the config's order, names unique
        {"name": "xgboost", "training": {"job_name": ..., "model_data": "s3://...", "hyperparameters": {...}},
         "containers": [{...}, ...]},    # a trained branch; containers passed through untouched
        {"name": "sklearn", "error": {"Error": ..., "Cause": ...}},   # a failed branch (the Catch output)
        {"name": "tuned", "training": {...}, "containers": [...],     # a candidate that tuned: its best job,
         "tuning_job": {"job_name": ..., "best_training_job": ..., "objective": {...}}},  # and its tuning job
     ],
     "metric": "validation:auc",         # ^(train|validation):[A-Za-z0-9_@.-]+$
     "direction": "Maximize" | "Minimize"}

A candidate has exactly one of ``training`` (then ``containers`` too, a non-empty list, and
``tuning_job`` when it tuned, whose ``best_training_job`` is the training's job) or ``error``. Anything else is a ValueError naming the field (``candidates.N``, ``metric``, ...).

Each trained candidate's value is read from its training job's ``FinalMetricDataList``
(DescribeTrainingJob, SageMaker API reference: the MetricData objects, name, value and time,
the training algorithm emitted; the final value of each metric definition or built-in metric,
set when the job completes). A job whose list lacks the metric, or holds a non-finite value
(NaN, infinity), is ``no metric``: not eligible. The best eligible value by ``direction`` wins;
a tie goes to the candidate listed first.

Returns::

    {"winner": name, "training": <the winner's training, as given>, "containers": <as given>,
     "metric": metric, "value": <the winner's value>,
     "candidates": [{"name", "status": "trained" | "failed" | "no metric",
                     "value" (trained), "job_name" (trained, no metric), "tuning_job" (tuned: its name),
                     "error": "<Error>: <first line of Cause, at most 300 characters>" (failed)}, ...],
     "summary": "xgboost (tuned) won on validation:auc 0.8821 (sklearn 0.8770; lightgbm failed: AlgorithmError: ...)"}

with every candidate in the event's order. No eligible candidate raises ``NoCandidateTrained``
(the error name Step Functions sees) with one line naming what became of each candidate.
DescribeTrainingJob errors propagate, for the state machine to retry or catch.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Annotated, Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

logger = Logger(service="select-candidate")

MAX_ERROR_CHARS = 300  # of a failed branch's cause line


class NoCandidateTrained(Exception):
    """No candidate trained and reported the metric; Step Functions sees the error name NoCandidateTrained."""


class Training(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_name: str = Field(min_length=1, max_length=63)
    model_data: str = Field(pattern=r"^s3://[^/]+/.+")
    hyperparameters: dict[str, str]


class BranchError(BaseModel):
    """A Parallel branch's Catch output."""
    model_config = ConfigDict(extra="forbid")
    Error: str
    Cause: str


class TuningJob(BaseModel):
    """A tuned candidate's tuning job (its state's result): its best job is ``training``."""
    model_config = ConfigDict(extra="forbid")
    job_name: str = Field(min_length=1, max_length=32)
    best_training_job: str = Field(min_length=1, max_length=63)
    objective: dict[str, Any]  # FinalHyperParameterTuningJobObjectiveMetric: Type, MetricName, Value


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^\S+$")  # one word: it is named in one-line summaries
    training: Training | None = None
    containers: Annotated[list[dict[str, Any]], Field(min_length=1)] | None = None  # with training only
    tuning_job: TuningJob | None = None  # with training only, when the candidate tuned
    error: BranchError | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> "Candidate":
        if (self.training is None) == (self.error is None):
            raise ValueError(f"exactly one of training or error is needed; got "
                             f"{'both' if self.training is not None else 'neither'}")
        if self.training is not None and self.containers is None:
            raise ValueError("containers: required with training (a non-empty list)")
        if self.error is not None and (self.containers is not None or self.tuning_job is not None):
            raise ValueError(f"{'containers' if self.containers is not None else 'tuning_job'}: only with training, "
                             "not with error")
        if self.tuning_job is not None and self.tuning_job.best_training_job != self.training.job_name:
            raise ValueError(f"tuning_job.best_training_job: {self.tuning_job.best_training_job!r} is not the "
                             f"candidate's training job {self.training.job_name!r}")
        return self


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidates: list[Candidate] = Field(min_length=1)  # in the config's order
    metric: str = Field(pattern=r"^(train|validation):[A-Za-z0-9_@.-]+$")
    direction: Literal["Maximize", "Minimize"]

    @model_validator(mode="after")
    def _unique_names(self) -> "Event":
        names = [candidate.name for candidate in self.candidates]
        twice = [name for position, name in enumerate(names) if name in names[:position]]
        if twice:
            raise ValueError("; ".join(f"candidates: {name!r} is named twice" for name in dict.fromkeys(twice)))
        return self


@lru_cache(maxsize=None)
def _client(service: str):  # created on first use, never at import time
    return boto3.client(service)


def _model_at(loc: tuple) -> type[BaseModel]:
    """The model whose unknown key ``loc`` names."""
    if len(loc) == 3 and loc[0] == "candidates":
        return Candidate
    if len(loc) == 4 and loc[0] == "candidates":
        return {"training": Training, "error": BranchError, "tuning_job": TuningJob}.get(loc[2], Candidate)
    return Event


def parse_event(event: Any) -> Event:
    """The typed event, or ValueError naming each bad field (on one line)."""
    if not isinstance(event, dict):
        raise ValueError(f"malformed select-candidate event: expected a mapping with "
                         f"{', '.join(Event.model_fields)}; got {type(event).__name__}")
    try:
        return Event.model_validate(event)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            loc = item["loc"]
            field = ".".join(str(part) for part in loc)
            if item["type"] == "value_error":  # a model validator's, its own field named in the text
                message = str(item["ctx"]["error"])
                problems.append(f"{field}: {message}" if field else message)
                continue
            message = "required but missing" if item["type"] == "missing" else item["msg"]
            if item["type"] == "extra_forbidden":
                message = f"unknown key; allowed: {', '.join(_model_at(loc).model_fields)}"
            problems.append(f"{field or '(event)'}: {message}")
        raise ValueError(f"malformed select-candidate event: {'; '.join(problems)}") from None


def error_line(error: BranchError) -> str:
    """``<Error>: <first line of Cause>``, the cause cut to ``MAX_ERROR_CHARS``. A ``.sync``
    SageMaker task's cause is the job's description as JSON: its name, status and
    ``FailureReason`` stand for it (``training job <name> Failed: <reason>``)."""
    try:
        described = json.loads(error.Cause)
    except ValueError:
        described = None
    if isinstance(described, dict) and described.get("FailureReason"):
        job = described.get("TrainingJobName", "")
        cause = f"training job {job} {described.get('TrainingJobStatus', 'Failed')}: {described['FailureReason']}"
        lines = [" ".join(cause.split())]
    else:
        lines = error.Cause.strip().splitlines()
    cause = lines[0].strip() if lines else ""
    if len(cause) > MAX_ERROR_CHARS:
        cause = cause[: MAX_ERROR_CHARS - 1] + "…"
    name = " ".join(error.Error.split()) or "Error"
    return f"{name}: {cause}" if cause else name


def final_metric(job_name: str, metric: str) -> float | None:
    """The job's final value of ``metric`` (its FinalMetricDataList), or None if it reports none."""
    described = _client("sagemaker").describe_training_job(TrainingJobName=job_name)
    for entry in described.get("FinalMetricDataList", []):
        if entry.get("MetricName") == metric and entry.get("Value") is not None:
            return float(entry["Value"])
    return None


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def outcome(candidate: Candidate, metric: str) -> tuple[dict[str, Any], str]:
    """One candidate's entry of the result, and how the summary names it."""
    if candidate.error is not None:
        line = error_line(candidate.error)
        return {"name": candidate.name, "status": "failed", "error": line}, f"{candidate.name} failed: {line}"
    job_name = candidate.training.job_name
    tuned = {"tuning_job": candidate.tuning_job.job_name} if candidate.tuning_job else {}
    value = final_metric(job_name, metric)
    if value is None or not math.isfinite(value):
        said = f"reported no {metric}" if value is None else f"reported {metric} {value}"
        return ({"name": candidate.name, "status": "no metric", "job_name": job_name, **tuned},
                f"{candidate.name} {said}")
    return ({"name": candidate.name, "status": "trained", "value": value, "job_name": job_name, **tuned},
            f"{candidate.name}{' (tuned)' if tuned else ''} {_fmt(value)}")


def select(candidates: list[Candidate], metric: str, direction: str) -> dict[str, Any]:
    """The best trained candidate by ``metric`` (ties: the first listed); NoCandidateTrained if none reports it."""
    entries, phrases = [], []
    best: int | None = None
    for position, candidate in enumerate(candidates):
        entry, phrase = outcome(candidate, metric)
        entries.append(entry)
        phrases.append(phrase)
        logger.info(f"candidate {phrase}", extra={"candidate": entry})
        if entry["status"] != "trained":
            continue
        if best is None or (entry["value"] > entries[best]["value"] if direction == "Maximize"
                            else entry["value"] < entries[best]["value"]):
            best = position
    if best is None:
        reasons = [f"{entry['name']} failed ({entry['error']})" if entry["status"] == "failed"
                   else f"{entry['name']} trained but {phrase.removeprefix(entry['name'] + ' ')}"
                   for entry, phrase in zip(entries, phrases)]
        raise NoCandidateTrained(f"no candidate reports {metric}: {'; '.join(reasons)}")
    winner, value = candidates[best], entries[best]["value"]
    others = [phrase for position, phrase in enumerate(phrases) if position != best]
    label = f"{winner.name} (tuned)" if winner.tuning_job else winner.name
    summary = f"{label} won on {metric} {_fmt(value)}" + (f" ({'; '.join(others)})" if others else "")
    return {"winner": winner.name, "metric": metric, "value": value, "candidates": entries, "summary": summary}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse_event(event)
    try:
        result = select(parsed.candidates, parsed.metric, parsed.direction)
    except NoCandidateTrained as none:
        logger.warning(str(none))
        raise
    logger.info(result["summary"])
    given = event["candidates"][[candidate.name for candidate in parsed.candidates].index(result["winner"])]
    return {"winner": result["winner"], "training": given["training"], "containers": given["containers"],
            **{key: result[key] for key in ("metric", "value", "candidates", "summary")}}
