#!/usr/bin/env python3
"""Ingest curated features into SageMaker Feature Store (SageMaker Processing job script).

Contract:

    /opt/ml/processing/input/**/*.csv   the curated split tables (CSV with a header row)
    --groups '<json>'                   [{"feature_group_name", "record_identifier", "event_time",
                                          "features": [{"name", "type"}]}, ...]

Every row becomes one record per feature group: its configured features, the record
identifier (the row's own column of that name, else a stable SHA-256 of the row's content,
so a rerun overwrites instead of duplicating) and the event time (the column, else the
job's start time, ISO-8601). Records are written with ``PutRecord`` from a thread pool in
batches (what the SageMaker SDK's ``FeatureGroup.ingest`` does), with botocore's adaptive
retries absorbing throttling. Missing values are left out of the record, as Feature Store
expects. Any record that still fails makes the job fail with a summary; nothing is
silently dropped. Needs only pandas and boto3 (both in the SageMaker framework images).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pandas as pd

PROCESSING_ROOT = os.environ.get("PROCESSING_ROOT", "/opt/ml/processing")
TYPES = {"Integral": "int", "Fractional": "float", "String": "str"}
BATCH = 500


def _value(value: Any, feature_type: str) -> str:
    if feature_type == "Integral":
        return str(int(value))
    if feature_type == "Fractional":
        return repr(float(value))
    return str(value)


def records(table: pd.DataFrame, group: dict[str, Any], event_time: str) -> Iterator[list[dict[str, str]]]:
    """The group's records, one ``Record`` list per row (PutRecord's shape)."""
    features = group["features"]
    missing = [f["name"] for f in features if f["name"] not in table.columns]
    if missing:
        raise ValueError(f"feature group {group['feature_group_name']}: column(s) {', '.join(missing)} not in the data "
                         f"(columns: {', '.join(table.columns)})")
    id_column, time_column = group["record_identifier"], group["event_time"]
    content = table.drop(columns=[c for c in (id_column, time_column) if c in table.columns])
    row_hashes = pd.util.hash_pandas_object(content, index=False)
    for position, (_, row) in enumerate(table.iterrows()):
        record_id = str(row[id_column]) if id_column in table.columns else hashlib.sha256(
            f"{row_hashes.iloc[position]}".encode()).hexdigest()[:32]
        record = [{"FeatureName": id_column, "ValueAsString": record_id},
                  {"FeatureName": time_column, "ValueAsString": str(row[time_column]) if time_column in table.columns else event_time}]
        for feature in features:
            value = row[feature["name"]]
            if pd.notna(value):
                record.append({"FeatureName": feature["name"], "ValueAsString": _value(value, feature["type"])})
        yield record


def ingest(table: pd.DataFrame, group: dict[str, Any], put_record: Callable[..., Any], *, event_time: str,
           workers: int = 8) -> dict[str, Any]:
    """Write every row of ``table`` to one feature group; returns counts, raises on failures."""
    name = group["feature_group_name"]
    failures: list[str] = []

    def put(record: list[dict[str, str]]) -> None:
        try:
            put_record(FeatureGroupName=name, Record=record)
        except Exception as error:  # noqa: BLE001 - collected and reported below, job fails
            failures.append(f"{record[0]['ValueAsString']}: {error}")

    written = 0
    batch: list[list[dict[str, str]]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for record in records(table, group, event_time):
            batch.append(record)
            if len(batch) == BATCH:
                list(pool.map(put, batch))
                written, batch = written + len(batch), []
        list(pool.map(put, batch))
        written += len(batch)
    if failures:
        raise RuntimeError(f"{len(failures)} of {written} records failed for {name}; first: {failures[0]}")
    return {"feature_group": name, "records": written}


def read_tables(input_dir: str) -> pd.DataFrame:
    files = sorted(glob.glob(os.path.join(input_dir, "**", "*.csv"), recursive=True))
    if not files:
        raise ValueError(f"no CSV files under {input_dir}")
    return pd.concat([pd.read_csv(path) for path in files], ignore_index=True)


def main(argv: list[str] | None = None, *, client: Any = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", required=True, help="JSON list of feature groups")
    parser.add_argument("--input-dir", default=f"{PROCESSING_ROOT}/input")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    groups = json.loads(args.groups)
    if client is None:
        import boto3
        from botocore.config import Config

        client = boto3.client("sagemaker-featurestore-runtime",
                              config=Config(retries={"mode": "adaptive", "max_attempts": 10}, max_pool_connections=args.workers))
    table = read_tables(args.input_dir)
    event_time = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    results = [ingest(table, group, client.put_record, event_time=event_time, workers=args.workers) for group in groups]
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    try:
        main()
    except (ValueError, RuntimeError) as error:
        print(f"ingestion failed: {error}", file=sys.stderr)
        sys.exit(1)
