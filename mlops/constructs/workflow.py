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
from mlops.nag import acknowledge, acknowledge_inline_policy

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


def experiment_config(kind: str) -> dict[str, str]:
    """The run's SageMaker Experiments trial, one trial component per job kind."""
    return {"ExperimentName.$": "$.run.names.experiment", "TrialName.$": "$.run.names.run", "TrialComponentDisplayName": kind}


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
    """The state names of one workflow's failure ending (unique within the state machine)."""

    describe: str
    notify: str
    failed: str
    undescribed: str


def failure_ending(scope: Construct, *, names: FailureNames, resources: StageResources, state_machine_name: str,
                   subject: str) -> sfn.IChainable:
    """Describe the failure (the ``describe_failure`` handler: the error, the failing state read
    from the execution's history, one line of cause; the detail as JSON), notify the operations
    topic with it, then end the execution failed: with the workflow's own error names
    (``InvalidExecutionInput``, ``DeploymentRolledBack`` …; a nested run's own name) as they
    are, Step Functions' reserved ``States.*`` names as ``StepFailed``, the original name kept at
    the front of the cause. Should describing fail, the raw error and cause are notified and the
    execution fails ``StepFailed`` with them: a failure is never lost for want of words."""
    failed = sfn.Fail(scope, names.failed, error_path="$.failure.error", cause_path="$.failure.summary")
    notice = notify(scope, names.notify, topic=resources.topic, subject=subject, message="Execution {} FAILED: {}",
                    paths=["$.failure.notice"])
    describe = tasks.LambdaInvoke(
        scope, names.describe, task_timeout=API_TIMEOUT,
        lambda_function=resources.failure_describer(scope, state_machine_name).function,
        payload=sfn.TaskInput.from_object({"error": sfn.JsonPath.object_at("$.error"),
                                           "execution_arn": sfn.JsonPath.execution_id}),
        result_selector={"error.$": "$.Payload.error", "summary.$": "$.Payload.summary", "notice.$": "$.Payload.notice",
                         "detail.$": "$.Payload.detail"},
        result_path="$.failure", comment="Which error, in which state, and why: one line, and the detail as JSON")
    raw = "States.Format('{}: {}', $.error.Error, $.error.Cause)"
    undescribed = sfn.Pass(scope, names.undescribed, parameters={"error": "StepFailed", "summary.$": raw, "notice.$": raw},
                           result_path="$.failure")
    describe.add_catch(undescribed, errors=["States.ALL"], result_path="$.describe_error")
    undescribed.next(notice)
    return describe.next(notice).next(failed)


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
    describer = resources.functions.get("describe_failure")
    if describer is not None:  # the failure ending invokes it
        stack = cdk.Stack.of(scope)
        logical_id = stack.get_logical_id(describer.function.node.default_child)  # type: ignore[arg-type]
        acknowledge(machine.role, "AwsSolutions-IAM5", f"{name}: CDK's LambdaInvoke grant covers the versions and "
                    "aliases of the DescribeFailure function.", applies_to=f"Resource::<{logical_id}.Arn>:*")
    return machine
