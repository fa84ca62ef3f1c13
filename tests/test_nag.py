"""cdk-nag gate: the AwsSolutions pack runs on every stage, nothing is left
unacknowledged, and every acknowledgement is granular and specific."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from mlops.nag import acknowledge, register_checks
from tools.assembly import acknowledgements, validation_violations


def test_no_unacknowledged_findings(cloud_assembly_dir: Path, stacks) -> None:
    # The session fixture's synth would already have raised; the report confirms it.
    assert {stack.split("/")[0] for stack in stacks} == {"dev", "prod", "mm", "pinned"}
    assert validation_violations(cloud_assembly_dir) == []


def test_acknowledgements_hold_with_a_pinned_account_and_region(cloud_assembly_dir: Path, stacks) -> None:
    """The pinned stage is prod with `environment` set, as real deployments have it: its stacks
    carry the concrete environment, its ARNs the concrete partition, region and account (which
    is how cdk-nag prints them), and it synthesizes with the same acknowledgements as prod."""
    manifest = json.loads((cloud_assembly_dir / "assembly-pinned" / "manifest.json").read_text())
    environments = {artifact["environment"] for artifact in manifest["artifacts"].values()
                    if artifact["type"] == "aws:cloudformation:stack"}
    assert environments == {"aws://123456789012/eu-west-1"}
    assert "arn:aws:logs:eu-west-1:123456789012:log-group:/aws-glue/*" in json.dumps(stacks["pinned/Pipeline"].template)
    acks = acknowledgements(cloud_assembly_dir)
    pinned = sorted(ack.finding for ack in acks if ack.construct_path.startswith("/pinned/"))
    prod = sorted(ack.finding for ack in acks if ack.construct_path.startswith("/prod/"))
    # the same as prod's, each in its concrete form (plus the batch-scoring prefix prod does not configure)
    concrete = {finding.replace("arn:aws:", "arn:<AWS::Partition>:").replace(":eu-west-1:", ":<AWS::Region>:")
                .replace(":123456789012:", ":<AWS::AccountId>:").replace("-123456789012-eu-west-1", "-<AWS::AccountId>-<AWS::Region>")
                .replace("mlops-demo-pinned", "mlops-demo-prod").replace("mlops_demo_pinned", "mlops_demo_prod")
                for finding in pinned}
    assert set(prod) <= concrete, set(prod) - concrete
    assert any("arn:aws:logs:eu-west-1:123456789012:" in finding for finding in pinned)
    assert not any("<AWS::Region>" in finding or "<AWS::AccountId>" in finding for finding in pinned)


def test_acknowledgements_are_specific(cloud_assembly_dir: Path) -> None:
    acks = acknowledgements(cloud_assembly_dir)
    assert acks, "expected the known acknowledgements (BucketDeployment handler, access-log bucket)"
    for ack in acks:
        assert len(ack.reason) >= 60, f"{ack.construct_path} {ack.finding}: reason too short: {ack.reason!r}"
        if ack.finding.startswith(("AwsSolutions-IAM4", "AwsSolutions-IAM5")):
            assert "[" in ack.finding, f"{ack.construct_path}: IAM acknowledgements must name the policy/action/resource"
    # One reason per finding: a copy-pasted reason across different findings is not specific.
    per_stage = [ack for ack in acks if ack.construct_path.startswith("/dev/")]
    duplicated = [reason for reason, count in Counter(ack.reason for ack in per_stage).items() if count > 1]
    assert duplicated == []


def test_acknowledgements_are_the_reviewed_set(cloud_assembly_dir: Path) -> None:
    """A new acknowledgement must be reviewed: it changes this list."""
    findings = sorted({ack.finding.split("[", 1)[0] for ack in acknowledgements(cloud_assembly_dir)})
    assert findings == ["AwsSolutions-IAM4", "AwsSolutions-IAM5", "AwsSolutions-L1", "AwsSolutions-S1", "AwsSolutions-SQS3"]


def _synth(tmp_path: Path, build) -> None:
    app = cdk.App(outdir=str(tmp_path))
    build(cdk.Stack(app, "Canary"))
    register_checks(app)
    app.synth()


def test_canary_non_compliant_stack_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _synth(tmp_path, lambda stack: s3.Bucket(stack, "PlainBucket"))
    rules = {violation["ruleName"] for violation in validation_violations(tmp_path)}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_canary_acknowledgement_is_narrow(tmp_path: Path) -> None:
    """Acknowledging one rule on one construct leaves the other findings live."""

    def build(stack: cdk.Stack) -> None:
        topic = sns.Topic(stack, "Topic")
        acknowledge(topic, "AwsSolutions-SNS2", "canary: this topic is deliberately unencrypted for the test")

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _synth(tmp_path, build)
    rules = {violation["ruleName"] for violation in validation_violations(tmp_path)}
    assert "AwsSolutions-SNS3" in rules and "AwsSolutions-SNS2" not in rules


def test_cloudformation_validation_errors_fail_synth(tmp_path: Path) -> None:
    """The CDK's own CloudFormation validation, registered explicitly by ``register_checks``,
    still fails synth on an invalid template under cdk.json's context (which turns its
    errors from warnings into failures), and names the resource."""
    from tools.assembly import cdk_json_context

    app = cdk.App(outdir=str(tmp_path), context=cdk_json_context())
    register_checks(app, nag=False)
    stack = cdk.Stack(app, "Invalid")
    cdk.CfnResource(stack, "Topic", type="AWS::SNS::Topic", properties={"FifoTopic": "sometimes"})
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    (violation,) = [v for v in validation_violations(tmp_path) if v.get("severity") == "error"]
    assert violation["description"] == "FifoTopic: 'sometimes' is not of type 'boolean'"
    assert [c["constructPath"] for c in violation["violatingConstructs"]] == ["Invalid/Topic"]
