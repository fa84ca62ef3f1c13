"""Phase: ingest the curated split tables into the stage's SageMaker Feature Store groups.

A SageMaker Processing job runs ``jobs/features/ingest.py`` (threaded, batched PutRecord with
stable record ids) as its own role, which may write the stage's feature groups only.
"""

from __future__ import annotations

import json

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.config import DataConfig
from mlops.constructs.feature_store import feature_group_name
from mlops.constructs.resources import StageResources
from mlops.constructs.sagemaker_jobs import allow_job_runtime, processing_input, read_assets
from mlops.constructs.workflow import JOBS_DIR, random_job_name, sagemaker_job
from mlops.nag import acknowledge, acknowledge_inline_policy


class FeatureIngestion:
    """Builds, into ``scope``, the ingestion role and script; ``state(on_failure)`` is
    "Ingest features". ``groups``: config name -> feature group name (empty: no groups, no
    state). ``grant_state_machine(role)`` lets the data state machine run the job."""

    def __init__(self, scope: Construct, *, resources: StageResources, data: DataConfig, catalog_prefix: str,
                 image_uri: str, instance_type: str) -> None:
        self._scope, self._resources, self._data = scope, resources, data
        self._catalog, self._image_uri, self._instance_type = catalog_prefix, image_uri, instance_type
        self.groups = {group.name: feature_group_name(resources.prefix, group) for group in data.feature_groups}
        self._script = s3_assets.Asset(scope, "IngestScript", path=str(JOBS_DIR / "features" / "ingest.py"))
        self.role = iam.Role(scope, "IngestionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description=f"{resources.prefix}: feature ingestion processing job")
        acknowledge_inline_policy(self.role, "The feature-ingestion processing job's role")
        read_assets(self.role, [self._script])
        resources.grant(self.role, "curated", catalog_prefix, "read the curated split tables")
        resources.data_key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant")
        allow_job_runtime(self.role, "sagemaker-xgboost", "Feature ingestion job role")
        if self.groups:
            self.role.add_to_policy(iam.PolicyStatement(
                actions=["sagemaker:PutRecord"],
                resources=[resources.arn(scope, "sagemaker", "feature-group", name.lower()) for name in self.groups.values()]))

    def state(self, on_failure: sfn.IChainable) -> sfn.CustomState:
        groups = [
            {"feature_group_name": self.groups[group.name], "record_identifier": group.record_identifier,
             "event_time": group.event_time, "features": [f.model_dump() for f in group.features]}
            for group in self._data.feature_groups
        ]
        resources, key_arn = self._resources, self._resources.data_key.key_arn
        return sagemaker_job(self._scope, "Ingest features", "createProcessingJob", {
            "ProcessingJobName.$": random_job_name(f"{resources.prefix}-ingest"),
            "RoleArn": self.role.role_arn,
            "AppSpecification": {
                "ImageUri": self._image_uri,
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/code/{self._script.s3_object_key}"],
                "ContainerArguments": ["--groups", json.dumps(groups, separators=(",", ":"))],
            },
            "ProcessingInputs": [
                processing_input("code", self._script.s3_object_url, "/opt/ml/processing/code"),
                processing_input("data", f"s3://{resources.bucket('curated').bucket_name}/{self._catalog}",
                                 "/opt/ml/processing/input"),
            ],
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": self._instance_type, "VolumeSizeInGB": 30, "VolumeKmsKeyId": key_arn}},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        }, result_selector={"job_name.$": "$.ProcessingJobName"}, result_path="$.ingestion", on_failure=on_failure, tags=resources.tag_list,
            comment="SageMaker Processing: batched, threaded PutRecord into every configured feature group")

    def grant_state_machine(self, role: iam.IRole) -> None:
        """Run (and tag, describe, stop) the ingestion jobs, through the .sync integration's
        managed rule, passing the ingestion role only."""
        resources, prefix = self._resources, self._resources.prefix
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="IngestionJob",
            actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                     "sagemaker:AddTags"],
            resources=[resources.arn(self._scope, "sagemaker", "processing-job", f"{prefix}-ingest-*")]))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="SyncJobEvents", actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[resources.arn(self._scope, "events", "rule", "StepFunctionsGetEventsForSageMakerProcessingJobsRule")]))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="PassIngestionRole", actions=["iam:PassRole"], resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        resources.data_key.grant(role, "kms:CreateGrant", "kms:DescribeKey")
        acknowledge(role, "AwsSolutions-IAM5", "Data state machine: ingestion job names are derived per execution.",
                    applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:processing-job/{prefix}-ingest-*")
