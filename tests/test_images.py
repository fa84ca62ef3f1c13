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


@pytest.mark.parametrize("version", ["2.4.0", "2.5.1", "2.6.0"])
def test_pytorch_training_and_inference_images_match_the_sdk(version: str) -> None:
    """A PyTorch script trains in one image and is served by another (``pytorch-training``,
    ``pytorch-inference``): both, for every version the config offers, as the SDK gives them (in
    every region for the newest; the SDK's lookup costs ~20 ms a call, and the fast path's
    regions are covered above)."""
    from sagemaker.core import image_uris as sdk

    from mlops.config import PYTORCH_FRAMEWORK_VERSIONS
    from mlops.constructs.training.algorithm import script_image, script_serving_image
    from mlops.config import ScriptConfig

    assert version in PYTORCH_FRAMEWORK_VERSIONS
    script = ScriptConfig(source_dir="models/wine_sklearn", framework="pytorch", framework_version=version)
    for spec in (script_image(script), script_serving_image(script)):
        framework, _, processor, py_version, *scope = spec
        ours = image_uris(framework, version, *scope, processor=processor, py_version=py_version)
        assert ours["eu-west-1"].split("/")[-1] == f"pytorch-{(scope or ['training'])[0]}:{version}-cpu-{py_version}"
        regions = sorted(ours) if version == PYTORCH_FRAMEWORK_VERSIONS[-1] else ["eu-west-1", "us-east-1"]
        for region in regions:
            assert ours[region] == sdk.retrieve(framework="pytorch", region=region, version=version,
                                                py_version=py_version, instance_type="ml.m5.large",
                                                image_scope=(scope or ["training"])[0]), region

