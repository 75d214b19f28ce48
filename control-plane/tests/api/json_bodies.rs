//! The API's JSON extractors against any body: arbitrary bytes, arbitrary JSON, and
//! valid agents with values replaced, keys removed or unknown keys added anywhere.
//! Every answer is a success or a 4xx naming what was wrong; never a server error.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, agent_body};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        proptest::string::string_regex("[\\PC]{0,50}").unwrap().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One change to a JSON document at a path chosen by `picks`.
#[derive(Debug, Clone)]
enum Change {
    Replace(Value),
    Remove,
    Add(String, Value),
}

fn change(at: &mut Value, picks: &[prop::sample::Index], change: Change) {
    if let Some((pick, rest)) = picks.split_first() {
        match at {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(pick.index(map.len())).cloned().unwrap();
                return self::change(map.get_mut(&key).unwrap(), rest, change);
            }
            Value::Array(items) if !items.is_empty() => {
                let i = pick.index(items.len());
                return self::change(&mut items[i], rest, change);
            }
            _ => {}
        }
    }
    match (change, at) {
        (Change::Replace(v), at) => *at = v,
        (Change::Remove, Value::Object(map)) => {
            let key = map.keys().next().cloned();
            if let Some(k) = key {
                map.remove(&k);
            }
        }
        (Change::Add(k, v), Value::Object(map)) => {
            map.insert(k, v);
        }
        (_, at) => *at = Value::Null,
    }
}

fn any_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        any_json().prop_map(Change::Replace),
        Just(Change::Remove),
        ("[a-z_]{1,12}", any_json()).prop_map(|(k, v)| Change::Add(k, v)),
    ]
}

/// A request body: bytes, any JSON, or a valid agent with a few changes.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    let changed =
        proptest::collection::vec((proptest::collection::vec(any::<prop::sample::Index>(), 0..4), any_change()), 1..4)
            .prop_map(|changes| {
                let mut doc = agent_body("Front desk");
                for (picks, c) in changes {
                    change(&mut doc, &picks, c);
                }
                serde_json::to_vec(&doc).unwrap()
            });
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        changed,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_bodies_of_any_shape_are_answered_without_a_server_error() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let existing = app.new_agent(&tenant, "Existing").await;
    let put_path = format!("/v1/agents/{}", existing["id"].as_str().unwrap());
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    let result = tokio::task::block_in_place(|| {
        runner.run(&(any_body(), any::<bool>()), |(body, create)| {
            let (status, answer) = handle.block_on(async {
                let request = if create {
                    app.request(Method::POST, "/v1/agents", Some(&tenant.key))
                } else {
                    // The agent's current version, so the body itself is what is judged.
                    let current = app.request(Method::GET, &put_path, Some(&tenant.key)).send().await.unwrap();
                    let etag = current.headers()["etag"].clone();
                    app.request(Method::PUT, &put_path, Some(&tenant.key)).header("If-Match", etag)
                };
                let r = request.header("Content-Type", "application/json").body(body.clone()).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
            });
            prop_assert!(status < 500, "{status}: {answer}");
            match status {
                200..=202 => prop_assert!(answer["id"].is_string(), "{answer}"),
                422 => {
                    let fields = answer["error"]["fields"].as_array().cloned().unwrap_or_default();
                    prop_assert!(!fields.is_empty(), "a 422 names its fields: {answer}");
                    prop_assert!(fields.iter().all(|f| f["reason"].as_str().is_some_and(|r| !r.is_empty())));
                }
                413 => {}
                other => prop_assert!(false, "unexpected {other}: {answer}"),
            }
            Ok(())
        })
    });
    result.unwrap();
}

/// What the document calls valid is accepted, and what it calls invalid refused,
/// where serde alone would differ: `974.0` is an integer to JSON Schema, and an
/// array is not an object.
#[tokio::test]
async fn whole_floats_are_integers_and_arrays_are_not_objects() {
    use crate::helpers::error_of;
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let mut body = agent_body("Floats");
    body["idle_prompt_after_secs"] = serde_json::json!(12.0);
    body["sizing"]["min_tasks"] = serde_json::json!(0.0);
    let res = app.create_agent(&tenant, &body).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let session = app
        .request(Method::POST, "/v1/sessions", Some(&tenant.key))
        .json(&serde_json::json!({ "expires_in_secs": 974.0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 201);

    let mut body = agent_body("Fractions");
    body["idle_prompt_after_secs"] = serde_json::json!(12.5);
    let (status, _, named, _) = error_of(app.create_agent(&tenant, &body).await).await;
    assert_eq!((status, named), (422, vec!["idle_prompt_after_secs".to_owned()]));

    for (field, array) in [("integrations", "[null, null]"), ("knowledge_base", r#"[["title", "text"]]"#)] {
        let mut body = agent_body("Arrays");
        body[field] = serde_json::from_str(array).unwrap();
        let (status, _, named, error) = error_of(app.create_agent(&tenant, &body).await).await;
        assert_eq!(status, 422, "{field}: {error}");
        assert!(named[0].starts_with(field), "{field}: {error}");
    }
}
