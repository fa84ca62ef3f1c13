"""The SageMaker Model Registry's model package group of a stage (stateful)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelRegistry(Construct):
    """Provisions one model package group, ``<project>-<stage>-models``: every model version
    that passes the metric gate is registered here with its metrics and lineage.

    Exposes ``group_name`` and ``group_arn``. The physical name is required by the service;
    changing ``project`` or the stage name replaces the group (and orphans its versions,
    which is why it is retained in stages that retain stateful resources).
    """

    def __init__(self, scope: Construct, construct_id: str, *, resource_prefix: str, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self.group_name = f"{resource_prefix}-models"
        group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=self.group_name,
            model_package_group_description=f"{resource_prefix}: model versions that passed the metric gate",
        )
        group.apply_removal_policy(cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY)
        self.group_arn = group.attr_model_package_group_arn
