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
    select a stage with ``'<stage>/*'``. Stack names are ``<project>-<stage>-<part>``.
    ``construct_id`` overrides the path's first part (see ``build``)."""

    def __init__(self, scope: Construct, *, config: StageConfig, construct_id: str | None = None) -> None:
        env = cdk.Environment(account=config.environment.account, region=config.environment.region)
        super().__init__(scope, construct_id or config.stage, env=env)
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
    """Add one stage per config to ``app``. Pure: no context, environment or AWS reads.

    A stage's construct id is its stage name (CLI selection ``'<stage>/*'``). Only when two
    configs in one app share a stage name (two projects) do those stages take
    ``<project>-<stage>`` (selection ``'<project>-<stage>/*'``); nothing else changes."""
    stages = [config.stage for config in configs]
    prefixes = [config.resource_prefix for config in configs]
    if duplicates := sorted({prefix for prefix in prefixes if prefixes.count(prefix) > 1}):
        raise ValueError(f"two configs with the same project and stage: {', '.join(duplicates)}")
    return [MlopsStage(app, config=config,
                       construct_id=config.resource_prefix if stages.count(config.stage) > 1 else None)
            for config in configs]
