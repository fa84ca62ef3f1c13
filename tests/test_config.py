"""Stage configuration: valid files load; every kind of mistake fails with one message
naming the file, the field path and what is allowed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mlops.config import (
    CONFIG_DIR,
    ConfigError,
    StageConfig,
    bundled_dataset,
    dataset_columns,
    load_stage_config,
    load_stages,
)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    for path in CONFIG_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _edit(config_dir: Path, stage: str, edit) -> None:
    path = config_dir / f"{stage}.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _error(config_dir: Path, stage: str = "dev") -> str:
    with pytest.raises(ConfigError) as caught:
        load_stage_config(stage, config_dir)
    return str(caught.value)


def test_shipped_stages_load() -> None:
    configs = {config.stage: config for config in load_stages("all")}
    assert set(configs) == {"dev", "prod"}
    assert all(isinstance(config, StageConfig) for config in configs.values())


def test_prod_protects_state_and_dev_may_destroy() -> None:
    dev, prod = load_stage_config("dev"), load_stage_config("prod")
    assert prod.protection.retain_stateful_resources and prod.protection.termination_protection
    assert not dev.protection.retain_stateful_resources and not dev.protection.termination_protection


def test_cost_allocation_tags_include_project_and_stage() -> None:
    tags = load_stage_config("prod").cost_allocation_tags
    assert tags["ml-project"] == "mlops-demo" and tags["stage"] == "prod"
    assert {"cost-center", "owner"} <= set(tags)


def test_config_is_frozen() -> None:
    config = load_stage_config("dev")
    with pytest.raises(Exception):
        config.project = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda d: d.update(budgte=d.pop("budget")),
            ["dev.yaml", "budgte: unknown key", "allowed keys here: project, stage, environment"],
            id="unknown-top-level-key",
        ),
        pytest.param(
            lambda d: d["data_lake"].update(retention_days=3),
            ["data_lake.retention_days: unknown key", "noncurrent_version_expiration_days"],
            id="unknown-nested-key",
        ),
        pytest.param(
            lambda d: d["budget"].update(monthly_limit_usd="lots"),
            ["budget.monthly_limit_usd", "valid number", "got 'lots'"],
            id="wrong-type",
        ),
        pytest.param(
            lambda d: d["training"].update(instance_type="m5.xlarge"),
            ["training.instance_type", "starts with 'ml.'", "got 'm5.xlarge'"],
            id="instance-type-not-ml",
        ),
        pytest.param(
            lambda d: d["budget"]["alerts"][1].update(threshold_percent=5000),
            ["budget.alerts[1].threshold_percent", "out of range", "less than or equal to 1000", "got 5000"],
            id="threshold-out-of-range",
        ),
        pytest.param(
            lambda d: d["notifications"].update(emails=["ops-at-example.com"]),
            ["notifications.emails[0]", "email address", "got 'ops-at-example.com'"],
            id="malformed-email",
        ),
        pytest.param(
            lambda d: d["budget"]["alerts"][0].update(notification_type="DAILY"),
            ["budget.alerts[0].notification_type", "'ACTUAL' or 'FORECASTED'", "got 'DAILY'"],
            id="enum-value",
        ),
        pytest.param(
            lambda d: d.update(stage="prod"),
            ["dev.yaml", "stage: must equal the file name 'dev'", "got 'prod'"],
            id="stage-does-not-match-file",
        ),
        pytest.param(
            lambda d: d["tags"].pop("owner"),
            ["tags", "missing required cost-allocation tag(s): owner"],
            id="missing-required-tag",
        ),
        pytest.param(
            lambda d: d["tags"].update(stage="dev"),
            ["tags", "'stage' is set automatically"],
            id="reserved-tag-key",
        ),
        pytest.param(
            lambda d: d["tags"].update({"aws:owner": "me"}),
            ["tags", "not starting with 'aws:'"],
            id="aws-prefixed-tag",
        ),
        pytest.param(
            lambda d: d.update(project="My_Project"),
            ["project: must be 3 to 20 characters", "got 'My_Project'"],
            id="project-name-pattern",
        ),
        pytest.param(
            lambda d: d.pop("budget"),
            ["budget: required but missing"],
            id="missing-section",
        ),
        pytest.param(
            lambda d: d["environment"].update(account="1234"),
            ["environment.account: must match", "got '1234'"],
            id="account-id",
        ),
        pytest.param(
            lambda d: d["pipeline"]["metric_thresholds"].append({"metric": "rmse", "direction": "<=", "value": 5}),
            ["pipeline.metric_thresholds[2].metric", "'rmse' is not a binary_classification metric", "allowed: accuracy"],
            id="metric-of-the-wrong-problem-type",
        ),
        pytest.param(
            lambda d: d["pipeline"]["metric_thresholds"][0].update(value=1.5),
            ["pipeline.metric_thresholds[0]", "threshold for f1 out of range: must be between 0 and 1", "got 1.5"],
            id="metric-threshold-out-of-range",
        ),
        pytest.param(
            lambda d: d["pipeline"]["metric_thresholds"][0].update(direction="=>"),
            ["pipeline.metric_thresholds[0].direction", "'>=' or '<='", "got '=>'"],
            id="threshold-direction",
        ),
        pytest.param(
            lambda d: d["deployment"].update(max_instance_count=0),
            ["deployment.max_instance_count", "greater than or equal to 1"],
            id="autoscaling-max-zero",
        ),
        pytest.param(
            lambda d: d["deployment"].update(initial_instance_count=3, max_instance_count=2),
            ["deployment.max_instance_count: must be >= initial_instance_count (3)"],
            id="autoscaling-max-below-initial",
        ),
        pytest.param(
            lambda d: d["deployment"].update(mode="edge"),
            ["deployment.mode", "'realtime'", "got 'edge'"],
            id="deployment-mode-not-built",
        ),
        pytest.param(
            lambda d: d["pipeline"].update(evaluation_instance_type="m5.large"),
            ["pipeline.evaluation_instance_type", "starts with 'ml.'"],
            id="evaluation-instance-not-ml",
        ),
        pytest.param(
            lambda d: d["pipeline"]["tuning"].update(max_parallel_jobs=9),
            ["pipeline.tuning.max_parallel_jobs: must be <= max_jobs (4)"],
            id="tuning-parallel-above-max",
        ),
        pytest.param(
            lambda d: d["pipeline"]["tuning"]["ranges"][1].update(min=9),
            ["range 'max_depth': an integer range needs min < max"],
            id="tuning-range-bounds",
        ),
        pytest.param(
            lambda d: d["pipeline"]["tuning"].update(objective_metric="auc"),
            ["pipeline.tuning.objective_metric: must match", "got 'auc'"],
            id="tuning-objective-metric",
        ),
        pytest.param(
            lambda d: d["deployment"].update(batch_input_prefix="s3://bucket/scoring"),
            ["deployment.batch_input_prefix: must match", "got 's3://bucket/scoring'"],
            id="batch-prefix-not-a-key-prefix",
        ),
        pytest.param(
            lambda d: d["data"]["quality_rules"].append({"type": "range", "column": "radius", "min": 0, "max": 1}),
            ["data.quality_rules[7]: column 'radius' is not in dataset 'breast_cancer'; allowed: mean_radius"],
            id="quality-rule-unknown-column",
        ),
        pytest.param(
            lambda d: d["data"]["quality_rules"].append({"type": "regex", "column": "target"}),
            ["data.quality_rules[7]: type: missing or unknown; allowed: row_count, no_duplicate_rows"],
            id="quality-rule-unknown-type",
        ),
        pytest.param(
            lambda d: d["data"].update(quality_rules=[]),
            ["data.quality_rules", "at least 1 item"],
            id="quality-rules-empty",
        ),
        pytest.param(
            lambda d: d["data"]["recipe"].append({"action": "explode"}),
            ["data.recipe[2]: action: missing or unknown; allowed: remove_missing, fill_missing"],
            id="recipe-unknown-action",
        ),
        pytest.param(
            lambda d: d["data"]["etl"].update(pii={"mean_radius": "drop"}),
            ["data.etl.pii: PII is a column role: set role drop or mask on the column in pipeline.dataset.columns"],
            id="etl-pii-moved-to-roles",
        ),
        pytest.param(
            lambda d: d["data"]["etl"].update(missing={"mean_radius": "avg"}),
            ["data.etl.missing.mean_radius: must be drop, mean, median, mode or {constant: <value>} (got 'avg')"],
            id="etl-missing-strategy",
        ),
        pytest.param(
            lambda d: d["data"]["etl"].update(missing={"radius": "mean"}),
            ["data.etl.missing.radius: column 'radius' is not in dataset"],
            id="etl-missing-unknown-column",
        ),
        pytest.param(
            lambda d: d["data"]["feature_groups"][0]["features"].append({"name": "radius", "type": "Fractional"}),
            ["data.feature_groups[0].features: column 'radius' is not in dataset"],
            id="feature-unknown-column",
        ),
        pytest.param(
            lambda d: d["data"]["feature_groups"][0]["features"].append({"name": "mean_area", "type": "Float"}),
            ["data.feature_groups[0].features[7].type", "'Integral', 'Fractional' or 'String'"],
            id="feature-type",
        ),
        pytest.param(
            lambda d: d["data"]["feature_groups"][0].update(name="Tumour_Shape"),
            ["data.feature_groups[0].name: must match", "got 'Tumour_Shape'"],
            id="feature-group-name",
        ),
        pytest.param(
            lambda d: d["data"].update(crawler_schedule="daily"),
            ["data.crawler_schedule: must be cron(six fields)", "got 'daily'"],
            id="crawler-schedule-not-cron",
        ),
        pytest.param(
            lambda d: d["data"].update(crawler_schedule="cron(0 3 * *)"),
            ["data.crawler_schedule: a cron expression has six fields", "got 4"],
            id="crawler-schedule-four-fields",
        ),
        pytest.param(
            lambda d: d["data"].update(crawler_schedule="rate(1 day)"),
            ["data.crawler_schedule: must be cron(six fields)"],
            id="crawler-schedule-rate-is-not-glue",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(quality_thresholds=[{"metric": "f1", "direction": ">=", "value": 0.9}]),
            ["monitoring.quality_thresholds: model-quality alarms need ground truth; set monitoring.ground_truth_prefix"],
            id="quality-alarm-without-ground-truth",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(ground_truth_prefix="gt/",
                                             quality_thresholds=[{"metric": "rmse", "direction": "<=", "value": 5}]),
            ["monitoring.quality_thresholds[0].metric: 'rmse' is not a binary_classification metric"],
            id="quality-alarm-metric-of-other-problem",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(schedule="every day"),
            ["monitoring.schedule: must be rate(value unit) or cron(six fields)", "got 'every day'"],
            id="monitoring-schedule-expression",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(schedule="cron(0 3 * *)"),
            ["monitoring.schedule: a cron expression has six fields (minutes hours day-of-month month day-of-week year)"],
            id="monitoring-schedule-cron-four-fields",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(schedule="cron(0 4 * * * *)"),
            ["monitoring.schedule: one of day-of-month and day-of-week must be '?'"],
            id="monitoring-schedule-cron-both-days",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(schedule="cron(0 24 ? * MON *)"),
            ["monitoring.schedule: cron field hours: 24 is outside 0-23"],
            id="monitoring-schedule-cron-hour",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(schedule="rate(0 days)"),
            ["monitoring.schedule: the rate's value must be a positive integer", "got '0'"],
            id="monitoring-schedule-rate-zero",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(schedule="rate(2 weeks)"),
            ["monitoring.schedule: the rate's unit must be one of minute, minutes, hour, hours, day, days"],
            id="monitoring-schedule-rate-unit",
        ),
        pytest.param(
            lambda d: d["pipeline"]["hyperparameters"].update(num_rounds="50"),
            ["pipeline.hyperparameters.num_rounds: unknown XGBoost hyperparameter; did you mean num_round?"],
            id="hyperparameter-typo",
        ),
        pytest.param(
            lambda d: d["pipeline"]["hyperparameters"].update(max_depth="three"),
            ["pipeline.hyperparameters.max_depth: must be an integer >= 0", "got 'three'"],
            id="hyperparameter-type",
        ),
        pytest.param(
            lambda d: d["pipeline"]["hyperparameters"].update(eta="1.5"),
            ["pipeline.hyperparameters.eta: must be a number in [0, 1]", "got '1.5'"],
            id="hyperparameter-range",
        ),
        pytest.param(
            lambda d: d["pipeline"]["hyperparameters"].update(objective="reg:squarederror"),
            ["pipeline.hyperparameters.objective: 'reg:squarederror' does not fit a binary classification dataset; "
             "allowed: binary:logistic"],
            id="objective-contradicts-problem-type",
        ),
        pytest.param(
            lambda d: d["pipeline"]["hyperparameters"].update(num_round="20000"),
            ["pipeline.hyperparameters.num_round: must be at most 10000, the stage's pipeline.max_num_round"],
            id="num-round-ceiling",
        ),
        pytest.param(
            lambda d: d["pipeline"]["tuning"]["ranges"].append({"name": "learning_rate", "type": "continuous",
                                                                 "min": 0.01, "max": 0.3}),
            ["pipeline.tuning.ranges[2]", "unknown XGBoost hyperparameter; did you mean"],
            id="tuning-range-unknown-hyperparameter",
        ),
        pytest.param(
            lambda d: d["pipeline"]["tuning"]["ranges"].__setitem__(0, {"name": "eta", "type": "continuous",
                                                                        "min": 0.05, "max": 2}),
            ["range 'eta': must be a number in [0, 1] (got 2"],
            id="tuning-range-beyond-valid-values",
        ),
        pytest.param(
            lambda d: d["pipeline"]["tuning"]["ranges"].append({"name": "booster", "type": "continuous", "min": 0, "max": 1}),
            ["range 'booster': booster is one of gbtree, gblinear, dart; allowed range types: categorical"],
            id="tuning-range-type",
        ),
        pytest.param(
            lambda d: d["pipeline"]["tuning"].update(objective_metric="validation:rmse"),
            ["pipeline.tuning.objective_metric: 'validation:rmse' is not reported by the training job",
             "allowed: validation:auc"],
            id="tuning-objective-not-reported",
        ),
        pytest.param(
            lambda d: d["pipeline"]["tuning"].update(objective_type="Minimize"),
            ["pipeline.tuning.objective_type: auc is better when higher; allowed: Maximize"],
            id="tuning-objective-direction",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(categorical_columns=["mean_radius", "tumour_grade"]),
            ["monitoring.categorical_columns: 'tumour_grade' is not a feature of dataset 'breast_cancer'"],
            id="monitoring-categorical-column-unknown",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(categorical_columns=["target"]),
            ["monitoring.categorical_columns: 'target' is not a feature"],
            id="monitoring-categorical-column-is-the-label",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(psi_threshold=0.2),
            ["monitoring.psi_threshold: unknown key; allowed keys here:", "numeric_drift_threshold"],
            id="monitoring-psi-threshold-is-gone",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(backend="evidently"),
            ["monitoring.backend: must be one of 'open-source' or 'model-monitor'", "got 'evidently'"],
            id="monitoring-backend",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(model_monitor={"schedule": "every-minute"}),
            ["monitoring.model_monitor.schedule: must be one of 'hourly', 'every-6-hours', 'every-12-hours' or 'daily'",
             "got 'every-minute'"],
            id="model-monitor-schedule",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(model_monitor={"max_runtime_minutes": 90}),
            ["monitoring.model_monitor.max_runtime_minutes", "90"],
            id="model-monitor-runtime-beyond-an-hourly-window",
        ),
        pytest.param(
            lambda d: d["monitoring"].update(backend="model-monitor", ground_truth_prefix="monitoring/ground-truth/",
                                             model_monitor={"schedule": "hourly", "max_runtime_minutes": 45}),
            ["monitoring.model_monitor.max_runtime_minutes: an hourly model-quality schedule allows at most 30",
             "got 45"],
            id="model-monitor-hourly-model-quality-runtime",
        ),
        pytest.param(
            lambda d: d["retraining"].update(schedule="hourly"),
            ["retraining.schedule: must be one of 'daily', 'weekly' or 'monthly'", "got 'hourly'"],
            id="retraining-schedule",
        ),
        pytest.param(
            lambda d: d["data_lake"].update(noncurrent_version_expiration_days=0),
            ["data_lake.noncurrent_version_expiration_days", "greater than or equal to 1", "got 0"],
            id="lifecycle-days-zero",
        ),
    ],
)
def test_bad_dev_config_is_rejected(config_dir: Path, edit, expected: list[str]) -> None:
    _edit(config_dir, "dev", edit)
    message = _error(config_dir)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_prod_cannot_destroy_state(config_dir: Path) -> None:
    _edit(config_dir, "prod", lambda d: d["protection"].update(retain_stateful_resources=False))
    message = _error(config_dir, "prod")
    assert "prod.yaml" in message and "retain_stateful_resources" in message and "must keep" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["pipeline"].update(manual_approval=False), "pipeline.manual_approval: stage 'prod' must require manual approval"),
        (lambda d: d["deployment"].update(initial_instance_count=1, traffic_shifting={"type": "all_at_once"}),
         "deployment.initial_instance_count: stage 'prod' needs at least 2"),
        (lambda d: d["deployment"].update(initial_instance_count=1),  # prod's canary needs two instances first
         "deployment.traffic_shifting.type: a canary step is at most half of the instances"),
    ],
    ids=["prod-without-approval", "prod-single-instance", "prod-canary-on-one-instance"],
)
def test_prod_serving_rules(config_dir: Path, edit, expected: str) -> None:
    _edit(config_dir, "prod", edit)
    assert expected in _error(config_dir, "prod")


def test_unknown_stage_lists_allowed(config_dir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_stages("qa", config_dir)
    assert "unknown stage 'qa'" in str(caught.value) and "dev, prod" in str(caught.value)


def test_duplicate_yaml_key_is_rejected(config_dir: Path) -> None:
    path = config_dir / "dev.yaml"
    path.write_text(path.read_text() + "\nproject: other-project\n")
    message = _error(config_dir)
    assert "dev.yaml: not valid YAML" in message and "duplicate key 'project'" in message


def test_broken_yaml_is_rejected(config_dir: Path) -> None:
    (config_dir / "dev.yaml").write_text("project: [unclosed\n")
    assert "dev.yaml: not valid YAML" in _error(config_dir)


def test_top_level_must_be_a_mapping(config_dir: Path) -> None:
    (config_dir / "dev.yaml").write_text("- just\n- a list\n")
    assert "expected a mapping of settings at the top level, got list" in _error(config_dir)


def test_several_problems_are_reported_together(config_dir: Path) -> None:
    def edit(d: dict) -> None:
        d["training"]["instance_type"] = "t3.micro"
        d["budget"]["monthly_limit_usd"] = -5

    _edit(config_dir, "dev", edit)
    message = _error(config_dir)
    assert message.count("\n") == 2  # header + one line per problem
    assert "training.instance_type" in message and "budget.monthly_limit_usd" in message


def _shifting(shifting: dict, **deployment) -> callable:
    return lambda d: d["deployment"].update(traffic_shifting=shifting, **deployment)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(_shifting({"type": "blue_green"}),
                     "deployment.traffic_shifting.type: must be one of 'all_at_once', 'canary' or 'linear' (got 'blue_green')",
                     id="unknown-type"),
        pytest.param(_shifting({"type": "canary"}, initial_instance_count=2),
                     "deployment.traffic_shifting.percent: required for canary; allowed: 1-50", id="canary-without-percent"),
        pytest.param(_shifting({"type": "canary", "percent": 60}, initial_instance_count=2),
                     "deployment.traffic_shifting.percent: out of range: input should be less than or equal to 50 (got 60)",
                     id="canary-above-half"),
        pytest.param(_shifting({"type": "linear", "percent": 5}, initial_instance_count=10, max_instance_count=10),
                     "deployment.traffic_shifting.percent: a linear step is 10-50% of the variant's instances (got 5)",
                     id="linear-step-below-10"),
        pytest.param(_shifting({"type": "linear", "percent": 55}, initial_instance_count=2),
                     "deployment.traffic_shifting.percent: out of range: input should be less than or equal to 50 (got 55)",
                     id="linear-step-above-50"),
        pytest.param(_shifting({"type": "canary", "percent": 10, "wait_minutes": 61}, initial_instance_count=10,
                               max_instance_count=10),
                     "deployment.traffic_shifting.wait_minutes: out of range: input should be less than or equal to 60 (got 61)",
                     id="wait-above-an-hour"),
        pytest.param(_shifting({"percent": 10}),
                     "deployment.traffic_shifting.percent: all_at_once shifts all traffic in one step; remove it",
                     id="all-at-once-with-percent"),
        pytest.param(_shifting({"type": "canary", "percent": 50}),
                     "deployment.traffic_shifting.type: a canary step is at most half of the instances, so it needs "
                     "initial_instance_count 2 or more (got 1); allowed: all_at_once", id="canary-on-one-instance"),
        pytest.param(_shifting({"type": "linear", "percent": 20}, initial_instance_count=3, max_instance_count=3),
                     "deployment.traffic_shifting.percent: 20% of initial_instance_count (3) is less than one instance; "
                     "allowed: at least 34", id="linear-step-rounds-to-zero"),
        pytest.param(_shifting({"type": "canary", "percent": 50}, initial_instance_count=2, instance_type="ml.inf1.xlarge"),
                     "deployment.traffic_shifting.type: SageMaker shifts traffic all at once on ml.inf1.xlarge", id="inf1"),
        pytest.param(_shifting({"type": "canary", "percent": 50, "wait_minutes": 30}, initial_instance_count=2,
                               termination_wait_minutes=10),
                     "deployment.wait_for_endpoint_minutes: the canary rollout bakes 40 minutes (wait_minutes per step and "
                     "termination_wait_minutes), so the run and SageMaker's deployment timeout must allow more; allowed: "
                     "more than 40 (got 30)", id="canary-outlasts-the-poll"),
        # 4 instances at 25%: four steps (three waits); autoscaling up to 5 keeps one instance a step: five steps
        pytest.param(_shifting({"type": "linear", "percent": 25, "wait_minutes": 10}, initial_instance_count=4,
                               max_instance_count=5, wait_for_endpoint_minutes=40),
                     "deployment.wait_for_endpoint_minutes: the linear rollout bakes 45 minutes", id="linear-at-the-largest-fleet"),
        pytest.param(_shifting({}, termination_wait_minutes=30, wait_for_endpoint_minutes=30),
                     "deployment.wait_for_endpoint_minutes: the all_at_once rollout bakes 30 minutes", id="termination-outlasts-the-poll"),
        pytest.param(lambda d: d["deployment"].update(wait_for_endpoint_minutes=481),
                     "deployment.wait_for_endpoint_minutes: out of range: input should be less than or equal to 480",
                     id="poll-beyond-sagemaker-timeout"),
    ],
)
def test_traffic_shifting_limits(config_dir: Path, edit, expected: str) -> None:
    """SageMaker's limits (API Reference: TrafficRoutingConfig, CapacitySize, BlueGreenUpdatePolicy;
    Developer Guide: "Deployment guardrails", "Use canary traffic shifting", "Use linear traffic
    shifting", "Exclusions"), each refused in one line naming the field and what is allowed."""
    _edit(config_dir, "dev", edit)
    message = _error(config_dir)
    assert expected in message and "\n" not in message, message


@pytest.mark.parametrize(
    ("shifting", "deployment"),
    [({"type": "canary", "percent": 50, "wait_minutes": 10}, {"initial_instance_count": 2}),
     ({"type": "linear", "percent": 34, "wait_minutes": 5}, {"initial_instance_count": 3, "max_instance_count": 3}),
     ({"type": "linear", "percent": 10, "wait_minutes": 0}, {"initial_instance_count": 10, "max_instance_count": 10}),
     ({"type": "all_at_once"}, {})],
    ids=["canary-half-of-two", "linear-thirds", "linear-tenths-no-wait", "all-at-once"],
)
def test_traffic_shifting_within_limits_loads(config_dir: Path, shifting: dict, deployment: dict) -> None:
    _edit(config_dir, "dev", _shifting(shifting, **deployment))
    loaded = load_stage_config("dev", config_dir).deployment
    assert loaded.traffic_shifting.type == shifting["type"]
    assert 600 <= loaded.rollout_timeout_seconds <= 28800


@pytest.mark.parametrize("project", ["ab", "a" * 21, "Team-A", "team_a", "team-", "1team"])
def test_project_names_are_3_to_20_lowercase_characters(config_dir: Path, project: str) -> None:
    _edit(config_dir, "dev", lambda data: data.update(project=project))
    assert _error(config_dir).endswith(
        "dev.yaml: invalid configuration: project: must be 3 to 20 characters: lowercase letters, digits and "
        f"hyphens, starting with a letter, not ending with a hyphen (got {project!r})")


@pytest.mark.parametrize("project", ["ml1", "team-a", "fraud-detection", "customer-churn-model"])
def test_realistic_project_names_load(config_dir: Path, project: str) -> None:
    _edit(config_dir, "dev", lambda data: (data.update(project=project), data["pipeline"].pop("tuning")))
    assert load_stage_config("dev", config_dir).project == project


def test_a_feature_group_name_must_fit_with_project_and_stage(config_dir: Path) -> None:
    def edit(data: dict) -> None:
        data.update(project="customer-churn-model")
        data["pipeline"].pop("tuning")
        data["data"]["feature_groups"][0]["name"] = "a" * 41  # allowed alone, 65 with the prefix
    _edit(config_dir, "dev", edit)
    assert _error(config_dir).endswith(
        f"data.feature_groups[0].name: the group 'customer-churn-model-dev-{'a' * 41}' has 66 characters; feature group "
        "names have at most 64: shorten the name, the project or the stage")


def test_a_long_prefix_tunes_under_its_own_short_stem(config_dir: Path) -> None:
    """Tuning job names have 32 characters: a `<project>-<stage>` of up to 17 is their stem as it
    is; a longer one gives way to its first 12 characters and a hash of the whole, which is still
    the stage's own (two long prefixes sharing their first 12 characters get different stems)."""
    from mlops.config import tuning_stem

    _edit(config_dir, "dev", lambda data: data.update(project="fraud-detection"))  # fraud-detection-dev: 19
    assert load_stage_config("dev", config_dir).pipeline.tuning is not None
    assert tuning_stem("mlops-demo-prod") == "mlops-demo-prod"
    stems = {tuning_stem(prefix) for prefix in ("fraud-detection-dev", "fraud-detection-prod", "fraud-detection-xy")}
    assert len(stems) == 3 and all(stem.startswith("fraud-detect-") and len(stem) == 17 for stem in stems)
    assert tuning_stem("customer-churn-model-experiment").startswith("customer-chu-")


def _as_regression(d: dict, *, keep_hyperparameters: bool = False) -> None:
    """dev on the bundled diabetes data, with the objective, eval metric and tuning objective left out."""
    d["pipeline"]["dataset"] = "diabetes"
    if not keep_hyperparameters:
        for name in ("objective", "eval_metric"):
            d["pipeline"]["hyperparameters"].pop(name)
    for name in ("objective_metric", "objective_type"):
        d["pipeline"]["tuning"].pop(name)
    d["pipeline"]["metric_thresholds"] = [{"metric": "rmse", "direction": "<=", "value": 60}]
    d["data"]["quality_rules"] = [{"type": "row_count", "min": 100}]
    d["data"]["feature_groups"] = []


def _as_multiclass(d: dict) -> None:
    """dev on the bundled wine data (3 classes), objective, eval metric and tuning objective left out."""
    _as_regression(d)
    d["pipeline"]["dataset"] = "wine"
    d["pipeline"]["metric_thresholds"] = [{"metric": "macro_f1", "direction": ">=", "value": 0.8}]


@pytest.mark.parametrize(("dataset", "objective", "eval_metric", "tuning"), [
    ("breast_cancer", "binary:logistic", "auc", ("validation:auc", "Maximize")),
    ("wine", "multi:softprob", "mlogloss", ("validation:mlogloss", "Minimize")),
    ("diabetes", "reg:squarederror", "rmse", ("validation:rmse", "Minimize")),
])
def test_objective_and_tuning_metric_follow_the_problem_type(config_dir: Path, dataset: str, objective: str,
                                                             eval_metric: str, tuning: tuple[str, str]) -> None:
    def edit(d: dict) -> None:
        if dataset == "diabetes":
            _as_regression(d)
        elif dataset == "wine":
            _as_multiclass(d)
        else:
            for name in ("objective", "eval_metric"):
                d["pipeline"]["hyperparameters"].pop(name)
            for name in ("objective_metric", "objective_type"):
                d["pipeline"]["tuning"].pop(name)

    _edit(config_dir, "dev", edit)
    pipeline = load_stage_config("dev", config_dir).pipeline
    assert pipeline.hyperparameters["objective"] == objective and pipeline.hyperparameters["eval_metric"] == eval_metric
    assert (pipeline.tuning.objective_metric, pipeline.tuning.objective_type) == tuning
    # num_class only where the objective needs it: the number of classes in the dataset's label
    assert pipeline.hyperparameters.get("num_class") == ("3" if dataset == "wine" else None)


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param(lambda d: d["pipeline"]["hyperparameters"].update(objective="binary:logistic"),
                 "pipeline.hyperparameters.objective: 'binary:logistic' does not fit a multiclass classification "
                 "dataset; allowed: multi:softprob", id="objective"),
    pytest.param(lambda d: d["pipeline"]["hyperparameters"].update(num_class="4"),
                 "pipeline.hyperparameters.num_class: the dataset's label has 3 classes; allowed: 3 (got 4)",
                 id="num-class"),
    pytest.param(lambda d: d["pipeline"]["metric_thresholds"].append({"metric": "f1", "direction": ">=", "value": 0.9}),
                 "pipeline.metric_thresholds[1].metric: 'f1' is not a multiclass_classification metric; allowed: "
                 "accuracy, macro_precision", id="gate-metric"),
    pytest.param(lambda d: d["monitoring"].update(backend="model-monitor", ground_truth_prefix="ground-truth/"),
                 "monitoring.ground_truth_prefix: Model Monitor's multiclass model-quality job reads one "
                 "predicted-class column", id="model-monitor-quality"),
])
def test_multiclass_settings_that_contradict_the_problem_type_are_refused(config_dir: Path, edit, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_as_multiclass(d), edit(d)))
    assert expected in _error(config_dir)


def _as_script(d: dict) -> None:
    """The multiclass example's model section on dev (wine, models/wine_sklearn/train.py)."""
    _as_multiclass(d)
    example = yaml.safe_load((CONFIG_DIR / "examples" / "multiclass.yaml").read_text())["pipeline"]
    d["pipeline"].update(model=example["model"], hyperparameters=example["hyperparameters"], tuning=example["tuning"])


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param(lambda d: d["pipeline"]["model"]["script"].update(entry_point="trian.py"),
                 "pipeline.model.script: entry_point: 'trian.py' is not in models/wine_sklearn; allowed: train.py",
                 id="entry-point"),
    pytest.param(lambda d: d["pipeline"]["model"]["script"].update(source_dir="models/wine"),
                 "pipeline.model.script: source_dir: 'models/wine' is not a directory of the repository", id="source-dir"),
    pytest.param(lambda d: d["pipeline"]["model"]["script"].update(source_dir="models/../../etc"),
                 "source_dir: 'models/../../etc' is not a directory of the repository", id="outside-the-repository"),
    pytest.param(lambda d: d["pipeline"]["model"]["script"]["metric_definitions"].append(
        {"name": "validation:f1", "regex": "f1=[0-9.]+"}),
        "pipeline.model.script.metric_definitions[2].regex: needs exactly one capture group around the value (got 0)",
        id="regex-without-group"),
    pytest.param(lambda d: d["pipeline"]["model"].update(builtin="xgboost"),
                 "pipeline.model: set one of builtin, script or container, not builtin and script", id="both"),
    pytest.param(lambda d: d["pipeline"]["tuning"]["ranges"].append({"name": "max_depth", "type": "integer", "min": 1,
                                                                     "max": 4}),
                 "pipeline.tuning.ranges[1]: range 'max_depth' is not a hyperparameter of the script; declared in "
                 "pipeline.hyperparameters: C, max_iter", id="undeclared-range"),
    pytest.param(lambda d: d["pipeline"]["tuning"].update(objective_metric="validation:f1"),
                 "pipeline.tuning.objective_metric: 'validation:f1' is not one of the script's "
                 "model.script.metric_definitions; allowed: validation:mlogloss, validation:accuracy", id="objective"),
    pytest.param(lambda d: d["pipeline"]["hyperparameters"].update(sagemaker_program="x.py"),
                 "pipeline.hyperparameters.sagemaker_program: a script hyperparameter is a name", id="reserved-name"),
])
def test_script_model_mistakes_are_refused_naming_the_field(config_dir: Path, edit, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_as_script(d), edit(d)))
    error = _error(config_dir)
    assert expected in error and "XGBoost" not in error  # no noise about the hyperparameters of another algorithm


IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-model:2.1"


def _as_container(d: dict) -> None:
    """The multiclass example's hyperparameters and tuning, trained by the team's own image."""
    _as_script(d)
    d["pipeline"]["model"] = {"container": {"image_uri": IMAGE, "metric_definitions": [
        {"name": "validation:accuracy", "regex": "validation:accuracy=([0-9.]+)"}], "environment": {"MODE": "fast"}}}


def test_a_container_model_takes_its_own_hyperparameters_and_metrics(config_dir: Path) -> None:
    _edit(config_dir, "dev", _as_container)
    pipeline = load_stage_config("dev", config_dir).pipeline
    container = pipeline.model.container
    assert (container.account, container.region, container.repository) == ("123456789012", "eu-west-1", "churn-model")
    assert pipeline.hyperparameters == {"C": "1.0", "max_iter": "1000"}  # nothing XGBoost added
    assert (pipeline.tuning.objective_metric, pipeline.tuning.objective_type) == ("validation:accuracy", "Maximize")


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param(lambda d: d["pipeline"]["model"]["container"].update(image_uri="churn-model:2.1"),
                 "pipeline.model.container.image_uri: must be an ECR image", id="not-ecr"),
    pytest.param(lambda d: d["pipeline"]["model"]["container"].update(image_uri=IMAGE.replace(":2.1", "")),
                 "pipeline.model.container.image_uri: must be an ECR image", id="no-tag"),
    pytest.param(lambda d: d.update(environment={"account": "123456789012", "region": "us-east-1"}),
                 "pipeline.model.container.image_uri: the image is in eu-west-1 and the stage deploys to us-east-1",
                 id="other-region"),
    pytest.param(lambda d: d["pipeline"]["model"].update(builtin="xgboost"),
                 "pipeline.model: set one of builtin, script or container, not builtin and container", id="two-kinds"),
    pytest.param(lambda d: d["pipeline"]["model"]["container"]["metric_definitions"].append(
        {"name": "validation:accuracy", "regex": "acc=([0-9.]+)"}),
        "pipeline.model.container.metric_definitions: each name once (got validation:accuracy, validation:accuracy)",
        id="duplicate-metric"),
    pytest.param(lambda d: d["pipeline"]["tuning"].update(objective_metric="validation:mlogloss"),
                 "pipeline.tuning.objective_metric: 'validation:mlogloss' is not one of the container's "
                 "model.container.metric_definitions; allowed: validation:accuracy", id="objective"),
])
def test_container_model_mistakes_are_refused_naming_the_field(config_dir: Path, edit, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_as_container(d), edit(d)))
    assert expected in _error(config_dir)


def test_a_script_tuning_objective_takes_its_direction_from_its_name(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: (_as_script(d), d["pipeline"]["tuning"].update(objective_metric="validation:accuracy")))
    tuning = load_stage_config("dev", config_dir).pipeline.tuning
    assert (tuning.objective_metric, tuning.objective_type) == ("validation:accuracy", "Maximize")


def test_tuning_objective_follows_a_configured_eval_metric(config_dir: Path) -> None:
    def edit(d: dict) -> None:
        _as_regression(d)
        d["pipeline"]["hyperparameters"]["eval_metric"] = "mae,rmse"

    _edit(config_dir, "dev", edit)
    tuning = load_stage_config("dev", config_dir).pipeline.tuning
    assert (tuning.objective_metric, tuning.objective_type) == ("validation:mae", "Minimize")


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param(lambda d: d["pipeline"]["hyperparameters"].update(objective="binary:logistic"),
                 "pipeline.hyperparameters.objective: 'binary:logistic' does not fit a regression dataset", id="objective"),
    pytest.param(lambda d: d["pipeline"]["hyperparameters"].update(eval_metric="auc"),
                 "pipeline.hyperparameters.eval_metric: 'auc' is not a regression metric", id="eval-metric"),
    pytest.param(lambda d: d["pipeline"]["tuning"].update(objective_metric="validation:auc"),
                 "pipeline.tuning.objective_metric: 'validation:auc' is not reported by the training job", id="tuning-metric"),
    pytest.param(lambda d: d["pipeline"]["tuning"].update(objective_type="Maximize"),
                 "pipeline.tuning.objective_type: rmse is better when lower; allowed: Minimize", id="tuning-direction"),
    pytest.param(lambda d: d["pipeline"]["metric_thresholds"].append({"metric": "f1", "direction": ">=", "value": 0.9}),
                 "pipeline.metric_thresholds[1].metric: 'f1' is not a regression metric", id="gate-metric"),
])
def test_regression_settings_that_contradict_the_problem_type_are_refused(config_dir: Path, edit, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_as_regression(d), edit(d)))
    assert expected in _error(config_dir)


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param(lambda d: d["pipeline"]["metric_thresholds"].append({"metric": "rmse", "direction": ">=", "value": 50}),
                 "pipeline.metric_thresholds[1]: direction: rmse is better when lower; allowed: '<=' (got '>=')",
                 id="error-floor"),
    pytest.param(lambda d: d["pipeline"]["metric_thresholds"].append({"metric": "r2", "direction": "<=", "value": 0.9}),
                 "pipeline.metric_thresholds[1]: direction: r2 is better when higher; allowed: '>='", id="r2-ceiling"),
    pytest.param(lambda d: d["pipeline"].update(champion_margin_percent=150),
                 "pipeline.champion_margin_percent: out of range", id="margin-percent-range"),
])
def test_gate_thresholds_point_the_metrics_way(config_dir: Path, edit, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_as_regression(d), edit(d)))
    assert expected in _error(config_dir)


def test_classification_gate_refuses_an_upside_down_rate(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: d["pipeline"]["metric_thresholds"].append(
        {"metric": "false_positive_rate", "direction": ">=", "value": 0.1}))
    assert "false_positive_rate is better when lower; allowed: '<='" in _error(config_dir)


def test_examples_load_and_are_no_shipped_stage() -> None:
    examples = CONFIG_DIR / "examples"
    regression = load_stage_config("regression", examples)
    assert regression.pipeline.problem_type == "regression"
    xgboost, linear = (c.pipeline for c in regression.pipeline.candidates)  # the two built-in algorithms
    assert xgboost.hyperparameters["objective"] == "reg:squarederror" and linear.hyperparameters["predictor_type"] == "regressor"
    assert regression.pipeline.select_by == ("validation:mse", "Minimize")
    assert {t.metric for t in regression.pipeline.metric_thresholds} == {"rmse", "r2"}
    multiclass = load_stage_config("multiclass", examples)
    assert multiclass.pipeline.problem_type == "multiclass_classification" and multiclass.pipeline.classes == 3
    assert multiclass.pipeline.script.source_dir == "models/wine_sklearn"  # the team's own scikit-learn script
    assert multiclass.pipeline.hyperparameters == {"C": "1.0", "max_iter": "1000"}  # nothing XGBoost added
    # `cdk synth -c stage=all` reads config/*.yaml only; each example's stage name is its own
    assert {"regression", "multiclass"}.isdisjoint(config.stage for config in load_stages("all"))


def _wine_section(d: dict, **changes) -> None:
    """The multiclass script dev with the wine dataset written out as a section (what `wine` stands for)."""
    _as_script(d)
    section = bundled_dataset("wine")
    section.update(changes)
    d["pipeline"]["dataset"] = section


def test_a_bundled_name_stands_for_its_whole_dataset_section(config_dir: Path) -> None:
    _edit(config_dir, "dev", _as_script)
    shorthand = load_stage_config("dev", config_dir).pipeline.dataset
    _edit(config_dir, "dev", lambda d: d["pipeline"].update(dataset=bundled_dataset("wine")))
    section = load_stage_config("dev", config_dir).pipeline.dataset
    assert shorthand == section
    assert section.raw_location == "sample/wine/" and section.label == "target" and section.classes == ["0", "1", "2"]
    assert section.features == dataset_columns("wine")[:-1]


def test_column_roles_decide_what_trains_what_is_curated_and_what_is_pii(config_dir: Path) -> None:
    def edit(d: dict) -> None:
        _wine_section(d, raw_prefix="landing/wine/")
        columns = d["pipeline"]["dataset"]["columns"]
        columns[0].update(role="id")                          # alcohol
        columns[1].update(type="categorical")                 # malic_acid, encoded by the script
        columns[2].update(role="ignore")                      # ash
        columns[3].update(role="drop")                        # alcalinity_of_ash
        columns[4].update(role="mask")                        # magnesium
        d["data"]["quality_rules"] = [{"type": "row_count", "min": 100}]
        d["data"]["feature_groups"] = []

    _edit(config_dir, "dev", edit)
    dataset = load_stage_config("dev", config_dir).pipeline.dataset
    assert dataset.features[:2] == ["malic_acid", "total_phenols"] and "alcohol" not in dataset.features
    assert dataset.categorical_features == ["malic_acid"]
    assert dataset.pii == {"alcalinity_of_ash": "drop", "magnesium": "mask"}
    assert "ash" not in dataset.kept and {"alcohol", "magnesium"} <= set(dataset.catalogued)
    assert "alcalinity_of_ash" not in dataset.catalogued and dataset.raw_location == "landing/wine/"


def _column(index: int, **changes):
    return lambda d: d["pipeline"]["dataset"]["columns"][index].update(changes)


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param(lambda d: d["pipeline"].update(dataset="iris"),
                 "pipeline.dataset: 'iris' is not a bundled sample; allowed: breast_cancer, wine, diabetes, or a "
                 "dataset section", id="unknown-bundled-name"),
    pytest.param(lambda d: d["pipeline"]["dataset"].update(label="cultivar"),
                 "pipeline.dataset: label: 'cultivar' is not a declared column; allowed: alcohol,", id="label-undeclared"),
    pytest.param(_column(-1, role="mask"), "columns: the label 'target' must keep role feature (got mask)",
                 id="label-masked"),
    pytest.param(_column(0, type="text"), "column 'alcohol': a text column cannot be a feature; allowed roles: id, "
                 "ignore, drop, mask", id="text-feature"),
    pytest.param(_column(1, name="alcohol"), "columns: alcohol declared twice", id="duplicate-column"),
    pytest.param(lambda d: d["pipeline"]["dataset"].update(classes=["0", "1"]),
                 "classes: a multiclass label has at least 3 classes (got 2)", id="two-classes-multiclass"),
    pytest.param(lambda d: d["pipeline"]["dataset"].update(classes=["0", "1", "3"]),
                 "pipeline.dataset.sample: data/sample/wine/wine.csv does not fit the declared columns: label target "
                 "holds '2' on line", id="sample-label-outside-the-classes"),
    pytest.param(lambda d: d["pipeline"]["dataset"]["columns"].reverse(),
                 "pipeline.dataset.sample: data/sample/wine/wine.csv does not fit the declared columns: columns in "
                 "another order than declared", id="sample-column-order"),
    pytest.param(lambda d: d["pipeline"]["dataset"]["columns"].append({"name": "vintage", "type": "timestamp",
                                                                       "role": "id"}),
                 "does not fit the declared columns: missing column(s) vintage", id="sample-missing-column"),
    pytest.param(lambda d: d["pipeline"]["dataset"].update(sample="data/../../outside"),
                 "sample: 'data/../../outside' is not a file or directory of the repository", id="sample-outside-the-repository"),
    pytest.param(lambda d: d["pipeline"]["dataset"].update(problem_type="regression"),
                 "classes: a regression label has no classes", id="regression-with-classes"),
])
def test_dataset_section_mistakes_are_refused_naming_the_field(config_dir: Path, edit, expected: str) -> None:
    def edits(d: dict) -> None:
        _wine_section(d, classes=["0", "1", "2"])
        edit(d)

    _edit(config_dir, "dev", edits)
    assert expected in _error(config_dir)


def test_a_built_in_algorithm_encodes_categorical_features_a_script_encodes_its_own(config_dir: Path) -> None:
    def edit(d: dict) -> None:
        _as_multiclass(d)
        d["pipeline"]["dataset"] = bundled_dataset("wine")
        d["pipeline"]["dataset"]["columns"][1].update(type="categorical")

    _edit(config_dir, "dev", edit)
    assert load_stage_config("dev", config_dir).pipeline.encodes  # built-in XGBoost reads numbers only
    _edit(config_dir, "dev", lambda d: d["pipeline"].update(
        {key: value for key, value in yaml.safe_load((CONFIG_DIR / "examples" / "multiclass.yaml").read_text())[
            "pipeline"].items() if key in ("model", "hyperparameters", "tuning")}))
    assert not load_stage_config("dev", config_dir).pipeline.encodes  # the script gets the categories as text


def test_feature_groups_read_the_curated_columns_only(config_dir: Path) -> None:
    def edit(d: dict) -> None:
        d["pipeline"]["dataset"] = bundled_dataset("breast_cancer")
        d["pipeline"]["dataset"]["columns"][0].update(role="drop")  # mean_radius, in the tumour-shape group

    _edit(config_dir, "dev", edit)
    assert ("data.feature_groups[0].features: column 'mean_radius' is not in dataset 'breast_cancer' as curated"
            in _error(config_dir))


@pytest.mark.parametrize("edit", [
    pytest.param(lambda d: d["pipeline"].update(dataset={**bundled_dataset("breast_cancer"), "classes": [False, True]}),
                 id="dataset-classes"),
    pytest.param(lambda d: d["data"]["quality_rules"].append({"type": "allowed_values", "column": "target",
                                                              "values": [False, True]}), id="allowed-values"),
])
def test_unquoted_yes_and_no_are_refused_with_a_hint_to_quote_them(config_dir: Path, edit) -> None:
    """YAML 1.1 reads `classes: [no, yes]` as two booleans; the values are compared with the data as text."""
    _edit(config_dir, "dev", edit)
    assert ("YAML read an unquoted yes/no/on/off/true/false as the boolean false; quote the value as it is written "
            'in the data, e.g. "no"') in _error(config_dir)


def test_numeric_classes_may_be_written_as_numbers(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: d["pipeline"].update(dataset={**bundled_dataset("breast_cancer"), "classes": [0, 1]}))
    assert load_stage_config("dev", config_dir).pipeline.dataset.classes == ["0", "1"]


def _candidates(d: dict, **model) -> None:
    """The churn example's two candidates (the built-in XGBoost and the scikit-learn script) on dev."""
    example = yaml.safe_load((CONFIG_DIR / "examples" / "churn.yaml").read_text())
    d["pipeline"] = {**d["pipeline"], "dataset": example["pipeline"]["dataset"], "model": {**example["pipeline"]["model"],
                                                                                          **model},
                     "metric_thresholds": [{"metric": "auc", "direction": ">=", "value": 0.8}]}
    for key in ("hyperparameters", "tuning"):
        d["pipeline"].pop(key)
    d["data"].update(quality_rules=[{"type": "row_count", "min": 100}], recipe=[], feature_groups=[])


def test_candidates_each_resolve_as_the_single_model_they_would_be(config_dir: Path) -> None:
    _edit(config_dir, "dev", _candidates)
    pipeline = load_stage_config("dev", config_dir).pipeline
    assert [c.name for c in pipeline.candidates] == ["xgboost", "sklearn"]
    xgboost, sklearn = (c.pipeline for c in pipeline.candidates)
    # the built-in one's objective and eval metric follow from the problem type, as for a single model
    assert (xgboost.hyperparameters["objective"], xgboost.hyperparameters["eval_metric"]) == ("binary:logistic", "auc")
    assert sklearn.script is not None and sklearn.hyperparameters == {"C": "1.0", "max_iter": "1000"}
    assert pipeline.select_by == ("validation:auc", "Maximize") and pipeline.encodes  # the built-in one needs the encoder


def test_a_candidate_tunes_as_the_single_model_it_would_be(config_dir: Path) -> None:
    """The churn example's XGBoost candidate has its own tuning: its objective follows from its
    eval metric, as a single model's would; the script candidate trains once."""
    _edit(config_dir, "dev", _candidates)
    xgboost, sklearn = (c.pipeline for c in load_stage_config("dev", config_dir).pipeline.candidates)
    assert (xgboost.tuning.objective_metric, xgboost.tuning.objective_type) == ("validation:auc", "Maximize")
    assert [r.name for r in xgboost.tuning.ranges] == ["max_depth", "eta"] and not xgboost.tuning.run_by_default
    assert sklearn.tuning is None


def test_a_script_candidates_tuning_objective_is_its_first_validation_metric(config_dir: Path) -> None:
    _edit(config_dir, "dev", lambda d: (_candidates(d), _candidate(1, tuning={"max_jobs": 2, "ranges": [
        {"name": "C", "type": "continuous", "min": 0.1, "max": 10, "scaling": "Logarithmic"}]})(d)))
    sklearn = load_stage_config("dev", config_dir).pipeline.candidates[1].pipeline
    assert (sklearn.tuning.objective_metric, sklearn.tuning.objective_type) == ("validation:auc", "Maximize")


def _candidate(index: int, **changes):
    return lambda d: d["pipeline"]["model"]["candidates"][index].update(changes)


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param(_candidate(0, hyperparameters={"eta": "2"}),
                 "pipeline.model.candidates[0] (xgboost): pipeline.model.candidates[0].hyperparameters.eta:",
                 id="candidate-hyperparameter"),
    pytest.param(_candidate(0, hyperparameters={"objective": "reg:squarederror"}),
                 "pipeline.model.candidates[0] (xgboost): pipeline.model.candidates[0].hyperparameters.objective: "
                 "'reg:squarederror' does not fit a binary classification dataset", id="candidate-objective"),
    pytest.param(_candidate(1, name="xgboost"), "pipeline.model.candidates: each name once (got xgboost, xgboost)",
                 id="duplicate-name"),
    pytest.param(_candidate(1, name="sk-learn"), "pipeline.model.candidates[1].name: must match ^[a-z][a-z0-9]{0,11}$",
                 id="name-pattern"),
    pytest.param(_candidate(0, script={"source_dir": "models/churn_sklearn"}),
                 "candidate 'xgboost': set exactly one of builtin, script or container, not builtin and script",
                 id="two-kinds"),
    pytest.param(lambda d: d["pipeline"]["model"].update(select_by="validation:logloss"),
                 "pipeline.model.select_by: candidate 'xgboost' does not report 'validation:logloss'; it reports "
                 "validation:auc", id="select-by-not-reported"),
    pytest.param(lambda d: d["pipeline"]["model"].update(builtin="xgboost"),
                 "pipeline.model: with candidates, each candidate names its algorithm; remove builtin", id="with-builtin"),
    pytest.param(lambda d: d["pipeline"].update(hyperparameters={"eta": "0.1"}),
                 "pipeline.hyperparameters: with model.candidates each candidate has its own hyperparameters",
                 id="pipeline-hyperparameters"),
    pytest.param(lambda d: d["pipeline"].update(tuning={"max_jobs": 2, "max_parallel_jobs": 1, "ranges": [
        {"name": "eta", "type": "continuous", "min": 0.1, "max": 0.5}]}),
        "pipeline.tuning: with model.candidates each candidate tunes on its own; move tuning into the candidates",
        id="tuning"),
    pytest.param(_candidate(1, tuning={"ranges": [{"name": "alpha", "type": "continuous", "min": 0.1, "max": 1}]}),
                 "pipeline.model.candidates[1] (sklearn): pipeline.model.candidates[1].tuning.ranges[0]: range 'alpha' "
                 "is not a hyperparameter of the script; declared in pipeline.model.candidates[1].hyperparameters: C, max_iter",
                 id="candidate-tuning-range"),
    pytest.param(_candidate(0, tuning={"objective_metric": "validation:f1", "ranges": [
        {"name": "eta", "type": "continuous", "min": 0.1, "max": 0.5}]}),
        "pipeline.model.candidates[0] (xgboost): pipeline.model.candidates[0].tuning.objective_metric:",
        id="candidate-tuning-objective"),
    pytest.param(_candidate(0, tuning={"max_jobs": 1, "max_parallel_jobs": 2, "ranges": [
        {"name": "eta", "type": "continuous", "min": 0.1, "max": 0.5}]}),
        "pipeline.model.candidates[0].tuning.max_parallel_jobs: must be <= max_jobs (1); got 2",
        id="candidate-tuning-limits"),
])
def test_candidate_mistakes_are_refused_naming_the_field(config_dir: Path, edit, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_candidates(d), edit(d)))
    assert expected in _error(config_dir)


@pytest.mark.parametrize(("script", "expected"), [
    pytest.param({"framework_version": "1.3-1"}, "pipeline.model.script: framework_version: the scikit-learn container's "
                 "versions are 1.2-1, 1.4-2-py312, 1.9-0 (got '1.3-1')", id="sklearn-version"),
    pytest.param({"framework": "xgboost", "framework_version": "1.9-0"}, "pipeline.model.script: framework_version: the "
                 "XGBoost container's versions are 1.7-1, 3.0-5, 3.2-0 (got '1.9-0')", id="xgboost-version"),
    pytest.param({"framework": "pytorch", "framework_version": "2.10.0"}, "pipeline.model.script: framework_version: "
                 "the PyTorch container's versions are 2.4.0, 2.5.1, 2.6.0 (got '2.10.0')", id="pytorch-version"),
    pytest.param({"framework": "tensorflow"}, "pipeline.model.script.framework: must be one of 'sklearn', 'xgboost' "
                 "or 'pytorch'", id="framework"),
])
def test_a_framework_version_must_be_one_of_its_containers(config_dir: Path, script: dict, expected: str) -> None:
    _edit(config_dir, "dev", lambda d: (_as_script(d), d["pipeline"]["model"]["script"].update(script)))
    assert expected in _error(config_dir)


def test_an_xgboost_script_runs_in_the_xgboost_image_newest_version_by_default(config_dir: Path) -> None:
    def edit(d: dict) -> None:
        _as_script(d)
        d["pipeline"]["model"]["script"] = {"source_dir": "models/wine_xgboost", "framework": "xgboost",
                                            "metric_definitions": [{"name": "validation:mlogloss",
                                                                    "regex": "validation:mlogloss=([0-9.]+)"}]}
        d["pipeline"]["hyperparameters"] = {"num_round": "30", "max_depth": "3"}
        d["pipeline"]["tuning"]["ranges"] = [{"name": "max_depth", "type": "integer", "min": 2, "max": 6}]

    _edit(config_dir, "dev", edit)
    script = load_stage_config("dev", config_dir).pipeline.script
    assert (script.framework, script.framework_version) == ("xgboost", "3.2-0")
    from mlops.constructs.training.algorithm import script_image

    assert script_image(script) == ("xgboost", "3.2-0")


def test_a_recipe_may_not_delete_a_column_the_dataset_uses(config_dir: Path) -> None:
    """The ETL reads the recipe's output: a deleted feature would fail the split hours later."""
    _edit(config_dir, "dev", lambda d: d["data"]["recipe"].append({"action": "delete_columns", "columns": ["mean_area"]}))
    assert ("data.recipe[2]: deletes mean_area, which the ETL reads (the label, a feature, an id or a PII column it "
            "drops or masks); give the column role ignore instead") in _error(config_dir)


def test_the_binary_example_is_the_dev_stage_under_its_own_name() -> None:
    """config/examples/binary.yaml is dev as an example (make demo EXAMPLE=binary): identical but
    for project and stage, so the gates that run on dev (cdk-nag, cfn-lint, ASL, API shapes,
    snapshots, offline scenarios) cover it and it costs the suite no synth of its own."""
    dev = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    binary = yaml.safe_load((CONFIG_DIR / "examples" / "binary.yaml").read_text())
    assert (binary.pop("project"), binary.pop("stage")) == ("demo", "binary")
    assert binary == {key: value for key, value in dev.items() if key not in ("project", "stage")}
    assert load_stage_config("binary", CONFIG_DIR / "examples").pipeline.problem_type == "binary_classification"
