"""Phase: validate and clean the raw data with AWS Glue DataBrew.

The ``check_schema`` handler first compares the raw CSV files' headers and sampled values
with the declared columns and fails the run with ``SchemaMismatch`` and every problem; then a
profile job checks the raw dataset against the ruleset rendered from
``data.quality_rules`` and writes the validation report; the ``data_quality`` handler reads
it and fails the run with ``DataQualityFailed`` and every failed rule; with ``data.recipe``,
a recipe job runs the published cleaning recipe into the curated zone.
"""

from __future__ import annotations

import hashlib
import json

import aws_cdk as cdk
from aws_cdk import aws_databrew as databrew
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops.config import DataConfig, DatasetConfig
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.constructs.workflow import API_TIMEOUT, DATABREW_TRANSIENT, catch_all, retry_transient
from mlops.data_rules import databrew_recipe_steps, databrew_rules
from mlops.nag import acknowledge, acknowledge_inline_policy, acknowledge_packs

QUALITY_PREFIX = "data-quality/"  # artifacts bucket: DataBrew profiles and validation reports


def struct(value):  # noqa: ANN001, ANN201
    """CloudFormation-shaped (PascalCase) property values as the jsii struct keys CDK's L1
    props take (camelCase); recipe parameter keys are camelCase already."""
    if isinstance(value, list):
        return [struct(item) for item in value]
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: struct(item) for key, item in value.items()}
    return value


def log_access(role: iam.Role, log_group_prefix: str, who: str) -> None:
    """Write (and, with the security configuration, encrypt) a service's own log groups."""
    resource = cdk.Stack.of(role).format_arn(service="logs", resource="log-group", resource_name=log_group_prefix,
                                             arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
    role.add_to_policy(iam.PolicyStatement(
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
        resources=[resource]))
    acknowledge(role, "AwsSolutions-IAM5", f"The {who} names its log groups and streams under {log_group_prefix} "
                "per job and run; the grant covers that prefix only.",
                applies_to=f"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{log_group_prefix}")


class DataValidation:
    """Builds, into ``scope``: the DataBrew role, dataset ``<prefix>-raw``, ruleset
    ``<prefix>-quality``, profile job ``<prefix>-validate``, (with a recipe) recipe and job
    ``<prefix>-clean``, and the ``check_schema`` and ``data_quality`` functions.
    ``states(on_failure)`` gives "Check raw schema" → "Validate raw data" → "Check data
    quality" (→ "Clean raw data"). ``dataset``: the declared columns and types the schema
    check compares every raw file with, the label and its classes."""

    def __init__(self, scope: Construct, *, resources: StageResources, data: DataConfig, names: dict[str, str],
                 raw_dataset_prefix: str, clean_prefix: str, dataset: DatasetConfig) -> None:
        self._scope, self._resources, self._data, self._names = scope, resources, data, names
        self._raw_dataset_prefix, self._dataset_config = raw_dataset_prefix, dataset
        self.role = iam.Role(scope, "DataBrewRole", assumed_by=iam.ServicePrincipal("databrew.amazonaws.com"),
                             description=f"{resources.prefix}: DataBrew profile and recipe jobs")
        acknowledge_inline_policy(self.role, "The DataBrew profile and recipe jobs' role")
        resources.grant(self.role, "raw", raw_dataset_prefix, "read the raw files it validates and cleans")
        resources.grant(self.role, "artifacts", QUALITY_PREFIX, "write profiles and validation reports", write=True)
        resources.data_key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey")
        log_access(self.role, "/aws-glue-databrew/*", "DataBrew profile and recipe jobs")
        self._dataset = databrew.CfnDataset(
            scope, "RawDataset", name=names["dataset"],
            input={"s3InputDefinition": {"bucket": resources.bucket("raw").bucket_name, "key": raw_dataset_prefix}},
            format="CSV", format_options={"csv": {"delimiter": ",", "headerRow": True}},
        )
        self._profile_job()
        self.recipe_job = self._recipe_job(clean_prefix) if data.recipe else None
        self.function = self._quality_function()
        self.schema_function = self._schema_function()

    def _arn(self, resource: str, name: str) -> str:
        return self._resources.arn(self._scope, "databrew", resource, name)

    def _profile_job(self) -> None:
        scope, names, key_arn = self._scope, self._names, self._resources.data_key.key_arn
        ruleset = databrew.CfnRuleset(
            scope, "QualityRuleset", name=names["ruleset"],
            description=f"{self._resources.prefix}: data-quality rules from data.quality_rules",
            target_arn=self._arn("dataset", names["dataset"]),
            rules=struct(databrew_rules(self._data.quality_rules)),
        )
        ruleset.node.add_dependency(self._dataset)
        profile = databrew.CfnJob(
            scope, "ProfileJob", name=names["profile_job"], type="PROFILE",
            dataset_name=names["dataset"], role_arn=self.role.role_arn,
            output_location={"bucket": self._resources.bucket("artifacts").bucket_name, "key": QUALITY_PREFIX},
            validation_configurations=[{"rulesetArn": self._arn("ruleset", names["ruleset"]), "validationMode": "CHECK_ALL"}],
            job_sample={"mode": "FULL_DATASET"},
            encryption_mode="SSE-KMS", encryption_key_arn=key_arn,
            log_subscription="ENABLE", max_retries=0, timeout=self._data.profile_timeout_minutes,
        )
        profile.node.add_dependency(ruleset)
        profile.node.add_dependency(self.role)

    def _recipe_job(self, clean_prefix: str) -> databrew.CfnJob:
        scope, names, resources = self._scope, self._names, self._resources
        resources.grant(self.role, "curated", clean_prefix, "write the cleaned files", write=True, delete=True)
        recipe = databrew.CfnRecipe(scope, "CleaningRecipe", name=names["recipe"],
                                    description=f"{resources.prefix}: cleaning steps from data.recipe",
                                    steps=struct(databrew_recipe_steps(self._data.recipe)))
        published = self._publish_recipe(recipe, names["recipe"])
        job = databrew.CfnJob(
            scope, "RecipeJob", name=names["recipe_job"], type="RECIPE",
            dataset_name=names["dataset"], role_arn=self.role.role_arn,
            recipe={"name": names["recipe"], "version": "LATEST_PUBLISHED"},
            outputs=[{"location": {"bucket": resources.bucket("curated").bucket_name, "key": clean_prefix},
                      "format": "CSV", "formatOptions": {"csv": {"delimiter": ","}},
                      "overwrite": True, "maxOutputFiles": 1}],
            encryption_mode="SSE-KMS", encryption_key_arn=resources.data_key.key_arn,
            log_subscription="ENABLE", max_retries=0, timeout=self._data.profile_timeout_minutes,
        )
        job.node.add_dependency(self._dataset)
        job.node.add_dependency(published, self.role)
        return job

    def _publish_recipe(self, recipe: databrew.CfnRecipe, name: str) -> Construct:
        """CloudFormation creates the recipe's working version only; recipe jobs run a
        published one. Publish on create and whenever the steps change."""
        from aws_cdk import aws_logs as logs

        steps = json.dumps(databrew_recipe_steps(self._data.recipe), sort_keys=True)
        version = hashlib.sha256(steps.encode()).hexdigest()[:12]
        call = cr.AwsSdkCall(service="DataBrew", action="publishRecipe",
                             parameters={"Name": name, "Description": "published by the stack on deploy"},
                             physical_resource_id=cr.PhysicalResourceId.of(f"{name}-{version}"))
        publish = cr.AwsCustomResource(
            self._scope, "PublishRecipe", on_create=call, on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements([iam.PolicyStatement(
                actions=["databrew:PublishRecipe"], resources=[self._arn("recipe", name)])]),
            install_latest_aws_sdk=False,
            log_group=logs.LogGroup(self._scope, "PublishRecipeLogs", encryption_key=self._resources.data_key,
                                    retention=self._resources.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY),
        )
        publish.node.add_dependency(recipe)
        # The stack-wide singleton function behind every AwsCustomResource
        provider = cdk.Stack.of(self._scope).node.find_child("AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""))
        acknowledge(provider, "AwsSolutions-IAM4", "CDK's AwsCustomResource provider uses the AWS-managed basic "
                    "execution policy for its own logs only; its one API call (databrew:PublishRecipe on this "
                    "stage's recipe) is granted separately.",
                    applies_to="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
        # IAM User Guide, "Managed policies and inline policies"; Lambda Developer Guide, "Using AWS
        # Lambda with CloudFormation" (custom-resource functions are invoked asynchronously and answer
        # the stack operation), "Configuring reserved concurrency for a function", "Giving Lambda
        # functions access to resources in an Amazon VPC".
        acknowledge_packs(publish, "IAMNoInlinePolicy",
                          "CDK's AwsCustomResource writes the recipe publisher's one permission (databrew:PublishRecipe "
                          "on this stage's recipe) as an inline policy of the provider's role, used by nothing else.")
        why = "CDK's AwsCustomResource provider publishes the DataBrew recipe when its steps change"
        acknowledge_packs(provider, "LambdaDLQ",
                          f"{why}; CloudFormation invokes it for the stack operation and waits for its answer, so a failed "
                          "publish fails and rolls back that deploy: a dead-letter queue would hold a stale request.")
        acknowledge_packs(provider, "LambdaConcurrency",
                          f"{why}, one invocation per stack operation; reserving concurrency for it would only take units "
                          "from the account's unreserved pool.")
        acknowledge_packs(provider, "LambdaInsideVPC",
                          f"{why}; it calls only the DataBrew API and has no private resource to reach, so a VPC would "
                          "add a NAT gateway or interface endpoint for nothing.")
        return publish

    def _quality_function(self) -> PipelineFunction:
        quality = self._resources.function(self._scope, "DataQuality", folder="data_quality",
                                           description="data-quality gate (DataBrew validation report)")
        self._resources.grant(quality.role, "artifacts", QUALITY_PREFIX, "find and read the run's validation report")
        self._resources.data_key.grant(quality.role, "kms:Decrypt")
        acknowledge(quality.function, "AwsSolutions-L1", "The data-quality handler is pinned to Python 3.13, the newest "
                    "runtime the Powertools v3 layer it imports is published for.")
        return quality

    def _schema_function(self) -> PipelineFunction:
        schema = self._resources.function(self._scope, "CheckSchema", folder="check_schema",
                                          description="schema gate (raw CSV headers and sampled values)")
        self._resources.grant(schema.role, "raw", self._raw_dataset_prefix, "list the raw files and read their first MiB")
        self._resources.data_key.grant(schema.role, "kms:Decrypt")
        acknowledge(schema.function, "AwsSolutions-L1", "The check-schema handler is pinned to Python 3.13, the newest "
                    "runtime the Powertools v3 layer it imports (with pydantic) is published for.")
        return schema

    def states(self, on_failure: sfn.IChainable) -> list[sfn.TaskStateBase]:
        """"Check raw schema" → "Validate raw data" → "Check data quality" (→ "Clean raw data"
        with a recipe)."""
        scope, names, timeout = self._scope, self._names, cdk.Duration.minutes(self._data.profile_timeout_minutes + 15)
        schema = catch_all(tasks.LambdaInvoke(
            scope, "Check raw schema", lambda_function=self.schema_function.function, task_timeout=API_TIMEOUT,
            payload=sfn.TaskInput.from_object({
                # the DataBrew dataset's S3 input: the files the profile, recipe and ETL jobs read
                "bucket": self._resources.bucket("raw").bucket_name, "prefix": self._raw_dataset_prefix,
                "columns": [{"name": c.name, "type": c.type} for c in self._dataset_config.columns],
                "label": self._dataset_config.label,
                **({"classes": self._dataset_config.classes} if self._dataset_config.classes else {}),
                **({"extra_columns": "ignore"} if self._data.extra_columns == "ignore" else {})}),
            result_selector={"files.$": "$.Payload.files", "rows_sampled.$": "$.Payload.rows_sampled",
                             **({"ignored.$": "$.Payload.ignored"} if self._data.extra_columns == "ignore" else {})},
            result_path="$.schema",
            comment="Fails with SchemaMismatch: missing, extra, out-of-order and mistyped columns of every raw file",
        ), on_failure)
        validate = catch_all(retry_transient(tasks.GlueDataBrewStartJobRun(
            scope, "Validate raw data", name=names["profile_job"],
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"run_id.$": "$.RunId", "job.$": "$.JobName"}, result_path="$.profile",
            task_timeout=sfn.Timeout.duration(timeout),
            comment="DataBrew profile job: checks the raw data against the ruleset, writes the validation report",
        ), DATABREW_TRANSIENT), on_failure)
        gate = catch_all(tasks.LambdaInvoke(
            scope, "Check data quality", lambda_function=self.function.function, task_timeout=API_TIMEOUT,
            payload=sfn.TaskInput.from_object({
                "bucket": self._resources.bucket("artifacts").bucket_name, "prefix": QUALITY_PREFIX,
                "run_id": sfn.JsonPath.string_at("$.profile.run_id"), "dataset": names["dataset"]}),
            result_selector={"passed.$": "$.Payload.passed", "rules.$": "$.Payload.rules", "report.$": "$.Payload.report"},
            result_path="$.quality", comment="Fails with DataQualityFailed and the list of failed rules",
        ), on_failure)
        if self.recipe_job is None:
            return [schema, validate, gate]
        clean = catch_all(retry_transient(tasks.GlueDataBrewStartJobRun(
            scope, "Clean raw data", name=names["recipe_job"], integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"run_id.$": "$.RunId"}, result_path="$.cleaning", task_timeout=sfn.Timeout.duration(timeout),
            comment="DataBrew recipe job (published recipe): cleaned CSV to the curated zone",
        ), DATABREW_TRANSIENT), on_failure)
        return [schema, validate, gate, clean]
