"""What AWS services check or do on our behalf, asserted on the synthesized templates: the
grants and formats a first real deployment needs (each test names the AWS page it follows).
The offline scenarios and tests/test_service_rules.py exercise the same rules at run time."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from mlops.config import MODEL_MONITOR_SCHEDULES
from tests.conftest import resources_of_type
from tests.test_offline_scenarios import DEPLOYMENT_INSTANCE_TYPE_STATES
from tools.lint import state_machine_definitions

STAGES = ("dev", "prod")


@pytest.fixture(scope="module")
def templates(stacks) -> dict[str, Template]:
    return {key: Template.from_json(stack.template) for key, stack in stacks.items()
            if key.split("/")[0] in STAGES and key.split("/")[1] in ("Data", "Pipeline")}


def _statement(template: Template, **statement) -> None:  # noqa: ANN003
    """Some policy of the template holds this statement (inline, or in the managed policy CDK
    splits an oversized role policy into)."""
    matcher = {"PolicyDocument": {"Statement": Match.array_with([Match.object_like(statement)])}}
    found = {**template.find_resources("AWS::IAM::Policy", {"Properties": matcher}),
             **template.find_resources("AWS::IAM::ManagedPolicy", {"Properties": matcher})}
    assert found, f"no policy has a statement like {statement}"


def _statements(template: Template, sid: str) -> list[dict]:
    return [statement for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
            for policy in resources_of_type(template.to_json(), kind).values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"] if statement.get("Sid") == sid]


def _import(name: str) -> dict:
    return {"Fn::ImportValue": name}


@pytest.mark.parametrize("stage", STAGES)
def test_the_training_role_may_do_what_application_auto_scaling_validates(templates, stage: str) -> None:
    """Application Auto Scaling: "Permissions validation for API calls on target resources" and
    the service-linked role's policy AWSApplicationAutoscalingSageMakerEndpointPolicy."""
    template = templates[f"{stage}/Pipeline"]
    prefix = f"mlops-demo-{stage}"
    _statement(template, Sid="AutoscalingTargetChecks", Effect="Allow", Action=[
        "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:UpdateEndpointWeightsAndCapacities"],
        Resource=Match.array_with([Match.object_like({"Fn::Join": Match.array_with([Match.array_with([
            f":endpoint/{prefix}-endpoint"])])})]))
    alarms = json.dumps(_statements(template, "AutoscalingTargetTrackingAlarms"))
    assert f"alarm:TargetTracking-endpoint/{prefix}-endpoint/variant/AllTraffic-*" in alarms
    assert f"alarm:TargetTracking-endpoint/{prefix}-async/variant/AllTraffic-*" in alarms
    assert all(a in alarms for a in ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"))
    _statement(template, Sid="AutoscalingServiceLinkedRole", Action="iam:CreateServiceLinkedRole", Condition={
        "StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}})


@pytest.mark.parametrize("stage", STAGES)
def test_the_execution_role_may_write_what_sagemaker_writes_as_it(templates, stage: str) -> None:
    """SageMaker writes async results and captured data as the model's execution role, and
    reads the rollback alarms as it ("Asynchronous inference", "Data capture", "Auto-Rollback
    Configuration and Monitoring")."""
    template = templates[f"{stage}/Pipeline"]
    objects = lambda zone, prefix: {"Fn::Join": ["", [  # noqa: E731
        "arn:", {"Ref": "AWS::Partition"}, ":s3:::", _import(f"mlops-demo-{stage}-{zone}-bucket"), f"/{prefix}*"]]}
    policies = [p["Properties"] for p in resources_of_type(template.to_json(), "AWS::IAM::Policy").values()
                if any("SageMakerRole" in r["Ref"] for r in p["Properties"]["Roles"])]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    writes = [r for s in statements if "s3:PutObject" in s["Action"]
              for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert objects("artifacts", "async-output/") in writes
    assert objects("monitoring", "data-capture/") in writes
    reads = [r for s in statements if "s3:GetObject" in s["Action"]
             for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert objects("artifacts", "async-input/") in reads
    (alarms,) = [s["Resource"] for s in statements if s["Action"] == "cloudwatch:DescribeAlarms"]
    assert len(alarms) == 2 and all("Fn::GetAtt" in a for a in alarms)  # the two rollback alarms


@pytest.mark.parametrize("stage", STAGES)
def test_eventbridge_may_use_the_data_key_for_this_stages_dead_letter_queues(templates, stage: str) -> None:
    """SQS key management ("AWS service producers to encrypted queues") and EventBridge "Using
    dead-letter queues": the key policy names events.amazonaws.com, for this account's rules of
    this stage."""
    templates[f"{stage}/Data"].has_resource_properties("AWS::KMS::Key", {"KeyPolicy": {"Statement": Match.array_with([
        Match.object_like({"Sid": "AllowEventBridgeDeadLetterQueues", "Principal": {"Service": "events.amazonaws.com"},
                           "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                           "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                         "ArnLike": {"aws:SourceArn": {"Fn::Join": ["", Match.array_with([
                                             f":rule/mlops-demo-{stage}-*"])]}}}})])}})


@pytest.mark.parametrize("stage", STAGES)
def test_every_schedule_role_may_use_the_dead_letter_queue_key(stacks, stage: str) -> None:
    """EventBridge Scheduler sends dead-letter events as the schedule's role ("Configuring a
    schedule's dead-letter queue"); the queue is KMS-encrypted with the data key."""
    template = stacks[f"{stage}/Pipeline"].template
    policies = resources_of_type(template, "AWS::IAM::Policy").values()
    for schedule in resources_of_type(template, "AWS::Scheduler::Schedule").values():
        role = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
        statements = [s for p in policies if {"Ref": role} in p["Properties"]["Roles"]
                      for s in p["Properties"]["PolicyDocument"]["Statement"]]
        granted = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        assert {"sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"} <= granted, role
        key = [s["Resource"] for s in statements if "kms:GenerateDataKey" in s["Action"]]
        assert key == [_import(f"mlops-demo-{stage}-data-key-arn")], key


def test_model_monitor_schedules_use_the_forms_it_documents(stacks) -> None:
    """"The cron expression for monitoring schedule": cron(0 H/N ? * * *), not EventBridge's */N."""
    assert MODEL_MONITOR_SCHEDULES == {"hourly": "cron(0 * ? * * *)", "every-6-hours": "cron(0 0/6 ? * * *)",
                                       "every-12-hours": "cron(0 0/12 ? * * *)", "daily": "cron(0 0 ? * * *)"}
    payload = json.dumps(stacks["mm/Pipeline"].template)
    assert "*/6" not in payload and "*/12" not in payload


@pytest.mark.parametrize("stage", STAGES)
def test_glue_5_job_passes_no_continuous_logging_flag(templates, stage: str) -> None:
    """Glue 5.0 logs every job in real time; --enable-continuous-cloudwatch-log is for 4.0 and earlier."""
    template = templates[f"{stage}/Pipeline"]
    template.has_resource_properties("AWS::Glue::Job", {"GlueVersion": "5.0", "DefaultArguments": Match.object_like({
        "--enable-metrics": "true"})})
    (job,) = resources_of_type(template.to_json(), "AWS::Glue::Job").values()
    assert "--enable-continuous-cloudwatch-log" not in job["Properties"]["DefaultArguments"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_deployment_instance_type_appears_only_where_the_offline_scenario_changes_it(stacks, stage: str) -> None:
    """The instance-type scenario edits these states to emulate a change of
    ``deployment.instance_type``; this keeps that emulation equal to a real config change."""
    template = stacks[f"{stage}/Pipeline"].template
    (definition,) = [d for d in state_machine_definitions(template).values() if "Create endpoint config" in d["States"]]
    # the evaluation's job and its test-split predictions run on pipeline.evaluation_instance_type
    using = sorted(name for name, state in definition["States"].items()
                   if '"ml.m5.large"' in json.dumps(state) and "ProcessingResources" not in json.dumps(state)
                   and name != "Predict test split")
    assert using == sorted(DEPLOYMENT_INSTANCE_TYPE_STATES)


@pytest.mark.parametrize("stage", STAGES)
def test_an_instance_type_change_deregisters_autoscaling_first(stacks, stage: str) -> None:
    """"Update endpoints that use auto scaling": deregister, update, register again."""
    template = stacks[f"{stage}/Pipeline"].template
    (definition,) = [d for d in state_machine_definitions(template).values() if "Create endpoint config" in d["States"]]
    states = definition["States"]
    assert states["Check endpoint"]["Next"] == "Deregister autoscaling first?"
    (choice,) = states["Deregister autoscaling first?"]["Choices"]
    assert choice == {"Variable": "$.endpoint.deregister_scaling", "BooleanEquals": True, "Next": "Deregister scalable target"}
    deregister = states["Deregister scalable target"]
    assert deregister["Resource"].endswith(":states:::aws-sdk:applicationautoscaling:deregisterScalableTarget")
    assert deregister["Next"] == "Endpoint exists?"
    # a rollback is recorded on the version, and autoscaling is registered again for the serving fleet
    assert states["Update rolled back"]["Next"] == "Record rolled back"
    assert states["Record rolled back"]["Next"] == "Autoscale?"
