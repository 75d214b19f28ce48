//! The agent's transcript bucket: versioning on, all public access blocked, default
//! encryption, a policy that denies any request not made over TLS, and a lifecycle
//! that really deletes (Standard-IA, then Glacier, then expiry; noncurrent versions,
//! expired delete markers and incomplete multipart uploads removed too). Each
//! setting is read first and written only when it differs; the writes to a bucket
//! just created wait out S3's "not yet" answers ([`crate::consistency`]).

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, Transition, TransitionStorageClass,
    VersioningConfiguration,
};
use serde_json::json;

use crate::consistency::{SETTLE, bucket_settling, settle};
use crate::error::{DeployError, Step, code_of};
use crate::report::{ResourceAction, ResourceKind, ResourceReport, outcome};
use crate::settings::{Lifecycle, Partition};

const STEP: Step = Step::Bucket;
/// The rule for objects: transitions, expiry, noncurrent versions, multipart uploads.
pub const LIFECYCLE_RULE_ID: &str = "tempovoice-transcripts";
/// The rule removing delete markers left with no version behind them (S3 does not
/// allow it in a rule that also expires after a number of days).
pub const DELETE_MARKER_RULE_ID: &str = "tempovoice-delete-markers";
/// Days after which an upload that was started and never completed is aborted.
pub const ABORT_MULTIPART_DAYS: i32 = 7;

pub fn arn(partition: Partition, bucket: &str) -> String {
    format!("arn:{}:s3:::{bucket}", partition.id())
}

/// The policy: deny every request that does not use TLS.
pub fn tls_only_policy(partition: Partition, bucket: &str) -> serde_json::Value {
    let arn = arn(partition, bucket);
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, format!("{arn}/*")],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } }
        }]
    })
}

fn whole_bucket() -> LifecycleRuleFilter {
    LifecycleRuleFilter::builder().prefix("").build()
}

/// The two rules. On a versioned bucket, expiring the current version only adds a
/// delete marker: the data goes when the noncurrent version expires, and the
/// marker left alone is removed by the second rule.
pub fn lifecycle_rules(l: &Lifecycle) -> Vec<LifecycleRule> {
    let objects = LifecycleRule::builder()
        .id(LIFECYCLE_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(whole_bucket())
        .transitions(
            Transition::builder()
                .days(l.infrequent_access_days)
                .storage_class(TransitionStorageClass::StandardIa)
                .build(),
        )
        .transitions(Transition::builder().days(l.glacier_days).storage_class(TransitionStorageClass::Glacier).build())
        .expiration(LifecycleExpiration::builder().days(l.expire_days).build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder().noncurrent_days(l.noncurrent_days).build(),
        )
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder().days_after_initiation(ABORT_MULTIPART_DAYS).build(),
        )
        .build()
        .expect("lifecycle rule has a status");
    let markers = LifecycleRule::builder()
        .id(DELETE_MARKER_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(whole_bucket())
        .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
        .build()
        .expect("lifecycle rule has a status");
    vec![objects, markers]
}

/// Whether `rules` are exactly our two rules with the configured days.
fn lifecycle_matches(rules: &[LifecycleRule], l: &Lifecycle) -> bool {
    let objects = rules.iter().find(|r| r.id() == Some(LIFECYCLE_RULE_ID));
    let markers = rules.iter().find(|r| r.id() == Some(DELETE_MARKER_RULE_ID));
    let objects_ok = objects.is_some_and(|r| {
        let transitions: Vec<(Option<i32>, Option<&TransitionStorageClass>)> =
            r.transitions().iter().map(|t| (t.days(), t.storage_class())).collect();
        r.status() == &ExpirationStatus::Enabled
            && transitions.len() == 2
            && transitions.contains(&(Some(l.infrequent_access_days), Some(&TransitionStorageClass::StandardIa)))
            && transitions.contains(&(Some(l.glacier_days), Some(&TransitionStorageClass::Glacier)))
            && r.expiration().and_then(|e| e.days()) == Some(l.expire_days)
            && r.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()) == Some(l.noncurrent_days)
            && r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation())
                == Some(ABORT_MULTIPART_DAYS)
    });
    let markers_ok = markers.is_some_and(|r| {
        r.status() == &ExpirationStatus::Enabled
            && r.expiration().and_then(|e| e.expired_object_delete_marker()) == Some(true)
    });
    objects_ok && markers_ok && rules.len() == 2
}

/// What the bucket has now.
#[derive(Debug, Default)]
struct Observed {
    versioning: bool,
    public_access_blocked: bool,
    encrypted: bool,
    policy: Option<serde_json::Value>,
    lifecycle_ok: bool,
    tags: Vec<(String, String)>,
}

/// Whether the bucket exists (and this account can use it): the observe-phase read.
/// HeadBucket answers with a status and no body, so the status is all there is to say.
pub async fn exists(s3: &Client, bucket: &str) -> Result<bool, DeployError> {
    let err = match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(true),
        Err(e) => e,
    };
    let status = err.raw_response().map(|r| r.status().as_u16());
    let region = err.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")).map(str::to_owned);
    match status {
        Some(404) => Ok(false),
        _ if err.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
        Some(403) => Err(DeployError::new(
            STEP,
            Some("Forbidden"),
            format!(
                "HeadBucket on {bucket} was refused (403). Either the deployer's role lacks s3:ListBucket on \
                 arn:*:s3:::{bucket}, or the bucket belongs to another account (bucket names are global; \
                 then choose another TEMPOVOICE_PREFIX)"
            ),
            false,
        )),
        Some(301) => Err(DeployError::new(
            STEP,
            Some("PermanentRedirect"),
            format!(
                "bucket {bucket} already exists in region {}, not in this deployer's region. Bucket names are \
                 global: delete that bucket, or choose another TEMPOVOICE_PREFIX",
                region.as_deref().unwrap_or("(not given)")
            ),
            false,
        )),
        _ => Err(DeployError::aws(STEP, err)),
    }
}

async fn observe(s3: &Client, bucket: &str, lifecycle: &Lifecycle) -> Result<Observed, DeployError> {
    let missing = |code: Option<&str>, expected: &[&str]| code.is_some_and(|c| expected.contains(&c));
    let (versioning, pab, encryption, policy, rules, tagging) = tokio::join!(
        s3.get_bucket_versioning().bucket(bucket).send(),
        s3.get_public_access_block().bucket(bucket).send(),
        s3.get_bucket_encryption().bucket(bucket).send(),
        s3.get_bucket_policy().bucket(bucket).send(),
        s3.get_bucket_lifecycle_configuration().bucket(bucket).send(),
        s3.get_bucket_tagging().bucket(bucket).send(),
    );
    let versioning =
        versioning.map_err(|e| DeployError::aws(STEP, e))?.status() == Some(&BucketVersioningStatus::Enabled);
    let public_access_blocked = match pab {
        Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if missing(code_of(&e), &["NoSuchPublicAccessBlockConfiguration"]) => false,
        Err(e) => return Err(DeployError::aws(STEP, e)),
    };
    let encrypted = match encryption {
        Ok(out) => out.server_side_encryption_configuration().is_some_and(|c| !c.rules().is_empty()),
        Err(e) if missing(code_of(&e), &["ServerSideEncryptionConfigurationNotFoundError"]) => false,
        Err(e) => return Err(DeployError::aws(STEP, e)),
    };
    let policy = match policy {
        Ok(out) => out.policy().and_then(|p| serde_json::from_str(p).ok()),
        Err(e) if missing(code_of(&e), &["NoSuchBucketPolicy"]) => None,
        Err(e) => return Err(DeployError::aws(STEP, e)),
    };
    let lifecycle_ok = match rules {
        Ok(out) => lifecycle_matches(out.rules(), lifecycle),
        Err(e) if missing(code_of(&e), &["NoSuchLifecycleConfiguration"]) => false,
        Err(e) => return Err(DeployError::aws(STEP, e)),
    };
    let tags = match tagging {
        Ok(out) => out.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect(),
        Err(e) if missing(code_of(&e), &["NoSuchTagSet", "NoSuchTagSetError"]) => Vec::new(),
        Err(e) => return Err(DeployError::aws(STEP, e)),
    };
    Ok(Observed { versioning, public_access_blocked, encrypted, policy, lifecycle_ok, tags })
}

/// Makes the bucket exist with every setting; writes only what differs. `existed`
/// is what [`exists`] answered.
pub struct Desired<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    pub partition: Partition,
    pub lifecycle: &'a Lifecycle,
    pub tls_only: bool,
    pub tags: &'a [(&'static str, String)],
}

/// One configuration write (a fluent builder), retried while S3 answers "not yet".
macro_rules! settled_write {
    ($req:expr) => {{
        let req = $req;
        Box::pin(async move {
            settle(SETTLE, bucket_settling, || {
                let req = req.clone();
                async move { req.send().await.map(drop).map_err(|e| DeployError::aws(STEP, e)) }
            })
            .await
        }) as futures::future::BoxFuture<'static, Result<(), DeployError>>
    }};
}

pub async fn converge(s3: &Client, d: &Desired<'_>, existed: bool) -> Result<ResourceReport, DeployError> {
    let Desired { bucket, region, partition, lifecycle, tls_only, tags } = *d;
    let observed = if existed {
        observe(s3, bucket, lifecycle).await?
    } else {
        let mut create = s3.create_bucket().bucket(bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        // OperationAborted: the name was just released by a delete, or is being created.
        settle(SETTLE, bucket_settling, || {
            let create = create.clone();
            async move {
                match create.send().await {
                    Ok(_) => Ok(()),
                    // Made by an earlier, interrupted deploy of ours between the check and now.
                    Err(e) if code_of(&e) == Some("BucketAlreadyOwnedByYou") => Ok(()),
                    Err(e) if code_of(&e) == Some("TooManyBuckets") => Err(DeployError::new(
                        STEP,
                        Some("TooManyBuckets"),
                        "the account is at its quota of S3 buckets (10,000 by default; retired transcript buckets \
                         count too). A sweep with delete removes retired buckets older than \
                         TEMPOVOICE_RETIRED_BUCKET_DAYS; or raise 'General purpose buckets' in Service Quotas \
                         (Amazon S3)",
                        false,
                    )),
                    Err(e) => Err(DeployError::aws(STEP, e)),
                }
            }
        })
        .await?;
        Observed::default()
    };

    let mut changes = Vec::new();
    let mut writes = Vec::new();
    if !observed.versioning {
        changes.push("versioning".to_owned());
        let req = s3.put_bucket_versioning().bucket(bucket).versioning_configuration(
            VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
        );
        writes.push(settled_write!(req));
    }
    if !observed.public_access_blocked {
        changes.push("public access block".to_owned());
        let req = s3.put_public_access_block().bucket(bucket).public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        );
        writes.push(settled_write!(req));
    }
    if !observed.encrypted {
        changes.push("default encryption".to_owned());
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .expect("algorithm is set"),
            )
            .build();
        let config = ServerSideEncryptionConfiguration::builder().rules(rule).build().expect("rules are set");
        let req = s3.put_bucket_encryption().bucket(bucket).server_side_encryption_configuration(config);
        writes.push(settled_write!(req));
    }
    let policy = tls_only_policy(partition, bucket);
    if tls_only && observed.policy.as_ref() != Some(&policy) {
        changes.push("TLS-only policy".to_owned());
        let req = s3.put_bucket_policy().bucket(bucket).policy(policy.to_string());
        writes.push(settled_write!(req));
    }
    if !observed.lifecycle_ok {
        changes.push("lifecycle".to_owned());
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(lifecycle_rules(lifecycle)))
            .build()
            .expect("rules set");
        let req = s3.put_bucket_lifecycle_configuration().bucket(bucket).lifecycle_configuration(config);
        writes.push(settled_write!(req));
    }
    let missing_tags = tags.iter().any(|(k, v)| !observed.tags.iter().any(|(ek, ev)| ek == k && ev == v));
    if missing_tags {
        changes.push("tags".to_owned());
        // Keep tags others added; ours win on conflicts.
        let mut merged: Vec<(String, String)> =
            observed.tags.iter().filter(|(k, _)| !tags.iter().any(|(ok, _)| ok == k)).cloned().collect();
        merged.extend(tags.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let tag_set: Vec<Tag> =
            merged.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build().expect("key and value")).collect();
        let req = s3
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(Tagging::builder().set_tag_set(Some(tag_set)).build().expect("tag set"));
        writes.push(settled_write!(req));
    }
    // All writes run to the end; the first error is reported.
    futures::future::join_all(writes).await.into_iter().collect::<Result<Vec<()>, _>>()?;

    let action = outcome(existed, &changes);
    let report = ResourceReport::new(ResourceKind::Bucket, bucket, Some(arn(partition, bucket)), action);
    Ok(if action == ResourceAction::Updated { report.with_changes(changes) } else { report })
}

/// On agent delete: keep the bucket and tag it retired (the default: it holds
/// customer data), or, when `purge`, delete every object version and delete marker
/// and then the bucket.
pub async fn retire_or_purge(
    s3: &Client,
    partition: Partition,
    bucket: &str,
    purge: bool,
) -> Result<ResourceReport, DeployError> {
    if !exists(s3, bucket).await? {
        return Ok(ResourceReport::new(ResourceKind::Bucket, bucket, None, ResourceAction::Absent));
    }
    if !purge {
        let current = tags(s3, bucket).await?;
        if retired_at(&current).is_none() {
            mark_retired(s3, bucket, current).await?;
        }
        return Ok(ResourceReport::new(
            ResourceKind::Bucket,
            bucket,
            Some(arn(partition, bucket)),
            ResourceAction::Retained,
        ));
    }
    purge_bucket(s3, bucket).await?;
    Ok(ResourceReport::new(ResourceKind::Bucket, bucket, Some(arn(partition, bucket)), ResourceAction::Deleted))
}

/// When the bucket was retired, from its tags: `None` if it is not retired,
/// `Some(None)` if its retired tag holds no time (buckets retired before the tag
/// carried one, or tagged by hand).
pub fn retired_at(tags: &[Tag]) -> Option<Option<aws_smithy_types::DateTime>> {
    let value = tags.iter().find(|t| t.key() == crate::naming::tags::RETIRED)?.value();
    Some(aws_smithy_types::DateTime::from_str(value, aws_smithy_types::date_time::Format::DateTime).ok())
}

/// Tags the bucket retired now (replacing a retired tag without a time), keeping
/// its other tags (`current`).
pub async fn mark_retired(s3: &Client, bucket: &str, current: Vec<Tag>) -> Result<(), DeployError> {
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let when = now.fmt(aws_smithy_types::date_time::Format::DateTime).expect("now formats");
    let mut tags: Vec<Tag> = current.into_iter().filter(|t| t.key() != crate::naming::tags::RETIRED).collect();
    tags.push(Tag::builder().key(crate::naming::tags::RETIRED).value(when).build().expect("key and value"));
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(Tagging::builder().set_tag_set(Some(tags)).build().expect("tag set"))
        .send()
        .await
        .map_err(|e| DeployError::aws(STEP, e))?;
    Ok(())
}

/// The bucket's tags (none when it has no tag set).
pub async fn tags(s3: &Client, bucket: &str) -> Result<Vec<Tag>, DeployError> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(t) => Ok(t.tag_set().to_vec()),
        Err(e) if code_of(&e).is_some_and(|c| c.starts_with("NoSuchTagSet")) => Ok(Vec::new()),
        Err(e) => Err(DeployError::aws(STEP, e)),
    }
}

/// Deletes every object version and delete marker, then the bucket.
pub async fn purge_bucket(s3: &Client, bucket: &str) -> Result<(), DeployError> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mut key_marker = None;
    let mut version_marker = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        let ids: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(page.delete_markers().iter().map(|m| (m.key(), m.version_id())))
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .set_key(key.map(str::to_owned))
                    .set_version_id(version.map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        // A page holds at most 1,000 entries: one DeleteObjects call each.
        if !ids.is_empty() {
            let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build().expect("objects are set");
            s3.delete_objects().bucket(bucket).delete(delete).send().await.map_err(|e| DeployError::aws(STEP, e))?;
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    s3.delete_bucket().bucket(bucket).send().await.map_err(|e| DeployError::aws(STEP, e))?;
    Ok(())
}
