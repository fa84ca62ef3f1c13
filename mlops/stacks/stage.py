"""One deployable stage (dev, prod, ...): its stacks, tags and protection settings."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from mlops.config import StageConfig
from mlops.tagging import apply_cost_allocation_tags
from mlops.stacks.data_stack import DataStack
from mlops.stacks.operations_stack import OperationsStack
from mlops.stacks.pipeline_stack import PipelineStack


class MlopsStage(cdk.Stage):
    """All stacks of one stage under the construct path ``<stage>/``, so the CLI can
    select a stage with ``'<stage>/*'``. Stack names are ``<project>-<stage>-<part>``."""

    def __init__(self, scope: Construct, *, config: StageConfig) -> None:
        env = cdk.Environment(account=config.environment.account, region=config.environment.region)
        super().__init__(scope, config.stage, env=env)
        common = dict(
            config=config,
            termination_protection=config.protection.termination_protection,
        )
        self.data = DataStack(
            self,
            "Data",
            stack_name=f"{config.resource_prefix}-data",
            description=f"{config.project} ({config.stage}): data lake and sample data - stateful",
            **common,
        )
        self.operations = OperationsStack(
            self,
            "Operations",
            stack_name=f"{config.resource_prefix}-operations",
            description=f"{config.project} ({config.stage}): notifications and budget - stateless",
            **common,
        )
        self.pipeline = PipelineStack(
            self,
            "Pipeline",
            stack_name=f"{config.resource_prefix}-pipeline",
            description=f"{config.project} ({config.stage}): training-to-deployment state machine - stateless",
            data=self.data,
            operations=self.operations,
            **common,
        )
        apply_cost_allocation_tags(self, [self.data, self.operations, self.pipeline], config.cost_allocation_tags)


def build(app: cdk.App, configs: list[StageConfig]) -> list[MlopsStage]:
    """Add one stage per config to ``app``. Pure: no context, environment or AWS reads."""
    return [MlopsStage(app, config=config) for config in configs]
