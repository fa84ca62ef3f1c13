"""The dataset's sample in the repository, copied into the raw zone so a first pipeline run works."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from mlops.nag import acknowledge, acknowledge_packs

class SampleData(Construct):
    """Copies ``sample`` (a CSV file, or a directory of them: the dataset's ``sample``, e.g.
    ``data/sample/breast_cancer``) to ``s3://<raw>/<prefix>`` (the dataset's raw prefix).

    Never deletes anything: existing objects under the prefix are kept (``prune=False``)
    and the objects stay when the stack is deleted (``retain_on_delete``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        raw_bucket: s3.IBucket,
        sample: Path,
        prefix: str,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=log_key,
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=[s3deploy.Source.asset(str(sample)) if sample.is_dir()
                     else s3deploy.Source.data(sample.name, sample.read_text(encoding="utf-8"))],
            destination_bucket=raw_bucket,
            destination_key_prefix=prefix,
            prune=False,
            retain_on_delete=True,
            memory_limit=256,
            log_group=log_group,
        )
        self.prefix = prefix
        self._acknowledge_cdk_handler(raw_bucket)

    def _acknowledge_cdk_handler(self, raw_bucket: s3.IBucket) -> None:
        """The copy runs in CDK's own BucketDeployment handler (a stack-level singleton
        Lambda whose code and grants CDK owns). Each finding is acknowledged on exactly
        that handler, one granular id at a time."""
        role = self.deployment.handler_role
        handler = role.node.scope  # the singleton function that owns the role
        why = "CDK's BucketDeployment handler copies the dataset's sample CSVs once per deploy"
        acknowledge(
            role,
            "AwsSolutions-IAM4",
            f"{why}; it needs only CloudWatch Logs writes, which is exactly what this AWS managed policy grants.",
            applies_to="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        )
        raw_arn = cdk.Stack.of(self).get_logical_id(raw_bucket.node.default_child)  # type: ignore[arg-type]
        wildcard_reasons = {
            "Action::s3:GetBucket*": "read the CDK asset bucket's location and the raw bucket's settings",
            "Action::s3:GetObject*": "read the zipped sample-data asset (object versions included)",
            "Action::s3:List*": "list the asset and destination prefixes before copying",
            "Action::s3:Abort*": "abort multipart uploads it started if the copy fails",
            "Action::s3:DeleteObject*": "part of CDK's write grant; prune=False and retain_on_delete=True mean it never deletes",
            "Action::kms:GenerateDataKey*": "write SSE-KMS objects into the raw bucket with the data-lake key",
            "Action::kms:ReEncrypt*": "part of CDK's encrypt grant on the data-lake key for SSE-KMS writes",
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*": (
                "read its own source asset; CDK names the asset object by content hash at deploy time"
            ),
            f"Resource::<{raw_arn}.Arn>/*": f"write objects under the {self.prefix} prefix of the raw bucket",
        }
        for finding, reason in wildcard_reasons.items():
            acknowledge(role, "AwsSolutions-IAM5", f"{why}; the wildcard lets it {reason}.", applies_to=finding)
        acknowledge(
            handler,
            "AwsSolutions-L1",
            f"{why}; CDK pins this handler's runtime in aws-cdk-lib and it moves with the pinned aws-cdk-lib version.",
        )
        # IAM User Guide, "Managed policies and inline policies": an inline policy keeps a strict
        # one-to-one relationship with its identity (CDK writes the handler's grants into its role's
        # DefaultPolicy). Lambda Developer Guide, "Using AWS Lambda with CloudFormation": CloudFormation
        # invokes a custom-resource function asynchronously and waits for its response; "Configuring
        # reserved concurrency for a function"; "Giving Lambda functions access to resources in an
        # Amazon VPC".
        acknowledge_packs(role, "IAMNoInlinePolicy",
                          f"{why}; CDK writes the handler's asset-read and raw-bucket-write grants into its role's "
                          "inline DefaultPolicy, which belongs to that one role only and is never shared.")
        acknowledge_packs(handler, "LambdaDLQ",
                          f"{why}; CloudFormation invokes it for the stack operation and waits for its answer, so a "
                          "failed copy fails and rolls back that deploy: a dead-letter queue would hold a stale request.")
        acknowledge_packs(handler, "LambdaConcurrency",
                          f"{why}, one invocation per stack operation; reserving concurrency for it would only take "
                          "units from the account's unreserved pool.")
        acknowledge_packs(handler, "LambdaInsideVPC",
                          f"{why}; it talks only to S3 (the CDK asset bucket and the raw bucket) and has no private "
                          "resource to reach, so a VPC would add a NAT gateway or S3 endpoint for nothing.")
