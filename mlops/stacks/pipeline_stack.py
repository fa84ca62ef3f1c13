"""Stateless stack: the data, training and monitoring state machines, their jobs and functions, alarms,
the dashboard and the retraining triggers."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops.config import StageConfig
from mlops.constructs.data_preparation import DataPreparation
from mlops.constructs.monitoring import Monitoring
from mlops.constructs.monitoring.backend import SKLEARN_VERSION, monitoring_backend
from mlops.constructs.pipeline_function import powertools_layer
from mlops.constructs.resources import ZONES, StageResources, log_retention
from mlops.constructs.training.algorithm import script_image, script_serving_image
from mlops.constructs.training.candidates import stage_algorithm
from mlops.constructs.training.encoding import ENCODER_FRAMEWORK_VERSION
from mlops.constructs.training.pipeline import TrainingPipeline
from mlops.images import ImageMapping
from mlops.nag import acknowledge
from mlops.stacks.data_stack import DataStack, export_name
from mlops.stacks.operations_stack import OperationsStack


class PipelineStack(cdk.Stack):
    """The stage's workflows. Reads the data lake through the Data stack's named exports and
    reports to the Operations stack's topic; holds no data, so it can be replaced freely."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, data: DataStack,
        operations: OperationsStack, **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.add_stack_dependency(data)  # ImportValue alone does not order the deployments
        backend = monitoring_backend(config.monitoring, config.pipeline)
        # One region -> image table for every workflow (the SageMaker SDK's tables, see mlops/images.py)
        images = ImageMapping(self, "Images", images={
            "xgboost": ("xgboost", config.pipeline.xgboost_version),
            "sklearn": ("sklearn", SKLEARN_VERSION, "cpu", "py3"),
            **({"script": script_image(config.pipeline.script)} if config.pipeline.script else {}),
            **{f"script{index}": script_image(c.pipeline.script)
               for index, c in enumerate(config.pipeline.candidates) if c.pipeline.script},
            **({"scriptserving": script_serving_image(config.pipeline.script)}  # PyTorch serves from its own image
               if config.pipeline.script and script_serving_image(config.pipeline.script) else {}),
            **{f"script{index}serving": script_serving_image(c.pipeline.script)
               for index, c in enumerate(config.pipeline.candidates)
               if c.pipeline.script and script_serving_image(c.pipeline.script)},
            **({"encoder": ("sklearn", ENCODER_FRAMEWORK_VERSION, "cpu", "py3")} if config.pipeline.encodes else {}),
            **backend.images(),
        })
        resources = self._resources(config, operations)
        backend.bind(images, resources)
        pipeline, group = config.pipeline, data.model_registry.group_name
        self.data = DataPreparation(
            self, "Data", resources=resources, data=config.data, dataset=pipeline.dataset,
            database_name=data.catalog.database_name,
            image_uri=images.uri("xgboost"), instance_type=pipeline.evaluation_instance_type,
            timeout_hours=pipeline.execution_timeout_hours)
        self.training = TrainingPipeline(
            self, "Training", resources=resources, backend=backend, pipeline=pipeline, training=config.training,
            deployment=config.deployment, data_machine=self.data.state_machine,
            algorithm=stage_algorithm(self, pipeline, images), evaluation_image_uri=images.uri("xgboost"), group=group)
        self.monitoring = Monitoring(
            self, "Monitoring", resources=resources, backend=backend, monitoring=config.monitoring,
            retraining_config=config.retraining, alarms=config.alarms, group=group,
            endpoint_name=self.training.endpoint_name,
            state_machines={"data": self.data.state_machine, "training": self.training.state_machine},
            endpoint_alarms=dict(zip(("endpoint-5xx", "endpoint-latency-p99"), self.training.rollback_alarms)))
        cdk.CfnOutput(self, "DataStateMachineArn", value=self.data.state_machine.state_machine_arn,
                      description="Start a data-only run (validate, clean, split, catalogue, ingest)")
        cdk.CfnOutput(self, "StateMachineArn", value=self.training.state_machine.state_machine_arn,
                      description="Start a run: aws stepfunctions start-execution --state-machine-arn <this>")

    def _resources(self, config: StageConfig, operations: OperationsStack) -> StageResources:
        """The data lake through the Data stack's named exports, the operations topic, one layer."""
        key = kms.Key.from_key_arn(self, "DataKey", cdk.Fn.import_value(export_name(config, "data-key-arn")))
        buckets = {
            zone: s3.Bucket.from_bucket_attributes(
                self, f"{zone.capitalize()}Bucket",
                bucket_name=cdk.Fn.import_value(export_name(config, f"{zone}-bucket")), encryption_key=key,
            )
            for zone in ZONES
        }
        failed = sqs.Queue(self, "FailedInvocations", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
                           enforce_ssl=True, retention_period=cdk.Duration.days(14))
        acknowledge(failed, "AwsSolutions-SQS3", "This queue is itself the on-failure destination of the functions "
                    "EventBridge and Scheduler invoke asynchronously (retrain, approval).")
        return StageResources(
            project=config.project, stage=config.stage, prefix=config.resource_prefix, data_key=key, buckets=buckets,
            failed_invocations=failed,
            exports={zone: export_name(config, f"{zone}-bucket") for zone in ZONES},
            topic=operations.notifications.topic, topic_key=operations.notifications.key,
            layer=powertools_layer(self, "Powertools", config.pipeline.powertools_layer_version),
            log_retention=log_retention(config.protection.retain_stateful_resources),
            tags=config.cost_allocation_tags,
        )
