"""Schema gate: the raw CSV files' header and sampled values against the declared columns."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from mlops.config import SAMPLE_DIR
from tests.conftest import FakeLambdaContext, load_lambda

gate = load_lambda("check_schema")

BUCKET, PREFIX = "mlops-demo-dev-raw", "sample/breast_cancer/"
NAMES = list(pd.read_csv(SAMPLE_DIR / "breast_cancer" / "breast_cancer.csv", nrows=0).columns)  # label (target) last
COLUMNS = [{"name": name, "type": "numeric"} for name in NAMES]


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
    return {"bucket": BUCKET, "prefix": PREFIX, "columns": COLUMNS, "label": "target", "classes": ["0", "1"], **overrides}


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
                              f"{len(COLUMNS)} columns, label target holding one of the classes 0, 1):")
    assert message.splitlines()[-1] == f"declared columns, in order: {', '.join(NAMES)}"


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
    assert "column target should hold one of the classes 0, 1 (the label): '0.5' on line 11" in message
    # a regression label takes any number
    assert "column target" not in _mismatch(classes=None)


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


def _columns(*types: str) -> list[dict]:
    return [{"name": name, "type": kind} for name, kind in zip("abc", types)]


@pytest.mark.parametrize("event, message", [
    ("not a mapping", "expected a mapping with bucket, prefix, columns, label, classes, extra_columns; got str"),
    ({"bucket": BUCKET, "prefix": PREFIX, "columns": COLUMNS}, "label: required but missing"),
    (_event(columns="target"), "columns: Input should be a valid list"),
    (_event(columns=NAMES), "columns.0: Input should be a valid dictionary"),  # the old contract: names only
    (_event(columns=_columns("numeric", "numeric", "date"), label="a"), "columns.2.type: Input should be 'numeric', "),
    (_event(columns=[{"name": "a", "type": "numeric", "unit": "cm"}, {"name": "b", "type": "text"}], label="a"),
     "columns.0.unit: unknown key; allowed: name, type"),
    (_event(columns=_columns("numeric", "numeric")), "label: 'target' is not a declared column; allowed: a, b"),
    (_event(columns=COLUMNS[:1]), "columns: List should have at least 2 items"),
    (_event(classes=["1", "1"]), "classes: at least 2 distinct values needed; got 1, 1"),
    (_event(classes=["0", " "]), "classes: empty class value"),
    (_event(x=1), "x: unknown key"),
])
def test_malformed_event_names_the_field(event, message: str) -> None:
    with pytest.raises(ValueError, match="^malformed check-schema event: ") as raised:
        gate.handler(event, FakeLambdaContext())
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_undeclared_label_and_duplicated_column_names_are_rejected_by_parse_event() -> None:
    with pytest.raises(ValueError, match="label: 'churn' is not a declared column; allowed: a, b, c$"):
        gate.parse_event(_event(columns=_columns("numeric", "text", "categorical"), label="churn"))
    with pytest.raises(ValueError, match="columns: 'mean_area' is declared twice$"):
        gate.parse_event(_event(columns=[*COLUMNS, {"name": "mean_area", "type": "text"}]))


def test_label_in_a_middle_column(s3, sample: pd.DataFrame) -> None:
    order = [*NAMES[:3], "target", *NAMES[3:-1]]
    columns = [{"name": name, "type": "numeric"} for name in order]
    _put(s3, sample[order])
    assert gate.handler(_event(columns=columns), FakeLambdaContext())["columns"] == len(NAMES)
    sample["target"] = sample["target"].astype(object)
    sample.loc[4, "target"] = "2"
    _put(s3, sample[order])
    message = _mismatch(columns=columns)
    assert f"(declared: {len(NAMES)} columns, label target holding one of the classes 0, 1):" in message
    assert "column target should hold one of the classes 0, 1 (the label): '2' on line 6" in message
    assert "wrong order" not in message


CHURN = [{"name": "customer_id", "type": "text"}, {"name": "churned", "type": "categorical"},
         {"name": "age", "type": "numeric"}, {"name": "plan", "type": "categorical"},
         {"name": "signup", "type": "timestamp"}]


@pytest.fixture
def churn() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"c-{n}" for n in range(10)],
                         "churned": ["no", "yes", " yes ", "no", "", "no", "NULL", "yes", "no", "yes"],
                         "age": [34, 51, None, 29, 40, 63, 22, 45, 38, 57],
                         "plan": ["basic", "pro", "pro", "basic plus", "basic", "", "pro", "team", "basic", "pro"],
                         "signup": ["2024-05-01", "2024-05-01T10:00:00", "2024-05-01 10:00:00+02:00", "2024-05-01T10:00:00Z",
                                    "NaN", "2023-12-31", "2024-02-29T23:59:59.5", "2024-05-01", "2024-01-02", "2024-03-04"]})


def _churn_event(**overrides) -> dict:
    return _event(columns=CHURN, label="churned", classes=["no", "yes"], **overrides)


def test_categorical_text_and_timestamp_columns_pass(s3, churn: pd.DataFrame) -> None:
    _put(s3, churn)
    assert gate.handler(_churn_event(), FakeLambdaContext()) == {"files": 1, "rows_sampled": 10, "columns": 5, "skipped": 0}


def test_timestamp_column_holding_a_non_date_names_it_and_the_line(s3, churn: pd.DataFrame) -> None:
    churn.loc[1, "signup"] = "yesterday"
    churn.loc[5, "signup"] = "05/01/2024"
    _put(s3, churn)
    message = _mismatch(**_churn_event())
    assert "column signup should hold an ISO 8601 timestamp: 'yesterday' on line 3" in message
    assert message.startswith("1 schema problem in the raw data under ")  # the first offending value only


def test_label_value_outside_the_classes_is_named(s3, churn: pd.DataFrame) -> None:
    churn.loc[7, "churned"] = "maybe"
    churn["age"] = churn["age"].astype(object)
    churn.loc[5, "age"] = "abc"
    _put(s3, churn)
    message = _mismatch(**_churn_event())
    assert "column churned should hold one of the classes no, yes (the label): 'maybe' on line 9" in message
    assert "column age should hold a number: 'abc' on line 7" in message
    assert "(declared: 5 columns, label churned holding one of the classes no, yes):" in message


def test_numeric_label_matches_its_class_numerically(s3, sample: pd.DataFrame) -> None:
    sample["target"] = sample["target"].astype(float)  # written as 0.0 / 1.0
    _put(s3, sample)
    assert gate.handler(_event(), FakeLambdaContext())["files"] == 1
    assert gate.handler(_event(classes=["0.0", "1"]), FakeLambdaContext())["files"] == 1


def test_regression_label_must_be_a_number(s3, sample: pd.DataFrame) -> None:
    sample["target"] = sample["target"].astype(object)
    sample.loc[0, "target"] = "x"
    _put(s3, sample)
    message = _mismatch(classes=None)
    assert "column target should hold a number (the label): 'x' on line 2" in message
    assert f"(declared: {len(NAMES)} columns, label target holding a number):" in message
