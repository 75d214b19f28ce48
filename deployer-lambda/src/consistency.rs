//! AWS is eventually consistent: right after one call succeeds, a call that depends
//! on it can still be refused. The SDK retries throttling, 5xx answers and
//! timeouts by itself ([`crate::aws::retry_config`]); the answers here are ordinary
//! 4xx errors that only mean "not yet", so the deployer retries them itself, with
//! back-off and a bound:
//!
//! | answer | when |
//! | --- | --- |
//! | S3 `OperationAborted` (409) | a bucket just created or deleted, or concurrent configuration writes to it |
//! | S3 `NoSuchBucket` (404) | configuring a bucket just created |
//! | ECS `InvalidParameterException` "…does not have an associated load balancer" | CreateService right after the listener rule that attaches the target group |
//! | Secrets Manager `InvalidRequestException` "…marked for deletion" | reading or writing a secret right after RestoreSecret |
//! | Application Auto Scaling `ConcurrentUpdateException` | another change to the same scalable target is still being applied |
//! | Application Auto Scaling `ValidationException` "…doesn't exist" | registering a scalable target right after CreateService |
//! | Application Auto Scaling `ObjectNotFoundException` | putting the policy right after registering its scalable target |
//!
//! A service still DRAINING after a delete is waited for separately
//! ([`crate::resources::service`]): that can take as long as the deregistration delay.

use std::time::Duration;

use crate::error::DeployError;

/// How often and how long to retry an answer that means "not yet".
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts, the first included.
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

/// 8 attempts over about 16 s: 0.25, 0.5, 1, 2, 4, 4, 4 s between them.
pub const SETTLE: Backoff = Backoff { attempts: 8, first: Duration::from_millis(250), max: Duration::from_secs(4) };

/// Runs `op` until it succeeds, fails with an error `not_yet` does not recognize, or
/// the attempts run out. An error still recognized after the last attempt is
/// reported as retryable: a later deploy can succeed.
pub async fn settle<T, Fut>(
    backoff: Backoff,
    not_yet: impl Fn(&DeployError) -> bool,
    mut op: impl FnMut() -> Fut,
) -> Result<T, DeployError>
where
    Fut: Future<Output = Result<T, DeployError>>,
{
    let mut delay = backoff.first;
    let mut waited = Duration::ZERO;
    for attempt in 1..=backoff.attempts {
        match op().await {
            Err(e) if not_yet(&e) && attempt < backoff.attempts => {
                tracing::info!(step = %e.step, code = ?e.code, attempt, "AWS is not consistent yet: retrying");
                tokio::time::sleep(delay).await;
                waited += delay;
                delay = (delay * 2).min(backoff.max);
            }
            Err(mut e) if not_yet(&e) => {
                e.retryable = true;
                e.message =
                    format!("{} (still answered after {attempt} attempts over {} s)", e.message, waited.as_secs());
                return Err(e);
            }
            other => return other,
        }
    }
    unreachable!("the last attempt returns")
}

/// Application Auto Scaling: a change to the target is in progress, or the
/// service or target just created is not visible to it yet.
pub fn autoscaling_settling(e: &DeployError) -> bool {
    code_is(e, "ConcurrentUpdateException")
        || code_is(e, "ObjectNotFoundException")
        || (code_is(e, "ValidationException")
            && (e.message.contains("doesn't exist") || e.message.contains("does not exist")))
}

fn code_is(e: &DeployError, code: &str) -> bool {
    e.code.as_deref() == Some(code)
}

/// S3: the bucket is not (yet) in a state to take the request.
pub fn bucket_settling(e: &DeployError) -> bool {
    code_is(e, "OperationAborted") || code_is(e, "NoSuchBucket")
}

/// ECS: the listener rule attaching the target group is not visible to ECS yet.
pub fn target_group_not_associated(e: &DeployError) -> bool {
    code_is(e, "InvalidParameterException") && e.message.contains("does not have an associated load balancer")
}

/// Secrets Manager: a restore is not visible yet.
pub fn secret_restoring(e: &DeployError) -> bool {
    code_is(e, "InvalidRequestException") && e.message.contains("marked for deletion")
}

/// ECS: a service of that name was deleted and is still draining.
pub fn service_draining(e: &DeployError) -> bool {
    code_is(e, "InvalidParameterException") && e.message.contains("still Draining")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Step;
    use std::sync::atomic::{AtomicU32, Ordering};

    const FAST: Backoff = Backoff { attempts: 3, first: Duration::from_millis(1), max: Duration::from_millis(2) };

    fn aborted() -> DeployError {
        DeployError::new(Step::Bucket, Some("OperationAborted"), "conflicting operation", false)
    }

    #[tokio::test]
    async fn retries_until_success_within_the_bound() {
        let calls = AtomicU32::new(0);
        let out = settle(FAST, bucket_settling, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(aborted()) } else { Ok(7) }
        })
        .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_retryable_after_the_last_attempt_and_never_retries_other_errors() {
        let calls = AtomicU32::new(0);
        let err = settle(FAST, bucket_settling, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(aborted())
        })
        .await
        .unwrap_err();
        assert!(err.retryable && err.message.contains("3 attempts"), "{err:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let denied = DeployError::new(Step::Bucket, Some("AccessDenied"), "no", false);
        let err = settle(FAST, bucket_settling, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(denied.clone())
        })
        .await
        .unwrap_err();
        assert_eq!((err, calls.load(Ordering::SeqCst)), (denied, 1));
    }
}
