//! Failed authentications are limited per client address and per key id: past the
//! limit the answer is 429 with `Retry-After`, before the credential is looked at;
//! other addresses and keys are not affected, and the limit lifts as the window
//! passes (the limiter's clock is moved forward rather than waited for).

use std::time::Duration;

use reqwest::Method;

use crate::helpers::{TestApp, error_of, random_token};

const FROM_A: &str = "203.0.113.7";
const FROM_B: &str = "198.51.100.2";

async fn spawn(per_address: &str, per_key: &str, trusted_proxy: &str) -> TestApp {
    let (per_address, per_key, trusted_proxy) = (per_address.to_owned(), per_key.to_owned(), trusted_proxy.to_owned());
    TestApp::spawn_with(move |vars| {
        vars.insert("TEMPOVOICE_AUTH_FAILURES_PER_ADDRESS".into(), per_address);
        vars.insert("TEMPOVOICE_AUTH_FAILURES_PER_KEY".into(), per_key);
        vars.insert("TEMPOVOICE_AUTH_FAILURE_WINDOW_SECS".into(), "60".into());
        vars.insert("TEMPOVOICE_TRUSTED_PROXY".into(), trusted_proxy);
    })
    .await
}

/// `GET /v1/agents` with `key`, from `address` as the load balancer reports it.
async fn list_from(app: &TestApp, key: &str, address: &str) -> reqwest::Response {
    app.request(Method::GET, "/v1/agents", Some(key))
        .header("x-forwarded-for", format!("192.0.2.99, {address}"))
        .send()
        .await
        .unwrap()
}

fn unknown_key() -> String {
    format!("tvk_{}_{}", "a".repeat(12), random_token(32).to_lowercase())
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_burst_of_bad_keys_from_one_address_is_answered_429_until_the_window_passes() {
    let app = spawn("5", "1000", "true").await;
    let tenant = app.new_tenant("t").await;

    for i in 0..5 {
        assert_eq!(list_from(&app, &unknown_key(), FROM_A).await.status(), 401, "attempt {i}");
    }
    let res = list_from(&app, &unknown_key(), FROM_A).await;
    assert_eq!(res.status(), 429);
    let wait = retry_after(&res);
    assert!((1..=12).contains(&wait), "one attempt back every 12 s: Retry-After {wait}");
    let (_, code, ..) = error_of(res).await;
    assert_eq!(code, "too_many_failed_attempts");
    // While limited, even the right key from that address is refused: a guesser
    // learns nothing from the answer.
    assert_eq!(list_from(&app, &tenant.key, FROM_A).await.status(), 429);
    // Another address is not affected.
    assert_eq!(list_from(&app, &tenant.key, FROM_B).await.status(), 200);

    app.auth_limiter.advance(Duration::from_secs(61));
    assert_eq!(list_from(&app, &tenant.key, FROM_A).await.status(), 200, "the window has passed");
    // Successes cost nothing: a burst of them is never limited.
    for _ in 0..10 {
        assert_eq!(list_from(&app, &tenant.key, FROM_A).await.status(), 200);
    }
}

#[tokio::test]
async fn failed_attempts_on_one_key_id_are_limited_from_any_address() {
    let app = spawn("1000", "3", "true").await;
    let tenant = app.new_tenant("t").await;
    let second = app.issue_key(&tenant.id).await;
    let (second_id, second_key) = (second["key_id"].as_str().unwrap(), second["api_key"].as_str().unwrap());
    let guess = |i: u32| format!("tvk_{second_id}_{i:0>32}");

    for i in 0..3 {
        let res = list_from(&app, &guess(i), &format!("203.0.113.{}", 10 + i)).await;
        assert_eq!(res.status(), 401, "guess {i}");
    }
    let res = list_from(&app, &guess(3), "203.0.113.50").await;
    assert_eq!(res.status(), 429, "a fresh address, the same key id");
    assert!(retry_after(&res) >= 1);
    // The key id is what is limited, whoever presents it; other keys are not.
    assert_eq!(list_from(&app, second_key, "203.0.113.51").await.status(), 429);
    assert_eq!(list_from(&app, &tenant.key, "203.0.113.52").await.status(), 200);

    app.auth_limiter.advance(Duration::from_secs(61));
    assert_eq!(list_from(&app, second_key, "203.0.113.51").await.status(), 200);
}

#[tokio::test]
async fn without_a_trusted_proxy_x_forwarded_for_does_not_move_the_client_elsewhere() {
    let app = spawn("3", "1000", "false").await;
    let tenant = app.new_tenant("t").await;
    for i in 0..3 {
        let res = list_from(&app, &unknown_key(), &format!("198.51.100.{i}")).await;
        assert_eq!(res.status(), 401);
    }
    // Each claimed another address; all came from 127.0.0.1.
    assert_eq!(list_from(&app, &unknown_key(), "198.51.100.200").await.status(), 429);
    assert_eq!(list_from(&app, &tenant.key, "198.51.100.201").await.status(), 429);
    // Admin token guesses count against the address too.
    let res = app
        .request(Method::GET, &format!("/v1/admin/tenants/{}/api-keys", tenant.id), Some("not-the-admin-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn the_limiter_tracks_a_bounded_number_of_addresses() {
    let app = spawn("2", "1000", "true").await;
    // Many addresses, one failure each: every address is tracked up to the cap,
    // never past it (the cap itself is checked in the limiter's unit tests).
    for i in 0..200u32 {
        let address = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
        assert_eq!(list_from(&app, &unknown_key(), &address).await.status(), 401);
    }
    let (addresses, keys) = app.auth_limiter.tracked();
    assert!(addresses <= control_plane::http::auth_limit::MAX_TRACKED, "{addresses}");
    assert_eq!(addresses, 200);
    assert_eq!(keys, 1, "the one key id all the unknown keys shared");
}
