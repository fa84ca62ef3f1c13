"""Monthly AWS Budgets cost budget on the stage's cost-allocation tags."""

from __future__ import annotations

from aws_cdk import aws_budgets as budgets
from constructs import Construct

from mlops.config import BudgetConfig
from mlops.constructs.notifications import Notifications


class CostBudget(Construct):
    """Provisions one monthly COST budget that counts only resources tagged with this
    project *and* stage, alerting the operations topic at each
    configured threshold (people get them through the topic's email subscriptions).

    Cost-allocation tags must be activated once per account in the Billing console
    before Budgets can filter on them (README, "Deploying").
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        tag_filter: dict[str, str],
        config: BudgetConfig,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, construct_id)
        notifications.allow_service_publish("budgets.amazonaws.com")

        # Only the topic: people subscribe to it, so nobody gets the same alert twice.
        subscribers = [
            budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=notifications.topic.topic_arn)
        ]

        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                # Physical name so the console shows which stage it is; changing it replaces the budget.
                budget_name=f"{resource_prefix}-monthly-cost",
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=config.monthly_limit_usd, unit="USD"),
                filter_expression=budgets.CfnBudget.ExpressionProperty(
                    and_=[
                        budgets.CfnBudget.ExpressionProperty(
                            tags=budgets.CfnBudget.TagValuesProperty(key=key, values=[value], match_options=["EQUALS"])
                        )
                        for key, value in tag_filter.items()
                    ]
                ),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        comparison_operator="GREATER_THAN",
                        notification_type=alert.notification_type,
                        threshold=alert.threshold_percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=subscribers,
                )
                for alert in config.alerts
            ],
        )
