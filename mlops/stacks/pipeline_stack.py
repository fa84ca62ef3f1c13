"""Stateless stack: the data, training and monitoring state machines, their jobs and functions, alarms,
the dashboard and the retraining triggers."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.config import StageConfig
from mlops.constructs.data_preparation import DataPreparation
from mlops.constructs.monitoring import Monitoring
from mlops.constructs.pipeline_function import powertools_layer
from mlops.constructs.sample_data import SAMPLE_PREFIX
from mlops.constructs.training_pipeline import TrainingPipeline
from mlops.stacks.data_stack import DataStack, export_name
from mlops.images import ImageMapping
from mlops.stacks.operations_stack import OperationsStack


SKLEARN_VERSION = "1.2-1"  # AWS's scikit-learn processing image the drift job runs on


class PipelineStack(cdk.Stack):
    """The training pipeline. Reads the data lake through the Data stack's named exports and
    reports to the Operations stack's topic; holds no data, so it can be replaced freely."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, data: DataStack,
        operations: OperationsStack, **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.add_stack_dependency(data)  # ImportValue alone does not order the deployments
        key = kms.Key.from_key_arn(self, "DataKey", cdk.Fn.import_value(export_name(config, "data-key-arn")))
        buckets = {
            zone: s3.Bucket.from_bucket_attributes(
                self, f"{zone.capitalize()}Bucket",
                bucket_name=cdk.Fn.import_value(export_name(config, f"{zone}-bucket")), encryption_key=key,
            )
            for zone in ("raw", "curated", "artifacts", "monitoring")
        }
        # One region -> image table for both phases (the SageMaker SDK's tables, see mlops/images.py)
        model_monitor = config.monitoring.backend == "model-monitor"
        images = ImageMapping(self, "Images", images={
            "xgboost": ("xgboost", config.pipeline.xgboost_version),
            "sklearn": ("sklearn", SKLEARN_VERSION, "cpu", "py3"),
            **({"modelmonitor": ("model-monitor", "")} if model_monitor else {}),  # Model Monitor's analyzer
        })
        exports = {zone: export_name(config, f"{zone}-bucket") for zone in buckets}
        self.data = DataPreparation(
            self, "Data",
            config=config,
            data_key=key,
            data_exports=exports,
            raw_bucket=buckets["raw"],
            raw_prefix=SAMPLE_PREFIX,
            curated_bucket=buckets["curated"],
            artifacts_bucket=buckets["artifacts"],
            database_name=data.catalog.database_name,
            image_uri=images.uri("xgboost"),
            layer=powertools_layer(self, "Powertools", config.pipeline.powertools_layer_version),
            topic=operations.notifications.topic,
            topic_key=operations.notifications.key,
        )
        self.training = TrainingPipeline(
            self, "Training",
            config=config,
            data_key=key,
            data_exports=exports,
            data_machine=self.data.state_machine,
            image_uri=images.uri("xgboost"),
            raw_bucket=buckets["raw"],
            raw_prefix=SAMPLE_PREFIX,
            curated_bucket=buckets["curated"],
            artifacts_bucket=buckets["artifacts"],
            monitoring_bucket=buckets["monitoring"],
            model_package_group_name=data.model_registry.group_name,
            topic=operations.notifications.topic,
            topic_key=operations.notifications.key,
            monitor_image=(images.uri("modelmonitor"), ImageMapping.repository("model-monitor", ""))
            if model_monitor else None,
        )
        self.monitoring = Monitoring(
            self, "Monitoring",
            config=config,
            data_key=key,
            data_exports=exports,
            curated_bucket=buckets["curated"],
            monitoring_bucket=buckets["monitoring"],
            model_package_group_name=data.model_registry.group_name,
            endpoint_name=self.training.endpoint_name,
            state_machines={"data": self.data.state_machine, "training": self.training.state_machine},
            endpoint_alarms=dict(zip(("endpoint-5xx", "endpoint-latency-p99"), self.training.rollback_alarms)),
            image_uri=images.uri("sklearn"),
            image_repository=ImageMapping.repository("sklearn", SKLEARN_VERSION),
            layer=powertools_layer(self, "MonitoringPowertools", config.pipeline.powertools_layer_version),
            topic=operations.notifications.topic,
            topic_key=operations.notifications.key,
        )
        cdk.CfnOutput(self, "DataStateMachineArn", value=self.data.state_machine.state_machine_arn,
                      description="Start a data-only run (validate, clean, split, catalogue, ingest)")
        cdk.CfnOutput(self, "StateMachineArn", value=self.training.state_machine.state_machine_arn,
                      description="Start a run: aws stepfunctions start-execution --state-machine-arn <this>")
