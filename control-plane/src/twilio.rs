//! The part of Twilio's REST API the control plane uses: a number's voice routing
//! (IncomingPhoneNumbers) and outbound calls (Calls). The API base URL is a setting (`TEMPOVOICE_TWILIO_API_BASE`),
//! so a local Twilio (the call simulator) can take these requests.
//!
//! What Twilio does with a number's routing, and what that means here:
//! - `voice_url` is ignored while the number has a `voice_application_sid` (a TwiML
//!   app routes it instead): pointing the number at an agent clears the app, and the
//!   app is remembered like the URL, to be given back;
//! - a number on an Elastic SIP trunk (`trunk_sid`) is routed by the trunk, and its
//!   voice URL is ignored too: that is an error the tenant has to resolve in Twilio.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Twilio's production API.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// How long one request to Twilio may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// One number of an account, as far as its voice routing goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IncomingNumber {
    /// `PN…`.
    pub sid: String,
    pub phone_number: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub voice_url: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub voice_method: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub voice_application_sid: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub status_callback: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub status_callback_method: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub trunk_sid: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Where a number sends its calls: what is set, and what is given back.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct VoiceRouting {
    pub voice_url: String,
    pub voice_method: String,
    pub voice_application_sid: String,
    pub status_callback: String,
    pub status_callback_method: String,
}

impl IncomingNumber {
    pub fn routing(&self) -> VoiceRouting {
        VoiceRouting {
            voice_url: self.voice_url.clone(),
            voice_method: self.voice_method.clone(),
            voice_application_sid: self.voice_application_sid.clone(),
            status_callback: self.status_callback.clone(),
            status_callback_method: self.status_callback_method.clone(),
        }
    }
}

/// Why Twilio did not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TwilioError {
    /// 401 (error 20003): the account SID and auth token do not match.
    #[error("Twilio refused the account SID and auth token (HTTP 401{})", code.map(|c| format!(", error {c}")).unwrap_or_default())]
    Unauthorized { code: Option<u32> },
    /// Any other refusal; `status` ≥ 500 and 429 are worth retrying.
    #[error("Twilio answered HTTP {status}{}: {message}", code.map(|c| format!(" (error {c})")).unwrap_or_default())]
    Rejected { status: u16, code: Option<u32>, message: String },
    /// Twilio could not be reached, or its answer could not be read.
    #[error("Twilio could not be reached: {0}")]
    Unreachable(String),
}

impl TwilioError {
    /// Whether asking again later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Unauthorized { .. } => false,
            Self::Rejected { status, .. } => *status == 429 || *status >= 500,
            Self::Unreachable(_) => true,
        }
    }
}

/// Twilio's REST API, for any account (each request names its own credentials:
/// every agent has its tenant's).
#[derive(Clone)]
pub struct TwilioApi {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct NumberPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<IncomingNumber>,
}

impl TwilioApi {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with rustls builds");
        Self { http, base: base.trim_end_matches('/').to_owned() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn numbers_url(&self, account: &str) -> String {
        format!("{}/2010-04-01/Accounts/{account}/IncomingPhoneNumbers", self.base)
    }

    /// The account's number `phone_number` (E.164), if the account has it.
    pub async fn find(
        &self,
        account: &str,
        token: &SecretString,
        phone_number: &str,
    ) -> Result<Option<IncomingNumber>, TwilioError> {
        let url = format!("{}.json", self.numbers_url(account));
        let response = self
            .http
            .get(&url)
            .query(&[("PhoneNumber", phone_number), ("PageSize", "20")])
            .basic_auth(account, Some(token.expose_secret()))
            .send()
            .await
            .map_err(|e| TwilioError::Unreachable(without_url(&e)))?;
        let page: NumberPage = read(response).await?;
        // The filter matches patterns too: only the exact number counts.
        Ok(page.incoming_phone_numbers.into_iter().find(|n| n.phone_number == phone_number))
    }

    /// Sets the number's voice routing; Twilio answers with the number as it now is.
    pub async fn route(
        &self,
        account: &str,
        token: &SecretString,
        number_sid: &str,
        routing: &VoiceRouting,
    ) -> Result<IncomingNumber, TwilioError> {
        let url = format!("{}/{number_sid}.json", self.numbers_url(account));
        let form = [
            ("VoiceUrl", routing.voice_url.as_str()),
            ("VoiceMethod", method_or_post(&routing.voice_method)),
            ("VoiceApplicationSid", routing.voice_application_sid.as_str()),
            ("StatusCallback", routing.status_callback.as_str()),
            ("StatusCallbackMethod", method_or_post(&routing.status_callback_method)),
        ];
        self.post(&url, account, token, &form).await
    }

    /// The calls from `from` to `to` that Twilio created at `since` or later, newest
    /// first (`GET …/Calls.json`): did an attempt that died midway create its call?
    pub async fn calls_since(
        &self,
        account: &str,
        token: &SecretString,
        to: &str,
        from: &str,
        since: time::OffsetDateTime,
    ) -> Result<Vec<CreatedCall>, TwilioError> {
        #[derive(Deserialize)]
        struct Listed {
            sid: String,
            status: String,
            #[serde(default)]
            date_created: Option<String>,
        }
        #[derive(Deserialize)]
        struct Page {
            calls: Vec<Listed>,
        }
        let url = format!("{}/2010-04-01/Accounts/{account}/Calls.json", self.base);
        let response = self
            .http
            .get(&url)
            .query(&[("To", to), ("From", from), ("PageSize", "50")])
            .basic_auth(account, Some(token.expose_secret()))
            .send()
            .await
            .map_err(|e| TwilioError::Unreachable(without_url(&e)))?;
        let page: Page = read(response).await?;
        // Twilio dates its calls to the second (RFC 2822).
        let since = since - time::Duration::seconds(1);
        Ok(page
            .calls
            .into_iter()
            .filter(|c| {
                c.date_created
                    .as_deref()
                    .and_then(|d| time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc2822).ok())
                    .is_some_and(|d| d >= since)
            })
            .map(|c| CreatedCall { sid: c.sid, status: c.status })
            .collect())
    }
}

/// An outbound call to create: Twilio fetches its TwiML from `url` when the callee
/// answers, runs answering machine detection alongside (`DetectMessageEnd`, async:
/// the result goes to `amd_callback`), and reports progress to `status_callback`.
pub struct OutboundCall<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub url: &'a str,
    pub status_callback: &'a str,
    pub amd_callback: &'a str,
    /// Seconds to let it ring.
    pub ring_timeout_secs: u32,
}

/// Twilio's answer to a call it created.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedCall {
    pub sid: String,
    pub status: String,
}

/// How long answering machine detection may listen (Twilio's default is 30 s too).
pub const MACHINE_DETECTION_TIMEOUT_SECS: u32 = 30;

impl TwilioApi {
    /// Creates an outbound call (`POST …/Calls.json`).
    pub async fn create_call(
        &self,
        account: &str,
        token: &SecretString,
        call: &OutboundCall<'_>,
    ) -> Result<CreatedCall, TwilioError> {
        let url = format!("{}/2010-04-01/Accounts/{account}/Calls.json", self.base);
        let ring = call.ring_timeout_secs.to_string();
        let amd_timeout = MACHINE_DETECTION_TIMEOUT_SECS.to_string();
        let form = [
            ("To", call.to),
            ("From", call.from),
            ("Url", call.url),
            ("Method", "POST"),
            ("StatusCallback", call.status_callback),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated ringing answered completed"),
            ("MachineDetection", "DetectMessageEnd"),
            ("MachineDetectionTimeout", amd_timeout.as_str()),
            ("AsyncAmd", "true"),
            ("AsyncAmdStatusCallback", call.amd_callback),
            ("AsyncAmdStatusCallbackMethod", "POST"),
            ("Timeout", ring.as_str()),
        ];
        self.post(&url, account, token, &form).await
    }
}

impl TwilioApi {
    /// Posts `form` to `url` as `account`; Twilio's answer, read as `T`.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        account: &str,
        token: &SecretString,
        form: &[(&str, &str)],
    ) -> Result<T, TwilioError> {
        let response = self
            .http
            .post(url)
            .basic_auth(account, Some(token.expose_secret()))
            .form(form)
            .send()
            .await
            .map_err(|e| TwilioError::Unreachable(without_url(&e)))?;
        read(response).await
    }
}

/// Twilio's default for an unset method.
fn method_or_post(method: &str) -> &str {
    if method.is_empty() { "POST" } else { method }
}

/// The error without the URL reqwest puts in it (it holds the account SID, which is
/// fine, but also makes messages long).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() { kind.to_owned() } else { format!("{kind}: {detail}") }
}

async fn read<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, TwilioError> {
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| TwilioError::Unreachable(without_url(&e)))?;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&body)
            .map_err(|e| TwilioError::Unreachable(format!("Twilio's answer could not be read: {e}")));
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        code: Option<u32>,
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<ErrorBody>(&body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    if status == 401 {
        return Err(TwilioError::Unauthorized { code });
    }
    let message =
        parsed.and_then(|b| b.message).unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
    Err(TwilioError::Rejected { status, code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_with_nulls_reads() {
        let raw = r#"{"sid": "PN0123", "phone_number": "+14155550100", "voice_url": null,
                      "voice_method": "POST", "voice_application_sid": null, "status_callback": "",
                      "status_callback_method": "POST", "trunk_sid": null, "friendly_name": "x"}"#;
        let n: IncomingNumber = serde_json::from_str(raw).unwrap();
        assert_eq!((n.voice_url.as_str(), n.trunk_sid.as_str()), ("", ""));
    }

    #[test]
    fn only_throttling_and_server_errors_are_retried() {
        assert!(!TwilioError::Unauthorized { code: Some(20003) }.retryable());
        assert!(TwilioError::Rejected { status: 429, code: Some(20429), message: String::new() }.retryable());
        assert!(TwilioError::Rejected { status: 503, code: None, message: String::new() }.retryable());
        assert!(!TwilioError::Rejected { status: 404, code: Some(20404), message: String::new() }.retryable());
        assert!(TwilioError::Unreachable("connection failed".into()).retryable());
    }
}
