"""One syrupy snapshot per stack per stage: a review signal for every template change.

Refresh after an intended change with `make snapshots` and review the diff."""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

# mm: the tests' model-monitor variant of dev; pinned: prod with a pinned account and region;
# churn, multiclass, regression: the examples config/examples/<stage>.yaml
STACK_KEYS = ["churn/Data", "churn/Operations", "churn/Pipeline",
              "dev/Data", "dev/Operations", "dev/Pipeline", "mm/Data", "mm/Operations", "mm/Pipeline",
              "multiclass/Data", "multiclass/Operations", "multiclass/Pipeline",
              "pinned/Data", "pinned/Operations", "pinned/Pipeline", "prod/Data", "prod/Operations", "prod/Pipeline",
              "regression/Data", "regression/Operations", "regression/Pipeline"]
_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def _masked(template: dict) -> dict:
    """Asset hashes change with any byte of bundled code or data; mask them."""
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


def test_snapshot_covers_every_stack(stacks) -> None:
    assert sorted(stacks) == STACK_KEYS


@pytest.mark.parametrize("key", STACK_KEYS)
def test_stack_matches_snapshot(stacks, snapshot, key: str) -> None:
    assert _masked(stacks[key].template) == snapshot(extension_class=JSONSnapshotExtension)


def test_masking_only_touches_asset_hashes(stacks) -> None:
    text = json.dumps(_masked(stacks["dev/Data"].template))
    assert "<asset-hash>.zip" in text  # the sample-data and handler assets
    assert not _ASSET_HASH.search(text)
