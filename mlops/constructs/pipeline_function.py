"""A pipeline Lambda function: repo handler code, Powertools layer, own role and log group."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlops.nag import acknowledge_inline_policy, acknowledge_packs

LAMBDA_DIR = Path(__file__).resolve().parent.parent.parent / "lambda"
RUNTIME = lambda_.Runtime.PYTHON_3_13
# AWS publishes the Powertools for AWS Lambda (Python) v3 layer in every commercial region
# from this account; the layer carries Powertools and pydantic v2, which the handlers use.
POWERTOOLS_ACCOUNT = "017000801446"


def powertools_layer(scope: Construct, construct_id: str, version: int) -> lambda_.ILayerVersion:
    python = RUNTIME.name.replace(".", "")  # python3.13 -> python313
    arn = (
        f"arn:{cdk.Aws.PARTITION}:lambda:{cdk.Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{python}-x86_64:{version}"
    )
    return lambda_.LayerVersion.from_layer_version_arn(scope, construct_id, arn)


class PipelineFunction(Construct):
    """Provisions one function from ``lambda/<folder>/index.py`` with a dedicated role that
    can only write to the function's own KMS-encrypted log group (no managed policies).

    Exposes ``function``, ``role`` and ``folder``; callers add exactly the permissions the handler
    needs. The compliance packs' findings that hold for every such function are acknowledged here,
    naming the function (how its failures are caught depends on who invokes it: see
    ``StageResources.acknowledge_invocations``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        folder: str,
        description: str,
        layer: lambda_.ILayerVersion,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        timeout: cdk.Duration = cdk.Duration.seconds(30),
        environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=log_key,
            retention=log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (Lambda execution role)",
        )
        acknowledge_inline_policy(self.role, f"The {folder} handler's execution role")
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(LAMBDA_DIR / folder)),
            role=self.role,
            layers=[layer],
            log_group=log_group,
            timeout=timeout,
            memory_size=256,
            environment={"POWERTOOLS_SERVICE_NAME": folder.replace("_", "-"), **(environment or {})},
        )
        self.folder = folder
        self._acknowledge(folder)

    def _acknowledge(self, folder: str) -> None:
        # Lambda Developer Guide, "Configuring reserved concurrency for a function": reserved
        # concurrency is taken from the account's unreserved pool, which must keep at least 100
        # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
        acknowledge_packs(
            self.function, "LambdaConcurrency",
            f"The {folder} handler runs a few times per workflow run or event, far below any account limit; "
            "reserved concurrency would be carved out of the account's unreserved pool (Lambda keeps at least "
            "100 unreserved), so a reservation here could fail the deploy in an account with a low quota.")
        # Lambda Developer Guide, "Giving Lambda functions access to resources in an Amazon VPC"
        # (configuration-vpc.html) and "Networking" (foundation-networking.html): every function
        # runs in a Lambda-owned VPC; attaching a customer VPC gives it access to private resources
        # there, and then it reaches AWS APIs only through that VPC (NAT gateway or endpoints).
        acknowledge_packs(
            self.function, "LambdaInsideVPC",
            f"The {folder} handler calls only AWS service APIs (IAM-signed HTTPS) and no private resource; the "
            "stage has no VPC, and attaching one would add a NAT gateway or interface endpoints just to reach "
            "those same APIs.")
