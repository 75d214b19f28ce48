//! Callbacks that call back, end to end: a caller asks the agent to call them back;
//! the runtime reports it to the control plane (signed with the agent's auth
//! token); one of two control-plane replicas on the same database places the
//! callback once when it is due, through the simulated Twilio, carrying the
//! earlier call; the callee answers and the agent says it is calling back. A
//! callback can be listed and cancelled, and one whose placing replica died midway
//! is not placed twice.

use std::sync::Arc;
use std::time::Duration;

use agent_runtime::callbacks::{CallbackRequest, ControlPlane};
use agent_runtime::callsim::outbound::Answer;
use agent_runtime::callsim::{CallOptions, DEFAULT_CALLER_VOICE, Ending, Step, speech};
use base64::Engine;
use secrecy::SecretString;
use serde_json::Value;

use crate::common::{ACCOUNT_SID, AUTH_TOKEN, NUMBER, Platform, Runtime, agent_body};

const CALLER: &str = "+15550001234";

fn say(text: &str) -> Step {
    Step::Say(Arc::new(speech(text, DEFAULT_CALLER_VOICE).unwrap()))
}

async fn callbacks(platform: &Platform, key: &str, agent_id: &str) -> Vec<Value> {
    let (status, list) = platform.api_get(&format!("/v1/agents/{agent_id}/callbacks"), key).await;
    assert_eq!(status, 200, "{list}");
    list["callbacks"].as_array().unwrap().clone()
}

/// The runtime's client, reporting for a made-up call.
fn reporter(platform: &Platform, agent_id: &str, token: &str) -> ControlPlane {
    ControlPlane::new(reqwest::Client::new(), platform.public_url().unwrap(), agent_id, SecretString::from(token))
}

fn request(words: &str) -> CallbackRequest {
    CallbackRequest {
        call_sid: format!("CA{:032x}", rand::random::<u128>()),
        to: "+15550007777".into(),
        requested_time: words.into(),
        at: None,
        context: "Can you call me back about my order?".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_asked_for_on_a_call_is_placed_once_at_its_time_by_one_of_two_replicas() {
    let platform = Platform::start_reachable(&[("TEMPOVOICE_CALLBACK_ASAP_SECS", "4")]).await;
    let public = platform.public_url().unwrap().to_owned();
    let replica = platform.replica(&[("TEMPOVOICE_PUBLIC_URL", &public)]).await;
    let twilio = &platform.twilio;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let agent = platform.create_agent(&key, agent_body("Front desk", NUMBER)).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    let runtime = Runtime::start(&platform, &id).await;
    let local = format!("http://{}", runtime.addr);

    // A call: the caller asks to be called back as soon as possible, and hears when.
    let wait = Step::WaitForAgent { quiet: Duration::from_millis(900), timeout: Duration::from_secs(20) };
    let first = twilio
        .call(&CallOptions {
            voice_url: format!("{local}/agent/{id}/incoming-call"),
            public_host: "voice.example.com".into(),
            from: CALLER.into(),
            to: NUMBER.into(),
            script: vec![
                wait.clone(),
                say("Please call me back as soon as possible."),
                wait.clone(),
                say("Thank you, goodbye."),
                Step::Silence(Duration::from_secs(15)),
            ],
            realtime: true,
            max_duration: Duration::from_secs(60),
            bad_signature: false,
            keep_heard: false,
            repeat_for: None,
        })
        .await
        .expect("call");
    assert_eq!(first.ending, Some(Ending::HungUpByAgent));
    let listed = callbacks(&platform, &key, &id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["call_sid"], first.call_sid.as_str());
    assert_eq!(listed[0]["to"], CALLER);
    // The caller's words as the recognizer heard them ("… possible"): soon, then.
    assert!(listed[0]["requested_time"].as_str().unwrap().ends_with("possible"), "{listed:?}");
    assert!(matches!(listed[0]["status"].as_str(), Some("scheduled" | "placing" | "placed")), "{listed:?}");

    // At its time, Twilio is asked once, from the agent's number, for the caller.
    let call = twilio.next_outbound(Duration::from_secs(20)).await.expect("the callback was placed");
    assert_eq!((call.param("To"), call.param("From")), (Some(CALLER), Some(NUMBER)));
    let url = url::Url::parse(call.param("Url").unwrap()).unwrap();
    let metadata = url.query_pairs().find(|(k, _)| k == "metadata").map(|(_, v)| v.into_owned()).unwrap();
    let metadata: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(metadata).unwrap()).unwrap();
    assert_eq!(metadata["callback"]["call_sid"], first.call_sid.as_str());
    assert!(metadata["callback"]["context"].as_str().unwrap().contains("call me back"), "{metadata}");

    // The callee answers; the agent says why it calls.
    let person = Answer::Person(vec![
        say("Hello?"),
        Step::Amd("human"),
        wait.clone(),
        say("Thank you, goodbye."),
        Step::Silence(Duration::from_secs(15)),
    ]);
    let back = twilio.answer(call, person, &local).await.unwrap();
    let report = back.report.expect("answered");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    let path = format!("/v1/agents/{id}/calls/{}", report.call_sid);
    let mut transcript = Value::Null;
    for _ in 0..100 {
        let (status, t) = platform.api_get(&format!("{path}/transcript"), &key).await;
        if status == 200 {
            transcript = t;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_words = transcript["turns"][0]["text"].as_str().unwrap_or_default();
    assert!(first_words.contains("calling you back"), "{transcript}");

    // Both replicas kept looking: still one call, and the callback says which.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(twilio.outbound_calls().len(), 1);
    let listed = callbacks(&platform, &key, &id).await;
    assert_eq!((listed[0]["status"].as_str(), listed[0]["attempts"].as_i64()), (Some("placed"), Some(1)));
    assert_eq!(listed[0]["placed_call_sid"], report.call_sid.as_str());

    // A callback far ahead is listed first and can be cancelled, once.
    let cp = reporter(&platform, &id, AUTH_TOKEN);
    let later = cp.schedule(&request("tomorrow at three pm")).await.unwrap();
    let listed = callbacks(&platform, &key, &id).await;
    assert_eq!((listed.len(), listed[0]["id"].as_str()), (2, Some(later.id.as_str())));
    let cancel = |cb: String| {
        platform.http.delete(format!("{}/v1/agents/{id}/callbacks/{cb}", replica.url)).bearer_auth(&key).send()
    };
    let cancelled = cancel(later.id.clone()).await.unwrap();
    assert_eq!(cancelled.status(), 200);
    assert_eq!(cancelled.json::<Value>().await.unwrap()["status"], "cancelled");
    let again = cancel(later.id.clone()).await.unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(again.json::<Value>().await.unwrap()["error"]["code"], "callback_cancelled");
    assert_eq!(cancel("cb0000000000000000".into()).await.unwrap().status(), 404);

    // Reports the control plane refuses, with the reason the caller then hears.
    let refused = cp.schedule(&request("when the moon is blue")).await.unwrap_err();
    assert!(refused.to_string().contains("could not tell when"), "{refused}");
    let forged = reporter(&platform, &id, "ffffffffffffffffffffffffffffffff");
    assert!(forged.schedule(&request("tomorrow")).await.unwrap_err().to_string().contains("not signed"));

    runtime.stop().await;
    replica.stop().await;
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_whose_replica_died_while_placing_it_is_not_placed_twice() {
    // No public URL: this control plane places no callbacks; the replica started
    // later does.
    let platform = Platform::start(&[]).await;
    let (tenant, key) = platform.tenant("Rosa's Bakery").await;
    let agent = platform.create_agent(&key, agent_body("Front desk", NUMBER)).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    let (tenant, agent_id) = (agent_spec::TenantId::parse(&tenant).unwrap(), agent_spec::AgentId::parse(&id).unwrap());

    // A replica takes the due callback, asks Twilio for the call, and dies.
    let store = platform.store().await;
    let call_sid = agent_spec::CallSid::parse(&format!("CA{:032x}", rand::random::<u128>())).unwrap();
    let new = |to| control_plane::store::callbacks::NewCallback {
        call_sid: &call_sid,
        to,
        requested_time: "as soon as possible",
        context: "",
        due_at: control_plane::db::now_ms() - 1000,
    };
    let scheduled = store.schedule_callback(&tenant, &agent_id, new(CALLER)).await.unwrap();
    let lease_until = control_plane::db::now_ms() + 1500;
    let claimed = store.claim_callback("dead-replica", lease_until).await.unwrap().expect("due");
    assert_eq!(claimed.callback.id, scheduled.callback.id);
    assert!(store.claim_callback("another", lease_until).await.unwrap().is_none(), "held by its lease");
    let made: Value = platform
        .http
        .post(format!("{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json", platform.twilio.api_base()))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(&[("To", CALLER), ("From", NUMBER), ("Url", "https://voice.example.com/agent/x/incoming-call")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // A live replica takes it over when the lease runs out, finds that call, and
    // records it instead of placing another.
    let public = format!("http://{}", "127.0.0.1:9");
    let replica = platform.replica(&[("TEMPOVOICE_PUBLIC_URL", &public)]).await;
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = callbacks(&platform, &key, &id).await;
        if listed[0]["status"] == "placed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed[0]["status"], "placed", "{listed:?}");
    assert_eq!(listed[0]["placed_call_sid"], made["sid"]);
    assert_eq!(listed[0]["attempts"], 2);
    assert_eq!(platform.twilio.outbound_calls().len(), 1, "no second call");
    // The dead replica's late word changes nothing.
    let late = store
        .finish_callback_attempt(
            &claimed.callback.id,
            "dead-replica",
            control_plane::store::callbacks::CallbackOutcome::Failed("late"),
        )
        .await
        .unwrap();
    assert!(!late);

    replica.stop().await;
    platform.stop().await;
}
