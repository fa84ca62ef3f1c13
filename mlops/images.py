"""Container image URIs from the SageMaker Python SDK's region tables, at synth time.

The template stays region-agnostic: a ``CfnMapping`` holds the URI for every region the
SDK lists, and the pipeline picks its own with ``Fn::FindInMap`` on ``AWS::Region``.
No account id is typed by hand anywhere; a new SDK version brings new regions.
"""

from __future__ import annotations

from functools import lru_cache

import aws_cdk as cdk
from constructs import Construct


@lru_cache(maxsize=None)
def image_uris(framework: str, version: str, scope: str = "training") -> dict[str, str]:
    """Region -> image URI for a built-in algorithm or framework image."""
    from unittest import mock

    from sagemaker.core import common_utils
    from sagemaker.core import image_uris as sdk  # ~3 s import: only when a pipeline is built

    regions = sdk.config_for_framework(framework)[scope]["versions"][version]["registries"]
    # retrieve() re-reads botocore's endpoints.json on every call (0.2 s each, 7 s for the
    # SDK's 37 regions); the resolver is the same for all of them, so build it once.
    resolver = common_utils._botocore_resolver()
    with mock.patch.object(common_utils, "_botocore_resolver", return_value=resolver):
        return {
            region: sdk.retrieve(framework=framework, region=region, version=version, image_scope=scope)
            for region in sorted(regions)
        }


class ImageMapping(Construct):
    """A ``CfnMapping`` of region -> {key: image URI}; ``uri(key)`` resolves in the deploy region."""

    def __init__(self, scope: Construct, construct_id: str, *, images: dict[str, tuple[str, str]]) -> None:
        super().__init__(scope, construct_id)
        per_key = {key: image_uris(framework, version) for key, (framework, version) in images.items()}
        regions = sorted(set.intersection(*(set(uris) for uris in per_key.values())))
        self.mapping = cdk.CfnMapping(
            self,
            "Uris",
            mapping={region: {key: per_key[key][region] for key in per_key} for region in regions},
        )
        self.regions = regions

    def uri(self, key: str) -> str:
        return self.mapping.find_in_map(cdk.Aws.REGION, key)
