"""Cost-allocation tags on every taggable resource of every stack.

Whether a type can be tagged comes from CloudFormation's own resource schemas (the
copies bundled with cfn-lint): ``tagging.taggable`` and ``tagging.tagProperty``.
"""

from __future__ import annotations

from functools import lru_cache

import pytest
from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

from mlops.config import load_stages

# Types in our templates that CloudFormation cannot tag, each with why. The test fails
# if a listed type turns out to be taggable, or an unlisted untaggable type appears.
UNTAGGABLE = {
    "AWS::IAM::Policy": "inline policy document attached to a role; no Tags property",
    "AWS::KMS::Alias": "a name pointing at a key; the key itself is tagged",
    "AWS::Lambda::LayerVersion": "layer versions are immutable and have no Tags property",
    "AWS::Lambda::Permission": "resource-policy statement of a function; the function is tagged",
    "AWS::Lambda::EventInvokeConfig": "asynchronous-invocation settings of a function; the function is tagged",
    "AWS::SQS::QueuePolicy": "policy of a queue; the queue is tagged",
    "AWS::S3::BucketPolicy": "policy of a bucket; the bucket is tagged",
    "AWS::SNS::Subscription": "endpoint of a topic; the topic is tagged",
    "AWS::SNS::TopicPolicy": "policy of a topic; the topic is tagged",
    "AWS::CDK::Metadata": "CDK's own version-reporting resource (only when versionReporting is on)",
    "Custom::CDKBucketDeployment": "custom resource: CloudFormation has nothing to tag",
    "Custom::S3AutoDeleteObjects": "custom resource: CloudFormation has nothing to tag",
    "Custom::AWS": "custom resource (publishes the DataBrew recipe on deploy): nothing to tag",
    "AWS::Glue::Database": "Glue databases have no Tags property; the tables' data lives in tagged buckets",
    "AWS::Glue::SecurityConfiguration": "encryption settings object; no Tags property",
    "AWS::Scheduler::Schedule": "EventBridge Scheduler schedules have no Tags property (schedule groups do)",
    "AWS::IAM::ManagedPolicy": "CDK's overflow policy of a role whose inline policy outgrew IAM's size limit; no Tags",
}

# Taggable types whose tags are create-only (schema: tagUpdatable false). Changing a
# cost-allocation tag value on one of these REPLACES the resource; list them in the
# README when they appear (the README's "Cost allocation" section does).
CREATE_ONLY_TAGS: set[str] = {"AWS::SageMaker::FeatureGroup"}


@lru_cache(maxsize=None)
def _tagging(resource_type: str) -> dict:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    tagging = dict(schema.get("tagging") or {})
    if "taggable" not in tagging:
        # Schemas without a tagging block are taggable only if they have a Tags property.
        tagging["taggable"] = "Tags" in schema.get("properties", {})
        tagging.setdefault("tagProperty", "/properties/Tags")
    return tagging


def _tags_of(resource: dict, tag_property: str) -> dict[str, str]:
    value = resource.get("Properties", {}).get(tag_property.rsplit("/", 1)[1])
    if isinstance(value, list):
        return {tag["Key"]: tag["Value"] for tag in value}
    return dict(value or {})


def _expected_tags(config_dir) -> dict[str, dict[str, str]]:
    return {config.stage: config.cost_allocation_tags for config in load_stages("all", config_dir)}


def test_untaggable_list_agrees_with_cloudformation() -> None:
    for resource_type in UNTAGGABLE:
        if resource_type.startswith("Custom::"):
            continue
        assert _tagging(resource_type)["taggable"] is False, f"{resource_type} is taggable: tag it, don't list it"


def test_every_taggable_resource_has_the_cost_allocation_tags(stacks, config_dir) -> None:
    expected = _expected_tags(config_dir)
    missing: list[str] = []
    unlisted: set[str] = set()
    for key, stack in stacks.items():
        for logical_id, resource in stack.template["Resources"].items():
            resource_type = resource["Type"]
            if resource_type in UNTAGGABLE:
                continue
            if resource_type.startswith("Custom::") or not _tagging(resource_type)["taggable"]:
                unlisted.add(resource_type)
                continue
            tags = _tags_of(resource, _tagging(resource_type)["tagProperty"])
            for tag_key, tag_value in expected[stack.stage].items():
                if tags.get(tag_key) != tag_value:
                    missing.append(f"{key} {logical_id} ({resource_type}): {tag_key}={tags.get(tag_key)!r}")
    assert unlisted == set(), "untaggable types not in UNTAGGABLE (add each with a reason)"
    assert missing == []


def test_create_only_tag_types_are_known(stacks) -> None:
    used = {resource["Type"] for stack in stacks.values() for resource in stack.template["Resources"].values()}
    create_only = {
        resource_type for resource_type in used
        if resource_type not in UNTAGGABLE and not resource_type.startswith("Custom::")
        and _tagging(resource_type).get("tagUpdatable") is False
    }
    assert create_only == CREATE_ONLY_TAGS


@pytest.mark.parametrize(("resource_type", "expected"), [("AWS::S3::Bucket", True), ("AWS::S3::BucketPolicy", False)])
def test_schema_lookup_canary(resource_type: str, expected: bool) -> None:
    assert _tagging(resource_type)["taggable"] is expected


def test_missing_tag_is_detected() -> None:
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"Tags": [{"Key": "stage", "Value": "dev"}]}}
    assert _tags_of(bucket, "/properties/Tags") == {"stage": "dev"}
    budget = {"Type": "AWS::Budgets::Budget", "Properties": {"ResourceTags": [{"Key": "owner", "Value": "x"}]}}
    assert _tags_of(budget, _tagging("AWS::Budgets::Budget")["tagProperty"]) == {"owner": "x"}
