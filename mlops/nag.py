"""The synth-time gates: the CDK's CloudFormation validation and four cdk-nag 3.x packs
(AwsSolutions, NIST 800-53 rev 5, HIPAA Security, PCI DSS 3.2.1), all CDK validation plugins.

Findings fail synth (``ValidationFailed``) and are written to
``cdk.out/validation-report.json``. Every exception is an explicit, granular
acknowledgement on the construct that needs it, with a reason specific to that
resource; tests read them back from the assembly metadata and reject vague ones.
"""

from __future__ import annotations

import functools
import weakref

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks
from constructs import IConstruct


@functools.cache
def _cloudformation_validation() -> cdk.CloudFormationValidatePlugin:
    return cdk.CloudFormationValidatePlugin()  # stateless between apps: one engine serves every app of a process


def register_checks(app: cdk.App, *, nag: bool = True) -> None:
    """The synth-time gates over every stack of every stage in ``app``; call it before the
    stages are built.

    * The CDK's own CloudFormation validation with its default rules (cdk.json's
      ``@aws-cdk/core:validateAgainstDefaultRules`` makes its errors fail synth). The CDK
      registers this plugin by itself at synth time; registered here explicitly (which
      "replaces the auto-registered default instance", aws-cdk-lib
      CloudFormationValidatePluginProps), the same rules run, but the validation engine
      starts on the near-empty heap of a new app rather than after the construct tree is
      built, about 0.5 s less per synth (docs/benchmarks.md).
    * cdk-nag's AwsSolutions, NIST 800-53 rev 5, HIPAA Security and PCI DSS 3.2.1 packs
      (``nag=False`` leaves them out). The three compliance packs share most rules with
      AwsSolutions under their own ids; acknowledge what only they flag with
      ``acknowledge_packs``.
    """
    validations = cdk.Validations.of(app)
    validations.add_plugins(_cloudformation_validation())
    if nag:
        validations.add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app), HIPAASecurityChecks(app),
                                PCIDSS321Checks(app))


# The compliance packs by rule-id prefix, and the rules acknowledged here that not every one of
# them has (cdk-nag 3.0's packs: PCI DSS 3.2.1 checks neither Lambda concurrency nor DLQs).
COMPLIANCE_PACKS = ("NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321")
_PACKS_OF_RULE = {
    "LambdaConcurrency": ("NIST.800.53.R5", "HIPAA.Security"),
    "LambdaDLQ": ("NIST.800.53.R5", "HIPAA.Security"),
    "CloudWatchAlarmAction": ("NIST.800.53.R5", "HIPAA.Security"),
}


def acknowledge_packs(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding that several compliance packs report under their own ids
    (``NIST.800.53.R5-<rule>``, ``HIPAA.Security-<rule>``, ``PCI.DSS.321-<rule>``): one
    finding on one resource, so one reason, recorded once per pack that has the rule."""
    for pack in _PACKS_OF_RULE.get(rule, COMPLIANCE_PACKS):
        acknowledge(scope, f"{pack}-{rule}", reason)


def acknowledge_inline_policy(role: IConstruct, whose: str) -> None:
    """The compliance packs' IAMNoInlinePolicy finding on ``role``'s DefaultPolicy, where the CDK
    writes every grant to the role (``grant_*``, ``add_to_policy``, task and target bindings).

    IAM User Guide, "Managed policies and inline policies"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-vs-inline.html):
    an inline policy keeps a strict one-to-one relationship between a policy and the identity it
    is embedded in, and is deleted with it. Each role here is one workload's own role with
    grants scoped to that workload, which is that case; a customer managed policy would only
    make the same statements attachable to other identities. ``whose``: the role, as the reason
    names it."""
    acknowledge_packs(role, "IAMNoInlinePolicy",
                      f"{whose}: the CDK writes this role's scoped grants into its inline DefaultPolicy, which stays "
                      "one-to-one with this one role and is deleted with it; no other identity should share them.")


def acknowledge(scope: IConstruct, rule_id: str, reason: str, *, applies_to: str | None = None) -> None:
    """Acknowledge one finding on ``scope`` (and its children).

    ``applies_to`` narrows IAM4/IAM5 findings to one policy or action/resource
    (``Action::s3:GetObject*``, ``Policy::arn:<AWS::Partition>:iam::aws:policy/...``),
    so a new wildcard elsewhere on the same role still fails synth.

    Write resource ARNs with ``<AWS::Partition>``, ``<AWS::Region>`` and ``<AWS::AccountId>``,
    as cdk-nag prints them for a stack without a pinned environment. Once a stage pins its
    account or region (``environment`` in the stage file), cdk-nag prints the values instead,
    because every resource ARN here is built from the stack's partition, region and account
    (``Stack.format_arn`` or its properties, never the ``Aws.*`` pseudo parameters): each
    placeholder whose value the stack knows is replaced by that value, so one acknowledgement
    holds both ways (tests synthesize a pinned stage). AWS managed policies (``Policy::``)
    keep the partition placeholder: the CDK always writes them with it.
    """
    if applies_to and applies_to.startswith("Resource::") and "<AWS::" in applies_to:
        for placeholder, value in zip(_PSEUDO_PARAMETERS, _environment(scope)):
            if value is not None:
                applies_to = applies_to.replace(placeholder, value)
    finding = f"{rule_id}[{applies_to}]" if applies_to else rule_id
    _validations(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


_PSEUDO_PARAMETERS = ("<AWS::Partition>", "<AWS::Region>", "<AWS::AccountId>")
_ENVIRONMENTS: "weakref.WeakKeyDictionary[IConstruct, tuple[str | None, ...]]" = weakref.WeakKeyDictionary()


def _environment(scope: IConstruct) -> tuple[str | None, ...]:
    """The partition, region and account of ``scope``'s stack where they are concrete (``None``
    where they are still CloudFormation pseudo parameters)."""
    if scope not in _ENVIRONMENTS:
        stack = cdk.Stack.of(scope)
        _ENVIRONMENTS[scope] = tuple(None if cdk.Token.is_unresolved(value) else value
                                     for value in (stack.partition, stack.region, stack.account))
    return _ENVIRONMENTS[scope]


_VALIDATIONS: "weakref.WeakKeyDictionary[IConstruct, cdk.Validations]" = weakref.WeakKeyDictionary()


def _validations(scope: IConstruct) -> cdk.Validations:
    """``Validations.of(scope)``, once per construct (a stage acknowledges ~180 findings on
    ~90 constructs; each ``of`` is a call into the CDK's Node.js process)."""
    if scope not in _VALIDATIONS:
        _VALIDATIONS[scope] = cdk.Validations.of(scope)
    return _VALIDATIONS[scope]
