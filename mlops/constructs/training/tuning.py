"""Automatic model tuning states, for a single model ("Tune hyperparameters") and for each
candidate that tunes ("Tune <name>"): the tuning job, then a description of its best training
job, whose model and hyperparameters stand where a training job's would (``$.training``)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops.config import TuningConfig
from mlops.constructs.workflow import API_TIMEOUT, catch_all, retry_api, sagemaker_job, with_suffix

# What CreateHyperParameterTuningJob's TrainingJobDefinition does not take from a training
# request: the tuner names the jobs, sets the tuned hyperparameters (the others are static) and
# takes no ExperimentConfig (SageMaker API reference, HyperParameterTrainingJobDefinition).
NOT_IN_DEFINITION = ("TrainingJobName.$", "HyperParameters.$", "ExperimentConfig")


def tuning_states(scope: Construct, *, tune_id: str, describe_id: str, tuning: TuningConfig, request: dict,
                  name_path: str, static_path: str, prefix: str, job_seconds: int, on_failure: sfn.IChainable,
                  tags: list[dict[str, str]]) -> tuple[sfn.IChainable, sfn.INextable]:
    """"<tune_id>" (CreateHyperParameterTuningJob ``.sync``: Bayesian search over ``tuning``'s
    ranges, each job ``request`` with the tuned hyperparameters on top of those at
    ``static_path``, named from ``name_path``) → "<describe_id>" (DescribeTrainingJob of the best
    job into ``$.training``). Any failure goes to ``on_failure``. Returns (first, last)."""
    definition = {key: value for key, value in request.items() if key not in NOT_IN_DEFINITION}
    definition["StaticHyperParameters.$"] = static_path
    rounds = -(-tuning.max_jobs // tuning.max_parallel_jobs)  # ceil: sequential waves of parallel jobs
    tune = sagemaker_job(scope, tune_id, "createHyperParameterTuningJob", {
        "HyperParameterTuningJobName.$": with_suffix(name_path),
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": tuning.objective_type, "MetricName": tuning.objective_metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": tuning.max_jobs,
                               "MaxParallelTrainingJobs": tuning.max_parallel_jobs},
            "ParameterRanges": parameter_ranges(tuning),
            "TrainingJobEarlyStoppingType": tuning.early_stopping,
        },
        "TrainingJobDefinition": definition,
    }, result_selector={
        "job_name.$": "$.HyperParameterTuningJobName",
        "best_training_job.$": "$.BestTrainingJob.TrainingJobName",
        "objective.$": "$.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric",
    }, result_path="$.tuning_job", comment=f"{tuning.max_jobs} jobs, {tuning.objective_type} {tuning.objective_metric}",
        timeout_seconds=rounds * job_seconds, on_failure=on_failure, tags=tags)
    best = tasks.CallAwsService(
        scope, describe_id,
        task_timeout=API_TIMEOUT,
        service="sagemaker", action="describeTrainingJob",
        parameters={"TrainingJobName.$": "$.tuning_job.best_training_job"},
        iam_resources=[cdk.Stack.of(scope).format_arn(
            service="sagemaker", resource="training-job", resource_name=f"{prefix}-*")],
        iam_action="sagemaker:DescribeTrainingJob",
        result_selector={"job_name.$": "$.TrainingJobName", "model_data.$": "$.ModelArtifacts.S3ModelArtifacts",
                         "hyperparameters.$": "$.HyperParameters"},
        result_path="$.training",
        comment="The best job's model and hyperparameters flow on as the run's model",
    )
    catch_all(retry_api(best), on_failure)
    return tune.next(best), best


def parameter_ranges(tuning: TuningConfig) -> dict[str, list]:
    """The config's ranges in CreateHyperParameterTuningJob's ParameterRanges shape."""
    ranges: dict[str, list] = {"ContinuousParameterRanges": [], "IntegerParameterRanges": [], "CategoricalParameterRanges": []}
    for r in tuning.ranges:
        if r.type == "categorical":
            ranges["CategoricalParameterRanges"].append({"Name": r.name, "Values": list(r.values)})
        else:
            bounds = (str(int(r.min)), str(int(r.max))) if r.type == "integer" else (f"{r.min:g}", f"{r.max:g}")
            key = "IntegerParameterRanges" if r.type == "integer" else "ContinuousParameterRanges"
            ranges[key].append({"Name": r.name, "MinValue": bounds[0], "MaxValue": bounds[1], "ScalingType": r.scaling})
    return {key: value for key, value in ranges.items() if value}
