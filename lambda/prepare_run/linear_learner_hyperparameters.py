"""The built-in SageMaker Linear Learner algorithm's hyperparameters: names, types, valid values,
and the metrics it reports for tuning and model selection.

Sources:

* "Linear learner hyperparameters", Amazon SageMaker AI Developer Guide
  (https://docs.aws.amazon.com/sagemaker/latest/dg/ll_hyperparameters.html): every name below,
  its type, range and allowed words (``auto``, ``balanced``, ``true``/``false``).
* The value lists the page folds away (``loss``, ``optimizer``,
  ``binary_classifier_model_selection_criteria``) and the open/closed ends of the ratios, from
  the SageMaker Python SDK's ``LinearLearner`` estimator, which validates the same
  hyperparameters (``sagemaker/amazon/linear_learner.py``: ``momentum``, ``beta_1``, ``beta_2``
  in [0, 1); ``lr_scheduler_factor``, ``quantile``, ``target_precision``, ``target_recall`` in (0, 1)).
* "Tune a linear learner model" (https://docs.aws.amazon.com/sagemaker/latest/dg/linear-learner-tuning.html):
  the metrics by problem type with their direction, and the tunable hyperparameters
  (``wd``, ``l1``, ``learning_rate``, ``mini_batch_size``, ``use_bias``, ``positive_example_weight_mult``).

One table for both sides, like ``xgboost_hyperparameters.py``: the prepare-run handler checks
execution input with it at run time, and the stage configuration (``mlops/hyperparameters.py``
loads this very file) checks the config's hyperparameters and tuning ranges at synth time. Plain
Python, standard library only. Values are strings as SageMaker passes them; a number may be
given as a JSON number. ``Spec`` and the parsing rules are the XGBoost table's, so both tables
read a value the same way.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from typing import Any


def _xgboost_table():  # noqa: ANN202 - a module
    """The XGBoost table beside this file, loaded by path (Lambda, the tests and the config all
    load these tables by path): its ``Spec`` and its reading of numbers are shared."""
    name = f"{__name__}_xgboost"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("xgboost_hyperparameters.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


_table = _xgboost_table()
Spec = _table.Spec

# problem type -> predictor_type (the page: binary_classifier, multiclass_classifier, regressor)
PREDICTOR_TYPES = {"binary_classification": "binary_classifier",
                   "multiclass_classification": "multiclass_classifier",
                   "regression": "regressor"}
# The losses each predictor type trains with ("loss" on the hyperparameters page: regressor
# auto/squared_loss/absolute_loss/eps_insensitive_*/quantile_loss/huber_loss; binary classifier
# auto/logistic/hinge_loss; multiclass classifier auto/softmax_loss).
LOSSES = {
    "regressor": ("auto", "squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                  "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss"),
    "binary_classifier": ("auto", "logistic", "hinge_loss"),
    "multiclass_classifier": ("auto", "softmax_loss"),
}
# Hyperparameters that only one predictor type reads
ONLY_FOR = {
    "num_classes": "multiclass_classifier",
    "balance_multiclass_weights": "multiclass_classifier",
    "accuracy_top_k": "multiclass_classifier",
    "binary_classifier_model_selection_criteria": "binary_classifier",
    "positive_example_weight_mult": "binary_classifier",
    "target_precision": "binary_classifier",
    "target_recall": "binary_classifier",
}
# "Metrics computed by the linear learner algorithm": the validation channel's, by problem type,
# each with its optimization direction. (The test: metrics need a test channel, which runs do
# not give the training job: the evaluation scores the test split itself.)
METRICS = {
    "binary_classification": {"binary_classification_accuracy": "Maximize", "binary_f_beta": "Maximize",
                              "objective_loss": "Minimize", "precision": "Maximize", "recall": "Maximize",
                              "roc_auc_score": "Maximize"},
    "multiclass_classification": {"dcg": "Maximize", "macro_f_beta": "Maximize", "macro_precision": "Maximize",
                                  "macro_recall": "Maximize", "multiclass_accuracy": "Maximize",
                                  "multiclass_top_k_accuracy": "Maximize", "objective_loss": "Minimize"},
    "regression": {"absolute_loss": "Minimize", "mse": "Minimize", "objective_loss": "Minimize"},
}
# The tuning objective where the config leaves it out: the validation loss the page describes
# as the default objective for every problem type.
DEFAULT_OBJECTIVE = "objective_loss"
# "Tuning linear learner hyperparameters": what automatic model tuning may search
TUNABLE = frozenset({"wd", "l1", "learning_rate", "mini_batch_size", "use_bias", "positive_example_weight_mult"})


def _int(low: float | None = None, high: float | None = None, *, auto: bool = False) -> Spec:
    return Spec("int", low, high, choices=("auto",) if auto else ())


def _float(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False,
           words: tuple[str, ...] = ()) -> Spec:
    return Spec("float", low, high, low_open, high_open, choices=words)


def _choice(*choices: str) -> Spec:
    return Spec("choice", choices=choices)


AUTO = ("auto",)
TRUE_FALSE = _choice("true", "false")
AUTO_TRUE_FALSE = _choice("auto", "true", "false")
POSITIVE = _float(0, low_open=True)
UNIT_OPEN = _float(0, 1, low_open=True, high_open=True)  # (0, 1)

SPECS: dict[str, Spec] = {
    "predictor_type": _choice("binary_classifier", "multiclass_classifier", "regressor"),
    "num_classes": _int(3, 1_000_000),
    "accuracy_top_k": _int(1),
    "balance_multiclass_weights": TRUE_FALSE,
    "beta_1": _float(0, 1, high_open=True, words=AUTO),
    "beta_2": _float(0, 1, high_open=True, words=AUTO),
    "bias_lr_mult": _float(0, low_open=True, words=AUTO),
    "bias_wd_mult": _float(0, words=AUTO),
    "binary_classifier_model_selection_criteria": _choice(
        "accuracy", "f_beta", "precision_at_target_recall", "recall_at_target_precision", "loss_function"),
    "early_stopping_patience": _int(1),
    "early_stopping_tolerance": POSITIVE,
    "epochs": _int(1),
    "f_beta": POSITIVE,
    "feature_dim": _int(1, auto=True),
    "huber_delta": POSITIVE,
    "init_bias": _float(),
    "init_method": _choice("uniform", "normal"),
    "init_scale": POSITIVE,
    "init_sigma": POSITIVE,
    "l1": _float(0, words=AUTO),
    "learning_rate": _float(0, low_open=True, words=AUTO),
    "loss": _choice(*dict.fromkeys(loss for losses in LOSSES.values() for loss in losses)),
    "loss_insensitivity": POSITIVE,
    "lr_scheduler_factor": _float(0, 1, low_open=True, high_open=True, words=AUTO),
    "lr_scheduler_minimum_lr": _float(0, low_open=True, words=AUTO),
    "lr_scheduler_step": _int(1, auto=True),
    "margin": POSITIVE,
    "mini_batch_size": _int(1),
    "momentum": _float(0, 1, high_open=True, words=AUTO),
    "normalize_data": AUTO_TRUE_FALSE,
    "normalize_label": AUTO_TRUE_FALSE,
    "num_calibration_samples": _int(1, auto=True),
    "num_models": _int(1, auto=True),
    "num_point_for_scaler": _int(1),
    "optimizer": _choice("auto", "sgd", "adam", "rmsprop"),
    "positive_example_weight_mult": _float(0, low_open=True, words=("auto", "balanced")),
    "quantile": UNIT_OPEN,
    "target_precision": UNIT_OPEN,
    "target_recall": UNIT_OPEN,
    "unbias_data": AUTO_TRUE_FALSE,
    "unbias_label": AUTO_TRUE_FALSE,
    "use_bias": TRUE_FALSE,
    "use_lr_scheduler": TRUE_FALSE,
    "wd": _float(0, words=AUTO),
}
NAMES = frozenset(SPECS)
# Names people bring from scikit-learn or from XGBoost, which Linear Learner does not read
ALIASES = {"alpha": "wd", "lambda": "wd", "eta": "learning_rate", "batch_size": "mini_batch_size",
           "max_iter": "epochs", "n_classes": "num_classes", "num_class": "num_classes", "fit_intercept": "use_bias",
           "objective": "predictor_type"}


def describe(spec: Spec) -> str:
    """What a value must be, with the words a number's place also takes (``auto``)."""
    if spec.kind == "choice":
        return spec.describe()
    words = " or ".join(spec.choices)
    return f"{spec.describe()}{f' or {words}' if words else ''}"


def canonical(name: str, value: Any) -> str:
    """``value`` as the string SageMaker receives; ``ValueError`` naming what is allowed when
    ``name`` is unknown or ``value`` is not of its type or out of its range."""
    spec = SPECS.get(name)
    if spec is None:
        close = [ALIASES[name]] if name in ALIASES else difflib.get_close_matches(name, NAMES, n=1)
        raise ValueError(f"unknown Linear Learner hyperparameter{f'; did you mean {close[0]}?' if close else ''} "
                         f"(allowed: {', '.join(sorted(NAMES))})")
    if spec.kind == "choice":
        return _choice_value(spec, value)
    if isinstance(value, str) and value.strip() in spec.choices:  # auto, balanced
        return value.strip()
    expected = f"must be {describe(spec)}"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{expected} (got {value!r})")
    number = _table._parse(value, integer=spec.kind == "int")  # noqa: SLF001 - the shared reading of numbers
    if number is None:
        raise ValueError(f"{expected} (got {value!r})")
    if spec.low is not None and (number < spec.low or (spec.low_open and number == spec.low)):
        raise ValueError(f"{expected} (got {value!r})")
    if spec.high is not None and (number > spec.high or (spec.high_open and number == spec.high)):
        raise ValueError(f"{expected} (got {value!r})")
    return str(int(number)) if spec.kind == "int" else _table._number(number)  # noqa: SLF001


def _choice_value(spec: Spec, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be {spec.describe()} (got {value!r})")
    text = value.strip() if isinstance(value, str) else _table._number(value)  # noqa: SLF001
    if text not in spec.choices:
        raise ValueError(f"must be {spec.describe()} (got {value!r})")
    return text


def problems(hyperparameters: dict[str, str], problem_type: str, *, classes: int | None = None) -> list[tuple[str, str]]:
    """What contradicts ``problem_type`` or another hyperparameter in a complete, canonical set:
    ``[(name, message)]``, empty when the set is consistent. ``predictor_type`` must be the
    problem type's; ``num_classes`` is required for a multiclass classifier ("Required when
    predictor_type is multiclass_classifier") and must equal ``classes``, the dataset's number of
    classes (the algorithm assumes labels 0 .. num_classes - 1)."""
    found: list[tuple[str, str]] = []
    predictor = PREDICTOR_TYPES[problem_type]
    given = hyperparameters.get("predictor_type")
    if given is not None and given != predictor:
        found.append(("predictor_type", f"{given!r} does not fit a {problem_type.replace('_', ' ')} dataset; "
                                        f"allowed: {predictor}"))
        return found  # the rest is read against the predictor type, which is wrong
    loss = hyperparameters.get("loss")
    if loss is not None and loss not in LOSSES[predictor]:
        found.append(("loss", f"{loss!r} is not a {predictor} loss; allowed: {', '.join(LOSSES[predictor])}"))
    for name in sorted(set(hyperparameters) & set(ONLY_FOR)):
        if ONLY_FOR[name] != predictor and name != "num_classes":
            found.append((name, f"only for predictor_type {ONLY_FOR[name]} (this dataset trains a {predictor})"))
    if "num_classes" in hyperparameters and predictor != "multiclass_classifier":
        found.append(("num_classes", f"only for multiclass classification (this dataset is "
                                     f"{problem_type.replace('_', ' ')})"))
    if predictor == "multiclass_classifier" and classes is not None:
        if "num_classes" not in hyperparameters:
            found.append(("num_classes", f"required for multiclass_classifier; allowed: {classes}, the dataset's "
                                         "number of classes"))
        elif int(hyperparameters["num_classes"]) != classes:
            found.append(("num_classes", f"the dataset's label has {classes} classes; allowed: {classes} "
                                         f"(got {hyperparameters['num_classes']})"))
    return found


def metrics(problem_type: str) -> list[str]:
    """The metrics a training job reports as ``validation:<m>`` for ``problem_type``."""
    return list(METRICS[problem_type])


def direction(problem_type: str, metric: str) -> str | None:
    """``Maximize`` or ``Minimize`` for a metric Linear Learner reports, else ``None``."""
    return METRICS[problem_type].get(metric)
