"""The serving endpoints' operations in one place: their names, autoscaling (target tracking
for the real-time endpoint, scale-to-zero for the async one), their metrics and alarms (the
blue/green rollback alarms here, the 4XX-rate alarm built from ``EndpointMetrics`` by
``Monitoring``), and the permissions Application Auto Scaling checks on whoever registers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import DeploymentConfig
from mlops.constructs.workflow import API_TIMEOUT, catch_all

VARIANT = "AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@dataclass(frozen=True)
class Endpoints:
    """The stage's endpoint names: one per serving mode that keeps an endpoint."""

    realtime: str
    serverless: str
    asynchronous: str

    @classmethod
    def of(cls, prefix: str) -> Endpoints:
        return cls(realtime=f"{prefix}-endpoint", serverless=f"{prefix}-serverless", asynchronous=f"{prefix}-async")

    def all(self) -> tuple[str, str, str]:
        return self.realtime, self.serverless, self.asynchronous

    def scaled(self) -> tuple[str, str]:
        """The endpoints Application Auto Scaling manages (serverless scales itself)."""
        return self.realtime, self.asynchronous


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


class EndpointMetrics:
    """The real-time endpoint's CloudWatch metrics (``AWS/SageMaker``, per variant)."""

    def __init__(self, endpoint: str, period: cdk.Duration = cdk.Duration.minutes(5)) -> None:
        self.endpoint = endpoint
        self.dimensions = {"EndpointName": endpoint, "VariantName": VARIANT}
        self.invocations = self.metric("Invocations", period=period)
        self.errors_4xx = self.metric("Invocation4XXErrors", period=period)

    def metric(self, name: str, statistic: str = "Sum", period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=name, dimensions_map=self.dimensions,
                                 statistic=statistic, period=period)

    def rejection_rate(self) -> cloudwatch.MathExpression:
        """Share of requests rejected with 4XX, in percent (0 without traffic)."""
        return cloudwatch.MathExpression(expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                                         using_metrics={"invocations": self.invocations, "errors": self.errors_4xx},
                                         period=cdk.Duration.minutes(5), label="4XX rate (%)")


def rollback_alarms(scope: Construct, *, prefix: str, endpoint: str) -> list[cloudwatch.Alarm]:
    """The alarms a blue/green update of the real-time endpoint rolls back on (SageMaker allows
    1-10): 5XX errors and p99 model latency, per minute."""
    metrics = EndpointMetrics(endpoint)
    common = dict(comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                  treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
    return [
        cloudwatch.Alarm(
            scope, "Endpoint5xxAlarm", alarm_name=f"{prefix}-endpoint-5xx",
            alarm_description="Endpoint returns 5XX errors: blue/green updates roll back",
            metric=metrics.metric("Invocation5XXErrors", period=cdk.Duration.minutes(1)),
            threshold=1, evaluation_periods=2, datapoints_to_alarm=2, **common),
        cloudwatch.Alarm(
            scope, "EndpointLatencyAlarm", alarm_name=f"{prefix}-endpoint-latency-p99",
            alarm_description="Endpoint p99 model latency above 1 s: blue/green updates roll back",
            metric=metrics.metric("ModelLatency", "p99", period=cdk.Duration.minutes(1)),
            threshold=1_000_000, evaluation_periods=3, datapoints_to_alarm=3,  # microseconds
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
    ]


def _target_arn(scope: Construct) -> str:
    return cdk.Stack.of(scope).format_arn(service="application-autoscaling", resource="scalable-target", resource_name="*")


def _scaling_call(scope: Construct, name: str, action: str, parameters: dict, **kwargs) -> tasks.CallAwsService:  # noqa: ANN003
    """An Application Auto Scaling call; one that tags what it registers also needs
    application-autoscaling:TagResource ("Tagging support for Application Auto Scaling")."""
    tagging = [iam.PolicyStatement(actions=["application-autoscaling:TagResource"], resources=[_target_arn(scope)])]
    return tasks.CallAwsService(
        scope, name, task_timeout=API_TIMEOUT, service="applicationautoscaling", action=action, parameters=parameters,
        iam_resources=[_target_arn(scope)],
        iam_action=f"application-autoscaling:{action[0].upper()}{action[1:]}",
        additional_iam_statements=tagging if "Tags" in parameters else None, **kwargs)


def target_tracking(scope: Construct, *, endpoint: str, deployment: DeploymentConfig, tags: Mapping[str, str],
                    on_failure: sfn.IChainable) -> sfn.Chain:
    """Real-time endpoint: between the configured instance counts, tracking invocations per instance."""
    variant = resource_id(endpoint)
    register = _scaling_call(scope, "Register scalable target", "registerScalableTarget", {
        "ServiceNamespace": "sagemaker", "ResourceId": variant, "ScalableDimension": DIMENSION,
        "MinCapacity": deployment.initial_instance_count, "MaxCapacity": deployment.max_instance_count,
        "Tags": dict(tags),  # Application Auto Scaling takes a map
    }, result_path=sfn.JsonPath.DISCARD)
    policy = _scaling_call(scope, "Put scaling policy", "putScalingPolicy", {
        "PolicyName": f"{endpoint}-invocations",
        "ServiceNamespace": "sagemaker", "ResourceId": variant, "ScalableDimension": DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": deployment.target_invocations_per_instance,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
        },
    }, result_path=sfn.JsonPath.DISCARD)
    for state in (register, policy):
        catch_all(state, on_failure)
    return sfn.Chain.start(register).next(policy)


def scale_to_zero(scope: Construct, *, endpoint: str, deployment: DeploymentConfig, tags: Mapping[str, str],
                  on_failure: sfn.IChainable) -> sfn.Chain:
    """Async endpoints idle at zero instances: target tracking on the queue backlog per
    instance, plus a step policy that a HasBacklogWithoutCapacity alarm fires to wake the
    endpoint from zero (the alarm needs the policy's ARN, so the run creates it too)."""
    common = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id(endpoint), "ScalableDimension": DIMENSION}
    register = _scaling_call(scope, "Register async scalable target", "registerScalableTarget",
                             {**common, "MinCapacity": 0, "MaxCapacity": deployment.async_max_instance_count,
                              "Tags": dict(tags)},
                             result_path=sfn.JsonPath.DISCARD)
    backlog = _scaling_call(scope, "Put backlog scaling policy", "putScalingPolicy", {
        **common, "PolicyName": f"{endpoint}-backlog", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": deployment.async_target_backlog_per_instance,
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}], "Statistic": "Average"},
            "ScaleInCooldown": 600, "ScaleOutCooldown": 300}}, result_path=sfn.JsonPath.DISCARD)
    wake = _scaling_call(scope, "Put wake-from-zero policy", "putScalingPolicy", {
        **common, "PolicyName": f"{endpoint}-wake-from-zero", "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average", "Cooldown": 300,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}},
        result_selector={"policy_arn.$": "$.PolicyARN"}, result_path="$.wake")
    alarm = _wake_alarm(scope, endpoint, tags)
    for state in (register, backlog, wake, alarm):
        catch_all(state, on_failure)
    return register.next(backlog).next(wake).next(alarm)


def _wake_alarm(scope: Construct, endpoint: str, tags: Mapping[str, str]) -> tasks.CallAwsService:
    alarm_name = f"{endpoint}-backlog-without-capacity"
    arn = cdk.Stack.of(scope).format_arn(service="cloudwatch", resource="alarm", resource_name=alarm_name,
                                         arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
    return tasks.CallAwsService(
        scope, "Put wake-from-zero alarm", task_timeout=API_TIMEOUT,
        service="cloudwatch", action="putMetricAlarm",
        parameters={
            "AlarmName": alarm_name,
            "AlarmDescription": "Requests are queued and the async endpoint has no instance: scale out from zero",
            "Namespace": "AWS/SageMaker", "MetricName": "HasBacklogWithoutCapacity",
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
            "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2, "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "missing",
            "AlarmActions.$": "States.Array($.wake.policy_arn)",
            "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        },
        iam_resources=[arn], iam_action="cloudwatch:PutMetricAlarm",
        additional_iam_statements=[iam.PolicyStatement(actions=["cloudwatch:TagResource"], resources=[arn])],
        result_path=sfn.JsonPath.DISCARD,
    )


def autoscaling_caller_statements(scope: Construct, *, prefix: str, endpoints: Endpoints) -> list[iam.PolicyStatement]:
    """What whoever registers the stage's endpoints with Application Auto Scaling must itself be
    allowed ("Permissions validation for Application Auto Scaling API calls on target
    resources"; the actions are those of the service-linked role's policy,
    AWSApplicationAutoscalingSageMakerEndpointPolicy): the autoscaled endpoints, their configs,
    and the target-tracking alarms the service names "TargetTracking-<resource id>-AlarmHigh/Low-<uuid>";
    the first registration in an account creates the service-linked role (and only that one)."""
    stack = cdk.Stack.of(scope)
    arn = lambda resource, name: stack.format_arn(service="sagemaker", resource=resource, resource_name=name)  # noqa: E731
    scaled = endpoints.scaled()
    return [
        iam.PolicyStatement(
            sid="AutoscalingTargetChecks",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig",
                     "sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=[*(arn("endpoint", name) for name in scaled), arn("endpoint-config", f"{prefix}-config-*")]),
        iam.PolicyStatement(
            sid="AutoscalingTargetTrackingAlarms",
            actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            resources=[stack.format_arn(service="cloudwatch", resource="alarm", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                                        resource_name=f"TargetTracking-{resource_id(name)}-*") for name in scaled]),
        iam.PolicyStatement(
            sid="AutoscalingServiceLinkedRole", actions=["iam:CreateServiceLinkedRole"],
            resources=[f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/"
                       "sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"],
            conditions={"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}),
    ]


def tracking_alarm_findings(endpoints: Endpoints) -> dict[str, str]:
    """cdk-nag IAM5 finding ids of the target-tracking alarm grants, with their reasons."""
    return {f"Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:TargetTracking-endpoint/{name}/variant/{VARIANT}-*": (
        f"Application Auto Scaling names the target-tracking alarms of {name} itself (AlarmHigh/AlarmLow and a "
        "uuid) and checks the caller may create, read and delete them") for name in endpoints.scaled()}
