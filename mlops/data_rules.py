"""Data-quality rules and cleaning steps of the stage config, rendered for AWS Glue DataBrew.

The stage config's ``data.quality_rules`` and ``data.recipe`` lists are validated here
(same conventions as ``mlops.config``: unknown keys are errors, models are frozen, every
message names the field and what is allowed) and rendered into the CloudFormation shapes
of ``AWS::DataBrew::Ruleset`` rules and ``AWS::DataBrew::Recipe`` steps. No CDK import:
a construct passes the rendered lists on with ``add_property_override("Rules", ...)`` /
``add_property_override("Steps", ...)`` (jsii struct props expect camelCase keys, these are
the template's own PascalCase shapes).

Formats, from the AWS documentation:

* Rule shape (Name 1-128 characters; CheckExpression 4-1024 characters matching
  ``^[<>0-9A-Za-z_.,:)(!= ]+$``; SubstitutionMap keys ``^:[A-Za-z0-9_]+$``, values at most
  1024 characters, column names in backticks; Threshold Value/Type/Unit):
  https://docs.aws.amazon.com/databrew/latest/dg/API_Rule.html and
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-databrew-ruleset-rule.html
  (CloudFormation spells SubstitutionMap as a list of ``{ValueReference, Value}``).
* Check expressions (``AGG(ROWS_COUNT)``, ``AGG(DUPLICATE_ROWS_PERCENTAGE)``,
  ``AGG(MISSING_VALUES_PERCENTAGE)`` with ColumnSelectors, ``:col IS_BETWEEN :val1 and
  :val2``, ``:col IN :list`` with a JSON list as the value):
  https://docs.aws.amazon.com/databrew/latest/dg/profile.data-quality-available-checks.html
* Recipe actions: https://docs.aws.amazon.com/databrew/latest/dg/recipe-actions-reference.html
  (REMOVE_MISSING, FILL_WITH_AVERAGE, FILL_WITH_MEDIAN, FILL_WITH_CUSTOM, DELETE,
  DELETE_DUPLICATE_ROWS, LOWER_CASE, REMOVE_COMBINED each have a page
  ``recipe-actions.<OPERATION>.html`` there). Parameters are a string-to-string map with
  camelCase keys: https://docs.aws.amazon.com/databrew/latest/dg/API_RecipeAction.html
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    model_validator,
)

# DataBrew's own limits (API_Rule): the expression pattern and the substitution value length.
CHECK_EXPRESSION_PATTERN = re.compile(r"^[<>0-9A-Za-z_.,:)(!= ]+$")
MAX_SUBSTITUTION_VALUE = 1024
RULE_NAME_MAX = 128


class _Model(BaseModel):
    # As in mlops.config: a typo must not fall back to a default; nothing may change the config.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _column_name(value: str) -> str:
    # Column references are wrapped in backticks in the SubstitutionMap, so a backtick
    # inside the name could not be quoted; the 255 cap keeps "`name`" far below 1024.
    if "`" in value:
        raise ValueError(f"column names may not contain a backtick (got {value!r})")
    if any(ord(char) < 32 for char in value):
        raise ValueError(f"column names may not contain control characters (got {value!r})")
    return value


ColumnName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_column_name)]
RuleName = Annotated[str, Field(min_length=1, max_length=RULE_NAME_MAX)]
Percent = Annotated[float, Field(ge=0, le=100)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


def as_text(value: Any) -> Any:
    """YAML reads ``[0, 1]`` as integers; values compared with the data are text. YAML 1.1 also
    reads unquoted ``yes``, ``no``, ``on``, ``off``, ``true`` and ``false`` as booleans, which is
    rarely meant: refused, saying to quote them."""
    if isinstance(value, bool):
        raise ValueError(f"YAML read an unquoted yes/no/on/off/true/false as the boolean {str(value).lower()}; "
                         'quote the value as it is written in the data, e.g. "no"')
    if isinstance(value, (int, float)):
        return _number(value)
    return value


def _number(value: float) -> str:
    """A number as DataBrew gets it in a SubstitutionMap: ``0``, not ``0.0``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _derived_name(base: str) -> str:
    return base if len(base) <= RULE_NAME_MAX else base[: RULE_NAME_MAX - 3] + "..."


# ---------------------------------------------------------------------------
# Quality rules (data.quality_rules)
# ---------------------------------------------------------------------------


class RowCountRule(_Model):
    """The dataset has at least ``min`` rows."""

    type: Literal["row_count"] = "row_count"
    """Rule kind."""
    name: RuleName | None = None
    """Rule name (unique in the ruleset; default derived from the rule)."""
    min: int = Field(ge=1)
    """Least number of rows."""

    @property
    def rule_name(self) -> str:
        return self.name or "row-count"


class NoDuplicateRowsRule(_Model):
    """At most ``max_percent`` % of the rows repeat an earlier row (default: none)."""

    type: Literal["no_duplicate_rows"] = "no_duplicate_rows"
    """Rule kind."""
    name: RuleName | None = None
    """Rule name (unique in the ruleset; default derived from the rule)."""
    max_percent: Percent = 0
    """Largest share of rows that may repeat an earlier row, in percent."""

    @property
    def rule_name(self) -> str:
        return self.name or "no-duplicate-rows"


class CompletenessRule(_Model):
    """Each listed column has at most ``max_missing_percent`` % missing values."""

    type: Literal["completeness"] = "completeness"
    """Rule kind."""
    name: RuleName | None = None
    """Rule name (unique in the ruleset; default derived from the rule)."""
    columns: list[ColumnName] = Field(min_length=1, max_length=500)
    """Columns that must be complete (dataset columns)."""
    max_missing_percent: Percent = 0
    """Largest share of missing values per column, in percent."""

    @model_validator(mode="after")
    def _distinct(self) -> CompletenessRule:
        repeated = sorted({column for column in self.columns if self.columns.count(column) > 1})
        if repeated:
            raise ValueError(f"columns: each column once (repeated: {', '.join(repeated)})")
        return self

    @property
    def rule_name(self) -> str:
        if self.name:
            return self.name
        if len(self.columns) == 1:
            return _derived_name(f"{self.columns[0]}-complete")
        return f"{len(self.columns)}-columns-complete"


class RangeRule(_Model):
    """At least ``min_percent`` % of the values of ``column`` lie in ``[min, max]``
    (inclusive); missing or non-numeric values count as outside."""

    type: Literal["range"] = "range"
    """Rule kind."""
    name: RuleName | None = None
    """Rule name (unique in the ruleset; default derived from the rule)."""
    column: ColumnName
    """The dataset column checked."""
    min: Finite
    """Lower bound (inclusive)."""
    max: Finite
    """Upper bound (inclusive)."""
    min_percent: Percent = 100
    """Least share of values within the bounds, in percent (missing and non-numeric values count as outside)."""

    @model_validator(mode="after")
    def _bounds(self) -> RangeRule:
        if not self.min < self.max:
            raise ValueError(f"max: must be greater than min ({self.min:g}); got {self.max:g}")
        return self

    @property
    def rule_name(self) -> str:
        return self.name or _derived_name(f"{self.column}-in-range")


class AllowedValuesRule(_Model):
    """At least ``min_percent`` % of the values of ``column`` are one of ``values``
    (compared as text; missing values count as not allowed)."""

    type: Literal["allowed_values"] = "allowed_values"
    """Rule kind."""
    name: RuleName | None = None
    """Rule name (unique in the ruleset; default derived from the rule)."""
    column: ColumnName
    """The dataset column checked."""
    values: list[Annotated[str, BeforeValidator(as_text), Field(min_length=1)]] = Field(min_length=1)
    """The allowed values, compared as text."""
    min_percent: Percent = 100
    """Least share of values that are allowed, in percent (missing values count as not allowed)."""

    @model_validator(mode="after")
    def _fits(self) -> AllowedValuesRule:
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"values: each value once (got {', '.join(self.values)})")
        if len(json.dumps(self.values)) > MAX_SUBSTITUTION_VALUE:
            raise ValueError(f"values: the list must fit DataBrew's {MAX_SUBSTITUTION_VALUE}-character "
                             f"substitution value as JSON (got {len(json.dumps(self.values))} characters)")
        return self

    @property
    def rule_name(self) -> str:
        return self.name or _derived_name(f"{self.column}-allowed-values")


# ``type`` -> model. Validation errors carry the tag in their location
# (``quality_rules[0].range.max``); this map resolves it to the model, e.g. for "allowed keys" hints.
RULE_MODELS: dict[str, type[_Model]] = {
    "row_count": RowCountRule,
    "no_duplicate_rows": NoDuplicateRowsRule,
    "completeness": CompletenessRule,
    "range": RangeRule,
    "allowed_values": AllowedValuesRule,
}
RULE_TYPES = tuple(RULE_MODELS)


def _rule_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in RULE_TYPES else None


QualityRule = Annotated[
    Union[
        Annotated[RowCountRule, Tag("row_count")],
        Annotated[NoDuplicateRowsRule, Tag("no_duplicate_rows")],
        Annotated[CompletenessRule, Tag("completeness")],
        Annotated[RangeRule, Tag("range")],
        Annotated[AllowedValuesRule, Tag("allowed_values")],
    ],
    Discriminator(
        _rule_tag,
        custom_error_type="invalid_rule_type",
        custom_error_message=f"type: missing or unknown; allowed: {', '.join(RULE_TYPES)}",
    ),
]


def _unique_rule_names(rules: list[Any]) -> list[Any]:
    names = [rule.rule_name for rule in rules]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"rule names must be unique within the ruleset (repeated: {', '.join(repeated)}); "
                         "set 'name' on one of them")
    return rules


# The field type for ``data.quality_rules``: rule names are unique within the ruleset.
QualityRules = Annotated[list[QualityRule], Field(max_length=100), AfterValidator(_unique_rule_names)]


# ---------------------------------------------------------------------------
# Recipe steps (data.recipe)
# ---------------------------------------------------------------------------


class RemoveMissingStep(_Model):
    """Drop the rows whose ``column`` is missing (e.g. an unlabeled example)."""

    action: Literal["remove_missing"] = "remove_missing"
    """Step kind."""
    column: ColumnName
    """Rows missing this column are dropped."""


class FillMissingStep(_Model):
    """Fill missing values of ``column`` with its mean, its median or a constant ``value``."""

    action: Literal["fill_missing"] = "fill_missing"
    """Step kind."""
    column: ColumnName
    """The column filled."""
    strategy: Literal["mean", "median", "constant"]
    """Fill with the column's mean, its median, or `value`."""
    value: Finite | str | None = None
    """The constant (with `strategy: constant` only)."""

    @model_validator(mode="after")
    def _value_for_constant(self) -> FillMissingStep:
        if self.strategy == "constant" and (self.value is None or self.value == ""):
            raise ValueError("value: required when strategy is 'constant' (a number or a text)")
        if self.strategy != "constant" and self.value is not None:
            raise ValueError(f"value: only allowed with strategy 'constant' (strategy is {self.strategy!r})")
        return self


class DeleteColumnsStep(_Model):
    """Remove ``columns`` from the dataset."""

    action: Literal["delete_columns"] = "delete_columns"
    """Step kind."""
    columns: list[ColumnName] = Field(min_length=1, max_length=500)
    """Columns removed."""


class RemoveDuplicateRowsStep(_Model):
    """Drop every row that exactly repeats an earlier row (the first one stays)."""

    action: Literal["remove_duplicate_rows"] = "remove_duplicate_rows"
    """Step kind."""


class LowerCaseStep(_Model):
    """Lower-case the text values of ``column``."""

    action: Literal["lower_case"] = "lower_case"
    """Step kind."""
    column: ColumnName
    """The text column lower-cased."""


class TrimStep(_Model):
    """Strip leading and trailing white space from the text values of ``column``."""

    action: Literal["trim"] = "trim"
    """Step kind."""
    column: ColumnName
    """The text column trimmed."""


# ``action`` -> model (the tag appears in validation error locations, as for rules).
STEP_MODELS: dict[str, type[_Model]] = {
    "remove_missing": RemoveMissingStep,
    "fill_missing": FillMissingStep,
    "delete_columns": DeleteColumnsStep,
    "remove_duplicate_rows": RemoveDuplicateRowsStep,
    "lower_case": LowerCaseStep,
    "trim": TrimStep,
}
RECIPE_ACTIONS = tuple(STEP_MODELS)


def _step_tag(value: Any) -> str | None:
    kind = value.get("action") if isinstance(value, dict) else getattr(value, "action", None)
    return kind if kind in RECIPE_ACTIONS else None


RecipeStep = Annotated[
    Union[
        Annotated[RemoveMissingStep, Tag("remove_missing")],
        Annotated[FillMissingStep, Tag("fill_missing")],
        Annotated[DeleteColumnsStep, Tag("delete_columns")],
        Annotated[RemoveDuplicateRowsStep, Tag("remove_duplicate_rows")],
        Annotated[LowerCaseStep, Tag("lower_case")],
        Annotated[TrimStep, Tag("trim")],
    ],
    Discriminator(
        _step_tag,
        custom_error_type="invalid_recipe_action",
        custom_error_message=f"action: missing or unknown; allowed: {', '.join(RECIPE_ACTIONS)}",
    ),
]

# The field type for ``data.recipe``: steps run in the order given.
RecipeSteps = Annotated[list[RecipeStep], Field(max_length=100)]


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

_RULES: TypeAdapter[list[Any]] = TypeAdapter(QualityRules)
_STEPS: TypeAdapter[list[Any]] = TypeAdapter(RecipeSteps)


def quote_column(name: str) -> str:
    """A column reference as a SubstitutionMap value: DataBrew tells column names from
    literal values by backticks (API_Rule: ``":col1": "`Column A`"``)."""
    return f"`{_column_name(name)}`"


def _substitutions(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ValueReference": reference, "Value": value} for reference, value in values.items()]


_AT_LEAST_PERCENT = "GREATER_THAN_OR_EQUAL"


def _render_rule(rule: Any) -> dict[str, Any]:
    rendered: dict[str, Any] = {"Name": rule.rule_name}
    if isinstance(rule, RowCountRule):
        rendered["CheckExpression"] = "AGG(ROWS_COUNT) >= :val1"
        values = {":val1": str(rule.min)}
    elif isinstance(rule, NoDuplicateRowsRule):
        rendered["CheckExpression"] = "AGG(DUPLICATE_ROWS_PERCENTAGE) <= :val1"
        values = {":val1": _number(rule.max_percent)}
    elif isinstance(rule, CompletenessRule):
        # One rule over several columns: an implicit expression plus ColumnSelectors.
        rendered["CheckExpression"] = "AGG(MISSING_VALUES_PERCENTAGE) <= :val1"
        values = {":val1": _number(rule.max_missing_percent)}
        rendered["ColumnSelectors"] = [{"Name": column} for column in rule.columns]
    elif isinstance(rule, RangeRule):
        rendered["CheckExpression"] = ":col1 IS_BETWEEN :val1 and :val2"
        values = {":col1": quote_column(rule.column), ":val1": _number(rule.min), ":val2": _number(rule.max)}
        rendered["Threshold"] = {"Value": rule.min_percent, "Type": _AT_LEAST_PERCENT, "Unit": "PERCENTAGE"}
    elif isinstance(rule, AllowedValuesRule):
        rendered["CheckExpression"] = ":col1 IN :list1"
        values = {":col1": quote_column(rule.column), ":list1": json.dumps(rule.values, separators=(",", ":"))}
        rendered["Threshold"] = {"Value": rule.min_percent, "Type": _AT_LEAST_PERCENT, "Unit": "PERCENTAGE"}
    else:  # pragma: no cover - the union above is exhaustive
        raise TypeError(f"not a quality rule: {rule!r}")
    rendered["SubstitutionMap"] = _substitutions(values)
    # Keys come first in the CloudFormation order: Name, CheckExpression, SubstitutionMap, ...
    order = ("Name", "CheckExpression", "SubstitutionMap", "ColumnSelectors", "Threshold")
    return {key: rendered[key] for key in order if key in rendered}


def databrew_rules(rules: list[Any]) -> list[dict[str, Any]]:
    """``AWS::DataBrew::Ruleset`` ``Rules``: one Rule per configured quality rule.

    Accepts validated models or the raw config mappings. Each rule's CheckExpression
    is checked against DataBrew's pattern here, so a bad expression fails at synth time.
    """
    parsed = _RULES.validate_python(rules)
    rendered = [_render_rule(rule) for rule in parsed]
    for rule in rendered:
        expression = rule["CheckExpression"]
        if not (4 <= len(expression) <= 1024 and CHECK_EXPRESSION_PATTERN.match(expression)):
            raise ValueError(f"rule {rule['Name']!r}: CheckExpression {expression!r} does not match "
                             f"DataBrew's pattern {CHECK_EXPRESSION_PATTERN.pattern}")
        for item in rule["SubstitutionMap"]:
            if len(item["Value"]) > MAX_SUBSTITUTION_VALUE:
                raise ValueError(f"rule {rule['Name']!r}: {item['ValueReference']} is longer than "
                                 f"{MAX_SUBSTITUTION_VALUE} characters")
    return rendered


# Flags of REMOVE_COMBINED as its documentation example lists them; trim sets exactly one.
REMOVE_COMBINED_FLAGS = (
    "collapseConsecutiveWhitespace", "removeAllPunctuation", "removeAllQuotes", "removeAllWhitespace",
    "removeCustomCharacters", "removeCustomValue", "removeLeadingAndTrailingPunctuation",
    "removeLeadingAndTrailingQuotes", "removeLeadingAndTrailingWhitespace", "removeLetters",
    "removeNumbers", "removeSpecialCharacters",
)


def _action(operation: str, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"Operation": operation}
    if parameters:
        action["Parameters"] = parameters
    return {"Action": action}


def _render_step(step: Any) -> list[dict[str, Any]]:
    if isinstance(step, RemoveMissingStep):
        return [_action("REMOVE_MISSING", {"sourceColumn": step.column})]
    if isinstance(step, FillMissingStep):
        if step.strategy == "mean":
            return [_action("FILL_WITH_AVERAGE", {"sourceColumn": step.column})]
        if step.strategy == "median":
            return [_action("FILL_WITH_MEDIAN", {"sourceColumn": step.column})]
        is_number = isinstance(step.value, (int, float))
        return [_action("FILL_WITH_CUSTOM", {
            "sourceColumn": step.column,
            "columnDataType": "number" if is_number else "string",
            "value": _number(step.value) if is_number else str(step.value),
        })]
    if isinstance(step, DeleteColumnsStep):
        # DELETE's documented parameter is one sourceColumn: one step per column.
        return [_action("DELETE", {"sourceColumn": column}) for column in step.columns]
    if isinstance(step, RemoveDuplicateRowsStep):
        return [_action("DELETE_DUPLICATE_ROWS")]
    if isinstance(step, LowerCaseStep):
        return [_action("LOWER_CASE", {"sourceColumn": step.column})]
    if isinstance(step, TrimStep):
        flags = {flag: "true" if flag == "removeLeadingAndTrailingWhitespace" else "false"
                 for flag in REMOVE_COMBINED_FLAGS}
        return [_action("REMOVE_COMBINED", {**flags, "sourceColumn": step.column})]
    raise TypeError(f"not a recipe step: {step!r}")  # pragma: no cover - the union is exhaustive


def databrew_recipe_steps(steps: list[Any]) -> list[dict[str, Any]]:
    """``AWS::DataBrew::Recipe`` ``Steps`` (``[{"Action": {"Operation", "Parameters"}}]``),
    in config order; one config step may become several DataBrew steps (delete_columns)."""
    parsed = _STEPS.validate_python(steps)
    return [rendered for step in parsed for rendered in _render_step(step)]
