"""Fine-grained assertions on the synthesized training pipeline."""

from __future__ import annotations

import json

import pytest

from tests.conftest import resources_of_type
from tools.lint import state_machine_definitions

STAGES = ("dev", "prod")


def _template(stacks, stage: str) -> dict:
    return stacks[f"{stage}/Pipeline"].template


def _definition(stacks, stage: str, kind: str = "training") -> dict:
    """The stage's training (or data) state machine definition."""
    template = _template(stacks, stage)
    (logical_id,) = [logical_id for logical_id, machine in resources_of_type(template, "AWS::StepFunctions::StateMachine").items()
                     if machine["Properties"]["StateMachineName"].endswith(f"-{kind}")]
    return state_machine_definitions(template)[logical_id]


def _statements(template: dict) -> list[dict]:
    return [s for p in resources_of_type(template, "AWS::IAM::Policy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


@pytest.mark.parametrize("stage", STAGES)
def test_state_machine_is_standard_logged_traced_and_bounded(stacks, stage: str) -> None:
    template = _template(stacks, stage)
    (properties,) = [m["Properties"] for m in resources_of_type(template, "AWS::StepFunctions::StateMachine").values()
                     if m["Properties"]["StateMachineName"].endswith("-training")]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL" and properties["LoggingConfiguration"]["IncludeExecutionData"]
    log_groups = resources_of_type(template, "AWS::Logs::LogGroup").values()
    assert all("KmsKeyId" in g["Properties"] and "RetentionInDays" in g["Properties"] for g in log_groups)
    definition = _definition(stacks, stage)
    assert definition["QueryLanguage"] == "JSONPath"
    assert definition["TimeoutSeconds"] == (6 if stage == "dev" else 6 + 72) * 3600


@pytest.mark.parametrize("stage", STAGES)
def test_every_sagemaker_and_lambda_task_retries_times_out_and_reports_failure(stacks, stage: str) -> None:
    for name, state in _definition(stacks, stage)["States"].items():
        if state["Type"] != "Task" or ":sns:" in state["Resource"]:
            continue
        assert "TimeoutSeconds" in state, name
        catches = [c["Next"] for c in state.get("Catch", [])]
        if name == "Describe failure":  # the failure ending's own first state: the raw error is notified
            assert catches == ["Failure not described"] and state["Next"] == "Notify failure"
            continue
        assert catches and state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        if catches[-1] != "Describe failure":  # a clean-up first: it must go on to the failure ending either way
            cleanup = _definition(stacks, stage)["States"][catches[-1]]
            assert (name, catches[-1]) == ("Predict test split", "Delete candidate model after failure")
            assert cleanup["Next"] == "Describe failure" and cleanup["Catch"][-1]["Next"] == "Describe failure", name
            assert cleanup["Catch"][-1]["ResultPath"] != "$.error", name  # the transform's error is what is reported
        if ":sagemaker:" in state["Resource"] or ":lambda:" in state["Resource"]:
            assert state.get("Retry"), name
        if state["Resource"].endswith(".sync"):
            errors = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert {"SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException",
                    "SageMaker.ResourceLimitExceeded"} <= errors, name


@pytest.mark.parametrize("stage", STAGES)
def test_job_names_are_unique_across_retries_and_redrives(stacks, stage: str) -> None:
    states = _definition(stacks, stage)["States"]
    for name, key in (("Train model", "TrainingJobName.$"), ("Evaluate on test split", "ProcessingJobName.$")):
        expression = states[name]["Parameters"][key]
        assert "$$.Execution.RedriveCount" in expression and "$$.State.RetryCount" in expression


def test_training_image_comes_from_the_sdk_mapping_not_a_typed_account(stacks) -> None:
    template = _template(stacks, "dev")
    raw = json.dumps(template["Resources"])
    assert "dkr.ecr" not in raw  # only in Mappings
    (mapping,) = template["Mappings"].values()
    assert len(mapping) >= 30 and mapping["eu-west-1"]["xgboost"].endswith("/sagemaker-xgboost:1.7-1")
    assert '"Fn::FindInMap"' in raw


@pytest.mark.parametrize(("stage", "spot"), [("dev", True), ("prod", False)])
def test_training_job_settings(stacks, stage: str, spot: bool) -> None:
    parameters = _definition(stacks, stage)["States"]["Train model"]["Parameters"]
    assert parameters.get("EnableManagedSpotTraining", False) is spot
    assert ("CheckpointConfig" in parameters) is spot
    assert ("MaxWaitTimeInSeconds" in parameters["StoppingCondition"]) is spot
    assert parameters["ResourceConfig"]["VolumeKmsKeyId"] and parameters["OutputDataConfig"]["KmsKeyId"]
    assert parameters["ExperimentConfig"]["TrialComponentDisplayName"] == "train"
    assert parameters["HyperParameters.$"] == "$.run.hyperparameters"


@pytest.mark.parametrize(("stage", "status"), [("dev", "Approved"), ("prod", "PendingManualApproval")])
def test_registration_and_approval(stacks, stage: str, status: str) -> None:
    states = _definition(stacks, stage)["States"]
    register = states["Register model version"]["Parameters"]
    assert register["ModelApprovalStatus"] == status
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri.$"] == "$.evaluation.report"
    assert {"train_data.$", "training_job.$", "trigger.$"} <= set(register["CustomerMetadataProperties"])
    assert register["MetadataProperties"]["CommitId"] == "unversioned"
    if stage == "prod":
        wait = states["Wait for approval"]
        assert wait["Resource"].endswith("lambda:invoke.waitForTaskToken") and wait["TimeoutSeconds"] == 72 * 3600
        assert wait["Catch"][0] == {"ErrorEquals": ["ModelRejected"], "ResultPath": "$.error", "Next": "Notify rejected"}
        (rule,) = [r for r in resources_of_type(_template(stacks, stage), "AWS::Events::Rule").values()
                   if r["Properties"]["EventPattern"]["source"] == ["aws.sagemaker"]]
        assert rule["Properties"]["EventPattern"]["detail"]["ModelApprovalStatus"] == ["Approved", "Rejected"]
        (target,) = rule["Properties"]["Targets"]
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    else:
        assert "Wait for approval" not in states


@pytest.mark.parametrize(("stage", "instances"), [("dev", 1), ("prod", 2)])
def test_realtime_deployment(stacks, stage: str, instances: int) -> None:
    template = _template(stacks, stage)
    states = _definition(stacks, stage)["States"]
    config = states["Create endpoint config"]["Parameters"]
    assert config["KmsKeyId"] and config["DataCaptureConfig"]["EnableCapture"] is True
    assert config["DataCaptureConfig"]["DestinationS3Uri"].endswith("/data-capture")
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == instances
    update = states["Update endpoint (blue-green)"]["Parameters"]["DeploymentConfig"]
    alarms = {k: a for k, a in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
              if k.startswith("TrainingEndpoint")}  # referenced by Ref (placeholder: logical id)
    assert {a["AlarmName"] for a in update["AutoRollbackConfiguration"]["Alarms"]} == set(alarms)
    assert {a["Properties"]["MetricName"] for a in alarms.values()} == {"Invocation5XXErrors", "ModelLatency"}
    policy = update["BlueGreenUpdatePolicy"]
    # prod: a canary of half the fleet bakes 10 minutes; dev (one instance) shifts all at once
    assert policy["TrafficRoutingConfiguration"] == (
        {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}, "WaitIntervalInSeconds": 600}
        if stage == "prod" else {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60})
    assert policy["TerminationWaitInSeconds"] == 300 and policy["MaximumExecutionTimeoutInSeconds"] == 1800
    assert states["Check endpoint"]["Retry"][-1]["ErrorEquals"] == ["EndpointBusy"]
    assert states["Use real-time endpoint"]["Result"] == {"endpoint_name": f"mlops-demo-{stage}-endpoint", "blue_green": True,
                                                  "scaling": "target-tracking", "instance_types": ["ml.m5.large"]}
    assert states["Keep waiting?"]["Choices"][0]["NumericLessThan"] == 30  # bounded poll
    assert states["Register scalable target"]["Parameters"]["MinCapacity"] == instances


@pytest.mark.parametrize("stage", STAGES)
def test_least_privilege_details(stacks, stage: str) -> None:
    statements = _statements(_template(stacks, stage))
    pass_role = [s for s in statements if "iam:PassRole" in _actions(s)]
    assert pass_role and all(s["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
                             for s in pass_role)
    assert any("sagemaker:AddTags" in _actions(s) for s in statements)
    rules = json.dumps([s["Resource"] for s in statements if "events:PutRule" in _actions(s)])
    assert "StepFunctionsGetEventsForSageMakerTrainingJobsRule" in rules
    assert "StepFunctionsGetEventsForSageMakerProcessingJobsRule" in rules
    wildcard_actions = [a for s in statements for a in _actions(s) if a.endswith("*")]
    assert wildcard_actions == []  # explicit actions only; resource wildcards are acknowledged one by one


@pytest.mark.parametrize("stage", STAGES)
def test_handlers(stacks, stage: str) -> None:
    functions = resources_of_type(_template(stacks, stage), "AWS::Lambda::Function")
    assert len(functions) == (10 if stage == "dev" else 11)  # 9 (+ approval in prod) handlers + the AwsCustomResource provider
    functions = {k: f for k, f in functions.items() if not k.startswith("AWS679f53fac002430cb0da5b7982bd2287")}
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.13" and properties["MemorySize"] == 256 and properties["Timeout"] == 30
        assert "AWSLambdaPowertoolsPythonV3-python313-x86_64:27" in json.dumps(properties["Layers"])
        assert "LoggingConfig" in properties


@pytest.mark.parametrize("stage", STAGES)
def test_batch_deployment(stacks, stage: str) -> None:
    states = _definition(stacks, stage)["States"]
    assert states["Deployment mode?"]["Choices"][0] == {
        "Variable": "$.run.deployment_mode", "StringEquals": "batch", "Next": "Run batch transform"}
    transform = states["Run batch transform"]
    assert transform["Resource"].endswith("sagemaker:createTransformJob.sync")
    parameters = transform["Parameters"]
    assert parameters["DataProcessing"] == {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
    assert parameters["TransformOutput"]["KmsKeyId"] and parameters["TransformResources"]["VolumeKmsKeyId"]
    rules = json.dumps([s["Resource"] for s in _statements(_template(stacks, stage)) if "events:PutRule" in _actions(s)])
    assert "StepFunctionsGetEventsForSageMakerTransformJobsRule" in rules


@pytest.mark.parametrize("stage", STAGES)
def test_tuning_branch(stacks, stage: str) -> None:
    states = _definition(stacks, stage)["States"]
    assert states["Tune hyperparameters?"]["Choices"][0]["Variable"] == "$.run.tuning"
    tune = states["Tune hyperparameters"]
    assert tune["Resource"].endswith("sagemaker:createHyperParameterTuningJob.sync")
    config = tune["Parameters"]["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert [r["Name"] for r in config["ParameterRanges"]["ContinuousParameterRanges"]] == ["eta"]
    assert [r["Name"] for r in config["ParameterRanges"]["IntegerParameterRanges"]] == ["max_depth"]
    definition = tune["Parameters"]["TrainingJobDefinition"]
    assert definition["StaticHyperParameters.$"] == "$.run.static_hyperparameters"
    assert definition["ResourceConfig"]["VolumeKmsKeyId"]
    assert states["Describe best training job"]["ResultPath"] == "$.training"
    assert "$.run.names.tune" in tune["Parameters"]["HyperParameterTuningJobName.$"]


@pytest.mark.parametrize("stage", STAGES)
def test_serverless_deployment(stacks, stage: str) -> None:
    states = _definition(stacks, stage)["States"]
    variant = states["Create serverless endpoint config"]["Parameters"]["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "DataCaptureConfig" not in states["Create serverless endpoint config"]["Parameters"]
    assert states["Use serverless endpoint"]["Result"] == {"endpoint_name": f"mlops-demo-{stage}-serverless", "blue_green": False,
                                                   "scaling": "none", "instance_types": []}
    assert "DeploymentConfig" not in states["Update serverless endpoint"]["Parameters"]
    assert states["Autoscale?"]["Choices"][0]["Variable"] == "$.deploy.scaling"


@pytest.mark.parametrize("stage", STAGES)
def test_async_deployment(stacks, stage: str) -> None:
    template = _template(stacks, stage)
    states = _definition(stacks, stage)["States"]
    parameters = states["Create async endpoint config"]["Parameters"]
    output = parameters["AsyncInferenceConfig"]["OutputConfig"]
    assert output["KmsKeyId"] and output["S3OutputPath"].endswith("/async-output/")
    assert parameters["DataCaptureConfig"]["EnableCapture"] is True and parameters["KmsKeyId"]
    topics = resources_of_type(template, "AWS::SNS::Topic")
    assert len(topics) == 2 and all("KmsMasterKeyId" in t["Properties"] for t in topics.values())
    assert states["Register async scalable target"]["Parameters"]["MinCapacity"] == 0
    alarm = states["Put wake-from-zero alarm"]["Parameters"]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity" and alarm["AlarmActions.$"] == "States.Array($.wake.policy_arn)"
    assert {t["Key"] for t in alarm["Tags"]} >= {"ml-project", "stage", "cost-center", "owner"}


def test_batch_over_a_configured_prefix_joins_features_and_is_monitored(stacks) -> None:
    """deployment.batch_input_prefix (the tests' pinned stage sets it): the transform reads
    that curated prefix (feature-only CSV), joins each line's features with its prediction, and
    the run then starts the monitoring workflow on that output; the execution role may read the
    prefix. Without it (prod), the test split, label joined back, nothing monitored."""
    from tests.conftest import BATCH_INPUT_PREFIX

    definitions = {stage: next(d for d in state_machine_definitions(stacks[f"{stage}/Pipeline"].template).values()
                               if "Run batch transform" in d["States"]) for stage in ("pinned", "prod")}
    states = definitions["pinned"]["States"]
    parameters = states["Run batch transform"]["Parameters"]
    assert parameters["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"].endswith(f"/{BATCH_INPUT_PREFIX}")
    assert parameters["DataProcessing"] == {"JoinSource": "Input"}
    assert states["Run batch transform"]["Next"] == "Record batch version"  # the monitoring baseline is its model's
    assert states["Record batch version"]["Next"] == "Monitor batch output"
    monitor = states["Monitor batch output"]
    assert monitor["Resource"].endswith(":states:startExecution") and monitor["Next"] == "Notify batch done"
    assert monitor["Parameters"]["StateMachineArn"].endswith(":stateMachine:mlops-demo-pinned-monitoring")
    assert monitor["Parameters"]["Input"] == {"batch_output.$": "$.transform.output",
                                              "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}
    prod = definitions["prod"]["States"]
    assert prod["Record batch version"]["Next"] == "Notify batch done" and "Monitor batch output" not in prod
    assert prod["Run batch transform"]["Parameters"]["DataProcessing"]["OutputFilter"] == "$[0,-1]"
    statements = [st for r in resources_of_type(stacks["pinned/Pipeline"].template, "AWS::IAM::Policy").values()
                  if "SageMakerRole" in json.dumps(r["Properties"]["Roles"]) for st in r["Properties"]["PolicyDocument"]["Statement"]]
    assert any(BATCH_INPUT_PREFIX in json.dumps(st["Resource"]) and "s3:GetObject" in st["Action"] for st in statements)


def _task_states(states: dict) -> list[tuple[str, dict]]:
    found = []
    for name, state in states.items():
        if state["Type"] == "Task":
            found.append((name, state))
        for branch in state.get("Branches", []):
            found += _task_states(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                found += _task_states(state[key]["States"])
    return found


def test_every_task_state_has_a_timeout(stacks) -> None:
    """A service that never answers (or a job that never reports) fails its state in bounded
    time, not at the execution's timeout hours later."""
    missing = [(key, name) for key, stack in stacks.items()
               for definition in state_machine_definitions(stack.template).values()
               for name, state in _task_states(definition["States"])
               if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state]
    assert missing == []


@pytest.mark.parametrize("stage", STAGES)
def test_glue_and_databrew_jobs_wait_out_concurrent_runs_and_throttling(stacks, stage: str) -> None:
    definition = next(d for lid, d in state_machine_definitions(_template(stacks, stage)).items() if "Data" in lid)
    states = definition["States"]
    expected = {"Split train, validation, test": "Glue.ConcurrentRunsExceededException",
                "Refresh catalog": "Glue.ThrottlingException",
                "Validate raw data": "DataBrew.ConflictException", "Clean raw data": "DataBrew.ServiceQuotaExceededException"}
    for name, error in expected.items():
        retries = states[name]["Retry"]
        assert any(error in r["ErrorEquals"] and r["MaxAttempts"] >= 3 and r["BackoffRate"] > 1 for r in retries), name
    split = states["Split train, validation, test"]
    assert split["TimeoutSeconds"] == (60 + 15) * 60 and "Timeout" not in split["Parameters"]  # the job's own timeout
