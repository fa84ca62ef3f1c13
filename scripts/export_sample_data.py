#!/usr/bin/env python3
"""Export the real datasets bundled with scikit-learn to CSV under data/sample/.

Deterministic: the same scikit-learn version always yields byte-identical files
(tests/test_sample_data.py re-runs it and compares). No network: the tables ship
inside the scikit-learn wheel.

    python scripts/export_sample_data.py [OUTPUT_DIR]
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "data" / "sample"

# dataset -> (loader, problem type, label description)
DATASETS = {
    "breast_cancer": (lambda: load_breast_cancer(), "binary_classification", "1 = benign, 0 = malignant"),
    "diabetes": (lambda: load_diabetes(scaled=False), "regression", "disease progression one year after baseline"),
    "wine": (lambda: load_wine(), "multiclass_classification", "cultivar 0, 1 or 2"),
}


def _column(name: str) -> str:
    """Catalog-friendly column name: lowercase, [a-z0-9_] (Glue lowercases names anyway)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _number(value: float) -> str:
    # repr of a Python float is the shortest round-tripping form: stable and lossless.
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def export(output_dir: Path) -> list[Path]:
    written = []
    for name, (loader, _, _) in DATASETS.items():
        bunch = loader()
        target_dir = output_dir / name
        target_dir.mkdir(parents=True, exist_ok=True)
        path = target_dir / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow([_column(feature) for feature in bunch.feature_names] + ["target"])
            for features, target in zip(bunch.data, bunch.target):
                writer.writerow([_number(value) for value in features] + [_number(target)])
        written.append(path)
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    for written_path in export(out):
        rows = sum(1 for _ in written_path.open()) - 1
        print(f"wrote {written_path} ({rows} rows)")
