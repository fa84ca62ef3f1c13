"""Data-quality gate: did the DataBrew profile job's ruleset validation pass for this run?

Finds the run's validation report under ``s3://<bucket>/<prefix>``, reads it and returns
``{"passed": true, "rules": N, "report": "s3://..."}`` when every rule SUCCEEDED.
Otherwise it raises ``DataQualityFailed`` (the error name the state machine catches): a first line with the
count and the report's location, then one line per failed rule: its name, its check with the values filled in, and what failed
(the share of rows for row-level checks, the failing columns for column checks).

DataBrew writes the report next to the profile as
``<output key>/<dataset>_<run id without "db_">_dq-validation-report.json`` (the
validationReportLocation in the event example of
https://docs.aws.amazon.com/databrew/latest/dg/profile.data-quality-rules.html).
The report body (``sampleSize``, ``rulesetResults[].ruleResults[]`` with ``name``,
``definition``, ``status``, ``failedCount``, ``columnResults``) is not documented in the
Developer Guide; the fields read here are those of the reports in AWS's published
samples, the same layout ``tools/offline/databrew.py`` writes. Aggregate checks carry no
measured value in that layout, so a failed completeness check names its failing columns
rather than a percentage.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="data-quality")

REPORT_SUFFIX = "_dq-validation-report.json"
_REFERENCE = re.compile(r":[A-Za-z0-9_]+")
_THRESHOLD_WORDS = {"GREATER_THAN_OR_EQUAL": ">=", "LESS_THAN_OR_EQUAL": "<=", "GREATER_THAN": ">", "LESS_THAN": "<"}


class DataQualityFailed(Exception):
    """At least one data-quality rule failed; Step Functions sees the error name DataQualityFailed."""


class ValidationReportNotFound(Exception):
    """No validation report for the run under the prefix (did the profile job validate a ruleset?)."""


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field(max_length=1024)
    run_id: str = Field(min_length=1, max_length=256)
    dataset: str = Field(min_length=1, max_length=255)


@lru_cache(maxsize=None)
def _client(service: str):  # created on first use, never at import time
    return boto3.client(service)


def parse_event(event: Any) -> Event:
    """The typed event, or ValueError naming each bad field."""
    if not isinstance(event, dict):
        raise ValueError(f"malformed data-quality event: expected a mapping with bucket, prefix, run_id, dataset; "
                         f"got {type(event).__name__}")
    try:
        return Event.model_validate(event)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "(event)"
            message = "required but missing" if item["type"] == "missing" else item["msg"]
            if item["type"] == "extra_forbidden":
                message = f"unknown key; allowed: {', '.join(Event.model_fields)}"
            problems.append(f"{field}: {message}")
        raise ValueError(f"malformed data-quality event: {'; '.join(problems)}") from None


def find_report(bucket: str, prefix: str, run_id: str, dataset: str) -> str:
    """The key of the run's validation report under ``prefix``. DataBrew names it after the
    run id without its ``db_`` prefix; the id as given matches too (a run folder)."""
    tokens = {run_id, run_id.removeprefix("db_")}
    keys = []
    for page in _client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    reports = [key for key in keys if key.endswith(REPORT_SUFFIX)]
    matching = [key for key in reports if any(token in key for token in tokens)]
    if len(matching) > 1:  # several runs' reports in one folder: the dataset's name decides
        matching = [key for key in matching if key.rsplit("/", 1)[-1].startswith(f"{dataset}_")] or matching
    if not matching:
        others = f"; reports there: {', '.join(reports[:5])}" if reports else ""
        raise ValidationReportNotFound(
            f"no validation report for run {run_id} under s3://{bucket}/{prefix} (expected a key containing "
            f"{run_id.removeprefix('db_')} and ending in {REPORT_SUFFIX}; {len(keys)} object(s) there{others})"
        )
    if len(matching) > 1:
        raise ValueError(f"several validation reports match run {run_id}: {', '.join(matching)}")
    return matching[0]


def read_report(bucket: str, key: str) -> dict[str, Any]:
    body = _client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        report = json.loads(body)
    except json.JSONDecodeError as error:
        raise ValueError(f"s3://{bucket}/{key} is not JSON: {error}") from None
    if not isinstance(report, dict) or not isinstance(report.get("rulesetResults"), list):
        raise ValueError(f"s3://{bucket}/{key} is not a DataBrew validation report (no rulesetResults)")
    return report


def render_check(definition: dict[str, Any]) -> str:
    """A rule's check with its substitution values filled in, e.g.
    ``AGG(MISSING_VALUES_PERCENTAGE) <= 0 on target`` (column references keep their backticks)."""
    values = definition.get("SubstitutionMap") or {}
    if isinstance(values, list):  # CloudFormation's spelling, should a definition come from a template
        values = {item.get("ValueReference"): item.get("Value") for item in values}
    expression = str(definition.get("CheckExpression", "?"))
    check = _REFERENCE.sub(lambda match: str(values.get(match.group(0), match.group(0))), expression)
    columns = [selector.get("Name") or f"/{selector.get('Regex')}/" for selector in definition.get("ColumnSelectors") or []]
    return f"{check} on {', '.join(columns)}" if columns else check


def describe_failure(result: dict[str, Any], sample_size: int | None) -> str:
    """``name (check: what failed)`` for one failed rule result."""
    definition = result.get("definition") or {}
    details = []
    failing_columns = [column.get("name", "?") for column in result.get("columnResults") or []
                       if column.get("status") != "SUCCEEDED"]
    if failing_columns:
        details.append(f"failed for {', '.join(failing_columns)}")
    failed = result.get("failedCount")
    if isinstance(failed, (int, float)):
        share = f" ({100.0 * failed / sample_size:.1f}%)" if sample_size else ""
        rows = f" of {sample_size}" if sample_size else ""
        details.append(f"{failed:g}{rows} rows{share} fail it")
        threshold = definition.get("Threshold") or {}
        if "Value" in threshold:
            unit = "%" if threshold.get("Unit") == "PERCENTAGE" else " rows"
            word = _THRESHOLD_WORDS.get(threshold.get("Type"), str(threshold.get("Type")))
            details.append(f"needs {word} {float(threshold['Value']):g}{unit} passing")
    if not details:
        details.append(str(result.get("status", "FAILED")))
    name = result.get("name") or definition.get("Name") or "(unnamed rule)"
    return f"{name} ({render_check(definition)}: {'; '.join(details)})"


def decide(report: dict[str, Any], dataset: str, uri: str) -> dict[str, Any]:
    """Pass when every rule of every ruleset SUCCEEDED; otherwise raise DataQualityFailed."""
    sample_size = report.get("sampleSize")
    sample_size = int(sample_size) if isinstance(sample_size, (int, float)) and sample_size > 0 else None
    total, failures = 0, []
    for ruleset in report["rulesetResults"]:
        results = ruleset.get("ruleResults") or []
        total += len(results)
        failed_here = [describe_failure(result, sample_size) for result in results if result.get("status") != "SUCCEEDED"]
        failures += failed_here
        if not failed_here and ruleset.get("status") not in (None, "SUCCEEDED"):
            failures.append(f"ruleset {ruleset.get('name', '?')} (status {ruleset.get('status')})")
    if total == 0:
        raise ValueError(f"{uri} holds no rule results: nothing was validated")
    if failures:
        rule_failures = sum(1 for line in failures if not line.startswith("ruleset "))
        raise DataQualityFailed(
            f"{rule_failures} of {total} data-quality rules failed on dataset {dataset} (report: {uri}):"
            + "".join(f"\n- {line}" for line in failures)
        )
    return {"passed": True, "rules": total, "report": uri}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse_event(event)
    key = find_report(parsed.bucket, parsed.prefix, parsed.run_id, parsed.dataset)
    uri = f"s3://{parsed.bucket}/{key}"
    report = read_report(parsed.bucket, key)
    try:
        decision = decide(report, parsed.dataset, uri)
    except DataQualityFailed as failure:
        logger.warning(str(failure))
        raise
    logger.info(f"Data quality passed: {decision['rules']} rules on dataset {parsed.dataset} ({uri})")
    return decision
