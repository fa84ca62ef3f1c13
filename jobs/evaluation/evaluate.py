#!/usr/bin/env python3
"""Evaluate a trained model on the held-out test split (SageMaker Processing job script).

The model is never loaded here: it predicted the test split itself, in a batch transform with
the container that serves it, so every algorithm (built-in, script, container) is scored the
same way. Self-contained: SageMaker uploads this one file and runs it in an image with numpy
and scikit-learn (the XGBoost framework image). The processing contract:

    /opt/ml/processing/test/<file>.csv              test split: label first, no header
    /opt/ml/processing/predictions/<file>.csv.out   the transform's answers, one line per row, in
                                                    order: a number (a score, a class index, a
                                                    value), or a vector of class scores as
                                                    `0.1,0.7,0.2` or `[0.1, 0.7, 0.2]`, or a
                                                    JSON Lines record (below)
    /opt/ml/processing/evaluation/                  evaluation.json is written here

``evaluation.json`` follows SageMaker's model-quality metrics layout
(``binary_classification_metrics`` / ``multiclass_classification_metrics`` / ``regression_metrics``,
each metric a ``{"value", "standard_deviation"}`` pair), which the Model Registry's ``ModelMetrics``
references and Studio renders. Standard deviations come from a seeded bootstrap.

Linear Learner never answers in CSV; the transform asks it for JSON Lines, one record per row
("Linear learner response formats", https://docs.aws.amazon.com/sagemaker/latest/dg/LL-in-formats.html):
``{"score": 0.4, "predicted_label": 0}`` (binary: ``score`` is the positive class's probability),
``{"score": [0.1, 0.2, 0.7], "predicted_label": 2}`` (multiclass: one score per class) or
``{"score": 0.4}`` (regression). Its ``score`` is read as the line's number or vector.

Binary classification: one score per row (the positive class's probability), or a vector of two
class probabilities (scikit-learn's ``predict_proba``; the second is the positive class's).

Multiclass classification: labels are class indices 0, 1, ..., K-1. A prediction is either a class
index per row (XGBoost's ``multi:softmax``) or a vector of K per-class scores per row
(``multi:softprob``; the predicted class is the highest score). The section holds the K x K
confusion matrix (actual class -> predicted class -> count), accuracy, macro and weighted
precision, recall and F1 (scikit-learn's definitions, zero_division=0, over the classes present in
the labels or the predictions), weighted F0.5 and F2 (Model Monitor's names), and, when the vectors
are probabilities (in [0, 1], each summing to 1 within 0.01, so rounded scores count; they are
renormalized) and every class occurs in the labels, the one-vs-rest ROC AUC averaged over classes
(``macro_auc``) and weighted by class support (``weighted_auc``).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
from typing import Any

import numpy as np
from sklearn import metrics as skm

BOOTSTRAP_SAMPLES = 100
BOOTSTRAP_SEED = 0
PROBLEM_TYPES = ("binary_classification", "multiclass_classification", "regression")

# SageMaker mounts inputs and outputs here; offline runs point it at a temp dir.
PROCESSING_ROOT = os.environ.get("PROCESSING_ROOT", "/opt/ml/processing")


def _resamples(n: int) -> np.ndarray:
    """Seeded bootstrap row indices, shape (BOOTSTRAP_SAMPLES, n)."""
    return np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_SAMPLES, n))


def _std(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(np.std(values)) if len(values) > 1 else None


def _entry(value: float | None, std: float | None) -> dict[str, Any]:
    # SageMaker writes "NaN" (a string) where a figure is undefined.
    clean = lambda x: "NaN" if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)  # noqa: E731
    return {"value": clean(value), "standard_deviation": clean(std)}


def _count_metrics(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """Label-based metrics from confusion counts, vectorized over bootstrap resamples.
    Same definitions as scikit-learn (precision/recall/F with zero_division=0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        div = lambda a, b: np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)  # noqa: E731
        zero = lambda a, b: np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)  # noqa: E731
        precision, recall = zero(tp, tp + fp), zero(tp, tp + fn)
        f_beta = lambda beta: zero((1 + beta**2) * precision * recall, beta**2 * precision + recall)  # noqa: E731
        return {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": precision,
            "recall": recall,
            "f1": f_beta(1.0),
            "f0_5": f_beta(0.5),
            "f2": f_beta(2.0),
            "true_positive_rate": div(tp, tp + fn),
            "true_negative_rate": div(tn, tn + fp),
            "false_positive_rate": div(fp, fp + tn),
            "false_negative_rate": div(fn, fn + tp),
        }


def _finite(values: np.ndarray, what: str) -> None:
    """NaN or infinite values would be scored as if they were numbers (a NaN score counts as
    a negative): refuse them, saying how many."""
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(f"{bad} of {len(values)} {what} are NaN or infinite")


def classification_report(y_true: Any, scores: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Binary classification metrics from labels (0/1) and positive-class scores."""
    labels = np.asarray(y_true, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if len(labels) == 0 or len(labels) != len(scores):
        raise ValueError(f"need equal, non-zero numbers of labels and scores (got {len(labels)} and {len(scores)})")
    wrong = labels[~np.isin(labels, (0.0, 1.0))]  # checked before any cast: 0.37 must not become 0
    if len(wrong):
        raise ValueError(f"labels must be 0 or 1 for binary classification; {len(wrong)} are not (e.g. "
                         f"{', '.join(f'{v:g}' for v in np.unique(wrong)[:3])}): is the label the first column?")
    _finite(scores, "scores")
    y_true = labels.astype(int)
    y_pred = (scores >= threshold).astype(int)
    tn, fp, fn, tp = (int(x) for x in skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel())
    both_classes = len(np.unique(y_true)) == 2

    # Point values: scikit-learn. Deviations: the same formulas over bootstrap resamples.
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
        "f0_5": skm.fbeta_score(y_true, y_pred, beta=0.5, zero_division=0),
        "f2": skm.fbeta_score(y_true, y_pred, beta=2, zero_division=0),
        **{name: float(rate) for name, rate in _count_metrics(*(np.array(x) for x in (tp, fp, fn, tn))).items()
           if name.endswith("_rate")},
    }
    index = _resamples(len(y_true))
    t, p = y_true[index], y_pred[index]
    resampled = _count_metrics(
        (t & p).sum(axis=1), ((1 - t) & p).sum(axis=1), (t & (1 - p)).sum(axis=1), ((1 - t) & (1 - p)).sum(axis=1)
    )
    report: dict[str, Any] = {"confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}}}
    for name, value in values.items():
        report[name] = _entry(value, _std(resampled[name]))
    if both_classes:
        aucs = np.array([
            skm.roc_auc_score(t_row, scores[i_row]) if 0 < t_row.sum() < len(t_row) else np.nan
            for t_row, i_row in zip(t, index)
        ])
        report["auc"] = _entry(skm.roc_auc_score(y_true, scores), _std(aucs))
        fpr, tpr, _ = skm.roc_curve(y_true, scores, drop_intermediate=False)
        precision, recall, _ = skm.precision_recall_curve(y_true, scores)
    else:  # ROC is undefined with one class present; say so rather than invent a number
        report["auc"] = _entry(None, None)
        fpr, tpr, precision, recall = [], [], [], []
    report["receiver_operating_characteristic_curve"] = {
        "false_positive_rates": [float(x) for x in fpr],
        "true_positive_rates": [float(x) for x in tpr],
    }
    report["precision_recall_curve"] = {
        "precisions": [float(x) for x in precision],
        "recalls": [float(x) for x in recall],
    }
    return {"binary_classification_metrics": report}


def _class_indices(values: np.ndarray, what: str) -> np.ndarray:
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values != np.floor(values)):
        raise ValueError(f"{what} must be class indices 0, 1, ... (non-negative integers)")
    return values.astype(int)


def _multiclass_predictions(predictions: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(predicted class per row, per-class scores or None) from class indices or score vectors."""
    p = np.asarray(predictions, dtype=float)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        return _class_indices(p, "predictions"), None
    if p.ndim != 2 or not np.all(np.isfinite(p)):
        raise ValueError("predictions must be one class index or one vector of finite class scores per row")
    return p.argmax(axis=1), p


def _probabilities(scores: np.ndarray) -> np.ndarray | None:
    """Rows of ``scores`` renormalized when they are probabilities (in [0, 1], summing to 1 up to
    rounding), else None."""
    sums = scores.sum(axis=1)
    if np.all((scores >= 0) & (scores <= 1)) and np.all(np.abs(sums - 1) <= 0.01):
        # rows off by more than float error (rounded output) are renormalized; the others kept as
        # they are, so equal scores stay equal for the AUC's ties
        return scores / np.where(np.abs(sums - 1) > 1e-9, sums, 1.0)[:, None]
    return None


def _per_class(confusion: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Macro- and support-weighted precision, recall and F-scores from confusion matrices
    (..., K, K; actual x predicted), vectorized over leading axes; averages over ``labels``.
    Same definitions as scikit-learn (zero_division=0)."""
    c = confusion[..., labels[:, None], labels]
    tp = np.diagonal(c, axis1=-2, axis2=-1).astype(float)
    support, predicted = c.sum(axis=-1).astype(float), c.sum(axis=-2).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        zero = lambda a, b: np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)  # noqa: E731
        precision, recall = zero(tp, predicted), zero(tp, support)
        f_beta = lambda beta: zero((1 + beta**2) * precision * recall, beta**2 * precision + recall)  # noqa: E731
        weights = zero(support, support.sum(axis=-1, keepdims=True))
        values = {"precision": precision, "recall": recall, "f1": f_beta(1.0), "f0_5": f_beta(0.5), "f2": f_beta(2.0)}
        out = {"accuracy": zero(tp.sum(axis=-1), support.sum(axis=-1))}
        for name, per_class in values.items():
            if name in ("precision", "recall", "f1"):
                out[f"macro_{name}"] = per_class.mean(axis=-1)
            out[f"weighted_{name}"] = (per_class * weights).sum(axis=-1)
    return out


def _ovr_auc(y_true: np.ndarray, probabilities: np.ndarray) -> tuple[float, float]:
    """One-vs-rest ROC AUC (macro, support-weighted); NaN unless every class occurs in ``y_true``."""
    classes = probabilities.shape[1]
    support = np.bincount(y_true, minlength=classes)
    if support.min() == 0 or support.max() == len(y_true):
        return math.nan, math.nan
    aucs = np.array([skm.roc_auc_score(y_true == k, probabilities[:, k]) for k in range(classes)])
    return float(aucs.mean()), float(np.average(aucs, weights=support))


def multiclass_report(y_true: Any, predictions: Any) -> dict[str, Any]:
    """Multiclass metrics from class indices and predictions (a class index or a vector of class
    scores per row): see the module docstring."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred, scores = _multiclass_predictions(predictions)
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise ValueError(f"need equal, non-zero numbers of labels and predictions "
                         f"(got {len(y_true)} and {len(y_pred)})")
    y_true = _class_indices(y_true, "labels")
    classes = scores.shape[1] if scores is not None else int(max(y_true.max(), y_pred.max())) + 1
    if y_true.max() >= classes:
        raise ValueError(f"label {int(y_true.max())} but the predictions score {classes} classes (0 to {classes - 1})")
    labels = np.union1d(y_true, y_pred)  # scikit-learn's default label set for averages
    confusion = skm.confusion_matrix(y_true, y_pred, labels=range(classes))
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        **{f"{average}_{name}": function(y_true, y_pred, average=average, zero_division=0)
           for average in ("macro", "weighted")
           for name, function in (("precision", skm.precision_score), ("recall", skm.recall_score),
                                  ("f1", skm.f1_score))},
        "weighted_f0_5": skm.fbeta_score(y_true, y_pred, beta=0.5, average="weighted", zero_division=0),
        "weighted_f2": skm.fbeta_score(y_true, y_pred, beta=2, average="weighted", zero_division=0),
    }
    index = _resamples(len(y_true))
    codes = (np.arange(BOOTSTRAP_SAMPLES)[:, None] * classes + y_true[index]) * classes + y_pred[index]
    resampled_confusion = np.bincount(codes.ravel(), minlength=BOOTSTRAP_SAMPLES * classes * classes).reshape(
        BOOTSTRAP_SAMPLES, classes, classes)
    resampled = _per_class(resampled_confusion, labels)
    report: dict[str, Any] = {"confusion_matrix": {
        str(actual): {str(predicted): int(confusion[actual, predicted]) for predicted in range(classes)}
        for actual in range(classes)}}
    for name, value in values.items():
        report[name] = _entry(value, _std(resampled[name]) if len(y_true) > 1 else None)
    probabilities = _probabilities(scores) if scores is not None else None
    if probabilities is None:  # class indices or scores that are not probabilities: no AUC
        report["macro_auc"] = report["weighted_auc"] = _entry(None, None)
    else:
        macro, weighted = _ovr_auc(y_true, probabilities)
        aucs = np.array([_ovr_auc(y_true[i], probabilities[i]) for i in index]) if len(y_true) > 1 else None
        report["macro_auc"] = _entry(macro, None if aucs is None else _std(aucs[:, 0]))
        report["weighted_auc"] = _entry(weighted, None if aucs is None else _std(aucs[:, 1]))
    return {"multiclass_classification_metrics": report}


def regression_report(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Regression metrics: MSE, RMSE, MAE, R²."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise ValueError(f"need equal, non-zero numbers of labels and predictions (got {len(y_true)} and {len(y_pred)})")
    _finite(y_true, "labels")
    _finite(y_pred, "predictions")
    values = {
        "mse": skm.mean_squared_error(y_true, y_pred),
        "rmse": math.sqrt(skm.mean_squared_error(y_true, y_pred)),
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "r2": skm.r2_score(y_true, y_pred) if len(y_true) > 1 else float("nan"),
    }
    index = _resamples(len(y_true))
    t, p = y_true[index], y_pred[index]
    mse = ((t - p) ** 2).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_tot = ((t - t.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        r2 = np.where(ss_tot > 0, 1 - ((t - p) ** 2).sum(axis=1) / np.where(ss_tot > 0, ss_tot, 1), np.nan)
    resampled = {"mse": mse, "rmse": np.sqrt(mse), "mae": np.abs(t - p).mean(axis=1), "r2": r2}
    return {
        "regression_metrics": {
            name: _entry(value, _std(resampled[name]) if len(y_true) > 1 else None) for name, value in values.items()
        }
    }


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """``{"f1": 0.93, ...}``: the scalar values of a report (what metric gates compare)."""
    (section,) = report.values()
    return {
        name: entry["value"]
        for name, entry in section.items()
        if isinstance(entry, dict) and "value" in entry and entry["value"] != "NaN"
    }


# ---------------------------------------------------------------------------
# Processing-job entry point
# ---------------------------------------------------------------------------


def _load_labels(path: str) -> np.ndarray:
    """The first column of a test file: the label (the features after it may be text, e.g. the
    categories a script model encodes itself, and are never read here)."""
    try:
        return np.loadtxt(path, delimiter=",", ndmin=1, usecols=0, quotechar='"')
    except ValueError as error:  # a header, a text label, a ragged row
        raise ValueError(f"{os.path.basename(path)}: {str(error).splitlines()[0]}") from None


def _prediction_lines(path: str) -> list[list[float]]:
    """One list of numbers per line of a transform output (``0.3``, ``0.1,0.9`` or ``[0.1, 0.9]``,
    or a Linear Learner JSON Lines record: its ``score``)."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().rstrip("\n").split("\n")
    try:
        return [_json_score(line) if line.lstrip().startswith("{") else
                [float(part) for part in line.strip().strip("[]").split(",")] for line in lines]
    except ValueError as error:
        detail = f" ({error})" if str(error).startswith("a JSON") else ""
        raise ValueError(f"{os.path.basename(path)}: a line is not a number or a list of numbers{detail}") from None


def _json_score(line: str) -> list[float]:
    """A Linear Learner JSON Lines record's ``score``: a number, or one per class."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise ValueError("a JSON Lines record that is not JSON") from None
    score = record.get("score") if isinstance(record, dict) else None
    scores = score if isinstance(score, list) else [score]
    if not scores or not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in scores):
        raise ValueError("a JSON Lines record without a numeric score")
    return [float(value) for value in scores]


def load_predictions(test_dir: str, predictions_dir: str) -> tuple[np.ndarray, list[list[float]]]:
    """The labels of every test file and the predictions for its rows (``<file>.out``), in order."""
    files = sorted(glob.glob(os.path.join(test_dir, "**", "*.csv"), recursive=True))
    if not files:
        raise FileNotFoundError(f"no .csv files in {test_dir}")
    labels, predictions = [], []
    for path in files:
        relative = os.path.relpath(path, test_dir)
        answers = os.path.join(predictions_dir, f"{relative}.out")
        if not os.path.exists(answers):
            raise FileNotFoundError(f"no predictions for {relative}: {relative}.out is missing from the transform output")
        table, lines = _load_labels(path), _prediction_lines(answers)
        if len(lines) != len(table):
            raise ValueError(f"{relative}: {len(table)} test rows but {len(lines)} predictions in {relative}.out")
        labels.append(table)
        predictions.extend(lines)
    return np.concatenate(labels), predictions


def _shaped(predictions: list[list[float]], problem_type: str) -> np.ndarray:
    """Scores (binary), class indices or score vectors (multiclass), values (regression)."""
    widths = {len(row) for row in predictions}
    if len(widths) != 1:
        raise ValueError(f"predictions have {sorted(widths)} values per row; one width for every row is expected")
    table = np.asarray(predictions, dtype=float)
    if problem_type == "multiclass_classification":
        return table[:, 0] if table.shape[1] == 1 else table
    if table.shape[1] == 1:
        return table[:, 0]
    if problem_type == "binary_classification" and table.shape[1] == 2:
        return table[:, 1]  # the positive class's probability
    raise ValueError(f"{problem_type.replace('_', ' ')} expects one prediction per row (got {table.shape[1]})")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem-type", choices=PROBLEM_TYPES, required=True)
    parser.add_argument("--threshold", type=float, default=0.5, help="positive-class score cut-off")
    parser.add_argument("--predictions-dir", default=f"{PROCESSING_ROOT}/predictions")
    parser.add_argument("--test-dir", default=f"{PROCESSING_ROOT}/test")
    parser.add_argument("--output-dir", default=f"{PROCESSING_ROOT}/evaluation")
    args = parser.parse_args(argv)

    labels, lines = load_predictions(args.test_dir, args.predictions_dir)
    predictions = _shaped(lines, args.problem_type)
    if args.problem_type == "binary_classification":
        report = classification_report(labels, predictions, args.threshold)
    elif args.problem_type == "multiclass_classification":
        report = multiclass_report(labels, predictions)
    else:
        report = regression_report(labels, predictions)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "evaluation.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps({"rows": int(len(labels)), **flat_metrics(report)}))
    return report


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as error:  # one line for the job's FailureReason
        raise SystemExit(f"evaluation: {error}") from None
