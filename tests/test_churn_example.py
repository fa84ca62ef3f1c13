"""The churn example: the synthetic table scripts/make_churn_data.py writes to data/sample/churn,
and models/churn_sklearn trained and served through the offline script mode
(tools/offline/script_mode.py) on a split of it in the platform's training layout."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from scripts.make_churn_data import COLUMNS, DEFAULT_OUTPUT, render, write
from tools.offline.script_mode import HandlerError, ScriptModel, TrainingOutcome, run_training

REPO_ROOT = Path(__file__).resolve().parent.parent
CHURN_CSV = REPO_ROOT / "data" / "sample" / "churn" / "churn.csv"
EXAMPLE = REPO_ROOT / "models" / "churn_sklearn"
FEATURES = ["plan", "region", "tenure_months", "monthly_charges", "support_calls", "contract"]
METRICS = [{"Name": name, "Regex": f"{name}=([0-9.eE+-]+)"}
           for name in ("train:auc", "train:logloss", "validation:auc", "validation:logloss")]
# What the SageMaker Python SDK sends for SKLearn(entry_point="train.py", hyperparameters={"C": 1.0, "max_iter": 1000}).
SDK_HYPERPARAMETERS = {"sagemaker_program": '"train.py"',
                       "sagemaker_submit_directory": '"s3://b/code/sourcedir.tar.gz"',
                       "sagemaker_container_log_level": "20", "sagemaker_region": '"eu-west-1"',
                       "C": "1.0", "max_iter": "1000"}
RAW_ROW = b"premium,north,12,80.5,3,monthly"


# --- the data ---------------------------------------------------------------------------------


def test_the_committed_csv_is_what_the_generator_writes(tmp_path: Path) -> None:
    written = write(tmp_path / "churn.csv")
    assert written.read_bytes() == CHURN_CSV.read_bytes(), "run `python scripts/make_churn_data.py`"
    assert render() == written.read_bytes()  # same bytes on every run
    assert DEFAULT_OUTPUT == CHURN_CSV


def test_check_flag_exits_1_when_the_file_differs(tmp_path: Path) -> None:
    script = [sys.executable, str(REPO_ROOT / "scripts" / "make_churn_data.py")]
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 0
    stale = tmp_path / "churn.csv"
    stale.write_bytes(CHURN_CSV.read_bytes().replace(b",yes,", b",no,", 1))
    assert subprocess.run([*script, str(stale), "--check"], capture_output=True).returncode == 1


def test_the_table_has_its_columns_rows_churn_share_and_missing_values() -> None:
    raw = CHURN_CSV.read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")
    with CHURN_CSV.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert tuple(header) == COLUMNS == ("customer_id", "signup_date", "email", "plan", "region", "churned",
                                        "tenure_months", "monthly_charges", "support_calls", "phone", "contract")
    assert len(rows) == 1000 and all(len(row) == 11 for row in rows)
    assert len({tuple(row) for row in rows}) == len(rows)
    table = pd.DataFrame(rows, columns=header)
    assert list(table["customer_id"][:2]) == ["C00001", "C00002"] and table["customer_id"].is_unique
    assert 0.25 <= (table["churned"] == "yes").mean() <= 0.35 and set(table["churned"]) == {"yes", "no"}
    assert set(table["plan"]) == {"basic", "standard", "premium"} and set(table["contract"]) == {"monthly", "annual"}
    assert set(table["region"]) == {"north", "south", "east", "west", "NaN"}
    assert 0 < (table["region"] == "NaN").sum() <= 20
    assert 0 < (table["monthly_charges"] == "").sum() <= 40
    dates = pd.to_datetime(table["signup_date"], format="%Y-%m-%d")
    assert dates.min().year >= 2019 and dates.max().year <= 2024
    tenure, calls = table["tenure_months"].astype(int), table["support_calls"].astype(int)
    assert tenure.between(1, 72).all() and calls.between(0, 10).all()
    charges = table["monthly_charges"][table["monthly_charges"] != ""]
    assert charges.str.fullmatch(r"\d+\.\d\d").all()
    assert table["email"].str.fullmatch(r"user\d{5}@example\.com").all()
    assert table["phone"].str.fullmatch(r"\+44 7700 9\d{5}").all()


# --- training ---------------------------------------------------------------------------------


def _training_layout(frame: pd.DataFrame, median: float, mode: str) -> pd.DataFrame:
    """The platform's ETL output: the class index first (yes = 1), then the features, filled."""
    features = frame[FEATURES].fillna({"monthly_charges": median, "region": mode})
    return pd.concat([(frame["churned"] == "yes").astype(int).rename("label"), features], axis=1)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A deterministic 80/10/10 split in the training layout: train/validation channels, and
    the test rows (raw features, labels)."""
    table = pd.read_csv(CHURN_CSV)  # empty cells and "NaN" read as missing
    order = np.random.default_rng(7).permutation(len(table))
    train, validation, test = (table.iloc[order[:800]], table.iloc[order[800:900]], table.iloc[order[900:]])
    median, mode = train["monthly_charges"].median(), train["region"].mode()[0]
    root = tmp_path_factory.mktemp("churn")
    channels = {}
    for name, part in (("train", train), ("validation", validation)):
        (root / name).mkdir()
        _training_layout(part, median, mode).to_csv(root / name / f"part-00000-{name}.csv", header=False, index=False)
        channels[name] = root / name
    return {"channels": channels, "test": _training_layout(test, median, mode)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, split: dict) -> tuple[TrainingOutcome, Path]:
    root = tmp_path_factory.mktemp("trained")
    outcome = run_training(EXAMPLE, "train.py", SDK_HYPERPARAMETERS, split["channels"], root / "model",
                           root / "output-data", metric_definitions=METRICS)
    return outcome, root / "model"


def test_the_channels_are_in_the_training_layout(split: dict) -> None:
    first = (split["channels"]["train"] / "part-00000-train.csv").read_text().splitlines()
    assert len(first) == 800
    label, plan, region, tenure, charges, calls, contract = first[0].split(",")
    assert label in ("0", "1") and plan in ("basic", "standard", "premium") and contract in ("monthly", "annual")
    assert region in ("north", "south", "east", "west")
    assert all(float(value) >= 0 for value in (tenure, charges, calls))
    assert not any(",," in line or "nan" in line.lower() for line in first)


def test_the_example_trains_and_reports_its_metrics(trained: tuple[TrainingOutcome, Path]) -> None:
    outcome, model_dir = trained
    assert (outcome.exit_code, outcome.failure_reason) == (0, None), outcome.log
    assert set(outcome.metrics) == {d["Name"] for d in METRICS}
    for name, value in outcome.metrics.items():
        assert f"{name}={value:.6f}" in outcome.log
    assert 0.75 <= outcome.metrics["validation:auc"] <= 0.95
    assert 0 < outcome.metrics["validation:logloss"] < 0.6
    assert (model_dir / "model.joblib").is_file()


def test_the_categorical_positions_are_detected_and_saved(trained: tuple[TrainingOutcome, Path]) -> None:
    outcome, model_dir = trained
    model = joblib.load(model_dir / "model.joblib")
    columns = {name: list(cols) for name, _, cols in model.named_steps["columns"].transformers}
    assert columns == {"categorical": [0, 1, 5], "numeric": [2, 3, 4]}
    assert "categorical feature positions: [0, 1, 5]" in outcome.log


# --- serving ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(trained: tuple[TrainingOutcome, Path]) -> ScriptModel:
    return ScriptModel(trained[1], EXAMPLE, "train.py")


def test_one_raw_row_gets_one_probability(served: ScriptModel) -> None:
    response, content_type = served.invoke(RAW_ROW, "text/csv", "text/csv")
    lines = response.decode().splitlines()
    assert content_type == "text/csv" and len(lines) == 1
    assert 0 < float(lines[0]) < 1


def test_two_rows_get_two_probabilities_one_per_line(served: ScriptModel) -> None:
    body = RAW_ROW + b"\nbasic,south,60,20.0,0,annual\n"
    response, _ = served.invoke(body, "text/csv", "text/csv")
    scores = [float(line) for line in response.decode().splitlines()]
    assert len(scores) == 2 and all(0 < score < 1 for score in scores)
    assert scores[0] > scores[1]  # a new monthly customer who calls support vs a loyal annual one
    as_json, content_type = served.invoke(body, "text/csv", "application/json")
    assert content_type == "application/json" and json.loads(as_json) == pytest.approx(scores)


def test_the_held_out_rows_score_as_well_as_validation(served: ScriptModel, split: dict) -> None:
    test = split["test"]
    body = test[FEATURES].to_csv(header=False, index=False).encode()
    response, _ = served.invoke(body, "text/csv", "text/csv")
    scores = [float(line) for line in response.decode().splitlines()]
    assert len(scores) == len(test)
    assert 0.75 <= roc_auc_score(test["label"], scores) <= 0.95


def test_input_fn_types_the_columns_and_accepts_only_csv(served: ScriptModel) -> None:
    input_fn = served._handlers["input_fn"]
    frame = input_fn(RAW_ROW, "text/csv")
    assert frame.shape == (1, 6)
    assert [pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes] == [False, False, True, True, True, False]
    assert frame.iloc[0].tolist() == ["premium", "north", 12.0, 80.5, 3.0, "monthly"]
    with pytest.raises(ValueError, match="text/csv"):
        input_fn(b"[]", "application/json")
    with pytest.raises(HandlerError, match=r"input_fn \(train\.py\) raised ValueError: .*application/json.*text/csv"):
        served.invoke(b'[["premium"]]', "application/json", "text/csv")
