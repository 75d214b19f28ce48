//! The call loop's rules against a [`ScriptedSession`], with Twilio's side played
//! over channels: fast, and without speech engines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::artifacts::{ObjectStore, UploadError};
use crate::speech::scripted::{Script, ScriptLog, ScriptedSession};
use crate::telephony::TelephonyError;

const STREAM: &str = "MZ00000000000000000000000000000001";
const CALL: &str = "CA00000000000000000000000000000001";

/// Twilio's REST API as the loop sees it: each request recorded.
#[derive(Default)]
struct Telephony {
    requests: Mutex<Vec<String>>,
}

impl TelephonyControl for Telephony {
    fn hang_up<'a>(&'a self, call_sid: &'a str) -> futures::future::BoxFuture<'a, Result<(), TelephonyError>> {
        self.requests.lock().unwrap().push(format!("hang_up {call_sid}"));
        Box::pin(async { Ok(()) })
    }

    fn redirect<'a>(
        &'a self,
        call_sid: &'a str,
        twiml: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), TelephonyError>> {
        self.requests.lock().unwrap().push(format!("redirect {call_sid} {twiml}"));
        Box::pin(async { Ok(()) })
    }

    fn answered_by<'a>(
        &'a self,
        call_sid: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, TelephonyError>> {
        self.requests.lock().unwrap().push(format!("answered_by {call_sid}"));
        Box::pin(async { Ok(None) })
    }
}

/// Artifacts are returned by `run_call`; nothing is uploaded in these tests. Stream
/// claims are kept, so a second claim of a call is refused as S3 refuses it.
#[derive(Default)]
struct NoUploads {
    claimed: Mutex<std::collections::HashSet<String>>,
}

impl ObjectStore for NoUploads {
    fn put<'a>(
        &'a self,
        _: &'a str,
        _: Vec<u8>,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), UploadError>> {
        Box::pin(async { Ok(()) })
    }

    fn put_file<'a>(
        &'a self,
        key: &'a str,
        _: &'a std::path::Path,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), UploadError>> {
        Box::pin(async move { Err(UploadError::Put { key: key.to_owned(), reason: "not in this test".into() }) })
    }

    fn create_new<'a>(
        &'a self,
        key: &'a str,
        _: Vec<u8>,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<bool, UploadError>> {
        let created = self.claimed.lock().unwrap().insert(key.to_owned());
        Box::pin(async move { Ok(created) })
    }
}

const AGENT: &str = "k3v7q2mxa9bd4fhe";
const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn env(
    spool: &std::path::Path,
    telephony: Arc<Telephony>,
    edit: impl FnOnce(&mut agent_spec::draft::AgentDraft),
) -> CallEnv {
    let mut draft = agent_spec::draft::AgentDraft {
        name: "Test".into(),
        system_prompt: "Be brief.".into(),
        greeting: "Hello.".into(),
        voice: agent_spec::draft::VoiceDraft { provider: agent_spec::SpeechProvider::Local, ..Default::default() },
        idle_prompt_after_secs: 3,
        telephony: agent_spec::draft::TelephonyDraft {
            call_phone_number: "+14155550100".into(),
            twilio_account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            ..Default::default()
        },
        secrets: agent_spec::draft::SecretsDraft {
            twilio_auth_token: agent_spec::SecretPatch::set(AUTH_TOKEN),
            ..Default::default()
        },
        ..Default::default()
    };
    edit(&mut draft);
    let (config, _) = draft.validate(None).expect("valid test agent");
    let phrases = Phrases::for_agent(&config);
    let voice = Arc::new(Synthesizer::new("espeak-ng".into(), "en-us".into()));
    // The runtime's own lines, as audio, so no synthesizer runs.
    for line in phrases.all() {
        for sentence in sentences(line) {
            voice.preload(&sentence, Bytes::from(vec![0x55u8; 800]));
        }
    }
    CallEnv {
        control_plane: None,
        agent_id: AGENT.into(),
        tenant_id: "t5fz2qhw7nca3mde".into(),
        guardrails: Guardrails::new(&config.guardrails),
        phrases,
        voice,
        telephony,
        // The tests' receivers listen on 127.0.0.1.
        webhooks: WebhookSender::new(reqwest::Client::new(), None).allowing_private_addresses(true),
        artifacts: Arc::new(ArtifactStore::new(
            Arc::new(NoUploads::default()),
            spool.to_owned(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )),
        metrics: Arc::new(Metrics::default()),
        tasks: TaskTracker::new(),
        answered: AnsweredCalls::default(),
        stream_tokens: StreamTokens::new(AUTH_TOKEN, AGENT),
        amd: Arc::default(),
        max_calls: 4,
        timings: CallTimings { playback_slack: Duration::from_millis(500), ..CallTimings::default() },
        config,
    }
}

/// What Twilio received, as it came.
#[derive(Default, Debug)]
struct Wire {
    frames: Vec<[u8; FRAME_SAMPLES]>,
    clears: usize,
}

/// Plays Twilio: sends `connected` and `start`, echoes each mark unless `hold` says
/// to keep it (the audio before it "still playing"), records what arrives, and sends
/// `stop` once the loop asked the REST API to hang up.
struct Twilio {
    inbound: mpsc::UnboundedSender<WsFrame>,
    wire: Arc<Mutex<Wire>>,
}

fn twilio(
    hold_marks_after: Arc<Mutex<Option<u64>>>,
) -> (Twilio, mpsc::UnboundedReceiver<WsFrame>, mpsc::UnboundedSender<String>) {
    let (in_tx, in_rx) = mpsc::unbounded_channel::<WsFrame>();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let wire = Arc::new(Mutex::new(Wire::default()));
    let (w, echo) = (Arc::clone(&wire), in_tx.clone());
    tokio::spawn(async move {
        let mut marks = 0u64;
        while let Some(text) = out_rx.recv().await {
            let Ok(message) = serde_json::from_str::<crate::media::Outbound>(&text) else { continue };
            match message {
                crate::media::Outbound::Media { media, .. } => {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(media.payload).unwrap();
                    w.lock().unwrap().frames.push(bytes.try_into().expect("whole 20 ms frames"));
                }
                crate::media::Outbound::Clear { .. } => w.lock().unwrap().clears += 1,
                crate::media::Outbound::Mark { mark, .. } => {
                    marks += 1;
                    let held = hold_marks_after.lock().unwrap().is_some_and(|n| marks > n);
                    if !held {
                        let echo_json = format!(
                            r#"{{"event":"mark","sequenceNumber":"{marks}","streamSid":"{STREAM}","mark":{{"name":"{}"}}}}"#,
                            mark.name
                        );
                        let _ = echo.send(WsFrame::Text(echo_json));
                    }
                }
            }
        }
    });
    let _ = in_tx.send(WsFrame::Text(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.into()));
    let token = StreamTokens::new(AUTH_TOKEN, AGENT).issue(CALL);
    let _ = in_tx.send(WsFrame::Text(start_message("AC0123456789abcdef0123456789abcdef", &token)));
    (Twilio { inbound: in_tx, wire }, in_rx, out_tx)
}

/// The stream's `start` for the test call, from `account_sid`, presenting `token`.
fn start_message(account_sid: &str, token: &str) -> String {
    format!(
        r#"{{"event":"start","sequenceNumber":"1","streamSid":"{STREAM}","start":{{"accountSid":"{account_sid}","streamSid":"{STREAM}","callSid":"{CALL}","tracks":["inbound"],"mediaFormat":{{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"customParameters":{{"streamToken":"{token}"}}}}}}"#
    )
}

impl Twilio {
    fn stop(&self) {
        let stop = format!(
            r#"{{"event":"stop","sequenceNumber":"99","streamSid":"{STREAM}","stop":{{"accountSid":"AC0123456789abcdef0123456789abcdef","callSid":"{CALL}"}}}}"#
        );
        let _ = self.inbound.send(WsFrame::Text(stop));
    }

    /// Caller silence, 20 ms frames for `ms`.
    fn silence(&self, ms: u64) {
        let payload = base64::engine::general_purpose::STANDARD.encode([0xFFu8; FRAME_SAMPLES]);
        for _ in 0..ms / 20 {
            let media = format!(
                r#"{{"event":"media","sequenceNumber":"2","streamSid":"{STREAM}","media":{{"payload":"{payload}"}}}}"#
            );
            let _ = self.inbound.send(WsFrame::Text(media));
        }
    }
}

struct Run {
    twilio: Twilio,
    script: Script,
    log: Arc<Mutex<ScriptLog>>,
    telephony: Arc<Telephony>,
    call: tokio::task::JoinHandle<Option<CallArtifacts>>,
    drain: CancellationToken,
    _spool: tempfile::TempDir,
}

fn start_call(
    edit: impl FnOnce(&mut agent_spec::draft::AgentDraft),
    hold: Arc<Mutex<Option<u64>>>,
    connect_fails: bool,
) -> Run {
    start_call_in(edit, |_| {}, hold, connect_fails)
}

/// [`start_call`], with `edit_env` applied to the call's environment.
fn start_call_in(
    edit: impl FnOnce(&mut agent_spec::draft::AgentDraft),
    edit_env: impl FnOnce(&mut CallEnv),
    hold: Arc<Mutex<Option<u64>>>,
    connect_fails: bool,
) -> Run {
    let spool = tempfile::tempdir().unwrap();
    let telephony = Arc::new(Telephony::default());
    let mut call_env = env(spool.path(), Arc::clone(&telephony), edit);
    edit_env(&mut call_env);
    let env: &'static CallEnv = Box::leak(Box::new(call_env));
    let (twilio, inbound, outbound) = twilio(hold);
    let (session, script, log) = ScriptedSession::new();
    let out = futures::sink::unfold(outbound, |tx, s: String| async move {
        let _ = tx.send(s);
        Ok::<_, std::convert::Infallible>(tx)
    });
    let drain = CancellationToken::new();
    let draining = drain.clone();
    let call = tokio::spawn(async move {
        let inbound = tokio_stream_from(inbound);
        run_call(
            env,
            inbound,
            Box::pin(out),
            move || async move {
                if connect_fails {
                    Err(ConnectError::Unavailable { provider: "scripted", reason: "down".into() })
                } else {
                    Ok(session)
                }
            },
            draining,
        )
        .await
    });
    Run { twilio, script, log, telephony, call, drain, _spool: spool }
}

fn tokio_stream_from(mut rx: mpsc::UnboundedReceiver<WsFrame>) -> impl Stream<Item = WsFrame> + Unpin {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn transcript(artifacts: &CallArtifacts) -> serde_json::Value {
    serde_json::from_slice(&artifacts.transcript).unwrap()
}

fn metadata(artifacts: &CallArtifacts) -> serde_json::Value {
    serde_json::from_slice(&artifacts.metadata).unwrap()
}

fn speak(script: &Script, text: &str, ms: usize) {
    script.send(SpeechEvent::AgentText(text.into())).unwrap();
    script.send(SpeechEvent::AgentAudio { ulaw: Bytes::from(vec![0x11u8; ms * 8]), received: Instant::now() }).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_caller_transcript_lands_in_its_turn_and_idle_still_fires() {
    let run = start_call(|_| {}, Arc::default(), false);
    wait_for("the greeting asked for", || run.log.lock().unwrap().spoken.len() == 1).await;
    speak(&run.script, "Hello.", 200);
    run.script.send(SpeechEvent::AgentTurnEnd).unwrap();
    // The caller answers the greeting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.script.send(SpeechEvent::CallerTurnEnded { item: "c1".into(), at: Instant::now() }).unwrap();
    // The answer starts before the caller's transcript arrives.
    speak(&run.script, "We open at nine.", 400);
    run.script.send(SpeechEvent::CallerText { item: "c1".into(), text: "when do you open".into() }).unwrap();
    run.script.send(SpeechEvent::AgentTurnEnd).unwrap();
    // Quiet: after idle_prompt_after_secs (3 s) the idle prompt is asked for.
    wait_for("the idle prompt", || run.log.lock().unwrap().spoken.len() == 2).await;
    assert_eq!(run.log.lock().unwrap().spoken[1], "Are you still there?");
    run.twilio.stop();
    let artifacts = run.call.await.unwrap().unwrap();
    let t = transcript(&artifacts);
    let turns: Vec<(String, String)> = t["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["role"].as_str().unwrap().to_owned(), t["text"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        turns[..3],
        [
            ("agent".into(), "Hello.".into()),
            ("caller".into(), "when do you open".into()),
            ("agent".into(), "We open at nine.".into())
        ],
        "{t:#}"
    );
    assert_eq!(metadata(&artifacts)["end_reason"], "caller_hung_up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_results_go_back_by_id_and_end_call_hangs_up_after_playback() {
    let run = start_call(|_| {}, Arc::default(), false);
    wait_for("the greeting asked for", || run.log.lock().unwrap().spoken.len() == 1).await;
    // No transfer number: the provider is told why.
    run.script.send(SpeechEvent::Tool { id: "call_7".into(), call: ToolCall::TransferCall }).unwrap();
    speak(&run.script, "Goodbye.", 300);
    run.script.send(SpeechEvent::Tool { id: "call_8".into(), call: ToolCall::EndCall }).unwrap();
    run.script.send(SpeechEvent::AgentTurnEnd).unwrap();
    wait_for("the hang-up", || !run.telephony.requests.lock().unwrap().is_empty()).await;
    run.twilio.stop();
    let artifacts = run.call.await.unwrap().unwrap();
    let results = run.log.lock().unwrap().tool_results.clone();
    assert_eq!(results[0], ("call_7".into(), ToolOutcome::failed("no transfer number configured")));
    assert_eq!(results[1], ("call_8".into(), ToolOutcome::ok()));
    assert_eq!(*run.telephony.requests.lock().unwrap(), vec![format!("hang_up {CALL}")]);
    assert_eq!(metadata(&artifacts)["end_reason"], "end_call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barge_in_tells_the_session_how_much_of_its_turn_was_played() {
    // Twilio "plays" the first three marks (600 ms) and holds the rest.
    let hold = Arc::new(Mutex::new(None));
    let run = start_call(|_| {}, Arc::clone(&hold), false);
    wait_for("the greeting asked for", || run.log.lock().unwrap().spoken.len() == 1).await;
    *hold.lock().unwrap() = Some(3);
    speak(&run.script, "one two three four five six seven eight nine ten", 2_000);
    wait_for("the audio sent", || run.twilio.wire.lock().unwrap().frames.len() == 100).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    run.script.send(SpeechEvent::CallerSpeechStarted).unwrap();
    wait_for("the clear", || run.twilio.wire.lock().unwrap().clears == 1).await;
    run.twilio.stop();
    let artifacts = run.call.await.unwrap().unwrap();
    assert_eq!(run.log.lock().unwrap().interrupts, vec![Duration::from_millis(600)]);
    let t = transcript(&artifacts);
    let cut = &t["turns"][0];
    assert_eq!(cut["interrupted"], true);
    assert_eq!(cut["text"], "one two three", "{t:#}");
    assert_eq!(metadata(&artifacts)["interruptions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_audio_is_framed_without_gaps_and_padded_only_at_the_turn_end() {
    let run = start_call(|_| {}, Arc::default(), false);
    wait_for("the greeting asked for", || run.log.lock().unwrap().spoken.len() == 1).await;
    for _ in 0..3 {
        run.script
            .send(SpeechEvent::AgentAudio { ulaw: Bytes::from(vec![0x22u8; 100]), received: Instant::now() })
            .unwrap();
    }
    wait_for("one whole frame", || run.twilio.wire.lock().unwrap().frames.len() == 1).await;
    run.script.send(SpeechEvent::AgentTurnEnd).unwrap();
    wait_for("the last frame", || run.twilio.wire.lock().unwrap().frames.len() == 2).await;
    let frames = run.twilio.wire.lock().unwrap().frames.clone();
    assert!(frames[0].iter().all(|b| *b == 0x22), "no silence inside streamed speech");
    assert!(frames[1][..140].iter().all(|b| *b == 0x22));
    assert!(frames[1][140..].iter().all(|b| *b == 0xFF), "the turn's end is padded");
    run.twilio.stop();
    run.call.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_closes_mid_call_gets_the_apology_and_a_hang_up() {
    let run = start_call(|_| {}, Arc::default(), false);
    wait_for("the greeting asked for", || run.log.lock().unwrap().spoken.len() == 1).await;
    let Run { twilio, script, telephony, call, log, .. } = run;
    drop(script);
    wait_for("the hang-up", || !telephony.requests.lock().unwrap().is_empty()).await;
    twilio.stop();
    let artifacts = call.await.unwrap().unwrap();
    let t = transcript(&artifacts);
    assert!(t["turns"][0]["text"].as_str().unwrap().contains("cannot take your call"), "{t:#}");
    let m = metadata(&artifacts);
    assert_eq!(m["end_reason"], "provider_error");
    assert!(m["errors"][0].as_str().unwrap().contains("closed"), "{m:#}");
    assert_eq!(log.lock().unwrap().spoken.len(), 1, "nothing more is asked of a closed session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_cannot_connect_is_never_replaced_by_another() {
    let run = start_call(|_| {}, Arc::default(), true);
    wait_for("the hang-up", || !run.telephony.requests.lock().unwrap().is_empty()).await;
    run.twilio.stop();
    let artifacts = run.call.await.unwrap().unwrap();
    assert!(run.log.lock().unwrap().spoken.is_empty());
    let m = metadata(&artifacts);
    assert_eq!(m["end_reason"], "provider_unavailable");
    assert_eq!(transcript(&artifacts)["turns"].as_array().unwrap().len(), 1, "the apology only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_off_limits_draft_is_cut_before_it_is_heard() {
    let run = start_call(|d| d.guardrails.custom_rules = vec!["Never discuss pricing.".into()], Arc::default(), false);
    wait_for("the greeting asked for", || run.log.lock().unwrap().spoken.len() == 1).await;
    run.script.send(SpeechEvent::AgentDraft("Our pricing starts at ten dollars.".into())).unwrap();
    wait_for("the refusal asked for", || run.log.lock().unwrap().spoken.len() == 2).await;
    assert_eq!(run.log.lock().unwrap().spoken[1], "I am sorry, I cannot discuss that.");
    run.twilio.silence(100);
    run.twilio.stop();
    let artifacts = run.call.await.unwrap().unwrap();
    let m = metadata(&artifacts);
    assert_eq!(m["guardrail_cuts"], 1, "{m:#}");
    assert!(run.twilio.wire.lock().unwrap().frames.is_empty(), "nothing of the reply was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_mid_call_asks_the_provider_for_the_goodbye_then_hangs_up() {
    let run = start_call(|_| {}, Arc::default(), false);
    wait_for("the greeting asked for", || run.log.lock().unwrap().spoken.len() == 1).await;
    // The provider is preparing a reply when the task is told to stop.
    run.script.send(SpeechEvent::CallerTurnEnded { item: "c1".into(), at: Instant::now() }).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    run.drain.cancel();
    wait_for("the goodbye asked for", || run.log.lock().unwrap().spoken.len() == 2).await;
    assert_eq!(
        run.log.lock().unwrap().spoken[1],
        "I am sorry, I have to end our call now. Please call again. Goodbye."
    );
    assert_eq!(run.log.lock().unwrap().interrupts, vec![Duration::ZERO], "the reply being prepared is dropped");
    speak(&run.script, "I am sorry, I have to end our call now.", 300);
    run.script.send(SpeechEvent::AgentTurnEnd).unwrap();
    wait_for("the hang-up", || !run.telephony.requests.lock().unwrap().is_empty()).await;
    run.twilio.stop();
    let artifacts = run.call.await.unwrap().unwrap();
    assert_eq!(metadata(&artifacts)["end_reason"], "shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_stops_the_recording_and_the_call_goes_on() {
    use crate::artifacts::RECORDING_CHUNK;
    let budget: Arc<Mutex<Option<Arc<crate::artifacts::DiskBudget>>>> = Arc::default();
    let keep = Arc::clone(&budget);
    let run = start_call_in(
        |d| d.enable_recording = true,
        move |env| {
            let spool = env.artifacts.spool_dir().to_owned();
            let capped = ArtifactStore::new(Arc::new(NoUploads::default()), spool, Duration::ZERO, Duration::ZERO)
                .with_spool_cap(2 * RECORDING_CHUNK);
            *keep.lock().unwrap() = Some(capped.disk());
            env.artifacts = Arc::new(capped);
        },
        Arc::default(),
        false,
    );
    wait_for("the greeting asked for", || run.log.lock().unwrap().spoken.len() == 1).await;
    // Ten seconds of the caller: the spool has room for about four of the recording.
    run.twilio.silence(10_000);
    wait_for("the caller's audio", || run.log.lock().unwrap().audio_bytes >= 400 * FRAME_SAMPLES).await;
    run.twilio.stop();
    let artifacts = run.call.await.unwrap().unwrap();
    let m = metadata(&artifacts);
    assert_eq!(m["end_reason"], "caller_hung_up", "the call went on: {m:#}");
    assert_eq!(m["recording"], true, "what was recorded is kept");
    assert!(m["recording_cut_at_ms"].as_u64().is_some(), "{m:#}");
    assert!(m["errors"].to_string().contains("the spool is full"), "{m:#}");
    let path = artifacts.recording.expect("the recording up to the cap");
    let wav = hound::WavReader::open(&path).expect("a whole WAV file");
    let secs = f64::from(wav.duration()) / 8000.0;
    assert!((4.0..=4.1).contains(&secs), "two 64 KiB chunks hold 4.08 s of stereo audio: {secs}");
    // The budget holds exactly the file, until the file leaves the spool.
    let budget = budget.lock().unwrap().clone().unwrap();
    assert_eq!(budget.used(), std::fs::metadata(&path).unwrap().len());
}

/// Any message a socket can carry: garbage, JSON of the wrong shape, Twilio's
/// messages with odd values (other stream sids, payloads that are not base64 or not a
/// whole frame, long or non-ASCII digits and mark names, repeated `start`s, unknown
/// events), and messages over the size limit.
fn any_message() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let text = || proptest::string::string_regex("[\\PC\"\\\\{}]{0,40}").unwrap();
    let payload = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400)
            .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        text(),
    ];
    let sid = prop_oneof![Just(STREAM.to_owned()), text()];
    prop_oneof![
        text(),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (sid.clone(), payload).prop_map(|(sid, p)| {
            serde_json::json!({"event": "media", "sequenceNumber": "3", "streamSid": sid, "media": {"payload": p}})
                .to_string()
        }),
        (sid.clone(), text()).prop_map(|(sid, name)| {
            serde_json::json!({"event": "mark", "sequenceNumber": "4", "streamSid": sid, "mark": {"name": name}})
                .to_string()
        }),
        (sid, text()).prop_map(|(sid, digit)| {
            serde_json::json!({"event": "dtmf", "sequenceNumber": "5", "streamSid": sid,
                "dtmf": {"track": "inbound_track", "digit": digit}})
            .to_string()
        }),
        (text(), text()).prop_map(|(event, value)| serde_json::json!({"event": event, "x": value}).to_string()),
        Just(start_message("AC0123456789abcdef0123456789abcdef", "not-a-token")),
        (0usize..3).prop_map(|n| format!(r#"{{"event":"media","pad":"{}"}}"#, "x".repeat(MAX_MESSAGE_BYTES + n))),
    ]
}

/// The stream's parser and the call loop behind it survive any sequence of messages:
/// no panic, the call still ends at Twilio's `stop` with its artifacts, and what it
/// keeps grows with what it was sent only within bounds (DTMF digits are cut to 4
/// characters, everything else unusable is only counted).
#[test]
fn the_call_loop_survives_any_messages() {
    use proptest::prelude::*;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(messages in proptest::collection::vec(any_message(), 1..40))| {
        let sent = messages.len();
        let artifacts = runtime.block_on(async {
            let run = start_call(|_| {}, Arc::default(), false);
            for m in messages {
                let _ = run.twilio.inbound.send(WsFrame::Text(m));
            }
            run.twilio.stop();
            tokio::time::timeout(Duration::from_secs(20), run.call).await
        });
        let artifacts = artifacts.expect("the call ends").expect("no panic").expect("artifacts");
        let m = metadata(&artifacts);
        prop_assert_eq!(&m["end_reason"], "caller_hung_up");
        let t = transcript(&artifacts);
        let dtmf = t["dtmf"].as_array().unwrap();
        prop_assert!(dtmf.len() <= sent);
        prop_assert!(dtmf.iter().all(|d| d["digit"].as_str().unwrap().chars().count() <= 4));
        prop_assert!(artifacts.transcript.len() + artifacts.metadata.len() < 8 * 1024 + 64 * sent);
    });
}
