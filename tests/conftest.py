"""Shared fixtures. The whole app (every stage) is synthesized once per session:
jsii start-up dominates synth time, so tests read the one cloud assembly."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tools.assembly import StackTemplate, synth  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need no synthesized assembly first, then the ones that do (each group in its
    own order). pytest-xdist's worksteal hands each worker a contiguous share of this list: one
    worker starts on the assembly tests and synthesizes it, the other works through tests that
    need none instead of waiting on the assembly's lock, and steals once its share is done."""
    items.sort(key=lambda item: "cloud_assembly_dir" in getattr(item, "fixturenames", ()))


# A third stage the tests synthesize next to dev and prod: dev with the ``model-monitor``
# backend and ground truth, so every gate (cdk-nag, cfn-lint, ASL, API shapes, tags) covers it.
MODEL_MONITOR_STAGE = "mm"


def model_monitor_config(dev: dict) -> dict:
    variant = {**dev, "stage": MODEL_MONITOR_STAGE}
    variant["monitoring"] = {**dev["monitoring"], "backend": "model-monitor",
                             "ground_truth_prefix": "monitoring/ground-truth/",
                             "quality_thresholds": [{"metric": "f1", "direction": ">=", "value": 0.9}],
                             "model_monitor": {"schedule": "hourly", "drift_threshold": 0.15, "max_runtime_minutes": 30}}
    return variant


# And prod with a pinned account and region, as real deployments set `environment`: cdk-nag
# prints resolved ARNs for such a stack, so every acknowledgement must hold both ways.
PINNED_STAGE = "pinned"
PINNED_ENVIRONMENT = {"account": "123456789012", "region": "eu-west-1"}


def pinned_config(prod: dict) -> dict:
    """Also scores a prefix of the curated zone in batch, so the monitoring of batch output is
    synthesized (and run offline) somewhere."""
    return {**prod, "stage": PINNED_STAGE, "environment": dict(PINNED_ENVIRONMENT),
            "deployment": {**prod["deployment"], "batch_input_prefix": BATCH_INPUT_PREFIX}}


BATCH_INPUT_PREFIX = "batch/input/"

# And the examples (config/examples/<stage>.yaml, each its own stage), so the gates cover a
# regression stage, a multiclass stage and a declared dataset with categorical and PII columns,
# and their scenarios run on the shared assembly.
REGRESSION_EXAMPLE = "regression"
MULTICLASS_EXAMPLE = "multiclass"
CHURN_EXAMPLE = "churn"
EXAMPLES = (REGRESSION_EXAMPLE, MULTICLASS_EXAMPLE, CHURN_EXAMPLE)


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config/ plus the model-monitor stage, the pinned stage and the examples."""
    import yaml

    directory = tmp_path_factory.mktemp("config")
    for path in (REPO_ROOT / "config").glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    dev = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    (directory / f"{MODEL_MONITOR_STAGE}.yaml").write_text(yaml.safe_dump(model_monitor_config(dev)))
    prod = yaml.safe_load((REPO_ROOT / "config" / "prod.yaml").read_text())
    (directory / f"{PINNED_STAGE}.yaml").write_text(yaml.safe_dump(pinned_config(prod)))
    for example in EXAMPLES:
        shutil.copy(REPO_ROOT / "config" / "examples" / f"{example}.yaml", directory)
    return directory


@pytest.fixture(scope="session")
def cloud_assembly_dir(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config, config_dir: Path,
                       worker_id: str) -> Path:
    """Every stage synthesized once (cdk-nag on: any unacknowledged finding fails the synth)."""
    configs = b"".join(path.name.encode() + path.read_bytes() for path in sorted(config_dir.glob("*.yaml")))
    return shared_assembly(tmp_path_factory, pytestconfig, worker_id, "cdk.out",
                           lambda outdir: synth("all", outdir, config_dir=config_dir), inputs=configs)


def shared_assembly(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config, worker_id: str, name: str,
                    build: Callable[[Path], object], *, inputs: bytes = b"") -> Path:
    """A cloud assembly ``build`` synthesizes into the directory it is given, once.

    Under pytest-xdist the first worker to get here synthesizes while the others wait on a file
    lock, then all read that one assembly (pytest-xdist's documented pattern for session data).
    It is kept in pytest's cache (``.pytest_cache/d/<name>``) under a digest of everything the
    synth reads: ``tools.assembly.sources_digest`` (the code, the configs, the pins, this file)
    and ``inputs`` (what the caller derives the configs from). A session whose sources did not
    change since the last synth reads that assembly; any edit synthesizes anew, and only the
    newest assembly of each name is kept. Without pytest's cache (``-p no:cacheprovider``) or
    outside a git checkout, every session synthesizes its own. Tests only read the assembly."""
    from filelock import FileLock

    from tools.assembly import sources_digest

    cache = getattr(pytestconfig, "cache", None)
    digest = sources_digest(extra=hashlib.sha256(inputs).hexdigest()) if cache is not None else None
    if digest is not None:
        shared = cache.mkdir(name)
    else:
        shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    key = digest or "session"
    outdir, done = shared / f"{name}-{key}", shared / f"{name}-{key}.complete"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():  # a worker whose synth failed leaves no marker: the next one tries and fails too
            for old in shared.glob(f"{name}-*"):  # older assemblies are stale; a half-written one too
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            build(outdir)
            done.touch()
    return outdir


@pytest.fixture(scope="session")
def stacks(cloud_assembly_dir: Path) -> dict[str, StackTemplate]:
    """``"<stage>/<StackId>"`` -> synthesized stack, for every stage in config/."""
    from tools.assembly import read_stacks

    return {stack.key: stack for stack in read_stacks(cloud_assembly_dir)}


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


@dataclass
class FakeLambdaContext:
    """The LambdaContext attributes Powertools' inject_lambda_context reads."""

    function_name: str = "handler"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:handler"
    aws_request_id: str = "req-1"


def load_lambda(name: str):
    """Import lambda/<name>/index.py (``lambda`` is a keyword, so not as a package)."""
    import importlib.util
    import sys

    module_name = f"lambda_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO_ROOT / "lambda" / name / "index.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region for moto; nothing here can reach AWS."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
