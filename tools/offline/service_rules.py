"""Service rules: what AWS services check, or do as someone else, beyond a request's shape and
its caller's own policy.

botocore validates every request offline and the IAM coverage check holds every call to its
caller's synthesized policy. Neither sees what a service does on our behalf, or the rules a
service applies beyond the request's shape. These rules do; each cites the AWS documentation
page it comes from, and ``tests/test_service_rules.py`` has a test per rule that fails when the
rule is taken out. ``RULES`` lists them (docs/offline-runs.md prints the same list).

The checks use the stage's own synthesized policies (``Hooks.policies``), resolved to the
ARNs of the offline stand-ins, so a grant that is too narrow fails here as it would in AWS.

Endpoints serve what their variants' models are: ``load_variants`` loads each model once
(``jobs.load_predictor``: the built-in XGBoost's booster, or a script-mode model served by the
scikit-learn container's handlers, whose code ``SAGEMAKER_SUBMIT_DIRECTORY`` the execution role
downloads too), and ``invoke``/``invoke_async`` answer as that container would.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from tools.offline.iam import Call
from tools.offline.script_mode import HandlerError

if TYPE_CHECKING:
    from tools.offline.adapter import Hooks
    from tools.offline.jobs import Predictor

ACCOUNT, REGION = "123456789012", "eu-west-1"


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    source: str  # "<page title>, <guide>: <URL>"


RULES = (
    Rule("autoscaling-caller-permissions",
         "Application Auto Scaling refuses RegisterScalableTarget / PutScalingPolicy unless the caller itself may "
         "describe the endpoint and its config and update its capacities, and (target tracking) create, describe and "
         "delete the policy's alarms; the first registration in an account also creates the service-linked role, "
         "which needs iam:CreateServiceLinkedRole for that service name.",
         "Permissions validation for Application Auto Scaling API calls on target resources, Application Auto Scaling "
         "User Guide: https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_permission_validation.html; "
         "Application Auto Scaling identity-based policy examples: "
         "https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html"),
    Rule("hosting-as-execution-role",
         "SageMaker pulls the model's image and reads its artifact when it creates or updates an endpoint, writes "
         "captured requests and responses, reads async requests and writes their results and notifications, all as the "
         "model's execution role; S3 objects under a KMS key need the key too.",
         "CreateModel (ExecutionRoleArn), SageMaker API Reference: "
         "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html; Capture data from real-time "
         "endpoint: https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html; "
         "Asynchronous inference: https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-create-endpoint-prerequisites.html"),
    Rule("sse-kms-callers",
         "Writing an object to an SSE-KMS bucket needs kms:GenerateDataKey on its key and reading it kms:Decrypt; "
         "publishing to a KMS-encrypted SNS topic needs both.",
         "Using server-side encryption with AWS KMS keys (SSE-KMS), S3 User Guide: "
         "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html; Key management, SNS "
         "Developer Guide: https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"),
    Rule("blue-green-alarm-access",
         "A blue/green update with auto-rollback reads its alarms as the execution role: without cloudwatch:DescribeAlarms "
         "on them the update is refused (the docs require the permission; the failure mode is our emulation).",
         "Auto-Rollback Configuration and Monitoring, SageMaker Developer Guide: "
         "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html"),
    Rule("blue-green-limits",
         "A blue/green UpdateEndpoint is refused when its traffic routing breaks the documented limits: a canary above "
         "50% of the variant's instances, a linear step outside 10-50%, a wait or termination wait above 3600 s, a "
         "MaximumExecutionTimeoutInSeconds outside 600-28800 or not larger than the total waits (refusing a step of "
         "less than one whole instance is our reading; the docs do not say how a percentage rounds).",
         "TrafficRoutingConfig, SageMaker API Reference: "
         "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html; CapacitySize: "
         "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CapacitySize.html; BlueGreenUpdatePolicy: "
         "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html"),
    Rule("autoscaled-instance-type-update",
         "UpdateEndpoint is refused when it would change the instance type of a variant that is a registered scalable "
         "target; deregister first, register again after.",
         "Update endpoints that use auto scaling, SageMaker Developer Guide: "
         "https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html"),
    Rule("model-monitor-schedule",
         "Model Monitor accepts only cron(0 * ? * * *), cron(0 H ? * * *), cron(0 H/N ? * * *) (H 0-23, N 1-24) and NOW; "
         "an hourly model-quality schedule allows MaxRuntimeInSeconds of at most 1800.",
         "The cron expression for monitoring schedule: https://docs.aws.amazon.com/sagemaker/latest/dg/"
         "model-monitor-schedule-expression.html; Schedule model quality monitoring jobs: "
         "https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-schedule.html"),
    Rule("dead-letter-delivery",
         "An event EventBridge cannot deliver goes to the target's dead-letter queue only if the queue's policy lets "
         "events.amazonaws.com send for that rule and, for a KMS-encrypted queue, the key policy lets it use the key; "
         "EventBridge Scheduler sends as the schedule's role, which needs sqs:SendMessage and the key. Otherwise the "
         "event is lost.",
         "Using dead-letter queues to process undelivered events, EventBridge User Guide: "
         "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html; Amazon SQS key management: "
         "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html; "
         "Configuring a schedule's dead-letter queue, EventBridge Scheduler User Guide: "
         "https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html"),
    Rule("tagging-on-create",
         "A create request that carries tags also needs the tagging action on what it creates: sagemaker:AddTags for "
         "SageMaker jobs, models, endpoint configs, endpoints, model packages, experiments, trials, monitoring "
         "definitions and schedules; application-autoscaling:TagResource for a scalable target; cloudwatch:TagResource "
         "for an alarm. Without it the request is refused.",
         "Provide permissions for tagging SageMaker AI resources, SageMaker Developer Guide: "
         "https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html; Tagging support "
         "for Application Auto Scaling: https://docs.aws.amazon.com/autoscaling/application/userguide/"
         "resource-tagging-support.html; PutMetricAlarm, CloudWatch API Reference: "
         "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html"),
    Rule("async-invocation-destination",
         "Lambda retries an asynchronous invocation that fails (twice by default, within six hours), then sends a "
         "record of it (the request, the error) to the function's on-failure destination as the function's execution "
         "role, which needs sqs:SendMessage and, for a KMS-encrypted queue, the key. Without a destination, or without "
         "those permissions, the event is discarded.",
         "Configuring error handling settings for Lambda asynchronous invocations: "
         "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html; Capturing records of Lambda "
         "asynchronous invocations: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html"),
)


class ServiceRefused(Exception):
    """A rule refused a request; carries the AWS-style error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _hooks() -> Hooks:
    from tools.offline import adapter

    return adapter.HOOKS


def check(principal: str, needed: list[tuple[str, str | None, dict[str, Any]]]) -> list[Call]:
    """Record what ``principal`` needed and return the calls its policies refuse."""
    hooks = _hooks()
    calls = [Call(principal, action, resource, context) for action, resource, context in needed]
    hooks.calls.extend(calls)
    refused = [call for call in calls if not hooks.allows(call)]
    hooks.denied.extend(refused)
    return refused


def _describe(refused: list[Call]) -> str:
    return "; ".join(f"{c.action} on {c.resource or '*'}" for c in refused)


def _sagemaker_arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


# --- autoscaling-caller-permissions -------------------------------------------------------
SERVICE_LINKED_ROLE = ("arn:aws:iam::123456789012:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                       "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
SERVICE_LINKED_ROLES: set[str] = set()  # created in the emulated account so far


def autoscaling_caller(principal: str, resource_id: str, *, alarms: bool, registering: bool) -> None:
    """What Application Auto Scaling validates for a SageMaker variant before it registers the
    target or puts a policy (``alarms``: a target-tracking policy, whose alarms it creates)."""
    from moto.sagemaker.models import sagemaker_backends

    match = re.fullmatch(r"endpoint/([^/]+)/variant/([^/]+)", resource_id)
    if not match:
        return
    endpoint_name = match.group(1)
    endpoint = sagemaker_backends[ACCOUNT][REGION].endpoints.get(endpoint_name)
    config = endpoint.endpoint_config_name if endpoint else "unknown"
    needed: list[tuple[str, str | None, dict[str, Any]]] = [
        ("sagemaker:DescribeEndpoint", _sagemaker_arn("endpoint", endpoint_name), {}),
        ("sagemaker:DescribeEndpointConfig", _sagemaker_arn("endpoint-config", config), {}),
        ("sagemaker:UpdateEndpointWeightsAndCapacities", _sagemaker_arn("endpoint", endpoint_name), {}),
    ]
    if alarms:  # the names Application Auto Scaling gives a target-tracking policy's alarms
        for kind in ("AlarmHigh", "AlarmLow"):
            alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:TargetTracking-{resource_id}-{kind}-{uuid.uuid4()}"
            needed += [(action, alarm, {}) for action in
                       ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms")]
    first = registering and SERVICE_LINKED_ROLE not in SERVICE_LINKED_ROLES
    if first:
        needed.append(("iam:CreateServiceLinkedRole", SERVICE_LINKED_ROLE,
                       {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}))
    refused = check(principal, needed)
    if refused:
        raise ServiceRefused("ValidationException", f"Failed to validate the caller's permissions on {resource_id}: "
                                                    f"{principal} is not authorized to perform {_describe(refused)}")
    if first:
        SERVICE_LINKED_ROLES.add(SERVICE_LINKED_ROLE)


# --- hosting-as-execution-role ------------------------------------------------------------
@dataclass
class LoadedModel:
    role: str
    predictor: Predictor  # the model as its serving container holds it


MODELS: dict[tuple[str, str], LoadedModel] = {}  # (endpoint config, variant) -> the model as loaded


def _image_repository(image: str) -> str:
    registry, _, path = image.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3]
    return f"arn:aws:ecr:{region}:{account}:repository/{path.split(':')[0].split('@')[0]}"


def _variant_containers(backend: Any, model: Any) -> list[dict[str, Any]]:
    """The model's containers (``Image``, ``ModelDataUrl``, ``Environment``), in serving order,
    through its model package's inference containers when it names one."""
    from tools.offline import jobs

    return jobs.model_containers(
        {"Containers": model.containers, "PrimaryContainer": model.primary_container},
        lambda name: {"InferenceSpecification": backend.describe_model_package(name).inference_specification})


def load_variants(config: dict[str, Any]) -> None:
    """An endpoint (config) goes live: for each variant, SageMaker pulls the model's images and
    downloads its artifacts as the model's execution role (every container of an inference
    pipeline, served in order); the container of a script-mode model
    (``SAGEMAKER_PROGRAM`` in its Environment) also downloads its ``SAGEMAKER_SUBMIT_DIRECTORY``
    with the role's credentials, then loads the model. Raises ServiceRefused when the role may
    not, or the model cannot be loaded, as the endpoint then fails."""
    from moto.sagemaker.models import sagemaker_backends

    from tools.offline import adapter, jobs

    backend = sagemaker_backends[ACCOUNT][REGION]
    for variant in config["ProductionVariants"]:
        key = (config["EndpointConfigName"], variant["VariantName"])
        if key in MODELS:
            continue
        model = backend.describe_model(variant["ModelName"])
        containers = _variant_containers(backend, model)
        role = _role_name(model.execution_role_arn)
        for image in [container["Image"] for container in containers]:  # every container's image is pulled
            repository = _image_repository(image)
            refused = check(role, [("ecr:GetAuthorizationToken", None, {}), ("ecr:BatchGetImage", repository, {}),
                                   ("ecr:GetDownloadUrlForLayer", repository, {})])
            if refused:
                raise ServiceRefused("ClientError", f"could not pull {image} as {role}: not authorized to perform "
                                                    f"{_describe(refused)}")
        try:
            with adapter.principal(role, enforce=True):
                predictor = jobs.load_model(containers)
        except jobs.LoadFailed as error:
            raise ServiceRefused("ClientError", f"could not {error.what} as {role}: {error.detail}") from None
        MODELS[key] = LoadedModel(role=role, predictor=predictor)


def predict(config_name: str, variant: str, body: str) -> str:
    """The serving container's answer to a real-time text/csv request (``jobs.Predictor.answer``):
    the built-in XGBoost's every prediction on one line (``0.12,0.98``, or
    ``[0.1, 0.7, 0.2],[0.3, 0.3, 0.4]`` for class probabilities), a script model's answer as its
    ``output_fn`` encodes it (the default: one CSV line per row)."""
    return MODELS[(config_name, variant)].predictor.answer(body)


def _serving(endpoint_name: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    from moto.sagemaker.models import ValidationError, sagemaker_backends

    backend = sagemaker_backends[ACCOUNT][REGION]
    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None or endpoint.endpoint_status != "InService":
        raise ValidationError(message=f"Endpoint {endpoint_name} of account {ACCOUNT} not found or not InService.")
    config = backend.describe_endpoint_config(endpoint.endpoint_config_name)
    return endpoint, config, config["ProductionVariants"][0]


def invoke(endpoint_name: str, body: str, content_type: str = "text/csv") -> tuple[str, str]:
    """InvokeEndpoint: the serving model's answer; with data capture on, the request and
    response written to the capture destination as the model's execution role (lost if that
    role may not write there, as in AWS)."""
    endpoint, config, variant = _serving(endpoint_name)
    answer = predict(config["EndpointConfigName"], variant["VariantName"], body)
    capture = config.get("DataCaptureConfig") or {}
    if capture.get("EnableCapture") and capture.get("InitialSamplingPercentage", 0) > 0:
        _capture(endpoint_name, variant["VariantName"], capture, body, content_type, answer)
    return answer, variant["VariantName"]


def _capture(endpoint: str, variant: str, capture: dict[str, Any], body: str, content_type: str, answer: str) -> None:
    """One capture record in SageMaker's documented layout, under
    ``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/``. SageMaker gathers records into a file
    every few minutes; offline each invocation's record is written at once."""
    from tools.offline import adapter

    now = datetime.now(timezone.utc)
    record = {"captureData": {
        "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": body, "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": answer, "encoding": "CSV"}},
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": now.isoformat()}, "eventVersion": "0"}
    bucket, _, prefix = capture["DestinationS3Uri"].removeprefix("s3://").partition("/")
    key = f"{prefix.rstrip('/')}/{endpoint}/{variant}/{now:%Y/%m/%d/%H}/{now:%M-%S-%f}-{uuid.uuid4()}.jsonl".lstrip("/")
    role = MODELS[(_serving(endpoint)[1]["EndpointConfigName"], variant)].role
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": capture["KmsKeyId"]} if capture.get("KmsKeyId") else {}
    try:
        with adapter.principal(role, enforce=True):
            boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode(), **extra)
    except ClientError:
        pass  # the record is lost; hooks.denied says why


def invoke_async(endpoint_name: str, input_location: str, inference_id: str) -> tuple[str, str]:
    """InvokeEndpointAsync, processed at once: SageMaker reads the request from S3, runs the
    model, writes ``<S3OutputPath><inference id>.out`` (or ``<S3FailurePath>…``) and notifies the
    success or error topic, all as the model's execution role. Returns (output, failure) URIs."""
    from tools.offline import adapter

    _, config, variant = _serving(endpoint_name)
    output = config["AsyncInferenceConfig"]["OutputConfig"]
    role = MODELS[(config["EndpointConfigName"], variant["VariantName"])].role
    success = f"{output['S3OutputPath'].rstrip('/')}/{inference_id}.out"
    failure = f"{output.get('S3FailurePath', output['S3OutputPath']).rstrip('/')}/{inference_id}-error.out"
    topics = output.get("NotificationConfig", {})
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": output["KmsKeyId"]} if output.get("KmsKeyId") else {}
    s3 = boto3.client("s3")
    with adapter.principal(role, enforce=True):
        try:
            bucket, _, key = input_location.removeprefix("s3://").partition("/")
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            answer = predict(config["EndpointConfigName"], variant["VariantName"], body)
            bucket, _, key = success.removeprefix("s3://").partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=answer.encode(), **extra)
            outcome, topic, message = "success", topics.get("SuccessTopic"), {"responseParameters": {"outputLocation": success}}
        except (ClientError, ValueError, HandlerError) as error:  # the model's own errors fail the request too
            reason = error.response["Error"]["Message"] if isinstance(error, ClientError) else str(error)
            outcome, topic, message = "error", topics.get("ErrorTopic"), {"failureReason": reason}
            try:
                bucket, _, key = failure.removeprefix("s3://").partition("/")
                s3.put_object(Bucket=bucket, Key=key, Body=reason.encode(), **extra)
            except ClientError:
                pass
        if topic:
            try:
                boto3.client("sns").publish(TopicArn=topic, Message=json.dumps(
                    {"inferenceId": inference_id, "invocationStatus": outcome.capitalize(), **message,
                     "requestParameters": {"endpointName": endpoint_name, "inputLocation": input_location}}))
            except ClientError:
                pass
    return success, failure


# --- blue-green-alarm-access, blue-green-limits and autoscaled-instance-type-update ----------
def check_update(endpoint: Any, current: dict[str, Any], new: dict[str, Any], deployment: dict[str, Any] | None) -> None:
    """What SageMaker checks before it starts an UpdateEndpoint."""
    from moto.applicationautoscaling.models import applicationautoscaling_backends
    from moto.sagemaker.models import sagemaker_backends

    targets = applicationautoscaling_backends[ACCOUNT][REGION].targets.get("sagemaker:variant:DesiredInstanceCount", {})
    types = {v["VariantName"]: v.get("InstanceType") for v in new["ProductionVariants"]}
    for variant in current["ProductionVariants"]:
        resource_id = f"endpoint/{endpoint.endpoint_name}/variant/{variant['VariantName']}"
        if resource_id in targets and types.get(variant["VariantName"]) != variant.get("InstanceType"):
            raise ServiceRefused("ValidationException", (
                f"The variant {variant['VariantName']} of endpoint {endpoint.endpoint_name} is registered with Application "
                f"Auto Scaling; its instance type cannot change from {variant.get('InstanceType')} to "
                f"{types.get(variant['VariantName'])}. Deregister the scalable target first."))
    policy = (deployment or {}).get("BlueGreenUpdatePolicy")
    if policy:
        check_blue_green(policy, variant_instances(endpoint))
    alarms = [a["AlarmName"] for a in ((deployment or {}).get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
    if alarms:
        backend = sagemaker_backends[ACCOUNT][REGION]
        for variant in new["ProductionVariants"]:
            role = _role_name(backend.describe_model(variant["ModelName"]).execution_role_arn)
            refused = check(role, [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}", {})
                                   for name in alarms])
            if refused:
                raise ServiceRefused("ValidationException", f"The execution role {role} cannot read the auto-rollback "
                                                            f"alarms: not authorized to perform {_describe(refused)}")


def variant_instances(endpoint: Any) -> int:
    """The instances of the endpoint's (single) variant: what a blue/green update sizes its
    steps by (the update retains the variant's current count)."""
    variant = endpoint.production_variants[0]
    return int(variant.get("CurrentInstanceCount") or variant.get("DesiredInstanceCount") or 1)


def check_blue_green(policy: dict[str, Any], instance_count: int) -> None:
    """BlueGreenUpdatePolicy's documented limits (SageMaker API Reference: BlueGreenUpdatePolicy,
    TrafficRoutingConfig, CapacitySize), refused before the update starts."""
    from mlops import rollout

    routing = policy.get("TrafficRoutingConfiguration") or {}
    try:
        rollout.check(routing, instance_count)
    except rollout.RolloutRefused as refused:
        raise ServiceRefused("ValidationException", str(refused)) from None
    termination = int(policy.get("TerminationWaitInSeconds", 0))
    if not 0 <= termination <= rollout.MAX_WAIT_SECONDS:
        raise ServiceRefused("ValidationException", f"TerminationWaitInSeconds {termination}: allowed 0-3600")
    timeout = policy.get("MaximumExecutionTimeoutInSeconds")
    if timeout is not None:
        waits = rollout.total_wait_seconds(routing, termination, instance_count)
        if not rollout.MIN_EXECUTION_TIMEOUT_SECONDS <= timeout <= rollout.MAX_EXECUTION_TIMEOUT_SECONDS or timeout <= waits:
            raise ServiceRefused("ValidationException", f"MaximumExecutionTimeoutInSeconds {timeout}: allowed 600-28800 "
                                                        f"and larger than the total waiting time ({waits} s)")


# --- model-monitor-schedule ---------------------------------------------------------------
_MODEL_MONITOR_CRON = re.compile(r"^cron\(0 (\*|(?P<hour>[01]?\d|2[0-3])(/(?P<every>[1-9]|1\d|2[0-4]))?) \? \* \* \*\)$")


def check_monitoring_schedule(config: dict[str, Any], definition: Any) -> None:
    """CreateMonitoringSchedule / UpdateMonitoringSchedule: the expression's form, and the
    runtime an hourly model-quality schedule allows."""
    expression = config.get("ScheduleConfig", {}).get("ScheduleExpression", "")
    if expression != "NOW" and not _MODEL_MONITOR_CRON.match(expression):
        raise ServiceRefused("ValidationException", f"Invalid ScheduleExpression {expression!r}: Model Monitor accepts "
                                                    "cron(0 * ? * * *), cron(0 H ? * * *), cron(0 H/N ? * * *) or NOW")
    runtime = (getattr(definition, "stopping_condition", None) or {}).get("MaxRuntimeInSeconds", 0)
    if config.get("MonitoringType") == "ModelQuality" and expression == "cron(0 * ? * * *)" and runtime > 1800:
        raise ServiceRefused("ValidationException", f"MaxRuntimeInSeconds {runtime} exceeds 1800, the limit for an "
                                                    "hourly model-quality schedule")


# --- dead-letter-delivery -----------------------------------------------------------------
def dead_letter(sender: str, queue_arn: str, body: dict[str, Any], context: dict[str, Any]) -> bool:
    """Send an undeliverable event to a dead-letter queue as ``sender`` (``service:events.amazonaws.com``
    for EventBridge, the schedule's role for Scheduler). Returns False (the event is lost) when
    the queue's policy or the queue's key does not let the sender in."""
    hooks = _hooks()
    needed = [("sqs:SendMessage", queue_arn, context)]
    key = hooks.keys.get(queue_arn)
    if key:
        needed += [("kms:GenerateDataKey", key, context), ("kms:Decrypt", key, context)]
    if sender.startswith("service:"):  # a service principal is let in by the resources' own policies
        calls = [Call(sender, action, resource, ctx) for action, resource, ctx in needed]
        hooks.calls.extend(calls)
        refused = [call for call in calls if not hooks.allows(call)]
        hooks.denied.extend(refused)
    else:
        refused = check(sender, needed)
    if refused:
        return False
    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{queue_arn.rsplit(':', 1)[1]}"
    from tools.offline import adapter

    with adapter.principal("runner"):
        boto3.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(body))
    return True


# --- async-invocation-destination -----------------------------------------------------------
def async_failure(role: str, queue_arn: str, record: dict[str, Any]) -> bool:
    """Lambda's record of an asynchronous invocation that failed every attempt, sent to the
    function's on-failure destination as the function's execution role. Returns False (the
    event is lost) when the role may not send to the queue or use its key."""
    return dead_letter(role, queue_arn, record, {})


__all__ = ["RULES", "Rule", "ServiceRefused", "autoscaling_caller", "check_blue_green", "check_monitoring_schedule",
           "check_update", "variant_instances",
           "async_failure", "dead_letter", "invoke", "invoke_async", "load_variants", "predict"]


def rules_markdown() -> str:
    """The rules as docs/offline-runs.md lists them (a test keeps the two equal)."""
    lines = ["| Rule | What AWS does | Source |", "|---|---|---|"]
    for rule in RULES:
        sources = "; ".join(f"[{part.split(': https://')[0].strip(' ;')}](https://{part.split(': https://')[1]})"
                            if ": https://" in part else part for part in rule.source.split("; "))
        lines.append(f"| `{rule.id}` | {rule.summary} | {sources} |")
    return "\n".join(lines) + "\n"
