"""Script mode offline: the user's own training code run as a SageMaker framework container
(scikit-learn) would run it, and the model it saves served with that container's inference
handlers, all on this machine.

What is emulated, and from which source:

* Training (``run_training``), after the sagemaker-training-toolkit that the framework containers
  run (https://github.com/aws/sagemaker-training-toolkit, ``src/sagemaker_training/``):

  - an ``/opt/ml``-like tree in a temp dir: ``input/config/hyperparameters.json`` (the
    request's hyperparameters verbatim), ``inputdataconfig.json``, ``resourceconfig.json``
    (one host, ``algo-1``), ``input/data/<channel>`` and ``model`` as symlinks to the given
    directories, ``output/`` (where a script may write ``failure``) and ``output/data`` as a
    symlink to ``output_data_dir``; the code in ``code/`` (copied, or a ``sourcedir.tar.gz``
    extracted with tarfile's ``data`` filter);
  - hyperparameter values JSON-decoded when they parse (``environment.read_hyperparameters``:
    the SageMaker Python SDK ``json.dumps`` every framework hyperparameter, so ``"1.0"`` is
    the float 1.0 and ``"\\"lbfgs\\""`` the string ``lbfgs``); keys starting with
    ``sagemaker_`` (and the toolkit's few reserved names) are the framework's own and never
    reach the script (``mapping.split_by_criteria``);
  - the ``SM_*`` environment variables of ``Environment.to_env_vars`` with the formats of
    ``mapping.to_env_vars`` (strings as-is, everything else compact JSON), ``SM_TRAINING_ENV``
    holding every property of ``Environment``;
  - the command line of ``mapping.to_cmd_args``: sorted keys, ``--name value``, but ``-n value``
    for a one-character name (so the SDK's ``C`` arrives as ``-C 1.0``), dicts as ``k=v,k=v``,
    other values ``str()``-ed (``true`` arrives as ``True``);
  - ``python <entry_point> args`` run from the code directory with it on ``PYTHONPATH``
    (``process.ProcessRunner``); ``python -m <module>`` when the code holds ``setup.py``;
  - failure: a script that writes ``/opt/ml/output/failure`` itself wins, because the toolkit
    only writes that file when it does not exist (``files.write_failure_file``); SageMaker
    reports its first 1024 characters as ``FailureReason`` after ``AlgorithmError:``.

* A team's own image (``run_container_training``) is not run by the toolkit: its program, run
  by the config's local command with ``train`` appended, gets the same tree (no ``code/``),
  ``hyperparameters.json`` with the request's raw strings, no command-line options, and the
  paths in the toolkit's ``SM_*`` variables (it cannot see ``/opt/ml``); metrics, the failure
  file and the time limit as for a script.

* Serving (``ScriptModel``), after the scikit-learn container's single-model server
  (https://github.com/aws/sagemaker-scikit-learn-container, ``serving.py``) and the transformer,
  encoders and request of https://github.com/aws/sagemaker-containers (``_transformer.py``,
  ``_encoders.py``, ``_worker.py``), which ``serving.py`` uses; the multi-model server path goes
  through https://github.com/aws/sagemaker-inference-toolkit (``transformer.py``,
  ``decoder.py``, ``encoder.py``) with the same defaults:

  - ``model_fn(model_dir)`` is required (the container has no default loader); ``input_fn``,
    ``predict_fn`` and ``output_fn`` default to decoding CSV/JSON/NPY into a numpy array
    (float32 for the text types), ``model.predict`` and encoding to the ``Accept`` type;
    ``transform_fn(model, body, content_type, accept)`` replaces the three and may not be
    combined with them;
  - CSV and JSON bodies reach ``input_fn`` as ``str``, others as ``bytes``; an ``Accept`` of
    ``*/*`` (or none) means ``application/json``; an unsupported request type is the
    container's 415, an unsupported ``Accept`` its 406 (``UnsupportedFormatError``).

What is not emulated, and what that means for a script:

* No Docker and no pip: requirements are never installed. A ``requirements.txt`` in the code
  directory is checked against the installed distributions (``importlib.metadata``, version
  specifiers with ``packaging``) of the interpreter running this module, and a missing one
  fails the job before the script starts. Option lines (``-r``, ``-e``, ``--index-url``) are
  not checked; ``setup.py`` is not installed either (the code directory is on the path).
* Paths come only from the environment: the script sees ``SM_MODEL_DIR`` and friends pointing
  into the temp tree. A script that hard-codes ``/opt/ml/...`` fails offline (the directory
  does not exist here), though it would work in the container.
* One host, no GPUs, no distribution (MPI, parameter server, torchrun), no ``.sh`` entry
  points, no S3 upload of ``model/`` or ``output/data`` (they are the caller's directories),
  no SIGTERM grace period of 120 s (5 s here), no spot or checkpoint channels.
* Failure text: the real toolkit, when the script writes no failure file, writes
  ``ExecuteUserScriptError: ExitCode 1 ErrorMessage "" Command "..."`` (the scikit-learn
  container does not capture stderr); offline the reason is the script's last stderr line,
  which names the error.
* Serving: the body is handled in-process (no HTTP, no gunicorn workers, no 5 MB limit);
  ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` is not read; CSV rows always decode to a 2-D array
  (the container ``squeeze``s a single row to 1-D); ``application/x-npy`` bodies load without
  pickles.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.metadata
import importlib.util
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from mlops.source_bundle import sourcedir_tarball  # noqa: F401  (re-exported: the offline runner packs code the same way)
from tools.offline import environ

CURRENT_HOST = "algo-1"
INSTANCE_GROUP = "homogeneousCluster"
# Set by each framework container's Dockerfile (SAGEMAKER_TRAINING_MODULE); shown in SM_TRAINING_ENV.
FRAMEWORK_MODULES = {"sklearn": "sagemaker_sklearn_container.training:main",
                     "xgboost": "sagemaker_xgboost_container.training:main"}
CONTAINERS = {"sklearn": "scikit-learn", "xgboost": "XGBoost"}
# params.SAGEMAKER_HYPERPARAMETERS: reserved names besides the ``sagemaker_`` prefix.
_RESERVED = frozenset({"sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics",
                       "sagemaker_region", "sagemaker_container_log_level", "sagemaker_job_name",
                       "default_user_module_name", "_tuning_objective_metric", "sagemaker_s3_output"})
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")  # API_Channel.html: ChannelName
_FAILURE_REASON_LIMIT = 1024  # DescribeTrainingJob FailureReason: the failure file's first 1024 characters
_STOP_GRACE_SECONDS = 5.0
_INFO = 20  # logging.INFO, the toolkit's default log level

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"
_UTF8_TYPES = (JSON, CSV)
SUPPORTED_CONTENT_TYPES = (CSV, JSON, NPY)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingOutcome:
    """What DescribeTrainingJob and the job's log would show."""

    exit_code: int
    log: str  # combined stdout+stderr of the script, in arrival order
    failure_reason: str | None  # None when exit_code == 0; one line, at most 1024 characters
    metrics: dict[str, float]  # FinalMetricDataList: last value of each metric definition


@dataclass(frozen=True)
class _Layout:
    """The ``/opt/ml``-like tree of one offline training job."""

    root: Path

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def config(self) -> Path:
        return self.input / "config"

    @property
    def data(self) -> Path:
        return self.input / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.output / "data"

    @property
    def output_intermediate(self) -> Path:
        return self.output / "intermediate"


def run_training(source: Path, entry_point: str, hyperparameters: dict[str, str], channels: dict[str, Path],
                 model_dir: Path, output_data_dir: Path, *, metric_definitions: Sequence[dict[str, str]] = (),
                 timeout_seconds: float = 3600, python: str = sys.executable,
                 job_name: str = "offline-training", framework: str = "sklearn") -> TrainingOutcome:
    """Run a script-mode training job: the toolkit's layout, environment and command line around
    the user's ``entry_point`` from ``source`` (a directory or a ``sourcedir.tar.gz``).

    ``hyperparameters`` are CreateTrainingJob's (string values, JSON-encoded by the SDK,
    ``sagemaker_*`` keys included); ``timeout_seconds`` plays MaxRuntimeInSeconds. Raises
    ``ValueError``/``TypeError`` for what the CreateTrainingJob API itself would reject."""
    _validate_request(entry_point, hyperparameters, channels)
    patterns = _metric_patterns(metric_definitions)
    decoded = decode_hyperparameters(hyperparameters)
    program = decoded.get("sagemaker_program")
    if program is not None and program != entry_point:
        raise ValueError(f"hyperparameter sagemaker_program is {program!r} but the entry point is {entry_point!r}")
    with tempfile.TemporaryDirectory(prefix="script-mode-") as scratch:
        layout = _Layout(Path(scratch))
        _lay_out(layout, source, hyperparameters, channels, Path(model_dir), Path(output_data_dir))
        refusal = _refusal(layout.code, entry_point)
        if refusal is not None:
            return TrainingOutcome(exit_code=refusal[0], log=refusal[1] + "\n", metrics={},
                                   failure_reason=_reason(refusal[1]))
        properties = _training_env(layout, decoded, entry_point, sorted(channels), job_name, framework)
        env = _process_env(properties, decoded, layout.code, job_name)
        command = _command(python, layout.code, entry_point, to_cmd_args(properties["hyperparameters"]))
        exit_code, lines, timed_out = _run(command, layout.code, env, timeout_seconds)
        return _outcome("script", exit_code, lines, timed_out, layout, timeout_seconds, patterns)


def _outcome(what: str, exit_code: int, lines: Sequence[tuple[str, str]], timed_out: bool, layout: _Layout,
             timeout_seconds: float, patterns: Mapping[str, re.Pattern[str]]) -> TrainingOutcome:
    """The job's outcome from its process: the log, the final metrics, and why it failed (the
    stopping condition, or the failure file / last lines of a non-zero exit)."""
    reason = None
    if timed_out:
        reason = _reason(f"the training {what} exceeded MaxRuntimeInSeconds ({timeout_seconds:g} s)")
    elif exit_code != 0:
        reason = _script_failure(layout.output / "failure", lines, exit_code)
    return TrainingOutcome(exit_code=exit_code, log="".join(line for _, line in lines), failure_reason=reason,
                           metrics=_final_metrics(lines, patterns))


def run_container_training(command: Sequence[str], hyperparameters: dict[str, str], channels: dict[str, Path],
                           model_dir: Path, output_data_dir: Path, *, metric_definitions: Sequence[dict[str, str]] = (),
                           timeout_seconds: float = 3600, job_name: str = "offline-training",
                           cwd: Path | None = None) -> TrainingOutcome:
    """A training job of the team's own image, its program run by a local ``command`` (the
    config's ``container.local.command``) with ``train`` appended, as SageMaker runs
    ``docker run <image> train`` ("How Amazon SageMaker AI Runs Your Training Image", SageMaker
    Developer Guide: https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-dockerfile.html).

    The same ``/opt/ml``-like tree as script mode (``_Layout``; no ``code/``): the request's
    hyperparameters in ``input/config/hyperparameters.json`` as the raw strings SageMaker writes
    (an image gets no command-line options and no JSON decoding), ``inputdataconfig.json``,
    ``resourceconfig.json``, ``input/data/<channel>/``, ``model/``, ``output/`` ("How Amazon
    SageMaker AI Provides Training Information":
    https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html).
    The command cannot see that tree at ``/opt/ml``, so its paths are also in the variables the
    training toolkit sets (``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``, ``SM_CHANNELS``, ``SM_HPS``,
    ``SM_INPUT_DIR``, ``SM_INPUT_CONFIG_DIR``, ``SM_OUTPUT_DIR``, ``SM_OUTPUT_DATA_DIR``, ...): the
    program reads them with the ``/opt/ml/...`` paths as defaults. Metrics, the failure file and
    MaxRuntimeInSeconds as in ``run_training``."""
    _validate_inputs(hyperparameters, channels)
    patterns = _metric_patterns(metric_definitions)
    with tempfile.TemporaryDirectory(prefix="container-") as scratch:
        layout = _Layout(Path(scratch))
        _lay_out(layout, None, hyperparameters, channels, Path(model_dir), Path(output_data_dir))
        env = _job_env(_container_env(layout, hyperparameters, sorted(channels), job_name), job_name)
        try:
            exit_code, lines, timed_out = _run([*command, "train"], cwd or layout.root, env, timeout_seconds)
        except OSError as error:  # the program itself cannot start: the container would not either
            reason = _reason(f"the local command {' '.join(command)!r} cannot start: {error.strerror or error}")
            return TrainingOutcome(exit_code=127, log=reason + "\n", failure_reason=reason, metrics={})
        return _outcome("program", exit_code, lines, timed_out, layout, timeout_seconds, patterns)


def _container_env(layout: _Layout, hyperparameters: Mapping[str, str], channels: list[str],
                   job_name: str) -> dict[str, Any]:
    """The toolkit's variables that say where things are (``Environment.to_env_vars``), for a
    program that is not run by the toolkit: hyperparameters as the raw strings of
    ``hyperparameters.json``, no entry point, module or framework parameters."""
    resources = _resource_config()
    toolkit: dict[str, Any] = {
        "model_dir": str(layout.model), "input_dir": str(layout.input), "input_config_dir": str(layout.config),
        "input_data_config": _input_data_config(dict.fromkeys(channels)), "output_dir": str(layout.output),
        "output_data_dir": str(layout.output_data), "output_intermediate_dir": str(layout.output_intermediate),
        "channels": channels, "hps": dict(hyperparameters), "hosts": [CURRENT_HOST], "current_host": CURRENT_HOST,
        "current_instance_type": "local", "current_instance_group": INSTANCE_GROUP, "resource_config": resources,
        "network_interface_name": "eth0", "num_cpus": os.cpu_count() or 1, "num_gpus": 0, "job_name": job_name,
    }
    toolkit.update({f"channel_{name}": str(layout.data / name) for name in channels})
    return toolkit


def decode_hyperparameters(hyperparameters: Mapping[str, str]) -> dict[str, Any]:
    """``environment.read_hyperparameters``: each value JSON-decoded, or kept as it is when it is
    not JSON (a hyperparameter set by hand to ``lbfgs`` rather than the SDK's ``"lbfgs"``)."""
    decoded = {}
    for key, value in hyperparameters.items():
        try:
            decoded[key] = json.loads(value)
        except (ValueError, TypeError):
            decoded[key] = value
    return decoded


def to_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``mapping.to_cmd_args``: sorted keys; ``--key`` (``-k`` for a one-character key); a dict
    value as ``k=v,k=v``; ``None`` as an empty string; anything else ``str()``-ed."""
    args = []
    for key in sorted(hyperparameters):
        name = str(key)
        value = hyperparameters[key]
        if hasattr(value, "items"):
            text = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        else:
            text = "" if value is None else str(value)
        args += [f"--{name}" if len(name) > 1 else f"-{name}", text]
    return args


def to_env_vars(mapping: Mapping[str, Any]) -> dict[str, str]:
    """``mapping.to_env_vars``: ``SM_`` + the upper-cased key; strings as they are, ``None`` as
    an empty string, anything else compact JSON with sorted keys."""

    def value(item: Any) -> str:
        if item is None:
            return ""
        if isinstance(item, str):
            return item
        return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    return {f"SM_{str(key).upper()}": value(item) for key, item in mapping.items()}


def _validate_request(entry_point: str, hyperparameters: Mapping[str, str], channels: Mapping[str, Path]) -> None:
    """What CreateTrainingJob refuses (``_validate_inputs``), and an entry point outside the code."""
    _validate_inputs(hyperparameters, channels)
    if not entry_point or Path(entry_point).is_absolute() or ".." in Path(entry_point).parts:
        raise ValueError(f"entry point {entry_point!r} must be a path relative to the source directory")


def _validate_inputs(hyperparameters: Mapping[str, str], channels: Mapping[str, Path]) -> None:
    """What CreateTrainingJob refuses: non-string hyperparameter values, bad channel names."""
    for key, value in hyperparameters.items():
        if not isinstance(value, str):
            raise TypeError(f"hyperparameter {key!r} must be a string (CreateTrainingJob takes strings), "
                            f"got {type(value).__name__}")
    for name in channels:
        if not _CHANNEL_NAME.match(name):
            raise ValueError(f"invalid channel name {name!r}: 1-64 of letters, digits, '.', '-' and '_'")


def _metric_patterns(metric_definitions: Sequence[dict[str, str]]) -> dict[str, re.Pattern[str]]:
    patterns = {}
    for definition in metric_definitions:
        pattern = re.compile(definition["Regex"])
        if pattern.groups < 1:
            raise ValueError(f"metric {definition['Name']!r}: the regex needs a capture group for the value")
        patterns[definition["Name"]] = pattern
    return patterns


def _final_metrics(lines: Sequence[tuple[str, str]], patterns: Mapping[str, re.Pattern[str]]) -> dict[str, float]:
    """SageMaker scans the algorithm's log for each metric regex; FinalMetricDataList holds the
    value of the last match (first capture group). Values that are not numbers are skipped."""
    metrics: dict[str, float] = {}
    for _, line in lines:
        for name, pattern in patterns.items():
            match = pattern.search(line)
            if match is None:
                continue
            try:
                metrics[name] = float(match.group(1))
            except (TypeError, ValueError):
                continue
    return metrics


def _lay_out(layout: _Layout, source: Path | None, hyperparameters: Mapping[str, str], channels: Mapping[str, Path],
             model_dir: Path, output_data_dir: Path) -> None:
    """The tree SageMaker mounts under ``/opt/ml`` before the container starts (``code/`` only
    for script mode: an image brings its own program)."""
    if source is not None:
        _extract_source(Path(source), layout.code)
    layout.config.mkdir(parents=True)
    layout.data.mkdir()
    layout.output.mkdir()
    layout.output_intermediate.mkdir()
    model_dir.mkdir(parents=True, exist_ok=True)
    output_data_dir.mkdir(parents=True, exist_ok=True)
    layout.model.symlink_to(model_dir.resolve(), target_is_directory=True)
    layout.output_data.symlink_to(output_data_dir.resolve(), target_is_directory=True)
    for name, directory in channels.items():
        (layout.data / name).symlink_to(Path(directory).resolve(), target_is_directory=True)
    _write_json(layout.config / "hyperparameters.json", dict(hyperparameters))
    _write_json(layout.config / "inputdataconfig.json", _input_data_config(channels))
    _write_json(layout.config / "resourceconfig.json", _resource_config())


def _write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content))


def _input_data_config(channels: Mapping[str, Path]) -> dict[str, dict[str, str]]:
    """``inputdataconfig.json`` for File-mode, fully replicated S3 channels."""
    return {name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
            for name in sorted(channels)}


def _resource_config() -> dict[str, Any]:
    """``resourceconfig.json`` of a one-instance job (the toolkit's local-mode shape)."""
    group = {"instance_group_name": INSTANCE_GROUP, "instance_type": "local", "hosts": [CURRENT_HOST]}
    return {"current_host": CURRENT_HOST, "current_instance_type": "local", "current_group_name": INSTANCE_GROUP,
            "hosts": [CURRENT_HOST], "instance_groups": [group], "network_interface_name": "eth0"}


def _extract_source(source: Path, target: Path) -> None:
    """``files.download_and_extract``: a code directory is copied, a ``sourcedir.tar.gz``
    extracted (tarfile's ``data`` filter refuses absolute paths, ``..`` and device files)."""
    if source.is_dir():
        shutil.copytree(source, target, symlinks=False, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return
    if not source.is_file() or not tarfile.is_tarfile(source):
        raise ValueError(f"source {source} is neither a directory nor a tar archive")
    target.mkdir(parents=True)
    with tarfile.open(source, mode="r:*") as archive:
        archive.extractall(target, filter="data")


def _refusal(code: Path, entry_point: str) -> tuple[int, str] | None:
    """A job that fails before the script starts: (exit code, one-line reason)."""
    if not entry_point.endswith(".py"):
        return 1, f"entry point {entry_point!r}: only Python entry points (.py) are emulated offline"
    if not (code / entry_point).is_file():
        # python exits 2 when it cannot open the script it is given
        return 2, f"entry point {entry_point!r} not found in the source code directory"
    missing = _missing_requirement(code / "requirements.txt")
    if missing is not None:
        return 1, missing
    return None


def _missing_requirement(requirements: Path) -> str | None:
    """The first line of ``requirements.txt`` the installed distributions do not satisfy, as a
    one-line reason; ``None`` when all are (or there is no such file). Offline runs never
    install: the toolkit's ``pip install -r requirements.txt`` becomes this check."""
    if not requirements.is_file():
        return None
    for raw in requirements.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        problem = _unsatisfied(line)
        if problem is not None:
            return f"requirements.txt: {problem} (offline runs never pip install)"
    return None


def _unsatisfied(line: str) -> str | None:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # without packaging, only the name is checked
        name = re.split(r"[\s\[<>=!~;@]", line, maxsplit=1)[0]
        return None if _installed_version(name) else f"package {name!r} is not installed"
    try:
        requirement = Requirement(line)
    except InvalidRequirement as error:
        return f"invalid requirement {line!r}: {error}"
    if requirement.marker is not None and not requirement.marker.evaluate():
        return None
    version = _installed_version(requirement.name)
    if version is None:
        return f"package {requirement.name!r} ({line}) is not installed"
    if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
        return f"package {requirement.name!r} {version} is installed but {line!r} is required"
    return None


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _training_env(layout: _Layout, decoded: Mapping[str, Any], entry_point: str, channels: list[str],
                  job_name: str, container: str = "sklearn") -> dict[str, Any]:
    """Every property of the toolkit's ``Environment`` (``dict(env)``, i.e. ``SM_TRAINING_ENV``)."""
    framework = {k: v for k, v in decoded.items() if k in _RESERVED or k.startswith("sagemaker_")}
    resources = _resource_config()
    return {
        "additional_framework_parameters": {k: v for k, v in framework.items() if k not in _RESERVED},
        "channel_input_dirs": {name: str(layout.data / name) for name in channels},
        "current_host": CURRENT_HOST, "current_instance_group": INSTANCE_GROUP,
        "current_instance_group_hosts": [CURRENT_HOST], "current_instance_type": "local",
        "distribution_hosts": [], "distribution_instance_groups": [], "framework_module": FRAMEWORK_MODULES[container],
        "hosts": [CURRENT_HOST],
        "hyperparameters": {k: v for k, v in decoded.items() if k not in framework},
        "input_config_dir": str(layout.config), "input_data_config": _input_data_config(dict.fromkeys(channels)),
        "input_dir": str(layout.input), "instance_groups": [INSTANCE_GROUP],
        "instance_groups_dict": {INSTANCE_GROUP: resources["instance_groups"][0]},
        "is_hetero": False, "is_master": True, "is_modelparallel_enabled": None,
        "is_smddpmprun_installed": False, "is_smddprun_installed": False, "job_name": job_name,
        "log_level": framework.get("sagemaker_container_log_level", _INFO), "master_hostname": CURRENT_HOST,
        "model_dir": str(layout.model),
        "module_dir": str(framework.get("sagemaker_submit_directory", layout.code)),
        "module_name": entry_point[:-3] if entry_point.endswith(".py") else entry_point,
        "network_interface_name": "eth0", "num_cpus": os.cpu_count() or 1, "num_gpus": 0, "num_neurons": 0,
        "output_data_dir": str(layout.output_data), "output_dir": str(layout.output),
        "output_intermediate_dir": str(layout.output_intermediate), "resource_config": resources,
        "topology": [], "user_entry_point": entry_point,
    }


def _process_env(properties: Mapping[str, Any], decoded: Mapping[str, Any], code: Path,
                 job_name: str) -> dict[str, str]:
    """The script's environment: this process's (SM_* dropped) plus ``Environment.to_env_vars``
    and the variables the platform and toolkit set (``TRAINING_JOB_NAME``, ``CURRENT_HOST``...)."""
    names = ("hosts", "network_interface_name", "user_entry_point", "resource_config", "input_data_config",
             "output_data_dir", "current_host", "current_instance_type", "current_instance_group",
             "current_instance_group_hosts", "instance_groups", "instance_groups_dict",
             "distribution_instance_groups", "is_hetero", "module_name", "log_level", "framework_module",
             "input_dir", "input_config_dir", "output_dir", "num_cpus", "num_gpus", "num_neurons", "model_dir",
             "module_dir", "output_intermediate_dir")
    toolkit = {name: properties[name] for name in names}
    toolkit.update(hps=properties["hyperparameters"], framework_params=properties["additional_framework_parameters"],
                   channels=sorted(properties["channel_input_dirs"]), training_env=dict(properties),
                   user_args=to_cmd_args(properties["hyperparameters"]))
    toolkit.update({f"channel_{name}": path for name, path in properties["channel_input_dirs"].items()})
    toolkit.update({f"hp_{key}": value for key, value in properties["hyperparameters"].items()})
    env = _job_env(toolkit, job_name)
    env.update(SAGEMAKER_JOB_NAME=str(decoded.get("sagemaker_job_name", "")),
               SAGEMAKER_REGION=str(decoded.get("sagemaker_region", "")),
               PYTHONPATH=os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH", "")])))
    return env


def _job_env(toolkit: Mapping[str, Any], job_name: str) -> dict[str, str]:
    """This process's environment (``SM_*`` dropped), ``toolkit`` as ``SM_*`` variables and what
    the platform sets in every training container (``TRAINING_JOB_NAME``, ``CURRENT_HOST``)."""
    env = {key: value for key, value in environ.snapshot().items() if not key.startswith("SM_")}
    env.update(to_env_vars(toolkit))
    env.update(TRAINING_JOB_NAME=job_name, CURRENT_HOST=CURRENT_HOST, PYTHONUNBUFFERED="1")
    return env


def _command(python: str, code: Path, entry_point: str, args: list[str]) -> list[str]:
    """``ProcessRunner._create_command``: a package (``setup.py`` present) runs as a module."""
    if (code / "setup.py").exists():
        return [python, "-m", entry_point[:-3].replace("/", ".")] + args
    return [python, entry_point] + args


def _run(command: list[str], cwd: Path, env: Mapping[str, str],
         timeout_seconds: float) -> tuple[int, list[tuple[str, str]], bool]:
    """Run the script in its own process group; returns (exit code, (stream, line) in arrival
    order, whether MaxRuntimeInSeconds stopped it). A signal death reads as 128 + signal, as
    the container reports it (137 for SIGKILL)."""
    process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    lines: list[tuple[str, str]] = []
    lock = threading.Lock()
    readers = [threading.Thread(target=_pump, args=(stream, name, lines, lock), daemon=True)
               for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop(process)
    for reader in readers:
        reader.join(timeout=_STOP_GRACE_SECONDS)
    code = process.returncode
    return (128 - code if code < 0 else code), lines, timed_out


def _pump(stream: Any, name: str, lines: list[tuple[str, str]], lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        text = raw.decode("utf-8", "replace")
        with lock:
            lines.append((name, text if text.endswith("\n") else text + "\n"))
    stream.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SageMaker's stop: SIGTERM to the container, SIGKILL after the grace period."""
    for sig, wait in ((signal.SIGTERM, _STOP_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _script_failure(failure_file: Path, lines: Sequence[tuple[str, str]], exit_code: int) -> str:
    """The failure file's text when the script wrote one, else its last non-empty stderr line."""
    if failure_file.is_file():
        text = failure_file.read_text(errors="replace").strip()
        if text:
            return _reason(text)
    stderr = [line.strip() for stream, line in lines if stream == "stderr" and line.strip()]
    if stderr:
        return _reason(stderr[-1])
    return _reason(f"ExecuteUserScriptError: the script exited with code {exit_code} and wrote nothing to stderr")


def _reason(text: str) -> str:
    """``AlgorithmError: <text>`` on one line, cut to the 1024 characters of FailureReason."""
    return ("AlgorithmError: " + " ".join(text.split()))[:_FAILURE_REASON_LIMIT]


# ---------------------------------------------------------------------------------------------
# The SDK's sourcedir.tar.gz
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------------------------


class UnsupportedFormatError(ValueError):
    """A content type the default handlers cannot decode (the container answers 415) or an
    ``Accept`` they cannot encode (406)."""

    def __init__(self, content_type: str, *, status_code: int) -> None:
        self.content_type = content_type
        self.status_code = status_code
        what = "request content type" if status_code == 415 else "Accept type"
        super().__init__(f"{status_code}: {what} {content_type!r} is not supported by the default handlers "
                         f"(supported: {', '.join(SUPPORTED_CONTENT_TYPES)}); implement "
                         f"{'input_fn' if status_code == 415 else 'output_fn'} to handle it")


class HandlerError(RuntimeError):
    """An exception raised by an inference handler, re-raised with the handler's name (the
    container wraps it in its ``ClientError`` and answers 500)."""


_HANDLER_NAMES = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")
_module_counter = itertools.count()


def framework_of(image: str) -> str:
    """The framework container an image URI names: ``xgboost``, ``pytorch`` (not emulated: not in
    ``CONTAINERS``) or ``sklearn``."""
    if "/sagemaker-xgboost:" in image:
        return "xgboost"
    return "pytorch" if "/pytorch-training:" in image or "/pytorch-inference:" in image else "sklearn"


class ScriptModel:
    """One model served by a framework container's inference handlers: the scikit-learn
    container's, or the XGBoost framework container's (``framework``), whose defaults differ."""

    def __init__(self, model_dir: Path, source: Path, entry_point: str, *, framework: str = "sklearn") -> None:
        """Import ``entry_point`` from ``source`` (a directory or ``sourcedir.tar.gz``) in-process,
        under a unique module name, with the code directory on ``sys.path`` while importing and
        loading; then call ``model_fn(model_dir)`` once, as each server worker does at start."""
        self.entry_point, self._defaults = entry_point, _DEFAULTS[framework]
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        code = Path(source)
        if not code.is_dir():
            self._scratch = tempfile.TemporaryDirectory(prefix="script-model-")
            code = Path(self._scratch.name) / "code"
            _extract_source(Path(source), code)
        self.code_dir = code
        with _on_sys_path(code):
            module = _import_user_module(code, entry_point)
            self._handlers = _user_handlers(module, entry_point, CONTAINERS[framework])
            self.model = self._call("model_fn", self._handlers["model_fn"], str(model_dir))

    def invoke(self, body: bytes, content_type: str = CSV, accept: str = CSV) -> tuple[bytes, str]:
        """One InvokeEndpoint request: ``transform_fn``, or ``input_fn`` → ``predict_fn`` →
        ``output_fn`` (the user's or the defaults). Returns (response body, content type)."""
        accept = JSON if not accept or accept == ANY else accept
        content: str | bytes = body.decode("utf-8") if content_type in _UTF8_TYPES else body
        handlers = self._handlers
        if "transform_fn" in handlers:
            result = self._call("transform_fn", handlers["transform_fn"], self.model, content, content_type, accept)
        else:
            defaults = self._defaults
            data = self._call("input_fn", handlers.get("input_fn", defaults["input_fn"]), content, content_type)
            prediction = self._call("predict_fn", handlers.get("predict_fn", defaults["predict_fn"]), data, self.model)
            result = self._call("output_fn", handlers.get("output_fn", defaults["output_fn"]), prediction, accept)
        response, response_type = result if isinstance(result, tuple) else (result, accept)
        return (response.encode("utf-8") if isinstance(response, str) else bytes(response)), response_type

    def _call(self, name: str, handler: Callable[..., Any], *args: Any) -> Any:
        try:
            return handler(*args)
        except UnsupportedFormatError:
            raise
        except Exception as error:
            owner = self.entry_point if name in self._handlers else "the container's default"
            raise HandlerError(f"{name} ({owner}) raised {type(error).__name__}: {error}") from error


@contextlib.contextmanager
def _on_sys_path(directory: Path) -> Iterator[None]:
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))


def _import_user_module(code: Path, entry_point: str) -> ModuleType:
    path = code / entry_point
    if not path.is_file():
        raise ValueError(f"entry point {entry_point!r} not found in {code}")
    stem = re.sub(r"\W", "_", Path(entry_point).stem)
    name = f"_script_model_{stem}_{next(_module_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pickles and dataclasses look classes up by module name
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module


def _user_handlers(module: ModuleType, entry_point: str, container: str = "scikit-learn") -> dict[str, Callable[..., Any]]:
    """The handlers the module defines, checked as ``serving._user_module_transformer`` does."""
    handlers = {name: getattr(module, name) for name in _HANDLER_NAMES if callable(getattr(module, name, None))}
    if "model_fn" not in handlers:
        raise ValueError(f"{entry_point} defines no model_fn: model_fn(model_dir) is required, the {container} "
                         "container has no default model loader")
    if "transform_fn" in handlers and handlers.keys() & {"input_fn", "predict_fn", "output_fn"}:
        raise ValueError(f"{entry_point}: transform_fn cannot be used with input_fn, predict_fn and/or output_fn")
    return handlers


def _default_input_fn(input_data: str | bytes, content_type: str) -> np.ndarray:
    """The container's ``default_input_fn``: CSV (one row per line) and JSON to a float32 array,
    NPY loaded as saved."""
    if content_type == CSV:
        text = input_data if isinstance(input_data, str) else input_data.decode("utf-8")
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
        if len({len(row) for row in rows}) > 1:
            raise ValueError("CSV rows have different numbers of columns")
        return np.array(rows, dtype=np.float64).reshape(len(rows), -1).astype(np.float32)
    if content_type == JSON:
        return np.array(json.loads(input_data)).astype(np.float32)
    if content_type == NPY:
        raw = input_data if isinstance(input_data, bytes) else input_data.encode("latin1")
        return np.load(io.BytesIO(raw), allow_pickle=False)
    raise UnsupportedFormatError(content_type, status_code=415)


def _default_predict_fn(input_data: Any, model: Any) -> Any:
    """The scikit-learn container's ``default_predict_fn``: ``model.predict``."""
    return model.predict(input_data)


def _default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """The container's ``default_output_fn``: the prediction encoded to ``accept``. CSV: one row per
    line, values comma-separated, a 1-D prediction one value per line."""
    if accept == CSV:
        array = np.asarray(prediction)
        rows = array.reshape(-1, 1) if array.ndim <= 1 else array
        stream = io.StringIO()
        csv.writer(stream, lineterminator="\n").writerows(rows.tolist())
        return stream.getvalue().encode("utf-8"), CSV
    if accept == JSON:
        return json.dumps(prediction, default=_jsonable).encode("utf-8"), JSON
    if accept == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction))
        return buffer.getvalue(), NPY
    raise UnsupportedFormatError(accept, status_code=406)


def _xgboost_input_fn(input_data: str | bytes, content_type: str) -> Any:
    """The XGBoost framework container's ``default_input_fn`` (``encoder.decode``): CSV rows to a
    ``DMatrix`` of floats (libsvm and RecordIO-protobuf are not emulated)."""
    import xgboost

    if content_type != CSV:
        raise UnsupportedFormatError(content_type, status_code=415)
    return xgboost.DMatrix(_default_input_fn(input_data, CSV))


def _xgboost_predict_fn(input_data: Any, model: Any) -> Any:
    """The XGBoost framework container's ``default_predict_fn``: ``model.predict(data,
    validate_features=False)``."""
    return model.predict(input_data, validate_features=False)


# The containers' default handlers (``model_fn`` has none: both require the script's). Sources:
# sagemaker-scikit-learn-container ``serving.py``; sagemaker-xgboost-container ``handler_service.py``
# (DefaultXGBoostUserModuleInferenceHandler), whose default_output_fn is the same encoder.
_DEFAULTS: dict[str, dict[str, Callable[..., Any]]] = {
    "sklearn": {"input_fn": _default_input_fn, "predict_fn": _default_predict_fn, "output_fn": _default_output_fn},
    "xgboost": {"input_fn": _xgboost_input_fn, "predict_fn": _xgboost_predict_fn, "output_fn": _default_output_fn},
}


def _jsonable(item: Any) -> Any:
    """``encoders.array_to_json``: numpy arrays and scalars through ``tolist``."""
    if hasattr(item, "tolist"):
        return item.tolist()
    raise TypeError(f"{type(item).__name__} is not JSON serializable")
