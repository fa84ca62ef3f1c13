"""Run a stage's synthesized training state machine end to end, offline.

Loads the definition from ``cdk.out`` (the JSON CloudFormation would deploy), resolves
every Ref/GetAtt/ImportValue/GetStackOutput/FindInMap to a stand-in for a resource it
creates in moto, registers the Lambda handlers CDK staged, and starts executions on
moto's Step Functions executor with the patches in ``tools/offline/adapter.py``.

Never shipped to Lambda: this is test and demo tooling.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import functools
import io
import json
import logging
import re
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.client
import requests
from botocore.exceptions import ClientError

from tools.assembly import StackTemplate, read_stacks
from tools.offline import adapter, environ, jobs, service_rules
from tools.offline.iam import IAM_PREFIXES, TAGGED_CREATES, Call, PolicyModel, authorizations, tag_keys

if TYPE_CHECKING:
    from mlops.config import StageConfig

REGION, ACCOUNT, PARTITION = "eu-west-1", "123456789012", "aws"
MOTO_SEED = 7
ASSETS_BUCKET = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
          "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
REPO = Path(__file__).resolve().parent.parent.parent
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

_CALLER = threading.local()


@dataclass
class StateRecord:
    name: str
    started: float
    ended: float | None = None
    outcome: str = "running"
    detail: str = ""
    depth: int = 0  # inside how many Parallel states

    @property
    def seconds(self) -> float:
        return (self.ended or self.started) - self.started


@dataclass
class RunResult:
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    states: list[StateRecord]
    history: list[dict[str, Any]]

    def visited(self) -> list[str]:
        return [state.name for state in self.states]

    def state(self, name: str) -> StateRecord:
        return next(state for state in self.states if state.name == name)


def _evaluate(module: Any, arguments: list[str], local: Any) -> None:
    """The evaluation script's entry point with its processing directories mapped to the job's
    scratch directory."""
    directories = {"--predictions-dir": "predictions", "--test-dir": "test", "--output-dir": "evaluation"}
    module.main(arguments + [part for option, name in directories.items()
                             for part in (option, local(f"/opt/ml/processing/{name}"))])


@dataclass
class _Resolver:
    stacks: dict[str, StackTemplate]  # stack name -> template
    stand_ins: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # (stack, logical id, attr)
    exports: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: Any, stack: str) -> Any:
        if isinstance(value, list):
            return [self.resolve(item, stack) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return PSEUDO[argument] if argument in PSEUDO else self.attribute(stack, argument, "Ref")
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.attribute(stack, logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self.resolve(part, stack)) for part in parts)
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.resolve({"Ref": m.group(1)}, stack)), argument)
            if key == "Fn::FindInMap":
                name, top, second = (self.resolve(part, stack) for part in argument)
                return self.stacks[stack].template["Mappings"][name][top][second]
            if key == "Fn::ImportValue":
                return self.exports[self.resolve(argument, stack)]
            if key == "Fn::GetStackOutput":
                source = argument["StackName"]
                return self.resolve(self.stacks[source].template["Outputs"][argument["OutputName"]]["Value"], source)
        return {key: self.resolve(item, stack) for key, item in value.items()}

    def attribute(self, stack: str, logical_id: str, attribute: str) -> Any:
        key = (stack, logical_id, attribute)
        if key not in self.stand_ins:
            resource = self.stacks[stack].template["Resources"][logical_id]
            self.stand_ins[key] = _stand_in(resource, logical_id, attribute, lambda v: self.resolve(v, stack),
                                            self.stacks[stack].stack_name)
        return self.stand_ins[key]

    def resolve_policy(self, document: Any, stack: str) -> Any:
        """A policy document, with references to resources offline runs do not create (log
        groups of other stacks, custom-resource providers) left as ``unresolved:`` markers,
        which match no request."""
        try:
            return self.resolve(document, stack)
        except KeyError:
            pass
        if isinstance(document, list):
            return [self.resolve_policy(item, stack) for item in document]
        if isinstance(document, dict):
            if len(document) == 1 and next(iter(document)) in ("Ref", "Fn::GetAtt", "Fn::ImportValue", "Fn::GetStackOutput"):
                return f"unresolved:{json.dumps(document, sort_keys=True)}"
            return {key: self.resolve_policy(value, stack) for key, value in document.items()}
        return document


def _stand_in(resource: dict, logical_id: str, attribute: str, resolve, stack_name: str = "") -> Any:  # noqa: ANN001
    kind, properties = resource["Type"], resource.get("Properties", {})
    name = logical_id.lower()
    # CloudFormation names what has no Name property "<stack>-<logical id>-<suffix>" (rules: 64 characters)
    generated = f"{stack_name}-{logical_id}"[:64] if stack_name else logical_id
    arns = {
        "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{logical_id}",
        "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical_id}",
        "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
        "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{properties.get('StateMachineName', logical_id)}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_id}",
        "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical_id}",
        "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{properties.get('Name', generated)}",
        "AWS::Scheduler::Schedule": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{properties.get('Name', generated)}",
        "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{properties.get('AlarmName', logical_id)}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{properties.get('LogGroupName', logical_id)}:*",
    }
    refs = {
        "AWS::Lambda::Function": logical_id, "AWS::IAM::Role": logical_id, "AWS::S3::Bucket": name,
        "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{logical_id}",
        "AWS::KMS::Key": logical_id, "AWS::Events::Rule": properties.get("Name", generated),
        "AWS::SNS::Topic": arns["AWS::SNS::Topic"], "AWS::CloudWatch::Alarm": properties.get("AlarmName", logical_id),
        "AWS::CloudWatch::CompositeAlarm": properties.get("AlarmName", logical_id),
        "AWS::StepFunctions::StateMachine": arns["AWS::StepFunctions::StateMachine"],
        "AWS::SageMaker::ModelPackageGroup": properties.get("ModelPackageGroupName"),
        "AWS::Glue::SecurityConfiguration": properties.get("Name"),
    }
    if attribute == "Ref" and kind in refs:
        return refs[kind]
    if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):  # the runner names each queue by its logical id
        return logical_id
    if attribute == "Arn" and kind in arns:
        return arns[kind]
    raise KeyError(f"no offline stand-in for {kind} {logical_id}.{attribute}")


def local_containers_of(config: StageConfig, python: str | None = None) -> dict[str, list[str]]:
    """Image URI -> the argv that runs its program here, for every image of a stage config
    (``pipeline.model.container``, each candidate's ``container``) that has ``local.command``;
    ``python``/``python3`` first becomes ``python`` (default: this interpreter, the pinned venv)."""
    import sys

    model = config.pipeline.model
    containers = [model.container, *(candidate.container for candidate in model.candidates or [])]
    return {container.image_uri: container.local.argv(python or sys.executable)
            for container in containers if container is not None and container.local is not None}


class OfflineStage:
    """One stage's stacks emulated in moto. Use as a context manager; ``run()`` executes.

    ``local_containers`` (image URI -> argv, ``local_containers_of(config)``) are the commands
    that run the team's own images here (the stage config's ``container.local.command``).
    They are given explicitly rather than read from the cloud assembly: the assembly is what
    deploys, and a development aid that must never be deployed stays out of it (no template, no
    side file changes when a team adds one); the callers that build an OfflineStage
    (``scripts/demo.py``, the tests) hold the stage config anyway. Every serving process they
    start stops when the stage closes."""

    def __init__(self, cdk_out: Path, stage: str = "dev", *, faults: dict[str, list[str]] | None = None,
                 local_containers: dict[str, list[str]] | None = None) -> None:
        self.cdk_out = Path(cdk_out)
        self.stage = stage
        self.local_containers = dict(local_containers or {})
        self.hooks = adapter.Hooks(faults={k: list(v) for k, v in (faults or {}).items()})
        self.feature_store = jobs.FeatureStore(self.hooks.calls)
        self.hooks.jobs.update(createTrainingJob=jobs.train, createProcessingJob=jobs.run_processing,
                               createTransformJob=jobs.run_transform,
                               createHyperParameterTuningJob=jobs.run_tuning)
        self.hooks.jobs.update({"glue:startJobRun": jobs.run_glue_job, "databrew:startJobRun": jobs.run_databrew_job})
        self.stacks = {stack.stack_id: stack for stack in read_stacks(self.cdk_out, [stage])}
        self._resolver = _Resolver({stack.stack_name: stack for stack in self.stacks.values()})
        self._exit = ExitStack()
        self.notifications: list[str] = []
        self.lost_events: list[dict] = []  # undeliverable events no dead-letter queue took
        self.failed_invocations: list[dict] = []  # asynchronous invocations whose every attempt failed

    # ---------------------------------------------------------------- set-up
    def __enter__(self) -> OfflineStage:
        from moto import mock_aws

        self._exit.enter_context(jobs.local_containers(self.local_containers))  # closed last: no serving process left
        self._exit.enter_context(environ.guarded())  # threads walk the environment handlers change
        self._exit.enter_context(_fake_credentials())
        self._exit.enter_context(mock_aws(config=MOTO_CONFIG))
        self._exit.enter_context(adapter.patched(self.hooks))
        self._exit.enter_context(_recording_calls(self.hooks))
        self._exit.enter_context(_quiet_emulator())
        _CALLER.name = "runner"
        self._create_data_stack()
        self._create_operations_stack()
        self._create_pipeline_stack()
        return self  # calls from this thread stay the runner's own (not the stage's principals)

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if exc_type is None:  # every scenario: everything its runs created carries the cost-allocation tags
                untagged = self.untagged_creations()
                if untagged:
                    raise AssertionError(f"created without the stage's cost-allocation tags: {untagged}")
        finally:
            self._exit.close()

    def untagged_creations(self) -> list[str]:
        """Each create request of the runs (state machines, handlers) that lacked one of the
        stage's cost-allocation tag keys (the Tags of the Pipeline stack's resources)."""
        machine = next(iter(self._resources("Pipeline", "AWS::StepFunctions::StateMachine").values()))
        expected = {tag["Key"] for tag in machine["Properties"]["Tags"]}  # the stage's tags, as CDK applied them
        return [f"{principal} {operation} (missing {', '.join(sorted(expected - keys))})"
                for principal, operation, keys in self.hooks.creations if not expected <= keys]

    def _stack(self, part: str) -> StackTemplate:
        return self.stacks[part]

    def _resources(self, part: str, kind: str) -> dict[str, dict]:
        return {k: r for k, r in self._stack(part).template["Resources"].items() if r["Type"] == kind}

    def _create_data_stack(self) -> None:
        data = self._stack("Data")
        kms, s3, sagemaker = boto3.client("kms"), boto3.client("s3"), boto3.client("sagemaker")
        # moto's ids from a fixed seed (its documented seeding endpoint): every session of a stage
        # gets the same key ARNs, so its state machine definitions are the same text each time and
        # moto's parse of them is kept across sessions (adapter patch 13)
        requests.post(f"http://motoapi.amazonaws.com/moto-api/seed?a={MOTO_SEED}", timeout=10)
        for logical_id in self._resources("Data", "AWS::KMS::Key"):
            key = kms.create_key(Description=logical_id)["KeyMetadata"]
            self._resolver.stand_ins[(data.stack_name, logical_id, "Arn")] = key["Arn"]
            self._resolver.stand_ins[(data.stack_name, logical_id, "Ref")] = key["KeyId"]
        for logical_id, bucket in self._resources("Data", "AWS::S3::Bucket").items():
            s3.create_bucket(Bucket=logical_id.lower(), CreateBucketConfiguration={"LocationConstraint": REGION})
            for rule in bucket["Properties"].get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
                key = rule["ServerSideEncryptionByDefault"].get("KMSMasterKeyID")
                if key:  # SSE-KMS by default: writers and readers need the key too
                    self.hooks.keys[f"arn:aws:s3:::{logical_id.lower()}"] = self._resolver.resolve(key, data.stack_name)
        for output in data.template.get("Outputs", {}).values():
            if "Export" in output:
                name = self._resolver.resolve(output["Export"]["Name"], data.stack_name)
                self._resolver.exports[name] = self._resolver.resolve(output["Value"], data.stack_name)
        glue = boto3.client("glue")
        for resource in self._resources("Data", "AWS::Glue::Database").values():
            glue.create_database(DatabaseInput=resource["Properties"]["DatabaseInput"])
        for resource in self._resources("Data", "AWS::SageMaker::FeatureGroup").values():
            properties = self._resolver.resolve(resource["Properties"], data.stack_name)
            sagemaker.create_feature_group(**{key: properties[key] for key in (
                "FeatureGroupName", "RecordIdentifierFeatureName", "EventTimeFeatureName", "FeatureDefinitions",
                "OnlineStoreConfig", "OfflineStoreConfig", "RoleArn", "Description") if key in properties})
        for resource in self._resources("Data", "AWS::SageMaker::ModelPackageGroup").values():
            sagemaker.create_model_package_group(ModelPackageGroupName=resource["Properties"]["ModelPackageGroupName"])
        # What the SampleData BucketDeployment copies: its source assets' files (staged by the synth
        # as cdk.out/asset.<hash>/, deployed as <hash>.zip) under the destination prefix.
        for deployment in self._resources("Data", "Custom::CDKBucketDeployment").values():
            properties = deployment["Properties"]
            bucket = self._resolver.resolve(properties["DestinationBucketName"], data.stack_name)
            prefix = properties.get("DestinationBucketKeyPrefix", "")
            for key in properties["SourceObjectKeys"]:
                source = self.cdk_out / f"asset.{key.removesuffix('.zip')}"
                for path in sorted(p for p in source.rglob("*") if p.is_file()):
                    s3.put_object(Bucket=bucket, Key=f"{prefix}{path.relative_to(source)}", Body=path.read_bytes())

    def _create_operations_stack(self) -> None:
        operations = self._stack("Operations")
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        inbox = sqs.create_queue(QueueName="offline-notifications")["QueueUrl"]
        self._inbox = inbox
        for logical_id in self._resources("Operations", "AWS::SNS::Topic"):
            arn = sns.create_topic(Name=logical_id)["TopicArn"]
            sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:offline-notifications")
            self._resolver.stand_ins[(operations.stack_name, logical_id, "Ref")] = arn

    def _create_pipeline_stack(self) -> None:
        pipeline = self._stack("Pipeline")
        name = pipeline.stack_name
        iam, s3, lambda_, sfn = (boto3.client(s) for s in ("iam", "s3", "lambda", "stepfunctions"))
        for logical_id, role in self._resources("Pipeline", "AWS::IAM::Role").items():
            iam.create_role(RoleName=logical_id, AssumeRolePolicyDocument=json.dumps(role["Properties"]["AssumeRolePolicyDocument"]))
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        # The async inference topics report to an inbox of their own; the dead-letter queues exist to be read.
        self._async_inbox = sqs.create_queue(QueueName="offline-async-notifications")["QueueUrl"]
        for logical_id in self._resources("Pipeline", "AWS::SNS::Topic"):
            arn = sns.create_topic(Name=logical_id)["TopicArn"]
            sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:offline-async-notifications")
        for logical_id in self._resources("Pipeline", "AWS::SQS::Queue"):
            sqs.create_queue(QueueName=logical_id)
        self._create_alarms()
        s3.create_bucket(Bucket=ASSETS_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for asset in self.cdk_out.glob("asset.*"):  # single-file assets: the job scripts, script-mode code
            if asset.is_file():  # CDK keys a file asset <hash><last suffix>: asset.<hash>.tar.gz is <hash>.gz
                key = asset.name.removeprefix("asset.").split(".")[0] + asset.suffix
                s3.put_object(Bucket=ASSETS_BUCKET, Key=key, Body=asset.read_bytes())
        self.functions: dict[str, str] = {}
        for logical_id, function in self._resources("Pipeline", "AWS::Lambda::Function").items():
            properties = function["Properties"]
            if not properties["Runtime"].startswith("python"):
                continue  # CDK's AwsCustomResource provider: deploy-time only (the runner publishes the recipe itself)
            code_dir = self.cdk_out / f"asset.{properties['Code']['S3Key'].removesuffix('.zip')}"
            environment = self._resolver.resolve(properties.get("Environment", {}).get("Variables", {}), name)
            lambda_.create_function(
                FunctionName=logical_id, Runtime=properties["Runtime"], Handler=properties["Handler"],
                Role=self._resolver.resolve(properties["Role"], name), Code={"ZipFile": b"offline"},
            )
            self.hooks.handlers[logical_id] = (code_dir, {k: str(v) for k, v in environment.items()})
            self.functions[(code_dir / "index.py").read_text().split('service="', 1)[1].split('"', 1)[0]] = logical_id
        self._create_data_jobs()
        # transform jobs run as the model's execution role: the SageMaker role
        self.hooks.job_roles[("sagemaker", "*")] = next(k for k in self._resources("Pipeline", "AWS::IAM::Role") if "SageMakerRole" in k)
        self.role_of = {logical_id: self._resolver.resolve(f["Properties"]["Role"], name).split("/")[-1]
                        for logical_id, f in self._resources("Pipeline", "AWS::Lambda::Function").items()
                        if logical_id in self.hooks.handlers}
        self.definitions: dict[str, dict] = {}
        self.state_machine_arns: dict[str, str] = {}
        machines = self._resources("Pipeline", "AWS::StepFunctions::StateMachine").values()
        for machine in machines:
            properties = machine["Properties"]
            machine_name = properties["StateMachineName"]
            kind = machine_name.rsplit("-", 1)[1]  # data, training, monitoring
            self.definitions[kind] = json.loads(self._resolver.resolve(properties["DefinitionString"], name))
            self.role_of[f"states:{machine_name}"] = self._resolver.resolve(properties["RoleArn"], name).split("/")[-1]
            self.state_machine_arns[kind] = sfn.create_state_machine(
                name=machine_name, definition=json.dumps(self.definitions[kind]),
                roleArn=self._resolver.resolve(properties["RoleArn"], name),
            )["stateMachineArn"]
        self.definition, self.state_machine_arn = self.definitions["training"], self.state_machine_arns["training"]
        # Scripts that call APIs only the in-process moto (or our stand-in) serves run in-process
        in_process = {}
        ingest = self.definitions["data"]["States"].get("Ingest features")
        if ingest:
            in_process[Path(ingest["Parameters"]["AppSpecification"]["ContainerEntrypoint"][-1]).name] = (
                lambda module, arguments, local: module.main(arguments + ["--input-dir", local("/opt/ml/processing/input")],
                                                             client=self._feature_store_for_job()))
        evaluation = self.definitions["training"]["States"].get("Evaluate on test split")
        if evaluation:  # in-process saves a Python start-up with numpy and scikit-learn per run
            # (tests/test_evaluation.py starts the script as its own process, as SageMaker does)
            in_process[Path(evaluation["Parameters"]["AppSpecification"]["ContainerEntrypoint"][-1]).name] = _evaluate
        drift = self.definitions.get("monitoring", {}).get("States", {}).get("Check drift")
        if drift:
            in_process[Path(drift["Parameters"]["AppSpecification"]["ContainerEntrypoint"][-1]).name] = (
                lambda module, arguments, local: module.main(arguments))
        self.hooks.jobs["createProcessingJob"] = functools.partial(jobs.run_processing, in_process=in_process)
        self._load_policies()
        self.rules = {logical_id: self._resolver.resolve(r["Properties"], name)
                      for logical_id, r in self._resources("Pipeline", "AWS::Events::Rule").items()}
        self.approval_rules = [r["EventPattern"] for r in self.rules.values()
                               if r["EventPattern"].get("detail-type") == ["SageMaker Model Package State Change"]]

    def _create_alarms(self) -> None:
        """The stage's single-metric alarms, in moto's CloudWatch: what a blue/green update's
        auto-rollback reads (moto does not evaluate them; ``set_alarm`` does what CloudWatch would)."""
        name = self._stack("Pipeline").stack_name
        cloudwatch = boto3.client("cloudwatch")
        keys = ("AlarmName", "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "ExtendedStatistic",
                "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData")
        for resource in self._resources("Pipeline", "AWS::CloudWatch::Alarm").values():
            properties = self._resolver.resolve(resource["Properties"], name)
            if "MetricName" in properties:
                cloudwatch.put_metric_alarm(**{key: properties[key] for key in keys if key in properties})

    def set_alarm(self, alarm_name: str, state: str, reason: str) -> None:
        """An alarm changes state, as CloudWatch would decide from the metrics (moto's backend
        directly: this is the world changing, not a call any principal of the stage makes)."""
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[ACCOUNT][REGION].set_alarm_state(alarm_name, reason, None, state)

    def _load_policies(self) -> None:
        """Every identity policy of the Pipeline stack's roles and the resource policies the
        offline runs consult (key policies, queue and topic policies), resolved to the ARNs of
        their stand-ins; topics encrypted with a key, for the publishers' KMS check."""
        model = self.hooks.policies
        for part in ("Data", "Operations", "Pipeline"):
            stack = self._stack(part).stack_name
            for resource in self._stack(part).template["Resources"].values():
                kind, properties = resource["Type"], resource.get("Properties", {})
                if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                    statements = self._resolver.resolve_policy(properties["PolicyDocument"]["Statement"], stack)
                    for role in properties.get("Roles", []):
                        model.identity.setdefault(role["Ref"], []).extend(statements)
                elif kind == "AWS::KMS::Key":
                    arn = self._resolver.resolve_policy({"Fn::GetAtt": [self._logical_id(part, resource), "Arn"]}, stack)
                    model.resource[arn] = self._resolver.resolve_policy(properties["KeyPolicy"]["Statement"], stack)
                elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
                    statements = self._resolver.resolve_policy(properties["PolicyDocument"]["Statement"], stack)
                    for target in properties.get("Queues", properties.get("Topics", [])):
                        arn = self._resolver.resolve_policy(target, stack)
                        if arn.startswith("https://sqs."):  # a queue policy names queues by URL
                            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{arn.rsplit('/', 1)[1]}"
                        model.resource.setdefault(arn, []).extend(statements)
                elif kind == "AWS::SNS::Topic" and properties.get("KmsMasterKeyId"):
                    topic = self._resolver.resolve_policy({"Ref": self._logical_id(part, resource)}, stack)
                    self.hooks.keys[topic] = self._resolver.resolve_policy(properties["KmsMasterKeyId"], stack)
                elif kind == "AWS::SQS::Queue" and properties.get("KmsMasterKeyId"):
                    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self._logical_id(part, resource)}"
                    self.hooks.keys[queue] = self._resolver.resolve_policy(properties["KmsMasterKeyId"], stack)
        self.hooks.role_of.update(self.role_of)

    def _logical_id(self, part: str, resource: dict) -> str:
        return next(k for k, r in self._stack(part).template["Resources"].items() if r is resource)

    def _feature_store_for_job(self) -> jobs.FeatureStore:
        self.feature_store.principal = adapter.current_principal()  # PutRecord runs in the job's thread pool
        return self.feature_store

    def _create_data_jobs(self) -> None:
        """The data phase's Glue and DataBrew resources, as CloudFormation would create them
        (the recipe published, as the stack's custom resource does on deploy)."""
        from tools.offline import databrew as databrew_emulator

        name = self._stack("Pipeline").stack_name
        glue, brew = boto3.client("glue"), boto3.client("databrew")
        props = lambda kind: [{k: v for k, v in self._resolver.resolve(r["Properties"], name).items() if k != "Tags"}  # noqa: E731
                              for r in self._resources("Pipeline", kind).values()]
        role = lambda arn: arn.split("/")[-1]  # noqa: E731
        for p in props("AWS::Glue::SecurityConfiguration"):
            encryption = dict(p["EncryptionConfiguration"])  # CloudFormation's plural is the API's S3Encryption
            encryption["S3Encryption"] = encryption.pop("S3Encryptions")
            glue.create_security_configuration(Name=p["Name"], EncryptionConfiguration=encryption)
        for p in props("AWS::Glue::Crawler"):
            glue.create_crawler(**{**{k: v for k, v in p.items() if k != "Schedule"},
                                   **({"Schedule": p["Schedule"]["ScheduleExpression"]} if "Schedule" in p else {})})
        for p in props("AWS::Glue::Job"):
            glue.create_job(**p)
            self.hooks.job_roles[("glue", p["Name"])] = role(p["Role"])
        for p in props("AWS::DataBrew::Dataset"):
            brew.create_dataset(**p)
        for p in props("AWS::DataBrew::Ruleset"):
            brew.create_ruleset(**{**p, "Rules": databrew_emulator.api_rules(p["Rules"])})
        for p in props("AWS::DataBrew::Recipe"):
            brew.create_recipe(Name=p["Name"], Steps=p["Steps"], Description=p.get("Description", ""))
            brew.publish_recipe(Name=p["Name"])
        for p in props("AWS::DataBrew::Job"):
            common = {k: p[k] for k in ("Name", "DatasetName", "RoleArn", "EncryptionMode", "EncryptionKeyArn",
                                        "LogSubscription", "MaxRetries", "Timeout") if k in p}
            if p["Type"] == "PROFILE":
                brew.create_profile_job(**common, OutputLocation=p["OutputLocation"], JobSample=p["JobSample"],
                                        ValidationConfigurations=p["ValidationConfigurations"])
            else:
                recipe = p["Recipe"]
                brew.create_recipe_job(**common, Outputs=p["Outputs"],
                                       RecipeReference={"Name": recipe["Name"], "RecipeVersion": recipe["Version"]})
            self.hooks.job_roles[("databrew", p["Name"])] = role(p["RoleArn"])

    # ---------------------------------------------------------------- running
    def start(self, run_input: dict | None = None, name: str | None = None) -> str:
        return boto3.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, input=json.dumps(run_input or {}), name=name or str(uuid.uuid4()),
        )["executionArn"]

    def wait(self, execution_arn: str, *, until: str | None = None, timeout: float = 300) -> RunResult:
        """Poll until the execution ends (or, with ``until``, until that state has started)."""
        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        pause = 0.01  # backs off to 0.2 s: each poll competes with the executor's thread for the interpreter

        def history() -> list[dict[str, Any]]:
            return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING" or (until and any(s.name == until for s in states_of(history()))):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still running after {timeout} s; "
                                   f"states so far: {[s.name for s in states_of(history())]}")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.2)
        events = history()
        states = states_of(events)
        output = json.loads(described["output"]) if described.get("output") else None
        return RunResult(status=described["status"], output=output, error=described.get("error"),
                         cause=described.get("cause"), states=states, history=events)

    def run(self, run_input: dict | None = None, **kwargs: Any) -> RunResult:
        return self.wait(self.start(run_input), **kwargs)

    def decide(self, model_package_arn: str, status: str) -> None:
        """A reviewer approves or rejects the version in the registry; EventBridge delivers
        the state change to the rule's target (checked against the synthesized pattern)."""
        boto3.client("sagemaker").update_model_package(ModelPackageArn=model_package_arn, ModelApprovalStatus=status)
        group = model_package_arn.split(":model-package/")[1].split("/")[0]
        event = {"version": "0", "source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change",
                 "account": ACCOUNT, "region": REGION, "resources": [model_package_arn],
                 "detail": {"ModelPackageGroupName": group, "ModelPackageArn": model_package_arn,
                            "ModelApprovalStatus": status}}
        if not any(_matches(pattern, event) for pattern in self.approval_rules):
            raise AssertionError("no EventBridge rule of the stage matches the registry's state-change event")
        result, error = adapter.invoke_handler(self.functions["approval"], event)
        if error:
            raise RuntimeError(f"approval handler failed: {result}")

    def alarm_state(self, alarm_name: str) -> tuple[str, str]:
        """What CloudWatch would decide for a synthesized alarm from the metric data in moto:
        the latest datapoint against the alarm's threshold (single-metric alarms)."""
        name = self._stack("Pipeline").stack_name
        alarm = next(props for props in (self._resolver.resolve(r["Properties"], name) for r in
                                         self._resources("Pipeline", "AWS::CloudWatch::Alarm").values())
                     if props["AlarmName"] == alarm_name)
        now = datetime.now().astimezone()
        points = boto3.client("cloudwatch").get_metric_statistics(
            Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm.get("Dimensions", []),
            StartTime=now - timedelta(days=1), EndTime=now + timedelta(hours=1), Period=int(alarm["Period"]),
            Statistics=[alarm["Statistic"]])["Datapoints"]
        if not points:
            return "OK", "no datapoints (treated as not breaching)"
        value = max(points, key=lambda p: p["Timestamp"])[alarm["Statistic"]]
        compare = {"GreaterThanOrEqualToThreshold": float.__ge__, "GreaterThanThreshold": float.__gt__,
                   "LessThanThreshold": float.__lt__, "LessThanOrEqualToThreshold": float.__le__}
        breaching = compare[alarm["ComparisonOperator"]](float(value), float(alarm["Threshold"]))
        return ("ALARM" if breaching else "OK"), f"{alarm['MetricName']} {value} vs threshold {alarm['Threshold']}"

    def deliver_alarm(self, alarm_name: str) -> Any:
        """The alarm's "CloudWatch Alarm State Change" event, delivered to the target of the
        synthesized rule it matches (as EventBridge would); returns the handler's result."""
        state, reason = self.alarm_state(alarm_name)
        event = {"version": "0", "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
                 "account": ACCOUNT, "region": REGION, "detail": {"alarmName": alarm_name, "state": {
                     "value": state, "reason": reason}}}
        results = self.deliver_event(event)
        return results[0] if results else None  # no rule matches (e.g. the alarm went back to OK): nothing is delivered

    # ---------------------------------------------------------------- EventBridge and Scheduler
    def deliver_event(self, event: dict, *, delivery_fails: bool = False) -> list[Any]:
        """An event on the default bus, handed to the target of every synthesized rule whose
        pattern matches it, as EventBridge would. ``delivery_fails``: every attempt fails (the
        target throttles or is missing), so after the rule's retry policy EventBridge sends the
        event to the target's dead-letter queue, if the queue and its key let EventBridge in
        (``service_rules.dead_letter``); otherwise it is lost (``lost_events``).
        Returns each target's result (a handler's return value, or the execution ARN started)."""
        results = []
        for logical_id, rule in self.rules.items():
            if not rule.get("EventPattern") or not _matches(rule["EventPattern"], event):
                continue
            rule_arn = self._resolver.attribute(self._stack("Pipeline").stack_name, logical_id, "Arn")
            for target in rule.get("Targets", []):
                if delivery_fails:
                    self._dead_letter("service:events.amazonaws.com", target, event, {
                        "aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT}, f"rule {logical_id}")
                    continue
                results.append(self._invoke_target(target, event, role=target.get("RoleArn")))
        return results

    def fire_schedule(self, logical_id: str, *, delivery_fails: bool = False) -> Any:
        """One tick of a synthesized EventBridge Scheduler schedule: the target invoked as the
        schedule's role, or, when delivery fails, the dead-letter event sent as that role."""
        name = self._stack("Pipeline").stack_name
        target = self._resolver.resolve(self._resources("Pipeline", "AWS::Scheduler::Schedule")[logical_id]["Properties"],
                                        name)["Target"]
        payload = json.loads(target.get("Input", "{}"))
        if delivery_fails:
            self._dead_letter(target["RoleArn"].split("/")[-1], target, payload, {}, f"schedule {logical_id}")
            return None
        return self._invoke_target(target, payload, role=target["RoleArn"])

    def _invoke_target(self, target: dict, event: dict, *, role: str | None) -> Any:
        payload = json.loads(target["Input"]) if "Input" in target else _transform(target.get("InputTransformer"), event)
        arn = target["Arn"]
        if ":function:" in arn:
            if role:  # a schedule invokes as its role; EventBridge as itself, by the function's resource policy
                refused = service_rules.check(role.split("/")[-1], [("lambda:InvokeFunction", arn, {})])
                if refused:
                    raise AssertionError(f"the schedule's role may not invoke {arn}")
            return self._invoke_asynchronously(arn.split(":function:")[1].split(":")[0], payload)
        if ":stateMachine:" in arn:
            refused = service_rules.check(role.split("/")[-1], [("states:StartExecution", arn, {})]) if role else []
            if refused:
                raise AssertionError(f"{role} may not start {arn}")
            return boto3.client("stepfunctions").start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
        raise NotImplementedError(f"offline delivery to {arn}")

    def _invoke_asynchronously(self, function: str, payload: dict) -> Any:
        """EventBridge and Scheduler invoke functions asynchronously: Lambda retries a failed
        invocation (``MaximumRetryAttempts`` of the function's EventInvokeConfig, default 2),
        then sends a record of it to the on-failure destination as the function's role
        (``service_rules.async_failure``), or, without one, discards the event (``lost_events``).
        Returns the handler's result, or None when every attempt failed."""
        config = next((props for props in (self._resolver.resolve(r["Properties"], self._stack("Pipeline").stack_name)
                                           for r in self._resources("Pipeline", "AWS::Lambda::EventInvokeConfig").values())
                       if props["FunctionName"] == function), {})
        for _ in range(1 + int(config.get("MaximumRetryAttempts", 2))):
            result, error = adapter.invoke_handler(function, payload)
            if not error:
                return result
        self.failed_invocations.append({"function": function, "event": payload, "error": result})
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        record = {"version": "1.0", "requestContext": {"functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}",
                                                       "condition": "RetriesExhausted"},
                  "requestPayload": payload, "responsePayload": result}
        if not destination or not service_rules.async_failure(self.role_of[function], destination, record):
            self.lost_events.append({"source": f"function {function}", "event": payload, "queue": destination})
        return None

    def _dead_letter(self, sender: str, target: dict, event: dict, context: dict, source: str) -> None:
        queue = target.get("DeadLetterConfig", {}).get("Arn")
        if not queue or not service_rules.dead_letter(sender, queue, event, context):
            self.lost_events.append({"source": source, "event": event, "queue": queue})

    def dead_letters(self) -> dict[str, list[dict]]:
        """What each dead-letter queue of the stage holds (read without deleting)."""
        sqs, found = boto3.client("sqs"), {}
        for logical_id in self._resources("Pipeline", "AWS::SQS::Queue"):
            url = sqs.get_queue_url(QueueName=logical_id)["QueueUrl"]
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
            found[logical_id] = [json.loads(m["Body"]) for m in messages]
        return found

    def messages(self) -> list[str]:
        """What the operations topic has sent so far (its email subscribers' inbox)."""
        self.notifications += _drain(self._inbox)
        return self.notifications

    def async_notifications(self) -> list[dict]:
        """What the async inference success and error topics have sent since the last call."""
        return [json.loads(message) for message in _drain(self._async_inbox)]

    # ---------------------------------------------------------------- serving
    def invoke(self, endpoint: str, rows: list[list[float | str]]) -> list[Any]:
        """A client's InvokeEndpoint: feature rows as text/csv (numbers, or text such as the
        categories a script model encodes itself); back, per row, a score (binary
        classification), a value (regression) or a list of class probabilities (multiclass),
        parsed from the container's answer (see ``parse_answer``)."""
        lines = io.StringIO()
        csv.writer(lines, lineterminator="\n").writerows(
            [value if isinstance(value, str) else f"{value:.6g}" for value in row] for row in rows)
        body = lines.getvalue().rstrip("\n")
        with adapter.principal("runner"):
            answer = boto3.client("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                                                       Body=body.encode())["Body"].read().decode()
        return parse_answer(answer, len(rows))

    # ---------------------------------------------------------------- IAM coverage
    def iam_report(self) -> dict[str, Any]:
        """What each principal called vs what its synthesized policies allow: ``missing`` lists
        the calls they do not allow, by action and, where known (S3 objects and listings, KMS
        keys behind encrypted buckets and topics), by resource and condition context."""
        called: dict[str, set[str]] = {}
        missing: dict[str, set[str]] = {}
        for call in self.hooks.calls:
            if call.principal in ("runner", "sagemaker-service"):
                continue
            role = self.role_of.get(call.principal, call.principal)  # functions and state machines; jobs run as their role
            called.setdefault(role, set()).add(call.action)
            if not self.hooks.allows(call):
                missing.setdefault(role, set()).add(f"{call.action} on {call.resource}" if call.resource else call.action)
        allowed = {role: {action for statement in statements if statement.get("Effect") == "Allow"
                          for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])}
                   for role, statements in self.hooks.policies.identity.items()
                   if role in {self.role_of.get(p, p) for p in self.role_of} | set(called)}
        unused = {role: sorted(p for p in patterns if not any(fnmatch.fnmatch(a.lower(), p.lower()) for a in called.get(role, ())))
                  for role, patterns in allowed.items()}
        return {"called": {k: sorted(v) for k, v in called.items()}, "missing": {k: sorted(v) for k, v in missing.items()},
                "unused": {k: v for k, v in unused.items() if v}}


def parse_answer(answer: str, rows: int) -> list[Any]:
    """A container's answer for ``rows`` rows, per row a number or a list of numbers.

    Text/csv: the built-in XGBoost's real-time form (all rows on one line: ``0.1,0.9`` or
    ``[0.1, 0.7, 0.2],[...]``) or one line per row (a framework container's CSV encoder:
    ``0.1,0.7,0.2``). JSON: Linear Learner's, which never answers CSV ("Linear learner response
    formats", https://docs.aws.amazon.com/sagemaker/latest/dg/LL-in-formats.html):
    ``{"predictions": [{"score": ...}, ...]}`` (or JSON Lines, one ``{"score": ...}`` per row),
    each row's ``score``: the regressor's value, the binary classifier's positive-class
    probability, the multiclass classifier's vector of class probabilities."""
    if answer.lstrip().startswith("{"):
        return _json_scores(answer, rows)
    if "[" in answer:
        return [json.loads(vector) for vector in re.findall(r"\[[^\[\]]*\]", answer)]
    lines = [line for line in answer.strip().split("\n") if line.strip()]
    if len(lines) == rows:
        values = [[float(value) for value in line.split(",")] for line in lines]
        return [row[0] if len(row) == 1 else row for row in values]
    return [float(value) for value in answer.replace("\n", ",").split(",") if value.strip()]


def _json_scores(answer: str, rows: int) -> list[Any]:
    text = answer.strip()
    try:
        document = json.loads(text)
        records = document["predictions"] if isinstance(document, dict) and "predictions" in document else [document]
    except ValueError:  # JSON Lines: one record per line
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    scores = [record["score"] for record in records]
    if len(scores) != rows:
        raise ValueError(f"the answer holds {len(scores)} predictions for {rows} rows: {text[:200]}")
    return scores


@contextlib.contextmanager
def _quiet_emulator():
    """moto's Step Functions interpreter logs every caught task error at ERROR with a dump of its
    own objects; the runs report their failures themselves (``RunResult``, the failure ending's
    one-line cause), so those dumps stay out of the caller's stderr."""
    logger = logging.getLogger("moto.stepfunctions.parser")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def states_of(history: list[dict[str, Any]]) -> list[StateRecord]:
    """The states an execution entered, in order: each with its start, its end once it exited
    (or the execution ended in it), and its outcome. A task that failed and was retried into
    success is ``ok``; one whose failure was caught or ended the run is ``failed``. An event
    belongs to the state its ``previousEventId`` chain leads back to, so the interleaved
    branches of a Parallel state are told apart; a Parallel state's record follows its
    branches' (it ends after them), which are one level deeper (``depth``)."""
    records: list[StateRecord] = []
    owner: dict[int, StateRecord] = {}
    open_parallels: list[StateRecord] = []
    for event in history:
        stamp = event["timestamp"].timestamp() if isinstance(event["timestamp"], datetime) else float(event["timestamp"])
        kind, record = event["type"], owner.get(event.get("previousEventId", -1))
        if kind.endswith("StateEntered"):
            parent = record
            record = StateRecord(name=event["stateEnteredEventDetails"]["name"], started=stamp,
                                 depth=parent.depth + (parent in open_parallels) if parent else 0)
            records.append(record)
            if kind == "ParallelStateEntered":
                open_parallels.append(record)
        elif kind.startswith("ParallelState") and open_parallels:  # Started, Succeeded, Failed: the state's own
            record = open_parallels[-1]
        elif kind.endswith("StateExited"):  # by name: a Parallel state's exit follows its last branch's event
            name = event["stateExitedEventDetails"]["name"]
            record = next((r for r in reversed(records) if r.name == name and r.ended is None), record)
        elif record is None:
            record = records[-1] if records else None
        if record is None:
            continue
        owner[event.get("id", -1)] = record
        if kind.endswith("StateExited"):
            record.ended = stamp
            if record.outcome == "running":
                record.outcome = "ok"
            if record in open_parallels:  # after its branches' states
                open_parallels.remove(record)
                records.remove(record)
                records.append(record)
        elif kind in ("ExecutionFailed", "ExecutionSucceeded", "ExecutionAborted", "ExecutionTimedOut"):
            if record.ended is None:
                record.ended = stamp
                if record.outcome == "running":
                    record.outcome = "ok" if kind == "ExecutionSucceeded" else "failed"
        elif kind.endswith(("Failed", "TimedOut")):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            record.outcome = "failed"
            record.detail = f"{details.get('error', '')}: {details.get('cause', '')}"[:300]
        elif kind.endswith("Succeeded"):  # a retry of a failed attempt went through
            record.outcome, record.detail = "running", ""
        elif kind == "TaskSubmitted":
            record.detail = "submitted"
    return records


def _drain(queue_url: str) -> list[str]:
    sqs, found = boto3.client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            found.append(json.loads(message["Body"]).get("Message", message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def _transform(transformer: dict | None, event: dict) -> Any:
    """EventBridge's input transformer: ``InputPathsMap`` JSONPaths into the event, substituted
    for ``<name>`` in ``InputTemplate``; without a transformer the event itself."""
    if not transformer:
        return event
    values = {}
    for name, path in transformer.get("InputPathsMap", {}).items():
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values[name] = value
    template = transformer["InputTemplate"]
    for name, value in values.items():  # quoted placeholders take the string, bare ones its JSON
        template = template.replace(f'"<{name}>"', json.dumps(value)).replace(f"<{name}>", json.dumps(value))
    return json.loads(template)


def _matches(pattern: dict, event: dict) -> bool:
    """EventBridge matching for the patterns this app writes: nested fields, lists of values,
    and ``{"prefix": ...}``."""
    for key, expected in pattern.items():
        value = event.get(key)
        if isinstance(expected, dict):
            if not isinstance(value, dict) or not _matches(expected, value):
                return False
        elif not any(value == item or (isinstance(item, dict) and isinstance(value, str)
                                       and value.startswith(item.get("prefix", "\0"))) for item in expected):
            return False
    return True


class _fake_credentials:
    """moto needs credentials to sign requests; never real ones."""

    KEYS = {"AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline", "AWS_DEFAULT_REGION": REGION}

    def __enter__(self) -> None:
        import os

        self._saved = {k: os.environ.get(k) for k in (*self.KEYS, "AWS_PROFILE", "AWS_SESSION_TOKEN")}
        os.environ.update(self.KEYS)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)

    def __exit__(self, *exc: Any) -> None:
        import os

        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _recording_calls:
    """Record (principal, service:Operation) for every AWS API call while active: the
    principal is the Lambda function whose handler is running, else the state machine."""

    def __init__(self, hooks: adapter.Hooks) -> None:
        self.hooks = hooks

    def __enter__(self) -> None:
        self.original = botocore.client.BaseClient._make_api_call
        hooks, original = self.hooks, self.original

        def record(client, operation_name, api_params):  # noqa: ANN001
            principal = adapter.current_principal() or getattr(_CALLER, "name", None) or "states"
            prefix = client.meta.service_model.metadata.get("signingName") or client.meta.service_model.endpoint_prefix
            prefix = IAM_PREFIXES.get(prefix, prefix)
            needed = authorizations(principal, prefix, operation_name, api_params, hooks.keys)
            hooks.calls.extend(needed)
            if operation_name in TAGGED_CREATES.get(prefix, ()) and principal != "runner":
                hooks.creations.append((principal, f"{prefix}:{operation_name}", tag_keys(api_params)))
            if adapter.enforcing():
                refused = [call for call in needed if not hooks.allows(call)]
                if refused:
                    hooks.denied.extend(refused)
                    raise ClientError({"Error": {"Code": "AccessDenied", "Message": "; ".join(
                        f"{principal} is not authorized to perform {c.action} on {c.resource or '*'}" for c in refused)}},
                        operation_name)
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = record

    def __exit__(self, *exc: Any) -> None:
        botocore.client.BaseClient._make_api_call = self.original
