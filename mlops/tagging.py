"""Cost-allocation tags on every taggable resource.

CDK's ``Tags`` aspect tags every L1 that implements ``ITaggable``. CDK's own
custom-resource providers (``CustomResourceProvider``, e.g. the bucket auto-delete handler)
are built from plain ``CfnResource``s that it skips, although CloudFormation can tag them;
their ``Tags`` property is written directly. tests/test_tags.py checks the result against
CloudFormation's resource schemas.

The providers are found once, after the stage's stacks are built, among each stack's direct
children (``CustomResourceProvider.getOrCreateProvider`` puts them there): a Python aspect
doing the same would be called back from the CDK's Node.js process for every construct of
the app, which cost 0.4–0.9 s of each synth (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from constructs import IConstruct

# Plain-CfnResource types CDK's providers emit whose Tags are a list of {Key, Value}.
_LIST_TAGGED_TYPES = {"AWS::IAM::Role", "AWS::Lambda::Function"}


def apply_cost_allocation_tags(scope: IConstruct, stacks: Iterable[cdk.Stack], tags: dict[str, str]) -> None:
    """Tag everything under ``scope``; call it once every stack in ``stacks`` is built."""
    for key, value in tags.items():
        cdk.Tags.of(scope).add(key, value)
    listed = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
    for stack in stacks:
        for provider in stack.node.children:
            if not isinstance(provider, cdk.CustomResourceProviderBase):
                continue
            for resource in provider.node.children:
                if (cdk.CfnResource.is_cfn_resource(resource) and not cdk.TagManager.is_taggable(resource)
                        and resource.cfn_resource_type in _LIST_TAGGED_TYPES):
                    resource.add_property_override("Tags", listed)
