"""Linear Learner, the second built-in algorithm: its hyperparameter table, the config that
derives and checks its settings from the dataset, execution-input overrides in prepare_run,
the evaluation reading its JSON Lines answers, and the offline emulation (training, serving,
tuning). Every test here is cheap: no synth, no state machine."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws

from mlops.config import ConfigError, load_stage_config
from mlops.hyperparameters import linear_learner
from tests.conftest import load_lambda
from tests.test_config import _as_multiclass, _as_regression, _edit, _error, config_dir  # noqa: F401 - the fixture
from tests.test_offline_script_jobs import _training

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _as_linear_learner(d: dict, dataset: str = "breast_cancer", **hyperparameters: str) -> None:
    """dev with Linear Learner on ``dataset`` (XGBoost's hyperparameters and tuning dropped)."""
    if dataset == "diabetes":
        _as_regression(d)
    elif dataset == "wine":
        _as_multiclass(d)
    d["pipeline"]["model"] = {"builtin": "linear-learner"}
    d["pipeline"].pop("tuning")
    d["pipeline"]["hyperparameters"] = dict(hyperparameters)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(("dataset", "derived"), [
    ("breast_cancer", {"predictor_type": "binary_classifier"}),
    ("wine", {"predictor_type": "multiclass_classifier", "num_classes": "3"}),
    ("diabetes", {"predictor_type": "regressor"}),
])
def test_predictor_type_and_num_classes_follow_the_dataset(config_dir: Path, dataset: str, derived: dict) -> None:
    _edit(config_dir, "dev", lambda d: _as_linear_learner(d, dataset, epochs="5", wd="auto"))
    pipeline = load_stage_config("dev", config_dir).pipeline
    assert pipeline.linear_learner and pipeline.hyperparameters == {**derived, "epochs": "5", "wd": "auto"}


@pytest.mark.parametrize(("dataset", "hyperparameters", "expected"), [
    ("diabetes", {"predictor_type": "binary_classifier"},
     "pipeline.hyperparameters.predictor_type: 'binary_classifier' does not fit a regression dataset; allowed: regressor"),
    ("wine", {"num_classes": "4"},
     "pipeline.hyperparameters.num_classes: the dataset's label has 3 classes; allowed: 3 (got 4)"),
    ("breast_cancer", {"num_classes": "3"},
     "pipeline.hyperparameters.num_classes: only for multiclass classification (this dataset is binary classification)"),
    ("diabetes", {"loss": "logistic"}, "pipeline.hyperparameters.loss: 'logistic' is not a regressor loss; allowed: auto"),
    ("diabetes", {"target_recall": "0.9"},
     "pipeline.hyperparameters.target_recall: only for predictor_type binary_classifier (this dataset trains a regressor)"),
    ("diabetes", {"eta": "0.1"}, "pipeline.hyperparameters.eta: unknown Linear Learner hyperparameter; did you mean "
                                 "learning_rate?"),
    ("diabetes", {"momentum": "1"}, "pipeline.hyperparameters.momentum: must be a number in [0, 1) or auto (got '1')"),
    ("diabetes", {"num_classes": "2"}, "pipeline.hyperparameters.num_classes: must be an integer in [3, 1000000]"),
])
def test_contradicting_or_invalid_hyperparameters_fail_naming_the_field(config_dir: Path, dataset: str,
                                                                        hyperparameters: dict, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: _as_linear_learner(d, dataset, **hyperparameters))
    assert expected in _error(config_dir)


def _tuning(**tuning) -> dict:
    return {"max_jobs": 2, "max_parallel_jobs": 1, "ranges": [{"name": "wd", "type": "continuous", "min": 1e-7,
                                                               "max": 1, "scaling": "Logarithmic"}], **tuning}


def test_tuning_objective_defaults_to_the_validation_objective_loss(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: (_as_linear_learner(d, "diabetes"), d["pipeline"].update(tuning=_tuning())))
    tuning = load_stage_config("dev", config_dir).pipeline.tuning
    assert (tuning.objective_metric, tuning.objective_type) == ("validation:objective_loss", "Minimize")


@pytest.mark.parametrize(("tuning", "expected"), [
    (_tuning(objective_metric="validation:rmse"),
     "pipeline.tuning.objective_metric: 'validation:rmse' is not a metric Linear Learner reports for regression; "
     "allowed: validation:absolute_loss, validation:mse, validation:objective_loss"),
    (_tuning(objective_metric="validation:mse", objective_type="Maximize"),
     "pipeline.tuning.objective_type: mse is better when lower; allowed: Minimize"),
    (_tuning(ranges=[{"name": "epochs", "type": "integer", "min": 5, "max": 20}]),
     "pipeline.tuning.ranges[0]: range 'epochs': Linear Learner's tuner cannot search epochs; allowed: l1, "
     "learning_rate, mini_batch_size, positive_example_weight_mult, use_bias, wd"),
    (_tuning(ranges=[{"name": "wd", "type": "continuous", "min": -1, "max": 1}]),
     "pipeline.tuning.ranges[0]: range 'wd': must be a number >= 0 or auto (got -1.0)"),
    (_tuning(ranges=[{"name": "use_bias", "type": "integer", "min": 0, "max": 1}]),
     "pipeline.tuning.ranges[0]: range 'use_bias': use_bias is one of true, false; allowed range types: categorical"),
])
def test_tuning_is_checked_against_the_tunable_hyperparameters_and_metrics(config_dir: Path, tuning: dict,
                                                                           expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_as_linear_learner(d, "diabetes"), d["pipeline"].update(tuning=tuning)))
    assert expected in _error(config_dir)


def _ll_candidates(d: dict, select_by: str | None = None, dataset: str = "diabetes") -> None:
    _as_linear_learner(d, dataset)
    d["pipeline"].pop("hyperparameters")
    d["pipeline"]["model"] = {"candidates": [{"name": "linear", "builtin": "linear-learner"},
                                             {"name": "plain", "builtin": "linear-learner",
                                              "hyperparameters": {"normalize_data": "false"}}],
                              **({"select_by": select_by} if select_by else {})}


def test_the_default_select_by_names_what_linear_learner_reports_instead(config_dir: Path) -> None:
    _edit(config_dir, "dev", _ll_candidates)
    assert ("pipeline.model.select_by: candidate 'linear' does not report 'validation:rmse'; it reports "
            "validation:absolute_loss, validation:mse, validation:objective_loss") in _error(config_dir)


def test_linear_learner_candidates_compare_on_a_metric_they_report(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: _ll_candidates(d, "validation:mse"))
    pipeline = load_stage_config("dev", config_dir).pipeline
    assert pipeline.select_by == ("validation:mse", "Minimize")
    assert [c.pipeline.hyperparameters for c in pipeline.candidates] == [
        {"predictor_type": "regressor"}, {"predictor_type": "regressor", "normalize_data": "false"}]


def test_a_metric_whose_name_says_nothing_takes_aws_direction(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: _ll_candidates(d, "validation:dcg", dataset="wine"))
    assert load_stage_config("dev", config_dir).pipeline.select_by == ("validation:dcg", "Maximize")


def _xgboost_and_linear_learner(d: dict, eval_metric: str = "rmse,mse", select_by: str = "validation:mse") -> None:
    """dev on diabetes with two candidates: the built-in XGBoost and Linear Learner."""
    _as_regression(d)
    d["pipeline"].pop("tuning")
    d["pipeline"].pop("hyperparameters")
    d["pipeline"]["model"] = {"candidates": [
        {"name": "xgboost", "builtin": "xgboost", "hyperparameters": {"eval_metric": eval_metric}},
        {"name": "linear", "builtin": "linear-learner"}], "select_by": select_by}


def test_xgboost_and_linear_learner_compete_on_validation_mse(config_dir: Path) -> None:
    """``mse`` is an XGBoost eval metric SageMaker's container computes ("Tune an XGBoost
    Model" lists validation:mse): the regression metric both built-in algorithms report."""
    _edit(config_dir, "dev", _xgboost_and_linear_learner)
    pipeline = load_stage_config("dev", config_dir).pipeline
    assert pipeline.select_by == ("validation:mse", "Minimize")
    assert [c.reports for c in pipeline.candidates] == [
        ["validation:rmse", "validation:mse"], ["validation:absolute_loss", "validation:mse", "validation:objective_loss"]]


@pytest.mark.parametrize(("eval_metric", "select_by", "expected"), [
    ("rmse", "validation:mse", "pipeline.model.select_by: candidate 'xgboost' does not report 'validation:mse'; it "
                               "reports validation:rmse"),
    ("rmse,r2", "validation:mse", "pipeline.model.candidates[0].hyperparameters.eval_metric: 'r2' is not a regression "
                                  "metric; allowed: rmse, rmsle, mae, mape, mphe, poisson-nloglik, gamma-nloglik, "
                                  "gamma-deviance, tweedie-nloglik, mse"),
    ("rmse,mse", "validation:rmse", "pipeline.model.select_by: candidate 'linear' does not report 'validation:rmse'"),
])
def test_a_select_by_one_of_them_does_not_report_is_refused(config_dir: Path, eval_metric: str, select_by: str,
                                                            expected: str) -> None:
    _edit(config_dir, "dev", lambda d: _xgboost_and_linear_learner(d, eval_metric, select_by))
    assert expected in _error(config_dir)


@pytest.mark.parametrize(("mode", "field"), [({"mode": "batch"}, "deployment.mode"),
                                             ({"batch_input_prefix": "batch/input/"}, "deployment.batch_input_prefix")])
def test_batch_transform_is_refused_with_a_linear_learner_model(config_dir: Path, mode: dict, field: str) -> None:
    """Batch mode joins each CSV input line with its prediction (JoinSource Input), which needs a
    CSV answer; Linear Learner answers JSON only. A candidate may win, so one candidate suffices."""
    _edit(config_dir, "dev", lambda d: (_xgboost_and_linear_learner(d), d["deployment"].update(mode)))
    message = _error(config_dir)
    assert f"{field}: " in message and "Linear Learner" in message and "\n" not in message


def test_a_linear_learner_stage_does_not_offer_batch_to_an_execution_input(config_dir: Path) -> None:
    from mlops.constructs.training.pipeline import deployment_modes

    _edit(config_dir, "dev", _xgboost_and_linear_learner)
    assert deployment_modes(load_stage_config("dev", config_dir).pipeline) == ["realtime", "serverless", "async"]
    assert deployment_modes(load_stage_config("dev").pipeline) == ["realtime", "serverless", "async", "batch"]


# ---------------------------------------------------------------- the table


def test_table_reads_values_like_sagemaker_passes_them() -> None:
    assert linear_learner.canonical("wd", 0.01) == "0.01" and linear_learner.canonical("wd", " auto") == "auto"
    assert linear_learner.canonical("epochs", "15") == "15"
    assert linear_learner.canonical("positive_example_weight_mult", "balanced") == "balanced"
    for name, value in [("epochs", "1.5"), ("use_bias", True), ("learning_rate", 0), ("quantile", 1),
                        ("optimizer", "adagrad"), ("predictor_type", "regression")]:
        with pytest.raises(ValueError, match="must be"):
            linear_learner.canonical(name, value)


# ---------------------------------------------------------------- prepare_run overrides


@pytest.fixture(scope="module")
def prepare_run():
    return load_lambda("prepare_run")


def _event(hyperparameters: dict, problem_type: str = "regression", classes: int | None = None, **defaults) -> dict:
    stage = {"predictor_type": linear_learner.PREDICTOR_TYPES[problem_type],
             **({"num_classes": str(classes)} if problem_type == "multiclass_classification" else {})}
    return {"input": {"hyperparameters": hyperparameters},
            "execution": {"id": "arn:aws:states:eu-west-1:123456789012:execution:sm:run-1", "name": "run-1"},
            "defaults": {"stem": "demo-dev", "dataset": "diabetes", "problem_type": problem_type, "classes": classes,
                         "label": "target", "hyperparameters": stage, "tuning": False,
                         "deployment_mode": "realtime", "deployment_modes": ["realtime"], "raw_bucket": "raw",
                         "raw_prefix": "sample/", "curated_bucket": "curated", "artifacts_bucket": "artifacts",
                         "experiment": "demo-dev", **defaults}}


def test_input_overrides_are_checked_against_linear_learners_table(prepare_run) -> None:
    run = prepare_run.prepare_run(prepare_run.Event.model_validate(_event({"epochs": 20, "wd": "auto"})))
    assert run["hyperparameters"] == {"predictor_type": "regressor", "epochs": "20", "wd": "auto"}


@pytest.mark.parametrize(("given", "problem_type", "expected"), [
    ({"num_round": 5}, "regression", "input.hyperparameters.num_round: unknown Linear Learner hyperparameter"),
    ({"predictor_type": "binary_classifier"}, "regression",
     "input.hyperparameters.predictor_type: 'binary_classifier' does not fit a regression dataset; allowed: regressor"),
    ({"num_classes": 4}, "multiclass_classification",
     "input.hyperparameters.num_classes: the dataset's label has 3 classes; allowed: 3 (got 4)"),
    ({"loss": "softmax_loss"}, "regression", "input.hyperparameters.loss: 'softmax_loss' is not a regressor loss"),
])
def test_input_overrides_that_do_not_fit_fail_naming_the_field(prepare_run, given: dict, problem_type: str,
                                                               expected: str) -> None:
    classes = 3 if problem_type == "multiclass_classification" else None
    with pytest.raises(prepare_run.InvalidExecutionInput, match=expected.replace("(", r"\(").replace(")", r"\)")):
        prepare_run.prepare_run(prepare_run.Event.model_validate(_event(given, problem_type, classes)))


# ---------------------------------------------------------------- offline emulation

BUCKET, REGION = "artifacts", "eu-west-1"
LL_IMAGE = f"438346466558.dkr.ecr.{REGION}.amazonaws.com/linear-learner:1"
DATASETS = {"diabetes": "regressor", "breast_cancer": "binary_classifier", "wine": "multiclass_classifier"}


@pytest.fixture(scope="module")
def offline():
    """moto with the offline patches; each bundled dataset's splits (no header, label first)."""
    from sklearn import datasets

    from tools.offline import adapter, runner
    from tools.offline.iam import PolicyModel

    hooks = adapter.Hooks(policies=PolicyModel(identity={}))
    with runner._fake_credentials(), mock_aws(config=runner.MOTO_CONFIG), adapter.patched(hooks):  # noqa: SLF001
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for name in DATASETS:
            features, labels = getattr(datasets, f"load_{name}")(return_X_y=True)
            rows = np.column_stack([labels, features])[np.random.default_rng(7).permutation(len(labels))]
            cut = int(len(rows) * 0.7), int(len(rows) * 0.85)
            for split, part in (("train", rows[:cut[0]]), ("validation", rows[cut[0]:cut[1]]), ("test", rows[cut[1]:])):
                buffer = io.StringIO()
                np.savetxt(buffer, part, delimiter=",", fmt="%.6g")
                s3.put_object(Bucket=BUCKET, Key=f"{name}/{split}/part-00000.csv", Body=buffer.getvalue().encode())
        yield


def _ll_training(name: str, dataset: str, **hyperparameters: str) -> dict:
    return _training(name, {"predictor_type": DATASETS[dataset], **hyperparameters}, image=LL_IMAGE, data=dataset)


def _split_rows(dataset: str, split: str) -> np.ndarray:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"{dataset}/{split}/part-00000.csv")["Body"].read()
    return np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)


@pytest.mark.parametrize(("dataset", "hyperparameters", "metric", "bounds"), [
    ("diabetes", {}, "validation:mse", (2000, 4000)),  # about 55 points of rmse on the score's 25-346 scale
    ("breast_cancer", {}, "validation:roc_auc_score", (0.97, 1.0)),
    ("wine", {"num_classes": "3"}, "validation:multiclass_accuracy", (0.9, 1.0)),
])
def test_the_emulation_trains_the_predictor_type_and_reports_linear_learners_metrics(
        offline, dataset: str, hyperparameters: dict, metric: str, bounds: tuple[float, float]) -> None:
    from tools.offline import jobs

    outcome = jobs.train(_ll_training(f"ll-{dataset.replace('_', '-')}", dataset, **hyperparameters))
    problem = {"regressor": "regression", "binary_classifier": "binary_classification",
               "multiclass_classifier": "multiclass_classification"}[DATASETS[dataset]]
    assert set(outcome["metrics"]) == {f"validation:{m}" for m in linear_learner.metrics(problem)}
    assert bounds[0] <= outcome["metrics"][metric] <= bounds[1]
    with tarfile.open(fileobj=io.BytesIO(boto3.client("s3").get_object(
            Bucket=BUCKET, Key=f"models/ll-{dataset.replace('_', '-')}/output/model.tar.gz")["Body"].read())) as tar:
        assert tar.getnames() == ["linear-learner-emulation.json"]  # the emulation's own artifact, said so


def test_the_emulation_is_seeded_and_follows_wd(offline) -> None:
    from tools.offline import jobs

    first, again = (jobs.train(_ll_training(f"ll-seed-{i}", "diabetes"))["metrics"] for i in (1, 2))
    assert first == again
    heavy = jobs.train(_ll_training("ll-heavy-wd", "diabetes", wd="1"))["metrics"]
    assert heavy["validation:mse"] > first["validation:mse"]  # a strong L2 penalty shrinks the fit towards the mean


def test_the_emulation_refuses_what_it_does_not_emulate(offline) -> None:
    from tools.offline import jobs

    outcome = jobs.train(_ll_training("ll-quantile", "diabetes", loss="quantile_loss"))
    assert outcome["failure"].startswith("ClientError: the offline Linear Learner emulation trains the default loss only")


def test_serving_answers_in_linear_learners_response_formats(offline) -> None:
    from tools.offline import jobs

    jobs.train(_ll_training("ll-serve-wine", "wine", num_classes="3"))
    predictor = jobs.load_predictor({"Image": LL_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/ll-serve-wine/output/"
                                                                        "model.tar.gz"})
    rows = _split_rows("wine", "test")[:2]
    body = "\n".join(",".join(f"{v:.6g}" for v in row[1:]) for row in rows)
    answer = json.loads(predictor.answer(body))  # InvokeEndpoint: JSON ({"predictions": [...]})
    assert [set(p) for p in answer["predictions"]] == [{"score", "predicted_label"}] * 2
    assert all(sum(p["score"]) == pytest.approx(1) and len(p["score"]) == 3 for p in answer["predictions"])
    lines = predictor.json_records(body)  # batch transform, Accept application/jsonlines
    assert [json.loads(line) for line in lines] == answer["predictions"]
    with pytest.raises(ValueError, match="Linear Learner does not answer text/csv"):
        predictor.records(body)


def test_a_transform_of_the_test_split_is_read_by_the_evaluation(offline, tmp_path: Path) -> None:
    from jobs.evaluation import evaluate
    from jobs.evaluation.evaluate import flat_metrics
    from tools.offline import jobs

    jobs.train(_ll_training("ll-transform", "diabetes"))
    model = {"Image": LL_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/ll-transform/output/model.tar.gz"}
    boto3.client("sagemaker").create_model(ModelName="ll-transform", PrimaryContainer=model,
                                           ExecutionRoleArn="arn:aws:iam::123456789012:role/Execution")
    request = {"TransformJobName": "ll-transform", "ModelName": "ll-transform", "BatchStrategy": "MultiRecord",
               "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                  "S3Uri": f"s3://{BUCKET}/diabetes/test/"}},
                                  "ContentType": "text/csv", "SplitType": "Line"},
               "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/predictions/", "Accept": "application/jsonlines",
                                   "AssembleWith": "Line"},
               "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
               "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "None", "OutputFilter": "$"}}
    assert jobs.run_transform(request) == {}
    csv_request = {**request, "TransformOutput": {**request["TransformOutput"], "Accept": "text/csv"}}
    assert "Linear Learner does not answer text/csv" in jobs.run_transform(csv_request)["failure"]
    for name, key in (("test", "diabetes/test/part-00000.csv"), ("predictions", "predictions/part-00000.csv.out")):
        (tmp_path / name).mkdir()
        (tmp_path / name / Path(key).name).write_bytes(
            boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    metrics = flat_metrics(evaluate.main(["--problem-type", "regression", "--test-dir", str(tmp_path / "test"),
                                          "--predictions-dir", str(tmp_path / "predictions"),
                                          "--output-dir", str(tmp_path / "out")]))
    assert 40 < metrics["rmse"] < 70 and metrics["r2"] > 0.3


def test_tuning_offline_searches_linear_learners_tunable_hyperparameters(offline) -> None:
    from tools.offline import jobs

    definition = _ll_training("ll-tune-template", "diabetes")
    for key in ("TrainingJobName", "HyperParameters"):
        definition.pop(key)
    outcome = jobs.run_tuning({"HyperParameterTuningJobName": "ll-tune", "HyperParameterTuningJobConfig": {
        "Strategy": "Random", "HyperParameterTuningJobObjective": {"Type": "Minimize",
                                                                   "MetricName": "validation:objective_loss"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 1},
        "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "wd", "MinValue": "1e-7", "MaxValue": "1",
                                                           "ScalingType": "Logarithmic"}],
                            "CategoricalParameterRanges": [{"Name": "use_bias", "Values": ["true", "false"]}]}},
        "TrainingJobDefinition": {**definition, "StaticHyperParameters": {"predictor_type": "regressor"}}})
    best = outcome["best"]
    assert set(best["TunedHyperParameters"]) == {"wd", "use_bias"}
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "validation:objective_loss"


@pytest.mark.parametrize(("answer", "rows", "expected"), [
    ('{"predictions": [{"score": 51.5}, {"score": 60.25}]}', 2, [51.5, 60.25]),  # a regressor, InvokeEndpoint's JSON
    ('{"predictions": [{"score": 0.9, "predicted_label": 1}]}', 1, [0.9]),  # binary: the positive class's probability
    ('{"predictions": [{"score": [0.1, 0.7, 0.2], "predicted_label": 1}]}', 1, [[0.1, 0.7, 0.2]]),  # multiclass
    ('{"score": 51.5}\n{"score": 60.25}\n', 2, [51.5, 60.25]),  # JSON Lines
])
def test_the_offline_client_reads_linear_learners_json_answer(answer: str, rows: int, expected: list) -> None:
    from tools.offline.runner import parse_answer

    assert parse_answer(answer, rows) == expected


def test_xgboost_reports_the_containers_mse_which_linear_learner_reports_too(offline) -> None:
    """SageMaker's XGBoost container computes ``mse`` itself (the package does not know it):
    ``validation:mse`` is the regression metric both built-in algorithms report."""
    from tools.offline import jobs

    request = _ll_training("xgb-mse", "diabetes")
    request["AlgorithmSpecification"]["TrainingImage"] = f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:1.7-1"
    request["HyperParameters"] = {"objective": "reg:squarederror", "eval_metric": "rmse,mse", "num_round": "20"}
    metrics = jobs.train(request)["metrics"]
    assert metrics["validation:mse"] == pytest.approx(metrics["validation:rmse"] ** 2, rel=1e-4)
