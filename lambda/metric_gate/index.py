"""Metric gate: does the candidate model meet the business thresholds, and is it no
worse than the champion by more than the allowed margin?

The margin follows the metric: bounded metrics (classification rates, r2) allow an absolute
``champion_margin`` (0.01: f1 0.95 may follow 0.96); unbounded error metrics (mse, rmse, mae)
allow ``champion_margin_percent`` of the champion's value (5: rmse 52.5 may follow 50), since an
absolute margin means nothing for an error measured in the label's unit. "Worse" follows the
metric's direction: lower for errors and false rates, higher for the rest.

The champion is the version that serves what this run would replace: the newest version of
the group whose ``serving`` property (set by the run that deployed it, once the deployment
was confirmed) names the run's deployment mode. A version that was approved but never served
(a rolled-back blue/green update, a run that failed after registering) is never the champion.

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

SECTIONS = ("binary_classification_metrics", "multiclass_classification_metrics", "regression_metrics")
SCAN_LIMIT = 100  # versions looked at, newest first, for the one serving
# Bounded metrics take the absolute margin; any other metric (mse, rmse, mae, ...) the relative one.
BOUNDED_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "auc", "true_positive_rate", "true_negative_rate",
                             "false_positive_rate", "false_negative_rate", "r2",
                             "macro_precision", "macro_recall", "macro_f1", "weighted_precision", "weighted_recall",
                             "weighted_f1", "weighted_f0_5", "weighted_f2", "macro_auc", "weighted_auc"})
LOWER_IS_BETTER = frozenset({"false_positive_rate", "false_negative_rate", "mse", "rmse", "mae"})


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
    champion_margin_percent: float | None = Field(default=None, ge=0)  # None: an error metric may not be worse at all
    model_package_group: str
    deployment_mode: Literal["realtime", "serverless", "async", "batch"]


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


def serving_version(group: str, mode: str) -> dict[str, Any] | None:
    """The newest version of ``group`` whose ``serving`` property names ``mode`` (its
    DescribeModelPackage), or None when no version serves in that mode yet."""
    sagemaker = _client("sagemaker")
    try:
        pages = sagemaker.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
        for index, summary in enumerate(s for page in pages for s in page["ModelPackageSummaryList"]):
            if index >= SCAN_LIMIT:
                return None
            described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if described.get("CustomerMetadataProperties", {}).get("serving", "").split(" ")[0] == mode:
                return described
    except sagemaker.exceptions.ResourceNotFound:
        return None
    return None


def champion_metrics(group: str, mode: str) -> tuple[str | None, dict[str, float]]:
    """The version serving in ``mode`` and its metrics (None if no champion yet)."""
    described = serving_version(group, mode)
    if described is None:
        return None, {}
    statistics = described.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    return described["ModelPackageArn"], (read_metrics(statistics) if statistics else {})


def higher_is_better(threshold: Threshold) -> bool:
    """The metric's own direction where it is known, else the threshold's."""
    if threshold.metric in LOWER_IS_BETTER:
        return False
    return threshold.metric in BOUNDED_METRICS or threshold.direction == ">="


def champion_bound(metric: str, champion: float, higher: bool, margin: float,
                   margin_percent: float | None) -> tuple[float, str]:
    """The worst value a challenger may have next to ``champion``, and how the margin reads."""
    if metric in BOUNDED_METRICS:
        bound = champion - margin if higher else champion + margin
        return bound, f"margin {margin:g}"
    percent = margin_percent or 0.0
    allowance = abs(champion) * percent / 100
    bound = champion - allowance if higher else champion + allowance
    return bound, f"margin {percent:g}%: {'>=' if higher else '<='} {bound:.4f}"


def decide(
    candidate: dict[str, float], thresholds: list[Threshold], champion: dict[str, float], margin: float,
    margin_percent: float | None = None,
) -> dict[str, Any]:
    """Pure decision: every threshold met, and no threshold metric worse than the champion's by
    more than ``margin`` (absolute, bounded metrics) or ``margin_percent`` (relative, errors)."""
    checks = []
    for threshold in thresholds:
        value = candidate.get(threshold.metric)
        if value is None:
            checks.append({"metric": threshold.metric, "passed": False,
                           "reason": f"{threshold.metric} missing from the evaluation (have: {', '.join(sorted(candidate))})"})
            continue
        meets = value >= threshold.value if threshold.direction == ">=" else value <= threshold.value
        reason = f"{threshold.metric} {value:.4f} {threshold.direction} {threshold.value:g}: {'ok' if meets else 'FAILED'}"
        best = champion.get(threshold.metric)
        holds = True
        if best is not None:
            higher = higher_is_better(threshold)
            bound, shown = champion_bound(threshold.metric, best, higher, margin, margin_percent)
            holds = value >= bound if higher else value <= bound
            reason += f"; champion {best:.4f} ({shown}): {'ok' if holds else 'WORSE'}"
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
    champion_arn, champion = champion_metrics(parsed.model_package_group, parsed.deployment_mode)
    decision = decide(candidate, parsed.thresholds, champion, parsed.champion_margin,
                      parsed.champion_margin_percent)
    decision.update(candidate=candidate, champion={"model_package_arn": champion_arn, "metrics": champion})
    logger.info(decision["summary"])
    return decision
