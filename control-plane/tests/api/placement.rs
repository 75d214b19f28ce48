//! Placement of agents on ALB listeners: spread within capacities, a clear refusal
//! when all are full, freed slots reused, and never one priority twice — also under
//! concurrent assignment. Runs on SQLite and on PostgreSQL.

use std::collections::{HashMap, HashSet};

use agent_spec::AgentId;
use control_plane::store::StoreError;
use control_plane::store::placements::{ListenerCapacity, PRIORITY_BASE};

use crate::helpers::test_store;

fn listeners(count: usize, capacity: u32) -> Vec<ListenerCapacity> {
    (0..count)
        .map(|i| ListenerCapacity {
            public_host: None,
            listener_arn: format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/alb{i}/abc/def{i}"),
            capacity,
        })
        .collect()
}

#[tokio::test]
async fn agents_spread_over_listeners_and_the_overflow_is_refused() {
    let (store, tenant, _dir) = test_store().await;
    let listeners = listeners(3, 2);
    let mut placed = Vec::new();
    for _ in 0..6 {
        let agent = AgentId::generate();
        let p = store.assign_placement(&tenant, &agent, &listeners).await.unwrap();
        placed.push((agent, p));
    }
    let mut per_listener: HashMap<&str, Vec<u32>> = HashMap::new();
    for (_, p) in &placed {
        per_listener.entry(&p.listener_arn).or_default().push(p.priority);
    }
    assert_eq!(per_listener.len(), 3, "all three listeners used");
    for priorities in per_listener.values() {
        assert_eq!(priorities, &[PRIORITY_BASE + 1, PRIORITY_BASE + 2]);
    }

    // The seventh agent: every listener is full.
    let seventh = AgentId::generate();
    match store.assign_placement(&tenant, &seventh, &listeners).await {
        Err(StoreError::NoCapacity { listeners: 3, slots: 6 }) => {}
        other => panic!("expected NoCapacity, got {other:?}"),
    }
    let message = StoreError::NoCapacity { listeners: 3, slots: 6 }.to_string();
    assert!(message.contains("every listener is full"), "{message}");

    // Assigning again returns the same slot; releasing one makes room for the seventh.
    let (first, first_slot) = &placed[0];
    assert_eq!(&store.assign_placement(&tenant, first, &listeners).await.unwrap(), first_slot);
    store.release_placement(&tenant, first).await.unwrap();
    let p = store.assign_placement(&tenant, &seventh, &listeners).await.unwrap();
    assert_eq!(&p, first_slot, "the freed slot is reused");
    assert_eq!(store.placement(&tenant, first).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_assignments_never_share_a_priority() {
    let (store, tenant, _dir) = test_store().await;
    let listeners = listeners(3, 10);
    let agents: Vec<AgentId> = (0..20).map(|_| AgentId::generate()).collect();
    let results =
        futures::future::join_all(agents.iter().map(|a| store.assign_placement(&tenant, a, &listeners))).await;
    let slots: Vec<(String, u32)> =
        results.into_iter().map(|r| r.map(|p| (p.listener_arn, p.priority)).unwrap()).collect();
    let distinct: HashSet<&(String, u32)> = slots.iter().collect();
    assert_eq!(distinct.len(), 20, "{slots:?}");
}

#[tokio::test]
async fn concurrent_assignments_at_capacity_fill_it_exactly() {
    let (store, tenant, _dir) = test_store().await;
    let listeners = listeners(2, 3);
    let agents: Vec<AgentId> = (0..9).map(|_| AgentId::generate()).collect();
    let results =
        futures::future::join_all(agents.iter().map(|a| store.assign_placement(&tenant, a, &listeners))).await;
    let placed = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(StoreError::NoCapacity { .. }))).count();
    assert_eq!((placed, refused), (6, 3), "{results:?}");
}
