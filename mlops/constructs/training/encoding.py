"""Phase: encode the categorical features for a built-in algorithm, which reads numbers only.

"Encode categorical features" runs ``jobs/encode/encode.py`` as a SageMaker Processing job in
AWS's scikit-learn container after the data phase: it fits a one-hot encoding of the dataset's
categorical features on the run's train split only, writes the encoded train and validation
splits the algorithm trains on, and packs the fitted encoder as a model artifact. The model
that predicts the test split, the model package and every endpoint or batch transform made from
it are then an inference pipeline of two serial containers ("Use the Containers parameter
instead of PrimaryContainer ... The default mode is Serial", "Create a multi-container endpoint",
SageMaker Developer Guide): the same script serving that encoder in the scikit-learn container
(``SAGEMAKER_PROGRAM``, answering text/csv to the next container through
``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, as the SageMaker SDK's ``PipelineModel`` examples set
it), then the algorithm. Clients send raw rows, categories as text; training and serving apply
the one fitted encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.constructs.sagemaker_jobs import processing_input
from mlops.constructs.workflow import JOBS_DIR, experiment_config, sagemaker_job, with_suffix

ENCODER_PROGRAM = "encode.py"
# AWS's scikit-learn image the encoder fits and serves in (training and inference tables of the
# SageMaker SDK): the scikit-learn the offline runner's emulation uses too.
ENCODER_FRAMEWORK_VERSION = "1.9-0"
ROOT = "/opt/ml/processing"


@dataclass(frozen=True)
class Encoder:
    """The encoding job's code and the encoder's serving container."""

    image_uri: str  # AWS's scikit-learn image
    repository: str  # its repository in SageMaker's per-region accounts
    script: s3_assets.Asset  # encode.py: the processing job's code
    source: s3_assets.Asset  # sourcedir.tar.gz holding encode.py: the serving container's code
    categorical: tuple[int, ...]  # positions among the features

    def container(self) -> dict:
        """The inference pipeline's first container: the run's fitted encoder."""
        region = cdk.Stack.of(self.source).region
        return {"Image": self.image_uri, "ModelDataUrl.$": "$.run.s3.encoder_model", "Environment": {
            "SAGEMAKER_PROGRAM": ENCODER_PROGRAM, "SAGEMAKER_SUBMIT_DIRECTORY": self.source.s3_object_url,
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv", "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": region}}

    def state(self, scope: Construct, *, role_arn: str, key_arn: str, instance_type: str, tags: list[dict[str, str]],
              on_failure: sfn.IChainable) -> sfn.CustomState:
        """"Encode categorical features": fit on the train split, encode train and validation."""
        outputs = [("train", "$.run.s3.encoded_train"), ("validation", "$.run.s3.encoded_validation"),
                   ("model", "$.run.s3.encoder")]
        return sagemaker_job(scope, "Encode categorical features", "createProcessingJob", {
            "ProcessingJobName.$": with_suffix("$.run.names.encode"),
            "RoleArn": role_arn,
            "AppSpecification": {
                "ImageUri": self.image_uri,
                "ContainerEntrypoint": ["python3", f"{ROOT}/code/{self.script.s3_object_key}"],
                "ContainerArguments": ["--train-dir", f"{ROOT}/train", "--validation-dir", f"{ROOT}/validation",
                                       "--categorical", ",".join(map(str, self.categorical)),
                                       "--output-dir", f"{ROOT}/output"],
            },
            "ProcessingInputs": [
                processing_input("code", self.script.s3_object_url, f"{ROOT}/code"),
                processing_input("train", "$.run.s3.train", f"{ROOT}/train"),
                processing_input("validation", "$.run.s3.validation", f"{ROOT}/validation"),
            ],
            "ProcessingOutputConfig": {"KmsKeyId": key_arn, "Outputs": [
                {"OutputName": name, "S3Output": {"S3Uri.$": path, "LocalPath": f"{ROOT}/output/{name}",
                                                  "S3UploadMode": "EndOfJob"}} for name, path in outputs]},
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 30, "VolumeKmsKeyId": key_arn}},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "ExperimentConfig": experiment_config("encode"),
        }, result_selector={"job_name.$": "$.ProcessingJobName"}, result_path="$.encoding",
            comment=f"One-hot encoding of features {json.dumps(list(self.categorical))} fitted on the train split "
                    "(jobs/encode/encode.py)", on_failure=on_failure, tags=tags)


def encoder(scope: Construct, *, image_uri: str, repository: str, categorical: list[int],
            sourcedir: s3_assets.Asset) -> Encoder:
    """The encoder of a built-in algorithm's stage; ``sourcedir`` packs ``jobs/encode``."""
    script = s3_assets.Asset(scope, "EncodingScript", path=str(JOBS_DIR / "encode" / ENCODER_PROGRAM))
    return Encoder(image_uri=image_uri, repository=repository, script=script, source=sourcedir,
                   categorical=tuple(categorical))
