//! The voice webhook's form parser against any body: arbitrary bytes, form fields
//! with any names and values, correctly signed or not. The runtime answers 200 with
//! TwiML, 403 or 422, never fails, and a body over the size limit is refused whole.

use crate::common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A form body and the params Twilio would have signed, when it is one.
fn any_body() -> impl Strategy<Value = (Vec<u8>, Option<Vec<(String, String)>>)> {
    let text = || proptest::string::string_regex("[\\PC&=%+]{0,30}").unwrap();
    let call_sid = prop_oneof!["CA[0-9a-f]{32}", text(), Just("CA0123456789abcdef0123456789abcdef".to_owned()),];
    let form = (call_sid, proptest::collection::vec((text(), text()), 0..8)).prop_map(|(sid, extra)| {
        let mut params = vec![("CallSid".to_owned(), sid), ("AccountSid".to_owned(), ACCOUNT_SID.to_owned())];
        params.extend(extra);
        params
    });
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| (b, None)),
        form.prop_map(|params| {
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            (agent_runtime::telephony::form_urlencoded(&pairs).into_bytes(), Some(params))
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_webhook_answers_any_form() {
    let rt = spawn(draft()).await;
    let url = format!("http://{}/agent/{}/incoming-call", rt.addr, rt.agent_id);
    let public = format!("https://{PUBLIC_HOST}/agent/{}/incoming-call", rt.agent_id);
    let client = reqwest::Client::new();
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config { cases: 200, failure_persistence: None, ..Config::default() });
    let result = tokio::task::block_in_place(|| {
        runner.run(&any_body(), |(body, signed)| {
            // Signed over what a parser of the same body reads, when Twilio would sign it.
            let signature = match &signed {
                Some(_) => {
                    let parsed: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
                    agent_runtime::twilio::signature(AUTH_TOKEN, &public, &parsed)
                }
                None => "bm90IGEgc2lnbmF0dXJl".to_owned(),
            };
            let (status, text) = handle.block_on(async {
                let r = client
                    .post(&url)
                    .header("X-Twilio-Signature", signature)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the runtime answers");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            });
            prop_assert!(matches!(status, 200 | 403 | 422), "{status}: {text}");
            if signed.is_none() {
                prop_assert_eq!(status, 403);
            }
            if status == 200 {
                prop_assert!(text.starts_with("<?xml") && text.ends_with("</Response>"), "{}", text);
            }
            Ok(())
        })
    });
    result.unwrap();
    // A body over axum's 2 MB limit is refused whole, before it is parsed.
    let huge = vec![b'a'; 3 * 1024 * 1024];
    let r = client.post(&url).header("X-Twilio-Signature", "x").body(huge).send().await.unwrap();
    assert_eq!(r.status(), 413);
}
