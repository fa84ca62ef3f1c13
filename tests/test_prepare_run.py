"""The pipeline's first state: input validation and name derivation."""

from __future__ import annotations

import re


import boto3
import pytest
from moto import mock_aws
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FakeLambdaContext, load_lambda

prepare = load_lambda("prepare_run")

ARN = "arn:aws:states:eu-west-1:123456789012:execution:mlops-demo-dev-training:{}"
DEFAULTS = {
    "stem": "mlops-demo-dev",
    "dataset": "breast_cancer",
    "problem_type": "binary_classification",
    "hyperparameters": {"objective": "binary:logistic", "num_round": "100", "max_depth": "5"},
    "label": "target",
    "tuning": False,
    "tuning_available": True,
    "deployment_mode": "realtime",
    "deployment_modes": ["realtime", "serverless", "async", "batch"],
    "raw_bucket": "raw-bucket",
    "raw_prefix": "sample/breast_cancer/",
    "curated_bucket": "curated-bucket",
    "artifacts_bucket": "artifacts-bucket",
    "experiment": "mlops-demo-dev-experiments",
}


def _event(run_input=None, name: str = "6f1c2a6e-1d2b-4f7e-9a55-0c1e0e1b2c3d") -> dict:
    return {"input": run_input, "execution": {"id": ARN.format(name), "name": name}, "defaults": DEFAULTS}



@pytest.fixture(autouse=True)
def _aws(aws_credentials):
    """The handler creates the stage's experiment and the run's trial (moto)."""
    with mock_aws():
        prepare._sagemaker.cache_clear()
        yield
        prepare._sagemaker.cache_clear()


def _run(run_input=None, defaults=None, **kwargs) -> dict:
    event = _event(run_input, **kwargs)
    event["defaults"] = {**DEFAULTS, **(defaults or {})}
    return prepare.handler(event, FakeLambdaContext())


def test_no_input_means_config_defaults() -> None:
    run = _run()
    assert run["hyperparameters"] == DEFAULTS["hyperparameters"]
    assert run["tuning"] is False and run["deployment_mode"] == "realtime"
    assert run["trigger"] == {"source": "manual", "reason": ""}
    assert run["s3"]["raw"] == "s3://raw-bucket/sample/breast_cancer/"
    assert run["s3"]["train"] == f"s3://curated-bucket/breast_cancer/runs/{run['names']['run']}/train/"
    assert run["s3"]["output"] == f"s3://artifacts-bucket/runs/{run['names']['run']}/model/"


def test_input_overrides_defaults() -> None:
    run = _run({"hyperparameters": {"max_depth": 3, "eta": 0.1}, "tuning": True, "deployment_mode": "batch",
                "trigger": {"source": "drift-alarm", "reason": "feature drift 0.4"}})
    assert run["hyperparameters"] == {**DEFAULTS["hyperparameters"], "max_depth": "3", "eta": "0.1"}
    assert run["tuning"] is True and run["deployment_mode"] == "batch"
    assert run["trigger"]["source"] == "drift-alarm"


def test_tuned_hyperparameters_are_not_static() -> None:
    run = _run({"hyperparameters": {"eta": 0.3}}, defaults={"tuned_hyperparameters": ["eta", "max_depth"]})
    assert run["hyperparameters"]["eta"] == "0.3"
    assert "eta" not in run["static_hyperparameters"] and "max_depth" not in run["static_hyperparameters"]
    assert run["static_hyperparameters"]["objective"] == "binary:logistic"


def test_modes_and_tuning_are_limited_to_what_the_stage_deploys() -> None:
    with pytest.raises(prepare.InvalidExecutionInput, match=r"input.deployment_mode: 'batch' is not deployed .*allowed: realtime"):
        _run({"deployment_mode": "batch"}, defaults={"deployment_modes": ["realtime"]})
    with pytest.raises(prepare.InvalidExecutionInput, match="input.tuning: hyperparameter tuning is not configured"):
        _run({"tuning": True}, defaults={"tuning_available": False})


def test_experiment_and_trial_are_created_once_per_stage_and_run() -> None:
    first = _run()
    _run()  # a retried first state must not fail on "already exists"
    client = boto3.client("sagemaker")
    assert [e["ExperimentName"] for e in client.list_experiments()["ExperimentSummaries"]] == [DEFAULTS["experiment"]]
    assert [t["TrialName"] for t in client.list_trials()["TrialSummaries"]] == [first["names"]["run"]]


@pytest.mark.parametrize(
    ("run_input", "message"),
    [
        ({"deployment_mode": "edge"}, "input.deployment_mode: must be one of 'realtime', 'serverless', 'async' or 'batch'"),
        ({"hyperparameters": {"max_dept": 3}}, "input.hyperparameters.max_dept: unknown XGBoost hyperparameter; "
                                               "did you mean max_depth?"),
        ({"hyperparameters": {"num_rounds": 10}}, "input.hyperparameters.num_rounds: unknown XGBoost hyperparameter; "
                                                  "did you mean num_round?"),
        ({"tuning": "sometimes"}, "input.tuning: must be true or false (got 'sometimes')"),
        ({"tuning": "yes"}, "input.tuning: must be true or false (got 'yes')"),  # no coercion
        ({"tuning": 1}, "input.tuning: must be true or false (got 1)"),
        ({"epochs": 3}, "input.epochs: unknown field; allowed: hyperparameters, tuning, deployment_mode, trigger"),
        ({"trigger": {"source": "cron"}}, "input.trigger.source: must be one of"),
        ({"trigger": {"surprise": 1}}, "input.trigger.surprise: unknown field; allowed: source, reason"),
        ({"trigger": {"reason": 7}}, "input.trigger.reason: must be a string (got 7)"),
        ({"hyperparameters": {"max_depth": "three"}}, "input.hyperparameters.max_depth: must be an integer >= 0 (got 'three')"),
        ({"hyperparameters": {"max_depth": -1}}, "input.hyperparameters.max_depth: must be an integer >= 0 (got -1)"),
        ({"hyperparameters": {"max_depth": 4.5}}, "input.hyperparameters.max_depth: must be an integer >= 0 (got 4.5)"),
        ({"hyperparameters": {"max_depth": True}}, "input.hyperparameters.max_depth: must be an integer >= 0 (got True)"),
        ({"hyperparameters": {"eta": 1.5}}, "input.hyperparameters.eta: must be a number in [0, 1] (got 1.5)"),
        ({"hyperparameters": {"subsample": 0}}, "input.hyperparameters.subsample: must be a number in (0, 1] (got 0)"),
        ({"hyperparameters": {"booster": "gbtre"}}, "input.hyperparameters.booster: must be one of gbtree, gblinear, dart"),
        ({"hyperparameters": {"num_round": 1_000_000_000}},
         "input.hyperparameters.num_round: must be at most 10000, the stage's pipeline.max_num_round (got 1000000000)"),
        ({"hyperparameters": {"objective": "reg:squarederror"}},
         "input.hyperparameters.objective: 'reg:squarederror' does not fit a binary classification dataset; "
         "allowed: binary:logistic"),
        ({"hyperparameters": {"eval_metric": "rmse"}},
         "input.hyperparameters.eval_metric: 'rmse' is not a binary classification metric"),
        ({"hyperparameters": {"base_score": 2}}, "input.hyperparameters.base_score: must lie in (0, 1) for binary:logistic"),
    ],
)
def test_bad_input_fails_with_the_field_named(run_input: dict, message: str) -> None:
    with pytest.raises(prepare.InvalidExecutionInput) as caught:
        _run(run_input)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)  # one line


@pytest.mark.parametrize("run_input", [[1, 2, 3], "tune please", 42, True])
def test_input_that_is_not_an_object_is_refused_naming_what_is_allowed(run_input) -> None:
    with pytest.raises(prepare.InvalidExecutionInput, match=r"^input: the execution input must be a JSON object"):
        _run(run_input)


def test_hyperparameters_read_as_their_type_and_reach_sagemaker_as_strings() -> None:
    run = _run({"hyperparameters": {"max_depth": "6", "eta": 0.25, "num_round": 10.0, "booster": "dart"}})
    assert {k: run["hyperparameters"][k] for k in ("max_depth", "eta", "num_round", "booster")} == {
        "max_depth": "6", "eta": "0.25", "num_round": "10", "booster": "dart"}


def test_num_round_ceiling_comes_from_the_stage() -> None:
    assert _run({"hyperparameters": {"num_round": 500}}, defaults={"max_num_round": 500})["hyperparameters"]["num_round"] == "500"
    with pytest.raises(prepare.InvalidExecutionInput, match="must be at most 499"):
        _run({"hyperparameters": {"num_round": 500}}, defaults={"max_num_round": 499})


def test_multiclass_num_class_must_match_the_dataset() -> None:
    multiclass = {"problem_type": "multiclass_classification", "classes": 3,
                  "hyperparameters": {"objective": "multi:softprob", "num_class": "3", "num_round": "10"}}
    assert _run({"hyperparameters": {"max_depth": 3}}, defaults=multiclass)["hyperparameters"]["num_class"] == "3"
    with pytest.raises(prepare.InvalidExecutionInput,
                       match=r"input.hyperparameters.num_class: the dataset's label has 3 classes; allowed: 3 \(got 4\)"):
        _run({"hyperparameters": {"num_class": 4}}, defaults=multiclass)


SCRIPT_DEFAULTS = {"algorithm": "script", "hyperparameters": {"C": "1.0", "max_iter": "1000"},
                   "tuned_hyperparameters": ["C"],
                   "framework_hyperparameters": {"sagemaker_program": '"train.py"',
                                                 "sagemaker_submit_directory": '"s3://assets/code.tar.gz"'}}


def test_a_script_model_takes_the_names_it_declares_and_keeps_the_framework_entries() -> None:
    run = _run({"hyperparameters": {"C": 0.5, "max_iter": 200}}, defaults=SCRIPT_DEFAULTS)
    assert run["hyperparameters"] == {"C": "0.5", "max_iter": "200", "sagemaker_program": '"train.py"',
                                      "sagemaker_submit_directory": '"s3://assets/code.tar.gz"'}
    # a tuning job keeps the framework's entries fixed and searches C
    assert set(run["static_hyperparameters"]) == {"max_iter", "sagemaker_program", "sagemaker_submit_directory"}


@pytest.mark.parametrize(("hyperparameters", "message"), [
    ({"c": 0.5}, "input.hyperparameters.c: not a hyperparameter of the stage's training script; allowed: C, max_iter"),
    ({"sagemaker_program": "other.py"}, "input.hyperparameters.sagemaker_program: not a hyperparameter"),
    ({"C": [1, 2]}, "input.hyperparameters.C: must be a string or a number"),
    ({"C": True}, "input.hyperparameters.C: must be a string or a number"),
])
def test_a_script_model_refuses_names_its_script_does_not_declare(hyperparameters: dict, message: str) -> None:
    with pytest.raises(prepare.InvalidExecutionInput, match=re.escape(message)):
        _run({"hyperparameters": hyperparameters}, defaults=SCRIPT_DEFAULTS)


def test_the_run_names_its_candidate_model_and_prediction_job() -> None:
    run = _run()
    assert run["names"]["candidate"].startswith(f"{DEFAULTS['stem']}-model-candidate-")  # under the model-* grant
    assert run["names"]["predict"].startswith(f"{DEFAULTS['stem']}-predict-")
    assert run["s3"]["predictions"].endswith("/predictions/")


def test_malformed_state_payload_is_a_bug_not_user_error() -> None:
    event = _event()
    event.pop("defaults")
    with pytest.raises(ValueError, match="malformed prepare-run event"):
        prepare.handler(event, FakeLambdaContext())


def test_names_follow_sagemaker_rules() -> None:
    names = _run()["names"]
    for kind, name in names.items():
        assert prepare.SAGEMAKER_NAME.match(name), (kind, name)
    assert names["endpoint"] == "mlops-demo-dev-endpoint"
    assert len(names["tune"]) + prepare.NAME_SUFFIX_RESERVE <= 32
    assert names["train"].startswith("mlops-demo-dev-train-6f1c2a6e")


def test_a_stage_whose_prefix_is_too_long_tunes_under_its_tuning_stem() -> None:
    """The state machine passes ``tuning_stem`` when ``<project>-<stage>`` does not fit in tuning
    job names (32 characters); every other name keeps the full stem."""
    stem = "analytics-platform-x-experiment"
    names = _run(defaults={"stem": stem, "tuning_stem": "analytics-pl-1a2b"})["names"]
    assert names["tune"].startswith("analytics-pl-1a2b-") and len(names["tune"]) + prepare.NAME_SUFFIX_RESERVE <= 32
    assert names["train"].startswith(f"{stem}-train-")


def test_names_are_stable_per_execution_and_differ_between_executions() -> None:
    assert _run()["names"] == _run()["names"]
    first, second = _run(name="nightly")["names"], _run(name="nightly-2")["names"]
    assert all(first[kind] != second[kind] for kind in ("train", "tune", "eval", "model", "config"))


execution_names = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_"), min_size=1, max_size=80
)


@settings(max_examples=300, deadline=None)
@given(name=execution_names, stem=st.from_regex(r"[a-z][a-z0-9-]{1,18}[a-z0-9]-[a-z][a-z0-9]{1,9}", fullmatch=True))
def test_any_execution_name_yields_valid_names(name: str, stem: str) -> None:
    execution = prepare.Execution(id=ARN.format(name), name=name)
    for kind, limit in (("train", 63), ("hpo", 32), ("config", 63)):
        derived = prepare.derive_name(kind, stem, execution, limit=limit)
        suffixed = f"{derived}-999-99"  # the longest suffix the state machine appends
        assert prepare.SAGEMAKER_NAME.match(suffixed) and len(suffixed) <= limit, suffixed


@settings(max_examples=200, deadline=None)
@given(a=execution_names, b=execution_names)
def test_truncation_never_collides(a: str, b: str) -> None:
    if a == b:
        return
    name_a = prepare.derive_name("train", "mlops-demo-dev", prepare.Execution(id=ARN.format(a), name=a))
    name_b = prepare.derive_name("train", "mlops-demo-dev", prepare.Execution(id=ARN.format(b), name=b))
    assert name_a != name_b


def test_published_input_schema_is_current() -> None:
    """docs/execution-input.schema.json is what the first state enforces (regenerate: make schema)."""
    import json
    from pathlib import Path

    published = json.loads((Path(__file__).resolve().parent.parent / "docs" / "execution-input.schema.json").read_text())
    assert published == prepare.input_schema()
    # names depend on the stage's algorithm (XGBoost's table, or what a script declares): checked at run time
    assert "script model" in published["properties"]["hyperparameters"]["description"]


CANDIDATES = {"hyperparameters": {}, "tuning_available": False, "candidates": [
    {"name": "xgboost", "hyperparameters": {"objective": "binary:logistic", "num_round": "100"}},
    {"name": "sklearn", "hyperparameters": {"C": "1.0", "sagemaker_program": '"train.py"'}}]}


def test_candidates_each_get_their_job_and_hyperparameters_by_name() -> None:
    run = _run(defaults=CANDIDATES)
    assert list(run["candidates"]) == ["xgboost", "sklearn"]  # $.run.candidates.<name>: a definite JSONPath
    assert run["candidates"]["sklearn"]["hyperparameters"] == {"C": "1.0", "sagemaker_program": '"train.py"'}
    jobs = [candidate["job"] for candidate in run["candidates"].values()]
    assert jobs[0].startswith("mlops-demo-dev-train-xgboost-") and jobs[1].startswith("mlops-demo-dev-train-sklearn-")
    assert all(len(job) <= 59 for job in jobs)  # room for the -<redrive>-<retry> suffix in 63 characters
    assert "candidates" not in _run()  # a single model's run has none


TUNED = {**CANDIDATES, "tuning_available": True, "candidates": [
    {**CANDIDATES["candidates"][0], "tuning_available": True, "tuned_hyperparameters": ["num_round"]},
    CANDIDATES["candidates"][1]]}


@pytest.mark.parametrize(("given", "tunes"), [({}, False), ({"tuning": True}, True), ({"tuning": False}, False)])
def test_a_candidate_with_its_own_tuning_tunes_when_asked(given: dict, tunes: bool) -> None:
    xgboost, sklearn = _run(given, defaults=TUNED)["candidates"].values()
    assert xgboost["tuning"] is tunes and "tuning" not in sklearn and "tune" not in sklearn  # sklearn has no tuning
    assert xgboost["static_hyperparameters"] == {"objective": "binary:logistic"}  # the tuner sets num_round
    assert len(xgboost["tune"]) <= 32 - prepare.NAME_SUFFIX_RESERVE


def test_a_candidate_tuning_by_default_tunes_unless_the_input_says_not() -> None:
    defaults = {**TUNED, "candidates": [{**TUNED["candidates"][0], "tuning": True}, TUNED["candidates"][1]]}
    assert _run(defaults=defaults)["candidates"]["xgboost"]["tuning"] is True
    assert _run({"tuning": False}, defaults=defaults)["candidates"]["xgboost"]["tuning"] is False


def test_candidate_names_stay_apart_when_truncation_would_join_them() -> None:
    """A long stem leaves no room for the candidate's name in 32 (tuning) or 63 characters: the
    hash tells the candidates apart."""
    both = {**TUNED, "stem": "analytics-platform-x-experiment", "candidates": [
        {**candidate, "tuning_available": True} for candidate in TUNED["candidates"]]}
    xgboost, sklearn = _run(defaults=both, name="a-very-long-execution-name-" * 2)["candidates"].values()
    assert xgboost["tune"] != sklearn["tune"] and xgboost["job"] != sklearn["job"]
    assert xgboost["tune"][:-7] == sklearn["tune"][:-7]  # the same readable part: only the hash differs


def test_a_candidates_run_takes_no_hyperparameters_from_the_input() -> None:
    with pytest.raises(prepare.InvalidExecutionInput, match=r"input.hyperparameters: this stage trains candidates "
                       r"\(xgboost, sklearn\), each with the hyperparameters of its pipeline.model.candidates entry"):
        _run({"hyperparameters": {"C": 2}}, defaults=CANDIDATES)
