#!/usr/bin/env python3
"""Prepare the training data (SageMaker Processing job script): dedupe, fill missing
values, and split 80/10/10 into train/validation/test, deterministically.

Self-contained (numpy + pandas, both in the XGBoost framework image). Contract:

    /opt/ml/processing/input/*.csv      raw table with a header; the label column is --label
    /opt/ml/processing/{train,validation,test}/data.csv
                                        label first, no header: what built-in XGBoost reads

Rows are ordered by a hash of their content before a seeded shuffle, so the split does
not depend on file or row order and is identical on every rerun. Missing numeric values
are filled with the column median of the training split (no test-set leakage); rows
without a label are dropped.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
from typing import Any

import numpy as np
import pandas as pd

SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))

# SageMaker mounts inputs and outputs here; offline runs point it at a temp dir.
PROCESSING_ROOT = os.environ.get("PROCESSING_ROOT", "/opt/ml/processing")


def split(table: pd.DataFrame, label: str, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Pure transform: clean and split ``table``; the label becomes the first column."""
    if label not in table.columns:
        raise ValueError(f"label column {label!r} not in the data (columns: {', '.join(table.columns)})")
    table = table.drop_duplicates().dropna(subset=[label])
    keys = pd.util.hash_pandas_object(table, index=False).to_numpy()
    table = table.iloc[np.argsort(keys, kind="stable")]
    table = table.iloc[np.random.default_rng(seed).permutation(len(table))].reset_index(drop=True)
    n = len(table)
    n_train, n_validation = round(n * SPLITS[0][1]), round(n * SPLITS[1][1])
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_validation), "test": (n_train + n_validation, n)}
    parts = {name: table.iloc[start:end] for name, (start, end) in bounds.items()}
    medians = parts["train"].median(numeric_only=True)
    ordered = [label] + [column for column in table.columns if column != label]
    return {name: part.fillna(medians)[ordered] for name, part in parts.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-dir", default=f"{PROCESSING_ROOT}/input")
    parser.add_argument("--output-dir", default=PROCESSING_ROOT)
    args = parser.parse_args(argv)
    files = sorted(glob.glob(os.path.join(args.input_dir, "**", "*.csv"), recursive=True))
    if not files:
        raise SystemExit(f"no CSV files under {args.input_dir}")
    table = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
    parts = split(table, args.label, args.seed)
    for name, part in parts.items():
        os.makedirs(os.path.join(args.output_dir, name), exist_ok=True)
        part.to_csv(os.path.join(args.output_dir, name, "data.csv"), header=False, index=False)
    summary = {
        "input_rows": len(table),
        "rows": {name: len(part) for name, part in parts.items()},
        "features": len(table.columns) - 1,
        "digest": hashlib.sha256(b"".join(p.to_csv(index=False).encode() for p in parts.values())).hexdigest()[:12],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
