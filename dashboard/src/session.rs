//! Signed-in sessions, held in the browser as one sealed cookie, and the sign-in
//! form's own token.
//!
//! Signing in exchanges the API key for a session token of the API
//! (`POST /v1/sessions`); the cookie carries that token (never the key), the key's
//! id (to show who is signed in), a CSRF token and the expiry, sealed with
//! AES-256-GCM under the dashboard's session key: the browser cannot read or change
//! it. The API keeps the session: signing out ends it there
//! (`DELETE /v1/sessions/current`), so a copy of the cookie authenticates nothing
//! afterwards, and revoking the API key ends its sessions too.
//!
//! Cookies are `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` with the
//! `__Host-` prefix (no `Domain`: the browser binds them to this host, and neither a
//! sibling subdomain nor plain http can set or overwrite them) — except on plain
//! http to a loopback host (local development), where browsers would drop a
//! `Secure` cookie; see [`crate::Dashboard::secure_cookies`].
//!
//! The sign-in form is guarded before any session exists by a signed double-submit
//! token ([`SignInToken`]): rendering the form sets a sealed cookie holding a random
//! nonce and puts the same nonce in the form; a sign-in post must bring both, so a
//! page on another site cannot sign a visitor in to an account of its choosing.
//!
//! Sealed layout (base64url): `[nonce: 12 bytes][ciphertext + 16-byte tag]`, with the
//! cookie's purpose as associated data, so one kind of cookie never opens as the
//! other.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use data_encoding::{BASE64, BASE64URL_NOPAD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// The session cookie's name (with `__Host-` in front when it is `Secure`).
pub const COOKIE: &str = "tempovoice_session";
/// The sign-in form's token cookie's name (likewise).
pub const SIGN_IN_COOKIE: &str = "tempovoice_sign_in";
/// How long a rendered sign-in form can be posted.
pub const SIGN_IN_LIFETIME: time::Duration = time::Duration::hours(2);
const NONCE_LEN: usize = 12;
const SESSION_PURPOSE: &[u8] = b"tempovoice dashboard session";
const SIGN_IN_PURPOSE: &[u8] = b"tempovoice dashboard sign-in";

/// A signed-in tenant.
#[derive(Clone)]
pub struct Session {
    /// The API's session token (`tvs_…`): the credential every API call carries.
    pub token: SecretString,
    /// The id of the API key the session was opened with (shown, not secret).
    pub key_id: String,
    /// Token every form posts back (the double-submit guard against cross-site posts).
    pub csrf: String,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("key_id", &self.key_id).field("expires_at", &self.expires_at).finish()
    }
}

impl Session {
    pub fn new(token: SecretString, key_id: String, expires_at: OffsetDateTime) -> Self {
        Self { token, key_id, csrf: random_token(), expires_at }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        tokens_match(&self.csrf, token)
    }
}

/// The sign-in form's token: a nonce the form carries and its sealed cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInToken {
    pub nonce: String,
    pub expires_at: OffsetDateTime,
}

impl SignInToken {
    pub fn new(now: OffsetDateTime) -> Self {
        // Whole seconds, as the cookie keeps it.
        let expires_at = now + SIGN_IN_LIFETIME;
        let expires_at = expires_at - time::Duration::nanoseconds(i64::from(expires_at.nanosecond()));
        Self { nonce: random_token(), expires_at }
    }

    /// Whether the form's `posted` token is this one (constant time).
    pub fn matches(&self, posted: &str) -> bool {
        tokens_match(&self.nonce, posted)
    }
}

fn random_token() -> String {
    let mut raw = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    BASE64URL_NOPAD.encode(&raw)
}

fn tokens_match(expected: &str, posted: &str) -> bool {
    !posted.is_empty() && bool::from(expected.as_bytes().ct_eq(posted.as_bytes()))
}

#[derive(Serialize, Deserialize)]
struct SealedSession {
    /// The API session token.
    t: String,
    /// The API key id.
    i: String,
    c: String,
    /// Unix seconds.
    e: i64,
}

#[derive(Serialize, Deserialize)]
struct SealedSignIn {
    n: String,
    e: i64,
}

/// The key sessions are sealed with.
#[derive(Clone)]
pub struct SessionKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(AES-256-GCM, redacted)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the session key must be base64 of 32 bytes")]
pub struct BadSessionKey;

impl SessionKey {
    /// A random key: sessions end when the process does.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { cipher: Aes256Gcm::new_from_slice(&key).expect("32-byte key") }
    }

    /// A base64-encoded 32-byte key (shared by replicas, kept across restarts).
    pub fn from_base64(raw: &SecretString) -> Result<Self, BadSessionKey> {
        let bytes = BASE64.decode(raw.expose_secret().trim().as_bytes()).map_err(|_| BadSessionKey)?;
        Aes256Gcm::new_from_slice(&bytes).map(|cipher| Self { cipher }).map_err(|_| BadSessionKey)
    }

    fn seal_value(&self, purpose: &[u8], value: &impl Serialize) -> String {
        let plain = serde_json::to_vec(value).expect("a sealed value serializes");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: purpose })
            .expect("AES-GCM seals");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        BASE64URL_NOPAD.encode(&out)
    }

    fn open_value<T: DeserializeOwned>(&self, purpose: &[u8], value: &str) -> Option<T> {
        let raw = BASE64URL_NOPAD.decode(value.as_bytes()).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: purpose }).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    pub fn seal(&self, session: &Session) -> String {
        self.seal_value(
            SESSION_PURPOSE,
            &SealedSession {
                t: session.token.expose_secret().to_owned(),
                i: session.key_id.clone(),
                c: session.csrf.clone(),
                e: session.expires_at.unix_timestamp(),
            },
        )
    }

    /// The session in `value`, unless it was tampered with, sealed under another key
    /// or for another purpose, or has expired. (Whether the API still honours its
    /// token is the API's to say, at the next call.)
    pub fn open(&self, value: &str, now: OffsetDateTime) -> Option<Session> {
        let s: SealedSession = self.open_value(SESSION_PURPOSE, value)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(s.e).ok()?;
        (expires_at > now).then(|| Session { token: SecretString::from(s.t), key_id: s.i, csrf: s.c, expires_at })
    }

    pub fn seal_sign_in(&self, token: &SignInToken) -> String {
        self.seal_value(SIGN_IN_PURPOSE, &SealedSignIn { n: token.nonce.clone(), e: token.expires_at.unix_timestamp() })
    }

    /// The sign-in token in `value`, unless tampered with or expired.
    pub fn open_sign_in(&self, value: &str, now: OffsetDateTime) -> Option<SignInToken> {
        let s: SealedSignIn = self.open_value(SIGN_IN_PURPOSE, value)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(s.e).ok()?;
        (expires_at > now).then_some(SignInToken { nonce: s.n, expires_at })
    }
}

/// A cookie's name as set: `__Host-{name}` when `secure`.
pub fn cookie_name(name: &str, secure: bool) -> String {
    if secure { format!("__Host-{name}") } else { name.to_owned() }
}

/// The `Set-Cookie` value that stores `value` under `name` for `max_age`:
/// `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`, and with `secure` the
/// `__Host-` prefix and `Secure`.
pub fn set_cookie(name: &str, value: &str, max_age: time::Duration, secure: bool) -> String {
    let max_age = max_age.whole_seconds().max(0);
    let name = cookie_name(name, secure);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that removes the cookie `name`.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", time::Duration::ZERO, secure)
}

/// The value of the cookie `name` as set with `secure` (so with the `__Host-`
/// prefix when secure: a cookie without it, which a sibling host or plain http
/// could have planted, is not read).
pub fn cookie_value<'h>(headers: &'h axum::http::HeaderMap, name: &str, secure: bool) -> Option<&'h str> {
    let name = cookie_name(name, secure);
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(
            SecretString::from("tvs_sessiontokensessiontoken"),
            "abc123".into(),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_only() {
        let key = SessionKey::generate();
        let s = session();
        let sealed = key.seal(&s);
        assert!(!sealed.contains("sessiontoken"));
        let opened = key.open(&sealed, OffsetDateTime::now_utc()).expect("opens");
        assert_eq!(opened.token.expose_secret(), "tvs_sessiontokensessiontoken");
        assert_eq!(opened.csrf, s.csrf);
        assert_eq!(opened.key_id(), "abc123");
        assert!(SessionKey::generate().open(&sealed, OffsetDateTime::now_utc()).is_none());
    }

    #[test]
    fn expired_or_tampered_sessions_do_not_open() {
        let key = SessionKey::generate();
        let sealed = key.seal(&session());
        assert!(key.open(&sealed, OffsetDateTime::now_utc() + time::Duration::hours(2)).is_none());
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(key.open(std::str::from_utf8(&bytes).unwrap(), OffsetDateTime::now_utc()).is_none());
        assert!(key.open("", OffsetDateTime::now_utc()).is_none());
    }

    #[test]
    fn a_sign_in_cookie_is_no_session_and_a_session_cookie_no_sign_in_token() {
        let key = SessionKey::generate();
        let now = OffsetDateTime::now_utc();
        let token = SignInToken::new(now);
        let sealed = key.seal_sign_in(&token);
        assert_eq!(key.open_sign_in(&sealed, now), Some(token.clone()));
        assert!(key.open(&sealed, now).is_none(), "a sign-in cookie does not open as a session");
        assert!(key.open_sign_in(&key.seal(&session()), now).is_none(), "nor a session as a sign-in token");
        assert!(key.open_sign_in(&sealed, now + SIGN_IN_LIFETIME).is_none(), "expired");
        assert!(SessionKey::generate().open_sign_in(&sealed, now).is_none(), "another key");
        assert!(token.matches(&token.nonce.clone()) && !token.matches("") && !token.matches("x"));
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let s = session();
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches("x"));
    }

    #[test]
    fn secure_cookies_carry_the_host_prefix_and_are_read_by_it_only() {
        let set = set_cookie(COOKIE, "xyz", time::Duration::hours(1), true);
        assert_eq!(set, "__Host-tempovoice_session=xyz; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure");
        assert!(!set.contains("Domain"));
        let plain = set_cookie(COOKIE, "xyz", time::Duration::hours(1), false);
        assert_eq!(plain, "tempovoice_session=xyz; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600");
        assert!(
            clear_cookie(COOKIE, true).starts_with("__Host-tempovoice_session=; ")
                && clear_cookie(COOKIE, true).contains("Max-Age=0")
        );

        let mut headers = axum::http::HeaderMap::new();
        headers.insert(axum::http::header::COOKIE, "a=1; tempovoice_session=planted; b=2".parse().unwrap());
        assert_eq!(cookie_value(&headers, COOKIE, false), Some("planted"));
        assert_eq!(cookie_value(&headers, COOKIE, true), None, "an unprefixed cookie is not read over https");
        headers.insert(axum::http::header::COOKIE, "__Host-tempovoice_session=real".parse().unwrap());
        assert_eq!(cookie_value(&headers, COOKIE, true), Some("real"));
    }
}
