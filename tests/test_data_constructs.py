"""The data workflow's phases, each alone on a bare stack (tests/constructs_harness.py)."""

from __future__ import annotations

import json

import pytest
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template

from mlops.config import dataset_columns
from mlops.constructs.data_preparation import DataPreparation, data_prefixes
from mlops.constructs.data_preparation.features import FeatureIngestion
from mlops.constructs.data_preparation.split import GlueSplit
from mlops.constructs.data_preparation.validation import DataValidation
from tests.constructs_harness import PREFIX, actions, bare_stage, definition, dev_config, fail_state, machine, statements

NAMES = {"security": f"{PREFIX}-glue", "etl": f"{PREFIX}-split", "dataset": f"{PREFIX}-raw", "recipe": f"{PREFIX}-clean",
         "ruleset": f"{PREFIX}-quality", "profile_job": f"{PREFIX}-validate", "recipe_job": f"{PREFIX}-clean",
         "raw_crawler": f"{PREFIX}-raw", "curated_crawler": f"{PREFIX}-curated"}


@pytest.mark.parametrize("with_recipe", [True, False])
def test_validation_builds_the_ruleset_profile_job_and_optional_cleaning(with_recipe: bool) -> None:
    stack, resources = bare_stage()
    data = dev_config().data
    if not with_recipe:
        data = data.model_copy(update={"recipe": []})
    validation = DataValidation(stack, resources=resources, data=data, names=NAMES,
                                raw_dataset_prefix="sample/breast_cancer/", clean_prefix="clean/breast_cancer/",
                                dataset=dev_config().pipeline.dataset)
    chain: sfn.IChainable | None = None
    for state in validation.states(fail_state(stack)):
        chain = state if chain is None else chain.next(state)
    machine(stack, chain)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::DataBrew::Job", {"Type": "PROFILE", "EncryptionMode": "SSE-KMS",
                                                            "ValidationConfigurations": [Match.object_like(
                                                                {"ValidationMode": "CHECK_ALL"})]})
    template.has_resource_properties("AWS::DataBrew::Ruleset", {"Name": f"{PREFIX}-quality",
                                                                "Rules": Match.array_with([Match.object_like(
                                                                    {"Name": "label-complete"})])})
    template.resource_count_is("AWS::DataBrew::Recipe", 1 if with_recipe else 0)
    states = definition(template)["States"]
    assert ("Clean raw data" in states) is with_recipe
    assert states["Check raw schema"]["Next"] == "Validate raw data"  # the first check of the raw data
    assert states["Check data quality"]["Parameters"]["Payload"]["prefix"] == "data-quality/"
    brew = statements(template, "DataBrewRole")
    assert ("s3:DeleteObject" in actions(brew)) is with_recipe  # the recipe job overwrites its output


def test_split_runs_the_etl_script_on_glue_5_under_the_security_configuration() -> None:
    stack, resources = bare_stage()
    data = dev_config().data
    split = GlueSplit(stack, resources=resources, data=data, names=NAMES, paths=data_prefixes("breast_cancer"),
                      dataset=dev_config().pipeline.dataset, database_name="demo_test")
    first, crawled = split.states(fail_state(stack))
    crawled.next(sfn.Succeed(stack, "Done"))
    machine(stack, first)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Glue::Job", {
        "GlueVersion": "5.0", "SecurityConfiguration": Match.any_value(), "MaxRetries": 0,
        "DefaultArguments": Match.object_like({"--label": "target", "--rules": Match.serialized_json(
            {"missing": {"*": "median"}, "pii": {}})})})
    template.has_resource_properties("AWS::Glue::SecurityConfiguration", {"EncryptionConfiguration": {
        "S3Encryptions": [Match.object_like({"S3EncryptionMode": "SSE-KMS"})],
        "CloudWatchEncryption": Match.object_like({"CloudWatchEncryptionMode": "SSE-KMS"}),
        "JobBookmarksEncryption": Match.object_like({"JobBookmarksEncryptionMode": "CSE-KMS"})}})
    template.resource_count_is("AWS::Glue::Crawler", 2)
    states = definition(template)["States"]
    crawl = states["Refresh catalog"]
    assert crawl["Catch"][0] == {"ErrorEquals": ["Glue.CrawlerRunningException"], "ResultPath": None,
                                 "Next": "Catalog refresh under way"}
    assert "glue:CreateTable" in actions(statements(template, "CrawlerRole"))
    assert "glue:CreateTable" not in actions(statements(template, "EtlRole"))  # the job writes files, not tables


def test_feature_ingestion_may_write_only_the_stages_feature_groups() -> None:
    stack, resources = bare_stage()
    data = dev_config().data
    features = FeatureIngestion(stack, resources=resources, data=data, catalog_prefix="catalog/breast_cancer/",
                                image_uri="image", instance_type="ml.m5.large")
    machine(stack, features.state(fail_state(stack)))
    template = Template.from_stack(stack)
    assert features.groups == {"tumour-shape": f"{PREFIX}-tumour-shape"}
    (put,) = [s for s in statements(template, "IngestionRole") if s["Action"] == "sagemaker:PutRecord"]
    assert f"feature-group/{PREFIX}-tumour-shape" in json.dumps(put["Resource"])
    arguments = definition(template)["States"]["Ingest features"]["Parameters"]["AppSpecification"]["ContainerArguments"]
    assert arguments[0] == "--groups" and json.loads(arguments[1])[0]["record_identifier"] == "record_id"


def test_data_preparation_alone_chains_validation_split_catalog_and_features() -> None:
    stack, resources = bare_stage()
    config = dev_config()
    data = DataPreparation(stack, "Data", resources=resources, data=config.data, dataset=config.pipeline.dataset,
                           database_name="demo_test", image_uri="image", instance_type="ml.m5.large", timeout_hours=6)
    template = Template.from_stack(stack)
    definition_ = definition(template)
    assert definition_["StartAt"] == "Start data run"
    states = definition_["States"]
    order = ["Start data run", "Check data run input", "Output locations", "Check raw schema", "Validate raw data", "Check data quality", "Clean raw data", "Split train, validation, test",
             "Refresh catalog"]
    assert [states[name]["Next"] for name in order[:-1]] == order[1:]
    assert states["Catalog refresh under way"]["Next"] == "Ingest features"
    # every failure is described, notified, then fails with the described error and one-line cause
    assert states["Describe data failure"]["Next"] == "Notify data failure"
    assert states["Notify data failure"]["Next"] == "Data run failed"
    assert states["Data run failed"] == {"Type": "Fail", "ErrorPath": "$.failure.error", "CausePath": "$.failure.summary"}
    template.has_resource_properties("AWS::StepFunctions::StateMachine", {"StateMachineName": f"{PREFIX}-data"})
    template.resource_count_is("AWS::Events::Rule", 0)  # dev: no refresh on new raw data
    assert set(data.functions) == {"check_schema", "data_quality", "data_run_input"}
    # the schema gate reads the DataBrew dataset's input with the declared columns and types
    check = states["Check raw schema"]
    assert check["Parameters"]["Payload"]["prefix"] == "sample/breast_cancer/"
    assert check["Parameters"]["Payload"]["columns"] == [{"name": name, "type": "numeric"}
                                                         for name in dataset_columns("breast_cancer")]
    assert check["Parameters"]["Payload"]["label"] == "target"
    assert check["Parameters"]["Payload"]["classes"] == ["0", "1"]
    assert check["Catch"][0]["ErrorEquals"] == ["States.ALL"] and check["Catch"][0]["Next"] == "Describe data failure"
    schema = statements(template, "CheckSchemaRole")
    assert actions(schema) >= {"s3:GetObject", "s3:ListBucket"} and "s3:PutObject" not in actions(schema)
