//! The deployment queue in the database: concurrent workers never take the same
//! deployment, an agent's deployments run one at a time and oldest first, a pending
//! deploy absorbs the next, a delete ends pending deploys, and an expired lease is
//! taken over. Runs on SQLite and on PostgreSQL.

use std::collections::HashSet;

use agent_spec::AgentId;
use agent_spec::api::{DeploymentAction, DeploymentStatus};
use control_plane::db::now_ms;
use control_plane::store::deployments::Completion;

use crate::helpers::test_store;

const LEASE_MS: i64 = 60_000;

#[tokio::test]
async fn concurrent_workers_never_take_the_same_deployment() {
    let (store, tenant, _dir) = test_store().await;
    let mut queued = HashSet::new();
    for _ in 0..24 {
        let d = store.enqueue_deployment(&tenant, &AgentId::generate(), DeploymentAction::Deploy, Some(1), false).await;
        queued.insert(d.unwrap().id);
    }
    // 8 workers claim until the queue is empty.
    let workers = (0..8).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut taken = Vec::new();
            let mut idle = 0;
            while idle < 5 {
                match store.claim_deployment(&format!("worker-{w}"), now_ms() + LEASE_MS).await.unwrap() {
                    Some(d) => taken.push(d.id),
                    None => {
                        idle += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
            }
            taken
        })
    });
    let mut all = Vec::new();
    for w in futures::future::join_all(workers).await {
        all.extend(w.unwrap());
    }
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 24, "each deployment taken exactly once");
    assert_eq!(distinct, queued);
}

#[tokio::test]
async fn an_agents_deployments_run_one_at_a_time_oldest_first() {
    let (store, tenant, _dir) = test_store().await;
    let agent = AgentId::generate();
    let first = store.enqueue_deployment(&tenant, &agent, DeploymentAction::Deploy, Some(1), false).await.unwrap();
    // A second deploy while the first is pending is the same deployment.
    let merged = store.enqueue_deployment(&tenant, &agent, DeploymentAction::Deploy, Some(2), false).await.unwrap();
    assert_eq!(merged.id, first.id);
    assert_eq!(merged.agent_version, Some(2));

    let taken = store.claim_deployment("a", now_ms() + LEASE_MS).await.unwrap().unwrap();
    assert_eq!((taken.id.clone(), taken.status, taken.attempts), (first.id.clone(), DeploymentStatus::Provisioning, 1));
    // While it runs, a new deploy of the agent queues behind it and is not taken.
    let second = store.enqueue_deployment(&tenant, &agent, DeploymentAction::Deploy, Some(3), false).await.unwrap();
    assert_ne!(second.id, first.id);
    assert!(store.claim_deployment("b", now_ms() + LEASE_MS).await.unwrap().is_none());

    // Only the lease holder records the outcome.
    let done = Completion::Succeeded { deployed_version: Some(2), resources: Vec::new(), image: None };
    assert!(!store.complete_deployment(&taken, "b", done).await.unwrap());
    let done = Completion::Succeeded { deployed_version: Some(2), resources: Vec::new(), image: None };
    assert!(store.complete_deployment(&taken, "a", done).await.unwrap());
    assert_eq!(store.deployment(&first.id).await.unwrap().status, DeploymentStatus::Active);
    let next = store.claim_deployment("b", now_ms() + LEASE_MS).await.unwrap().unwrap();
    assert_eq!(next.id, second.id);

    // A delete ends the deploys still pending: they have nothing left to do.
    let third = store.enqueue_deployment(&tenant, &agent, DeploymentAction::Deploy, Some(4), false).await.unwrap();
    let delete = store.enqueue_deployment(&tenant, &agent, DeploymentAction::Delete, None, true).await.unwrap();
    let superseded = store.deployment(&third.id).await.unwrap();
    assert_eq!(superseded.status, DeploymentStatus::Failed);
    assert_eq!(superseded.error.unwrap().error_type, "Superseded");
    assert!(store.deployment(&delete.id).await.unwrap().purge_transcripts);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_a_released_one_at_once() {
    let (store, tenant, _dir) = test_store().await;
    let agent = AgentId::generate();
    let d = store.enqueue_deployment(&tenant, &agent, DeploymentAction::Delete, None, false).await.unwrap();
    // A worker takes it with a lease that is already over (its process died).
    let taken = store.claim_deployment("dead", now_ms() - 1).await.unwrap().unwrap();
    assert_eq!(taken.status, DeploymentStatus::Deleting);
    let again = store.claim_deployment("alive", now_ms() + LEASE_MS).await.unwrap().unwrap();
    assert_eq!((again.id.clone(), again.attempts), (d.id.clone(), 2));
    // The dead worker's late outcome is refused; renewal too.
    let late = Completion::Failed(agent_spec::api::DeploymentError {
        error_type: "NonRetryable.x".into(),
        step: None,
        code: None,
        message: "late".into(),
        retryable: false,
    });
    assert!(!store.complete_deployment(&taken, "dead", late).await.unwrap());
    assert!(!store.renew_deployment_lease(&d.id, "dead", now_ms() + LEASE_MS).await.unwrap());
    // Handed back on shutdown: pending, due now, the attempt not counted.
    assert!(store.release_deployment(&d.id, "alive").await.unwrap());
    let back = store.deployment(&d.id).await.unwrap();
    assert_eq!((back.status, back.attempts), (DeploymentStatus::Pending, 1));
    assert!(store.claim_deployment("next", now_ms() + LEASE_MS).await.unwrap().is_some());
}
