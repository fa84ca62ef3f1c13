"""Phase: split the data (AWS Glue ETL) and keep the Data Catalog current (crawlers).

The Glue job ``<prefix>-split`` runs ``jobs/etl/etl.py`` (Glue 5.0, Spark 3.5): dedupe, fill
missing values, mask PII, a deterministic 80/10/10 split in the training layout plus a
header-bearing copy for the catalog. Crawlers ``<prefix>-raw`` / ``<prefix>-curated``
catalogue the raw zone and the split tables. Everything runs under a Glue security
configuration that encrypts S3 output, CloudWatch Logs and job bookmarks with the data key.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import DataConfig, DatasetConfig
from mlops.constructs.data_preparation.validation import log_access
from mlops.constructs.resources import StageResources
from mlops.constructs.sagemaker_jobs import read_assets
from mlops.constructs.workflow import API_TIMEOUT, GLUE_TRANSIENT, JOBS_DIR, catch_all, retry_transient
from mlops.nag import acknowledge, acknowledge_inline_policy


class GlueSplit:
    """Builds, into ``scope``: the security configuration, the crawlers and their role, the
    ETL job and its role. ``states(on_failure)`` returns "Split train, validation, test" →
    "Refresh catalog" → "Catalog refresh under way"."""

    def __init__(self, scope: Construct, *, resources: StageResources, data: DataConfig, names: dict[str, str],
                 paths: dict[str, str], dataset: DatasetConfig, database_name: str) -> None:
        self._scope, self._resources, self._data, self._names, self._paths = scope, resources, data, names, paths
        key_arn = resources.data_key.key_arn
        self.security = glue.CfnSecurityConfiguration(scope, "GlueSecurity", name=names["security"], encryption_configuration={
            "s3Encryptions": [{"s3EncryptionMode": "SSE-KMS", "kmsKeyArn": key_arn}],
            "cloudWatchEncryption": {"cloudWatchEncryptionMode": "SSE-KMS", "kmsKeyArn": key_arn},
            "jobBookmarksEncryption": {"jobBookmarksEncryptionMode": "CSE-KMS", "kmsKeyArn": key_arn},
        })
        self.crawlers = self._crawlers(dataset.raw_location, database_name)
        self._etl_job(dataset)

    def _crawlers(self, raw_prefix: str, database_name: str) -> dict[str, glue.CfnCrawler]:
        scope, resources, names, paths = self._scope, self._resources, self._names, self._paths
        role = self._glue_role("CrawlerRole", "crawlers", database_name)
        resources.grant(role, "raw", raw_prefix, "read the raw files it catalogues")
        resources.grant(role, "curated", paths["catalog"], "read the curated split tables it catalogues")
        configuration = json.dumps({
            "Version": 1.0,
            "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
            "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"},
        })
        crawlers = {}
        for key, zone, path, table_prefix, what in (
            ("raw_crawler", "raw", raw_prefix, "raw_", "raw zone"),
            ("curated_crawler", "curated", paths["catalog"], "curated_", "curated split tables"),
        ):
            crawler = glue.CfnCrawler(
                scope, key.replace("_", " ").title().replace(" ", ""),
                name=names[key],
                description=f"{resources.prefix}: catalogue the {what}",
                role=role.role_arn,
                database_name=database_name,
                targets={"s3Targets": [{"path": f"s3://{resources.bucket(zone).bucket_name}/{path}"}]},
                table_prefix=table_prefix,
                crawler_security_configuration=self.security.ref,
                schema_change_policy={"updateBehavior": "UPDATE_IN_DATABASE", "deleteBehavior": "LOG"},
                recrawl_policy={"recrawlBehavior": "CRAWL_EVERYTHING"},
                configuration=configuration,
                schedule={"scheduleExpression": self._data.crawler_schedule} if self._data.crawler_schedule else None,
            )
            crawler.node.add_dependency(role)
            crawlers[key] = crawler
        return crawlers

    def _etl_job(self, dataset: DatasetConfig) -> None:
        scope, resources, data, names, paths = self._scope, self._resources, self._data, self._names, self._paths
        script = s3_assets.Asset(scope, "EtlScript", path=str(JOBS_DIR / "etl" / "etl.py"))
        role = self._glue_role("EtlRole", "ETL job", None)
        read_assets(role, [script], listed=False)  # Glue reads ScriptLocation by key
        source = paths["clean"] if data.recipe else None
        if source:
            resources.grant(role, "curated", source, "read the cleaned files of the recipe job")
        else:
            resources.grant(role, "raw", dataset.raw_location, "read the raw files")
        for key, why in (("catalog", "write the header-bearing split copy"), ("latest", "write a data-only run's splits"),
                         ("runs", "write each training run's splits")):
            resources.grant(role, "curated", paths[key], why, write=True, delete=True)
        curated, raw = resources.bucket("curated").bucket_name, resources.bucket("raw").bucket_name
        latest = f"s3://{curated}/{paths['latest']}"
        job = glue.CfnJob(
            scope, "EtlJob",
            name=names["etl"],
            description=f"{resources.prefix}: dedupe, fill missing, mask PII, deterministic 80/10/10 split (jobs/etl/etl.py)",
            role=role.role_arn,
            command={"name": "glueetl", "pythonVersion": "3", "scriptLocation": script.s3_object_url},
            glue_version="5.0",
            worker_type=data.etl.worker_type,
            number_of_workers=data.etl.number_of_workers,
            timeout=data.etl.timeout_minutes,
            max_retries=0,  # the state machine retries, with backoff, and sees every attempt
            execution_property={"maxConcurrentRuns": 3},
            security_configuration=self.security.ref,
            default_arguments={
                "--job-language": "python",
                "--job-bookmark-option": "job-bookmark-disable",  # every run reads the whole table: the split is global
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                # no --enable-continuous-cloudwatch-log: Glue 5.0 logs every job in real time and
                # ignores it ("Enabling continuous logging for AWS Glue 4.0 and earlier jobs")
                "--input": f"s3://{curated}/{source}" if source else f"s3://{raw}/{dataset.raw_location}",
                "--label": dataset.label,
                # undeclared and ignored columns go before anything else
                **({"--columns": ",".join(dataset.kept)}
                   if data.extra_columns == "ignore" or dataset.kept != dataset.column_names else {}),
                "--rules": json.dumps({**data.etl.model_dump(include={"missing"}), "pii": dataset.pii}),
                # what trains, in order, and the label's classes (their indices are what the model predicts)
                "--schema": json.dumps({"features": dataset.features, "classes": dataset.classes}),
                "--seed": str(data.etl.seed),
                "--output_train": f"{latest}train/",
                "--output_validation": f"{latest}validation/",
                "--output_test": f"{latest}test/",
                "--output_catalog": f"s3://{curated}/{paths['catalog']}",
            },
        )
        job.node.add_dependency(role)

    def _glue_role(self, construct_id: str, what: str, database_name: str | None) -> iam.Role:
        resources, arn = self._resources, lambda resource, name=None: self._resources.arn(self._scope, "glue", resource, name)  # noqa: E731
        role = iam.Role(self._scope, construct_id, assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                        description=f"{resources.prefix}: Glue {what}")
        acknowledge_inline_policy(role, f"The Glue {what} role")
        resources.data_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt")
        log_access(role, "/aws-glue/*", f"Glue {what}")
        role.add_to_policy(iam.PolicyStatement(  # --enable-metrics / observability metrics
            actions=["cloudwatch:PutMetricData"], resources=["*"], conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}}))
        acknowledge(role, "AwsSolutions-IAM5", f"cloudwatch:PutMetricData supports no resource-level permissions; the Glue "
                    f"{what} may publish to the Glue namespace only (condition).", applies_to="Resource::*")
        role.add_to_policy(iam.PolicyStatement(actions=["glue:GetSecurityConfiguration"],
                                               resources=[arn("securityConfiguration", self._names["security"])]))
        if database_name:
            role.add_to_policy(iam.PolicyStatement(
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
                         "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
                         "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:BatchUpdatePartition"],
                resources=[arn("catalog"), arn("database", database_name), arn("table", f"{database_name}/*")]))
            acknowledge(role, "AwsSolutions-IAM5", "Crawlers create one table per discovered dataset in this stage's "
                        "database; table names are discovered, so the grant covers the database's tables only.",
                        applies_to=f"Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{database_name}/*")
        return role

    def grant_state_machine(self, role: iam.IRole) -> None:
        """What the "Split train, validation, test" state does as the state machine (the
        policy CDK generates for glue:startJobRun.sync: start, poll, stop the job's runs)."""
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
            resources=[self._resources.arn(self._scope, "glue", "job", self._names["etl"])]))

    def states(self, on_failure: sfn.IChainable) -> tuple[sfn.CustomState, sfn.Pass]:
        """"Split train, validation, test" → "Refresh catalog" (a crawl already running is
        fine: it picks the new files up) → "Catalog refresh under way"."""
        scope, names = self._scope, self._names
        # A custom state, because CDK's GlueStartJobRun turns a task timeout into the job run's
        # Timeout and renders no TimeoutSeconds: here the run keeps the job's own timeout
        # (data.etl.timeout_minutes) and the state gives Glue 15 minutes more to report it.
        split = catch_all(retry_transient(sfn.CustomState(scope, "Split train, validation, test", state_json={
            "Type": "Task", "Comment": "Glue ETL (Spark): dedupe, fill missing, PII, deterministic 80/10/10",
            "Resource": f"arn:{cdk.Stack.of(scope).partition}:states:::glue:startJobRun.sync",
            "Parameters": {"JobName": names["etl"], "Arguments": {
                f"--output_{split}.$": f"$.outputs.{split}" for split in ("train", "validation", "test")}},
            "TimeoutSeconds": (self._data.etl.timeout_minutes + 15) * 60,
            "ResultSelector": {"run_id.$": "$.Id", "state.$": "$.JobRunState"}, "ResultPath": "$.split",
        }), GLUE_TRANSIENT), on_failure)
        crawl = tasks.CallAwsService(
            scope, "Refresh catalog", service="glue", action="startCrawler",
            parameters={"Name": names["curated_crawler"]},
            iam_resources=[self._resources.arn(scope, "glue", "crawler", names["curated_crawler"])],
            iam_action="glue:StartCrawler",
            result_path=sfn.JsonPath.DISCARD, task_timeout=API_TIMEOUT,
            comment="Start the curated crawler; a crawl already running picks the new files up",
        )
        retry_transient(crawl, GLUE_TRANSIENT)
        crawled = sfn.Pass(scope, "Catalog refresh under way")
        crawl.add_catch(crawled, errors=["Glue.CrawlerRunningException"], result_path=sfn.JsonPath.DISCARD)
        catch_all(crawl, on_failure)
        split.next(crawl).next(crawled)
        return split, crawled
