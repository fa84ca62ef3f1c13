"""The ``model-monitor`` backend (issue #6): SageMaker Model Monitor for accounts that have it.

After a real-time deployment the training run baselines the run's training split with Model
Monitor's analyzer and hands the result to the ``schedule_model_monitor`` handler, which
creates or moves the data-quality schedule (and the model-quality one, with ground truth).
This module holds what those two steps need: the monitoring jobs' role, the handler and the
request shapes; the training state machine places the states (``TrainingPipeline``).
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.config import MODEL_MONITOR_SCHEDULES, StageConfig
from mlops.constructs.access import grant_prefix
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.sagemaker_jobs import allow_job_runtime, processing_input
from mlops.nag import acknowledge

CAPTURE_PREFIX = "data-capture/"       # monitoring bucket: where endpoints capture (both backends read it)
OUTPUT_PREFIX = "model-monitor/"       # monitoring bucket: the schedules' reports
BASELINE_INPUT = "/opt/ml/processing/input/baseline_dataset_input"  # the paths the SDK's suggest_baseline uses
BASELINE_OUTPUT = "/opt/ml/processing/output"


def schedule_names(config: StageConfig) -> dict[str, str]:
    """The monitoring schedules the handler keeps (its ``prefix`` + kind)."""
    return {"data-quality": f"{config.resource_prefix}-data-quality",
            "model-quality": f"{config.resource_prefix}-model-quality"}


class ModelMonitorSetup(Construct):
    """The role Model Monitor's jobs run as (baselining and the scheduled executions) and the
    ``schedule_model_monitor`` function, with least-privilege grants for both."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data_key: kms.IKey,
        data_exports: dict[str, str],
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        monitoring_bucket: s3.IBucket,
        image_uri: str,
        image_repository: str,
        layer: lambda_.ILayerVersion,
        retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._config, self._data_key, self.image_uri = config, data_key, image_uri
        self._monitoring_bucket = monitoring_bucket
        prefix, monitoring = config.resource_prefix, config.monitoring

        self.role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description=f"{prefix}: Model Monitor baselining and monitoring jobs")
        grant_prefix(self.role, curated_bucket, f"{config.pipeline.dataset}/runs/", "read the run's training split",
                     export_name=data_exports["curated"])
        grant_prefix(self.role, artifacts_bucket, "runs/", "write the run's baseline and read it back when monitoring",
                     export_name=data_exports["artifacts"], write=True)
        grant_prefix(self.role, monitoring_bucket, CAPTURE_PREFIX, "read the endpoint's captured data",
                     export_name=data_exports["monitoring"])
        grant_prefix(self.role, monitoring_bucket, OUTPUT_PREFIX, "write each monitoring execution's reports",
                     export_name=data_exports["monitoring"], write=True)
        if monitoring.ground_truth_prefix:
            grant_prefix(self.role, monitoring_bucket, monitoring.ground_truth_prefix, "read labelled outcomes",
                         export_name=data_exports["monitoring"])
        data_key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant")
        allow_job_runtime(self.role, image_repository, "Model Monitor job role")

        function = PipelineFunction(self, "ScheduleModelMonitor", folder="schedule_model_monitor", layer=layer,
                                    log_key=data_key, log_retention=retention,
                                    description=f"{prefix}: create or move the Model Monitor schedules")
        arn = lambda resource, name: stack.format_arn(service="sagemaker", resource=resource, resource_name=name)  # noqa: E731
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
            resources=[arn("monitoring-schedule", name) for name in schedule_names(config).values()]))
        function.role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        grant_prefix(function.role, artifacts_bucket, "runs/", "read the run's suggested constraints and write the "
                     "tuned ones next to them", export_name=data_exports["artifacts"], write=True)
        data_key.grant(function.role, "kms:Decrypt", "kms:GenerateDataKey")
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
        self.function = function

    def baseline_parameters(self, job_name: str) -> dict:
        """CreateProcessingJob for Model Monitor's analyzer on the run's training split, as the
        SDK's ``DefaultModelMonitor.suggest_baseline`` builds it. The split is label first
        without a header: the label is the output column (``START``), lined up with the
        endpoint's answer in the captured data; columns are named ``_c0`` (output), ``_c1``…"""
        mm = self._config.monitoring.model_monitor
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
            "ProcessingOutputConfig": {"KmsKeyId": self._data_key.key_arn, "Outputs": [{
                "OutputName": "monitoring_output",
                "S3Output": {"S3Uri.$": "$.run.s3.baseline", "LocalPath": BASELINE_OUTPUT, "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": self._config.monitoring.instance_type,
                "VolumeSizeInGB": mm.volume_size_gb, "VolumeKmsKeyId": self._data_key.key_arn}},
            "NetworkConfig": {"EnableNetworkIsolation": mm.network_isolation,
                              "EnableInterContainerTrafficEncryption": True},
            "StoppingCondition": {"MaxRuntimeInSeconds": mm.max_runtime_minutes * 60},
        }

    def schedule_payload(self, endpoint_name: str) -> sfn.TaskInput:
        """The handler's event (lambda/schedule_model_monitor): the run's baseline, the stage's settings."""
        config, monitoring = self._config, self._config.monitoring
        mm = monitoring.model_monitor
        quality = None
        if monitoring.ground_truth_prefix:
            quality = {
                "ground_truth_uri": f"s3://{self._monitoring_bucket.bucket_name}/{monitoring.ground_truth_prefix}",
                "probability_threshold": config.pipeline.classification_threshold,
                "thresholds": [threshold.model_dump() for threshold in monitoring.quality_thresholds],
            }
        return sfn.TaskInput.from_object({
            "endpoint": endpoint_name, "prefix": config.resource_prefix,
            "version": sfn.JsonPath.string_at("$.run.run_id"),
            "baseline_uri": sfn.JsonPath.string_at("$.run.s3.baseline"),
            "output_uri": f"s3://{self._monitoring_bucket.bucket_name}/{OUTPUT_PREFIX}",
            "image_uri": self.image_uri, "role_arn": self.role.role_arn, "kms_key_arn": self._data_key.key_arn,
            "instance_type": monitoring.instance_type, "volume_size_gb": mm.volume_size_gb,
            "max_runtime_seconds": mm.max_runtime_minutes * 60, "network_isolation": mm.network_isolation,
            "schedule_expression": MODEL_MONITOR_SCHEDULES[mm.schedule], "drift_threshold": mm.drift_threshold,
            "problem_type": config.pipeline.problem_type, "model_quality": quality,
        })
