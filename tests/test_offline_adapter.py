"""Canaries for tools/offline/adapter.py: each patch exists because moto 5.2.5 behaves a
certain way. If an upgrade changes that behaviour, the matching canary fails, telling us
to drop or rework the patch instead of silently testing against a fiction."""

from __future__ import annotations

import inspect
import json
import re
import time

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.sagemaker.models import SageMakerModelBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from tools.offline import adapter

CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
ROLE = "arn:aws:iam::123456789012:role/any"


def _execute(definition: dict, hooks: adapter.Hooks | None = None) -> dict:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name=f"canary{time.monotonic_ns()}", definition=json.dumps(definition),
                                   roleArn=ROLE)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="canary", input="{}")["executionArn"]
    for _ in range(200):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise TimeoutError


@pytest.fixture
def moto(aws_credentials):
    with mock_aws(config=CONFIG):
        yield


def test_patch1_moto_lambda_echoes_its_payload(moto) -> None:
    """Why handlers run in-process: moto's Docker-less Lambda returns the payload unchanged."""
    assert list(inspect.signature(LambdaSimpleBackend.invoke).parameters) == [
        "self", "function_name", "qualifier", "body", "headers", "response_headers"]
    boto3.client("iam").create_role(RoleName="any", AssumeRolePolicyDocument="{}")
    client = boto3.client("lambda")
    client.create_function(FunctionName="echo", Runtime="python3.13", Handler="index.handler", Role=ROLE,
                           Code={"ZipFile": b"x"})
    assert json.loads(client.invoke(FunctionName="echo", Payload=b'{"a": 1}')["Payload"].read()) == {"a": 1}


def test_patch2_moto_rejects_sagemaker_service_integrations(moto) -> None:
    assert {"sagemaker", "databrew"} <= state_task_service_factory._UNSUPPORTED_SERVICE_NAMES
    assert state_task_factory.state_task_service_for is state_task_service_factory.state_task_service_for
    described = _execute({"StartAt": "T", "States": {"T": {
        "Type": "Task", "End": True, "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {"TrainingJobName": "x"}}}})
    assert described["status"] == "FAILED" and described.get("error") == "States.Runtime"
    # and the generic .sync path dereferences a callback endpoint that is None without a task token
    assert "callback_endpoint.interrupt_all()" in inspect.getsource(StateTaskServiceCallback._eval_integration_pattern)


def test_patch3_moto_has_no_update_endpoint() -> None:
    assert not hasattr(SageMakerModelBackend, "update_endpoint")


def test_patch3_moto_alarms_keep_their_state_whatever_the_metrics(moto) -> None:
    """Why the traffic-shifting emulation reads alarm states a scenario sets (OfflineStage.set_alarm):
    moto stores alarms but never evaluates them against the metric data it is sent."""
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    cloudwatch.put_metric_alarm(AlarmName="canary-5xx", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                ComparisonOperator="GreaterThanOrEqualToThreshold")
    cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "Invocation5XXErrors", "Value": 50}])
    assert cloudwatch.describe_alarms(AlarmNames=["canary-5xx"])["MetricAlarms"][0]["StateValue"] == "OK"


def test_patch4_moto_context_lacks_redrive_count_and_start_time_is_no_string(moto) -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True,
                                                   "Parameters": {"n.$": "$$.Execution.RedriveCount"}}}}
    assert _execute(definition)["status"] == "FAILED"
    started = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True, "Parameters": {
        "since.$": "States.Format('since {}', $$.Execution.StartTime)"}}}}
    assert _execute(started)["status"] == "FAILED"  # "Object of type datetime is not JSON serializable"
    with adapter.patched(adapter.Hooks()):
        assert json.loads(_execute(definition)["output"]) == {"n": 0}
        assert re.fullmatch(r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                            json.loads(_execute(started)["output"])["since"])


def test_patch5_moto_really_sleeps(moto) -> None:
    assert "env.program_state_event.wait(wait_seconds)" in inspect.getsource(WaitFunction._wait_interval)
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl.RetrierDecl._eval_body)
    hooks = adapter.Hooks()
    with adapter.patched(hooks):
        started = time.monotonic()
        described = _execute({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    assert described["status"] == "SUCCEEDED" and time.monotonic() - started < 10 and hooks.waits == [3600]


def test_patch6_moto_does_not_map_applicationautoscaling() -> None:
    assert "applicationautoscaling" not in StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    import botocore.session

    assert "applicationautoscaling" not in botocore.session.get_session().get_available_services()


def test_patch6_moto_names_glue_errors_in_lowercase() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_aws_sdk

    assert "glue" not in state_task_service_aws_sdk._SERVICE_ERROR_NAMES  # AWS: Glue.CrawlerRunningException
    with adapter.patched(adapter.Hooks()):
        assert state_task_service_aws_sdk.StateTaskServiceAwsSdk._normalise_service_error_name("glue") == "Glue"


def test_patch7_moto_runs_no_databrew_jobs(moto) -> None:
    from moto.databrew.models import DataBrewBackend

    assert not hasattr(DataBrewBackend, "start_job_run")
    with pytest.raises(Exception, match="not yet been implemented|Not Found|404|NotImplemented"):
        boto3.client("databrew").start_job_run(Name="any")
    boto3.client("iam").create_role(RoleName="any", AssumeRolePolicyDocument="{}")
    brew = boto3.client("databrew")
    brew.create_dataset(Name="d", Input={"S3InputDefinition": {"Bucket": "bucket", "Key": "k/"}})
    brew.create_profile_job(Name="p", DatasetName="d", RoleArn=ROLE, OutputLocation={"Bucket": "bucket"})
    with adapter.patched(adapter.Hooks()):
        run_id = brew.start_job_run(Name="p")["RunId"]
        assert [run["RunId"] for run in brew.list_job_runs(Name="p")["JobRuns"]] == [run_id]


def test_patch8_moto_sends_states_parameters_in_pascal_case(moto) -> None:
    sfn = boto3.client("stepfunctions")
    child = sfn.create_state_machine(name="child", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}))["stateMachineArn"]
    definition = {"StartAt": "T", "States": {"T": {
        "Type": "Task", "End": True, "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": child, "Input": {"a": 1}}}}}
    assert _execute(definition)["status"] == "FAILED"  # botocore rejects "StateMachineArn" (it wants stateMachineArn)
    with adapter.patched(adapter.Hooks()):
        described = _execute(definition)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["Output"] == {"ok": True}


def test_patch9_moto_has_no_monitoring_schedules(moto) -> None:
    from moto.sagemaker.responses import SageMakerResponse

    assert not hasattr(SageMakerResponse, "create_monitoring_schedule")
    assert hasattr(SageMakerResponse, "create_data_quality_job_definition")  # what the schedules refer to
    with pytest.raises(NotImplementedError, match="describe_monitoring_schedule"):
        boto3.client("sagemaker").describe_monitoring_schedule(MonitoringScheduleName="x")


def _package_with_lineage() -> str:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    return sagemaker.create_model_package(
        ModelPackageGroupName="g", ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"train_data": "s3://b/train/"},
        InferenceSpecification={"Containers": [{"Image": "i", "ModelDataUrl": "s3://b/m.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    )["ModelPackageArn"]


def test_patch11_moto_erases_lineage_and_decisions_on_update(moto) -> None:
    sagemaker = boto3.client("sagemaker")
    package = _package_with_lineage()
    sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
    assert "CustomerMetadataProperties" not in sagemaker.describe_model_package(ModelPackageName=package)
    sagemaker.update_model_package(ModelPackageArn=package, CustomerMetadataProperties={"serving": "batch"})
    assert "ModelApprovalStatus" not in sagemaker.describe_model_package(ModelPackageName=package)
    with adapter.patched(adapter.Hooks()):
        sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved",
                                       CustomerMetadataProperties={"train_data": "s3://b/train/"})
        sagemaker.update_model_package(ModelPackageArn=package, CustomerMetadataProperties={"serving": "batch"})
        kept = sagemaker.describe_model_package(ModelPackageName=package)
        sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Rejected",
                                       CustomerMetadataProperties={"reviewer": "ana"})
        described = sagemaker.describe_model_package(ModelPackageName=package)
    assert kept["ModelApprovalStatus"] == "Approved"
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["CustomerMetadataProperties"] == {"train_data": "s3://b/train/", "serving": "batch", "reviewer": "ana"}


def test_patch12_moto_glue_job_runs_carry_no_error_message(moto) -> None:
    from moto.glue import models as glue_models

    glue = boto3.client("glue")
    glue.create_job(Name="split", Role="arn:aws:iam::123456789012:role/r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/s.py"})
    run_id = glue.start_job_run(JobName="split")["JobRunId"]
    run = next(r for r in glue_models.glue_backends["123456789012"]["eu-west-1"].jobs["split"].job_runs if r.job_run_id == run_id)
    run.status, run.error_message = "FAILED", "AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://raw/x"
    assert "ErrorMessage" not in glue.get_job_run(JobName="split", RunId=run_id)["JobRun"]
    with adapter.patched(adapter.Hooks()):
        described = glue.get_job_run(JobName="split", RunId=run_id)["JobRun"]
    assert described["ErrorMessage"] == run.error_message and described["JobRunState"] == "FAILED"
    assert "ErrorMessage" not in glue.get_job_run(JobName="split", RunId=run_id)["JobRun"]  # undone


def test_patch13_moto_parses_every_execution_and_a_kept_tree_builds_a_fresh_program(moto) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend import execution_worker

    assert "AmazonStateLanguageParser.parse(" in inspect.getsource(execution_worker.ExecutionWorker)
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
    text = json.dumps(definition)
    original = AmazonStateLanguageParser.parse
    with adapter.patched(adapter.Hooks()):
        first_program, tree = AmazonStateLanguageParser.parse(text)
        again, same_tree = AmazonStateLanguageParser.parse(text)
        assert same_tree is tree and again is not first_program  # the tree kept, the program built anew
        assert type(again) is type(first_program)
        for _ in range(2):  # and executions still run from it, each its own
            described = _execute(definition)
            assert described["status"] == "SUCCEEDED" and json.loads(described["output"]) == {"ok": True}
        with pytest.raises(Exception, match="ASLParserException"):  # a broken definition is not kept
            AmazonStateLanguageParser.parse('{"StartAt": ')
    assert AmazonStateLanguageParser.parse == original


def test_threads_inherit_the_principal() -> None:
    """moto starts a thread per execution program and per state with a timeout."""
    import threading

    from moto.stepfunctions.parser.asl.component.program import program
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state

    assert "threading.Thread(" in inspect.getsource(program) and "Thread(target=_exec_and_notify" in inspect.getsource(
        execute_state)
    seen = []
    with adapter.patched(adapter.Hooks()), adapter.principal("someone"):
        thread = execute_state.Thread(target=lambda: seen.append(adapter.current_principal()))
        thread.start()
        thread.join()
    assert seen == ["someone"] and execute_state.Thread is threading.Thread


def test_patches_are_undone_afterwards() -> None:
    before = (LambdaSimpleBackend.invoke, WaitFunction._wait_interval, state_task_factory.state_task_service_for)
    with adapter.patched(adapter.Hooks()):
        assert hasattr(SageMakerModelBackend, "update_endpoint")
    assert (LambdaSimpleBackend.invoke, WaitFunction._wait_interval, state_task_factory.state_task_service_for) == before
    assert not hasattr(SageMakerModelBackend, "update_endpoint")
    assert not hasattr(SageMakerModelBackend, "offline_schedules")
    from moto.databrew import urls
    from moto.databrew.models import DataBrewBackend

    assert not hasattr(DataBrewBackend, "start_job_run") and not any("startJobRun" in p for p in urls.url_paths)


def test_a_failed_processing_script_reports_its_last_lines() -> None:
    """FailureReason of a processing script that exited non-zero: AlgorithmError, the exit code
    and the end of its stderr (the traceback's last lines: where, and the exception)."""
    from tools.offline.jobs import script_failure

    stderr = "\n".join(["Traceback (most recent call last):", '  File "drift.py", line 3, in <module>',
                        "    main()", '  File "drift.py", line 9, in main', "    raise ValueError(msg)",
                        "ValueError: baseline has no column 'age'", ""])
    assert script_failure(2, stderr) == ("AlgorithmError: exit code 2: " + "\n".join(stderr.splitlines()[1:6]))
    assert script_failure(137, "") == "AlgorithmError: exit code 137"


def test_threads_walk_the_environment_while_a_handler_changes_it() -> None:
    """A handler's environment is set and then removed under ``environ.LOCK`` while other
    threads create boto3 clients, whose proxy lookup walks ``os.environ``: under
    ``environ.guarded()`` the walk never meets a key removed halfway (unguarded, about one
    lookup in 200 raised KeyError here)."""
    import os
    import threading
    import urllib.request

    from tools.offline import environ

    stop = threading.Event()

    def handler_calls() -> None:  # as adapter.invoke_handler sets and restores a function's environment
        while not stop.is_set():
            with environ.LOCK:
                os.environ.update({f"OFFLINE_CANARY_{k}": "x" for k in range(20)})
                for k in range(20):
                    os.environ.pop(f"OFFLINE_CANARY_{k}", None)

    churn = threading.Thread(target=handler_calls)
    errors = 0
    with environ.guarded():
        churn.start()
        try:
            for _ in range(5000):
                try:
                    urllib.request.getproxies()
                except KeyError:
                    errors += 1
        finally:
            stop.set()
            churn.join()
        assert errors == 0 and "OFFLINE_CANARY_0" not in environ.snapshot()
    assert urllib.request.getproxies is urllib.request.getproxies_environment  # undone
