"""Traffic steps and bakes of a blue/green update (mlops/rollout.py), as SageMaker documents
them: TrafficRoutingConfig, CapacitySize and BlueGreenUpdatePolicy (SageMaker API Reference);
"Use canary traffic shifting" and "Use linear traffic shifting" (SageMaker Developer Guide)."""

from __future__ import annotations

import pytest

from mlops import rollout

CANARY = rollout.routing("canary", 50, 10)
LINEAR = rollout.routing("linear", 25, 5)
ALL_AT_ONCE = rollout.routing("all_at_once", None, 5)


def test_requests_are_shaped_as_the_api_takes_them() -> None:
    assert CANARY == {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}, "WaitIntervalInSeconds": 600}
    assert LINEAR == {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                      "WaitIntervalInSeconds": 300}
    assert ALL_AT_ONCE == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}


@pytest.mark.parametrize(("routing", "count", "steps", "bakes"), [
    (ALL_AT_ONCE, 2, [2], [300]),
    (CANARY, 2, [1, 2], [600, 300]),         # the canary bakes, then the rest and the final bake
    (CANARY, 5, [2, 5], [600, 300]),         # 50% of 5 is 2 whole instances
    (LINEAR, 4, [1, 2, 3, 4], [300, 300, 300, 300]),
    (LINEAR, 6, [1, 2, 3, 4, 5, 6], [300] * 6),  # 25% of 6 is one whole instance a step
    (rollout.routing("linear", 40, 5), 5, [2, 4, 5], [300, 300, 300]),
])
def test_steps_and_bakes(routing: dict, count: int, steps: list[int], bakes: list[int]) -> None:
    assert rollout.steps(routing, count) == steps
    assert rollout.bakes(routing, 300, count) == bakes
    assert rollout.total_wait_seconds(routing, 300, count) == sum(bakes)


@pytest.mark.parametrize(("routing", "count", "refusal"), [
    ({"Type": "BLUE_GREEN", "WaitIntervalInSeconds": 0}, 2, "allowed ALL_AT_ONCE, CANARY, LINEAR"),
    ({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 3601}, 2, "WaitIntervalInSeconds 3601: allowed 0-3600"),
    ({"Type": "CANARY", "WaitIntervalInSeconds": 60}, 2, "CANARY needs CanarySize"),
    (rollout.routing("canary", 60, 1), 10, "CanarySize 60 CAPACITY_PERCENT is 60% of the variant's 10 instances; allowed up to 50%"),
    ({"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 2}, "WaitIntervalInSeconds": 60}, 3,
     "is 66.6667% of the variant's 3 instances"),
    (rollout.routing("linear", 5, 1), 40, "LinearStepSize 5 CAPACITY_PERCENT is 5% of the variant's 40 instances; allowed 10-50%"),
    (rollout.routing("linear", 20, 1), 3, "LinearStepSize 20 CAPACITY_PERCENT of 3 instances is less than one instance"),
])
def test_documented_limits_are_refused(routing: dict, count: int, refusal: str) -> None:
    with pytest.raises(rollout.RolloutRefused) as refused:
        rollout.check(routing, count)
    assert refusal in str(refused.value)


def test_execution_timeout_stays_in_the_api_range() -> None:
    assert rollout.execution_timeout_seconds(5) == 600
    assert rollout.execution_timeout_seconds(30) == 1800
    assert rollout.execution_timeout_seconds(480) == 28800
