"""The offline DataBrew stand-in: recipe steps and ruleset validation on the breast-cancer sample."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
import yaml
from moto import mock_aws

from mlops.data_rules import databrew_recipe_steps, databrew_rules
from tools.offline.databrew import REPORT_SUFFIX, api_rules, apply_recipe, report_key, validate

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "breast_cancer" / "breast_cancer.csv"
RULESET_ARN = "arn:aws:databrew:eu-west-1:123456789012:ruleset/mlops-demo-dev-quality"

# The stage-config section for the breast-cancer sample (label ``target`` in {0, 1}).
CONFIG = yaml.safe_load("""
data:
  quality_rules:
    - type: row_count
      min: 500
    - type: no_duplicate_rows
    - type: completeness
      name: no-missing-values
      columns: [target, mean_radius, mean_texture, mean_perimeter, mean_area]
    - type: allowed_values
      column: target
      values: ["0", "1"]
    - type: range
      column: mean_radius
      min: 0
      max: 50
    - type: range
      column: mean_area
      min: 0
      max: 5000
  recipe:
    - action: remove_duplicate_rows
    - action: remove_missing
      column: target
    - action: fill_missing
      column: mean_radius
      strategy: median
""")["data"]
RULE_NAMES = ["row-count", "no-duplicate-rows", "no-missing-values", "target-allowed-values",
              "mean_radius-in-range", "mean_area-in-range"]


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)


def _report(frame: pd.DataFrame, quality_rules: list[dict] | None = None) -> dict:
    rules = api_rules(databrew_rules(CONFIG["quality_rules"] if quality_rules is None else quality_rules))
    key = report_key("profiles/", "breast_cancer", "db_0a1b2c")
    return validate(frame, rules, dataset_name="breast_cancer", job_name="mlops-demo-dev-profile",
                    run_id="db_0a1b2c", ruleset_arn=RULESET_ARN, location=f"s3://data-bucket/{key}")


def _failed(report: dict) -> set[str]:
    return {rule["name"] for ruleset in report["rulesetResults"] for rule in ruleset["ruleResults"]
            if rule["status"] != "SUCCEEDED"}


def _rule(report: dict, name: str) -> dict:
    return next(rule for rule in report["rulesetResults"][0]["ruleResults"] if rule["name"] == name)


def test_sample_passes_every_rule_in_the_report_format(sample: pd.DataFrame) -> None:
    report = _report(sample)
    assert list(report) == ["sampleSize", "rulesetResults", "jobName", "jobRunId", "location", "startedOn",
                            "writtenOn", "version"]
    assert report["sampleSize"] == 569 and report["version"] == "1.0" and report["jobRunId"] == "db_0a1b2c"
    assert report["location"] == "s3://data-bucket/profiles/breast_cancer_0a1b2c_dq-validation-report.json"
    (ruleset,) = report["rulesetResults"]
    assert ruleset["name"] == "mlops-demo-dev-quality" and ruleset["arn"] == RULESET_ARN
    assert ruleset["status"] == "SUCCEEDED" and _failed(report) == set()
    assert [rule["name"] for rule in ruleset["ruleResults"]] == RULE_NAMES
    completeness = _rule(report, "no-missing-values")
    assert completeness["columnResults"] == [{"name": column, "status": "SUCCEEDED"} for column in
                                             ["target", "mean_radius", "mean_texture", "mean_perimeter", "mean_area"]]
    assert _rule(report, "target-allowed-values")["failedCount"] == 0
    # the definition is the rule as describe_ruleset returns it, with Disabled
    assert _rule(report, "row-count")["definition"] == {
        "Name": "row-count", "Disabled": False, "CheckExpression": "AGG(ROWS_COUNT) >= :val1",
        "SubstitutionMap": {":val1": "500"}}
    json.dumps(report)  # serializable as written to S3


def _nulls_in_target(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[[3, 50, 100, 200, 400], "target"] = np.nan
    return frame


def _out_of_range(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[[1, 2, 3], "mean_radius"] = 80.0
    return frame


def _label_two(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[[7, 8], "target"] = 2
    return frame


def _duplicated(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.tail(10)], ignore_index=True)


def _too_few(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.head(100)


@pytest.mark.parametrize(
    ("inject", "failing"),
    [
        # a missing label is also not an allowed label (missing values fail row-level checks)
        (_nulls_in_target, {"no-missing-values", "target-allowed-values"}),
        (_out_of_range, {"mean_radius-in-range"}),
        (_label_two, {"target-allowed-values"}),
        (_duplicated, {"no-duplicate-rows"}),
        (_too_few, {"row-count"}),
    ],
    ids=["nulls-in-target", "out-of-range", "label-2", "duplicate-rows", "too-few-rows"],
)
def test_injected_problem_fails_exactly_its_rules(sample: pd.DataFrame, inject, failing: set[str]) -> None:
    report = _report(inject(sample))
    assert _failed(report) == failing
    assert report["rulesetResults"][0]["status"] == "FAILED"


def test_failed_counts_and_column_results_say_what_failed(sample: pd.DataFrame) -> None:
    report = _report(_nulls_in_target(_label_two(_out_of_range(sample))))
    assert _rule(report, "target-allowed-values")["failedCount"] == 7  # 5 missing + 2 labelled 2
    assert _rule(report, "mean_radius-in-range")["failedCount"] == 3
    statuses = {column["name"]: column["status"] for column in _rule(report, "no-missing-values")["columnResults"]}
    assert statuses == {"target": "FAILED", "mean_radius": "SUCCEEDED", "mean_texture": "SUCCEEDED",
                        "mean_perimeter": "SUCCEEDED", "mean_area": "SUCCEEDED"}


def test_thresholds_tolerate_what_the_config_allows(sample: pd.DataFrame) -> None:
    tolerant = [{"type": "range", "column": "mean_radius", "min": 0, "max": 50, "min_percent": 99},
                {"type": "no_duplicate_rows", "max_percent": 2},
                {"type": "completeness", "columns": ["target"], "max_missing_percent": 1}]
    dirty = _duplicated(_nulls_in_target(_out_of_range(sample)))  # 3/579 out of range, 10/579 dup, 5/579 null
    assert _failed(_report(dirty, tolerant)) == set()
    strict = [dict(rule, **{key: 0.5 for key in ("max_percent", "max_missing_percent") if key in rule})
              for rule in tolerant[1:]]
    assert _failed(_report(dirty, strict)) == {"no-duplicate-rows", "target-complete"}


def test_range_is_inclusive_and_rejects_text(sample: pd.DataFrame) -> None:
    frame = sample[["mean_radius"]].head(4).astype(object)
    frame.loc[0, "mean_radius"], frame.loc[1, "mean_radius"], frame.loc[2, "mean_radius"] = 0, 50, "n/a"
    report = _report(frame, [{"type": "range", "column": "mean_radius", "min": 0, "max": 50}])
    assert _rule(report, "mean_radius-in-range")["failedCount"] == 1


def test_disabled_rules_are_not_validated(sample: pd.DataFrame) -> None:
    rules = api_rules(databrew_rules([{"type": "row_count", "min": 1000}, {"type": "no_duplicate_rows"}]))
    rules[0]["Disabled"] = True
    report = validate(sample, rules, dataset_name="breast_cancer", job_name="j", run_id="db_1",
                      ruleset_arn=RULESET_ARN, location="s3://b/breast_cancer_1" + REPORT_SUFFIX)
    assert [rule["name"] for rule in report["rulesetResults"][0]["ruleResults"]] == ["no-duplicate-rows"]


def test_recipe_cleans_what_the_rules_reject(sample: pd.DataFrame) -> None:
    dirty = _duplicated(_nulls_in_target(sample))
    dirty.loc[[20, 21], "mean_radius"] = np.nan
    assert _failed(_report(dirty)) == {"no-duplicate-rows", "no-missing-values", "target-allowed-values",
                                       "mean_radius-in-range"}
    clean = apply_recipe(dirty, databrew_recipe_steps(CONFIG["recipe"]))
    assert len(clean) == 569 - 5 and _failed(_report(clean)) == set()
    median = sample["mean_radius"].drop([3, 50, 100, 200, 400, 20, 21]).median()  # of the rows the recipe keeps
    assert clean["mean_radius"].isna().sum() == 0 and (clean["mean_radius"] == median).sum() >= 2
    assert len(dirty) == 579  # the input frame is left alone


def test_a_frame_read_as_text_validates_and_cleans_the_same(sample: pd.DataFrame) -> None:
    """The offline runner reads CSVs as text (dtype=str); checks and fills still see numbers."""
    text = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, na_values=[""])
    assert _failed(_report(text)) == set()
    text.loc[[1, 2], "mean_radius"] = np.nan
    text.loc[5, "target"] = "2"
    assert _failed(_report(text)) == {"no-missing-values", "mean_radius-in-range", "target-allowed-values"}
    clean = apply_recipe(text, databrew_recipe_steps(CONFIG["recipe"]))
    median = sample["mean_radius"].drop([1, 2]).median()
    assert clean.loc[[1, 2], "mean_radius"].tolist() == [repr(float(median))] * 2
    with pytest.raises(ValueError, match="column 'mean_radius' has non-numeric values, e.g. 'n/a'"):
        apply_recipe(text.assign(mean_radius="n/a"), databrew_recipe_steps(CONFIG["recipe"]))


def test_each_recipe_operation() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0, 3.0], "s": [" A b ", None, "C", "C"], "y": [1, 2, 3, 3]})
    run = lambda *steps: apply_recipe(frame, databrew_recipe_steps(list(steps)))  # noqa: E731
    assert run({"action": "remove_missing", "column": "x"})["x"].tolist() == [1.0, 3.0, 3.0]
    assert run({"action": "remove_missing", "column": "s"})["y"].tolist() == [1, 3, 3]
    assert run({"action": "fill_missing", "column": "x", "strategy": "mean"})["x"].tolist() == [1.0, 7 / 3, 3.0, 3.0]
    assert run({"action": "fill_missing", "column": "x", "strategy": "median"})["x"].tolist() == [1.0, 3.0, 3.0, 3.0]
    assert run({"action": "fill_missing", "column": "x", "strategy": "constant", "value": -1})["x"].tolist() == [
        1.0, -1.0, 3.0, 3.0]
    assert run({"action": "fill_missing", "column": "s", "strategy": "constant", "value": "?"})["s"].tolist() == [
        " A b ", "?", "C", "C"]
    assert list(run({"action": "delete_columns", "columns": ["x", "y"]}).columns) == ["s"]
    assert run({"action": "remove_duplicate_rows"})["y"].tolist() == [1, 2, 3]
    assert run({"action": "lower_case", "column": "s"})["s"].tolist()[0] == " a b "
    assert run({"action": "trim", "column": "s"}, {"action": "lower_case", "column": "s"})["s"].tolist()[0] == "a b"
    with pytest.raises(ValueError, match="column 'nope' is not in the dataset"):
        run({"action": "remove_missing", "column": "nope"})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"Name": "mean", "CheckExpression": "AGG(MEAN) > :val1", "SubstitutionMap": {":val1": "0"},
          "ColumnSelectors": [{"Name": "mean_radius"}]}, r"'AGG\(MEAN\) > :val1'"),
        ({"Name": "prefix", "CheckExpression": ":col1 STARTS_WITH :val1",
          "SubstitutionMap": {":col1": "`target`", ":val1": "0"}, "Threshold": {"Value": 100}},
         "':col1 STARTS_WITH :val1' is not emulated"),
        ({"Name": "explicit", "CheckExpression": "AGG(:col1, MISSING_VALUES_PERCENTAGE) <= :val1",
          "SubstitutionMap": {":col1": "`target`", ":val1": "0"}}, "is not emulated"),
        ({"Name": "regex", "CheckExpression": "AGG(MISSING_VALUES_PERCENTAGE) <= :val1",
          "SubstitutionMap": {":val1": "0"}, "ColumnSelectors": [{"Regex": "mean_.*"}]}, "selectors by Name only"),
        ({"Name": "no-threshold", "CheckExpression": ":col1 IS_BETWEEN :val1 and :val2",
          "SubstitutionMap": {":col1": "`mean_radius`", ":val1": "0", ":val2": "1"}}, "needs a Threshold"),
        ({"Name": "column-vs-column", "CheckExpression": ":col1 IS_BETWEEN :val1 and :val2",
          "SubstitutionMap": {":col1": "`mean_radius`", ":val1": "`mean_area`", ":val2": "1"},
          "Threshold": {"Value": 100, "Type": "GREATER_THAN_OR_EQUAL", "Unit": "PERCENTAGE"}}, "not a number"),
    ],
)
def test_unsupported_checks_raise_naming_the_expression(sample: pd.DataFrame, rule: dict, message: str) -> None:
    with pytest.raises(NotImplementedError, match=message):
        validate(sample, [rule], dataset_name="breast_cancer", job_name="j", run_id="db_1",
                 ruleset_arn=RULESET_ARN, location="s3://b/breast_cancer_1" + REPORT_SUFFIX)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"Action": {"Operation": "UPPER_CASE", "Parameters": {"sourceColumn": "s"}}}, "'UPPER_CASE' is not emulated"),
        ({"Action": {"Operation": "DELETE", "Parameters": {"sourceColumns": '["s"]'}}}, "DELETE with parameters"),
        ({"Action": {"Operation": "REMOVE_COMBINED", "Parameters": {"sourceColumn": "s", "removeNumbers": "true"}}},
         "only the trim setting"),
        ({"Action": {"Operation": "FILL_WITH_CUSTOM", "Parameters": {
            "sourceColumn": "s", "columnDataType": "date", "value": "2020-01-01"}}}, "columnDataType 'date'"),
        ({"Action": {"Operation": "REMOVE_MISSING", "Parameters": {"sourceColumn": "s"}},
          "ConditionExpressions": [{"Condition": "IS", "Value": "x", "TargetColumn": "s"}]}, "ConditionExpressions"),
    ],
)
def test_unsupported_recipe_steps_raise_naming_the_operation(step: dict, message: str) -> None:
    with pytest.raises(NotImplementedError, match=message):
        apply_recipe(pd.DataFrame({"s": ["a"]}), [step])


def test_report_key_follows_the_documented_location() -> None:
    # the example event in the DataBrew Developer Guide (profile.data-quality-rules.html)
    run = "f07954d20d083de0c1fc1eee11498d8635ee5be4ca416af27d33933e91ff4e6e"
    assert report_key("MyKey/", "MyDataset", f"db_{run}") == f"MyKey/MyDataset_{run}_dq-validation-report.json"
    assert report_key("profiles", "breast_cancer", "abc") == "profiles/breast_cancer_abc_dq-validation-report.json"
    assert report_key("", "breast_cancer", "db_abc") == "breast_cancer_abc_dq-validation-report.json"


def test_round_trip_through_the_databrew_api(aws_credentials, sample: pd.DataFrame) -> None:
    """Rules and steps go through moto's DataBrew (botocore checks every request against the
    service model) and come back in the shapes the emulator reads."""
    dirty = _duplicated(_nulls_in_target(sample))
    with mock_aws():
        databrew = boto3.client("databrew")
        databrew.create_dataset(Name="breast_cancer", Input={"S3InputDefinition": {
            "Bucket": "data-bucket", "Key": "raw/breast_cancer.csv"}})
        databrew.create_ruleset(Name="mlops-demo-dev-quality", Rules=api_rules(databrew_rules(CONFIG["quality_rules"])),
                                TargetArn="arn:aws:databrew:eu-west-1:123456789012:dataset/breast_cancer")
        databrew.create_recipe(Name="mlops-demo-dev-clean", Steps=databrew_recipe_steps(CONFIG["recipe"]))
        rules = databrew.describe_ruleset(Name="mlops-demo-dev-quality")["Rules"]
        steps = databrew.describe_recipe(Name="mlops-demo-dev-clean", RecipeVersion="LATEST_WORKING")["Steps"]
    assert rules == api_rules(databrew_rules(CONFIG["quality_rules"]))
    assert _failed(_report(dirty)) == {"no-duplicate-rows", "no-missing-values", "target-allowed-values"}
    clean = apply_recipe(dirty, steps)
    report = validate(clean, rules, dataset_name="breast_cancer", job_name="j", run_id="db_1",
                      ruleset_arn=RULESET_ARN, location="s3://b/p/breast_cancer_1" + REPORT_SUFFIX)
    assert _failed(report) == set() and report["sampleSize"] == 564
