"""IAM policy evaluation for offline runs: may this principal call this action on this resource?

The offline runs check every AWS call against the synthesized policies of whoever makes it.
This module answers one question for them, the way IAM's policy evaluation logic does for a
single account ("Policy evaluation logic", IAM User Guide):

* an explicit ``Deny`` in any applicable statement wins;
* otherwise the call is allowed when an ``Allow`` statement matches the action (``Action`` /
  ``NotAction``, case-insensitive, ``*`` and ``?`` wildcards), the resource (``Resource`` /
  ``NotResource``, wildcards) and every condition in its ``Condition`` block;
* for a role, its identity policies decide (the data key's policy delegates to IAM through its
  account-root statement, as CDK writes it); for a service principal (EventBridge delivering
  to a dead-letter queue, say), the resource's own policy must name it (``Principal.Service``).

Condition operators are the ones the templates use ("IAM JSON policy elements: Condition
operators"): ``StringEquals``, ``StringNotEquals``, ``StringLike``, ``StringNotLike``,
``ArnEquals``, ``ArnLike``, ``ArnNotLike``, ``Bool``, ``NumericLessThan`` and their
``...IfExists`` forms. A condition key missing from the request context fails the condition
(unless ``IfExists``), as in IAM. Anything else raises, so a new operator in a template is
noticed rather than silently treated as true.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=None)
def _compiled(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case_sensitive else re.IGNORECASE)


def _wildcard(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """IAM's ``*`` (any run of characters) and ``?`` (one character); nothing else is special.
    Each pattern is compiled once: every call of a run is checked against every statement."""
    return _compiled(pattern, case_sensitive).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    return _wildcard(pattern, action, case_sensitive=False)


def resource_matches(pattern: str, resource: str) -> bool:
    return pattern == "*" or _wildcard(pattern, resource, case_sensitive=True)


def _string_like(patterns: list[str], values: list[str]) -> bool:
    return any(_wildcard(p, v, case_sensitive=True) for p in patterns for v in values)


_OPERATORS = {
    "StringEquals": lambda expected, actual: any(a in expected for a in actual),
    "StringNotEquals": lambda expected, actual: not any(a in expected for a in actual),
    "StringLike": lambda expected, actual: _string_like(expected, actual),
    "StringNotLike": lambda expected, actual: not _string_like(expected, actual),
    "ArnEquals": lambda expected, actual: any(a in expected for a in actual),
    "ArnLike": lambda expected, actual: any(resource_matches(e, a) for e in expected for a in actual),
    "ArnNotLike": lambda expected, actual: not any(resource_matches(e, a) for e in expected for a in actual),
    "Bool": lambda expected, actual: any(str(a).lower() in [str(e).lower() for e in expected] for a in actual),
    "NumericLessThan": lambda expected, actual: any(float(a) < float(e) for e in expected for a in actual),
}


def conditions_hold(block: dict[str, dict[str, Any]] | None, context: dict[str, Any]) -> bool:
    for operator, keys in (block or {}).items():
        if_exists = operator.endswith("IfExists")
        name = operator.removesuffix("IfExists")
        if name not in _OPERATORS:
            raise NotImplementedError(f"condition operator {operator} is not emulated offline")
        for key, expected in keys.items():
            present = {k.lower(): v for k, v in context.items()}
            if key.lower() not in present:
                if if_exists or name.startswith(("StringNot", "ArnNot")):
                    continue
                return False
            actual = [str(v) for v in _as_list(present[key.lower()])]
            if not _OPERATORS[name]([str(e) for e in _as_list(expected)], actual):
                return False
    return True


def _principal_matches(statement: dict[str, Any], principal: dict[str, str]) -> bool:
    """``principal``: {"Service": "events.amazonaws.com"} or {"AWS": "<role ARN>"}."""
    named = statement.get("Principal")
    if named is None:
        return True  # identity policy statement: the attached principal
    if named == "*":
        return True
    for kind, value in principal.items():
        if "*" in _as_list(named.get(kind)) or value in _as_list(named.get(kind)):
            return True
    return False


def statement_applies(statement: dict[str, Any], action: str, resource: str | None, context: dict[str, Any],
                      principal: dict[str, str] | None = None) -> bool:
    """Does this statement speak to the request? (Its Effect decides what it says.)
    ``resource`` None: the resource is not known offline for this call; the statement's
    resources are not compared (an action-level check)."""
    if "Action" in statement and not any(action_matches(p, action) for p in _as_list(statement["Action"])):
        return False
    if "NotAction" in statement and any(action_matches(p, action) for p in _as_list(statement["NotAction"])):
        return False
    if resource is not None:
        if "Resource" in statement and not any(resource_matches(p, resource) for p in _as_list(statement["Resource"])):
            return False
        if "NotResource" in statement and any(resource_matches(p, resource) for p in _as_list(statement["NotResource"])):
            return False
    if principal is not None and not _principal_matches(statement, principal):
        return False
    return conditions_hold(statement.get("Condition"), context)


def decide(statements: Iterable[dict[str, Any]], action: str, resource: str | None, context: dict[str, Any] | None = None,
           principal: dict[str, str] | None = None) -> bool:
    """Allowed by these statements: some Allow applies and no Deny does."""
    allowed = False
    for statement in statements:
        if statement_applies(statement, action, resource, context or {}, principal):
            if statement.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed


@dataclass
class PolicyModel:
    """Every policy of a stage that the offline runs consult, resolved to concrete ARNs:
    identity policies per role name, resource policies per resource ARN (KMS key policies,
    SQS queue policies)."""

    identity: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # role name -> statements
    resource: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # resource ARN -> statements

    def role_allows(self, role: str, action: str, resource: str | None, context: dict[str, Any] | None = None) -> bool:
        """A role of this account: its identity policies decide; an explicit Deny in the
        resource's own policy still wins (the SSL-only statements of buckets and queues)."""
        arn = f"arn:aws:iam::{_ACCOUNT}:role/{role}"
        if resource and any(statement_applies(s, action, resource, context or {}, {"AWS": arn})
                            and s.get("Effect") == "Deny" for s in self.resource.get(_owner(resource), [])):
            return False
        return decide(self.identity.get(role, []), action, resource, context)

    def service_allows(self, service: str, action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
        """An AWS service principal (``events.amazonaws.com``): only the resource's policy can allow it."""
        return decide(self.resource.get(_owner(resource), []), action, resource, context, {"Service": service})


_ACCOUNT = "123456789012"


def _owner(resource: str) -> str:
    """The ARN whose resource policy governs ``resource`` (an object's bucket, else itself)."""
    if resource.startswith("arn:aws:s3:::") and "/" in resource:
        return resource.split("/", 1)[0]
    return resource


# --- what a request needs -----------------------------------------------------------------
# Signing names that differ from the IAM service prefix, and API operations whose IAM action
# has another name (Service Authorization Reference).
IAM_PREFIXES = {"monitoring": "cloudwatch"}
IAM_ACTIONS = {
    "s3:ListObjectsV2": "s3:ListBucket", "s3:HeadObject": "s3:GetObject", "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject", "s3:CompleteMultipartUpload": "s3:PutObject", "lambda:Invoke": "lambda:InvokeFunction",
}


@dataclass
class Call:
    """One authorization an AWS request needs: ``principal`` (a function, state machine or
    role name) may ``action`` on ``resource`` (None where offline runs do not know it) with
    this request ``context`` (condition keys)."""

    principal: str
    action: str
    resource: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


# Create requests that take the stage's cost-allocation tags, and the action IAM then also checks:
# SageMaker needs sagemaker:AddTags to create a resource with tags ("Provide permissions for
# tagging SageMaker AI resources", SageMaker Developer Guide), Application Auto Scaling
# application-autoscaling:TagResource to tag a scalable target it registers ("Tagging support for
# Application Auto Scaling"), CloudWatch cloudwatch:TagResource to tag an alarm it puts
# (PutMetricAlarm, CloudWatch API Reference).
TAGGED_CREATES = {
    "sagemaker": {"CreateTrainingJob", "CreateHyperParameterTuningJob", "CreateProcessingJob", "CreateTransformJob",
                  "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "CreateModelPackage", "CreateExperiment",
                  "CreateTrial", "CreateDataQualityJobDefinition", "CreateModelQualityJobDefinition",
                  "CreateMonitoringSchedule"},
    "application-autoscaling": {"RegisterScalableTarget"},
    "cloudwatch": {"PutMetricAlarm"},
}
TAGGING_ACTIONS = {"sagemaker": "sagemaker:AddTags", "application-autoscaling": "application-autoscaling:TagResource",
                   "cloudwatch": "cloudwatch:TagResource"}


def tag_keys(params: dict[str, Any]) -> set[str]:
    """The tag keys of a create request (a list of Key/Value, or Application Auto Scaling's map)."""
    tags = params.get("Tags") or []
    return set(tags) if isinstance(tags, dict) else {tag.get("Key") for tag in tags}


def authorizations(principal: str, prefix: str, operation: str, params: dict[str, Any],
                   keys: dict[str, str]) -> list[Call]:
    """What IAM checks for one API request. S3 object and bucket requests name their resource
    (and ``s3:prefix`` for listings); on a bucket or topic encrypted with a customer-managed
    key (``keys``: bucket or topic ARN -> key ARN) the caller also needs the key: S3 SSE-KMS
    needs ``kms:GenerateDataKey`` to write and ``kms:Decrypt`` to read ("Using server-side
    encryption with AWS KMS keys", S3 User Guide), an SNS publisher to an encrypted topic
    both ("Key management", SNS Developer Guide). Other requests are checked by action."""
    action = IAM_ACTIONS.get(f"{prefix}:{operation}", f"{prefix}:{operation}")
    if prefix == "s3" and params.get("Bucket"):
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        if operation in ("ListObjectsV2", "ListObjects"):
            return [Call(principal, action, bucket, {"s3:prefix": params.get("Prefix", "")})]
        if "Key" not in params:
            return [Call(principal, action, bucket)]
        found = [Call(principal, action, f"{bucket}/{params['Key']}")]
        key = params.get("SSEKMSKeyId") or keys.get(bucket)  # a key named in the request, else the bucket's default
        if key and operation in ("PutObject", "CreateMultipartUpload"):
            found.append(Call(principal, "kms:GenerateDataKey", key))
        if key and operation in ("GetObject", "CreateMultipartUpload"):
            found.append(Call(principal, "kms:Decrypt", key))
        return found
    if prefix == "sns" and operation == "Publish" and params.get("TopicArn"):
        topic = params["TopicArn"]
        key = keys.get(topic)
        return [Call(principal, action, topic)] + (
            [Call(principal, "kms:GenerateDataKey", key), Call(principal, "kms:Decrypt", key)] if key else [])
    if action == "cloudwatch:PutMetricData":  # the namespace is the condition key CloudWatch offers
        return [Call(principal, action, None, {"cloudwatch:namespace": params.get("Namespace", "")})]
    if operation in TAGGED_CREATES.get(prefix, ()) and tag_keys(params):
        return [Call(principal, action), Call(principal, TAGGING_ACTIONS[prefix])]
    return [Call(principal, action)]
