"""Metric gate: does the candidate model meet the business thresholds, and is it no
worse than the currently approved version (champion) by more than the allowed margin?

Returns a decision with one line of reasoning per check; the state machine branches
on ``passed`` and a failing run ends with ``summary`` in its notification and Fail cause.
Reads the candidate's ``evaluation.json`` and the champion's (the ModelQuality statistics
its registry entry references) from S3.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="metric-gate")

SECTIONS = ("binary_classification_metrics", "regression_metrics")


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str
    direction: Literal[">=", "<="]
    value: float


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    evaluation_uri: str = Field(pattern=r"^s3://[^/]+/.+")
    thresholds: list[Threshold] = Field(min_length=1)
    champion_margin: float = Field(ge=0)
    model_package_group: str


@lru_cache(maxsize=None)
def _client(service: str):  # created on first use, never at import time
    return boto3.client(service)


def read_metrics(uri: str) -> dict[str, float]:
    """Scalar metric values of an evaluation.json (SageMaker model-quality layout)."""
    parsed = urlparse(uri)
    body = _client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    report = json.loads(body)
    section = next((report[name] for name in SECTIONS if name in report), None)
    if section is None:
        raise ValueError(f"{uri} holds none of {', '.join(SECTIONS)}")
    return {
        name: float(entry["value"])
        for name, entry in section.items()
        if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float))
    }


def champion_metrics(group: str) -> tuple[str | None, dict[str, float]]:
    """The latest Approved model package in ``group`` and its metrics (None if no champion yet)."""
    sagemaker = _client("sagemaker")
    try:
        packages = sagemaker.list_model_packages(
            ModelPackageGroupName=group, ModelApprovalStatus="Approved",
            SortBy="CreationTime", SortOrder="Descending", MaxResults=1,
        )["ModelPackageSummaryList"]
    except sagemaker.exceptions.ResourceNotFound:
        return None, {}
    if not packages:
        return None, {}
    arn = packages[0]["ModelPackageArn"]
    statistics = (
        sagemaker.describe_model_package(ModelPackageName=arn)
        .get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    )
    return arn, (read_metrics(statistics) if statistics else {})


def decide(
    candidate: dict[str, float], thresholds: list[Threshold], champion: dict[str, float], margin: float
) -> dict[str, Any]:
    """Pure decision: every threshold met, and no threshold metric worse than the champion's
    by more than ``margin`` (absolute)."""
    checks = []
    for threshold in thresholds:
        value = candidate.get(threshold.metric)
        if value is None:
            checks.append({"metric": threshold.metric, "passed": False,
                           "reason": f"{threshold.metric} missing from the evaluation (have: {', '.join(sorted(candidate))})"})
            continue
        higher_is_better = threshold.direction == ">="
        meets = value >= threshold.value if higher_is_better else value <= threshold.value
        reason = f"{threshold.metric} {value:.4f} {threshold.direction} {threshold.value:g}: {'ok' if meets else 'FAILED'}"
        best = champion.get(threshold.metric)
        holds = True
        if best is not None:
            bound = best - margin if higher_is_better else best + margin
            holds = value >= bound if higher_is_better else value <= bound
            reason += f"; champion {best:.4f} (margin {margin:g}): {'ok' if holds else 'WORSE'}"
        checks.append({"metric": threshold.metric, "value": value, "passed": meets and holds, "reason": reason})
    passed = all(check["passed"] for check in checks)
    return {
        "passed": passed,
        "checks": checks,
        "summary": ("Metric gate passed: " if passed else "Metric gate failed: ") + "; ".join(c["reason"] for c in checks),
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:
        raise ValueError(f"malformed metric-gate event: {error}") from None
    candidate = read_metrics(parsed.evaluation_uri)
    champion_arn, champion = champion_metrics(parsed.model_package_group)
    decision = decide(candidate, parsed.thresholds, champion, parsed.champion_margin)
    decision.update(candidate=candidate, champion={"model_package_arn": champion_arn, "metrics": champion})
    logger.info(decision["summary"])
    return decision
