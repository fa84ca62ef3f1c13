"""Fine-grained assertions: security properties of the data lake and notifications,
differences between stages, and pinned logical ids of stateful resources."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from tests.conftest import resources_of_type

ZONE_BUCKETS = {
    # logical ids are pinned: a change means CloudFormation replaces the bucket
    "Raw": "DataLakeRawBucket881B694B",
    "Curated": "DataLakeCuratedBucketFF1C9EA8",
    "Artifacts": "DataLakeArtifactsBucket98FD8488",
    "Monitoring": "DataLakeMonitoringBucket52805D4F",
}
ACCESS_LOGS_BUCKET = "DataLakeAccessLogsBucket7B54C271"
DATA_LAKE_KEY = "DataLakeKey6ACD72F9"
NOTIFICATIONS_KEY = "NotificationsKeyADCFA950"
NOTIFICATIONS_TOPIC = "NotificationsTopicAE679CBD"
STAGES = ["dev", "prod"]


def _data(stacks, stage: str) -> dict:
    return stacks[f"{stage}/Data"].template


def _ops(stacks, stage: str) -> dict:
    return stacks[f"{stage}/Operations"].template


@pytest.mark.parametrize("stage", STAGES)
def test_stateful_logical_ids_are_pinned(stacks, stage: str) -> None:
    data = _data(stacks, stage)["Resources"]
    for logical_id in [*ZONE_BUCKETS.values(), ACCESS_LOGS_BUCKET]:
        assert data[logical_id]["Type"] == "AWS::S3::Bucket", logical_id
    assert data[DATA_LAKE_KEY]["Type"] == "AWS::KMS::Key"
    assert len(resources_of_type(_data(stacks, stage), "AWS::S3::Bucket")) == 5
    ops = _ops(stacks, stage)["Resources"]
    assert ops[NOTIFICATIONS_KEY]["Type"] == "AWS::KMS::Key"
    assert ops[NOTIFICATIONS_TOPIC]["Type"] == "AWS::SNS::Topic"


@pytest.mark.parametrize("stage", STAGES)
def test_data_lake_key_rotates(stacks, stage: str) -> None:
    Template.from_json(_data(stacks, stage)).has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("zone", list(ZONE_BUCKETS))
def test_zone_bucket_is_locked_down(stacks, stage: str, zone: str) -> None:
    bucket = _data(stacks, stage)["Resources"][ZONE_BUCKETS[zone]]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [DATA_LAKE_KEY, "Arn"]},
    }
    assert rule["BucketKeyEnabled"] is True
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": ACCESS_LOGS_BUCKET},
        "LogFilePrefix": f"{zone.lower()}/",
    }
    (lifecycle,) = bucket["LifecycleConfiguration"]["Rules"]
    assert lifecycle["Status"] == "Enabled"
    assert "NoncurrentDays" in lifecycle["NoncurrentVersionExpiration"]
    assert "DaysAfterInitiation" in lifecycle["AbortIncompleteMultipartUpload"]
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


@pytest.mark.parametrize("stage", STAGES)
def test_access_log_bucket_uses_what_log_delivery_requires(stacks, stage: str) -> None:
    bucket = _data(stacks, stage)["Resources"][ACCESS_LOGS_BUCKET]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (lifecycle,) = bucket["LifecycleConfiguration"]["Rules"]
    assert "ExpirationInDays" in lifecycle and "NoncurrentVersionExpiration" in lifecycle
    # Log delivery is granted through the bucket policy, scoped to this account's buckets.
    Template.from_json(_data(stacks, stage)).has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": ACCESS_LOGS_BUCKET},
            "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Condition": Match.object_like({"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}),
            })])},
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_every_bucket_is_ssl_only_with_tls12(stacks, stage: str) -> None:
    data = _data(stacks, stage)
    policies = {p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
                for p in resources_of_type(data, "AWS::S3::BucketPolicy").values()}
    for bucket in [*ZONE_BUCKETS.values(), ACCESS_LOGS_BUCKET]:
        denies = [s for s in policies[bucket] if s["Effect"] == "Deny" and s["Principal"] == {"AWS": "*"}]
        conditions = [s["Condition"] for s in denies]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions, bucket
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions, bucket


def test_prod_retains_stateful_resources_and_dev_may_destroy(stacks) -> None:
    for stage, policy in (("prod", "Retain"), ("dev", "Delete")):
        data = _data(stacks, stage)["Resources"]
        for logical_id in [*ZONE_BUCKETS.values(), ACCESS_LOGS_BUCKET, DATA_LAKE_KEY]:
            assert data[logical_id]["DeletionPolicy"] == policy, (stage, logical_id)
            assert data[logical_id]["UpdateReplacePolicy"] == policy, (stage, logical_id)
    # Only dev empties its buckets on destroy; prod has no delete custom resource at all.
    Template.from_json(_data(stacks, "dev")).resource_count_is("Custom::S3AutoDeleteObjects", 5)
    Template.from_json(_data(stacks, "prod")).resource_count_is("Custom::S3AutoDeleteObjects", 0)
    assert _data(stacks, "prod")["Resources"][DATA_LAKE_KEY]["Properties"]["PendingWindowInDays"] == 30


def test_termination_protection_follows_stage(stacks) -> None:
    assert {key: stack.termination_protection for key, stack in stacks.items()} == {
        "dev/Data": False, "dev/Operations": False, "dev/Pipeline": False,
        "prod/Data": True, "prod/Operations": True, "prod/Pipeline": True,
        "mm/Data": False, "mm/Operations": False, "mm/Pipeline": False,  # the tests' model-monitor variant of dev
        "pinned/Data": True, "pinned/Operations": True, "pinned/Pipeline": True,  # prod with a pinned environment
        "regression/Data": False, "regression/Operations": False, "regression/Pipeline": False,  # the examples
        "multiclass/Data": False, "multiclass/Operations": False, "multiclass/Pipeline": False,
        "churn/Data": False, "churn/Operations": False, "churn/Pipeline": False,
    }


def test_stack_names_derive_from_project_and_stage(stacks) -> None:
    assert {key: stack.stack_name for key, stack in stacks.items()} == {
        "dev/Data": "mlops-demo-dev-data", "dev/Operations": "mlops-demo-dev-operations",
        "prod/Data": "mlops-demo-prod-data", "prod/Operations": "mlops-demo-prod-operations",
        "dev/Pipeline": "mlops-demo-dev-pipeline", "prod/Pipeline": "mlops-demo-prod-pipeline",
        "mm/Data": "mlops-demo-mm-data", "mm/Operations": "mlops-demo-mm-operations",
        "mm/Pipeline": "mlops-demo-mm-pipeline",
        "pinned/Data": "mlops-demo-pinned-data", "pinned/Operations": "mlops-demo-pinned-operations",
        "pinned/Pipeline": "mlops-demo-pinned-pipeline",
        "regression/Data": "demo-regression-data", "regression/Operations": "demo-regression-operations",
        "regression/Pipeline": "demo-regression-pipeline",
        "multiclass/Data": "demo-multiclass-data", "multiclass/Operations": "demo-multiclass-operations",
        "multiclass/Pipeline": "demo-multiclass-pipeline",
        "churn/Data": "demo-churn-data", "churn/Operations": "demo-churn-operations", "churn/Pipeline": "demo-churn-pipeline",
    }


@pytest.mark.parametrize("stage", STAGES)
def test_sample_data_lands_in_raw_zone_and_is_never_deleted(stacks, stage: str) -> None:
    (deployment,) = resources_of_type(_data(stacks, stage), "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["DestinationBucketName"] == {"Ref": ZONE_BUCKETS["Raw"]}
    # the stage's dataset only, under its raw prefix (what the data phase reads)
    prefix = {"regression": "sample/diabetes/", "multiclass": "sample/wine/", "churn": "landing/churn/"}
    assert props["DestinationBucketKeyPrefix"] == prefix.get(stage, "sample/breast_cancer/")
    assert props["Prune"] is False and props["RetainOnDelete"] is True


@pytest.mark.parametrize("stage", STAGES)
def test_log_groups_are_kms_encrypted_with_retention(stacks, stage: str) -> None:
    groups = resources_of_type(_data(stacks, stage), "AWS::Logs::LogGroup")
    assert groups
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [DATA_LAKE_KEY, "Arn"]}
        assert group["Properties"]["RetentionInDays"] in (30, 365)


@pytest.mark.parametrize("stage", STAGES)
def test_notifications_topic_is_encrypted_and_ssl_only(stacks, stage: str) -> None:
    ops = _ops(stacks, stage)
    topic = ops["Resources"][NOTIFICATIONS_TOPIC]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [NOTIFICATIONS_KEY, "Arn"]}
    assert ops["Resources"][NOTIFICATIONS_KEY]["Properties"]["EnableKeyRotation"] is True
    (policy,) = resources_of_type(ops, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)
    (budgets_publish,) = [s for s in statements if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]
    assert budgets_publish["Action"] == "sns:Publish"
    assert budgets_publish["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


@pytest.mark.parametrize("stage", STAGES)
def test_budget_service_can_use_only_the_notifications_key(stacks, stage: str) -> None:
    key_policy = _ops(stacks, stage)["Resources"][NOTIFICATIONS_KEY]["Properties"]["KeyPolicy"]["Statement"]
    (statement,) = [s for s in key_policy if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    data_key_policy = _data(stacks, stage)["Resources"][DATA_LAKE_KEY]["Properties"]["KeyPolicy"]["Statement"]
    assert not [s for s in data_key_policy if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]


def test_budget_per_stage_filters_on_project_and_stage_tags(stacks) -> None:
    for stage, limit, alerts in (("dev", 100, 2), ("prod", 1000, 3)):
        (budget,) = resources_of_type(_ops(stacks, stage), "AWS::Budgets::Budget").values()
        data = budget["Properties"]["Budget"]
        assert data["BudgetName"] == f"mlops-demo-{stage}-monthly-cost"
        assert data["BudgetLimit"] == {"Amount": limit, "Unit": "USD"}
        assert data["FilterExpression"] == {"And": [
            {"Tags": {"Key": "ml-project", "MatchOptions": ["EQUALS"], "Values": ["mlops-demo"]}},
            {"Tags": {"Key": "stage", "MatchOptions": ["EQUALS"], "Values": [stage]}},
        ]}
        notifications = budget["Properties"]["NotificationsWithSubscribers"]
        assert len(notifications) == alerts
        for notification in notifications:
            assert notification["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": NOTIFICATIONS_TOPIC}}]


def test_people_subscribe_to_the_topic_from_config(stacks) -> None:
    assert resources_of_type(_ops(stacks, "dev"), "AWS::SNS::Subscription") == {}
    (subscription,) = resources_of_type(_ops(stacks, "prod"), "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ml-platform-alerts@example.com"
    assert subscription["Properties"]["TopicArn"] == {"Ref": NOTIFICATIONS_TOPIC}
