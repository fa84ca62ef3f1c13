"""Data-quality gate: finds the run's DataBrew validation report and passes or fails on it.
Reports are produced by the offline DataBrew stand-in, in the layout DataBrew writes."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from mlops.data_rules import databrew_rules
from tests.conftest import FakeLambdaContext, load_lambda
from tools.offline.databrew import api_rules, report_key, validate

gate = load_lambda("data_quality")

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "breast_cancer" / "breast_cancer.csv"
BUCKET, PREFIX, RUN = "mlops-demo-dev-data", "profiles/breast_cancer/", "db_5f0e1d2c3b4a"
RULES = [
    {"type": "row_count", "min": 500},
    {"type": "no_duplicate_rows"},
    {"type": "completeness", "name": "no-missing-values", "columns": ["target", "mean_radius"]},
    {"type": "allowed_values", "column": "target", "values": ["0", "1"]},
    {"type": "range", "column": "mean_radius", "min": 0, "max": 50},
    {"type": "range", "column": "mean_area", "min": 0, "max": 5000},
]


def _report(frame: pd.DataFrame, run_id: str = RUN) -> tuple[str, dict]:
    key = report_key(PREFIX, "breast_cancer", run_id)
    report = validate(frame, api_rules(databrew_rules(RULES)), dataset_name="breast_cancer",
                      job_name="mlops-demo-dev-profile", run_id=run_id,
                      ruleset_arn="arn:aws:databrew:eu-west-1:123456789012:ruleset/mlops-demo-dev-quality",
                      location=f"s3://{BUCKET}/{key}")
    return key, report


@pytest.fixture
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)


@pytest.fixture
def s3(aws_credentials, sample: pd.DataFrame):
    gate._client.cache_clear()
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        # the profile itself and an older run's report share the folder
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}breast_cancer_5f0e1d2c3b4a.json", Body=b"{}")
        old_key, old_report = _report(sample.head(10), run_id="db_0000aaaa")
        client.put_object(Bucket=BUCKET, Key=old_key, Body=json.dumps(old_report).encode())
        yield client
    gate._client.cache_clear()


def _put(s3, frame: pd.DataFrame) -> str:
    key, report = _report(frame)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(report).encode())
    return f"s3://{BUCKET}/{key}"


def _event(**overrides) -> dict:
    return {"bucket": BUCKET, "prefix": PREFIX, "run_id": RUN, "dataset": "breast_cancer", **overrides}


def test_passing_report(s3, sample: pd.DataFrame) -> None:
    uri = _put(s3, sample)
    assert uri.endswith("/profiles/breast_cancer/breast_cancer_5f0e1d2c3b4a_dq-validation-report.json")
    assert gate.handler(_event(), FakeLambdaContext()) == {"passed": True, "rules": 6, "report": uri}


def test_run_id_without_db_prefix_finds_the_same_report(s3, sample: pd.DataFrame) -> None:
    uri = _put(s3, sample)
    assert gate.handler(_event(run_id="5f0e1d2c3b4a"), FakeLambdaContext())["report"] == uri


def test_failing_report_lists_every_failed_rule(s3, sample: pd.DataFrame) -> None:
    frame = sample.copy()
    frame.loc[[3, 50, 100], "target"] = np.nan
    frame.loc[[7, 8], "target"] = 2
    uri = _put(s3, frame)
    with pytest.raises(gate.DataQualityFailed) as failure:
        gate.handler(_event(), FakeLambdaContext())
    assert type(failure.value).__name__ == "DataQualityFailed"  # the error name Step Functions sees
    assert str(failure.value) == (
        f"2 of 6 data-quality rules failed on dataset breast_cancer (report: {uri}):\n"
        "- no-missing-values (AGG(MISSING_VALUES_PERCENTAGE) <= 0 on target, mean_radius: failed for target)\n"
        '- target-allowed-values (`target` IN ["0","1"]: 5 of 569 rows (0.9%) fail it; needs >= 100% passing)'
    )  # one line per failed rule


def test_row_level_failure_shows_share_and_range(s3, sample: pd.DataFrame) -> None:
    frame = sample.copy()
    frame.loc[range(12), "mean_radius"] = 99.0
    _put(s3, frame)
    with pytest.raises(gate.DataQualityFailed, match=r"^1 of 6 data-quality rules failed on dataset breast_cancer \(report: .*\):\n"
                       r"- mean_radius-in-range \(`mean_radius` IS_BETWEEN 0 and 50: 12 of 569 rows \(2\.1%\) fail it; "
                       r"needs >= 100% passing\)"):
        gate.handler(_event(), FakeLambdaContext())


def test_missing_report(s3) -> None:
    with pytest.raises(gate.ValidationReportNotFound,
                       match=r"no validation report for run db_5f0e1d2c3b4a under s3://mlops-demo-dev-data/profiles/"
                             r"breast_cancer/ \(expected a key containing 5f0e1d2c3b4a and ending in "
                             r"_dq-validation-report.json; 2 object\(s\) there; reports there: .*0000aaaa"):
        gate.handler(_event(), FakeLambdaContext())


def test_report_that_is_not_a_validation_report(s3) -> None:
    s3.put_object(Bucket=BUCKET, Key=report_key(PREFIX, "breast_cancer", RUN), Body=b'{"columns": []}')
    with pytest.raises(ValueError, match="is not a DataBrew validation report"):
        gate.handler(_event(), FakeLambdaContext())


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({k: v for k, v in _event().items() if k != "run_id"}, "run_id: required but missing"),
        (_event(bucket="Not_A_Bucket"), "bucket: String should match pattern"),
        (_event(run_id=""), "run_id: String should have at least 1 character"),
        (_event(dataset=7), "dataset: Input should be a valid string"),
        (_event(runId="x"), "runId: unknown key; allowed: bucket, prefix, run_id, dataset"),
        (["not", "a", "mapping"], "expected a mapping with bucket, prefix, run_id, dataset; got list"),
    ],
)
def test_malformed_event_names_the_field(event, message: str) -> None:
    with pytest.raises(ValueError, match=f"^malformed data-quality event: .*{message}"):
        gate.handler(event, FakeLambdaContext())


def test_decide_fails_on_a_failed_ruleset_and_on_an_empty_report() -> None:
    report = {"sampleSize": 10, "rulesetResults": [
        {"name": "rs", "status": "FAILED", "ruleResults": [{"name": "a", "status": "SUCCEEDED"}]}]}
    with pytest.raises(gate.DataQualityFailed, match=r"^0 of 1 data-quality rules failed on dataset d \(report: s3://b/k\):\n- ruleset rs"):
        gate.decide(report, "d", "s3://b/k")
    with pytest.raises(ValueError, match="holds no rule results"):
        gate.decide({"rulesetResults": [{"name": "rs", "ruleResults": []}]}, "d", "s3://b/k")


def test_render_check_fills_in_values_without_clobbering_longer_references() -> None:
    definition = {"CheckExpression": ":col1 IS_BETWEEN :val1 and :val10",
                  "SubstitutionMap": {":col1": "`x`", ":val1": "1", ":val10": "10"}}
    assert gate.render_check(definition) == "`x` IS_BETWEEN 1 and 10"
