"""The training workflow's phases, each alone on a bare stack (tests/constructs_harness.py)."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template

from mlops.constructs.monitoring.backend import ModelMonitorBackend, OpenSourceBackend
from mlops.constructs.training.algorithm import (JSON_LINES, LINEAR_LEARNER_CONTENT_TYPES, LINEAR_LEARNER_RESPONSE_TYPES,
                                                 Algorithm, algorithm)
from mlops.constructs.training.candidates import CandidateSet
from mlops.constructs.training.deployment import Deployment, check_endpoint_function
from mlops.constructs.training.endpoint import Endpoints, autoscaling_caller_statements, rollback_alarms, scale_to_zero
from mlops.constructs.training.evaluation import Evaluation, evaluation_script, metric_gate_function
from mlops.constructs.training.execution_role import execution_role, grant_serving
from mlops.constructs.training.model_build import ModelBuild
from mlops.constructs.training.pipeline import TrainingPipeline
from mlops.constructs.training.registration import Registration, approval_function
from mlops.images import ImageMapping
from tests.constructs_harness import PREFIX, actions, bare_stage, definition, dev_config, fail_state, machine, statements

IMAGE = "123.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
XGBOOST = Algorithm(image_uri=IMAGE, repository="sagemaker-xgboost", description="Built-in XGBoost 1.7-1")
SCRIPT = Algorithm(
    image_uri="123.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
    repository="sagemaker-scikit-learn", description="models/wine_sklearn/train.py on scikit-learn 1.9-0",
    metric_definitions=[{"Name": "validation:accuracy", "Regex": "validation:accuracy=([0-9.]+)"}],
    framework_hyperparameters={"sagemaker_program": '"train.py"'},
    environment={"SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://assets/code.tar.gz"})


def _build(*, spot: bool, tuning: bool, algorithm: Algorithm = XGBOOST) -> dict:
    stack, resources = bare_stage()
    config = dev_config()
    training = config.training.model_copy(update={"use_spot_instances": spot})
    build = ModelBuild(stack, prefix=PREFIX, training=training, tuning=config.pipeline.tuning if tuning else None,
                       algorithm=algorithm, role_arn="arn:aws:iam::123456789012:role/sm", key_arn="arn:key",
                       tags=resources.tag_list, on_failure=fail_state(stack), instance_type="ml.m5.large")
    machine(stack, build.start)
    return definition(Template.from_stack(stack))["States"]


def test_a_script_model_trains_in_its_framework_image_with_its_metric_definitions() -> None:
    states = _build(spot=False, tuning=True, algorithm=SCRIPT)
    specification = states["Train model"]["Parameters"]["AlgorithmSpecification"]
    assert specification == {"TrainingImage": SCRIPT.image_uri, "TrainingInputMode": "File",
                             "MetricDefinitions": SCRIPT.metric_definitions}
    # tuning jobs read the same metrics from the same image
    assert states["Tune hyperparameters"]["Parameters"]["TrainingJobDefinition"]["AlgorithmSpecification"] == specification
    assert "MetricDefinitions" not in _build(spot=False, tuning=False)["Train model"]["Parameters"]["AlgorithmSpecification"]


def test_a_pytorch_script_trains_in_the_training_image_and_is_served_by_the_inference_image() -> None:
    from mlops.config import PipelineConfig
    from mlops.constructs.training.algorithm import script_image, script_serving_image

    stack, _ = bare_stage()
    pipeline = PipelineConfig.model_validate({
        **dev_config().pipeline.model_dump(exclude={"model", "hyperparameters", "tuning"}),
        "model": {"script": {"source_dir": "models/wine_sklearn", "framework": "pytorch"}},
        "hyperparameters": {"epochs": "10"}})

    images = ImageMapping(stack, "Images", images={"xgboost": ("xgboost", "1.7-1"),
                                                   "script": script_image(pipeline.script),
                                                   "scriptserving": script_serving_image(pipeline.script)})
    chosen = algorithm(stack, pipeline, images)
    assert chosen.image_uri != chosen.serving_image_uri and chosen.repositories == {"pytorch-training",
                                                                                    "pytorch-inference"}
    assert chosen.container("$.training.model_data")["Image"] == chosen.serving_image_uri
    assert chosen.description == "models/wine_sklearn/train.py on PyTorch 2.6.0"
    mapping = Template.from_stack(stack).to_json()["Mappings"]
    (uris,) = mapping.values()
    assert uris["eu-west-1"]["script"].endswith("/pytorch-training:2.6.0-cpu-py312")
    assert uris["eu-west-1"]["scriptserving"].endswith("/pytorch-inference:2.6.0-cpu-py312")


def test_model_build_tags_its_jobs_with_the_stage_tags() -> None:
    states = _build(spot=False, tuning=True)
    expected = [{"Key": "ml-project", "Value": "demo"}, {"Key": "stage", "Value": "test"}]
    assert states["Train model"]["Parameters"]["Tags"] == expected
    assert states["Tune hyperparameters"]["Parameters"]["Tags"] == expected


def test_model_build_trains_on_spot_with_checkpoints_when_configured() -> None:
    states = _build(spot=True, tuning=False)
    train = states["Train model"]
    assert train["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    parameters = train["Parameters"]
    assert parameters["EnableManagedSpotTraining"] is True and parameters["CheckpointConfig"] == {"S3Uri.$": "$.run.s3.checkpoints"}
    assert parameters["StoppingCondition"]["MaxWaitTimeInSeconds"] == 2 * parameters["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert train["TimeoutSeconds"] == parameters["StoppingCondition"]["MaxWaitTimeInSeconds"] + 900
    assert [c["ChannelName"] for c in parameters["InputDataConfig"]] == ["train", "validation"]
    assert train["Retry"][0]["ErrorEquals"] == ["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException",
                                                "SageMaker.ResourceLimitExceeded"]
    assert "Tune hyperparameters?" not in states


def test_model_build_tunes_when_asked_and_the_best_job_stands_in_for_training() -> None:
    states = _build(spot=False, tuning=True)
    choice = states["Tune hyperparameters?"]
    assert choice["Choices"][0]["Next"] == "Tune hyperparameters" and choice["Default"] == "Train model"
    tune = states["Tune hyperparameters"]["Parameters"]
    assert "EnableManagedSpotTraining" not in tune["TrainingJobDefinition"]
    assert set(tune["HyperParameterTuningJobConfig"]["ParameterRanges"]) == {"ContinuousParameterRanges",
                                                                           "IntegerParameterRanges"}
    assert states["Tune hyperparameters"]["Next"] == "Describe best training job"
    assert states["Describe best training job"]["ResultPath"] == "$.training"


def test_evaluation_gates_on_thresholds_and_the_gate_reads_only_its_group() -> None:
    stack, resources = bare_stage()
    config = dev_config()
    gate = metric_gate_function(stack, resources=resources, group=f"{PREFIX}-models")
    script = evaluation_script(stack)
    evaluation = Evaluation(stack, resources=resources, pipeline=config.pipeline, script=script, image_uri=IMAGE,
                            algorithm=SCRIPT, role_arn="arn:role", gate=gate, group=f"{PREFIX}-models",
                            on_failure=fail_state(stack))
    machine(stack, evaluation.passed(sfn.Succeed(stack, "Registered")))
    template = Template.from_stack(stack)
    states = definition(template)["States"]
    # the model predicts the test split in the container that will serve it; evaluation scores predictions
    candidate = states["Create candidate model"]["Parameters"]
    assert candidate["PrimaryContainer"] == {"Image": SCRIPT.image_uri, "ModelDataUrl.$": "$.training.model_data",
                                             "Environment": SCRIPT.environment}
    assert states["Create candidate model"]["Next"] == "Predict test split"
    transform = states["Predict test split"]["Parameters"]
    assert transform["DataProcessing"] == {"InputFilter": "$[1:]", "JoinSource": "None", "OutputFilter": "$"}
    assert transform["TransformInput"]["SplitType"] == "Line" and transform["TransformOutput"]["AssembleWith"] == "Line"
    assert states["Predict test split"]["Next"] == "Delete candidate model"
    assert states["Delete candidate model"]["Next"] == "Evaluate on test split"
    inputs = {i["InputName"]: i["S3Input"] for i in states["Evaluate on test split"]["Parameters"]["ProcessingInputs"]}
    assert set(inputs) == {"code", "predictions", "test"} and inputs["predictions"]["S3Uri.$"] == "$.predictions.output"
    assert states["Evaluate on test split"]["Next"] == "Check metric gate"
    assert states["Metric gate passed?"]["Default"] == "Notify gate failed"
    assert states["Metric gate failed"] == {"Type": "Fail", "Error": "MetricGateFailed", "CausePath": "$.gate.summary"}
    thresholds = states["Check metric gate"]["Parameters"]["Payload"]["thresholds"]
    assert thresholds == [t.model_dump() for t in config.pipeline.metric_thresholds]
    gate_statements = statements(template, "MetricGate")
    assert {"sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "s3:GetObject", "kms:Decrypt"} <= actions(gate_statements)
    assert "s3:PutObject" not in actions(gate_statements)


@pytest.mark.parametrize("manual", [False, True])
def test_registration_waits_for_the_registry_only_with_manual_approval(manual: bool) -> None:
    stack, resources = bare_stage()
    config = dev_config()
    pipeline = config.pipeline.model_copy(update={"manual_approval": manual})
    approval = approval_function(stack, resources=resources, group=f"{PREFIX}-models") if manual else None
    registration = Registration(stack, resources=resources, pipeline=pipeline, deployment=config.deployment,
                                algorithm=XGBOOST, group=f"{PREFIX}-models", approval=approval, on_failure=fail_state(stack))
    machine(stack, registration.then(sfn.Succeed(stack, "Deploy")))
    if manual:
        registration.approval_rule(f"{PREFIX}-training")
    template = Template.from_stack(stack)
    states = definition(template)["States"]
    register = states["Register model version"]["Parameters"]
    assert register["ModelApprovalStatus"] == ("PendingManualApproval" if manual else "Approved")
    assert register["CustomerMetadataProperties"]["train_data.$"] == "$.run.s3.train"
    assert ("Wait for approval" in states) is manual
    template.resource_count_is("AWS::Events::Rule", 1 if manual else 0)
    if manual:
        assert states["Wait for approval"]["Catch"][0] == {"ErrorEquals": ["ModelRejected"], "ResultPath": "$.error",
                                                           "Next": "Notify rejected"}
        template.has_resource_properties("AWS::Events::Rule", {"EventPattern": {
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": [f"{PREFIX}-models"], "ModelApprovalStatus": ["Approved", "Rejected"]}},
            "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(),
                                           "RetryPolicy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 86400}})]})
        template.has_resource_properties("AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value()})


def test_a_script_model_version_carries_its_serving_environment() -> None:
    """A version deployed from the registry serves with the script's handlers: the package's
    container holds SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY (CreateModel from a package
    copies its container)."""
    stack, resources = bare_stage()
    config = dev_config()
    registration = Registration(stack, resources=resources, pipeline=config.pipeline, deployment=config.deployment,
                                algorithm=SCRIPT, group=f"{PREFIX}-models", approval=None, on_failure=fail_state(stack))
    machine(stack, registration.then(sfn.Succeed(stack, "Deploy")))
    register = definition(Template.from_stack(stack))["States"]["Register model version"]["Parameters"]
    assert register["InferenceSpecification"]["Containers"] == [
        {"Image": SCRIPT.image_uri, "ModelDataUrl.$": "$.training.model_data", "Environment": SCRIPT.environment}]


LINEAR_LEARNER = Algorithm(
    image_uri="123.dkr.ecr.eu-west-1.amazonaws.com/linear-learner:1", repository="linear-learner",
    description="Built-in Linear Learner 1 (regressor)", content_types=LINEAR_LEARNER_CONTENT_TYPES,
    response_types=LINEAR_LEARNER_RESPONSE_TYPES, transform_accept=JSON_LINES)


def _registered_types(algorithm: Algorithm | CandidateSet) -> dict:
    stack, resources = bare_stage()
    config = dev_config()
    registration = Registration(stack, resources=resources, pipeline=config.pipeline, deployment=config.deployment,
                                algorithm=algorithm, group=f"{PREFIX}-models", approval=None, on_failure=fail_state(stack))
    machine(stack, registration.then(sfn.Succeed(stack, "Deploy")))
    specification = definition(Template.from_stack(stack))["States"]["Register model version"]["Parameters"][
        "InferenceSpecification"]
    return {key: value for key, value in specification.items() if key.startswith("Supported") and "Types" in key
            and "Instance" not in key}


def test_a_model_package_lists_the_types_its_algorithm_reads_and_answers_in() -> None:
    """XGBoost: text/csv both ways; Linear Learner answers JSON, JSON Lines or RecordIO, never CSV
    ("Linear learner response formats"); candidates serving differently: the winner's, which
    "Winner answers in?" put at $.predict_format."""
    assert _registered_types(XGBOOST) == {"SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
    assert _registered_types(LINEAR_LEARNER) == {
        "SupportedContentTypes": ["text/csv", "application/json", "application/x-recordio-protobuf"],
        "SupportedResponseMIMETypes": ["application/json", "application/jsonlines", "application/x-recordio-protobuf"]}
    both = CandidateSet(algorithms=(("xgboost", XGBOOST), ("linear", LINEAR_LEARNER)), metric="validation:mse",
                        direction="Minimize")
    assert _registered_types(both) == {"SupportedContentTypes.$": "$.predict_format.content_types",
                                       "SupportedResponseMIMETypes.$": "$.predict_format.response_types"}
    assert _registered_types(CandidateSet(algorithms=(("a", XGBOOST), ("b", SCRIPT)), metric="validation:auc",
                                          direction="Maximize"))["SupportedResponseMIMETypes"] == ["text/csv"]


def _predict_test_split(algorithm: Algorithm | CandidateSet) -> dict:
    stack, resources = bare_stage()
    config = dev_config()
    evaluation = Evaluation(stack, resources=resources, pipeline=config.pipeline, script=evaluation_script(stack),
                            image_uri=IMAGE, algorithm=algorithm, role_arn="arn:role",
                            gate=metric_gate_function(stack, resources=resources, group=f"{PREFIX}-models"),
                            group=f"{PREFIX}-models", on_failure=fail_state(stack))
    machine(stack, evaluation.passed(sfn.Succeed(stack, "Registered")))
    return definition(Template.from_stack(stack))["States"]


def test_the_test_split_is_predicted_in_the_response_type_the_winner_answers_a_line_per_record_in() -> None:
    """Linear Learner alone: JSON Lines, no choice; with XGBoost as the other candidate, "Winner
    answers in?" sets the Accept and the package's types by the winner's name."""
    single = _predict_test_split(LINEAR_LEARNER)
    assert single["Predict test split"]["Parameters"]["TransformOutput"]["Accept"] == "application/jsonlines"
    assert "Winner answers in?" not in single
    states = _predict_test_split(CandidateSet(algorithms=(("xgboost", XGBOOST), ("linear", LINEAR_LEARNER)),
                                              metric="validation:mse", direction="Minimize"))
    assert states["Predict test split"]["Parameters"]["TransformOutput"]["Accept.$"] == "$.predict_format.accept"
    choice = states["Winner answers in?"]
    (when,) = choice["Choices"]
    assert when["Variable"] == "$.selection.winner" and states[when["Next"]]["Result"] == {
        "accept": "application/jsonlines", "content_types": list(LINEAR_LEARNER_CONTENT_TYPES),
        "response_types": list(LINEAR_LEARNER_RESPONSE_TYPES)}
    assert when["StringEquals"] == "linear" and states[choice["Default"]]["Result"] == {
        "accept": "text/csv", "content_types": ["text/csv"], "response_types": ["text/csv"]}


def _deployment(*, monitored: bool = False, deployment: dict | None = None) -> tuple[Template, dict]:
    stack, resources = bare_stage()
    config = dev_config()
    if deployment:
        config = config.model_validate({**config.model_dump(), "deployment": {
            **config.deployment.model_dump(exclude={"traffic_shifting"}), **deployment}})
    endpoints = Endpoints.of(PREFIX)
    role = execution_role(stack, resources=resources, dataset="breast_cancer", scripts=[], repositories=["sagemaker-xgboost"])
    alarms = rollback_alarms(stack, prefix=PREFIX, endpoint=endpoints.realtime)
    deployment = Deployment(stack, resources=resources, deployment=config.deployment, endpoints=endpoints, role=role,
                            async_topics={"success": resources.topic, "error": resources.topic}, rollback_alarms=alarms,
                            check=check_endpoint_function(stack, resources=resources, endpoints=endpoints),
                            after_realtime=(lambda done: sfn.Pass(stack, "Monitor it").next(done)) if monitored else None,
                            after_batch=None, group=f"{PREFIX}-models", on_failure=fail_state(stack))
    machine(stack, deployment.start)
    template = Template.from_stack(stack)
    return template, definition(template)["States"]


def test_deployment_has_a_branch_per_mode_and_updates_blue_green_with_the_rollback_alarms() -> None:
    template, states = _deployment()
    assert [c["StringEquals"] for c in states["Deployment mode?"]["Choices"]] == ["batch", "serverless", "async"]
    assert states["Deployment mode?"]["Default"] == "Create endpoint config"
    update = states["Update endpoint (blue-green)"]["Parameters"]
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [  # by Ref: the resolver shows logical ids
        {"AlarmName": logical_id} for logical_id in alarms]
    assert sorted(a["Properties"]["AlarmName"] for a in alarms.values()) == [f"{PREFIX}-endpoint-5xx",
                                                                              f"{PREFIX}-endpoint-latency-p99"]
    assert states["Deployment rolled back?"]["Default"] == "Record serving version"
    assert states["Record serving version"]["Next"] == "Notify deployed"
    template.has_resource_properties("AWS::CloudWatch::Alarm", {"AlarmName": f"{PREFIX}-endpoint-5xx",
                                                                "MetricName": "Invocation5XXErrors", "Period": 60})
    check = statements(template, "CheckEndpoint")
    assert actions(check) >= {"sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig",
                              "application-autoscaling:DescribeScalableTargets"}


def test_deployment_takes_the_backends_states_after_a_realtime_deployment() -> None:
    _, states = _deployment(monitored=True)
    (realtime,) = [c for c in states["Deployment rolled back?"]["Choices"] if c.get("StringEquals") == "target-tracking"]
    assert realtime["Next"] == "Monitor it" and states["Monitor it"]["Next"] == "Record serving version"


def test_endpoint_autoscaling_and_the_permissions_application_auto_scaling_checks() -> None:
    stack, resources = bare_stage()
    config = dev_config()
    endpoints = Endpoints.of(PREFIX)
    machine(stack, scale_to_zero(stack, endpoint=endpoints.asynchronous, deployment=config.deployment, tags=resources.tags,
                                 on_failure=fail_state(stack)))
    sids = [s.to_statement_json()["Sid"] for s in autoscaling_caller_statements(stack, prefix=PREFIX, endpoints=endpoints)]
    assert sids == ["AutoscalingTargetChecks", "AutoscalingTargetTrackingAlarms", "AutoscalingServiceLinkedRole"]
    states = definition(Template.from_stack(stack))["States"]
    assert states["Register async scalable target"]["Parameters"]["MinCapacity"] == 0
    alarm = states["Put wake-from-zero alarm"]["Parameters"]
    assert alarm["AlarmActions.$"] == "States.Array($.wake.policy_arn)"
    assert alarm["Tags"] == [{"Key": "ml-project", "Value": "demo"}, {"Key": "stage", "Value": "test"}]


def test_execution_role_serves_as_sagemaker_acts_for_the_model() -> None:
    stack, resources = bare_stage()
    role = execution_role(stack, resources=resources, dataset="breast_cancer", scripts=[evaluation_script(stack)],
                          repositories=["sagemaker-xgboost"])
    grant_serving(role, resources=resources, async_topics=[resources.topic], batch_input_prefix=None)
    granted = statements(Template.from_stack(stack), "SageMakerRole")
    puts = [str(s["Resource"]) for s in granted if "s3:PutObject" in s["Action"]]
    assert any("async-output/*" in r for r in puts) and any("data-capture/*" in r for r in puts)
    assert any("runs/*" in r for r in puts)
    assert {"sns:Publish", "ecr:BatchGetImage", "s3:ListBucket"} <= actions(granted)


@pytest.mark.parametrize("backend_class", [OpenSourceBackend, ModelMonitorBackend])
def test_training_pipeline_alone_chains_its_phases(backend_class) -> None:  # noqa: ANN001
    stack, resources = bare_stage()
    config = dev_config()
    data_machine = sfn.StateMachine(stack, "DataMachine", definition_body=sfn.DefinitionBody.from_chainable(
        sfn.Pass(stack, "Data ready")))
    backend = backend_class(config.monitoring, config.pipeline)
    images = ImageMapping(stack, "Images", images={"xgboost": ("xgboost", "1.7-1"), "sklearn": ("sklearn", "1.2-1", "cpu", "py3"),
                                                  **backend.images()})
    backend.bind(images, resources)
    pipeline = TrainingPipeline(stack, "Training", resources=resources, backend=backend, pipeline=config.pipeline,
                                training=config.training, deployment=config.deployment, data_machine=data_machine,
                                algorithm=algorithm(stack, config.pipeline, images),
                                evaluation_image_uri=images.uri("xgboost"), group=f"{PREFIX}-models")
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::StepFunctions::StateMachine", {"StateMachineName": f"{PREFIX}-training",
                                                                          "TracingConfiguration": {"Enabled": True}})
    states = definition(template, "TrainingStateMachine")["States"]
    assert states["Prepare run"]["Next"] == "Prepare data" and states["Prepare data"]["Next"] == "Tune hyperparameters?"
    assert ("Baseline for Model Monitor" in states) is (backend_class is ModelMonitorBackend)
    assert set(pipeline.functions) >= {"prepare_run", "metric_gate", "check_endpoint"}
    assert cdk.Token.is_unresolved(pipeline.state_machine.state_machine_arn)


def test_update_carries_the_configured_traffic_shifting() -> None:
    """The config's routing reaches UpdateEndpoint as SageMaker takes it (TrafficRoutingConfig,
    BlueGreenUpdatePolicy), with SageMaker's own timeout set to the run's polling bound."""
    _, states = _deployment(deployment={"initial_instance_count": 4, "max_instance_count": 4,
                                        "wait_for_endpoint_minutes": 60, "termination_wait_minutes": 10,
                                        "traffic_shifting": {"type": "linear", "percent": 25, "wait_minutes": 8}})
    update = states["Update endpoint (blue-green)"]
    assert update["Parameters"]["DeploymentConfig"]["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                                        "WaitIntervalInSeconds": 480},
        "TerminationWaitInSeconds": 600, "MaximumExecutionTimeoutInSeconds": 3600}
    assert "linear traffic shifting" in update["Comment"]
    assert states["Keep waiting?"]["Choices"][0]["NumericLessThan"] == 60  # the run polls as long as SageMaker may take


def test_the_teams_own_image_trains_and_serves_and_only_its_repository_is_pulled() -> None:
    """pipeline.model.container: the image is the config's; the execution role may pull that one
    repository of the team's account (no wildcard), nothing else is added."""
    stack, resources = bare_stage()
    config = dev_config()
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-model:2.1"
    pipeline = config.pipeline.model_validate({
        **config.pipeline.model_dump(exclude={"model", "hyperparameters", "tuning"}),
        "model": {"container": {"image_uri": image, "environment": {"MODE": "fast"},
                                "metric_definitions": [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}]}},
        "hyperparameters": {"epochs": "5"}})
    images = ImageMapping(stack, "Images", images={"xgboost": ("xgboost", "1.7-1")})
    own = algorithm(stack, pipeline, images)
    assert (own.image_uri, own.environment, own.repository, own.own_code) == (image, {"MODE": "fast"}, None, True)
    assert own.container("$.training.model_data") == {"Image": image, "ModelDataUrl.$": "$.training.model_data",
                                                      "Environment": {"MODE": "fast"}}
    role = execution_role(stack, resources=resources, dataset="breast_cancer", scripts=[], repositories=["sagemaker-xgboost"])
    own.grant_execution(role)
    pulls = [s for s in statements(Template.from_stack(stack), "SageMakerRole") if "ecr:BatchGetImage" in s["Action"]]
    resources_pulled = [json.dumps(s["Resource"]) for s in pulls]
    assert any(":ecr:eu-west-1:123456789012:repository/churn-model" in r for r in resources_pulled), resources_pulled
    assert not any("churn-model" in r and "*" in r for r in resources_pulled)


def test_a_built_in_algorithm_on_categorical_features_encodes_them_and_serves_the_encoder_first() -> None:
    """The churn example's dataset with its built-in XGBoost candidate alone: "Encode categorical features" runs
    before training (fit on the train split, the positions of plan, region and contract among the
    features), training reads the encoded splits, and the model is a two-container inference
    pipeline: the encoder in the scikit-learn image, answering text/csv, then XGBoost."""
    from mlops.config import CONFIG_DIR, load_stage_config

    stack, resources = bare_stage()
    pipeline = load_stage_config("churn", CONFIG_DIR / "examples").pipeline.candidates[0].pipeline  # xgboost
    images = ImageMapping(stack, "Images", images={"xgboost": ("xgboost", "1.7-1"),
                                                   "encoder": ("sklearn", "1.9-0", "cpu", "py3")})
    built_in = algorithm(stack, pipeline, images)
    assert built_in.encoder is not None and built_in.encoder.categorical == (0, 1, 5)
    assert built_in.repositories == {"sagemaker-xgboost", "sagemaker-scikit-learn"}
    encoder, model = built_in.containers("$.training.model_data")
    assert encoder["ModelDataUrl.$"] == "$.run.s3.encoder_model" and model["ModelDataUrl.$"] == "$.training.model_data"
    assert {key: encoder["Environment"][key] for key in ("SAGEMAKER_PROGRAM", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")} == {
        "SAGEMAKER_PROGRAM": "encode.py", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}
    config = dev_config()  # its tuning (eta, max_depth): the tuning job trains on the encoded splits too
    build = ModelBuild(stack, prefix=PREFIX, training=config.training, tuning=config.pipeline.tuning, algorithm=built_in,
                       role_arn="arn:aws:iam::123456789012:role/sm", key_arn="arn:key", tags=resources.tag_list,
                       on_failure=fail_state(stack), instance_type="ml.m5.large")
    machine(stack, build.start)
    role = execution_role(stack, resources=resources, dataset="churn", scripts=[], repositories=sorted(built_in.repositories))
    built_in.grant_execution(role)
    template = Template.from_stack(stack)
    states = definition(template)["States"]
    encode = states["Encode categorical features"]
    assert encode["Next"] == "Tune hyperparameters?"
    assert encode["Parameters"]["AppSpecification"]["ContainerArguments"][4:6] == ["--categorical", "0,1,5"]
    assert {o["OutputName"]: o["S3Output"]["S3Uri.$"] for o in encode["Parameters"]["ProcessingOutputConfig"]["Outputs"]} == {
        "train": "$.run.s3.encoded_train", "validation": "$.run.s3.encoded_validation", "model": "$.run.s3.encoder"}
    for state in (states["Train model"]["Parameters"], states["Tune hyperparameters"]["Parameters"]["TrainingJobDefinition"]):
        assert [c["DataSource"]["S3DataSource"]["S3Uri.$"] for c in state["InputDataConfig"]] == [
            "$.run.s3.encoded_train", "$.run.s3.encoded_validation"]
    # the execution role reads the job's code (a processing input) and the serving code
    reads = [s for s in statements(template, "SageMakerRole") if s["Action"] == "s3:GetObject"]
    keys = json.dumps(reads)
    assert built_in.encoder.script.s3_object_key in keys and built_in.encoder.source.s3_object_key in keys


def test_candidates_train_in_parallel_branches_and_the_best_goes_on() -> None:
    """The churn example's two candidates: one Parallel branch each (its image, its hyperparameters
    by name, the encoded splits for the built-in one only), a caught failure ends its branch only,
    the selection handler picks by validation:auc, and the model and the package take the
    winner's containers."""
    from mlops.config import CONFIG_DIR, load_stage_config
    from mlops.constructs.training.candidates import CandidateSet, select_candidate_function, stage_algorithm

    stack, resources = bare_stage()
    pipeline = load_stage_config("churn", CONFIG_DIR / "examples").pipeline
    images = ImageMapping(stack, "Images", images={"xgboost": ("xgboost", "1.7-1"), "script1": ("sklearn", "1.9-0", "cpu", "py3"),
                                                   "encoder": ("sklearn", "1.9-0", "cpu", "py3")})
    candidates = stage_algorithm(stack, pipeline, images)
    assert isinstance(candidates, CandidateSet) and [name for name, _ in candidates.algorithms] == ["xgboost", "sklearn"]
    assert (candidates.metric, candidates.direction) == ("validation:auc", "Maximize")
    select = select_candidate_function(stack, resources=resources)
    config, failed = dev_config(), fail_state(stack)
    build = ModelBuild(stack, prefix=PREFIX, training=config.training, tuning=None, algorithm=candidates,
                       role_arn="arn:aws:iam::123456789012:role/sm", key_arn="arn:key", tags=resources.tag_list,
                       on_failure=failed, instance_type="ml.m5.large", select=select)
    registration = Registration(stack, resources=resources, pipeline=pipeline, deployment=config.deployment,
                                algorithm=candidates, group=f"{PREFIX}-models", approval=None, on_failure=failed)
    machine(stack, build.start.next(registration.then(sfn.Succeed(stack, "Deploy"))))
    template = Template.from_stack(stack)
    states = definition(template)["States"]
    assert states["Encode categorical features"]["Next"] == "Train candidates"
    parallel = states["Train candidates"]
    assert parallel["Type"] == "Parallel" and parallel["ResultPath"] == "$.candidates"
    branches = {branch["StartAt"]: branch["States"] for branch in parallel["Branches"]}
    assert set(branches) == {"Tune xgboost?", "Train sklearn"}  # the XGBoost candidate has its own tuning
    branches["Train xgboost"] = branches.pop("Tune xgboost?")
    for name, uses_encoded in (("xgboost", True), ("sklearn", False)):
        train = branches[f"Train {name}"][f"Train {name}"]
        assert train["Parameters"]["HyperParameters.$"] == f"$.run.candidates.{name}.hyperparameters"
        assert f"$.run.candidates.{name}.job" in train["Parameters"]["TrainingJobName.$"]
        assert train["Parameters"]["ExperimentConfig"]["TrialComponentDisplayName"] == f"train-{name}"
        splits = [c["DataSource"]["S3DataSource"]["S3Uri.$"] for c in train["Parameters"]["InputDataConfig"]]
        assert splits == (["$.run.s3.encoded_train", "$.run.s3.encoded_validation"] if uses_encoded
                          else ["$.run.s3.train", "$.run.s3.validation"])
        assert train["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{name} failed"}]
        assert branches[f"Train {name}"][f"{name} failed"]["Parameters"] == {"name": name, "error.$": "$.error"}
    # the tuned path: asked per run, its tuning job over the candidate's own request, its best job competing
    xgboost = branches["Train xgboost"]
    assert xgboost["Tune xgboost?"]["Choices"] == [{"Variable": "$.run.candidates.xgboost.tuning", "BooleanEquals": True,
                                                    "Next": "Tune xgboost"}]
    assert xgboost["Tune xgboost?"]["Default"] == "Train xgboost"
    tune = xgboost["Tune xgboost"]["Parameters"]
    assert "$.run.candidates.xgboost.tune" in tune["HyperParameterTuningJobName.$"]
    job = tune["TrainingJobDefinition"]
    assert job["StaticHyperParameters.$"] == "$.run.candidates.xgboost.static_hyperparameters"
    assert not {"TrainingJobName.$", "HyperParameters.$", "ExperimentConfig"} & set(job)
    assert job["AlgorithmSpecification"] == xgboost["Train xgboost"]["Parameters"]["AlgorithmSpecification"]
    assert [c["DataSource"]["S3DataSource"]["S3Uri.$"] for c in job["InputDataConfig"]] == [
        "$.run.s3.encoded_train", "$.run.s3.encoded_validation"]
    assert tune["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize", "MetricName": "validation:auc"}
    for state in ("Tune xgboost", "Describe xgboost best job"):
        assert xgboost[state]["Catch"][0]["Next"] == "xgboost failed"
    assert xgboost["Describe xgboost best job"]["Next"] == "xgboost tuned"
    assert xgboost["xgboost tuned"]["Parameters"]["tuning_job.$"] == "$.tuning_job"
    assert xgboost["xgboost tuned"]["Parameters"]["containers"] == xgboost["xgboost trained"]["Parameters"]["containers"]
    trained = branches["Train xgboost"]["xgboost trained"]["Parameters"]["containers"]
    assert [c["ModelDataUrl.$"] for c in trained] == ["$.run.s3.encoder_model", "$.training.model_data"]
    assert branches["Train sklearn"]["sklearn trained"]["Parameters"]["containers"][0]["Environment"][
        "SAGEMAKER_PROGRAM"] == "train.py"
    assert states["Select best candidate"]["Parameters"]["Payload"] == {
        "candidates.$": "$.candidates", "metric": "validation:auc", "direction": "Maximize"}
    assert (states["Best candidate"]["InputPath"], states["Best candidate"]["ResultPath"]) == (
        "$.selection.training", "$.training")
    register = states["Register model version"]["Parameters"]
    assert register["InferenceSpecification"]["Containers.$"] == "$.selection.containers"
    assert register["CustomerMetadataProperties"]["candidate.$"] == "$.selection.winner"
    describe = [s for s in statements(template, "SelectCandidate") if "sagemaker:DescribeTrainingJob" in json.dumps(s)]
    assert describe and ":training-job/demo-test-*" in json.dumps(describe)
