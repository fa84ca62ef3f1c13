"""Container image URIs from the SageMaker Python SDK's region tables, at synth time.

The template stays region-agnostic: a ``CfnMapping`` holds the URI for every region the
SDK lists, and the pipeline picks its own with ``Fn::FindInMap`` on ``AWS::Region``.
No account id is typed by hand anywhere; a new SDK version brings new regions.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import botocore.loaders
import botocore.regions

import aws_cdk as cdk
from constructs import Construct


@lru_cache(maxsize=None)
def image_uris(framework: str, version: str, scope: str = "training", *, processor: str | None = None,
               py_version: str | None = None) -> dict[str, str]:
    """Region -> image URI for a built-in algorithm image, from the SageMaker Python SDK's
    region tables (``sagemaker/core/image_uri_config/<framework>.json``).

    Reads the table file directly: importing ``sagemaker.core`` costs ~3 s of every synth.
    The URI is ``<account>.dkr.<ECR hostname>/<repository>:<version>``, which is what the
    SDK's ``image_uris.retrieve`` returns for images without processor or Python variants;
    framework images with exactly those two variants (scikit-learn; PyTorch, whose processors the
    table lists per scope, ``training`` and ``inference`` in their own repositories) take
    ``processor`` and ``py_version`` and are tagged ``<version>-<processor>-<py_version>``.
    ``tests/test_images.py`` checks both against ``retrieve`` for every region.
    """
    spec = importlib.util.find_spec("sagemaker")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("sagemaker-core is not installed (see requirements.txt)")
    table = Path(next(iter(spec.submodule_search_locations))) / "core" / "image_uri_config" / f"{framework}.json"
    config = json.loads(table.read_text(encoding="utf-8"))
    config = config.get(scope, config)
    entry = config["versions"][version]
    tag = version
    if processor or py_version:
        processors = entry.get("processors") or config.get("processors") or ()
        if processor not in processors or py_version not in entry.get("py_versions", ()):
            raise ValueError(f"{framework} {version}: processor {processor!r} / py_version {py_version!r} not in the table")
        tag = f"{version}-{processor}-{py_version}"
    if (tag == version and ("processors" in entry or "py_versions" in entry)) or "container_version" in entry:
        raise ValueError(f"{framework} {version} has image variants; use sagemaker.core.image_uris.retrieve")
    endpoints = botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))
    uris = {}
    for region, account in sorted(entry["registries"].items()):
        endpoint = endpoints.construct_endpoint("ecr", region) or {"hostname": f"ecr.{region}.amazonaws.com"}
        # Model Monitor's analyzer has one unversioned entry: the SDK gives it no tag (latest)
        uris[region] = f"{account}.dkr.{endpoint['hostname']}/{entry['repository']}" + (f":{tag}" if tag else "")
    return uris


def table_entry(framework: str, version: str, scope: str = "training") -> dict:
    """One version's entry of the SDK's table for ``framework`` (``repository``, ``py_versions``, ...)."""
    spec = importlib.util.find_spec("sagemaker")
    table = Path(next(iter(spec.submodule_search_locations))) / "core" / "image_uri_config" / f"{framework}.json"
    config = json.loads(table.read_text(encoding="utf-8"))
    return config.get(scope, config)["versions"][version]


class ImageMapping(Construct):
    """A ``CfnMapping`` of region -> {key: image URI}; ``uri(key)`` resolves in the deploy region."""

    def __init__(self, scope: Construct, construct_id: str, *, images: dict[str, tuple[str, ...]]) -> None:
        """``images``: key -> (framework, version), (framework, version, processor, py_version) or,
        for an image of another scope than ``training``, (framework, version, processor, py_version, scope)."""
        super().__init__(scope, construct_id)
        per_key = {key: image_uris(spec[0], spec[1], *spec[4:5], processor=spec[2] if len(spec) > 2 else None,
                                   py_version=spec[3] if len(spec) > 3 else None)
                   for key, spec in images.items()}
        regions = sorted(set.intersection(*(set(uris) for uris in per_key.values())))
        self.mapping = cdk.CfnMapping(
            self,
            "Uris",
            mapping={region: {key: per_key[key][region] for key in per_key} for region in regions},
        )
        self.regions = regions
        self._keys = set(per_key)

    def add(self, key: str, spec: tuple[str, ...]) -> str:
        """Add ``key`` -> ``spec``'s image to the mapping (once; later calls reuse it) and return
        its ``uri``. For an image only some workflows need (a built-in algorithm the stage picks):
        the table's regions stay those of the stage's other images, and every one of them must
        list this image too. ``key``: letters and digits (a CloudFormation mapping attribute)."""
        if key not in self._keys:
            uris = image_uris(spec[0], spec[1], processor=spec[2] if len(spec) > 2 else None,
                              py_version=spec[3] if len(spec) > 3 else None)
            missing = sorted(set(self.regions) - set(uris))
            if missing:
                raise ValueError(f"{spec[0]} {spec[1]} has no image in {', '.join(missing)}, where the stage's other "
                                 "images are")
            for region in self.regions:
                self.mapping.set_value(region, key, uris[region])
            self._keys.add(key)
        return self.uri(key)

    @staticmethod
    def repository(framework: str, version: str, scope: str = "training") -> str:
        """The ECR repository name of an image (for pull permissions)."""
        return table_entry(framework, version, scope)["repository"]

    def uri(self, key: str) -> str:
        return self.mapping.find_in_map(cdk.Aws.REGION, key)
