//! Conversation behaviour end to end through the call simulator: barge-in, idle
//! prompts, limits, guardrails, transfer and voicemail.

use crate::common;

use std::time::Duration;

use agent_runtime::callsim::{Ending, Step};
use common::*;

fn turns(transcript: &serde_json::Value) -> Vec<serde_json::Value> {
    transcript["turns"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_clears_playback_and_cuts_the_turn_where_the_caller_stopped_hearing_it() {
    let mut d = draft();
    d.knowledge_base.push(cakes());
    let rt = spawn(d).await;
    let script = vec![
        wait_for_agent(),
        say("Tell me about your cakes"),
        Step::WaitForAgentSpeaking { after: Duration::from_millis(1500), timeout: Duration::from_secs(20) },
        say("Where are you located?"),
        wait_for_agent(),
        Step::HangUp,
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.clears.len(), 1, "one clear: {:?}", report.clears);
    let (_, played_at_clear) = report.clears[0];

    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let turns = turns(&transcript);
    let cut: Vec<&serde_json::Value> = turns.iter().filter(|t| t["interrupted"] == true).collect();
    assert_eq!(cut.len(), 1, "{transcript:#}");
    let cut = cut[0];
    let text = cut["text"].as_str().unwrap();
    assert!(text.starts_with("We bake"), "{text}");
    assert!(!text.contains("Birthday"), "the turn holds only what was played: {text}");
    // The turn lasted as long as the audio the caller heard of it: the simulator's
    // played position at the clear, minus what was played before the turn began.
    let before: u64 = turns
        .iter()
        .filter(|t| t["role"] == "agent" && t["start_ms"].as_u64() < cut["start_ms"].as_u64())
        .map(|t| t["end_ms"].as_u64().unwrap() - t["start_ms"].as_u64().unwrap())
        .sum();
    let heard = played_at_clear - before;
    let kept = cut["end_ms"].as_u64().unwrap() - cut["start_ms"].as_u64().unwrap();
    // Marks every 200 ms bound the error, plus the time the VAD needs to notice speech.
    assert!(kept <= heard + 50 && heard <= kept + 400, "kept {kept} ms, caller heard {heard} ms");
    assert!(heard >= 1500, "the caller heard {heard} ms before speaking");
    // The conversation went on: the next question was answered.
    assert!(agent_lines(&transcript).iter().any(|l| l.contains("Harbour Street")), "{transcript:#}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["interruptions"], 1);
    assert_eq!(metadata["end_reason"], "caller_hung_up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_gets_an_idle_prompt_then_a_goodbye_and_a_hang_up() {
    let mut d = draft();
    d.idle_prompt_after_secs = 3;
    let rt = spawn(d).await;
    let script = vec![Step::Silence(Duration::from_secs(40))];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].contains("still there"), "{lines:?}");
    assert!(lines[2].contains("Goodbye"), "{lines:?}");
    let t = turns(&transcript);
    let gap = t[1]["start_ms"].as_u64().unwrap() - t[0]["end_ms"].as_u64().unwrap();
    // Never before the configured silence; how late a busy machine fires it is not asserted.
    assert!(gap >= 2500, "idle prompt {gap} ms after the greeting ended");
    assert_eq!(rt.json(&report.call_sid, "metadata.json").await["end_reason"], "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_ends_politely_at_the_maximum_duration() {
    let mut d = draft();
    d.guardrails.max_session_duration_secs = 30;
    d.idle_prompt_after_secs = 25;
    let rt = spawn(d).await;
    let script = vec![
        wait_for_agent(),
        Step::Silence(Duration::from_secs(20)),
        say("Where are you located?"),
        Step::Silence(Duration::from_secs(40)),
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "max_duration");
    let secs = metadata["duration_secs"].as_f64().unwrap();
    assert!(secs >= 30.0, "ended after {secs} s, before the maximum");
    let lines = agent_lines(&rt.json(&report.call_sid, "transcript.json").await);
    assert!(lines.last().unwrap().contains("time limit"), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_past_the_limit_ends_the_call() {
    let mut d = draft();
    d.guardrails.max_inappropriate_attempts = 1;
    let rt = spawn(d).await;
    let script = vec![
        wait_for_agent(),
        say("You are stupid."),
        wait_for_agent(),
        say("Shut up you idiot."),
        Step::Silence(Duration::from_secs(20)),
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    let lines = agent_lines(&rt.json(&report.call_sid, "transcript.json").await);
    assert!(lines.iter().any(|l| l.contains("respectful")), "a warning first: {lines:?}");
    assert!(lines.last().unwrap().contains("end our call"), "{lines:?}");
    assert_eq!(rt.json(&report.call_sid, "metadata.json").await["end_reason"], "guardrail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_person_transfers_the_call_with_dial() {
    let rt = spawn(draft()).await;
    let script = vec![wait_for_agent(), say("I want to talk to a person."), Step::Silence(Duration::from_secs(20))];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    let expected = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+14155550199</Dial></Response>"#;
    assert_eq!(report.ending, Some(Ending::Redirected(expected.into())));
    let requests = rt.sim.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].authorized);
    assert_eq!(requests[0].form, vec![("Twiml".to_owned(), expected.to_owned())]);
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "transferred");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_records_the_callers_message_as_its_own_artifact() {
    let rt = spawn(draft()).await;
    let script = vec![
        wait_for_agent(),
        say("I want to leave a message."),
        wait_for_agent(),
        say("Hi, this is Sam. Please call me about my cake order."),
        Step::Silence(Duration::from_millis(500)),
        Step::HangUp,
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::CallerHungUp));
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "voicemail");
    assert_eq!(metadata["voicemail"], true);
    let wav = rt.object(&report.call_sid, "voicemail.wav", Duration::from_secs(5)).await.expect("voicemail.wav");
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(reader.spec().channels, 1);
    let secs = reader.duration() as f64 / 8000.0;
    assert!((2.5..8.0).contains(&secs), "voicemail of {secs} s");
    let samples: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    let loud = samples.iter().filter(|s| s.unsigned_abs() > 1000).count();
    assert!(loud > 4000, "the message is in the voicemail ({loud} loud samples)");
    let lines = agent_lines(&rt.json(&report.call_sid, "transcript.json").await);
    assert!(lines.last().unwrap().contains("leave your message"), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_ends_politely_after_the_maximum_number_of_turns() {
    let mut d = draft();
    d.guardrails.max_conversation_turns = 2;
    let rt = spawn(d).await;
    let script = vec![
        wait_for_agent(),
        say("What are your opening hours?"),
        wait_for_agent(),
        say("Where are you located?"),
        Step::Silence(Duration::from_secs(20)),
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert!(lines[1].contains("Monday to Friday"), "the first turn is answered: {lines:?}");
    assert!(lines.last().unwrap().contains("reached the limit"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("Harbour Street")), "the last turn gets the goodbye: {lines:?}");
    assert_eq!(rt.json(&report.call_sid, "metadata.json").await["end_reason"], "max_turns");
}
