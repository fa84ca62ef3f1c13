#!/usr/bin/env python3
"""Benchmark of the drift job (jobs/drift/drift.py). Prints figures; asserts nothing.

1. Speed and memory. Writes a --baseline-rows-row baseline (1,000,000 by default) and a current
   window of --rows rows x 20 features (16 numeric, 4 categorical; the first feature shifted by
   0.5 sd so the run reports drift) to a temp dir, as SageMaker data-capture JSONL (one row per
   record, ground truth for --truth-share of the events) and as batch-transform output CSV, then
   runs ``drift.main`` on each in a fresh process and prints wall time, rows/s and the process's
   peak RSS (resource.getrusage). The job runs in its own process so the generator's memory does
   not count.

2. Detection with the default thresholds. Seeded windows of 500, 10,000, 100,000 and 1,000,000
   rows (--windows) x 20 features, each compared in-process (``drift.compare``) with a
   200,000-row baseline (the job's default baseline sample; 20 baselines, windows take turns) of
   the same 20 features. "Shift" windows move nine features at once (normal: +0.05, +0.1, +0.25,
   +0.5 sd and variance x1.5; variance x1.5 of a lognormal and of a uniform feature; 10 points of
   an integer-coded 5-category feature, declared --categorical, from code 3 to code 4, and of a
   text category from b to c) and leave the 11 others as they were; a cell is the share of windows
   in which that feature was flagged (a second table gives its effect sizes and how often its
   test alone is significant). "None" windows draw all 20 features from the baseline's distribution;
   a cell is the share of windows in which a feature of that family was flagged, and the last row
   the share with any flag (the false-alarm rate, with its 95 % upper bound, Clopper-Pearson).

    python scripts/bench_drift.py [--rows 1000000] [--baseline-rows 1000000] [--formats capture,batch]
                                  [--truth-share 0.1] [--windows 500:300,10000:150,100000:30,1000000:4]
                                  [--skip-timing] [--skip-detection]

The machine's load average (os.getloadavg) is printed at the start and the end: the 2-core
machine is shared, and figures move with its load.
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


def generate(root: Path, rows: int, truth_share: float, baseline_rows: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    (root / "baseline").mkdir(parents=True)
    for start in range(0, baseline_rows, 250_000):  # in parts: the generator's memory stays small
        count = min(250_000, baseline_rows - start)
        labelled = pd.concat([pd.Series(rng.integers(0, 2, count)), _table(rng, count)], axis=1)
        labelled.to_csv(root / "baseline" / "train.csv", header=False, index=False, float_format="%.6g",
                        mode="a")

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


# ---------------------------------------------------------------------------
# Detection table
# ---------------------------------------------------------------------------

DETECTION_BASELINE_ROWS = 200_000  # the job's default --baseline-rows: what it compares at any input size
BASELINES = 20
SHIFTS = {"x0": "+0.05 sd", "x1": "+0.1 sd", "x2": "+0.25 sd", "x3": "+0.5 sd", "x4": "variance x1.5",
          "ln0": "variance x1.5 (lognormal)", "un0": "variance x1.5 (uniform)",
          "code": "category move 10 pp (codes)", "cat": "category move 10 pp (text)"}
FAMILIES = {  # null feature -> distribution family, for the "none" rows
    "x0": "normal", "x1": "normal", "x2": "normal", "x3": "normal", "x4": "normal", "n5": "normal",
    "ln0": "lognormal", "ln1": "lognormal", "un0": "uniform", "un1": "uniform",
    "po": "integer-valued", "int": "integer-valued", "nm": "with missing values", "lm": "with missing values",
    "code": "integer codes (declared)", "code2": "integer codes (declared)",
    "cat": "text categories", "zipf": "text categories", "bin": "integer-valued", "n6": "normal",
}
DECLARED = ("code", "code2")
ZIPF = np.array([f"k{i:02d}" for i in range(30)])
ZIPF_SHARES = (1 / np.arange(1, 31)) / (1 / np.arange(1, 31)).sum()  # 30 categories, the rarest 1.0 %


def mixed(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """The 20 features of FAMILIES: 7 normal, 2 lognormal, 2 uniform, 3 integer-valued (Poisson,
    0-20, 0/1), 2 with missing values (10 %, 20 %), 2 integer-coded categories, 2 text categories
    (5 shares 40/25/15/12/8 %, and 30 with Zipf shares)."""
    normal = rng.normal(0, 1, (rows, 6))
    with_missing = rng.normal(10, 3, rows)
    with_missing[rng.random(rows) < 0.1] = np.nan
    lognormal_missing = rng.lognormal(1, 0.8, rows)
    lognormal_missing[rng.random(rows) < 0.2] = np.nan
    return pd.DataFrame({
        **{f"x{i}": normal[:, i] for i in range(5)}, "n5": normal[:, 5] * 4 + 100,
        "ln0": rng.lognormal(0, 1, rows), "ln1": rng.lognormal(2, 0.5, rows),
        "un0": rng.uniform(0, 1, rows), "un1": rng.uniform(-50, 50, rows),
        "po": rng.poisson(3, rows).astype(float), "int": rng.integers(0, 21, rows).astype(float),
        "nm": with_missing, "lm": lognormal_missing,
        "code": rng.integers(1, 6, rows), "code2": rng.choice([1, 2, 3], rows, p=[0.7, 0.2, 0.1]),
        "cat": CATEGORIES[np.searchsorted(np.cumsum([0.4, 0.25, 0.15, 0.12]), rng.random(rows))],
        "zipf": ZIPF[np.minimum(np.searchsorted(np.cumsum(ZIPF_SHARES), rng.random(rows)), 29)],
        "bin": (rng.random(rows) < 0.3).astype(float), "n6": rng.normal(-3, 0.1, rows),
    })


def shifted(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Every shift of SHIFTS, one per feature: means moved in standard deviations; variance x1.5
    around the distribution's mean (normal 0, lognormal(0, 1) e^0.5, uniform(0, 1) 0.5); 10
    percentage points moved from code 3 (20 %) to code 4, and from text category b (25 %) to c."""
    moved = table.copy()
    for name, delta in (("x0", 0.05), ("x1", 0.1), ("x2", 0.25), ("x3", 0.5)):
        moved[name] += delta
    for name, mean in (("x4", 0.0), ("ln0", np.exp(0.5)), ("un0", 0.5)):
        moved[name] = mean + (moved[name] - mean) * np.sqrt(1.5)
    codes, cats = moved["code"].to_numpy().copy(), moved["cat"].to_numpy().copy()
    codes[(codes == 3) & (rng.random(len(codes)) < 0.5)] = 4  # half of code 3's 20 %
    cats[(cats == "b") & (rng.random(len(cats)) < 0.4)] = "c"  # 40 % of b's 25 %
    return moved.assign(code=codes, cat=cats)


def detection(windows: dict[int, int]) -> None:
    sys.path.insert(0, str(REPO))
    from scipy import stats

    from jobs.drift import drift

    started = time.perf_counter()
    seeds = np.random.SeedSequence(2026)
    baselines = [drift.prepare(mixed(np.random.default_rng(s), DETECTION_BASELINE_ROWS), categorical=DECLARED)
                 for s in seeds.spawn(BASELINES)]
    shift_hits: dict[int, dict[str, int]] = {}
    null_hits: dict[int, dict[str, int]] = {}
    largest: dict[int, float] = {}  # largest effect size / threshold in a "none" window
    effects: dict[int, dict[str, list[float]]] = {}  # effect size of each shifted feature per window
    significant: dict[int, dict[str, int]] = {}  # windows where the test alone would flag the shifted feature
    for size, count in windows.items():
        shift_hits[size] = dict.fromkeys([*SHIFTS, "others"], 0)
        effects[size] = {name: [] for name in SHIFTS}
        significant[size] = dict.fromkeys(SHIFTS, 0)
        null_hits[size] = dict.fromkeys([*dict.fromkeys(FAMILIES.values()), "any feature (window)"], 0)
        largest[size] = 0.0
        for k, seed in enumerate(np.random.SeedSequence([2026, size]).spawn(count)):
            rng = np.random.default_rng(seed)
            baseline = baselines[k % BASELINES]
            moved = drift.compare(baseline, shifted(mixed(rng, size), rng), categorical=DECLARED)
            for name in set(moved.drifted) & set(SHIFTS):
                shift_hits[size][name] += 1
            for f in moved.features:
                if f.name in SHIFTS and f.p_value < moved.adjusted_alpha:
                    significant[size][f.name] += 1
            for f in moved.features:
                if f.name in SHIFTS:
                    effects[size][f.name].append(f.effect_size)
            shift_hits[size]["others"] += bool(set(moved.drifted) - set(SHIFTS))
            same = drift.compare(baseline, mixed(rng, size), categorical=DECLARED)
            for family in {FAMILIES[name] for name in same.drifted}:
                null_hits[size][family] += 1
            null_hits[size]["any feature (window)"] += bool(same.drifted)
            largest[size] = max([largest[size]] + [f.effect_size / f.threshold for f in same.features])
    sizes = list(windows)
    print(f"\ndetection with the default thresholds (numeric 0.1, categorical 0.07, alpha 0.01 / 20 features), "
          f"windows per size {', '.join(f'{s:,}: {n}' for s, n in windows.items())}; baselines "
          f"{DETECTION_BASELINE_ROWS:,} rows; {time.perf_counter() - started:.0f} s\n")
    print(f"{'shift':<34}" + "".join(f"{f'{s:,} rows':>16}" for s in sizes))
    for name, label in {**SHIFTS, "others": "(an unshifted feature beside them)"}.items():
        print(f"{label:<34}" + "".join(f"{shift_hits[s][name] / windows[s]:>16.0%}" for s in sizes))
    for family in null_hits[sizes[0]]:
        cells = []
        for s in sizes:
            hits = null_hits[s][family]
            upper = stats.beta.ppf(0.95, hits + 1, windows[s] - hits)  # one-sided 95 % Clopper-Pearson
            window_rate = f"{hits}/{windows[s]} (<{upper:.1%})"
            cells.append(window_rate if family.startswith("any") else f"{hits / windows[s]:.0%}")
        print(f"{'none: ' + family:<34}" + "".join(f"{c:>16}" for c in cells))
    print(f"{'none: largest effect / threshold':<34}" + "".join(f"{largest[s]:>16.2f}" for s in sizes))
    print("\neffect size of the shifted feature, median [min, max] over the windows (thresholds: numeric 0.1, "
          "categorical 0.07), and the share of windows where its test alone is significant (p < 0.01 / 20)\n")
    print(f"{'shift':<34}" + "".join(f"{f'{s:,} rows':>28}" for s in sizes))
    for name, label in SHIFTS.items():
        cells = [f"{np.median(effects[s][name]):.3f} [{min(effects[s][name]):.2f}, {max(effects[s][name]):.2f}] "
                 f"{significant[s][name] / windows[s]:>4.0%}" for s in sizes]
        print(f"{label:<34}" + "".join(f"{c:>28}" for c in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="capture,batch")
    parser.add_argument("--truth-share", type=float, default=0.1)
    parser.add_argument("--baseline-rows", type=int, default=1_000_000, help="rows of the baseline CSV written")
    parser.add_argument("--windows", default="500:300,10000:150,100000:30,1000000:4",
                        help="size:count,... of the detection table")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-detection", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; load average at start "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if not args.skip_timing:
        timing(args)
    if not args.skip_detection:
        detection({int(size): int(count) for size, count in (part.split(":") for part in args.windows.split(","))})
    print("\nload average at end " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


def timing(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as scratch:
        root = Path(scratch)
        made = generate(root, args.rows, args.truth_share, args.baseline_rows)
        print(f"data: baseline {args.baseline_rows:,} rows; current {args.rows:,} rows x {len(FEATURES)} features "
              f"({made['capture_mb']:,.0f} MiB of capture JSONL, ground truth for {args.truth_share:.0%} of events); "
              f"generated in {made['seconds']:.1f} s\n")
        print(f"{'input':<10}{'wall s':>9}{'rows/s':>12}{'peak RSS MiB':>14}  result")
        for fmt in args.formats.split(","):
            figures = measure(root, fmt, args.rows)
            summary = figures["summary"]
            quality = f", auc {summary['auc']:.3f}" if "auc" in summary else ""
            print(f"{fmt:<10}{figures['seconds']:>9.1f}{figures['rows_per_second']:>12,.0f}"
                  f"{figures['peak_rss_mib']:>14,.0f}  drifted {summary['drifted']}{quality}")


if __name__ == "__main__":
    sys.exit(main())
