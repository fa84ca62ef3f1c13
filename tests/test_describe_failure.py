"""describe_failure: every kind of cause Step Functions records becomes one readable line and
structured detail, with the failing state read from the execution's history."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import FakeLambdaContext, load_lambda

describe_failure = load_lambda("describe_failure")
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:mlops-demo-dev-training:run-1"


class _History:
    """A stand-in for Step Functions' GetExecutionHistory (newest first, pages of ``page``)."""

    def __init__(self, events: list[dict], page: int = 100) -> None:
        self.events, self.page, self.calls = events, page, 0

    def get_execution_history(self, *, executionArn: str, reverseOrder: bool, maxResults: int,  # noqa: N803
                              nextToken: str | None = None) -> dict:
        assert executionArn == EXECUTION and reverseOrder
        self.calls += 1
        ordered = sorted(self.events, key=lambda e: -e["id"])
        start = int(nextToken or 0)
        page = ordered[start:start + min(maxResults, self.page)]
        more = start + len(page) < len(ordered)
        return {"events": page, **({"nextToken": str(start + len(page))} if more else {})}


def _history(failing_state: str, error: str, cause: str, *, padding: int = 0) -> list[dict]:
    events = [{"id": 1, "type": "ExecutionStarted"},
              {"id": 2, "type": "PassStateEntered", "previousEventId": 1, "stateEnteredEventDetails": {"name": "Start"}},
              {"id": 3, "type": "PassStateExited", "previousEventId": 2}]
    for n in range(padding):  # earlier states, e.g. a long run's polling loop
        events.append({"id": 4 + n, "type": "WaitStateEntered", "previousEventId": 3 + n,
                       "stateEnteredEventDetails": {"name": "Wait for endpoint"}})
    last = events[-1]["id"]
    events += [
        {"id": last + 1, "type": "TaskStateEntered", "previousEventId": last,
         "stateEnteredEventDetails": {"name": failing_state}},
        {"id": last + 2, "type": "TaskScheduled", "previousEventId": last + 1},
        {"id": last + 3, "type": "TaskStarted", "previousEventId": last + 2},
        {"id": last + 4, "type": "TaskFailed", "previousEventId": last + 3,
         "taskFailedEventDetails": {"error": error, "cause": cause}},
        {"id": last + 5, "type": "TaskStateExited", "previousEventId": last + 4},
        {"id": last + 6, "type": "TaskStateEntered", "previousEventId": last + 5,
         "stateEnteredEventDetails": {"name": "Describe failure"}},
    ]
    return events


@pytest.fixture
def history(monkeypatch):
    def install(events: list[dict], page: int = 100) -> _History:
        fake = _History(events, page)
        monkeypatch.setattr(describe_failure, "_states", lambda: fake)
        return fake
    return install


def _run(error: str, cause: str | None, **extra) -> dict:
    event = {"error": {"Error": error, **({"Cause": cause} if cause is not None else {}), **extra},
             "execution_arn": EXECUTION}
    return describe_failure.handler(event, FakeLambdaContext())


def test_a_handlers_exception_is_its_message(history) -> None:
    cause = json.dumps({"errorType": "InvalidExecutionInput", "errorMessage": "input.tuning: must be true or false",
                        "stackTrace": ["  File \"index.py\", line 9"]})
    history(_history("Prepare run", "InvalidExecutionInput", cause))
    described = _run("InvalidExecutionInput", cause)
    assert described["error"] == "InvalidExecutionInput"
    assert described["summary"] == "InvalidExecutionInput in state 'Prepare run': input.tuning: must be true or false"
    assert described["detail"]["cause"] == {"error_type": "InvalidExecutionInput",
                                            "error_message": "input.tuning: must be true or false",
                                            "stack_trace": ["  File \"index.py\", line 9"]}
    summary, _, detail = described["notice"].partition("\n\n")
    assert summary == described["summary"] and json.loads(detail) == described["detail"]  # JSON, not escaped text


def test_a_failed_job_is_its_failure_reason_under_step_failed(history) -> None:
    cause = json.dumps({"TrainingJobName": "train-1", "TrainingJobArn": "arn:aws:sagemaker:::training-job/train-1",
                        "TrainingJobStatus": "Failed", "HyperParameters": {"eta": "0.2"},
                        "FailureReason": "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage \"boom\""})
    history(_history("Train model", "States.TaskFailed", cause))
    described = _run("States.TaskFailed", cause)
    assert described["error"] == "StepFailed"  # a Fail state keeps to the workflow's own names
    assert described["summary"] == ("StepFailed in state 'Train model': States.TaskFailed: training job train-1 Failed: "
                                    "AlgorithmError: ExecuteUserScriptError: ExitCode 1 ErrorMessage \"boom\"")
    assert "\n" not in described["summary"]
    assert described["detail"]["cause"]["failure_reason"].startswith("AlgorithmError: ExecuteUserScriptError:\n")
    assert "HyperParameters" not in json.dumps(described["detail"])  # the job's description stays in the console


@pytest.mark.parametrize(("cause", "message"), [
    ({"JobRun": {"Id": "jr_1", "JobName": "split", "JobRunState": "FAILED",
                 "ErrorMessage": "AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://raw/x"}},
     "Glue job split run jr_1 FAILED: AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://raw/x"),
    ({"RunId": "db_1", "JobName": "clean", "State": "FAILED", "ErrorMessage": "Recipe step 3 failed"},
     "DataBrew job clean run db_1 FAILED: Recipe step 3 failed"),
])
def test_glue_and_databrew_runs_are_their_error_message(history, cause: dict, message: str) -> None:
    history(_history("Split", "States.TaskFailed", json.dumps(cause)))
    assert _run("States.TaskFailed", json.dumps(cause))["summary"] == f"StepFailed in state 'Split': States.TaskFailed: {message}"


def test_a_nested_run_names_its_state_and_keeps_its_rule_lines(history) -> None:
    child = ("DataQualityFailed in state 'Check data quality': 2 of 7 data-quality rules failed on dataset raw "
             "(report: s3://b/r.json):\n- label-complete (...)\n- target-allowed-values (...)")
    cause = json.dumps({"ExecutionArn": "arn:aws:states:::execution:data:child", "Status": "FAILED",
                        "Error": "DataQualityFailed", "Cause": child, "Input": {"x": 1}})
    history(_history("Prepare data", "States.TaskFailed", cause))
    described = _run("States.TaskFailed", cause)
    assert described["error"] == "DataQualityFailed"  # the nested run's own name, not StepFailed
    assert described["state"] == "Prepare data › Check data quality"
    assert described["summary"].splitlines() == [
        "DataQualityFailed in state 'Prepare data › Check data quality': 2 of 7 data-quality rules failed on dataset raw "
        "(report: s3://b/r.json):", "- label-complete (...)", "- target-allowed-values (...)"]
    assert described["detail"]["cause"]["execution"] == "arn:aws:states:::execution:data:child"


def test_errors_the_workflow_raises_itself_name_their_state(history) -> None:
    fake = history([])
    described = _run("DeploymentRolledBack", "Endpoint ep keeps serving the previous model", State="Update rolled back")
    assert described["summary"] == "DeploymentRolledBack in state 'Update rolled back': Endpoint ep keeps serving the previous model"
    assert fake.calls == 0


def test_the_state_is_found_across_history_pages(history) -> None:
    fake = history(_history("Evaluate model", "SageMaker.ValidationException", "bad request (Service: SageMaker)",
                            padding=250), page=100)
    assert _run("SageMaker.ValidationException", "bad request (Service: SageMaker)")["state"] == "Evaluate model"
    assert fake.calls == 1  # the failure is among the newest events


def test_an_unreadable_history_still_describes_the_failure(monkeypatch) -> None:
    class Refusing:
        def get_execution_history(self, **_: object) -> dict:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetExecutionHistory")

    monkeypatch.setattr(describe_failure, "_states", Refusing)
    described = _run("States.Timeout", None)
    assert described["summary"] == "StepFailed in state 'unknown': States.Timeout: no cause given"


def test_a_long_first_line_is_cut_and_the_detail_keeps_it(history) -> None:
    history([])
    described = _run("Boom", "x" * 5000, State="Check")
    first = described["summary"]
    assert len(first) == describe_failure.LINE and first.endswith("…")
    assert described["detail"]["cause"]["message"] == "x" * 5000


@pytest.mark.parametrize(("event", "message"), [
    ({"execution_arn": EXECUTION}, "error: Field required"),
    ({"error": {"Error": "X"}, "execution_arn": "arn:aws:s3:::b"}, "execution_arn: String should match pattern"),
    ({"error": {"Error": "X"}, "execution_arn": EXECUTION, "extra": 1}, "extra: Extra inputs are not permitted"),
])
def test_malformed_events_name_the_field(event: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"^malformed failure event: .*{message}"):
        describe_failure.handler(event, FakeLambdaContext())
