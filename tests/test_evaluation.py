"""The evaluation job's metrics, pinned against examples worked by hand."""

from __future__ import annotations

import math
import re

import numpy as np
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
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    labels = (features[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(float)
    scores = 1 / (1 + np.exp(-3 * features[:, 0]))  # what the model answered in the batch transform
    root = tmp_path / "processing"
    for name in ("code", "predictions", "test"):
        (root / name).mkdir(parents=True)
    np.savetxt(root / "test" / "part-0.csv", np.column_stack([labels, features]), delimiter=",")
    (root / "predictions" / "part-0.csv.out").write_text("".join(f"{score:.6f}\n" for score in scores))
    script = root / "code" / "evaluate.py"
    shutil.copy(Path(__file__).resolve().parent.parent / "jobs" / "evaluation" / "evaluate.py", script)

    result = subprocess.run([sys.executable, "-I", str(script), "--problem-type", "binary_classification"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={"PROCESSING_ROOT": str(root), "PATH": "/usr/bin:/bin"})

    assert result.returncode == 0, result.stderr
    report = json.loads((root / "evaluation" / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["accuracy"]["value"] > 0.8
    assert json.loads(result.stdout.strip().splitlines()[-1])["rows"] == 200


# ---------------------------------------------------------------------------
# Multiclass classification
# ---------------------------------------------------------------------------

# Nine cases, three classes. Predictions (argmax of the score vectors below): [0,0,1, 1,1,2, 2,2,0]
#   class 0: TP 2 (cases 1-2), FN 1 (case 3 -> 1), FP 1 (case 9: 2 -> 0)
#   class 1: TP 2 (cases 4-5), FN 1 (case 6 -> 2), FP 1 (case 3)
#   class 2: TP 2 (cases 7-8), FN 1 (case 9 -> 0), FP 1 (case 6)
MULTI_LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2]
MULTI_SCORES = [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1],
                [0.2, 0.7, 0.1], [0.1, 0.5, 0.4], [0.1, 0.4, 0.5],
                [0.1, 0.2, 0.7], [0.3, 0.1, 0.6], [0.5, 0.1, 0.4]]


@pytest.fixture(scope="module")
def multiclass() -> dict:
    from jobs.evaluation.evaluate import multiclass_report

    return multiclass_report(MULTI_LABELS, MULTI_SCORES)["multiclass_classification_metrics"]


def test_multiclass_confusion_matrix_by_hand(multiclass: dict) -> None:
    # rows: actual class, columns: predicted class (the binary report's layout)
    assert multiclass["confusion_matrix"] == {"0": {"0": 2, "1": 1, "2": 0}, "1": {"0": 0, "1": 2, "2": 1},
                                              "2": {"0": 1, "1": 0, "2": 2}}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("accuracy", 6 / 9),
        ("macro_precision", 2 / 3),   # every class: TP 2 / (TP 2 + FP 1)
        ("macro_recall", 2 / 3),      # every class: TP 2 / (TP 2 + FN 1)
        ("macro_f1", 2 / 3),
        ("weighted_precision", 2 / 3),  # equal supports: weighted = macro
        ("weighted_f1", 2 / 3),
        ("weighted_f0_5", 2 / 3),
        ("weighted_f2", 2 / 3),
        # class 0 vs rest: positives score 0.8, 0.6, 0.3 against negatives 0.2, 0.1, 0.1, 0.1, 0.3, 0.5:
        # 0.8 and 0.6 beat all 6, 0.3 beats 4 and ties 1 (counts 1/2) -> 16.5 / 18
        # class 1: 0.7, 0.5, 0.4 against 0.1, 0.3, 0.6, 0.2, 0.1, 0.1 -> 6 + 5 + 5 = 16 / 18
        # class 2: 0.7, 0.6, 0.4 against 0.1, 0.1, 0.1, 0.1, 0.4, 0.5 -> 6 + 6 + 4.5 = 16.5 / 18
        ("macro_auc", (16.5 + 16 + 16.5) / 3 / 18),
        ("weighted_auc", (16.5 + 16 + 16.5) / 3 / 18),
    ],
)
def test_multiclass_metric_by_hand(multiclass: dict, metric: str, expected: float) -> None:
    assert multiclass[metric]["value"] == pytest.approx(expected)


def test_multiclass_matches_scikit_learn_on_unbalanced_classes() -> None:
    import numpy as np
    from sklearn import metrics as skm

    from jobs.evaluation.evaluate import multiclass_report

    rng = np.random.default_rng(0)
    labels = rng.choice(4, size=600, p=[0.5, 0.3, 0.15, 0.05])
    logits = rng.normal(size=(600, 4)) + 1.5 * np.eye(4)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    report = multiclass_report(labels, probabilities.round(4))["multiclass_classification_metrics"]
    predicted = probabilities.round(4).argmax(axis=1)
    for average in ("macro", "weighted"):
        assert report[f"{average}_f1"]["value"] == pytest.approx(skm.f1_score(labels, predicted, average=average))
        assert report[f"{average}_recall"]["value"] == pytest.approx(
            skm.recall_score(labels, predicted, average=average))
        # rounded to 4 digits, rows sum to 1 only up to rounding: renormalized before the AUC
        assert report[f"{average}_auc"]["value"] == pytest.approx(
            skm.roc_auc_score(labels, probabilities, multi_class="ovr", average=average), abs=1e-3)
    for name, entry in report.items():
        if isinstance(entry, dict) and "value" in entry:
            assert isinstance(entry["standard_deviation"], float) and entry["standard_deviation"] > 0, name


def test_multiclass_class_index_predictions_have_no_auc() -> None:
    from jobs.evaluation.evaluate import multiclass_report

    report = multiclass_report([0, 1, 2, 2], [0.0, 2.0, 2.0, 2.0])["multiclass_classification_metrics"]
    assert report["accuracy"]["value"] == pytest.approx(3 / 4)
    assert report["macro_auc"] == report["weighted_auc"] == {"value": "NaN", "standard_deviation": "NaN"}
    assert report["confusion_matrix"]["1"] == {"0": 0, "1": 0, "2": 1}
    flat = flat_metrics({"multiclass_classification_metrics": report})
    assert {"accuracy", "macro_f1", "weighted_f1", "macro_precision", "weighted_recall"} <= set(flat)
    assert "macro_auc" not in flat and all(name.replace("_", "").isalnum() for name in flat)


def test_multiclass_scores_that_are_not_probabilities_have_no_auc() -> None:
    from jobs.evaluation.evaluate import multiclass_report

    report = multiclass_report([0, 1, 2], [[2.0, -1.0, 0.5], [0.1, 3.0, 0.2], [0.0, 1.0, 4.0]])
    section = report["multiclass_classification_metrics"]
    assert section["accuracy"]["value"] == 1.0 and section["macro_auc"]["value"] == "NaN"


@pytest.mark.parametrize(
    ("labels", "predictions", "message"),
    [([0, 1.5], [0, 1], "labels must be class indices"), ([0, 1], [0, -1], "predictions must be class indices"),
     ([0, 3], [[0.5, 0.5], [0.5, 0.5]], "label 3 but the predictions score 2 classes"),
     ([0, 1], [0], "equal"), ([], [], "non-zero")],
)
def test_bad_multiclass_input(labels, predictions, message: str) -> None:
    from jobs.evaluation.evaluate import multiclass_report

    with pytest.raises(ValueError, match=message):
        multiclass_report(labels, predictions)


def test_main_writes_the_multiclass_section(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import numpy as np

    from jobs.evaluation import evaluate

    (tmp_path / "test").mkdir()
    np.savetxt(tmp_path / "test" / "part-0.csv", np.column_stack([MULTI_LABELS, np.zeros((9, 2))]), delimiter=",")
    (tmp_path / "predictions").mkdir()
    # the transform's two forms: the built-in XGBoost's "[a, b, c]", scikit-learn's CSV "a,b,c"
    (tmp_path / "predictions" / "part-0.csv.out").write_text("".join(
        (str(row) if i % 2 else ",".join(map(str, row))) + "\n" for i, row in enumerate(MULTI_SCORES)))
    evaluate.main(["--problem-type", "multiclass_classification", "--test-dir", str(tmp_path / "test"),
                   "--output-dir", str(tmp_path / "evaluation"), "--predictions-dir", str(tmp_path / "predictions")])
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert report["multiclass_classification_metrics"]["accuracy"]["value"] == pytest.approx(6 / 9)


def test_multiclass_probabilities_rounded_to_3_digits_still_have_an_auc() -> None:
    import numpy as np
    from sklearn import metrics as skm

    from jobs.evaluation.evaluate import multiclass_report

    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet([1, 1, 1, 1, 1], size=300).round(3)  # rows sum to 1 +- 0.0025
    labels = probabilities.argmax(axis=1)
    section = multiclass_report(labels, probabilities)["multiclass_classification_metrics"]
    renormalized = probabilities / probabilities.sum(axis=1, keepdims=True)
    assert section["macro_auc"]["value"] == pytest.approx(skm.roc_auc_score(labels, renormalized, multi_class="ovr"))
    not_probabilities = probabilities * 1.05  # rows sum to 1.05
    assert multiclass_report(labels, not_probabilities)["multiclass_classification_metrics"]["macro_auc"]["value"] \
        == "NaN"


@pytest.mark.parametrize(("labels", "scores", "message"), [
    ([1, 1, 1], [float("nan"), float("nan"), 0.2], "2 of 3 scores are NaN or infinite"),  # was: NaN as negative, accuracy 1.0
    ([0.0, 0.37, 1.0], [0.1, 0.2, 0.9], "labels must be 0 or 1 for binary classification; 1 are not (e.g. 0.37)"),
    ([17.99, 20.57, 19.69], [0.1, 0.2, 0.9], "is the label the first column?"),  # the label column missing
])
def test_classification_refuses_garbage_before_scoring_it(labels, scores, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        classification_report(labels, scores)


def test_regression_refuses_non_finite_values() -> None:
    with pytest.raises(ValueError, match="1 of 2 predictions are NaN or infinite"):
        regression_report([1.0, 2.0], [1.0, float("inf")])


def _processing_root(tmp_path, test_rows: np.ndarray, answers: str):  # noqa: ANN202
    for name in ("predictions", "test"):
        (tmp_path / name).mkdir()
    np.savetxt(tmp_path / "test" / "part.csv", test_rows, delimiter=",")
    (tmp_path / "predictions" / "part.csv.out").write_text(answers)
    return ["--predictions-dir", str(tmp_path / "predictions"), "--test-dir", str(tmp_path / "test"),
            "--output-dir", str(tmp_path / "out")]


@pytest.mark.parametrize(("answers", "problem_type", "message"), [
    ("0.1\n0.2\n", "regression", "part.csv: 3 test rows but 2 predictions in part.csv.out"),
    ("0.1\n0.2\n0.3\n0.4\n", "regression", "part.csv: 3 test rows but 4 predictions"),
    ("0.1\n0.2\nnan-ish\n", "regression", "part.csv.out: a line is not a number or a list of numbers"),
    ("0.1,0.9\n0.2\n0.3\n", "binary_classification", "predictions have [1, 2] values per row"),
    ("0.1,0.8,0.1\n0.2,0.7,0.1\n0.3,0.3,0.4\n", "binary_classification", "expects one prediction per row (got 3)"),
])
def test_predictions_that_do_not_fit_the_test_split_are_refused(tmp_path, answers: str, problem_type: str,
                                                                message: str) -> None:
    from jobs.evaluation import evaluate

    rows = np.column_stack([np.ones(3), np.random.default_rng(1).normal(size=(3, 4))])
    arguments = _processing_root(tmp_path, rows, answers)
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate.main(["--problem-type", problem_type, *arguments])
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_a_test_file_without_predictions_is_refused(tmp_path) -> None:
    from jobs.evaluation import evaluate

    arguments = _processing_root(tmp_path, np.ones((3, 2)), "1\n1\n1\n")
    (tmp_path / "predictions" / "part.csv.out").unlink()
    with pytest.raises(FileNotFoundError, match="no predictions for part.csv"):
        evaluate.main(["--problem-type", "regression", *arguments])


def test_binary_probability_pairs_score_the_positive_class(tmp_path) -> None:
    """scikit-learn's predict_proba answers two probabilities per row: the second is the positive class's."""
    from jobs.evaluation import evaluate

    labels = np.array([0, 1, 1, 0])
    arguments = _processing_root(tmp_path, np.column_stack([labels, np.zeros((4, 2))]),
                                 "0.9,0.1\n0.2,0.8\n0.4,0.6\n0.7,0.3\n")
    report = evaluate.main(["--problem-type", "binary_classification", *arguments])
    assert report["binary_classification_metrics"]["accuracy"]["value"] == 1.0


def test_text_features_after_the_label_are_never_read(tmp_path) -> None:
    """A script model's test split keeps its categories as text (quoted where they hold a comma):
    the evaluation reads the label column only."""
    from jobs.evaluation import evaluate

    arguments = _processing_root(tmp_path, np.ones((1, 1)), "0.2\n0.9\n0.8\n")
    (tmp_path / "test" / "part.csv").write_text('0,basic,"north, coast",12\n1,premium,south,3\n1,basic,east,1\n')
    report = evaluate.main(["--problem-type", "binary_classification", *arguments])
    assert report["binary_classification_metrics"]["accuracy"]["value"] == 1.0


# Linear Learner's JSON Lines answers ("Linear learner response formats"), one record per test row
@pytest.mark.parametrize(("problem_type", "labels", "answers", "metric", "expected"), [
    ("binary_classification", [1, 0, 1, 0],
     ['{"score": 0.9, "predicted_label": 1}', '{"score": 0.2, "predicted_label": 0}',
      '{"score": 0.4, "predicted_label": 0}', '{"score": 0.1, "predicted_label": 0}'], "accuracy", 0.75),
    ("multiclass_classification", [0, 1, 2],
     ['{"score": [0.7, 0.2, 0.1], "predicted_label": 0}', '{"score": [0.1, 0.3, 0.6], "predicted_label": 2}',
      '{"score": [0.1, 0.1, 0.8], "predicted_label": 2}'], "accuracy", 2 / 3),
    ("regression", [10.0, 20.0, 30.0], ['{"score": 12.0}', '{"score": 18.0}', '{"score": 30.0}'], "mae", 4 / 3),
])
def test_linear_learner_json_lines_are_scored_per_problem_type(tmp_path, problem_type: str, labels: list,
                                                              answers: list[str], metric: str, expected: float) -> None:
    from jobs.evaluation import evaluate

    rows = np.column_stack([labels, np.zeros((len(labels), 2))])
    metrics = flat_metrics(evaluate.main(["--problem-type", problem_type,
                                          *_processing_root(tmp_path, rows, "\n".join(answers) + "\n")]))
    assert metrics[metric] == pytest.approx(expected)


@pytest.mark.parametrize(("answers", "message"), [
    ('{"score": 0.1}\n{"predicted_label": 1}\n{"score": 0.3}\n', "a JSON Lines record without a numeric score"),
    ('{"score": 0.1}\n{"score": "high"}\n{"score": 0.3}\n', "a JSON Lines record without a numeric score"),
    ('{"score": 0.1}\n{"score": 0.2\n{"score": 0.3}\n', "a JSON Lines record that is not JSON"),
])
def test_linear_learner_records_without_a_score_are_refused(tmp_path, answers: str, message: str) -> None:
    from jobs.evaluation import evaluate

    arguments = _processing_root(tmp_path, np.column_stack([np.ones(3), np.zeros((3, 2))]), answers)
    with pytest.raises(ValueError, match=re.escape(f"part.csv.out: a line is not a number or a list of numbers ({message})")):
        evaluate.main(["--problem-type", "regression", *arguments])
