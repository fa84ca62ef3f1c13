#!/usr/bin/env python3
"""`make demo`: run the dev training pipeline end to end, offline, on the bundled sample data.

Synthesizes the dev stage (cdk-nag included), then executes the synthesized state machine
in moto through tools/offline: the repo's handlers, a real XGBoost model trained on the
breast-cancer sample, the real data phase (quality gate, ETL split on local Spark, feature
ingestion) and evaluation script. No AWS account, no network.

    python scripts/demo.py [--stage dev] [--input '{"hyperparameters": {"max_depth": 3}}']
    python scripts/demo.py --example regression   # config/examples/regression.yaml (docs/examples.md)
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO / "config" / "examples"
sys.path.insert(0, str(REPO))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the handlers' JSON logs would drown the progress


def _progress(stage, execution: str, *, out=None):
    """Print each state in the order it happens (tools/offline/progress.py); the data run's states
    indented under "Prepare data"; on a stage with manual approval, approve the run's new version
    when the run waits for it, as a reviewer would in the registry."""
    import boto3

    if out is None:
        # this stream, bound now: an in-process job on the emulator's thread swaps sys.stdout for
        # its log while it runs, and lines printed meanwhile would end up in that log
        out = functools.partial(print, file=sys.stdout, flush=True)

    from tools.offline.progress import View

    sfn = boto3.client("stepfunctions")
    states = stage.definition["States"]
    opens = {name: "nested" if ":states:::states:startExecution" in str(state.get("Resource", "")) else "waits"
             for name, state in states.items()
             if ":states:::states:startExecution" in str(state.get("Resource", ""))
             or str(state.get("Resource", "")).endswith(".waitForTaskToken")}
    view, approved = View(), not stage.approval_rules

    def history(arn: str) -> list[dict]:
        return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]

    child: list[str] = []

    def nested() -> list[dict] | None:
        """The history of the data run this run started (Step Functions passes the parent's id
        in a nested execution's input)."""
        if not child:
            for summary in sfn.list_executions(stateMachineArn=stage.state_machine_arns["data"])["executions"]:
                started_by = json.loads(sfn.describe_execution(executionArn=summary["executionArn"])["input"])
                if isinstance(started_by, dict) and started_by.get("AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID") == execution:
                    child.append(summary["executionArn"])
        return history(child[0]) if child else None

    while True:
        status = sfn.describe_execution(executionArn=execution)["status"]
        for line in view.advance(history(execution), opens=opens.get, nested_history=nested):
            out(line)
        if not approved and view.waiting_in == "Wait for approval" and _waiting_for_approval(stage):
            out(f"  … approving {_approve(stage)} in the registry")
            approved = True
        if status != "RUNNING":
            return stage.wait(execution)
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--example", default=None,
                        help="run config/examples/<name>.yaml (its stage is its file name) instead of a config/ stage")
    parser.add_argument("--input", default="{}", help="execution input (JSON), as in the Step Functions console")
    args = parser.parse_args(argv)
    config_dir = None
    if args.example:
        config_dir = EXAMPLES_DIR
        examples = sorted(path.stem for path in EXAMPLES_DIR.glob("*.yaml"))
        if args.example not in examples:
            parser.error(f"unknown example {args.example!r}; allowed: {', '.join(examples)}")
        args.stage = args.example
    logging.disable(logging.WARNING)  # libraries' notices (Spark, XGBoost) would drown the progress; failures are reported below
    warnings.simplefilter("ignore")
    started = time.monotonic()

    from mlops.config import CONFIG_DIR, load_stage_config
    from tools.assembly import synth
    from tools.offline.runner import OfflineStage, local_containers_of

    with tempfile.TemporaryDirectory(prefix="demo-cdk.out-") as outdir:
        shown = f"example {args.example!r} (config/examples/{args.example}.yaml)" if args.example else f"stage {args.stage!r}"
        print(f"Synthesizing {shown} (cdk-nag on) ...", flush=True)
        synth(args.stage, Path(outdir), config_dir=config_dir)
        print(f"  done in {time.monotonic() - started:.1f} s\n")
        # an image of the team's runs here through its container.local.command (never deployed)
        local = local_containers_of(load_stage_config(args.stage, config_dir or CONFIG_DIR))
        with OfflineStage(Path(outdir), args.stage, local_containers=local) as stage:
            if any(rule for rule in stage.approval_rules):
                print("This stage waits for manual approval; the demo approves the new version when asked.\n")
            print(f"Running {stage.state_machine_arn.split(':')[-1]} offline on the bundled sample data:")
            execution = stage.start(json.loads(args.input))
            result = _progress(stage, execution)
            _report(stage, result)
    print(f"\nTotal {time.monotonic() - started:.1f} s")
    return 0 if result.status == "SUCCEEDED" else 1


def _waiting_for_approval(stage) -> bool:
    """Has the approval handler stored the run's task token (the run waits for a decision)?"""
    return any(c.principal == stage.functions["approval"] and c.action == "s3:PutObject" for c in stage.hooks.calls)


def _approve(stage) -> str:
    """Approve the newest version in the registry; returns its name and version."""
    import boto3

    group = next(k for k in stage.definition["States"]["Register model version"]["Parameters"].items()
                 if k[0] == "ModelPackageGroupName")[1]
    package = boto3.client("sagemaker").list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")["ModelPackageSummaryList"][0]
    stage.decide(package["ModelPackageArn"], "Approved")
    return package["ModelPackageArn"].split("/", 1)[1]


def _report(stage, result) -> None:
    import boto3

    # the cause starts with the error's name and the failing state (the failure ending's description)
    print(f"\nExecution {result.status}" + (f": {result.cause}" if result.error else ""))
    output = result.output or {}
    if output.get("data"):
        records = sum(len(group) for group in stage.feature_store.records.values())
        print(f"\nData phase: {output['data']['rules_checked']} data-quality rules passed; "
              f"{records} records ingested into {len(stage.feature_store.records)} feature group(s)")
    if output.get("selection"):  # candidates trained in parallel: how each did on the validation split
        print(f"Candidates: {output['selection']['summary']}")
    training = output.get("training")
    if training:
        print(f"Model: {_what_trained(training['job_name'])}, trained by {training['job_name']}")
    gate = output.get("gate")
    if gate:
        print("\nEvaluation on the held-out test split:")
        for name, value in sorted(gate["candidate"].items()):
            print(f"  {name:<22} {value:.4f}")
        print(f"\n{gate['summary']}")
    registration = output.get("registration")
    if registration:
        package = boto3.client("sagemaker").describe_model_package(ModelPackageName=registration["model_package_arn"])
        print(f"\nRegistered model version: {package['ModelPackageArn']} ({package['ModelApprovalStatus']})")
    run = output.get("run", {})
    serving = result.output.get("deploy", {}).get("endpoint_name") if result.status == "SUCCEEDED" else None
    if serving and run.get("deployment_mode") != "async":
        endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName=serving)
        print(f"Endpoint: {serving} {endpoint['EndpointStatus']} on config {endpoint['EndpointConfigName']}")
        _invoke(stage, serving, run["s3"]["test"], problem_type=run.get("problem_type", "binary_classification"))
    for message in stage.messages():
        print(f"Notification: {message[:160]}")


def _what_trained(job_name: str) -> str:
    """The training job's image, and its script where it ran one (script mode)."""
    import boto3

    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    image = job["AlgorithmSpecification"]["TrainingImage"].rsplit("/", 1)[-1]
    program = job.get("HyperParameters", {}).get("sagemaker_program")
    if program:
        return f"your script {json.loads(program)} on {image}"
    from tools.offline import jobs

    command = jobs.LOCAL_CONTAINERS.get(job["AlgorithmSpecification"]["TrainingImage"])
    if command:  # the team's own image, run here by its container.local.command
        return f"your image {image}, run by its local command {' '.join(Path(part).name for part in command)}"
    return f"built-in algorithm {image}"


def _invoke(stage, endpoint: str, test_split: str, *, problem_type: str) -> None:
    """A client's first request: three rows of the test split, features only, as text/csv; per
    row back a score (binary classification), the class probabilities (multiclass) or the
    prediction itself (regression)."""
    import boto3

    bucket, prefix = test_split.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3")
    key = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"][0]["Key"]
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    rows = list(csv.reader(io.StringIO(text)))[:3]  # as the client has them: numbers, and text categories
    answers = stage.invoke(endpoint, [row[1:] for row in rows])
    if problem_type == "multiclass_classification":
        what = "classes " + ", ".join(
            f"{max(range(len(p)), key=p.__getitem__)} (p={max(p):.3f})" for p in answers)
    elif problem_type == "regression":
        what = "predictions " + ", ".join(f"{answer:.1f}" for answer in answers)
    else:
        what = "scores " + ", ".join(f"{answer:.3f}" for answer in answers)
    print(f"Invoked with 3 test rows (labels {', '.join(row[0] for row in rows)}): {what} "
          "(request and response captured for drift monitoring)")


if __name__ == "__main__":
    sys.exit(main())
