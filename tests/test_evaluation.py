"""The evaluation job's metrics, pinned against examples worked by hand."""

from __future__ import annotations

import math

import pytest

from jobs.evaluation.evaluate import classification_report, flat_metrics, regression_report

# Ten cases, threshold 0.5. Predictions: [1,1,1,0, 1,1,0,0,0,0]
#   TP = 3 (cases 1-3)  FN = 1 (case 4)  FP = 2 (cases 5-6)  TN = 4 (cases 7-10)
LABELS = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
SCORES = [0.9, 0.8, 0.7, 0.2, 0.6, 0.55, 0.3, 0.1, 0.4, 0.05]


@pytest.fixture(scope="module")
def classification() -> dict:
    return classification_report(LABELS, SCORES)["binary_classification_metrics"]


def test_confusion_matrix_by_hand(classification: dict) -> None:
    # rows: actual class, columns: predicted class (SageMaker's layout)
    assert classification["confusion_matrix"] == {"0": {"0": 4, "1": 2}, "1": {"0": 1, "1": 3}}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("accuracy", 7 / 10),             # (TP + TN) / all
        ("precision", 3 / 5),             # TP / (TP + FP)
        ("recall", 3 / 4),                # TP / (TP + FN)
        ("true_positive_rate", 3 / 4),
        ("f1", 2 * 0.6 * 0.75 / 1.35),    # harmonic mean of precision and recall
        ("false_positive_rate", 2 / 6),   # FP / (FP + TN)
        ("true_negative_rate", 4 / 6),    # TN / (TN + FP)
        ("false_negative_rate", 1 / 4),   # FN / (FN + TP)
        # ROC AUC = share of (positive, negative) pairs ranked correctly:
        # 0.9, 0.8 and 0.7 beat all 6 negatives, 0.2 beats 0.1 and 0.05 -> 20 / 24
        ("auc", 20 / 24),
    ],
)
def test_metric_by_hand(classification: dict, metric: str, expected: float) -> None:
    assert classification[metric]["value"] == pytest.approx(expected)


def test_every_scalar_metric_has_a_bootstrap_deviation(classification: dict) -> None:
    for name, entry in classification.items():
        if isinstance(entry, dict) and "value" in entry:
            assert isinstance(entry["standard_deviation"], float) and entry["standard_deviation"] > 0, name


def test_roc_curve_points(classification: dict) -> None:
    curve = classification["receiver_operating_characteristic_curve"]
    points = list(zip(curve["false_positive_rates"], curve["true_positive_rates"]))
    assert points[0] == (0.0, 0.0) and points[-1] == (1.0, 1.0)
    assert points == sorted(points)
    # the operating point at threshold 0.5 (FPR 2/6, TPR 3/4) is on the curve
    assert any(math.isclose(x, 2 / 6) and math.isclose(y, 3 / 4) for x, y in points)


def test_threshold_moves_the_decision() -> None:
    strict = classification_report(LABELS, SCORES, threshold=0.75)["binary_classification_metrics"]
    assert strict["confusion_matrix"] == {"0": {"0": 6, "1": 0}, "1": {"0": 2, "1": 2}}
    assert strict["precision"]["value"] == 1.0


def test_single_class_has_no_auc() -> None:
    report = classification_report([1, 1, 1], [0.9, 0.4, 0.8])["binary_classification_metrics"]
    assert report["auc"] == {"value": "NaN", "standard_deviation": "NaN"}
    assert report["receiver_operating_characteristic_curve"] == {"false_positive_rates": [], "true_positive_rates": []}
    assert report["recall"]["value"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [([0, 2], [0.1, 0.9], "labels must be 0 or 1"), ([], [], "non-zero"), ([0, 1], [0.5], "equal")],
)
def test_bad_classification_input(labels, scores, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_report(labels, scores)


def test_regression_by_hand() -> None:
    # errors: 0.5, -0.5, 0, -1
    report = regression_report([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])["regression_metrics"]
    assert report["mse"]["value"] == pytest.approx((0.25 + 0.25 + 0 + 1) / 4)
    assert report["rmse"]["value"] == pytest.approx(math.sqrt(0.375))
    assert report["mae"]["value"] == pytest.approx((0.5 + 0.5 + 0 + 1) / 4)
    # mean 2.875; SS_tot = 0.125² + 3.375² + 0.875² + 4.125² = 29.1875; SS_res = 1.5
    assert report["r2"]["value"] == pytest.approx(1 - 1.5 / 29.1875)


def test_perfect_regression() -> None:
    report = regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])["regression_metrics"]
    assert report["mse"]["value"] == 0 and report["r2"]["value"] == 1


def test_flat_metrics_for_gates() -> None:
    flat = flat_metrics(classification_report(LABELS, SCORES))
    assert flat["f1"] == pytest.approx(2 / 3) and "confusion_matrix" not in flat
    assert set(flat_metrics(regression_report([1, 2], [1, 3]))) == {"mse", "rmse", "mae", "r2"}


def test_bootstrap_is_deterministic() -> None:
    assert classification_report(LABELS, SCORES) == classification_report(LABELS, SCORES)


def test_bootstrap_deviation_shrinks_with_more_data() -> None:
    small = classification_report(LABELS, SCORES)["binary_classification_metrics"]["f1"]["standard_deviation"]
    large = classification_report(LABELS * 20, SCORES * 20)["binary_classification_metrics"]["f1"]["standard_deviation"]
    assert large < small / 2  # ~1/sqrt(20) of it


def test_script_runs_as_its_own_process_as_sagemaker_starts_it(tmp_path) -> None:
    """Offline runs call the script's ``main`` in-process; SageMaker runs ``python3 <script>``
    with the processing directories under /opt/ml/processing. This runs it that way, with only
    the file itself on the path (it must not import this repository)."""
    import io
    import json
    import shutil
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    import numpy as np
    import xgboost

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    labels = (features[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(float)
    booster = xgboost.train({"objective": "binary:logistic", "verbosity": 0},
                            xgboost.DMatrix(features, label=labels), num_boost_round=5)
    root = tmp_path / "processing"
    for name in ("code", "model", "test"):
        (root / name).mkdir(parents=True)
    raw = bytearray(booster.save_raw("ubj"))
    with tarfile.open(root / "model" / "model.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(bytes(raw)))
    np.savetxt(root / "test" / "part-0.csv", np.column_stack([labels, features]), delimiter=",")
    script = root / "code" / "evaluate.py"
    shutil.copy(Path(__file__).resolve().parent.parent / "jobs" / "evaluation" / "evaluate.py", script)

    result = subprocess.run([sys.executable, "-I", str(script), "--problem-type", "binary_classification"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={"PROCESSING_ROOT": str(root), "PATH": "/usr/bin:/bin"})

    assert result.returncode == 0, result.stderr
    report = json.loads((root / "evaluation" / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["accuracy"]["value"] > 0.8
    assert json.loads(result.stdout.strip().splitlines()[-1])["rows"] == 200
