"""Phase: train several candidate models in parallel and go on with the best on the validation split.

"Train candidates" is a Parallel state with one branch per ``pipeline.model.candidates`` entry:
each branch trains its candidate ("Train <name>": its image, its hyperparameters from the run's
``candidates.<name>``, the encoded splits for a built-in algorithm on categorical features) and ends
with the candidate's result, "<name> trained" (the training job and the serving containers of
its model), or, when the job fails, "<name> failed" (the error): one failing candidate never
stops the others. A candidate with its own ``tuning`` first asks "Tune <name>?" (the run's
``candidates.<name>.tuning``): "Tune <name>" runs its tuning job and "Describe <name> best job"
makes the best job the candidate's ("<name> tuned", with the tuning job), which then competes. "Select best candidate" (the ``select_candidate`` handler) reads each trained
job's final value of ``select_by`` (``FinalMetricDataList``) and picks the best; none trained
fails the run ``NoCandidateTrained``. "Best candidate" puts the winner's job where a single
model's is (``$.training``), so evaluation, the gate and registration read it as they always do;
its containers (``$.selection.containers``) become the candidate model's and the model
package's. Every job joins the run's SageMaker Experiments trial as ``train-<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.resources import StageResources
from mlops.config import PipelineConfig, TuningConfig
from mlops.constructs.training.algorithm import Algorithm, algorithm, stage_encoder
from mlops.constructs.training.encoding import Encoder
from mlops.constructs.training.tuning import tuning_states
from mlops.constructs.workflow import API_TIMEOUT, catch_all, sagemaker_job, with_suffix
from mlops.images import ImageMapping
from mlops.nag import acknowledge

SELECTED_CONTAINERS = "$.selection.containers"


@dataclass(frozen=True)
class CandidateSet:
    """The candidates of a stage, in the config's order, and how the best is picked."""

    algorithms: tuple[tuple[str, Algorithm], ...]
    metric: str  # a validation metric every candidate reports
    direction: str  # Maximize or Minimize
    encoder: Encoder | None = None  # shared by the built-in candidates on categorical features
    tunings: tuple[TuningConfig | None, ...] = ()  # each candidate's own tuning, in the same order (none: trains once)

    @property
    def description(self) -> str:
        return ", ".join(f"{name} ({algorithm.description})" for name, algorithm in self.algorithms)

    @property
    def repositories(self) -> set[str]:
        return set().union(*(algorithm.repositories for _, algorithm in self.algorithms))

    def model_containers(self) -> dict:
        """CreateModel's containers: the winner's, chosen at run time."""
        return {"Containers.$": SELECTED_CONTAINERS}

    def package_containers(self) -> dict:
        """The model package's inference containers: the winner's."""
        return {"Containers.$": SELECTED_CONTAINERS}

    def grant_execution(self, role: iam.IRole) -> None:
        for _, algorithm in self.algorithms:
            algorithm.grant_execution(role)


def stage_algorithm(scope: Construct, pipeline: PipelineConfig, images: ImageMapping) -> Algorithm | CandidateSet:
    """The stage's one algorithm, or its candidates (each in its own scope; the script of the
    i-th candidate runs on ``images``' ``script<i>``; the built-in ones on categorical features
    share one encoder)."""
    if not pipeline.candidates:
        return algorithm(scope, pipeline, images)
    shared = stage_encoder(scope, pipeline, images) if pipeline.encodes else None
    metric, direction = pipeline.select_by or ("", "")
    return CandidateSet(
        algorithms=tuple((candidate.name, algorithm(Construct(scope, f"Candidate-{candidate.name}"), candidate.pipeline,
                                                    images, image_key=f"script{index}", encoding=shared))
                         for index, candidate in enumerate(pipeline.candidates)),
        metric=metric, direction=direction, encoder=shared,
        tunings=tuple(candidate.pipeline.tuning for candidate in pipeline.candidates))


def select_candidate_function(scope: Construct, *, resources: StageResources) -> PipelineFunction:
    """The ``select_candidate`` handler: reads the candidates' training jobs' final metrics."""
    function = resources.function(scope, "SelectCandidate", folder="select_candidate",
                                  description="pick the best candidate model by its validation metric")
    jobs = resources.arn(scope, "sagemaker", "training-job", f"{resources.prefix}-*")
    function.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=[jobs]))
    acknowledge(function.role, "AwsSolutions-IAM5", "The selection reads the final metrics of this stage's candidate "
                "training jobs, whose names are derived per execution.",
                applies_to=f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/"
                           f"{resources.prefix}-*")
    return function


def train_candidates(scope: Construct, *, candidates: CandidateSet, parameters: dict, select: PipelineFunction,
                     job_seconds: int, tags: list[dict[str, str]], on_failure: sfn.IChainable,
                     prefix: str) -> tuple[sfn.IChainable, sfn.INextable]:
    """"Train candidates" → "Select best candidate" → "Best candidate". ``parameters`` is a single
    model's training request; each branch puts its candidate's image, metrics, hyperparameters,
    job name, channels and trial component in it. Returns (first state, last state)."""
    parallel = sfn.Parallel(scope, "Train candidates", result_path="$.candidates",
                            comment=f"In parallel: {candidates.description}; a failing candidate ends its branch only")
    tunings = candidates.tunings or (None,) * len(candidates.algorithms)
    for (name, algorithm), tuning in zip(candidates.algorithms, tunings, strict=True):
        request = {
            **parameters,
            "TrainingJobName.$": with_suffix(f"$.run.candidates.{name}.job"),
            "AlgorithmSpecification": {"TrainingImage": algorithm.image_uri, "TrainingInputMode": "File",
                                       **({"MetricDefinitions": algorithm.metric_definitions}
                                          if algorithm.metric_definitions else {})},
            "HyperParameters.$": f"$.run.candidates.{name}.hyperparameters",
            "InputDataConfig": algorithm.channels(),
            "ExperimentConfig": {**parameters["ExperimentConfig"], "TrialComponentDisplayName": f"train-{name}"},
        }
        failed = sfn.Pass(scope, f"{name} failed", parameters={"name": name, "error.$": "$.error"},
                          comment="The candidate's job failed: the others go on")
        train = sagemaker_job(scope, f"Train {name}", "createTrainingJob", request, result_selector={
            "job_name.$": "$.TrainingJobName", "model_data.$": "$.ModelArtifacts.S3ModelArtifacts",
            "hyperparameters.$": "$.HyperParameters"}, result_path="$.training",
            comment=f"Candidate {name}: {algorithm.description}", timeout_seconds=job_seconds, on_failure=failed,
            tags=tags)
        trained = sfn.Pass(scope, f"{name} trained", comment="The job and the containers that would serve its model",
                           parameters={"name": name, "training.$": "$.training",
                                       "containers": algorithm.containers("$.training.model_data")})
        if tuning is None:
            parallel.branch(train.next(trained))
            continue
        tune, best = tuning_states(
            scope, tune_id=f"Tune {name}", describe_id=f"Describe {name} best job", tuning=tuning, request=request,
            name_path=f"$.run.candidates.{name}.tune", static_path=f"$.run.candidates.{name}.static_hyperparameters",
            prefix=prefix, job_seconds=job_seconds, on_failure=failed, tags=tags)
        best.next(sfn.Pass(scope, f"{name} tuned", comment="The best job of its tuning job competes for the candidate",
                           parameters={"name": name, "training.$": "$.training", "tuning_job.$": "$.tuning_job",
                                       "containers": algorithm.containers("$.training.model_data")}))
        parallel.branch(sfn.Choice(scope, f"Tune {name}?")
                        .when(sfn.Condition.boolean_equals(f"$.run.candidates.{name}.tuning", True), tune)
                        .otherwise(train.next(trained)))
    select_state = catch_all(tasks.LambdaInvoke(
        scope, "Select best candidate", lambda_function=select.function, task_timeout=API_TIMEOUT,
        payload=sfn.TaskInput.from_object({"candidates": sfn.JsonPath.object_at("$.candidates"),
                                           "metric": candidates.metric, "direction": candidates.direction}),
        result_selector={"winner.$": "$.Payload.winner", "training.$": "$.Payload.training",
                         "containers.$": "$.Payload.containers", "metric.$": "$.Payload.metric",
                         "value.$": "$.Payload.value", "candidates.$": "$.Payload.candidates",
                         "summary.$": "$.Payload.summary"},
        result_path="$.selection",
        comment=f"The best {candidates.metric} ({candidates.direction}) of the candidates that trained"), on_failure)
    best = sfn.Pass(scope, "Best candidate", input_path="$.selection.training", result_path="$.training",
                    comment="The winner's job stands where a single model's would")
    return parallel.next(select_state).next(best), best

