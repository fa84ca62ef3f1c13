"""Phase: build the model — train it, or tune it and take the best job's model.

Either way the result stands in ``$.training`` (job name, model artifact, hyperparameters)
for evaluation, registry and deployment.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.config import TrainingConfig, TuningConfig
from mlops.constructs.pipeline_function import PipelineFunction
from mlops.constructs.training.algorithm import Algorithm
from mlops.constructs.training.candidates import CandidateSet, train_candidates
from mlops.constructs.training.tuning import tuning_states
from mlops.constructs.workflow import experiment_config, sagemaker_job, with_suffix


class ModelBuild:
    """Builds, into ``scope``, "Train model" (CreateTrainingJob ``.sync``: the algorithm image,
    the run's hyperparameters, the train/validation channels, KMS, spot with checkpoints where
    configured, the run's Experiments trial) and, with ``tuning``, "Tune hyperparameters?" →
    "Tune hyperparameters" → "Describe best training job"; an algorithm with an encoder first
    runs "Encode categorical features" (on ``instance_type``) and trains on the encoded splits.

    With ``candidates`` (and their ``select`` handler) instead of one algorithm: "Train
    candidates" → "Select best candidate" → "Best candidate" (``candidates.py``).

    Exposes ``start`` (the phase's first state) and ``parameters`` (the training request).
    """

    def __init__(self, scope: Construct, *, prefix: str, training: TrainingConfig, tuning: TuningConfig | None,
                 algorithm: Algorithm | CandidateSet, role_arn: str, key_arn: str, tags: list[dict[str, str]],
                 on_failure: sfn.IChainable, instance_type: str, select: PipelineFunction | None = None) -> None:
        self._scope, self._prefix, self._on_failure, self._tags = scope, prefix, on_failure, tags
        candidates = algorithm if isinstance(algorithm, CandidateSet) else None
        encoder = algorithm.encoder
        if candidates is not None:
            algorithm = candidates.algorithms[0][1]  # the request's shape; each branch puts its own candidate in
        max_runtime = training.max_runtime_minutes * 60
        self.parameters = {
            "TrainingJobName.$": with_suffix("$.run.names.train"),
            "RoleArn": role_arn,
            "AlgorithmSpecification": {"TrainingImage": algorithm.image_uri, "TrainingInputMode": "File",
                                       **({"MetricDefinitions": algorithm.metric_definitions}
                                          if algorithm.metric_definitions else {})},
            "HyperParameters.$": "$.run.hyperparameters",
            "InputDataConfig": algorithm.channels(),
            "OutputDataConfig": {"S3OutputPath.$": "$.run.s3.output", "KmsKeyId": key_arn},
            "ResourceConfig": {
                "InstanceCount": training.instance_count, "InstanceType": training.instance_type,
                "VolumeSizeInGB": training.volume_size_gb, "VolumeKmsKeyId": key_arn},
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
            "EnableInterContainerTrafficEncryption": training.instance_count > 1,
            "ExperimentConfig": experiment_config("train"),
        }
        if training.use_spot_instances:
            self.parameters["EnableManagedSpotTraining"] = True
            self.parameters["StoppingCondition"]["MaxWaitTimeInSeconds"] = 2 * max_runtime
            self.parameters["CheckpointConfig"] = {"S3Uri.$": "$.run.s3.checkpoints"}
        self.job_seconds = self.parameters["StoppingCondition"].get("MaxWaitTimeInSeconds", max_runtime)
        if candidates is not None:
            if select is None:
                raise ValueError("candidates need the select_candidate handler (select=)")
            self.start: sfn.IChainable = train_candidates(
                scope, candidates=candidates, parameters=self.parameters, select=select, job_seconds=self.job_seconds,
                tags=tags, on_failure=on_failure, prefix=prefix)[0]
        else:
            self.start = self._train(algorithm, tuning)
        if encoder is not None:  # the encoded splits first
            self.start = encoder.state(scope, role_arn=role_arn, key_arn=key_arn, instance_type=instance_type,
                                       tags=tags, on_failure=on_failure).next(self.start)

    def _train(self, algorithm: Algorithm, tuning: TuningConfig | None) -> sfn.IChainable:
        """"Train model", or with ``tuning`` "Tune hyperparameters?" choosing it or the tuning job."""
        scope, on_failure, tags = self._scope, self._on_failure, self._tags
        train = sagemaker_job(scope, "Train model", "createTrainingJob", self.parameters, result_selector={
            "job_name.$": "$.TrainingJobName",
            "model_data.$": "$.ModelArtifacts.S3ModelArtifacts",
            "hyperparameters.$": "$.HyperParameters",
        }, result_path="$.training", comment=f"{algorithm.description} on the train/validation splits",
            timeout_seconds=self.job_seconds, on_failure=on_failure, tags=tags)
        if tuning is None:
            return train
        return (sfn.Choice(scope, "Tune hyperparameters?")
                .when(sfn.Condition.boolean_equals("$.run.tuning", True), self._tuning(tuning))
                .otherwise(train)
                .afterwards())

    def _tuning(self, tuning: TuningConfig) -> sfn.IChainable:
        """Automatic model tuning; the best training job then stands where "Train model"'s
        result would (``$.training``)."""
        return tuning_states(self._scope, tune_id="Tune hyperparameters", describe_id="Describe best training job",
                             tuning=tuning, request=self.parameters, name_path="$.run.names.tune",
                             static_path="$.run.static_hyperparameters", prefix=self._prefix,
                             job_seconds=self.job_seconds, on_failure=self._on_failure, tags=self._tags)[0]
