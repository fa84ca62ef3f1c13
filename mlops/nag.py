"""cdk-nag 3.x wiring: the AwsSolutions pack runs as a CDK validation plugin.

Findings fail synth (``ValidationFailed``) and are written to
``cdk.out/validation-report.json``. Every exception is an explicit, granular
acknowledgement on the construct that needs it, with a reason specific to that
resource; tests read them back from the assembly metadata and reject vague ones.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def register_checks(app: cdk.App) -> None:
    """Run the AwsSolutions pack over every stack of every stage in ``app``."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule_id: str, reason: str, *, applies_to: str | None = None) -> None:
    """Acknowledge one finding on ``scope`` (and its children).

    ``applies_to`` narrows IAM4/IAM5 findings to one policy or action/resource
    (``Action::s3:GetObject*``, ``Policy::arn:<AWS::Partition>:iam::aws:policy/...``),
    so a new wildcard elsewhere on the same role still fails synth.
    """
    finding = f"{rule_id}[{applies_to}]" if applies_to else rule_id
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))
