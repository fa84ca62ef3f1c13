"""Fine-grained assertions on the synthesized data side: catalog, crawlers,
Glue ETL, DataBrew, Feature Store, the data state machine and its wiring."""

from __future__ import annotations

import json

import pytest

from tests.conftest import resources_of_type
from tools.lint import state_machine_definitions

STAGES = ("dev", "prod")


def _one(template: dict, kind: str) -> dict:
    (resource,) = resources_of_type(template, kind).values()
    return resource["Properties"]


def _machine(stacks, stage: str, kind: str) -> dict:
    template = stacks[f"{stage}/Pipeline"].template
    (logical_id,) = [k for k, m in resources_of_type(template, "AWS::StepFunctions::StateMachine").items()
                     if m["Properties"]["StateMachineName"] == f"mlops-demo-{stage}-{kind}"]
    return state_machine_definitions(template)[logical_id]


@pytest.mark.parametrize("stage", STAGES)
def test_catalog_database_is_per_stage_and_kept_in_prod(stacks, stage: str) -> None:
    template = stacks[f"{stage}/Data"].template
    (database,) = resources_of_type(template, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == f"mlops_demo_{stage}"
    assert database["DeletionPolicy"] == ("Retain" if stage == "prod" else "Delete")


@pytest.mark.parametrize("stage", STAGES)
def test_glue_security_configuration_encrypts_everything_with_the_data_key(stacks, stage: str) -> None:
    template = stacks[f"{stage}/Pipeline"].template
    encryption = _one(template, "AWS::Glue::SecurityConfiguration")["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    keys = {json.dumps(e["KmsKeyArn"]) for e in (encryption["S3Encryptions"][0], encryption["CloudWatchEncryption"],
                                                 encryption["JobBookmarksEncryption"])}
    assert keys == {json.dumps({"Fn::ImportValue": f"mlops-demo-{stage}-data-key-arn"})}


@pytest.mark.parametrize("stage", STAGES)
def test_crawlers_have_explicit_policies_and_the_security_configuration(stacks, stage: str) -> None:
    template = stacks[f"{stage}/Pipeline"].template
    crawlers = [c["Properties"] for c in resources_of_type(template, "AWS::Glue::Crawler").values()]
    assert sorted(c["Name"] for c in crawlers) == [f"mlops-demo-{stage}-curated", f"mlops-demo-{stage}-raw"]
    for crawler in crawlers:
        assert crawler["DatabaseName"] == f"mlops_demo_{stage}"
        assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}
        assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}
        configuration = json.loads(crawler["Configuration"])
        assert configuration["CrawlerOutput"]["Partitions"]["AddOrUpdateBehavior"] == "InheritFromTable"
        assert "CrawlerSecurityConfiguration" in crawler
        # schedule from config: prod crawls daily, dev only after each data run
        assert ("Schedule" in crawler) is (stage == "prod")


@pytest.mark.parametrize("stage", STAGES)
def test_etl_job_runs_the_repo_script_on_glue_5_under_the_security_configuration(stacks, stage: str) -> None:
    job = _one(stacks[f"{stage}/Pipeline"].template, "AWS::Glue::Job")
    assert job["GlueVersion"] == "5.0" and job["Command"]["Name"] == "glueetl" and job["MaxRetries"] == 0
    assert job["Command"]["ScriptLocation"]["Fn::Sub"].endswith(".py")
    assert "SecurityConfiguration" in job
    arguments = job["DefaultArguments"]
    assert arguments["--job-bookmark-option"] == "job-bookmark-disable" and arguments["--label"] == "target"
    assert json.loads(arguments["--rules"]) == {"missing": {"*": "median"}, "pii": {}}
    assert job["NumberOfWorkers"] == (2 if stage == "dev" else 4)


@pytest.mark.parametrize("stage", STAGES)
def test_databrew_validates_with_the_ruleset_and_cleans_with_the_published_recipe(stacks, stage: str) -> None:
    template = stacks[f"{stage}/Pipeline"].template
    ruleset = _one(template, "AWS::DataBrew::Ruleset")
    assert len(ruleset["Rules"]) == 7 and ruleset["TargetArn"]["Fn::Join"][1][-1].endswith(f"dataset/mlops-demo-{stage}-raw")
    jobs = {j["Properties"]["Type"]: j["Properties"] for j in resources_of_type(template, "AWS::DataBrew::Job").values()}
    profile, recipe = jobs["PROFILE"], jobs["RECIPE"]
    assert profile["ValidationConfigurations"][0]["ValidationMode"] == "CHECK_ALL"
    assert profile["JobSample"] == {"Mode": "FULL_DATASET"}
    for job in (profile, recipe):
        assert job["EncryptionMode"] == "SSE-KMS" and job["LogSubscription"] == "ENABLE"
    assert recipe["Recipe"] == {"Name": f"mlops-demo-{stage}-clean", "Version": "LATEST_PUBLISHED"}
    steps = _one(template, "AWS::DataBrew::Recipe")["Steps"]
    assert [s["Action"]["Operation"] for s in steps] == ["REMOVE_MISSING", "DELETE_DUPLICATE_ROWS"]
    # the stack publishes the recipe (CloudFormation creates the working version only)
    (publish,) = resources_of_type(template, "Custom::AWS").values()
    assert "publishRecipe" in json.dumps(publish["Properties"])


@pytest.mark.parametrize("stage", STAGES)
def test_feature_groups_encrypt_both_stores_and_catalogue_the_offline_store(stacks, stage: str) -> None:
    (group,) = resources_of_type(stacks[f"{stage}/Data"].template, "AWS::SageMaker::FeatureGroup").values()
    properties = group["Properties"]
    assert properties["FeatureGroupName"] == f"mlops-demo-{stage}-tumour-shape"
    assert properties["RecordIdentifierFeatureName"] == "record_id" and properties["EventTimeFeatureName"] == "event_time"
    assert properties["OnlineStoreConfig"]["EnableOnlineStore"] and "KmsKeyId" in properties["OnlineStoreConfig"]["SecurityConfig"]
    offline = properties["OfflineStoreConfig"]
    assert "KmsKeyId" in offline["S3StorageConfig"]
    assert offline["DataCatalogConfig"]["Database"] == f"mlops_demo_{stage}"
    assert group["DeletionPolicy"] == ("Retain" if stage == "prod" else "Delete")


@pytest.mark.parametrize("stage", STAGES)
def test_data_state_machine_order_and_failure_handling(stacks, stage: str) -> None:
    states = _machine(stacks, stage, "data")["States"]
    order, name = [], "Output locations"
    while name:
        order.append(name)
        name = states[name].get("Next")
    assert order == ["Output locations", "Check raw schema", "Validate raw data", "Check data quality", "Clean raw data",
                     "Split train, validation, test", "Refresh catalog", "Catalog refresh under way",
                     "Ingest features", "Data ready"]
    assert states["Validate raw data"]["Resource"].endswith(":states:::databrew:startJobRun.sync")
    assert states["Split train, validation, test"]["Resource"].endswith(":states:::glue:startJobRun.sync")
    for task in ("Check raw schema", "Validate raw data", "Check data quality", "Clean raw data", "Refresh catalog",
                 "Ingest features"):
        assert "TimeoutSeconds" in states[task], task
    # CDK puts a Glue task's timeout on the job run itself: the run (and so the .sync wait) ends by then
    # the run keeps the job's own timeout; the state waits 15 minutes more for Glue to report it
    assert states["Split train, validation, test"]["TimeoutSeconds"] == (60 + 15) * 60
    assert "Timeout" not in states["Split train, validation, test"]["Parameters"]
    for task in ("Check raw schema", "Validate raw data", "Check data quality", "Clean raw data", "Split train, validation, test",
                 "Refresh catalog", "Ingest features"):
        assert any("States.ALL" in c["ErrorEquals"] for c in states[task]["Catch"]), task
    # a crawl already running is fine: the new files are picked up
    assert states["Refresh catalog"]["Catch"][0]["ErrorEquals"] == ["Glue.CrawlerRunningException"]


@pytest.mark.parametrize("stage", STAGES)
def test_training_runs_the_data_machine_first_and_names_quality_failures(stacks, stage: str) -> None:
    states = _machine(stacks, stage, "training")["States"]
    assert states["Prepare run"]["Next"] == "Prepare data"
    prepare = states["Prepare data"]
    assert prepare["Resource"].endswith(":states:::states:startExecution.sync:2")
    assert "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$" in prepare["Parameters"]["Input"]
    # a failed data run's own error name (DataQualityFailed ...) is the run's: the failure
    # ending describes the nested execution's failure and fails with its name
    assert any("States.ALL" in c["ErrorEquals"] and c["Next"] == "Describe failure" for c in prepare["Catch"])
    assert states["Run failed"]["ErrorPath"] == "$.failure.error"


@pytest.mark.parametrize("stage", STAGES)
def test_new_raw_data_starts_a_data_run_only_where_configured(stacks, stage: str) -> None:
    data, pipeline = stacks[f"{stage}/Data"].template, stacks[f"{stage}/Pipeline"].template
    rules = [r["Properties"] for r in resources_of_type(pipeline, "AWS::Events::Rule").values()
             if r["Properties"]["EventPattern"].get("source") == ["aws.s3"]]
    raw = [b["Properties"] for k, b in resources_of_type(data, "AWS::S3::Bucket").items() if k.startswith("DataLakeRaw")]
    enabled = raw[0].get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled")
    if stage == "dev":
        assert rules == [] and not enabled
        return
    (rule,) = rules
    assert enabled is True
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"prefix": "sample/breast_cancer/"}]
    (target,) = rule["Targets"]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_data_roles_use_explicit_actions_only(stacks) -> None:
    template = stacks["dev/Pipeline"].template
    statements = [s for k, p in resources_of_type(template, "AWS::IAM::Policy").items() if k.startswith("Data")
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = [a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert actions and [a for a in actions if a.endswith("*")] == []
