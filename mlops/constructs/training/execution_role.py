"""The SageMaker execution role of a stage: what its training, tuning and evaluation jobs run
as, and what SageMaker acts as while the model serves (the role ``CreateModel`` passes)."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops.constructs.resources import CAPTURE_PREFIX, StageResources
from mlops.constructs.sagemaker_jobs import allow_job_runtime, read_assets
from mlops.nag import acknowledge_inline_policy

ASYNC_INPUT_PREFIX = "async-input/"    # artifacts bucket: where clients upload async inference requests
ASYNC_OUTPUT_PREFIX = "async-output/"  # artifacts bucket: where SageMaker writes their results


def execution_role(scope: Construct, *, resources: StageResources, dataset: str,
                   scripts: list[s3_assets.Asset], repositories: list[str]) -> iam.Role:
    """The jobs' side: read the run's splits and the job scripts, write models and
    evaluations, pull the algorithm image, write logs and metrics."""
    role = iam.Role(scope, "SageMakerRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                    description=f"{resources.prefix}: training, processing and hosting")
    acknowledge_inline_policy(role, "The SageMaker execution role of training, processing and hosting")
    resources.grant(role, "curated", f"{dataset}/runs/",
                    "read each run's train/validation/test splits (the data state machine writes them)")
    resources.grant(role, "artifacts", "runs/", "write and read per-run models, checkpoints and evaluations", write=True)
    read_assets(role, scripts)
    resources.data_key.grant(role, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant")
    for repository in repositories:  # the algorithm's image, and the XGBoost image the evaluation runs on
        allow_job_runtime(role, repository, "SageMaker execution role (training, evaluation, hosting)")
    role.add_to_policy(iam.PolicyStatement(
        actions=["cloudwatch:PutMetricData"], resources=["*"],
        conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
    ))
    return role


def grant_serving(role: iam.Role, *, resources: StageResources, async_topics: list[sns.ITopic],
                  batch_input_prefix: str | None) -> None:
    """What SageMaker does as the model's execution role while serving ("Asynchronous
    inference" and "Data capture" in the SageMaker Developer Guide): read each async request
    clients upload under ASYNC_INPUT_PREFIX, write its result under ASYNC_OUTPUT_PREFIX and
    report it to one of the async topics, write the endpoints' captured requests and
    responses under CAPTURE_PREFIX, and read a batch transform's input
    (``deployment.batch_input_prefix`` of the curated zone)."""
    role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn for topic in async_topics]))
    resources.grant(role, "artifacts", ASYNC_INPUT_PREFIX,
                    "read the async inference requests clients upload, one object per request")
    resources.grant(role, "artifacts", ASYNC_OUTPUT_PREFIX, "write async inference results, one object per request",
                    write=True)
    resources.grant(role, "monitoring", CAPTURE_PREFIX,
                    "write the captured requests and responses of the endpoints, one object per few minutes", write=True)
    if batch_input_prefix:
        resources.grant(role, "curated", batch_input_prefix, "read the files a batch transform scores (any names)")


def grant_rollback_alarms(role: iam.Role, alarms: list[cloudwatch.Alarm]) -> None:
    """SageMaker reads the rollback alarms during a blue/green update as the execution role
    ("Auto-Rollback Configuration and Monitoring": the role needs cloudwatch:DescribeAlarms)."""
    role.add_to_policy(iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"],
                                           resources=[alarm.alarm_arn for alarm in alarms]))
