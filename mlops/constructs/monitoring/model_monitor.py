"""SageMaker Model Monitor, for accounts that have it (``monitoring.backend: model-monitor``).

After a real-time deployment the training run baselines the run's training split with Model
Monitor's analyzer and hands the result to the ``schedule_model_monitor`` handler, which
creates or moves the data-quality schedule (and the model-quality one, with ground truth).
``ModelMonitorSetup`` holds what those two steps need: the monitoring jobs' role, the handler
and the request shapes. ``model_monitor_alarms`` watches what Model Monitor emits.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.config import MODEL_MONITOR_SCHEDULES, DatasetConfig, MonitoringConfig, PipelineConfig
from mlops.constructs.monitoring.alarms import AlarmBook
from mlops.constructs.resources import CAPTURE_PREFIX, StageResources
from mlops.constructs.sagemaker_jobs import allow_job_runtime, processing_input
from mlops.nag import acknowledge, acknowledge_inline_policy, acknowledge_packs

OUTPUT_PREFIX = "model-monitor/"       # monitoring bucket: the schedules' reports
BASELINE_INPUT = "/opt/ml/processing/input/baseline_dataset_input"  # the paths the SDK's suggest_baseline uses
BASELINE_OUTPUT = "/opt/ml/processing/output"


def schedule_names(prefix: str) -> dict[str, str]:
    """The monitoring schedules the handler keeps (its ``prefix`` + kind)."""
    return {"data-quality": f"{prefix}-data-quality", "model-quality": f"{prefix}-model-quality"}


class ModelMonitorSetup(Construct):
    """The role Model Monitor's jobs run as (baselining and the scheduled executions) and the
    ``schedule_model_monitor`` function, with least-privilege grants for both.

    Exposes ``role``, ``function``, ``image_uri``."""

    def __init__(self, scope: Construct, construct_id: str, *, resources: StageResources, monitoring: MonitoringConfig,
                 pipeline: PipelineConfig, image_uri: str, image_repository: str) -> None:
        super().__init__(scope, construct_id)
        self._resources, self._monitoring, self._pipeline, self.image_uri = resources, monitoring, pipeline, image_uri
        prefix = resources.prefix
        self.role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description=f"{prefix}: Model Monitor baselining and monitoring jobs")
        acknowledge_inline_policy(self.role, "The Model Monitor baselining and monitoring jobs' role")
        resources.grant(self.role, "curated", f"{pipeline.dataset.name}/runs/", "read the run's training split")
        resources.grant(self.role, "artifacts", "runs/", "write the run's baseline and read it back when monitoring", write=True)
        resources.grant(self.role, "monitoring", CAPTURE_PREFIX, "read the endpoint's captured data")
        resources.grant(self.role, "monitoring", OUTPUT_PREFIX, "write each monitoring execution's reports", write=True)
        if monitoring.ground_truth_prefix:
            resources.grant(self.role, "monitoring", monitoring.ground_truth_prefix, "read labelled outcomes")
        resources.data_key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant")
        allow_job_runtime(self.role, image_repository, "Model Monitor job role")
        self.function = self._schedule_function()

    def _schedule_function(self):  # noqa: ANN202
        resources, prefix = self._resources, self._resources.prefix
        function = resources.function(self, "ScheduleModelMonitor", folder="schedule_model_monitor",
                                      description="create or move the Model Monitor schedules")
        arn = lambda resource, name: resources.arn(self, "sagemaker", resource, name)  # noqa: E731
        function.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateDataQualityJobDefinition", "sagemaker:DescribeDataQualityJobDefinition",
                     "sagemaker:DeleteDataQualityJobDefinition"],
            resources=[arn("data-quality-job-definition", f"{prefix}-dq-*")]))
        function.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateModelQualityJobDefinition", "sagemaker:DescribeModelQualityJobDefinition",
                     "sagemaker:DeleteModelQualityJobDefinition"],
            resources=[arn("model-quality-job-definition", f"{prefix}-mq-*")]))
        function.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateMonitoringSchedule", "sagemaker:DescribeMonitoringSchedule",
                     "sagemaker:UpdateMonitoringSchedule", "sagemaker:DeleteMonitoringSchedule"],
            resources=[arn("monitoring-schedule", name) for name in schedule_names(prefix).values()]))
        function.role.add_to_policy(iam.PolicyStatement(  # what it creates, it creates tagged
            actions=["sagemaker:AddTags"],
            resources=[arn("data-quality-job-definition", f"{prefix}-dq-*"), arn("model-quality-job-definition", f"{prefix}-mq-*"),
                       *(arn("monitoring-schedule", name) for name in schedule_names(prefix).values())]))
        function.role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        resources.grant(function.role, "artifacts", "runs/", "read the run's suggested constraints and write the "
                        "tuned ones next to them", write=True)
        resources.data_key.grant(function.role, "kms:Decrypt", "kms:GenerateDataKey")
        sagemaker = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
        for finding, reason in {
            f"Resource::{sagemaker}:data-quality-job-definition/{prefix}-dq-*": "one data-quality job definition per "
            "deployed model (named by the run), the previous one deleted",
            f"Resource::{sagemaker}:model-quality-job-definition/{prefix}-mq-*": "one model-quality job definition per "
            "deployed model (named by the run), the previous one deleted",
        }.items():
            acknowledge(function.role, "AwsSolutions-IAM5", f"schedule_model_monitor: {reason}.", applies_to=finding)
        acknowledge(function.function, "AwsSolutions-L1", "The schedule_model_monitor handler is pinned to Python "
                    "3.13, the newest runtime the Powertools v3 layer it imports is published for.")
        return function

    def baseline_parameters(self, job_name: str) -> dict:
        """CreateProcessingJob for Model Monitor's analyzer on the run's training split, as the
        SDK's ``DefaultModelMonitor.suggest_baseline`` builds it. The split is label first
        without a header: the label is the output column (``START``), lined up with the
        endpoint's answer in the captured data; columns are named ``_c0`` (output), ``_c1``…"""
        mm, key_arn = self._monitoring.model_monitor, self._resources.data_key.key_arn
        return {
            "ProcessingJobName.$": job_name,
            "RoleArn": self.role.role_arn,
            "AppSpecification": {"ImageUri": self.image_uri},
            "Environment": {
                "dataset_format": json.dumps({"csv": {"header": False, "output_columns_position": "START"}}),
                "dataset_source": BASELINE_INPUT,
                "output_path": BASELINE_OUTPUT,
                "publish_cloudwatch_metrics": "Disabled",
            },
            "ProcessingInputs": [processing_input("baseline_dataset_input", "$.run.s3.train", BASELINE_INPUT)],
            "ProcessingOutputConfig": {"KmsKeyId": key_arn, "Outputs": [{
                "OutputName": "monitoring_output",
                "S3Output": {"S3Uri.$": "$.run.s3.baseline", "LocalPath": BASELINE_OUTPUT, "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": self._monitoring.instance_type,
                "VolumeSizeInGB": mm.volume_size_gb, "VolumeKmsKeyId": key_arn}},
            "NetworkConfig": {"EnableNetworkIsolation": mm.network_isolation,
                              "EnableInterContainerTrafficEncryption": True},
            "StoppingCondition": {"MaxRuntimeInSeconds": mm.max_runtime_minutes * 60},
        }

    def schedule_payload(self, endpoint_name: str) -> sfn.TaskInput:
        """The handler's event (lambda/schedule_model_monitor): the run's baseline, the stage's settings."""
        monitoring, pipeline, resources = self._monitoring, self._pipeline, self._resources
        mm, bucket = monitoring.model_monitor, resources.bucket("monitoring").bucket_name
        quality = None
        if monitoring.ground_truth_prefix:
            quality = {
                "ground_truth_uri": f"s3://{bucket}/{monitoring.ground_truth_prefix}",
                "probability_threshold": pipeline.classification_threshold,
                "thresholds": [threshold.model_dump() for threshold in monitoring.quality_thresholds],
            }
        return sfn.TaskInput.from_object({
            "endpoint": endpoint_name, "prefix": resources.prefix,
            "version": sfn.JsonPath.string_at("$.run.run_id"),
            "baseline_uri": sfn.JsonPath.string_at("$.run.s3.baseline"),
            "output_uri": f"s3://{bucket}/{OUTPUT_PREFIX}",
            "image_uri": self.image_uri, "role_arn": self.role.role_arn, "kms_key_arn": resources.data_key.key_arn,
            "instance_type": monitoring.instance_type, "volume_size_gb": mm.volume_size_gb,
            "max_runtime_seconds": mm.max_runtime_minutes * 60, "network_isolation": mm.network_isolation,
            "schedule_expression": MODEL_MONITOR_SCHEDULES[mm.schedule], "drift_threshold": mm.drift_threshold,
            "problem_type": pipeline.problem_type, "model_quality": quality, "tags": dict(resources.tags),
        })


def model_monitor_alarms(scope: Construct, book: AlarmBook, *, monitoring: MonitoringConfig, dataset: DatasetConfig,
                         endpoint_name: str) -> cloudwatch.IAlarm:
    """Alarms on what Model Monitor emits: failed executions of either schedule, and
    ``feature_baseline_drift_<column>`` per feature (columns ``_c1``… in dataset order: the
    baseline is the label-first training split without a header). An alarm may combine at
    most 10 metrics, so features are watched in groups of 10 and a composite alarm
    ``<prefix>-drift`` fires when any feature's distance passes ``drift_threshold``."""
    prefix, mm = book.prefix, monitoring.model_monitor
    schedules = schedule_names(prefix)
    # Executions are processing jobs started by the schedules: count the failed ones.
    failures = events.Rule(
        scope, "ModelMonitorExecutionFailed", description=f"{prefix}: a Model Monitor execution failed",
        event_pattern=events.EventPattern(
            source=["aws.sagemaker"], detail_type=["SageMaker Processing Job State Change"],
            detail={"ProcessingJobStatus": ["Failed"], "MonitoringScheduleArn": [
                cdk.Stack.of(scope).format_arn(service="sagemaker", resource="monitoring-schedule", resource_name=name)
                for name in schedules.values()]}))
    book.add("monitoring-failed", "Model Monitor: a monitoring execution failed", cloudwatch.Metric(
        namespace="AWS/Events", metric_name="MatchedEvents", dimensions_map={"RuleName": failures.rule_name},
        statistic="Sum", period=cdk.Duration.minutes(5)), threshold=1)
    features = dataset.features
    groups = [_drift_group(scope, book, features, start, endpoint_name, schedules["data-quality"], mm.drift_threshold)
              for start in range(0, len(features), 10)]
    drift = cloudwatch.CompositeAlarm(
        scope, "Alarm-drift", composite_alarm_name=f"{prefix}-drift",
        alarm_description=f"Model Monitor: a feature drifted from the training baseline (distance above "
                          f"{mm.drift_threshold})",
        alarm_rule=cloudwatch.AlarmRule.any_of(*groups))
    drift.add_alarm_action(book.action)
    book.alarms["drift"] = drift  # type: ignore[assignment]  # a composite: on the dashboard with the rest
    return drift


def _drift_group(scope: Construct, book: AlarmBook, features: list[str], start: int, endpoint_name: str, schedule: str,
                 threshold: float) -> cloudwatch.Alarm:
    """Up to 10 features' drift distances in one alarm (paging through the composite)."""
    metrics = {f"c{index}": cloudwatch.Metric(
        namespace="aws/sagemaker/Endpoints/data-metrics", metric_name=f"feature_baseline_drift__c{index}",
        dimensions_map={"Endpoint": endpoint_name, "MonitoringSchedule": schedule},
        statistic="Maximum", period=cdk.Duration.hours(1), label=features[index - 1])
        for index in range(start + 1, min(start + 10, len(features)) + 1)}
    first, last = start + 1, start + len(metrics)
    group = cloudwatch.Alarm(
        scope, f"Alarm-drift-{first}-{last}", alarm_name=f"{book.prefix}-drift-features-{first}-{last}",
        alarm_description=f"Model Monitor: features {first}-{last} ({features[first - 1]} … {features[last - 1]}) "
                          f"drift distance above {threshold}",
        metric=cloudwatch.MathExpression(expression=f"MAX([{', '.join(metrics)}])", using_metrics=metrics,
                                         period=cdk.Duration.hours(1), label="largest drift distance"),
        threshold=threshold, evaluation_periods=1, datapoints_to_alarm=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
    book.alarms[f"drift-{first}-{last}"] = group  # pages through the composite alarm
    # CloudWatch User Guide, "Composite alarms" (alarm-combining.html): take actions only at the
    # aggregated level and create the underlying alarms without actions, to reduce alarm noise.
    acknowledge_packs(group, "CloudWatchAlarmAction",
                      f"Features {first}-{last} feed the composite drift alarm, which pages; an action here too would "
                      "page twice for one drift (CloudWatch advises actions on the composite alarm only).")
    return group
