"""Stateful stack: everything that holds data and must survive stateless redeploys."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlops.config import StageConfig
from mlops.constructs.data_lake import DataLake
from mlops.constructs.sample_data import SampleData


class DataStack(cdk.Stack):
    """The data lake (KMS key and zone buckets) and the sample data seeded into its raw
    zone. Later issues add the Glue catalog, feature groups and the model package group."""

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
        self.sample_data: SampleData | None = None
        if config.data_lake.deploy_sample_data:
            self.sample_data = SampleData(
                self,
                "SampleData",
                raw_bucket=self.data_lake.raw_bucket,
                log_key=self.data_lake.key,
                log_retention=logs.RetentionDays.ONE_YEAR if retain else logs.RetentionDays.ONE_MONTH,
                retain=retain,
            )
