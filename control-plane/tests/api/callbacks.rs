//! The callbacks store on either backend: one callback per call (moved while it is
//! scheduled), listed to-come first, taken by one worker at a time under a lease,
//! taken over when the lease runs out (keeping when the dead attempt began), and
//! cancelled only while scheduled.

use agent_spec::api::CallbackStatus;
use agent_spec::{AgentId, CallSid};
use control_plane::db::now_ms;
use control_plane::store::callbacks::{CallbackOutcome, CancelRefused, NewCallback};

use crate::helpers::test_store;

fn sid() -> CallSid {
    CallSid::parse(&format!("CA{:032x}", rand::random::<u128>())).unwrap()
}

#[tokio::test]
async fn one_worker_at_a_time_places_a_callback_and_a_dead_ones_attempt_is_taken_over() {
    let (store, tenant, _dir) = test_store().await;
    let agent = AgentId::parse("k3v7q2mxa7bd4fhe").unwrap();
    let (first, second) = (sid(), sid());
    let new = |call_sid, due_at, words| NewCallback {
        call_sid,
        to: "+15550001234",
        requested_time: words,
        context: "call me back",
        due_at,
    };
    let now = now_ms();
    let a = store.schedule_callback(&tenant, &agent, new(&first, now + 3_600_000, "in an hour")).await.unwrap();
    // Asked again on the same call: moved, not doubled.
    let moved = store.schedule_callback(&tenant, &agent, new(&first, now - 1000, "now")).await.unwrap();
    assert_eq!((moved.callback.id.as_str(), moved.callback.requested_time.as_str()), (a.callback.id.as_str(), "now"));
    let b = store.schedule_callback(&tenant, &agent, new(&second, now + 60_000, "in a minute")).await.unwrap();
    let listed = store.list_callbacks(&tenant, &agent).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [a.callback.id.as_str(), b.callback.id.as_str()]
    );

    // One claim wins; the other finds nothing due (the second is not due yet).
    let taken = store.claim_callback("w1", now_ms() + 60_000).await.unwrap().expect("due");
    assert_eq!((taken.callback.id.as_str(), taken.callback.status), (a.callback.id.as_str(), CallbackStatus::Placing));
    assert!(store.claim_callback("w2", now_ms() + 60_000).await.unwrap().is_none());
    // Being placed: not cancellable, and a new report does not move it.
    let refused = store.cancel_callback(&tenant, &agent, &a.callback.id).await.unwrap().unwrap_err();
    assert!(matches!(refused, CancelRefused::Too(CallbackStatus::Placing)));
    let again = store.schedule_callback(&tenant, &agent, new(&first, now + 5000, "later")).await.unwrap();
    assert_eq!(again.callback.status, CallbackStatus::Placing);

    // w1 tries again later, and dies: its lease (here already over) lapses, and w2
    // takes the attempt over, keeping when it began.
    let lapsed =
        store.finish_callback_attempt(&a.callback.id, "w1", CallbackOutcome::Retry { at: now - 1, error: "x" });
    assert!(lapsed.await.unwrap());
    let w1 = store.claim_callback("w1", now_ms() - 1).await.unwrap().expect("due again");
    let started = w1.attempt_started_at.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let w2 = store.claim_callback("w2", now_ms() + 60_000).await.unwrap().expect("lease ran out");
    assert_eq!((w2.callback.id.as_str(), w2.attempt_started_at), (a.callback.id.as_str(), Some(started)));
    assert_eq!(w2.callback.attempts, 3);
    // The dead worker's late word is refused; the live one's is kept.
    let placed = sid();
    assert!(!store.finish_callback_attempt(&a.callback.id, "w1", CallbackOutcome::Failed("late")).await.unwrap());
    assert!(store.finish_callback_attempt(&a.callback.id, "w2", CallbackOutcome::Placed(&placed)).await.unwrap());
    let listed = store.list_callbacks(&tenant, &agent).await.unwrap();
    let done = listed.iter().find(|c| c.id == a.callback.id).unwrap();
    assert_eq!((done.status, done.placed_call_sid.as_ref()), (CallbackStatus::Placed, Some(&placed)));
    assert_eq!(listed[0].id, b.callback.id, "the one to come first");

    // Cancelled while scheduled, once; another tenant's agent id finds nothing.
    let cancelled = store.cancel_callback(&tenant, &agent, &b.callback.id).await.unwrap().unwrap();
    assert_eq!(cancelled.status, CallbackStatus::Cancelled);
    let twice = store.cancel_callback(&tenant, &agent, &b.callback.id).await.unwrap().unwrap_err();
    assert!(matches!(twice, CancelRefused::Too(CallbackStatus::Cancelled)));
    let other = AgentId::parse("abcdefgh234567ab").unwrap();
    assert!(matches!(
        store.cancel_callback(&tenant, &other, &b.callback.id).await.unwrap(),
        Err(CancelRefused::NotFound)
    ));
    assert!(store.claim_callback("w3", now_ms() + 60_000).await.unwrap().is_none(), "nothing left to place");

    // Deleting the agent cancels what is still scheduled, and leaves what is done.
    let third = sid();
    let c = store.schedule_callback(&tenant, &agent, new(&third, now + 600_000, "in ten minutes")).await.unwrap();
    assert_eq!(store.cancel_agent_callbacks(&tenant, &agent, "the agent was deleted").await.unwrap(), 1);
    let listed = store.list_callbacks(&tenant, &agent).await.unwrap();
    let gone = listed.iter().find(|x| x.id == c.callback.id).unwrap();
    assert_eq!((gone.status, gone.error.as_deref()), (CallbackStatus::Cancelled, Some("the agent was deleted")));
    assert_eq!(listed.iter().find(|x| x.id == a.callback.id).unwrap().status, CallbackStatus::Placed);
}
