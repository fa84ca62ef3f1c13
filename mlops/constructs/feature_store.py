"""SageMaker Feature Store feature groups of a stage (stateful: online and offline records)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops.config import FeatureGroupConfig
from mlops.nag import acknowledge, acknowledge_inline_policy

OFFLINE_PREFIX = "feature-store/"


def feature_group_name(resource_prefix: str, group: FeatureGroupConfig) -> str:
    """``<project>-<stage>-<name>``; the config limits it to SageMaker's 64 characters."""
    return f"{resource_prefix}-{group.name}"


def offline_table_name(resource_prefix: str, group: FeatureGroupConfig) -> str:
    """Glue table names are lowercase with underscores."""
    return feature_group_name(resource_prefix, group).replace("-", "_")


class FeatureStore(Construct):
    """Provisions one feature group per ``data.feature_groups`` entry: KMS-encrypted online
    store (when enabled) and an offline store in the curated zone under ``feature-store/``
    with its Glue table in the stage's database, plus the role SageMaker uses to write the
    offline store. Records arrive through the data phase's batched ingestion job.

    Exposes ``groups`` (config name -> feature group name) and ``group_arns``. Feature group
    names are physical (the service requires them); renaming one replaces it and its records.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        groups: list[FeatureGroupConfig],
        key: kms.IKey,
        curated_bucket: s3.IBucket,
        database_name: str,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.groups: dict[str, str] = {}
        self.group_arns: list[str] = []
        if not groups:
            return
        role = iam.Role(self, "OfflineStoreRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description=f"{resource_prefix}: Feature Store writes offline-store records and their Glue tables")
        acknowledge_inline_policy(role, "Feature Store's offline-store role")
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject", "s3:GetObject", "s3:PutObjectAcl"],
            resources=[curated_bucket.arn_for_objects(f"{OFFLINE_PREFIX}*")]))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetBucketAcl"], resources=[curated_bucket.bucket_arn]))
        tables = [offline_table_name(resource_prefix, group) for group in groups]
        role.add_to_policy(iam.PolicyStatement(
            actions=["glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"],
            resources=[stack.format_arn(service="glue", resource="catalog"),
                       stack.format_arn(service="glue", resource="database", resource_name=database_name),
                       *[stack.format_arn(service="glue", resource="table", resource_name=f"{database_name}/{table}")
                         for table in tables]]))
        key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        acknowledge(role, "AwsSolutions-IAM5", "The offline store writes one object per record batch under "
                    f"{OFFLINE_PREFIX}<account>/sagemaker/<region>/offline-store/<group>/...: keys are chosen by SageMaker.",
                    applies_to=f"Resource::<{stack.get_logical_id(curated_bucket.node.default_child)}.Arn>/{OFFLINE_PREFIX}*")
        for group in groups:
            name = feature_group_name(resource_prefix, group)
            definitions = [
                sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(feature_name=name_, feature_type=type_)
                for name_, type_ in [(group.record_identifier, "String"), (group.event_time, "String"),
                                     *[(f.name, f.type) for f in group.features]]
            ]
            feature_group = sagemaker.CfnFeatureGroup(
                self, f"Group-{group.name}",
                feature_group_name=name,
                description=group.description or f"{resource_prefix}: features of the {group.name} group",
                record_identifier_feature_name=group.record_identifier,
                event_time_feature_name=group.event_time,
                feature_definitions=definitions,
                online_store_config={"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": key.key_arn}}
                if group.online_store else None,
                offline_store_config={
                    "S3StorageConfig": {"S3Uri": curated_bucket.s3_url_for_object(OFFLINE_PREFIX.rstrip("/")),
                                        "KmsKeyId": key.key_arn},
                    "DataCatalogConfig": {"Catalog": "AwsDataCatalog", "Database": database_name,
                                          "TableName": offline_table_name(resource_prefix, group)},
                    "DisableGlueTableCreation": False,
                },
                role_arn=role.role_arn,
            )
            feature_group.node.add_dependency(role)  # the role's policy must exist before SageMaker writes
            feature_group.apply_removal_policy(cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY)
            self.groups[group.name] = name
            self.group_arns.append(stack.format_arn(service="sagemaker", resource="feature-group", resource_name=name.lower()))
