"""What every workflow construct of a stage's Pipeline stack shares, in one typed bundle.

``PipelineStack`` builds one ``StageResources`` (the data lake imported through the Data
stack's named exports, the Operations stack's topic, one Powertools layer) and hands it to
each workflow construct together with the one config section that construct reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops.constructs.access import grant_prefix
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.nag import acknowledge, acknowledge_packs

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
    failed_invocations: sqs.IQueue  # on-failure destination of every asynchronously invoked function
    tags: Mapping[str, str] = field(default_factory=dict)  # the cost-allocation tags
    # Every function and every queue of undelivered messages the workflows create, by name: the
    # Monitoring construct alarms on each (function errors, messages waiting), so none fails unheard.
    functions: dict[str, PipelineFunction] = field(default_factory=dict, init=False, compare=False, repr=False)
    queues: dict[str, sqs.IQueue] = field(default_factory=dict, init=False, compare=False, repr=False)
    _stack_parts: dict = field(default_factory=dict, init=False, compare=False, repr=False)
    # folder -> who invokes that function asynchronously (see ``invoked_asynchronously``)
    _asynchronous: dict[str, str] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.queues["failed-invocations"] = self.failed_invocations

    @property
    def tag_list(self) -> list[dict[str, str]]:
        """The cost-allocation tags as SageMaker's Create* requests take them (``Tags``: a list of
        ``Key``/``Value``): every resource a run creates carries them, so the tag-filtered budget
        sees its cost."""
        return [{"Key": key, "Value": value} for key, value in sorted(self.tags.items())]

    def bucket(self, zone: str) -> s3.IBucket:
        return self.buckets[zone]

    def grant(self, role: iam.IRole, zone: str, prefix: str, why: str, *, write: bool = False,
              delete: bool = False) -> None:
        """Object access under ``prefix`` of one zone bucket (and listing of that prefix)."""
        grant_prefix(role, self.buckets[zone], prefix, why, export_name=self.exports[zone], write=write, delete=delete)

    def function(self, scope: Construct, construct_id: str, *, folder: str, description: str,
                 environment: dict[str, str] | None = None) -> PipelineFunction:
        """A handler from ``lambda/<folder>`` with the stage's layer, log key and retention
        (registered in ``functions`` under ``folder``: it gets an errors alarm)."""
        function = PipelineFunction(scope, construct_id, folder=folder, description=f"{self.prefix}: {description}",
                                    layer=self.layer, log_key=self.data_key, log_retention=self.log_retention,
                                    environment=environment)
        self.functions[folder] = function
        return function

    def failure_describer(self, scope: Construct, state_machine_name: str) -> PipelineFunction:
        """The stack's ``describe_failure`` function (created on first use), allowed to read the
        execution history of ``state_machine_name``'s executions: GetExecutionHistory's resource
        type is ``execution`` (Service Authorization Reference, "Actions, resources, and
        condition keys for AWS Step Functions"), whose names are not known before a run."""
        stack = cdk.Stack.of(scope)
        if "describe_failure" not in self.functions:
            created = self.function(stack, "DescribeFailure", folder="describe_failure",
                                    description="describe a failed run in one line (error, state, cause)")
            acknowledge(created.function, "AwsSolutions-L1", "The describe_failure handler is pinned to Python 3.13, the "
                        "newest runtime the Powertools v3 layer it imports (with pydantic) is published for.")
        function = self.functions["describe_failure"]
        executions = self.arn(stack, "states", "execution", f"{state_machine_name}:*", colon=True)
        function.role.add_to_policy(iam.PolicyStatement(actions=["states:GetExecutionHistory"], resources=[executions]))
        acknowledge(function.role, "AwsSolutions-IAM5",
                    f"Reads the history of {state_machine_name}'s failed execution to name the failing state; "
                    "execution names are chosen per run.",
                    applies_to=f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
                               f"{state_machine_name}:*")
        return function

    def queue(self, scope: Construct, construct_id: str, *, name: str, holds: str) -> sqs.Queue:
        """A queue for messages that could not be delivered (a dead-letter queue): encrypted with
        the data key, SSL only, kept 14 days; registered in ``queues`` under ``name``, so an
        alarm pages as soon as a message waits in it. ``holds``: whose undelivered messages."""
        queue = sqs.Queue(scope, construct_id, encryption=sqs.QueueEncryption.KMS, encryption_master_key=self.data_key,
                          enforce_ssl=True, retention_period=cdk.Duration.days(14))
        acknowledge(queue, "AwsSolutions-SQS3", f"This queue is itself the dead-letter queue of {holds}.")
        self.queues[name] = queue
        return queue

    def invoked_asynchronously(self, function: PipelineFunction, *, by: str) -> None:
        """For a function EventBridge or Scheduler invokes (asynchronously): Lambda retries a
        failed invocation twice within six hours, then sends the event with the error to
        ``failed_invocations`` as the function's role ("Capturing records of Lambda asynchronous
        invocations", Lambda Developer Guide), which may send there and use the queue's key.
        ``by``: who invokes it, as the acknowledgement of its dead-letter-queue finding says."""
        function.function.configure_async_invoke(
            on_failure=_QueueDestination(self.failed_invocations, self.data_key),
            retry_attempts=2, max_event_age=cdk.Duration.hours(6))
        self._asynchronous[function.folder] = by

    def acknowledge_invocations(self) -> None:
        """The NIST/HIPAA dead-letter-queue finding on each function, with how that function's
        failures are caught instead; call it once every workflow construct is built.

        Lambda Developer Guide, "Capturing records of Lambda asynchronous invocations"
        (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html): a
        dead-letter queue receives the events of failed *asynchronous* invocations only (with the
        event, without the error); an on-failure destination receives the event with the error.
        A synchronous caller (a Step Functions LambdaInvoke task) gets the error itself."""
        for folder, function in sorted(self.functions.items()):
            by = self._asynchronous.get(folder)
            if by is None:
                reason = (f"Step Functions invokes the {folder} handler synchronously (a LambdaInvoke task), so a "
                          "dead-letter queue would never receive anything: a failure is the task's error, which the "
                          "state's Catch turns into the run's failure notice, and the function's errors alarm fires.")
            else:
                reason = (f"The {folder} handler is invoked asynchronously by {by}; after Lambda's two retries a failed "
                          "event goes to its on-failure destination, the stage's failed-invocations queue (with the "
                          "error, which a dead-letter queue would not keep), whose alarm fires on the first message.")
            acknowledge_packs(function.function, "LambdaDLQ", reason)

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


@jsii.implements(lambda_.IDestination)
class _QueueDestination:
    """An SQS on-failure destination granting exactly what Lambda needs to send to an
    encrypted queue (CDK's ``SqsDestination`` grants the key's wildcard actions)."""

    def __init__(self, queue: sqs.IQueue, key: kms.IKey) -> None:
        self._queue, self._key = queue, key

    def bind(self, _scope: Construct, fn: lambda_.IFunction, *, type: lambda_.DestinationType | None = None,  # noqa: A002
             ) -> lambda_.DestinationConfig:
        self._queue.grant(fn, "sqs:SendMessage")
        self._key.grant(fn, "kms:GenerateDataKey", "kms:Decrypt")
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)
