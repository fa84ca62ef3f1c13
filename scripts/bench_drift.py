#!/usr/bin/env python3
"""Benchmark of the drift job (jobs/drift/drift.py). Prints figures; asserts nothing.

Writes a 100,000-row baseline and a current window of --rows rows x 20 features (16 numeric,
4 categorical; the first feature shifted so the run reports drift) to a temp dir, as SageMaker
data-capture JSONL (one row per record, ground truth for --truth-share of the events) and as
batch-transform output CSV, then runs ``drift.main`` on each in a fresh process and prints wall
time, rows/s and the process's peak RSS (resource.getrusage). The job runs in its own process so
the generator's memory does not count.

    python scripts/bench_drift.py [--rows 1000000] [--formats capture,batch] [--truth-share 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
BASELINE_ROWS = 100_000
FILES = 20  # data capture writes many files (one per endpoint instance and few minutes)
CATEGORIES = np.array(list("abcde"))
FEATURES = [f"x{i}" for i in range(16)] + [f"c{i}" for i in range(4)]
CAPTURE = (
    '{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{row}",'
    '"encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT",'
    '"data":"{score}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{event}",'
    '"inferenceTime":"2026-11-23T{hour:02d}:00:00Z"}},"eventVersion":"0"}}'
)


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    columns = {f"x{i}": rng.normal(i + (shift if i == 0 else 0.0), 1 + i % 4, rows) for i in range(16)}
    columns.update({f"c{i}": CATEGORIES[rng.integers(0, 5, rows)] for i in range(4)})
    return pd.DataFrame(columns)


def _rows(table: pd.DataFrame) -> list[str]:
    return table.to_csv(header=False, index=False, float_format="%.6g", lineterminator="\n").splitlines()


def generate(root: Path, rows: int, truth_share: float) -> dict[str, float]:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    baseline = _table(rng, BASELINE_ROWS)
    labelled = pd.concat([pd.Series(rng.integers(0, 2, BASELINE_ROWS)), baseline], axis=1)
    (root / "baseline").mkdir(parents=True)
    labelled.to_csv(root / "baseline" / "train.csv", header=False, index=False, float_format="%.6g")

    per_file = -(-rows // FILES)
    (root / "capture").mkdir()
    (root / "batch").mkdir()
    (root / "ground_truth").mkdir()
    for k in range(FILES):
        count = min(per_file, rows - k * per_file)
        if count <= 0:
            break
        current = _table(rng, count, shift=0.5)
        scores = rng.random(count).round(4)
        lines = _rows(current)
        folder = root / "capture" / "2026" / "11" / "23" / f"{k % 24:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"capture-{k:03d}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(
                CAPTURE.format(row=line, score=score, event=f"{k}-{i}", hour=k % 24) + "\n"
                for i, (line, score) in enumerate(zip(lines, scores))
            )
        with open(root / "batch" / f"part-{k:03d}.csv.out", "w", encoding="utf-8") as handle:
            handle.writelines(f"{line},{score}\n" for line, score in zip(lines, scores))
        labelled_events = np.flatnonzero(rng.random(count) < truth_share)
        labels = (rng.random(len(labelled_events)) < scores[labelled_events]).astype(int)
        with open(root / "ground_truth" / f"truth-{k:03d}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(
                json.dumps({"groundTruthData": {"data": str(label), "encoding": "CSV"},
                            "eventMetadata": {"eventId": f"{k}-{i}"}, "eventVersion": "0"}) + "\n"
                for i, label in zip(labelled_events, labels)
            )
    size = sum(p.stat().st_size for p in (root / "capture").rglob("*.jsonl"))
    return {"seconds": time.perf_counter() - started, "capture_mb": size / 2**20}


def child(argv: list[str]) -> None:
    """Run drift.main in this (fresh) process and print its wall time and peak RSS as JSON."""
    sys.path.insert(0, str(REPO))
    from jobs.drift import drift

    started = time.perf_counter()
    summary = drift.main(argv)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "summary": summary}))


def measure(root: Path, fmt: str, rows: int) -> dict:
    argv = ["--features", ",".join(FEATURES), "--no-publish", "--baseline-dir", str(root / "baseline"),
            "--output-dir", str(root / f"output-{fmt}"), "--input-format", fmt]
    if fmt == "capture":
        argv += ["--capture-dir", str(root / "capture"), "--ground-truth-dir", str(root / "ground_truth"),
                 "--problem-type", "binary_classification"]
    else:
        argv += ["--capture-dir", str(root / "batch"), "--ground-truth-dir", str(root / "none")]
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(argv)], check=True,
                          capture_output=True, text=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rows_per_second"] = rows / figures["seconds"]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="capture,batch")
    parser.add_argument("--truth-share", type=float, default=0.1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-drift-") as scratch:
        root = Path(scratch)
        made = generate(root, args.rows, args.truth_share)
        print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"data: baseline {BASELINE_ROWS:,} rows; current {args.rows:,} rows x {len(FEATURES)} features "
              f"({made['capture_mb']:,.0f} MiB of capture JSONL, ground truth for {args.truth_share:.0%} of events); "
              f"generated in {made['seconds']:.1f} s\n")
        print(f"{'input':<10}{'wall s':>9}{'rows/s':>12}{'peak RSS MiB':>14}  result")
        for fmt in args.formats.split(","):
            figures = measure(root, fmt, args.rows)
            summary = figures["summary"]
            quality = f", auc {summary['auc']:.3f}" if "auc" in summary else ""
            print(f"{fmt:<10}{figures['seconds']:>9.1f}{figures['rows_per_second']:>12,.0f}"
                  f"{figures['peak_rss_mib']:>14,.0f}  drifted {summary['drifted']}{quality}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
