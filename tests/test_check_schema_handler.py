"""Schema gate: the raw CSV files' header and sampled values against the declared columns."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from mlops.config import SAMPLE_DIR, dataset_columns
from tests.conftest import FakeLambdaContext, load_lambda

gate = load_lambda("check_schema")

BUCKET, PREFIX = "mlops-demo-dev-raw", "sample/breast_cancer/"
COLUMNS = dataset_columns("breast_cancer")


@pytest.fixture
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DIR / "breast_cancer" / "breast_cancer.csv")


@pytest.fixture
def s3(aws_credentials):
    gate._client.cache_clear()
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client
    gate._client.cache_clear()


def _put(s3, frame: pd.DataFrame, key: str = "breast_cancer.csv") -> None:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + key, Body=frame.to_csv(index=False).encode())


def _event(**overrides) -> dict:
    return {"bucket": BUCKET, "prefix": PREFIX, "columns": COLUMNS, "label_kind": "integer", **overrides}


def _mismatch(**overrides) -> str:
    with pytest.raises(gate.SchemaMismatch) as raised:
        gate.handler(_event(**overrides), FakeLambdaContext())
    return str(raised.value)


def test_matching_files_pass(s3, sample: pd.DataFrame) -> None:
    _put(s3, sample)
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "README.txt", Body=b"not data\n")  # not read, as the ETL reads *.csv only
    assert gate.handler(_event(), FakeLambdaContext()) == {"files": 1, "rows_sampled": 569, "columns": len(COLUMNS),
                                                           "skipped": 1}


def test_extra_numeric_column_in_the_middle(s3, sample: pd.DataFrame) -> None:
    sample.insert(3, "patient_age", 42.0)
    _put(s3, sample)
    message = _mismatch()
    assert f"s3://{BUCKET}/{PREFIX}breast_cancer.csv: extra column patient_age (position 4)" in message
    assert "wrong order" not in message and "missing" not in message


def test_extra_text_column_at_the_end_is_not_taken_for_the_label(s3, sample: pd.DataFrame) -> None:
    sample["notes"] = "benign"
    _put(s3, sample)
    message = _mismatch()
    assert f"extra column notes (position {len(COLUMNS) + 1})" in message
    assert message.startswith("1 schema problem in the raw data under ")  # the label is still in place


def test_ignored_extra_columns_pass_and_are_named(s3, sample: pd.DataFrame) -> None:
    """data.extra_columns: ignore — undeclared columns anywhere are fine (the ETL drops them)."""
    sample.insert(3, "patient_id", "p-001")
    sample["notes"] = "benign"
    _put(s3, sample)
    result = gate.handler(_event(extra_columns="ignore"), FakeLambdaContext())
    assert result["ignored"] == ["notes", "patient_id"] and result["columns"] == len(COLUMNS)


def test_ignoring_extra_columns_still_fails_missing_reordered_and_mistyped_ones(s3, sample: pd.DataFrame) -> None:
    sample["notes"] = "benign"
    sample = sample.drop(columns=["mean_area"])
    sample["mean_radius"] = sample["mean_radius"].astype(object)
    sample.loc[7, "mean_radius"] = "large"
    _put(s3, sample)
    message = _mismatch(extra_columns="ignore")
    assert "missing column mean_area" in message and "column mean_radius should hold a number: 'large' on line 9" in message
    assert "notes" not in message.split("declared columns")[0]  # the ignored column is no problem


def test_missing_and_renamed_columns(s3, sample: pd.DataFrame) -> None:
    _put(s3, sample.drop(columns=["mean_area"]).rename(columns={"mean_radius": "radius_mean"}))
    message = _mismatch()
    assert "missing columns mean_radius, mean_area" in message
    assert "extra column radius_mean (position 1)" in message
    assert message.startswith(f"2 schema problems in the raw data under s3://{BUCKET}/{PREFIX} (declared: "
                              f"{len(COLUMNS)} columns, label target holding an integer class):")
    assert message.splitlines()[-1] == f"declared columns, in order: {', '.join(COLUMNS)}"


def test_wrong_order(s3, sample: pd.DataFrame) -> None:
    order = list(sample.columns)
    order[0], order[1] = order[1], order[0]
    _put(s3, sample[order])
    message = _mismatch()
    assert "columns in the wrong order: mean_texture, mean_radius, " in message
    assert "(declared: mean_radius, mean_texture, " in message


def test_text_value_in_a_numeric_column_names_column_value_and_line(s3, sample: pd.DataFrame) -> None:
    sample["mean_texture"] = sample["mean_texture"].astype(object)
    sample.loc[6, "mean_texture"] = "high"
    sample["target"] = sample["target"].astype(object)
    sample.loc[9, "target"] = "0.5"
    _put(s3, sample)
    message = _mismatch()
    assert "column mean_texture should hold a number: 'high' on line 8" in message  # header is line 1
    assert "column target should hold an integer class label: '0.5' on line 11" in message
    # a regression label takes any number
    assert "column target" not in _mismatch(label_kind="number")


@pytest.mark.parametrize("token", ["NaN", "nan", "null", "NULL", "None", "", " NaN "])
def test_missing_tokens_are_never_mistyped(s3, sample: pd.DataFrame, token: str) -> None:
    sample = sample.astype(object)
    sample.loc[:200, "mean_radius"] = token
    sample.loc[3, "target"] = token
    _put(s3, sample)
    assert gate.handler(_event(), FakeLambdaContext())["files"] == 1


def test_files_with_different_headers_are_each_named(s3, sample: pd.DataFrame) -> None:
    _put(s3, sample.head(100), key="part-1.csv")
    _put(s3, sample.drop(columns=["mean_area"]).tail(100), key="2024/part-2.csv")
    message = _mismatch()
    assert "the files have 2 different headers: " in message
    assert f"{PREFIX}2024/part-2.csv ({len(COLUMNS) - 1} columns: " in message
    assert f"{PREFIX}part-1.csv ({len(COLUMNS)} columns: " in message
    assert f"s3://{BUCKET}/{PREFIX}2024/part-2.csv: missing column mean_area" in message


def test_only_the_first_mebibyte_is_sampled(s3, sample: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "SAMPLE_BYTES", 2000)
    sample = sample.astype(object)
    sample.loc[500, "mean_radius"] = "beyond the sample"
    _put(s3, sample)
    result = gate.handler(_event(), FakeLambdaContext())
    # whole lines only: the cut line is dropped, not read as a short row
    assert 0 < result["rows_sampled"] < 10


def test_empty_prefix(s3) -> None:
    with pytest.raises(gate.NoRawData, match=f"^no raw data under s3://{BUCKET}/{PREFIX}: upload"):
        gate.handler(_event(), FakeLambdaContext())
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "notes.txt", Body=b"a,b\n")
    with pytest.raises(gate.NoRawData, match=f"^no CSV file \\(\\*.csv\\) under s3://{BUCKET}/{PREFIX}; 1 other object"):
        gate.handler(_event(), FakeLambdaContext())


def test_header_names_are_compared_as_written(s3, sample: pd.DataFrame) -> None:
    _put(s3, sample.rename(columns={"mean_area": "mean_area "}))
    message = _mismatch()
    assert "missing column mean_area" in message and "extra column mean_area  (position 4)" in message


@pytest.mark.parametrize("event, message", [
    ("not a mapping", "expected a mapping with bucket, prefix, columns, label_kind, extra_columns; got str"),
    ({"bucket": BUCKET, "prefix": PREFIX, "columns": COLUMNS}, "label_kind: required but missing"),
    ({"bucket": BUCKET, "prefix": PREFIX, "columns": "target", "label_kind": "integer"}, "columns: Input should be a valid list"),
    ({"bucket": BUCKET, "prefix": PREFIX, "columns": COLUMNS, "label_kind": "text"}, "label_kind: Input should be 'integer' or 'number'"),
    ({"bucket": BUCKET, "prefix": PREFIX, "columns": COLUMNS, "label_kind": "integer", "x": 1}, "x: unknown key"),
])
def test_malformed_event_names_the_field(event, message: str) -> None:
    with pytest.raises(ValueError, match="^malformed check-schema event: ") as raised:
        gate.handler(event, FakeLambdaContext())
    assert message in str(raised.value) and "\n" not in str(raised.value)
