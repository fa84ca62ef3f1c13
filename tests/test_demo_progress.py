"""`make demo`'s live view: every state, in the order it happened, each once, the data run's
states under "Prepare data" and the approval inside "Wait for approval", however the polls fall."""

from __future__ import annotations

import random
from pathlib import Path

import boto3
import pytest

from scripts import demo
from tools.offline.progress import View
from tools.offline.runner import OfflineStage, states_of


@pytest.fixture(scope="module")
def prod_run(cloud_assembly_dir: Path):
    """One prod run through the demo's own loop (approval included); its printed lines and the
    histories of the run and of its data run."""
    with OfflineStage(cloud_assembly_dir, "prod") as stage:
        lines: list[str] = []
        execution = stage.start({})
        result = demo._progress(stage, execution, out=lines.append)
        sfn = boto3.client("stepfunctions")
        (child,) = sfn.list_executions(stateMachineArn=stage.state_machine_arns["data"])["executions"]
        histories = {arn: sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
                     for arn in (execution, child["executionArn"])}
        opens = {"Prepare data": "nested", "Wait for approval": "waits"}
        yield result, lines, histories[execution], histories[child["executionArn"]], opens


def _expected(parent: list[dict], child: list[dict]) -> list[str]:
    """What the view must show: every state of the run in order, the data run's states (indented)
    between "Prepare data"'s start and end lines, a start line for "Wait for approval"."""
    expected = []
    for record in states_of(parent):
        if record.name == "Prepare data":
            expected += ["▸ Prepare data", *(f"↳ {r.name}" for r in states_of(child))]
        elif record.name == "Wait for approval":
            expected.append("▸ Wait for approval")
        expected.append(record.name)
    return expected


def _names(lines: list[str]) -> list[str]:
    """A printed line reduced to its state: "▸ <name>", "↳ <name>" (nested) or "<name>"."""
    names = []
    for line in lines:
        text = line.strip()
        if text.startswith("▸"):
            names.append(text)
        elif text.startswith("↳"):
            names.append("↳ " + text[4:].rsplit(" ", 4)[0].strip())
        elif text[:1] in "✓✗·":
            names.append(text[2:].rsplit(" ", 4)[0].strip())
    return names


def test_the_demo_shows_every_state_in_order_with_the_approval_inside_its_wait(prod_run) -> None:
    result, lines, parent, child, _ = prod_run
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert _names(lines) == _expected(parent, child)
    approving = next(i for i, line in enumerate(lines) if "approving" in line)
    assert lines[approving - 1].strip() == "▸ Wait for approval" or "↳" in lines[approving - 1]
    assert _names(lines[approving + 1:approving + 2]) == ["Wait for approval"]


def test_no_state_is_dropped_or_repeated_however_the_polls_fall(prod_run) -> None:
    """Replays the two histories as a poller would see them, at every event and at 300 random
    poll schedules (the data run's history read after the run's, so never older)."""
    _, _, parent, child, opens = prod_run
    expected = _expected(parent, child)
    # at equal timestamps the data run's events come first: it ends before its parent sees it end
    events = sorted([(e["timestamp"], 1, e["id"]) for e in parent] + [(e["timestamp"], 0, e["id"]) for e in child])

    def replay(polls: list[int]) -> list[str]:
        view, shown = View(), []
        for k in polls:
            seen = events[:k]
            upto = {source: max((i for _, s, i in seen if s == source), default=0) for source in (0, 1)}
            shown += view.advance([e for e in parent if e["id"] <= upto[1]], opens=opens.get,
                                  nested_history=lambda: [e for e in child if e["id"] <= upto[0]] or None)
        return _names(shown)

    assert replay(list(range(len(events) + 1))) == expected
    rng = random.Random(7)
    for _ in range(300):
        polls = sorted(rng.sample(range(len(events)), rng.randint(1, 12))) + [len(events)]
        assert replay(polls) == expected, polls


def test_an_input_that_is_not_json_stops_the_demo_before_it_synthesizes(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        demo.main(["--example", "churn", "--input", "{tuning: true}"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith("--input (make demo INPUT=...): not JSON: Expecting property name enclosed in double quotes "
                          "at character 1 of '{tuning: true}'")
