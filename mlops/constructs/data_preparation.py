"""The data phase: DataBrew validation and cleaning, the Glue ETL split, crawlers, feature
ingestion, and the ``<prefix>-data`` state machine that runs them in order."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_databrew as databrew
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops.config import StageConfig, dataset_columns
from mlops.constructs.access import grant_prefix
from mlops.constructs.feature_store import feature_group_name
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.sagemaker_jobs import allow_job_runtime, processing_input, read_assets
from mlops.data_rules import databrew_recipe_steps, databrew_rules
from mlops.nag import acknowledge

JOBS_DIR = Path(__file__).resolve().parent.parent.parent / "jobs"
API_TIMEOUT = sfn.Timeout.duration(cdk.Duration.minutes(5))
QUALITY_PREFIX = "data-quality/"


def data_prefixes(config: StageConfig) -> dict[str, str]:
    """Where the data phase reads and writes, per zone (keys under the zone buckets)."""
    dataset = config.pipeline.dataset
    return {
        "clean": f"clean/{dataset}/",        # curated: DataBrew recipe job output (CSV with header)
        "catalog": f"catalog/{dataset}/",    # curated: header-bearing split copy, one table partitioned by split
        "latest": f"{dataset}/latest/",      # curated: train/validation/test of a data-only run
        "runs": f"{dataset}/runs/",          # curated: train/validation/test of each training run
    }


def _struct(value):  # noqa: ANN001, ANN202
    """CloudFormation-shaped (PascalCase) property values as the jsii struct keys CDK's L1
    props take (camelCase); recipe parameter keys are camelCase already."""
    if isinstance(value, list):
        return [_struct(item) for item in value]
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _struct(item) for key, item in value.items()}
    return value


class DataPreparation(Construct):
    """Provisions the stage's data phase and its Standard state machine ``state_machine``
    (``<prefix>-data``): validate raw data against the DataBrew ruleset (profile job) → quality
    gate (Lambda reads the validation report, fails with the rules that failed) → clean with
    the published DataBrew recipe → Glue ETL split 80/10/10 → refresh the catalog (crawler) →
    ingest features (SageMaker Processing, batched PutRecord). The training state machine runs
    it as its first step; it also runs on its own (console, schedule, or new raw objects when
    ``data.refresh_on_new_raw_data``), writing to ``<dataset>/latest/``.

    Everything runs under a Glue security configuration (S3, CloudWatch Logs and job
    bookmarks encrypted with the data key) and per-service roles scoped to their prefixes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data_key: kms.IKey,
        data_exports: dict[str, str],
        raw_bucket: s3.IBucket,
        raw_prefix: str,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        database_name: str,
        image_uri: str,
        layer: lambda_.ILayerVersion,
        topic: sns.ITopic,
        topic_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._config = config
        self._exports = data_exports
        data, prefix, dataset = config.data, config.resource_prefix, config.pipeline.dataset
        paths = data_prefixes(config)
        raw_dataset_prefix = f"{raw_prefix}{dataset}/"
        retention = logs.RetentionDays.ONE_YEAR if config.protection.retain_stateful_resources else logs.RetentionDays.ONE_MONTH
        self.names = {
            "security": f"{prefix}-glue",
            "etl": f"{prefix}-split",
            "dataset": f"{prefix}-raw",
            "recipe": f"{prefix}-clean",
            "ruleset": f"{prefix}-quality",
            "profile_job": f"{prefix}-validate",
            "recipe_job": f"{prefix}-clean",
            "raw_crawler": f"{prefix}-raw",
            "curated_crawler": f"{prefix}-curated",
        }
        names = self.names
        glue_arn = lambda resource, name: stack.format_arn(service="glue", resource=resource, resource_name=name)  # noqa: E731
        databrew_arn = lambda resource, name: stack.format_arn(service="databrew", resource=resource, resource_name=name)  # noqa: E731

        # --- Glue: security configuration, crawlers, ETL job ----------------------
        security = glue.CfnSecurityConfiguration(self, "GlueSecurity", name=names["security"], encryption_configuration={
            "s3Encryptions": [{"s3EncryptionMode": "SSE-KMS", "kmsKeyArn": data_key.key_arn}],
            "cloudWatchEncryption": {"cloudWatchEncryptionMode": "SSE-KMS", "kmsKeyArn": data_key.key_arn},
            "jobBookmarksEncryption": {"jobBookmarksEncryptionMode": "CSE-KMS", "kmsKeyArn": data_key.key_arn},
        })
        crawler_role = self._glue_role("CrawlerRole", "crawlers", data_key, database_name)
        grant_prefix(crawler_role, raw_bucket, raw_prefix, "read the raw files it catalogues", export_name=data_exports["raw"])
        grant_prefix(crawler_role, curated_bucket, paths["catalog"], "read the curated split tables it catalogues",
                     export_name=data_exports["curated"])
        crawler_configuration = json.dumps({
            "Version": 1.0,
            "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
            "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"},
        })
        self.crawlers = {}
        for key, bucket, path, table_prefix, what in (
            ("raw_crawler", raw_bucket, raw_prefix, "raw_", "raw zone"),
            ("curated_crawler", curated_bucket, paths["catalog"], "curated_", "curated split tables"),
        ):
            crawler = glue.CfnCrawler(
                self, key.replace("_", " ").title().replace(" ", ""),
                name=names[key],
                description=f"{prefix}: catalogue the {what}",
                role=crawler_role.role_arn,
                database_name=database_name,
                targets={"s3Targets": [{"path": f"s3://{bucket.bucket_name}/{path}"}]},
                table_prefix=table_prefix,
                crawler_security_configuration=security.ref,
                schema_change_policy={"updateBehavior": "UPDATE_IN_DATABASE", "deleteBehavior": "LOG"},
                recrawl_policy={"recrawlBehavior": "CRAWL_EVERYTHING"},
                configuration=crawler_configuration,
                schedule={"scheduleExpression": data.crawler_schedule} if data.crawler_schedule else None,
            )
            crawler.node.add_dependency(crawler_role)
            self.crawlers[key] = crawler

        etl_script = s3_assets.Asset(self, "EtlScript", path=str(JOBS_DIR / "etl" / "etl.py"))
        etl_role = self._glue_role("EtlRole", "ETL job", data_key, None)
        read_assets(etl_role, [etl_script], listed=False)  # Glue reads ScriptLocation by key
        etl_input = paths["clean"] if data.recipe else None
        if etl_input:
            grant_prefix(etl_role, curated_bucket, etl_input, "read the cleaned files of the recipe job",
                         export_name=data_exports["curated"])
        else:
            grant_prefix(etl_role, raw_bucket, raw_dataset_prefix, "read the raw files", export_name=data_exports["raw"])
        for key, why in (("catalog", "write the header-bearing split copy"), ("latest", "write a data-only run's splits"),
                         ("runs", "write each training run's splits")):
            grant_prefix(etl_role, curated_bucket, paths[key], why, export_name=data_exports["curated"], write=True, delete=True)
        input_uri = (f"s3://{curated_bucket.bucket_name}/{etl_input}" if etl_input
                     else f"s3://{raw_bucket.bucket_name}/{raw_dataset_prefix}")
        latest = f"s3://{curated_bucket.bucket_name}/{paths['latest']}"
        etl = glue.CfnJob(
            self, "EtlJob",
            name=names["etl"],
            description=f"{prefix}: dedupe, fill missing, mask PII, deterministic 80/10/10 split (jobs/etl/etl.py)",
            role=etl_role.role_arn,
            command={"name": "glueetl", "pythonVersion": "3", "scriptLocation": etl_script.s3_object_url},
            glue_version="5.0",
            worker_type=data.etl.worker_type,
            number_of_workers=data.etl.number_of_workers,
            timeout=data.etl.timeout_minutes,
            max_retries=0,  # the state machine retries, with backoff, and sees every attempt
            execution_property={"maxConcurrentRuns": 3},
            security_configuration=security.ref,
            default_arguments={
                "--job-language": "python",
                "--job-bookmark-option": "job-bookmark-disable",  # every run reads the whole table: the split is global
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                # no --enable-continuous-cloudwatch-log: Glue 5.0 logs every job in real time and
                # ignores it ("Enabling continuous logging for AWS Glue 4.0 and earlier jobs")
                "--input": input_uri,
                "--label": dataset_columns(dataset)[-1],
                "--rules": json.dumps(data.etl.model_dump(include={"missing", "pii"})),
                "--seed": str(data.etl.seed),
                "--output_train": f"{latest}train/",
                "--output_validation": f"{latest}validation/",
                "--output_test": f"{latest}test/",
                "--output_catalog": f"s3://{curated_bucket.bucket_name}/{paths['catalog']}",
            },
        )
        etl.node.add_dependency(etl_role)

        # --- DataBrew: dataset, ruleset, profile (validation) job, recipe + job ---
        brew_role = iam.Role(self, "DataBrewRole", assumed_by=iam.ServicePrincipal("databrew.amazonaws.com"),
                             description=f"{prefix}: DataBrew profile and recipe jobs")
        grant_prefix(brew_role, raw_bucket, raw_dataset_prefix, "read the raw files it validates and cleans",
                     export_name=data_exports["raw"])
        grant_prefix(brew_role, artifacts_bucket, QUALITY_PREFIX, "write profiles and validation reports",
                     export_name=data_exports["artifacts"], write=True)
        data_key.grant(brew_role, "kms:Decrypt", "kms:GenerateDataKey")
        self._log_access(brew_role, "/aws-glue-databrew/*", "DataBrew profile and recipe jobs")
        dataset_resource = databrew.CfnDataset(
            self, "RawDataset", name=names["dataset"],
            input={"s3InputDefinition": {"bucket": raw_bucket.bucket_name, "key": raw_dataset_prefix}},
            format="CSV", format_options={"csv": {"delimiter": ",", "headerRow": True}},
        )
        ruleset = databrew.CfnRuleset(
            self, "QualityRuleset", name=names["ruleset"],
            description=f"{prefix}: data-quality rules from data.quality_rules",
            target_arn=databrew_arn("dataset", names["dataset"]),
            rules=_struct(databrew_rules(data.quality_rules)),
        )
        ruleset.node.add_dependency(dataset_resource)
        profile = databrew.CfnJob(
            self, "ProfileJob", name=names["profile_job"], type="PROFILE",
            dataset_name=names["dataset"], role_arn=brew_role.role_arn,
            output_location={"bucket": artifacts_bucket.bucket_name, "key": QUALITY_PREFIX},
            validation_configurations=[{"rulesetArn": databrew_arn("ruleset", names["ruleset"]), "validationMode": "CHECK_ALL"}],
            job_sample={"mode": "FULL_DATASET"},
            encryption_mode="SSE-KMS", encryption_key_arn=data_key.key_arn,
            log_subscription="ENABLE", max_retries=0, timeout=data.profile_timeout_minutes,
        )
        profile.node.add_dependency(ruleset)
        profile.node.add_dependency(brew_role)
        recipe_job = None
        if data.recipe:
            grant_prefix(brew_role, curated_bucket, paths["clean"], "write the cleaned files",
                         export_name=data_exports["curated"], write=True, delete=True)
            recipe = databrew.CfnRecipe(self, "CleaningRecipe", name=names["recipe"],
                                        description=f"{prefix}: cleaning steps from data.recipe",
                                        steps=_struct(databrew_recipe_steps(data.recipe)))
            published = self._publish_recipe(recipe, names["recipe"], data_key, retention)
            recipe_job = databrew.CfnJob(
                self, "RecipeJob", name=names["recipe_job"], type="RECIPE",
                dataset_name=names["dataset"], role_arn=brew_role.role_arn,
                recipe={"name": names["recipe"], "version": "LATEST_PUBLISHED"},
                outputs=[{"location": {"bucket": curated_bucket.bucket_name, "key": paths["clean"]},
                          "format": "CSV", "formatOptions": {"csv": {"delimiter": ","}},
                          "overwrite": True, "maxOutputFiles": 1}],
                encryption_mode="SSE-KMS", encryption_key_arn=data_key.key_arn,
                log_subscription="ENABLE", max_retries=0, timeout=data.profile_timeout_minutes,
            )
            recipe_job.node.add_dependency(dataset_resource)
            recipe_job.node.add_dependency(published, brew_role)

        # --- functions and the feature-ingestion role ------------------------------
        quality = PipelineFunction(self, "DataQuality", folder="data_quality", layer=layer, log_key=data_key,
                                   log_retention=retention, description=f"{prefix}: data-quality gate (DataBrew validation report)")
        grant_prefix(quality.role, artifacts_bucket, QUALITY_PREFIX, "find and read the run's validation report",
                     export_name=data_exports["artifacts"])
        data_key.grant(quality.role, "kms:Decrypt")
        acknowledge(quality.function, "AwsSolutions-L1", "The data-quality handler is pinned to Python 3.13, the newest "
                    "runtime the Powertools v3 layer it imports is published for.")
        self.functions = {"data_quality": quality}

        self.feature_groups = {group.name: feature_group_name(prefix, group) for group in data.feature_groups}
        ingest_script = s3_assets.Asset(self, "IngestScript", path=str(JOBS_DIR / "features" / "ingest.py"))
        self.ingestion_role = iam.Role(self, "IngestionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                                       description=f"{prefix}: feature ingestion processing job")
        read_assets(self.ingestion_role, [ingest_script])
        grant_prefix(self.ingestion_role, curated_bucket, paths["catalog"], "read the curated split tables",
                     export_name=data_exports["curated"])
        data_key.grant(self.ingestion_role, "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant")
        allow_job_runtime(self.ingestion_role, "sagemaker-xgboost", "Feature ingestion job role")
        if self.feature_groups:
            self.ingestion_role.add_to_policy(iam.PolicyStatement(
                actions=["sagemaker:PutRecord"],
                resources=[stack.format_arn(service="sagemaker", resource="feature-group", resource_name=name.lower())
                           for name in self.feature_groups.values()]))

        # --- the workflow ------------------------------------------------------------
        self._topic = topic
        failed = sfn.Fail(self, "Data run failed", error_path="$.error.Error", cause_path="$.error.Cause")
        step_failed = sfn.Fail(self, "Data step failed", error="StepFailed",
                               cause_path="States.Format('{}: {}', $.error.Error, $.error.Cause)")
        self._notify_failure = tasks.SnsPublish(
            self, "Notify data failure", topic=topic, subject=f"{prefix} data run: FAILED",
            message=sfn.TaskInput.from_text(sfn.JsonPath.format(
                "Execution {} FAILED: {}: {}", sfn.JsonPath.execution_id, sfn.JsonPath.string_at("$.error.Error"),
                sfn.JsonPath.string_at("$.error.Cause"))),
            result_path=sfn.JsonPath.DISCARD, task_timeout=API_TIMEOUT,
        ).next(sfn.Choice(self, "Reserved data error name?")
               .when(sfn.Condition.string_matches("$.error.Error", "States.*"), step_failed)
               .otherwise(failed))

        bad_input = sfn.Fail(self, "Invalid data run input", error="InvalidExecutionInput",
                             cause="input.output_prefix: must be an s3:// URI ending in '/'; omit it to write to "
                                   f"s3://<curated bucket>/{paths['latest']}")
        given = sfn.Pass(self, "Use given output prefix", parameters={"prefix.$": "$.output_prefix"}, result_path="$.base")
        default = sfn.Pass(self, "Use latest output prefix", parameters={"prefix": latest}, result_path="$.base")
        locations = sfn.Pass(self, "Output locations", result_path="$.outputs", parameters={
            **{f"{split}.$": f"States.Format('{{}}{split}/', $.base.prefix)" for split in ("train", "validation", "test")},
            "catalog": f"s3://{curated_bucket.bucket_name}/{paths['catalog']}",
        })
        check_input = (
            sfn.Choice(self, "Output prefix given?")
            .when(sfn.Condition.and_(sfn.Condition.is_present("$.output_prefix"),
                                     sfn.Condition.is_string("$.output_prefix"),
                                     sfn.Condition.string_matches("$.output_prefix", "s3://*/")), given)
            .when(sfn.Condition.is_present("$.output_prefix"), bad_input)
            .otherwise(default)
            .afterwards()
        )

        validate = self._catch(tasks.GlueDataBrewStartJobRun(
            self, "Validate raw data", name=names["profile_job"],
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"run_id.$": "$.RunId", "job.$": "$.JobName"}, result_path="$.profile",
            task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(data.profile_timeout_minutes + 15)),
            comment="DataBrew profile job: checks the raw data against the ruleset, writes the validation report",
        ))
        gate = self._catch(tasks.LambdaInvoke(
            self, "Check data quality", lambda_function=quality.function, task_timeout=API_TIMEOUT,
            payload=sfn.TaskInput.from_object({
                "bucket": artifacts_bucket.bucket_name, "prefix": QUALITY_PREFIX,
                "run_id": sfn.JsonPath.string_at("$.profile.run_id"), "dataset": names["dataset"]}),
            result_selector={"passed.$": "$.Payload.passed", "rules.$": "$.Payload.rules", "report.$": "$.Payload.report"},
            result_path="$.quality", comment="Fails with DataQualityFailed and the list of failed rules",
        ))
        chain = locations.next(validate).next(gate)
        if recipe_job is not None:
            chain = chain.next(self._catch(tasks.GlueDataBrewStartJobRun(
                self, "Clean raw data", name=names["recipe_job"], integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                result_selector={"run_id.$": "$.RunId"}, result_path="$.cleaning",
                task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(data.profile_timeout_minutes + 15)),
                comment="DataBrew recipe job (published recipe): cleaned CSV to the curated zone",
            )))
        split = self._catch(tasks.GlueStartJobRun(
            self, "Split train, validation, test", glue_job_name=names["etl"],
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            arguments=sfn.TaskInput.from_object({
                "--output_train": sfn.JsonPath.string_at("$.outputs.train"),
                "--output_validation": sfn.JsonPath.string_at("$.outputs.validation"),
                "--output_test": sfn.JsonPath.string_at("$.outputs.test"),
            }),
            result_selector={"run_id.$": "$.Id", "state.$": "$.JobRunState"}, result_path="$.split",
            task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(data.etl.timeout_minutes + 15)),
            comment="Glue ETL (Spark): dedupe, fill missing, PII, deterministic 80/10/10",
        ))
        crawl = tasks.CallAwsService(
            self, "Refresh catalog", service="glue", action="startCrawler",
            parameters={"Name": names["curated_crawler"]},
            iam_resources=[glue_arn("crawler", names["curated_crawler"])], iam_action="glue:StartCrawler",
            result_path=sfn.JsonPath.DISCARD, task_timeout=API_TIMEOUT,
            comment="Start the curated crawler; a crawl already running picks the new files up",
        )
        crawl.add_retry(errors=["Glue.ThrottlingException", "Glue.OperationTimeoutException"],
                        interval=cdk.Duration.seconds(10), backoff_rate=2, max_attempts=3)
        crawled = sfn.Pass(self, "Catalog refresh under way")
        crawl.add_catch(crawled, errors=["Glue.CrawlerRunningException"], result_path=sfn.JsonPath.DISCARD)
        self._catch(crawl)
        chain = chain.next(split).next(crawl).next(crawled)
        if self.feature_groups:
            chain = chain.next(self._ingest(ingest_script, image_uri, data_key, curated_bucket, paths))
        done = sfn.Pass(self, "Data ready", parameters={
            "train.$": "$.outputs.train", "validation.$": "$.outputs.validation", "test.$": "$.outputs.test",
            "catalog.$": "$.outputs.catalog", "quality_report.$": "$.quality.report", "rules_checked.$": "$.quality.rules",
        })
        given.next(locations)
        default.next(locations)
        chain.next(done)

        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=f"{prefix}-data",
            comment=f"{prefix}: validate, clean, split, catalogue and ingest the raw data",
            definition_body=sfn.DefinitionBody.from_chainable(check_input),
            state_machine_type=sfn.StateMachineType.STANDARD,
            query_language=sfn.QueryLanguage.JSON_PATH,
            timeout=cdk.Duration.hours(config.pipeline.execution_timeout_hours),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "ExecutionLogs", encryption_key=data_key, retention=retention,
                                          removal_policy=cdk.RemovalPolicy.DESTROY),
                level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        self._grant_state_machine(data_key, topic_key)
        if data.refresh_on_new_raw_data:
            self._raw_data_rule(raw_bucket, raw_dataset_prefix, data_key)

    # ------------------------------------------------------------------ helpers
    def _catch(self, state: sfn.TaskStateBase) -> sfn.TaskStateBase:
        state.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return state

    def _ingest(self, script: s3_assets.Asset, image_uri: str, data_key: kms.IKey, curated_bucket: s3.IBucket,
                paths: dict[str, str]) -> sfn.IChainable:
        groups = [
            {"feature_group_name": self.feature_groups[group.name], "record_identifier": group.record_identifier,
             "event_time": group.event_time, "features": [f.model_dump() for f in group.features]}
            for group in self._config.data.feature_groups
        ]
        prefix = self._config.resource_prefix
        state = sfn.CustomState(self, "Ingest features", state_json={
            "Type": "Task",
            "Comment": "SageMaker Processing: batched, threaded PutRecord into every configured feature group",
            "Resource": f"arn:{cdk.Aws.PARTITION}:states:::sagemaker:createProcessingJob.sync",
            "Parameters": {
                "ProcessingJobName.$": (f"States.Format('{prefix}-ingest-{{}}-{{}}', "
                                        "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0), $$.State.RetryCount)"),
                "RoleArn": self.ingestion_role.role_arn,
                "AppSpecification": {
                    "ImageUri": image_uri,
                    "ContainerEntrypoint": ["python3", f"/opt/ml/processing/code/{script.s3_object_key}"],
                    "ContainerArguments": ["--groups", json.dumps(groups, separators=(",", ":"))],
                },
                "ProcessingInputs": [
                    processing_input("code", script.s3_object_url, "/opt/ml/processing/code"),
                    processing_input("data", f"s3://{curated_bucket.bucket_name}/{paths['catalog']}", "/opt/ml/processing/input"),
                ],
                "ProcessingResources": {"ClusterConfig": {
                    "InstanceCount": 1, "InstanceType": self._config.pipeline.evaluation_instance_type,
                    "VolumeSizeInGB": 30, "VolumeKmsKeyId": data_key.key_arn}},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            },
            "ResultSelector": {"job_name.$": "$.ProcessingJobName"},
            "ResultPath": "$.ingestion",
            "TimeoutSeconds": 3600 + 900,
        })
        state.add_retry(errors=["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException",
                                "SageMaker.ResourceLimitExceeded"], interval=cdk.Duration.seconds(15), backoff_rate=2, max_attempts=4)
        state.add_catch(self._notify_failure, errors=["States.ALL"], result_path="$.error")
        return state

    def _glue_role(self, construct_id: str, what: str, data_key: kms.IKey, database_name: str | None) -> iam.Role:
        stack = cdk.Stack.of(self)
        role = iam.Role(self, construct_id, assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                        description=f"{self._config.resource_prefix}: Glue {what}")
        data_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt")
        self._log_access(role, "/aws-glue/*", f"Glue {what}")
        role.add_to_policy(iam.PolicyStatement(  # --enable-metrics / observability metrics
            actions=["cloudwatch:PutMetricData"], resources=["*"], conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}}))
        acknowledge(role, "AwsSolutions-IAM5", f"cloudwatch:PutMetricData supports no resource-level permissions; the Glue "
                    f"{what} may publish to the Glue namespace only (condition).", applies_to="Resource::*")
        role.add_to_policy(iam.PolicyStatement(
            actions=["glue:GetSecurityConfiguration"],
            resources=[stack.format_arn(service="glue", resource="securityConfiguration", resource_name=self.names["security"])]))
        if database_name:
            role.add_to_policy(iam.PolicyStatement(
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
                         "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
                         "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:BatchUpdatePartition"],
                resources=[stack.format_arn(service="glue", resource="catalog"),
                           stack.format_arn(service="glue", resource="database", resource_name=database_name),
                           stack.format_arn(service="glue", resource="table", resource_name=f"{database_name}/*")]))
            acknowledge(role, "AwsSolutions-IAM5", "Crawlers create one table per discovered dataset in this stage's "
                        "database; table names are discovered, so the grant covers the database's tables only.",
                        applies_to=f"Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{database_name}/*")
        return role

    def _log_access(self, role: iam.Role, log_group_prefix: str, who: str) -> None:
        """Write (and, with the security configuration, encrypt) the service's own log groups."""
        resource = f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:log-group:{log_group_prefix}"
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            resources=[resource]))
        acknowledge(role, "AwsSolutions-IAM5", f"The {who} names its log groups and streams under {log_group_prefix} "
                    "per job and run; the grant covers that prefix only.",
                    applies_to=f"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{log_group_prefix}")

    def _publish_recipe(self, recipe: databrew.CfnRecipe, name: str, data_key: kms.IKey,
                        retention: logs.RetentionDays) -> Construct:
        """CloudFormation creates the recipe's working version only; recipe jobs run a
        published one. Publish on create and whenever the steps change."""
        steps = json.dumps(databrew_recipe_steps(self._config.data.recipe), sort_keys=True)
        version = hashlib.sha256(steps.encode()).hexdigest()[:12]
        call = cr.AwsSdkCall(service="DataBrew", action="publishRecipe",
                             parameters={"Name": name, "Description": "published by the stack on deploy"},
                             physical_resource_id=cr.PhysicalResourceId.of(f"{name}-{version}"))
        publish = cr.AwsCustomResource(
            self, "PublishRecipe", on_create=call, on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements([iam.PolicyStatement(
                actions=["databrew:PublishRecipe"],
                resources=[cdk.Stack.of(self).format_arn(service="databrew", resource="recipe", resource_name=name)])]),
            install_latest_aws_sdk=False,
            log_group=logs.LogGroup(self, "PublishRecipeLogs", encryption_key=data_key, retention=retention,
                                    removal_policy=cdk.RemovalPolicy.DESTROY),
        )
        publish.node.add_dependency(recipe)
        # The stack-wide singleton function behind every AwsCustomResource
        provider = cdk.Stack.of(self).node.find_child("AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""))
        acknowledge(provider, "AwsSolutions-IAM4", "CDK's AwsCustomResource provider uses the AWS-managed basic "
                    "execution policy for its own logs only; its one API call (databrew:PublishRecipe on this "
                    "stage's recipe) is granted separately.",
                    applies_to="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
        return publish

    def _grant_state_machine(self, data_key: kms.IKey, topic_key: kms.IKey) -> None:
        stack = cdk.Stack.of(self)
        role = self.state_machine.role
        prefix = self._config.resource_prefix
        topic_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        if self.feature_groups:
            role.add_to_principal_policy(iam.PolicyStatement(
                sid="IngestionJob",
                actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                         "sagemaker:AddTags"],
                resources=[stack.format_arn(service="sagemaker", resource="processing-job", resource_name=f"{prefix}-ingest-*")]))
            role.add_to_principal_policy(iam.PolicyStatement(
                sid="SyncJobEvents", actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[stack.format_arn(service="events", resource="rule",
                                            resource_name="StepFunctionsGetEventsForSageMakerProcessingJobsRule")]))
            role.add_to_principal_policy(iam.PolicyStatement(
                sid="PassIngestionRole", actions=["iam:PassRole"], resources=[self.ingestion_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
            data_key.grant(role, "kms:CreateGrant", "kms:DescribeKey")
            acknowledge(role, "AwsSolutions-IAM5", "Data state machine: ingestion job names are derived per execution.",
                        applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:processing-job/{prefix}-ingest-*")
        acknowledge(role, "AwsSolutions-IAM5", "Data state machine: X-Ray tracing of executions (xray:PutTraceSegments "
                    "and friends support no resource-level permissions).", applies_to="Resource::*")
        logical_id = stack.get_logical_id(self.functions["data_quality"].function.node.default_child)  # type: ignore[arg-type]
        acknowledge(role, "AwsSolutions-IAM5", "Data state machine: CDK's LambdaInvoke grant covers the versions and "
                    "aliases of the DataQuality function.", applies_to=f"Resource::<{logical_id}.Arn>:*")

    def _raw_data_rule(self, raw_bucket: s3.IBucket, prefix: str, data_key: kms.IKey) -> None:
        dead_letters = sqs.Queue(self, "RawDataDeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=data_key,
                                 enforce_ssl=True, retention_period=cdk.Duration.days(14))
        acknowledge(dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the new-raw-data rule's target.")
        events.Rule(
            self, "NewRawData",
            description=f"New raw data under {prefix}: start a data run",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [raw_bucket.bucket_name]}, "object": {"key": [{"prefix": prefix}]}},
            ),
            targets=[targets.SfnStateMachine(
                self.state_machine, dead_letter_queue=dead_letters, retry_attempts=8, max_event_age=cdk.Duration.hours(24),
                input=events.RuleTargetInput.from_object({"trigger": {
                    "source": "new-raw-data", "key": events.EventField.from_path("$.detail.object.key")}}),
            )],
        )
