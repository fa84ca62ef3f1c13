"""Stateless stack: notifications and cost controls; safe to replace."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from mlops.config import StageConfig
from mlops.constructs.budget import CostBudget
from mlops.constructs.notifications import Notifications


class OperationsStack(cdk.Stack):
    """The stage's operations topic (budget alerts, alarms and run outcomes reach people
    through it) and its cost budget. The alarms themselves live with what they watch, in the
    Pipeline stack."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.notifications = Notifications(
            self,
            "Notifications",
            resource_prefix=config.resource_prefix,
            emails=list(config.notifications.emails),
            retain=config.protection.retain_stateful_resources,
        )
        # CloudWatch alarms of the Pipeline stack publish to the encrypted topic
        self.notifications.allow_service_publish("cloudwatch.amazonaws.com")
        self.budget = CostBudget(
            self,
            "CostBudget",
            resource_prefix=config.resource_prefix,
            tag_filter={"ml-project": config.project, "stage": config.stage},
            config=config.budget,
            notifications=self.notifications,
        )
