"""Linear Learner, the second built-in algorithm: its hyperparameter table, the config that
derives and checks its settings from the dataset, execution-input overrides in prepare_run,
the evaluation reading its JSON Lines answers, and the offline emulation (training, serving,
tuning). Every test here is cheap: no synth, no state machine."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws

from mlops.config import ConfigError, load_stage_config
from mlops.hyperparameters import linear_learner
from tests.conftest import load_lambda
from tests.test_config import _as_multiclass, _as_regression, _edit, _error, config_dir  # noqa: F401 - the fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _as_linear_learner(d: dict, dataset: str = "breast_cancer", **hyperparameters: str) -> None:
    """dev with Linear Learner on ``dataset`` (XGBoost's hyperparameters and tuning dropped)."""
    if dataset == "diabetes":
        _as_regression(d)
    elif dataset == "wine":
        _as_multiclass(d)
    d["pipeline"]["model"] = {"builtin": "linear-learner"}
    d["pipeline"].pop("tuning")
    d["pipeline"]["hyperparameters"] = dict(hyperparameters)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(("dataset", "derived"), [
    ("breast_cancer", {"predictor_type": "binary_classifier"}),
    ("wine", {"predictor_type": "multiclass_classifier", "num_classes": "3"}),
    ("diabetes", {"predictor_type": "regressor"}),
])
def test_predictor_type_and_num_classes_follow_the_dataset(config_dir: Path, dataset: str, derived: dict) -> None:
    _edit(config_dir, "dev", lambda d: _as_linear_learner(d, dataset, epochs="5", wd="auto"))
    pipeline = load_stage_config("dev", config_dir).pipeline
    assert pipeline.linear_learner and pipeline.hyperparameters == {**derived, "epochs": "5", "wd": "auto"}


@pytest.mark.parametrize(("dataset", "hyperparameters", "expected"), [
    ("diabetes", {"predictor_type": "binary_classifier"},
     "pipeline.hyperparameters.predictor_type: 'binary_classifier' does not fit a regression dataset; allowed: regressor"),
    ("wine", {"num_classes": "4"},
     "pipeline.hyperparameters.num_classes: the dataset's label has 3 classes; allowed: 3 (got 4)"),
    ("breast_cancer", {"num_classes": "3"},
     "pipeline.hyperparameters.num_classes: only for multiclass classification (this dataset is binary classification)"),
    ("diabetes", {"loss": "logistic"}, "pipeline.hyperparameters.loss: 'logistic' is not a regressor loss; allowed: auto"),
    ("diabetes", {"target_recall": "0.9"},
     "pipeline.hyperparameters.target_recall: only for predictor_type binary_classifier (this dataset trains a regressor)"),
    ("diabetes", {"eta": "0.1"}, "pipeline.hyperparameters.eta: unknown Linear Learner hyperparameter; did you mean "
                                 "learning_rate?"),
    ("diabetes", {"momentum": "1"}, "pipeline.hyperparameters.momentum: must be a number in [0, 1) or auto (got '1')"),
    ("diabetes", {"num_classes": "2"}, "pipeline.hyperparameters.num_classes: must be an integer in [3, 1000000]"),
])
def test_contradicting_or_invalid_hyperparameters_fail_naming_the_field(config_dir: Path, dataset: str,
                                                                        hyperparameters: dict, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: _as_linear_learner(d, dataset, **hyperparameters))
    assert expected in _error(config_dir)


def _tuning(**tuning) -> dict:
    return {"max_jobs": 2, "max_parallel_jobs": 1, "ranges": [{"name": "wd", "type": "continuous", "min": 1e-7,
                                                               "max": 1, "scaling": "Logarithmic"}], **tuning}


def test_tuning_objective_defaults_to_the_validation_objective_loss(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: (_as_linear_learner(d, "diabetes"), d["pipeline"].update(tuning=_tuning())))
    tuning = load_stage_config("dev", config_dir).pipeline.tuning
    assert (tuning.objective_metric, tuning.objective_type) == ("validation:objective_loss", "Minimize")


@pytest.mark.parametrize(("tuning", "expected"), [
    (_tuning(objective_metric="validation:rmse"),
     "pipeline.tuning.objective_metric: 'validation:rmse' is not a metric Linear Learner reports for regression; "
     "allowed: validation:absolute_loss, validation:mse, validation:objective_loss"),
    (_tuning(objective_metric="validation:mse", objective_type="Maximize"),
     "pipeline.tuning.objective_type: mse is better when lower; allowed: Minimize"),
    (_tuning(ranges=[{"name": "epochs", "type": "integer", "min": 5, "max": 20}]),
     "pipeline.tuning.ranges[0]: range 'epochs': Linear Learner's tuner cannot search epochs; allowed: l1, "
     "learning_rate, mini_batch_size, positive_example_weight_mult, use_bias, wd"),
    (_tuning(ranges=[{"name": "wd", "type": "continuous", "min": -1, "max": 1}]),
     "pipeline.tuning.ranges[0]: range 'wd': must be a number >= 0 or auto (got -1.0)"),
    (_tuning(ranges=[{"name": "use_bias", "type": "integer", "min": 0, "max": 1}]),
     "pipeline.tuning.ranges[0]: range 'use_bias': use_bias is one of true, false; allowed range types: categorical"),
])
def test_tuning_is_checked_against_the_tunable_hyperparameters_and_metrics(config_dir: Path, tuning: dict,
                                                                           expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_as_linear_learner(d, "diabetes"), d["pipeline"].update(tuning=tuning)))
    assert expected in _error(config_dir)


def _ll_candidates(d: dict, select_by: str | None = None, dataset: str = "diabetes") -> None:
    _as_linear_learner(d, dataset)
    d["pipeline"].pop("hyperparameters")
    d["pipeline"]["model"] = {"candidates": [{"name": "linear", "builtin": "linear-learner"},
                                             {"name": "plain", "builtin": "linear-learner",
                                              "hyperparameters": {"normalize_data": "false"}}],
                              **({"select_by": select_by} if select_by else {})}


def test_the_default_select_by_names_what_linear_learner_reports_instead(config_dir: Path) -> None:
    _edit(config_dir, "dev", _ll_candidates)
    assert ("pipeline.model.select_by: candidate 'linear' does not report 'validation:rmse'; it reports "
            "validation:absolute_loss, validation:mse, validation:objective_loss") in _error(config_dir)


def test_linear_learner_candidates_compare_on_a_metric_they_report(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: _ll_candidates(d, "validation:mse"))
    pipeline = load_stage_config("dev", config_dir).pipeline
    assert pipeline.select_by == ("validation:mse", "Minimize")
    assert [c.pipeline.hyperparameters for c in pipeline.candidates] == [
        {"predictor_type": "regressor"}, {"predictor_type": "regressor", "normalize_data": "false"}]


def test_a_metric_whose_name_says_nothing_takes_aws_direction(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: _ll_candidates(d, "validation:dcg", dataset="wine"))
    assert load_stage_config("dev", config_dir).pipeline.select_by == ("validation:dcg", "Maximize")


# ---------------------------------------------------------------- the table


def test_table_reads_values_like_sagemaker_passes_them() -> None:
    assert linear_learner.canonical("wd", 0.01) == "0.01" and linear_learner.canonical("wd", " auto") == "auto"
    assert linear_learner.canonical("epochs", "15") == "15"
    assert linear_learner.canonical("positive_example_weight_mult", "balanced") == "balanced"
    for name, value in [("epochs", "1.5"), ("use_bias", True), ("learning_rate", 0), ("quantile", 1),
                        ("optimizer", "adagrad"), ("predictor_type", "regression")]:
        with pytest.raises(ValueError, match="must be"):
            linear_learner.canonical(name, value)


# ---------------------------------------------------------------- prepare_run overrides


@pytest.fixture(scope="module")
def prepare_run():
    return load_lambda("prepare_run")


def _event(hyperparameters: dict, problem_type: str = "regression", classes: int | None = None, **defaults) -> dict:
    stage = {"predictor_type": linear_learner.PREDICTOR_TYPES[problem_type],
             **({"num_classes": str(classes)} if problem_type == "multiclass_classification" else {})}
    return {"input": {"hyperparameters": hyperparameters},
            "execution": {"id": "arn:aws:states:eu-west-1:123456789012:execution:sm:run-1", "name": "run-1"},
            "defaults": {"stem": "demo-dev", "dataset": "diabetes", "problem_type": problem_type, "classes": classes,
                         "label": "target", "hyperparameters": stage, "tuning": False,
                         "deployment_mode": "realtime", "deployment_modes": ["realtime"], "raw_bucket": "raw",
                         "raw_prefix": "sample/", "curated_bucket": "curated", "artifacts_bucket": "artifacts",
                         "experiment": "demo-dev", **defaults}}


def test_input_overrides_are_checked_against_linear_learners_table(prepare_run) -> None:
    run = prepare_run.prepare_run(prepare_run.Event.model_validate(_event({"epochs": 20, "wd": "auto"})))
    assert run["hyperparameters"] == {"predictor_type": "regressor", "epochs": "20", "wd": "auto"}


@pytest.mark.parametrize(("given", "problem_type", "expected"), [
    ({"num_round": 5}, "regression", "input.hyperparameters.num_round: unknown Linear Learner hyperparameter"),
    ({"predictor_type": "binary_classifier"}, "regression",
     "input.hyperparameters.predictor_type: 'binary_classifier' does not fit a regression dataset; allowed: regressor"),
    ({"num_classes": 4}, "multiclass_classification",
     "input.hyperparameters.num_classes: the dataset's label has 3 classes; allowed: 3 (got 4)"),
    ({"loss": "softmax_loss"}, "regression", "input.hyperparameters.loss: 'softmax_loss' is not a regressor loss"),
])
def test_input_overrides_that_do_not_fit_fail_naming_the_field(prepare_run, given: dict, problem_type: str,
                                                               expected: str) -> None:
    classes = 3 if problem_type == "multiclass_classification" else None
    with pytest.raises(prepare_run.InvalidExecutionInput, match=expected.replace("(", r"\(").replace(")", r"\)")):
        prepare_run.prepare_run(prepare_run.Event.model_validate(_event(given, problem_type, classes)))
