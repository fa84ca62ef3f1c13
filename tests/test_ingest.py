"""The feature-ingestion job script (jobs/features/ingest.py): records, batching, failures."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "jobs" / "features" / "ingest.py"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "breast_cancer" / "breast_cancer.csv"
GROUP = {"feature_group_name": "g", "record_identifier": "record_id", "event_time": "event_time",
         "features": [{"name": "mean_radius", "type": "Fractional"}, {"name": "target", "type": "Integral"}]}


@pytest.fixture(scope="module")
def ingest():
    spec = importlib.util.spec_from_file_location("ingest_job", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Sink:
    def __init__(self, fail_ids: set[str] = frozenset()) -> None:
        self.records: list[dict[str, str]] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()
        self._fail = fail_ids

    def put_record(self, *, FeatureGroupName: str, Record: list[dict]) -> None:  # noqa: N803 - API names
        values = {item["FeatureName"]: item["ValueAsString"] for item in Record}
        if values["record_id"] in self._fail:
            raise RuntimeError("ThrottlingException (test)")
        with self._lock:
            self.records.append(values)
            self.threads.add(threading.get_ident())


def test_every_row_becomes_one_record_with_stable_ids(ingest) -> None:
    table = pd.read_csv(SAMPLE)
    sink = Sink()
    result = ingest.ingest(table, GROUP, sink.put_record, event_time="2026-11-23T00:00:00Z", workers=4)
    assert result == {"feature_group": "g", "records": 569}
    assert len(sink.records) == 569 and len({r["record_id"] for r in sink.records}) == 569
    assert all(set(r) == {"record_id", "event_time", "mean_radius", "target"} for r in sink.records)
    again = Sink()
    ingest.ingest(table.sample(frac=1, random_state=1), GROUP, again.put_record, event_time="x", workers=4)
    # a rerun (any row order) writes the same ids: Feature Store overwrites, nothing duplicates
    assert {r["record_id"] for r in again.records} == {r["record_id"] for r in sink.records}


def test_missing_values_are_left_out_and_types_are_written_as_feature_store_expects(ingest) -> None:
    table = pd.DataFrame({"mean_radius": [1.5, np.nan], "target": [1, 0]})
    sink = Sink()
    ingest.ingest(table, GROUP, sink.put_record, event_time="t", workers=1)
    by_target = {r["target"]: r for r in sink.records}
    assert by_target["1"]["mean_radius"] == "1.5" and "mean_radius" not in by_target["0"]


def test_failed_records_fail_the_job_with_a_summary(ingest) -> None:
    table = pd.read_csv(SAMPLE).head(20)
    first_id = next(ingest.records(table, GROUP, "t"))[0]["ValueAsString"]
    with pytest.raises(RuntimeError, match=r"1 of 20 records failed for g; first: [0-9a-f]{32}: ThrottlingException"):
        ingest.ingest(table, GROUP, Sink({first_id}).put_record, event_time="t", workers=2)


def test_unknown_feature_column_is_named(ingest) -> None:
    table = pd.DataFrame({"mean_radius": [1.0]})
    with pytest.raises(ValueError, match=r"feature group g: column\(s\) target not in the data"):
        ingest.ingest(table, GROUP, Sink().put_record, event_time="t")


def test_main_reads_every_csv_under_the_input_dir(ingest, tmp_path: Path) -> None:
    table = pd.read_csv(SAMPLE)
    for name, part in (("split=train", table.iloc[:500]), ("split=test", table.iloc[500:])):
        (tmp_path / name).mkdir()
        part.to_csv(tmp_path / name / "part-0.csv", index=False)
    sink = Sink()
    import json

    results = ingest.main(["--groups", json.dumps([GROUP]), "--input-dir", str(tmp_path)], client=sink)
    assert results == [{"feature_group": "g", "records": 569}] and len(sink.records) == 569
