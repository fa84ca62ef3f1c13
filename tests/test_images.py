"""Image URIs read from the SageMaker SDK's tables equal what the SDK itself returns."""

from __future__ import annotations

import pytest

from mlops.images import image_uris


def test_fast_path_matches_the_sdk_for_every_region() -> None:
    from sagemaker.core import image_uris as sdk

    ours = image_uris("xgboost", "1.7-1")
    assert len(ours) >= 30 and "eu-west-1" in ours and "cn-north-1" in ours
    for region, uri in ours.items():
        assert uri == sdk.retrieve(framework="xgboost", region=region, version="1.7-1", image_scope="training"), region


def test_images_with_variants_are_refused() -> None:
    with pytest.raises(ValueError, match="variants"):
        image_uris("pytorch", "2.10.0")


def test_framework_image_with_processor_and_python_variants_matches_the_sdk() -> None:
    from sagemaker.core import image_uris as sdk

    ours = image_uris("sklearn", "1.2-1", processor="cpu", py_version="py3")
    assert ours["eu-west-1"].endswith("/sagemaker-scikit-learn:1.2-1-cpu-py3")
    for region, uri in ours.items():
        assert uri == sdk.retrieve(framework="sklearn", region=region, version="1.2-1", py_version="py3",
                                   instance_type="ml.m5.large", image_scope="training"), region
    with pytest.raises(ValueError, match="not in the table"):
        image_uris("sklearn", "1.2-1", processor="gpu", py_version="py3")


def test_model_monitor_analyzer_matches_the_sdk() -> None:
    from sagemaker.core import image_uris as sdk

    ours = image_uris("model-monitor", "")
    assert ours["eu-west-1"].endswith("/sagemaker-model-monitor-analyzer")
    for region, uri in ours.items():
        assert uri == sdk.retrieve(framework="model-monitor", region=region), region
