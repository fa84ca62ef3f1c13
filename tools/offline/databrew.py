"""The real work behind DataBrew job runs in offline runs, in pandas.

moto (5.2.5) stores DataBrew datasets, recipes, rulesets and jobs but runs no job. This
module does what the two job kinds would do with the shapes moto hands back:

* ``apply_recipe`` runs a recipe job's steps (as ``describe_recipe`` returns them:
  ``[{"Action": {"Operation": ..., "Parameters": {"sourceColumn": ...}}}]``).
* ``validate`` runs a profile job's ruleset validation (rules as ``describe_ruleset``
  returns them: CheckExpression, SubstitutionMap as ``{":val1": "0"}``, ColumnSelectors,
  Threshold) and returns the validation report, which the caller writes to
  ``report_key(...)``.

Only what ``mlops.data_rules`` generates is supported: the operations REMOVE_MISSING,
FILL_WITH_AVERAGE, FILL_WITH_MEDIAN, FILL_WITH_CUSTOM (number/string), DELETE,
DELETE_DUPLICATE_ROWS, LOWER_CASE and REMOVE_COMBINED (trim only), and the checks
``AGG(ROWS_COUNT|DUPLICATE_ROWS_COUNT|DUPLICATE_ROWS_PERCENTAGE) <op> :v``,
``AGG(MISSING_VALUES_COUNT|MISSING_VALUES_PERCENTAGE) <op> :v`` over ColumnSelectors by
name, ``:col IS_BETWEEN :v1 and :v2`` and ``:col IN :list`` with a Threshold. Anything
else raises NotImplementedError naming the expression or operation, never a silent pass.

Where the formats come from:

* Checks: https://docs.aws.amazon.com/databrew/latest/dg/profile.data-quality-available-checks.html
* Rule fields and Threshold: https://docs.aws.amazon.com/databrew/latest/dg/API_Rule.html,
  https://docs.aws.amazon.com/databrew/latest/dg/API_Threshold.html
* Recipe actions: https://docs.aws.amazon.com/databrew/latest/dg/recipe-actions-reference.html
* Report location: the "DataBrew Ruleset Validation Result" event example in
  https://docs.aws.amazon.com/databrew/latest/dg/profile.data-quality-rules.html gives
  ``validationReportLocation`` = ``s3://MyBucket/MyKey/MyDataset_<run id>_dq-validation-report.json``
  for ``jobRunId`` ``db_<run id>``: the job's output location, the dataset name, the run
  id without its ``db_`` prefix and a fixed suffix. ``report_key`` follows it.
* Report body: the Developer Guide does not document it. The layout here is the one of
  reports published in an AWS sample (MIT-0): top level ``sampleSize``,
  ``rulesetResults``, ``jobName``, ``jobRunId``, ``location``, ``startedOn``,
  ``writtenOn``, ``version: "1.0"``; per ruleset ``name``, ``arn``, ``ruleResults``,
  ``status``; per rule ``name``, ``definition`` (the rule as the API returns it, with
  ``Disabled``), ``status`` (SUCCEEDED/FAILED), ``failedCount`` (rows failing a
  row-level check) and ``columnResults`` (``[{name, status}]`` for rules applied through
  ColumnSelectors). Aggregate checks carry no measured value in that layout, so neither
  does this one.

Semantics the documentation leaves open, decided here and relied on by the tests:
missing means null/NaN (or an empty string in a text column); a missing or non-numeric
value fails a row-level check (SQL semantics: ``NULL IN (...)`` is not true);
``IS_BETWEEN`` is inclusive at both ends; duplicate rows are rows that exactly repeat an
earlier row (the DELETE_DUPLICATE_ROWS definition); ``IN`` compares values as text with
integral numbers written without a decimal point (``1.0`` -> ``"1"``). Frames read as text
(``dtype=str``, as the offline runner reads CSVs) work too: range checks and the mean/median
fills parse the values as numbers, and a fill writes its number back as text.
"""

from __future__ import annotations

import json
import math
import operator
import re
from datetime import datetime, timezone
from typing import Any, Callable

import pandas as pd

REPORT_SUFFIX = "_dq-validation-report.json"
REPORT_VERSION = "1.0"

_REFERENCE = r":[A-Za-z0-9_]+"
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}
_DATASET_STATS = ("ROWS_COUNT", "DUPLICATE_ROWS_COUNT", "DUPLICATE_ROWS_PERCENTAGE")
_COLUMN_STATS = ("MISSING_VALUES_COUNT", "MISSING_VALUES_PERCENTAGE")
_AGGREGATE = re.compile(rf"^AGG\(([A-Z_]+)\) (==|!=|<=|>=|<|>) ({_REFERENCE})$")
_BETWEEN = re.compile(rf"^({_REFERENCE}) IS_BETWEEN ({_REFERENCE}) AND ({_REFERENCE})$", re.IGNORECASE)
_IN = re.compile(rf"^({_REFERENCE}) IN ({_REFERENCE})$", re.IGNORECASE)
_COLUMN_REFERENCE = re.compile(r"^`([^`]+)`$")
_THRESHOLD_TYPES: dict[str, Callable[[float, float], bool]] = {
    "GREATER_THAN_OR_EQUAL": operator.ge, "LESS_THAN_OR_EQUAL": operator.le,
    "GREATER_THAN": operator.gt, "LESS_THAN": operator.lt,
}
# REMOVE_COMBINED's flags as its documentation page lists them; "trim" is the one setting
# with removeLeadingAndTrailingWhitespace true and every other flag false.
_REMOVE_COMBINED_FLAGS = frozenset({
    "collapseConsecutiveWhitespace", "removeAllPunctuation", "removeAllQuotes", "removeAllWhitespace",
    "removeCustomCharacters", "removeCustomValue", "removeLeadingAndTrailingPunctuation",
    "removeLeadingAndTrailingQuotes", "removeLeadingAndTrailingWhitespace", "removeLetters",
    "removeNumbers", "removeSpecialCharacters",
})


def report_key(prefix: str, dataset_name: str, run_id: str) -> str:
    """Where a profile job with output key ``prefix`` writes the validation report of run
    ``run_id`` (``db_...`` as StartJobRun returns it, or without the prefix)."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"{prefix}{dataset_name}_{run_id.removeprefix('db_')}{REPORT_SUFFIX}"


def api_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CloudFormation-shaped rules (SubstitutionMap as ``[{ValueReference, Value}]``) in the
    API shape ``create_ruleset`` takes and ``describe_ruleset`` returns."""
    converted = []
    for rule in rules:
        rule = dict(rule)
        if isinstance(rule.get("SubstitutionMap"), list):
            rule["SubstitutionMap"] = {item["ValueReference"]: item["Value"] for item in rule["SubstitutionMap"]}
        converted.append(rule)
    return converted


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def _is_text(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _missing(series: pd.Series) -> pd.Series:
    missing = series.isna()
    if _is_text(series):
        missing |= series.astype("string").fillna("").eq("")
    return missing


def _column(frame: pd.DataFrame, name: str, where: str) -> pd.Series:
    if name not in frame.columns:
        raise ValueError(f"{where}: column {name!r} is not in the dataset (columns: {', '.join(map(str, frame.columns))})")
    return frame[name]


def _text(value: Any) -> str | None:
    """A value as ``IN`` compares it: None when missing, integral numbers without ``.0``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)) or hasattr(value, "item"):
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, float) and number.is_integer():
            return str(int(number))
        return str(number)
    return str(value)


def _number_text(number: float) -> str:
    """A number written into a text column: integral values without ``.0``."""
    return str(int(number)) if number.is_integer() else repr(number)


# ---------------------------------------------------------------------------
# Recipe jobs
# ---------------------------------------------------------------------------


def _parameters(operation: str, parameters: dict[str, str], expected: set[str]) -> dict[str, str]:
    if set(parameters) != expected:
        raise NotImplementedError(
            f"recipe operation {operation} with parameters {sorted(parameters)} is not emulated "
            f"(supported: {sorted(expected) or 'no parameters'})"
        )
    return parameters


def _fill(frame: pd.DataFrame, column: str, value: Any) -> pd.DataFrame:
    series = frame[column]
    missing = _missing(series)
    if _is_text(series):
        filled = series.astype("object").where(~missing, value)
    else:
        filled = series.where(~missing, value)
    return frame.assign(**{column: filled})


def _apply_step(frame: pd.DataFrame, step: dict[str, Any], index: int) -> pd.DataFrame:
    if not isinstance(step, dict) or "Action" not in step or set(step) - {"Action", "ConditionExpressions"}:
        raise NotImplementedError(f"recipe step {index}: expected {{'Action': {{...}}}}, got {step!r}")
    if step.get("ConditionExpressions"):
        raise NotImplementedError(f"recipe step {index}: ConditionExpressions are not emulated")
    action = step["Action"]
    operation = action.get("Operation")
    parameters = action.get("Parameters") or {}
    where = f"recipe step {index} ({operation})"

    if operation == "DELETE_DUPLICATE_ROWS":
        _parameters(operation, parameters, set())
        return frame.drop_duplicates(keep="first").reset_index(drop=True)
    if operation == "REMOVE_COMBINED":
        column = parameters.get("sourceColumn", "")
        flags = {key: value for key, value in parameters.items() if key != "sourceColumn"}
        trim_only = {flag: "true" if flag == "removeLeadingAndTrailingWhitespace" else "false"
                     for flag in _REMOVE_COMBINED_FLAGS}
        if set(parameters) - {"sourceColumn"} - _REMOVE_COMBINED_FLAGS or "sourceColumn" not in parameters \
                or {flag: flags.get(flag, "false") for flag in _REMOVE_COMBINED_FLAGS} != trim_only:
            raise NotImplementedError(f"{where}: only the trim setting (removeLeadingAndTrailingWhitespace "
                                      f"alone) is emulated, got {parameters}")
        series = _column(frame, column, where)
        return frame.assign(**{column: series.map(lambda v: v.strip() if isinstance(v, str) else v)})

    simple = {"REMOVE_MISSING", "FILL_WITH_AVERAGE", "FILL_WITH_MEDIAN", "DELETE", "LOWER_CASE"}
    if operation in simple:
        column = _parameters(operation, parameters, {"sourceColumn"})["sourceColumn"]
        series = _column(frame, column, where)
        if operation == "REMOVE_MISSING":
            return frame[~_missing(series)].reset_index(drop=True)
        if operation == "DELETE":
            return frame.drop(columns=[column])
        if operation == "LOWER_CASE":
            return frame.assign(**{column: series.map(lambda v: v.lower() if isinstance(v, str) else v)})
        present = series[~_missing(series)]
        numbers = pd.to_numeric(present, errors="coerce")
        if numbers.isna().any():  # a CSV read as text is fine as long as every value is a number
            raise ValueError(f"{where}: column {column!r} has non-numeric values, e.g. "
                             f"{present[numbers.isna()].iloc[0]!r}")
        statistic = float(numbers.mean() if operation == "FILL_WITH_AVERAGE" else numbers.median())
        return _fill(frame, column, _number_text(statistic) if _is_text(series) else statistic)
    if operation == "FILL_WITH_CUSTOM":
        given = _parameters(operation, parameters, {"sourceColumn", "columnDataType", "value"})
        column, kind, value = given["sourceColumn"], given["columnDataType"], given["value"]
        series = _column(frame, column, where)
        if kind == "number":
            return _fill(frame, column, value if _is_text(series) else float(value))
        if kind == "string":
            return _fill(frame, column, value)
        raise NotImplementedError(f"{where}: columnDataType {kind!r} is not emulated (number, string)")
    raise NotImplementedError(f"recipe operation {operation!r} is not emulated")


def apply_recipe(frame: pd.DataFrame, steps: list[dict[str, Any]]) -> pd.DataFrame:
    """The dataset after a recipe job runs ``steps`` in order (the input is not changed)."""
    for index, step in enumerate(steps):
        frame = _apply_step(frame, step, index)
    return frame


# ---------------------------------------------------------------------------
# Profile jobs: ruleset validation
# ---------------------------------------------------------------------------


def _substitution(rule: dict[str, Any], reference: str) -> str:
    values = rule.get("SubstitutionMap") or {}
    if reference not in values:
        raise ValueError(f"rule {rule['Name']!r}: {reference} is not in its SubstitutionMap")
    return values[reference]


def _number(rule: dict[str, Any], reference: str) -> float:
    value = _substitution(rule, reference)
    try:
        return float(value)
    except ValueError:
        raise NotImplementedError(f"rule {rule['Name']!r}: {reference} = {value!r} is not a number; "
                                  "only numeric comparisons are emulated") from None


def _column_reference(rule: dict[str, Any], reference: str) -> str:
    value = _substitution(rule, reference)
    match = _COLUMN_REFERENCE.match(value)
    if not match:
        raise NotImplementedError(f"rule {rule['Name']!r}: {reference} = {value!r} is not a column reference "
                                  "in backticks; only column-vs-value checks are emulated")
    return match.group(1)


def _selected_columns(rule: dict[str, Any], frame: pd.DataFrame) -> list[str]:
    columns = []
    for selector in rule.get("ColumnSelectors") or []:
        if set(selector) != {"Name"}:
            raise NotImplementedError(f"rule {rule['Name']!r}: column selector {selector} is not emulated "
                                      "(selectors by Name only)")
        columns.append(_column(frame, selector["Name"], f"rule {rule['Name']!r}").name)
    return columns


def _dataset_statistic(name: str, frame: pd.DataFrame) -> float:
    rows = len(frame)
    if name == "ROWS_COUNT":
        return rows
    duplicates = int(frame.duplicated(keep="first").sum())
    return duplicates if name == "DUPLICATE_ROWS_COUNT" else (100.0 * duplicates / rows if rows else 0.0)


def _column_statistic(name: str, series: pd.Series) -> float:
    missing = int(_missing(series).sum())
    return missing if name == "MISSING_VALUES_COUNT" else (100.0 * missing / len(series) if len(series) else 0.0)


def _status(passed: bool) -> str:
    return "SUCCEEDED" if passed else "FAILED"


def _aggregate_result(rule: dict[str, Any], frame: pd.DataFrame, match: re.Match[str]) -> dict[str, Any]:
    statistic, comparison, reference = match.groups()
    expected = _number(rule, reference)
    compare = _COMPARISONS[comparison]
    if statistic in _DATASET_STATS:
        if rule.get("ColumnSelectors"):
            raise NotImplementedError(f"rule {rule['Name']!r}: AGG({statistic}) with ColumnSelectors is not emulated")
        return {"status": _status(compare(_dataset_statistic(statistic, frame), expected))}
    if statistic in _COLUMN_STATS:
        columns = _selected_columns(rule, frame)
        if not columns:
            raise NotImplementedError(f"rule {rule['Name']!r}: AGG({statistic}) without ColumnSelectors is not emulated")
        column_results = [
            {"name": column, "status": _status(compare(_column_statistic(statistic, frame[column]), expected))}
            for column in columns
        ]
        passed = all(result["status"] == "SUCCEEDED" for result in column_results)
        return {"columnResults": column_results, "status": _status(passed)}
    raise NotImplementedError(f"rule {rule['Name']!r}: check expression {rule['CheckExpression']!r} "
                              f"(statistic {statistic}) is not emulated")


def _row_checks(rule: dict[str, Any], frame: pd.DataFrame) -> pd.Series:
    """Per row: does the row-level check hold?"""
    expression = rule["CheckExpression"]
    if rule.get("ColumnSelectors"):
        raise NotImplementedError(f"rule {rule['Name']!r}: implicit expression {expression!r} with "
                                  "ColumnSelectors is not emulated")
    if match := _BETWEEN.match(expression):
        column, low, high = match.groups()
        series = _column(frame, _column_reference(rule, column), f"rule {rule['Name']!r}")
        numbers = pd.to_numeric(series, errors="coerce")
        return numbers.between(_number(rule, low), _number(rule, high), inclusive="both").fillna(False).astype(bool)
    if match := _IN.match(expression):
        column, reference = match.groups()
        series = _column(frame, _column_reference(rule, column), f"rule {rule['Name']!r}")
        raw = _substitution(rule, reference)
        try:
            allowed = json.loads(raw)
        except json.JSONDecodeError:
            allowed = None
        if not isinstance(allowed, list):
            raise NotImplementedError(f"rule {rule['Name']!r}: {reference} = {raw!r} is not a JSON list")
        allowed_text = {_text(value) for value in allowed}
        return series.map(lambda value: (text := _text(value)) is not None and text in allowed_text).astype(bool)
    raise NotImplementedError(f"rule {rule['Name']!r}: check expression {expression!r} is not emulated")


def _row_level_result(rule: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    holds = _row_checks(rule, frame)
    threshold = rule.get("Threshold")
    if not threshold or threshold.get("Type") not in _THRESHOLD_TYPES or threshold.get("Unit") not in ("COUNT", "PERCENTAGE"):
        raise NotImplementedError(f"rule {rule['Name']!r}: a row-level check needs a Threshold with Type "
                                  f"({', '.join(_THRESHOLD_TYPES)}) and Unit (COUNT, PERCENTAGE); got {threshold}")
    passing = int(holds.sum())
    failed = len(holds) - passing
    measured = passing if threshold["Unit"] == "COUNT" else (100.0 * passing / len(holds) if len(holds) else 100.0)
    passed = _THRESHOLD_TYPES[threshold["Type"]](measured, float(threshold["Value"]))
    return {"failedCount": failed, "status": _status(passed)}


def _definition(rule: dict[str, Any]) -> dict[str, Any]:
    definition = {"Name": rule["Name"], "Disabled": bool(rule.get("Disabled", False))}
    definition.update({key: value for key, value in rule.items() if key not in definition})
    return definition


def _rule_result(rule: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    expression = rule.get("CheckExpression", "")
    match = _AGGREGATE.match(expression)
    outcome = _aggregate_result(rule, frame, match) if match else _row_level_result(rule, frame)
    return {"name": rule["Name"], "definition": _definition(rule), **outcome}


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat()


def validate(
    frame: pd.DataFrame,
    rules: list[dict[str, Any]],
    *,
    dataset_name: str,
    job_name: str,
    run_id: str,
    ruleset_arn: str,
    location: str,
) -> dict[str, Any]:
    """The validation report a profile job writes after checking ``rules`` (one ruleset)
    on ``frame``. ``location`` is the report's own S3 URI (see ``report_key``);
    ``dataset_name`` is what the key is named after. Disabled rules are not validated."""
    if ":ruleset/" not in ruleset_arn:
        raise ValueError(f"not a DataBrew ruleset ARN: {ruleset_arn!r}")
    if not location.startswith("s3://") or not location.endswith(REPORT_SUFFIX):
        raise ValueError(f"location must be the report's s3:// URI ending in {REPORT_SUFFIX} (got {location!r})")
    if not location.rsplit("/", 1)[-1].startswith(f"{dataset_name}_"):
        raise ValueError(f"location {location!r} is not named after dataset {dataset_name!r} (see report_key)")
    started = _now()
    results = [_rule_result(rule, frame) for rule in api_rules(rules) if not rule.get("Disabled", False)]
    ruleset = {
        "name": ruleset_arn.rsplit(":ruleset/", 1)[1],
        "arn": ruleset_arn,
        "ruleResults": results,
        "status": _status(all(result["status"] == "SUCCEEDED" for result in results)),
    }
    return {
        "sampleSize": len(frame),
        "rulesetResults": [ruleset],
        "jobName": job_name,
        "jobRunId": run_id,
        "location": location,
        "startedOn": started,
        "writtenOn": _now(),
        "version": REPORT_VERSION,
    }
