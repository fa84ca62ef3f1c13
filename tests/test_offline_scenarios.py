"""Offline scenarios that need a fresh stage each: a failing training job, and prod's
manual approval (approve, reject). See test_offline_pipeline.py for the runner."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import boto3

from tests.test_offline_pipeline import _endpoints, _packages
from tools.offline.runner import OfflineStage, RunResult


def test_training_failure_notifies_and_deploys_nothing(cloud_assembly_dir: Path, caplog) -> None:
    faults = {"createTrainingJob": ["fail"], "createTransformJob": ["fail"]}  # the first run, then the second
    with OfflineStage(cloud_assembly_dir, "dev", faults=faults) as stage:
        run = stage.run({})
        # the emulator's internals stay out of the output (moto logs each caught error with a dump)
        assert not [r for r in caplog.records if r.name.startswith("moto.") and r.levelno >= logging.ERROR]
        assert run.status == "FAILED" and run.error == "StepFailed"
        # one line: the error, the state, the job and its FailureReason
        assert run.cause.startswith("StepFailed in state 'Train model': States.TaskFailed: training job mlops-demo-dev-train-")
        assert run.cause.endswith(" Failed: AlgorithmError: injected training failure (offline scenario)")
        assert "\n" not in run.cause
        assert run.visited()[-4:] == ["Train model", "Describe failure", "Notify failure", "Run failed"]
        assert _packages("mlops-demo-dev-models") == [] and _endpoints() == []
        notice = next(message for message in stage.messages() if "FAILED" in message)
        summary, _, detail = notice.partition("\n\n")
        assert summary.endswith(run.cause)  # the same line, then the detail as JSON (not escaped strings)
        assert json.loads(detail)["cause"]["failure_reason"] == "AlgorithmError: injected training failure (offline scenario)"

        # the model trains, but its test-split predictions fail: the candidate model is removed and
        # the run reports the transform's error, not the clean-up's
        run = stage.run({})
        assert run.status == "FAILED" and run.cause.startswith("StepFailed in state 'Predict test split': "), run.cause
        assert "injected transform failure" in run.cause
        assert run.visited()[-5:] == ["Predict test split", "Delete candidate model after failure", "Describe failure",
                                      "Notify failure", "Run failed"]
        assert boto3.client("sagemaker").list_models()["Models"] == []
        assert _packages("mlops-demo-dev-models") == [] and _endpoints() == []
        assert stage.iam_report()["missing"] == {}  # every call allowed by its caller's policy (history read included)


def test_a_failed_glue_job_reports_its_spark_exception(cloud_assembly_dir: Path) -> None:
    """The ETL script itself fails on local Spark (its input is gone when it reads it): the run's
    cause names the nested state and carries Spark's exception, as Glue's ErrorMessage would."""
    with OfflineStage(cloud_assembly_dir, "dev", faults={"glue:startJobRun": ["input-gone"]}) as stage:
        run = stage.run({})
        assert run.status == "FAILED" and run.error == "StepFailed", (run.error, run.cause)
        assert run.cause.startswith("StepFailed in state 'Prepare data › Split train, validation, test': "
                                    "States.TaskFailed: Glue job mlops-demo-dev-split run ")
        assert "FAILED: AnalysisException: [PATH_NOT_FOUND] Path does not exist: " in run.cause
        assert "\n" not in run.cause and "Train model" not in run.visited()


def _raw_sample() -> tuple[str, str, bytes]:
    """The raw CSV the DataBrew dataset reads (bucket, key, content), found through the dataset."""
    location = boto3.client("databrew").describe_dataset(Name="mlops-demo-dev-raw")["Input"]["S3InputDefinition"]
    s3 = boto3.client("s3")
    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=location["Bucket"], Prefix=location["Key"])["Contents"])
    return location["Bucket"], key, s3.get_object(Bucket=location["Bucket"], Key=key)["Body"].read()


def test_data_quality_gate_stops_the_run_before_training(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        bucket, key, content = _raw_sample()
        lines = content.decode().splitlines()
        # well-typed rows the schema check lets through: a mean radius out of range, missing labels
        bad = ["500" + line[line.index(","):] for line in lines[1:4]] + [line.rsplit(",", 1)[0] + "," for line in lines[4:6]]
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body="\n".join(lines + bad).encode() + b"\n")
        run = stage.run({})
        assert run.status == "FAILED" and run.error == "DataQualityFailed", (run.error, run.cause)
        assert "label-complete" in run.cause and "mean_radius-in-range" in run.cause  # the rules that failed, named
        assert "Train model" not in run.visited() and run.visited()[-1] == "Run failed"
        # the first line says what and where; then each failed rule on its own line
        first, *rules = run.cause.splitlines()
        assert first.startswith("DataQualityFailed in state 'Prepare data › Check data quality': 3 of 7 data-quality "
                                "rules failed on dataset mlops-demo-dev-raw (report: s3://")
        assert [rule.split(" ", 2)[1] for rule in rules] == ["label-complete", "target-allowed-values",
                                                                  "mean_radius-in-range"]
        sagemaker = boto3.client("sagemaker")
        assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == [] and _packages("mlops-demo-dev-models") == []
        assert any("DataQualityFailed" in message for message in stage.messages())
        assert stage.iam_report()["missing"] == {}


def test_data_only_run_refreshes_latest_splits_catalog_and_features(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        sfn = boto3.client("stepfunctions")
        for name, bad_input, field in (("bad-prefix", '{"output_prefix": "curated/latest"}', "input.output_prefix"),
                                       ("not-an-object", "[1, 2, 3]", "input: the data run's input must be a JSON object"),
                                       ("unknown-field", '{"surprise": 1}', "input.surprise: unknown field")):
            bad = stage.wait(sfn.start_execution(stateMachineArn=stage.state_machine_arns["data"], name=name,
                                                 input=bad_input)["executionArn"])
            assert bad.status == "FAILED" and bad.error == "InvalidExecutionInput" and field in bad.cause, bad.cause
            assert bad.visited()[:2] == ["Start data run", "Check data run input"]
            assert "Validate raw data" not in bad.visited()
            assert any("data run: FAILED" in notice or "FAILED" in notice for notice in stage.messages())
        run = stage.wait(sfn.start_execution(stateMachineArn=stage.state_machine_arns["data"], name="data-only",
                                             input="{}")["executionArn"])
        assert run.status == "SUCCEEDED", (run.error, run.cause)
        s3 = boto3.client("s3")
        rows = {}
        for split in ("train", "validation", "test"):
            bucket, prefix = run.output[split].removeprefix("s3://").split("/", 1)
            assert prefix.endswith(f"breast_cancer/latest/{split}/")
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
            rows[split] = sum(len(s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()) for k in keys)
        assert rows == {"train": 455, "validation": 57, "test": 57}
        assert run.output["rules_checked"] == 7 and run.output["quality_report"].endswith("_dq-validation-report.json")
        assert boto3.client("glue").get_crawler(Name="mlops-demo-dev-curated")["Crawler"]["State"] == "RUNNING"
        assert {name: len(records) for name, records in stage.feature_store.records.items()} == {
            "mlops-demo-dev-tumour-shape": 569}
        record = next(iter(stage.feature_store.records["mlops-demo-dev-tumour-shape"].values()))
        assert set(record) == {"record_id", "event_time", "mean_radius", "mean_texture", "mean_perimeter", "mean_area",
                               "mean_smoothness", "mean_compactness", "target"}
        assert stage.iam_report()["missing"] == {}


def _captured(stage: OfflineStage, endpoint: str = "mlops-demo-dev-endpoint") -> list[dict]:
    """The capture records under the endpoint's prefix, as Model Monitor and the drift job read them."""
    import json

    bucket = stage._resolver.exports["mlops-demo-dev-monitoring-bucket"]
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"data-capture/{endpoint}/AllTraffic/").get("Contents", [])]
    return [json.loads(line) for key in keys for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]


def _clear_capture(stage: OfflineStage) -> None:
    bucket = stage._resolver.exports["mlops-demo-dev-monitoring-bucket"]
    s3 = boto3.client("s3")
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="data-capture/").get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])


def _monitor(stage: OfflineStage, name: str):
    sfn = boto3.client("stepfunctions")
    return stage.wait(sfn.start_execution(stateMachineArn=stage.state_machine_arns["monitoring"], name=name,
                                          input="{}")["executionArn"])


def test_monitoring_finds_drift_and_the_alarm_starts_one_retraining_run(cloud_assembly_dir: Path) -> None:
    import json

    import numpy as np

    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        assert _monitor(stage, "before-any-model").visited()[-1] == "Nothing to monitor"
        first = stage.run({})
        assert first.status == "SUCCEEDED", (first.error, first.cause)
        bucket, prefix = first.output["run"]["s3"]["test"].removeprefix("s3://").split("/", 1)
        s3 = boto3.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
        test = np.array([[float(v) for v in line.split(",")] for k in keys
                         for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()])
        features = test[:, 1:]  # what clients send: the features, no label

        # traffic like the training data, sent to the endpoint: SageMaker captures it (as the model's
        # execution role, under data-capture/); no drift, the alarm stays OK, nothing is retrained
        scores = stage.invoke("mlops-demo-dev-endpoint", features.tolist())
        assert len(scores) == len(features) and all(0 <= score <= 1 for score in scores)
        (record,) = _captured(stage)
        assert record["captureData"]["endpointInput"]["data"].count("\n") == len(features) - 1
        # the container's real-time answer: every row's score on one line, comma-separated
        assert len(record["captureData"]["endpointOutput"]["data"].split(",")) == len(features)
        assert stage.hooks.denied == []
        clean = _monitor(stage, "clean-traffic")
        assert clean.status == "SUCCEEDED" and clean.visited()[-1] == "Monitoring done", (clean.error, clean.cause)
        report = clean.output["drift"]["report"]
        bucket, prefix = report.removeprefix("s3://").split("/", 1)
        violations = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}constraint_violations.json")["Body"].read())
        assert [v for v in violations["violations"] if v["constraint_check_type"] == "baseline_drift_check"] == []
        assert stage.alarm_state("mlops-demo-dev-drift")[0] == "OK"
        assert stage.deliver_alarm("mlops-demo-dev-drift") is None  # OK matches no rule: nothing delivered

        # the same clients, but every measurement now comes in 1.5x larger: drift
        _clear_capture(stage)
        rng = np.random.default_rng(0)
        stage.invoke("mlops-demo-dev-endpoint",
                     (np.tile(features, (4, 1)) * 1.5 * rng.normal(1, 0.02, (len(features) * 4, features.shape[1]))).tolist())
        drifted = _monitor(stage, "drifted-traffic")
        assert drifted.status == "SUCCEEDED", (drifted.error, drifted.cause)
        bucket, prefix = drifted.output["drift"]["report"].removeprefix("s3://").split("/", 1)
        violations = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}constraint_violations.json")["Body"].read())
        assert len([v for v in violations["violations"] if v["constraint_check_type"] == "baseline_drift_check"]) >= 10
        state, reason = stage.alarm_state("mlops-demo-dev-drift")
        assert state == "ALARM", reason

        # the alarm starts one retraining run; a second alarm while it runs starts nothing
        started = stage.deliver_alarm("mlops-demo-dev-drift")
        assert started["started"] and started["source"] == "drift-alarm"
        again = stage.deliver_alarm("mlops-demo-dev-drift")
        assert again["started"] is False and "is running" in again["reason"]
        retraining = stage.wait(started["execution"])
        assert retraining.status == "SUCCEEDED", (retraining.error, retraining.cause)
        assert retraining.output["run"]["trigger"]["source"] == "drift-alarm"
        # after it ended: still at most one alarm-triggered run in this window
        third = stage.deliver_alarm("mlops-demo-dev-drift")
        assert third["started"] is False and "already started in this window" in third["reason"]
        assert stage.iam_report()["missing"] == {}


def _wait_for_token(stage: OfflineStage, execution: str, group: str = "mlops-demo-prod-models") -> str:
    stage.wait(execution, until="Wait for approval")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        packages = _packages(group)
        if packages and any(c.action == "s3:PutObject" and c.principal == stage.functions["approval"]
                            for c in stage.hooks.calls):
            return packages[0]["ModelPackageArn"]
        time.sleep(0.05)
    raise TimeoutError("the run never started waiting for approval")


def test_prod_waits_for_approval_then_deploys(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "prod") as stage:
        execution = stage.start({})
        package = _wait_for_token(stage, execution)
        assert boto3.client("sagemaker").describe_model_package(ModelPackageName=package)["ModelApprovalStatus"] == \
            "PendingManualApproval"
        assert _endpoints() == []  # nothing deployed while waiting
        stage.decide(package, "Approved")
        run = stage.wait(execution)
        assert run.status == "SUCCEEDED", (run.error, run.cause)
        assert run.visited()[-1] == "Model deployed" and _endpoints() == ["mlops-demo-prod-endpoint"]
        variants = boto3.client("sagemaker").describe_endpoint(EndpointName="mlops-demo-prod-endpoint")
        assert variants["ProductionVariants"][0]["CurrentInstanceCount"] >= 2  # prod >= 2 instances
        assert stage.iam_report()["missing"] == {}  # every call allowed by its caller's policy


def test_prod_rejection_ends_cleanly_with_nothing_deployed(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "prod") as stage:
        execution = stage.start({})
        stage.decide(_wait_for_token(stage, execution), "Rejected")
        run = stage.wait(execution)
        assert run.status == "SUCCEEDED" and run.visited()[-2:] == ["Notify rejected", "Model rejected"]
        assert _endpoints() == []
        assert stage.iam_report()["missing"] == {}  # every call allowed by its caller's policy


def test_batch_mode_writes_label_and_prediction_for_the_test_split(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        run = stage.run({"deployment_mode": "batch"})
        assert run.status == "SUCCEEDED", (run.error, run.cause)
        assert run.visited()[-5:] == ["Deployment mode?", "Run batch transform", "Record batch version",
                                      "Notify batch done", "Batch predictions written"]
        version = boto3.client("sagemaker").describe_model_package(
            ModelPackageName=run.output["registration"]["model_package_arn"])["CustomerMetadataProperties"]
        assert version["serving"].startswith("batch since ") and version["batch_output"] == run.output["transform"]["output"]
        assert _endpoints() == []  # batch serves nothing
        bucket, prefix = run.output["transform"]["output"].removeprefix("s3://").split("/", 1)
        s3 = boto3.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
        lines = [line.split(",") for k in keys for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()]
        assert len(lines) == 57 and all(len(line) == 2 for line in lines)  # label,prediction per test row
        accuracy = sum(float(label) == (float(score) > 0.5) for label, score in lines) / len(lines)
        assert accuracy > 0.9  # the predictions come from the real model
        assert stage.iam_report()["missing"] == {}  # every call allowed by its caller's policy


def test_tuning_picks_the_best_job_and_its_model_flows_on(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        run = stage.run({"tuning": True})
        assert run.status == "SUCCEEDED", (run.error, run.cause)
        visited = run.visited()
        assert visited[3:6] == ["Tune hyperparameters?", "Tune hyperparameters", "Describe best training job"]
        assert "Train model" not in visited
        tuning, training = run.output["tuning_job"], run.output["training"]
        assert training["job_name"] == tuning["best_training_job"]  # the best job's model is the run's model
        jobs = boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
        assert len(jobs) == 4  # max_jobs in config/dev.yaml, each really trained
        assert {"eta", "max_depth"} <= set(training["hyperparameters"])
        (package,) = _packages("mlops-demo-dev-models")
        lineage = boto3.client("sagemaker").describe_model_package(
            ModelPackageName=package["ModelPackageArn"])["CustomerMetadataProperties"]
        assert lineage["training_job"] == tuning["best_training_job"]
        assert stage.iam_report()["missing"] == {}  # every call allowed by its caller's policy


def test_serverless_mode_creates_then_updates_its_own_endpoint(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        first = stage.run({"deployment_mode": "serverless"})
        assert first.status == "SUCCEEDED", (first.error, first.cause)
        assert "Create serverless endpoint config" in first.visited() and "Create endpoint" in first.visited()
        assert "Register scalable target" not in first.visited()  # serverless scales itself
        endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName="mlops-demo-dev-serverless")
        assert endpoint["EndpointStatus"] == "InService"
        assert endpoint["ProductionVariants"][0]["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
        second = stage.run({"deployment_mode": "serverless"})
        assert second.status == "SUCCEEDED" and "Update serverless endpoint" in second.visited()
        assert boto3.client("sagemaker").describe_endpoint(EndpointName="mlops-demo-dev-serverless")[
            "EndpointConfigName"] == second.output["run"]["names"]["config"]
        assert _endpoints() == ["mlops-demo-dev-serverless"]  # the real-time endpoint is not touched
        assert stage.iam_report()["missing"] == {}  # every call allowed by its caller's policy


def test_async_mode_scales_to_zero_and_wakes_on_backlog(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        run = stage.run({"deployment_mode": "async"})
        assert run.status == "SUCCEEDED", (run.error, run.cause)
        assert run.visited()[-8:-4] == ["Register async scalable target", "Put backlog scaling policy",
                                         "Put wake-from-zero policy", "Put wake-from-zero alarm"]
        sagemaker = boto3.client("sagemaker")
        endpoint = sagemaker.describe_endpoint(EndpointName="mlops-demo-dev-async")
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        output = config["AsyncInferenceConfig"]["OutputConfig"]
        assert output["S3OutputPath"].endswith("/async-output/") and output["KmsKeyId"]
        assert set(output["NotificationConfig"]) == {"SuccessTopic", "ErrorTopic"}
        (target,) = boto3.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="sagemaker")["ScalableTargets"]
        assert target["MinCapacity"] == 0 and target["ResourceId"] == "endpoint/mlops-demo-dev-async/variant/AllTraffic"
        # the one alarm the run created (the stage's own alarms exist in moto too)
        (alarm,) = [a for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
                    if a["MetricName"] == "HasBacklogWithoutCapacity"]
        assert alarm["AlarmActions"] == [run.output["wake"]["policy_arn"]]  # the alarm fires the wake-up policy

        # a client uploads a request and invokes: SageMaker reads it, writes the result and
        # notifies the success topic, all as the model's execution role
        artifacts = stage._resolver.exports["mlops-demo-dev-artifacts-bucket"]
        test_bucket, prefix = run.output["run"]["s3"]["test"].removeprefix("s3://").split("/", 1)
        s3 = boto3.client("s3")
        rows = [line.split(",", 1)[1] for o in s3.list_objects_v2(Bucket=test_bucket, Prefix=prefix)["Contents"]
                for line in s3.get_object(Bucket=test_bucket, Key=o["Key"])["Body"].read().decode().splitlines()]
        s3.put_object(Bucket=artifacts, Key="async-input/request-1.csv", Body="\n".join(rows).encode())
        answer = boto3.client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName="mlops-demo-dev-async", InputLocation=f"s3://{artifacts}/async-input/request-1.csv",
            ContentType="text/csv", InferenceId="request-1")
        bucket, key = answer["OutputLocation"].removeprefix("s3://").split("/", 1)
        assert key == "async-output/request-1.out"
        # the container's answer as it is: every row's score on one line, comma-separated
        scores = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().split(",")
        assert len(scores) == len(rows) == 57
        (notice,) = stage.async_notifications()
        assert notice["invocationStatus"] == "Success" and notice["responseParameters"]["outputLocation"] == answer["OutputLocation"]
        assert stage.hooks.denied == []
        assert stage.iam_report()["missing"] == {}  # every call allowed by its caller's policy


def _s3_json(uri: str) -> dict:
    import json

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def test_model_monitor_backend_baselines_and_moves_the_schedules_with_each_deployment(cloud_assembly_dir: Path) -> None:
    """The tests' "mm" stage (dev + monitoring.backend: model-monitor + ground truth)."""
    with OfflineStage(cloud_assembly_dir, "mm") as stage:
        sagemaker = boto3.client("sagemaker")
        first = stage.run({})
        assert first.status == "SUCCEEDED", (first.error, first.cause)
        assert first.visited()[-7:] == ["Put scaling policy", "Deployment rolled back?", "Baseline for Model Monitor",
                                        "Schedule Model Monitor", "Record serving version", "Notify deployed",
                                        "Model deployed"]
        baseline = first.output["run"]["s3"]["baseline"]
        statistics, tuned = _s3_json(f"{baseline}statistics.json"), _s3_json(f"{baseline}monitoring-constraints.json")
        assert [f["name"] for f in statistics["features"]] == [f"_c{i}" for i in range(31)]  # label first, 30 features
        assert statistics["dataset"]["item_count"] == 455  # the run's training split
        assert tuned["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.15
        assert tuned["features"][0]["inferred_type"] == "Fractional"  # the endpoint answers with a probability
        version = first.output["run"]["run_id"]
        data_quality = sagemaker.describe_monitoring_schedule(MonitoringScheduleName="mlops-demo-mm-data-quality")
        assert data_quality["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == f"mlops-demo-mm-dq-{version}"
        assert data_quality["MonitoringScheduleConfig"]["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
        definition = sagemaker.describe_data_quality_job_definition(JobDefinitionName=f"mlops-demo-mm-dq-{version}")
        assert definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlops-demo-mm-endpoint"
        assert definition["NetworkConfig"]["EnableNetworkIsolation"] is True
        quality = sagemaker.describe_model_quality_job_definition(JobDefinitionName=f"mlops-demo-mm-mq-{version}")
        assert quality["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"].endswith("/monitoring/ground-truth/")

        second = stage.run({})  # the next deployment moves both schedules to its own baseline
        assert second.status == "SUCCEEDED", (second.error, second.cause)
        newer = second.output["run"]["run_id"]
        assert sagemaker.describe_monitoring_schedule(MonitoringScheduleName="mlops-demo-mm-data-quality")[
            "MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == f"mlops-demo-mm-dq-{newer}"
        assert [d["MonitoringJobDefinitionName"] for d in sagemaker.list_data_quality_job_definitions()[
            "JobDefinitionSummaries"]] == [f"mlops-demo-mm-dq-{newer}"]
        assert [d["MonitoringJobDefinitionName"] for d in sagemaker.list_model_quality_job_definitions()[
            "JobDefinitionSummaries"]] == [f"mlops-demo-mm-mq-{newer}"]
        assert stage.iam_report()["missing"] == {}  # baselining job, handler and state machine: each call allowed


def test_model_monitor_backend_failed_baseline_fails_the_run_and_the_endpoint_keeps_serving(cloud_assembly_dir: Path) -> None:
    with OfflineStage(cloud_assembly_dir, "mm", faults={"createProcessingJob": [None, None, "fail"]}) as stage:
        run = stage.run({})
        assert run.status == "FAILED" and "Baseline for Model Monitor" in run.visited()
        assert "Schedule Model Monitor" not in run.visited()
        endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName="mlops-demo-mm-endpoint")
        assert endpoint["EndpointStatus"] == "InService"  # deployed before the baseline: it keeps serving
        assert any("FAILED" in message for message in stage.messages())


def test_batch_output_is_monitored_and_shifted_batch_input_raises_the_drift_alarm(cloud_assembly_dir: Path) -> None:
    """The pinned stage also scores a prefix of the curated zone in batch. A batch run joins each
    input line's features with its prediction, then starts the monitoring workflow on that
    output, which compares it with the training split: batch input like the training data drifts
    nowhere; the same rows 1.5x larger raise the stage's drift alarm, whose event starts a
    retraining run, as drift in captured traffic does."""
    import numpy as np

    from tests.conftest import BATCH_INPUT_PREFIX

    with OfflineStage(cloud_assembly_dir, "pinned") as stage:
        s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
        curated = stage._resolver.exports["mlops-demo-pinned-curated-bucket"]
        rows = np.loadtxt(Path(__file__).resolve().parent.parent / "data" / "sample" / "breast_cancer" /
                          "breast_cancer.csv", delimiter=",", skiprows=1)[:, :-1]

        def batch_run(features: np.ndarray) -> dict:
            for old in s3.list_objects_v2(Bucket=curated, Prefix=BATCH_INPUT_PREFIX).get("Contents", []):
                s3.delete_object(Bucket=curated, Key=old["Key"])
            s3.put_object(Bucket=curated, Key=f"{BATCH_INPUT_PREFIX}rows.csv",
                          Body="\n".join(",".join(f"{v:.6g}" for v in row) for row in features).encode())
            before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=stage.state_machine_arns["monitoring"])["executions"]}
            execution = stage.start({"deployment_mode": "batch"})
            stage.decide(_wait_for_token(stage, execution, "mlops-demo-pinned-models"), "Approved")
            run = stage.wait(execution)
            assert run.status == "SUCCEEDED", (run.error, run.cause)
            assert "Monitor batch output" in run.visited()
            output = run.output["transform"]["output"]
            bucket, prefix = output.removeprefix("s3://").split("/", 1)
            (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
            first = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()[0].split(",")
            assert len(first) == features.shape[1] + 1  # each line: its features, then the prediction
            (monitoring,) = [e["executionArn"] for e in sfn.list_executions(
                stateMachineArn=stage.state_machine_arns["monitoring"])["executions"] if e["executionArn"] not in before]
            checked = stage.wait(monitoring)
            assert checked.status == "SUCCEEDED" and checked.visited()[-1] == "Monitoring done", checked.output
            assert checked.output["window"]["source"] == "batch"
            report = checked.output["drift"]["report"].removeprefix("s3://").split("/", 1)
            return json.loads(s3.get_object(Bucket=report[0], Key=f"{report[1]}constraint_violations.json")["Body"].read())

        clean = batch_run(rows[:200])
        assert [v for v in clean["violations"] if v["constraint_check_type"] == "baseline_drift_check"] == []
        assert stage.alarm_state("mlops-demo-pinned-drift")[0] == "OK"
        drifted = batch_run(rows[:200] * 1.5)
        assert len([v for v in drifted["violations"] if v["constraint_check_type"] == "baseline_drift_check"]) >= 10
        state, reason = stage.alarm_state("mlops-demo-pinned-drift")
        assert state == "ALARM", reason
        started = stage.deliver_alarm("mlops-demo-pinned-drift")
        assert started["started"] and started["source"] == "drift-alarm"
        assert stage.iam_report()["missing"] == {}


def _alarm_event(name: str) -> dict:
    return {"version": "0", "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "account": "123456789012", "region": "eu-west-1", "detail": {"alarmName": name, "state": {"value": "ALARM"}}}


def test_undeliverable_events_reach_every_dead_letter_queue(cloud_assembly_dir: Path) -> None:
    """Every rule and schedule target fails to take its event: each event must land in the
    target's dead-letter queue (KMS-encrypted with the data key), none may be lost."""
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        assert stage.deliver_event(_alarm_event("mlops-demo-dev-drift"), delivery_fails=True) == []
        schedules = sorted(stage._resources("Pipeline", "AWS::Scheduler::Schedule"))
        assert len(schedules) == 2  # monitoring and retraining
        for schedule in schedules:
            stage.fire_schedule(schedule, delivery_fails=True)
        assert stage.lost_events == []
        held = {queue: len(messages) for queue, messages in stage.dead_letters().items() if messages}
        assert list(held.values()) == [3]  # one queue for the alarm rule and both schedules
        assert stage.hooks.denied == []
    with OfflineStage(cloud_assembly_dir, "prod") as stage:
        raw = stage._resolver.exports["mlops-demo-prod-raw-bucket"]
        stage.deliver_event({"version": "0", "source": "aws.s3", "detail-type": "Object Created", "account": "123456789012",
                             "region": "eu-west-1", "detail": {"bucket": {"name": raw},
                                                               "object": {"key": "sample/breast_cancer/new.csv"}}},
                            delivery_fails=True)
        package = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-demo-prod-models/1"
        stage.deliver_event({"version": "0", "source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change",
                             "account": "123456789012", "region": "eu-west-1", "detail": {
                                 "ModelPackageGroupName": "mlops-demo-prod-models", "ModelPackageArn": package,
                                 "ModelApprovalStatus": "Approved"}}, delivery_fails=True)
        stage.deliver_event(_alarm_event("mlops-demo-prod-drift"), delivery_fails=True)
        assert stage.lost_events == []
        held = {queue: len(messages) for queue, messages in stage.dead_letters().items() if messages}
        assert sorted(held) == sorted(q for q in held if any(k in q for k in ("RawData", "Approval", "Trigger")))
        assert all(count == 1 for count in held.values()) and len(held) == 3, held
        assert stage.hooks.denied == []


def test_a_failing_asynchronous_handler_leaves_its_event_in_the_failed_invocations_queue(cloud_assembly_dir: Path) -> None:
    """EventBridge Scheduler hands the retraining tick to the retrain function, which fails on
    every attempt (here: it cannot list the training runs): Lambda tries three times, then its
    record (the tick and the error) waits in the encrypted failed-invocations queue, whose
    alarm pages; nothing is lost."""
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        retrain = stage.functions["retrain"]
        code_dir, environment = stage.hooks.handlers[retrain]
        stage.hooks.handlers[retrain] = (code_dir, {**environment, "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:"
                                                    "123456789012:stateMachine:no-such-machine"})
        (schedule,) = [s for s in stage._resources("Pipeline", "AWS::Scheduler::Schedule") if "Retraining" in s]
        assert stage.fire_schedule(schedule) is None
        assert [failure["function"] for failure in stage.failed_invocations] == [retrain]
        assert stage.lost_events == [] and stage.hooks.denied == []
        (queue,) = [queue for queue, messages in stage.dead_letters().items() if messages]
        assert "FailedInvocations" in queue
        (record,) = stage.dead_letters()[queue]
        assert record["requestPayload"] == {"source": "schedule", "reason": "weekly"}
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert "StateMachineDoesNotExist" in json.dumps(record["responsePayload"])
        alarms = [p["Properties"]["AlarmName"] for p in stage._resources("Pipeline", "AWS::CloudWatch::Alarm").values()]
        assert "mlops-demo-dev-undelivered-failed-invocations" in alarms


def _with_instance_type(definition: dict, old: str, new: str) -> dict:
    """The training definition as a config change of ``deployment.instance_type`` synthesizes it:
    the value appears in these states only (tests/test_pipeline_template.py checks that)."""
    import json

    changed = json.loads(json.dumps(definition))
    for state in DEPLOYMENT_INSTANCE_TYPE_STATES:
        changed["States"][state] = json.loads(json.dumps(changed["States"][state]).replace(f'"{old}"', f'"{new}"'))
    return changed


DEPLOYMENT_INSTANCE_TYPE_STATES = ("Register model version", "Create endpoint config", "Create async endpoint config",
                                   "Use real-time endpoint", "Use async endpoint", "Run batch transform")


def test_changing_the_instance_type_redeploys_an_autoscaled_endpoint(cloud_assembly_dir: Path) -> None:
    import json

    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        first = stage.run({})
        assert first.status == "SUCCEEDED", (first.error, first.cause)
        autoscaling = boto3.client("application-autoscaling")
        target = ["endpoint/mlops-demo-dev-endpoint/variant/AllTraffic"]
        assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=target)["ScalableTargets"]
        boto3.client("stepfunctions").update_state_machine(
            stateMachineArn=stage.state_machine_arn,
            definition=json.dumps(_with_instance_type(stage.definition, "ml.m5.large", "ml.c5.xlarge")))
        second = stage.run({})
        assert second.status == "SUCCEEDED", (second.error, second.cause)
        visited = second.visited()
        assert visited.index("Deregister scalable target") < visited.index("Update endpoint (blue-green)") < \
            visited.index("Register scalable target")
        sagemaker = boto3.client("sagemaker")
        serving = sagemaker.describe_endpoint(EndpointName="mlops-demo-dev-endpoint")["EndpointConfigName"]
        assert serving == second.output["run"]["names"]["config"]
        assert sagemaker.describe_endpoint_config(EndpointConfigName=serving)["ProductionVariants"][0]["InstanceType"] == \
            "ml.c5.xlarge"
        assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=target)["ScalableTargets"]
        third = stage.run({})  # same instance type again: autoscaling stays registered through the update
        assert third.status == "SUCCEEDED" and "Deregister scalable target" not in third.visited()
        assert stage.iam_report()["missing"] == {}


def _approved_run(stage: OfflineStage) -> RunResult:
    """One prod run, approved as soon as it waits (its own version: a new token stored)."""
    stored = sum(c.action == "s3:PutObject" and c.principal == stage.functions["approval"] for c in stage.hooks.calls)
    execution = stage.start({})
    stage.wait(execution, until="Wait for approval")
    deadline = time.monotonic() + 30
    while sum(c.action == "s3:PutObject" and c.principal == stage.functions["approval"]
              for c in stage.hooks.calls) == stored:
        if time.monotonic() > deadline:
            raise TimeoutError("the run never stored its approval token")
        time.sleep(0.05)
    stage.decide(_packages("mlops-demo-prod-models")[0]["ModelPackageArn"], "Approved")
    return stage.wait(execution)


def test_prod_canary_shifts_in_steps_and_an_alarm_during_the_canary_rolls_back(cloud_assembly_dir: Path) -> None:
    """prod's canary ("Use canary traffic shifting", SageMaker Developer Guide): half the fleet
    (1 of 2 instances) takes traffic and bakes 10 minutes while the endpoint alarms watch, then
    the rest shifts and the final baking period (termination_wait_minutes) follows. An alarm in
    ALARM during the canary's bake rolls all traffic back: the old config keeps serving."""
    endpoint = "mlops-demo-prod-endpoint"
    with OfflineStage(cloud_assembly_dir, "prod") as stage:
        sagemaker = boto3.client("sagemaker")
        first = _approved_run(stage)
        assert first.status == "SUCCEEDED" and "Create endpoint" in first.visited(), (first.error, first.cause)
        assert stage.hooks.traffic_steps == []  # a new endpoint takes all traffic at once: nothing shifts

        second = _approved_run(stage)
        assert second.status == "SUCCEEDED", (second.error, second.cause)
        assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == second.output["run"]["names"]["config"]
        config = second.output["run"]["names"]["config"]
        assert [(s["step"], s["instances"], s["of"], s["percent"], s["bake_seconds"], s["final"])
                for s in stage.hooks.traffic_steps] == [(1, 1, 2, 50, 600, False), (2, 2, 2, 100, 300, True)]
        assert {(s["endpoint"], s["config"], s["type"]) for s in stage.hooks.traffic_steps} == {(endpoint, config, "CANARY")}

        serving = config
        stage.hooks.traffic_steps.clear()

        def errors_on_the_canary(step: dict) -> None:  # the new fleet answers 5XX while it is the canary
            if step["step"] == 1:
                stage.set_alarm(f"{endpoint}-5xx", "ALARM", "Invocation5XXErrors >= 1 for 2 datapoints")

        stage.hooks.during_traffic_step = errors_on_the_canary
        try:
            third = _approved_run(stage)
        finally:
            stage.hooks.during_traffic_step = None
        assert third.status == "FAILED" and third.error == "DeploymentRolledBack", (third.error, third.cause)
        assert "keeps serving the previous model" in third.cause
        # the canary step was the last one taken: the rest of the traffic never shifted
        assert [(s["step"], s["percent"], s.get("rolled_back_on")) for s in stage.hooks.traffic_steps] == [
            (1, 50, [f"{endpoint}-5xx"])]
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == serving
        assert described["FailureReason"] == (f"Rolled back: alarm {endpoint}-5xx went into ALARM during canary step 1 "
                                              "of 2 (1 of 2 instances, 50% of traffic, on the new fleet)")
        assert stage.iam_report()["missing"] == {}


def test_schema_check_stops_the_run_before_anything_trains(cloud_assembly_dir: Path) -> None:
    """An extra column, a missing column, text where a number belongs and a label outside the
    dataset's classes each fail the run at "Check raw schema", before DataBrew or Spark start,
    naming the column."""
    with OfflineStage(cloud_assembly_dir, "dev") as stage:
        bucket, key, content = _raw_sample()
        lines = content.decode().splitlines()
        header = lines[0].split(",")
        s3 = boto3.client("s3")

        def rewrite(rows: list[list[str]]) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body="\n".join(",".join(row) for row in rows).encode() + b"\n")

        table = [line.split(",") for line in lines]
        texture = header.index("mean_texture")
        cases = {
            "extra column": ([row[:3] + (["patient_age"] if n == 0 else ["42"]) + row[3:] for n, row in enumerate(table)],
                             "extra column patient_age (position 4)"),
            "missing column": ([row[:texture] + row[texture + 1:] for row in table], "missing column mean_texture"),
            "text in a numeric column": ([row if n != 5 else row[:texture] + ["high"] + row[texture + 1:]
                                          for n, row in enumerate(table)],
                                         "column mean_texture should hold a number: 'high' on line 6"),
            "a label outside the classes": ([row if n != 7 else row[:-1] + ["2"] for n, row in enumerate(table)],
                                            "column target should hold one of the classes 0, 1 (the label): '2' on line 8"),
        }
        for case, (rows, expected) in cases.items():
            rewrite(rows)
            run = stage.run({})
            assert run.status == "FAILED" and run.error == "SchemaMismatch", (case, run.error, run.cause)
            first, *problems = run.cause.splitlines()
            assert first.startswith("SchemaMismatch in state 'Prepare data › Check raw schema': 1 schema problem in "
                                    f"the raw data under s3://{bucket}/"), (case, first)
            assert problems[0] == f"- s3://{bucket}/{key}: {expected}", (case, run.cause)
            assert problems[1].startswith("declared columns, in order: mean_radius, mean_texture, "), case
            assert "Train model" not in run.visited() and run.visited()[-1] == "Run failed", case
        assert boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
        assert _packages("mlops-demo-dev-models") == []
        assert sum("SchemaMismatch" in message for message in stage.messages()) >= 4
        assert stage.iam_report()["missing"] == {}  # the handler's list and ranged GET are granted
