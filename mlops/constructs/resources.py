"""What every workflow construct of a stage's Pipeline stack shares, in one typed bundle.

``PipelineStack`` builds one ``StageResources`` (the data lake imported through the Data
stack's named exports, the Operations stack's topic, one Powertools layer) and hands it to
each workflow construct together with the one config section that construct reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops.constructs.access import grant_prefix
from mlops.constructs.pipeline_function import PipelineFunction

ZONES = ("raw", "curated", "artifacts", "monitoring")
CAPTURE_PREFIX = "data-capture/"  # monitoring bucket: where endpoints capture traffic (both monitoring backends read it)


def log_retention(retain: bool) -> logs.RetentionDays:
    """How long every log group of a stage keeps its events: a year where the stage keeps its data."""
    return logs.RetentionDays.ONE_YEAR if retain else logs.RetentionDays.ONE_MONTH


@dataclass(frozen=True)
class StageResources:
    """The stage's shared resources, as the workflow constructs see them.

    ``buckets`` and ``exports`` are keyed by zone (``raw``, ``curated``, ``artifacts``,
    ``monitoring``); an export name is also how cdk-nag prints the imported bucket in finding
    ids, so IAM acknowledgements name ``<export>/<prefix>*``.
    """

    project: str
    stage: str
    prefix: str  # <project>-<stage>: every physical name and alarm name starts with it
    data_key: kms.IKey
    buckets: Mapping[str, s3.IBucket]
    exports: Mapping[str, str]
    topic: sns.ITopic
    topic_key: kms.IKey
    layer: lambda_.ILayerVersion
    log_retention: logs.RetentionDays
    tags: Mapping[str, str] = field(default_factory=dict)  # the cost-allocation tags
    _stack_parts: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def bucket(self, zone: str) -> s3.IBucket:
        return self.buckets[zone]

    def grant(self, role: iam.IRole, zone: str, prefix: str, why: str, *, write: bool = False,
              delete: bool = False) -> None:
        """Object access under ``prefix`` of one zone bucket (and listing of that prefix)."""
        grant_prefix(role, self.buckets[zone], prefix, why, export_name=self.exports[zone], write=write, delete=delete)

    def function(self, scope: Construct, construct_id: str, *, folder: str, description: str,
                 environment: dict[str, str] | None = None) -> PipelineFunction:
        """A handler from ``lambda/<folder>`` with the stage's layer, log key and retention."""
        return PipelineFunction(scope, construct_id, folder=folder, description=f"{self.prefix}: {description}",
                                layer=self.layer, log_key=self.data_key, log_retention=self.log_retention,
                                environment=environment)

    def arn(self, scope: Construct, service: str, resource: str, name: str | None = None, *,
            colon: bool = False) -> str:
        """An ARN in the partition, region and account of ``scope``'s stack: the string
        ``Stack.formatArn`` builds, assembled here from the stack's three values, read once per
        scope (each read is a call into the CDK's Node.js process, and a stage formats ~100)."""
        if scope not in self._stack_parts:
            stack = cdk.Stack.of(scope)
            self._stack_parts[scope] = (stack.partition, stack.region, stack.account)
        partition, region, account = self._stack_parts[scope]
        suffix = "" if name is None else (":" if colon else "/") + name
        return f"arn:{partition}:{service}:{region}:{account}:{resource}{suffix}"
