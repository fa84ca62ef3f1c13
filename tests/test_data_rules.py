"""Data-quality rules and recipe steps: config validation and DataBrew rendering."""

from __future__ import annotations

import inspect
import re

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from mlops.data_rules import (
    CHECK_EXPRESSION_PATTERN,
    RECIPE_ACTIONS,
    RULE_MODELS,
    RULE_TYPES,
    STEP_MODELS,
    QualityRules,
    RecipeSteps,
    databrew_recipe_steps,
    databrew_rules,
)
from tools.lint import lint_template


class DataSection(BaseModel):
    """How the stage config's ``data`` section embeds the two lists."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    quality_rules: QualityRules = []
    recipe: RecipeSteps = []


def _errors(**data) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        DataSection.model_validate(data)
    return [(".".join(str(part) for part in error["loc"]), error["msg"]) for error in caught.value.errors()]


EVERY_RULE = [
    {"type": "row_count", "min": 500},
    {"type": "no_duplicate_rows", "max_percent": 0.5},
    {"type": "completeness", "columns": ["target", "mean_radius"], "max_missing_percent": 2},
    {"type": "range", "column": "mean_radius", "min": 0, "max": 50, "min_percent": 99.5},
    {"type": "allowed_values", "column": "target", "values": [0, 1]},
]


def test_every_rule_type_renders_as_cloudformation_rule() -> None:
    assert {rule["type"] for rule in EVERY_RULE} == set(RULE_TYPES)
    assert databrew_rules(EVERY_RULE) == [
        {"Name": "row-count", "CheckExpression": "AGG(ROWS_COUNT) >= :val1",
         "SubstitutionMap": [{"ValueReference": ":val1", "Value": "500"}]},
        {"Name": "no-duplicate-rows", "CheckExpression": "AGG(DUPLICATE_ROWS_PERCENTAGE) <= :val1",
         "SubstitutionMap": [{"ValueReference": ":val1", "Value": "0.5"}]},
        {"Name": "2-columns-complete", "CheckExpression": "AGG(MISSING_VALUES_PERCENTAGE) <= :val1",
         "SubstitutionMap": [{"ValueReference": ":val1", "Value": "2"}],
         "ColumnSelectors": [{"Name": "target"}, {"Name": "mean_radius"}]},
        {"Name": "mean_radius-in-range", "CheckExpression": ":col1 IS_BETWEEN :val1 and :val2",
         "SubstitutionMap": [{"ValueReference": ":col1", "Value": "`mean_radius`"},
                             {"ValueReference": ":val1", "Value": "0"}, {"ValueReference": ":val2", "Value": "50"}],
         "Threshold": {"Value": 99.5, "Type": "GREATER_THAN_OR_EQUAL", "Unit": "PERCENTAGE"}},
        {"Name": "target-allowed-values", "CheckExpression": ":col1 IN :list1",
         "SubstitutionMap": [{"ValueReference": ":col1", "Value": "`target`"},
                             {"ValueReference": ":list1", "Value": '["0","1"]'}],
         "Threshold": {"Value": 100, "Type": "GREATER_THAN_OR_EQUAL", "Unit": "PERCENTAGE"}},
    ]


def test_expressions_match_databrew_pattern_and_substitution_keys_theirs() -> None:
    odd_columns = [{"type": "range", "column": "mean radius (mm) / ± `x", "min": 0, "max": 1}]
    with pytest.raises(ValidationError, match="backtick"):
        databrew_rules(odd_columns)
    rules = databrew_rules(EVERY_RULE + [
        {"type": "range", "column": "mean radius (mm) / ±", "min": -1.5, "max": 2e6},
        {"type": "completeness", "columns": ["a column, with: odd=chars"]},
    ])
    for rule in rules:
        assert CHECK_EXPRESSION_PATTERN.match(rule["CheckExpression"]) and 4 <= len(rule["CheckExpression"]) <= 1024
        assert 1 <= len(rule["Name"]) <= 128
        for item in rule["SubstitutionMap"]:
            assert re.fullmatch(r":[A-Za-z0-9_]+", item["ValueReference"]) and len(item["Value"]) <= 1024
            assert item["ValueReference"] in rule["CheckExpression"]
    # special characters stay out of the expression: quoted in the map, plain in selectors
    assert rules[5]["SubstitutionMap"][0]["Value"] == "`mean radius (mm) / ±`"
    assert rules[5]["SubstitutionMap"][1:] == [{"ValueReference": ":val1", "Value": "-1.5"},
                                              {"ValueReference": ":val2", "Value": "2000000"}]
    assert rules[6]["ColumnSelectors"] == [{"Name": "a column, with: odd=chars"}]


def test_names_default_per_type_and_can_be_set() -> None:
    named = databrew_rules([{"type": "completeness", "name": "label present", "columns": ["target"]},
                            {"type": "completeness", "columns": ["mean_radius"]}])
    assert [rule["Name"] for rule in named] == ["label present", "mean_radius-complete"]
    long_column = "c" * 200
    assert len(databrew_rules([{"type": "range", "column": long_column, "min": 0, "max": 1}])[0]["Name"]) == 128


@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        ({"quality_rules": [{"type": "regex", "column": "x"}]}, "quality_rules.0",
         "type: missing or unknown; allowed: row_count, no_duplicate_rows, completeness, range, allowed_values"),
        ({"quality_rules": [{"min": 3}]}, "quality_rules.0", "type: missing or unknown"),
        ({"quality_rules": [{"type": "row_count", "min": 0}]}, "quality_rules.0.row_count.min",
         "greater than or equal to 1"),
        ({"quality_rules": [{"type": "row_count", "minimum": 5}]}, "quality_rules.0.row_count.minimum",
         "Extra inputs are not permitted"),
        ({"quality_rules": [{"type": "range", "column": "x", "min": 5, "max": 1}]}, "quality_rules.0.range",
         "max: must be greater than min (5); got 1"),
        ({"quality_rules": [{"type": "range", "column": "x", "min": 0, "max": 1, "min_percent": 101}]},
         "quality_rules.0.range.min_percent", "less than or equal to 100"),
        ({"quality_rules": [{"type": "completeness", "columns": []}]}, "quality_rules.0.completeness.columns",
         "at least 1 item"),
        ({"quality_rules": [{"type": "completeness", "columns": ["a", "a"]}]}, "quality_rules.0.completeness",
         "columns: each column once (repeated: a)"),
        ({"quality_rules": [{"type": "allowed_values", "column": "target", "values": ["0", "0"]}]},
         "quality_rules.0.allowed_values", "values: each value once"),
        ({"quality_rules": [{"type": "allowed_values", "column": "t`", "values": ["0"]}]},
         "quality_rules.0.allowed_values.column", "may not contain a backtick"),
        ({"quality_rules": [{"type": "allowed_values", "column": "t", "values": [str(n) for n in range(300)]}]},
         "quality_rules.0.allowed_values", "1024-character"),
        ({"quality_rules": [{"type": "row_count", "min": 1, "name": "n" * 129}]}, "quality_rules.0.row_count.name",
         "at most 128 characters"),
        ({"quality_rules": [{"type": "row_count", "min": 1}, {"type": "row_count", "min": 2}]}, "quality_rules",
         "rule names must be unique within the ruleset (repeated: row-count)"),
        ({"recipe": [{"action": "pivot"}]}, "recipe.0",
         "action: missing or unknown; allowed: remove_missing, fill_missing, delete_columns, remove_duplicate_rows"),
        ({"recipe": [{"action": "fill_missing", "column": "x", "strategy": "mode"}]},
         "recipe.0.fill_missing.strategy", "'mean', 'median' or 'constant'"),
        ({"recipe": [{"action": "fill_missing", "column": "x", "strategy": "constant"}]}, "recipe.0.fill_missing",
         "value: required when strategy is 'constant'"),
        ({"recipe": [{"action": "fill_missing", "column": "x", "strategy": "median", "value": 3}]},
         "recipe.0.fill_missing", "value: only allowed with strategy 'constant'"),
        ({"recipe": [{"action": "delete_columns", "column": "x"}]}, "recipe.0.delete_columns.columns",
         "Field required"),
    ],
)
def test_bad_config_names_the_field_and_what_is_allowed(data: dict, location: str, message: str) -> None:
    errors = _errors(**data)
    assert any(loc == location and message in msg for loc, msg in errors), errors


def test_tags_resolve_to_their_models() -> None:
    """Error locations carry the tag (``quality_rules.0.range``): the maps resolve it."""
    assert tuple(RULE_MODELS) == RULE_TYPES and tuple(STEP_MODELS) == RECIPE_ACTIONS
    assert "min_percent" in RULE_MODELS["range"].model_fields


def test_config_is_frozen() -> None:
    section = DataSection.model_validate({"quality_rules": [{"type": "row_count", "min": 5}]})
    with pytest.raises(ValidationError):
        section.quality_rules[0].min = 1


EVERY_STEP = [
    {"action": "remove_duplicate_rows"},
    {"action": "remove_missing", "column": "target"},
    {"action": "fill_missing", "column": "mean_radius", "strategy": "median"},
    {"action": "fill_missing", "column": "mean_texture", "strategy": "mean"},
    {"action": "fill_missing", "column": "mean_area", "strategy": "constant", "value": 0},
    {"action": "fill_missing", "column": "site", "strategy": "constant", "value": "unknown"},
    {"action": "delete_columns", "columns": ["id", "notes"]},
    {"action": "lower_case", "column": "site"},
    {"action": "trim", "column": "site"},
]


def test_every_recipe_action_renders_as_documented_operation() -> None:
    assert {step["action"] for step in EVERY_STEP} == set(RECIPE_ACTIONS)
    steps = databrew_recipe_steps(EVERY_STEP)
    assert [step["Action"]["Operation"] for step in steps] == [
        "DELETE_DUPLICATE_ROWS", "REMOVE_MISSING", "FILL_WITH_MEDIAN", "FILL_WITH_AVERAGE", "FILL_WITH_CUSTOM",
        "FILL_WITH_CUSTOM", "DELETE", "DELETE", "LOWER_CASE", "REMOVE_COMBINED",
    ]
    assert steps[0] == {"Action": {"Operation": "DELETE_DUPLICATE_ROWS"}}  # no parameters at all
    assert steps[1] == {"Action": {"Operation": "REMOVE_MISSING", "Parameters": {"sourceColumn": "target"}}}
    assert steps[4]["Action"]["Parameters"] == {"sourceColumn": "mean_area", "columnDataType": "number", "value": "0"}
    assert steps[5]["Action"]["Parameters"] == {"sourceColumn": "site", "columnDataType": "string", "value": "unknown"}
    assert [step["Action"]["Parameters"] for step in steps[6:8]] == [{"sourceColumn": "id"}, {"sourceColumn": "notes"}]
    trim = steps[9]["Action"]["Parameters"]
    assert trim["removeLeadingAndTrailingWhitespace"] == "true" and trim["sourceColumn"] == "site"
    assert {value for key, value in trim.items() if key not in ("removeLeadingAndTrailingWhitespace", "sourceColumn")} \
        == {"false"}


def test_recipe_parameters_are_cloudformation_recipe_parameters() -> None:
    """Parameters is a string map; its keys are the camelCase RecipeParameters members."""
    from aws_cdk import aws_databrew

    members = inspect.signature(aws_databrew.CfnRecipe.RecipeParametersProperty.__init__).parameters
    allowed = {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name) for name in members if name != "self"}
    for step in databrew_recipe_steps(EVERY_STEP):
        assert re.fullmatch(r"[A-Z_]+", step["Action"]["Operation"])
        for key, value in step["Action"].get("Parameters", {}).items():
            assert key in allowed, key
            assert isinstance(value, str) and 1 <= len(value) <= 32768


def _template(rules: list[dict], steps: list[dict]) -> dict:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Ruleset": {"Type": "AWS::DataBrew::Ruleset", "Properties": {
                "Name": "mlops-demo-dev-quality", "Rules": rules,
                "TargetArn": "arn:aws:databrew:us-east-1:123456789012:dataset/breast_cancer"}},
            "Recipe": {"Type": "AWS::DataBrew::Recipe", "Properties": {"Name": "mlops-demo-dev-clean", "Steps": steps}},
        },
    }


def test_rendered_resources_pass_cfn_lint_and_lint_catches_a_bad_expression() -> None:
    rules, steps = databrew_rules(EVERY_RULE), databrew_recipe_steps(EVERY_STEP)
    assert [str(finding) for finding in lint_template(_template(rules, steps))] == []
    broken = [dict(rules[0], CheckExpression="AGG(ROWS_COUNT) >= `500`")]  # canary: the gate is live
    findings = [str(finding) for finding in lint_template(_template(broken, steps))]
    assert any("CheckExpression" in finding and "does not match" in finding for finding in findings), findings
