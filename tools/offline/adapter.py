"""The only place that patches moto (5.2.5, pinned). Each patch closes one gap between
moto's Step Functions executor and AWS, says why, and has a canary in
tests/test_offline_adapter.py that fails if a moto upgrade changes what it relies on.

1. Lambda tasks run the repo's real handler in-process. moto's Docker-less Lambda echoes
   its payload; we run the handler code CDK staged in ``cdk.out`` instead.
2. ``arn:aws:states:::sagemaker:*`` tasks. moto lists SageMaker as an unsupported service
   integration (``.sync`` fails with ``States.Runtime``). We route them to moto's SageMaker
   API (so botocore validates every request against the service model) and, for training,
   tuning, processing and transform jobs, run the real work first (``tools/offline/jobs.py``).
   moto's generic ``.sync`` path also crashes without a task token, so ours describes once.
3. ``sagemaker:UpdateEndpoint`` is not implemented by moto; we add it to the backend, with
   SageMaker's rollback behaviour: a failed update leaves the old config serving.
4. ``$$.Execution.RedriveCount`` is missing from moto's context object; AWS sets 0 on the
   first run. Job names use it to stay unique across redrives.
5. Time: Wait states and Retry intervals are recorded instead of slept, so a run with a
   60-second endpoint poll or retry backoff finishes in seconds.
6. Service names: Step Functions calls Application Auto Scaling ``applicationautoscaling``
   in ``aws-sdk`` ARNs; moto's executor passes that to boto3, which knows it as
   ``application-autoscaling``. We add the mapping AWS applies.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import threading
import traceback
import types
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker import responses as sagemaker_responses
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker


@dataclass
class Hooks:
    """What the runner plugs in: handler code per function name, job runners, and faults."""

    handlers: dict[str, tuple[Path, dict[str, str]]] = field(default_factory=dict)  # name -> (code dir, env)
    jobs: dict[str, Callable[[dict], dict | None]] = field(default_factory=dict)  # api action -> runner
    faults: dict[str, list[str]] = field(default_factory=dict)  # api action -> queued faults
    waits: list[float] = field(default_factory=list)  # seconds the definition asked to wait
    calls: list[tuple[str, str]] = field(default_factory=list)  # (principal, "service:Action")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, action: str) -> str | None:
        with self.lock:
            queue = self.faults.get(action) or []
            return queue.pop(0) if queue else None


HOOKS = Hooks()


# --- 1. Lambda handlers in-process --------------------------------------------------
class _Context:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
        self.aws_request_id = "offline"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _load_handler(code_dir: Path) -> types.ModuleType:
    name = f"offline_handler_{code_dir.name}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, code_dir / "index.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_ENV_LOCK = threading.RLock()
_PRINCIPAL = threading.local()


@contextlib.contextmanager
def principal(name: str) -> Iterator[None]:
    """Attribute AWS calls made in this thread to ``name`` (a function, or the SageMaker job)."""
    previous = getattr(_PRINCIPAL, "name", None)
    _PRINCIPAL.name = name
    try:
        yield
    finally:
        _PRINCIPAL.name = previous


def current_principal() -> str | None:
    return getattr(_PRINCIPAL, "name", None)


def invoke_handler(function_name: str, event: Any) -> tuple[Any, str | None]:
    """Run a function's handler; returns (result, error type or None)."""
    code_dir, environment = HOOKS.handlers[function_name]
    module = _load_handler(code_dir)
    with _ENV_LOCK, principal(function_name):  # handlers read their environment per call
        saved = {key: os.environ.get(key) for key in environment}
        os.environ.update(environment)
        try:
            return module.handler(event, _Context(function_name)), None
        except Exception as error:  # noqa: BLE001 - Lambda reports any exception as a function error
            return {"errorType": type(error).__name__, "errorMessage": str(error),
                    "trace": traceback.format_exception_only(error)}, type(error).__name__
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _lambda_invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
    name = function_name.split(":function:")[-1].split(":")[0]
    if name not in HOOKS.handlers:
        return _ORIGINAL["lambda_invoke"](self, function_name, qualifier, body, headers, response_headers)
    result, error = invoke_handler(name, json.loads(body) if body else {})
    if error:
        response_headers["x-amz-function-error"] = "Unhandled"
    return json.dumps(result, default=str).encode()


# --- 2. SageMaker service integration -------------------------------------------------
def _plain(value: Any) -> Any:
    """describe_* output holds datetimes; Step Functions hands JSON to the next state."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


_SYNC_DESCRIBE = {
    "create_training_job": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "create_processing_job": ("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus"),
    "create_transform_job": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
    "create_hyper_parameter_tuning_job": ("describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName",
                                          "HyperParameterTuningJobStatus"),
}


class SageMakerTask(StateTaskServiceCallback):
    """``arn:aws:states:::sagemaker:<action>[.sync]`` through moto's SageMaker API."""

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync})

    def _validate_service_integration_is_supported(self) -> None:
        # Any SageMaker action moto implements runs; .sync only where we know how to wait.
        action = self._get_boto_service_action()
        if self.resource.condition == ResourceCondition.Sync and action not in _SYNC_DESCRIBE:
            raise ValueError(f"offline runs support .sync only for {sorted(_SYNC_DESCRIBE)}, not {action}")

    def _from_error(self, env, ex):  # noqa: ANN001
        if isinstance(ex, ClientError):  # AWS names these SageMaker.<error code>
            name = f"SageMaker.{ex.response['Error']['Code']}"
            return FailureEvent(env=env, error_name=CustomErrorName(name), event_type=HistoryEventType.TaskFailed,
                                event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                                    error=name, cause=ex.response["Error"]["Message"],
                                    resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type())))
        return super()._from_error(env=env, ex=ex)

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        action = self._get_boto_service_action()
        fault = HOOKS.fault(self.resource.api_action)
        if fault == "throttle":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (injected)"}}, action)
        client = boto_client_for(service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials)
        response = getattr(client, action)(**normalised_parameters)  # botocore validates the request here
        response.pop("ResponseMetadata", None)
        runner = HOOKS.jobs.get(self.resource.api_action)
        if runner is not None:
            with principal("sagemaker-job"):  # the job's own S3 reads and writes use the SageMaker role
                outcome = runner(normalised_parameters, fault=fault) or {}
            _record_job_outcome(action, normalised_parameters, outcome)
        env.stack.append(_plain(response))

    def _eval_integration_pattern(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        # moto's generic version dereferences a callback endpoint that only exists for
        # .waitForTaskToken ("'NoneType' object has no attribute 'interrupt_all'", the same
        # crash as glue:startJobRun.sync). Our jobs have finished by now: describe once.
        resolve = self._build_sync_resolver(env, resource_runtime_part, normalised_parameters, state_credentials)
        env.stack.append(resolve())

    def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        env.stack.pop()
        describe, name_key, status_key = _SYNC_DESCRIBE[self._get_boto_service_action()]
        client = boto_client_for(service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials)
        described = _plain(getattr(client, describe)(**{name_key: normalised_parameters[name_key]}))
        described.pop("ResponseMetadata", None)

        def resolve() -> dict:
            if described[status_key] in ("Failed", "Stopped"):
                raise FailureEventException(FailureEvent(
                    env=env, error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                        error=StatesErrorNameType.StatesTaskFailed.to_name(), cause=json.dumps(described),
                        resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type()))))
            return described

        return resolve


def _record_job_outcome(action: str, parameters: dict, outcome: dict) -> None:
    """Write what the job really did into moto's record of it (moto marks every job Completed)."""
    backend = sagemaker_models.sagemaker_backends["123456789012"]["eu-west-1"]
    if action == "create_training_job":
        job = backend.training_jobs[parameters["TrainingJobName"]]
        if outcome.get("failure"):
            job.training_job_status, job.failure_reason = "Failed", outcome["failure"]
        if outcome.get("hyperparameters"):
            job.hyper_parameters = outcome["hyperparameters"]
    elif action == "create_processing_job":
        job = backend.processing_jobs[parameters["ProcessingJobName"]]
        if outcome.get("failure"):
            job.processing_job_status, job.failure_reason = "Failed", outcome["failure"]
    elif action == "create_hyper_parameter_tuning_job":
        job = backend.hyper_parameter_tuning_jobs[parameters["HyperParameterTuningJobName"]]
        if outcome.get("failure"):
            job.hyper_parameter_tuning_job_status, job.failure_reason = "Failed", outcome["failure"]
        else:
            job.best_training_job = job.OverallBestTrainingJob = outcome["best"]
    elif action == "create_transform_job":
        job = backend.transform_jobs[parameters["TransformJobName"]]
        if outcome.get("failure"):
            job.transform_job_status, job.failure_reason = "Failed", outcome["failure"]


# --- 3. UpdateEndpoint ------------------------------------------------------------------
def _backend_update_endpoint(self, endpoint_name: str, endpoint_config_name: str, **_: Any) -> str:
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        raise sagemaker_models.ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
    if endpoint.endpoint_status != "InService":
        raise sagemaker_models.ValidationError(message=f"Cannot update in-progress endpoint '{endpoint_name}'.")
    config = self.describe_endpoint_config(endpoint_config_name)
    if HOOKS.fault("updateEndpoint") == "rollback":
        # Blue/green: the new fleet failed its baking period; SageMaker rolls back and
        # the endpoint stays InService on the previous config.
        endpoint.failure_reason = "Rolled back: alarm fired during the baking period (injected)"
    else:
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config["DataCaptureConfig"]
    return endpoint.arn


def _response_update_endpoint(self) -> str:
    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"), endpoint_config_name=self._get_param("EndpointConfigName"),
    )
    return json.dumps({"EndpointArn": arn})


# --- 4 and 5. Context object and time ----------------------------------------------------
def _evaluation_environment(self):  # noqa: ANN001
    env = _ORIGINAL["environment"](self)
    env.states.context_object.context_object_data["Execution"].setdefault("RedriveCount", 0)
    return env


def _wait_interval(self, env, wait_seconds):  # noqa: ANN001
    HOOKS.waits.append(wait_seconds)


_ORIGINAL: dict[str, Any] = {}
# aws-sdk integration service names that differ from boto3's (AWS docs, "Using AWS SDK service integrations")
SERVICE_NAMES = {"applicationautoscaling": "application-autoscaling"}


@contextlib.contextmanager
def patched(hooks: Hooks) -> Iterator[Hooks]:
    """Apply every patch for the duration of one offline session."""
    global HOOKS
    previous, HOOKS = HOOKS, hooks
    _ORIGINAL.update(
        lambda_invoke=LambdaSimpleBackend.invoke,
        environment=ExecutionWorker._get_evaluation_environment,
        wait=WaitFunction._wait_interval,
        retry_time=retrier_decl.time,
        factory=state_task_factory.state_task_service_for,
    )
    original_factory = _ORIGINAL["factory"]

    def factory(service_name: str):
        return SageMakerTask() if service_name == "sagemaker" else original_factory(service_name)

    _ORIGINAL["names"] = StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES = {**_ORIGINAL["names"], **SERVICE_NAMES}
    LambdaSimpleBackend.invoke = _lambda_invoke
    ExecutionWorker._get_evaluation_environment = _evaluation_environment
    WaitFunction._wait_interval = _wait_interval
    retrier_decl.time = types.SimpleNamespace(sleep=hooks.waits.append)
    state_task_factory.state_task_service_for = factory
    sagemaker_models.SageMakerModelBackend.update_endpoint = _backend_update_endpoint
    sagemaker_responses.SageMakerResponse.update_endpoint = _response_update_endpoint
    try:
        yield hooks
    finally:
        StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES = _ORIGINAL["names"]
        LambdaSimpleBackend.invoke = _ORIGINAL["lambda_invoke"]
        ExecutionWorker._get_evaluation_environment = _ORIGINAL["environment"]
        WaitFunction._wait_interval = _ORIGINAL["wait"]
        retrier_decl.time = _ORIGINAL["retry_time"]
        state_task_factory.state_task_service_for = original_factory
        del sagemaker_models.SageMakerModelBackend.update_endpoint
        del sagemaker_responses.SageMakerResponse.update_endpoint
        HOOKS = previous
