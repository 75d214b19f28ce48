//! Outbound calls, end to end: the API has the simulated Twilio call a number from
//! the agent's with answering machine detection; the simulator answers as an
//! answering machine (greeting, beep) or as a person, and plays Twilio's AMD and
//! status callbacks; the agent's runtime leaves the voicemail message and hangs up,
//! or holds the conversation; the call's metadata and transcript read back through
//! the API. The per-agent limit of live calls answers 429 until a call ends.

use std::sync::Arc;
use std::time::Duration;

use agent_runtime::callsim::outbound::Answer;
use agent_runtime::callsim::{DEFAULT_CALLER_VOICE, Ending, Step, speech};
use serde_json::{Value, json};

use crate::common::{NUMBER, Platform, Runtime, agent_body};

const VOICEMAIL: &str = "Hello, this is Rosa's Bakery calling about your order. Please call us back. Goodbye.";

fn say(text: &str) -> Step {
    Step::Say(Arc::new(speech(text, DEFAULT_CALLER_VOICE).unwrap()))
}

/// Reads a finished call's metadata and the agent's words, once the runtime stored them.
async fn call_record(platform: &Platform, key: &str, agent_id: &str, call_sid: &str) -> (Value, Vec<String>) {
    let path = format!("/v1/agents/{agent_id}/calls/{call_sid}");
    for _ in 0..100 {
        let (status, metadata) = platform.api_get(&format!("{path}/metadata"), key).await;
        if status == 200 {
            let (_, transcript) = platform.api_get(&format!("{path}/transcript"), key).await;
            let said = transcript["turns"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["role"] == "agent")
                .map(|t| t["text"].as_str().unwrap().to_owned())
                .collect();
            return (metadata, said);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the call's metadata never appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_call_leaves_a_machine_the_voicemail_and_talks_with_a_person() {
    let platform = Platform::start_reachable(&[("TEMPOVOICE_MAX_CONCURRENT_CALLS_PER_AGENT", "1")]).await;
    let twilio = &platform.twilio;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let mut body = agent_body("Front desk", NUMBER);
    body["voicemail_message"] = json!(VOICEMAIL);
    let agent = platform.create_agent(&key, body).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "active");
    let runtime = Runtime::start(&platform, &id).await;
    let local = format!("http://{}", runtime.addr);
    let place = |body: Value| {
        platform.http.post(format!("{}/v1/agents/{id}/calls", platform.url)).bearer_auth(&key).json(&body).send()
    };
    let error = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["error"]["code"].as_str().unwrap().to_owned(), body["error"]["fields"].clone())
    };

    // Refused before Twilio hears of it.
    let (status, code, fields) = error(place(json!({"to": "555-0100"})).await.unwrap()).await;
    assert_eq!((status, code.as_str(), fields[0]["field"].as_str()), (422, "invalid_request", Some("to")));
    let (status, _, fields) = error(place(json!({"to": "+15550002222", "from": "+15550009999"})).await.unwrap()).await;
    assert_eq!((status, fields[0]["field"].as_str()), (422, Some("from")));
    assert!(fields[0]["reason"].as_str().unwrap().contains(NUMBER), "{fields}");
    let big = json!({"to": "+15550002222", "metadata": {"notes": "x".repeat(1100)}});
    let (status, _, fields) = error(place(big).await.unwrap()).await;
    assert_eq!((status, fields[0]["field"].as_str()), (422, Some("metadata")));
    assert!(twilio.outbound_calls().is_empty());

    // A machine: the greeting and the beep, then the voicemail message, then a hang-up.
    let placed = place(json!({"to": "+15550002222", "metadata": {"campaign": "spring", "attempt": 1}})).await.unwrap();
    assert_eq!(placed.status(), 201);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!((placed["from"].as_str(), placed["status"].as_str()), (Some(NUMBER), Some("queued")));
    // The agent's one slot is taken while the call lives.
    let (status, code, _) = error(place(json!({"to": "+15550003333"})).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (429, "too_many_calls"));
    let call = twilio.next_outbound(Duration::from_secs(5)).await.expect("Twilio was asked to call");
    assert_eq!(call.sid, placed["call_sid"].as_str().unwrap());
    assert_eq!(call.param("MachineDetection"), Some("DetectMessageEnd"));
    assert_eq!(call.param("AsyncAmd"), Some("true"));
    assert_eq!(
        call.param("AsyncAmdStatusCallback"),
        Some(format!("https://voice.example.com/agent/{id}/amd-status").as_str())
    );
    assert!(
        call.param("Url")
            .unwrap()
            .starts_with(&format!("https://voice.example.com/agent/{id}/incoming-call?amd=async&metadata="))
    );
    let greeting =
        Arc::new(speech("Hi, you have reached Sam. Please leave a message after the tone.", "en-us+f3").unwrap());
    let machine =
        twilio.answer(call, Answer::Machine { greeting, listen: Duration::from_secs(40) }, &local).await.unwrap();
    let report = machine.report.expect("answered");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    assert!(machine.status_callbacks.iter().all(|(_, http)| *http == 204), "{:?}", machine.status_callbacks);
    assert_eq!(machine.status_callbacks.last().unwrap().0, "completed");
    let (metadata, said) = call_record(&platform, &key, &id, &report.call_sid).await;
    assert_eq!(metadata["direction"], "outbound-api");
    assert_eq!(metadata["answered_by"], "machine_end_beep");
    assert_eq!(metadata["end_reason"], "answering_machine");
    assert_eq!(metadata["metadata"], json!({"campaign": "spring", "attempt": 1}));
    assert_eq!(said.join(" "), VOICEMAIL, "exactly the voicemail message, and nothing before it");

    // The slot is free again. A person: the greeting once they are known to be one,
    // then the conversation. The AMD callback goes astray (another task of the agent
    // takes it): the call learns who answered by asking Twilio itself.
    twilio.post_amd_callbacks(false);
    let placed = place(json!({"to": "+15550003333"})).await.unwrap();
    assert_eq!(placed.status(), 201);
    let call = twilio.next_outbound(Duration::from_secs(5)).await.unwrap();
    let wait = Step::WaitForAgent { quiet: Duration::from_millis(900), timeout: Duration::from_secs(20) };
    let person = Answer::Person(vec![
        say("Hello?"),
        Step::Amd("human"),
        wait.clone(),
        say("What are your opening hours?"),
        wait,
        say("Thank you, goodbye."),
        Step::Silence(Duration::from_secs(20)),
    ]);
    let human = twilio.answer(call, person, &local).await.unwrap();
    let report = human.report.expect("answered");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    let (metadata, said) = call_record(&platform, &key, &id, &report.call_sid).await;
    assert_eq!((metadata["answered_by"].as_str(), metadata["end_reason"].as_str()), (Some("human"), Some("end_call")));
    assert!(metadata.get("metadata").is_none());
    assert!(said[0].contains("Rosa's Bakery"), "the greeting first: {said:?}");
    assert!(said.iter().any(|t| t.contains("Tuesday to Sunday")), "{said:?}");

    // Busy: Twilio's final status frees the slot without a call.
    let placed = place(json!({"to": "+15550004444"})).await.unwrap();
    assert_eq!(placed.status(), 201);
    let call = twilio.next_outbound(Duration::from_secs(5)).await.unwrap();
    let busy = twilio.answer(call, Answer::Busy, &local).await.unwrap();
    assert_eq!(busy.status_callbacks.last().unwrap(), &("busy".to_owned(), 204));
    assert_eq!(place(json!({"to": "+15550005555"})).await.unwrap().status(), 201);

    runtime.stop().await;
    platform.stop().await;
}
