"""Cost-allocation tags on every taggable resource.

CDK's ``Tags`` aspect tags every L1 that implements ``ITaggable``. CDK's own
custom-resource providers (e.g. the bucket auto-delete handler) are built from plain
``CfnResource``s that it skips, although CloudFormation can tag them; the aspect
below writes their ``Tags`` property directly. tests/test_tags.py checks the result
against CloudFormation's resource schemas.
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from constructs import IConstruct

# Plain-CfnResource types CDK's providers emit whose Tags are a list of {Key, Value}.
_LIST_TAGGED_TYPES = {"AWS::IAM::Role", "AWS::Lambda::Function"}


@jsii.implements(cdk.IAspect)
class _TagPlainCfnResources:
    def __init__(self, tags: dict[str, str]) -> None:
        self._tags = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]

    def visit(self, node: IConstruct) -> None:
        if (
            cdk.CfnResource.is_cfn_resource(node)
            and not cdk.TagManager.is_taggable(node)
            and node.cfn_resource_type in _LIST_TAGGED_TYPES
        ):
            node.add_property_override("Tags", self._tags)


def apply_cost_allocation_tags(scope: IConstruct, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        cdk.Tags.of(scope).add(key, value)
    cdk.Aspects.of(scope).add(_TagPlainCfnResources(tags))
