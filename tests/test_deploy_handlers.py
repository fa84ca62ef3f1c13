"""check_endpoint and approval handlers against moto, malformed events included."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.conftest import FakeLambdaContext, load_lambda

check = load_lambda("check_endpoint")
approval = load_lambda("approval")
REGION = "eu-west-1"



@pytest.fixture
def aws(aws_credentials):
    with mock_aws():
        for module in (check, approval):
            for name in ("_sagemaker", "_client", "_autoscaling"):
                if hasattr(module, name):
                    getattr(module, name).cache_clear()
        yield


def _endpoint(status: str = "InService") -> None:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": "img"},
                           ExecutionRoleArn="arn:aws:iam::123456789012:role/r")
    sagemaker.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="c1")
    if status != "InService":
        from moto.sagemaker.models import sagemaker_backends

        sagemaker_backends["123456789012"][REGION].endpoints["ep"].endpoint_status = status


def test_missing_endpoint_means_create(aws) -> None:
    assert check.handler({"endpoint_name": "ep", "instance_types": ["ml.m5.large"]}, FakeLambdaContext()) == {
        "exists": False, "status": None, "endpoint_config_name": None, "deregister_scaling": False}


def test_serving_endpoint_means_update(aws) -> None:
    _endpoint()
    assert check.handler({"endpoint_name": "ep", "instance_types": ["ml.m5.large"]}, FakeLambdaContext()) == {
        "exists": True, "status": "InService", "endpoint_config_name": "c1", "deregister_scaling": False}


def _register(resource_id: str = "endpoint/ep/variant/AllTraffic") -> None:
    boto3.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=resource_id, ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1, MaxCapacity=2)


@pytest.mark.parametrize(("registered", "new_types", "deregister"), [
    (True, ["ml.c5.xlarge"], True),     # SageMaker refuses this update until the variant is deregistered
    (True, ["ml.m5.large"], False),     # same instance type: autoscaling stays registered through the update
    (False, ["ml.c5.xlarge"], False),   # nothing registered: nothing to deregister
    (True, [], False),                  # serverless: no instance type
])
def test_instance_type_change_of_a_scaled_variant_asks_to_deregister(aws, registered: bool, new_types: list[str],
                                                                      deregister: bool) -> None:
    _endpoint()
    if registered:
        _register()
    result = check.handler({"endpoint_name": "ep", "instance_types": new_types}, FakeLambdaContext())
    assert result["deregister_scaling"] is deregister


@pytest.mark.parametrize("status", ["Creating", "Updating", "RollingBack"])
def test_busy_endpoint_raises_for_retry(aws, status: str) -> None:
    _endpoint(status)
    with pytest.raises(check.EndpointBusy, match=status):
        check.handler({"endpoint_name": "ep"}, FakeLambdaContext())


@pytest.mark.parametrize("event", [{}, {"endpoint_name": "bad_name!"}, {"endpoint_name": "ep", "extra": 1},
                                   {"endpoint_name": "ep", "instance_types": ["m5.large"]}])
def test_check_endpoint_rejects_malformed_events(aws, event: dict) -> None:
    with pytest.raises(ValueError, match="malformed check-endpoint event"):
        check.handler(event, FakeLambdaContext())


# --- approval ---------------------------------------------------------------------
@pytest.fixture
def registry(aws, monkeypatch):
    monkeypatch.setenv("TOKEN_BUCKET", "artifacts")
    boto3.client("s3").create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    arn = sagemaker.create_model_package(ModelPackageGroupName="g", ModelApprovalStatus="PendingManualApproval",
                                         InferenceSpecification={"Containers": [{"Image": "img"}],
                                                                 "SupportedContentTypes": ["text/csv"],
                                                                 "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
    calls = []
    sfn = approval._client("stepfunctions")
    monkeypatch.setattr(sfn, "send_task_success", lambda **kw: calls.append(("success", kw)))
    monkeypatch.setattr(sfn, "send_task_failure", lambda **kw: calls.append(("failure", kw)))
    return arn, calls


def _state_change(arn: str, status: str) -> dict:
    return {"detail-type": "SageMaker Model Package State Change", "source": "aws.sagemaker",
            "detail": {"ModelPackageArn": arn, "ModelApprovalStatus": status, "ModelPackageGroupName": "g"}}


def test_waiting_run_resumes_on_approval(registry) -> None:
    arn, calls = registry
    assert approval.handler({"task_token": "tok", "model_package_arn": arn}, FakeLambdaContext()) == {"outcome": "waiting"}
    assert calls == []
    assert approval.handler(_state_change(arn, "Approved"), FakeLambdaContext()) == {"outcome": "resumed"}
    assert calls[0][0] == "success" and calls[0][1]["taskToken"] == "tok"
    assert json.loads(calls[0][1]["output"])["status"] == "Approved"
    # the token is consumed: a second event finds no waiting run
    assert approval.handler(_state_change(arn, "Approved"), FakeLambdaContext()) == {"outcome": "no waiting run"}


def test_rejection_ends_the_run_with_model_rejected(registry) -> None:
    arn, calls = registry
    approval.handler({"task_token": "tok", "model_package_arn": arn}, FakeLambdaContext())
    assert approval.handler(_state_change(arn, "Rejected"), FakeLambdaContext()) == {"outcome": "ended"}
    assert calls[0][0] == "failure" and calls[0][1]["error"] == "ModelRejected"


def test_decision_made_before_the_run_waits_is_answered_at_once(registry) -> None:
    arn, calls = registry
    boto3.client("sagemaker").update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    assert approval.handler({"task_token": "tok", "model_package_arn": arn}, FakeLambdaContext()) == {"outcome": "resumed"}


def test_pending_status_change_is_ignored(registry) -> None:
    arn, calls = registry
    assert approval.handler(_state_change(arn, "PendingManualApproval"), FakeLambdaContext()) == {"outcome": "ignored"}


@pytest.mark.parametrize("event", [{}, {"task_token": "", "model_package_arn": "arn:aws:sagemaker:x"},
                                   {"detail-type": "SageMaker Model Package State Change", "detail": {}}])
def test_approval_rejects_malformed_events(registry, event: dict) -> None:
    with pytest.raises(ValueError, match="malformed approval event"):
        approval.handler(event, FakeLambdaContext())
