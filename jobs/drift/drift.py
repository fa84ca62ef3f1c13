#!/usr/bin/env python3
"""Detect data drift and model-quality change on captured inference data (SageMaker Processing job script).

The open-source stand-in for SageMaker Model Monitor: it compares what an endpoint (or a batch
transform) saw with the training split, writes Model Monitor's report files and publishes
CloudWatch metrics. It runs in AWS's scikit-learn framework image (numpy, pandas, scipy,
scikit-learn, boto3). Model-quality metrics come from the evaluation job's own functions:
upload ``evaluate.py`` beside this file (in this repository it is ``jobs/evaluation/evaluate.py``).

Contract (the root is ``$PROCESSING_ROOT``, default ``/opt/ml/processing``; offline runs point it
at a temp dir; each directory can also be given by argument):

    baseline/**/*.csv          training split: label first, no header (or --baseline-header);
                               feature names from --features a,b,... or the header, else _c0, _c1, ...
    capture/**/*.jsonl         SageMaker data-capture records (--input-format capture, the default):
                               CSV or BASE64 input, one or several rows per record
    capture/**/*.{csv,out}     or batch-transform output (--input-format batch): the feature columns
                               with the prediction appended (DataProcessing JoinSource=Input)
    ground_truth/**/*.jsonl    optional Model Monitor ground-truth records, joined on eventId
                               (capture input only); needs --problem-type: binary_classification
                               (labels 0/1, outputs positive-class scores cut at --threshold),
                               multiclass_classification (labels are class indices 0..K-1; each
                               output line is one row's class index or its vector of K class
                               scores, comma-separated, brackets allowed) or regression
    output/                    statistics.json, constraint_violations.json (Model Monitor's formats),
                               report.md, metrics.json (the CloudWatch metric data, published unless
                               --no-publish)

Rows are compared with the baseline by position (capture and batch CSV carry no header).

Per feature, an effect size (how far the distribution moved), a two-sample test (whether the move
is more than sampling noise) and, for reference, PSI:

* numeric: the Wasserstein-1 distance between baseline and current values divided by the
  baseline's standard deviation (for a pure mean shift it is the shift in standard deviations;
  variance x1.5 of a normal feature scores 0.18) and the two-sample Kolmogorov-Smirnov test. Both
  come from one merge of the baseline sample, sorted once when the baseline is profiled, with the
  sorted current sample; the p-value is scipy's Kolmogorov distribution (``stats.kstwo``) at the
  effective size n*m/(n+m), as ``ks_2samp(method="asymp")``. PSI over --bins bins cut at the
  baseline's quantiles (one bin per value when the baseline has at most --bins distinct values;
  an empty bin counts as a share of 1e-4 so PSI stays finite).
* categorical (any baseline value non-numeric, or named in --categorical a,b,...): the
  Jensen-Shannon distance (base 2, 0 to 1) between the baseline's and the window's category
  shares over the baseline's categories (the 49 most frequent one by one, rarer ones together,
  unseen values in a bin of their own) and the chi-square test of the 2 x categories table
  (categories expected fewer than 5 times pooled, the usual validity rule); PSI over the same
  bins; unseen categories are listed. A --categorical column is compared category by category
  whatever its values, never binned: numbers are written one way ("3", "3.0" and "03" are category
  "3"), so integer codes from the training CSV and from captured requests match.
* missing-value rate, baseline vs current.

Decision rule. A feature drifts when the shift is both material and significant:

    effect size >= --numeric-threshold (0.1) or --categorical-threshold (0.07)
    and   p < --ks-alpha / m   (0.01 / m)

where p is the KS p-value (numeric) or the chi-square p-value (categorical) and m is the number of
features tested: --ks-alpha is Bonferroni-adjusted, so on same-distribution data the chance that
any feature of a window is flagged is at most --ks-alpha whatever the window size; requiring the
effect size as well only lowers it. The test alone flags shifts too small to matter once windows
are large (a 0.05 sd shift is significant on most windows of 10,000 rows and on every window of
100,000); the effect size alone is noisy on small ones (on 2,000 same-distribution rows the
Wasserstein distance reaches 0.11 sd).

The thresholds, as measured by scripts/bench_drift.py (seeded windows against 200,000-row
baselines; its detection table and effect sizes are quoted in docs/benchmarks.md):

* numeric 0.1: on 10,000-row windows a 0.05 sd mean shift scores 0.03-0.07 and a 0.25 sd shift
  0.22-0.27; variance x1.5 scores 0.16-0.20 (normal), 0.18-0.21 (uniform), 0.10-0.16 (lognormal).
  0.1 lies between, so 0.25 sd and variance x1.5 are flagged and 0.05 sd is not; a 0.1 sd shift is
  the threshold itself (flagged on about half the windows). On 500 rows a 0.5 sd shift scores
  0.39-0.62 and its KS p-value is far below 0.01 / 20: flagged on every window.
* categorical 0.07: moving 10 percentage points between two categories scores 0.12-0.15 on
  10,000 rows (codes 20 % -> 10 % and 20 % -> 30 %; text 25 % -> 15 % and 15 % -> 25 %); exactly
  computed, no 10-point move between two categories scores under 0.085 (two categories of 55 and
  45 %) and a 5-point move between two 20 % categories scores 0.068, just under.
* on same-distribution windows of 10,000 rows or more no effect size came within half of its
  threshold (largest 0.47 of it; 20 features of 7 kinds, 30 text categories among them); on 500
  rows the distances are mostly noise (up to twice the threshold for the 30 categories), and there
  the test decides.

``--drift-rule either|effect|test|psi`` selects other rules: effect or test, either alone, or
PSI >= --psi-threshold alone (the only use of --psi-threshold; the former default, PSI >= 0.2 and
the test, missed 0.25 sd shifts, variance x1.5 and 10-point category moves, whose PSI is
0.05-0.16).

Violations, in Model Monitor's check types:

* baseline_drift_check      a feature drifted (rule above)
* completeness_check        missing values rose by >= --missing-increase (0.05, absolute) and a
                            one-sided two-proportion z-test gives p < --ks-alpha / m
* categorical_values_check  more than --unseen-share (0.01) of a categorical feature's present
                            values were never seen in the baseline
* data_type_check           more than --datatype-threshold (0.1) of a numeric feature's present
                            values are not numbers
* missing_column_check / extra_column_check
                            rows have fewer / more columns than the baseline has features. Without
                            feature names (--features or --baseline-header) a different column
                            count is an input error instead: positions cannot be trusted.

Bounded memory. The baseline is read in chunks and only a uniform sample of --baseline-rows
(200,000) rows is kept (bottom-k random keys, seeded; once that many are held, rows whose key cannot
enter are dropped as they are read), profiled once (numeric values sorted, 8 bytes x rows x numeric
features; category counts) and released. The current window is streamed in chunks of --chunk-rows
rows: PSI and the histograms come from counts on the baseline's bin edges, mean and standard
deviation from merged moments, category shares from counts over every row, and the Wasserstein
distance and KS use a uniform random sample (bottom-k reservoir, seeded) of --ks-sample rows
(50,000: against the 200,000-row baseline sample the KS critical distance at 0.01/20 is 0.010, a
quarter of a 0.1 sd shift's). Memory follows these sample sizes, not the input's size. Ground truth
is held in memory (one entry per record) and model quality is scored on a uniform sample of
--quality-sample joined rows (evaluate.py's bootstrap takes 100 x n memory).

CloudWatch (namespace --namespace, dimensions Endpoint=--endpoint and Stage=--stage; at most 1,000
metric data per PutMetricData call): FeatureDriftScore (the effect size above, to compare with the
thresholds; it was PSI before) and FeatureMissingRate with a Feature dimension; DriftedFeatureShare,
MissingValueRate, ConstraintViolations, Rows; with ground truth, GroundTruthRows and evaluate.py's
metrics under its names (binary: accuracy, f1, auc, ...; multiclass: accuracy, macro_f1,
weighted_f1, macro_auc, ...; regression: mse, rmse, mae, r2).

Bad input (no files, unknown record format, a column-count mismatch without names, ...) exits
non-zero with one message and writes no output files.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import glob
import importlib.util
import io
import itertools
import json
import math
import os
import re
import sys
from array import array
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

DEFAULT_ROOT = "/opt/ml/processing"
INPUT_FORMATS = ("capture", "batch", "auto")  # auto: by the files present (*.jsonl, or *.csv / *.out)
PROBLEM_TYPES = ("binary_classification", "multiclass_classification", "regression")
DRIFT_RULES = ("both", "either", "effect", "test", "psi")
EFFECT_MEASURES = {"numeric": "Wasserstein distance / baseline std", "categorical": "Jensen-Shannon distance"}
EPSILON = 1e-4  # share given to an empty bin so PSI stays finite
MAX_CATEGORY_BINS = 50  # baseline categories compared one by one (the rest share a bin)
MAX_NEW_CATEGORIES = 1_000  # unseen values counted one by one per feature (bounds memory)
MAX_METRICS_PER_CALL = 1_000  # PutMetricData's limit
BLOCK_LINES = 10_000  # JSONL lines decoded per json.loads call
OTHER, UNSEEN = "(other baseline values)", "(not in baseline)"


class DriftInputError(ValueError):
    """Input the job cannot analyse. ``main`` exits non-zero with this one message."""


@dataclass(frozen=True)
class Thresholds:
    """Every knob of the comparison (the CLI flags of the same names)."""

    numeric_threshold: float = 0.1
    categorical_threshold: float = 0.07
    ks_alpha: float = 0.01
    drift_rule: str = "both"
    psi_threshold: float = 0.2
    categorical: tuple[str, ...] = ()
    bins: int = 10
    ks_sample: int = 50_000
    missing_increase: float = 0.05
    unseen_share: float = 0.01
    datatype_threshold: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        names = self.categorical.split(",") if isinstance(self.categorical, str) else self.categorical
        object.__setattr__(self, "categorical", tuple(str(n).strip() for n in names if str(n).strip()))
        problems = [
            f"{name} (--{name.replace('_', '-')}) {value!r} {rule}"
            for name, value, ok, rule in (
                ("numeric_threshold", self.numeric_threshold, self.numeric_threshold >= 0, "must be >= 0"),
                ("categorical_threshold", self.categorical_threshold, 0 <= self.categorical_threshold <= 1,
                 "must be in [0, 1]"),
                ("ks_alpha", self.ks_alpha, 0 < self.ks_alpha <= 1, "must be in (0, 1]"),
                ("drift_rule", self.drift_rule, self.drift_rule in DRIFT_RULES, f"must be one of {DRIFT_RULES}"),
                ("psi_threshold", self.psi_threshold, self.psi_threshold >= 0, "must be >= 0"),
                ("bins", self.bins, self.bins >= 2, "must be >= 2"),
                ("ks_sample", self.ks_sample, self.ks_sample >= 10, "must be >= 10"),
                ("missing_increase", self.missing_increase, 0 <= self.missing_increase <= 1, "must be in [0, 1]"),
                ("unseen_share", self.unseen_share, 0 <= self.unseen_share <= 1, "must be in [0, 1]"),
                ("datatype_threshold", self.datatype_threshold, 0 <= self.datatype_threshold <= 1,
                 "must be in [0, 1]"),
            )
            if not ok
        ]
        if problems:
            raise DriftInputError("; ".join(problems))


@dataclass
class FeatureResult:
    """One feature's comparison. NaN where a figure is undefined (e.g. no current values)."""

    name: str
    kind: str  # "numeric" | "categorical"
    baseline_type: str  # Model Monitor's inferred_type: Integral | Fractional | String
    effect_size: float  # numeric: Wasserstein distance / baseline std; categorical: Jensen-Shannon distance
    threshold: float  # the effect-size threshold of this feature's kind
    test: str  # "ks" | "chi2"
    statistic: float  # KS distance D, or the chi-square statistic
    p_value: float
    psi: float  # population stability index over the same bins (reported, not decisive by default)
    baseline_missing_rate: float
    current_missing_rate: float
    missing_p_value: float
    non_numeric_share: float = 0.0
    unseen_share: float = 0.0
    new_categories: list[str] = field(default_factory=list)
    drifted: bool = False
    statistics: dict[str, Any] = field(default_factory=dict)  # Model Monitor feature statistics
    histogram: list[tuple[str, float, float]] = field(default_factory=list)  # (bin, baseline share, current share)
    moments: dict[str, float] = field(default_factory=dict)  # numeric: baseline/current mean and std

    @property
    def measure(self) -> str:
        return EFFECT_MEASURES[self.kind]


@dataclass
class Result:
    """What :func:`compare` found in one window."""

    rows: int
    features: list[FeatureResult]
    missing_columns: list[str]
    extra_columns: list[str]
    violations: list[dict[str, str]]
    thresholds: Thresholds
    adjusted_alpha: float
    tested: int

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0

    @property
    def missing_rate(self) -> float:
        """Share of missing cells over the compared features."""
        return float(np.mean([f.current_missing_rate for f in self.features])) if self.features else math.nan

    def statistics(self) -> dict[str, Any]:
        """The current window in Model Monitor's statistics.json layout."""
        return {"version": 0, "dataset": {"item_count": self.rows}, "features": [f.statistics for f in self.features]}

    def constraint_violations(self) -> dict[str, Any]:
        """Model Monitor's constraint_violations.json layout."""
        return {"violations": self.violations}


# ---------------------------------------------------------------------------
# Baseline profile
# ---------------------------------------------------------------------------


@dataclass
class _Profile:
    name: str
    kind: str
    inferred_type: str
    rows: int
    missing: int
    counts: np.ndarray  # baseline count per bin
    edges: np.ndarray | None = None  # numeric: inner bin edges (bin i holds edges[i-1] <= x < edges[i])
    values: np.ndarray | None = None  # numeric: baseline values, sorted once (KS and Wasserstein)
    mean: float = math.nan
    std: float = math.nan
    bins: dict[str, int] | None = None  # categorical: value -> bin
    labels: list[str] = field(default_factory=list)  # categorical: bin labels
    declared: bool = False  # categorical by --categorical: numbers compared as canonical text ("3.0" is "3")


@dataclass
class Baseline:
    """A baseline profiled once: per numeric feature its values sorted, its bin edges and moments;
    per categorical feature its category counts. :func:`compare` takes it in place of a frame, so
    many windows can be compared with one baseline without profiling it again."""

    profiles: list[_Profile]
    rows: int
    bins: int
    categorical: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.profiles]


def prepare(baseline: pd.DataFrame, *, bins: int = Thresholds.bins, categorical: Iterable[str] = ()) -> Baseline:
    """Profile ``baseline`` (features only, named); ``categorical`` names the columns compared
    category by category whatever their values."""
    th = Thresholds(bins=bins, categorical=tuple(categorical))
    if baseline.shape[1] == 0 or len(baseline) == 0:
        raise DriftInputError("the baseline holds no features or no rows")
    names = [str(c) for c in baseline.columns]
    if len(set(names)) != len(names):
        raise DriftInputError(f"duplicate feature names in the baseline: {names}")
    unknown = [n for n in th.categorical if n not in names]
    if unknown:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise DriftInputError(f"--categorical names {', '.join(map(repr, unknown))}, not among the baseline's "
                              f"features ({shown})")
    profiles = [_profile(name, baseline.iloc[:, i], th.bins, name in th.categorical) for i, name in enumerate(names)]
    return Baseline(profiles, len(baseline), th.bins, th.categorical)


def _numeric(series: pd.Series) -> pd.Series | None:
    """``series`` as floats when every present value is a number, else None."""
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    head = series.dropna().head(100)  # text columns usually fail here, before parsing them whole
    if pd.to_numeric(head, errors="coerce").isna().any():
        return None
    parsed = pd.to_numeric(series, errors="coerce")
    return parsed.astype(float) if (parsed.isna() == series.isna()).all() else None


def _canonical(value: str) -> str:
    """A declared categorical value as text, numbers written one way: "3", "3.0", " 3" and "03" are
    category "3"; "0.50" is "0.5". Integer text keeps every digit (codes longer than a float holds)."""
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if digits.isdigit():
        return str(int(text))
    try:
        number = float(text)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value
    return str(int(number)) if number.is_integer() else repr(number)


def _category_counts(present: pd.Series, declared: bool) -> pd.Series:
    """Count per category (text) of a column's present values, most frequent first."""
    if declared:  # counted as they come, then each distinct value written one way (cheap: few values)
        counts = present.value_counts()
        if len(counts):
            canonical = counts.index.map(lambda value: _canonical(str(value)))
            counts = counts.groupby(canonical).sum().sort_values(ascending=False, kind="stable")
        return counts
    if not pd.api.types.is_string_dtype(present) or pd.api.types.is_object_dtype(present):
        present = present.astype(str)
    return present.value_counts()


def _profile(name: str, series: pd.Series, bins: int, declared: bool = False) -> _Profile:
    rows = len(series)
    numbers = None if declared else _numeric(series)
    if numbers is not None:
        values = numbers.to_numpy()
        missing = int(np.isnan(values).sum())
        values = np.sort(values[np.isfinite(values)])
        edges = _bin_edges(values, bins)
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        integral = bool(len(values)) and bool(np.all(np.floor(values) == values))
        mean, std = (float(values.mean()), float(values.std())) if len(values) else (math.nan, math.nan)
        return _Profile(name, "numeric", "Integral" if integral else "Fractional", rows, missing, counts,
                        edges=edges, values=values, mean=mean, std=std)
    missing = int(series.isna().sum())
    frequencies = _category_counts(series.dropna(), declared)
    top = list(frequencies.index[: MAX_CATEGORY_BINS - 1])
    labels = top + ([OTHER] if len(frequencies) > len(top) else []) + [UNSEEN]
    other = len(top)  # the OTHER bin, when there is one
    value_bins = {value: min(i, other) for i, value in enumerate(frequencies.index)}
    counts = np.zeros(len(labels), dtype=np.int64)
    np.add.at(counts, [value_bins[v] for v in frequencies.index], frequencies.to_numpy())
    return _Profile(name, "categorical", "String", rows, missing, counts, bins=value_bins, labels=labels,
                    declared=declared)


def _bin_edges(ordered: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges of sorted ``ordered``: with at most ``bins`` distinct values, one bin per
    value (ties never merge two values); else distinct inner quantiles (numpy's default linear
    interpolation) cutting it into ``bins`` equal-count bins (ties merge bins)."""
    if not len(ordered):
        return np.empty(0)
    distinct = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
    if len(distinct) <= bins:
        return distinct[1:]
    position = np.arange(1, bins) / bins * (len(ordered) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(ordered) - 1)
    return np.unique(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


# ---------------------------------------------------------------------------
# Effect sizes and tests
# ---------------------------------------------------------------------------


def distances(baseline: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(Wasserstein-1 distance, Kolmogorov-Smirnov distance D) of two sorted samples, in one merge:
    the baseline is not sorted again. Both are integrals/suprema of |F_baseline - F_current| over
    the merged values; ties (a gap of zero) add nothing to the integral and are skipped for D,
    which is read after each complete run of equal values."""
    n, m = len(baseline), len(current)
    position = np.searchsorted(baseline, current, side="right")
    merged = np.insert(baseline, position, current)  # sorted: ``current`` goes in after equal baseline values
    from_current = np.zeros(n + m, dtype=bool)
    from_current[position + np.arange(m)] = True
    current_cdf = np.cumsum(from_current)
    baseline_cdf = np.arange(1, n + m + 1) - current_cdf
    gap = np.diff(merged)
    difference = np.abs(baseline_cdf[:-1] / n - current_cdf[:-1] / m)
    wasserstein = float(np.dot(difference, gap))
    steps = difference[gap > 0]
    return wasserstein, float(steps.max()) if len(steps) else 0.0


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """Two-sided two-sample KS p-value: scipy's ``ks_2samp(method="asymp")``, i.e. the Kolmogorov
    distribution (``scipy.stats.kstwo``) at the effective size n*m/(n+m). Conservative with ties."""
    return float(stats.kstwo.sf(statistic, max(1, round(n * m / (n + m)))))


def chi_square(baseline: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of the 2 x categories count table (scipy's
    ``chi2_contingency``). Categories expected fewer than 5 times in either row are pooled into one
    (and that into the smallest other category while it is still that sparse), the usual validity
    rule: sparse categories would otherwise make the asymptotic p-value too small."""
    table = np.vstack([baseline, current]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    expected = lambda t: np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()  # noqa: E731
    rare = expected(table).min(axis=0) < 5
    if rare.any() and table.shape[1] > 1:
        table = np.hstack([table[:, ~rare], table[:, rare].sum(axis=1, keepdims=True)])
        if table.shape[1] > 1 and expected(table)[:, -1].min() < 5:
            smallest = int(np.argmin(table[:, :-1].sum(axis=0)))
            table[:, smallest] += table[:, -1]
            table = table[:, :-1]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    statistic, p_value, *_ = stats.chi2_contingency(table)
    return float(statistic), float(p_value)


def jensen_shannon(baseline: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors' shares (scipy)."""
    value = distance.jensenshannon(baseline.astype(float), current.astype(float), base=2)
    return float(value) if math.isfinite(value) else 0.0  # rounding below zero under the root


def _standardized(wasserstein: float, std: float) -> float:
    """The Wasserstein distance in baseline standard deviations (a constant baseline: 0 or inf)."""
    if std > 0:
        return wasserstein / std
    return 0.0 if wasserstein == 0 else math.inf


# ---------------------------------------------------------------------------
# Streaming accumulation over the current window
# ---------------------------------------------------------------------------


class _Reservoir:
    """Uniform sample without replacement of at most ``size`` rows of a stream: every row draws a
    random key and the ``size`` smallest keys stay (a bottom-k sample; memory O(size))."""

    def __init__(self, size: int, width: int, rng: np.random.Generator) -> None:
        self.size, self.rng = size, rng
        self.keys = np.empty(0)
        self.rows = np.empty((0, width))

    def add(self, rows: np.ndarray) -> None:
        keys = self.rng.random(len(rows))
        if len(self.keys) >= self.size:  # only rows that beat the current worst key can enter
            keep = keys < self.keys.max()
            keys, rows = keys[keep], rows[keep]
        keys, rows = np.concatenate([self.keys, keys]), np.concatenate([self.rows, rows])
        if len(keys) > self.size:
            best = np.argpartition(keys, self.size - 1)[: self.size]
            keys, rows = keys[best], rows[best]
        self.keys, self.rows = keys, rows


@dataclass
class _Alignment:
    by_name: bool
    width: int
    columns: list[Any]  # per profile: the chunk's column label (by name) or position; None if absent
    missing: list[str]
    extra: list[str]


def _align(names: list[str], chunk: pd.DataFrame) -> _Alignment:
    labels = [str(c) for c in chunk.columns]
    if set(labels) & set(names):  # named columns (the API with DataFrames): match names
        columns = [chunk.columns[labels.index(n)] if n in labels else None for n in names]
        missing = [n for n, c in zip(names, columns) if c is None]
        extra = [label for label in labels if label not in names]
        return _Alignment(True, chunk.shape[1], columns, missing, extra)
    width = chunk.shape[1]
    columns = [i if i < width else None for i in range(len(names))]
    return _Alignment(False, width, columns, names[width:], [f"_c{i}" for i in range(len(names), width)])


def _floats(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(missing mask, numbers) of a column: NaN where missing, non-numeric or infinite (never a
    view of the input)."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        absent = np.isnan(values)
    else:
        absent = series.isna().to_numpy()
        values = (np.full(len(series), np.nan) if pd.api.types.is_bool_dtype(series)
                  else pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    return absent, np.where(np.isfinite(values), values, np.nan)


class _Window:
    """Accumulates the current window chunk by chunk; memory does not grow with its length."""

    def __init__(self, profiles: list[_Profile], alignment: _Alignment, th: Thresholds) -> None:
        self.profiles, self.alignment, self.th = profiles, alignment, th
        self.rows = 0
        self.present = [(p, col) for p, col in zip(profiles, alignment.columns) if col is not None]
        self.numeric = [(p, col) for p, col in self.present if p.kind == "numeric"]
        self.categorical = [(p, col) for p, col in self.present if p.kind == "categorical"]
        k = len(self.numeric)
        self.counts = {p.name: np.zeros_like(p.counts) for p, _ in self.present}
        self.missing = dict.fromkeys((p.name for p, _ in self.present), 0)
        self.non_numeric = np.zeros(k, dtype=np.int64)
        self.n, self.mean, self.m2 = np.zeros(k, dtype=np.int64), np.zeros(k), np.zeros(k)
        self.total, self.low, self.high = np.zeros(k), np.full(k, np.inf), np.full(k, -np.inf)
        self.integral = np.ones(k, dtype=bool)
        self.reservoir = _Reservoir(th.ks_sample, k, np.random.default_rng(th.seed))
        self.new: dict[str, dict[str, int]] = {p.name: {} for p, _ in self.categorical}

    def add(self, chunk: pd.DataFrame) -> None:
        a = self.alignment
        if a.by_name:
            absent = [p.name for p, col in self.present if col not in chunk.columns]
            if absent:
                raise DriftInputError(f"a later part of the current data lacks column(s) {', '.join(absent)}")
        elif chunk.shape[1] != a.width:
            raise DriftInputError(f"the current data changes width: {a.width} columns, then {chunk.shape[1]}")
        if not len(chunk):
            return
        self.rows += len(chunk)
        get = (lambda col: chunk[col]) if a.by_name else (lambda col: chunk.iloc[:, col])
        self._add_numeric(get, len(chunk))
        self._add_categorical(get)

    def _add_numeric(self, get: Callable[[Any], pd.Series], rows: int) -> None:
        if not self.numeric:
            return
        matrix = np.empty((rows, len(self.numeric)))
        for j, (profile, col) in enumerate(self.numeric):
            series = get(col)
            absent, values = _floats(series)
            matrix[:, j] = values
            ok = ~np.isnan(values)
            self.missing[profile.name] += int(absent.sum())
            self.non_numeric[j] += int((~ok & ~absent).sum())
            x = values[ok]
            self.counts[profile.name] += np.bincount(
                np.searchsorted(profile.edges, x, side="right"), minlength=len(profile.edges) + 1
            )
            if len(x):
                self._merge_moments(j, x)
        self.reservoir.add(matrix)

    def _merge_moments(self, j: int, x: np.ndarray) -> None:
        # Chan et al.'s pairwise update: stable means and variances over any number of chunks
        n_b, mean_b = len(x), float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n_a, n = int(self.n[j]), int(self.n[j]) + n_b
        delta = mean_b - self.mean[j]
        self.mean[j] += delta * n_b / n
        self.m2[j] += m2_b + delta * delta * n_a * n_b / n
        self.n[j] = n
        self.total[j] += float(x.sum())
        self.low[j], self.high[j] = min(self.low[j], float(x.min())), max(self.high[j], float(x.max()))
        self.integral[j] &= bool(np.all(np.floor(x) == x))

    def _add_categorical(self, get: Callable[[Any], pd.Series]) -> None:
        for profile, col in self.categorical:
            series = get(col)
            absent = series.isna()
            self.missing[profile.name] += int(absent.sum())
            counts, new, unseen = self.counts[profile.name], self.new[profile.name], len(profile.labels) - 1
            for value, count in _category_counts(series[~absent], profile.declared).items():
                position = profile.bins.get(value)
                if position is None:
                    position = unseen
                    if value in new or len(new) < MAX_NEW_CATEGORIES:
                        new[value] = new.get(value, 0) + int(count)
                counts[position] += int(count)

    # -- results ------------------------------------------------------------

    def result(self) -> Result:
        th, rows = self.th, self.rows
        features = [self._compare_numeric(j, p) for j, (p, _) in enumerate(self.numeric)]
        features += [self._compare_categorical(p) for p, _ in self.categorical]
        order = {p.name: i for i, p in enumerate(self.profiles)}
        features.sort(key=lambda f: order[f.name])
        tested = sum(not math.isnan(f.p_value) for f in features)
        alpha = th.ks_alpha / max(tested, 1)
        for f in features:
            material = not math.isnan(f.effect_size) and f.effect_size >= f.threshold
            significant = not math.isnan(f.p_value) and f.p_value < alpha
            f.drifted = {"both": material and significant, "either": material or significant, "effect": material,
                         "test": significant, "psi": not math.isnan(f.psi) and f.psi >= th.psi_threshold}[th.drift_rule]
        violations = self._violations(features, alpha, tested)
        return Result(rows, features, self.alignment.missing, self.alignment.extra, violations, th, alpha, tested)

    def _missing_rates(self, p: _Profile) -> tuple[float, float, float]:
        base, cur = p.missing / p.rows if p.rows else 0.0, self.missing[p.name] / self.rows
        pooled = (p.missing + self.missing[p.name]) / (p.rows + self.rows)
        se = math.sqrt(pooled * (1 - pooled) * (1 / max(p.rows, 1) + 1 / self.rows))
        # one-sided normal tail, P(Z >= z) = erfc(z / sqrt 2) / 2 (scipy's norm.sf, without its overhead)
        p_value = 0.5 * math.erfc((cur - base) / se / math.sqrt(2)) if se > 0 else (1.0 if cur <= base else 0.0)
        return base, cur, p_value

    def _compare_numeric(self, j: int, p: _Profile) -> FeatureResult:
        current = self.counts[p.name]
        sample = self.reservoir.rows[:, j]
        sample = np.sort(sample[~np.isnan(sample)])
        if len(sample) and len(p.values):
            wasserstein, statistic = distances(p.values, sample)
            effect, p_value = _standardized(wasserstein, p.std), ks_p_value(statistic, len(p.values), len(sample))
        else:
            effect = statistic = p_value = math.nan
        base_missing, cur_missing, missing_p = self._missing_rates(p)
        present = self.rows - self.missing[p.name]
        non_numeric = int(self.non_numeric[j]) / present if present else 0.0
        n = int(self.n[j])
        return FeatureResult(
            p.name, "numeric", p.inferred_type, effect, self.th.numeric_threshold, "ks", statistic, p_value,
            _psi(p.counts, current), base_missing, cur_missing, missing_p, non_numeric_share=non_numeric,
            statistics=self._numeric_statistics(j, p, non_numeric),
            histogram=_histogram(_bin_labels(p.edges), p.counts, current),
            moments={"baseline_mean": p.mean, "baseline_std": p.std,
                     "mean": float(self.mean[j]) if n else math.nan,
                     "std": math.sqrt(self.m2[j] / n) if n else math.nan},
        )

    def _numeric_statistics(self, j: int, p: _Profile, non_numeric: float) -> dict[str, Any]:
        n = int(self.n[j])
        common = {"num_present": self.rows - self.missing[p.name], "num_missing": self.missing[p.name]}
        if n == 0 or non_numeric > self.th.datatype_threshold:
            return {"name": p.name, "inferred_type": "String", "string_statistics": {"common": common}}
        low, high, edges = float(self.low[j]), float(self.high[j]), [float(e) for e in p.edges]
        bounds = [min(low, edges[0]) if edges else low, *edges, max(high, edges[-1]) if edges else high]
        counts = self.counts[p.name]
        return {
            "name": p.name,
            "inferred_type": "Integral" if self.integral[j] else "Fractional",
            "numerical_statistics": {
                "common": common,
                "mean": float(self.mean[j]),
                "sum": float(self.total[j]),
                "std_dev": math.sqrt(self.m2[j] / n),
                "min": low,
                "max": high,
                # the baseline's quantile bins (what PSI compares), not KLL's equal-width buckets
                "distribution": {"kll": {"buckets": [
                    {"lower_bound": lo, "upper_bound": hi, "count": int(c)}
                    for lo, hi, c in zip(bounds[:-1], bounds[1:], counts)
                ]}},
            },
        }

    def _compare_categorical(self, p: _Profile) -> FeatureResult:
        current = self.counts[p.name]
        if current.sum() == 0 or p.counts.sum() == 0:
            effect = statistic = p_value = math.nan
        else:
            effect = jensen_shannon(p.counts, current)
            statistic, p_value = chi_square(p.counts, current)
        base_missing, cur_missing, missing_p = self._missing_rates(p)
        present = int(current.sum())
        new = self.new[p.name]
        buckets = [{"value": label, "count": int(c)} for label, c in zip(p.labels[:-1], current) if c]
        buckets += [{"value": v, "count": c} for v, c in sorted(new.items(), key=lambda kv: -kv[1])[:MAX_CATEGORY_BINS]]
        statistics = {
            "name": p.name,
            "inferred_type": "String",
            "string_statistics": {
                "common": {"num_present": present, "num_missing": self.missing[p.name]},
                "distinct_count": sum(1 for c in current[:-1] if c) + len(new),
                "distribution": {"categorical": {"buckets": buckets}},
            },
        }
        return FeatureResult(
            p.name, "categorical", "String", effect, self.th.categorical_threshold, "chi2", statistic, p_value,
            _psi(p.counts, current), base_missing, cur_missing, missing_p,
            unseen_share=int(current[-1]) / present if present else 0.0,
            new_categories=[v for v, _ in sorted(new.items(), key=lambda kv: (-kv[1], kv[0]))],
            statistics=statistics, histogram=_histogram(p.labels, p.counts, current),
        )

    def _violations(self, features: list[FeatureResult], alpha: float, tested: int) -> list[dict[str, str]]:
        th, a = self.th, self.alignment
        found: list[tuple[str, str, str]] = []
        columns = f"the baseline has {len(self.profiles)} features, the current rows {a.width} columns"
        found += [(name, "missing_column_check", f"{columns}: {name!r} is missing") for name in a.missing]
        found += [(name, "extra_column_check", f"{columns}: {name!r} is not in the baseline") for name in a.extra]
        test_name = {"ks": "Kolmogorov-Smirnov", "chi2": "chi-square"}
        adjusted = f"{th.ks_alpha:g} Bonferroni-adjusted over {tested} features"
        for f in features:
            if f.non_numeric_share > th.datatype_threshold:
                found.append((f.name, "data_type_check",
                              f"baseline type {f.baseline_type}, but {f.non_numeric_share:.1%} of current values "
                              f"are not numbers (threshold {th.datatype_threshold:.1%})"))
            increase = f.current_missing_rate - f.baseline_missing_rate
            if increase >= th.missing_increase and f.missing_p_value < alpha:
                found.append((f.name, "completeness_check",
                              f"missing values {f.current_missing_rate:.1%} vs {f.baseline_missing_rate:.1%} in the "
                              f"baseline (+{increase:.1%}, threshold +{th.missing_increase:.1%}; "
                              f"p = {f.missing_p_value:.2g} < {alpha:.2g})"))
            if f.kind == "categorical" and f.unseen_share > th.unseen_share:
                shown = ", ".join(repr(v) for v in f.new_categories[:10])
                more = f" and {len(f.new_categories) - 10} more" if len(f.new_categories) > 10 else ""
                found.append((f.name, "categorical_values_check",
                              f"{f.unseen_share:.1%} of values are not in the baseline (threshold "
                              f"{th.unseen_share:.1%}): {shown}{more}"))
            if f.drifted:
                found.append((f.name, "baseline_drift_check",
                              f"{f.measure} {f.effect_size:.3f} (threshold {f.threshold:g}), {test_name[f.test]} "
                              f"p = {f.p_value:.2g} (alpha {alpha:.2g}: {adjusted}), PSI {f.psi:.3f}, "
                              f"rule {th.drift_rule!r}"))
        return [{"feature_name": n, "constraint_check_type": c, "description": d} for n, c, d in found]


def _psi(baseline: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    if baseline.sum() == 0 or current.sum() == 0:
        return math.nan
    b = np.maximum(baseline / baseline.sum(), EPSILON)
    c = np.maximum(current / current.sum(), EPSILON)
    return float(np.sum((c - b) * np.log(c / b)))


def _number_text(x: float) -> str:
    return f"{x:.3g}"


def _bin_labels(edges: np.ndarray) -> list[str]:
    """Labels of the bins cut by ``edges``: "< a", "[a, b)", ..., ">= z" (no edge: one bin)."""
    e = [_number_text(x) for x in edges]
    if not e:
        return ["all values"]
    return [f"< {e[0]}", *(f"[{a}, {b})" for a, b in zip(e[:-1], e[1:])), f">= {e[-1]}"]


def _histogram(labels: list[str], baseline: np.ndarray, current: np.ndarray) -> list[tuple[str, float, float]]:
    """(bin label, baseline share, current share) per bin."""
    b_total, c_total = max(int(baseline.sum()), 1), max(int(current.sum()), 1)
    return [(label, float(b) / b_total, float(c) / c_total) for label, b, c in zip(labels, baseline, current)]


def compare(baseline: pd.DataFrame | Baseline, current: pd.DataFrame | Iterable[pd.DataFrame],
            **thresholds: Any) -> Result:
    """Compare ``current`` (one frame or an iterable of chunks, consumed once) with ``baseline``.

    ``baseline`` holds the features only, named, or is a :func:`prepare`-d :class:`Baseline`
    (profiled with the same ``bins`` and ``categorical``). Current columns are matched by name
    when they carry baseline names, else by position. ``thresholds`` are :class:`Thresholds` fields.
    """
    th = Thresholds(**thresholds)
    if not isinstance(baseline, Baseline):
        baseline = prepare(baseline, bins=th.bins, categorical=th.categorical)
    elif (baseline.bins, baseline.categorical) != (th.bins, th.categorical):
        raise DriftInputError(f"the baseline was prepared with bins={baseline.bins}, categorical="
                              f"{baseline.categorical}; this comparison asks for {th.bins}, {th.categorical}")
    names, profiles = baseline.names, baseline.profiles
    window: _Window | None = None
    for chunk in [current] if isinstance(current, pd.DataFrame) else current:
        if window is None:
            window = _Window(profiles, _align(names, chunk), th)
        window.add(chunk)
    if window is None or window.rows == 0:
        raise DriftInputError("the current window holds no rows")
    return window.result()


# ---------------------------------------------------------------------------
# Model quality (the evaluation job's functions)
# ---------------------------------------------------------------------------


_EVALUATION_SCRIPT: list[str] = []  # --evaluation-script, when given


@functools.lru_cache(maxsize=None)
def _evaluation() -> ModuleType:
    """evaluate.py: ``--evaluation-script`` (a processing input may name the file after its
    content hash), else beside this file, else jobs/evaluation/ in this repository. Loaded by
    path, so a pip package named ``evaluate`` cannot stand in for it."""
    here = os.path.dirname(os.path.abspath(__file__))
    beside = _EVALUATION_SCRIPT[0] if _EVALUATION_SCRIPT else os.path.join(here, "evaluate.py")
    if not os.path.exists(beside) and not _EVALUATION_SCRIPT:
        try:
            from jobs.evaluation import evaluate

            return evaluate
        except ImportError:
            beside = os.path.join(os.path.dirname(here), "evaluation", "evaluate.py")
    if not os.path.exists(beside):
        raise DriftInputError(f"model-quality metrics need evaluate.py beside {os.path.basename(__file__)}")
    spec = importlib.util.spec_from_file_location("drift_evaluate", beside)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # what dataclasses and pickling look modules up by
    spec.loader.exec_module(module)
    return module


def model_quality(labels: Any, predictions: Any, problem_type: str, threshold: float = 0.5) -> dict[str, Any]:
    """evaluate.py's report (``binary_classification_metrics``, ``multiclass_classification_metrics``
    or ``regression_metrics``)."""
    evaluate = _evaluation()
    try:
        if problem_type == "binary_classification":
            return evaluate.classification_report(labels, predictions, threshold)
        if problem_type == "multiclass_classification":
            return evaluate.multiclass_report(labels, predictions)
        return evaluate.regression_report(labels, predictions)
    except ValueError as exc:
        raise DriftInputError(f"ground truth: {exc}") from None


# ---------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------


def _files(directory: str, *patterns: str) -> list[str]:
    found = {path for pattern in patterns for path in glob.glob(os.path.join(directory, "**", pattern), recursive=True)}
    return sorted(path for path in found if os.path.isfile(path))


def read_baseline(directory: str, *, header: bool = False, features: list[str] | None = None,
                  max_rows: int = 200_000, chunk_rows: int = 100_000, seed: int = 0,
                  categorical: Iterable[str] = ()) -> pd.DataFrame:
    """The training split's features (label column dropped), typed: numeric columns as floats,
    the others (and the ``categorical`` ones) as their text. Above ``max_rows`` rows, a uniform
    random sample of that many: memory follows ``max_rows``, not the files' size."""
    files = _files(directory, "*.csv")
    if not files:
        raise DriftInputError(f"no baseline CSV files under {directory}")
    # Text columns are read as raw text: type inference would turn "true" into True and, in a column
    # mixing numbers and text, "1" into 1.0, which would no longer match captured text. The first
    # rows tell which columns are text, then one pass reads every file (again only if a column's text
    # starts later).
    head = _read_head(files, header, chunk_rows)
    width = head.shape[1] - 1
    if width < 1:
        raise DriftInputError("the baseline needs a label column followed by at least one feature column")
    if features and len(features) != width:
        raise DriftInputError(f"--features names {len(features)} features but the baseline has {width} "
                              "feature columns after the label")
    names = list(features) if features else [str(c) for c in head.columns[1:]] if header else [
        f"_c{i}" for i in range(width)]
    unknown = [n for n in categorical if n not in names]
    if unknown:
        raise DriftInputError(f"--categorical names {', '.join(map(repr, unknown))}, not among the baseline's "
                              f"features ({', '.join(names[:20])}{', ...' if len(names) > 20 else ''})")
    text = {i for i, n in enumerate(names) if n in set(categorical) or _numeric(head.iloc[:, i + 1]) is None}
    while True:
        frame = _read_baseline_pass(files, header, {i + 1: str for i in text}, max_rows, chunk_rows, seed,
                                    width + 1)
        late = {i for i in range(width) if i not in text and _numeric(frame.iloc[:, i]) is None}
        if not late:
            break
        text |= late
    frame.columns = names
    for i, column in enumerate(names):
        if i not in text:
            frame[column] = _numeric(frame[column])
    return frame


def _read_head(files: list[str], header: bool, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of the first baseline file that holds any, types inferred."""
    for path in files:
        try:
            head = pd.read_csv(path, header=0 if header else None, nrows=rows)
        except pd.errors.EmptyDataError:
            continue
        except pd.errors.ParserError as exc:
            raise DriftInputError(f"baseline file {path} is not valid CSV: {exc}") from None
        if len(head):
            return head
    raise DriftInputError(f"the {len(files)} baseline CSV files ({files[0]}, ...) hold no rows")


def _read_baseline_pass(files: list[str], header: bool, dtype: dict[int, Any], max_rows: int, chunk_rows: int,
                        seed: int, width: int) -> pd.DataFrame:
    """The feature columns of a uniform sample of ``max_rows`` rows (all rows if fewer): every row
    draws a key and the ``max_rows`` smallest keys stay (bottom-k); once that many are held, a
    chunk's rows whose key cannot enter are dropped as they are read."""
    rng = np.random.default_rng(seed)  # same seed, same sample on every pass
    parts: list[pd.DataFrame] = []
    keys: list[np.ndarray] = []
    total, read, bound = 0, 0, math.inf
    for path in files:
        try:
            for chunk in pd.read_csv(path, header=0 if header else None, dtype=dtype or None, chunksize=chunk_rows):
                if chunk.shape[1] != width:
                    raise DriftInputError(f"baseline file {path} has {chunk.shape[1]} columns, the first had {width}")
                key = rng.random(len(chunk))
                read += len(chunk)
                chunk = chunk.iloc[:, 1:]
                chunk.columns = range(width - 1)
                if bound < math.inf:
                    enter = key < bound
                    chunk, key = chunk[enter], key[enter]
                parts.append(chunk)
                keys.append(key)
                total += len(chunk)
                if total > 2 * max_rows:  # compact now and then: memory stays O(max_rows)
                    parts, keys = _smallest(parts, keys, max_rows)
                    total, bound = max_rows, float(keys[0].max())
        except pd.errors.EmptyDataError:
            continue
        except pd.errors.ParserError as exc:
            raise DriftInputError(f"baseline file {path} is not valid CSV: {exc}") from None
    if total > max_rows:
        parts, keys = _smallest(parts, keys, max_rows)
    frame = pd.concat(parts, ignore_index=True)
    frame.attrs["rows_read"] = read
    return frame


def _smallest(parts: list[pd.DataFrame], keys: list[np.ndarray], k: int) -> tuple[list[pd.DataFrame], list[np.ndarray]]:
    frame, key = pd.concat(parts, ignore_index=True), np.concatenate(keys)
    best = np.sort(np.argpartition(key, k - 1)[:k]) if len(key) > k else np.arange(len(key))
    return [frame.iloc[best].reset_index(drop=True)], [key[best]]


def _decode(payload: dict[str, Any], where: str) -> str:
    """A capture/ground-truth payload's text (CSV, JSON or BASE64 encoding). Data capture writes a
    body whose content type is in neither ``CsvContentTypes`` nor ``JsonContentTypes`` as BASE64
    ("CaptureContentTypeHeader", SageMaker API Reference:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CaptureContentTypeHeader.html),
    as it does Linear Learner's ``application/json`` answers when only text/csv is listed."""
    data, encoding = payload.get("data", ""), str(payload.get("encoding", "CSV")).upper()
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise DriftInputError(f"{where}: BASE64 data does not decode to UTF-8 text ({exc})") from None
    if encoding not in ("CSV", "JSON"):
        raise DriftInputError(f"{where}: encoding {encoding!r} is not supported (CSV, JSON or BASE64)")
    return data if isinstance(data, str) else json.dumps(data)


def _json_scores(text: str) -> list[Any] | None:
    """The per-row ``score`` of a JSON answer: Linear Learner's ``{"predictions": [{"score": ...,
    "predicted_label": ...}, ...]}``, or JSON Lines, one such record per row ("Linear learner
    response formats", https://docs.aws.amazon.com/sagemaker/latest/dg/LL-in-formats.html). A
    score is the regressor's value, the binary classifier's positive-class probability or the
    multiclass classifier's vector of class probabilities. None: not such an answer."""
    try:
        try:
            document = json.loads(text)
            records = document["predictions"] if isinstance(document, dict) and "predictions" in document else [document]
        except ValueError:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [record["score"] for record in records]
    except (ValueError, TypeError, KeyError):
        return None


def _values(text: str) -> list[float] | None:
    """Numbers of a prediction/label payload: one per line, or comma-separated on one line; or a
    JSON answer's scores (``_json_scores``)."""
    text = text.strip()
    if text.startswith("{"):
        scores = _json_scores(text)
        if scores is None or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores):
            return None
        return [float(v) for v in scores]
    parts = text.split("\n") if "\n" in text else text.split(",")
    try:
        return [float(part) for part in parts]
    except ValueError:
        return None


def _vectors(text: str) -> list[list[float]] | None:
    """Multiclass predictions of a capture output: one class index or one vector of class scores
    per row. The built-in XGBoost answers a real-time request with every row's vector on one line,
    ``[0.1, 0.7, 0.2],[0.3, 0.3, 0.4]`` (``",".join(map(str, preds.tolist()))``, aws/sagemaker-
    xgboost-container algorithm_mode/serve.py) and a batch transform with one per line; both are
    read, as are unbracketed lines (``0.1,0.7,0.2``), and Linear Learner's JSON answer, each
    record's ``score`` the vector (``_json_scores``)."""
    if text.lstrip().startswith("{"):
        scores = _json_scores(text.strip())
        try:
            return None if scores is None else [[float(v) for v in (s if isinstance(s, list) else [s])] for s in scores]
        except (TypeError, ValueError):
            return None
    try:
        return [[float(part) for part in vector.split(",")]
                for line in text.strip().split("\n")
                for vector in (_BRACKETED.findall(line) if "[" in line else [line])]
    except ValueError:
        return None


_BRACKETED = re.compile(r"\[([^\[\]]*)\]")


def _json_blocks(path: str) -> Iterator[tuple[list[dict[str, Any]], Callable[[int], str]]]:
    """A JSONL file in blocks of up to BLOCK_LINES records, decoded with one ``json.loads`` per
    block (per-line calls dominate the run time), with a function naming a record's file:line."""
    with open(path, encoding="utf-8") as handle:
        first = 1
        while True:
            lines = list(itertools.islice(handle, BLOCK_LINES))
            if not lines:
                return
            numbers = [first + i for i, line in enumerate(lines) if line.strip()]
            present = [lines[n - first] for n in numbers]
            where = lambda i, numbers=numbers: f"{path}:{numbers[i]}"  # noqa: E731
            try:
                records = json.loads("[" + ",".join(present) + "]")
                if len(records) != len(present) or not all(isinstance(r, dict) for r in records):
                    raise ValueError("not one JSON object per line")
            except ValueError:
                records = []
                for i, line in enumerate(present):  # slow path: find the line at fault
                    try:
                        record = json.loads(line)
                    except ValueError as exc:
                        raise DriftInputError(f"{where(i)} is not JSON ({exc})") from None
                    if not isinstance(record, dict):
                        raise DriftInputError(f"{where(i)} is not a JSON object")
                    records.append(record)
            if records:
                yield records, where
            first += len(lines)


def read_ground_truth(directory: str) -> dict[str, str]:
    """eventId -> ground-truth text, from Model Monitor ground-truth JSONL files."""
    truth: dict[str, str] = {}
    for path in _files(directory, "*.jsonl"):
        for records, where in _json_blocks(path):
            for i, record in enumerate(records):
                try:
                    truth[str(record["eventMetadata"]["eventId"])] = _decode(record["groundTruthData"], where(i))
                except (KeyError, TypeError) as exc:
                    raise DriftInputError(f"{where(i)} is not a Model Monitor ground-truth record (no {exc})") from None
    return truth


class CaptureReader:
    """Data-capture JSONL as feature chunks (one row per CSV line of each record's input).

    Records whose eventId has ground truth are paired as they stream: their output's predictions
    with the ground-truth values, which must be as many (one per input row). With ``vectors``
    (multiclass) each output line is one row's prediction, a class index or a vector of class
    scores; every paired row must have the width of the first (``width``).
    """

    def __init__(self, files: list[str], *, chunk_rows: int, dtype: dict[int, Any],
                 ground_truth: dict[str, str] | None = None, vectors: bool = False) -> None:
        self.files, self.chunk_rows, self.dtype = files, chunk_rows, dtype
        self.ground_truth = dict(ground_truth or {})
        self.records, self.first_time, self.last_time = 0, None, None
        self.labels, self.predictions = array("d"), array("d")
        self.unpaired = 0
        self.vectors, self.width = vectors, 1

    def __iter__(self) -> Iterator[pd.DataFrame]:
        texts: list[str] = []
        rows = 0
        for path in self.files:
            for records, where in _json_blocks(path):
                block = self._inputs(records, where)
                texts += block
                rows += len(block) + sum(text.count("\n") for text in block)
                self._metadata(records, where)
                if rows >= self.chunk_rows:
                    yield self._frame(texts, path)
                    texts, rows = [], 0
        if texts:
            yield self._frame(texts, self.files[-1])

    def _inputs(self, records: list[dict[str, Any]], where: Callable[[int], str]) -> list[str]:
        self.records += len(records)
        try:  # fast path: plain CSV capture, the usual case
            payloads = [record["captureData"]["endpointInput"] for record in records]
            if all(p.get("encoding") == "CSV" and p.get("observedContentType", "text/csv").startswith("text/csv")
                   for p in payloads):
                return [p.get("data", "") for p in payloads]
        except (KeyError, TypeError, AttributeError):
            pass
        return [self._input(record, where(i)) for i, record in enumerate(records)]

    @staticmethod
    def _input(record: dict[str, Any], where: str) -> str:
        try:
            payload = record["captureData"]["endpointInput"]
            content_type = str(payload.get("observedContentType", "text/csv"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise DriftInputError(f"{where} is not a SageMaker data-capture record (no {exc})") from None
        if not content_type.startswith("text/csv"):
            raise DriftInputError(f"{where}: input content type {content_type!r} is not supported (text/csv only)")
        return _decode(payload, where)

    def _metadata(self, records: list[dict[str, Any]], where: Callable[[int], str]) -> None:
        """Inference-time range; ground-truth pairs for records whose eventId has ground truth."""
        metadata = [r.get("eventMetadata") for r in records]
        if not all(isinstance(m, dict) for m in metadata):
            metadata = [m if isinstance(m, dict) else {} for m in metadata]
        moments = [m for m in (m.get("inferenceTime") for m in metadata) if isinstance(m, str)]
        if moments:
            self.first_time = min([self.first_time or moments[0], *moments])
            self.last_time = max([self.last_time or moments[0], *moments])
        if not self.ground_truth:
            return
        truth = self.ground_truth
        for i in [i for i, m in enumerate(metadata) if str(m.get("eventId")) in truth]:
            labels = _values(truth.pop(str(metadata[i]["eventId"])))
            output = records[i]["captureData"].get("endpointOutput") or {}
            parse = _vectors if self.vectors else _values
            try:
                predictions = parse(_decode(output, where(i))) if output.get("data") else None
            except DriftInputError:  # e.g. BASE64 that is not text: counted as not paired, drift still reported
                predictions = None
            if labels is None or predictions is None or len(labels) != len(predictions) or not self._width_ok(
                    predictions):
                self.unpaired += 1
                continue
            self.labels.extend(labels)
            if self.vectors:
                for vector in predictions:
                    self.predictions.extend(vector)
            else:
                self.predictions.extend(predictions)

    def _width_ok(self, predictions: list[Any]) -> bool:
        """Single values always; vectors when all have the width of the first paired ones."""
        if not self.vectors:
            return True
        widths = {len(vector) for vector in predictions}
        if len(widths) != 1:
            return False
        if not self.labels:  # the first paired record sets the width
            self.width = widths.pop()
            return True
        return widths == {self.width}

    def _frame(self, texts: list[str], path: str) -> pd.DataFrame:
        try:
            return pd.read_csv(io.StringIO("\n".join(texts)), header=None, dtype=self.dtype)
        except pd.errors.ParserError as exc:
            raise DriftInputError(f"captured rows near {path} do not have one column count: {exc}") from None


def read_batch(files: list[str], *, chunk_rows: int, dtype: dict[int, Any]) -> Iterator[pd.DataFrame]:
    """Batch-transform output (features, then the prediction) as feature chunks."""
    for path in files:
        try:
            for chunk in pd.read_csv(path, header=None, dtype=dtype, chunksize=chunk_rows):
                if chunk.shape[1] < 2:
                    raise DriftInputError(f"{path} has one column: run the transform with DataProcessing "
                                          "JoinSource=Input so its output holds the features")
                yield chunk.iloc[:, :-1]
        except pd.errors.EmptyDataError:
            continue
        except pd.errors.ParserError as exc:
            raise DriftInputError(f"{path} is not valid CSV: {exc}") from None


# ---------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------


def metric_data(result: Result, quality: dict[str, float] | None, *, endpoint: str | None, stage: str | None,
                timestamp: datetime, joined_rows: int | None = None) -> list[dict[str, Any]]:
    """CloudWatch MetricData: drift score (the effect size) and missing rate per Feature, share of
    drifted features, overall missing rate, violation and row counts, model-quality metrics.
    Undefined and infinite figures (CloudWatch takes neither) are left out."""
    dims = [{"Name": n, "Value": v} for n, v in (("Endpoint", endpoint), ("Stage", stage)) if v]

    def datum(name: str, value: float, unit: str = "None", feature: str | None = None) -> dict[str, Any]:
        extra = [{"Name": "Feature", "Value": feature}] if feature is not None else []
        return {"MetricName": name, "Dimensions": dims + extra, "Timestamp": timestamp, "Value": float(value),
                "Unit": unit}

    data = [datum("FeatureDriftScore", f.effect_size, feature=f.name) for f in result.features]
    data += [datum("FeatureMissingRate", f.current_missing_rate, feature=f.name) for f in result.features]
    data += [datum("DriftedFeatureShare", result.drifted_share), datum("MissingValueRate", result.missing_rate),
             datum("ConstraintViolations", len(result.violations), "Count"), datum("Rows", result.rows, "Count")]
    if joined_rows is not None:
        data.append(datum("GroundTruthRows", joined_rows, "Count"))
    data += [datum(name, value) for name, value in (quality or {}).items() if not math.isnan(value)]
    return [d for d in data if math.isfinite(d["Value"])]


def publish(data: list[dict[str, Any]], namespace: str, client: Any = None) -> int:
    """PutMetricData in batches of at most 1,000 metric data; returns the number of calls."""
    if client is None:
        import boto3  # only when publishing: offline runs need no AWS SDK

        client = boto3.client("cloudwatch", region_name=os.environ.get("AWS_REGION") or None)
    calls = 0
    for start in range(0, len(data), MAX_METRICS_PER_CALL):
        client.put_metric_data(Namespace=namespace, MetricData=data[start:start + MAX_METRICS_PER_CALL])
        calls += 1
    return calls


def _number(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2g}"


BAR_WIDTH = 20
EIGHTHS = " ▏▎▍▌▋▊▉"
HISTOGRAM_ROWS = 12  # categorical: the categories that changed most, the rest summed


def _bar(share: float, scale: float) -> str:
    """``share`` as a bar of unicode blocks, ``scale`` (the largest share shown) filling BAR_WIDTH."""
    eighths = round(share / scale * BAR_WIDTH * 8) if scale > 0 else 0
    full, rest = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[rest] if rest else "")


def _histogram_text(f: FeatureResult) -> list[str]:
    """The feature's baseline and current shares per bin (numeric: the baseline's quantile bins;
    categorical: its categories) as text bars, in a code block."""
    rows = [r for r in f.histogram if f.kind == "numeric" or r[1] or r[2]]  # categories seen on either side
    if f.kind == "categorical" and len(rows) > HISTOGRAM_ROWS:
        rows.sort(key=lambda r: -abs(r[2] - r[1]))
        rest = rows[HISTOGRAM_ROWS - 1:]
        rows = rows[:HISTOGRAM_ROWS - 1] + [(f"({len(rest)} more)", sum(r[1] for r in rest), sum(r[2] for r in rest))]
    scale = max((max(b, c) for _, b, c in rows), default=0.0)
    width = max([len("bin")] + [len(label) for label, _, _ in rows])
    lines = ["```", f"{'bin':<{width}}  {'baseline':<{BAR_WIDTH + 8}}  current"]
    lines += [f"{label:<{width}}  {b:>6.1%} {_bar(b, scale):<{BAR_WIDTH}}  {c:>6.1%} {_bar(c, scale)}".rstrip()
              for label, b, c in rows]
    return lines + ["```"]


def _drift_words(f: FeatureResult, alpha: float, tested: int, th: Thresholds) -> str:
    """One feature's drift in plain words: by how much, against which threshold, how significant."""
    test = {"ks": "Kolmogorov-Smirnov", "chi2": "chi-square"}[f.test]
    significance = (f"{test} p = {_p(f.p_value)} against the corrected alpha {alpha:.2g} "
                    f"({th.ks_alpha:g} / {tested} features)")
    if f.kind == "numeric":
        m = f.moments
        size = (f"its distribution moved by {f.effect_size:.2f} baseline standard deviations (Wasserstein "
                f"distance / baseline std; threshold {f.threshold:g})")
        detail = (f"Mean {_number_text(m['baseline_mean'])} → {_number_text(m['mean'])}, standard deviation "
                  f"{_number_text(m['baseline_std'])} → {_number_text(m['std'])}; PSI {_number(f.psi)}.")
    else:
        label, b, c = max(f.histogram, key=lambda r: abs(r[2] - r[1]))
        size = (f"its category shares changed by a Jensen-Shannon distance of {f.effect_size:.3f} (threshold "
                f"{f.threshold:g})")
        detail = f"Largest change: {label!r} {b:.1%} → {c:.1%}; PSI {_number(f.psi)}."
    return f"**{f.name}** ({f.kind}): {size}; {significance}. {detail}"


def report_markdown(result: Result, source: dict[str, Any], quality: dict[str, Any] | None) -> str:
    th, alpha = result.thresholds, result.adjusted_alpha
    effect = (f"its effect size reaches its threshold (numeric: Wasserstein distance / baseline standard deviation "
              f">= {th.numeric_threshold:g}; categorical: Jensen-Shannon distance >= {th.categorical_threshold:g})")
    test = f"its test's p-value is below {alpha:.2g}"
    rule = {"both": f"{effect} **and** {test}", "either": f"{effect} **or** {test}", "effect": effect,
            "test": test, "psi": f"its PSI >= {th.psi_threshold:g}"}[th.drift_rule]
    drifted = [f for f in result.features if f.drifted]
    verdict = "Drift detected" if drifted else "No drift"
    lines = [
        "# Drift report",
        "",
        f"- Current window: {result.rows:,} rows ({source.get('description', '')})",
        f"- Baseline: {source.get('baseline_rows', 0):,} rows"
        + (f" (a uniform sample of {source['baseline_sample']:,} compared)"
           if source.get("baseline_sample", 0) < source.get("baseline_rows", 0) else "")
        + f", {len(result.features) + len(result.missing_columns)} features",
        f"- Rule: a feature drifts when {rule} (alpha {th.ks_alpha:g} Bonferroni-adjusted over {result.tested} "
        f"tested features; Kolmogorov-Smirnov for numeric features on a sample of up to {th.ks_sample:,} rows, "
        "chi-square for categorical ones)",
        "",
        f"**{verdict}: {len(drifted)} of {len(result.features)} features drifted "
        f"({result.drifted_share:.0%}); constraint violations: {len(result.violations)}.**",
    ]
    if drifted:
        lines += ["", "## Drifted features"]
        for f in drifted:
            lines += ["", _drift_words(f, alpha, result.tested, th), ""] + _histogram_text(f)
    lines += [
        "",
        "## All features",
        "",
        "| Feature | Type | Effect size | Threshold | Test | p-value | PSI | Missing (baseline → current) | Drift |",
        "|---|---|---:|---:|---|---:|---:|---|---|",
    ]
    for f in result.features:
        missing = f"{f.baseline_missing_rate:.1%} → {f.current_missing_rate:.1%}"
        lines.append(f"| {f.name.replace('|', '&#124;')} | {f.kind} | {_number(f.effect_size)} | {f.threshold:g} | "
                     f"{f.test} | {_p(f.p_value)} | {_number(f.psi)} | {missing} | {'**yes**' if f.drifted else ''} |")
    lines += ["", "Effect size: numeric, the Wasserstein distance in baseline standard deviations; categorical, the "
              "Jensen-Shannon distance (base 2) of the category shares. PSI over the same bins, for reference."]
    lines += ["", "## Constraint violations", ""]
    lines += [f"- `{v['feature_name']}` {v['constraint_check_type']}: {v['description']}" for v in result.violations]
    lines += ["None."] if not result.violations else []
    unseen = [f for f in result.features if f.new_categories]
    if unseen:
        lines += ["", "## Values not in the baseline", ""]
        lines += [f"- `{f.name}`: {f.unseen_share:.2%} of values; "
                  f"{', '.join(repr(v) for v in f.new_categories[:20])}"
                  f"{' ...' if len(f.new_categories) > 20 else ''}" for f in unseen]
    if "quality_description" in source:
        lines += ["", "## Model quality", "", source["quality_description"]]
    if quality is not None:
        (section,) = (v for k, v in quality.items() if k.endswith("_metrics"))
        lines += ["", "| Metric | Value | Std. dev. (bootstrap) |", "|---|---:|---:|"]
        for name, entry in section.items():
            if isinstance(entry, dict) and "value" in entry:
                value, std = entry["value"], entry["standard_deviation"]
                lines.append(f"| {name} | {value if isinstance(value, str) else _number(value, 4)} | "
                             f"{std if isinstance(std, str) else _number(std, 4)} |")
    return "\n".join(lines) + "\n"


def write_outputs(output_dir: str, result: Result, source: dict[str, Any], quality: dict[str, Any] | None,
                  data: list[dict[str, Any]], namespace: str | None) -> None:
    os.makedirs(output_dir, exist_ok=True)
    statistics = result.statistics()
    statistics.update(quality or {})  # Model Monitor's model-quality statistics carry the same section
    documents = {
        "statistics.json": json.dumps(statistics, indent=2),
        "constraint_violations.json": json.dumps(result.constraint_violations(), indent=2),
        "metrics.json": json.dumps({"Namespace": namespace, "MetricData": data}, indent=2, default=_iso),
        "report.md": report_markdown(result, source, quality),
    }
    for name, text in documents.items():
        with open(os.path.join(output_dir, name), "w", encoding="utf-8") as handle:
            handle.write(text)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ---------------------------------------------------------------------------
# Processing-job entry point
# ---------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _parser() -> argparse.ArgumentParser:
    root = os.environ.get("PROCESSING_ROOT", DEFAULT_ROOT)  # read per call: tests point it elsewhere
    d = Thresholds()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-format", choices=INPUT_FORMATS, default="capture")
    p.add_argument("--features", help="comma-separated feature names (the baseline's columns after the label)")
    p.add_argument("--baseline-header", action="store_true", help="baseline CSVs start with a header row")
    p.add_argument("--numeric-threshold", type=float, default=d.numeric_threshold,
                   help="numeric features: Wasserstein distance / baseline standard deviation")
    p.add_argument("--categorical-threshold", type=float, default=d.categorical_threshold,
                   help="categorical features: Jensen-Shannon distance (base 2) of the category shares")
    p.add_argument("--ks-alpha", type=float, default=d.ks_alpha, help="family-wise; Bonferroni over features")
    p.add_argument("--drift-rule", choices=DRIFT_RULES, default=d.drift_rule)
    p.add_argument("--psi-threshold", type=float, default=d.psi_threshold, help="decides only with --drift-rule psi")
    p.add_argument("--categorical", type=_names, default=(),
                   help="comma-separated features compared category by category (integer codes included)")
    p.add_argument("--bins", type=int, default=d.bins)
    p.add_argument("--ks-sample", type=int, default=d.ks_sample)
    p.add_argument("--missing-increase", type=float, default=d.missing_increase)
    p.add_argument("--unseen-share", type=float, default=d.unseen_share)
    p.add_argument("--datatype-threshold", type=float, default=d.datatype_threshold)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--problem-type", choices=PROBLEM_TYPES, help="needed with ground truth")
    p.add_argument("--threshold", type=float, default=0.5, help="positive-class score cut-off")
    p.add_argument("--quality-sample", type=int, default=50_000)
    p.add_argument("--chunk-rows", type=int, default=100_000)
    p.add_argument("--baseline-rows", type=int, default=200_000, help="uniform sample of the baseline compared")
    p.add_argument("--namespace", help="CloudWatch namespace (needed unless --no-publish)")
    p.add_argument("--endpoint", help="Endpoint dimension value")
    p.add_argument("--stage", help="Stage dimension value")
    p.add_argument("--no-publish", action="store_true", help="write metrics.json but skip CloudWatch")
    p.add_argument("--baseline-dir", default=f"{root}/baseline")
    p.add_argument("--capture-dir", default=f"{root}/capture")
    p.add_argument("--ground-truth-dir", default=f"{root}/ground_truth")
    p.add_argument("--output-dir", default=f"{root}/output")
    p.add_argument("--evaluation-script", help="path of evaluate.py (default: beside this script)")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except DriftInputError as exc:
        raise SystemExit(f"drift: {exc}") from None


def _detect_format(directory: str) -> str:
    """``capture`` when the files are data-capture JSONL, ``batch`` when they are batch-transform
    output (``*.out``, or CSV); mixed or no files are an input error."""
    capture, batch = _files(directory, "*.jsonl"), _files(directory, "*.csv", "*.out")
    if capture and batch:
        raise DriftInputError(f"{directory} holds both data-capture (*.jsonl) and batch-transform (*.csv, *.out) "
                              "files: monitor one kind per run")
    if not capture and not batch:
        raise DriftInputError(f"no data-capture (*.jsonl) or batch-transform (*.csv, *.out) files under {directory}")
    return "capture" if capture else "batch"


def _run(args: argparse.Namespace) -> dict[str, Any]:
    _EVALUATION_SCRIPT[:] = [args.evaluation_script] if args.evaluation_script else []
    if not args.no_publish and not (args.namespace and args.endpoint and args.stage):
        raise DriftInputError("publishing to CloudWatch needs --namespace, --endpoint and --stage (or --no-publish)")
    thresholds = {f.name: getattr(args, f.name) for f in fields(Thresholds)}
    th = Thresholds(**thresholds)  # reject bad knobs before reading any data
    for name in ("chunk_rows", "baseline_rows", "quality_sample"):
        if getattr(args, name) < 1:
            raise DriftInputError(f"--{name.replace('_', '-')} must be >= 1")
    features = [n.strip() for n in args.features.split(",")] if args.features else None
    frame = read_baseline(args.baseline_dir, header=args.baseline_header, features=features,
                          max_rows=args.baseline_rows, chunk_rows=args.chunk_rows, seed=args.seed,
                          categorical=th.categorical)
    baseline_rows = (frame.attrs.get("rows_read", len(frame)), len(frame))
    baseline = prepare(frame, bins=th.bins, categorical=th.categorical)
    del frame  # the profile keeps what the comparison needs (sorted numeric values, category counts)
    named = bool(features or args.baseline_header)
    truth = read_ground_truth(args.ground_truth_dir) if os.path.isdir(args.ground_truth_dir) else {}
    if args.input_format == "auto":  # the monitoring workflow hands over either kind
        args.input_format = _detect_format(args.capture_dir)
        if args.input_format == "batch":
            truth = {}  # batch rows carry no eventId to join ground truth on: drift only
    if truth and args.input_format == "batch":
        raise DriftInputError("ground truth is joined on eventId, which only data-capture records carry: "
                              f"use --input-format capture or leave {args.ground_truth_dir} empty")
    if truth and not args.problem_type:
        raise DriftInputError("ground truth found: --problem-type is needed to score it")

    text = {i: str for i, p in enumerate(baseline.profiles) if p.kind == "categorical"}
    if args.input_format == "capture":
        files = _files(args.capture_dir, "*.jsonl")
        reader: Any = CaptureReader(files, chunk_rows=args.chunk_rows, dtype=text, ground_truth=truth,
                                    vectors=args.problem_type == "multiclass_classification")
        kind = "data-capture"
    else:
        files = _files(args.capture_dir, "*.csv", "*.out")
        reader = read_batch(files, chunk_rows=args.chunk_rows, dtype=text)
        kind = "batch-transform output"
    if not files:
        pattern = "*.jsonl" if args.input_format == "capture" else "*.csv or *.out"
        raise DriftInputError(f"no {kind} files ({pattern}) under {args.capture_dir}")
    chunks = iter(reader)
    first = next(chunks, None)
    if first is None:
        raise DriftInputError(f"the {len(files)} {kind} files under {args.capture_dir} hold no rows")
    if not named and first.shape[1] != len(baseline.profiles):
        raise DriftInputError(
            f"current rows have {first.shape[1]} columns but the baseline has {len(baseline.profiles)} features, and "
            "without feature names columns cannot be matched: pass --features or --baseline-header")
    result = compare(baseline, itertools.chain([first], chunks), **thresholds)

    source: dict[str, Any] = {"baseline_rows": baseline_rows[0], "baseline_sample": baseline_rows[1],
                              "description": f"{len(files)} {kind} files"}
    quality = flat = joined = None
    if isinstance(reader, CaptureReader):
        source["description"] = (f"{reader.records:,} capture records in {len(files)} files"
                                  + (f", inference time {reader.first_time} to {reader.last_time}"
                                     if reader.first_time else ""))
    if truth:
        joined = len(reader.labels)
        source["quality_description"] = (f"{joined:,} rows joined with ground truth ({len(truth):,} records; "
                                         f"{reader.unpaired:,} records not paired: value counts differ or "
                                         "are not CSV numbers)")
        if joined:
            labels, predictions = np.asarray(reader.labels), np.asarray(reader.predictions)
            if reader.width > 1:  # multiclass score vectors
                predictions = predictions.reshape(-1, reader.width)
            if joined > args.quality_sample:
                pick = np.sort(np.random.default_rng(args.seed).choice(joined, args.quality_sample, replace=False))
                labels, predictions = labels[pick], predictions[pick]
                source["quality_description"] += f"; metrics on a uniform sample of {args.quality_sample:,} rows"
            quality = model_quality(labels, predictions, args.problem_type, args.threshold)
            flat = _evaluation().flat_metrics(quality)

    data = metric_data(result, flat, endpoint=args.endpoint, stage=args.stage,
                       timestamp=datetime.now(timezone.utc), joined_rows=joined)
    write_outputs(args.output_dir, result, source, quality, data, args.namespace)
    summary = {"rows": result.rows, "features": len(result.features), "drifted": result.drifted,
               "violations": len(result.violations), **({"ground_truth_rows": joined} if truth else {}),
               **(flat or {})}
    if not args.no_publish:
        try:
            summary["put_metric_data_calls"] = publish(data, args.namespace)
        except Exception as exc:  # botocore's errors; the report files are already written
            raise SystemExit(f"drift: outputs written to {args.output_dir}, but publishing to CloudWatch "
                             f"failed: {exc}") from None
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
