"""First state of the training pipeline: validate the execution input against the
stage's defaults and derive every job and resource name of the run.

Bad input fails here, in the first state, with ``InvalidExecutionInput`` and a message
that names the field and what is allowed. Names are deterministic per execution, match
SageMaker's ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``, respect the 32-character limit of
tuning jobs and leave ``NAME_SUFFIX_RESERVE`` characters for the
``-<redrive count>-<retry count>`` suffix the state machine appends, so retries and
redrives never reuse a name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger(service="prepare-run")

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
NAME_LIMIT = 63
TUNING_NAME_LIMIT = 32
NAME_SUFFIX_RESERVE = 8  # "-<redrive>-<retry>", e.g. "-999-99"
HASH_LENGTH = 6



def _sibling(name: str):  # noqa: ANN202 - a module
    """A module beside this file, loaded by path (Lambda, the tests and the offline runner all
    load this handler by path, so its folder is not always on ``sys.path``)."""
    qualified = f"{__name__}_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


# The built-in XGBoost algorithm's hyperparameters (names, types, ranges): one table, also
# read by the stage configuration at synth time. A typo or an out-of-range value fails here
# rather than minutes later inside the training job.
xgboost = _sibling("xgboost_hyperparameters")
XGBOOST_HYPERPARAMETERS = xgboost.NAMES
# The built-in Linear Learner's, likewise (lambda/prepare_run/linear_learner_hyperparameters.py).
linear_learner = _sibling("linear_learner_hyperparameters")
DEPLOYMENT_MODES = ("realtime", "serverless", "async", "batch")  # what the input contract knows
TRIGGER_SOURCES = ("manual", "schedule", "drift-alarm", "quality-alarm", "new-data")


class InvalidExecutionInput(Exception):
    """Step Functions sees this class name as the error; the message names the field."""


class _Strict(BaseModel):
    # strict: "yes" is not a boolean, "3" not an integer; extra fields are refused
    model_config = ConfigDict(extra="forbid", strict=True)


class Trigger(_Strict):
    source: Literal[TRIGGER_SOURCES] = Field(  # type: ignore[valid-type]
        default="manual", description="Who started the run; recorded on the registered model version")
    reason: str = Field(default="", max_length=500, description="Free text, e.g. the alarm that fired")


class RunInput(_Strict):
    """What a person (or an EventBridge rule) may put in the execution input. All optional."""

    hyperparameters: dict[str, Any] = Field(  # values checked against the table in prepare_run
        default_factory=dict,
        description="Hyperparameters overriding the stage's pipeline.hyperparameters: for the built-in XGBoost or "
                    "Linear Learner, names, types and ranges of the algorithm's SageMaker hyperparameter table "
                    "(numbers or strings that read as them); for a script model, the names the stage declares",
        json_schema_extra={"additionalProperties": {"type": ["string", "number"]}},
    )
    tuning: bool | None = Field(default=None, description="Run hyperparameter tuning (only where the stage configures it)")
    deployment_mode: Literal[DEPLOYMENT_MODES] | None = Field(  # type: ignore[valid-type]
        default=None, description="How to serve the model; must be a mode the stage deploys (default: deployment.mode)")
    trigger: Trigger = Field(default_factory=Trigger)



class Execution(_Strict):
    id: str = Field(pattern=r"^arn:[a-z-]+:states:")
    name: str = Field(min_length=1, max_length=80)


class CandidateDefaults(_Strict):
    """One candidate model of a stage that trains several in parallel."""

    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,11}$")  # a key of the run's candidates: $.run.candidates.<name>
    hyperparameters: dict[str, str]  # its own, checked at synth, with a script's framework hyperparameters
    tuning: bool = False  # tunes on every run (its tuning's run_by_default)
    tuning_available: bool = False  # has its own tuning: the input's "tuning": true turns it on
    tuned_hyperparameters: list[str] = Field(default_factory=list)  # the names its tuning searches


class RunDefaults(_Strict):
    """Synth-time defaults from the stage config, passed in the state's payload."""

    stem: str = Field(pattern=r"^[a-z0-9-]+$")
    tuning_stem: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,17}$")  # when `stem` is too long for tuning names
    dataset: str
    problem_type: Literal["binary_classification", "multiclass_classification", "regression"]
    classes: int | None = Field(default=None, ge=2)  # the label's number of classes (classification)
    label: str
    hyperparameters: dict[str, str]
    algorithm: Literal["xgboost", "script", "container"] = "xgboost"
    framework_hyperparameters: dict[str, str] = Field(default_factory=dict)  # a script's sagemaker_program & co.
    tuning: bool
    tuning_available: bool = False
    tuned_hyperparameters: list[str] = Field(default_factory=list)
    deployment_mode: Literal[DEPLOYMENT_MODES]  # type: ignore[valid-type]
    deployment_modes: list[Literal[DEPLOYMENT_MODES]] = Field(min_length=1)  # type: ignore[valid-type]
    raw_bucket: str
    raw_prefix: str
    curated_bucket: str
    artifacts_bucket: str
    experiment: str
    max_num_round: int = Field(default=10_000, ge=1)
    tags: dict[str, str] = Field(default_factory=dict)  # the stage's cost-allocation tags
    candidates: list[CandidateDefaults] = Field(default_factory=list)  # several models in parallel: each its own


class Event(_Strict):
    input: Any = None  # whatever the execution was started with: checked in prepare_run
    execution: Execution
    defaults: RunDefaults


def input_schema() -> dict[str, Any]:
    """The execution input contract as JSON Schema (docs/execution-input.schema.json)."""
    schema = RunInput.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Training pipeline execution input", **schema}


def _sanitize(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9]", "-", text)).strip("-")


def derive_name(kind: str, stem: str, execution: Execution, *, limit: int = NAME_LIMIT, distinct: str = "") -> str:
    """``<stem>-<kind>-<execution name>`` shortened to fit ``limit`` minus the suffix
    reserve, ending in a hash of the execution ARN so truncation never collides across runs;
    names of one run that truncation could make equal (one per candidate) hash ``distinct`` too."""
    digest = hashlib.sha256(f"{execution.id}\0{distinct}".encode() if distinct else execution.id.encode()
                            ).hexdigest()[:HASH_LENGTH]
    room = limit - NAME_SUFFIX_RESERVE - HASH_LENGTH - 1
    readable = _sanitize(f"{stem}-{kind}-{execution.name}")[:room].rstrip("-")
    return f"{readable}-{digest}" if readable else digest


_TYPE_NAMES = {"bool_type": "true or false", "int_type": "an integer", "string_type": "a string",
               "dict_type": "a JSON object", "model_type": "a JSON object", "float_type": "a number"}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The input model whose fields ``loc`` (a path into the input) names the last of."""
    model: type[BaseModel] = RunInput
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return model


def _describe(error: ValidationError) -> str:
    """One line naming each problem's field (nested ones by their full path) and what that
    field allows."""
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in ("input", *item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown field; allowed: {', '.join(_model_at(item['loc']).model_fields)}"
        elif item["type"] == "literal_error":
            message = f"must be one of {item['ctx']['expected']} (got {item['input']!r})"
        elif item["type"] in _TYPE_NAMES:
            message = f"must be {_TYPE_NAMES[item['type']]} (got {item['input']!r})"
        problems.append(f"{path}: {message}")
    return "; ".join(problems)


def _script_hyperparameters(given: dict[str, Any], defaults: RunDefaults) -> dict[str, str]:
    """A script model's: the input may override the names the stage declares (the script reads
    them as command-line options; a name it does not know would fail the job), as strings;
    then the framework's own (``sagemaker_program`` & co.), which the input cannot change."""
    declared = sorted(set(defaults.hyperparameters) | set(defaults.tuned_hyperparameters))
    problems, checked = [], {}
    for name, value in given.items():
        if name not in declared:
            problems.append(f"input.hyperparameters.{name}: not a hyperparameter of the stage's training "
                            f"{defaults.algorithm}; allowed: {', '.join(declared)}")
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problems.append(f"input.hyperparameters.{name}: must be a string or a number (got {value!r})")
        else:
            checked[name] = value if isinstance(value, str) else format(value, "g") if isinstance(value, float) else str(value)
    if problems:
        raise InvalidExecutionInput("; ".join(problems))
    return {**defaults.hyperparameters, **checked, **defaults.framework_hyperparameters}


def is_linear_learner(defaults: RunDefaults) -> bool:
    """The stage trains the built-in Linear Learner: its hyperparameters always hold
    ``predictor_type`` (required by the algorithm, derived from the dataset at synth), a name
    the XGBoost table does not know, so the stage's own hyperparameters tell the two apart."""
    return defaults.algorithm == "xgboost" and "predictor_type" in defaults.hyperparameters


def _hyperparameters(given: dict[str, Any], defaults: RunDefaults) -> dict[str, str]:
    """The stage's hyperparameters with the input's on top, each checked against the built-in
    algorithm's table (name, type, range) and the whole set against the dataset's problem type."""
    if defaults.algorithm in ("script", "container"):
        return _script_hyperparameters(given, defaults)
    table = linear_learner if is_linear_learner(defaults) else xgboost
    problems, checked = [], {}
    for name, value in given.items():
        try:
            checked[name] = table.canonical(name, value)
        except ValueError as error:
            problems.append(f"input.hyperparameters.{name}: {error}")
    merged = {**defaults.hyperparameters, **checked}
    if not problems:
        found = (linear_learner.problems(merged, defaults.problem_type, classes=defaults.classes)
                 if table is linear_learner else
                 xgboost.problems(merged, defaults.problem_type, max_num_round=defaults.max_num_round,
                                  classes=defaults.classes))
        problems = [f"input.hyperparameters.{name}: {message}" if name in checked
                    else f"input.hyperparameters: with the stage's {name}: {message}" for name, message in found]
    if problems:
        raise InvalidExecutionInput("; ".join(problems))
    return merged


def prepare_run(event: Event) -> dict[str, Any]:
    """The run's resolved settings, names and S3 locations."""
    if event.input is not None and not isinstance(event.input, dict):
        raise InvalidExecutionInput(f"input: the execution input must be a JSON object, for example "
                                    f'{{"tuning": true}} or {{}} (got {type(event.input).__name__} {event.input!r:.80})')
    try:
        run_input = RunInput.model_validate(event.input or {})
    except ValidationError as error:
        raise InvalidExecutionInput(_describe(error)) from None
    defaults, execution = event.defaults, event.execution
    if defaults.candidates and run_input.hyperparameters:
        raise InvalidExecutionInput("input.hyperparameters: this stage trains candidates "
                                    f"({', '.join(c.name for c in defaults.candidates)}), each with the hyperparameters "
                                    "of its pipeline.model.candidates entry; remove them from the input")
    hyperparameters = {} if defaults.candidates else _hyperparameters(run_input.hyperparameters, defaults)
    mode = run_input.deployment_mode or defaults.deployment_mode
    if mode not in defaults.deployment_modes:
        raise InvalidExecutionInput(
            f"input.deployment_mode: {mode!r} is not deployed in this stage; allowed: {', '.join(defaults.deployment_modes)}"
        )
    if run_input.tuning and not defaults.tuning_available:
        raise InvalidExecutionInput("input.tuning: hyperparameter tuning is not configured for this stage; allowed: false")
    run_id = hashlib.sha256(execution.id.encode()).hexdigest()[:HASH_LENGTH]
    names = {
        kind: derive_name(kind, defaults.stem, execution)
        for kind in ("data", "train", "eval", "model", "config", "transform", "baseline", "run", "predict", "encode")
    }
    names["candidate"] = derive_name("model-candidate", defaults.stem, execution)  # predicts the test split
    names["tune"] = derive_name("hpo", defaults.tuning_stem or defaults.stem, execution, limit=TUNING_NAME_LIMIT)
    names["endpoint"] = f"{defaults.stem}-endpoint"  # stable: updates target the serving endpoint
    names["experiment"] = defaults.experiment
    curated = f"s3://{defaults.curated_bucket}/{defaults.dataset}/runs/{names['run']}"
    artifacts = f"s3://{defaults.artifacts_bucket}/runs/{names['run']}"
    return {
        "run_id": run_id,
        "execution_name": execution.name,
        "dataset": defaults.dataset,
        "problem_type": defaults.problem_type,
        "label": defaults.label,
        "hyperparameters": hyperparameters,
        # several models in parallel: each one's training job and hyperparameters, by name (a
        # definite JSONPath, $.run.candidates.<name>.job)
        **({"candidates": {c.name: _candidate_run(c, defaults, execution, run_input.tuning)
                           for c in defaults.candidates}} if defaults.candidates else {}),
        # what a tuning job keeps fixed: SageMaker rejects a static value for a tuned name
        "static_hyperparameters": {k: v for k, v in hyperparameters.items() if k not in defaults.tuned_hyperparameters},
        "tuning": defaults.tuning if run_input.tuning is None else run_input.tuning,
        "deployment_mode": mode,
        "trigger": run_input.trigger.model_dump(),
        "names": names,
        "s3": {
            "raw": f"s3://{defaults.raw_bucket}/{defaults.raw_prefix}",
            "data": f"{curated}/",  # the data state machine writes train/ validation/ test/ here
            "train": f"{curated}/train/",
            "validation": f"{curated}/validation/",
            "test": f"{curated}/test/",
            # a built-in algorithm on categorical features: the splits it trains on, the fitted encoder
            "encoded_train": f"{artifacts}/encoded/train/",
            "encoded_validation": f"{artifacts}/encoded/validation/",
            "encoder": f"{artifacts}/encoder/",
            "encoder_model": f"{artifacts}/encoder/model.tar.gz",
            "output": f"{artifacts}/model/",
            "checkpoints": f"{artifacts}/checkpoints/",
            "predictions": f"{artifacts}/predictions/",  # the candidate model's answers for the test split
            "evaluation": f"{artifacts}/evaluation/",
            "transform_output": f"{artifacts}/transform/",
            "baseline": f"{artifacts}/baseline/",  # Model Monitor's suggested statistics and constraints
        },
    }


def _candidate_run(candidate: CandidateDefaults, defaults: RunDefaults, execution: Execution,
                   tuning: bool | None) -> dict[str, Any]:
    """One candidate's part of the run: its training job's name and hyperparameters; with its own
    tuning, whether it tunes (the input's ``tuning`` or its default), its tuning job's name
    (32 characters) and what the tuning keeps fixed."""
    run: dict[str, Any] = {"job": derive_name(f"train-{candidate.name}", defaults.stem, execution, distinct=candidate.name),
                           "hyperparameters": candidate.hyperparameters}
    if candidate.tuning_available:
        run.update(tuning=candidate.tuning if tuning is None else tuning,
                   tune=derive_name(f"hpo-{candidate.name}", defaults.tuning_stem or defaults.stem, execution,
                                    limit=TUNING_NAME_LIMIT, distinct=candidate.name),
                   static_hyperparameters={k: v for k, v in candidate.hyperparameters.items()
                                           if k not in candidate.tuned_hyperparameters})
    return run


@lru_cache(maxsize=None)
def _sagemaker():
    return boto3.client("sagemaker")


def ensure_experiment(experiment: str, trial: str, tags: dict[str, str] | None = None) -> None:
    """The stage's SageMaker experiment (created on first use) and one trial per run, so the
    run's jobs group together in SageMaker Experiments, both with the stage's cost-allocation
    tags. Idempotent: retries are safe."""
    sagemaker = _sagemaker()
    listed = [{"Key": key, "Value": value} for key, value in sorted((tags or {}).items())]
    for create, kwargs in (
        (sagemaker.create_experiment, {"ExperimentName": experiment, "Tags": listed}),
        (sagemaker.create_trial, {"TrialName": trial, "ExperimentName": experiment, "Tags": listed}),
    ):
        try:
            create(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUse":
                raise


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:  # the state machine's own payload is wrong: a bug, not user input
        raise ValueError(f"malformed prepare-run event: {error}") from None
    run = prepare_run(parsed)
    ensure_experiment(run["names"]["experiment"], run["names"]["run"], parsed.defaults.tags)
    logger.info("run prepared", extra={"run_id": run["run_id"], "trigger": run["trigger"]})
    return run
