use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, TestTenant, error_of};

async fn page(app: &TestApp, tenant: &TestTenant, query: &str) -> Value {
    let res = app.request(Method::GET, &format!("/v1/agents{query}"), Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

/// Follows `next_cursor` from `first` to the end, returning every id seen in order.
async fn walk(
    app: &TestApp,
    tenant: &TestTenant,
    limit: u32,
    mut between_pages: impl AsyncFnMut(usize),
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut current = page(app, tenant, &format!("?limit={limit}")).await;
    let mut pages = 0;
    loop {
        let page_ids = ids(&current);
        assert!(page_ids.len() <= limit as usize);
        seen.extend(page_ids);
        pages += 1;
        between_pages(pages).await;
        match current["next_cursor"].as_str() {
            None => break,
            Some(cursor) => current = page(app, tenant, &format!("?limit={limit}&cursor={cursor}")).await,
        }
        assert!(pages < 100, "pagination does not end");
    }
    seen
}

#[tokio::test]
async fn every_agent_exactly_once_in_creation_order() {
    let app = TestApp::spawn().await;
    let a = app.new_tenant("a").await;
    let b = app.new_tenant("b").await;
    let mut created = Vec::new();
    for i in 0..23 {
        let agent = app.new_agent(&a, &format!("agent {i}")).await;
        created.push(agent["id"].as_str().unwrap().to_owned());
        if i % 4 == 0 {
            app.new_agent(&b, &format!("other {i}")).await;
        }
    }
    let seen = walk(&app, &a, 5, async |_| {}).await;
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    created.sort();
    assert_eq!(sorted_seen, created, "every agent exactly once, none of the other tenant's");

    // Pages follow one order: creation time, then id for agents created in the same millisecond.
    let all = page(&app, &a, "?limit=200").await;
    assert_eq!(ids(&all), seen);
    let keys: Vec<(String, String)> = all["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["created_at"].as_str().unwrap().to_owned(), x["id"].as_str().unwrap().to_owned()))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "not ordered by (created_at, id): {keys:?}");
    // The default page size holds them all.
    assert_eq!(ids(&page(&app, &a, "").await).len(), 23);
}

#[tokio::test]
async fn creates_and_deletes_between_pages_never_duplicate_or_skip_others() {
    let app = TestApp::spawn().await;
    let t = app.new_tenant("t").await;
    let mut original = Vec::new();
    for i in 0..12 {
        original.push(app.new_agent(&t, &format!("agent {i}")).await["id"].as_str().unwrap().to_owned());
    }
    let deleted = [original[1].clone(), original[9].clone()];
    let mut added = Vec::new();
    let seen = walk(&app, &t, 4, async |page_number| {
        if page_number == 1 {
            for id in &deleted {
                let res = app.request(Method::DELETE, &format!("/v1/agents/{id}"), Some(&t.key)).send().await.unwrap();
                assert_eq!(res.status(), 204);
            }
            for i in 0..3 {
                added.push(app.new_agent(&t, &format!("new {i}")).await["id"].as_str().unwrap().to_owned());
            }
        }
    })
    .await;
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no agent twice: {seen:?}");
    for id in original.iter().filter(|id| !deleted.contains(id)) {
        assert!(seen.contains(id), "{id} skipped");
    }
    assert!(!seen.contains(&original[9]), "deleted before its page was read");
    for id in &added {
        assert!(seen.contains(id), "agent created during the walk is on a later page");
    }
}

#[tokio::test]
async fn bad_page_parameters_are_named() {
    let app = TestApp::spawn().await;
    let t = app.new_tenant("t").await;
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=ten", "limit"),
        ("?cursor=garbage", "cursor"),
        ("?page=2", "query"),
    ] {
        let res = app.request(Method::GET, &format!("/v1/agents{query}"), Some(&t.key)).send().await.unwrap();
        let (status, _, fields, _) = error_of(res).await;
        assert_eq!((status, fields), (422, vec![field.to_owned()]), "{query}");
    }
}

/// A cursor is a position, `{ms}.{id}`, as the document's pattern says: any
/// well-formed one is accepted and pages from there, within the tenant's own agents.
#[tokio::test]
async fn any_well_formed_position_is_a_cursor() {
    let app = TestApp::spawn().await;
    let t = app.new_tenant("t").await;
    let other = app.new_tenant("other").await;
    let a = app.new_agent(&t, "A").await;
    app.new_agent(&other, "B").await;
    let from_the_start = page(&app, &t, "?cursor=0.aaaaaaaaaaaaaaaa").await;
    let ids: Vec<&str> =
        from_the_start["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![a["id"].as_str().unwrap()], "{from_the_start}");
    let past_the_end = page(&app, &t, "?cursor=999999999999999999.aaaaaaaaaaaaaaaa").await;
    assert_eq!(past_the_end["agents"], serde_json::json!([]));
    for bad in ["0.aaaaaaaaaaaaaaa1", "1234567890123456789.aaaaaaaaaaaaaaaa", "%200.aaaaaaaaaaaaaaaa"] {
        let res = app.request(Method::GET, &format!("/v1/agents?cursor={bad}"), Some(&t.key)).send().await.unwrap();
        assert_eq!(res.status(), 422, "{bad}");
    }
}
