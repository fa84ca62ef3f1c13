"""The stage's Glue Data Catalog database (stateful: tables, partitions, feature-store tables)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from constructs import Construct


def database_name(resource_prefix: str) -> str:
    """Glue database names are lowercase with underscores: ``mlops-demo-dev`` -> ``mlops_demo_dev``."""
    return resource_prefix.replace("-", "_").lower()


class Catalog(Construct):
    """Provisions one Glue database per stage, named from project and stage (``database_name``).
    The crawlers of the data phase and the feature groups' offline stores write their tables
    here. Changing ``project`` or the stage renames (replaces) the database.

    Exposes ``database_name`` and ``database_arn``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, resource_prefix: str, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self.database_name = database_name(resource_prefix)
        database = glue.CfnDatabase(
            self, "Database",
            catalog_id=cdk.Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description=f"{resource_prefix}: raw and curated tables of the data lake, feature-store offline tables",
            ),
        )
        database.apply_removal_policy(cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY)
        stack = cdk.Stack.of(self)
        self.database_arn = stack.format_arn(service="glue", resource="database", resource_name=self.database_name)
