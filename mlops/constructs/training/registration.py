"""Phase: register the model version, and (with manual approval) wait for the registry's decision.

"Register model version" creates a version of the stage's model package group with the
evaluation report as its metrics and the run's lineage; with ``pipeline.manual_approval``
it is ``PendingManualApproval`` and "Wait for approval" holds the run (task token) until a
reviewer approves or rejects it in the registry: an EventBridge rule on "SageMaker Model
Package State Change" hands the decision to the ``approval`` handler, which resumes the run.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import DeploymentConfig, PipelineConfig
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.constructs.training.algorithm import Algorithm, package_types
from mlops.constructs.training.candidates import CandidateSet
from mlops.constructs.training.notices import outcome_notice
from mlops.constructs.workflow import API_TIMEOUT, catch_all, retry_api
from mlops.nag import acknowledge


def acknowledge_packages(role: iam.IRole, group: str, why: str) -> None:
    acknowledge(role, "AwsSolutions-IAM5", f"Versions of this stage's model package group are numbered by "
                f"SageMaker; {why}.",
                applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/{group}/*")


def approval_function(scope: Construct, *, resources: StageResources, group: str) -> PipelineFunction:
    """The ``approval`` handler: keeps the waiting run's task token per model package and
    resumes the run with the registry's decision."""
    approval = resources.function(scope, "Approval", folder="approval",
                                  description="bridge registry approval to the waiting run",
                                  environment={"TOKEN_BUCKET": resources.bucket("artifacts").bucket_name})
    resources.grant(approval.role, "artifacts", "approvals/",
                    "store and read the waiting run's task token, keyed by model package", write=True, delete=True)
    resources.data_key.grant(approval.role, "kms:Decrypt", "kms:GenerateDataKey")
    approval.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"],
                                                    resources=[resources.arn(scope, "sagemaker", "model-package", f"{group}/*")]))
    acknowledge_packages(approval.role, group, "it reads the approval status of the version the run registered")
    return approval


class Registration:
    """Builds, into ``scope``, "Register model version" and, with an ``approval`` function,
    "Wait for approval" ("Notify rejected" → "Model rejected" when rejected). ``then(deploy)``
    chains the deployment after it. ``approval_rule()`` adds the EventBridge rule (with retry
    policy and an encrypted, SSL-only dead-letter queue) that feeds the approval handler."""

    def __init__(self, scope: Construct, *, resources: StageResources, pipeline: PipelineConfig,
                 deployment: DeploymentConfig, algorithm: Algorithm | CandidateSet, group: str, approval: PipelineFunction | None,
                 on_failure: sfn.IChainable) -> None:
        self._scope, self._resources, self._group = scope, resources, group
        self._approval, self._timeout_hours, self._on_failure = approval, pipeline.approval_timeout_hours, on_failure
        status = "PendingManualApproval" if pipeline.manual_approval else "Approved"
        metadata = {"GeneratedBy.$": "$$.Execution.Id", "CommitId": pipeline.source_revision}
        if pipeline.source_repository:
            metadata["Repository"] = pipeline.source_repository
        self.start = tasks.CallAwsService(
            scope, "Register model version",
            task_timeout=API_TIMEOUT,
            service="sagemaker",
            action="createModelPackage",
            parameters={
                "ModelPackageGroupName": group,
                "ModelPackageDescription.$": "States.Format('Execution {} (trigger: {})', $$.Execution.Name, $.run.trigger.source)",
                "ClientToken.$": "$.run.names.model",
                "ModelApprovalStatus": status,
                "InferenceSpecification": {
                    **algorithm.package_containers(),
                    **package_types(algorithm),  # the serving algorithm's (with candidates, the winner's)
                    "SupportedRealtimeInferenceInstanceTypes": [deployment.instance_type],
                    "SupportedTransformInstanceTypes": [deployment.instance_type],
                },
                "ModelMetrics": {"ModelQuality": {"Statistics": {
                    "ContentType": "application/json", "S3Uri.$": "$.evaluation.report"}}},
                "MetadataProperties": metadata,
                "CustomerMetadataProperties": _lineage(pipeline.dataset.name, candidates=bool(pipeline.candidates),
                                                       encoded=pipeline.encodes),
                "Tags": resources.tag_list,
            },
            iam_resources=[resources.arn(scope, "sagemaker", "model-package-group", group),
                           resources.arn(scope, "sagemaker", "model-package", f"{group}/*")],
            iam_action="sagemaker:CreateModelPackage",
            result_selector={"model_package_arn.$": "$.ModelPackageArn"},
            result_path="$.registration",
            comment=f"Model Registry, status {status}, with metrics and lineage",
        )
        catch_all(retry_api(self.start), on_failure)

    def then(self, deploy: sfn.IChainable) -> sfn.Chain:
        if self._approval is None:
            return self.start.next(deploy)
        return self.start.next(self._wait(self._approval).next(deploy))

    def _wait(self, approval: PipelineFunction) -> tasks.LambdaInvoke:
        wait = tasks.LambdaInvoke(
            self._scope, "Wait for approval",
            lambda_function=approval.function,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object({
                "task_token": sfn.JsonPath.task_token,
                "model_package_arn": sfn.JsonPath.string_at("$.registration.model_package_arn"),
            }),
            task_timeout=sfn.Timeout.duration(cdk.Duration.hours(self._timeout_hours)),
            result_path="$.approval",
            comment="Approve or reject the version in the Model Registry",
        )
        rejected = outcome_notice(self._scope, self._resources, "Notify rejected", "NOT DEPLOYED (model version rejected)",
                                  "$.error.Cause").next(
            sfn.Succeed(self._scope, "Model rejected", comment="Rejected in the registry: nothing deployed"))
        wait.add_catch(rejected, errors=["ModelRejected"], result_path="$.error")
        catch_all(wait, self._on_failure)
        return wait

    def approval_rule(self, machine_name: str) -> None:
        """The registry's decision reaches the handler; the handler may resume runs of the
        training state machine (by name: the state machine already depends on the function)."""
        assert self._approval is not None
        self._approval.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
            resources=[self._resources.arn(self._scope, "states", "stateMachine", machine_name, colon=True)],
        ))
        dead_letters = self._resources.queue(self._scope, "ApprovalDeadLetters", name="approval",
                                             holds="the approval rule's target")
        self._resources.invoked_asynchronously(
            self._approval, by="the registry-decision EventBridge rule (Step Functions also invokes it synchronously, "
                               "with a task token, where the state's Catch handles failures)")
        events.Rule(
            self._scope, "ApprovalDecided",
            description="A model version of this stage was approved or rejected in the registry",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [self._group], "ModelApprovalStatus": ["Approved", "Rejected"]},
            ),
            targets=[targets.LambdaFunction(self._approval.function, dead_letter_queue=dead_letters, retry_attempts=8,
                                            max_event_age=cdk.Duration.hours(24))],
        )


def _lineage(dataset: str, *, candidates: bool = False, encoded: bool = False) -> dict[str, str]:
    """What the registry keeps of the run: its jobs, its data, its trigger; which candidate won
    and its selection metric, where several trained; the fitted encoder, where the run encoded features
    (the key names the version's first container's artifact)."""
    return {
        # (values up to 256 characters: the winner and its metric, not every candidate's outcome)
        **({"candidate.$": "$.selection.winner",
            "candidate_metric.$": "States.Format('{} {}', $.selection.metric, $.selection.value)"} if candidates else {}),
        **({"encoder.$": "$.run.s3.encoder_model"} if encoded else {}),
        "training_job.$": "$.training.job_name",
        "evaluation_job.$": "$.evaluation.job_name",
        "train_data.$": "$.run.s3.train",
        "validation_data.$": "$.run.s3.validation",
        "test_data.$": "$.run.s3.test",
        "raw_data.$": "$.run.s3.raw",
        "trigger.$": "$.run.trigger.source",
        "dataset": dataset,
    }
