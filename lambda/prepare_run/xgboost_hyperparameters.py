"""The built-in SageMaker XGBoost algorithm's hyperparameters: names, types and valid ranges.

Source: "XGBoost hyperparameters", Amazon SageMaker AI Developer Guide
(https://docs.aws.amazon.com/sagemaker/latest/dg/xgboost_hyperparameters.html), and for ranges
the page leaves open, XGBoost's own parameter reference (https://xgboost.readthedocs.io/en/
release_1.7.0/parameter.html: ``subsample`` and the ``colsample_*`` ratios lie in (0, 1]).

One table for both sides: the prepare-run handler checks execution input with it at run time,
and the stage configuration (``mlops/hyperparameters.py`` loads this very file) checks the
config's hyperparameters and tuning ranges at synth time. Plain Python, no imports beyond the
standard library, so both can load it.

SageMaker passes hyperparameters as strings; a value may be given as a JSON number or as a
string that reads as the hyperparameter's type (``"4"`` for ``max_depth``, never ``"4.5"``).
Booleans are never numbers here.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

PROBLEM_TYPES = ("binary_classification", "multiclass_classification", "regression")


@dataclass(frozen=True)
class Spec:
    """One hyperparameter: ``kind`` is ``int``, ``float``, ``choice`` (one of ``choices``) or
    ``text`` (free text the algorithm parses itself). Bounds are inclusive unless ``*_open``."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        if self.kind == "text":
            return "a string"
        noun = "an integer" if self.kind == "int" else "a number"
        if self.low is None and self.high is None:
            return noun
        if self.high is None:
            return f"{noun} {'>' if self.low_open else '>='} {_number(self.low)}"
        if self.low is None:
            return f"{noun} {'<' if self.high_open else '<='} {_number(self.high)}"
        return (f"{noun} in {'(' if self.low_open else '['}{_number(self.low)}, "
                f"{_number(self.high)}{')' if self.high_open else ']'}")


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def _int(low: float | None = None, high: float | None = None) -> Spec:
    return Spec("int", low, high)


def _float(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Spec:
    return Spec("float", low, high, low_open, high_open)


def _choice(*choices: str) -> Spec:
    return Spec("choice", choices=choices)


FLAG = _choice("0", "1")
TRUE_FALSE = _choice("true", "false")
RATIO = _float(0, 1, low_open=True)  # (0, 1]

OBJECTIVES = {
    # the evaluation job scores a binary model's output as the positive class's probability
    "binary_classification": ("binary:logistic",),
    "multiclass_classification": ("multi:softprob",),  # class probabilities, as evaluation expects
    "regression": ("reg:squarederror", "reg:squaredlogerror", "reg:pseudohubererror", "reg:absoluteerror",
                   "reg:gamma", "reg:tweedie", "count:poisson"),
}
EVAL_METRICS = {
    "binary_classification": ("auc", "aucpr", "logloss", "error", "pre", "map"),
    "multiclass_classification": ("mlogloss", "merror", "auc"),
    # mse: computed by SageMaker's XGBoost container itself, not the xgboost package ("validation:mse,
    # Mean squared error, Minimize" in "Tune an XGBoost Model",
    # https://docs.aws.amazon.com/sagemaker/latest/dg/xgboost-tuning.html; aws/sagemaker-xgboost-container,
    # src/sagemaker_xgboost_container/metrics/custom_metrics.py). r2 is not: neither that page nor the
    # container's custom metrics have it.
    "regression": ("rmse", "rmsle", "mae", "mape", "mphe", "poisson-nloglik", "gamma-nloglik", "gamma-deviance",
                   "tweedie-nloglik", "mse"),
}
# XGBoost's evaluation metric when eval_metric is not set, by objective (XGBoost parameter reference)
DEFAULT_EVAL_METRIC = {
    "binary:logistic": "logloss", "multi:softprob": "mlogloss", "reg:squarederror": "rmse",
    "reg:squaredlogerror": "rmsle", "reg:pseudohubererror": "mphe", "reg:absoluteerror": "mae",
    "reg:gamma": "gamma-nloglik", "reg:tweedie": "tweedie-nloglik", "count:poisson": "poisson-nloglik",
}
# Whether the tuner should maximize (higher is better) or minimize each metric.
MAXIMIZED_METRICS = frozenset({"auc", "aucpr", "pre", "map"})
_ERROR_AT = re.compile(r"^error@(0(\.\d+)?|1(\.0+)?)$")  # error@t: the error rate at threshold t

SPECS: dict[str, Spec] = {
    "num_round": _int(1),
    "num_class": _int(2),
    "alpha": _float(0),
    "base_score": _float(),
    "booster": _choice("gbtree", "gblinear", "dart"),
    "colsample_bylevel": RATIO,
    "colsample_bynode": RATIO,
    "colsample_bytree": RATIO,
    "csv_weights": FLAG,
    "deterministic_histogram": TRUE_FALSE,
    "early_stopping_rounds": _int(1),
    "eta": _float(0, 1),
    "eval_metric": Spec("text"),  # comma-separated metric names: checked against the problem type
    "gamma": _float(0),
    "grow_policy": _choice("depthwise", "lossguide"),
    "interaction_constraints": Spec("text"),
    "lambda": _float(0),
    "lambda_bias": _float(0, 1),
    "max_bin": _int(2),
    "max_delta_step": _int(0),
    "max_depth": _int(0),
    "max_leaves": _int(0),
    "min_child_weight": _float(0),
    "monotone_constraints": Spec("text"),
    "normalize_type": _choice("tree", "forest"),
    "nthread": _int(1),
    "num_parallel_tree": _int(1),
    "objective": _choice(*(objective for objectives in OBJECTIVES.values() for objective in objectives)),
    "one_drop": FLAG,
    "process_type": _choice("default", "update"),
    "rate_drop": _float(0, 1),
    "refresh_leaf": FLAG,
    "sample_type": _choice("uniform", "weighted"),
    "scale_pos_weight": _float(0, low_open=True),
    "seed": _int(),
    "single_precision_histogram": TRUE_FALSE,
    "sketch_eps": _float(0, 1, low_open=True, high_open=True),
    "skip_drop": _float(0, 1),
    "subsample": RATIO,
    "tree_method": _choice("auto", "exact", "approx", "hist", "gpu_hist"),
    "tweedie_variance_power": _float(1, 2, low_open=True, high_open=True),
    "updater": Spec("text"),
    "verbosity": _int(0, 3),
}
NAMES = frozenset(SPECS)
# Names people bring from XGBoost's scikit-learn API, which the built-in algorithm does not read
ALIASES = {"learning_rate": "eta", "n_estimators": "num_round", "num_boost_round": "num_round", "reg_alpha": "alpha",
           "reg_lambda": "lambda", "min_split_loss": "gamma", "random_state": "seed"}


def canonical(name: str, value: Any) -> str:
    """``value`` as the string SageMaker receives; ``ValueError`` naming what is allowed when
    ``name`` is unknown or ``value`` is not of its type or out of its range."""
    spec = SPECS.get(name)
    if spec is None:
        close = [ALIASES[name]] if name in ALIASES else difflib.get_close_matches(name, NAMES, n=1)
        raise ValueError(f"unknown XGBoost hyperparameter{f'; did you mean {close[0]}?' if close else ''} "
                         f"(allowed: {', '.join(sorted(NAMES))})")
    expected = f"must be {spec.describe()}"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{expected} (got {value!r})")
    if spec.kind in ("choice", "text"):
        text = value if isinstance(value, str) else _number(value)
        if spec.kind == "choice" and text not in spec.choices:
            raise ValueError(f"{expected} (got {value!r})")
        if not text.strip():
            raise ValueError(f"{expected}, not empty")
        return text
    number = _parse(value, integer=spec.kind == "int")
    if number is None:
        raise ValueError(f"{expected} (got {value!r})")
    if spec.low is not None and (number < spec.low or (spec.low_open and number == spec.low)):
        raise ValueError(f"{expected} (got {value!r})")
    if spec.high is not None and (number > spec.high or (spec.high_open and number == spec.high)):
        raise ValueError(f"{expected} (got {value!r})")
    return str(int(number)) if spec.kind == "int" else _number(number)


def _parse(value: str | int | float, *, integer: bool) -> float | None:
    if isinstance(value, str):
        text = value.strip()
        if integer:
            return float(int(text)) if re.fullmatch(r"[+-]?\d+", text) else None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        number = float(value)
        if integer and not (isinstance(value, int) or number.is_integer()):
            return None
    return number if math.isfinite(number) else None


def problems(hyperparameters: dict[str, str], problem_type: str, *, max_num_round: int | None = None,
             classes: int | None = None) -> list[tuple[str, str]]:
    """What contradicts ``problem_type`` or another hyperparameter in a complete, canonical set:
    ``[(name, message)]``, empty when the set is consistent. ``classes``: how many classes the
    dataset's label has; a multiclass objective needs ``num_class`` equal to it ("num_class:
    Number of classes. Required if objective is set to multi:softmax or multi:softprob",
    https://docs.aws.amazon.com/sagemaker/latest/dg/xgboost_hyperparameters.html)."""
    found: list[tuple[str, str]] = []
    objective = hyperparameters.get("objective")
    if objective is not None and objective not in OBJECTIVES[problem_type]:
        found.append(("objective", f"{objective!r} does not fit a {problem_type.replace('_', ' ')} dataset; "
                                   f"allowed: {', '.join(OBJECTIVES[problem_type])}"))
    for metric in filter(None, (m.strip() for m in hyperparameters.get("eval_metric", "").split(","))):
        if metric not in EVAL_METRICS[problem_type] and not (problem_type == "binary_classification" and _ERROR_AT.match(metric)):
            found.append(("eval_metric", f"{metric!r} is not a {problem_type.replace('_', ' ')} metric; "
                                         f"allowed: {', '.join(EVAL_METRICS[problem_type])}"))
    if "num_class" in hyperparameters and problem_type != "multiclass_classification":
        found.append(("num_class", f"only for multiclass classification (this dataset is {problem_type.replace('_', ' ')})"))
    if problem_type == "multiclass_classification" and classes is not None:
        if "num_class" not in hyperparameters:
            found.append(("num_class", f"required for {objective or 'a multiclass objective'}; allowed: {classes}, the "
                                       "dataset's number of classes"))
        elif int(hyperparameters["num_class"]) != classes:
            found.append(("num_class", f"the dataset's label has {classes} classes; allowed: {classes} "
                                       f"(got {hyperparameters['num_class']})"))
    if objective == "binary:logistic" and "base_score" in hyperparameters and not 0 < float(hyperparameters["base_score"]) < 1:
        found.append(("base_score", f"must lie in (0, 1) for binary:logistic (got {hyperparameters['base_score']})"))
    rounds = hyperparameters.get("num_round")
    if max_num_round is not None and rounds is not None and int(rounds) > max_num_round:
        found.append(("num_round", f"must be at most {max_num_round}, the stage's pipeline.max_num_round (got {rounds})"))
    return found


def eval_metrics(hyperparameters: dict[str, str]) -> list[str]:
    """The metrics a training job reports as ``train:<m>`` and ``validation:<m>``: the
    configured ``eval_metric`` list, else the objective's default."""
    configured = [m.strip() for m in hyperparameters.get("eval_metric", "").split(",") if m.strip()]
    default = DEFAULT_EVAL_METRIC.get(hyperparameters.get("objective", "reg:squarederror"))
    return configured or ([default] if default else [])
