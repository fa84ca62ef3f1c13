"""The only place that patches moto (5.2.5, pinned). Each patch closes one gap between
moto's Step Functions executor and AWS, says why, and has a canary in
tests/test_offline_adapter.py that fails if a moto upgrade changes what it relies on.

1. Lambda tasks run the repo's real handler in-process. moto's Docker-less Lambda echoes
   its payload; we run the handler code CDK staged in ``cdk.out`` instead.
2. ``arn:aws:states:::sagemaker:*``, ``glue:startJobRun.sync`` and ``databrew:startJobRun.sync``
   tasks. moto lists SageMaker and DataBrew as unsupported service integrations and its
   ``.sync`` path crashes without a task token ("'NoneType' object has no attribute
   'interrupt_all'"). We route them to moto's API (so botocore validates every request
   against the service model), run the real work (``tools/offline/jobs.py``: XGBoost,
   processing scripts, the Glue ETL script on local Spark, the DataBrew emulator) under the
   job's own role, record the outcome in moto, and describe once.
3. ``sagemaker:UpdateEndpoint`` is not implemented by moto; we add it to the backend, with
   SageMaker's rollback behaviour: a failed update leaves the old config serving. A blue/green
   update replays its ``TrafficRoutingConfiguration`` (all at once, canary, linear;
   ``mlops/rollout.py``): each step is recorded in ``Hooks.traffic_steps`` with the share of
   the variant's instances on the new fleet and its baking time (recorded, not slept; the last
   step bakes ``TerminationWaitInSeconds``), and the auto-rollback alarms' states are read from
   moto's CloudWatch during every bake: one in ALARM rolls the update back.
4. Context object: ``$$.Execution.RedriveCount`` is missing from moto's; AWS sets 0 on the
   first run (job names use it to stay unique across redrives). ``$$.Execution.StartTime`` is a
   Python datetime in moto's, which ``States.Format`` cannot serialise; AWS gives an ISO 8601
   string such as "2019-03-26T20:14:13.192Z" ("Accessing execution data from the Context
   object", Step Functions Developer Guide). Ours sets both as AWS does.
5. Time: Wait states and Retry intervals are recorded instead of slept, so a run with a
   60-second endpoint poll or retry backoff finishes in seconds.
6. Service names: Step Functions calls Application Auto Scaling ``applicationautoscaling``
   in ``aws-sdk`` ARNs; moto's executor passes that to boto3, which knows it as
   ``application-autoscaling``. We add the mapping AWS applies.
7. DataBrew ``StartJobRun``/``ListJobRuns`` are not implemented by moto (it stores jobs,
   datasets, recipes and rulesets only); we add them to its backend, runs keyed by job.
8. Nested executions (``states:startExecution.sync:2``): moto sends ASL's PascalCase
   parameters to boto3 unchanged and its ``.sync`` path crashes as in 2; ours translates
   and polls the child execution until it ends. Each execution's own calls are
   attributed to its state machine (``states:<name>``).
9. Monitoring schedules (``Create/Describe/Update/DeleteMonitoringSchedule``) are not
   implemented by moto (it stores data- and model-quality job definitions only); we add
   them, and like SageMaker refuse a schedule whose job definition does not exist.
10. Serving: moto's endpoints serve nothing (``InvokeEndpoint`` answers canned data). Ours
   load each variant's model when the endpoint is created or updated and answer with it;
   data capture and async inference write where SageMaker would.
11. ``UpdateModelPackage``: moto replaces the version's ``CustomerMetadataProperties`` with the
   request's (none, for an approval), so a reviewer's decision erased the run's lineage; SageMaker
   adds the request's properties to the existing ones ("CustomerMetadataProperties", UpdateModelPackage).
   moto also erases the approval status when a request carries none (ModelApprovalStatus is
   optional). Ours keeps both and merges the request's properties in.
12. Glue ``GetJobRun``: moto's ``JobRun`` has no ``ErrorMessage``, so a failed ETL run said
   nothing about why; Glue reports "an error message associated with this job run" (the
   ``JobRun`` structure, AWS Glue API). Ours adds the script's exception as Glue would.
13. Speed only: moto parses a definition with ANTLR when the state machine is created and again
   at every execution (and every nested one): about half a second for the training pipeline.
   Ours keeps each definition's parse tree and builds a fresh program from it each time (moto's
   own ``Preprocessor``), so nothing of one execution is shared with another.

Patches 3 and 10 and Application Auto Scaling's permission validation also apply the service
rules of ``tools/offline/service_rules.py``: what AWS checks, or does as the model's execution
role, beyond the request's shape and the caller's policy.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import types
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.databrew import models as databrew_models
from moto.databrew import responses as databrew_responses
from moto.databrew import urls as databrew_urls
from moto.glue import models as glue_models
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
from moto.stepfunctions.parser.asl.component.program import program
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_aws_sdk as aws_sdk
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from moto.applicationautoscaling import exceptions as autoscaling_exceptions
from moto.applicationautoscaling import models as autoscaling_models
from moto.sagemakerruntime import responses as runtime_responses

from mlops import rollout
from tools.offline import environ, service_rules
from tools.offline.iam import Call, PolicyModel


@dataclass
class Hooks:
    """What the runner plugs in: handler code per function name, job runners, faults, and the
    stage's synthesized policies (so service rules can check a caller the way AWS does)."""

    handlers: dict[str, tuple[Path, dict[str, str]]] = field(default_factory=dict)  # name -> (code dir, env)
    jobs: dict[str, Callable[[dict], dict | None]] = field(default_factory=dict)  # api action -> runner
    faults: dict[str, list[str]] = field(default_factory=dict)  # api action -> queued faults
    job_roles: dict[tuple[str, str], str] = field(default_factory=dict)  # (service, job name) -> role name
    waits: list[float] = field(default_factory=list)  # seconds the definition asked to wait
    traffic_steps: list[dict[str, Any]] = field(default_factory=list)  # blue/green steps taken (patch 3)
    # called during each step's bake (a scenario's way to have an alarm fire mid-rollout)
    during_traffic_step: Callable[[dict[str, Any]], None] | None = None
    calls: list[Call] = field(default_factory=list)  # every authorization every call needed
    denied: list[Call] = field(default_factory=list)  # what an enforcing principal was refused
    creations: list[tuple[str, str, set[str]]] = field(default_factory=list)  # (principal, service:Create…, tag keys)
    policies: PolicyModel = field(default_factory=PolicyModel)
    role_of: dict[str, str] = field(default_factory=dict)  # function / state machine principal -> role name
    keys: dict[str, str] = field(default_factory=dict)  # bucket or topic ARN -> its KMS key ARN
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, action: str, job: str = "") -> str | None:
        """The next fault queued for ``action``; ``<action>:<part of a job name>`` queues faults
        for the jobs whose names hold that part only (one candidate of several in parallel)."""
        with self.lock:
            keys = [key for key in self.faults if key.startswith(f"{action}:") and job and key[len(action) + 1:] in job]
            for key in [*keys, action]:
                queue = self.faults.get(key) or []
                if queue:
                    return queue.pop(0)
            return None

    def allows(self, call: Call) -> bool:
        """Would AWS let ``call.principal`` do this, by its synthesized policies? (The runner
        stands for the person at the console and AWS's own services: never refused.)"""
        if call.principal in ("runner", "sagemaker-service"):
            return True
        if call.principal.startswith("service:"):
            return self.policies.service_allows(call.principal.removeprefix("service:"), call.action,
                                                 call.resource or "*", call.context)
        role = self.role_of.get(call.principal, call.principal)
        return self.policies.role_allows(role, call.action, call.resource, call.context)


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


_PRINCIPAL = threading.local()


class _InheritingThread(threading.Thread):
    """moto runs each execution's program, each state with a timeout and each branch of a
    Parallel state in threads of its own: they inherit the calling thread's principal so calls
    stay attributed to the execution's state machine."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._principal = getattr(_PRINCIPAL, "name", None)

    def run(self) -> None:
        _PRINCIPAL.name, _PRINCIPAL.enforce = self._principal, False
        super().run()


@contextlib.contextmanager
def principal(name: str, *, enforce: bool = False) -> Iterator[None]:
    """Attribute AWS calls made in this thread to ``name`` (a function, or the SageMaker job).
    With ``enforce``, a call its policies do not allow is refused with AccessDenied, as AWS
    would, instead of only being reported afterwards (used where a service acts on our
    behalf and a refusal changes what happens: data capture, async results)."""
    previous = getattr(_PRINCIPAL, "name", None), getattr(_PRINCIPAL, "enforce", False)
    _PRINCIPAL.name, _PRINCIPAL.enforce = name, enforce
    try:
        yield
    finally:
        _PRINCIPAL.name, _PRINCIPAL.enforce = previous


def current_principal() -> str | None:
    return getattr(_PRINCIPAL, "name", None)


def enforcing() -> bool:
    return getattr(_PRINCIPAL, "enforce", False)


def invoke_handler(function_name: str, event: Any) -> tuple[Any, str | None]:
    """Run a function's handler; returns (result, error type or None)."""
    code_dir, environment = HOOKS.handlers[function_name]
    module = _load_handler(code_dir)
    with environ.LOCK, principal(function_name):  # handlers read their environment per call (environ.py)
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


# --- 2. SageMaker, Glue and DataBrew job integrations ------------------------------------
def _plain(value: Any) -> Any:
    """describe_* output holds datetimes; Step Functions hands JSON to the next state."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


# (service, boto3 action) -> (describe action, (request, response) -> its arguments,
#                             (described, response) -> the job, status key, failed states)
_SYNC_DESCRIBE: dict[tuple[str, str], tuple[str, Callable[[dict, dict], dict], Callable[[dict, dict], dict] | None,
                                            str, tuple[str, ...]]] = {
    **{("sagemaker", f"create_{kind}_job"): (f"describe_{kind}_job", (lambda key: lambda p, r: {key: p[key]})(name),
                                             None, status, ("Failed", "Stopped"))
       for kind, name, status in (
           ("training", "TrainingJobName", "TrainingJobStatus"),
           ("processing", "ProcessingJobName", "ProcessingJobStatus"),
           ("transform", "TransformJobName", "TransformJobStatus"),
           ("hyper_parameter_tuning", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus"))},
    ("glue", "start_job_run"): ("get_job_run", lambda p, r: {"JobName": p["JobName"], "RunId": r["JobRunId"]},
                                lambda d, r: d["JobRun"], "JobRunState", ("FAILED", "STOPPED", "TIMEOUT", "ERROR")),
    # Step Functions polls DataBrew with ListJobRuns (its IAM policy grants no DescribeJobRun)
    ("databrew", "start_job_run"): ("list_job_runs", lambda p, r: {"Name": p["Name"]},
                                    lambda d, r: next(run for run in d["JobRuns"] if run["RunId"] == r["RunId"]),
                                    "State", ("FAILED", "STOPPED", "TIMEOUT")),
}
ERROR_PREFIXES = {"sagemaker": "SageMaker", "glue": "Glue", "databrew": "DataBrew"}


class JobTask(StateTaskServiceCallback):
    """``arn:aws:states:::<service>:<action>[.sync]`` through moto's API, with the real job run."""

    def __init__(self, service: str) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync})
        self.service = service

    def _validate_service_integration_is_supported(self) -> None:
        # Any action moto implements runs; .sync only where we know how to wait.
        action = self._get_boto_service_action()
        if self.resource.condition == ResourceCondition.Sync and (self.service, action) not in _SYNC_DESCRIBE:
            raise ValueError(f"offline runs support .sync only for {sorted(_SYNC_DESCRIBE)}, not {self.service}:{action}")

    def _from_error(self, env, ex):  # noqa: ANN001
        if isinstance(ex, ClientError):  # AWS names these <Service>.<error code>
            name = f"{ERROR_PREFIXES[self.service]}.{ex.response['Error']['Code']}"
            return FailureEvent(env=env, error_name=CustomErrorName(name), event_type=HistoryEventType.TaskFailed,
                                event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                                    error=name, cause=ex.response["Error"]["Message"],
                                    resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type())))
        return super()._from_error(env=env, ex=ex)

    def _job_key(self) -> str:
        action = self.resource.api_action
        return action if self.service == "sagemaker" else f"{self.service}:{action}"

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        action = self._get_boto_service_action()
        fault = HOOKS.fault(self._job_key(), next((str(value) for key, value in normalised_parameters.items()
                                                   if key.endswith("JobName")), ""))
        if fault == "throttle":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (injected)"}}, action)
        client = boto_client_for(service=self.service, region=resource_runtime_part.region, state_credentials=state_credentials)
        response = getattr(client, action)(**normalised_parameters)  # botocore validates the request here
        response.pop("ResponseMetadata", None)
        runner = HOOKS.jobs.get(self._job_key())
        if runner is not None:
            job = normalised_parameters.get("JobName") or normalised_parameters.get("Name")
            role = (normalised_parameters.get("RoleArn") or normalised_parameters.get("TrainingJobDefinition", {}).get("RoleArn")
                    or "").split("/")[-1] or HOOKS.job_roles.get((self.service, job))
            if not role and action == "create_transform_job":  # a transform job runs as its model's execution role
                model = sagemaker_models.sagemaker_backends["123456789012"]["eu-west-1"].describe_model(
                    normalised_parameters["ModelName"])
                role = model.execution_role_arn.split("/")[-1]
            with principal(role):  # the job's own reads and writes use the job's role
                outcome = runner(normalised_parameters, fault=fault, response=response) or {}
            _record_job_outcome(self.service, action, normalised_parameters, response, outcome)
        env.stack.append(_plain(response))

    def _eval_integration_pattern(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        # Our jobs have finished by now (see the module docstring): describe once.
        resolve = self._build_sync_resolver(env, resource_runtime_part, normalised_parameters, state_credentials)
        env.stack.append(resolve())

    def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        response = env.stack.pop()
        describe, arguments, result_key, status_key, failed = _SYNC_DESCRIBE[(self.service, self._get_boto_service_action())]
        client = boto_client_for(service=self.service, region=resource_runtime_part.region, state_credentials=state_credentials)
        described = _plain(getattr(client, describe)(**arguments(normalised_parameters, response)))
        described.pop("ResponseMetadata", None)
        described = result_key(described, response) if result_key else described

        def resolve() -> dict:
            if described[status_key] in failed:
                raise _task_failed(self, env, described)
            return described

        return resolve


def _task_failed(task, env, described: dict) -> FailureEventException:  # noqa: ANN001
    """States.TaskFailed with the described job or execution as the cause, as AWS reports it."""
    return FailureEventException(FailureEvent(
        env=env, error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
            error=StatesErrorNameType.StatesTaskFailed.to_name(), cause=json.dumps(described),
            resource=task._get_sfn_resource(), resourceType=task._get_sfn_resource_type()))))


def _glue_job_run(run: Any) -> dict[str, Any]:
    """Patch 12: a failed Glue job run says why (``ErrorMessage``)."""
    described = _ORIGINAL["glue_job_run"](run)
    if getattr(run, "error_message", None):
        described["ErrorMessage"] = run.error_message
    return described


def _record_job_outcome(service: str, action: str, parameters: dict, response: dict, outcome: dict) -> None:
    """Write what the job really did into moto's record of it (moto marks every job done)."""
    failure = outcome.get("failure")
    if service == "glue":
        run = glue_models.glue_backends["123456789012"]["eu-west-1"].jobs[parameters["JobName"]].job_runs
        run = next(r for r in run if r.job_run_id == response["JobRunId"])
        run.status = "FAILED" if failure else "SUCCEEDED"
        run.error_message = failure
        return
    if service == "databrew":
        run = databrew_models.databrew_backends["123456789012"]["eu-west-1"].offline_runs[parameters["Name"]][response["RunId"]]
        run.update(State="FAILED" if failure else "SUCCEEDED", **({"ErrorMessage": failure} if failure else {}))
        return
    backend = sagemaker_models.sagemaker_backends["123456789012"]["eu-west-1"]
    if action == "create_training_job":
        job = backend.training_jobs[parameters["TrainingJobName"]]
        if failure:
            job.training_job_status, job.failure_reason = "Failed", failure
        if outcome.get("hyperparameters"):
            job.hyper_parameters = outcome["hyperparameters"]
        # moto replaces the request's MetricDefinitions with a canned "test:dcg" and reports a canned
        # "train:progress"; SageMaker keeps the request's and reports each metric's last value
        job.algorithm_specification = dict(parameters["AlgorithmSpecification"])
        job.final_metric_data_list = [{"MetricName": name, "Value": float(value), "Timestamp": job.training_end_time}
                                      for name, value in outcome.get("metrics", {}).items()]
    elif action == "create_processing_job":
        job = backend.processing_jobs[parameters["ProcessingJobName"]]
        if failure:
            job.processing_job_status, job.failure_reason = "Failed", failure
    elif action == "create_hyper_parameter_tuning_job":
        job = backend.hyper_parameter_tuning_jobs[parameters["HyperParameterTuningJobName"]]
        if failure:
            job.hyper_parameter_tuning_job_status, job.failure_reason = "Failed", failure
        else:
            job.best_training_job = job.OverallBestTrainingJob = outcome["best"]
    elif action == "create_transform_job":
        job = backend.transform_jobs[parameters["TransformJobName"]]
        if failure:
            job.transform_job_status, job.failure_reason = "Failed", failure


# --- 3. UpdateEndpoint ------------------------------------------------------------------
def _backend_update_endpoint(self, endpoint_name: str, endpoint_config_name: str,
                             deployment_config: dict | None = None, **_: Any) -> str:
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        raise sagemaker_models.ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
    if endpoint.endpoint_status != "InService":
        raise sagemaker_models.ValidationError(message=f"Cannot update in-progress endpoint '{endpoint_name}'.")
    config = self.describe_endpoint_config(endpoint_config_name)
    try:  # what SageMaker checks before it starts (tools/offline/service_rules.py)
        service_rules.check_update(endpoint, self.describe_endpoint_config(endpoint.endpoint_config_name), config,
                                   deployment_config)
    except service_rules.ServiceRefused as refused:
        raise sagemaker_models.ValidationError(message=str(refused)) from None
    if HOOKS.fault("updateEndpoint") == "rollback":
        # Blue/green: the new fleet failed its baking period; SageMaker rolls back and
        # the endpoint stays InService on the previous config.
        endpoint.failure_reason = "Rolled back: alarm fired during the baking period (injected)"
        return endpoint.arn
    try:  # the new fleet loads the model as its execution role; if it cannot, the update fails
        service_rules.load_variants(config)
    except service_rules.ServiceRefused as refused:
        endpoint.failure_reason = f"Update failed, rolled back: {refused}"
        return endpoint.arn
    if (deployment_config or {}).get("BlueGreenUpdatePolicy"):
        rolled_back = _shift_traffic(self, endpoint, endpoint_config_name, deployment_config)
        if rolled_back:
            endpoint.failure_reason = rolled_back
            return endpoint.arn
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.data_capture_config = config["DataCaptureConfig"]
    return endpoint.arn


def _shift_traffic(backend: Any, endpoint: Any, config_name: str, deployment: dict[str, Any]) -> str | None:
    """The blue/green steps of the update ("Use canary traffic shifting", "Use linear traffic
    shifting"): after each step the new fleet bakes while SageMaker watches the auto-rollback
    alarms; one in ALARM rolls all traffic back to the old fleet. Returns the FailureReason
    of a rollback, or None once the final bake passes."""
    from moto.cloudwatch.models import cloudwatch_backends

    policy = deployment["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    count = service_rules.variant_instances(endpoint)
    alarms = [a["AlarmName"] for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
    cloudwatch = cloudwatch_backends[backend.account_id][backend.region_name]
    steps = rollout.steps(routing, count)
    bakes = rollout.bakes(routing, int(policy.get("TerminationWaitInSeconds", 0)), count)
    for number, (instances, bake) in enumerate(zip(steps, bakes), 1):
        step = {"endpoint": endpoint.endpoint_name, "config": config_name, "type": routing["Type"], "step": number,
                "steps": len(steps), "instances": instances, "of": count, "percent": round(100 * instances / count),
                "bake_seconds": bake, "final": number == len(steps)}
        with HOOKS.lock:
            HOOKS.traffic_steps.append(step)
        if HOOKS.during_traffic_step is not None:
            HOOKS.during_traffic_step(step)
        firing = [name for name in alarms if name in cloudwatch.alarms and cloudwatch.alarms[name].state_value == "ALARM"]
        if firing:
            step["rolled_back_on"] = firing
            return (f"Rolled back: alarm {firing[0]} went into ALARM during {routing['Type'].lower()} step {number} of "
                    f"{len(steps)} ({instances} of {count} instances, {step['percent']}% of traffic, on the new fleet)")
    return None


def _response_update_endpoint(self) -> str:
    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"), endpoint_config_name=self._get_param("EndpointConfigName"),
        deployment_config=self._get_param("DeploymentConfig"),
    )
    return json.dumps({"EndpointArn": arn})


# --- 10. Endpoints that serve ------------------------------------------------------------------
def _backend_create_endpoint(self, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
    """moto's CreateEndpoint, then the fleet loads each variant's model as its execution role:
    an endpoint whose role cannot pull the image or read the artifact ends Failed."""
    endpoint = _ORIGINAL["create_endpoint"](self, endpoint_name, endpoint_config_name, tags)
    try:
        service_rules.load_variants(self.describe_endpoint_config(endpoint_config_name))
    except service_rules.ServiceRefused as refused:
        endpoint.endpoint_status, endpoint.failure_reason = "Failed", str(refused)
    return endpoint


def _response_invoke_endpoint(self):  # noqa: ANN001, ANN202
    name = self.path.split("/")[2]
    answer, variant = service_rules.invoke(name, self.body.decode() if isinstance(self.body, bytes) else self.body,
                                           self.headers.get("Content-Type", "text/csv"))
    return 200, {"Content-Type": "text/csv", "x-Amzn-Invoked-Production-Variant": variant}, answer


def _response_invoke_endpoint_async(self):  # noqa: ANN001, ANN202
    name = self.path.split("/")[2]
    inference_id = self.headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4())
    output, failure = service_rules.invoke_async(name, self.headers["X-Amzn-SageMaker-InputLocation"], inference_id)
    return 200, {"X-Amzn-SageMaker-OutputLocation": output, "X-Amzn-SageMaker-FailureLocation": failure}, json.dumps(
        {"InferenceId": inference_id})


def _autoscaling_checked(action: str) -> Callable:
    """Application Auto Scaling validates the caller's permissions on the target first."""
    def checked(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        namespace = kwargs.get("namespace", kwargs.get("service_namespace", args[0] if args else None))
        if action == "register":
            resource_id = kwargs.get("r_id", args[1] if len(args) > 1 else None)
            alarms = False
        else:
            resource_id = kwargs["resource_id"]
            alarms = kwargs.get("policy_type") == "TargetTrackingScaling"
        if namespace == "sagemaker":
            try:
                service_rules.autoscaling_caller(current_principal() or "states", resource_id, alarms=alarms,
                                                 registering=action == "register")
            except service_rules.ServiceRefused as refused:
                raise autoscaling_exceptions.AWSValidationException(str(refused)) from None
        return _ORIGINAL[f"autoscaling_{action}"](self, *args, **kwargs)
    return checked


# --- 11. Approvals keep the lineage -----------------------------------------------------------
def _backend_update_model_package(self, model_package_arn, model_approval_status, approval_description,  # noqa: ANN001, ANN202
                                  customer_metadata_properties, customer_metadata_properties_to_remove,
                                  additional_inference_specifications_to_add):
    name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
    package = self.model_packages.get(name)
    merged = {**((package.customer_metadata_properties or {}) if package else {}), **(customer_metadata_properties or {})}
    if package is not None and model_approval_status is None:  # a request without a decision keeps the one made
        model_approval_status, approval_description = package.model_approval_status, package.approval_description
    return _ORIGINAL["update_model_package"](self, model_package_arn, model_approval_status, approval_description,
                                             merged or None, customer_metadata_properties_to_remove or [],
                                             additional_inference_specifications_to_add)


# --- 4 and 5. Context object and time ----------------------------------------------------
def _evaluation_environment(self):  # noqa: ANN001
    env = _ORIGINAL["environment"](self)
    context = env.states.context_object.context_object_data
    context["Execution"].setdefault("RedriveCount", 0)
    started = context["Execution"].get("StartTime")
    if isinstance(started, datetime):
        started = started.astimezone(timezone.utc) if started.tzinfo else started
        context["Execution"]["StartTime"] = started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started.microsecond // 1000:03d}Z"
    _PRINCIPAL.name = f"states:{context['StateMachine']['Name']}"  # runs in the execution's own thread
    return env


def _wait_interval(self, env, wait_seconds):  # noqa: ANN001
    HOOKS.waits.append(wait_seconds)


# --- 7. DataBrew job runs -------------------------------------------------------------------
def _backend_start_job_run(self, name: str) -> str:
    job = self.describe_job(name)  # raises ResourceNotFoundException like DataBrew
    run_id = f"db_{uuid.uuid4().hex[:24]}"
    self.offline_runs.setdefault(name, {})[run_id] = {
        "JobName": name, "RunId": run_id, "State": "RUNNING", "Attempt": 0,
        "DatasetName": job.dataset_name, "StartedOn": datetime.now().isoformat(),
    }
    return run_id


def _response_start_job_run(self) -> str:
    return json.dumps({"RunId": self.databrew_backend.start_job_run(self._get_path().split("/")[-2])})


def _response_list_job_runs(self) -> str:
    name = self._get_path().split("/")[-2]  # /jobs/<name>/jobRuns
    self.databrew_backend.describe_job(name)
    return json.dumps({"JobRuns": list(self.databrew_backend.offline_runs.get(name, {}).values())})


_DATABREW_RUN_PATHS = {
    "{0}/jobs/(?P<job_name>[^/]+)/startJobRun$": databrew_responses.DataBrewResponse.dispatch,
    "{0}/jobs/(?P<job_name>[^/]+)/jobRuns$": databrew_responses.DataBrewResponse.dispatch,
}


# --- 8. Nested executions ----------------------------------------------------------------------
def _pascal(value: dict) -> dict:
    return {key[:1].upper() + key[1:]: item for key, item in value.items()}


class NestedExecutionTask(StateTaskServiceSfn):
    """``states:startExecution[.sync[:2]]``. moto passes the Step Functions parameters on in
    ASL's PascalCase (the API wants camelCase) and hands back boto3's camelCase, so the
    request fails in botocore; its ``.sync`` path crashes as in 2. Ours translates both
    ways and polls the child, which runs in its own thread, until it ends."""

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        client = boto_client_for(service="stepfunctions", region=resource_runtime_part.region, state_credentials=state_credentials)
        request = {key[:1].lower() + key[1:]: value for key, value in normalised_parameters.items()}
        request.setdefault("name", str(uuid.uuid4()))  # AWS names an unnamed execution with a UUID; moto with None
        response = getattr(client, self._get_boto_service_action())(**request)
        response.pop("ResponseMetadata", None)
        env.stack.append(_plain(_pascal(response)))

    def _eval_integration_pattern(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        if self.resource.condition not in (ResourceCondition.Sync, ResourceCondition.Sync2):
            return super()._eval_integration_pattern(env, resource_runtime_part, normalised_parameters, state_credentials)
        client = boto_client_for(service="stepfunctions", region=resource_runtime_part.region, state_credentials=state_credentials)
        arn = env.stack.pop()["ExecutionArn"]
        pause = 0.01
        while (described := client.describe_execution(executionArn=arn))["status"] == "RUNNING":
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)
        described.pop("ResponseMetadata", None)
        if self.resource.condition == ResourceCondition.Sync2:  # .sync:2 hands Input/Output over as JSON
            described.update({key: json.loads(described[key]) for key in ("input", "output") if key in described})
        described = _plain(_pascal(described))
        if described["Status"] != "SUCCEEDED":
            raise _task_failed(self, env, described)
        env.stack.append(described)


_ORIGINAL: dict[str, Any] = {}
# aws-sdk integration service names that differ from boto3's (AWS docs, "Using AWS SDK service integrations"),
# and the capitalised prefix of their error names (Glue.CrawlerRunningException), which moto knows for two services
# --- 13. Parse trees kept -------------------------------------------------------------------
_PARSE_TREES: dict[str, Any] = {}  # definition -> ANTLR parse tree; across sessions: the same app's definitions
PARSE_TREES_KEPT = 64


def _parse(definition: str) -> tuple[Any, Any]:
    """``AmazonStateLanguageParser.parse`` with the tree kept: a definition seen before skips
    the lexer and parser; the program (what executes) is always built anew from the tree."""
    tree = _PARSE_TREES.get(definition)
    if tree is None:
        program_, tree = _ORIGINAL["parse"](definition)  # a syntax error raises as before, nothing kept
        if len(_PARSE_TREES) >= PARSE_TREES_KEPT:
            _PARSE_TREES.pop(next(iter(_PARSE_TREES)))
        _PARSE_TREES[definition] = tree
        return program_, tree
    return Preprocessor().visit(tree), tree


# --- 9. Monitoring schedules ---------------------------------------------------------------
_DEFINITIONS = {"DataQuality": "data_quality_job_definitions", "ModelQuality": "model_quality_job_definitions"}


def _backend_put_schedule(self, name: str, config: dict, *, create: bool) -> str:
    schedules = self.offline_schedules
    if create and name in schedules:
        raise sagemaker_models.ValidationError(message=f"Monitoring schedule {name} already exists")
    if not create and name not in schedules:
        raise sagemaker_models.ResourceNotFound(f"Monitoring schedule {name} not found")
    definitions = getattr(self, _DEFINITIONS.get(config.get("MonitoringType", ""), ""), None)
    if definitions is None or config.get("MonitoringJobDefinitionName") not in definitions:
        raise sagemaker_models.ValidationError(
            message=f"Job definition {config.get('MonitoringJobDefinitionName')} of type "
                    f"{config.get('MonitoringType')} does not exist")
    try:  # the expression forms and runtime limits Model Monitor accepts
        service_rules.check_monitoring_schedule(config, definitions[config["MonitoringJobDefinitionName"]])
    except service_rules.ServiceRefused as refused:
        raise sagemaker_models.ValidationError(message=str(refused)) from None
    arn = f"arn:aws:sagemaker:{self.region_name}:{self.account_id}:monitoring-schedule/{name}"
    now = datetime.now().isoformat()
    schedules[name] = {"MonitoringScheduleArn": arn, "MonitoringScheduleName": name,
                       "MonitoringScheduleStatus": "Scheduled", "MonitoringType": config["MonitoringType"],
                       "CreationTime": schedules.get(name, {}).get("CreationTime", now), "LastModifiedTime": now,
                       "MonitoringScheduleConfig": config}
    return arn


def _schedule_response(action: str) -> Callable:
    def respond(self) -> str:  # noqa: ANN001
        backend, name = self.sagemaker_backend, self._get_param("MonitoringScheduleName")
        if action in ("create", "update"):
            arn = _backend_put_schedule(backend, name, self._get_param("MonitoringScheduleConfig"),
                                        create=action == "create")
            return json.dumps({"MonitoringScheduleArn": arn})
        if name not in backend.offline_schedules:
            raise sagemaker_models.ResourceNotFound(f"Monitoring schedule {name} not found")
        if action == "delete":
            del backend.offline_schedules[name]
            return "{}"
        return json.dumps(backend.offline_schedules[name])
    return respond


SCHEDULE_ACTIONS = ("create", "describe", "update", "delete")


SERVICE_NAMES = {"applicationautoscaling": "application-autoscaling"}
ERROR_NAMES = {"glue": "Glue"}


@contextlib.contextmanager
def patched(hooks: Hooks) -> Iterator[Hooks]:
    """Apply every patch for the duration of one offline session."""
    global HOOKS
    previous, HOOKS = HOOKS, hooks
    _ORIGINAL.update(
        create_endpoint=sagemaker_models.SageMakerModelBackend.create_endpoint,
        update_model_package=sagemaker_models.SageMakerModelBackend.update_model_package,
        invoke_endpoint=runtime_responses.SageMakerRuntimeResponse.invoke_endpoint,
        invoke_endpoint_async=runtime_responses.SageMakerRuntimeResponse.invoke_endpoint_async,
        autoscaling_register=autoscaling_models.ApplicationAutoscalingBackend.register_scalable_target,
        autoscaling_policy=autoscaling_models.ApplicationAutoscalingBackend.put_scaling_policy,
        lambda_invoke=LambdaSimpleBackend.invoke,
        environment=ExecutionWorker._get_evaluation_environment,
        wait=WaitFunction._wait_interval,
        retry_time=retrier_decl.time,
        factory=state_task_factory.state_task_service_for,
        glue_job_run=glue_models.FakeJobRun.as_dict,
        parse=AmazonStateLanguageParser.parse,
    )
    original_factory = _ORIGINAL["factory"]

    def factory(service_name: str):
        if service_name == "states":
            return NestedExecutionTask()
        return JobTask(service_name) if service_name in ERROR_PREFIXES else original_factory(service_name)

    _ORIGINAL["names"] = StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES = {**_ORIGINAL["names"], **SERVICE_NAMES}
    aws_sdk._SERVICE_ERROR_NAMES.update(ERROR_NAMES)
    execute_state.Thread = _InheritingThread
    program.threading = types.SimpleNamespace(Thread=_InheritingThread)
    branch_worker.threading = types.SimpleNamespace(Thread=_InheritingThread)  # a Parallel state's branches
    LambdaSimpleBackend.invoke = _lambda_invoke
    ExecutionWorker._get_evaluation_environment = _evaluation_environment
    WaitFunction._wait_interval = _wait_interval
    retrier_decl.time = types.SimpleNamespace(sleep=hooks.waits.append)
    state_task_factory.state_task_service_for = factory
    sagemaker_models.SageMakerModelBackend.update_endpoint = _backend_update_endpoint
    sagemaker_models.SageMakerModelBackend.create_endpoint = _backend_create_endpoint
    sagemaker_models.SageMakerModelBackend.update_model_package = _backend_update_model_package
    runtime_responses.SageMakerRuntimeResponse.invoke_endpoint = _response_invoke_endpoint
    runtime_responses.SageMakerRuntimeResponse.invoke_endpoint_async = _response_invoke_endpoint_async
    autoscaling_models.ApplicationAutoscalingBackend.register_scalable_target = _autoscaling_checked("register")
    autoscaling_models.ApplicationAutoscalingBackend.put_scaling_policy = _autoscaling_checked("policy")
    service_rules.MODELS.clear()
    service_rules.SERVICE_LINKED_ROLES.clear()
    sagemaker_responses.SageMakerResponse.update_endpoint = _response_update_endpoint
    sagemaker_models.SageMakerModelBackend.offline_schedules = {}
    for action in SCHEDULE_ACTIONS:
        setattr(sagemaker_responses.SageMakerResponse, f"{action}_monitoring_schedule", _schedule_response(action))
    databrew_models.DataBrewBackend.offline_runs = {}
    databrew_models.DataBrewBackend.start_job_run = _backend_start_job_run
    databrew_responses.DataBrewResponse.start_job_run = _response_start_job_run
    databrew_responses.DataBrewResponse.list_job_runs = _response_list_job_runs
    databrew_urls.url_paths.update(_DATABREW_RUN_PATHS)
    glue_models.FakeJobRun.as_dict = _glue_job_run
    AmazonStateLanguageParser.parse = staticmethod(_parse)
    try:
        yield hooks
    finally:
        StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES = _ORIGINAL["names"]
        execute_state.Thread, program.threading, branch_worker.threading = threading.Thread, threading, threading
        for name in ERROR_NAMES:
            aws_sdk._SERVICE_ERROR_NAMES.pop(name)
        LambdaSimpleBackend.invoke = _ORIGINAL["lambda_invoke"]
        ExecutionWorker._get_evaluation_environment = _ORIGINAL["environment"]
        WaitFunction._wait_interval = _ORIGINAL["wait"]
        retrier_decl.time = _ORIGINAL["retry_time"]
        state_task_factory.state_task_service_for = original_factory
        del sagemaker_models.SageMakerModelBackend.update_endpoint
        sagemaker_models.SageMakerModelBackend.create_endpoint = _ORIGINAL["create_endpoint"]
        sagemaker_models.SageMakerModelBackend.update_model_package = _ORIGINAL["update_model_package"]
        runtime_responses.SageMakerRuntimeResponse.invoke_endpoint = _ORIGINAL["invoke_endpoint"]
        runtime_responses.SageMakerRuntimeResponse.invoke_endpoint_async = _ORIGINAL["invoke_endpoint_async"]
        autoscaling_models.ApplicationAutoscalingBackend.register_scalable_target = _ORIGINAL["autoscaling_register"]
        autoscaling_models.ApplicationAutoscalingBackend.put_scaling_policy = _ORIGINAL["autoscaling_policy"]
        service_rules.MODELS.clear()
        del sagemaker_responses.SageMakerResponse.update_endpoint
        del sagemaker_models.SageMakerModelBackend.offline_schedules
        for action in SCHEDULE_ACTIONS:
            delattr(sagemaker_responses.SageMakerResponse, f"{action}_monitoring_schedule")
        for name in ("offline_runs", "start_job_run"):
            delattr(databrew_models.DataBrewBackend, name)
        del databrew_responses.DataBrewResponse.start_job_run, databrew_responses.DataBrewResponse.list_job_runs
        for path in _DATABREW_RUN_PATHS:
            databrew_urls.url_paths.pop(path)
        glue_models.FakeJobRun.as_dict = _ORIGINAL["glue_job_run"]
        AmazonStateLanguageParser.parse = staticmethod(_ORIGINAL["parse"])
        HOOKS = previous
