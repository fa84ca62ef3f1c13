"""Step Functions building blocks the stage's three workflows share: timeouts, retry
policies, SageMaker ``.sync`` job states, the notify-and-fail ending, and the Standard
state machine every workflow runs as."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.constructs.resources import StageResources
from mlops.nag import acknowledge_inline_policy

JOBS_DIR = Path(__file__).resolve().parent.parent.parent / "jobs"  # job scripts run inside SageMaker and Glue
# Bounds every API-call task (Lambda handlers run in seconds; a hung call must not hold the run).
API_TIMEOUT = sfn.Timeout.duration(cdk.Duration.minutes(5))
# Throttling, internal errors and account limits (e.g. no spot capacity yet) are worth retrying.
SAGEMAKER_TRANSIENT = ["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException",
                       "SageMaker.ResourceLimitExceeded"]
# What a SageMaker API call (not a job) may retry: internal errors and throttling.
SAGEMAKER_API_ERRORS = ["SageMaker.SageMakerException", "SageMaker.ThrottlingException"]


def with_suffix(name_path: str) -> str:
    """A job name unique across retries and redrives (SageMaker rejects reused names)."""
    return f"States.Format('{{}}-{{}}-{{}}', {name_path}, $$.Execution.RedriveCount, $$.State.RetryCount)"


def random_job_name(prefix: str) -> str:
    """``<prefix>-<8 hex>-<retry>``: a job name for workflows whose executions have no run id."""
    return (f"States.Format('{prefix}-{{}}-{{}}', "
            "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0), $$.State.RetryCount)")


def catch_all(state: sfn.TaskStateBase | sfn.CustomState, handler: sfn.IChainable) -> sfn.TaskStateBase | sfn.CustomState:
    """Any error of ``state`` (in ``$.error``) goes to ``handler``, the workflow's failure ending."""
    state.add_catch(handler, errors=["States.ALL"], result_path="$.error")
    return state


# Errors worth waiting out when a Glue or DataBrew job (or crawler) is started: another run of the
# same job still going (a concurrent data run), throttling, the service's own hiccups. The names are
# the services' error codes (botocore's models of StartJobRun / StartCrawler) behind the service
# name, as Step Functions reports them. Anything else fails the run at once.
GLUE_TRANSIENT = ["Glue.ConcurrentRunsExceededException", "Glue.ThrottlingException", "Glue.InternalServiceException",
                  "Glue.OperationTimeoutException"]
DATABREW_TRANSIENT = ["DataBrew.ConflictException", "DataBrew.ServiceQuotaExceededException",
                      "DataBrew.ThrottlingException"]


def retry_transient(state: sfn.TaskStateBase | sfn.CustomState, errors: list[str]) -> sfn.TaskStateBase | sfn.CustomState:
    """Retry ``errors`` with backoff: 1, 2, 4 and 8 minutes (a concurrent run of the same job
    has time to finish)."""
    state.add_retry(errors=errors, interval=cdk.Duration.minutes(1), backoff_rate=2, max_attempts=4)
    return state


def retry_api(state: sfn.TaskStateBase) -> sfn.TaskStateBase:
    """A SageMaker API call: retry internal errors and throttling, three attempts."""
    state.add_retry(errors=SAGEMAKER_API_ERRORS, interval=cdk.Duration.seconds(5), backoff_rate=2, max_attempts=3)
    return state


def sagemaker_job(scope: Construct, name: str, action: str, parameters: dict, *, result_selector: dict, result_path: str,
                  comment: str, on_failure: sfn.IChainable, tags: list[dict[str, str]],
                  timeout_seconds: int = 3600) -> sfn.CustomState:
    """A SageMaker ``.sync`` job (CDK's task classes lack spot, checkpoints, experiments and
    processing jobs, and generate no IAM for the last: the caller grants), retried on transient
    API errors, any failure to ``on_failure``, created with ``tags`` (the caller may
    ``sagemaker:AddTags`` on the job). The state's timeout is the job's own stopping
    condition plus time to start, upload and report."""
    state = sfn.CustomState(scope, name, state_json={
        "Type": "Task",
        "Comment": comment,
        "Resource": f"arn:{cdk.Aws.PARTITION}:states:::sagemaker:{action}.sync",
        "Parameters": {**parameters, "Tags": tags},
        "ResultSelector": result_selector,
        "ResultPath": result_path,
        "TimeoutSeconds": timeout_seconds + 900,
    })
    state.add_retry(errors=SAGEMAKER_TRANSIENT, interval=cdk.Duration.seconds(15), backoff_rate=2, max_attempts=4)
    catch_all(state, on_failure)
    return state


@dataclass(frozen=True)
class FailureNames:
    """The state names of one workflow's failure ending (what the console shows)."""

    notify: str
    choice: str
    step_failed: str
    failed: str


def failure_ending(scope: Construct, *, names: FailureNames, topic: sns.ITopic, subject: str, message: str,
                   message_paths: list[str], first: list[tuple[sfn.Condition, sfn.IChainable]] | None = None) -> sfn.IChainable:
    """Notify the operations topic, then end the execution failed: with the workflow's own
    error names (``InvalidExecutionInput``, ``DeploymentRolledBack`` …) as they are, and Step
    Functions' reserved ``States.*`` names (a failed job is ``States.TaskFailed``) as
    ``StepFailed``, the original name kept at the front of the cause. ``first``: branches
    tested before those two."""
    failed = sfn.Fail(scope, names.failed, error_path="$.error.Error", cause_path="$.error.Cause")
    step_failed = sfn.Fail(scope, names.step_failed, error="StepFailed",
                           cause_path="States.Format('{}: {}', $.error.Error, $.error.Cause)")
    choice = sfn.Choice(scope, names.choice)
    for condition, state in first or []:
        choice.when(condition, state)
    choice.when(sfn.Condition.string_matches("$.error.Error", "States.*"), step_failed).otherwise(failed)
    return notify(scope, names.notify, topic=topic, subject=subject, message=message, paths=message_paths).next(choice)


def notify(scope: Construct, name: str, *, topic: sns.ITopic, subject: str, message: str, paths: list[str]) -> tasks.SnsPublish:
    """Publish ``message`` (``{}`` placeholders: the execution id, then ``paths``) to the topic."""
    return tasks.SnsPublish(
        scope, name,
        task_timeout=API_TIMEOUT,
        topic=topic,
        subject=subject[:100],
        message=sfn.TaskInput.from_text(sfn.JsonPath.format(
            message, sfn.JsonPath.execution_id, *(sfn.JsonPath.string_at(path) for path in paths))),
        result_path=sfn.JsonPath.DISCARD,
    )


def standard_state_machine(scope: Construct, *, name: str, comment: str, definition: sfn.IChainable,
                           timeout: cdk.Duration, resources: StageResources) -> sfn.StateMachine:
    """A Standard, JSONPath state machine with X-Ray tracing and every execution's data
    logged (level ALL) to a KMS-encrypted log group with the stage's retention."""
    machine = sfn.StateMachine(
        scope, "StateMachine",
        state_machine_name=name,
        comment=comment,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        state_machine_type=sfn.StateMachineType.STANDARD,
        query_language=sfn.QueryLanguage.JSON_PATH,
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=logs.LogGroup(scope, "ExecutionLogs", encryption_key=resources.data_key,
                                      retention=resources.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY),
            level=sfn.LogLevel.ALL,
            include_execution_data=True,
        ),
    )
    acknowledge_inline_policy(machine.role, f"The {name} state machine's role")
    return machine
