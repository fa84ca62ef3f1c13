"""Phase: evaluate the model on the held-out test split, then gate it.

The model predicts the test split itself, served by the same container and code that will
serve it in production: "Create candidate model" (the training job's artifact in the
algorithm's serving container) → "Predict test split" (a batch transform of the split, the
label column filtered out) → "Delete candidate model". "Evaluate on test split" then runs
``jobs/evaluation/evaluate.py`` as a SageMaker Processing job: it scores the predictions
against the labels (the full metric set of the problem type, scikit-learn) and never loads a
model, so any algorithm is evaluated the same way. "Check metric gate" (the ``metric_gate``
handler) compares the metrics with the business thresholds and the serving champion; a run
that fails the gate notifies and ends ``MetricGateFailed``.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import UNBOUNDED_METRICS, PipelineConfig
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.constructs.sagemaker_jobs import processing_input
from mlops.constructs.training.algorithm import SERVING_FORMAT, Algorithm, Formats, serving_formats
from mlops.constructs.training.candidates import CandidateSet
from mlops.constructs.training.notices import outcome_notice
from mlops.constructs.training.registration import acknowledge_packages
from mlops.constructs.workflow import (
    API_TIMEOUT,
    JOBS_DIR,
    catch_all,
    experiment_config,
    retry_api,
    sagemaker_job,
    with_suffix,
)
from mlops.nag import acknowledge


def evaluation_script(scope: Construct) -> s3_assets.Asset:
    """``jobs/evaluation/evaluate.py`` as an S3 asset (the execution role reads it)."""
    return s3_assets.Asset(scope, "EvaluationScript", path=str(JOBS_DIR / "evaluation" / "evaluate.py"))


def metric_gate_function(scope: Construct, *, resources: StageResources, group: str) -> PipelineFunction:
    """The ``metric_gate`` handler: reads the run's and the champion's evaluation reports."""
    gate = resources.function(scope, "MetricGate", folder="metric_gate",
                              description="metric gate (thresholds, champion/challenger)")
    resources.grant(gate.role, "artifacts", "runs/", "read the run's evaluation.json and the champion's")
    gate.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"],
                                                resources=[resources.arn(scope, "sagemaker", "model-package", f"{group}/*")]))
    acknowledge_packages(gate.role, group, "the gate reads the champion version's metrics")
    gate.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"]))
    resources.data_key.grant(gate.role, "kms:Decrypt")
    acknowledge(gate.role, "AwsSolutions-IAM5", "sagemaker:ListModelPackages supports no resource-level "
                "permissions; the gate lists the versions of its own group to find the one serving (the champion).",
                applies_to="Resource::*")
    return gate


class Evaluation:
    """Builds, into ``scope``, "Evaluate on test split" → "Check metric gate" → "Metric gate
    passed?" (``passed(then)`` continues the run; otherwise "Notify gate failed" → "Metric gate
    failed"). Exposes ``start``."""

    def __init__(self, scope: Construct, *, resources: StageResources, pipeline: PipelineConfig,
                 script: s3_assets.Asset, image_uri: str, algorithm: Algorithm | CandidateSet, role_arn: str, gate: PipelineFunction,
                 group: str, on_failure: sfn.IChainable) -> None:
        self._scope, self._resources = scope, resources
        key_arn = resources.data_key.key_arn
        predict = self._predictions(pipeline, algorithm, role_arn, on_failure)
        evaluate = sagemaker_job(scope, "Evaluate on test split", "createProcessingJob", {
            "ProcessingJobName.$": with_suffix("$.run.names.eval"),
            "RoleArn": role_arn,
            "AppSpecification": {
                "ImageUri": image_uri,
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/code/{script.s3_object_key}"],
                "ContainerArguments.$": (
                    f"States.Array('--problem-type', $.run.problem_type, '--threshold', '{pipeline.classification_threshold}')"
                ),
            },
            "ProcessingInputs": [
                processing_input("code", script.s3_object_url, "/opt/ml/processing/code"),
                processing_input("predictions", "$.predictions.output", "/opt/ml/processing/predictions"),
                processing_input("test", "$.run.s3.test", "/opt/ml/processing/test"),
            ],
            "ProcessingOutputConfig": {"KmsKeyId": key_arn, "Outputs": [{
                "OutputName": "evaluation",
                "S3Output": {"S3Uri.$": "$.run.s3.evaluation", "LocalPath": "/opt/ml/processing/evaluation",
                             "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": pipeline.evaluation_instance_type,
                "VolumeSizeInGB": 30, "VolumeKmsKeyId": key_arn}},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "ExperimentConfig": experiment_config("eval"),
        }, result_selector={"job_name.$": "$.ProcessingJobName",
                            "report.$": "States.Format('{}evaluation.json', $.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri)"},
            result_path="$.evaluation", comment="Full metric set of the problem type, scikit-learn", on_failure=on_failure,
            tags=self._resources.tag_list)
        check = catch_all(tasks.LambdaInvoke(
            scope, "Check metric gate",
            task_timeout=API_TIMEOUT,
            lambda_function=gate.function,
            payload=sfn.TaskInput.from_object({
                "evaluation_uri": sfn.JsonPath.string_at("$.evaluation.report"),
                "thresholds": [threshold.model_dump() for threshold in pipeline.metric_thresholds],
                "champion_margin": pipeline.champion_margin,
                # only where a gate metric is an error: the binary stages' gate input stays as it was
                **({"champion_margin_percent": pipeline.champion_margin_percent}
                   if any(t.metric in UNBOUNDED_METRICS for t in pipeline.metric_thresholds) else {}),
                "model_package_group": group,
                "deployment_mode": sfn.JsonPath.string_at("$.run.deployment_mode"),
            }),
            result_selector={"passed.$": "$.Payload.passed", "summary.$": "$.Payload.summary",
                             "candidate.$": "$.Payload.candidate", "champion.$": "$.Payload.champion"},
            result_path="$.gate",
            comment="Business thresholds and champion/challenger",
        ), on_failure)
        self.start = predict
        self._last = predict.next(evaluate).next(check)

    def _predictions(self, pipeline: PipelineConfig, algorithm: Algorithm | CandidateSet, role_arn: str,
                     on_failure: sfn.IChainable) -> sfn.Chain:
        """The candidate model predicts the test split: one output line per input row, in order
        (``<file>.out`` per test file; SplitType Line, AssembleWith Line, the label column
        filtered out with InputFilter ``$[1:]``: "Associate Prediction Results with Input
        Records", SageMaker Developer Guide)."""
        scope, resources = self._scope, self._resources
        key_arn, model_arn = resources.data_key.key_arn, resources.arn(scope, "sagemaker", "model", f"{resources.prefix}-model-*")
        create = catch_all(retry_api(tasks.CallAwsService(
            scope, "Create candidate model", task_timeout=API_TIMEOUT, service="sagemaker", action="createModel",
            parameters={"ModelName.$": "$.run.names.candidate", **algorithm.model_containers(),
                        "ExecutionRoleArn": role_arn, "Tags": resources.tag_list},
            iam_resources=[model_arn], iam_action="sagemaker:CreateModel", result_path=sfn.JsonPath.DISCARD,
            comment="The training job's artifact in the container that will serve it")), on_failure)
        # a failed transform still removes the candidate model, then fails the run with the
        # transform's error ($.error kept: the clean-up's own error, if any, goes elsewhere)
        cleanup = retry_api(self._delete_candidate("Delete candidate model after failure", model_arn,
                                                   "The transform failed: remove the model, then report"))
        cleanup.add_catch(on_failure, errors=["States.ALL"], result_path="$.cleanup_error")
        accept, choose_accept = self._accept(algorithm)
        predict = sagemaker_job(scope, "Predict test split", "createTransformJob", {
            "TransformJobName.$": with_suffix("$.run.names.predict"),
            "ModelName.$": "$.run.names.candidate",
            "BatchStrategy": "MultiRecord",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": "$.run.s3.test"}},
                               "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath.$": "$.run.s3.predictions", **accept, "AssembleWith": "Line",
                                "KmsKeyId": key_arn},
            "TransformResources": {"InstanceType": pipeline.evaluation_instance_type, "InstanceCount": 1,
                                   "VolumeKmsKeyId": key_arn},
            "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "None", "OutputFilter": "$"},
            "ExperimentConfig": experiment_config("predict"),
        }, result_selector={"job_name.$": "$.TransformJobName", "output.$": "$.TransformOutput.S3OutputPath"},
            result_path="$.predictions", comment="Batch transform of the test split, label column filtered out",
            on_failure=cleanup.next(on_failure), tags=resources.tag_list)
        delete = catch_all(retry_api(self._delete_candidate("Delete candidate model", model_arn,
                                                            "Only the predictions are needed from here on")), on_failure)
        if choose_accept is None:
            return create.next(predict).next(delete)
        create.next(choose_accept(predict))
        predict.next(delete)
        return sfn.Chain.custom(create, [delete], delete)

    def _accept(self, algorithm: Algorithm | CandidateSet) -> tuple[dict, Any]:
        """The transform's response type: the one the model answers in one line per record
        (``Algorithm.transform_accept``: CSV, or JSON Lines for Linear Learner, which never
        answers CSV). Candidates that differ: "Winner answers in?" picks it by the winner's name
        (``$.selection.winner``) into ``$.predict_format.accept``, with the winner's model
        package content and response types beside it (``package_types``, read at registration);
        returns (the TransformOutput key, a function chaining that choice to the transform, or None)."""
        by_format = serving_formats(algorithm)
        if len(by_format) == 1:
            return {"Accept": next(iter(by_format))[0]}, None

        def choose(transform: sfn.IChainable) -> sfn.Choice:
            choice = sfn.Choice(self._scope, "Winner answers in?", comment="The response type the winner's container "
                                                                          "answers a transform in, one line per record")
            (*others, last) = sorted(by_format.items())
            for formats, names in others:
                condition = sfn.Condition.or_(*(sfn.Condition.string_equals("$.selection.winner", n) for n in names)) \
                    if len(names) > 1 else sfn.Condition.string_equals("$.selection.winner", names[0])
                choice.when(condition, self._format(formats, names).next(transform))
            return choice.otherwise(self._format(*last).next(transform))

        return {"Accept.$": f"{SERVING_FORMAT}.accept"}, choose

    def _format(self, formats: Formats, names: list[str]) -> sfn.Pass:
        accept, content_types, response_types = formats
        return sfn.Pass(self._scope, f"Ask {'/'.join(names)} for {accept.split('/')[-1]}", result_path=SERVING_FORMAT,
                        result=sfn.Result.from_object({"accept": accept, "content_types": list(content_types),
                                                       "response_types": list(response_types)}))

    def _delete_candidate(self, name: str, model_arn: str, comment: str) -> tasks.CallAwsService:
        return tasks.CallAwsService(
            self._scope, name, task_timeout=API_TIMEOUT, service="sagemaker", action="deleteModel",
            parameters={"ModelName.$": "$.run.names.candidate"}, iam_resources=[model_arn],
            iam_action="sagemaker:DeleteModel", result_path=sfn.JsonPath.DISCARD, comment=comment)

    def passed(self, then: sfn.IChainable) -> sfn.Chain:
        """Continue with ``then`` when the gate passed; otherwise notify and fail."""
        failed = outcome_notice(self._scope, self._resources, "Notify gate failed", "REJECTED BY METRIC GATE",
                                "$.gate.summary").next(
            sfn.Fail(self._scope, "Metric gate failed", error="MetricGateFailed", cause_path="$.gate.summary"))
        return self._last.next(sfn.Choice(self._scope, "Metric gate passed?")
                               .when(sfn.Condition.boolean_equals("$.gate.passed", True), then)
                               .otherwise(failed))
