//! Call control through the Twilio REST API: hang up, and redirect the live call to
//! new TwiML (a transfer). The API base URL is a setting, so a local Twilio (the call
//! simulator) can take these requests.

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

/// Why Twilio did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TelephonyError {
    /// The call is no longer in progress (Twilio error 20404 on the call, or 21220):
    /// the caller hung up first, which is not a failure.
    #[error("the call has already ended")]
    CallEnded,
    /// Twilio answered with an error.
    #[error("twilio call update: HTTP {status}{}: {message}", code.map(|c| format!(" (error {c})")).unwrap_or_default())]
    Rejected { status: u16, code: Option<u32>, message: String },
    /// Twilio could not be reached.
    #[error("twilio call update: {0}")]
    Unreachable(String),
}

/// What the call loop needs from the telephony provider.
pub trait TelephonyControl: Send + Sync + 'static {
    /// Ends the call (`Status=completed`).
    fn hang_up<'a>(&'a self, call_sid: &'a str) -> BoxFuture<'a, Result<(), TelephonyError>>;
    /// Replaces the call's TwiML (`Twiml=…`), e.g. `<Dial>` for a transfer.
    fn redirect<'a>(&'a self, call_sid: &'a str, twiml: &'a str) -> BoxFuture<'a, Result<(), TelephonyError>>;
    /// Who answered an outbound call placed with answering machine detection
    /// (the call's `answered_by`), once Twilio knows.
    fn answered_by<'a>(&'a self, call_sid: &'a str) -> BoxFuture<'a, Result<Option<String>, TelephonyError>>;
}

pub struct TwilioRest {
    http: reqwest::Client,
    base: String,
    account_sid: String,
    auth_token: SecretString,
}

impl TwilioRest {
    pub fn new(http: reqwest::Client, base: &str, account_sid: &str, auth_token: SecretString) -> Self {
        Self { http, base: base.trim_end_matches('/').to_owned(), account_sid: account_sid.to_owned(), auth_token }
    }

    async fn update(&self, call_sid: &str, form: &[(&str, &str)]) -> Result<(), TelephonyError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Calls/{call_sid}.json", self.base, self.account_sid);
        let body = form_urlencoded(form);
        let response = self
            .http
            .post(&url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| TelephonyError::Unreachable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(rest_error(status.as_u16(), &text))
    }
}

impl TelephonyControl for TwilioRest {
    fn hang_up<'a>(&'a self, call_sid: &'a str) -> BoxFuture<'a, Result<(), TelephonyError>> {
        Box::pin(self.update(call_sid, &[("Status", "completed")]))
    }

    fn redirect<'a>(&'a self, call_sid: &'a str, twiml: &'a str) -> BoxFuture<'a, Result<(), TelephonyError>> {
        Box::pin(async move { self.update(call_sid, &[("Twiml", twiml)]).await })
    }

    fn answered_by<'a>(&'a self, call_sid: &'a str) -> BoxFuture<'a, Result<Option<String>, TelephonyError>> {
        Box::pin(async move {
            let url = format!("{}/2010-04-01/Accounts/{}/Calls/{call_sid}.json", self.base, self.account_sid);
            let response = self
                .http
                .get(&url)
                .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
                .send()
                .await
                .map_err(|e| TelephonyError::Unreachable(e.to_string()))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| TelephonyError::Unreachable(e.to_string()))?;
            if !status.is_success() {
                return Err(rest_error(status.as_u16(), &text));
            }
            #[derive(serde::Deserialize)]
            struct Call {
                answered_by: Option<String>,
            }
            let call: Call = serde_json::from_str(&text)
                .map_err(|e| TelephonyError::Unreachable(format!("Twilio's call could not be read: {e}")))?;
            Ok(call.answered_by.filter(|a| !a.is_empty()))
        })
    }
}

/// Twilio's error body (`{"code": 20404, "message": …, "status": 404}`) as an error.
/// 20404 ("not found") on a call that was live, and 21220 ("call is not in-progress"),
/// mean the call ended before the request.
fn rest_error(status: u16, body: &str) -> TelephonyError {
    #[derive(serde::Deserialize)]
    struct Body {
        code: Option<u32>,
        message: Option<String>,
    }
    let parsed = serde_json::from_str::<Body>(body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    if matches!(code, Some(20404 | 21220)) {
        return TelephonyError::CallEnded;
    }
    let message = parsed.and_then(|b| b.message).unwrap_or_else(|| body.chars().take(300).collect());
    TelephonyError::Rejected { status, code, message }
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_errors_are_told_apart() {
        let ended = r#"{"code": 20404, "message": "The requested resource was not found", "status": 404}"#;
        assert!(matches!(rest_error(404, ended), TelephonyError::CallEnded));
        let busy = r#"{"code": 21220, "message": "Call is not in-progress. Cannot redirect.", "status": 400}"#;
        assert!(matches!(rest_error(400, busy), TelephonyError::CallEnded));
        let auth = r#"{"code": 20003, "message": "Authenticate", "status": 401}"#;
        let e = rest_error(401, auth);
        assert_eq!(e.to_string(), "twilio call update: HTTP 401 (error 20003): Authenticate");
        let e = rest_error(502, "<html>bad gateway</html>");
        assert_eq!(e.to_string(), "twilio call update: HTTP 502: <html>bad gateway</html>");
    }
}
