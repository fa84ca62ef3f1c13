"""The one-hot encoding job (jobs/encode/encode.py): as a Processing job on a tiny split, and
served as the first container of an inference pipeline through the offline scikit-learn
container emulation (tools/offline/script_mode.py ``ScriptModel``)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from jobs.encode.encode import main
from tools.offline.script_mode import HandlerError, ScriptModel

SCRIPT_DIR = Path(__file__).resolve().parent.parent / "jobs" / "encode"
COLORS = ["red", "green", "dark, blue"]  # a category with a comma: CSV quoting
CODES = [2, 10, 7]  # integer codes: as categories they sort as text ("10" < "2" < "7")
COLOR_CATEGORIES = ["dark, blue", "green", "red"]
CODE_CATEGORIES = ["10", "2", "7"]
COLUMNS = ["0=dark, blue", "0=green", "0=red", "2=10", "2=2", "2=7", "1"]


def _rows(count: int, offset: int) -> list[list[object]]:
    """label, color (text), amount (float), code (integer category)."""
    return [[(i * 7) % 2, COLORS[i % 3], (i + offset) / 3 + 0.1, CODES[(i // 3) % 3]] for i in range(count)]


def _write(path: Path, rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(
            [[repr(v) if isinstance(v, float) else v for v in row] for row in rows])


def _lines(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def _expected(color: str, amount: float, code: object) -> list[float]:
    return ([float(color == c) for c in COLOR_CATEGORIES] + [float(str(code) == c) for c in CODE_CATEGORIES]
            + [amount])


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("encode")
    train = _rows(40, 0)
    validation = _rows(8, 100)
    validation[0][1] = "purple"  # a color seen only in validation
    validation[1][3] = 99  # a code seen only in validation
    _write(root / "train" / "part-00000.csv", train[:25])
    _write(root / "train" / "sub" / "part-00001.csv", train[25:])  # recursive, sorted by path
    (root / "train" / "empty.csv").write_text("")  # empty files are skipped
    _write(root / "validation" / "part-00000.csv", validation)
    summary = main(["--train-dir", str(root / "train"), "--validation-dir", str(root / "validation"),
                    "--categorical", "0,2", "--output-dir", str(root / "out")])
    return {"root": root, "out": root / "out", "train": train, "validation": validation, "summary": summary}


@pytest.fixture(scope="module")
def served(encoded: dict, tmp_path_factory: pytest.TempPathFactory) -> ScriptModel:
    model_dir = tmp_path_factory.mktemp("model")
    with tarfile.open(encoded["out"] / "model" / "model.tar.gz") as archive:
        archive.extractall(model_dir, filter="data")
    return ScriptModel(model_dir, SCRIPT_DIR, "encode.py")


# --- the Processing job -------------------------------------------------------------------------


def test_main_summarizes_the_run(encoded: dict) -> None:
    assert encoded["summary"] == {"train_rows": 40, "validation_rows": 8, "features": 3, "encoded_features": 7,
                                  "categories": {"0": 3, "2": 3}}


@pytest.mark.parametrize("split", ["train", "validation"])
def test_splits_are_the_label_then_the_one_hot_block_then_the_numbers(encoded: dict, split: str) -> None:
    lines = _lines(encoded["out"] / split / f"{split}.csv")
    assert len(lines) == len(encoded[split])
    for line, (label, color, amount, code) in zip(lines, encoded[split]):
        assert line[0] == str(label)  # unchanged
        assert [float(value) for value in line[1:]] == _expected(color, amount, code)  # floats read back exactly
        assert all(value in ("0", "1") for value in line[1:7])


def test_categories_come_from_the_train_split_only(encoded: dict) -> None:
    purple, unseen_code = _lines(encoded["out"] / "validation" / "validation.csv")[:2]
    assert purple[1:4] == ["0", "0", "0"]
    assert unseen_code[4:7] == ["0", "0", "0"]


def test_the_model_archive_holds_the_encoder_and_its_description(encoded: dict) -> None:
    with tarfile.open(encoded["out"] / "model" / "model.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["encoder.joblib", "encoding.json"]
        encoding = json.load(archive.extractfile("encoding.json"))
    assert encoding == {"features": 3, "encoded_features": 7,
                        "categorical": {"0": COLOR_CATEGORIES, "2": CODE_CATEGORIES}, "columns": COLUMNS}


# --- served as the first container of the inference pipeline -------------------------------------


def test_a_raw_row_encodes_exactly_as_in_training(encoded: dict, served: ScriptModel) -> None:
    raw = (encoded["root"] / "train" / "part-00000.csv").read_text().splitlines()
    trained = (encoded["out"] / "train" / "train.csv").read_text().splitlines()
    for index in (0, 2):  # row 2 is the quoted "dark, blue"
        body = raw[index].split(",", 1)[1]  # the features without the label
        response, content_type = served.invoke(body.encode(), "text/csv", "text/csv")
        assert content_type == "text/csv"
        assert response.decode() == trained[index].split(",", 1)[1] + "\n"


def test_two_rows_give_two_lines_and_integer_written_codes_match(served: ScriptModel) -> None:
    response, _ = served.invoke(b'red,0.5,7\n"purple", 2.25 ,10\n', "text/csv", "text/csv")
    assert response == b"0,0,1,0,0,1,0.5\n0,0,0,1,0,0,2.25\n"


def test_bad_requests_name_what_is_allowed(served: ScriptModel) -> None:
    with pytest.raises(HandlerError, match=r"predict_fn \(encode\.py\) raised ValueError: expected 3 features"):
        served.invoke(b"red,0.5\n", "text/csv", "text/csv")
    with pytest.raises(HandlerError, match=r"input_fn \(encode\.py\) raised ValueError: .*application/json.*text/csv"):
        served.invoke(b'[["red", 0.5, 7]]', "application/json", "text/csv")
    with pytest.raises(HandlerError, match=r"output_fn \(encode\.py\) raised ValueError: .*text/csv"):
        served.invoke(b"red,0.5,7\n", "text/csv", "application/json")


# --- argument and data mistakes -----------------------------------------------------------------


@pytest.mark.parametrize(("categorical", "distinct", "message"), [
    ("", 3, "--categorical: name at least one categorical feature position"),
    ("0,3", 3, "--categorical: position 3 is out of range; the data has 3 features"),
    ("-1", 3, "--categorical: position -1 is out of range"),
    ("0,2,0", 3, "--categorical: position 0 is given more than once"),
    ("1", 201, "--categorical: feature 1 has 201 distinct values in the train split; at most 200 are one-hot "
               "encoded (declare it text with role id or ignore)"),
])
def test_categorical_mistakes_are_refused(tmp_path: Path, categorical: str, distinct: int, message: str) -> None:
    rows = [[i % 2, "red", f"id{i % distinct}", 1.5] for i in range(max(distinct, 6))]
    _write(tmp_path / "train" / "a.csv", rows)
    _write(tmp_path / "validation" / "a.csv", rows[:3])
    args = ["--train-dir", str(tmp_path / "train"), "--validation-dir", str(tmp_path / "validation"),
            "--categorical", categorical, "--output-dir", str(tmp_path / "out")]
    with pytest.raises(ValueError, match=re.escape(message)):
        main(args)


def test_the_script_fails_with_one_line_for_the_failure_reason(encoded: dict, tmp_path: Path) -> None:
    root = encoded["root"]
    run = subprocess.run([sys.executable, str(SCRIPT_DIR / "encode.py"), "--train-dir", str(root / "train"),
                          "--validation-dir", str(root / "validation"), "--categorical", "0,5",
                          "--output-dir", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("encode: --categorical: position 5 is out of range")
