"""The data state machine's first task: the data run's input, checked strictly."""

from __future__ import annotations

import pytest

from tests.conftest import FakeLambdaContext, load_lambda

handler = load_lambda("data_run_input")
LATEST = "s3://curated-bucket/breast_cancer/latest/"


def _check(run_input):
    return handler.handler({"input": run_input, "latest": LATEST}, FakeLambdaContext())


def test_a_data_only_run_writes_to_latest() -> None:
    assert _check({}) == {"base": {"prefix": LATEST}, "trigger": {"source": "manual"}}
    assert _check(None)["base"]["prefix"] == LATEST


def test_a_training_run_writes_under_its_own_prefix() -> None:
    checked = _check({"output_prefix": "s3://curated-bucket/breast_cancer/runs/r1/",
                      "trigger": {"source": "training", "run": "r1"},
                      # what Step Functions adds when the parent starts the run with AssociateWithParent
                      "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "arn:aws:states:eu-west-1:1:execution:t:e"})
    assert checked == {"base": {"prefix": "s3://curated-bucket/breast_cancer/runs/r1/"},
                       "trigger": {"source": "training", "run": "r1"}}


def test_the_new_raw_data_rule_input_is_accepted() -> None:
    assert _check({"trigger": {"source": "new-raw-data", "key": "sample/breast_cancer/new.csv"}})["trigger"]["key"] \
        == "sample/breast_cancer/new.csv"


@pytest.mark.parametrize(("run_input", "message"), [
    ([1, 2, 3], "input: the data run's input must be a JSON object, for example {} (got list [1, 2, 3])"),
    ("latest", "input: the data run's input must be a JSON object"),
    ({"surprise": 1}, "input.surprise: unknown field; allowed: output_prefix, trigger"),
    ({"output_prefix": 5}, "input.output_prefix: must be a string (got 5)"),
    ({"output_prefix": "curated/latest"}, "input.output_prefix: must be an s3:// URI ending in '/' (got 'curated/latest')"),
    ({"output_prefix": "s3://curated-bucket/no-slash"}, "input.output_prefix: must be an s3:// URI ending in '/'"),
    ({"trigger": {"source": "cron"}}, "input.trigger.source: must be one of 'manual', 'training', 'new-raw-data' or "
                                      "'schedule' (got 'cron')"),
    ({"trigger": {"when": "now"}}, "input.trigger.when: unknown field; allowed: source, run, key, reason"),
    ({"trigger": "training"}, "input.trigger: must be a JSON object (got 'training')"),
])
def test_bad_input_is_refused_naming_the_field(run_input, message: str) -> None:
    with pytest.raises(handler.InvalidExecutionInput) as caught:
        _check(run_input)
    assert message in str(caught.value)


def test_malformed_state_payload_is_a_bug_not_user_error() -> None:
    with pytest.raises(ValueError, match="malformed data-run-input event"):
        handler.handler({"input": {}}, FakeLambdaContext())
