//! The dashboard in a real browser: headless Debian Chromium driven through
//! chromedriver (WebDriver), against the control plane on 127.0.0.1 deploying into
//! moto. A tenant signs in, submits the agent form with invalid fields (errors shown,
//! input kept), fixes it, sees the agent listed and its deployment become active,
//! copies its voice URL, opens a call whose artifacts are in the agent's bucket
//! (transcript and audio player), deletes the agent and signs out.
//!
//! A screenshot of each page is written to `{CARGO_TARGET_TMPDIR}/dashboard-screenshots/`
//! (or `TEMPOVOICE_SCREENSHOTS_DIR`).

use crate::common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_runtime::callsim::outbound::Answer;
use agent_spec::calls::{CallMetadata, DtmfRecord, Role, ToolCall, ToolCallRecord, Transcript, Turn, WebhookDelivery};
use common::{ACCOUNT_SID, AUTH_TOKEN, Platform};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CALL_SID: &str = "CAfeedfacefeedfacefeedfacefeedface";

/// chromedriver on a free loopback port, stopped on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test installs it)");
        // Owned at once: dropping it (also on a panic below) stops the process.
        let driver = ChromeDriver { child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start listening on 127.0.0.1:{port}");
    }

    async fn browser(&self, profile: &std::path::Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-quic",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var("TEMPOVOICE_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn fill(browser: &Client, id: &str, text: &str) {
    let input = browser.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"));
    input.clear().await.unwrap();
    if !text.is_empty() {
        input.send_keys(text).await.unwrap();
    }
}

async fn value(browser: &Client, id: &str) -> String {
    browser.find(Locator::Id(id)).await.unwrap().prop("value").await.unwrap().unwrap_or_default()
}

/// Clicks what `locator` finds and waits until the browser has left the page: what
/// the next step looks for is then on the new page, never on the one being left
/// (a flash notice on both would otherwise be found on the old one, and go stale).
async fn navigate_by(browser: &Client, locator: Locator<'_>) {
    let old = browser.find(Locator::Css("html")).await.unwrap();
    browser.find(locator).await.unwrap_or_else(|e| panic!("{locator:?}: {e}")).click().await.unwrap();
    for _ in 0..300 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {locator:?} did not leave the page in 15 s");
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

/// A one-second stereo 8 kHz 16-bit WAV (a 440 Hz tone on the agent channel).
fn wav() -> Vec<u8> {
    let frames = 8000u32;
    let data_len = frames * 4;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&(8000u32 * 4).to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..frames {
        let agent = ((i as f32 * 440.0 * std::f32::consts::TAU / 8000.0).sin() * 8000.0) as i16;
        out.extend_from_slice(&0i16.to_le_bytes());
        out.extend_from_slice(&agent.to_le_bytes());
    }
    out
}

/// Writes a finished call into the agent's bucket, as the runtime does.
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// A month of earlier calls in the agent's call index (index lines only), ended
/// before the call [`put_call`] writes: 0 to 5 a day, ending in every way.
fn call_history(now: time::OffsetDateTime) -> String {
    const REASONS: [&str; 7] =
        ["end_call", "caller_hung_up", "end_call", "transferred", "voicemail", "idle", "provider_error"];
    let mut out = String::new();
    let mut n = 0u64;
    for day in 1..30i64 {
        for k in 0..(day * 7 % 6) {
            n += 1;
            let started = now - time::Duration::days(day) + time::Duration::minutes(k * 13);
            let secs = 20 + (n * 37) % 400;
            let entry = agent_spec::calls::CallIndexEntry {
                call_sid: format!("CA{n:032x}"),
                started_at: rfc3339(started),
                ended_at: rfc3339(started + time::Duration::seconds(secs as i64)),
                duration_secs: secs as f64,
                from: Some("+15550001234".into()),
                to: Some("+14155550100".into()),
                direction: Some("inbound".into()),
                end_reason: REASONS[(n as usize * 3 + day as usize) % REASONS.len()].into(),
                voicemail: false,
                answered_by: None,
            };
            out.push_str(&serde_json::to_string(&entry).unwrap());
            out.push('\n');
        }
    }
    out
}

async fn put_call(platform: &Platform, key: &str, agent_id: &str) {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let started = now - time::Duration::seconds(60);
    let (_, agent) = platform.api_get(&format!("/v1/agents/{agent_id}"), key).await;
    let deployment = agent["deployment"]["id"].as_str().unwrap();
    let (_, deployment) = platform.api_get(&format!("/v1/agents/{agent_id}/deployments/{deployment}"), key).await;
    let bucket = deployment["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "bucket")
        .and_then(|r| r["name"].as_str())
        .expect("the deployment made a bucket")
        .to_owned();
    let turn = |role, text: &str, start_ms, end_ms, interrupted, tool_calls| Turn {
        role,
        text: text.into(),
        start_ms,
        end_ms,
        interrupted,
        tool_calls,
    };
    let transcript = Transcript {
        call_sid: CALL_SID.into(),
        turns: vec![
            turn(Role::Agent, "Hello, Rosa's Bakery, how can I help?", 0, 2_000, false, vec![]),
            turn(Role::Caller, "What are your opening hours?", 2_500, 4_000, false, vec![]),
            turn(Role::Agent, "We are open Tuesday to Sunday from seven", 4_600, 6_000, true, vec![]),
            turn(Role::Caller, "Thank you, goodbye.", 6_200, 7_400, false, vec![]),
            turn(
                Role::Agent,
                "Goodbye!",
                8_000,
                9_000,
                false,
                vec![ToolCallRecord { call: ToolCall::EndCall, result: "ok".into() }],
            ),
        ],
        dtmf: vec![DtmfRecord { digit: "5".into(), at_ms: 5_100 }],
    };
    let metadata = CallMetadata {
        call_sid: CALL_SID.into(),
        stream_sid: "MZ0123456789abcdef0123456789abcdef".into(),
        account_sid: ACCOUNT_SID.into(),
        from: Some("+15550001234".into()),
        to: Some("+14155550100".into()),
        agent_id: agent_id.into(),
        tenant_id: agent["tenant_id"].as_str().unwrap().into(),
        agent_name: "Front desk".into(),
        provider: "local".into(),
        started_at: rfc3339(started),
        ended_at: rfc3339(started + time::Duration::seconds(9)),
        duration_secs: 9.2,
        end_reason: "end_call".into(),
        turn_latency_ms: vec![600, 640],
        caller_turns: 2,
        agent_turns: 3,
        interruptions: 1,
        guardrail_cuts: 0,
        usage: Default::default(),
        frames_in: 460,
        frames_out: 300,
        malformed_messages: 0,
        recording: true,
        recording_cut_at_ms: None,
        voicemail: false,
        webhooks: vec![WebhookDelivery {
            kind: "transcript".into(),
            url: "https://hooks.example.com/t".into(),
            delivered: true,
            attempts: 1,
            error: None,
        }],
        errors: vec![],
        direction: None,
        answered_by: None,
        metadata: None,
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    for (file, body) in [
        ("transcript.json", serde_json::to_vec(&transcript).unwrap()),
        ("recording.wav", wav()),
        ("metadata.json", serde_json::to_vec(&metadata).unwrap()),
    ] {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("calls/{CALL_SID}/{file}"))
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {file}: {e:?}"));
    }
    // The index, as the runtime's task writes it: its history, then this call.
    let lines = call_history(now) + &serde_json::to_string(&agent_spec::calls::CallIndexEntry::of(&metadata)).unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key(agent_spec::calls::index_key(now.date(), "tfeedface", 0))
        .body((lines + "\n").into_bytes().into())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_creates_deploys_calls_back_and_deletes_an_agent_in_the_browser() {
    let platform = Platform::start_reachable(&[]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let url = &platform.url;

    // Sign in.
    browser.goto(&format!("{url}/")).await.unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), "/sign-in");
    screenshot(&browser, "01-sign-in").await;
    fill(&browser, "api-key", "tvk_wrong_wrong").await;
    navigate_by(&browser, Locator::Css("main button[type=submit]")).await;
    let notice = browser.wait().for_element(Locator::Css(".notice.error")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("not accepted"));
    fill(&browser, "api-key", &key).await;
    navigate_by(&browser, Locator::Css("main button[type=submit]")).await;
    let empty = browser.wait().for_element(Locator::Css(".empty h2")).await.unwrap();
    assert_eq!(empty.text().await.unwrap(), "No agents yet");
    screenshot(&browser, "02-agents-empty").await;

    // The form, first with invalid fields.
    navigate_by(&browser, Locator::LinkText("Create your first agent")).await;
    browser.wait().for_element(Locator::Id("f-name")).await.unwrap();
    screenshot(&browser, "03-new-agent").await;
    fill(&browser, "f-system_prompt", "You answer the phone for Rosa's Bakery. Be brief and warm.").await;
    fill(&browser, "f-telephony-call_phone_number", "555 0100").await;
    fill(&browser, "f-telephony-twilio_account_sid", ACCOUNT_SID).await;
    fill(&browser, "f-secrets-twilio_auth_token", AUTH_TOKEN).await;
    fill(&browser, "f-knowledge_base-0-title", "Opening hours").await;
    fill(&browser, "f-knowledge_base-0-text", "We are open Tuesday to Sunday from seven to three.").await;
    // Each provider's own settings show while it is chosen (Nova Sonic by default).
    let shown = |id: &'static str| {
        let browser = browser.clone();
        async move { browser.find(Locator::Id(id)).await.unwrap().is_displayed().await.unwrap() }
    };
    assert!(shown("f-voice-temperature").await && shown("f-voice-endpointing_sensitivity").await);
    assert!(!shown("f-voice-turn_detection").await && !shown("f-secrets-openai_api_key").await);
    let provider = browser.find(Locator::Id("f-voice-provider")).await.unwrap();
    provider.clone().select_by_value("openai-realtime").await.unwrap();
    assert!(shown("f-voice-turn_detection").await && shown("f-voice-eagerness").await);
    assert!(shown("f-secrets-openai_api_key").await && !shown("f-voice-temperature").await);
    provider.select_by_value("local").await.unwrap();
    assert!(!shown("f-voice-turn_detection").await && !shown("f-voice-temperature").await);
    browser.find(Locator::Id("f-enable_recording")).await.unwrap().click().await.unwrap();
    navigate_by(&browser, Locator::Css("form.agent-form .actions button[type=submit]")).await;
    let errors = browser.wait().for_element(Locator::Id("errors")).await.unwrap();
    let errors = errors.text().await.unwrap();
    assert!(errors.contains("Name: is required"), "{errors}");
    assert!(errors.contains("Phone number: must be an E.164 number"), "{errors}");
    assert!(text_of(&browser, "#f-name-error").await.contains("is required"));
    assert!(text_of(&browser, "#f-telephony-call_phone_number-error").await.contains("E.164"));
    assert_eq!(value(&browser, "f-telephony-call_phone_number").await, "555 0100", "input kept");
    assert_eq!(value(&browser, "f-knowledge_base-0-title").await, "Opening hours");
    assert!(value(&browser, "f-system_prompt").await.starts_with("You answer the phone"));
    assert_eq!(value(&browser, "f-voice-provider").await, "local");
    assert_eq!(value(&browser, "f-secrets-twilio_auth_token").await, "", "secrets are not written back");
    assert!(text_of(&browser, "label[for=f-secrets-twilio_auth_token]").await.contains("entered, kept"));
    screenshot(&browser, "04-form-errors").await;

    // Fixed: created, and its deployment starts.
    fill(&browser, "f-name", "Front desk").await;
    fill(&browser, "f-telephony-call_phone_number", "+14155550100").await;
    navigate_by(&browser, Locator::Css("form.agent-form .actions button[type=submit]")).await;
    let notice = browser.wait().for_element(Locator::Css(".notice.success")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("Agent created"));
    let agent_path = browser.current_url().await.unwrap().path().to_owned();
    let agent_id = agent_path.strip_prefix("/agents/").unwrap().to_owned();
    screenshot(&browser, "05-agent-deploying").await;

    // The page refreshes itself until the deployment is active.
    browser
        .wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::Css("#deployment .badge.active"))
        .await
        .expect("the deployment becomes active");
    let steps = text_of(&browser, "#deployment .events").await;
    assert!(steps.contains("bucket") && steps.contains("service"), "{steps}");
    screenshot(&browser, "06-agent-active").await;

    // Copy the voice URL.
    let voice_url = value(&browser, "voice-url").await;
    assert_eq!(voice_url, format!("https://voice.example.com/agent/{agent_id}/incoming-call"));
    let session = browser.session_id().await.unwrap().unwrap();
    let granted = platform
        .http
        .post(format!("http://127.0.0.1:{}/session/{session}/permissions", driver.port))
        .json(&json!({"descriptor": {"name": "clipboard-read"}, "state": "granted"}))
        .send()
        .await
        .unwrap();
    assert!(granted.status().is_success(), "grant clipboard-read: {}", granted.text().await.unwrap());
    let copy = browser.find(Locator::Css("button[data-copy=voice-url]")).await.unwrap();
    copy.click().await.unwrap();
    browser
        .wait()
        .for_element(Locator::Css("button[data-copy=voice-url].copied"))
        .await
        .expect("the button says it copied");
    let pasted = browser
        .execute_async("navigator.clipboard.readText().then(arguments[0], e => arguments[0]('error: ' + e))", vec![])
        .await
        .unwrap();
    assert_eq!(pasted, Value::String(voice_url.clone()), "the clipboard holds the voice URL");

    // Call a number from the agent's page: Twilio is asked to call it from the agent's.
    fill(&browser, "call-to", "+15550002222").await;
    screenshot(&browser, "06a-call-form").await;
    navigate_by(&browser, Locator::Css("#call-form button[type=submit]")).await;
    let notice = browser.wait().for_element(Locator::Css(".notice.success")).await.unwrap().text().await.unwrap();
    assert!(notice.contains("Calling +15550002222 from +14155550100 (call CA"), "{notice}");
    let call = platform.twilio.next_outbound(Duration::from_secs(5)).await.expect("Twilio was asked to call");
    assert_eq!((call.param("To"), call.param("From")), (Some("+15550002222"), Some("+14155550100")));
    let unanswered = platform.twilio.answer(call, Answer::NoAnswer, "http://127.0.0.1:9").await.unwrap();
    assert_eq!(unanswered.status_callbacks.last().unwrap(), &("no-answer".to_owned(), 204));
    screenshot(&browser, "06b-call-placed").await;

    // A caller asked to be called back (reported as the agent's runtime reports it):
    // the agent's page lists it, and it can be cancelled, on a phone too.
    let reporter = agent_runtime::callbacks::ControlPlane::new(
        reqwest::Client::new(),
        platform.public_url().unwrap(),
        &agent_id,
        secrecy::SecretString::from(AUTH_TOKEN),
    );
    let asked = agent_runtime::callbacks::CallbackRequest {
        call_sid: format!("CA{:032x}", rand::random::<u128>()),
        to: "+15550003333".into(),
        requested_time: "tomorrow at three pm".into(),
        at: None,
        context: "Please call me back tomorrow at three pm about the cake order.".into(),
    };
    let scheduled = reporter.schedule(&asked).await.expect("the callback is scheduled");
    browser.goto(&format!("{url}/agents/{agent_id}")).await.unwrap();
    let item = format!("#callback-{}", scheduled.id);
    let listed = text_of(&browser, &item).await;
    assert!(listed.contains("+15550003333") && listed.contains("scheduled"), "{listed}");
    assert!(listed.contains("tomorrow at three pm"), "{listed}");
    browser.set_window_size(390, 844).await.unwrap();
    browser.execute("document.getElementById('callbacks').scrollIntoView()", vec![]).await.unwrap();
    screenshot(&browser, "06c-callbacks-phone").await;
    browser.set_window_size(1280, 1000).await.unwrap();
    navigate_by(&browser, Locator::Css(&format!("{item} button[type=submit]"))).await;
    let notice = browser.wait().for_element(Locator::Css(".notice.success")).await.unwrap().text().await.unwrap();
    assert!(notice.contains("The callback to +15550003333 is cancelled"), "{notice}");
    assert!(text_of(&browser, &item).await.contains("cancelled"));
    screenshot(&browser, "06d-callback-cancelled").await;

    // Listed.
    browser.goto(&format!("{url}/")).await.unwrap();
    let row = text_of(&browser, "tbody tr").await;
    assert!(row.contains("Front desk") && row.contains("+14155550100") && row.contains("active"), "{row}");
    screenshot(&browser, "07-agents").await;

    // Its number, asked of Twilio: it routes here. Re-pointed by hand in Twilio, it
    // shows as drifted, and the re-point button points it back.
    navigate_by(&browser, Locator::LinkText("Numbers")).await;
    let row_css = format!("#number-{agent_id}");
    let row = browser.wait().for_element(Locator::Css(&row_css)).await.unwrap().text().await.unwrap();
    assert!(row.contains("+14155550100") && row.contains("Front desk") && row.contains("routes here"), "{row}");
    platform.twilio.edit_number("+14155550100", |n| n.voice_url = "https://ivr.example.com/answer".into());
    browser.refresh().await.unwrap();
    let row = text_of(&browser, &row_css).await;
    assert!(row.contains("drifted") && row.contains("https://ivr.example.com/answer"), "{row}");
    assert!(text_of(&browser, "#numbers-summary").await.contains("1 number does not route to its agent"));
    screenshot(&browser, "07a-numbers-drifted").await;
    browser.set_window_size(390, 844).await.unwrap();
    screenshot(&browser, "07b-numbers-phone").await;
    browser.set_window_size(1280, 1000).await.unwrap();
    navigate_by(&browser, Locator::Css(&format!("{row_css} button"))).await;
    let notice = browser.wait().for_element(Locator::Css(".notice.success")).await.unwrap();
    assert!(notice.text().await.unwrap().contains(&format!("+14155550100 now routes to {voice_url}")));
    assert!(text_of(&browser, &row_css).await.contains("routes here"));
    assert_eq!(platform.twilio.number("+14155550100").unwrap().voice_url, voice_url);
    screenshot(&browser, "07c-numbers").await;
    browser.goto(&format!("{url}/")).await.unwrap();

    // A call, read from the agent's bucket.
    put_call(&platform, &key, &agent_id).await;
    navigate_by(&browser, Locator::LinkText("Calls")).await;
    let call_row = browser.wait().for_element(Locator::Css("tbody tr")).await.unwrap().text().await.unwrap();
    assert!(
        call_row.contains("+15550001234") && call_row.contains("0:09") && call_row.contains("end call"),
        "{call_row}"
    );
    screenshot(&browser, "08-calls").await;

    // The agent's page has its calls at a glance: the month's calls per day by how
    // they ended, with the figures; on a phone too.
    // (A listing read in the last 2 s may be reused: the page is loaded until it shows them.)
    let history = call_history(time::OffsetDateTime::now_utc()).lines().count() + 1;
    let mut calls = String::new();
    for _ in 0..20 {
        browser.goto(&format!("{url}/agents/{agent_id}")).await.unwrap();
        if let Ok(first) = browser.find(Locator::Css("#calls-at-a-glance dl.figures dd")).await {
            calls = first.text().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(calls, history.to_string());
    let bars = browser.find_all(Locator::Css("#calls-at-a-glance svg rect.answered")).await.unwrap();
    assert!(bars.len() > 10, "{} answered bars", bars.len());
    browser.execute("document.getElementById('calls-at-a-glance').scrollIntoView()", vec![]).await.unwrap();
    screenshot(&browser, "08a-calls-at-a-glance").await;
    browser.set_window_size(390, 844).await.unwrap();
    browser.execute("document.getElementById('calls-at-a-glance').scrollIntoView()", vec![]).await.unwrap();
    screenshot(&browser, "08b-calls-at-a-glance-phone").await;
    // Nothing on the agent's page is wider than the phone: no sideways scrolling.
    let wider = browser
        .execute(
            "const w = document.documentElement.clientWidth; \
             return Array.from(document.querySelectorAll('body *')) \
               .filter(e => e.getBoundingClientRect().right > w + 1) \
               .slice(0, 5).map(e => e.tagName + ' ' + (e.textContent || '').trim().slice(0, 40));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(wider, json!([]), "wider than a 390 px phone");
    browser.set_window_size(1280, 1000).await.unwrap();
    navigate_by(&browser, Locator::LinkText("Calls")).await;
    browser.wait().for_element(Locator::Css("tbody tr")).await.unwrap();
    navigate_by(&browser, Locator::Css("tbody tr a")).await;
    let conversation = browser.wait().for_element(Locator::Css(".conversation")).await.unwrap().text().await.unwrap();
    for expected in [
        "What are your opening hours?",
        "We are open Tuesday to Sunday from seven",
        "interrupted",
        "Caller pressed 5",
        "tool: end_call",
        "Goodbye!",
    ] {
        assert!(conversation.contains(expected), "{expected} in {conversation}");
    }
    assert_eq!(browser.find_all(Locator::Css(".turn.agent")).await.unwrap().len(), 3);
    assert_eq!(browser.find_all(Locator::Css(".turn.caller")).await.unwrap().len(), 2);
    let duration = browser
        .execute_async(
            "const done = arguments[0]; const a = document.querySelector('audio');
             if (a.readyState >= 1) { done(a.duration); return; }
             a.addEventListener('loadedmetadata', () => done(a.duration));
             a.addEventListener('error', () => done(-1));
             a.load();",
            vec![],
        )
        .await
        .unwrap();
    let duration = duration.as_f64().unwrap();
    assert!((duration - 1.0).abs() < 0.05, "the player loaded the 1 s recording: {duration}");
    let details = text_of(&browser, ".two > div:last-child").await;
    assert!(details.contains("end call") && details.contains("median 640 ms"), "{details}");
    screenshot(&browser, "09-call").await;
    browser.set_window_size(390, 844).await.unwrap();
    screenshot(&browser, "10-call-phone").await;
    browser.set_window_size(1280, 1000).await.unwrap();

    // Delete, purging call data.
    browser.goto(&format!("{url}{agent_path}")).await.unwrap();
    navigate_by(&browser, Locator::LinkText("Delete")).await;
    browser.wait().for_element(Locator::Id("purge")).await.unwrap().click().await.unwrap();
    screenshot(&browser, "11-delete").await;
    navigate_by(&browser, Locator::Css("button.danger")).await;
    let notice = browser.wait().for_element(Locator::Css(".notice.success")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("Agent deleted"));
    assert!(browser.find(Locator::Css("tbody tr")).await.is_err(), "no agent listed");
    screenshot(&browser, "12-deleted").await;
    let (status, _) = platform.api_get(&format!("/v1/agents/{agent_id}"), &key).await;
    assert_eq!(status, 404);

    // Sign out.
    navigate_by(&browser, Locator::Css("header button[type=submit]")).await;
    let notice = browser.wait().for_element(Locator::Css(".notice.success")).await.unwrap();
    assert_eq!(notice.text().await.unwrap(), "You are signed out.");
    browser.goto(&format!("{url}/")).await.unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), "/sign-in");

    browser.close().await.unwrap();
    platform.stop().await;
}
