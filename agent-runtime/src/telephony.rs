//! Call control through the Twilio REST API: hang up, and redirect the live call to
//! new TwiML (a transfer). The API base URL is a setting, so a local Twilio (the call
//! simulator) can take these requests.

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

/// What the call loop needs from the telephony provider.
pub trait TelephonyControl: Send + Sync + 'static {
    /// Ends the call (`Status=completed`).
    fn hang_up<'a>(&'a self, call_sid: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Replaces the call's TwiML (`Twiml=…`), e.g. `<Dial>` for a transfer.
    fn redirect<'a>(&'a self, call_sid: &'a str, twiml: &'a str) -> BoxFuture<'a, Result<(), String>>;
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

    async fn update(&self, call_sid: &str, form: &[(&str, &str)]) -> Result<(), String> {
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
            .map_err(|e| format!("twilio call update: {e}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(format!("twilio call update: HTTP {status}: {}", text.chars().take(300).collect::<String>()))
        }
    }
}

impl TelephonyControl for TwilioRest {
    fn hang_up<'a>(&'a self, call_sid: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.update(call_sid, &[("Status", "completed")]))
    }

    fn redirect<'a>(&'a self, call_sid: &'a str, twiml: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.update(call_sid, &[("Twiml", twiml)]).await })
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}
