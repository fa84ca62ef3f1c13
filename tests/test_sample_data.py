"""The bundled scikit-learn samples are exactly what the export script produces from scikit-learn."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from mlops.config import SAMPLE_DIR as SAMPLE_DATA_DIR
from scripts.export_sample_data import DATASETS, export


def test_export_reproduces_committed_files(tmp_path: Path) -> None:
    written = export(tmp_path)
    assert {path.relative_to(tmp_path) for path in written} == {
        path.relative_to(SAMPLE_DATA_DIR) for name in DATASETS for path in (SAMPLE_DATA_DIR / name).rglob("*.csv")
    }
    for path in written:
        committed = SAMPLE_DATA_DIR / path.relative_to(tmp_path)
        assert path.read_bytes() == committed.read_bytes(), f"{committed} differs: run `make sample-data`"


@pytest.mark.parametrize(
    ("dataset", "rows", "columns"),
    [("breast_cancer", 569, 31), ("diabetes", 442, 11), ("wine", 178, 14)],
)
def test_shape_and_header(dataset: str, rows: int, columns: int) -> None:
    with (SAMPLE_DATA_DIR / dataset / f"{dataset}.csv").open() as handle:
        table = list(csv.reader(handle))
    header, body = table[0], table[1:]
    assert len(body) == rows and len(header) == columns and header[-1] == "target"
    assert all(len(row) == columns for row in body)
    assert all(name == name.lower() and " " not in name for name in header)


def test_classification_labels_are_binary() -> None:
    with (SAMPLE_DATA_DIR / "breast_cancer" / "breast_cancer.csv").open() as handle:
        labels = Counter(row["target"] for row in csv.DictReader(handle))
    assert labels == {"1": 357, "0": 212}
    assert set(DATASETS) == {"breast_cancer", "diabetes", "wine"}


def test_multiclass_labels_are_three_cultivars() -> None:
    with (SAMPLE_DATA_DIR / "wine" / "wine.csv").open() as handle:
        labels = Counter(row["target"] for row in csv.DictReader(handle))
    assert labels == {"0": 59, "1": 71, "2": 48}
