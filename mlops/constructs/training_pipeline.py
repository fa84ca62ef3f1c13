"""The training-to-deployment state machine: prepare data, train, evaluate, gate, register,
(approve), deploy, notify."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import StageConfig, dataset_columns
from mlops.constructs.access import grant_prefix
from mlops.constructs.model_monitor import CAPTURE_PREFIX, ModelMonitorSetup
from mlops.constructs.pipeline_function import PipelineFunction, powertools_layer
from mlops.constructs.sagemaker_jobs import allow_job_runtime, processing_input, read_assets
from mlops.nag import acknowledge

JOBS_DIR = Path(__file__).resolve().parent.parent.parent / "jobs"
VARIANT = "AllTraffic"
ASYNC_INPUT_PREFIX = "async-input/"    # artifacts bucket: where clients upload async inference requests
ASYNC_OUTPUT_PREFIX = "async-output/"  # artifacts bucket: where SageMaker writes their results
DEPLOYMENT_MODES = ("realtime", "serverless", "async", "batch")  # the branches this state machine has
ENDPOINT_POLL = cdk.Duration.seconds(60)
# Bounds every API-call task (Lambda handlers run in seconds; a hung call must not hold the run).
API_TIMEOUT = sfn.Timeout.duration(cdk.Duration.minutes(5))
# Throttling, internal errors and account limits (e.g. no spot capacity yet) are worth retrying.
SAGEMAKER_TRANSIENT = ["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException",
                       "SageMaker.ResourceLimitExceeded"]


def _with_suffix(name_path: str) -> str:
    """A job name unique across retries and redrives (SageMaker rejects reused names)."""
    return f"States.Format('{{}}-{{}}-{{}}', {name_path}, $$.Execution.RedriveCount, $$.State.RetryCount)"


class TrainingPipeline(Construct):
    """Provisions the stage's Standard state machine (``state_machine``) and what it needs:
    four handler functions, the SageMaker execution role, endpoint rollback alarms, the
    evaluation script as an S3 asset and, with manual approval, the EventBridge rule
    that resumes a waiting run when a version is approved or rejected in the registry.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data_key: kms.IKey,
        data_exports: dict[str, str],
        data_machine: sfn.IStateMachine,
        image_uri: str,
        raw_bucket: s3.IBucket,
        raw_prefix: str,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        monitoring_bucket: s3.IBucket,
        model_package_group_name: str,
        topic: sns.ITopic,
        topic_key: kms.IKey,
        monitor_image: tuple[str, str] | None = None,
    ) -> None:
        """``monitor_image``: (URI, ECR repository) of Model Monitor's analyzer, for the
        ``model-monitor`` backend."""
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._config = config
        self._exports = data_exports
        self._artifacts_bucket_name = artifacts_bucket.bucket_name
        self._curated_bucket_name = curated_bucket.bucket_name
        pipeline, training, deployment = config.pipeline, config.training, config.deployment
        prefix = config.resource_prefix
        self.endpoint_name = f"{prefix}-endpoint"
        self.serverless_endpoint_name = f"{prefix}-serverless"
        self.async_endpoint_name = f"{prefix}-async"
        endpoint_arns = [stack.format_arn(service="sagemaker", resource="endpoint", resource_name=name)
                         for name in (self.endpoint_name, self.serverless_endpoint_name, self.async_endpoint_name)]
        self._endpoint_arns = endpoint_arns
        self._group = model_package_group_name
        self._group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=model_package_group_name)
        self._package_arns = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{model_package_group_name}/*")
        retention = logs.RetentionDays.ONE_YEAR if config.protection.retain_stateful_resources else logs.RetentionDays.ONE_MONTH

        self.image_uri = image_uri
        scripts = {
            name: s3_assets.Asset(self, f"{name.capitalize()}Script", path=str(JOBS_DIR / name / f"{script}.py"))
            for name, script in (("evaluation", "evaluate"),)
        }

        # --- roles -----------------------------------------------------------------
        self.sagemaker_role = self._sagemaker_role(
            data_key, curated_bucket, artifacts_bucket, list(scripts.values())
        )

        # What SageMaker does as the model's execution role while serving ("Asynchronous
        # inference" and "Data capture" in the SageMaker Developer Guide): read each async
        # request clients upload under ASYNC_INPUT_PREFIX, write its result under
        # ASYNC_OUTPUT_PREFIX and report it to one of these topics (KMS, SSL-only), and write
        # the endpoints' captured requests and responses under CAPTURE_PREFIX.
        self.async_topics = {
            outcome: sns.Topic(self, f"Async{outcome.capitalize()}Topic", master_key=data_key, enforce_ssl=True,
                               display_name=f"{prefix} async inference {outcome}")
            for outcome in ("success", "error")
        }
        self.sagemaker_role.add_to_policy(iam.PolicyStatement(
            actions=["sns:Publish"], resources=[topic.topic_arn for topic in self.async_topics.values()]))
        self._s3_access(self.sagemaker_role, "artifacts", artifacts_bucket, ASYNC_INPUT_PREFIX,
                        "read the async inference requests clients upload, one object per request")
        self._s3_access(self.sagemaker_role, "artifacts", artifacts_bucket, ASYNC_OUTPUT_PREFIX,
                        "write async inference results, one object per request", write=True)
        self._s3_access(self.sagemaker_role, "monitoring", monitoring_bucket, CAPTURE_PREFIX,
                        "write the captured requests and responses of the endpoints, one object per few minutes",
                        write=True)

        # --- functions ---------------------------------------------------------------
        layer = powertools_layer(self, "Powertools", pipeline.powertools_layer_version)
        common = dict(layer=layer, log_key=data_key, log_retention=retention)
        self.model_monitor: ModelMonitorSetup | None = None
        if config.monitoring.backend == "model-monitor":
            if monitor_image is None:
                raise ValueError("monitoring.backend model-monitor needs Model Monitor's analyzer image")
            self.model_monitor = ModelMonitorSetup(
                self, "ModelMonitor", config=config, data_key=data_key, data_exports=data_exports,
                curated_bucket=curated_bucket, artifacts_bucket=artifacts_bucket, monitoring_bucket=monitoring_bucket,
                image_uri=monitor_image[0], image_repository=monitor_image[1], layer=layer, retention=retention)
        prepare = PipelineFunction(self, "PrepareRun", folder="prepare_run",
                                   description=f"{prefix}: validate run input, derive names", **common)
        prepare.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateExperiment", "sagemaker:CreateTrial"],
            resources=[
                stack.format_arn(service="sagemaker", resource="experiment", resource_name=f"{prefix}-experiments"),
                stack.format_arn(service="sagemaker", resource="experiment-trial", resource_name=f"{prefix}-run-*"),
            ],
        ))
        acknowledge(prepare.role, "AwsSolutions-IAM5", "One SageMaker Experiments trial per run, named from the "
                    "execution: the wildcard covers this stage's run trials only.",
                    applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:experiment-trial/{prefix}-run-*")
        gate = PipelineFunction(self, "MetricGate", folder="metric_gate",
                                description=f"{prefix}: metric gate (thresholds, champion/challenger)", **common)
        self._s3_access(gate.role, "artifacts", artifacts_bucket, "runs/", "read the run's evaluation.json and the champion's")
        gate.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[self._package_arns]))
        self._acknowledge_packages(gate.role, "the gate reads the champion version's metrics")
        gate.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"]))
        data_key.grant(gate.role, "kms:Decrypt")
        acknowledge(gate.role, "AwsSolutions-IAM5", "sagemaker:ListModelPackages supports no resource-level "
                    "permissions; the gate lists the approved versions of its own group to find the champion.",
                    applies_to="Resource::*")
        check = PipelineFunction(self, "CheckEndpoint", folder="check_endpoint",
                                 description=f"{prefix}: endpoint exists / busy before deploying", **common)
        check.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint"],
            resources=endpoint_arns,
        ))
        # does autoscaling block the update? (the serving config's instance types, the registered targets)
        check.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpointConfig"],
            resources=[stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name=f"{prefix}-config-*")],
        ))
        check.role.add_to_policy(iam.PolicyStatement(actions=["application-autoscaling:DescribeScalableTargets"],
                                                     resources=["*"]))
        acknowledge(check.role, "AwsSolutions-IAM5", "application-autoscaling:DescribeScalableTargets supports no "
                    "resource-level permissions; the handler asks about the stage's own endpoint variants only.",
                    applies_to="Resource::*")
        acknowledge(check.role, "AwsSolutions-IAM5", "Endpoint config names are derived per run; the handler reads the "
                    "config the endpoint serves to compare instance types.",
                    applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint-config/{prefix}-config-*")
        self.functions = {"prepare_run": prepare, "metric_gate": gate, "check_endpoint": check}
        if self.model_monitor:
            self.functions["schedule_model_monitor"] = self.model_monitor.function
        approval = None
        if pipeline.manual_approval:
            approval = PipelineFunction(
                self, "Approval", folder="approval", description=f"{prefix}: bridge registry approval to the waiting run",
                environment={"TOKEN_BUCKET": artifacts_bucket.bucket_name}, **common,
            )
            self._s3_access(approval.role, "artifacts", artifacts_bucket, "approvals/",
                            "store and read the waiting run's task token, keyed by model package", write=True, delete=True)
            data_key.grant(approval.role, "kms:Decrypt", "kms:GenerateDataKey")
            approval.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[self._package_arns]))
            self._acknowledge_packages(approval.role, "it reads the approval status of the version the run registered")
            self.functions["approval"] = approval
        for function in self.functions.values():
            self._acknowledge_function(function)

        # --- rollback alarms (blue/green updates roll back when one fires) ----------
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": VARIANT}
        self.rollback_alarms = [
            cloudwatch.Alarm(
                self, "Endpoint5xxAlarm",
                alarm_name=f"{prefix}-endpoint-5xx",
                alarm_description="Endpoint returns 5XX errors: blue/green updates roll back",
                metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocation5XXErrors",
                                         dimensions_map=dimensions, statistic="Sum", period=cdk.Duration.minutes(1)),
                threshold=1, evaluation_periods=2, datapoints_to_alarm=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "EndpointLatencyAlarm",
                alarm_name=f"{prefix}-endpoint-latency-p99",
                alarm_description="Endpoint p99 model latency above 1 s: blue/green updates roll back",
                metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="ModelLatency",
                                         dimensions_map=dimensions, statistic="p99", period=cdk.Duration.minutes(1)),
                threshold=1_000_000, evaluation_periods=3, datapoints_to_alarm=3,  # microseconds
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        # SageMaker reads the rollback alarms during a blue/green update as the execution role
        # ("Auto-Rollback Configuration and Monitoring": the role needs cloudwatch:DescribeAlarms).
        self.sagemaker_role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:DescribeAlarms"], resources=[alarm.alarm_arn for alarm in self.rollback_alarms]))

        # --- the workflow ------------------------------------------------------------
        self._topic = topic
        # Fail re-raises the pipeline's own error names (InvalidExecutionInput, DeploymentRolledBack...);
        # Step Functions' reserved States.* names (a failed job is States.TaskFailed) become
        # StepFailed, with the original name kept at the front of the cause.
        failed = sfn.Fail(self, "Run failed", error_path="$.error.Error", cause_path="$.error.Cause")
        step_failed = sfn.Fail(self, "Step failed", error="StepFailed",
                               cause_path="States.Format('{}: {}', $.error.Error, $.error.Cause)")
        # The data state machine's quality gate surfaces under its own name, so a run stopped
        # by bad data reads DataQualityFailed (with the failed rules in the cause).
        data_failed = sfn.Fail(self, "Data quality failed", error="DataQualityFailed", cause_path="$.error.Cause")
        self._notify_failure = self._notify("Notify failure", "FAILED", "$.error.Cause").next(
            sfn.Choice(self, "Reserved error name?")
            .when(sfn.Condition.string_matches("$.error.Cause", "*DataQualityFailed*"), data_failed)
            .when(sfn.Condition.string_matches("$.error.Error", "States.*"), step_failed)
            .otherwise(failed))

        prepare_run = tasks.LambdaInvoke(
            self, "Prepare run",
            task_timeout=API_TIMEOUT,
            lambda_function=prepare.function,
            payload=sfn.TaskInput.from_object({
                "input": sfn.JsonPath.string_at("$$.Execution.Input"),
                "execution": {"id": sfn.JsonPath.execution_id, "name": sfn.JsonPath.execution_name},
                "defaults": {
                    "stem": prefix,
                    "dataset": pipeline.dataset,
                    "problem_type": pipeline.problem_type,
                    "label": dataset_columns(pipeline.dataset)[-1],
                    "hyperparameters": dict(pipeline.hyperparameters),
                    "tuning": bool(pipeline.tuning and pipeline.tuning.run_by_default),
                    "tuning_available": pipeline.tuning is not None,
                    "tuned_hyperparameters": [r.name for r in pipeline.tuning.ranges] if pipeline.tuning else [],
                    "deployment_mode": deployment.mode,
                    "deployment_modes": list(DEPLOYMENT_MODES),
                    "raw_bucket": raw_bucket.bucket_name,
                    "raw_prefix": raw_prefix,
                    "curated_bucket": curated_bucket.bucket_name,
                    "artifacts_bucket": artifacts_bucket.bucket_name,
                    "experiment": f"{prefix}-experiments",
                },
            }),
            result_selector={"run.$": "$.Payload"},
            result_path="$",
            comment="Validate the execution input and derive every name of the run",
        )
        prepare_run.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")

        prepare_data = tasks.StepFunctionsStartExecution(
            self, "Prepare data",
            state_machine=data_machine,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            associate_with_parent=True,
            name=sfn.JsonPath.string_at("$.run.names.data"),
            input=sfn.TaskInput.from_object({
                "output_prefix": sfn.JsonPath.string_at("$.run.s3.data"),
                "trigger": {"source": "training", "run.$": "$.run.names.run"},
            }),
            result_selector={"execution.$": "$.ExecutionArn", "quality_report.$": "$.Output.quality_report",
                             "rules_checked.$": "$.Output.rules_checked"},
            result_path="$.data",
            task_timeout=sfn.Timeout.duration(cdk.Duration.hours(pipeline.execution_timeout_hours)),
            comment="The data state machine: validate, clean, split 80/10/10, catalogue, ingest features",
        )
        prepare_data.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")

        max_runtime = training.max_runtime_minutes * 60
        train_parameters = {
            "TrainingJobName.$": _with_suffix("$.run.names.train"),
            "RoleArn": self.sagemaker_role.role_arn,
            "AlgorithmSpecification": {"TrainingImage": self.image_uri, "TrainingInputMode": "File"},
            "HyperParameters.$": "$.run.hyperparameters",
            "InputDataConfig": [self._channel(name) for name in ("train", "validation")],
            "OutputDataConfig": {"S3OutputPath.$": "$.run.s3.output", "KmsKeyId": data_key.key_arn},
            "ResourceConfig": {
                "InstanceCount": training.instance_count, "InstanceType": training.instance_type,
                "VolumeSizeInGB": training.volume_size_gb, "VolumeKmsKeyId": data_key.key_arn},
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
            "EnableInterContainerTrafficEncryption": training.instance_count > 1,
            "ExperimentConfig": self._experiment_config("train"),
        }
        if training.use_spot_instances:
            train_parameters["EnableManagedSpotTraining"] = True
            train_parameters["StoppingCondition"]["MaxWaitTimeInSeconds"] = 2 * max_runtime
            train_parameters["CheckpointConfig"] = {"S3Uri.$": "$.run.s3.checkpoints"}
        train = self._job("Train model", "createTrainingJob", train_parameters, result_selector={
            "job_name.$": "$.TrainingJobName",
            "model_data.$": "$.ModelArtifacts.S3ModelArtifacts",
            "hyperparameters.$": "$.HyperParameters",
        }, result_path="$.training", comment="Built-in XGBoost on the train/validation splits",
            timeout_seconds=train_parameters["StoppingCondition"].get("MaxWaitTimeInSeconds", max_runtime))

        evaluate = self._job("Evaluate on test split", "createProcessingJob", {
            "ProcessingJobName.$": _with_suffix("$.run.names.eval"),
            "RoleArn": self.sagemaker_role.role_arn,
            "AppSpecification": {
                "ImageUri": self.image_uri,
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/code/{scripts['evaluation'].s3_object_key}"],
                "ContainerArguments.$": (
                    f"States.Array('--problem-type', $.run.problem_type, '--threshold', '{pipeline.classification_threshold}')"
                ),
            },
            "ProcessingInputs": [
                processing_input("code", scripts["evaluation"].s3_object_url, "/opt/ml/processing/code"),
                processing_input("model", "$.training.model_data", "/opt/ml/processing/model"),
                processing_input("test", "$.run.s3.test", "/opt/ml/processing/test"),
            ],
            "ProcessingOutputConfig": {"KmsKeyId": data_key.key_arn, "Outputs": [{
                "OutputName": "evaluation",
                "S3Output": {"S3Uri.$": "$.run.s3.evaluation", "LocalPath": "/opt/ml/processing/evaluation",
                             "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": pipeline.evaluation_instance_type,
                "VolumeSizeInGB": 30, "VolumeKmsKeyId": data_key.key_arn}},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "ExperimentConfig": self._experiment_config("eval"),
        }, result_selector={"job_name.$": "$.ProcessingJobName",
                            "report.$": "States.Format('{}evaluation.json', $.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri)"},
            result_path="$.evaluation", comment="Full metric set of the problem type, scikit-learn")

        metric_gate = tasks.LambdaInvoke(
            self, "Check metric gate",
            task_timeout=API_TIMEOUT,
            lambda_function=gate.function,
            payload=sfn.TaskInput.from_object({
                "evaluation_uri": sfn.JsonPath.string_at("$.evaluation.report"),
                "thresholds": [threshold.model_dump() for threshold in pipeline.metric_thresholds],
                "champion_margin": pipeline.champion_margin,
                "model_package_group": model_package_group_name,
            }),
            result_selector={"passed.$": "$.Payload.passed", "summary.$": "$.Payload.summary",
                             "candidate.$": "$.Payload.candidate", "champion.$": "$.Payload.champion"},
            result_path="$.gate",
            comment="Business thresholds and champion/challenger",
        )
        metric_gate.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        gate_failed = self._notify("Notify gate failed", "REJECTED BY METRIC GATE", "$.gate.summary").next(
            sfn.Fail(self, "Metric gate failed", error="MetricGateFailed", cause_path="$.gate.summary")
        )

        register = self._register(pipeline, deployment, data_key)
        deploy = self._deploy(deployment, data_key, monitoring_bucket, check)

        if approval is not None:  # manual approval: wait for the registry's decision, then deploy
            chain = register.next(self._approval(approval, pipeline.approval_timeout_hours, deploy))
        else:
            chain = register.next(deploy)

        model_source: sfn.IChainable = train
        if pipeline.tuning is not None:
            model_source = (
                sfn.Choice(self, "Tune hyperparameters?")
                .when(sfn.Condition.boolean_equals("$.run.tuning", True),
                      self._tuning(pipeline.tuning, train_parameters))
                .otherwise(train)
                .afterwards()
            )
        definition = (
            prepare_run.next(prepare_data).next(model_source).next(evaluate).next(metric_gate)
            .next(sfn.Choice(self, "Metric gate passed?")
                  .when(sfn.Condition.boolean_equals("$.gate.passed", True), chain)
                  .otherwise(gate_failed))
        )

        timeout = cdk.Duration.hours(pipeline.execution_timeout_hours + (pipeline.approval_timeout_hours if pipeline.manual_approval else 0))
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=f"{prefix}-training",
            comment=f"{prefix}: prepare data, train, evaluate, gate, register, deploy",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            query_language=sfn.QueryLanguage.JSON_PATH,
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "ExecutionLogs", encryption_key=data_key, retention=retention,
                                          removal_policy=cdk.RemovalPolicy.DESTROY),
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
        )
        self._grant_state_machine(data_key, topic_key, artifacts_bucket)
        if approval is not None:
            self._approval_rule(approval, data_key)

    def _tuning(self, tuning, train_parameters: dict) -> sfn.IChainable:
        """Automatic model tuning; the best training job then stands where "Train model"'s
        result would (``$.training``), so evaluation, registry and deployment use its model."""
        ranges: dict[str, list] = {"ContinuousParameterRanges": [], "IntegerParameterRanges": [],
                                   "CategoricalParameterRanges": []}
        for r in tuning.ranges:
            if r.type == "categorical":
                ranges["CategoricalParameterRanges"].append({"Name": r.name, "Values": list(r.values)})
            else:
                bounds = (str(int(r.min)), str(int(r.max))) if r.type == "integer" else (f"{r.min:g}", f"{r.max:g}")
                key = "IntegerParameterRanges" if r.type == "integer" else "ContinuousParameterRanges"
                ranges[key].append({"Name": r.name, "MinValue": bounds[0], "MaxValue": bounds[1], "ScalingType": r.scaling})
        definition = {key: value for key, value in train_parameters.items()
                      if key not in ("TrainingJobName.$", "HyperParameters.$", "ExperimentConfig")}
        definition["StaticHyperParameters.$"] = "$.run.static_hyperparameters"
        rounds = -(-tuning.max_jobs // tuning.max_parallel_jobs)  # ceil: sequential waves of parallel jobs
        per_job = train_parameters["StoppingCondition"].get("MaxWaitTimeInSeconds",
                                                            train_parameters["StoppingCondition"]["MaxRuntimeInSeconds"])
        tune = self._job("Tune hyperparameters", "createHyperParameterTuningJob", {
            "HyperParameterTuningJobName.$": _with_suffix("$.run.names.tune"),
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {"Type": tuning.objective_type, "MetricName": tuning.objective_metric},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": tuning.max_jobs,
                                   "MaxParallelTrainingJobs": tuning.max_parallel_jobs},
                "ParameterRanges": {key: value for key, value in ranges.items() if value},
                "TrainingJobEarlyStoppingType": tuning.early_stopping,
            },
            "TrainingJobDefinition": definition,
        }, result_selector={
            "job_name.$": "$.HyperParameterTuningJobName",
            "best_training_job.$": "$.BestTrainingJob.TrainingJobName",
            "objective.$": "$.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric",
        }, result_path="$.tuning_job", comment=f"{tuning.max_jobs} jobs, {tuning.objective_type} {tuning.objective_metric}",
            timeout_seconds=rounds * per_job)
        stack = cdk.Stack.of(self)
        best = tasks.CallAwsService(
            self, "Describe best training job",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="describeTrainingJob",
            parameters={"TrainingJobName.$": "$.tuning_job.best_training_job"},
            iam_resources=[stack.format_arn(service="sagemaker", resource="training-job",
                                            resource_name=f"{self._config.resource_prefix}-*")],
            iam_action="sagemaker:DescribeTrainingJob",
            result_selector={"job_name.$": "$.TrainingJobName", "model_data.$": "$.ModelArtifacts.S3ModelArtifacts",
                             "hyperparameters.$": "$.HyperParameters"},
            result_path="$.training",
            comment="The best job's model and hyperparameters flow on as the run's model",
        )
        best.add_retry(errors=["SageMaker.SageMakerException", "SageMaker.ThrottlingException"],
                       interval=cdk.Duration.seconds(5), backoff_rate=2, max_attempts=3)
        best.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return tune.next(best)

    # ------------------------------------------------------------------ helpers
    def _experiment_config(self, kind: str) -> dict[str, str]:
        return {
            "ExperimentName.$": "$.run.names.experiment",
            "TrialName.$": "$.run.names.run",
            "TrialComponentDisplayName": kind,
        }

    @staticmethod
    def _channel(name: str) -> dict:
        return {"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri.$": f"$.run.s3.{name}", "S3DataDistributionType": "FullyReplicated"}}}

    def _job(self, name: str, action: str, parameters: dict, *, result_selector: dict, result_path: str,
             comment: str, timeout_seconds: int = 3600) -> sfn.CustomState:
        """A SageMaker ``.sync`` job (CDK's task classes lack spot, checkpoints, experiments
        and processing jobs), with retries on transient API errors and a catch to the
        failure notification."""
        state = sfn.CustomState(self, name, state_json={
            "Type": "Task",
            "Comment": comment,
            "Resource": f"arn:{cdk.Aws.PARTITION}:states:::sagemaker:{action}.sync",
            "Parameters": parameters,
            "ResultSelector": result_selector,
            "ResultPath": result_path,
            # the job's own stopping condition plus time to start, upload and report
            "TimeoutSeconds": timeout_seconds + 900,
        })
        state.add_retry(errors=SAGEMAKER_TRANSIENT, interval=cdk.Duration.seconds(15), backoff_rate=2, max_attempts=4)
        state.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return state

    def _notify(self, name: str, outcome: str, detail_path: str) -> tasks.SnsPublish:
        return tasks.SnsPublish(
            self, name,
            task_timeout=API_TIMEOUT,
            topic=self._topic,
            subject=f"{self._config.resource_prefix} training pipeline: {outcome}"[:100],
            message=sfn.TaskInput.from_text(sfn.JsonPath.format(
                f"Execution {{}} {outcome}: {{}}", sfn.JsonPath.execution_id, sfn.JsonPath.string_at(detail_path))),
            result_path=sfn.JsonPath.DISCARD,
        )

    def _register(self, pipeline, deployment, data_key: kms.IKey) -> tasks.CallAwsService:
        status = "PendingManualApproval" if pipeline.manual_approval else "Approved"
        metadata = {"GeneratedBy.$": "$$.Execution.Id", "CommitId": pipeline.source_revision}
        if pipeline.source_repository:
            metadata["Repository"] = pipeline.source_repository
        register = tasks.CallAwsService(
            self, "Register model version",
            task_timeout=API_TIMEOUT,
            service="sagemaker",
            action="createModelPackage",
            parameters={
                "ModelPackageGroupName": self._group,
                "ModelPackageDescription.$": "States.Format('Execution {} (trigger: {})', $$.Execution.Name, $.run.trigger.source)",
                "ClientToken.$": "$.run.names.model",
                "ModelApprovalStatus": status,
                "InferenceSpecification": {
                    "Containers": [{"Image": self.image_uri, "ModelDataUrl.$": "$.training.model_data"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                    "SupportedRealtimeInferenceInstanceTypes": [deployment.instance_type],
                    "SupportedTransformInstanceTypes": [deployment.instance_type],
                },
                "ModelMetrics": {"ModelQuality": {"Statistics": {
                    "ContentType": "application/json", "S3Uri.$": "$.evaluation.report"}}},
                "MetadataProperties": metadata,
                "CustomerMetadataProperties": {
                    "training_job.$": "$.training.job_name",
                    "evaluation_job.$": "$.evaluation.job_name",
                    "train_data.$": "$.run.s3.train",
                    "validation_data.$": "$.run.s3.validation",
                    "test_data.$": "$.run.s3.test",
                    "raw_data.$": "$.run.s3.raw",
                    "trigger.$": "$.run.trigger.source",
                    "dataset": pipeline.dataset,
                },
            },
            iam_resources=[self._group_arn, self._package_arns],
            iam_action="sagemaker:CreateModelPackage",
            result_selector={"model_package_arn.$": "$.ModelPackageArn"},
            result_path="$.registration",
            comment=f"Model Registry, status {status}, with metrics and lineage",
        )
        register.add_retry(errors=["SageMaker.SageMakerException", "SageMaker.ThrottlingException"],
                           interval=cdk.Duration.seconds(5), backoff_rate=2, max_attempts=3)
        register.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return register

    def _approval(self, approval: PipelineFunction, timeout_hours: int, deploy: sfn.IChainable) -> sfn.IChainable:
        wait = tasks.LambdaInvoke(
            self, "Wait for approval",
            lambda_function=approval.function,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object({
                "task_token": sfn.JsonPath.task_token,
                "model_package_arn": sfn.JsonPath.string_at("$.registration.model_package_arn"),
            }),
            task_timeout=sfn.Timeout.duration(cdk.Duration.hours(timeout_hours)),
            result_path="$.approval",
            comment="Approve or reject the version in the Model Registry",
        )
        rejected = self._notify("Notify rejected", "NOT DEPLOYED (model version rejected)", "$.error.Cause").next(
            sfn.Succeed(self, "Model rejected", comment="Rejected in the registry: nothing deployed")
        )
        wait.add_catch(rejected, errors=["ModelRejected"], result_path="$.error")
        wait.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return wait.next(deploy)

    def _deploy(self, deployment, data_key: kms.IKey, monitoring_bucket: s3.IBucket,
                check: PipelineFunction) -> sfn.IChainable:
        stack = cdk.Stack.of(self)
        config_name = "$.run.names.config"
        create_model = tasks.SageMakerCreateModel(
            self, "Create model",
            task_timeout=API_TIMEOUT,
            model_name=sfn.JsonPath.string_at("$.run.names.model"),
            primary_container=tasks.ContainerDefinition(
                model_package_name=sfn.JsonPath.string_at("$.registration.model_package_arn")),
            role=self.sagemaker_role,
            result_path=sfn.JsonPath.DISCARD,
        )
        create_config = self._endpoint_config(
            "Create endpoint config",
            {
                "KmsKeyId": data_key.key_arn,
                "ProductionVariants": [{
                    "VariantName": VARIANT, "ModelName.$": "$.run.names.model",
                    "InstanceType": deployment.instance_type,
                    "InitialInstanceCount": deployment.initial_instance_count, "InitialVariantWeight": 1}],
                "DataCaptureConfig": self._data_capture(deployment, data_key, monitoring_bucket),
            },
            comment="KMS, data capture to the monitoring bucket",
        )
        create_serverless_config = self._endpoint_config(
            "Create serverless endpoint config",
            {
                "ProductionVariants": [{
                    "VariantName": VARIANT, "ModelName.$": "$.run.names.model",
                    "ServerlessConfig": {"MemorySizeInMB": deployment.serverless_memory_mb,
                                         "MaxConcurrency": deployment.serverless_max_concurrency}}],
            },
            comment="Serverless: no data capture, no KMS key on the config (no instance storage)",
        )
        create_async_config = self._endpoint_config(
            "Create async endpoint config",
            {
                "KmsKeyId": data_key.key_arn,
                "ProductionVariants": [{
                    "VariantName": VARIANT, "ModelName.$": "$.run.names.model",
                    "InstanceType": deployment.instance_type, "InitialInstanceCount": 1, "InitialVariantWeight": 1}],
                "AsyncInferenceConfig": {
                    "OutputConfig": {
                        "S3OutputPath": f"s3://{self._artifacts_bucket_name}/{ASYNC_OUTPUT_PREFIX}",
                        "KmsKeyId": data_key.key_arn,
                        "NotificationConfig": {"SuccessTopic": self.async_topics["success"].topic_arn,
                                               "ErrorTopic": self.async_topics["error"].topic_arn},
                    },
                    "ClientConfig": {"MaxConcurrentInvocationsPerInstance":
                                     deployment.async_max_concurrent_invocations_per_instance},
                },
                "DataCaptureConfig": self._data_capture(deployment, data_key, monitoring_bucket),
            },
            comment="Results to S3 (KMS), success/error to SNS, data capture",
        )
        use_realtime = sfn.Pass(self, "Use real-time endpoint", result_path="$.deploy", result=sfn.Result.from_object(
            {"endpoint_name": self.endpoint_name, "blue_green": True, "scaling": "target-tracking",
             "instance_types": [deployment.instance_type]}))
        use_serverless = sfn.Pass(self, "Use serverless endpoint", result_path="$.deploy", result=sfn.Result.from_object(
            {"endpoint_name": self.serverless_endpoint_name, "blue_green": False, "scaling": "none", "instance_types": []}))
        use_async = sfn.Pass(self, "Use async endpoint", result_path="$.deploy", result=sfn.Result.from_object(
            {"endpoint_name": self.async_endpoint_name, "blue_green": False, "scaling": "scale-to-zero",
             "instance_types": [deployment.instance_type]}))
        check_endpoint = tasks.LambdaInvoke(
            self, "Check endpoint",
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
            self, "Deregister scalable target",
            task_timeout=API_TIMEOUT,
            service="applicationautoscaling", action="deregisterScalableTarget",
            parameters={"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                        "ResourceId.$": f"States.Format('endpoint/{{}}/variant/{VARIANT}', $.deploy.endpoint_name)"},
            iam_resources=[stack.format_arn(service="application-autoscaling", resource="scalable-target", resource_name="*")],
            iam_action="application-autoscaling:DeregisterScalableTarget",
            result_path=sfn.JsonPath.DISCARD,
            comment="The instance type changes: SageMaker updates a scaled variant only once it is deregistered",
        )
        check_endpoint.add_retry(errors=["EndpointBusy"], interval=ENDPOINT_POLL, backoff_rate=1.5, max_attempts=8)
        endpoint_and_configs = [*self._endpoint_arns, stack.format_arn(
            service="sagemaker", resource="endpoint-config", resource_name=f"{self._config.resource_prefix}-config-*")]
        # CDK's SageMakerCreateEndpoint grants endpoint/* when the name comes from the state;
        # the SDK integration lets the grant name the stage's two endpoints only.
        create_endpoint = tasks.CallAwsService(
            self, "Create endpoint",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="createEndpoint",
            parameters={"EndpointName.$": "$.deploy.endpoint_name", "EndpointConfigName.$": config_name},
            iam_resources=endpoint_and_configs,
            iam_action="sagemaker:CreateEndpoint",
            result_path=sfn.JsonPath.DISCARD,
        )
        update_serverless = tasks.CallAwsService(
            self, "Update serverless endpoint",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="updateEndpoint",
            parameters={"EndpointName.$": "$.deploy.endpoint_name", "EndpointConfigName.$": config_name},
            iam_resources=endpoint_and_configs,
            iam_action="sagemaker:UpdateEndpoint",
            result_path=sfn.JsonPath.DISCARD,
            comment="Serverless endpoints take no blue/green config; SageMaker keeps the old config serving until the new one is ready",
        )
        update_endpoint = tasks.CallAwsService(
            self, "Update endpoint (blue-green)",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="updateEndpoint",
            parameters={
                "EndpointName": self.endpoint_name,
                "EndpointConfigName.$": config_name,
                "RetainAllVariantProperties": True,
                "DeploymentConfig": {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60},
                        "TerminationWaitInSeconds": deployment.termination_wait_minutes * 60,
                    },
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm.alarm_name} for alarm in self.rollback_alarms]},
                },
            },
            iam_resources=[stack.format_arn(service="sagemaker", resource="endpoint", resource_name=self.endpoint_name),
                           stack.format_arn(service="sagemaker", resource="endpoint-config",
                                            resource_name=f"{self._config.resource_prefix}-config-*")],
            iam_action="sagemaker:UpdateEndpoint",
            result_path=sfn.JsonPath.DISCARD,
            comment="Blue/green, auto-rollback on the endpoint alarms",
        )
        for state in (create_model, create_config, create_serverless_config, create_async_config, create_endpoint,
                      update_endpoint, update_serverless):
            state.add_retry(errors=SAGEMAKER_TRANSIENT + ["SageMaker.SageMakerException"],
                            interval=cdk.Duration.seconds(10), backoff_rate=2, max_attempts=3)
        deregister.add_retry(errors=["ApplicationAutoScaling.ConcurrentUpdateException",
                                     "ApplicationAutoScaling.InternalServiceException"],
                             interval=cdk.Duration.seconds(10), backoff_rate=2, max_attempts=3)
        for state in (create_model, create_config, create_serverless_config, create_async_config, check_endpoint,
                      create_endpoint, update_endpoint, update_serverless, deregister):
            state.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")

        # Bounded wait: at most wait_for_endpoint_minutes of polling, then give up (the
        # endpoint is left to SageMaker, which rolls a failed update back on its own).
        max_polls = max(1, deployment.wait_for_endpoint_minutes * 60 // ENDPOINT_POLL.to_seconds())
        start_wait = sfn.Pass(self, "Start waiting", result=sfn.Result.from_object({"polls": 0}), result_path="$.wait")
        wait = sfn.Wait(self, "Wait for endpoint", time=sfn.WaitTime.duration(ENDPOINT_POLL))
        describe = tasks.CallAwsService(
            self, "Describe endpoint",
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="describeEndpoint",
            parameters={"EndpointName.$": "$.deploy.endpoint_name"},
            iam_resources=self._endpoint_arns,
            result_selector={"status.$": "$.EndpointStatus", "config.$": "$.EndpointConfigName"},
            result_path="$.endpoint_state",
        )
        describe.add_retry(errors=["SageMaker.SageMakerException", "SageMaker.ThrottlingException"],
                           interval=cdk.Duration.seconds(5), backoff_rate=2, max_attempts=3)
        describe.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        count = sfn.Pass(self, "Count poll", parameters={"polls.$": "States.MathAdd($.wait.polls, 1)"}, result_path="$.wait")

        autoscaling = self._autoscaling(deployment)
        done = self._notify("Notify deployed", "DEPLOYED", "$.registration.model_package_arn").next(
            sfn.Succeed(self, "Model deployed"))
        rolled_back = sfn.Pass(self, "Update rolled back", parameters={
            "Error": "DeploymentRolledBack",
            "Cause.$": "States.Format('Endpoint {} rolled back to {}; it keeps serving the previous model', "
                       "$.deploy.endpoint_name, $.endpoint_state.config)",
        }, result_path="$.error")
        endpoint_failed = sfn.Pass(self, "Endpoint failed", parameters={
            "Error": "EndpointFailed", "Cause.$": "States.Format('Endpoint {} is Failed', $.deploy.endpoint_name)",
        }, result_path="$.error").next(self._notify_failure)
        timed_out = sfn.Pass(self, "Endpoint wait timed out", parameters={
            "Error": "EndpointWaitTimedOut",
            "Cause.$": f"States.Format('Endpoint {{}} not InService after {deployment.wait_for_endpoint_minutes} minutes', $.deploy.endpoint_name)",
        }, result_path="$.error").next(self._notify_failure)

        # In service on the new config: (re)register autoscaling, then finish. Rolled back to the
        # old config: register autoscaling again too (the variant may have been deregistered for
        # the update; registering is idempotent), then fail the run with the rollback's cause.
        target_tracking = sfn.Condition.string_equals("$.deploy.scaling", "target-tracking")
        serving_new_config = sfn.Condition.string_equals_json_path("$.endpoint_state.config", config_name)
        finish = sfn.Choice(self, "Deployment rolled back?").when(sfn.Condition.not_(serving_new_config), self._notify_failure)
        if self.model_monitor is not None:
            finish.when(target_tracking, self._schedule_monitoring(done))
        finish.otherwise(done)
        scale = (sfn.Choice(self, "Autoscale?")
                 .when(target_tracking, autoscaling.next(finish))
                 .when(sfn.Condition.string_equals("$.deploy.scaling", "scale-to-zero"),
                       self._scale_to_zero(deployment).next(finish))
                 .otherwise(finish))
        in_service = sfn.Condition.string_equals("$.endpoint_state.status", "InService")
        poll = wait.next(describe).next(
            sfn.Choice(self, "Endpoint in service?")
            .when(sfn.Condition.and_(in_service, serving_new_config), scale)
            .when(in_service, rolled_back.next(scale))
            .when(sfn.Condition.string_equals("$.endpoint_state.status", "Failed"), endpoint_failed)
            .otherwise(count.next(
                sfn.Choice(self, "Keep waiting?")
                .when(sfn.Condition.number_less_than("$.wait.polls", max_polls), wait)
                .otherwise(timed_out)))
        )
        start_wait.next(poll)
        create_endpoint.next(start_wait)
        update_endpoint.next(start_wait)
        update_serverless.next(start_wait)
        exists = (sfn.Choice(self, "Endpoint exists?")
                  .when(sfn.Condition.and_(sfn.Condition.boolean_equals("$.endpoint.exists", True),
                                           sfn.Condition.boolean_equals("$.deploy.blue_green", True)), update_endpoint)
                  .when(sfn.Condition.boolean_equals("$.endpoint.exists", True), update_serverless)
                  .otherwise(create_endpoint))
        check_endpoint.next(
            sfn.Choice(self, "Deregister autoscaling first?")
            .when(sfn.Condition.boolean_equals("$.endpoint.deregister_scaling", True), deregister.next(exists))
            .otherwise(exists)
        )
        create_config.next(use_realtime).next(check_endpoint)
        create_serverless_config.next(use_serverless).next(check_endpoint)
        create_async_config.next(use_async).next(check_endpoint)
        return create_model.next(
            sfn.Choice(self, "Deployment mode?")
            .when(sfn.Condition.string_equals("$.run.deployment_mode", "batch"), self._batch(deployment, data_key))
            .when(sfn.Condition.string_equals("$.run.deployment_mode", "serverless"), create_serverless_config)
            .when(sfn.Condition.string_equals("$.run.deployment_mode", "async"), create_async_config)
            .otherwise(create_config)
        )

    def _schedule_monitoring(self, done: sfn.IChainable) -> sfn.IChainable:
        """``model-monitor`` backend, after a real-time deployment: baseline the run's training
        split, then create or move the monitoring schedules. A failure here fails the run (and
        notifies); the endpoint keeps serving the new model, monitored against the old baseline."""
        assert self.model_monitor is not None
        baseline = self._job("Baseline for Model Monitor", "createProcessingJob",
                             self.model_monitor.baseline_parameters(_with_suffix("$.run.names.baseline")),
                             result_selector={"job_name.$": "$.ProcessingJobName"}, result_path="$.baseline",
                             comment="Model Monitor's analyzer suggests statistics and constraints from the training split",
                             timeout_seconds=self._config.monitoring.model_monitor.max_runtime_minutes * 60)
        schedule = tasks.LambdaInvoke(
            self, "Schedule Model Monitor", lambda_function=self.model_monitor.function.function,
            task_timeout=API_TIMEOUT, payload=self.model_monitor.schedule_payload(self.endpoint_name),
            result_selector={"data_quality.$": "$.Payload.data_quality", "model_quality.$": "$.Payload.model_quality"},
            result_path="$.monitoring", comment="Data-quality (and model-quality) schedule on the new baseline",
        )
        schedule.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return baseline.next(schedule).next(done)

    def _endpoint_config(self, name: str, parameters: dict, *, comment: str) -> tasks.CallAwsService:
        """CreateEndpointConfig through the SDK integration (CDK's task has no data capture,
        serverless or async settings); config names are per run, so the grant is by prefix."""
        stack = cdk.Stack.of(self)
        return tasks.CallAwsService(
            self, name,
            task_timeout=API_TIMEOUT,
            service="sagemaker", action="createEndpointConfig",
            parameters={"EndpointConfigName.$": "$.run.names.config", **parameters},
            iam_resources=[stack.format_arn(service="sagemaker", resource="endpoint-config",
                                            resource_name=f"{self._config.resource_prefix}-config-*")],
            iam_action="sagemaker:CreateEndpointConfig",
            result_path=sfn.JsonPath.DISCARD,
            comment=comment,
        )

    @staticmethod
    def _data_capture(deployment, data_key: kms.IKey, monitoring_bucket: s3.IBucket) -> dict:
        return {
            "EnableCapture": deployment.data_capture_percentage > 0,
            "InitialSamplingPercentage": deployment.data_capture_percentage,
            "DestinationS3Uri": f"s3://{monitoring_bucket.bucket_name}/{CAPTURE_PREFIX.rstrip('/')}",
            "KmsKeyId": data_key.key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }

    def _batch(self, deployment, data_key: kms.IKey) -> sfn.IChainable:
        """Batch transform. By default over the run's test split: the label column is filtered
        out of the request and joined back to the prediction, so the output reads
        ``label,prediction``. With ``deployment.batch_input_prefix``, over that prefix of the
        curated zone (feature-only CSV), one prediction per line."""
        if deployment.batch_input_prefix:
            source = {"S3DataType": "S3Prefix", "S3Uri": f"s3://{self._curated_bucket_name}/{deployment.batch_input_prefix}"}
            processing = None
        else:
            source = {"S3DataType": "S3Prefix", "S3Uri.$": "$.run.s3.test"}
            processing = {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
        parameters = {
            "TransformJobName.$": _with_suffix("$.run.names.transform"),
            "ModelName.$": "$.run.names.model",
            "TransformInput": {"DataSource": {"S3DataSource": source}, "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath.$": "$.run.s3.transform_output", "Accept": "text/csv",
                                "AssembleWith": "Line", "KmsKeyId": data_key.key_arn},
            "TransformResources": {"InstanceType": deployment.instance_type,
                                   "InstanceCount": deployment.initial_instance_count,
                                   "VolumeKmsKeyId": data_key.key_arn},
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 1},
        }
        if processing:
            parameters["DataProcessing"] = processing
        transform = self._job("Run batch transform", "createTransformJob", parameters,
                              result_selector={"job_name.$": "$.TransformJobName",
                                               "output.$": "$.TransformOutput.S3OutputPath"},
                              result_path="$.transform",
                              comment="label,prediction per test row" if processing else "one prediction per input line")
        return transform.next(self._notify("Notify batch done", "BATCH PREDICTIONS WRITTEN", "$.transform.output")).next(
            sfn.Succeed(self, "Batch predictions written"))

    def _autoscaling(self, deployment) -> sfn.INextable:
        stack = cdk.Stack.of(self)
        resource_id = f"endpoint/{self.endpoint_name}/variant/{VARIANT}"
        target_arn = stack.format_arn(service="application-autoscaling", resource="scalable-target", resource_name="*")
        register = tasks.CallAwsService(
            self, "Register scalable target",
            task_timeout=API_TIMEOUT,
            service="applicationautoscaling", action="registerScalableTarget",
            parameters={
                "ServiceNamespace": "sagemaker", "ResourceId": resource_id,
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "MinCapacity": deployment.initial_instance_count, "MaxCapacity": deployment.max_instance_count,
            },
            iam_resources=[target_arn],
            iam_action="application-autoscaling:RegisterScalableTarget",
            result_path=sfn.JsonPath.DISCARD,
        )
        policy = tasks.CallAwsService(
            self, "Put scaling policy",
            task_timeout=API_TIMEOUT,
            service="applicationautoscaling", action="putScalingPolicy",
            parameters={
                "PolicyName": f"{self.endpoint_name}-invocations",
                "ServiceNamespace": "sagemaker", "ResourceId": resource_id,
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": deployment.target_invocations_per_instance,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                    "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
                },
            },
            iam_resources=[target_arn],
            iam_action="application-autoscaling:PutScalingPolicy",
            result_path=sfn.JsonPath.DISCARD,
        )
        for state in (register, policy):
            state.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return sfn.Chain.start(register).next(policy)

    def _scale_to_zero(self, deployment) -> sfn.IChainable:
        """Async endpoints idle at zero instances: target tracking on the queue backlog per
        instance, plus a step policy that a HasBacklogWithoutCapacity alarm fires to wake the
        endpoint from zero (the alarm needs the policy's ARN, so it is created here too)."""
        stack = cdk.Stack.of(self)
        name = self.async_endpoint_name
        resource_id = f"endpoint/{name}/variant/{VARIANT}"
        target_arn = stack.format_arn(service="application-autoscaling", resource="scalable-target", resource_name="*")
        common = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id,
                  "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
        register = tasks.CallAwsService(
            self, "Register async scalable target", task_timeout=API_TIMEOUT,
            service="applicationautoscaling", action="registerScalableTarget",
            parameters={**common, "MinCapacity": 0, "MaxCapacity": deployment.async_max_instance_count},
            iam_resources=[target_arn], iam_action="application-autoscaling:RegisterScalableTarget",
            result_path=sfn.JsonPath.DISCARD,
        )
        backlog = tasks.CallAwsService(
            self, "Put backlog scaling policy", task_timeout=API_TIMEOUT,
            service="applicationautoscaling", action="putScalingPolicy",
            parameters={**common, "PolicyName": f"{name}-backlog", "PolicyType": "TargetTrackingScaling",
                        "TargetTrackingScalingPolicyConfiguration": {
                            "TargetValue": deployment.async_target_backlog_per_instance,
                            "CustomizedMetricSpecification": {
                                "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
                                "Dimensions": [{"Name": "EndpointName", "Value": name}], "Statistic": "Average"},
                            "ScaleInCooldown": 600, "ScaleOutCooldown": 300}},
            iam_resources=[target_arn], iam_action="application-autoscaling:PutScalingPolicy",
            result_path=sfn.JsonPath.DISCARD,
        )
        wake = tasks.CallAwsService(
            self, "Put wake-from-zero policy", task_timeout=API_TIMEOUT,
            service="applicationautoscaling", action="putScalingPolicy",
            parameters={**common, "PolicyName": f"{name}-wake-from-zero", "PolicyType": "StepScaling",
                        "StepScalingPolicyConfiguration": {
                            "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average", "Cooldown": 300,
                            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}},
            iam_resources=[target_arn], iam_action="application-autoscaling:PutScalingPolicy",
            result_selector={"policy_arn.$": "$.PolicyARN"}, result_path="$.wake",
        )
        alarm_name = f"{name}-backlog-without-capacity"
        alarm = tasks.CallAwsService(
            self, "Put wake-from-zero alarm", task_timeout=API_TIMEOUT,
            service="cloudwatch", action="putMetricAlarm",
            parameters={
                "AlarmName": alarm_name,
                "AlarmDescription": "Requests are queued and the async endpoint has no instance: scale out from zero",
                "Namespace": "AWS/SageMaker", "MetricName": "HasBacklogWithoutCapacity",
                "Dimensions": [{"Name": "EndpointName", "Value": name}],
                "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2, "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "missing",
                "AlarmActions.$": "States.Array($.wake.policy_arn)",
                "Tags": [{"Key": key, "Value": value} for key, value in self._config.cost_allocation_tags.items()],
            },
            iam_resources=[stack.format_arn(service="cloudwatch", resource="alarm", resource_name=alarm_name,
                                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)],
            iam_action="cloudwatch:PutMetricAlarm",
            additional_iam_statements=[iam.PolicyStatement(
                actions=["cloudwatch:TagResource"],
                resources=[stack.format_arn(service="cloudwatch", resource="alarm", resource_name=alarm_name,
                                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)])],
            result_path=sfn.JsonPath.DISCARD,
        )
        for state in (register, backlog, wake, alarm):
            state.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return register.next(backlog).next(wake).next(alarm)

    # ------------------------------------------------------------------ IAM
    def _sagemaker_role(self, data_key, curated_bucket, artifacts_bucket, scripts) -> iam.Role:
        """The role SageMaker jobs and the endpoint's model assume: read the run's splits and
        the job scripts, write models and evaluations, pull the algorithm image."""
        role = iam.Role(self, "SageMakerRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description=f"{self._config.resource_prefix}: training, processing and hosting")
        self._s3_access(role, "curated", curated_bucket, f"{self._config.pipeline.dataset}/runs/",
                        "read each run's train/validation/test splits (the data state machine writes them)")
        self._s3_access(role, "artifacts", artifacts_bucket, "runs/",
                        "write and read per-run models, checkpoints and evaluations", write=True)
        read_assets(role, scripts)
        data_key.grant(role, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant")
        allow_job_runtime(role, "sagemaker-xgboost", "SageMaker execution role (training, evaluation, hosting)")
        role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        ))
        return role

    def _s3_access(self, role: iam.IRole, zone: str, bucket: s3.IBucket, prefix: str, why: str, *,
                   write: bool = False, delete: bool = False) -> None:
        grant_prefix(role, bucket, prefix, why, export_name=self._exports[zone], write=write, delete=delete)

    def _grant_state_machine(self, data_key: kms.IKey, topic_key: kms.IKey, artifacts_bucket: s3.IBucket) -> None:
        """What CustomState and the SageMaker/SNS tasks need beyond CDK's generated policy."""
        stack = cdk.Stack.of(self)
        prefix = self._config.resource_prefix
        arn = lambda resource, name: stack.format_arn(service="sagemaker", resource=resource, resource_name=name)  # noqa: E731
        role = self.state_machine.role
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="SageMakerJobs",
            actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                     "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                     "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
                     "sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
                     "sagemaker:StopHyperParameterTuningJob", "sagemaker:AddTags"],
            resources=[arn("training-job", f"{prefix}-*"), arn("processing-job", f"{prefix}-*"),
                       arn("transform-job", f"{prefix}-*"), arn("hyper-parameter-tuning-job", f"{prefix}-*")],
        ))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="SageMakerTagsOnDeployedResources",
            actions=["sagemaker:AddTags"],
            resources=[arn("model", f"{prefix}-model-*"), arn("endpoint-config", f"{prefix}-config-*"),
                       *self._endpoint_arns, self._package_arns],
        ))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="SyncJobEvents",
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[stack.format_arn(service="events", resource="rule", resource_name=f"StepFunctionsGetEventsForSageMaker{kind}JobsRule")
                       for kind in ("Training", "Processing", "Transform", "Tuning")],
        ))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="PassSageMakerRole",
            actions=["iam:PassRole"],
            resources=[self.sagemaker_role.role_arn, *([self.model_monitor.role.role_arn] if self.model_monitor else [])],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="BlueGreenRollbackAlarms", actions=["cloudwatch:DescribeAlarms"],
            resources=[alarm.alarm_arn for alarm in self.rollback_alarms],
        ))
        # Application Auto Scaling checks that whoever registers a scalable target or puts a
        # scaling policy may act on the target and its alarms itself ("Permissions validation
        # for Application Auto Scaling API calls on target resources"; the actions are those of
        # the service-linked role's policy, AWSApplicationAutoscalingSageMakerEndpointPolicy):
        # the stage's autoscaled endpoints, their configs, and the target-tracking alarms the
        # service names "TargetTracking-<resource id>-AlarmHigh/Low-<uuid>".
        scaled = [self.endpoint_name, self.async_endpoint_name]
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="AutoscalingTargetChecks",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig",
                     "sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=[*(arn("endpoint", name) for name in scaled), arn("endpoint-config", f"{prefix}-config-*")],
        ))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="AutoscalingTargetTrackingAlarms",
            actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            resources=[stack.format_arn(service="cloudwatch", resource="alarm", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                                        resource_name=f"TargetTracking-endpoint/{name}/variant/{VARIANT}-*")
                       for name in scaled],
        ))
        # The first registration in an account creates the service-linked role (and only that one).
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="AutoscalingServiceLinkedRole", actions=["iam:CreateServiceLinkedRole"],
            resources=[f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/aws-service-role/"
                       "sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"],
            conditions={"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
        ))
        topic_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        data_key.grant(role, "kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt")
        self._acknowledge_state_machine_role(role)

    def _approval_rule(self, approval: PipelineFunction, data_key: kms.IKey) -> None:
        approval.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
            # by name, not reference: the state machine already depends on this function
            resources=[cdk.Stack.of(self).format_arn(service="states", resource="stateMachine",
                                                     resource_name=f"{self._config.resource_prefix}-training",
                                                     arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)],
        ))
        dead_letters = sqs.Queue(self, "ApprovalDeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=data_key,
                                 enforce_ssl=True, retention_period=cdk.Duration.days(14))
        acknowledge(dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the approval rule's target.")
        events.Rule(
            self, "ApprovalDecided",
            description="A model version of this stage was approved or rejected in the registry",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [self._group], "ModelApprovalStatus": ["Approved", "Rejected"]},
            ),
            targets=[targets.LambdaFunction(approval.function, dead_letter_queue=dead_letters, retry_attempts=8,
                                            max_event_age=cdk.Duration.hours(24))],
        )

    def _acknowledge_state_machine_role(self, role: iam.IRole) -> None:
        stack = cdk.Stack.of(self)
        prefix = self._config.resource_prefix
        sagemaker = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
        reasons = {
            "Resource::*": "X-Ray tracing of executions (xray:PutTraceSegments and friends support no resource-level permissions)",
            f"Resource::{sagemaker}:training-job/{prefix}-*": "training job names are derived per execution, retry and redrive",
            f"Resource::{sagemaker}:processing-job/{prefix}-*": "evaluation job names are derived per execution",
            f"Resource::{sagemaker}:transform-job/{prefix}-*": "batch transform job names are derived per execution",
            f"Resource::{sagemaker}:hyper-parameter-tuning-job/{prefix}-*": "tuning job names are derived per execution",
            f"Resource::{sagemaker}:model/{prefix}-model-*": "model names are derived per execution",
            f"Resource::{sagemaker}:endpoint-config/{prefix}-config-*": "endpoint config names are derived per execution (configs are immutable)",
            f"Resource::{sagemaker}:model-package/{prefix}-models/*": "versions of this stage's model package group are numbered by SageMaker",
            f"Resource::{sagemaker}:model/*": "CDK's SageMakerCreateModel task grants CreateModel on model/*; names are derived per execution",
            ("Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
             '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"DataStateMachineB4D5682D"}]}]}*'): (
                "CDK's StepFunctionsStartExecution .sync grant: describe and stop the data state machine's executions"),
            "Resource::arn:<AWS::Partition>:application-autoscaling:<AWS::Region>:<AWS::AccountId>:scalable-target/*": (
                "Application Auto Scaling assigns scalable-target ids itself; the request names the one endpoint variant"),
            **{f"Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:TargetTracking-endpoint/{name}/variant/{VARIANT}-*": (
                f"Application Auto Scaling names the target-tracking alarms of {name} itself (AlarmHigh/AlarmLow and a "
                "uuid) and checks the caller may create, read and delete them") for name in (self.endpoint_name, self.async_endpoint_name)},
        }
        for function in self.functions.values():
            logical_id = stack.get_logical_id(function.function.node.default_child)  # type: ignore[arg-type]
            reasons[f"Resource::<{logical_id}.Arn>:*"] = (
                f"CDK's LambdaInvoke grant covers the versions and aliases of the {function.function.node.scope.node.id} function")
        for finding, reason in reasons.items():
            acknowledge(role, "AwsSolutions-IAM5", f"Training state machine: {reason}.", applies_to=finding)

    def _acknowledge_packages(self, role: iam.IRole, why: str) -> None:
        acknowledge(role, "AwsSolutions-IAM5", f"Versions of this stage's model package group are numbered by "
                    f"SageMaker; {why}.",
                    applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/{self._group}/*")

    def _acknowledge_function(self, function: PipelineFunction) -> None:
        acknowledge(function.function, "AwsSolutions-L1",
                    f"The {function.node.id} handler is pinned to Python 3.13, the newest runtime the Powertools v3 "
                    "layer it imports is published for; moving on means moving the layer ARN too.")
