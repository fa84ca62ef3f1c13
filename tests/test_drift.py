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
    th = result.thresholds
    for f in result.features:
        material = f.psi >= th.psi_threshold
        significant = f.p_value < result.adjusted_alpha
        if {"both": material and significant, "either": material or significant,
                "psi": material, "test": significant}[rule]:
            return True
    return False


# ---------------------------------------------------------------------------
# False-positive rate
# ---------------------------------------------------------------------------


def test_false_positive_rate_on_same_distribution_samples() -> None:
    """200 seeds; each draws a fresh 2,000-row baseline and a fresh 2,000-row window of the same
    20-feature distribution. A window counts as a false positive when any feature drifts.

    Bound: Bonferroni caps the chance that any test in a window rejects at --ks-alpha = 0.01, and
    the default rule also needs PSI >= 0.2, so the true rate is <= 1%. With 200 windows,
    P(Binomial(200, 0.01) >= 6) = 1.6%: we assert <= 5 windows (2.5%) for the default rule and for
    the test alone. Without the adjustment the test alone would flag 1 - 0.99**20 = 18% of windows.

    Measured (seeds 0-199): 0 of 200 windows flagged (FPR 0.0%; 95% upper bound 1.5% by the rule
    of three) by the default rule, by the test alone, by PSI alone and by 'either'; mean per-feature
    PSI 0.0073.
    """
    windows = 200
    hits = dict.fromkeys(("both", "either", "psi", "test"), 0)
    psi: list[float] = []
    for seed in range(windows):
        rng = np.random.default_rng(seed)
        result = drift.compare(make_table(rng, 2_000), make_table(rng, 2_000))
        assert result.drifted == [] or flagged(result, "both")
        for rule in hits:
            hits[rule] += flagged(result, rule)
        psi += [f.psi for f in result.features]
    print(f"windows flagged of {windows}: {hits}; mean PSI {np.mean(psi):.4f}")
    assert hits["both"] <= 5 and hits["test"] <= 5
    assert hits["psi"] == 0  # PSI noise at 2,000 rows is ~0.009, far from 0.2


def test_small_windows_need_both_conditions() -> None:
    """Why the default rule needs significance as well as PSI: 50 windows of 100 rows against a
    2,000-row baseline. PSI's noise, ~(bins - 1) * (1/100 + 1/2000) = 0.09 per feature, crosses 0.2
    in some feature of many windows, so PSI alone (or 'either') raises false alarms; the default
    rule keeps the Bonferroni bound (<= 1%: we assert <= 2 of 50, P(Binomial(50, 0.01) >= 3) = 1.4%).

    Measured (seeds 10000-10049): 'either' flags 20 of 50 windows (40%), the default rule 0 of 50.
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
    assert n0.psi >= 0.2 and n0.p_value < 1e-20 and n0.test == "ks"
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
        assert_close(a.statistics, b.statistics)


def test_ks_runs_on_a_bounded_sample(tables, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline, current = tables
    sizes: list[int] = []
    ks_2samp = drift.stats.ks_2samp

    def recording(a, b, *args, **kwargs):
        sizes.append(len(b))
        return ks_2samp(a, b, *args, **kwargs)

    monkeypatch.setattr(drift.stats, "ks_2samp", recording)
    big = pd.concat([current] * 4, ignore_index=True)
    result = drift.compare(baseline, (big.iloc[i:i + 3_000] for i in range(0, len(big), 3_000)), ks_sample=1_000)
    assert result.rows == 20_000 and result.drifted == []
    assert sizes == [1_000] * 16  # every numeric feature tested on the 1,000-row sample


def test_thresholds_are_validated() -> None:
    with pytest.raises(drift.DriftInputError, match="ks_alpha"):
        drift.Thresholds(ks_alpha=0)
    with pytest.raises(TypeError):
        drift.compare(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.0]}), not_a_knob=1)


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
    ids = write_capture(root, current, rows_per_record=2,
                        outputs=[f"{lines[2 * k]}\n{lines[2 * k + 1]}" for k in range(200)])
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
