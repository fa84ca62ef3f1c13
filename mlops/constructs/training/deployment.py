"""Phase: deploy the registered version, in the run's deployment mode.

"Create model" (from the model package) → "Deployment mode?":

* ``realtime`` — endpoint config with KMS and data capture; create the endpoint, or update it
  blue/green (all at once, canary or linear traffic shifting) with auto-rollback on the
  rollback alarms; then target-tracking autoscaling;
* ``serverless`` — its own endpoint (memory, concurrency; no capture, no blue/green);
* ``async`` — results to S3 (KMS), success/error topics, data capture; scale to zero;
* ``batch`` — a batch transform of the test split (or a configured prefix).

Every endpoint mode checks the endpoint first ("Check endpoint": create or update; busy →
wait; autoscaling in the way of an instance-type change → "Deregister scalable target"),
then polls until the endpoint serves the new config (bounded). A rolled-back update
registers autoscaling again and fails the run with the rollback's cause.
"""

from __future__ import annotations

from typing import Callable

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import DeploymentConfig
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import CAPTURE_PREFIX, StageResources
from mlops.constructs.training.endpoint import VARIANT, Endpoints, scale_to_zero, target_tracking
from mlops.constructs.training.execution_role import ASYNC_OUTPUT_PREFIX
from mlops.constructs.training.notices import outcome_notice
from mlops.constructs.workflow import API_TIMEOUT, SAGEMAKER_TRANSIENT, catch_all, retry_api, sagemaker_job, with_suffix
from mlops.nag import acknowledge

ENDPOINT_POLL = cdk.Duration.seconds(60)
DEPLOYMENT_MODES = ("realtime", "serverless", "async", "batch")  # the branches this phase has
CONFIG = "$.run.names.config"


def check_endpoint_function(scope: Construct, *, resources: StageResources, endpoints: Endpoints) -> PipelineFunction:
    """The ``check_endpoint`` handler: exists? busy? would autoscaling block the update?"""
    check = resources.function(scope, "CheckEndpoint", folder="check_endpoint",
                               description="endpoint exists / busy before deploying")
    check.role.add_to_policy(iam.PolicyStatement(
        actions=["sagemaker:DescribeEndpoint"],
        resources=[resources.arn(scope, "sagemaker", "endpoint", name) for name in endpoints.all()],
    ))
    # does autoscaling block the update? (the serving config's instance types, the registered targets)
    check.role.add_to_policy(iam.PolicyStatement(
        actions=["sagemaker:DescribeEndpointConfig"],
        resources=[resources.arn(scope, "sagemaker", "endpoint-config", f"{resources.prefix}-config-*")],
    ))
    check.role.add_to_policy(iam.PolicyStatement(actions=["application-autoscaling:DescribeScalableTargets"],
                                                 resources=["*"]))
    acknowledge(check.role, "AwsSolutions-IAM5", "application-autoscaling:DescribeScalableTargets supports no "
                "resource-level permissions; the handler asks about the stage's own endpoint variants only.",
                applies_to="Resource::*")
    acknowledge(check.role, "AwsSolutions-IAM5", "Endpoint config names are derived per run; the handler reads the "
                "config the endpoint serves to compare instance types.",
                applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint-config/{resources.prefix}-config-*")
    return check


class Deployment:
    """Builds the deployment phase into ``scope``. Exposes ``start``.

    ``after_realtime``: what the monitoring backend adds after a real-time deployment that
    serves (before "Notify deployed"), or None.
    """

    def __init__(self, scope: Construct, *, resources: StageResources, deployment: DeploymentConfig,
                 endpoints: Endpoints, role: iam.IRole, async_topics: dict[str, sns.ITopic],
                 rollback_alarms: list[cloudwatch.Alarm], check: PipelineFunction,
                 after_realtime: Callable[[sfn.IChainable], sfn.IChainable] | None,
                 after_batch: Callable[[sfn.IChainable], sfn.IChainable] | None, group: str,
                 on_failure: sfn.IChainable, vector_output_from: int | None = None) -> None:
        self._scope, self._resources, self._deployment, self._group = scope, resources, deployment, group
        self._endpoints, self._on_failure = endpoints, on_failure
        self._after_realtime, self._after_batch = after_realtime, after_batch
        # a model answering several values per row (class probabilities): where they start in the
        # joined test-split line (label, features, answer), so the output keeps label and all of them
        self._vector_output_from = vector_output_from
        # The SDK integration (CDK's SageMakerCreateModel takes no list of tags and grants model/*)
        create_model = tasks.CallAwsService(
            scope, "Create model",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="createModel",
            parameters={"ModelName.$": "$.run.names.model",
                        "PrimaryContainer": {"ModelPackageName.$": "$.registration.model_package_arn"},
                        "ExecutionRoleArn": role.role_arn, "Tags": resources.tag_list},
            iam_resources=[resources.arn(scope, "sagemaker", "model", f"{resources.prefix}-model-*")],
            iam_action="sagemaker:CreateModel",
            result_path=sfn.JsonPath.DISCARD,
        )
        configs = self._configs(async_topics)
        self._retry_and_catch(create_model, *configs.values())
        check_endpoint = self._check_endpoint(check, rollback_alarms)
        uses = self._uses()
        for mode in ("realtime", "serverless", "async"):
            configs[mode].next(uses[mode]).next(check_endpoint)
        self.start = create_model.next(
            sfn.Choice(scope, "Deployment mode?")
            .when(sfn.Condition.string_equals("$.run.deployment_mode", "batch"), self._batch())
            .when(sfn.Condition.string_equals("$.run.deployment_mode", "serverless"), configs["serverless"])
            .when(sfn.Condition.string_equals("$.run.deployment_mode", "async"), configs["async"])
            .otherwise(configs["realtime"])
        )

    def _retry_and_catch(self, *states: sfn.TaskStateBase) -> None:
        for state in states:
            state.add_retry(errors=SAGEMAKER_TRANSIENT + ["SageMaker.SageMakerException"],
                            interval=cdk.Duration.seconds(10), backoff_rate=2, max_attempts=3)
        for state in states:
            catch_all(state, self._on_failure)

    # ------------------------------------------------------------------ endpoint configs
    def _configs(self, async_topics: dict[str, sns.ITopic]) -> dict[str, tasks.CallAwsService]:
        deployment, key_arn = self._deployment, self._resources.data_key.key_arn
        realtime = self._endpoint_config("Create endpoint config", {
            "KmsKeyId": key_arn,
            "ProductionVariants": [{
                "VariantName": VARIANT, "ModelName.$": "$.run.names.model",
                "InstanceType": deployment.instance_type,
                "InitialInstanceCount": deployment.initial_instance_count, "InitialVariantWeight": 1}],
            "DataCaptureConfig": self._data_capture(),
        }, comment="KMS, data capture to the monitoring bucket")
        serverless = self._endpoint_config("Create serverless endpoint config", {
            "ProductionVariants": [{
                "VariantName": VARIANT, "ModelName.$": "$.run.names.model",
                "ServerlessConfig": {"MemorySizeInMB": deployment.serverless_memory_mb,
                                     "MaxConcurrency": deployment.serverless_max_concurrency}}],
        }, comment="Serverless: no data capture, no KMS key on the config (no instance storage)")
        asynchronous = self._endpoint_config("Create async endpoint config", {
            "KmsKeyId": key_arn,
            "ProductionVariants": [{
                "VariantName": VARIANT, "ModelName.$": "$.run.names.model",
                "InstanceType": deployment.instance_type, "InitialInstanceCount": 1, "InitialVariantWeight": 1}],
            "AsyncInferenceConfig": {
                "OutputConfig": {
                    "S3OutputPath": f"s3://{self._resources.bucket('artifacts').bucket_name}/{ASYNC_OUTPUT_PREFIX}",
                    "KmsKeyId": key_arn,
                    "NotificationConfig": {"SuccessTopic": async_topics["success"].topic_arn,
                                           "ErrorTopic": async_topics["error"].topic_arn},
                },
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance":
                                 deployment.async_max_concurrent_invocations_per_instance},
            },
            "DataCaptureConfig": self._data_capture(),
        }, comment="Results to S3 (KMS), success/error to SNS, data capture")
        return {"realtime": realtime, "serverless": serverless, "async": asynchronous}

    def _endpoint_config(self, name: str, parameters: dict, *, comment: str) -> tasks.CallAwsService:
        """CreateEndpointConfig through the SDK integration (CDK's task has no data capture,
        serverless or async settings); config names are per run, so the grant is by prefix."""
        return tasks.CallAwsService(
            self._scope, name,
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="createEndpointConfig",
            parameters={"EndpointConfigName.$": CONFIG, **parameters, "Tags": self._resources.tag_list},
            iam_resources=[self._config_arns()],
            iam_action="sagemaker:CreateEndpointConfig",
            result_path=sfn.JsonPath.DISCARD,
            comment=comment,
        )

    def _config_arns(self) -> str:
        return self._resources.arn(self._scope, "sagemaker", "endpoint-config", f"{self._resources.prefix}-config-*")

    def _data_capture(self) -> dict:
        deployment = self._deployment
        return {
            "EnableCapture": deployment.data_capture_percentage > 0,
            "InitialSamplingPercentage": deployment.data_capture_percentage,
            "DestinationS3Uri": f"s3://{self._resources.bucket('monitoring').bucket_name}/{CAPTURE_PREFIX.rstrip('/')}",
            "KmsKeyId": self._resources.data_key.key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }

    def _uses(self) -> dict[str, sfn.Pass]:
        """Which endpoint a mode deploys to, how it updates and scales, which instance types."""
        endpoints, instance_type = self._endpoints, self._deployment.instance_type
        use = lambda name, result: sfn.Pass(self._scope, name, result_path="$.deploy",  # noqa: E731
                                            result=sfn.Result.from_object(result))
        return {
            "realtime": use("Use real-time endpoint", {"endpoint_name": endpoints.realtime, "blue_green": True,
                                                       "scaling": "target-tracking", "instance_types": [instance_type]}),
            "serverless": use("Use serverless endpoint", {"endpoint_name": endpoints.serverless, "blue_green": False,
                                                          "scaling": "none", "instance_types": []}),
            "async": use("Use async endpoint", {"endpoint_name": endpoints.asynchronous, "blue_green": False,
                                                "scaling": "scale-to-zero", "instance_types": [instance_type]}),
        }

    # ------------------------------------------------------------------ create or update
    def _check_endpoint(self, check: PipelineFunction, rollback_alarms: list[cloudwatch.Alarm]) -> tasks.LambdaInvoke:
        scope = self._scope
        check_endpoint = tasks.LambdaInvoke(
            scope, "Check endpoint",
            task_timeout=API_TIMEOUT,
            lambda_function=check.function,
            payload=sfn.TaskInput.from_object({"endpoint_name": sfn.JsonPath.string_at("$.deploy.endpoint_name"),
                                               "instance_types": sfn.JsonPath.list_at("$.deploy.instance_types")}),
            result_selector={"exists.$": "$.Payload.exists", "previous_config.$": "$.Payload.endpoint_config_name",
                             "deregister_scaling.$": "$.Payload.deregister_scaling"},
            result_path="$.endpoint",
            comment="Create or update? Waits while the endpoint is busy; says whether autoscaling blocks the update",
        )
        # SageMaker refuses to change the instance type of a variant registered with Application
        # Auto Scaling ("Update endpoints that use auto scaling"): deregister it first; it is
        # registered again once the endpoint is in service (also after a rollback).
        deregister = tasks.CallAwsService(
            scope, "Deregister scalable target",
            task_timeout=API_TIMEOUT,
            service="applicationautoscaling", action="deregisterScalableTarget",
            parameters={"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                        "ResourceId.$": f"States.Format('endpoint/{{}}/variant/{VARIANT}', $.deploy.endpoint_name)"},
            iam_resources=[cdk.Stack.of(scope).format_arn(service="application-autoscaling", resource="scalable-target",
                                                          resource_name="*")],
            iam_action="application-autoscaling:DeregisterScalableTarget",
            result_path=sfn.JsonPath.DISCARD,
            comment="The instance type changes: SageMaker updates a scaled variant only once it is deregistered",
        )
        check_endpoint.add_retry(errors=["EndpointBusy"], interval=ENDPOINT_POLL, backoff_rate=1.5, max_attempts=8)
        create, update, update_serverless = self._create_and_updates(rollback_alarms)
        deregister.add_retry(errors=["ApplicationAutoScaling.ConcurrentUpdateException",
                                     "ApplicationAutoScaling.InternalServiceException"],
                             interval=cdk.Duration.seconds(10), backoff_rate=2, max_attempts=3)
        for state in (check_endpoint, create, update, update_serverless, deregister):
            catch_all(state, self._on_failure)
        poll = self._poll()
        for state in (create, update, update_serverless):
            state.next(poll)
        exists = (sfn.Choice(scope, "Endpoint exists?")
                  .when(sfn.Condition.and_(sfn.Condition.boolean_equals("$.endpoint.exists", True),
                                           sfn.Condition.boolean_equals("$.deploy.blue_green", True)), update)
                  .when(sfn.Condition.boolean_equals("$.endpoint.exists", True), update_serverless)
                  .otherwise(create))
        check_endpoint.next(
            sfn.Choice(scope, "Deregister autoscaling first?")
            .when(sfn.Condition.boolean_equals("$.endpoint.deregister_scaling", True), deregister.next(exists))
            .otherwise(exists)
        )
        return check_endpoint

    def _create_and_updates(self, rollback_alarms: list[cloudwatch.Alarm]) -> tuple[tasks.CallAwsService, ...]:
        scope, endpoints = self._scope, self._endpoints
        endpoint_and_configs = [*(self._resources.arn(scope, "sagemaker", "endpoint", name) for name in endpoints.all()),
                                self._config_arns()]
        # CDK's SageMakerCreateEndpoint grants endpoint/* when the name comes from the state;
        # the SDK integration lets the grant name the stage's endpoints only.
        create = tasks.CallAwsService(
            scope, "Create endpoint",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="createEndpoint",
            parameters={"EndpointName.$": "$.deploy.endpoint_name", "EndpointConfigName.$": CONFIG,
                        "Tags": self._resources.tag_list},
            iam_resources=endpoint_and_configs,
            iam_action="sagemaker:CreateEndpoint",
            result_path=sfn.JsonPath.DISCARD,
        )
        update_serverless = tasks.CallAwsService(
            scope, "Update serverless endpoint",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="updateEndpoint",
            parameters={"EndpointName.$": "$.deploy.endpoint_name", "EndpointConfigName.$": CONFIG},
            iam_resources=endpoint_and_configs,
            iam_action="sagemaker:UpdateEndpoint",
            result_path=sfn.JsonPath.DISCARD,
            comment="Serverless endpoints take no blue/green config; SageMaker keeps the old config serving until the new one is ready",
        )
        # Deployment guardrails (real-time endpoints here; "Use canary traffic shifting", "Use linear
        # traffic shifting"): the routing and its limits come from the validated config
        # (mlops/rollout.py); SageMaker's own timeout is the run's polling bound, which the config
        # checks exceeds every baking period (BlueGreenUpdatePolicy: it "should be larger than the
        # total waiting time").
        shifting = self._deployment.traffic_shifting
        update = tasks.CallAwsService(
            scope, "Update endpoint (blue-green)",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="updateEndpoint",
            parameters={
                "EndpointName": endpoints.realtime,
                "EndpointConfigName.$": CONFIG,
                "RetainAllVariantProperties": True,
                "DeploymentConfig": {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": shifting.routing(),
                        "TerminationWaitInSeconds": self._deployment.termination_wait_minutes * 60,
                        "MaximumExecutionTimeoutInSeconds": self._deployment.rollout_timeout_seconds,
                    },
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm.alarm_name} for alarm in rollback_alarms]},
                },
            },
            iam_resources=[self._resources.arn(scope, "sagemaker", "endpoint", endpoints.realtime), self._config_arns()],
            iam_action="sagemaker:UpdateEndpoint",
            result_path=sfn.JsonPath.DISCARD,
            comment=f"Blue/green, {shifting.type.replace('_', '-')} traffic shifting, auto-rollback on the endpoint alarms",
        )
        for state in (create, update, update_serverless):
            state.add_retry(errors=SAGEMAKER_TRANSIENT + ["SageMaker.SageMakerException"],
                            interval=cdk.Duration.seconds(10), backoff_rate=2, max_attempts=3)
        return create, update, update_serverless

    # ------------------------------------------------------------------ wait, scale, finish
    def _poll(self) -> sfn.IChainable:
        """Bounded wait: at most ``wait_for_endpoint_minutes`` of polling, then give up (the
        endpoint is left to SageMaker, which rolls a failed update back on its own)."""
        scope, minutes = self._scope, self._deployment.wait_for_endpoint_minutes
        max_polls = max(1, minutes * 60 // ENDPOINT_POLL.to_seconds())
        start = sfn.Pass(scope, "Start waiting", result=sfn.Result.from_object({"polls": 0}), result_path="$.wait")
        wait = sfn.Wait(scope, "Wait for endpoint", time=sfn.WaitTime.duration(ENDPOINT_POLL))
        describe = catch_all(retry_api(tasks.CallAwsService(
            scope, "Describe endpoint",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="describeEndpoint",
            parameters={"EndpointName.$": "$.deploy.endpoint_name"},
            iam_resources=[self._resources.arn(scope, "sagemaker", "endpoint", name) for name in self._endpoints.all()],
            result_selector={"status.$": "$.EndpointStatus", "config.$": "$.EndpointConfigName"},
            result_path="$.endpoint_state",
        )), self._on_failure)
        count = sfn.Pass(scope, "Count poll", parameters={"polls.$": "States.MathAdd($.wait.polls, 1)"}, result_path="$.wait")
        in_service = sfn.Condition.string_equals("$.endpoint_state.status", "InService")
        serving_new_config = sfn.Condition.string_equals_json_path("$.endpoint_state.config", CONFIG)
        scale = self._scale(serving_new_config)
        start.next(wait).next(describe).next(
            sfn.Choice(scope, "Endpoint in service?")
            .when(sfn.Condition.and_(in_service, serving_new_config), scale)
            .when(in_service, self._failure("Update rolled back", "DeploymentRolledBack",
                                            "States.Format('Endpoint {} rolled back to {}; it keeps serving the previous model', "
                                            "$.deploy.endpoint_name, $.endpoint_state.config)")
                  .next(self._record("Record rolled back", {"rolled_back.$": (
                      "States.Format('{} kept serving {} (execution {})', $.deploy.endpoint_name, "
                      "$.endpoint_state.config, $$.Execution.Name)")})).next(scale))
            .when(sfn.Condition.string_equals("$.endpoint_state.status", "Failed"),
                  self._failure("Endpoint failed", "EndpointFailed",
                                "States.Format('Endpoint {} is Failed', $.deploy.endpoint_name)").next(self._on_failure))
            .otherwise(count.next(
                sfn.Choice(scope, "Keep waiting?")
                .when(sfn.Condition.number_less_than("$.wait.polls", max_polls), wait)
                .otherwise(self._failure("Endpoint wait timed out", "EndpointWaitTimedOut", (
                    f"States.Format('Endpoint {{}} not InService after {minutes} minutes', "
                    "$.deploy.endpoint_name)")).next(self._on_failure))))
        )
        return start

    def _record(self, name: str, properties: dict[str, str]) -> tasks.CallAwsService:
        """Write ``properties`` on the run's version in the registry (UpdateModelPackage adds
        them to its CustomerMetadataProperties): ``serving`` once a deployment is confirmed —
        the metric gate's champion and the monitoring baseline are the newest version serving
        in a mode — or ``rolled_back``, which the registry then shows."""
        record = tasks.CallAwsService(
            self._scope, name, task_timeout=API_TIMEOUT, service="sagemaker", action="updateModelPackage",
            parameters={"ModelPackageArn.$": "$.registration.model_package_arn", "CustomerMetadataProperties": properties},
            iam_resources=[self._resources.arn(self._scope, "sagemaker", "model-package", f"{self._group}/*")],
            iam_action="sagemaker:UpdateModelPackage", result_path=sfn.JsonPath.DISCARD)
        return catch_all(retry_api(record), self._on_failure)

    def _failure(self, name: str, error: str, cause: str) -> sfn.Pass:
        return sfn.Pass(self._scope, name, parameters={"Error": error, "Cause.$": cause, "State": name}, result_path="$.error")

    def _scale(self, serving_new_config: sfn.Condition) -> sfn.Choice:
        """In service on the new config: (re)register autoscaling, then finish. Rolled back to
        the old config: register autoscaling again too (the variant may have been deregistered
        for the update; registering is idempotent), then fail the run with the rollback's cause."""
        scope = self._scope
        target_tracking_mode = sfn.Condition.string_equals("$.deploy.scaling", "target-tracking")
        done = self._record("Record serving version", {
            "serving.$": "States.Format('{} since {}', $.run.deployment_mode, $$.Execution.StartTime)"}).next(
            outcome_notice(scope, self._resources, "Notify deployed", "DEPLOYED", "$.registration.model_package_arn")).next(
            sfn.Succeed(scope, "Model deployed"))
        finish = sfn.Choice(scope, "Deployment rolled back?").when(sfn.Condition.not_(serving_new_config), self._on_failure)
        if self._after_realtime is not None:
            finish.when(target_tracking_mode, self._after_realtime(done))
        finish.otherwise(done)
        return (sfn.Choice(scope, "Autoscale?")
                .when(target_tracking_mode, target_tracking(
                    scope, endpoint=self._endpoints.realtime, deployment=self._deployment, tags=self._resources.tags,
                    on_failure=self._on_failure).next(finish))
                .when(sfn.Condition.string_equals("$.deploy.scaling", "scale-to-zero"), scale_to_zero(
                    scope, endpoint=self._endpoints.asynchronous, deployment=self._deployment, tags=self._resources.tags,
                    on_failure=self._on_failure).next(finish))
                .otherwise(finish))

    # ------------------------------------------------------------------ batch
    def _batch(self) -> sfn.IChainable:
        """Batch transform. By default over the run's test split: the label column is filtered
        out of the request and joined back to the prediction, so the output reads
        ``label,prediction`` (``label,p0,p1,...`` for a model answering class probabilities). With ``deployment.batch_input_prefix``, over that prefix of the
        curated zone (feature-only CSV): each line's features joined with its prediction, which
        the monitoring workflow (open-source backend) then checks for drift."""
        deployment, key_arn = self._deployment, self._resources.data_key.key_arn
        if deployment.batch_input_prefix:
            source = {"S3DataType": "S3Prefix",
                      "S3Uri": f"s3://{self._resources.bucket('curated').bucket_name}/{deployment.batch_input_prefix}"}
            processing = {"JoinSource": "Input"}
        else:
            source = {"S3DataType": "S3Prefix", "S3Uri.$": "$.run.s3.test"}
            answer = f"{self._vector_output_from}:" if self._vector_output_from else "-1"
            processing = {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": f"$[0,{answer}]"}
        parameters = {
            "TransformJobName.$": with_suffix("$.run.names.transform"),
            "ModelName.$": "$.run.names.model",
            "TransformInput": {"DataSource": {"S3DataSource": source}, "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath.$": "$.run.s3.transform_output", "Accept": "text/csv",
                                "AssembleWith": "Line", "KmsKeyId": key_arn},
            "TransformResources": {"InstanceType": deployment.instance_type,
                                   "InstanceCount": deployment.initial_instance_count,
                                   "VolumeKmsKeyId": key_arn},
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 1},
        }
        if processing:
            parameters["DataProcessing"] = processing
        transform = sagemaker_job(self._scope, "Run batch transform", "createTransformJob", parameters,
                                  result_selector={"job_name.$": "$.TransformJobName",
                                                   "output.$": "$.TransformOutput.S3OutputPath"},
                                  result_path="$.transform",
                                  comment="features,prediction per input line" if deployment.batch_input_prefix
                                  else "label,prediction per test row",
                                  on_failure=self._on_failure, tags=self._resources.tag_list)
        done = outcome_notice(self._scope, self._resources, "Notify batch done", "BATCH PREDICTIONS WRITTEN",
                              "$.transform.output").next(sfn.Succeed(self._scope, "Batch predictions written"))
        record = self._record("Record batch version", {
            "serving.$": "States.Format('batch since {}', $$.Execution.StartTime)", "batch_output.$": "$.transform.output"})
        if deployment.batch_input_prefix and self._after_batch is not None:
            return transform.next(record).next(self._after_batch(done))
        return transform.next(record).next(done)
