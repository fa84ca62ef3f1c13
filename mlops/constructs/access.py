"""Prefix-scoped S3 access to the data-lake buckets, without CDK's wildcard actions."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from mlops.nag import acknowledge


def grant_prefix(role: iam.IRole, bucket: s3.IBucket, prefix: str, why: str, *, export_name: str,
                 write: bool = False, delete: bool = False) -> None:
    """Object access under one prefix of an imported data-lake bucket, and listing of that
    prefix only. ``export_name`` is how cdk-nag shows the imported bucket's name."""
    actions = ["s3:GetObject"] + (["s3:PutObject", "s3:AbortMultipartUpload"] if write else []) + (
        ["s3:DeleteObject"] if delete else [])
    bucket_arn = bucket.bucket_arn  # what Bucket.arnForObjects prefixes, read once
    role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=[f"{bucket_arn}/{prefix}*"]))
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["s3:ListBucket"], resources=[bucket_arn],
        conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None,
    ))
    acknowledge(role, "AwsSolutions-IAM5", f"Object keys are per run and per file: the wildcard lets it {why}.",
                applies_to=f"Resource::arn:<AWS::Partition>:s3:::{export_name}/{prefix}*")
