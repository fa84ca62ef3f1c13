"""Synthesize the app in-process exactly as the CDK CLI would, and read the result."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def cdk_json_context() -> dict[str, Any]:
    """The feature flags and settings the CLI would pass from cdk.json."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


# What a synthesized assembly does not depend on: the tests (but the conftest that writes the
# test stages' configs), the tools (but this module, which runs the synth) and scripts (the app
# and mlops/ import neither: tests/test_code_shape.py checks it), and the prose.
NOT_SYNTH_INPUTS = ("tests/", "docs/", "tools/", "scripts/")
SYNTH_INPUTS_ALSO = ("tests/conftest.py", "tools/assembly.py")


def sources_digest(extra: str = "") -> str | None:
    """A digest of everything a synth of this checkout reads: the content of every file git
    tracks or would track (working-tree content, so uncommitted edits count) but the tests and
    the prose, the interpreter, and the CDK_/AWS_/JSII_ environment. ``None`` outside a git
    checkout: nothing is cached then."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    digest = hashlib.sha256(f"{platform.python_version()}\0{extra}\0".encode())
    for name, value in sorted(os.environ.items()):
        if name.startswith(("CDK_", "AWS_", "JSII_")):
            digest.update(f"{name}={value}\0".encode())
    for name in sorted(set(listed) - {""}):
        if name.endswith(".md") or (name.startswith(NOT_SYNTH_INPUTS) and name not in SYNTH_INPUTS_ALSO):
            continue
        path = REPO_ROOT / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<deleted>")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class StackTemplate:
    stage: str
    stack_id: str  # construct id inside the stage, e.g. "Data"
    stack_name: str
    template: dict[str, Any]
    template_path: Path
    termination_protection: bool

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.stack_id}"


def synth(stage_selection: str, outdir: Path, *, nag: bool = True, config_dir: Path | None = None) -> list[StackTemplate]:
    """Build and synthesize the selected stages into ``outdir`` and return their stacks."""
    import aws_cdk as cdk

    from mlops.config import CONFIG_DIR, load_stages
    from mlops.nag import register_checks
    from mlops.stacks.stage import build

    configs = load_stages(stage_selection, config_dir or CONFIG_DIR)
    app = cdk.App(outdir=str(outdir), context=cdk_json_context())
    register_checks(app, nag=nag)
    stages = build(app, configs)
    app.synth()
    return read_stacks(outdir, [stage.stage_name for stage in stages])


def read_stacks(outdir: Path, stage_names: list[str] | None = None) -> list[StackTemplate]:
    """Every stack template in a cloud assembly directory (nested stage assemblies included)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks: list[StackTemplate] = []
    for artifact_id, artifact in manifest["artifacts"].items():
        if artifact["type"] != "cdk:cloud-assembly":
            continue
        stage = artifact["properties"]["displayName"]
        if stage_names is not None and stage not in stage_names:
            continue
        nested = outdir / artifact["properties"]["directoryName"]
        nested_manifest = json.loads((nested / "manifest.json").read_text())
        for _, stack in nested_manifest["artifacts"].items():
            if stack["type"] != "aws:cloudformation:stack":
                continue
            props = stack["properties"]
            path = nested / props["templateFile"]
            stacks.append(
                StackTemplate(
                    stage=stage,
                    stack_id=stack["displayName"].split("/", 1)[1],
                    stack_name=props.get("stackName", ""),
                    template=json.loads(path.read_text()),
                    template_path=path,
                    termination_protection=bool(props.get("terminationProtection", False)),
                )
            )
    return stacks


@dataclass(frozen=True)
class Acknowledgement:
    construct_path: str
    finding: str  # e.g. "AwsSolutions-IAM5[Action::s3:List*]"
    reason: str


def acknowledgements(outdir: Path) -> list[Acknowledgement]:
    """Every cdk-nag acknowledgement recorded in the assembly's stack metadata."""
    found: list[Acknowledgement] = []
    for metadata_file in sorted(outdir.glob("assembly-*/*.metadata.json")):
        for path, entries in json.loads(metadata_file.read_text()).items():
            for entry in entries:
                if entry.get("type") != "aws:cdk:acknowledged-rules":
                    continue
                for finding, reason in entry["data"].items():
                    found.append(Acknowledgement(path, finding.split("::", 1)[1], reason))
    return found


def validation_violations(outdir: Path) -> list[dict[str, Any]]:
    """Violations in cdk.out/validation-report.json (empty when every finding is acknowledged)."""
    report = outdir / "validation-report.json"
    if not report.exists():
        return []
    return [
        violation
        for plugin in json.loads(report.read_text()).get("pluginReports", [])
        for violation in plugin.get("violations", [])
    ]
