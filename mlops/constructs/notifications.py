"""Encrypted, SSL-only SNS topic for operational notifications."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class Notifications(Construct):
    """Provisions the stage's operations topic: KMS-encrypted with its own rotating key,
    SSL-only, with email subscriptions from config.

    Exposes ``key`` and ``topic``. The key is separate from the data-lake key so the
    services allowed to publish here get no access to data.
    AWS services that publish here (Budgets, CloudWatch alarms) are granted with
    ``allow_service_publish``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        emails: list[str],
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"{resource_prefix}: encrypts operational notifications and logs",
            alias=f"alias/{resource_prefix}-operations",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"{resource_prefix} ML platform notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def allow_service_publish(self, service: str) -> None:
        """Let an AWS service (e.g. ``budgets.amazonaws.com``) publish to the encrypted topic,
        only on behalf of this account."""
        stack = cdk.Stack.of(self)
        principal = iam.ServicePrincipal(service)
        condition = {"StringEquals": {"aws:SourceAccount": stack.account}}
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Allow{service.split('.')[0].capitalize()}Publish",
                principals=[principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=condition,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Allow{service.split('.')[0].capitalize()}ToUseTopicKey",
                principals=[principal],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions=condition,
            )
        )
