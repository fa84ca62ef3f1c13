"""The drift job: false-positive rate on same-distribution data, detection of injected drift,
schema checks, data-capture parsing, the ground-truth join, Model Monitor's output files,
CloudWatch publishing (moto) and the one-message errors on bad input."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from jobs.drift import drift
from jobs.evaluation.evaluate import classification_report, flat_metrics, regression_report

CATEGORIES = np.array(list("abcde"))
CATEGORY_CUTS = np.cumsum([0.4, 0.25, 0.15, 0.12])  # shares 40/25/15/12/8 %


def make_table(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """20 features of mixed shape: 8 normal, 4 skewed, 4 discrete (ties), 4 categorical."""
    columns: dict[str, np.ndarray] = {}
    for i in range(8):
        columns[f"n{i}"] = rng.normal(i, 1 + i, rows)
    for i in range(4):
        columns[f"s{i}"] = rng.lognormal(0, 1, rows)
    for i in range(4):
        columns[f"p{i}"] = rng.poisson(3, rows).astype(float)
    for i in range(4):
        columns[f"c{i}"] = CATEGORIES[np.searchsorted(CATEGORY_CUTS, rng.random(rows))]
    return pd.DataFrame(columns)


def flagged(result: drift.Result, rule: str) -> bool:
    """Would ``rule`` flag any feature of this window? (Evaluated from the per-feature figures.)"""
    for f in result.features:
        material = f.effect_size >= f.threshold
        significant = f.p_value < result.adjusted_alpha
        if {"both": material and significant, "either": material or significant,
                "effect": material, "test": significant}[rule]:
            return True
    return False


# ---------------------------------------------------------------------------
# False-positive rate
# ---------------------------------------------------------------------------


def test_false_positive_rate_on_same_distribution_samples() -> None:
    """200 seeds; each draws a fresh 2,000-row baseline and a fresh 2,000-row window of the same
    20-feature distribution. A window counts as a false positive when any feature drifts.

    Bound: Bonferroni caps the chance that any test in a window rejects at --ks-alpha = 0.01, and
    the default rule also needs the effect size at its threshold, so the true rate is <= 1%. With
    200 windows, P(Binomial(200, 0.01) >= 6) = 1.6%: we assert <= 5 windows (2.5%) for the default
    rule and for the test alone. Without the adjustment the test alone would flag 1 - 0.99**20 = 18%
    of windows.

    Measured (seeds 0-199): 0 of 200 windows flagged (FPR 0.0%; 95% upper bound 1.5% by the rule
    of three) by the default rule and by the test alone. The effect size alone flags 7 (3.5%; so
    does 'either'): on 2,000 rows the Wasserstein distance's noise reaches 0.11 baseline standard
    deviations, 1.12 times the numeric threshold, which is why the rule also asks for significance.
    """
    windows = 200
    hits = dict.fromkeys(("both", "either", "effect", "test"), 0)
    largest = 0.0
    for seed in range(windows):
        rng = np.random.default_rng(seed)
        result = drift.compare(make_table(rng, 2_000), make_table(rng, 2_000))
        assert result.drifted == [] or flagged(result, "both")
        for rule in hits:
            hits[rule] += flagged(result, rule)
        largest = max([largest] + [f.effect_size / f.threshold for f in result.features])
    print(f"windows flagged of {windows}: {hits}; largest effect size / threshold {largest:.2f}")
    assert hits["both"] <= 5 and hits["test"] <= 5


def test_small_windows_need_both_conditions() -> None:
    """Why the default rule needs significance as well as an effect size: 50 windows of 100 rows
    against a 2,000-row baseline. The effect sizes' noise on 100 rows (a Wasserstein distance of
    about 0.1 baseline standard deviations, a Jensen-Shannon distance of about 0.08 over 5
    categories) crosses the thresholds in some feature of most windows, so the effect size alone (or
    'either') raises false alarms; the default rule keeps the Bonferroni bound (<= 1%: we assert <= 2
    of 50, P(Binomial(50, 0.01) >= 3) = 1.4%).

    Measured (seeds 10000-10049): 'either' flags 50 of 50 windows (100%), the default rule 0 of 50.
    """
    windows = 50
    hits = dict.fromkeys(("both", "either"), 0)
    for seed in range(windows):
        rng = np.random.default_rng(10_000 + seed)
        result = drift.compare(make_table(rng, 2_000), make_table(rng, 100))
        for rule in hits:
            hits[rule] += flagged(result, rule)
    print(f"100-row windows flagged of {windows}: {hits}")
    assert hits["both"] <= 2
    assert hits["either"] > 3 * max(hits["both"], 1)


# ---------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    return make_table(rng, 5_000), make_table(rng, 5_000)


def assert_close(a: object, b: object) -> None:
    """Equal JSON documents, floats to 1e-9 (chunked moments round differently)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_close(a[key], b[key])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9)
    else:
        assert a == b


def checks(result: drift.Result) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in result.violations}


def test_clean_window_has_no_violations(tables) -> None:
    baseline, current = tables
    result = drift.compare(baseline, current)
    assert result.drifted == [] and result.violations == []
    assert result.tested == 20 and result.adjusted_alpha == pytest.approx(0.01 / 20)


def test_mean_shift_drifts(tables) -> None:
    baseline, current = tables
    current = current.assign(n0=current["n0"] + 0.75)  # n0 ~ N(0, 1): shift by 0.75 sd
    result = drift.compare(baseline, current)
    assert result.drifted == ["n0"] and checks(result) == {("n0", "baseline_drift_check")}
    (n0,) = (f for f in result.features if f.name == "n0")
    # the Wasserstein distance in baseline standard deviations is the shift itself
    assert n0.effect_size == pytest.approx(0.75, abs=0.05) and n0.p_value < 1e-20 and n0.test == "ks"
    assert result.drifted_share == pytest.approx(1 / 20)


def test_variance_change_drifts(tables) -> None:
    baseline, current = tables
    current = current.assign(n2=2 + (current["n2"] - 2) * 2)  # same mean, twice the spread
    result = drift.compare(baseline, current)
    assert result.drifted == ["n2"]


def test_new_category_drifts_and_is_named(tables) -> None:
    baseline, current = tables
    values = current["c1"].to_numpy().copy()
    values[: len(values) // 4] = "zebra"
    result = drift.compare(baseline, current.assign(c1=values))
    (c1,) = (f for f in result.features if f.name == "c1")
    assert c1.drifted and c1.test == "chi2" and c1.new_categories == ["zebra"]
    assert c1.unseen_share == pytest.approx(0.25)
    assert checks(result) == {("c1", "baseline_drift_check"), ("c1", "categorical_values_check")}
    buckets = c1.statistics["string_statistics"]["distribution"]["categorical"]["buckets"]
    assert {"value": "zebra", "count": 1_250} in buckets


def test_rare_unseen_category_below_threshold_is_listed_not_flagged(tables) -> None:
    baseline, current = tables
    values = current["c0"].to_numpy().copy()
    values[:10] = "typo"  # 0.2% of values, under --unseen-share 1%
    result = drift.compare(baseline, current.assign(c0=values))
    (c0,) = (f for f in result.features if f.name == "c0")
    assert c0.new_categories == ["typo"] and result.violations == []
    assert "- `c0`: 0.20% of values; 'typo'" in drift.report_markdown(result, {}, None)


def test_rising_missing_values(tables) -> None:
    baseline, current = tables
    values = current["n3"].to_numpy().copy()
    values[np.random.default_rng(1).random(len(values)) < 0.2] = np.nan  # 20% missing, at random
    result = drift.compare(baseline, current.assign(n3=values))
    # the values still present keep their distribution: a completeness problem, not drift
    assert checks(result) == {("n3", "completeness_check")}
    (n3,) = (f for f in result.features if f.name == "n3")
    assert n3.baseline_missing_rate == 0 and n3.current_missing_rate == pytest.approx(0.2, abs=0.02)


def test_missing_values_within_tolerance_are_not_flagged(tables) -> None:
    baseline, current = tables
    values = current["n3"].to_numpy().copy()
    values[:100] = np.nan  # 2%: under --missing-increase 5 points
    assert drift.compare(baseline, current.assign(n3=values)).violations == []


def test_schema_changes(tables) -> None:
    baseline, current = tables
    changed = current.drop(columns=["p3"]).assign(extra=1.0, n1=np.where(np.arange(len(current)) % 2, "x", "1"))
    result = drift.compare(baseline, changed)
    expected = {("p3", "missing_column_check"), ("extra", "extra_column_check"), ("n1", "data_type_check")}
    assert expected <= checks(result)
    (n1,) = (f for f in result.features if f.name == "n1")
    assert n1.non_numeric_share == pytest.approx(0.5)
    assert n1.statistics["inferred_type"] == "String"


def test_streaming_chunks_equal_one_frame(tables) -> None:
    """Chunks give the same PSI, moments and (KS sample >= window) the same KS as one frame."""
    baseline, current = tables
    whole = drift.compare(baseline, current)
    chunked = drift.compare(baseline, (current.iloc[i:i + 700] for i in range(0, len(current), 700)))
    for a, b in zip(whole.features, chunked.features):
        assert a.psi == pytest.approx(b.psi) and a.p_value == pytest.approx(b.p_value)
        assert a.effect_size == pytest.approx(b.effect_size)
        assert_close(a.statistics, b.statistics)


def test_ks_runs_on_a_bounded_sample_against_the_baseline_sorted_once(tables, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline, current = tables
    prepared = drift.prepare(baseline)
    sorted_values = {id(p.values) for p in prepared.profiles if p.kind == "numeric"}
    sizes: list[int] = []
    distances = drift.distances

    def recording(a, b):
        assert id(a) in sorted_values  # the profile's sorted array itself: never sorted or copied again
        sizes.append(len(b))
        return distances(a, b)

    def refuse(*args, **kwargs):
        raise AssertionError("ks_2samp would sort the baseline again")

    monkeypatch.setattr(drift, "distances", recording)
    monkeypatch.setattr(drift.stats, "ks_2samp", refuse)
    big = pd.concat([current] * 4, ignore_index=True)
    result = drift.compare(prepared, (big.iloc[i:i + 3_000] for i in range(0, len(big), 3_000)), ks_sample=1_000)
    assert result.rows == 20_000 and result.drifted == []
    assert sizes == [1_000] * 16  # every numeric feature tested on the 1,000-row sample


def test_thresholds_are_validated() -> None:
    with pytest.raises(drift.DriftInputError, match="ks_alpha"):
        drift.Thresholds(ks_alpha=0)
    with pytest.raises(TypeError):
        drift.compare(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.0]}), not_a_knob=1)


# ---------------------------------------------------------------------------
# The default thresholds: shifts that matter are flagged, noise and tiny shifts are not
# ---------------------------------------------------------------------------

CODES = np.array(["1", "2", "3", "4", "5"])
SHIFTED = {"x0": "+0.05 sd", "x1": "+0.25 sd", "x2": "variance x1.5", "x3": "+0.5 sd",
           "code": "10 points from code 3 to 4", "cat": "10 points from b to c"}


def mixed_table(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """10 features: 4 standard normal (the shift targets), lognormal, uniform, integer-valued
    (Poisson), normal with 10% missing, an integer-coded 5-category feature (1-5, 20% each; declared
    categorical) and a text category (shares 40/25/15/12/8%)."""
    normal = rng.normal(0, 1, (rows, 4))
    missing = rng.normal(10, 3, rows)
    missing[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame({
        **{f"x{i}": normal[:, i] for i in range(4)},
        "ln": rng.lognormal(0, 1, rows), "un": rng.uniform(0, 10, rows), "po": rng.poisson(3, rows).astype(float),
        "nm": missing, "code": rng.integers(1, 6, rows),
        "cat": CATEGORIES[np.searchsorted(CATEGORY_CUTS, rng.random(rows))],
    })


def shift(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Every shift of SHIFTED at once, one per feature (the others stay as they were)."""
    moved = table.copy()
    moved["x0"] += 0.05
    moved["x1"] += 0.25
    moved["x2"] *= math.sqrt(1.5)
    moved["x3"] += 0.5
    codes, cats = moved["code"].to_numpy().copy(), moved["cat"].to_numpy().copy()
    codes[(codes == 3) & (rng.random(len(codes)) < 0.5)] = 4      # half of code 3's 20%: 10 points
    cats[(cats == "b") & (rng.random(len(cats)) < 0.4)] = "c"     # 40% of b's 25%: 10 points
    return moved.assign(code=codes, cat=cats)


@pytest.mark.parametrize(("rows", "seed"), [(10_000, 20), (10_000, 21), (100_000, 22)])
def test_default_thresholds_flag_shifts_that_matter_and_not_tiny_ones(rows: int, seed: int) -> None:
    """10,000+ rows per side: a mean shift of 0.25 or 0.5 sd, variance x1.5 and 10 points of
    mass moved between two middle categories (integer codes and text) are flagged; a 0.05 sd shift
    is not, although the KS test finds it significant at 100,000 rows: its effect size (0.05
    baseline standard deviations) is half the numeric threshold."""
    rng = np.random.default_rng(seed)
    baseline, current = mixed_table(rng, rows), mixed_table(rng, rows)
    result = drift.compare(baseline, shift(current, rng), categorical=["code"])
    assert result.drifted == ["x1", "x2", "x3", "code", "cat"], {f.name: (round(f.effect_size, 3), f.p_value)
                                                                   for f in result.features}
    effect = {f.name: f.effect_size for f in result.features}
    assert effect["x0"] == pytest.approx(0.05, abs=0.03) and effect["x1"] == pytest.approx(0.25, abs=0.03)
    assert effect["x2"] == pytest.approx(0.18, abs=0.03)  # (sqrt(1.5) - 1) * E|Z| = 0.179
    assert effect["code"] > 0.12 and effect["cat"] > 0.12  # 0.140 and 0.135 exactly (Jensen-Shannon)


def test_half_a_standard_deviation_is_flagged_on_500_row_windows() -> None:
    """Five 500-row windows against a 20,000-row baseline: the +0.5 sd feature is flagged in each
    (KS p ~ 1e-18, effect 0.5 sd), and no unshifted feature in any."""
    rng = np.random.default_rng(23)
    prepared = drift.prepare(mixed_table(rng, 20_000), categorical=["code"])
    for _ in range(5):
        result = drift.compare(prepared, shift(mixed_table(rng, 500), rng), categorical=["code"])
        assert "x3" in result.drifted and set(result.drifted) <= set(SHIFTED), result.drifted


def test_same_distribution_windows_of_every_size_raise_no_flag() -> None:
    """Seeded same-distribution windows of 500 (30 windows), 10,000 (4) and 100,000 rows (1), over
    normal, lognormal, uniform, integer-valued, partly missing, integer-coded and text features:
    no feature is flagged. (scripts/bench_drift.py measures the rate over many more windows.)"""
    flagged_windows = []
    for seed, (rows, windows) in enumerate([(500, 30), (10_000, 4), (100_000, 1)]):
        rng = np.random.default_rng(100 + seed)
        prepared = drift.prepare(mixed_table(rng, max(rows, 20_000)), categorical=["code"])
        for _ in range(windows):
            result = drift.compare(prepared, mixed_table(rng, rows), categorical=["code"])
            flagged_windows += [(rows, result.drifted)] if result.drifted else []
    assert flagged_windows == []


def test_the_old_rule_would_miss_what_the_new_one_flags() -> None:
    """PSI >= 0.2 (the former rule's materiality) misses the 0.25 sd shift, variance x1.5 and the
    category moves that the effect sizes flag."""
    rng = np.random.default_rng(24)
    baseline, current = mixed_table(rng, 20_000), mixed_table(rng, 20_000)
    result = drift.compare(baseline, shift(current, rng), categorical=["code"])
    features = {f.name: f for f in result.features}
    for name in ("x1", "x2", "code", "cat"):
        assert features[name].drifted and features[name].psi < 0.2, (name, features[name].psi)


def test_distances_and_p_value_equal_scipy() -> None:
    from scipy import stats

    rng = np.random.default_rng(25)
    for a, b in [(rng.normal(size=3_000), rng.normal(0.2, 1.1, 700)),
                 (rng.poisson(3, 2_000).astype(float), rng.poisson(3.4, 500).astype(float)),  # ties
                 (np.array([1.0, 1.0, 2.0]), np.array([1.0]))]:
        a, b = np.sort(a), np.sort(b)
        wasserstein, statistic = drift.distances(a, b)
        assert wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)
        expected = stats.ks_2samp(a, b, method="asymp")
        assert statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert drift.ks_p_value(statistic, len(a), len(b)) == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_pools_sparse_categories() -> None:
    """Categories expected fewer than 5 times are pooled before scipy's chi2_contingency."""
    from scipy import stats

    # three rare categories, 1 + 0 + 0 baseline and 1 + 2 + 2 current values: pooled, still too sparse,
    # so merged into the smallest other category
    baseline, current = np.array([5_000, 3_000, 2_000, 1, 0, 0]), np.array([480, 310, 205, 1, 2, 2])
    statistic, p_value = drift.chi_square(baseline, current)
    expected = stats.chi2_contingency(np.array([[5_000, 3_000, 2_000 + 1], [480, 310, 205 + 5]]))
    assert (statistic, p_value) == pytest.approx((expected[0], expected[1]))
    assert p_value > 0.4 and stats.chi2_contingency(np.vstack([baseline, current]))[1] < 1e-7  # unpooled


def test_declared_integer_codes_are_compared_category_by_category() -> None:
    """Undeclared, integer codes are a number: moving 10 points from code 3 to code 4 moves the
    values by 0.1, 0.07 baseline standard deviations, under the numeric threshold. Declared with
    categorical=[...], the codes are categories ("4.0" and 4 are "4"), compared one by one: the
    move is flagged, and an unseen code is reported as a new category."""
    rng = np.random.default_rng(26)
    baseline = mixed_table(rng, 20_000)[["x0", "code"]]
    current = shift(mixed_table(rng, 20_000), rng)[["x0", "code"]]
    as_number = drift.compare(baseline, current)
    (code,) = (f for f in as_number.features if f.name == "code")
    assert code.kind == "numeric" and not code.drifted and code.effect_size == pytest.approx(0.07, abs=0.01)
    assert code.psi > 0.02  # one bin per code: PSI sees the move (quantile bins merged codes 3 and 4)

    text = current.assign(code=[f"{c}.0" for c in current["code"]])
    text.loc[:99, "code"] = "9"
    declared = drift.compare(baseline, text, categorical=["code"])
    (code,) = (f for f in declared.features if f.name == "code")
    assert code.kind == "categorical" and code.test == "chi2" and code.drifted
    assert [label for label, _, _ in code.histogram][:5] == sorted(CODES.tolist(), key=lambda c: -float(
        (baseline["code"].astype(str) == c).sum()))
    assert code.new_categories == ["9"] and code.unseen_share == pytest.approx(0.005)


def test_report_says_which_features_drifted_by_how_much() -> None:
    rng = np.random.default_rng(27)
    baseline, current = mixed_table(rng, 10_000), mixed_table(rng, 10_000)
    result = drift.compare(baseline, shift(current, rng), categorical=["code"])
    report = drift.report_markdown(result, {}, None)
    drifted_part, table = report.split("## All features")
    import re

    assert re.search(r"\*\*x3\*\* \(numeric\): its distribution moved by 0\.\d\d baseline standard deviations "
                     r"\(Wasserstein distance / baseline std; threshold 0\.1\); Kolmogorov-Smirnov p = \d.*e-\d+ "
                     r"against the corrected alpha 0\.001 \(0\.01 / 10 features\)\. Mean ", drifted_part)
    assert re.search(r"\*\*code\*\* \(categorical\): its category shares changed by a Jensen-Shannon distance of "
                     r"0\.1\d\d \(threshold 0\.07\); chi-square p = .*Largest change: '3' 19\.8% → 10\.2%",
                     drifted_part)
    assert drifted_part.count("```") == 2 * 5 and "█" in drifted_part  # a histogram per drifted feature
    assert "**x0**" not in drifted_part and "**ln**" not in drifted_part  # undrifted: the table only
    assert "| x0 | numeric | 0.0" in table and "| ln | numeric |" in table


# ---------------------------------------------------------------------------
# The processing job: files in, files out
# ---------------------------------------------------------------------------

NUMERIC = [f"n{i}" for i in range(8)] + [f"s{i}" for i in range(4)] + [f"p{i}" for i in range(4)]
FEATURES = NUMERIC + [f"c{i}" for i in range(4)]


def csv_rows(table: pd.DataFrame) -> list[str]:
    return table.to_csv(header=False, index=False, float_format="%.6g", lineterminator="\n").splitlines()


def capture_record(rows: list[str], output: str, event_id: str, *, base64_input: bool = False) -> str:
    data = "\n".join(rows)
    encoding = "CSV"
    if base64_input:
        data, encoding = base64.b64encode(data.encode()).decode(), "BASE64"
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": data, "encoding": encoding},
            "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": output,
                               "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": "2026-11-23T10:00:00Z"},
        "eventVersion": "0",
    })


def truth_record(values: str, event_id: str) -> str:
    return json.dumps({"groundTruthData": {"data": values, "encoding": "CSV"},
                       "eventMetadata": {"eventId": event_id}, "eventVersion": "0"})


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROCESSING_ROOT", str(tmp_path))
    rng = np.random.default_rng(3)
    baseline = make_table(rng, 3_000)
    (tmp_path / "baseline").mkdir()
    labelled = pd.concat([pd.Series(rng.integers(0, 2, len(baseline))), baseline], axis=1)
    (tmp_path / "baseline" / "data.csv").write_text("\n".join(csv_rows(labelled)) + "\n")
    return tmp_path


def write_capture(root: Path, table: pd.DataFrame, *, rows_per_record: int = 1, base64_every: int = 0,
                  name: str = "2026/11/23/10/capture.jsonl", outputs: list[str] | None = None) -> list[str]:
    """Capture records of ``rows_per_record`` rows each; returns their eventIds."""
    lines, ids, rows = [], [], csv_rows(table)
    for k, start in enumerate(range(0, len(rows), rows_per_record)):
        event_id = f"event-{k}"
        output = outputs[k] if outputs else "\n".join(["0.5"] * len(rows[start:start + rows_per_record]))
        lines.append(capture_record(rows[start:start + rows_per_record], output, event_id,
                                    base64_input=bool(base64_every) and k % base64_every == 0))
        ids.append(event_id)
    path = root / "capture" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return ids


def run(*args: str) -> dict:
    return drift.main(["--features", ",".join(FEATURES), "--no-publish", *args])


def outputs(root: Path) -> dict[str, object]:
    out = root / "output"
    return {
        "statistics": json.loads((out / "statistics.json").read_text()),
        "violations": json.loads((out / "constraint_violations.json").read_text()),
        "metrics": json.loads((out / "metrics.json").read_text()),
        "report": (out / "report.md").read_text(),
    }


def test_model_monitor_output_files(root: Path) -> None:
    current = make_table(np.random.default_rng(4), 1_000)
    current["n0"] += 1.0
    write_capture(root, current)
    summary = run()
    assert summary["rows"] == 1_000 and summary["drifted"] == ["n0"]
    files = outputs(root)
    statistics = files["statistics"]
    assert statistics["version"] == 0 and statistics["dataset"] == {"item_count": 1_000}
    assert [f["name"] for f in statistics["features"]] == FEATURES
    numeric = statistics["features"][0]
    assert numeric["inferred_type"] == "Fractional"
    stats_block = numeric["numerical_statistics"]
    assert set(stats_block) == {"common", "mean", "sum", "std_dev", "min", "max", "distribution"}
    assert stats_block["common"] == {"num_present": 1_000, "num_missing": 0}
    buckets = stats_block["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and sum(b["count"] for b in buckets) == 1_000
    assert all(set(b) == {"lower_bound", "upper_bound", "count"} for b in buckets)
    assert statistics["features"][12]["inferred_type"] == "Integral"  # p0: Poisson counts
    categorical = statistics["features"][-1]
    assert categorical["inferred_type"] == "String"
    assert set(categorical["string_statistics"]) == {"common", "distinct_count", "distribution"}

    (violation,) = files["violations"]["violations"]
    assert set(violation) == {"feature_name", "constraint_check_type", "description"}
    assert violation["feature_name"] == "n0" and violation["constraint_check_type"] == "baseline_drift_check"
    assert "Bonferroni-adjusted over 20 features" in violation["description"]

    assert "**Drift detected: 1 of 20 features drifted (5%); constraint violations: 1.**" in files["report"]
    assert "| n0 | numeric |" in files["report"]
    names = {d["MetricName"] for d in files["metrics"]["MetricData"]}
    assert names == {"FeatureDriftScore", "FeatureMissingRate", "DriftedFeatureShare", "MissingValueRate",
                     "ConstraintViolations", "Rows"}


def test_capture_with_multi_row_and_base64_records(root: Path) -> None:
    current = make_table(np.random.default_rng(5), 900)
    write_capture(root, current, rows_per_record=3, base64_every=2)
    summary = run("--chunk-rows", "250")
    assert summary["rows"] == 900 and summary["violations"] == 0
    expected = drift.compare(drift.read_baseline(str(root / "baseline"), features=FEATURES),
                             pd.read_csv(io.StringIO("\n".join(csv_rows(current))), header=None,
                                         dtype={i: str for i in range(16, 20)}))
    assert_close(outputs(root)["statistics"], json.loads(json.dumps(expected.statistics())))
    assert "300 capture records in 1 files, inference time 2026-11-23T10:00:00Z" in outputs(root)["report"]


def test_batch_transform_output(root: Path) -> None:
    current = make_table(np.random.default_rng(6), 800)
    with_prediction = current.assign(prediction=0.5)
    (root / "capture").mkdir()
    (root / "capture" / "data.csv.out").write_text("\n".join(csv_rows(with_prediction)) + "\n")
    assert run("--input-format", "batch")["rows"] == 800
    write_capture(root, current, name="capture.jsonl")
    batch_statistics = outputs(root)["statistics"]
    run()
    assert outputs(root)["statistics"] == batch_statistics


def test_auto_format_follows_the_files_and_drops_ground_truth_for_batch(root: Path, capsys) -> None:
    """The monitoring workflow hands the job either a capture window or a batch transform's
    output: ``--input-format auto`` reads either, and for batch output (no eventId to join on)
    scores drift only, although ground truth exists."""
    current = make_table(np.random.default_rng(6), 800)
    (root / "capture").mkdir()
    (root / "capture" / "data.csv.out").write_text("\n".join(csv_rows(current.assign(prediction=0.5))) + "\n")
    (root / "ground_truth").mkdir()
    (root / "ground_truth" / "labels.jsonl").write_text(json.dumps({
        "groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "e1"}, "eventVersion": "0"}) + "\n")
    summary = run("--input-format", "auto", "--problem-type", "binary_classification")
    assert summary["rows"] == 800 and "ground_truth_rows" not in summary and "accuracy" not in summary
    write_capture(root, current, name="capture.jsonl")
    with pytest.raises(SystemExit, match="both data-capture"):
        run("--input-format", "auto")


def test_schema_change_by_position_with_feature_names(root: Path) -> None:
    current = make_table(np.random.default_rng(8), 500)
    write_capture(root, current.iloc[:, :-1])  # the last column (c3) no longer sent
    run()
    assert {(v["feature_name"], v["constraint_check_type"]) for v in outputs(root)["violations"]["violations"]} == {
        ("c3", "missing_column_check")}


def test_feature_names_from_the_baseline_header(root: Path) -> None:
    baseline = root / "baseline" / "data.csv"
    baseline.write_text(",".join(["label", *FEATURES]) + "\n" + baseline.read_text())
    write_capture(root, make_table(np.random.default_rng(15), 300))
    summary = drift.main(["--baseline-header", "--no-publish"])
    assert summary["violations"] == 0
    assert [f["name"] for f in outputs(root)["statistics"]["features"]] == FEATURES


@pytest.mark.parametrize("problem_type", ["binary_classification", "regression"])
def test_ground_truth_join_uses_the_evaluation_metrics(root: Path, problem_type: str) -> None:
    rng = np.random.default_rng(9)
    current = make_table(rng, 600)
    records = 300  # two rows per record: two predictions and two labels per eventId
    scores = rng.random(600).round(4)
    if problem_type == "binary_classification":
        labels = (rng.random(600) < scores).astype(int)
        label_text = [str(x) for x in labels]
    else:
        labels = (scores * 10 + rng.normal(0, 1, 600)).round(3)
        label_text = [f"{x:g}" for x in labels]
    outputs_text = [f"{scores[2 * k]:g}\n{scores[2 * k + 1]:g}" for k in range(records)]
    ids = write_capture(root, current, rows_per_record=2, outputs=outputs_text)
    truth = root / "ground_truth" / "2026" / "11" / "23" / "11" / "truth.jsonl"
    truth.parent.mkdir(parents=True)
    # labels for all but the first 50 events, written out of order, plus one unknown eventId
    joined = list(range(50, records))
    lines = [truth_record(f"{label_text[2 * k]}\n{label_text[2 * k + 1]}", ids[k]) for k in reversed(joined)]
    truth.write_text("\n".join(lines + [truth_record("1", "not-captured")]) + "\n")

    summary = run("--problem-type", problem_type, "--threshold", "0.4")
    rows = [i for k in joined for i in (2 * k, 2 * k + 1)]  # capture order
    if problem_type == "binary_classification":
        expected = classification_report(labels[rows], scores[rows], 0.4)
    else:
        expected = regression_report(labels[rows], scores[rows])
    files = outputs(root)
    section = next(iter(expected))
    assert files["statistics"][section] == json.loads(json.dumps(expected))[section]
    for name, value in flat_metrics(expected).items():
        assert summary[name] == value
        (datum,) = (d for d in files["metrics"]["MetricData"] if d["MetricName"] == name)
        assert datum["Value"] == pytest.approx(value)
    assert "500 rows joined with ground truth" in files["report"]
    assert {d["MetricName"]: d["Value"] for d in files["metrics"]["MetricData"]}["GroundTruthRows"] == 500


def test_cloudwatch_metrics_published(root: Path, aws_credentials: None) -> None:
    write_capture(root, make_table(np.random.default_rng(10), 400))
    with mock_aws():
        summary = drift.main(["--features", ",".join(FEATURES), "--namespace", "mlops/drift",
                              "--endpoint", "churn-endpoint", "--stage", "dev"])
        listed = boto3.client("cloudwatch").list_metrics(Namespace="mlops/drift")["Metrics"]
    assert summary["put_metric_data_calls"] == 1
    dimensions = {(m["MetricName"], frozenset((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed}
    endpoint = {("Endpoint", "churn-endpoint"), ("Stage", "dev")}
    for feature in FEATURES:
        assert ("FeatureDriftScore", frozenset(endpoint | {("Feature", feature)})) in dimensions
        assert ("FeatureMissingRate", frozenset(endpoint | {("Feature", feature)})) in dimensions
    for name in ("DriftedFeatureShare", "MissingValueRate", "ConstraintViolations", "Rows"):
        assert (name, frozenset(endpoint)) in dimensions
    assert len(listed) == 2 * len(FEATURES) + 4


def test_put_metric_data_is_batched_by_1000() -> None:
    class Client:
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def put_metric_data(self, Namespace: str, MetricData: list) -> None:  # noqa: N803 - boto3's names
            self.sizes.append(len(MetricData))

    client = Client()
    data = [{"MetricName": "FeatureDriftScore", "Value": 0.1}] * 2_345
    assert drift.publish(data, "ns", client) == 3 and client.sizes == [1_000, 1_000, 345]


# ---------------------------------------------------------------------------
# Bad input: one clear message, exit non-zero, no output files
# ---------------------------------------------------------------------------


def _content_type(root: Path) -> None:
    write_capture(root, make_table(np.random.default_rng(11), 5))
    path = next((root / "capture").rglob("*.jsonl"))
    path.write_text(path.read_text().replace('"text/csv"', '"application/json"'))


def _not_json(root: Path) -> None:
    (root / "capture").mkdir()
    (root / "capture" / "broken.jsonl").write_text("{not json\n")


def _ground_truth_without_problem_type(root: Path) -> None:
    write_capture(root, make_table(np.random.default_rng(12), 5))
    (root / "ground_truth").mkdir()
    (root / "ground_truth" / "t.jsonl").write_text(truth_record("1", "event-0") + "\n")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (lambda root: None, [], "no data-capture files (*.jsonl) under"),
        (lambda root: write_capture(root, make_table(np.random.default_rng(13), 5).iloc[:, :19]), ["--no-names"],
         "current rows have 19 columns but the baseline has 20 features"),
        (_content_type, [], "input content type 'application/json' is not supported"),
        (_not_json, [], "broken.jsonl:1 is not JSON"),
        (_ground_truth_without_problem_type, [], "--problem-type is needed"),
        (lambda root: None, ["--publish"], "needs --namespace, --endpoint and --stage"),
        (_ground_truth_without_problem_type, ["--input-format", "batch", "--problem-type", "regression"],
         "ground truth is joined on eventId, which only data-capture records carry"),
        (lambda root: write_capture(root, make_table(np.random.default_rng(14), 5)), ["--features", "a,b"],
         "--features names 2 features but the baseline has 20"),
    ],
    ids=["no-capture", "column-count-without-names", "json-content-type", "not-json", "ground-truth-no-problem-type",
         "publish-without-namespace", "batch-with-ground-truth", "wrong-feature-count"],
)
def test_bad_input_exits_with_one_message(root: Path, capsys, setup, args: list[str], message: str) -> None:
    setup(root)
    argv = ["--no-publish"] if "--publish" not in args else []
    if "--no-names" not in args and "--features" not in args:
        argv += ["--features", ",".join(FEATURES)]
    argv += [a for a in args if a not in ("--no-names", "--publish")]
    with pytest.raises(SystemExit) as exit_info:
        drift.main(argv)
    text = str(exit_info.value.code)
    assert text.startswith("drift: ") and message in text and "\n" not in text
    assert not (root / "output").exists()


def test_unknown_input_format_is_refused(root: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        drift.main(["--input-format", "parquet", "--no-publish"])
    assert exit_info.value.code == 2 and "invalid choice: 'parquet'" in capsys.readouterr().err


def test_quality_metric_values_are_finite_floats() -> None:
    report = drift.model_quality([0, 1, 1, 0], [0.2, 0.8, 0.6, 0.4], "binary_classification")
    assert all(isinstance(v, float) and math.isfinite(v) for v in flat_metrics(report).values())


@pytest.mark.parametrize("output", ["class-index", "probabilities"])
def test_multiclass_ground_truth_join(root: Path, output: str) -> None:
    """Multiclass capture outputs are one line per row: a class index, or a vector of class
    probabilities (brackets allowed); the join scores them with evaluate.py's multiclass report."""
    from jobs.evaluation.evaluate import multiclass_report

    rng = np.random.default_rng(16)
    current = make_table(rng, 400)
    labels = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + 2 * np.eye(3)[labels]
    probabilities = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).round(4)
    if output == "class-index":
        predictions = probabilities.argmax(axis=1).astype(float)
        lines = [f"{p:g}" for p in predictions]
    else:
        predictions = probabilities
        lines = ["[" + ", ".join(f"{x:g}" for x in row) + "]" if i % 2 else ",".join(f"{x:g}" for x in row)
                 for i, row in enumerate(probabilities)]
    # two rows per request: one per line, or (the built-in XGBoost's real-time answer) both vectors
    # on one line, "[0.1, 0.7, 0.2],[0.3, 0.3, 0.4]"
    bracketed = ["[" + ", ".join(f"{x:g}" for x in row) + "]" for row in probabilities]
    ids = write_capture(root, current, rows_per_record=2, outputs=[
        f"{bracketed[2 * k]},{bracketed[2 * k + 1]}" if output == "probabilities" and k % 3 == 0
        else f"{lines[2 * k]}\n{lines[2 * k + 1]}" for k in range(200)])
    (root / "ground_truth").mkdir()
    (root / "ground_truth" / "t.jsonl").write_text(
        "\n".join(truth_record(f"{labels[2 * k]}\n{labels[2 * k + 1]}", ids[k]) for k in range(200)) + "\n")

    summary = run("--problem-type", "multiclass_classification")
    expected = multiclass_report(labels, predictions)
    files = outputs(root)
    assert files["statistics"]["multiclass_classification_metrics"] == json.loads(json.dumps(expected))[
        "multiclass_classification_metrics"]
    published = {d["MetricName"]: d["Value"] for d in files["metrics"]["MetricData"]}
    for name in ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "weighted_recall"):
        assert summary[name] == pytest.approx(published[name])
        assert published[name] == pytest.approx(flat_metrics(expected)[name])
    assert ("macro_auc" in published) == (output == "probabilities")
    assert summary["accuracy"] > 0.6 and published["GroundTruthRows"] == 400
    assert "| macro_f1 |" in files["report"]


def _multiclass_truth_not_class_indices(root: Path) -> None:
    ids = write_capture(root, make_table(np.random.default_rng(17), 4), outputs=["1"] * 4)
    (root / "ground_truth").mkdir()
    (root / "ground_truth" / "t.jsonl").write_text("\n".join(truth_record("1.5", i) for i in ids) + "\n")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (lambda root: write_capture(root, make_table(np.random.default_rng(18), 5)), ["--categorical", "c0,nope"],
         "--categorical names 'nope', not among the baseline's features (n0, n1,"),
        (lambda root: None, ["--numeric-threshold", "-1"], "numeric_threshold (--numeric-threshold) -1.0 must be >= 0"),
        (lambda root: None, ["--categorical-threshold", "2"],
         "categorical_threshold (--categorical-threshold) 2.0 must be in [0, 1]"),
        (_multiclass_truth_not_class_indices, ["--problem-type", "multiclass_classification"],
         "ground truth: labels must be class indices"),
    ],
    ids=["unknown-categorical", "negative-numeric-threshold", "categorical-threshold-above-1",
         "multiclass-labels-not-indices"],
)
def test_bad_new_flags_exit_with_one_message(root: Path, capsys, setup, args: list[str], message: str) -> None:
    test_bad_input_exits_with_one_message(root, capsys, setup, args, message)


def test_state_machine_flags_and_declared_categorical_columns(root: Path) -> None:
    """The arguments the state machine passes today still run (--psi-threshold accepted, deciding
    nothing under the default rule); --categorical makes integer-valued columns categories; the
    published drift score is the effect size."""
    current = make_table(np.random.default_rng(19), 2_000)
    moved = current["p0"].to_numpy().copy()
    moved[(moved == 3) & (np.arange(len(moved)) % 2 == 0)] = 4  # half of the 3s (22% of rows) become 4s
    write_capture(root, current.assign(p0=moved))
    summary = run("--psi-threshold", "0.2", "--ks-alpha", "0.01", "--threshold", "0.5",
                  "--problem-type", "binary_classification", "--categorical", "p0,p1")
    files = outputs(root)
    features = {f["name"]: f for f in files["statistics"]["features"]}
    assert "string_statistics" in features["p0"] and "string_statistics" in features["p1"]
    distribution = features["p0"]["string_statistics"]["distribution"]
    buckets = {b["value"]: b["count"] for b in distribution["categorical"]["buckets"]}
    assert set(buckets) <= {str(k) for k in range(20)}  # codes as written in the capture ("3", not "3.0")
    assert summary["drifted"] == ["p0"]
    scores = {d["Dimensions"][-1]["Value"]: d["Value"] for d in files["metrics"]["MetricData"]
              if d["MetricName"] == "FeatureDriftScore"}
    assert set(scores) == set(FEATURES) and scores["p0"] > 0.07 > scores["p1"]
    assert "**p0** (categorical): its category shares changed by a Jensen-Shannon distance of" in files["report"]


def test_baseline_is_a_bounded_uniform_sample_read_in_one_pass(tmp_path: Path) -> None:
    """Above --baseline-rows rows the baseline is a seeded uniform sample of that many; a column
    whose text only starts after the first rows is still read as text ("1", not 1.0)."""
    rows = 1_000
    late_text = np.where(np.arange(rows) < 600, np.arange(rows) % 7, 0).astype(str)
    late_text[700] = "seven"
    table = pd.DataFrame({"label": np.arange(rows) % 2, "x": np.arange(rows, dtype=float), "t": late_text})
    (tmp_path / "a.csv").write_text(table.iloc[:400].to_csv(header=False, index=False))
    (tmp_path / "b.csv").write_text(table.iloc[400:].to_csv(header=False, index=False))
    read = lambda **kw: drift.read_baseline(str(tmp_path), features=["x", "t"], chunk_rows=150, **kw)  # noqa: E731
    sample = read(max_rows=100)
    assert len(sample) == 100 and sample.attrs["rows_read"] == rows
    assert sample["x"].dtype == float and sample["x"].is_unique and sample["x"].between(0, rows - 1).all()
    assert 300 < sample["x"].mean() < 700  # uniform over both files, not the first rows
    assert sample.equals(read(max_rows=100))  # seeded
    whole = read(max_rows=10_000)
    assert len(whole) == rows and whole["t"].iloc[1] == "1" and "seven" in set(whole["t"])
    codes = read(max_rows=10_000, categorical=["x"])
    assert codes["x"].iloc[3] == "3.0"  # declared categorical: read as text (the profile writes it "3")
    profile = drift.prepare(codes, categorical=["x"]).profiles[0]
    assert profile.kind == "categorical" and "3" in profile.bins and "3.0" not in profile.bins


def _as_linear_learner_capture(root: Path, encoding: str) -> None:
    """Rewrite the capture's outputs as Linear Learner answers them (JSON, never CSV): BASE64 as
    data capture stores a content type its CsvContentTypes/JsonContentTypes do not list (this
    repo's endpoints list text/csv only), or JSON where JsonContentTypes lists it."""
    for path in (root / "capture").rglob("*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for record in records:
            output = record["captureData"]["endpointOutput"]
            scores = [json.loads(f"[{line}]") if "," in line else float(line) for line in output["data"].split("\n")]
            text = json.dumps({"predictions": [{"score": score[0] if isinstance(score, list) and len(score) == 1
                                                else score} for score in scores]})
            output.update(observedContentType="application/json",
                          data=base64.b64encode(text.encode()).decode() if encoding == "BASE64" else text,
                          encoding=encoding)
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")


@pytest.mark.parametrize("encoding", ["BASE64", "JSON"])
def test_linear_learner_json_answers_pair_with_ground_truth(root: Path, encoding: str) -> None:
    """A regressor's ``{"predictions": [{"score": ...}, ...]}``: every record paired (none counted
    as unpaired), its scores the predictions the regression report reads."""
    rng = np.random.default_rng(18)
    current = make_table(rng, 200)
    scores = (rng.random(200) * 10).round(3)
    labels = (scores + rng.normal(0, 1, 200)).round(3)
    ids = write_capture(root, current, rows_per_record=2,
                        outputs=[f"{scores[2 * k]:g}\n{scores[2 * k + 1]:g}" for k in range(100)])
    _as_linear_learner_capture(root, encoding)
    (root / "ground_truth").mkdir()
    (root / "ground_truth" / "t.jsonl").write_text(
        "\n".join(truth_record(f"{labels[2 * k]:g}\n{labels[2 * k + 1]:g}", ids[k]) for k in range(100)) + "\n")
    summary = run("--problem-type", "regression")
    assert outputs(root)["statistics"]["regression_metrics"] == json.loads(json.dumps(
        regression_report(labels, scores)))["regression_metrics"]
    assert summary["rmse"] == pytest.approx(flat_metrics(regression_report(labels, scores))["rmse"])
    assert "200 rows joined with ground truth" in outputs(root)["report"]


def test_linear_learner_multiclass_scores_are_class_probability_vectors() -> None:
    answer = json.dumps({"predictions": [{"score": [0.1, 0.7, 0.2], "predicted_label": 1},
                                         {"score": [0.6, 0.3, 0.1], "predicted_label": 0}]})
    assert drift._vectors(answer) == [[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]]
    lines = "\n".join(json.dumps({"score": s, "predicted_label": 1}) for s in (0.9, 0.2))  # JSON Lines
    assert drift._values(lines) == [0.9, 0.2]
    assert drift._values('{"predictions": [{"label": 1}]}') is None  # not Linear Learner's: unpaired, not a crash
