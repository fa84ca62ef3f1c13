"""One test per service rule of the offline runs (tools/offline/service_rules.py): each builds
the situation the rule is about on an emulated dev stage and expects AWS's refusal. Taking a
rule out makes its test fail. The scenarios in test_offline_*.py show the synthesized stage
passing the same rules."""

from __future__ import annotations

import copy
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from mlops import rollout
from mlops.config import MODEL_MONITOR_SCHEDULES
from tools.offline import adapter, service_rules
from tools.offline.runner import OfflineStage

ACCOUNT, REGION = "123456789012", "eu-west-1"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture(scope="module")
def stage(cloud_assembly_dir: Path):
    with OfflineStage(cloud_assembly_dir, "dev") as emulated:
        yield emulated


@pytest.fixture(autouse=True)
def fresh_record(stage: OfflineStage):
    stage.hooks.denied.clear()
    yield
    stage.hooks.creations.clear()  # the tests' own requests, not a run's: no cost-allocation tags expected


def _role(stage: OfflineStage, fragment: str) -> str:
    return next(role for role in stage.hooks.policies.identity if fragment in role)


def _without(stage: OfflineStage, role: str, name: str, drop) -> str:  # noqa: ANN001
    """A copy of ``role``'s synthesized statements minus the actions ``drop(action, statement)``
    picks, registered as role ``name``."""
    statements = []
    for statement in copy.deepcopy(stage.hooks.policies.identity[role]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        kept = [action for action in actions if not drop(action, statement)]
        if kept:
            statements.append({**statement, "Action": kept})
    stage.hooks.policies.identity[name] = statements
    return name


def _bucket(stage: OfflineStage, zone: str) -> str:
    return stage._resolver.exports[f"mlops-demo-dev-{zone}-bucket"]


def _model_artifact(stage: OfflineStage) -> str:
    import xgboost

    booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(np.eye(4), label=[0, 1, 0, 1]), 2)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        raw = booster.save_raw("ubj")
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(bytes(raw)))
    key = "runs/rule-tests/model.tar.gz"
    with adapter.principal("runner"):
        boto3.client("s3").put_object(Bucket=_bucket(stage, "artifacts"), Key=key, Body=buffer.getvalue())
    return f"s3://{_bucket(stage, 'artifacts')}/{key}"


_COUNTER = iter(range(1000))


def _endpoint(stage: OfflineStage, role: str, *, capture: bool = False, asynchronous: bool = False,
              instance_type: str = "ml.m5.large", name: str | None = None, instances: int = 1) -> tuple[str, str]:
    """An endpoint serving a tiny real model as ``role``; returns (endpoint, config) names.
    Configs are named like the stage's own (``mlops-demo-dev-config-…``)."""
    n = next(_COUNTER)
    sagemaker = boto3.client("sagemaker")
    key = stage._resolver.exports["mlops-demo-dev-data-key-arn"]
    with adapter.principal("runner"):
        sagemaker.create_model(ModelName=f"rules-model-{n}", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
                               PrimaryContainer={"Image": IMAGE, "ModelDataUrl": _model_artifact(stage)})
        config: dict[str, Any] = {"EndpointConfigName": f"mlops-demo-dev-config-rules-{n}", "ProductionVariants": [{
            "VariantName": "AllTraffic", "ModelName": f"rules-model-{n}", "InstanceType": instance_type,
            "InitialInstanceCount": instances}]}
        if capture:
            config["DataCaptureConfig"] = {
                "EnableCapture": True, "InitialSamplingPercentage": 100, "KmsKeyId": key,
                "DestinationS3Uri": f"s3://{_bucket(stage, 'monitoring')}/data-capture",
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
        if asynchronous:
            config["AsyncInferenceConfig"] = {"OutputConfig": {
                "S3OutputPath": f"s3://{_bucket(stage, 'artifacts')}/async-output/", "KmsKeyId": key}}
        sagemaker.create_endpoint_config(**config)
        endpoint = name or f"rules-endpoint-{n}"
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config["EndpointConfigName"])
    return endpoint, config["EndpointConfigName"]


# --- autoscaling-caller-permissions ------------------------------------------------------------
@pytest.fixture(scope="module")
def stage_endpoint(stage: OfflineStage) -> str:
    """The stage's real-time endpoint, serving: the one its training role may autoscale."""
    return _endpoint(stage, _role(stage, "SageMakerRole"), name="mlops-demo-dev-endpoint")[0]


def _register(stage: OfflineStage, principal: str, endpoint: str) -> None:
    with adapter.principal(principal):
        boto3.client("application-autoscaling").register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=f"endpoint/{endpoint}/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=1, MaxCapacity=2)


def test_autoscaling_registration_is_refused_to_a_caller_that_may_not_act_on_the_endpoint(
        stage: OfflineStage, stage_endpoint: str) -> None:
    with pytest.raises(ClientError) as refused:
        _register(stage, stage.functions["prepare-run"], stage_endpoint)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "sagemaker:DescribeEndpoint on" in str(refused.value)
    _register(stage, "states:mlops-demo-dev-training", stage_endpoint)  # the synthesized training role may
    assert service_rules.SERVICE_LINKED_ROLE in service_rules.SERVICE_LINKED_ROLES


def test_the_first_registration_creates_the_service_linked_role(stage: OfflineStage, stage_endpoint: str) -> None:
    service_rules.SERVICE_LINKED_ROLES.clear()  # as in an account that never autoscaled an endpoint
    training = stage.role_of["states:mlops-demo-dev-training"]
    cannot = _without(stage, training, "without-slr", lambda action, _: action == "iam:CreateServiceLinkedRole")
    with pytest.raises(ClientError, match="iam:CreateServiceLinkedRole"):
        _register(stage, cannot, stage_endpoint)
    _register(stage, "states:mlops-demo-dev-training", stage_endpoint)
    _register(stage, cannot, stage_endpoint)  # once the role exists, registering needs no more than the target


@pytest.mark.parametrize("missing", ["sagemaker:DescribeEndpointConfig", "sagemaker:UpdateEndpointWeightsAndCapacities",
                                     "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"])
def test_target_tracking_needs_every_permission_the_service_validates(stage: OfflineStage, stage_endpoint: str,
                                                                      missing: str) -> None:
    """The training role's synthesized policy minus one action: the policy is refused, naming it."""
    training = stage.role_of["states:mlops-demo-dev-training"]
    trimmed = _without(stage, training, f"without-{missing}", lambda action, _: action == missing)
    with adapter.principal("states:mlops-demo-dev-training"):
        boto3.client("application-autoscaling").register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId="endpoint/mlops-demo-dev-endpoint/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=1, MaxCapacity=2)
    with adapter.principal(trimmed), pytest.raises(ClientError, match=missing):
        boto3.client("application-autoscaling").put_scaling_policy(
            PolicyName="p", ServiceNamespace="sagemaker", ResourceId="endpoint/mlops-demo-dev-endpoint/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={"TargetValue": 100, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})


# --- hosting-as-execution-role -----------------------------------------------------------------
@pytest.mark.parametrize(("lacks", "reason"), [
    (lambda action, _: action.startswith("ecr:"), "could not pull"),
    (lambda action, s: action == "s3:GetObject" and "/runs/" in json.dumps(s.get("Resource")), "could not download"),
    (lambda action, _: action == "kms:Decrypt", "kms:Decrypt"),
], ids=["image", "artifact", "artifact-key"])
def test_an_endpoint_whose_role_cannot_load_the_model_fails(stage: OfflineStage, lacks, reason: str) -> None:  # noqa: ANN001
    role = _without(stage, _role(stage, "SageMakerRole"), f"cannot-load-{reason}", lacks)
    endpoint, _ = _endpoint(stage, role)
    described = boto3.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "Failed" and reason in described["FailureReason"]


def test_captured_data_is_lost_when_the_execution_role_may_not_write_it(stage: OfflineStage) -> None:
    sagemaker_role = _role(stage, "SageMakerRole")
    role = _without(stage, sagemaker_role, "no-capture-write",
                    lambda action, s: action == "s3:PutObject" and "data-capture" in json.dumps(s.get("Resource")))
    endpoint, _ = _endpoint(stage, role, capture=True)
    assert len(stage.invoke(endpoint, [[1, 0, 0, 0], [0, 1, 0, 0]])) == 2  # the client still gets its answer
    s3 = boto3.client("s3")
    assert "Contents" not in s3.list_objects_v2(Bucket=_bucket(stage, "monitoring"), Prefix=f"data-capture/{endpoint}/")
    assert [call.action for call in stage.hooks.denied] == ["s3:PutObject"]
    working, _ = _endpoint(stage, sagemaker_role, capture=True)
    stage.invoke(working, [[1, 0, 0, 0]])
    assert s3.list_objects_v2(Bucket=_bucket(stage, "monitoring"), Prefix=f"data-capture/{working}/AllTraffic/")["KeyCount"] == 1


def test_async_results_need_the_execution_role_to_write_them(stage: OfflineStage) -> None:
    role = _without(stage, _role(stage, "SageMakerRole"), "no-async-write",
                    lambda action, s: action == "s3:PutObject" and "async-output" in json.dumps(s.get("Resource")))
    endpoint, _ = _endpoint(stage, role, asynchronous=True)
    artifacts = _bucket(stage, "artifacts")
    with adapter.principal("runner"):
        boto3.client("s3").put_object(Bucket=artifacts, Key="async-input/r.csv", Body=b"1,0,0,0\n")
    answer = boto3.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=endpoint, InputLocation=f"s3://{artifacts}/async-input/r.csv", InferenceId="r")
    with pytest.raises(ClientError):
        boto3.client("s3").head_object(Bucket=artifacts, Key=answer["OutputLocation"].split("/", 3)[3])
    assert "s3:PutObject" in [call.action for call in stage.hooks.denied]


# --- sse-kms-callers -------------------------------------------------------------------------
def test_writing_to_a_kms_bucket_needs_the_key(stage: OfflineStage) -> None:
    role = _without(stage, _role(stage, "SageMakerRole"), "no-kms", lambda action, _: action.startswith("kms:"))
    with adapter.principal(role, enforce=True), pytest.raises(ClientError, match="kms:GenerateDataKey"):
        boto3.client("s3").put_object(Bucket=_bucket(stage, "artifacts"), Key="runs/x/model.tar.gz", Body=b"x")
    with adapter.principal(_role(stage, "SageMakerRole"), enforce=True):
        boto3.client("s3").put_object(Bucket=_bucket(stage, "artifacts"), Key="runs/x/model.tar.gz", Body=b"x")


# --- blue-green-alarm-access and autoscaled-instance-type-update ---------------------------------
def _new_config(stage: OfflineStage, role: str, instance_type: str, instances: int = 1) -> str:
    n = next(_COUNTER)
    with adapter.principal("runner"):
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model(ModelName=f"rules-model-{n}", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
                               PrimaryContainer={"Image": IMAGE, "ModelDataUrl": _model_artifact(stage)})
        sagemaker.create_endpoint_config(EndpointConfigName=f"mlops-demo-dev-config-rules-{n}", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": f"rules-model-{n}", "InstanceType": instance_type,
            "InitialInstanceCount": instances}])
    return f"mlops-demo-dev-config-rules-{n}"


def test_blue_green_update_needs_the_execution_role_to_read_its_alarms(stage: OfflineStage) -> None:
    sagemaker_role = _role(stage, "SageMakerRole")
    endpoint, _ = _endpoint(stage, sagemaker_role)
    blind = _without(stage, sagemaker_role, "no-describe-alarms", lambda action, _: action == "cloudwatch:DescribeAlarms")
    rollback = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}},
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "mlops-demo-dev-endpoint-5xx"}]}}
    sagemaker = boto3.client("sagemaker")
    with pytest.raises(ClientError, match="cloudwatch:DescribeAlarms"):
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=_new_config(stage, blind, "ml.m5.large"),
                                  DeploymentConfig=rollback)
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=_new_config(stage, sagemaker_role, "ml.m5.large"),
                              DeploymentConfig=rollback)


def test_an_autoscaled_variant_cannot_change_instance_type(stage: OfflineStage) -> None:
    sagemaker_role = _role(stage, "SageMakerRole")
    endpoint, _ = _endpoint(stage, sagemaker_role)
    _register(stage, "runner", endpoint)
    sagemaker = boto3.client("sagemaker")
    with pytest.raises(ClientError, match="registered with Application Auto Scaling"):
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=_new_config(stage, sagemaker_role, "ml.c5.xlarge"))
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=_new_config(stage, sagemaker_role, "ml.m5.large"))
    boto3.client("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{endpoint}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=_new_config(stage, sagemaker_role, "ml.c5.xlarge"))


# --- blue-green-limits ---------------------------------------------------------------------------
@pytest.mark.parametrize(("policy", "refusal"), [
    ({"TrafficRoutingConfiguration": rollout.routing("canary", 75, 60)},
     "CanarySize 75 CAPACITY_PERCENT is 75% of the variant's 4 instances; allowed up to 50%"),
    ({"TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 3},
                                      "WaitIntervalInSeconds": 60}}, "is 75% of the variant's 4 instances"),
    ({"TrafficRoutingConfiguration": rollout.routing("linear", 60, 1)}, "allowed 10-50% of them"),
    ({"TrafficRoutingConfiguration": rollout.routing("linear", 10, 1)}, "of 4 instances is less than one instance"),
    ({"TrafficRoutingConfiguration": {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                                      "WaitIntervalInSeconds": 3601}}, "WaitIntervalInSeconds 3601: allowed 0-3600"),
    ({"TrafficRoutingConfiguration": rollout.routing("all_at_once", None, 0), "TerminationWaitInSeconds": 3601},
     "TerminationWaitInSeconds 3601: allowed 0-3600"),
    ({"TrafficRoutingConfiguration": rollout.routing("all_at_once", None, 0), "MaximumExecutionTimeoutInSeconds": 28801},
     "MaximumExecutionTimeoutInSeconds 28801: allowed 600-28800"),
    # four linear steps: three waits of 5 minutes and a final bake of 5: 1200 s to wait
    ({"TrafficRoutingConfiguration": rollout.routing("linear", 25, 5), "TerminationWaitInSeconds": 300,
      "MaximumExecutionTimeoutInSeconds": 1200}, "larger than the total waiting time (1200 s)"),
], ids=["canary-75-percent", "canary-3-of-4", "linear-60", "linear-under-an-instance", "wait-3601",
        "termination-3601", "timeout-28801", "timeout-within-the-waits"])
def test_blue_green_update_outside_the_documented_limits_is_refused(stage: OfflineStage, policy: dict,
                                                                     refusal: str) -> None:
    """TrafficRoutingConfig, CapacitySize and BlueGreenUpdatePolicy (SageMaker API Reference)."""
    role = _role(stage, "SageMakerRole")
    endpoint, _ = _endpoint(stage, role, instances=4)
    sagemaker = boto3.client("sagemaker")
    with pytest.raises(ClientError, match=re.escape(refusal)):
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=_new_config(stage, role, "ml.m5.large", 4),
                                  DeploymentConfig={"BlueGreenUpdatePolicy": policy})
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"


def test_blue_green_update_within_the_limits_shifts_in_the_documented_steps(stage: OfflineStage) -> None:
    """A linear update of 4 instances in steps of 25%: four steps, each baking the wait interval
    but the last, which bakes the termination wait ("Use linear traffic shifting")."""
    role = _role(stage, "SageMakerRole")
    endpoint, _ = _endpoint(stage, role, instances=4)
    config = _new_config(stage, role, "ml.m5.large", 4)
    stage.hooks.traffic_steps.clear()
    boto3.client("sagemaker").update_endpoint(EndpointName=endpoint, EndpointConfigName=config, DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": rollout.routing("linear", 25, 5),
                                  "TerminationWaitInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 1200}})
    assert [(s["instances"], s["percent"], s["bake_seconds"]) for s in stage.hooks.traffic_steps] == [
        (1, 25, 300), (2, 50, 300), (3, 75, 300), (4, 100, 120)]
    assert boto3.client("sagemaker").describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == config


# --- model-monitor-schedule ----------------------------------------------------------------------
def _quality_definition(name: str, runtime: int) -> None:
    boto3.client("sagemaker").create_model_quality_job_definition(
        JobDefinitionName=name, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r",
        ModelQualityAppSpecification={"ImageUri": IMAGE, "ProblemType": "BinaryClassification"},
        ModelQualityJobInput={"EndpointInput": {"EndpointName": "e", "LocalPath": "/opt/ml/processing/input"},
                              "GroundTruthS3Input": {"S3Uri": "s3://b/gt/"}},
        ModelQualityJobOutputConfig={"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://b/out/", "LocalPath": "/opt/ml/o"}}]},
        JobResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        StoppingCondition={"MaxRuntimeInSeconds": runtime})


def _schedule(name: str, definition: str, expression: str) -> None:
    boto3.client("sagemaker").create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": expression}, "MonitoringJobDefinitionName": definition,
        "MonitoringType": "ModelQuality"})


@pytest.mark.parametrize("expression", ["cron(0 */6 ? * * *)", "cron(0 */12 ? * * *)", "rate(1 hour)", "cron(30 * ? * * *)",
                                        "cron(0 0/25 ? * * *)"])
def test_model_monitor_refuses_expressions_it_does_not_document(stage: OfflineStage, expression: str) -> None:
    definition = f"mq-{next(_COUNTER)}"
    _quality_definition(definition, 1800)
    with pytest.raises(ClientError, match="Invalid ScheduleExpression"):
        _schedule(f"s-{next(_COUNTER)}", definition, expression)


def test_model_monitor_accepts_every_schedule_the_config_offers(stage: OfflineStage) -> None:
    for kind, expression in MODEL_MONITOR_SCHEDULES.items():
        name = f"mq-{next(_COUNTER)}"
        _quality_definition(name, 1800)
        _schedule(f"s-{kind}", name, expression)


def test_hourly_model_quality_allows_at_most_1800_seconds(stage: OfflineStage) -> None:
    _quality_definition("mq-long", 3600)
    with pytest.raises(ClientError, match="exceeds 1800"):
        _schedule("s-long", "mq-long", MODEL_MONITOR_SCHEDULES["hourly"])
    _schedule("s-long-daily", "mq-long", MODEL_MONITOR_SCHEDULES["daily"])


# --- dead-letter-delivery -------------------------------------------------------------------------
def test_eventbridge_may_use_the_queue_key_only_for_this_stages_rules(stage: OfflineStage) -> None:
    queue = next(arn for arn in stage.hooks.keys if ":sqs:" in arn and "TriggerDeadLetters" in arn)
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/mlops-demo-dev-pipeline-MonitoringRetrainOnAlarm314BC075"
    assert service_rules.dead_letter("service:events.amazonaws.com", queue, {"n": 1},
                                     {"aws:SourceArn": rule, "aws:SourceAccount": ACCOUNT})
    other = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/another-project-rule"
    assert not service_rules.dead_letter("service:events.amazonaws.com", queue, {"n": 2},
                                         {"aws:SourceArn": other, "aws:SourceAccount": ACCOUNT})
    assert {call.action for call in stage.hooks.denied} >= {"sqs:SendMessage"}


def test_a_schedule_role_without_the_queue_key_loses_its_dead_letters(stage: OfflineStage) -> None:
    queue = next(arn for arn in stage.hooks.keys if ":sqs:" in arn and "TriggerDeadLetters" in arn)
    schedule_role = _role(stage, "MonitoringScheduleRole")
    assert service_rules.dead_letter(schedule_role, queue, {"n": 3}, {})
    keyless = _without(stage, schedule_role, "schedule-without-key", lambda action, _: action.startswith("kms:"))
    assert not service_rules.dead_letter(keyless, queue, {"n": 4}, {})
    assert [call.action for call in stage.hooks.denied] == ["kms:GenerateDataKey", "kms:Decrypt"]


# --- tagging-on-create ------------------------------------------------------------------------------
@pytest.mark.parametrize(("prefix", "operation", "tags", "tagging"), [
    ("sagemaker", "CreateModel", [{"Key": "stage", "Value": "dev"}], "sagemaker:AddTags"),
    ("application-autoscaling", "RegisterScalableTarget", {"stage": "dev"}, "application-autoscaling:TagResource"),
    ("cloudwatch", "PutMetricAlarm", [{"Key": "stage", "Value": "dev"}], "cloudwatch:TagResource"),
])
def test_creating_with_tags_needs_the_tagging_action(stage: OfflineStage, prefix: str, operation: str, tags,
                                                     tagging: str) -> None:
    from tools.offline.iam import authorizations

    machine = stage.role_of[next(p for p in stage.role_of if p.startswith("states:") and p.endswith("-training"))]
    tagged = authorizations("x", prefix, operation, {"Tags": tags}, {})
    assert [call.action for call in tagged][1:] == [tagging]
    assert authorizations("x", prefix, operation, {}, {})[1:] == []  # untagged: the create action alone
    assert service_rules.check(machine, [(call.action, call.resource, call.context) for call in tagged]) == []
    untagging = _without(stage, machine, f"training-without-{tagging}", lambda action, _: action == tagging)
    refused = service_rules.check(untagging, [(call.action, call.resource, call.context) for call in tagged])
    assert [call.action for call in refused] == [tagging]


# --- async-invocation-destination -----------------------------------------------------------------
def test_a_failed_asynchronous_invocation_reaches_the_destination_only_with_its_role_allowed(stage: OfflineStage) -> None:
    queue = next(arn for arn in stage.hooks.keys if ":sqs:" in arn and "FailedInvocations" in arn)
    retrain_role = stage.role_of[stage.functions["retrain"]]
    assert service_rules.async_failure(retrain_role, queue, {"requestPayload": {"n": 1}})
    keyless = _without(stage, retrain_role, "retrain-without-key", lambda action, _: action.startswith("kms:"))
    assert not service_rules.async_failure(keyless, queue, {"requestPayload": {"n": 2}})
    unsendable = _without(stage, retrain_role, "retrain-without-send", lambda action, _: action == "sqs:SendMessage")
    assert not service_rules.async_failure(unsendable, queue, {"requestPayload": {"n": 3}})
    assert [call.action for call in stage.hooks.denied] == ["kms:GenerateDataKey", "kms:Decrypt", "sqs:SendMessage"]


def test_every_rule_has_a_source_and_a_test() -> None:
    tests = Path(__file__).read_text()
    for rule in service_rules.RULES:
        assert "https://docs.aws.amazon.com/" in rule.source, rule.id
        assert f"# --- {rule.id}" in tests or f"and {rule.id} ---" in tests, f"no tests for {rule.id}"
