"""The training-to-deployment workflow: it only chains its phases.

"Prepare run" (validate the input, derive every name) → "Prepare data" (the data state
machine, nested) → model build (``model_build.py``) → evaluation and gate
(``evaluation.py``) → registration and approval (``registration.py``) → deployment
(``deployment.py``, with autoscaling and alarms from ``endpoint.py``).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import DeploymentConfig, PipelineConfig, TrainingConfig, tuning_stem
from mlops.constructs.monitoring.backend import MonitoringBackend
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.constructs.training.algorithm import XGBOOST_REPOSITORY, Algorithm
from mlops.constructs.training.candidates import CandidateSet, select_candidate_function
from mlops.constructs.training.deployment import DEPLOYMENT_MODES, Deployment, check_endpoint_function
from mlops.constructs.training.endpoint import Endpoints, autoscaling_caller_statements, rollback_alarms, tracking_alarm_findings
from mlops.constructs.training.evaluation import Evaluation, evaluation_script, metric_gate_function
from mlops.constructs.training.execution_role import execution_role, grant_rollback_alarms, grant_serving
from mlops.constructs.training.model_build import ModelBuild
from mlops.constructs.training.notices import training_failure
from mlops.constructs.training.registration import Registration, approval_function
from mlops.constructs.workflow import API_TIMEOUT, catch_all, standard_state_machine
from mlops.nag import acknowledge


class TrainingPipeline(Construct):
    """Provisions the stage's training state machine (``state_machine``, ``<prefix>-training``)
    and what it needs: its handler functions (``functions``), the SageMaker execution role
    (``sagemaker_role``), the async inference topics, the endpoint rollback alarms
    (``rollback_alarms``) and, with manual approval, the rule that resumes a waiting run.
    ``endpoints`` names the stage's endpoints."""

    def __init__(self, scope: Construct, construct_id: str, *, resources: StageResources, backend: MonitoringBackend,
                 pipeline: PipelineConfig, training: TrainingConfig, deployment: DeploymentConfig,
                 data_machine: sfn.IStateMachine, algorithm: Algorithm | CandidateSet, evaluation_image_uri: str,
                 group: str) -> None:
        super().__init__(scope, construct_id)
        self._resources, self._backend, self._algorithm = resources, backend, algorithm
        self._tuning_stem = tuning_stem(resources.prefix)
        self.endpoints = Endpoints.of(resources.prefix)
        self.endpoint_name = self.endpoints.realtime
        script = evaluation_script(self)
        self.sagemaker_role = execution_role(self, resources=resources, dataset=pipeline.dataset.name, scripts=[script],
                                             repositories=sorted({XGBOOST_REPOSITORY} | algorithm.repositories))
        algorithm.grant_execution(self.sagemaker_role)
        self.async_topics = {
            outcome: sns.Topic(self, f"Async{outcome.capitalize()}Topic", master_key=resources.data_key, enforce_ssl=True,
                               display_name=f"{resources.prefix} async inference {outcome}")
            for outcome in ("success", "error")
        }
        grant_serving(self.sagemaker_role, resources=resources, async_topics=list(self.async_topics.values()),
                      batch_input_prefix=deployment.batch_input_prefix)
        self.functions = self._functions(pipeline, group)
        self.rollback_alarms = rollback_alarms(self, prefix=resources.prefix, endpoint=self.endpoints.realtime)
        grant_rollback_alarms(self.sagemaker_role, self.rollback_alarms)

        on_failure = training_failure(self, resources)
        build = ModelBuild(self, prefix=resources.prefix, training=training, tuning=pipeline.tuning, algorithm=algorithm,
                           role_arn=self.sagemaker_role.role_arn, key_arn=resources.data_key.key_arn,
                           tags=resources.tag_list, on_failure=on_failure,
                           instance_type=pipeline.evaluation_instance_type, select=self.functions.get("select_candidate"))
        evaluation = Evaluation(self, resources=resources, pipeline=pipeline, script=script, image_uri=evaluation_image_uri,
                                algorithm=algorithm, role_arn=self.sagemaker_role.role_arn,
                                gate=self.functions["metric_gate"], group=group, on_failure=on_failure)
        registration = Registration(self, resources=resources, pipeline=pipeline, deployment=deployment,
                                    algorithm=algorithm, group=group, approval=self.functions.get("approval"),
                                    on_failure=on_failure)
        deploy = Deployment(self, resources=resources, deployment=deployment, endpoints=self.endpoints,
                            role=self.sagemaker_role, async_topics=self.async_topics, rollback_alarms=self.rollback_alarms,
                            check=self.functions["check_endpoint"], on_failure=on_failure,
                            after_realtime=backend.after_realtime(self, self.endpoints.realtime, on_failure),
                            after_batch=backend.after_batch(self, on_failure), group=group,
                            vector_output_from=(1 + len(pipeline.dataset.features)
                                                if pipeline.problem_type == "multiclass_classification" else None))
        definition = (self._prepare(pipeline, deployment, data_machine, on_failure)
                      .next(build.start).next(evaluation.passed(registration.then(deploy.start))))
        hours = pipeline.execution_timeout_hours + (pipeline.approval_timeout_hours if pipeline.manual_approval else 0)
        self.state_machine = standard_state_machine(
            self, name=f"{resources.prefix}-training", comment=f"{resources.prefix}: prepare data, train, evaluate, gate, "
            "register, deploy", definition=definition, timeout=cdk.Duration.hours(hours), resources=resources)
        self._grant_state_machine(group, data_machine)
        if "approval" in self.functions:
            registration.approval_rule(f"{resources.prefix}-training")

    def _functions(self, pipeline: PipelineConfig, group: str) -> dict[str, PipelineFunction]:
        """The handlers the workflow invokes (and the backend's), each pinned to Python 3.13."""
        resources = self._resources
        extra = self._backend.setup_training(self)
        prepare = resources.function(self, "PrepareRun", folder="prepare_run", description="validate run input, derive names")
        prepare.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateExperiment", "sagemaker:CreateTrial", "sagemaker:AddTags"],
            resources=[resources.arn(self, "sagemaker", "experiment", f"{resources.prefix}-experiments"),
                       resources.arn(self, "sagemaker", "experiment-trial", f"{resources.prefix}-run-*")],
        ))
        acknowledge(prepare.role, "AwsSolutions-IAM5", "One SageMaker Experiments trial per run, named from the "
                    "execution: the wildcard covers this stage's run trials only.",
                    applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:experiment-trial/{resources.prefix}-run-*")
        functions = {"prepare_run": prepare, "metric_gate": metric_gate_function(self, resources=resources, group=group),
                     "check_endpoint": check_endpoint_function(self, resources=resources, endpoints=self.endpoints), **extra}
        if pipeline.manual_approval:
            functions["approval"] = approval_function(self, resources=resources, group=group)
        if pipeline.candidates:
            functions["select_candidate"] = select_candidate_function(self, resources=resources)
        for name, function in functions.items():
            if name not in extra:  # the backend acknowledges its own
                acknowledge(function.function, "AwsSolutions-L1",
                            f"The {function.node.id} handler is pinned to Python 3.13, the newest runtime the Powertools v3 "
                            "layer it imports is published for; moving on means moving the layer ARN too.")
        return functions

    def _algorithm_defaults(self, pipeline: PipelineConfig) -> dict:
        """The hyperparameters a run starts from: the model's, or each candidate's (with a
        script's framework hyperparameters, which the input cannot change)."""
        algorithm = self._algorithm
        if isinstance(algorithm, CandidateSet):
            return {"hyperparameters": {}, "candidates": [
                {"name": candidate.name, "hyperparameters": {**candidate.pipeline.hyperparameters,
                                                             **candidate_algorithm.framework_hyperparameters},
                 **({"tuning": candidate.pipeline.tuning.run_by_default, "tuning_available": True,
                     "tuned_hyperparameters": [r.name for r in candidate.pipeline.tuning.ranges]}
                    if candidate.pipeline.tuning else {})}
                for candidate, (_, candidate_algorithm) in zip(pipeline.candidates, algorithm.algorithms)]}
        return {"hyperparameters": dict(pipeline.hyperparameters),
                **({"algorithm": "script", "framework_hyperparameters": algorithm.framework_hyperparameters}
                   if algorithm.script else {"algorithm": "container"} if algorithm.own_code else {})}

    def _run_defaults(self, pipeline: PipelineConfig, deployment: DeploymentConfig) -> dict:
        """What ``prepare_run`` resolves every run's settings from: the stage's config at synth."""
        resources, prefix = self._resources, self._resources.prefix
        return {
            "stem": prefix,
            **({"tuning_stem": self._tuning_stem} if self._tuning_stem != prefix else {}),
            "dataset": pipeline.dataset.name,
            "problem_type": pipeline.problem_type,
            **({"classes": pipeline.classes} if pipeline.problem_type == "multiclass_classification" else {}),
            "label": pipeline.dataset.label,
            **self._algorithm_defaults(pipeline),
            "tuning": bool(pipeline.tuning and pipeline.tuning.run_by_default),
            # the execution input's "tuning": true is allowed when the model, or one of the candidates, tunes
            "tuning_available": pipeline.tuning is not None or any(c.pipeline.tuning for c in pipeline.candidates),
            "tuned_hyperparameters": [r.name for r in pipeline.tuning.ranges] if pipeline.tuning else [],
            "deployment_mode": deployment.mode,
            "deployment_modes": deployment_modes(pipeline),
            "raw_bucket": resources.bucket("raw").bucket_name,
            "raw_prefix": pipeline.dataset.raw_location,
            "curated_bucket": resources.bucket("curated").bucket_name,
            "artifacts_bucket": resources.bucket("artifacts").bucket_name,
            "experiment": f"{prefix}-experiments",
            "max_num_round": pipeline.max_num_round,
            "tags": dict(resources.tags),
        }

    def _prepare(self, pipeline: PipelineConfig, deployment: DeploymentConfig,
                 data_machine: sfn.IStateMachine, on_failure: sfn.IChainable) -> sfn.Chain:
        """"Prepare run" (the ``prepare_run`` handler) → "Prepare data" (the data state machine)."""
        prepare_run = catch_all(tasks.LambdaInvoke(
            self, "Prepare run",
            task_timeout=API_TIMEOUT,
            lambda_function=self.functions["prepare_run"].function,
            payload=sfn.TaskInput.from_object({
                "input": sfn.JsonPath.string_at("$$.Execution.Input"),
                "execution": {"id": sfn.JsonPath.execution_id, "name": sfn.JsonPath.execution_name},
                "defaults": self._run_defaults(pipeline, deployment),
            }),
            result_selector={"run.$": "$.Payload"},
            result_path="$",
            comment="Validate the execution input and derive every name of the run",
        ), on_failure)
        prepare_data = catch_all(tasks.StepFunctionsStartExecution(
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
        ), on_failure)
        # The execution input may be any JSON ([1, 2, 3] included); a Catch records the error at
        # $.error, which needs an object, so the first state replaces the input with one
        # (Prepare run reads the input from the context object).
        start = sfn.Pass(self, "Start run", parameters={"execution.$": "$$.Execution.Id"},
                         comment="The states after this one see an object, whatever the execution input is")
        return start.next(prepare_run).next(prepare_data)

    # ------------------------------------------------------------------ IAM
    def _grant_state_machine(self, group: str, data_machine: sfn.IStateMachine) -> None:
        """What the SageMaker jobs, the endpoints and Application Auto Scaling need beyond the
        policy CDK generates for the tasks it knows."""
        resources, role = self._resources, self.state_machine.role
        for statement in (*self._job_statements(group), iam.PolicyStatement(
                sid="BlueGreenRollbackAlarms", actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm.alarm_arn for alarm in self.rollback_alarms]),
                *autoscaling_caller_statements(self, prefix=resources.prefix, endpoints=self.endpoints)):
            role.add_to_principal_policy(statement)
        resources.topic_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        resources.data_key.grant(role, "kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt")
        self._acknowledge_state_machine_role(role, group, data_machine)

    def _job_statements(self, group: str) -> list[iam.PolicyStatement]:
        """CustomState generates no IAM: the jobs, tags on what the run creates, the managed
        rules of the ``.sync`` integrations, passing the execution roles."""
        prefix = self._resources.prefix
        arn = lambda resource, name: self._resources.arn(self, "sagemaker", resource, name)  # noqa: E731
        return [
            iam.PolicyStatement(
                sid="SageMakerJobs",
                actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                         "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                         "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
                         "sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
                         "sagemaker:StopHyperParameterTuningJob", "sagemaker:AddTags"],
                resources=[arn("training-job", f"{prefix}-*"), arn("processing-job", f"{prefix}-*"),
                           arn("transform-job", f"{prefix}-*"), arn("hyper-parameter-tuning-job", f"{prefix}-*"),
                           # a prefix too long for tuning job names: their stem, and the training
                           # jobs a tuning job starts, named after it
                           *((arn("hyper-parameter-tuning-job", f"{self._tuning_stem}-*"),
                              arn("training-job", f"{self._tuning_stem}-*")) if self._tuning_stem != prefix else ())]),
            iam.PolicyStatement(
                sid="SageMakerTagsOnDeployedResources", actions=["sagemaker:AddTags"],
                resources=[arn("model", f"{prefix}-model-*"), arn("endpoint-config", f"{prefix}-config-*"),
                           *(arn("endpoint", name) for name in self.endpoints.all()), arn("model-package", f"{group}/*")]),
            iam.PolicyStatement(
                sid="SyncJobEvents", actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[self._resources.arn(self, "events", "rule", f"StepFunctionsGetEventsForSageMaker{kind}JobsRule")
                           for kind in ("Training", "Processing", "Transform", "Tuning")]),
            iam.PolicyStatement(
                sid="PassSageMakerRole", actions=["iam:PassRole"],
                resources=[self.sagemaker_role.role_arn, *self._backend.passed_roles()],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        ]

    def _acknowledge_state_machine_role(self, role: iam.IRole, group: str, data_machine: sfn.IStateMachine) -> None:
        stack, prefix = cdk.Stack.of(self), self._resources.prefix
        sagemaker = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
        data_logical_id = stack.get_logical_id(data_machine.node.default_child)  # type: ignore[arg-type]
        reasons = {
            "Resource::*": "X-Ray tracing of executions (xray:PutTraceSegments and friends support no resource-level permissions)",
            f"Resource::{sagemaker}:training-job/{prefix}-*": "training job names are derived per execution, retry and redrive",
            f"Resource::{sagemaker}:processing-job/{prefix}-*": "evaluation job names are derived per execution",
            f"Resource::{sagemaker}:transform-job/{prefix}-*": "batch transform job names are derived per execution",
            f"Resource::{sagemaker}:hyper-parameter-tuning-job/{prefix}-*": "tuning job names are derived per execution",
            **({f"Resource::{sagemaker}:hyper-parameter-tuning-job/{self._tuning_stem}-*": (
                    "tuning job names are derived per execution from the stage's tuning stem (its prefix is too long for "
                    "their 32 characters)"),
                f"Resource::{sagemaker}:training-job/{self._tuning_stem}-*": (
                    "the training jobs a tuning job starts are named after it")} if self._tuning_stem != prefix else {}),
            f"Resource::{sagemaker}:model/{prefix}-model-*": "model names are derived per execution",
            f"Resource::{sagemaker}:endpoint-config/{prefix}-config-*": "endpoint config names are derived per execution (configs are immutable)",
            f"Resource::{sagemaker}:model-package/{group}/*": "versions of this stage's model package group are numbered by SageMaker",
            ("Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
             f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{data_logical_id}"}}]}}]}}*'): (
                "CDK's StepFunctionsStartExecution .sync grant: describe and stop the data state machine's executions"),
            "Resource::arn:<AWS::Partition>:application-autoscaling:<AWS::Region>:<AWS::AccountId>:scalable-target/*": (
                "Application Auto Scaling assigns scalable-target ids itself; the request names the one endpoint variant"),
            **tracking_alarm_findings(self.endpoints),
        }
        for function in self.functions.values():
            logical_id = stack.get_logical_id(function.function.node.default_child)  # type: ignore[arg-type]
            reasons[f"Resource::<{logical_id}.Arn>:*"] = (
                f"CDK's LambdaInvoke grant covers the versions and aliases of the {function.function.node.scope.node.id} function")
        for finding, reason in reasons.items():
            acknowledge(role, "AwsSolutions-IAM5", f"Training state machine: {reason}.", applies_to=finding)


def deployment_modes(pipeline: PipelineConfig) -> list[str]:
    """The modes an execution input may pick: all but batch when the served model is, or may
    be, Linear Learner (its JSON answers cannot be joined with CSV input lines; the stage config
    refuses batch as its default for the same reason, ``StageConfig._batch_needs_a_csv_answer``)."""
    return [mode for mode in DEPLOYMENT_MODES if not (mode == "batch" and pipeline.may_serve_linear_learner)]

