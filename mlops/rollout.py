"""Blue/green traffic shifting of a real-time endpoint update: the steps SageMaker takes and
how long it bakes, from an UpdateEndpoint ``BlueGreenUpdatePolicy``. Imports no CDK code: the
stage config validates with it, the deployment construct builds the request with it and the
offline emulation (``tools/offline/adapter.py``, patch 3) replays the request with it.

SageMaker's rules, from the SageMaker API Reference and Developer Guide:

* ``TrafficRoutingConfig``: ``Type`` ALL_AT_ONCE | CANARY | LINEAR; ``WaitIntervalInSeconds``
  0-3600, "the waiting time between incremental steps"; ``CanarySize`` "must be less than or
  equal to 50% of the variant's total instance count"; ``LinearStepSize`` "must be 10-50% of
  the variant's total instance count".
* ``CapacitySize``: ``Type`` INSTANCE_COUNT | CAPACITY_PERCENT, ``Value`` at least 1.
* ``BlueGreenUpdatePolicy``: ``TerminationWaitInSeconds`` 0-3600 (the final baking period
  before the old fleet is terminated); ``MaximumExecutionTimeoutInSeconds`` 600-28800, "should
  be larger than the total waiting time specified in TerminationWaitInSeconds and
  WaitIntervalInSeconds".
* "Use canary traffic shifting": the canary takes its share, bakes while the alarms watch,
  then the rest shifts and the final baking period follows; an alarm during any baking period
  rolls all traffic back to the old (blue) fleet.
* "Use linear traffic shifting": each step turns on another portion of the green fleet and
  bakes; an alarm during any baking period rolls all traffic back.
* "Deployment guardrails": real-time and asynchronous endpoints only (not serverless);
  "Exclusions": endpoints on Inf1 instances fall back to all-at-once.

How a percentage becomes instances is not documented: this module takes whole instances
(rounding down) and treats a step smaller than one instance as impossible, so the config
refuses it instead of guessing what SageMaker would do.
"""

from __future__ import annotations

import math
from typing import Any

MAX_WAIT_SECONDS = 3600  # WaitIntervalInSeconds and TerminationWaitInSeconds
MIN_EXECUTION_TIMEOUT_SECONDS, MAX_EXECUTION_TIMEOUT_SECONDS = 600, 28800  # MaximumExecutionTimeoutInSeconds
CANARY_MAX_PERCENT = 50
LINEAR_PERCENT = (10, 50)
# "Exclusions" (Deployment guardrails): these fall back to all-at-once with no final baking period
EXCLUDED_INSTANCE_PREFIXES = ("ml.inf1.",)


class RolloutRefused(ValueError):
    """A routing configuration SageMaker would refuse for this variant."""


def routing(kind: str, percent: int | None, wait_minutes: int) -> dict[str, Any]:
    """The ``TrafficRoutingConfiguration`` of an UpdateEndpoint request for the config's
    ``type`` (all_at_once, canary, linear), share of capacity and wait between steps."""
    if kind == "all_at_once":
        # WaitIntervalInSeconds is required; with a single step there is nothing to space out
        return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}
    size = {"Type": "CAPACITY_PERCENT", "Value": percent}
    key = "CanarySize" if kind == "canary" else "LinearStepSize"
    return {"Type": kind.upper(), key: size, "WaitIntervalInSeconds": wait_minutes * 60}


def step_instances(routing_config: dict[str, Any], instance_count: int) -> int:
    """Instances of the new fleet each step turns on (the canary, or one linear step)."""
    kind = routing_config["Type"]
    if kind == "ALL_AT_ONCE":
        return instance_count
    size = routing_config["CanarySize" if kind == "CANARY" else "LinearStepSize"]
    value = int(size["Value"])
    if size["Type"] == "INSTANCE_COUNT":
        return value
    return instance_count * value // 100


def check(routing_config: dict[str, Any], instance_count: int) -> None:
    """Raise ``RolloutRefused`` for what SageMaker documents as invalid for a variant of
    ``instance_count`` instances (or what this module cannot turn into whole instances)."""
    kind = routing_config.get("Type")
    if kind not in ("ALL_AT_ONCE", "CANARY", "LINEAR"):
        raise RolloutRefused(f"TrafficRoutingConfiguration.Type {kind!r}: allowed ALL_AT_ONCE, CANARY, LINEAR")
    wait = routing_config.get("WaitIntervalInSeconds")
    if not isinstance(wait, int) or not 0 <= wait <= MAX_WAIT_SECONDS:
        raise RolloutRefused(f"WaitIntervalInSeconds {wait!r}: allowed 0-{MAX_WAIT_SECONDS}")
    if kind == "ALL_AT_ONCE":
        return
    key = "CanarySize" if kind == "CANARY" else "LinearStepSize"
    size = routing_config.get(key)
    if not size or size.get("Type") not in ("INSTANCE_COUNT", "CAPACITY_PERCENT") or int(size.get("Value", 0)) < 1:
        raise RolloutRefused(f"{kind} needs {key} with Type INSTANCE_COUNT or CAPACITY_PERCENT and Value >= 1")
    instances = step_instances(routing_config, instance_count)
    if instances < 1:
        raise RolloutRefused(f"{key} {size['Value']} {size['Type']} of {instance_count} instances is less than one "
                             "instance")
    # the documented limit is on the size asked for (a percentage as given, a count as its share)
    share = int(size["Value"]) if size["Type"] == "CAPACITY_PERCENT" else 100 * instances / instance_count
    low, high = (0, CANARY_MAX_PERCENT) if kind == "CANARY" else LINEAR_PERCENT
    if not low <= share <= high:
        raise RolloutRefused(f"{key} {size['Value']} {size['Type']} is {share:g}% of the variant's {instance_count} "
                             f"instances; allowed {'up to 50' if kind == 'CANARY' else '10-50'}% of them")


def steps(routing_config: dict[str, Any], instance_count: int) -> list[int]:
    """Instances of the new fleet taking traffic after each step, the last being all of them:
    all-at-once ``[n]``; canary ``[canary, n]``; linear ``[s, 2s, ..., n]``."""
    step = step_instances(routing_config, instance_count)
    if routing_config["Type"] == "ALL_AT_ONCE":
        return [instance_count]
    if routing_config["Type"] == "CANARY":
        return [step, instance_count]
    return [min(instance_count, k * step) for k in range(1, math.ceil(instance_count / step) + 1)]


def bakes(routing_config: dict[str, Any], termination_wait_seconds: int, instance_count: int) -> list[int]:
    """Seconds each step bakes while the alarms watch: the wait interval after every step but
    the last, whose bake is the final baking period (``TerminationWaitInSeconds``)."""
    count = len(steps(routing_config, instance_count))
    return [int(routing_config["WaitIntervalInSeconds"])] * (count - 1) + [termination_wait_seconds]


def total_wait_seconds(routing_config: dict[str, Any], termination_wait_seconds: int, instance_count: int) -> int:
    """The waits ``MaximumExecutionTimeoutInSeconds`` must exceed (provisioning comes on top)."""
    return sum(bakes(routing_config, termination_wait_seconds, instance_count))


def execution_timeout_seconds(wait_for_endpoint_minutes: int) -> int:
    """SageMaker's own bound on the deployment: the run's polling bound, at least 600 s."""
    return min(MAX_EXECUTION_TIMEOUT_SECONDS, max(MIN_EXECUTION_TIMEOUT_SECONDS, wait_for_endpoint_minutes * 60))
