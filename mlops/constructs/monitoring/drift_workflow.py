"""The open-source monitoring workflow (``monitoring.backend: open-source``).

State machine ``<prefix>-monitoring``: "Prepare monitoring window" (the ``prepare_monitoring``
handler: the baseline is the approved model's training split, the captured data of the last
``window_hours`` listed into a manifest) → "Check drift" (``jobs/drift/drift.py`` as a SageMaker
Processing job on AWS's scikit-learn image: per-feature drift tests, Model Monitor-format
reports, CloudWatch metrics).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import MonitoringConfig, PipelineConfig
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import CAPTURE_PREFIX, StageResources
from mlops.constructs.sagemaker_jobs import allow_job_runtime, processing_input, read_assets
from mlops.constructs.workflow import (
    API_TIMEOUT, JOBS_DIR, FailureNames, catch_all, failure_ending, random_job_name, sagemaker_job, standard_state_machine,
)
from mlops.nag import acknowledge, acknowledge_inline_policy

MONITORING_PREFIX = "monitoring/"    # monitoring bucket: manifests and reports
BATCH_OUTPUTS = "runs/*/transform/"  # artifacts bucket: each run's batch transform output


def metrics_namespace(project: str) -> str:
    """The drift job's CloudWatch namespace (one per project; stage and endpoint are dimensions)."""
    return f"MLOps/{project}"


class DriftWorkflow:
    """Builds the workflow into ``scope`` (the ``Monitoring`` construct): the drift job's role,
    the ``prepare_monitoring`` function and the state machine. Exposes ``state_machine`` and
    ``function``."""

    def __init__(self, scope: Construct, *, resources: StageResources, monitoring: MonitoringConfig,
                 pipeline: PipelineConfig, group: str, endpoint_name: str, image_uri: str, image_repository: str) -> None:
        self._scope, self._resources, self._monitoring, self._pipeline = scope, resources, monitoring, pipeline
        self._endpoint, self._image_uri = endpoint_name, image_uri
        self._scripts = {name: s3_assets.Asset(scope, f"{name.capitalize()}Script", path=str(JOBS_DIR / name / f"{file}.py"))
                         for name, file in (("drift", "drift"), ("evaluation", "evaluate"))}
        self.role = self._job_role(image_repository)
        self.function = self._prepare_function(group)
        failed = failure_ending(
            scope, names=FailureNames(describe="Describe monitoring failure", notify="Notify monitoring failure",
                                      failed="Monitoring failed", undescribed="Monitoring failure not described"),
            resources=resources, state_machine_name=f"{resources.prefix}-monitoring",
            subject=f"{resources.prefix} monitoring run: FAILED")
        window = catch_all(tasks.LambdaInvoke(
            scope, "Prepare monitoring window", lambda_function=self.function.function, task_timeout=API_TIMEOUT,
            payload=sfn.TaskInput.from_object({
                "endpoint": endpoint_name, "model_package_group": group, "window_hours": monitoring.window_hours,
                "capture_uri": f"s3://{resources.bucket('monitoring').bucket_name}/{CAPTURE_PREFIX}",
                "output_uri": f"s3://{resources.bucket('monitoring').bucket_name}/{MONITORING_PREFIX}",
                "batch_uri": f"s3://{resources.bucket('artifacts').bucket_name}/runs/",
                "input": sfn.JsonPath.string_at("$$.Execution.Input"),
                "execution": sfn.JsonPath.execution_name}),
            result_selector={"window.$": "$.Payload"}, result_path="$", comment="Baseline and captured data of the window",
        ), failed)
        # The input may be any JSON; a Catch records the error at $.error, which needs an object.
        start = sfn.Pass(scope, "Start monitoring", parameters={"execution.$": "$$.Execution.Id"},
                         comment="The states after this one see an object, whatever the execution input is")
        definition = start.next(window).next(
            sfn.Choice(scope, "Captured data in the window?")
            .when(sfn.Condition.boolean_equals("$.window.has_data", True),
                  self._check(failed).next(sfn.Succeed(scope, "Monitoring done", comment="Reports under $.drift.report")))
            .otherwise(sfn.Succeed(scope, "Nothing to monitor", comment="No approved model or no captured data")))
        self.state_machine = standard_state_machine(
            scope, name=f"{resources.prefix}-monitoring", comment=f"{resources.prefix}: drift and model-quality check of "
            f"{endpoint_name}", definition=definition, timeout=cdk.Duration.hours(3), resources=resources)
        self._grant_state_machine()

    def _job_role(self, image_repository: str) -> iam.Role:
        """The drift job's role: read baseline and captured data, write reports, publish metrics."""
        resources = self._resources
        role = iam.Role(self._scope, "DriftJobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description=f"{resources.prefix}: drift and model-quality monitoring job")
        acknowledge_inline_policy(role, "The drift and model-quality job's role")
        resources.grant(role, "curated", f"{self._pipeline.dataset.name}/runs/", "read the serving model's training split")
        resources.grant(role, "monitoring", CAPTURE_PREFIX, "read captured inference data")
        resources.grant(role, "monitoring", MONITORING_PREFIX, "read manifests and ground truth, write reports", write=True)
        resources.grant(role, "artifacts", BATCH_OUTPUTS, "read batch transform outputs (a batch run's drift check)")
        read_assets(role, list(self._scripts.values()))
        resources.data_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant")
        role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": metrics_namespace(resources.project)}}))
        allow_job_runtime(role, image_repository, "Drift job role")
        return role

    def _prepare_function(self, group: str) -> PipelineFunction:
        resources, scope = self._resources, self._scope
        prepare = resources.function(scope, "PrepareMonitoring", folder="prepare_monitoring",
                                     description="monitoring window (baseline, captured data)")
        packages = resources.arn(scope, "sagemaker", "model-package", f"{group}/*")
        prepare.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages]))
        prepare.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"]))
        acknowledge(prepare.role, "AwsSolutions-IAM5", "sagemaker:ListModelPackages supports no resource-level "
                    "permissions; the handler lists the approved versions of its own group for the baseline.",
                    applies_to="Resource::*")
        acknowledge(prepare.role, "AwsSolutions-IAM5", "Versions of the stage's model package group are numbered by "
                    "SageMaker; the handler reads the approved one's lineage (its training split).",
                    applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/{group}/*")
        resources.grant(prepare.role, "monitoring", CAPTURE_PREFIX, "list the captured objects of the window")
        resources.grant(prepare.role, "monitoring", f"{MONITORING_PREFIX}manifests/", "write the window's manifest", write=True)
        resources.grant(prepare.role, "artifacts", BATCH_OUTPUTS, "list a batch run's transform output for its drift check")
        resources.data_key.grant(prepare.role, "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge(prepare.function, "AwsSolutions-L1", "The prepare-monitoring handler is pinned to Python 3.13, the "
                    "newest runtime the Powertools v3 layer it imports is published for.")
        return prepare

    def _check(self, failed: sfn.IChainable) -> sfn.CustomState:
        monitoring, pipeline, resources = self._monitoring, self._pipeline, self._resources
        scripts, bucket = self._scripts, resources.bucket("monitoring").bucket_name
        arguments = ["--baseline-dir", "/opt/ml/processing/baseline", "--capture-dir", "/opt/ml/processing/capture",
                     "--input-format", "auto",  # captured traffic, or a batch run's transform output
                     "--output-dir", "/opt/ml/processing/output",
                     "--evaluation-script", f"/opt/ml/processing/evaluation/{scripts['evaluation'].s3_object_key}",
                     "--features", ",".join(pipeline.dataset.features), "--problem-type", pipeline.problem_type,
                     "--threshold", str(pipeline.classification_threshold),
                     "--numeric-threshold", str(monitoring.numeric_drift_threshold),
                     "--categorical-threshold", str(monitoring.categorical_drift_threshold),
                     "--ks-alpha", str(monitoring.ks_alpha),
                     "--namespace", metrics_namespace(resources.project), "--endpoint", self._endpoint,
                     "--stage", resources.stage]
        inputs = [
            processing_input("code", scripts["drift"].s3_object_url, "/opt/ml/processing/code"),
            processing_input("evaluation", scripts["evaluation"].s3_object_url, "/opt/ml/processing/evaluation"),
            processing_input("baseline", "$.window.baseline", "/opt/ml/processing/baseline"),
            processing_input("capture", "$.window.manifest", "/opt/ml/processing/capture", manifest=True),
        ]
        if monitoring.categorical_columns:
            arguments += ["--categorical", ",".join(monitoring.categorical_columns)]
        if monitoring.ground_truth_prefix:
            arguments += ["--ground-truth-dir", "/opt/ml/processing/ground_truth"]
            inputs.append(processing_input("ground_truth", f"s3://{bucket}/{monitoring.ground_truth_prefix}",
                                           "/opt/ml/processing/ground_truth"))
        return sagemaker_job(self._scope, "Check drift", "createProcessingJob", {
            "ProcessingJobName.$": random_job_name(f"{resources.prefix}-drift"),
            "RoleArn": self.role.role_arn,
            "AppSpecification": {
                "ImageUri": self._image_uri,
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/code/{scripts['drift'].s3_object_key}"],
                "ContainerArguments": arguments,
            },
            "ProcessingInputs": inputs,
            "ProcessingOutputConfig": {"KmsKeyId": resources.data_key.key_arn, "Outputs": [{
                "OutputName": "report", "S3Output": {"S3Uri.$": "$.window.report", "LocalPath": "/opt/ml/processing/output",
                                                     "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": monitoring.instance_type,
                "VolumeSizeInGB": 30, "VolumeKmsKeyId": resources.data_key.key_arn}},
            "NetworkConfig": {"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": True},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        }, result_selector={"job_name.$": "$.ProcessingJobName",
                            "report.$": "$.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"},
            result_path="$.drift", on_failure=failed, tags=resources.tag_list,
            comment="jobs/drift/drift.py on AWS's scikit-learn image: effect size + KS/chi-square per feature, "
                    "Model Monitor-format reports, CloudWatch metrics")

    def _grant_state_machine(self) -> None:
        machine, resources, prefix = self.state_machine, self._resources, self._resources.prefix
        machine.add_to_role_policy(iam.PolicyStatement(
            sid="DriftJob", actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                                     "sagemaker:StopProcessingJob", "sagemaker:AddTags"],
            resources=[resources.arn(self._scope, "sagemaker", "processing-job", f"{prefix}-drift-*")]))
        machine.add_to_role_policy(iam.PolicyStatement(
            sid="SyncJobEvents", actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[resources.arn(self._scope, "events", "rule", "StepFunctionsGetEventsForSageMakerProcessingJobsRule")]))
        machine.add_to_role_policy(iam.PolicyStatement(
            sid="PassDriftRole", actions=["iam:PassRole"], resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        resources.data_key.grant(machine.role, "kms:CreateGrant", "kms:DescribeKey")
        resources.topic_key.grant(machine.role, "kms:GenerateDataKey", "kms:Decrypt")
        logical_id = cdk.Stack.of(self._scope).get_logical_id(self.function.function.node.default_child)  # type: ignore[arg-type]
        for finding, reason in {
            "Resource::*": "X-Ray tracing of executions (xray:PutTraceSegments and friends support no resource-level permissions)",
            f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:processing-job/{prefix}-drift-*": (
                "drift job names are derived per execution"),
            f"Resource::<{logical_id}.Arn>:*": "CDK's LambdaInvoke grant covers the versions and aliases of the "
                                                "PrepareMonitoring function",
        }.items():
            acknowledge(machine.role, "AwsSolutions-IAM5", f"Monitoring state machine: {reason}.", applies_to=finding)
