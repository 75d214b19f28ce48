//! Twilio numbers pointed at their agents (`telephony.configure_number`), against
//! the call simulator's Twilio: an active deployment points the agent's number at
//! its voice URL; a move to another number and a delete give the old one its
//! previous routing back; every way Twilio or another agent can stand in the way is
//! a failed `twilio_number` step that says what to do.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{ACCOUNT_SID, AUTH_TOKEN, DEMO_VOICE_URL, NUMBER, Platform, agent_body};

const VOICE_HOST: &str = "https://voice.example.com";

/// The agent's latest deployment, with its events.
async fn latest_deployment(platform: &Platform, key: &str, agent_id: &str) -> Value {
    let (_, agent) = platform.api_get(&format!("/v1/agents/{agent_id}"), key).await;
    let id = agent["deployment"]["id"].as_str().expect("a deployment").to_owned();
    platform.api_get(&format!("/v1/agents/{agent_id}/deployments/{id}"), key).await.1
}

/// The messages of the deployment's events of step `twilio_number`.
fn number_events(deployment: &Value) -> Vec<String> {
    deployment["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["step"] == "twilio_number")
        .map(|e| format!("{}: {}", e["kind"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect()
}

/// Deletes the agent and waits for its teardown; returns the delete deployment.
async fn delete(platform: &Platform, key: &str, agent_id: &str) -> Value {
    let response =
        platform.http.delete(format!("{}/v1/agents/{agent_id}", platform.url)).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let deployment: Value = response.json().await.unwrap();
    let path = format!("/v1/agents/{agent_id}/deployments/{}", deployment["id"].as_str().unwrap());
    for _ in 0..300 {
        let (_, d) = platform.api_get(&path, key).await;
        if d["status"] == "deleted" || d["status"] == "failed" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the delete did not finish");
}

fn with_telephony(mut body: Value, telephony: Value) -> Value {
    for (k, v) in telephony.as_object().unwrap() {
        body["telephony"][k] = v.clone();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_follows_its_agent_from_deploy_to_delete() {
    let platform = Platform::start(&[]).await;
    let twilio = &platform.twilio;
    let (_, key) = platform.tenant("Rosa's Bakery").await;

    let agent = platform.create_agent(&key, agent_body("Front desk", NUMBER)).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    let voice_url = format!("{VOICE_HOST}/agent/{id}/incoming-call");
    let number = twilio.number(NUMBER).unwrap();
    assert_eq!(number.voice_url, voice_url);
    assert_eq!(number.voice_method, "POST");
    assert_eq!(number.status_callback, format!("{VOICE_HOST}/agent/{id}/call-status"));
    let events = number_events(&latest_deployment(&platform, &key, &id).await);
    assert_eq!(events, [format!("resource: {NUMBER} now routes to {voice_url} (was {DEMO_VOICE_URL})")]);
    assert!(twilio.number_requests().iter().all(|r| r.authorized && r.account_sid == ACCOUNT_SID));

    // A redeploy finds the number routed already and changes nothing.
    let updates = |twilio: &agent_runtime::callsim::TwilioSim| {
        twilio.number_requests().iter().filter(|r| r.method == "POST").count()
    };
    let before = updates(twilio);
    let redeploy = platform
        .http
        .post(format!("{}/v1/agents/{id}/deployments", platform.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(redeploy.status(), 202);
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    assert_eq!(updates(twilio), before, "no update of a number that already routes to the agent");
    assert_eq!(
        number_events(&latest_deployment(&platform, &key, &id).await),
        [format!("resource: {NUMBER} already routes to {voice_url}")]
    );

    // The agent moves to a number a TwiML app routed: the first number gets its
    // previous voice URL back, the second is taken from the app.
    let second = "+14155550111";
    twilio.add_number(ACCOUNT_SID, second, "");
    twilio.edit_number(second, |n| n.voice_application_sid = "AP0123456789abcdef0123456789abcdef".into());
    let moved = platform
        .http
        .put(format!("{}/v1/agents/{id}", platform.url))
        .bearer_auth(&key)
        .header("If-Match", "\"1\"")
        .json(&with_telephony(agent_body("Front desk", NUMBER), json!({"call_phone_number": second})))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 202, "{}", moved.text().await.unwrap());
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    assert_eq!(twilio.number(NUMBER).unwrap().voice_url, DEMO_VOICE_URL, "the first number is given back");
    let now = twilio.number(second).unwrap();
    assert_eq!((now.voice_url.as_str(), now.voice_application_sid.as_str()), (voice_url.as_str(), ""));
    assert_eq!(
        number_events(&latest_deployment(&platform, &key, &id).await),
        [
            format!("resource: {NUMBER} given back its previous routing: {DEMO_VOICE_URL}"),
            format!("resource: {second} now routes to {voice_url} (was TwiML app AP0123456789abcdef0123456789abcdef)"),
        ]
    );

    // Deleting the agent gives the second number its app back, before the teardown.
    let deleted = delete(&platform, &key, &id).await;
    assert_eq!(deleted["status"], "deleted");
    let back = twilio.number(second).unwrap();
    assert_eq!(
        (back.voice_url.as_str(), back.voice_application_sid.as_str()),
        ("", "AP0123456789abcdef0123456789abcdef")
    );
    assert_eq!(
        number_events(&deleted),
        [format!("resource: {second} given back its previous routing: TwiML app AP0123456789abcdef0123456789abcdef")]
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_re_pointed_by_hand_is_left_alone_and_configure_number_off_touches_nothing() {
    let platform = Platform::start(&[]).await;
    let twilio = &platform.twilio;
    let (_, key) = platform.tenant("Rosa's Bakery").await;

    let agent = platform.create_agent(&key, agent_body("Front desk", NUMBER)).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    // Someone points the number elsewhere in the Twilio console; the delete leaves it.
    twilio.edit_number(NUMBER, |n| n.voice_url = "https://ivr.example.com/answer".into());
    let deleted = delete(&platform, &key, &id).await;
    assert_eq!(deleted["status"], "deleted");
    assert_eq!(twilio.number(NUMBER).unwrap().voice_url, "https://ivr.example.com/answer");
    assert_eq!(
        number_events(&deleted),
        [format!("resource: {NUMBER} was re-pointed to https://ivr.example.com/answer since: left as it is")]
    );

    let requests = twilio.number_requests().len();
    let body = with_telephony(agent_body("By hand", NUMBER), json!({"configure_number": false}));
    let agent = platform.create_agent(&key, body).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    assert_eq!(twilio.number_requests().len(), requests, "Twilio is not asked anything");
    assert_eq!(
        number_events(&latest_deployment(&platform, &key, &id).await),
        [format!(
            "resource: {NUMBER} left as it is (telephony.configure_number is off): point its voice URL at \
             {VOICE_HOST}/agent/{id}/incoming-call in Twilio"
        )]
    );
    platform.stop().await;
}

/// The failed deployment's error code and the message its tenant reads.
async fn failure(platform: &Platform, key: &str, agent_id: &str) -> (String, String) {
    assert_eq!(platform.wait_deployed(key, agent_id).await, "failed");
    let deployment = latest_deployment(platform, key, agent_id).await;
    assert_eq!(deployment["error"]["step"], "twilio_number", "{deployment}");
    let failed = deployment["events"].as_array().unwrap().iter().rev().find(|e| e["kind"] == "failed").unwrap();
    (deployment["error"]["code"].as_str().unwrap().to_owned(), failed["message"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_twilio_or_another_agent_refuses_fails_the_deployment_with_a_clear_step() {
    let platform = Platform::start(&[("TEMPOVOICE_DEPLOY_MAX_ATTEMPTS", "3")]).await;
    let twilio = &platform.twilio;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let (_, other_key) = platform.tenant("Harbor Dental").await;
    let create = |key: String, body: Value| {
        let platform = &platform;
        async move { platform.create_agent(&key, body).await["id"].as_str().unwrap().to_owned() }
    };

    // A number the account does not have.
    let id = create(key.clone(), agent_body("Not ours", "+14155550122")).await;
    let (code, message) = failure(&platform, &key, &id).await;
    assert_eq!(code, "number_not_in_account");
    assert!(message.contains(&format!("+14155550122 is not a number of Twilio account {ACCOUNT_SID}")), "{message}");

    // Credentials Twilio refuses.
    let mut body = agent_body("Wrong token", NUMBER);
    body["secrets"]["twilio_auth_token"] = json!("f".repeat(32));
    let id = create(key.clone(), body).await;
    let (code, message) = failure(&platform, &key, &id).await;
    assert_eq!(code, "twilio_credentials");
    assert!(message.contains("Twilio refused the credentials") && message.contains("secrets.twilio_auth_token"));
    assert_eq!(twilio.number(NUMBER).unwrap().voice_url, DEMO_VOICE_URL, "nothing changed");
    assert!(!AUTH_TOKEN.starts_with('f'));

    // A number another agent holds: the tenant's own is named, another tenant's is not.
    let first = create(key.clone(), agent_body("Front desk", NUMBER)).await;
    assert_eq!(platform.wait_deployed(&key, &first).await, "active");
    let id = create(key.clone(), agent_body("Second desk", NUMBER)).await;
    let (code, message) = failure(&platform, &key, &id).await;
    assert_eq!(code, "number_in_use");
    assert!(message.contains(&format!("{NUMBER} is already pointed at your agent {first}")), "{message}");
    let id = create(other_key.clone(), agent_body("Someone else", NUMBER)).await;
    let (code, message) = failure(&platform, &other_key, &id).await;
    assert_eq!(code, "number_in_use");
    assert!(message.contains("another TempoVoice agent") && !message.contains(&first), "{message}");
    assert_eq!(twilio.number(NUMBER).unwrap().voice_url, format!("{VOICE_HOST}/agent/{first}/incoming-call"));

    // A number routed by hand to a live agent (no binding on record) is in use too.
    let manual = "+14155550133";
    twilio.add_number(ACCOUNT_SID, manual, "");
    let by_hand =
        create(key.clone(), with_telephony(agent_body("By hand", manual), json!({"configure_number": false}))).await;
    assert_eq!(platform.wait_deployed(&key, &by_hand).await, "active");
    twilio.edit_number(manual, |n| n.voice_url = format!("{VOICE_HOST}/agent/{by_hand}/incoming-call"));
    let id = create(key.clone(), agent_body("Taker", manual)).await;
    let (code, message) = failure(&platform, &key, &id).await;
    assert_eq!(code, "number_in_use");
    assert!(message.contains(&format!("your agent {by_hand}")), "{message}");

    // A number on an Elastic SIP trunk.
    let trunked = "+14155550144";
    twilio.add_number(ACCOUNT_SID, trunked, "");
    twilio.edit_number(trunked, |n| n.trunk_sid = "TK0123456789abcdef0123456789abcdef".into());
    let id = create(key.clone(), agent_body("Trunked", trunked)).await;
    let (code, message) = failure(&platform, &key, &id).await;
    assert_eq!(code, "number_on_sip_trunk");
    assert!(message.contains("Elastic SIP trunk TK0123456789abcdef0123456789abcdef"), "{message}");

    // Twilio failing for a moment is retried, and the deployment goes on.
    let flaky = "+14155550155";
    twilio.add_number(ACCOUNT_SID, flaky, DEMO_VOICE_URL);
    twilio.fail_number_requests(&[503]);
    let id = create(key.clone(), agent_body("Flaky", flaky)).await;
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    let events = number_events(&latest_deployment(&platform, &key, &id).await);
    assert!(events.iter().any(|e| e.starts_with("retry: ") && e.contains("HTTP 503")), "{events:?}");
    assert_eq!(twilio.number(flaky).unwrap().voice_url, format!("{VOICE_HOST}/agent/{id}/incoming-call"));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_numbers_list_shows_where_each_number_routes_and_a_re_point_fixes_a_drift() {
    let platform = Platform::start(&[]).await;
    let twilio = &platform.twilio;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let post = |path: String| platform.http.post(format!("{}{path}", platform.url)).bearer_auth(&key).send();
    let list = || async { platform.api_get("/v1/numbers", &key).await.1["numbers"].as_array().unwrap().clone() };

    let agent = platform.create_agent(&key, agent_body("Front desk", NUMBER)).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    let voice_url = format!("{VOICE_HOST}/agent/{id}/incoming-call");
    let numbers = list().await;
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[0]["phone_number"], NUMBER);
    assert_eq!(numbers[0]["agent_name"], "Front desk");
    assert_eq!(numbers[0]["voice_url"], voice_url.as_str());
    assert_eq!(numbers[0]["previous_voice_url"], DEMO_VOICE_URL);
    assert_eq!(numbers[0]["routing"]["state"], "matches", "{numbers:?}");
    assert_eq!(numbers[0]["routing"]["routes_to_agent"], id.as_str());

    // Re-pointed by hand: drifted, and where it routes instead.
    twilio.edit_number(NUMBER, |n| n.voice_url = "https://ivr.example.com/answer".into());
    let numbers = list().await;
    assert_eq!(numbers[0]["routing"]["state"], "drifted");
    assert_eq!(numbers[0]["routing"]["voice_url"], "https://ivr.example.com/answer");
    assert_eq!(numbers[0]["routing"]["routes_to_agent"], Value::Null);
    // Re-point: back to the agent; what it routed to before the agent stays on record.
    let repointed = post(format!("/v1/agents/{id}/number")).await.unwrap();
    assert_eq!(repointed.status(), 200);
    let repointed: Value = repointed.json().await.unwrap();
    assert_eq!(repointed["number"]["routing"]["state"], "matches");
    assert_eq!(
        repointed["events"],
        json!([format!("{NUMBER} now routes to {voice_url} (was https://ivr.example.com/answer)")])
    );
    assert_eq!(twilio.number(NUMBER).unwrap().voice_url, voice_url);
    assert_eq!(list().await[0]["previous_voice_url"], DEMO_VOICE_URL);

    // Every other state a number can be in.
    let spare = "+14155550166";
    twilio.add_number(ACCOUNT_SID, spare, "");
    let created = platform
        .http
        .post(format!("{}/v1/agents?deploy=false", platform.url))
        .bearer_auth(&key)
        .json(&agent_body("Not yet", spare))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let undeployed = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let mut body = with_telephony(agent_body("Elsewhere", "+14155550177"), json!({"configure_number": false}));
    body["name"] = json!("Elsewhere");
    let elsewhere = platform.create_agent(&key, body).await["id"].as_str().unwrap().to_owned();
    let mut body = agent_body("Wrong token", "+14155550188");
    body["secrets"]["twilio_auth_token"] = json!("f".repeat(32));
    platform.create_agent(&key, body).await;
    let states: Vec<(String, String)> = list()
        .await
        .iter()
        .map(|n| (n["agent_name"].as_str().unwrap().to_owned(), n["routing"]["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        states,
        [
            ("Front desk".to_owned(), "matches".to_owned()),
            ("Not yet".to_owned(), "not_deployed".to_owned()),
            ("Elsewhere".to_owned(), "not_in_account".to_owned()),
            ("Wrong token".to_owned(), "credentials_refused".to_owned()),
        ]
    );
    let refused = |id: String| async move {
        let response = post(format!("/v1/agents/{id}/number")).await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["error"]["code"].as_str().unwrap().to_owned())
    };
    assert_eq!(refused(undeployed).await, (409, "not_deployed".to_owned()));
    assert_eq!(refused(elsewhere).await, (409, "number_not_managed".to_owned()));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_without_twilio_says_so_instead_of_pointing_numbers() {
    let platform = Platform::start(&[("TEMPOVOICE_TWILIO_API_BASE", "off")]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let agent = platform.create_agent(&key, agent_body("Front desk", NUMBER)).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    assert_eq!(platform.twilio.number_requests().len(), 0);
    assert_eq!(
        number_events(&latest_deployment(&platform, &key, &id).await),
        [format!(
            "resource: {NUMBER} not pointed at the agent: this control plane does not point numbers \
             (TEMPOVOICE_TWILIO_API_BASE=off); point its voice URL at {VOICE_HOST}/agent/{id}/incoming-call in Twilio"
        )]
    );
    let (_, numbers) = platform.api_get("/v1/numbers", &key).await;
    assert_eq!(numbers["numbers"][0]["routing"]["state"], "not_checked");
    let response =
        platform.http.post(format!("{}/v1/agents/{id}/number", platform.url)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 503);
    platform.stop().await;
}
