"""What every SageMaker job of the pipelines needs: its script objects, its image, its logs,
and processing inputs in one shape."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets

from mlops.nag import acknowledge


def read_assets(role: iam.IRole, assets: list[s3_assets.Asset], *, listed: bool = True) -> None:
    """The script objects themselves, not the whole assets bucket (Asset.grant_read uses wildcards).
    ``listed``: the scripts are processing inputs of type ``S3Prefix``, which SageMaker lists
    before downloading ("ProcessingS3Input": all objects with the key name prefix), so the role
    may also list the assets bucket, for exactly those keys. Glue reads its script by key only."""
    if not assets:
        return
    partition = cdk.Stack.of(role).partition
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["s3:GetObject"],
        resources=[f"arn:{partition}:s3:::{asset.s3_bucket_name}/{asset.s3_object_key}" for asset in assets]))
    if listed:
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=sorted({f"arn:{partition}:s3:::{asset.s3_bucket_name}" for asset in assets}),
            conditions={"StringEquals": {"s3:prefix": [asset.s3_object_key for asset in assets]}}))


def allow_job_runtime(role: iam.IRole, repository: str, who: str) -> None:
    """Pull the job's image from SageMaker's per-region ECR repository and write the job's
    logs under /aws/sagemaker/, with one acknowledgement per wildcard naming ``who``."""
    stack = cdk.Stack.of(role)
    role.add_to_principal_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        resources=[f"arn:{stack.partition}:ecr:{stack.region}:*:repository/{repository}"]))
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        resources=[stack.format_arn(service="logs", resource="log-group", resource_name="/aws/sagemaker/*",
                                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]))
    for finding, reason in {
        "Resource::*": "ecr:GetAuthorizationToken (and cloudwatch:PutMetricData, where granted under a namespace "
                       "condition) support no resource-level permissions",
        f"Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:*:repository/{repository}": (
            f"the {repository} image lives in an AWS-owned account that differs per region"),
        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/*": (
            "SageMaker writes the job's logs to log groups it names under /aws/sagemaker/"),
    }.items():
        acknowledge(role, "AwsSolutions-IAM5", f"{who}: {reason}.", applies_to=finding)


def processing_input(name: str, uri: str, local_path: str, *, manifest: bool = False) -> dict:
    """A ProcessingInput; ``uri`` may be a JSONPath into the state (``$.…``)."""
    key = "S3Uri.$" if uri.startswith("$.") else "S3Uri"
    return {"InputName": name, "S3Input": {
        key: uri, "LocalPath": local_path, "S3DataType": "ManifestFile" if manifest else "S3Prefix",
        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}
