"""Monitoring, alarms, the dashboard and the retraining loop of a stage."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import StageConfig, dataset_columns
from mlops.constructs.access import grant_prefix
from mlops.constructs.model_monitor import CAPTURE_PREFIX, schedule_names
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.sagemaker_jobs import allow_job_runtime, processing_input, read_assets
from mlops.nag import acknowledge

JOBS_DIR = Path(__file__).resolve().parent.parent.parent / "jobs"
API_TIMEOUT = sfn.Timeout.duration(cdk.Duration.minutes(5))
MONITORING_PREFIX = "monitoring/"    # manifests and reports
RETRAINING_CRON = {  # EventBridge Scheduler cron (UTC): minutes hours day-of-month month day-of-week year
    "daily": "cron(0 4 * * ? *)",
    "weekly": "cron(0 4 ? * MON *)",
    "monthly": "cron(0 4 1 * ? *)",
}


def metrics_namespace(config: StageConfig) -> str:
    """The drift job's CloudWatch namespace (one per project; stage and endpoint are dimensions)."""
    return f"MLOps/{config.project}"


class Monitoring(Construct):
    """Provisions, for the stage's real-time endpoint:

    * the open-source monitoring workflow (``monitoring.backend: open-source``): state machine
      ``<prefix>-monitoring`` — prepare the window (baseline = the approved model's training
      split, captured data of the last ``window_hours`` listed into a manifest) → the drift job
      (SageMaker Processing on AWS's scikit-learn image, ``jobs/drift/drift.py``) writing Model
      Monitor-format reports and publishing CloudWatch metrics — started by EventBridge
      Scheduler at ``monitoring.schedule``;
    * with ``monitoring.backend: model-monitor`` no workflow (the training run sets Model Monitor
      up, see ``model_monitor.py``) but alarms on what Model Monitor emits, under the same names;
    * alarms to the operations topic: each state machine failed / timed out / aborted, endpoint
      5XX, 4XX rate, p99 latency, drift share, model quality (with ground truth);
    * a dashboard ``<prefix>-ml``: runs, endpoint health, drift over time;
    * retraining: the ``retrain`` handler, started by the retraining schedule and by the drift
      and quality alarms, with storm protection (see the handler); every EventBridge and
      Scheduler target has a retry policy and a dead-letter queue.

    Exposes ``alarms`` (name -> alarm), ``state_machine`` (or None), ``functions``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data_key: kms.IKey,
        data_exports: dict[str, str],
        curated_bucket: s3.IBucket,
        monitoring_bucket: s3.IBucket,
        model_package_group_name: str,
        endpoint_name: str,
        state_machines: dict[str, sfn.IStateMachine],
        endpoint_alarms: dict[str, cloudwatch.Alarm],
        image_uri: str,
        image_repository: str,
        layer: lambda_.ILayerVersion,
        topic: sns.ITopic,
        topic_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        monitoring, prefix = config.monitoring, config.resource_prefix
        retention = logs.RetentionDays.ONE_YEAR if config.protection.retain_stateful_resources else logs.RetentionDays.ONE_MONTH
        self._data_key = data_key
        self._dead_letters = sqs.Queue(self, "TriggerDeadLetters", encryption=sqs.QueueEncryption.KMS,
                                       encryption_master_key=data_key, enforce_ssl=True,
                                       retention_period=cdk.Duration.days(14))
        acknowledge(self._dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the "
                    "monitoring schedule, the retraining schedule and the alarm rule.")
        self.functions: dict[str, PipelineFunction] = {}
        self.state_machine: sfn.StateMachine | None = None
        action = cw_actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.IAlarm] = {}

        # --- open-source monitoring workflow ------------------------------------------
        if monitoring.backend == "open-source":
            self.state_machine = self._workflow(
                config, data_key, data_exports, curated_bucket, monitoring_bucket, model_package_group_name,
                endpoint_name, image_uri, image_repository, layer, topic, topic_key, retention)
            state_machines = {**state_machines, "monitoring": self.state_machine}
            monitoring_target = scheduler_targets.StepFunctionsStartExecution(
                self.state_machine, role=self._schedule_role("MonitoringScheduleRole"),
                dead_letter_queue=self._dead_letters, retry_attempts=3,
                max_event_age=cdk.Duration.hours(6),
                input=scheduler.ScheduleTargetInput.from_object({"trigger": "schedule"}))
            scheduler.Schedule(self, "MonitoringSchedule", description=f"{prefix}: drift and quality check of {endpoint_name}",
                               schedule=scheduler.ScheduleExpression.expression(monitoring.schedule),
                               target=monitoring_target)

        # --- alarms -------------------------------------------------------------------
        for kind, machine in state_machines.items():
            for outcome, metric in (("failed", machine.metric_failed), ("timed-out", machine.metric_timed_out),
                                    ("aborted", machine.metric_aborted)):
                self._alarm(f"{kind}-{outcome}", f"{kind.capitalize()} state machine: an execution {outcome.replace('-', ' ')}",
                            metric(period=cdk.Duration.minutes(5), statistic="Sum"), threshold=1, action=action)
        for name, alarm in endpoint_alarms.items():  # the blue/green rollback alarms also page
            alarm.add_alarm_action(action)
            self.alarms[name] = alarm
        dimensions = {"EndpointName": endpoint_name, "VariantName": "AllTraffic"}
        invocations = cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocations", dimensions_map=dimensions,
                                        statistic="Sum", period=cdk.Duration.minutes(5))
        errors_4xx = cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocation4XXErrors",
                                       dimensions_map=dimensions, statistic="Sum", period=cdk.Duration.minutes(5))
        self._alarm("endpoint-4xx-rate", f"Endpoint: more than {config.alarms.endpoint_4xx_rate_percent}% of requests "
                    "rejected (4XX)", cloudwatch.MathExpression(
                        expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                        using_metrics={"invocations": invocations, "errors": errors_4xx},
                        period=cdk.Duration.minutes(5), label="4XX rate (%)"),
                    threshold=config.alarms.endpoint_4xx_rate_percent, action=action, periods=3)
        namespace, dims = metrics_namespace(config), {"Endpoint": endpoint_name, "Stage": config.stage}
        if monitoring.backend == "model-monitor":
            drift = self._model_monitor_alarms(config, endpoint_name, action)
            schedules = schedule_names(config)
            quality_namespace = "aws/sagemaker/Endpoints/model-metrics"  # what Model Monitor emits
            quality_dims = {"Endpoint": endpoint_name, "MonitoringSchedule": schedules["model-quality"]}
        else:
            drift = self._alarm("drift", f"Drift: at least {monitoring.drift_share_threshold:.0%} of the features "
                                "drifted from the training baseline", cloudwatch.Metric(
                                    namespace=namespace, metric_name="DriftedFeatureShare", dimensions_map=dims,
                                    statistic="Maximum", period=cdk.Duration.hours(1)),
                                threshold=monitoring.drift_share_threshold, action=action)
            quality_namespace, quality_dims = namespace, dims
        quality_alarms = []
        for threshold in monitoring.quality_thresholds:
            below = threshold.direction == ">="
            quality_alarms.append(self._alarm(
                f"quality-{threshold.metric}", f"Model quality on ground truth: {threshold.metric} "
                f"{'below' if below else 'above'} {threshold.value}", cloudwatch.Metric(
                    namespace=quality_namespace, metric_name=threshold.metric, dimensions_map=quality_dims,
                    statistic="Minimum" if below else "Maximum", period=cdk.Duration.hours(1)),
                threshold=threshold.value, action=action,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD if below
                else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD))

        self._dashboard(config, state_machines, invocations, errors_4xx, dimensions, namespace, dims)

        # --- retraining ---------------------------------------------------------------------
        self._retraining(config, state_machines["training"], layer, data_key, retention,
                         alarm_sources={drift.alarm_name: "drift-alarm",
                                        **{alarm.alarm_name: "quality-alarm" for alarm in quality_alarms}})

    # ------------------------------------------------------------------ pieces
    def _schedule_role(self, construct_id: str) -> iam.Role:
        """The role one schedule runs as. EventBridge Scheduler delivers a failed invocation to
        the dead-letter queue as this role ("Configuring a schedule's dead-letter queue"), and
        the queue is encrypted with the data key, so besides sqs:SendMessage (granted by the
        target) the role may use the key to send."""
        role = iam.Role(self, construct_id, assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}}),
            description=f"{self._config.resource_prefix}: EventBridge Scheduler target and dead-letter delivery")
        self._data_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        return role

    def _alarm(self, name: str, description: str, metric: cloudwatch.IMetric, *, threshold: float,
               action: cloudwatch.IAlarmAction, periods: int = 1,
               comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
               ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self, f"Alarm-{name}", alarm_name=f"{self._config.resource_prefix}-{name}", alarm_description=description,
            metric=metric, threshold=threshold, evaluation_periods=periods, datapoints_to_alarm=periods,
            comparison_operator=comparison, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        self.alarms[name] = alarm
        return alarm

    def _model_monitor_alarms(self, config: StageConfig, endpoint_name: str,
                              action: cloudwatch.IAlarmAction) -> cloudwatch.IAlarm:
        """Alarms on what Model Monitor emits: failed executions of either schedule, and
        ``feature_baseline_drift_<column>`` per feature (columns ``_c1``… in dataset order: the
        baseline is the label-first training split without a header). An alarm may combine at
        most 10 metrics, so features are watched in groups of 10 and a composite alarm
        ``<prefix>-drift`` fires when any feature's distance passes ``drift_threshold``."""
        prefix, mm = config.resource_prefix, config.monitoring.model_monitor
        schedules = schedule_names(config)
        stack = cdk.Stack.of(self)
        # Executions are processing jobs started by the schedules: count the failed ones.
        failures = events.Rule(
            self, "ModelMonitorExecutionFailed", description=f"{prefix}: a Model Monitor execution failed",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Processing Job State Change"],
                detail={"ProcessingJobStatus": ["Failed"], "MonitoringScheduleArn": [
                    stack.format_arn(service="sagemaker", resource="monitoring-schedule", resource_name=name)
                    for name in schedules.values()]}))
        self._alarm("monitoring-failed", "Model Monitor: a monitoring execution failed", cloudwatch.Metric(
            namespace="AWS/Events", metric_name="MatchedEvents", dimensions_map={"RuleName": failures.rule_name},
            statistic="Sum", period=cdk.Duration.minutes(5)), threshold=1, action=action)
        features = dataset_columns(config.pipeline.dataset)[:-1]
        groups = []
        for start in range(0, len(features), 10):
            metrics = {f"c{index}": cloudwatch.Metric(
                namespace="aws/sagemaker/Endpoints/data-metrics", metric_name=f"feature_baseline_drift__c{index}",
                dimensions_map={"Endpoint": endpoint_name, "MonitoringSchedule": schedules["data-quality"]},
                statistic="Maximum", period=cdk.Duration.hours(1), label=features[index - 1])
                for index in range(start + 1, min(start + 10, len(features)) + 1)}
            first, last = start + 1, start + len(metrics)
            group = cloudwatch.Alarm(
                self, f"Alarm-drift-{first}-{last}", alarm_name=f"{prefix}-drift-features-{first}-{last}",
                alarm_description=f"Model Monitor: features {first}-{last} ({features[first - 1]} … {features[last - 1]}) "
                                  f"drift distance above {mm.drift_threshold}",
                metric=cloudwatch.MathExpression(expression=f"MAX([{', '.join(metrics)}])", using_metrics=metrics,
                                                 period=cdk.Duration.hours(1), label="largest drift distance"),
                threshold=mm.drift_threshold, evaluation_periods=1, datapoints_to_alarm=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            self.alarms[f"drift-{first}-{last}"] = group  # pages through the composite alarm below
            groups.append(group)
        drift = cloudwatch.CompositeAlarm(
            self, "Alarm-drift", composite_alarm_name=f"{prefix}-drift",
            alarm_description=f"Model Monitor: a feature drifted from the training baseline (distance above "
                              f"{mm.drift_threshold})",
            alarm_rule=cloudwatch.AlarmRule.any_of(*groups))
        drift.add_alarm_action(action)
        self.alarms["drift"] = drift  # type: ignore[assignment]  # a composite: on the dashboard with the rest
        return drift

    def _workflow(self, config, data_key, data_exports, curated_bucket, monitoring_bucket, group, endpoint_name,
                  image_uri, image_repository, layer, topic, topic_key, retention) -> sfn.StateMachine:
        stack = cdk.Stack.of(self)
        monitoring, prefix = config.monitoring, config.resource_prefix
        scripts = {name: s3_assets.Asset(self, f"{name.capitalize()}Script", path=str(JOBS_DIR / name / f"{file}.py"))
                   for name, file in (("drift", "drift"), ("evaluation", "evaluate"))}

        # the drift job's role: read baseline and captured data, write reports, publish metrics
        role = iam.Role(self, "DriftJobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description=f"{prefix}: drift and model-quality monitoring job")
        grant_prefix(role, curated_bucket, f"{config.pipeline.dataset}/runs/", "read the serving model's training split",
                     export_name=data_exports["curated"])
        grant_prefix(role, monitoring_bucket, CAPTURE_PREFIX, "read captured inference data",
                     export_name=data_exports["monitoring"])
        grant_prefix(role, monitoring_bucket, MONITORING_PREFIX, "read manifests and ground truth, write reports",
                     export_name=data_exports["monitoring"], write=True)
        read_assets(role, list(scripts.values()))
        data_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant")
        role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": metrics_namespace(config)}}))
        allow_job_runtime(role, image_repository, "Drift job role")

        prepare = PipelineFunction(self, "PrepareMonitoring", folder="prepare_monitoring", layer=layer,
                                   log_key=data_key, log_retention=retention,
                                   description=f"{prefix}: monitoring window (baseline, captured data)")
        packages = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*")
        prepare.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages]))
        prepare.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"]))
        acknowledge(prepare.role, "AwsSolutions-IAM5", "sagemaker:ListModelPackages supports no resource-level "
                    "permissions; the handler lists the approved versions of its own group for the baseline.",
                    applies_to="Resource::*")
        acknowledge(prepare.role, "AwsSolutions-IAM5", "Versions of the stage's model package group are numbered by "
                    "SageMaker; the handler reads the approved one's lineage (its training split).",
                    applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/{group}/*")
        grant_prefix(prepare.role, monitoring_bucket, CAPTURE_PREFIX, "list the captured objects of the window",
                     export_name=data_exports["monitoring"])
        grant_prefix(prepare.role, monitoring_bucket, f"{MONITORING_PREFIX}manifests/", "write the window's manifest",
                     export_name=data_exports["monitoring"], write=True)
        data_key.grant(prepare.role, "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge(prepare.function, "AwsSolutions-L1", "The prepare-monitoring handler is pinned to Python 3.13, the "
                    "newest runtime the Powertools v3 layer it imports is published for.")
        self.functions["prepare_monitoring"] = prepare

        # Fail re-raises the run's own error names; Step Functions' reserved States.* names (a failed
        # job is States.TaskFailed) become StepFailed with the original name in the cause.
        failed = sfn.Choice(self, "Reserved monitoring error name?").when(
            sfn.Condition.string_matches("$.error.Error", "States.*"),
            sfn.Fail(self, "Monitoring step failed", error="StepFailed",
                     cause_path="States.Format('{}: {}', $.error.Error, $.error.Cause)"),
        ).otherwise(sfn.Fail(self, "Monitoring failed", error_path="$.error.Error", cause_path="$.error.Cause"))
        notify = tasks.SnsPublish(
            self, "Notify monitoring failure", topic=topic, subject=f"{prefix} monitoring run: FAILED",
            message=sfn.TaskInput.from_text(sfn.JsonPath.format(
                "Execution {} FAILED: {}: {}", sfn.JsonPath.execution_id, sfn.JsonPath.string_at("$.error.Error"),
                sfn.JsonPath.string_at("$.error.Cause"))),
            result_path=sfn.JsonPath.DISCARD, task_timeout=API_TIMEOUT,
        ).next(failed)
        window = tasks.LambdaInvoke(
            self, "Prepare monitoring window", lambda_function=prepare.function, task_timeout=API_TIMEOUT,
            payload=sfn.TaskInput.from_object({
                "endpoint": endpoint_name, "model_package_group": group, "window_hours": monitoring.window_hours,
                "capture_uri": f"s3://{monitoring_bucket.bucket_name}/{CAPTURE_PREFIX}",
                "output_uri": f"s3://{monitoring_bucket.bucket_name}/{MONITORING_PREFIX}",
                "execution": sfn.JsonPath.execution_name}),
            result_selector={"window.$": "$.Payload"}, result_path="$", comment="Baseline and captured data of the window",
        )
        window.add_catch(notify, errors=["States.ALL"], result_path="$.error")
        columns = dataset_columns(config.pipeline.dataset)
        features, label = columns[:-1], columns[-1]
        problem = config.pipeline.problem_type
        arguments = ["--baseline-dir", "/opt/ml/processing/baseline", "--capture-dir", "/opt/ml/processing/capture",
                     "--output-dir", "/opt/ml/processing/output",
                     "--evaluation-script", f"/opt/ml/processing/evaluation/{scripts['evaluation'].s3_object_key}",
                     "--features", ",".join(features), "--problem-type", problem,
                     "--threshold", str(config.pipeline.classification_threshold),
                     "--psi-threshold", str(monitoring.psi_threshold), "--ks-alpha", str(monitoring.ks_alpha),
                     "--namespace", metrics_namespace(config), "--endpoint", endpoint_name, "--stage", config.stage]
        inputs = [
            processing_input("code", scripts["drift"].s3_object_url, "/opt/ml/processing/code"),
            processing_input("evaluation", scripts["evaluation"].s3_object_url, "/opt/ml/processing/evaluation"),
            processing_input("baseline", "$.window.baseline", "/opt/ml/processing/baseline"),
            processing_input("capture", "$.window.manifest", "/opt/ml/processing/capture", manifest=True),
        ]
        if monitoring.ground_truth_prefix:
            arguments += ["--ground-truth-dir", "/opt/ml/processing/ground_truth"]
            inputs.append(processing_input("ground_truth", f"s3://{monitoring_bucket.bucket_name}/{monitoring.ground_truth_prefix}",
                                      "/opt/ml/processing/ground_truth"))
        check = sfn.CustomState(self, "Check drift", state_json={
            "Type": "Task",
            "Comment": "jobs/drift/drift.py on AWS's scikit-learn image: PSI + KS/chi-square per feature, "
                       "Model Monitor-format reports, CloudWatch metrics",
            "Resource": f"arn:{cdk.Aws.PARTITION}:states:::sagemaker:createProcessingJob.sync",
            "Parameters": {
                "ProcessingJobName.$": (f"States.Format('{prefix}-drift-{{}}-{{}}', "
                                        "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0), $$.State.RetryCount)"),
                "RoleArn": role.role_arn,
                "AppSpecification": {
                    "ImageUri": image_uri,
                    "ContainerEntrypoint": ["python3", f"/opt/ml/processing/code/{scripts['drift'].s3_object_key}"],
                    "ContainerArguments": arguments,
                },
                "ProcessingInputs": inputs,
                "ProcessingOutputConfig": {"KmsKeyId": data_key.key_arn, "Outputs": [{
                    "OutputName": "report", "S3Output": {"S3Uri.$": "$.window.report", "LocalPath": "/opt/ml/processing/output",
                                                         "S3UploadMode": "EndOfJob"}}]},
                "ProcessingResources": {"ClusterConfig": {
                    "InstanceCount": 1, "InstanceType": monitoring.instance_type,
                    "VolumeSizeInGB": 30, "VolumeKmsKeyId": data_key.key_arn}},
                "NetworkConfig": {"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": True},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            },
            "ResultSelector": {"job_name.$": "$.ProcessingJobName",
                               "report.$": "$.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"},
            "ResultPath": "$.drift",
            "TimeoutSeconds": 3600 + 900,
        })
        check.add_retry(errors=["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException",
                                "SageMaker.ResourceLimitExceeded"], interval=cdk.Duration.seconds(15), backoff_rate=2,
                        max_attempts=4)
        check.add_catch(notify, errors=["States.ALL"], result_path="$.error")
        definition = window.next(
            sfn.Choice(self, "Captured data in the window?")
            .when(sfn.Condition.boolean_equals("$.window.has_data", True),
                  check.next(sfn.Succeed(self, "Monitoring done", comment="Reports under $.drift.report")))
            .otherwise(sfn.Succeed(self, "Nothing to monitor", comment="No approved model or no captured data")))
        machine = sfn.StateMachine(
            self, "StateMachine", state_machine_name=f"{prefix}-monitoring",
            comment=f"{prefix}: drift and model-quality check of {endpoint_name}",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD, query_language=sfn.QueryLanguage.JSON_PATH,
            timeout=cdk.Duration.hours(3), tracing_enabled=True,
            logs=sfn.LogOptions(destination=logs.LogGroup(self, "ExecutionLogs", encryption_key=data_key, retention=retention,
                                                          removal_policy=cdk.RemovalPolicy.DESTROY),
                                level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        machine.add_to_role_policy(iam.PolicyStatement(
            sid="DriftJob", actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                                     "sagemaker:StopProcessingJob", "sagemaker:AddTags"],
            resources=[stack.format_arn(service="sagemaker", resource="processing-job", resource_name=f"{prefix}-drift-*")]))
        machine.add_to_role_policy(iam.PolicyStatement(
            sid="SyncJobEvents", actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[stack.format_arn(service="events", resource="rule",
                                        resource_name="StepFunctionsGetEventsForSageMakerProcessingJobsRule")]))
        machine.add_to_role_policy(iam.PolicyStatement(
            sid="PassDriftRole", actions=["iam:PassRole"], resources=[role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        data_key.grant(machine.role, "kms:CreateGrant", "kms:DescribeKey")
        topic_key.grant(machine.role, "kms:GenerateDataKey", "kms:Decrypt")
        logical_id = stack.get_logical_id(prepare.function.node.default_child)  # type: ignore[arg-type]
        for finding, reason in {
            "Resource::*": "X-Ray tracing of executions (xray:PutTraceSegments and friends support no resource-level permissions)",
            f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:processing-job/{prefix}-drift-*": (
                "drift job names are derived per execution"),
            f"Resource::<{logical_id}.Arn>:*": "CDK's LambdaInvoke grant covers the versions and aliases of the "
                                                "PrepareMonitoring function",
        }.items():
            acknowledge(machine.role, "AwsSolutions-IAM5", f"Monitoring state machine: {reason}.", applies_to=finding)
        return machine

    def _dashboard(self, config, state_machines, invocations, errors_4xx, dimensions, namespace, dims) -> None:
        five = cdk.Duration.minutes(5)
        runs = [
            cloudwatch.GraphWidget(
                title=f"{kind} runs", width=8,
                left=[machine.metric_started(period=five), machine.metric_succeeded(period=five),
                      machine.metric_failed(period=five), machine.metric_timed_out(period=five)])
            for kind, machine in state_machines.items()
        ]
        metric = lambda name, statistic="Sum": cloudwatch.Metric(  # noqa: E731
            namespace="AWS/SageMaker", metric_name=name, dimensions_map=dimensions, statistic=statistic, period=five)
        endpoint = [
            cloudwatch.GraphWidget(title="Endpoint invocations and errors", width=8,
                                   left=[invocations, errors_4xx, metric("Invocation5XXErrors")]),
            cloudwatch.GraphWidget(title="Endpoint model latency (µs)", width=8,
                                   left=[metric("ModelLatency", "p50"), metric("ModelLatency", "p99")]),
            cloudwatch.AlarmStatusWidget(title="Alarms", width=8, alarms=list(self.alarms.values())),
        ]
        hour = cdk.Duration.hours(1)
        if config.monitoring.backend == "model-monitor":
            schedule = schedule_names(config)["data-quality"]
            drift = [cloudwatch.GraphWidget(title="Model Monitor drift distance per feature (_c1… in dataset order)",
                                            width=24, left=[cloudwatch.MathExpression(
                expression=(f"SEARCH('{{aws/sagemaker/Endpoints/data-metrics,Endpoint,MonitoringSchedule}} "
                            f"feature_baseline_drift Endpoint=\"{dims['Endpoint']}\" "
                            f"MonitoringSchedule=\"{schedule}\"', 'Maximum', 3600)"),
                label="", period=hour)], left_annotations=[cloudwatch.HorizontalAnnotation(
                    value=config.monitoring.model_monitor.drift_threshold, label="alarm")])]
            cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{config.resource_prefix}-ml",
                                 widgets=[runs, endpoint, drift])
            return
        drift = [
            cloudwatch.GraphWidget(title="Share of drifted features", width=12, left=[cloudwatch.Metric(
                namespace=namespace, metric_name="DriftedFeatureShare", dimensions_map=dims, statistic="Maximum",
                period=hour)], left_annotations=[cloudwatch.HorizontalAnnotation(
                    value=config.monitoring.drift_share_threshold, label="alarm")]),
            cloudwatch.GraphWidget(title="Drift score (PSI) per feature", width=12, left=[cloudwatch.MathExpression(
                expression=(f"SEARCH('{{{namespace},Endpoint,Feature,Stage}} MetricName=\"FeatureDriftScore\" "
                            f"Endpoint=\"{dims['Endpoint']}\" Stage=\"{dims['Stage']}\"', 'Maximum', 3600)"),
                label="", period=hour)]),
        ]
        cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{config.resource_prefix}-ml",
                             widgets=[runs, endpoint, drift])

    def _retraining(self, config, training: sfn.IStateMachine, layer, data_key, retention,
                    alarm_sources: dict[str, str]) -> None:
        retraining, prefix = config.retraining, config.resource_prefix
        retrain = PipelineFunction(
            self, "Retrain", folder="retrain", layer=layer, log_key=data_key, log_retention=retention,
            description=f"{prefix}: start retraining (schedule, drift and quality alarms) with storm protection",
            environment={"STATE_MACHINE_ARN": training.state_machine_arn, "ALARM_SOURCES": json.dumps(alarm_sources),
                         "ALARM_WINDOW_HOURS": str(retraining.alarm_window_hours)},
        )
        training.grant_start_execution(retrain.role)
        retrain.role.add_to_policy(iam.PolicyStatement(actions=["states:ListExecutions"],
                                                       resources=[training.state_machine_arn]))
        acknowledge(retrain.function, "AwsSolutions-L1", "The retrain handler is pinned to Python 3.13, the newest "
                    "runtime the Powertools v3 layer it imports is published for.")
        self.functions["retrain"] = retrain
        if retraining.schedule:
            stack = cdk.Stack.of(self)
            role = self._schedule_role("RetrainingScheduleRole")
            scheduler.Schedule(
                self, "RetrainingSchedule", description=f"{prefix}: {retraining.schedule} retraining",
                schedule=scheduler.ScheduleExpression.expression(RETRAINING_CRON[retraining.schedule]),
                target=scheduler_targets.LambdaInvoke(
                    retrain.function, role=role, dead_letter_queue=self._dead_letters, retry_attempts=3,
                    max_event_age=cdk.Duration.hours(6),
                    input=scheduler.ScheduleTargetInput.from_object({"source": "schedule", "reason": retraining.schedule})),
            )
            logical_id = stack.get_logical_id(retrain.function.node.default_child)  # type: ignore[arg-type]
            acknowledge(role, "AwsSolutions-IAM5", "CDK's Scheduler LambdaInvoke target grants invoking the retrain "
                        "function's versions and aliases; the schedule calls that one function only.",
                        applies_to=f"Resource::<{logical_id}.Arn>:*")
        if retraining.on_alarm and alarm_sources:
            events.Rule(
                self, "RetrainOnAlarm", description=f"{prefix}: drift or model-quality alarm → retraining",
                event_pattern=events.EventPattern(
                    source=["aws.cloudwatch"], detail_type=["CloudWatch Alarm State Change"],
                    detail={"alarmName": sorted(alarm_sources), "state": {"value": ["ALARM"]}}),
                targets=[targets.LambdaFunction(retrain.function, dead_letter_queue=self._dead_letters,
                                                retry_attempts=8, max_event_age=cdk.Duration.hours(24))],
            )
