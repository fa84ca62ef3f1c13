"""cdk-nag gate: the AwsSolutions, NIST 800-53 rev 5, HIPAA Security and PCI DSS 3.2.1 packs
run on every stage, nothing is left unacknowledged, and every acknowledgement is granular and
specific."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from mlops.nag import COMPLIANCE_PACKS, acknowledge, acknowledge_packs, register_checks
from tools.assembly import acknowledgements, validation_violations


def test_no_unacknowledged_findings(cloud_assembly_dir: Path, stacks) -> None:
    # The session fixture's synth would already have raised; the report confirms it.
    assert {stack.split("/")[0] for stack in stacks} == {"dev", "prod", "mm", "pinned", "regression", "multiclass",
                                                               "churn"}
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
    # One reason per finding: a copy-pasted reason across different findings is not specific. The
    # compliance packs report one finding under one id each (NIST.800.53.R5-X, HIPAA.Security-X,
    # PCI.DSS.321-X): that is one finding on one construct, with one reason.
    per_stage = [ack for ack in acks if ack.construct_path.startswith("/dev/")]
    findings_per_reason: dict[str, set[tuple[str, str]]] = {}
    for ack in per_stage:
        findings_per_reason.setdefault(ack.reason, set()).add((ack.construct_path, _unprefixed(ack.finding)))
    duplicated = [reason for reason, findings in findings_per_reason.items() if len(findings) > 1]
    assert duplicated == []


def _unprefixed(finding: str) -> str:
    """``NIST.800.53.R5-LambdaDLQ`` -> ``LambdaDLQ`` (AwsSolutions ids stay as they are)."""
    for pack in COMPLIANCE_PACKS:
        if finding.startswith(f"{pack}-"):
            return finding.removeprefix(f"{pack}-")
    return finding


def test_compliance_acknowledgements_cover_every_pack_with_the_rule(cloud_assembly_dir: Path) -> None:
    """Where one pack's finding is acknowledged, so is every other pack's with that rule, with
    the same reason: the packs are acknowledged together, never one of them by accident."""
    per_finding: dict[tuple[str, str], dict[str, str]] = {}
    for ack in acknowledgements(cloud_assembly_dir):
        if not ack.finding.startswith("AwsSolutions"):
            pack = ack.finding.split("-", 1)[0]
            per_finding.setdefault((ack.construct_path, _unprefixed(ack.finding)), {})[pack] = ack.reason
    assert per_finding
    nist_hipaa_only = {"LambdaConcurrency", "LambdaDLQ", "CloudWatchAlarmAction"}  # not in PCI DSS 3.2.1
    for (path, rule), reasons in per_finding.items():
        expected = {"NIST.800.53.R5", "HIPAA.Security"} if rule in nist_hipaa_only else set(COMPLIANCE_PACKS)
        assert set(reasons) == expected, (path, rule)
        assert len(set(reasons.values())) == 1, (path, rule)


def test_acknowledgements_are_the_reviewed_set(cloud_assembly_dir: Path) -> None:
    """A new acknowledgement must be reviewed: it changes this list."""
    findings = sorted({ack.finding.split("[", 1)[0] for ack in acknowledgements(cloud_assembly_dir)})
    assert findings == [
        "AwsSolutions-IAM4", "AwsSolutions-IAM5", "AwsSolutions-L1", "AwsSolutions-S1", "AwsSolutions-SQS3",
        "HIPAA.Security-CloudWatchAlarmAction",  # the model-monitor stage's drift alarms behind a composite
        "HIPAA.Security-IAMNoInlinePolicy", "HIPAA.Security-LambdaConcurrency", "HIPAA.Security-LambdaDLQ",
        "HIPAA.Security-LambdaInsideVPC", "HIPAA.Security-S3BucketReplicationEnabled",
        "HIPAA.Security-S3DefaultEncryptionKMS",
        "NIST.800.53.R5-CloudWatchAlarmAction",
        "NIST.800.53.R5-IAMNoInlinePolicy", "NIST.800.53.R5-LambdaConcurrency", "NIST.800.53.R5-LambdaDLQ",
        "NIST.800.53.R5-LambdaInsideVPC", "NIST.800.53.R5-S3BucketReplicationEnabled",
        "NIST.800.53.R5-S3DefaultEncryptionKMS",
        "PCI.DSS.321-IAMNoInlinePolicy", "PCI.DSS.321-LambdaInsideVPC", "PCI.DSS.321-S3BucketReplicationEnabled",
        "PCI.DSS.321-S3DefaultEncryptionKMS",
    ]


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


# What each compliance pack must report on a bare bucket and a bare function: proof that the
# pack is registered and live (a pack that silently dropped out would report nothing).
PACK_CANARIES = {
    "NIST.800.53.R5": {"S3BucketReplicationEnabled", "S3DefaultEncryptionKMS", "S3BucketLoggingEnabled",
                       "LambdaConcurrency", "LambdaDLQ", "LambdaInsideVPC"},
    "HIPAA.Security": {"S3BucketReplicationEnabled", "S3DefaultEncryptionKMS", "S3BucketLoggingEnabled",
                       "LambdaConcurrency", "LambdaDLQ", "LambdaInsideVPC"},
    "PCI.DSS.321": {"S3BucketReplicationEnabled", "S3DefaultEncryptionKMS", "S3BucketLoggingEnabled",
                    "LambdaInsideVPC"},
}


def _bare_bucket_and_function(stack: cdk.Stack) -> None:
    s3.Bucket(stack, "PlainBucket")
    lambda_.Function(stack, "PlainFunction", runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
                     code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"))


@pytest.mark.parametrize("pack", sorted(PACK_CANARIES))
def test_canary_compliance_pack_is_live(tmp_path: Path, pack: str) -> None:
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _synth(tmp_path, _bare_bucket_and_function)
    rules = {violation["ruleName"] for violation in validation_violations(tmp_path)}
    assert {f"{pack}-{rule}" for rule in PACK_CANARIES[pack]} <= rules
    if pack == "PCI.DSS.321":  # acknowledge_packs relies on this: PCI DSS 3.2.1 has no such rules
        assert not {f"{pack}-LambdaConcurrency", f"{pack}-LambdaDLQ"} & rules


def test_canary_pack_acknowledgement_is_narrow(tmp_path: Path) -> None:
    """``acknowledge_packs`` silences one rule of every pack on one construct and nothing else."""

    def build(stack: cdk.Stack) -> None:
        bucket = s3.Bucket(stack, "PlainBucket")
        acknowledge_packs(bucket, "S3BucketReplicationEnabled",
                          "canary: this bucket deliberately has no replication for the test")
        s3.Bucket(stack, "OtherBucket")

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _synth(tmp_path, build)
    by_rule: dict[str, set[str]] = {}
    for violation in validation_violations(tmp_path):
        for construct in violation.get("violatingConstructs", []):
            by_rule.setdefault(violation["ruleName"], set()).add(construct["constructPath"].split("/")[1])
    for pack in COMPLIANCE_PACKS:
        assert by_rule[f"{pack}-S3BucketReplicationEnabled"] == {"OtherBucket"}
        assert by_rule[f"{pack}-S3DefaultEncryptionKMS"] == {"PlainBucket", "OtherBucket"}


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


def test_dead_letter_reasons_match_how_each_function_is_invoked(cloud_assembly_dir: Path, stacks) -> None:
    """A function acknowledged as invoked synchronously by Step Functions is the resource of a
    state machine's task and has no asynchronous-invocation config; one acknowledged as invoked
    asynchronously has an on-failure destination. A function invoked some other way is caught here."""
    logical_ids = {path: entry["data"]  # construct path -> logical id, from the assembly's metadata
                   for metadata_file in cloud_assembly_dir.glob("assembly-*/*.metadata.json")
                   for path, entries in json.loads(metadata_file.read_text()).items()
                   for entry in entries if entry.get("type") == "aws:cdk:logicalId"}
    checked = 0
    for ack in acknowledgements(cloud_assembly_dir):
        if ack.finding != "NIST.800.53.R5-LambdaDLQ" or "/Pipeline/" not in ack.construct_path \
                or "/AWS679f53fac002430cb0da5b7982bd2287" in ack.construct_path:
            continue
        logical_id = logical_ids[ack.construct_path + "/Resource"]
        stage, stack_id = ack.construct_path.split("/")[1:3]
        resources = stacks[f"{stage}/{stack_id}"].template["Resources"]
        machines = [json.dumps(r["Properties"]["DefinitionString"]) for r in resources.values()
                    if r["Type"] == "AWS::StepFunctions::StateMachine"]
        invoke_configs = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"
                          and r["Properties"]["FunctionName"] == {"Ref": logical_id}]
        if ack.reason.startswith("Step Functions invokes"):
            assert any(f'"{logical_id}"' in definition for definition in machines), ack.construct_path
            assert invoke_configs == [], ack.construct_path
        else:
            assert "invoked asynchronously" in ack.reason, ack.construct_path
            (config,) = invoke_configs
            assert "OnFailure" in config["Properties"]["DestinationConfig"], ack.construct_path
        checked += 1
    assert checked >= 7 * 4  # every stage's handlers
