"""Typed per-stage configuration: one YAML file per stage under ``config/``.

``load_stage_config`` and ``load_stages`` are the only ways configuration enters the
app. They either return fully validated, frozen models or raise ``ConfigError`` with
one message that names the file, the field path and what is allowed. They import no
CDK code, so a bad config fails in well under a second and before anything is
written to ``cdk.out``.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import math

import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlops import rollout, schedules
from mlops.data_rules import QualityRules, RecipeSteps, as_text
from mlops.hyperparameters import linear_learner, xgboost

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
REPO_ROOT = Path(__file__).resolve().parent.parent  # script-mode source directories are relative to it
ALL_STAGES = "all"

# Tag rules from the AWS tagging docs: keys 1-128, values 0-256 characters of
# letters, digits, spaces and _ . : / = + - @ ; the aws: prefix is reserved.
_TAG_CHARS = re.compile(r"^[\w .:/=+\-@]*$", re.UNICODE)
# Tags the app sets itself from the config's project and stage.
AUTOMATIC_TAG_KEYS = ("ml-project", "stage")
REQUIRED_TAG_KEYS = ("cost-center", "owner")


class ConfigError(Exception):
    """A configuration problem, phrased for the person who has to fix the file."""


class _Model(BaseModel):
    # Unknown keys are errors (a typo must not silently fall back to a default);
    # models are frozen so nothing below app.py can change the config.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Environment(_Model):
    """Where the stage deploys. Leave both empty for an environment-agnostic template
    that deploys to the account/region of the credentials in use."""

    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    """Pin the stage to this AWS account (12 digits); null: the account of your credentials."""
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    """Pin the stage to this region; null: the region of your credentials."""


class Protection(_Model):
    """What happens to stateful resources when a stack is deleted or replaced."""

    retain_stateful_resources: bool = True
    """Keep keys, buckets, the catalog database, feature groups and the model package group when a stack is deleted (false: delete them, buckets emptied first). Must be true for `prod`."""
    termination_protection: bool = True
    """CloudFormation termination protection on the stage's stacks. Must be true for `prod`."""


class DataLakeConfig(_Model):
    """Lifecycle knobs shared by the data-lake buckets."""

    noncurrent_version_expiration_days: int = Field(default=30, ge=1, le=3650)
    """Days before noncurrent object versions expire (every bucket)."""
    abort_incomplete_multipart_upload_days: int = Field(default=7, ge=1, le=365)
    """Days before incomplete multipart uploads are aborted."""
    access_log_retention_days: int = Field(default=365, ge=1, le=3650)
    """Days server access logs are kept."""
    deploy_sample_data: bool = True
    """Copy the dataset's `sample` (the bundled CSVs for a bundled dataset) to its raw prefix on deploy."""


class BudgetAlert(_Model):
    threshold_percent: float = Field(gt=0, le=1000)
    """Alert at this share of the monthly limit."""
    notification_type: Literal["ACTUAL", "FORECASTED"] = "ACTUAL"
    """Alert on actual or on forecasted spend."""


class BudgetConfig(_Model):
    """A monthly cost budget filtered on the project's cost-allocation tag."""

    monthly_limit_usd: float = Field(gt=0, le=1_000_000)
    """Monthly cost budget for the resources tagged with the stage's `ml-project` and `stage`."""
    alerts: list[BudgetAlert] = Field(min_length=1, max_length=5)
    """When the budget alerts the operations topic (and its emails)."""


class NotificationsConfig(_Model):
    """Who hears about the stage: email subscriptions of the operations topic, which
    receives budget alerts, alarms and the runs' outcomes."""

    emails: list[EmailStr] = Field(default_factory=list, max_length=20)
    """Email subscriptions of the operations topic: budget alerts, alarms, run outcomes. Each address confirms once."""


class TrainingConfig(_Model):
    """Training-job settings read by the training pipeline."""

    instance_type: str = "ml.m5.xlarge"
    """Training instances."""
    instance_count: int = Field(default=1, ge=1, le=20)
    """Training instance count."""
    volume_size_gb: int = Field(default=30, ge=1, le=16384)
    """Training volume size (KMS-encrypted)."""
    max_runtime_minutes: int = Field(default=60, ge=1, le=5 * 24 * 60)
    """Training stopping condition."""
    use_spot_instances: bool = False
    """Managed spot training with checkpoints (maximum wait = 2 x runtime)."""

    @field_validator("instance_type")
    @classmethod
    def _sagemaker_instance(cls, value: str) -> str:
        if not re.fullmatch(r"ml\.[a-z0-9]+[a-z0-9-]*\.[0-9]*[a-z]+", value):
            raise ValueError("must be a SageMaker instance type such as 'ml.m5.xlarge' (starts with 'ml.')")
        return value


# The bundled sample datasets (data/sample/<name>/<name>.csv: numeric features, label `target` last)
# and their problem types; `pipeline.dataset: <name>` stands for the whole definition.
BUNDLED_DATASETS = {"breast_cancer": "binary", "wine": "multiclass", "diabetes": "regression"}
# The metrics the evaluation job reports per problem type (jobs/evaluation/evaluate.py), which gates may name.
METRICS = {
    "binary_classification": ("accuracy", "precision", "recall", "f1", "auc", "true_positive_rate",
                              "true_negative_rate", "false_positive_rate", "false_negative_rate"),
    "multiclass_classification": ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
                                  "weighted_recall", "weighted_f1", "weighted_f0_5", "weighted_f2", "macro_auc",
                                  "weighted_auc"),
    "regression": ("mse", "rmse", "mae", "r2"),
}
_RATE_METRICS = set(METRICS["binary_classification"]) | set(METRICS["multiclass_classification"]) | {"r2"}
# Metrics where lower is better; every other metric is better when higher.
LOWER_IS_BETTER = frozenset({"false_positive_rate", "false_negative_rate", "mse", "rmse", "mae"})
# Metrics without an upper bound (errors in the label's unit): the champion comparison allows a
# relative margin (champion_margin_percent) for them, an absolute one (champion_margin) for the rest.
UNBOUNDED_METRICS = frozenset({"mse", "rmse", "mae"})
# problem type -> the XGBoost objective and eval_metric a config that leaves them out trains with
# (multiclass also gets num_class, the number of classes in the dataset)
PROBLEM_DEFAULTS = {"binary_classification": ("binary:logistic", "auc"),
                    "multiclass_classification": ("multi:softprob", "mlogloss"),
                    "regression": ("reg:squarederror", "rmse")}


class MetricThreshold(_Model):
    """A business success criterion, e.g. ``f1 >= 0.9`` or ``rmse <= 60``."""

    metric: str
    """A metric of the dataset's problem type (binary classification: accuracy, precision, recall, f1, auc, true/false positive/negative rates; multiclass: accuracy, macro_/weighted_ precision, recall and f1, weighted_f0_5, weighted_f2, macro_auc, weighted_auc; regression: mse, rmse, mae, r2)."""
    direction: Literal[">=", "<="]
    """`>=` for metrics where higher is better, `<=` for errors."""
    value: float
    """The threshold; rates lie within 0-1, errors are >= 0."""

    @model_validator(mode="after")
    def _in_range(self) -> MetricThreshold:
        if self.metric in _RATE_METRICS - {"r2"} and not 0 <= self.value <= 1:
            raise ValueError(f"threshold for {self.metric} out of range: must be between 0 and 1 (got {self.value})")
        if self.metric in ("mse", "rmse", "mae") and self.value < 0:
            raise ValueError(f"threshold for {self.metric} out of range: must be >= 0 (got {self.value})")
        known = set().union(*METRICS.values())
        fitting = "<=" if self.metric in LOWER_IS_BETTER else ">="
        if self.metric in known and self.direction != fitting:
            raise ValueError(f"direction: {self.metric} is better when {'lower' if fitting == '<=' else 'higher'}; "
                             f"allowed: {fitting!r} (got {self.direction!r})")
        return self


class ParameterRange(_Model):
    """One hyperparameter range searched by tuning."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,255}$")
    """A hyperparameter of the algorithm (of the built-in XGBoost, one of Linear Learner's tunable `wd`, `l1`, `learning_rate`, `mini_batch_size`, `use_bias`, `positive_example_weight_mult`, or one the training script declares in `pipeline.hyperparameters`)."""
    type: Literal["continuous", "integer", "categorical"]
    """How the tuner searches it."""
    min: float | None = None
    """Lower bound (continuous and integer ranges)."""
    max: float | None = None
    """Upper bound (continuous and integer ranges)."""
    values: list[str] | None = Field(default=None, min_length=1, max_length=30)
    """The candidates (categorical ranges)."""
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"
    """How the tuner samples between the bounds."""

    @model_validator(mode="after")
    def _bounds(self) -> ParameterRange:
        if self.type == "categorical":
            if not self.values or self.min is not None or self.max is not None:
                raise ValueError(f"range {self.name!r}: a categorical range takes values (a list), not min/max")
        elif self.min is None or self.max is None or self.min >= self.max or self.values is not None:
            article = "an" if self.type == "integer" else "a"
            raise ValueError(f"range {self.name!r}: {article} {self.type} range needs min < max (and no values)")
        return self

    def fits_xgboost(self) -> None:
        """The range names one of the algorithm's hyperparameters, of a type the tuner can
        search it with, within its valid values (SageMaker's XGBoost hyperparameter table)."""
        self.fits_builtin(xgboost)

    def fits_builtin(self, table: Any) -> None:
        """``fits_xgboost`` for the built-in algorithm whose hyperparameter table is ``table``;
        Linear Learner's tuner searches only the hyperparameters "Tune a linear learner model"
        lists as tunable (``table.TUNABLE``)."""
        spec = table.SPECS.get(self.name)
        if spec is None:
            try:
                table.canonical(self.name, "")
            except ValueError as error:  # names the closest known hyperparameter
                raise ValueError(f"range {self.name!r}: {error}") from None
        tunable = getattr(table, "TUNABLE", None)
        if tunable is not None and self.name not in tunable:
            raise ValueError(f"range {self.name!r}: Linear Learner's tuner cannot search {self.name}; allowed: "
                             f"{', '.join(sorted(tunable))}")
        if spec.kind == "text":
            raise ValueError(f"range {self.name!r}: the tuner cannot search a free-text hyperparameter")
        kinds = {"int": ("integer", "categorical"), "float": ("continuous", "categorical"), "choice": ("categorical",)}
        if self.type not in kinds[spec.kind]:
            raise ValueError(f"range {self.name!r}: {self.name} is {spec.describe()}; allowed range types: "
                             f"{', '.join(kinds[spec.kind])}")
        for value in self.values or [self.min, self.max]:
            try:
                table.canonical(self.name, value)
            except ValueError as error:
                raise ValueError(f"range {self.name!r}: {error}") from None


class TuningConfig(_Model):
    """Hyperparameter tuning (SageMaker automatic model tuning); runs when the execution
    input asks for it, or on every run with ``run_by_default``."""

    run_by_default: bool = False
    """Tune on every run; otherwise only when the execution input says `"tuning": true`."""
    objective_metric: str | None = Field(default=None, pattern=r"^(train|validation):[A-Za-z0-9_@.-]+$")
    """A metric the algorithm emits, e.g. `validation:auc`; null: `validation:<the first eval_metric>` for XGBoost (`validation:auc` for classification, `validation:rmse` for regression unless `eval_metric` says otherwise), `validation:objective_loss` for Linear Learner."""
    objective_type: Literal["Maximize", "Minimize"] | None = None
    """Whether the tuner maximizes or minimizes the objective; null: the objective metric's direction (`Maximize` for auc, `Minimize` for errors such as rmse)."""
    max_jobs: int = Field(default=6, ge=1, le=500)
    """Training jobs per tuning job."""
    max_parallel_jobs: int = Field(default=2, ge=1, le=100)
    """Training jobs at once (at most `max_jobs`)."""
    early_stopping: Literal["Off", "Auto"] = "Auto"
    """Stop unpromising training jobs early."""
    ranges: list[ParameterRange] = Field(min_length=1, max_length=30)
    """The hyperparameters the tuner searches; the others keep their values."""

    @model_validator(mode="after")
    def _limits(self) -> TuningConfig:
        if self.max_parallel_jobs > self.max_jobs:
            raise ValueError(f"pipeline.tuning.max_parallel_jobs: must be <= max_jobs ({self.max_jobs}); "
                             f"got {self.max_parallel_jobs}")
        names = [r.name for r in self.ranges]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline.tuning.ranges: each hyperparameter once (got {', '.join(names)})")
        return self


class MetricDefinition(_Model):
    """A metric a training script reports: SageMaker reads it from the job's log with `regex`
    (AlgorithmSpecification.MetricDefinitions), for tuning and for the job's final metrics."""

    name: str = Field(pattern=r"^(train|validation):[A-Za-z0-9_@.-]{1,200}$")
    """`<channel>:<metric>`, e.g. `validation:accuracy`."""
    regex: str = Field(min_length=1, max_length=500)
    """A regular expression with one capture group matching the value in a log line, e.g. `validation:accuracy=([0-9.eE+-]+)`."""

    @field_validator("regex")
    @classmethod
    def _one_group(cls, value: str) -> str:
        try:
            groups = re.compile(value).groups
        except re.error as error:
            raise ValueError(f"not a regular expression ({error})") from None
        if groups != 1:
            raise ValueError(f"needs exactly one capture group around the value (got {groups})")
        return value


# The framework versions the SageMaker SDK lists for both training and inference
# (sagemaker/core/image_uri_config/sklearn.json, xgboost.json, pytorch.json): scikit-learn images
# tagged <version>-cpu-py3, XGBoost images <version> (the built-in algorithm's image, in script
# mode), PyTorch's separate training and inference images <version>-cpu-<its Python> (the newest
# three versions both tables list; tests/test_images.py checks them against the SDK).
SKLEARN_FRAMEWORK_VERSIONS = ("1.2-1", "1.4-2-py312", "1.9-0")
XGBOOST_FRAMEWORK_VERSIONS = ("1.7-1", "3.0-5", "3.2-0")
PYTORCH_FRAMEWORK_VERSIONS = ("2.4.0", "2.5.1", "2.6.0")
FRAMEWORK_VERSIONS = {"sklearn": SKLEARN_FRAMEWORK_VERSIONS, "xgboost": XGBOOST_FRAMEWORK_VERSIONS,
                      "pytorch": PYTORCH_FRAMEWORK_VERSIONS}
FRAMEWORK_NAMES = {"sklearn": "scikit-learn", "xgboost": "XGBoost", "pytorch": "PyTorch"}


class ScriptConfig(_Model):
    """Your own training code, run in AWS's scikit-learn, XGBoost or PyTorch framework container (script mode):
    SageMaker downloads `source_dir`, runs `entry_point` with the hyperparameters as command-line
    arguments and the channels in `SM_CHANNEL_TRAIN`/`SM_CHANNEL_VALIDATION`, and packs what it
    writes to `SM_MODEL_DIR`; serving imports the same file for its `model_fn` (and optional
    `input_fn`/`predict_fn`/`output_fn`). Guide: docs/bring-your-own-model.md."""

    source_dir: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
    """The code directory, relative to the repository root (e.g. `models/wine_sklearn`); packaged as `sourcedir.tar.gz`."""
    entry_point: str = Field(default="train.py", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.py$")
    """The script in `source_dir` that trains (run as `python <entry_point>`) and defines the inference handlers."""
    framework: Literal["sklearn", "xgboost", "pytorch"] = "sklearn"
    """The framework container: AWS's scikit-learn image (numpy, pandas, scipy, scikit-learn, joblib), its XGBoost image (xgboost, numpy, pandas, scikit-learn), which runs your script instead of the built-in algorithm, or its PyTorch images (the CPU training image, and the inference image that serves; torch, numpy). A PyTorch script trains and serves in AWS only: the offline runs have no torch (not one of this project's pins) and stop at "Train model" saying so."""
    framework_version: str | None = None
    """The container version, from the SageMaker SDK's tables: scikit-learn `1.2-1`, `1.4-2-py312`, `1.9-0` (image tag `<version>-cpu-py3`); XGBoost `1.7-1`, `3.0-5`, `3.2-0`; PyTorch `2.4.0`, `2.5.1`, `2.6.0` (tags `<version>-cpu-py311`, `2.6.0-cpu-py312`). Null: the newest."""
    metric_definitions: list[MetricDefinition] = Field(default_factory=list, max_length=40)
    """The metrics the script prints, for tuning objectives and the job's final metrics (SageMaker takes at most 40)."""

    @model_validator(mode="after")
    def _framework_version(self) -> ScriptConfig:
        versions = FRAMEWORK_VERSIONS[self.framework]
        if self.framework_version is None:
            object.__setattr__(self, "framework_version", versions[-1])
        elif self.framework_version not in versions:
            raise ValueError(f"framework_version: the {FRAMEWORK_NAMES[self.framework]} container's versions are "
                             f"{', '.join(versions)} (got {self.framework_version!r})")
        return self

    @model_validator(mode="after")
    def _code_exists(self) -> ScriptConfig:
        directory = REPO_ROOT / self.source_dir
        if ".." in Path(self.source_dir).parts or not directory.is_dir():
            raise ValueError(f"source_dir: {self.source_dir!r} is not a directory of the repository")
        if not (directory / self.entry_point).is_file():
            present = sorted(path.name for path in directory.glob("*.py"))
            raise ValueError(f"entry_point: {self.entry_point!r} is not in {self.source_dir}; "
                             f"allowed: {', '.join(present) or 'no .py file there'}")
        names = [definition.name for definition in self.metric_definitions]
        if len(set(names)) != len(names):
            raise ValueError(f"metric_definitions: each name once (got {', '.join(names)})")
        return self


# An image in a private ECR repository: account, region, repository, tag or digest.
ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.amazonaws\.com(?:\.cn)?/"
                       r"([a-z0-9]+(?:[._/-][a-z0-9]+)*)(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$")


# A command-line argument that names a file: it holds a path separator or ends in a script suffix.
_LOOKS_LIKE_FILE = re.compile(r"/|\.(py|sh|bash|R|r|jl|js|rb|pl|jar)$")
# argv[0] that means the interpreter running the offline runner (the project's pinned venv).
LOCAL_PYTHON = ("python", "python3")


class LocalCommand(_Model):
    """How the offline runner runs the image's program without Docker (offline only, never
    deployed: nothing of it reaches a template). Guide: docs/bring-your-own-model.md."""

    command: list[str] = Field(max_length=50)
    """The program the image runs, as an argument list, run from the repository root with `train` or `serve` appended (e.g. `[python, models/churn_container/main.py]`). `python`/`python3` first means the interpreter of the offline runner (the project's pinned venv); a path must be relative to the repository root and exist; any other first word is a program on `PATH`."""

    @field_validator("command")
    @classmethod
    def _runnable(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs the program and its arguments, e.g. [python, models/churn_container/main.py] "
                             "(got an empty list)")
        for argument in value:
            if not argument.strip():
                raise ValueError(f"an argument is empty (got {value!r})")
            if argument.startswith("-") or not _LOOKS_LIKE_FILE.search(argument) or "://" in argument:
                continue
            path = Path(argument)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"{argument!r}: a path must be relative to the repository root, without '..' "
                                 "(the config is shared by everyone who runs it)")
            if not (REPO_ROOT / path).is_file():
                raise ValueError(f"{argument!r} is not a file of the repository")
        return value

    def argv(self, python: str) -> list[str]:
        """The command to run: ``python`` for a leading ``python``/``python3``, the repository's
        files as absolute paths (they then hold whichever directory the command starts in)."""
        def resolve(index: int, word: str) -> str:
            if index == 0 and word in LOCAL_PYTHON:
                return python
            is_file = not word.startswith("-") and _LOOKS_LIKE_FILE.search(word) and (REPO_ROOT / word).is_file()
            return str(REPO_ROOT / word) if is_file else word

        return [resolve(index, word) for index, word in enumerate(self.command)]


class ContainerConfig(_Model):
    """Your own training and serving image in ECR, following SageMaker's container contract:
    run with `train`, it reads `/opt/ml/input/config/hyperparameters.json` and
    `/opt/ml/input/data/<channel>/` and writes `/opt/ml/model/`; run with `serve`, it answers
    `GET /ping` and `POST /invocations` on port 8080. Offline (no Docker) it runs only through
    `local.command`; without it a run stops at "Train model" saying so."""

    image_uri: str
    """`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>` (or `@sha256:<digest>`), in the stage's region."""
    metric_definitions: list[MetricDefinition] = Field(default_factory=list, max_length=40)
    """The metrics the training log reports, for tuning objectives and the job's final metrics."""
    environment: dict[str, str] = Field(default_factory=dict, max_length=100)
    """Environment variables of the serving container."""
    local: LocalCommand | None = None
    """Offline only, never deployed: the command that runs the image's program on this machine (`make demo`, the offline tests), e.g. `{command: [python, models/churn_container/main.py]}`. Null: offline runs stop at "Train model" saying the image cannot run."""

    @field_validator("metric_definitions")
    @classmethod
    def _unique_metrics(cls, value: list[MetricDefinition]) -> list[MetricDefinition]:
        names = [definition.name for definition in value]
        if len(set(names)) != len(names):
            raise ValueError(f"each name once (got {', '.join(names)})")
        return value

    @field_validator("image_uri")
    @classmethod
    def _ecr_image(cls, value: str) -> str:
        if not ECR_IMAGE.match(value):
            raise ValueError("must be an ECR image, <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> "
                             f"or @sha256:<digest> (got {value!r})")
        return value

    @property
    def account(self) -> str:
        return ECR_IMAGE.match(self.image_uri).group(1)

    @property
    def region(self) -> str:
        return ECR_IMAGE.match(self.image_uri).group(2)

    @property
    def repository(self) -> str:
        return ECR_IMAGE.match(self.image_uri).group(3)


class CandidateConfig(_Model):
    """One of several models trained in parallel on the same splits (``model.candidates``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,11}$")
    """Names the candidate in the run's output (`run.candidates.<name>`), its training job and its Experiments trial component: a lower-case letter, then lower-case letters and digits, at most 12 characters."""
    builtin: Literal["xgboost", "linear-learner"] | None = None
    """A SageMaker built-in algorithm: `xgboost` or `linear-learner`."""
    script: ScriptConfig | None = None
    """Your own training script in a framework container."""
    container: ContainerConfig | None = None
    """Your own image (ECR) that trains and serves."""
    hyperparameters: dict[str, str] | None = None
    """The candidate's hyperparameters, as `pipeline.hyperparameters` for a single model of its kind (null: the built-in XGBoost's defaults, Linear Learner's own; none for a script or an image)."""
    tuning: TuningConfig | None = None
    """The candidate's own automatic model tuning, as `pipeline.tuning` for a single model of its kind (ranges of its hyperparameters, an objective it reports): when it runs (`run_by_default`, or an execution input with `"tuning": true`), the tuning job's best training job is the candidate that competes. Null: the candidate trains once."""

    @model_validator(mode="after")
    def _one_kind(self) -> CandidateConfig:
        chosen = [name for name in ("builtin", "script", "container") if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError(f"candidate {self.name!r}: set exactly one of builtin, script or container"
                             + (f", not {' and '.join(chosen)}" if chosen else ""))
        return self

    @property
    def kind(self) -> dict[str, Any]:
        """The candidate as a single model's ``pipeline.model`` section."""
        return {name: getattr(self, name) for name in ("builtin", "script", "container") if getattr(self, name)}


class ModelConfig(_Model):
    """What trains and serves the model: the built-in XGBoost algorithm, your own script, or
    your own container image; or several of them as candidates trained in parallel, the best on
    the validation split going on."""

    builtin: Literal["xgboost", "linear-learner"] | None = None
    """A SageMaker built-in algorithm: `xgboost`, also when none is set (its image version: `pipeline.xgboost_version`), or `linear-learner` (SageMaker's Linear Learner, image version 1: a linear model for binary, multiclass or regression, its `predictor_type` following from the dataset)."""
    script: ScriptConfig | None = None
    """Your own training script in a framework container."""
    container: ContainerConfig | None = None
    """Your own image (ECR) that trains and serves."""
    candidates: list[CandidateConfig] | None = Field(default=None, min_length=2, max_length=5)
    """Several models trained in parallel (each `name` with one of `builtin`, `script`, `container` and its `hyperparameters`); the one with the best `select_by` on the validation split is evaluated, gated, registered and deployed. A candidate that fails to train does not stop the others."""
    select_by: str | None = Field(default=None, pattern=r"^validation:[A-Za-z0-9_@.-]{1,200}$")
    """The validation metric that picks the best candidate; every candidate must report it (the built-in XGBoost: `validation:<eval_metric>`; Linear Learner: the metrics of its problem type, e.g. `validation:mse`, `validation:absolute_loss`, `validation:objective_loss` for regression; a script or an image: one of its `metric_definitions`); null: the problem type's (`validation:auc`, `validation:mlogloss`, `validation:rmse`). Higher or lower is better as its name says (Linear Learner's metrics: as AWS lists them)."""

    @model_validator(mode="after")
    def _one_kind(self) -> ModelConfig:
        chosen = [name for name in ("builtin", "script", "container") if getattr(self, name)]
        if len(chosen) > 1:
            raise ValueError(f"pipeline.model: set one of builtin, script or container, not {' and '.join(chosen)}")
        if self.candidates and chosen:
            raise ValueError(f"pipeline.model: with candidates, each candidate names its algorithm; remove {chosen[0]}")
        if self.select_by and not self.candidates:
            raise ValueError("pipeline.model.select_by: picks the best of several candidates; set candidates or remove it")
        names = [candidate.name for candidate in self.candidates or []]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline.model.candidates: each name once (got {', '.join(names)})")
        return self

    @property
    def own(self) -> ScriptConfig | ContainerConfig | None:
        """The team's own code (a script or an image): its hyperparameters and metrics are its own."""
        return self.script or self.container


# The config's problem types and the names the pipeline uses for them (metrics, evaluation, gate).
PROBLEM_TYPES = {"binary": "binary_classification", "multiclass": "multiclass_classification", "regression": "regression"}
# Column types a feature may have; text and timestamp columns are kept for joins or dropped, never trained on.
FEATURE_TYPES = ("numeric", "categorical")
# A CSV header name the ETL, the catalog and Feature Store all accept.
COLUMN_NAME = r"^[A-Za-z0-9]([-_]*[A-Za-z0-9]){0,63}$"


class ColumnConfig(_Model):
    """One column of the raw CSV files, in the files' order."""

    name: str = Field(pattern=COLUMN_NAME)
    """The header name: letters and digits, single `-` or `_` between them, at most 64 characters."""
    type: Literal["numeric", "categorical", "text", "timestamp"] = "numeric"
    """What the column holds: `numeric` (numbers), `categorical` (a value from a small set, text or integer codes), `text` (free text or an identifier), `timestamp` (ISO 8601 date or date-time). The schema check refuses a non-number in a numeric column and a non-ISO-8601 value in a timestamp column."""
    role: Literal["feature", "id", "ignore", "drop", "mask"] = "feature"
    """`feature`: the model trains on it (numeric or categorical); `id`: kept in the curated catalog for joins, not trained on; `ignore`: dropped by the ETL; `drop`: PII, dropped by the ETL; `mask`: PII, replaced by its SHA-256 in the catalog and not trained on."""

    @model_validator(mode="after")
    def _feature_type(self) -> ColumnConfig:
        if self.role == "feature" and self.type not in FEATURE_TYPES:
            raise ValueError(f"column {self.name!r}: a {self.type} column cannot be a feature; allowed roles: id, "
                             "ignore, drop, mask (or declare it numeric or categorical)")
        return self


class DatasetConfig(_Model):
    """The dataset the stage trains on: where its raw CSV files land, their columns, the label
    and the problem type. A bundled sample's name (`breast_cancer`, `wine`, `diabetes`) stands for
    its whole definition. Guide: docs/bring-your-own-model.md."""

    name: str = Field(pattern=r"^[a-z0-9]([-_]?[a-z0-9]){0,39}$")
    """Names the dataset's prefixes in the curated zone (`<name>/runs/`) and its lineage: lower-case letters, digits, single `-` or `_`."""
    raw_prefix: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*/$")
    """Where the raw CSV files land in the raw zone (every `*.csv` under it, header first); null: `<name>/`."""
    sample: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
    """A CSV file or a directory of CSV files in the repository, checked against `columns` at synth (the header and the first 100,000 rows of each file) and copied to `raw_prefix` on deploy when `data_lake.deploy_sample_data`; null: you upload the raw files yourself."""
    label: str = Field(pattern=COLUMN_NAME)
    """The column the model predicts, at any position; the training data has it first."""
    problem_type: Literal["binary", "multiclass", "regression"]
    """`binary` or `multiclass` classification, or `regression`; decides the objective, the metrics and the gate."""
    classes: list[Annotated[str, BeforeValidator(as_text)]] | None = Field(default=None, max_length=1000)
    """Classification: the label's values, in class-index order (the model predicts 0 for the first); null: read from `sample` (the first 100,000 rows of each file), sorted (as numbers when they all are). Binary: exactly 2, the positive class second."""
    columns: list[ColumnConfig] = Field(min_length=2, max_length=1000)
    """Every column of the raw files, in their order, with its type and role."""

    @model_validator(mode="after")
    def _consistent(self) -> DatasetConfig:
        names = [column.name for column in self.columns]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"columns: {', '.join(twice)} declared twice")
        if self.label not in names:
            raise ValueError(f"label: {self.label!r} is not a declared column; allowed: {', '.join(names)}")
        label = self.column(self.label)
        if label.role != "feature":
            raise ValueError(f"columns: the label {self.label!r} must keep role feature (got {label.role})")
        wanted = ("numeric",) if self.problem_type == "regression" else FEATURE_TYPES
        if label.type not in wanted:
            raise ValueError(f"columns: the label {self.label!r} of a {self.problem_type} dataset is "
                             f"{' or '.join(wanted)} (got {label.type})")
        if not self.features:
            raise ValueError("columns: no feature besides the label; give at least one column role feature")
        if self.sample is not None:
            path = REPO_ROOT / self.sample
            if ".." in Path(self.sample).parts or not path.exists():
                raise ValueError(f"sample: {self.sample!r} is not a file or directory of the repository")
        if self.problem_type == "regression":
            if self.classes is not None:
                raise ValueError("classes: a regression label has no classes; remove it")
            return self
        classes = self.classes if self.classes is not None else self._sample_classes()
        if classes is None:
            raise ValueError(f"classes: a {self.problem_type} dataset without a sample must list its classes")
        if len(set(classes)) != len(classes) or any(not value.strip() for value in classes):
            raise ValueError(f"classes: each class once, none empty (got {', '.join(classes)})")
        if self.problem_type == "binary" and len(classes) != 2:
            raise ValueError(f"classes: a binary label has exactly 2 classes (got {len(classes)}: {', '.join(classes)})")
        if self.problem_type == "multiclass" and len(classes) < 3:
            raise ValueError(f"classes: a multiclass label has at least 3 classes (got {len(classes)}); "
                             "with 2 use problem_type binary")
        object.__setattr__(self, "classes", list(classes))
        return self

    def column(self, name: str) -> ColumnConfig:
        return next(column for column in self.columns if column.name == name)

    @property
    def column_names(self) -> list[str]:
        """Every declared column, in the raw files' order."""
        return [column.name for column in self.columns]

    @property
    def features(self) -> list[str]:
        """What the model reads, in order: the training data's columns after the label."""
        return [c.name for c in self.columns if c.role == "feature" and c.name != self.label]

    @property
    def categorical_features(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "feature" and c.type == "categorical" and c.name != self.label]

    @property
    def pii(self) -> dict[str, str]:
        """PII columns and what the ETL does with them (`drop` or `mask`)."""
        return {c.name: c.role for c in self.columns if c.role in ("drop", "mask")}

    @property
    def kept(self) -> list[str]:
        """The columns the ETL keeps (ignored ones go before anything else)."""
        return [c.name for c in self.columns if c.role != "ignore"]

    @property
    def catalogued(self) -> list[str]:
        """The columns of the curated catalog copy: every kept column but dropped PII."""
        return [c.name for c in self.columns if c.role not in ("ignore", "drop")]

    @property
    def raw_location(self) -> str:
        """The raw zone prefix the data phase reads."""
        return self.raw_prefix or f"{self.name}/"

    @property
    def pipeline_problem_type(self) -> str:
        return PROBLEM_TYPES[self.problem_type]

    def sample_files(self) -> list[Path]:
        """The sample's CSV files (none without a sample)."""
        if self.sample is None:
            return []
        path = REPO_ROOT / self.sample
        return [path] if path.is_file() else sorted(path.rglob("*.csv"))

    def _sample_classes(self) -> list[str] | None:
        files = self.sample_files()
        if not files:
            return None
        values: set[str] = set()
        for path in files:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = csv.reader(handle)
                header = next(rows, [])
                if self.label not in header:
                    raise ValueError(f"sample: {path.relative_to(REPO_ROOT)} has no column {self.label!r} (the label); "
                                     f"its header: {', '.join(header)}")
                index = header.index(self.label)
                values |= {row[index].strip() for row in itertools.islice(rows, SAMPLE_ROWS_READ)
                           if len(row) > index} - MISSING_TOKENS
        try:
            return sorted(values, key=float)
        except ValueError:
            return sorted(values)


def dataset_columns(dataset: str) -> list[str]:
    """A bundled dataset's columns, label last (the header of ``data/sample/<dataset>/``)."""
    with (SAMPLE_DIR / dataset / f"{dataset}.csv").open(encoding="utf-8") as handle:
        return handle.readline().strip().split(",")


def bundled_dataset(name: str) -> dict[str, Any]:
    """The definition a bundled sample's name stands for: every column numeric and a feature
    but the label ``target`` (last), raw files under ``sample/<name>/``."""
    columns = dataset_columns(name)
    return {"name": name, "raw_prefix": f"sample/{name}/", "sample": f"data/sample/{name}", "label": columns[-1],
            "problem_type": BUNDLED_DATASETS[name], "columns": [{"name": column} for column in columns]}


def _bundled(value: Any) -> Any:
    """``pipeline.dataset: <name>``: a bundled sample's definition; a mapping is a dataset section."""
    if isinstance(value, str):
        if value not in BUNDLED_DATASETS:
            raise ValueError(f"{value!r} is not a bundled sample; allowed: {', '.join(BUNDLED_DATASETS)}, or a dataset "
                             "section (name, label, problem_type, columns)")
        return bundled_dataset(value)
    return value


# A tuning objective's direction, read from a script metric's name when the config leaves it out.
_MINIMIZED_WORDS = ("loss", "error", "rmse", "mse", "mae")
_MAXIMIZED_WORDS = ("accuracy", "auc", "f1", "precision", "recall", "r2")


def _direction(metric: str) -> str | None:
    name = metric.split(":", 1)[-1].lower()
    if any(word in name for word in _MINIMIZED_WORDS):
        return "Minimize"
    if any(word in name for word in _MAXIMIZED_WORDS):
        return "Maximize"
    return None


class Candidate(typing.NamedTuple):
    """One candidate model: its name and the single-model pipeline it trains as."""

    name: str
    pipeline: PipelineConfig

    @property
    def reports(self) -> list[str]:
        """The validation metrics its training job reports (``FinalMetricDataList``)."""
        own = self.pipeline.model.own
        if own is not None:
            return [d.name for d in own.metric_definitions if d.name.startswith("validation:")]
        if self.pipeline.linear_learner:
            return [f"validation:{m}" for m in linear_learner.metrics(self.pipeline.problem_type)]
        return [f"validation:{m}" for m in xgboost.eval_metrics(dict(self.pipeline.hyperparameters))]


class PipelineConfig(_Model):
    """The training-to-deployment state machine."""

    _candidates: list[Candidate] = PrivateAttr(default_factory=list)

    dataset: Annotated[DatasetConfig, BeforeValidator(
        _bundled, json_schema_input_type=Union[Literal[tuple(BUNDLED_DATASETS)], DatasetConfig])] = Field(  # type: ignore[misc]
        default_factory=lambda: DatasetConfig.model_validate(bundled_dataset("breast_cancer")))
    """The dataset: a section (`name`, `label`, `problem_type`, `columns`, ...) or the name of a bundled sample: `breast_cancer` (binary classification), `wine` (multiclass, 3 classes) or `diabetes` (regression). Its problem type decides the objective and which metrics exist. Default: `breast_cancer`."""
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(builtin="xgboost"))
    """The algorithm: `{builtin: xgboost}` (the default), `{builtin: linear-learner}`, or `{script: {source_dir: ..., entry_point: ...}}` for your own training code."""
    xgboost_version: Literal["1.7-1"] = "1.7-1"
    """Built-in XGBoost image version (URIs from the SageMaker SDK's tables)."""
    hyperparameters: dict[str, str] = Field(
        default_factory=lambda: {"num_round": "100", "max_depth": "4", "eta": "0.2", "subsample": "0.8"}
    )
    """Default XGBoost hyperparameters (strings, as SageMaker expects); an execution input may override single ones. Names, types and ranges follow SageMaker's XGBoost hyperparameter table. `objective` and `eval_metric` must fit the dataset's problem type; left out, they follow from it (`binary:logistic` and `auc` for binary classification, `multi:softprob` and `mlogloss` with `num_class` = the dataset's number of classes for multiclass, `reg:squarederror` and `rmse` for regression). With `builtin: linear-learner`: Linear Learner's hyperparameters (its table's names, types and ranges; default: none but `predictor_type`, and `num_classes` for multiclass, which follow from the dataset and must agree with it). With a `script` model: the script's own hyperparameters (any names it reads; passed as command-line options, `--name value`, `-n value` for a one-letter name), and an execution input may override only those."""
    max_num_round: int = Field(default=10_000, ge=1, le=1_000_000)
    """The largest `num_round` the config or an execution input may ask for, so a typo cannot train for hours."""
    metric_thresholds: list[MetricThreshold] = Field(min_length=1)
    """The metric gate: every threshold must hold on the test split, and the challenger may be worse than the serving champion by at most `champion_margin` (rates, r2) or `champion_margin_percent` (errors)."""
    champion_margin: float = Field(default=0.01, ge=0, le=1)
    """How much worse than the champion (the version serving in the run's deployment mode) a challenger may be on a
    bounded threshold metric (classification rates, r2), in the metric's own units: 0.01 lets f1 0.95 follow 0.96."""
    champion_margin_percent: float = Field(default=5, ge=0, le=100)
    """How much worse than the champion a challenger may be on an unbounded error metric (mse, rmse, mae), in percent
    of the champion's value: 5 lets rmse 52.5 follow 50."""
    classification_threshold: float = Field(default=0.5, gt=0, lt=1)
    """Score cut-off for the label-based metrics."""
    execution_timeout_hours: int = Field(default=6, ge=1, le=72)
    """State machine timeout (plus `approval_timeout_hours` where approval is on)."""
    evaluation_instance_type: str = "ml.m5.large"
    """Instances of the evaluation and feature-ingestion processing jobs."""
    manual_approval: bool = False
    """Register versions `PendingManualApproval` and wait for a decision in the registry. Must be true for `prod`."""
    approval_timeout_hours: int = Field(default=72, ge=1, le=720)
    """How long a run waits for that decision."""
    source_repository: str = Field(default="", max_length=256)
    """Lineage recorded on every model version: the repository."""
    source_revision: str = Field(default="unversioned", min_length=1, max_length=256)
    """Lineage recorded on every model version: the revision (set it from CI)."""
    powertools_layer_version: int = Field(default=27, ge=1)
    """Version of the AWS-managed Powertools for AWS Lambda (Python) v3 layer the handlers use; check it exists in your region."""
    tuning: TuningConfig | None = None
    """Automatic model tuning; absent: no tuning branch. Tuning job names (32 characters) start with `<project>-<stage>` when it has at most 17 characters, else with its first 12 and a 4-character hash of it."""

    _evaluation_instance = field_validator("evaluation_instance_type")(TrainingConfig._sagemaker_instance.__func__)

    @property
    def problem_type(self) -> str:
        """``binary_classification``, ``multiclass_classification`` or ``regression``."""
        return self.dataset.pipeline_problem_type

    @property
    def classes(self) -> int | None:
        """How many classes the label has (classification), ``None`` for regression."""
        return None if self.dataset.classes is None else len(self.dataset.classes)

    @model_validator(mode="before")
    @classmethod
    def _derive_from_problem_type(cls, data: Any) -> Any:
        """Fill what the config leaves out from the dataset's problem type: the XGBoost
        ``objective`` and ``eval_metric``, then the tuning objective from the first eval metric.
        Values the config sets stay as written (and are checked against the problem type)."""
        if not isinstance(data, dict) or (isinstance(data.get("model"), dict) and data["model"].get("candidates")):
            return data  # candidates: each resolved as a single model of its own (_resolve_candidates)
        try:
            dataset = DatasetConfig.model_validate(_bundled(data.get("dataset", "breast_cancer")))
        except (ValueError, TypeError):
            return data  # a bad dataset or shape is reported by field validation
        if isinstance(data.get("model"), dict) and (data["model"].get("script") or data["model"].get("container")):
            return cls._derive_script_tuning(data)
        if isinstance(data.get("model"), dict) and data["model"].get("builtin") == "linear-learner":
            return cls._derive_linear_learner(data, dataset)
        data = dict(data)
        objective, eval_metric = PROBLEM_DEFAULTS[dataset.pipeline_problem_type]
        implied = [("objective", objective), ("eval_metric", eval_metric)]
        if dataset.problem_type == "multiclass":
            implied.append(("num_class", str(len(dataset.classes or ()))))
        hyperparameters = data.get("hyperparameters", cls.model_fields["hyperparameters"].default_factory())
        if isinstance(hyperparameters, dict):
            derived = {name: value for name, value in implied if name not in hyperparameters}
            data["hyperparameters"] = hyperparameters = {**derived, **hyperparameters}
        tuning = data.get("tuning")
        if isinstance(tuning, dict) and isinstance(hyperparameters, dict):
            tuning = dict(tuning)
            if tuning.get("objective_metric") is None:
                emitted = xgboost.eval_metrics({k: str(v) for k, v in hyperparameters.items()})
                if emitted:
                    tuning["objective_metric"] = f"validation:{emitted[0]}"
            metric = str(tuning.get("objective_metric") or "").split(":", 1)[-1]
            if tuning.get("objective_type") is None and metric:
                tuning["objective_type"] = "Maximize" if metric in xgboost.MAXIMIZED_METRICS else "Minimize"
            data["tuning"] = tuning
        return data

    @staticmethod
    def _derive_linear_learner(data: dict, dataset: DatasetConfig) -> dict:
        """Linear Learner's ``predictor_type`` (and ``num_classes`` for multiclass) from the
        dataset's problem type where the config leaves them out (no XGBoost defaults: Linear
        Learner starts from its own), then the tuning objective, ``validation:objective_loss``
        (Minimize), where it is left out. Values the config sets stay as written (and are checked)."""
        data = dict(data)
        implied = [("predictor_type", linear_learner.PREDICTOR_TYPES[dataset.pipeline_problem_type])]
        if dataset.problem_type == "multiclass":
            implied.append(("num_classes", str(len(dataset.classes or ()))))
        hyperparameters = data.get("hyperparameters", {})
        if isinstance(hyperparameters, dict):
            data["hyperparameters"] = {**{name: value for name, value in implied if name not in hyperparameters},
                                       **hyperparameters}
        tuning = data.get("tuning")
        if isinstance(tuning, dict):
            tuning = dict(tuning)
            if tuning.get("objective_metric") is None:
                tuning["objective_metric"] = f"validation:{linear_learner.DEFAULT_OBJECTIVE}"
            metric = str(tuning["objective_metric"]).split(":", 1)[-1]
            direction = linear_learner.direction(dataset.pipeline_problem_type, metric)
            if tuning.get("objective_type") is None and direction:
                tuning["objective_type"] = direction
            data["tuning"] = tuning
        return data

    @staticmethod
    def _derive_script_tuning(data: dict) -> dict:
        """A script's or container's tuning objective, where the config leaves it out: the first
        ``validation:`` metric definition, its direction read from its name."""
        data, tuning = dict(data), data.get("tuning")
        script = data["model"].get("script") or data["model"].get("container")
        if isinstance(script, (ScriptConfig, ContainerConfig)):  # a candidate's, already validated
            script = script.model_dump()
        definitions = script.get("metric_definitions") or [] if isinstance(script, dict) else []
        if isinstance(tuning, dict):
            tuning = dict(tuning)
            names = [d.get("name") for d in definitions if isinstance(d, dict)]
            if tuning.get("objective_metric") is None:
                tuning["objective_metric"] = next((n for n in names if str(n).startswith("validation:")), None)
            if tuning.get("objective_type") is None and tuning.get("objective_metric"):
                tuning["objective_type"] = _direction(str(tuning["objective_metric"]))
            data["tuning"] = tuning
        return data

    @property
    def script(self) -> ScriptConfig | None:
        """The training script, when the model is one."""
        return self.model.script

    @property
    def encodes(self) -> bool:
        """A built-in algorithm (numbers only) on categorical features: the run one-hot encodes
        them, fitted on the train split, and serves the encoder in front of the model."""
        if self.model.candidates:
            return any(candidate.pipeline.encodes for candidate in self.candidates)
        return self.model.own is None and bool(self.dataset.categorical_features)

    @property
    def linear_learner(self) -> bool:
        """The model is SageMaker's built-in Linear Learner."""
        return self.model.builtin == "linear-learner"

    @property
    def may_serve_linear_learner(self) -> bool:
        """The served model is, or may be (a candidate that wins), Linear Learner, which answers
        JSON only (never CSV)."""
        return self.linear_learner or any(candidate.pipeline.linear_learner for candidate in self.candidates)

    @property
    def hyperparameter_table(self) -> Any:
        """The built-in algorithm's hyperparameter table (``lambda/prepare_run/*_hyperparameters.py``)."""
        return linear_learner if self.linear_learner else xgboost

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameters_are_xgboost(cls, values: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        model = info.data.get("model")
        if model is None or model.own is not None or model.candidates:  # checked below, or per candidate
            return values
        table = linear_learner if model.builtin == "linear-learner" else xgboost
        problems, checked = [], {}
        for name, value in values.items():
            try:
                checked[name] = table.canonical(name, value)
            except ValueError as error:
                problems.append(f"pipeline.hyperparameters.{name}: {error}")
        if problems:
            raise ValueError("; ".join(problems))
        return checked

    @model_validator(mode="after")
    def _hyperparameters_fit_the_algorithm(self) -> PipelineConfig:
        if self.model.candidates:
            return self._resolve_candidates()
        if self.model.own:
            return self._script_hyperparameters()
        for index, parameter_range in enumerate(self.tuning.ranges if self.tuning else []):
            try:
                parameter_range.fits_builtin(self.hyperparameter_table)
            except ValueError as error:
                raise ValueError(f"pipeline.tuning.ranges[{index}]: {error}") from None
        return self._linear_learner_fits_problem() if self.linear_learner else self._xgboost_fits_problem()

    def _resolve_candidates(self) -> PipelineConfig:
        """Each candidate checked as the single model it would be (its hyperparameters derived
        and checked the same way), and every candidate reporting the metric that picks the best."""
        if "hyperparameters" in self.model_fields_set:
            raise ValueError("pipeline.hyperparameters: with model.candidates each candidate has its own "
                             "hyperparameters; move them into the candidates")
        if self.tuning is not None:
            raise ValueError("pipeline.tuning: with model.candidates each candidate tunes on its own; move tuning "
                             "into the candidates that should tune (pipeline.model.candidates[i].tuning)")
        base = self.model_dump(exclude={"model", "hyperparameters", "tuning"})
        resolved = []
        for index, candidate in enumerate(self.model.candidates or []):
            single: dict[str, Any] = {**base, "model": candidate.kind}
            if candidate.hyperparameters is not None or not candidate.builtin:
                single["hyperparameters"] = candidate.hyperparameters or {}
            if candidate.tuning is not None:  # its objective derived, its ranges checked, as a single model's
                single["tuning"] = candidate.tuning.model_dump(exclude_unset=True)
            where = f"pipeline.model.candidates[{index}]"
            try:
                resolved.append(Candidate(candidate.name, PipelineConfig.model_validate(single)))
            except ValidationError as error:
                message = "; ".join(str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
                                    for item in error.errors())
                for field in ("model.", "hyperparameters", "tuning"):
                    message = message.replace(f"pipeline.{field}", f"{where}.{field}")
                raise ValueError(f"{where} ({candidate.name}): {message}") from None
        metric = self.model.select_by or f"validation:{PROBLEM_DEFAULTS[self.problem_type][1]}"
        for index, candidate in enumerate(resolved):
            if metric not in candidate.reports:
                raise ValueError(f"pipeline.model.select_by: candidate {candidate.name!r} does not report {metric!r}; "
                                 f"it reports {', '.join(candidate.reports) or 'no metric (give it metric_definitions)'}")
        if self._select_direction(metric) is None:
            raise ValueError(f"pipeline.model.select_by: cannot tell from {metric!r} whether higher is better; "
                             "name a metric with loss, error, rmse, mse, mae, accuracy, auc, f1, precision, recall or r2 "
                             "in it")
        self._candidates[:] = resolved
        return self

    @property
    def candidates(self) -> list[Candidate]:
        """The candidates, each as the single-model pipeline it would be (empty: one model)."""
        return list(self._candidates)

    @property
    def select_by(self) -> tuple[str, str] | None:
        """The metric that picks the best candidate, and ``Maximize`` or ``Minimize``."""
        if not self.model.candidates:
            return None
        metric = self.model.select_by or f"validation:{PROBLEM_DEFAULTS[self.problem_type][1]}"
        return metric, self._select_direction(metric) or "Maximize"

    def _select_direction(self, metric: str) -> str | None:
        """Whether higher is better: as AWS lists it for a Linear Learner metric (its names, such
        as ``dcg`` or ``binary_f_beta``, do not always say), else as the metric's name says."""
        return linear_learner.direction(self.problem_type, metric.split(":", 1)[-1]) or _direction(metric)

    def _script_hyperparameters(self) -> PipelineConfig:
        """Names the script (or image) can read; tuning on its declared names and reported metrics."""
        kind = "script" if self.script else "container"
        for name in self.hyperparameters:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}", name) or name.startswith("sagemaker_"):
                raise ValueError(f"pipeline.hyperparameters.{name}: a {kind} hyperparameter is a name of letters, "
                                 "digits, _, . and - that starts with a letter or _ (sagemaker_* are the framework's own)")
        if self.tuning:
            declared = sorted(self.hyperparameters)
            for index, parameter_range in enumerate(self.tuning.ranges):
                if parameter_range.name not in self.hyperparameters:
                    raise ValueError(f"pipeline.tuning.ranges[{index}]: range {parameter_range.name!r} is not a "
                                     f"hyperparameter of the {kind}; declared in pipeline.hyperparameters: "
                                     f"{', '.join(declared) or 'none'}")
            reported = [d.name for d in self.model.own.metric_definitions]
            if self.tuning.objective_metric not in reported:
                raise ValueError(f"pipeline.tuning.objective_metric: {self.tuning.objective_metric!r} is not one of the "
                                 f"{kind}'s model.{kind}.metric_definitions; allowed: {', '.join(reported) or 'none defined'}")
            if not self.tuning.objective_type:
                raise ValueError(f"pipeline.tuning.objective_type: cannot tell from {self.tuning.objective_metric!r} "
                                 "whether higher is better; allowed: Maximize, Minimize")
        return self

    def _linear_learner_fits_problem(self) -> PipelineConfig:
        """``predictor_type`` and ``num_classes`` agree with the dataset; the tuning objective is a
        metric Linear Learner reports for the problem type, in its direction."""
        problems = linear_learner.problems(dict(self.hyperparameters), self.problem_type, classes=self.classes)
        if problems:
            raise ValueError("; ".join(f"pipeline.hyperparameters.{name}: {message}" for name, message in problems))
        if self.tuning:
            metric = (self.tuning.objective_metric or "").split(":", 1)[-1]
            reported = linear_learner.metrics(self.problem_type)
            if not (self.tuning.objective_metric or "").startswith("validation:") or metric not in reported:
                raise ValueError(f"pipeline.tuning.objective_metric: {self.tuning.objective_metric!r} is not a metric "
                                 f"Linear Learner reports for {self.problem_type.replace('_', ' ')}; allowed: "
                                 + ", ".join(f"validation:{m}" for m in reported))
            direction = linear_learner.direction(self.problem_type, metric)
            if self.tuning.objective_type != direction:
                raise ValueError(f"pipeline.tuning.objective_type: {metric} is better when "
                                 f"{'higher' if direction == 'Maximize' else 'lower'}; allowed: {direction}")
        return self

    def _xgboost_fits_problem(self) -> PipelineConfig:
        problems = xgboost.problems(dict(self.hyperparameters), self.problem_type, max_num_round=self.max_num_round,
                                    classes=self.classes)
        if problems:
            raise ValueError("; ".join(f"pipeline.hyperparameters.{name}: {message}" for name, message in problems))
        if self.tuning:
            if not self.tuning.objective_metric or not self.tuning.objective_type:
                raise ValueError("pipeline.tuning.objective_metric: cannot be derived from the hyperparameters; set it")
            metric = self.tuning.objective_metric.split(":", 1)[1]
            emitted = xgboost.eval_metrics(dict(self.hyperparameters))
            if metric not in emitted:
                raise ValueError(f"pipeline.tuning.objective_metric: {self.tuning.objective_metric!r} is not reported by "
                                 f"the training job, which reports the eval_metric(s) {', '.join(emitted)}; allowed: "
                                 + ", ".join(f"validation:{m}" for m in emitted))
            direction = "Maximize" if metric in xgboost.MAXIMIZED_METRICS else "Minimize"
            if self.tuning.objective_type != direction:
                raise ValueError(f"pipeline.tuning.objective_type: {metric} is better when "
                                 f"{'higher' if direction == 'Maximize' else 'lower'}; allowed: {direction}")
        return self

    @model_validator(mode="after")
    def _metrics_fit_problem(self) -> PipelineConfig:
        allowed = METRICS[self.problem_type]
        for index, threshold in enumerate(self.metric_thresholds):
            if threshold.metric not in allowed:
                raise ValueError(
                    f"pipeline.metric_thresholds[{index}].metric: {threshold.metric!r} is not a "
                    f"{self.problem_type} metric; allowed: {', '.join(allowed)}"
                )
        return self


class TrafficShiftingConfig(_Model):
    """How a blue/green update of the real-time endpoint moves traffic to the new fleet
    (SageMaker deployment guardrails), with auto-rollback on the endpoint alarms during every
    baking period. The serverless endpoint takes no deployment config and the async endpoint
    runs one instance (scaling to zero), so both update all at once."""

    type: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    """`all_at_once`: all traffic in one step; `canary`: `percent` of the capacity first, bake `wait_minutes`, then the rest; `linear`: `percent` more every `wait_minutes` until all. Every type ends with the final baking period `deployment.termination_wait_minutes`; an endpoint alarm during any bake rolls all traffic back."""
    percent: int | None = Field(default=None, ge=1, le=50)
    """Share of the variant's instances per step (CAPACITY_PERCENT): canary 1–50, linear 10–50; must be at least one whole instance of `deployment.initial_instance_count`. Required for `canary` and `linear`, not allowed for `all_at_once`."""
    wait_minutes: int = Field(default=5, ge=0, le=60)
    """Canary: bake before the rest shifts; linear: bake between steps (WaitIntervalInSeconds, at most 1 hour). Not allowed for `all_at_once`."""

    @model_validator(mode="after")
    def _fits_type(self) -> TrafficShiftingConfig:
        where = "deployment.traffic_shifting"
        if self.type == "all_at_once":
            extra = [name for name in ("percent", "wait_minutes") if name in self.model_fields_set]
            if extra:
                raise ValueError(f"{where}.{extra[0]}: all_at_once shifts all traffic in one step; remove it, or use "
                                 "type canary or linear")
            return self
        if self.percent is None:
            raise ValueError(f"{where}.percent: required for {self.type}; allowed: "
                             f"{'1-50' if self.type == 'canary' else '10-50'} (percent of the variant's instances)")
        low, high = rollout.LINEAR_PERCENT
        if self.type == "linear" and not low <= self.percent <= high:
            raise ValueError(f"{where}.percent: a linear step is {low}-{high}% of the variant's instances "
                             f"(got {self.percent})")
        return self

    def routing(self) -> dict[str, Any]:
        """The UpdateEndpoint ``TrafficRoutingConfiguration``."""
        return rollout.routing(self.type, self.percent, self.wait_minutes)


class DeploymentConfig(_Model):
    """How an approved model is served: ``realtime`` endpoint (the default), ``serverless``
    endpoint, ``async`` endpoint (scales to zero) or ``batch`` transform; an execution input
    may pick another."""

    mode: Literal["realtime", "serverless", "async", "batch"] = "realtime"
    """Default serving mode; an execution input may pick another. Not `batch` when the model is, or a candidate is, `linear-learner`: batch transform joins each CSV input line with a CSV answer, and Linear Learner answers JSON only (the same goes for `batch_input_prefix` and an execution input's `deployment_mode`)."""
    serverless_memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    """Serverless endpoint memory."""
    serverless_max_concurrency: int = Field(default=5, ge=1, le=200)
    """Serverless endpoint maximum concurrent invocations."""
    batch_input_prefix: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9!_.*'()/-]+/$")
    """Batch mode input: a prefix of the curated zone with feature-only CSV files (each output line: the features, then the prediction; the open-source monitoring backend checks that output for drift); null: the run's test split (label joined back to each prediction)."""
    async_max_concurrent_invocations_per_instance: int = Field(default=4, ge=1, le=1000)
    """Async endpoint: requests each instance works on at once."""
    async_max_instance_count: int = Field(default=2, ge=1, le=20)
    """Async endpoint: scale-out ceiling (the floor is 0)."""
    async_target_backlog_per_instance: int = Field(default=5, ge=1, le=10_000)
    """Async endpoint: target queued requests per instance."""
    instance_type: str = "ml.m5.large"
    """Endpoint and batch transform instances. Changing it redeploys an autoscaled endpoint (autoscaling is deregistered for the update and registered again)."""
    initial_instance_count: int = Field(default=1, ge=1, le=10)
    """Instances at creation and the autoscaling minimum (batch: transform instances); `prod` needs at least 2."""
    max_instance_count: int = Field(default=2, ge=1, le=20)
    """Autoscaling maximum."""
    target_invocations_per_instance: int = Field(default=200, ge=1, le=100_000)
    """Target-tracking value (invocations per instance per minute)."""
    data_capture_percentage: int = Field(default=100, ge=0, le=100)
    """Share of requests captured to the monitoring bucket (0 turns capture off)."""
    traffic_shifting: TrafficShiftingConfig = Field(default_factory=TrafficShiftingConfig)
    """How an update of the real-time endpoint shifts traffic to the new fleet: all at once, canary or linear (the serverless endpoint takes no deployment config; the async endpoint runs one instance, so it updates all at once)."""
    termination_wait_minutes: int = Field(default=5, ge=0, le=60)
    """Blue/green final baking period, after all traffic has shifted, before the old fleet goes (an endpoint alarm in it still rolls back)."""
    wait_for_endpoint_minutes: int = Field(default=30, ge=5, le=480)
    """How long the run polls for InService before failing (the endpoint itself is left to SageMaker); also SageMaker's own bound on a blue/green update (MaximumExecutionTimeoutInSeconds, at least 10 minutes). Must exceed the rollout's baking periods, with time to spare for provisioning the new fleet."""

    @model_validator(mode="after")
    def _scaling_bounds(self) -> DeploymentConfig:
        if self.max_instance_count < self.initial_instance_count:
            raise ValueError(
                f"deployment.max_instance_count: must be >= initial_instance_count ({self.initial_instance_count}); "
                f"got {self.max_instance_count}"
            )
        return self

    @model_validator(mode="after")
    def _rollout_fits(self) -> DeploymentConfig:
        shifting, where = self.traffic_shifting, "deployment.traffic_shifting"
        if shifting.type == "all_at_once":
            routing_config = shifting.routing()
        else:
            if self.instance_type.startswith(rollout.EXCLUDED_INSTANCE_PREFIXES):
                raise ValueError(f"{where}.type: SageMaker shifts traffic all at once on {self.instance_type} "
                                 "(deployment guardrails exclude Inf1 instances); allowed: all_at_once")
            routing_config = shifting.routing()
            try:  # the smallest fleet the update can meet (autoscaling keeps at least initial_instance_count)
                rollout.check(routing_config, self.initial_instance_count)
            except rollout.RolloutRefused:
                least = -(-100 // self.initial_instance_count)
                if least > 50:
                    raise ValueError(f"{where}.type: a {shifting.type} step is at most half of the instances, so it "
                                     f"needs initial_instance_count 2 or more (got {self.initial_instance_count}); "
                                     "allowed: all_at_once") from None
                raise ValueError(f"{where}.percent: {shifting.percent}% of initial_instance_count "
                                 f"({self.initial_instance_count}) is less than one instance; allowed: at least "
                                 f"{least} (or more instances)") from None
        # the rollout's longest plan over the fleet sizes autoscaling may leave when the update starts
        waits = max(rollout.total_wait_seconds(routing_config, self.termination_wait_minutes * 60, count)
                    for count in range(self.initial_instance_count, self.max_instance_count + 1))
        if self.wait_for_endpoint_minutes * 60 <= waits:
            raise ValueError(f"deployment.wait_for_endpoint_minutes: the {shifting.type} rollout bakes "
                             f"{waits // 60} minutes (wait_minutes per step and termination_wait_minutes), so the run "
                             f"and SageMaker's deployment timeout must allow more; allowed: more than {waits // 60} "
                             f"(got {self.wait_for_endpoint_minutes})")
        return self

    @property
    def rollout_timeout_seconds(self) -> int:
        """``MaximumExecutionTimeoutInSeconds`` of a blue/green update."""
        return rollout.execution_timeout_seconds(self.wait_for_endpoint_minutes)

    _instance = field_validator("instance_type")(TrainingConfig._sagemaker_instance.__func__)


def _missing_rule(value: Any) -> Any:
    if value in ("drop", "mean", "median", "mode") or (
            isinstance(value, dict) and list(value) == ["constant"] and isinstance(value["constant"], (str, int, float))):
        return value
    raise ValueError(f"must be drop, mean, median, mode or {{constant: <value>}} (got {value!r})")


MissingRule = Annotated[Any, BeforeValidator(_missing_rule)]


class EtlConfig(_Model):
    """The Glue ETL job (Spark, Glue 5.0) that turns the cleaned data into the 80/10/10 split."""

    worker_type: Literal["G.1X", "G.2X", "G.4X"] = "G.1X"
    """Glue worker type."""
    number_of_workers: int = Field(default=2, ge=2, le=100)
    """Glue workers."""
    timeout_minutes: int = Field(default=60, ge=5, le=2880)
    """Glue job timeout."""
    seed: int = Field(default=0, ge=0)
    """Seed of the deterministic split."""
    # per column: drop (rows with a missing value), mean, median, mode or {constant: value};
    # "*" is the default for every other column (median for numbers, mode for text)
    missing: dict[str, MissingRule] = Field(default_factory=dict)
    """Missing-value rule per column: `drop` (rows with a missing value), `mean`, `median`, `mode` or `{constant: <value>}`; `*` applies to every other column (default: median for numbers, mode for text). Fill values come from the train split only."""

    @model_validator(mode="before")
    @classmethod
    def _pii_is_a_role(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pii" in data:
            raise ValueError("data.etl.pii: PII is a column role: set role drop or mask on the column in "
                             "pipeline.dataset.columns")
        return data


class FeatureDefinition(_Model):
    name: str = Field(pattern=r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
    """A dataset column."""
    type: Literal["Integral", "Fractional", "String"]
    """Feature Store type."""


class FeatureGroupConfig(_Model):
    """One SageMaker Feature Store feature group, filled from the curated data on every data run.
    ``record_id`` (a stable hash of the row) and ``event_time`` (the run's time) are added by
    the ingestion job unless the data has columns of those names."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]){0,40}$")  # prefixed with <project>-<stage>-: <= 64 in all
    """Short name; the group is `<project>-<stage>-<name>`, at most 64 characters (renaming replaces it)."""
    description: str = Field(default="", max_length=128)
    """Shown in the Feature Store console."""
    record_identifier: str = Field(default="record_id", pattern=r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
    """Record id feature; the ingestion job adds a stable row hash unless the data has it."""
    event_time: str = Field(default="event_time", pattern=r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
    """Event time feature; the ingestion job adds the run's time unless the data has it."""
    features: list[FeatureDefinition] = Field(min_length=1, max_length=2500)
    """Dataset columns in the group."""
    online_store: bool = True
    """Keep an online store (KMS-encrypted) next to the offline one."""

    @model_validator(mode="after")
    def _unique(self) -> FeatureGroupConfig:
        names = [f.name for f in self.features]
        reserved = {self.record_identifier, self.event_time} & set(names)
        if reserved:
            raise ValueError(f"feature group {self.name!r}: {', '.join(sorted(reserved))} is the record identifier or "
                             "event time, which the ingestion job adds; remove it from features")
        if len(set(names)) != len(names):
            raise ValueError(f"feature group {self.name!r}: each feature once (got {', '.join(names)})")
        return self


class DataConfig(_Model):
    """The data phase: DataBrew validates the raw data against ``quality_rules`` and
    cleans it with ``recipe``, the Glue ETL job (``etl``) splits it, crawlers keep the Data
    Catalog current, and the ingestion job fills ``feature_groups``."""

    quality_rules: QualityRules = Field(min_length=1)
    """The DataBrew ruleset: `type` one of `row_count` (`min`), `no_duplicate_rows` (`max_percent`), `completeness` (`columns`, `max_missing_percent`), `range` (`column`, `min`, `max`, `min_percent`), `allowed_values` (`column`, `values`, `min_percent`); optional unique `name`. A failed rule stops the run before training (`DataQualityFailed`)."""
    recipe: RecipeSteps = Field(default_factory=list)
    """The DataBrew cleaning recipe (published on deploy): `action` one of `remove_missing`, `fill_missing` (`strategy` mean/median/constant, `value`), `delete_columns`, `remove_duplicate_rows`, `lower_case`, `trim`. Empty: no recipe job; the ETL reads the raw zone."""
    etl: EtlConfig = Field(default_factory=EtlConfig)
    """The Glue ETL split job."""
    crawler_schedule: str | None = None  # Glue cron; null: after each data run only
    """Glue `cron(...)` (six fields, as EventBridge) for scheduled crawls of both zones; null: the curated crawler runs after every data run only."""

    @field_validator("crawler_schedule")
    @classmethod
    def _glue_cron(cls, value: str | None) -> str | None:
        if value is not None:
            schedules.check(value, rate=False)
        return value
    feature_groups: list[FeatureGroupConfig] = Field(default_factory=list, max_length=10)
    """Feature Store groups filled on every data run."""
    refresh_on_new_raw_data: bool = False  # start the data run when an object lands under the raw prefix
    """New objects under the raw prefix start a data run (EventBridge; the raw bucket's EventBridge delivery is switched on)."""
    profile_timeout_minutes: int = Field(default=60, ge=5, le=2880)
    """DataBrew profile and recipe job timeout."""
    extra_columns: Literal["fail", "ignore"] = "fail"
    """Raw files with columns the dataset does not declare: `fail` (the run stops with `SchemaMismatch` naming them) or `ignore` (the schema check names them and the ETL keeps the declared columns only, so nothing trains on them). Missing, duplicated, reordered or mistyped declared columns fail either way."""

    @model_validator(mode="after")
    def _unique_groups(self) -> DataConfig:
        names = [group.name for group in self.feature_groups]
        if len(set(names)) != len(names):
            raise ValueError(f"data.feature_groups: names must be unique (got {', '.join(names)})")
        return self


# The only cron forms Model Monitor accepts ("The cron expression for monitoring schedule",
# SageMaker Developer Guide): hourly "cron(0 * ? * * *)", daily "cron(0 [00-23] ? * * *)",
# every N hours "cron(0 [00-23]/[01-24] ? * * *)". "*/6" is EventBridge's form, not Model Monitor's.
MODEL_MONITOR_SCHEDULES = {
    "hourly": "cron(0 * ? * * *)",
    "every-6-hours": "cron(0 0/6 ? * * *)",
    "every-12-hours": "cron(0 0/12 ? * * *)",
    "daily": "cron(0 0 ? * * *)",
}
# An hourly model-quality execution shares its hour between the ground-truth merge job and the
# analysis: "MaxRuntimeInSeconds ... should be no more than 1800" ("Schedule model quality
# monitoring jobs", SageMaker Developer Guide).
HOURLY_MODEL_QUALITY_MAX_MINUTES = 30


class ModelMonitorConfig(_Model):
    """The ``model-monitor`` backend: SageMaker Model Monitor's own analyzer on a monitoring
    schedule the training pipeline creates or updates after each real-time deployment."""

    schedule: Literal["hourly", "every-6-hours", "every-12-hours", "daily"] = "daily"
    """How often Model Monitor runs."""
    # Model Monitor's distribution distance (constraints' comparison_threshold) above which a
    # feature counts as drifted; the drift alarm fires when any feature crosses it.
    drift_threshold: float = Field(default=0.1, gt=0, le=1)
    """Model Monitor's distribution distance (the constraints' comparison threshold) above which a feature counts as drifted; the drift alarm fires when any feature crosses it."""
    network_isolation: bool = True   # the analyzer needs no network: SageMaker publishes its metrics
    """Run the analyzer without network access (it needs none: SageMaker publishes its metrics)."""
    max_runtime_minutes: int = Field(default=60, ge=5, le=60)  # an hourly schedule allows at most 60
    """Each execution's runtime limit; an hourly schedule with ground truth allows at most 30."""
    volume_size_gb: int = Field(default=30, ge=1, le=512)
    """The analyzer's volume (KMS-encrypted)."""


class MonitoringConfig(_Model):
    """Drift and model-quality monitoring of the real-time endpoint. ``open-source``
    runs the repo's drift job on a schedule; ``model-monitor`` uses SageMaker Model Monitor (for
    accounts that have it: it is not open to new customers): the training pipeline baselines the
    training split and creates or updates the monitoring schedules after each deployment."""

    backend: Literal["open-source", "model-monitor"] = "open-source"
    """`open-source`: the repo's drift job on the endpoint's captured data; `model-monitor`: SageMaker Model Monitor, set up after each real-time deployment (for accounts that have it). `schedule`, `window_hours`, `numeric_drift_threshold`, `categorical_drift_threshold`, `categorical_columns`, `ks_alpha` and `drift_share_threshold` apply to `open-source` only."""
    model_monitor: ModelMonitorConfig = Field(default_factory=ModelMonitorConfig)
    """Settings of the `model-monitor` backend."""
    schedule: str = "rate(1 day)"
    """How often the monitoring workflow runs: EventBridge Scheduler `rate(N unit)` (unit minute(s), hour(s) or day(s)) or `cron(...)` with six fields."""
    window_hours: int = Field(default=24, ge=1, le=24 * 31)
    """Captured data of this many hours per run."""
    numeric_drift_threshold: float = Field(default=0.1, gt=0, le=10)
    """A numeric feature drifts when the Wasserstein distance between its baseline and current values, in baseline standard deviations, is at least this and its KS test's p-value is below `ks_alpha` / number of features. 0.1 flags a 0.25 sd mean shift or a 1.5x variance change in every window of 10,000+ rows and no 0.05 sd shift (docs/benchmarks.md)."""
    categorical_drift_threshold: float = Field(default=0.07, gt=0, le=1)
    """A categorical feature drifts when the Jensen-Shannon distance between its baseline and current category shares is at least this and its chi-square test's p-value is below `ks_alpha` / number of features. 0.07 flags 10 percentage points of share moved between two categories."""
    categorical_columns: list[str] = Field(default_factory=list, max_length=500)
    """Feature columns compared category by category although their values are numbers (integer-coded categories); columns with text values are categorical anyway."""
    ks_alpha: float = Field(default=0.01, gt=0, lt=1)
    """Significance level of the per-feature tests (KS, chi-square), Bonferroni-corrected."""
    drift_share_threshold: float = Field(default=0.2, gt=0, le=1)  # alarm: share of features that drifted
    """The drift alarm: share of features that drifted."""
    ground_truth_prefix: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9!_.*'()/-]+/$")  # in the monitoring bucket
    """Labelled outcomes (Model Monitor's ground-truth JSONL) in the monitoring bucket, for model-quality metrics; null: none."""
    quality_thresholds: list[MetricThreshold] = Field(default_factory=list, max_length=10)
    """Model-quality alarms (e.g. `f1 >= 0.9`); need `ground_truth_prefix`."""
    instance_type: str = "ml.m5.large"
    """The monitoring job's instance."""

    _instance = field_validator("instance_type")(TrainingConfig._sagemaker_instance.__func__)

    @field_validator("schedule")
    @classmethod
    def _scheduler_expression(cls, value: str) -> str:
        schedules.check(value)
        return value


class RetrainingConfig(_Model):
    """When the training pipeline runs on its own."""

    schedule: Literal["daily", "weekly", "monthly"] | None = "weekly"
    """Scheduled retraining at 04:00 UTC (weekly: Mondays; monthly: the 1st); null: none."""
    on_alarm: bool = True  # the drift and model-quality alarms start a run
    """The drift and model-quality alarms start a retraining run."""
    alarm_window_hours: int = Field(default=24, ge=1, le=24 * 31)  # at most one alarm-triggered run per window
    """At most one alarm-triggered run per window."""


class AlarmsConfig(_Model):
    """Alarm thresholds that are not derived from other settings."""

    endpoint_4xx_rate_percent: float = Field(default=5, gt=0, le=100)
    """Alarm when more than this share of requests is rejected (three 5-minute periods)."""


ProjectName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")]  # 3-20 characters
StageName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,9}$")]  # 2-10: `<project>-<stage>` <= 31 characters
# What the two name patterns allow, in words (the error message says this instead of the regex).
NAME_RULES = {
    ("project",): "3 to 20 characters: lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen",
    ("stage",): "2 to 10 characters: lowercase letters and digits, starting with a letter",
}
FEATURE_GROUP_NAME_LIMIT = 64  # SageMaker's limit on `<project>-<stage>-<name>`
# Tuning job names have at most 32 characters (CreateHyperParameterTuningJob): a stem, "-", a hash
# of the execution and the redrive and retry counts (prepare_run's derive_name). A `<project>-<stage>`
# that long fits whole; a longer one gives way to ``tuning_stem``.
TUNING_STEM_LIMIT = 17


def tuning_stem(prefix: str) -> str:
    """The stem of a stage's tuning job names: ``<project>-<stage>`` when it fits in
    ``TUNING_STEM_LIMIT`` characters, else its first 12 and a 4-character hash of the whole
    (``fraud-detect-1a2b`` for ``fraud-detection-prod``): still this stage's own, so two stages
    never share tuning (or tuning-launched training) job names, and the state machine's IAM
    resources name exactly it."""
    if len(prefix) <= TUNING_STEM_LIMIT:
        return prefix
    return f"{prefix[:12].rstrip('-')}-{hashlib.sha256(prefix.encode()).hexdigest()[:4]}"


class StageConfig(_Model):
    """Everything one stage (dev, prod, ...) needs to synthesize."""

    project: ProjectName
    """3-20 characters. Stem of every physical name, export and alarm, the budget name and the `ml-project` tag: two projects deploy side by side in one account. Changing it replaces named resources."""
    stage: StageName
    """Stage name (must equal the file name): the `stage` tag, stack names, CLI selection `'<stage>/*'`."""
    environment: Environment = Field(default_factory=Environment)
    """Where the stage deploys."""
    protection: Protection = Field(default_factory=Protection)
    """What happens to stateful resources when a stack is deleted."""
    tags: dict[str, str]
    """Cost-allocation tags: `cost-center` and `owner` required; `ml-project` and `stage` are added automatically; AWS tag character rules, no `aws:` prefix."""
    data_lake: DataLakeConfig = Field(default_factory=DataLakeConfig)
    """Lifecycle of the data-lake buckets."""
    budget: BudgetConfig
    """The stage's monthly cost budget."""
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    """Who hears about the stage."""
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    """Training jobs."""
    pipeline: PipelineConfig
    """The training pipeline: dataset, hyperparameters, metric gate, approval, tuning."""
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    """How approved models are served."""
    data: DataConfig
    """The data phase: quality rules, cleaning, ETL split, catalog, feature groups."""
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    """Drift and model-quality monitoring."""
    retraining: RetrainingConfig = Field(default_factory=RetrainingConfig)
    """When the training pipeline runs on its own: on a schedule and on the drift and quality alarms."""
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    """Alarm thresholds not derived from other settings."""

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            if key in AUTOMATIC_TAG_KEYS:
                raise ValueError(f"'{key}' is set automatically from project/stage; remove it")
            if not 1 <= len(key) <= 128 or key.lower().startswith("aws:") or not _TAG_CHARS.match(key):
                raise ValueError(
                    f"tag key {key!r} is not allowed: 1-128 letters, digits, spaces or _ . : / = + - @, "
                    "not starting with 'aws:'"
                )
            if not isinstance(value, str) or len(value) > 256 or not _TAG_CHARS.match(value):
                raise ValueError(
                    f"tag {key!r} has value {value!r}: values are up to 256 letters, digits, spaces "
                    "or _ . : / = + - @"
                )
        missing = [key for key in REQUIRED_TAG_KEYS if key not in tags]
        if missing:
            raise ValueError(f"missing required cost-allocation tag(s): {', '.join(missing)}")
        return tags

    @model_validator(mode="after")
    def _prod_keeps_data(self) -> StageConfig:
        if self.stage == "prod" and not (
            self.protection.retain_stateful_resources and self.protection.termination_protection
        ):
            raise ValueError(
                "protection: stage 'prod' must keep retain_stateful_resources and "
                "termination_protection set to true"
            )
        if self.stage == "prod" and not self.pipeline.manual_approval:
            raise ValueError("pipeline.manual_approval: stage 'prod' must require manual approval (set it to true)")
        if self.stage == "prod" and self.deployment.initial_instance_count < 2:
            raise ValueError("deployment.initial_instance_count: stage 'prod' needs at least 2 instances (got "
                             f"{self.deployment.initial_instance_count})")
        return self

    @model_validator(mode="after")
    def _names_fit(self) -> StageConfig:
        """Names built from `<project>-<stage>` stay within the services' length limits."""
        prefix = self.resource_prefix
        for index, group in enumerate(self.data.feature_groups):
            if len(name := f"{prefix}-{group.name}") > FEATURE_GROUP_NAME_LIMIT:
                raise ValueError(f"data.feature_groups[{index}].name: the group {name!r} has {len(name)} characters; "
                                 f"feature group names have at most {FEATURE_GROUP_NAME_LIMIT}: shorten the name, the "
                                 "project or the stage")
        return self

    @model_validator(mode="after")
    def _data_columns_exist(self) -> StageConfig:
        """Every column the data phase names must be in the dataset: a typo would otherwise
        surface hours later as a failed DataBrew or Glue job."""
        dataset = self.pipeline.dataset
        columns, label = dataset.column_names, dataset.label
        named: list[tuple[str, str]] = []
        for index, rule in enumerate(self.data.quality_rules):
            named += [(f"data.quality_rules[{index}]", column) for column in _columns_of(rule)]
        for index, step in enumerate(self.data.recipe):
            named += [(f"data.recipe[{index}]", column) for column in _columns_of(step)]
        named += [(f"data.etl.missing.{column}", column) for column in self.data.etl.missing if column != "*"]
        for where, column in named:
            if column not in columns:
                raise ValueError(f"{where}: column {column!r} is not in dataset {dataset.name!r}; "
                                 f"allowed: {', '.join(columns)}")
        for index, step in enumerate(self.data.recipe):  # the ETL reads the recipe's output
            kept = [c for c in getattr(step, "columns", None) or [] if step.action == "delete_columns"
                    and dataset.column(c).role != "ignore"]
            if kept:
                raise ValueError(f"data.recipe[{index}]: deletes {', '.join(kept)}, which the ETL reads (the label, a "
                                 "feature, an id or a PII column it drops or masks); give the column role ignore instead")
        for index, group in enumerate(self.data.feature_groups):  # filled from the curated catalog copy
            for feature in group.features:
                if feature.name not in dataset.catalogued:
                    raise ValueError(f"data.feature_groups[{index}].features: column {feature.name!r} is not in dataset "
                                     f"{dataset.name!r} as curated (without its ignored and dropped columns); "
                                     f"allowed: {', '.join(dataset.catalogued)}")
        allowed = METRICS[self.pipeline.problem_type]
        for index, threshold in enumerate(self.monitoring.quality_thresholds):
            if threshold.metric not in allowed:
                raise ValueError(f"monitoring.quality_thresholds[{index}].metric: {threshold.metric!r} is not a "
                                 f"{self.pipeline.problem_type} metric; allowed: {', '.join(allowed)}")
        for column in self.monitoring.categorical_columns:
            if column not in dataset.features:
                raise ValueError(f"monitoring.categorical_columns: {column!r} is not a feature of dataset "
                                 f"{dataset.name!r}; allowed: {', '.join(dataset.features)}")
        if self.monitoring.quality_thresholds and not self.monitoring.ground_truth_prefix:
            raise ValueError("monitoring.quality_thresholds: model-quality alarms need ground truth; set "
                             "monitoring.ground_truth_prefix")
        mm = self.monitoring.model_monitor
        if (self.monitoring.backend == "model-monitor" and self.monitoring.ground_truth_prefix and mm.schedule == "hourly"
                and mm.max_runtime_minutes > HOURLY_MODEL_QUALITY_MAX_MINUTES):
            raise ValueError(f"monitoring.model_monitor.max_runtime_minutes: an hourly model-quality schedule allows at "
                             f"most {HOURLY_MODEL_QUALITY_MAX_MINUTES} (got {mm.max_runtime_minutes}); lower it or choose "
                             "a longer schedule")
        container = self.pipeline.model.container
        if container and self.environment.region and container.region != self.environment.region:
            raise ValueError(f"pipeline.model.container.image_uri: the image is in {container.region} and the stage deploys "
                             f"to {self.environment.region}; SageMaker pulls images from the stage's own region: push it "
                             f"to ECR in {self.environment.region}")
        if (self.monitoring.backend == "model-monitor" and self.monitoring.ground_truth_prefix
                and self.pipeline.problem_type == "multiclass_classification"):
            raise ValueError("monitoring.ground_truth_prefix: Model Monitor's multiclass model-quality job reads one "
                             "predicted-class column and the built-in XGBoost answers class probabilities; with "
                             "backend model-monitor leave it out for multiclass, or use backend open-source")
        return self

    @model_validator(mode="after")
    def _batch_needs_a_csv_answer(self) -> StageConfig:
        """Batch mode joins each CSV input line with the model's answer (``JoinSource: Input``:
        "For CSV data, SageMaker takes each row as a JSON array and joins the transformed data
        with the input by appending each transformed row to the end of the input ... the output
        is a CSV file", DataProcessing, SageMaker API Reference:
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataProcessing.html), which
        needs an answer that is a CSV row; Linear Learner answers JSON, JSON Lines or RecordIO
        only ("Linear learner response formats",
        https://docs.aws.amazon.com/sagemaker/latest/dg/LL-in-formats.html)."""
        if not self.pipeline.may_serve_linear_learner:
            return self
        why = ("batch transform joins each CSV input line with a CSV answer and Linear Learner answers JSON only"
               f"{' (a Linear Learner candidate may win)' if self.pipeline.candidates else ''}")
        if self.deployment.mode == "batch":
            raise ValueError(f"deployment.mode: {why}; allowed: realtime, serverless, async")
        if self.deployment.batch_input_prefix:
            raise ValueError(f"deployment.batch_input_prefix: {why}; remove it")
        return self

    @model_validator(mode="after")
    def _sample_fits(self) -> StageConfig:
        """The dataset's local sample, where there is one, has the declared columns and types:
        the check the data phase runs on the raw zone, run at synth on the file in the repo."""
        dataset = self.pipeline.dataset
        for path in dataset.sample_files():
            problems = sample_problems(dataset, path, ignore_extra=self.data.extra_columns == "ignore")
            if problems:
                raise ValueError(f"pipeline.dataset.sample: {path.relative_to(REPO_ROOT)} does not fit the declared "
                                 f"columns: {'; '.join(problems)}")
        return self

    @property
    def cost_allocation_tags(self) -> dict[str, str]:
        """The tags every taggable resource of this stage carries."""
        return {"ml-project": self.project, "stage": self.stage, **self.tags}

    @property
    def resource_prefix(self) -> str:
        """``<project>-<stage>``: the stem of every physical name the app has to choose."""
        return f"{self.project}-{self.stage}"


MISSING_TOKENS = frozenset({"", "NaN", "nan", "null", "NULL", "None"})  # the schema check's and the ETL's
# Rows of each sample file read at synth (the types, and the classes when not given): a sample is
# meant to be small; a large one costs every synth a bounded read only.
SAMPLE_ROWS_READ = 100_000


def sample_problems(dataset: DatasetConfig, path: Path, *, ignore_extra: bool) -> list[str]:
    """What in a local CSV file does not fit the declared columns: the header (names and
    order), numbers in numeric columns and the label's classes (first offending row each)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows, [])
        declared = dataset.column_names
        missing = [name for name in declared if name not in header]
        extra = [name for name in header if name not in declared]
        if missing or (extra and not ignore_extra):
            return ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
                [f"undeclared column(s) {', '.join(extra)} (data.extra_columns: ignore allows them)"]
                if extra and not ignore_extra else [])
        if [name for name in header if name in declared] != declared:
            return [f"columns in another order than declared: {', '.join(n for n in header if n in declared)}"]
        numeric = {name for name in declared if dataset.column(name).type == "numeric"}
        classes = set(dataset.classes or ())
        problems: dict[str, str] = {}
        for line, row in enumerate(itertools.islice(rows, SAMPLE_ROWS_READ), start=2):
            for name, value in zip(header, row):
                value = value.strip()
                if name in problems or value in MISSING_TOKENS:
                    continue
                if name == dataset.label and classes and value not in classes:
                    problems[name] = f"label {name} holds {value!r} on line {line}, not one of the classes " + ", ".join(
                        dataset.classes or ())
                elif name in numeric and not _is_number(value):
                    problems[name] = f"numeric column {name} holds {value!r} on line {line}"
    return list(problems.values())


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _columns_of(item: BaseModel) -> list[str]:
    column = getattr(item, "column", None)
    return ([column] if column else []) + list(getattr(item, "columns", None) or [])


# ---------------------------------------------------------------------------
# Loading and error reporting
# ---------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def available_stages(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(path.stem for path in config_dir.glob("*.yaml"))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated so the model class (or container) shows through."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the mapping at ``loc`` (for 'allowed keys' hints)."""
    current: Any = StageConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner else "none"
        return f"{_field_path(loc)}: unknown key; allowed keys here: {allowed}"
    if kind == "missing":
        return f"{_field_path(loc)}: required but missing"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        message = f"must be {NAME_RULES[loc]}" if loc in NAME_RULES else f"must match {error['ctx']['pattern']}"
    if kind == "model_type":
        owner = _model_at(loc)
        message = f"must be a mapping with keys {', '.join(owner.model_fields)}" if owner else "must be a mapping"
    if kind == "literal_error":
        message = f"must be one of {error['ctx']['expected']}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        message = f"out of range: {message.lower()}"
    path = _field_path(loc) if loc else ""
    if loc and loc[-1] == "tuning" and message.startswith("pipeline.tuning.") and path != "pipeline.tuning":
        message = path + message.removeprefix("pipeline.tuning")  # a candidate's tuning: its own place named
    if not loc or message.startswith(path):  # model-level rule: its message names the field
        return message
    suffix = "" if isinstance(given, (dict, list)) or given is None or "(got " in message else f" (got {given!r})"
    return f"{_field_path(loc)}: {message}{suffix}"


def load_stage_config(stage: str, config_dir: Path = CONFIG_DIR) -> StageConfig:
    """Read and validate ``config/<stage>.yaml``; raise ConfigError on any problem."""
    stages = available_stages(config_dir)
    path = config_dir / f"{stage}.yaml"
    if stage not in stages:
        raise ConfigError(
            f"unknown stage {stage!r}: allowed stages are {', '.join(stages) or '(none)'} "
            f"(one YAML file per stage in {_display(config_dir)}/), or '{ALL_STAGES}'"
        )
    shown = _display(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{shown}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    if "stage" in raw and raw["stage"] != stage:
        raise ConfigError(f"{shown}: stage: must equal the file name {stage!r} (got {raw['stage']!r})")
    try:
        config = StageConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        header = f"{shown}: invalid configuration"
        raise ConfigError("\n  ".join([header + ":"] + problems) if len(problems) > 1 else f"{header}: {problems[0]}") from None
    return config


def load_stages(selection: str | None, config_dir: Path = CONFIG_DIR) -> list[StageConfig]:
    """Resolve the ``-c stage=...`` selection: one stage, a comma list, or 'all'."""
    selection = (selection or "dev").strip()
    if selection == ALL_STAGES:
        names = available_stages(config_dir)
    else:
        names = [name.strip() for name in selection.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"context 'stage' is empty: allowed are {', '.join(available_stages(config_dir))} or '{ALL_STAGES}'")
    return [load_stage_config(name, config_dir) for name in names]


def main(argv: list[str]) -> int:
    """``python -m mlops.config [dev|prod|all]``: validate stage configs without synthesizing."""
    import sys

    try:
        configs = load_stages(argv[0] if argv else ALL_STAGES)
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 1
    for config in configs:
        print(f"config/{config.stage}.yaml: ok (project {config.project})")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
