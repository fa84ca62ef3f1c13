"""Stateful stack: everything that holds data and must survive stateless redeploys."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlops.config import REPO_ROOT, StageConfig
from mlops.constructs.catalog import Catalog
from mlops.constructs.data_lake import DataLake
from mlops.constructs.feature_store import FeatureStore
from mlops.constructs.model_registry import ModelRegistry
from mlops.constructs.sample_data import SampleData


class DataStack(cdk.Stack):
    """The data lake (KMS key and zone buckets), the sample data seeded into its raw zone,
    the Glue Data Catalog database, the Feature Store feature groups and the Model
    Registry's model package group."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retain = config.protection.retain_stateful_resources
        self.data_lake = DataLake(
            self,
            "DataLake",
            resource_prefix=config.resource_prefix,
            config=config.data_lake,
            retain=retain,
        )
        if config.data.refresh_on_new_raw_data:
            # S3 -> EventBridge delivery, set on the bucket itself (CDK's event_bridge_enabled
            # would add a notifications custom resource and its Lambda function).
            self.data_lake.raw_bucket.node.default_child.add_property_override(  # type: ignore[union-attr]
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        self.catalog = Catalog(self, "Catalog", resource_prefix=config.resource_prefix, retain=retain)
        self.feature_store = FeatureStore(
            self, "FeatureStore",
            resource_prefix=config.resource_prefix,
            groups=config.data.feature_groups,
            key=self.data_lake.key,
            curated_bucket=self.data_lake.curated_bucket,
            database_name=self.catalog.database_name,
            retain=retain,
        )
        self.feature_store.node.add_dependency(self.catalog)
        self.model_registry = ModelRegistry(
            self, "ModelRegistry", resource_prefix=config.resource_prefix, retain=retain
        )
        self.sample_data: SampleData | None = None
        dataset = config.pipeline.dataset
        if config.data_lake.deploy_sample_data and dataset.sample:
            self.sample_data = SampleData(
                self,
                "SampleData",
                raw_bucket=self.data_lake.raw_bucket,
                sample=REPO_ROOT / dataset.sample,
                prefix=dataset.raw_location,
                log_key=self.data_lake.key,
                log_retention=logs.RetentionDays.ONE_YEAR if retain else logs.RetentionDays.ONE_MONTH,
                retain=retain,
            )
        self._export(config, "data-key-arn", self.data_lake.key.key_arn)
        for zone, bucket in (("raw", self.data_lake.raw_bucket), ("curated", self.data_lake.curated_bucket),
                             ("artifacts", self.data_lake.artifacts_bucket), ("monitoring", self.data_lake.monitoring_bucket)):
            self._export(config, f"{zone}-bucket", bucket.bucket_name)

    def _export(self, config: StageConfig, name: str, value: str) -> None:
        """Named exports are the stateless stacks' only way in: stable names keep their IAM
        resources (and cdk-nag finding ids) predictable. Never rename or remove one while a
        stack imports it (CloudFormation refuses); add a new one instead."""
        cdk.CfnOutput(self, f"Export-{name}", value=value, export_name=export_name(config, name))


def export_name(config: StageConfig, name: str) -> str:
    return f"{config.resource_prefix}-{name}"
