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

Per feature:

* numeric: PSI over --bins bins cut at the baseline's quantiles (an empty bin counts as a share of
  1e-4 so PSI stays finite) and the two-sample Kolmogorov-Smirnov test;
* categorical (any baseline value non-numeric): PSI over the baseline's categories (the 49 most
  frequent one by one, rarer ones together, unseen values in a bin of their own) and the
  chi-square test of the 2 x categories table; unseen categories are listed;
* missing-value rate, baseline vs current.

Decision rule. A feature drifts when the shift is both material and significant:

    PSI >= --psi-threshold (0.2)   and   p < --ks-alpha / m   (0.01 / m)

where p is the KS p-value (numeric) or the chi-square p-value (categorical) and m is the number of
features tested: --ks-alpha is Bonferroni-adjusted, so on same-distribution data the chance that
any feature of a window is flagged is at most --ks-alpha whatever the window size (for chi-square,
given a few rows per category); requiring PSI as well only lowers it. PSI alone is
noisy on small windows (its expected value on identical distributions is about
(bins - 1) * (1/n_baseline + 1/n_current): 0.09 at 100 rows); a test alone flags shifts too small
to matter once windows are large. ``--drift-rule either|psi|test`` selects the classic rules
(tests/test_drift.py measures the false-positive rate of ``both`` and ``either``).

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

Bounded memory. The current window is streamed in chunks of --chunk-rows rows: PSI comes from
histogram counts on the baseline's bin edges, mean and standard deviation from merged moments, and
KS uses a uniform random sample (bottom-k reservoir, seeded) of --ks-sample rows (50,000: against a
100,000-row baseline the KS critical distance at 0.01/20 is 0.011, far below any shift that
matters, and the sample costs 8 bytes x rows x numeric features). The baseline is held
in memory, capped by a uniform sample of --baseline-rows rows. Ground truth is held in memory
(one entry per record) and model quality is scored on a uniform sample of --quality-sample joined
rows (evaluate.py's bootstrap takes 100 x n memory).

CloudWatch (namespace --namespace, dimensions Endpoint=--endpoint and Stage=--stage; at most 1,000
metric data per PutMetricData call): FeatureDriftScore (PSI) and FeatureMissingRate with a Feature
dimension; DriftedFeatureShare, MissingValueRate, ConstraintViolations, Rows; with ground truth,
GroundTruthRows and evaluate.py's metrics under its names (accuracy, f1, auc, ...; accuracy, macro_f1,
weighted_f1, macro_auc, ...; mse, rmse, ...).

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
import sys
from array import array
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
from scipy import stats

DEFAULT_ROOT = "/opt/ml/processing"
INPUT_FORMATS = ("capture", "batch")
PROBLEM_TYPES = ("binary_classification", "multiclass_classification", "regression")
DRIFT_RULES = ("both", "either", "psi", "test")
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

    psi_threshold: float = 0.2
    ks_alpha: float = 0.01
    drift_rule: str = "both"
    bins: int = 10
    ks_sample: int = 50_000
    missing_increase: float = 0.05
    unseen_share: float = 0.01
    datatype_threshold: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        problems = [
            f"{name} (--{name.replace('_', '-')}) {value!r} {rule}"
            for name, value, ok, rule in (
                ("psi_threshold", self.psi_threshold, self.psi_threshold >= 0, "must be >= 0"),
                ("ks_alpha", self.ks_alpha, 0 < self.ks_alpha <= 1, "must be in (0, 1]"),
                ("drift_rule", self.drift_rule, self.drift_rule in DRIFT_RULES, f"must be one of {DRIFT_RULES}"),
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
    psi: float
    test: str  # "ks" | "chi2"
    statistic: float
    p_value: float
    baseline_missing_rate: float
    current_missing_rate: float
    missing_p_value: float
    non_numeric_share: float = 0.0
    unseen_share: float = 0.0
    new_categories: list[str] = field(default_factory=list)
    drifted: bool = False
    statistics: dict[str, Any] = field(default_factory=dict)  # Model Monitor feature statistics


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
    values: np.ndarray | None = None  # numeric: baseline values, for KS
    bins: dict[str, int] | None = None  # categorical: value -> bin
    labels: list[str] = field(default_factory=list)  # categorical: bin labels


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


def _profile(name: str, series: pd.Series, bins: int) -> _Profile:
    rows = len(series)
    numbers = _numeric(series)
    if numbers is not None:
        values = numbers.to_numpy()
        missing = int(np.isnan(values).sum())
        values = values[np.isfinite(values)]
        edges = _quantile_edges(values, bins)
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        integral = bool(len(values)) and bool(np.all(np.floor(values) == values))
        return _Profile(name, "numeric", "Integral" if integral else "Fractional", rows, missing, counts,
                        edges=edges, values=values)
    missing = int(series.isna().sum())
    frequencies = series.dropna().astype(str).value_counts()
    top = list(frequencies.index[: MAX_CATEGORY_BINS - 1])
    labels = top + ([OTHER] if len(frequencies) > len(top) else []) + [UNSEEN]
    other = len(top)  # the OTHER bin, when there is one
    value_bins = {value: min(i, other) for i, value in enumerate(frequencies.index)}
    counts = np.zeros(len(labels), dtype=np.int64)
    np.add.at(counts, [value_bins[v] for v in frequencies.index], frequencies.to_numpy())
    return _Profile(name, "categorical", "String", rows, missing, counts, bins=value_bins, labels=labels)


def _quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Distinct inner quantiles (numpy's default linear interpolation) cutting ``values`` into
    ``bins`` equal-count bins; ties merge bins."""
    if not len(values):
        return np.empty(0)
    ordered = np.sort(values)
    position = np.arange(1, bins) / bins * (len(ordered) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(ordered) - 1)
    return np.unique(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


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
            present = series[~absent]
            if not pd.api.types.is_string_dtype(present) or pd.api.types.is_object_dtype(present):
                present = present.astype(str)
            counts, new, unseen = self.counts[profile.name], self.new[profile.name], len(profile.labels) - 1
            for value, count in present.value_counts().items():
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
            material = not math.isnan(f.psi) and f.psi >= th.psi_threshold
            significant = not math.isnan(f.p_value) and f.p_value < alpha
            f.drifted = {"both": material and significant, "either": material or significant,
                         "psi": material, "test": significant}[th.drift_rule]
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
        sample = sample[~np.isnan(sample)]
        if len(sample) and len(p.values):
            test = stats.ks_2samp(p.values, sample)
            statistic, p_value = float(test.statistic), float(test.pvalue)
        else:
            statistic = p_value = math.nan
        base_missing, cur_missing, missing_p = self._missing_rates(p)
        present = self.rows - self.missing[p.name]
        non_numeric = int(self.non_numeric[j]) / present if present else 0.0
        return FeatureResult(
            p.name, "numeric", p.inferred_type, _psi(p.counts, current), "ks", statistic, p_value,
            base_missing, cur_missing, missing_p, non_numeric_share=non_numeric,
            statistics=self._numeric_statistics(j, p, non_numeric),
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
        table = np.vstack([p.counts, current])
        table = table[:, table.sum(axis=0) > 0]
        if current.sum() == 0 or p.counts.sum() == 0:
            statistic = p_value = math.nan
        elif table.shape[1] < 2:
            statistic, p_value = 0.0, 1.0
        else:
            chi2 = stats.chi2_contingency(table)
            statistic, p_value = float(chi2[0]), float(chi2[1])
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
            p.name, "categorical", "String", _psi(p.counts, current), "chi2", statistic, p_value,
            base_missing, cur_missing, missing_p,
            unseen_share=int(current[-1]) / present if present else 0.0,
            new_categories=[v for v, _ in sorted(new.items(), key=lambda kv: (-kv[1], kv[0]))],
            statistics=statistics,
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
                              f"PSI {f.psi:.3f} (threshold {th.psi_threshold:g}), {test_name[f.test]} "
                              f"p = {f.p_value:.2g} (alpha {alpha:.2g}: {adjusted}), rule {th.drift_rule!r}"))
        return [{"feature_name": n, "constraint_check_type": c, "description": d} for n, c, d in found]


def _psi(baseline: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    if baseline.sum() == 0 or current.sum() == 0:
        return math.nan
    b = np.maximum(baseline / baseline.sum(), EPSILON)
    c = np.maximum(current / current.sum(), EPSILON)
    return float(np.sum((c - b) * np.log(c / b)))


def compare(baseline: pd.DataFrame, current: pd.DataFrame | Iterable[pd.DataFrame], **thresholds: Any) -> Result:
    """Compare ``current`` (one frame or an iterable of chunks, consumed once) with ``baseline``.

    ``baseline`` holds the features only, named. Current columns are matched by name when they
    carry baseline names, else by position. ``thresholds`` are :class:`Thresholds` fields.
    """
    th = Thresholds(**thresholds)
    if baseline.shape[1] == 0 or len(baseline) == 0:
        raise DriftInputError("the baseline holds no features or no rows")
    names = [str(c) for c in baseline.columns]
    if len(set(names)) != len(names):
        raise DriftInputError(f"duplicate feature names in the baseline: {names}")
    profiles = [_profile(name, baseline.iloc[:, i], th.bins) for i, name in enumerate(names)]
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
                  max_rows: int = 1_000_000, chunk_rows: int = 100_000, seed: int = 0) -> pd.DataFrame:
    """The training split's features (label column dropped), typed: numeric columns as floats,
    the others as their text. Above ``max_rows`` rows, a uniform random sample of that many."""
    files = _files(directory, "*.csv")
    if not files:
        raise DriftInputError(f"no baseline CSV files under {directory}")
    frame, header_names = _read_baseline_pass(files, header, {}, max_rows, chunk_rows, seed)
    # Text columns are read again as raw text: type inference would turn "true" into True and,
    # in a column mixing numbers and text, "1" into 1.0, which would no longer match captured text.
    text = [i for i, column in enumerate(frame.columns) if _numeric(frame[column]) is None]
    if text:
        frame, _ = _read_baseline_pass(files, header, {i + 1: str for i in text}, max_rows, chunk_rows, seed)
    width = frame.shape[1]
    if width == 0:
        raise DriftInputError("the baseline needs a label column followed by at least one feature column")
    if features:
        if len(features) != width:
            raise DriftInputError(f"--features names {len(features)} features but the baseline has {width} "
                                  "feature columns after the label")
        frame.columns = features
    elif header:
        frame.columns = header_names[1:]
    else:
        frame.columns = [f"_c{i}" for i in range(width)]
    for column in frame.columns:
        numbers = _numeric(frame[column])
        if numbers is not None:
            frame[column] = numbers
    return frame


def _read_baseline_pass(files: list[str], header: bool, dtype: dict[int, Any], max_rows: int, chunk_rows: int,
                        seed: int) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)  # same seed, same sample on every pass
    parts: list[pd.DataFrame] = []
    keys: list[np.ndarray] = []
    width, header_names, total = None, [], 0
    for path in files:
        try:
            for chunk in pd.read_csv(path, header=0 if header else None, dtype=dtype or None, chunksize=chunk_rows):
                if width is None:
                    width, header_names = chunk.shape[1], [str(c) for c in chunk.columns]
                elif chunk.shape[1] != width:
                    raise DriftInputError(f"baseline file {path} has {chunk.shape[1]} columns, the first had {width}")
                chunk = chunk.iloc[:, 1:]
                chunk.columns = range(width - 1)
                parts.append(chunk)
                keys.append(rng.random(len(chunk)))
                total += len(chunk)
                if total > 2 * max_rows:  # compact now and then: memory stays O(max_rows)
                    parts, keys = _smallest(parts, keys, max_rows)
                    total = max_rows
        except pd.errors.EmptyDataError:
            continue
        except pd.errors.ParserError as exc:
            raise DriftInputError(f"baseline file {path} is not valid CSV: {exc}") from None
    if width is None or total == 0:
        raise DriftInputError(f"the {len(files)} baseline CSV files ({files[0]}, ...) hold no rows")
    if total > max_rows:
        parts, keys = _smallest(parts, keys, max_rows)
    return pd.concat(parts, ignore_index=True), header_names


def _smallest(parts: list[pd.DataFrame], keys: list[np.ndarray], k: int) -> tuple[list[pd.DataFrame], list[np.ndarray]]:
    frame, key = pd.concat(parts, ignore_index=True), np.concatenate(keys)
    best = np.sort(np.argpartition(key, k - 1)[:k]) if len(key) > k else np.arange(len(key))
    return [frame.iloc[best].reset_index(drop=True)], [key[best]]


def _decode(payload: dict[str, Any], where: str) -> str:
    """A capture/ground-truth payload's text (CSV or BASE64 encoding)."""
    data, encoding = payload.get("data", ""), str(payload.get("encoding", "CSV")).upper()
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise DriftInputError(f"{where}: BASE64 data does not decode to UTF-8 text ({exc})") from None
    if encoding != "CSV":
        raise DriftInputError(f"{where}: encoding {encoding!r} is not supported (CSV or BASE64)")
    return data


def _values(text: str) -> list[float] | None:
    """Numbers of a prediction/label payload: one per line, or comma-separated on one line."""
    text = text.strip()
    parts = text.split("\n") if "\n" in text else text.split(",")
    try:
        return [float(part) for part in parts]
    except ValueError:
        return None


def _vectors(text: str) -> list[list[float]] | None:
    """Multiclass predictions of a capture output: one line per row, each a class index or a
    comma-separated vector of class scores (brackets allowed: ``[0.1, 0.7, 0.2]``)."""
    try:
        return [[float(part) for part in line.strip().strip("[]").split(",")]
                for line in text.strip().split("\n")]
    except ValueError:
        return None


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
            except DriftInputError:  # e.g. JSON-encoded output: counted as not paired, drift still reported
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
    """CloudWatch MetricData: drift score (PSI) and missing rate per Feature, share of drifted
    features, overall missing rate, violation and row counts, model-quality metrics."""
    dims = [{"Name": n, "Value": v} for n, v in (("Endpoint", endpoint), ("Stage", stage)) if v]

    def datum(name: str, value: float, unit: str = "None", feature: str | None = None) -> dict[str, Any]:
        extra = [{"Name": "Feature", "Value": feature}] if feature is not None else []
        return {"MetricName": name, "Dimensions": dims + extra, "Timestamp": timestamp, "Value": float(value),
                "Unit": unit}

    data = [datum("FeatureDriftScore", f.psi, feature=f.name) for f in result.features if not math.isnan(f.psi)]
    data += [datum("FeatureMissingRate", f.current_missing_rate, feature=f.name) for f in result.features]
    data += [datum("DriftedFeatureShare", result.drifted_share), datum("MissingValueRate", result.missing_rate),
             datum("ConstraintViolations", len(result.violations), "Count"), datum("Rows", result.rows, "Count")]
    if joined_rows is not None:
        data.append(datum("GroundTruthRows", joined_rows, "Count"))
    data += [datum(name, value) for name, value in (quality or {}).items() if not math.isnan(value)]
    return [d for d in data if not math.isnan(d["Value"])]


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


def report_markdown(result: Result, source: dict[str, Any], quality: dict[str, Any] | None) -> str:
    th = result.thresholds
    rule = {
        "both": f"PSI >= {th.psi_threshold:g} **and** test p-value < {result.adjusted_alpha:.2g}",
        "either": f"PSI >= {th.psi_threshold:g} **or** test p-value < {result.adjusted_alpha:.2g}",
        "psi": f"PSI >= {th.psi_threshold:g}",
        "test": f"test p-value < {result.adjusted_alpha:.2g}",
    }[th.drift_rule]
    verdict = "Drift detected" if result.drifted else "No drift"
    lines = [
        "# Drift report",
        "",
        f"- Current window: {result.rows:,} rows ({source.get('description', '')})",
        f"- Baseline: {source.get('baseline_rows', 0):,} rows, {len(result.features) + len(result.missing_columns)} "
        "features",
        f"- Rule: a feature drifts when {rule} (alpha {th.ks_alpha:g} Bonferroni-adjusted over {result.tested} "
        f"tested features; PSI over {th.bins} baseline-quantile bins; KS on a sample of up to {th.ks_sample:,} rows)",
        "",
        f"**{verdict}: {len(result.drifted)} of {len(result.features)} features drifted "
        f"({result.drifted_share:.0%}); constraint violations: {len(result.violations)}.**",
        "",
        "| Feature | Type | PSI | Test | p-value | Missing (baseline → current) | Drift |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for f in result.features:
        p_value = "n/a" if math.isnan(f.p_value) else f"{f.p_value:.2g}"
        missing = f"{f.baseline_missing_rate:.1%} → {f.current_missing_rate:.1%}"
        lines.append(f"| {f.name.replace('|', '&#124;')} | {f.kind} | {_number(f.psi)} | {f.test} | {p_value} | "
                     f"{missing} | {'**yes**' if f.drifted else ''} |")
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


def _parser() -> argparse.ArgumentParser:
    root = os.environ.get("PROCESSING_ROOT", DEFAULT_ROOT)  # read per call: tests point it elsewhere
    d = Thresholds()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-format", choices=INPUT_FORMATS, default="capture")
    p.add_argument("--features", help="comma-separated feature names (the baseline's columns after the label)")
    p.add_argument("--baseline-header", action="store_true", help="baseline CSVs start with a header row")
    p.add_argument("--psi-threshold", type=float, default=d.psi_threshold)
    p.add_argument("--ks-alpha", type=float, default=d.ks_alpha, help="family-wise; Bonferroni over features")
    p.add_argument("--drift-rule", choices=DRIFT_RULES, default=d.drift_rule)
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
    p.add_argument("--baseline-rows", type=int, default=1_000_000)
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


def _run(args: argparse.Namespace) -> dict[str, Any]:
    _EVALUATION_SCRIPT[:] = [args.evaluation_script] if args.evaluation_script else []
    if not args.no_publish and not (args.namespace and args.endpoint and args.stage):
        raise DriftInputError("publishing to CloudWatch needs --namespace, --endpoint and --stage (or --no-publish)")
    thresholds = {f.name: getattr(args, f.name) for f in fields(Thresholds)}
    Thresholds(**thresholds)  # reject bad knobs before reading any data
    for name in ("chunk_rows", "baseline_rows", "quality_sample"):
        if getattr(args, name) < 1:
            raise DriftInputError(f"--{name.replace('_', '-')} must be >= 1")
    features = [n.strip() for n in args.features.split(",")] if args.features else None
    baseline = read_baseline(args.baseline_dir, header=args.baseline_header, features=features,
                             max_rows=args.baseline_rows, chunk_rows=args.chunk_rows, seed=args.seed)
    named = bool(features or args.baseline_header)
    truth = read_ground_truth(args.ground_truth_dir) if os.path.isdir(args.ground_truth_dir) else {}
    if truth and args.input_format == "batch":
        raise DriftInputError("ground truth is joined on eventId, which only data-capture records carry: "
                              f"use --input-format capture or leave {args.ground_truth_dir} empty")
    if truth and not args.problem_type:
        raise DriftInputError("ground truth found: --problem-type is needed to score it")

    text = {i: str for i, column in enumerate(baseline.columns) if not pd.api.types.is_float_dtype(baseline[column])}
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
    if not named and first.shape[1] != baseline.shape[1]:
        raise DriftInputError(
            f"current rows have {first.shape[1]} columns but the baseline has {baseline.shape[1]} features, and "
            "without feature names columns cannot be matched: pass --features or --baseline-header")
    result = compare(baseline, itertools.chain([first], chunks), **thresholds)

    source: dict[str, Any] = {"baseline_rows": len(baseline), "description": f"{len(files)} {kind} files"}
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
