//! Placement of agents on ALB listeners: spread within capacities, a clear refusal
//! when all are full, freed slots reused, and never one priority twice — also under
//! concurrent assignment; the AWS quotas (targets per ALB, target groups per Region)
//! counted and refused by name. Runs on SQLite and on PostgreSQL.

use std::collections::{HashMap, HashSet};

use agent_spec::AgentId;
use control_plane::store::StoreError;
use control_plane::store::placements::{ListenerCapacity, PRIORITY_BASE, Quotas, targets_of};

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
        let p = store.assign_placement(&tenant, &agent, &listeners, 2, Quotas::default()).await.unwrap();
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
    match store.assign_placement(&tenant, &seventh, &listeners, 2, Quotas::default()).await {
        Err(StoreError::NoCapacity { listeners: 3, slots: 6 }) => {}
        other => panic!("expected NoCapacity, got {other:?}"),
    }
    let message = StoreError::NoCapacity { listeners: 3, slots: 6 }.to_string();
    assert!(message.contains("every listener is full"), "{message}");

    // Assigning again returns the same slot; releasing one makes room for the seventh.
    let (first, first_slot) = &placed[0];
    assert_eq!(&store.assign_placement(&tenant, first, &listeners, 2, Quotas::default()).await.unwrap(), first_slot);
    store.release_placement(&tenant, first).await.unwrap();
    let p = store.assign_placement(&tenant, &seventh, &listeners, 2, Quotas::default()).await.unwrap();
    assert_eq!(&p, first_slot, "the freed slot is reused");
    assert_eq!(store.placement(&tenant, first).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_assignments_never_share_a_priority() {
    let (store, tenant, _dir) = test_store().await;
    let listeners = listeners(3, 10);
    let agents: Vec<AgentId> = (0..20).map(|_| AgentId::generate()).collect();
    let results = futures::future::join_all(
        agents.iter().map(|a| store.assign_placement(&tenant, a, &listeners, 2, Quotas::default())),
    )
    .await;
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
    let results = futures::future::join_all(
        agents.iter().map(|a| store.assign_placement(&tenant, a, &listeners, 2, Quotas::default())),
    )
    .await;
    let placed = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(StoreError::NoCapacity { .. }))).count();
    assert_eq!((placed, refused), (6, 3), "{results:?}");
}

#[tokio::test]
async fn targets_per_load_balancer_and_target_groups_per_region_are_counted() {
    let (store, tenant, _dir) = test_store().await;
    let listeners = listeners(2, 95);
    // 10 targets per ALB: agents of 2 tasks register up to 4 targets each.
    let quotas = Quotas { targets_per_alb: 10, target_groups: 5 };
    assert_eq!(targets_of(2), 4);
    let mut placed = Vec::new();
    for _ in 0..4 {
        let agent = AgentId::generate();
        placed.push((agent.clone(), store.assign_placement(&tenant, &agent, &listeners, 4, quotas).await.unwrap()));
    }
    // Two per ALB (8 of 10 targets), although each listener has 95 slots.
    let on_first = placed.iter().filter(|(_, p)| p.listener_arn == listeners[0].listener_arn).count();
    assert_eq!(on_first, 2, "{placed:?}");

    // A fifth of 4 targets fits nowhere: refused, naming the quota and the ways out.
    let fifth = AgentId::generate();
    match store.assign_placement(&tenant, &fifth, &listeners, 4, quotas).await {
        Err(StoreError::Quota(message)) => {
            assert!(message.contains("Targets per Application Load Balancer") && message.contains("(10)"), "{message}");
            assert!(message.contains("TEMPOVOICE_LISTENERS") && message.contains("Service Quotas"), "{message}");
        }
        other => panic!("expected a quota refusal, got {other:?}"),
    }
    // One of 2 targets still fits, as the fifth target group of five.
    store.assign_placement(&tenant, &fifth, &listeners, 2, quotas).await.unwrap();
    // A sixth target group is over the Region's quota.
    match store.assign_placement(&tenant, &AgentId::generate(), &listeners, 2, quotas).await {
        Err(StoreError::Quota(message)) => {
            assert!(
                message.contains("Target groups per Region") && message.contains("TEMPOVOICE_TARGET_GROUP_QUOTA"),
                "{message}"
            );
        }
        other => panic!("expected a quota refusal, got {other:?}"),
    }
    // A placed agent that grows past its ALB's room is refused too, and keeps its slot.
    let (grown, slot) = &placed[0];
    assert!(matches!(store.assign_placement(&tenant, grown, &listeners, 8, quotas).await, Err(StoreError::Quota(_))));
    assert_eq!(&store.assign_placement(&tenant, grown, &listeners, 4, quotas).await.unwrap(), slot);
}
