"""app.py and the pinned CDK CLI, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CLI = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def _run_app(tmp_path: Path, context: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "cdk.out")}
    return subprocess.run([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_unknown_stage_stops_before_synth(tmp_path: Path) -> None:
    result = _run_app(tmp_path, {"stage": "qa"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Configuration error: unknown stage 'qa': allowed stages are dev, prod "
        "(one YAML file per stage in config/), or 'all'"
    ]
    assert not (tmp_path / "cdk.out").exists()


def test_bad_config_file_stops_before_synth(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config_dir)
    dev = config_dir / "dev.yaml"
    dev.write_text(dev.read_text().replace("instance_type: ml.m5.xlarge", "instance_type: m5.xlarge"))
    result = _run_app(tmp_path, {"stage": "dev", "config_dir": str(config_dir)})
    assert result.returncode == 1
    assert "dev.yaml: invalid configuration: training.instance_type: must be a SageMaker instance type" in result.stderr
    assert not (tmp_path / "cdk.out").exists()


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    if not CLI.exists():
        pytest.fail("node_modules/.bin/cdk missing: run `make test` (it installs the pinned CLI)")
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "CDK_DISABLE_CLI_TELEMETRY": "true"}


def test_pinned_cli_is_2x_and_reads_the_assembly(cloud_assembly_dir: Path, stacks, cli_env: dict[str, str]) -> None:
    """The pinned CLI lists the stacks of the tests' assembly (``--app`` given a cloud assembly
    directory reads it as synthesized: the app's own run through the CLI is `make synth`'s)."""
    version = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, env=cli_env, check=True)
    assert version.stdout.startswith("2.")
    listed = subprocess.run(
        [str(CLI), "--no-notices", "ls", "--app", str(cloud_assembly_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, env=cli_env, timeout=300,
    )
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.strip().splitlines()) == sorted(
        f"{key} ({stack.stack_name})" for key, stack in stacks.items())
