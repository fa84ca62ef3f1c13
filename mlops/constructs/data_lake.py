"""The stateful data lake: one customer-managed KMS key and the zone buckets."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.config import DataLakeConfig
from mlops.nag import acknowledge, acknowledge_packs

# Zone name -> what lives there. Order is the order of the construct ids (stable).
ZONES: dict[str, str] = {
    "Raw": "raw zone: data as it arrives (sample data, uploads, source extracts)",
    "Curated": "curated zone: cleaned, de-duplicated, split training data",
    "Artifacts": "artifacts: model artifacts, evaluations, job outputs",
    "Monitoring": "monitoring: captured inference data and drift/quality reports",
}


class DataLake(Construct):
    """Provisions a rotating customer-managed KMS key (also usable by CloudWatch Logs for
    this account's log groups), the raw/curated/artifacts/monitoring
    zone buckets (SSE-KMS, SSL-only, versioned, access-logged, lifecycle-managed) and the
    server-access-log bucket they log to.

    Exposes ``key``, ``access_logs_bucket`` and one attribute per zone bucket
    (``raw_bucket``, ``curated_bucket``, ``artifacts_bucket``, ``monitoring_bucket``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        config: DataLakeConfig,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix, self._config = resource_prefix, config
        self._removal_policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        # Auto-delete only where the stack may be destroyed: it lets `cdk destroy` empty
        # the buckets. Retained stages never get the delete custom resource.
        self._auto_delete = not retain
        self._lifecycle = dict(
            noncurrent_version_expiration=Duration.days(config.noncurrent_version_expiration_days),
            abort_incomplete_multipart_upload_after=Duration.days(config.abort_incomplete_multipart_upload_days),
        )
        self.key = self._key(retain)
        self.access_logs_bucket = self._access_logs_bucket()
        buckets = {zone: self._zone_bucket(zone, purpose) for zone, purpose in ZONES.items()}
        self.raw_bucket = buckets["Raw"]
        self.curated_bucket = buckets["Curated"]
        self.artifacts_bucket = buckets["Artifacts"]
        self.monitoring_bucket = buckets["Monitoring"]
        self.zone_buckets: dict[str, s3.Bucket] = buckets

    def _key(self, retain: bool) -> kms.Key:
        """The data-lake key: rotating; CloudWatch Logs may use it for this account's log groups,
        EventBridge for this stage's dead-letter queues."""
        key = kms.Key(
            self,
            "Key",
            description=f"{self._prefix}: encrypts the data lake and everything the ML platform stores",
            alias=f"alias/{self._prefix}-data-lake",
            enable_key_rotation=True,
            pending_window=Duration.days(30 if retain else 7),
            removal_policy=self._removal_policy,
        )
        stack = cdk.Stack.of(self)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
                    }
                },
            )
        )
        # EventBridge delivers what it cannot hand to a rule's target to that target's dead-letter
        # queue; the stage's queues are encrypted with this key, so EventBridge may use it for
        # this account's rules of this stage only ("Amazon SQS key management": AWS service
        # producers to encrypted queues; EventBridge "Using dead-letter queues").
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeDeadLetterQueues",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:events:{stack.region}:{stack.account}:rule/{self._prefix}-*"},
                },
            )
        )
        return key

    def _access_logs_bucket(self) -> s3.Bucket:
        """S3 server access logging only delivers to buckets with SSE-S3 default encryption,
        so this one bucket cannot use the CMK."""
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(self._config.access_log_retention_days),
                    **self._lifecycle,
                )
            ],
            removal_policy=self._removal_policy,
            auto_delete_objects=self._auto_delete,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "This bucket is the server-access-log target of every data-lake bucket; logging it to "
            "itself would create a delivery loop, which AWS documentation advises against.",
        )
        # Amazon S3 User Guide, "Enabling Amazon S3 server access logging": default encryption on
        # the target bucket must be SSE-S3; SSE-KMS is not supported for server access logging
        # target buckets (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html).
        acknowledge_packs(
            bucket, "S3DefaultEncryptionKMS",
            "Server access logging target: S3 delivers server access logs only to a bucket whose default "
            "encryption is SSE-S3 (SSE-KMS is not supported for log target buckets), so this bucket cannot use "
            "the data-lake key; it holds request logs, not data.")
        # Amazon S3 User Guide, "Requirements and considerations for replication" and "Replicating
        # objects within and across Regions": replication needs a destination bucket (and key and
        # role) in another region, which this app does not own.
        acknowledge_packs(
            bucket, "S3BucketReplicationEnabled",
            f"Server access logs of this stage's zone buckets, kept {self._config.access_log_retention_days} "
            "days for audits in the region they describe; copying them to a second region is part of a "
            "deployer's disaster-recovery design, not of this app.")
        return bucket

    def _zone_bucket(self, zone: str, purpose: str) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            f"{zone}Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,  # fewer KMS calls: cheaper, same protection
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=f"{zone.lower()}/",
            lifecycle_rules=[s3.LifecycleRule(id="ExpireNoncurrentAndAbortUploads", **self._lifecycle)],
            removal_policy=self._removal_policy,
            auto_delete_objects=self._auto_delete,
        )
        bucket.node.default_child.add_metadata("Purpose", purpose)  # type: ignore[union-attr]
        # Amazon S3 User Guide, "Requirements and considerations for replication": a destination
        # bucket in another region (versioned, as this one is), its KMS key and a replication role.
        acknowledge_packs(
            bucket, "S3BucketReplicationEnabled",
            f"The {zone.lower()} bucket, which holds {purpose.split(': ', 1)[1]}, stays in the stage's region: "
            "cross-region replication needs a "
            "destination bucket, KMS key and replication role in a second region, a disaster-recovery and "
            "data-residency choice for the deployer; the bucket is versioned, so replication can be added.")
        return bucket
