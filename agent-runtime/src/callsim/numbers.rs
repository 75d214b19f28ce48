//! The simulated Twilio's phone numbers: accounts with their auth tokens, and each
//! account's numbers with their voice routing, behind Twilio's IncomingPhoneNumbers
//! API (list filtered by `PhoneNumber`, fetch, update). As Twilio does, a request
//! must carry the account's SID and auth token as basic auth (401, error 20003,
//! otherwise), a number of another account is not found (404, error 20404), and an
//! update answers with the number as it now is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::twilio_error;
use serde_json::{Value, json};

/// A number of one of the simulated accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimNumber {
    pub account_sid: String,
    /// `PN…`.
    pub sid: String,
    pub phone_number: String,
    pub voice_url: String,
    pub voice_method: String,
    pub voice_application_sid: String,
    pub status_callback: String,
    pub status_callback_method: String,
    /// An Elastic SIP trunk that routes the number instead of its voice URL.
    pub trunk_sid: String,
}

impl SimNumber {
    fn json(&self) -> Value {
        let or_null = |s: &str| if s.is_empty() { Value::Null } else { Value::String(s.to_owned()) };
        json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "phone_number": self.phone_number,
            "friendly_name": self.phone_number,
            "voice_url": or_null(&self.voice_url),
            "voice_method": self.voice_method,
            "voice_application_sid": or_null(&self.voice_application_sid),
            "status_callback": self.status_callback,
            "status_callback_method": self.status_callback_method,
            "trunk_sid": or_null(&self.trunk_sid),
            "capabilities": {"voice": true, "sms": true, "mms": false, "fax": false},
            "api_version": "2010-04-01",
            "uri": format!("/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}.json", self.account_sid, self.sid),
        })
    }
}

/// A request to the numbers API, as received.
#[derive(Debug, Clone)]
pub struct NumberRequest {
    pub method: String,
    pub account_sid: String,
    /// The number's sid, for a fetch or an update.
    pub number_sid: Option<String>,
    /// The query (list) or form (update).
    pub params: Vec<(String, String)>,
    pub authorized: bool,
}

impl NumberRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub(super) struct Numbers {
    /// Account SID → auth token.
    accounts: Mutex<HashMap<String, String>>,
    numbers: Mutex<Vec<SimNumber>>,
    requests: Mutex<Vec<NumberRequest>>,
    /// Statuses to answer the next requests with instead of serving them (faults).
    faults: Mutex<Vec<u16>>,
}

impl Numbers {
    pub(super) fn add_account(&self, sid: &str, token: &str) {
        self.accounts.lock().expect("sim lock").insert(sid.to_owned(), token.to_owned());
    }

    pub(super) fn add_number(&self, account_sid: &str, phone_number: &str, voice_url: &str) -> String {
        let sid = format!("PN{}", super::random_hex(32));
        self.numbers.lock().expect("sim lock").push(SimNumber {
            account_sid: account_sid.to_owned(),
            sid: sid.clone(),
            phone_number: phone_number.to_owned(),
            voice_url: voice_url.to_owned(),
            voice_method: "POST".into(),
            voice_application_sid: String::new(),
            status_callback: String::new(),
            status_callback_method: "POST".into(),
            trunk_sid: String::new(),
        });
        sid
    }

    pub(super) fn number(&self, phone_number: &str) -> Option<SimNumber> {
        self.numbers.lock().expect("sim lock").iter().find(|n| n.phone_number == phone_number).cloned()
    }

    pub(super) fn edit(&self, phone_number: &str, change: impl FnOnce(&mut SimNumber)) -> bool {
        let mut numbers = self.numbers.lock().expect("sim lock");
        match numbers.iter_mut().find(|n| n.phone_number == phone_number) {
            Some(n) => {
                change(n);
                true
            }
            None => false,
        }
    }

    pub(super) fn requests(&self) -> Vec<NumberRequest> {
        self.requests.lock().expect("sim lock").clone()
    }

    pub(super) fn fail_next(&self, statuses: &[u16]) {
        self.faults.lock().expect("sim lock").extend_from_slice(statuses);
    }

    /// The auth token of `account`, if the simulator knows the account.
    pub(super) fn token(&self, account: &str) -> Option<String> {
        self.accounts.lock().expect("sim lock").get(account).cloned()
    }

    /// Whether `account` owns `phone_number`.
    pub(super) fn owns(&self, account: &str, phone_number: &str) -> bool {
        self.numbers
            .lock()
            .expect("sim lock")
            .iter()
            .any(|n| n.account_sid == account && n.phone_number == phone_number)
    }

    /// Whether basic auth carries `account`'s SID and auth token.
    pub(super) fn authorized(&self, account: &str, headers: &HeaderMap) -> bool {
        let Some(token) = self.accounts.lock().expect("sim lock").get(account).cloned() else { return false };
        let expected =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{account}:{token}")));
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
    }
}

/// Records the request and answers what must come before serving it: an injected
/// fault, or 401.
fn admit(
    numbers: &Numbers,
    method: &Method,
    account: &str,
    number_sid: Option<&str>,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Option<Response> {
    let authorized = numbers.authorized(account, headers);
    numbers.requests.lock().expect("sim lock").push(NumberRequest {
        method: method.to_string(),
        account_sid: account.to_owned(),
        number_sid: number_sid.map(str::to_owned),
        params,
        authorized,
    });
    let fault = {
        let mut faults = numbers.faults.lock().expect("sim lock");
        (!faults.is_empty()).then(|| faults.remove(0))
    };
    if let Some(status) = fault {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(twilio_error(status, 20500, "Internal Server Error"));
    }
    (!authorized).then(|| twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"))
}

pub(super) async fn list(
    State(numbers): State<Arc<Numbers>>,
    Path(account): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = admit(&numbers, &Method::GET, &account, None, query.clone(), &headers) {
        return refused;
    }
    let wanted = query.iter().find(|(k, _)| k == "PhoneNumber").map(|(_, v)| v.as_str());
    let found: Vec<Value> = numbers
        .numbers
        .lock()
        .expect("sim lock")
        .iter()
        .filter(|n| n.account_sid == account && wanted.is_none_or(|w| n.phone_number.contains(w)))
        .map(SimNumber::json)
        .collect();
    axum::Json(json!({
        "incoming_phone_numbers": found,
        "page": 0,
        "page_size": 50,
        "next_page_uri": null,
        "uri": format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json"),
    }))
    .into_response()
}

pub(super) async fn one(
    State(numbers): State<Arc<Numbers>>,
    Path((account, sid)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sid = sid.strip_suffix(".json").unwrap_or(&sid).to_owned();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if let Some(refused) = admit(&numbers, &method, &account, Some(&sid), form.clone(), &headers) {
        return refused;
    }
    let mut all = numbers.numbers.lock().expect("sim lock");
    let Some(number) = all.iter_mut().find(|n| n.sid == sid && n.account_sid == account) else {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    if method == Method::POST {
        for (key, value) in &form {
            let field = match key.as_str() {
                "VoiceUrl" => &mut number.voice_url,
                "VoiceMethod" => &mut number.voice_method,
                "VoiceApplicationSid" => &mut number.voice_application_sid,
                "StatusCallback" => &mut number.status_callback,
                "StatusCallbackMethod" => &mut number.status_callback_method,
                "TrunkSid" => &mut number.trunk_sid,
                _ => continue,
            };
            if key.ends_with("Method") && !matches!(value.as_str(), "GET" | "POST") {
                return twilio_error(StatusCode::BAD_REQUEST, 21218, "Invalid method");
            }
            *field = value.clone();
        }
    }
    axum::Json(number.json()).into_response()
}
