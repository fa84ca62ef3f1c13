"""The data phase: DataBrew validation and cleaning, the Glue ETL split, crawlers, feature
ingestion, and the ``<prefix>-data`` state machine that runs them in order."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import DataConfig, DatasetConfig
from mlops.constructs.data_preparation.features import FeatureIngestion
from mlops.constructs.data_preparation.split import GlueSplit
from mlops.constructs.data_preparation.validation import QUALITY_PREFIX, DataValidation
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.constructs.workflow import API_TIMEOUT, FailureNames, catch_all, failure_ending, standard_state_machine
from mlops.nag import acknowledge, acknowledge_inline_policy

__all__ = ["DataPreparation", "QUALITY_PREFIX", "data_prefixes"]


def data_prefixes(dataset: str) -> dict[str, str]:
    """Where the data phase reads and writes, per zone (keys under the zone buckets)."""
    return {
        "clean": f"clean/{dataset}/",        # curated: DataBrew recipe job output (CSV with header)
        "catalog": f"catalog/{dataset}/",    # curated: header-bearing split copy, one table partitioned by split
        "latest": f"{dataset}/latest/",      # curated: train/validation/test of a data-only run
        "runs": f"{dataset}/runs/",          # curated: train/validation/test of each training run
    }


class DataPreparation(Construct):
    """Provisions the stage's data phase and its Standard state machine ``state_machine``
    (``<prefix>-data``): check the raw files' schema (Lambda: header and sampled values against
    the declared columns, fails ``SchemaMismatch`` with every problem) → validate raw data against the DataBrew ruleset (profile job) → quality
    gate (Lambda reads the validation report, fails with the rules that failed) → clean with
    the published DataBrew recipe → Glue ETL split 80/10/10 → refresh the catalog (crawler) →
    ingest features (SageMaker Processing, batched PutRecord). The training state machine runs
    it as its first step; it also runs on its own (console, schedule, or new raw objects when
    ``data.refresh_on_new_raw_data``), writing to ``<dataset>/latest/``.

    ``dataset``: the declared raw columns (types and roles), the label and its classes, where
    the raw files land.

    Exposes ``state_machine``, ``functions``, ``names`` (physical names), ``crawlers``,
    ``feature_groups`` and ``ingestion_role``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, resources: StageResources, data: DataConfig,
                 dataset: DatasetConfig, database_name: str, image_uri: str, instance_type: str,
                 timeout_hours: int) -> None:
        super().__init__(scope, construct_id)
        prefix, raw_dataset_prefix = resources.prefix, dataset.raw_location
        self._resources, paths = resources, data_prefixes(dataset.name)
        self.names = {"security": f"{prefix}-glue", "etl": f"{prefix}-split", "dataset": f"{prefix}-raw",
                      "recipe": f"{prefix}-clean", "ruleset": f"{prefix}-quality", "profile_job": f"{prefix}-validate",
                      "recipe_job": f"{prefix}-clean", "raw_crawler": f"{prefix}-raw", "curated_crawler": f"{prefix}-curated"}
        split = GlueSplit(self, resources=resources, data=data, names=self.names, paths=paths, dataset=dataset,
                          database_name=database_name)
        self.crawlers, self._split = split.crawlers, split
        validation = DataValidation(self, resources=resources, data=data, names=self.names,
                                    raw_dataset_prefix=raw_dataset_prefix, clean_prefix=paths["clean"],
                                    dataset=dataset)
        self.functions: dict[str, PipelineFunction] = {"check_schema": validation.schema_function,
                                                       "data_quality": validation.function}
        features = FeatureIngestion(self, resources=resources, data=data, catalog_prefix=paths["catalog"],
                                    image_uri=image_uri, instance_type=instance_type)
        self.feature_groups, self.ingestion_role = features.groups, features.role
        on_failure = failure_ending(
            self, names=FailureNames(describe="Describe data failure", notify="Notify data failure",
                                     failed="Data run failed", undescribed="Data failure not described"),
            resources=resources, state_machine_name=f"{prefix}-data", subject=f"{prefix} data run: FAILED")
        check_input, chain = self._locations(paths, on_failure)
        for state in validation.states(on_failure):
            chain = chain.next(state)
        split_state, crawled = split.states(on_failure)
        chain = chain.next(split_state)
        last: sfn.INextable = crawled
        if features.groups:
            last = crawled.next(features.state(on_failure))
        last.next(sfn.Pass(self, "Data ready", parameters={
            "train.$": "$.outputs.train", "validation.$": "$.outputs.validation", "test.$": "$.outputs.test",
            "catalog.$": "$.outputs.catalog", "quality_report.$": "$.quality.report", "rules_checked.$": "$.quality.rules",
        }))
        self.state_machine = standard_state_machine(
            self, name=f"{prefix}-data", comment=f"{prefix}: validate, clean, split, catalogue and ingest the raw data",
            definition=check_input, timeout=cdk.Duration.hours(timeout_hours), resources=resources)
        self._grant_state_machine(features)
        if data.refresh_on_new_raw_data:
            self._raw_data_rule(raw_dataset_prefix)

    def _locations(self, paths: dict[str, str], on_failure: sfn.IChainable) -> tuple[sfn.Chain, sfn.Pass]:
        """"Start data run" → "Check data run input" (the ``data_run_input`` handler: a training
        run passes its own output prefix, a data-only run writes under ``<dataset>/latest/``,
        anything else fails ``InvalidExecutionInput`` naming the field, and is notified) →
        "Output locations"."""
        curated = self._resources.bucket("curated").bucket_name
        function = self._resources.function(self, "DataRunInput", folder="data_run_input",
                                            description="checks a data run's input and says where it writes")
        self.functions["data_run_input"] = function
        acknowledge(function.function, "AwsSolutions-L1", "The data-run-input handler is pinned to Python 3.13, the "
                    "newest runtime the Powertools v3 layer it imports (with pydantic) is published for.")
        # The input may be any JSON; a Catch records the error at $.error, which needs an object.
        start = sfn.Pass(self, "Start data run", parameters={"execution.$": "$$.Execution.Id"},
                         comment="The states after this one see an object, whatever the execution input is")
        check = catch_all(tasks.LambdaInvoke(
            self, "Check data run input", lambda_function=function.function, task_timeout=API_TIMEOUT,
            payload=sfn.TaskInput.from_object({"input": sfn.JsonPath.string_at("$$.Execution.Input"),
                                               "latest": f"s3://{curated}/{paths['latest']}"}),
            result_selector={"base.$": "$.Payload.base", "trigger.$": "$.Payload.trigger"}, result_path="$",
            comment="A training run writes under its own prefix, a data-only run under latest; bad input fails here"),
            on_failure)
        locations = sfn.Pass(self, "Output locations", result_path="$.outputs", parameters={
            **{f"{split}.$": f"States.Format('{{}}{split}/', $.base.prefix)" for split in ("train", "validation", "test")},
            "catalog": f"s3://{curated}/{paths['catalog']}",
        })
        return start.next(check).next(locations), locations

    def _grant_state_machine(self, features: FeatureIngestion) -> None:
        role, stack = self.state_machine.role, cdk.Stack.of(self)
        self._resources.topic_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        self._split.grant_state_machine(role)
        if features.groups:
            features.grant_state_machine(role)
        acknowledge(role, "AwsSolutions-IAM5", "Data state machine: X-Ray tracing of executions (xray:PutTraceSegments "
                    "and friends support no resource-level permissions).", applies_to="Resource::*")
        for key, name in (("check_schema", "CheckSchema"), ("data_quality", "DataQuality"),
                          ("data_run_input", "DataRunInput")):
            logical_id = stack.get_logical_id(self.functions[key].function.node.default_child)  # type: ignore[arg-type]
            acknowledge(role, "AwsSolutions-IAM5", f"Data state machine: CDK's LambdaInvoke grant covers the versions "
                        f"and aliases of the {name} function.", applies_to=f"Resource::<{logical_id}.Arn>:*")

    def _raw_data_rule(self, prefix: str) -> None:
        resources = self._resources
        dead_letters = resources.queue(self, "RawDataDeadLetters", name="raw-data", holds="the new-raw-data rule's target")
        events.Rule(
            self, "NewRawData",
            description=f"New raw data under {prefix}: start a data run",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [resources.bucket("raw").bucket_name]}, "object": {"key": [{"prefix": prefix}]}},
            ),
            targets=[targets.SfnStateMachine(
                self.state_machine, dead_letter_queue=dead_letters, retry_attempts=8, max_event_age=cdk.Duration.hours(24),
                input=events.RuleTargetInput.from_object({"trigger": {
                    "source": "new-raw-data", "key": events.EventField.from_path("$.detail.object.key")}}),
            )],
        )
        # the role EventBridge assumes to start the state machine (CDK's SfnStateMachine target creates it)
        acknowledge_inline_policy(self.state_machine.node.find_child("EventsRole"), "EventBridge's role for the "
                                  "new-raw-data rule (states:StartExecution on the data state machine)")
