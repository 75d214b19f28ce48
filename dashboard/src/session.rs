//! Signed-in sessions, held in the browser as one sealed cookie.
//!
//! The cookie carries the tenant's API key, a CSRF token and an expiry, sealed with
//! AES-256-GCM under the dashboard's session key: the browser cannot read or change
//! it, and it is `HttpOnly`, `SameSite=Lax`, and `Secure` when the dashboard is served
//! over https. Nothing is stored server-side, so any dashboard replica holding the
//! same key serves any session; revoking the API key ends its sessions at their next
//! request, since every page calls the API with it.
//!
//! Sealed layout (base64url): `[nonce: 12 bytes][ciphertext + 16-byte tag]`.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use data_encoding::{BASE64, BASE64URL_NOPAD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

pub const COOKIE: &str = "tempovoice_session";
const NONCE_LEN: usize = 12;

/// A signed-in tenant.
#[derive(Clone)]
pub struct Session {
    pub api_key: SecretString,
    /// Token every form posts back (the double-submit guard against cross-site posts).
    pub csrf: String,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("key_id", &self.key_id()).field("expires_at", &self.expires_at).finish()
    }
}

impl Session {
    pub fn new(api_key: SecretString, lifetime: time::Duration) -> Self {
        let mut csrf = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut csrf);
        Self { api_key, csrf: BASE64URL_NOPAD.encode(&csrf), expires_at: OffsetDateTime::now_utc() + lifetime }
    }

    /// The public part of the API key (`tvk_{key id}_…`), to show who is signed in.
    pub fn key_id(&self) -> &str {
        let key = self.api_key.expose_secret();
        key.strip_prefix("tvk_").and_then(|rest| rest.split('_').next()).unwrap_or("key")
    }

    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        !token.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    k: String,
    c: String,
    /// Unix seconds.
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

    pub fn seal(&self, session: &Session) -> String {
        let plain = serde_json::to_vec(&Sealed {
            k: session.api_key.expose_secret().to_owned(),
            c: session.csrf.clone(),
            e: session.expires_at.unix_timestamp(),
        })
        .expect("a session serializes");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), plain.as_slice()).expect("AES-GCM seals");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        BASE64URL_NOPAD.encode(&out)
    }

    /// The session in `value`, unless it was tampered with, sealed under another key,
    /// or has expired.
    pub fn open(&self, value: &str, now: OffsetDateTime) -> Option<Session> {
        let raw = BASE64URL_NOPAD.decode(value.as_bytes()).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), sealed).ok()?;
        let s: Sealed = serde_json::from_slice(&plain).ok()?;
        let expires_at = OffsetDateTime::from_unix_timestamp(s.e).ok()?;
        (expires_at > now).then(|| Session { api_key: SecretString::from(s.k), csrf: s.c, expires_at })
    }
}

/// The `Set-Cookie` value that stores `sealed` for `lifetime` (the session's, which
/// also expires inside the seal).
pub fn set_cookie(sealed: &str, lifetime: time::Duration, secure: bool) -> String {
    let max_age = lifetime.whole_seconds().max(0);
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={sealed}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that removes the session.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
}

/// The session cookie's value among the request's `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(SecretString::from("tvk_abc123_secretsecret"), time::Duration::hours(1))
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_only() {
        let key = SessionKey::generate();
        let s = session();
        let sealed = key.seal(&s);
        assert!(!sealed.contains("secretsecret"));
        let opened = key.open(&sealed, OffsetDateTime::now_utc()).expect("opens");
        assert_eq!(opened.api_key.expose_secret(), "tvk_abc123_secretsecret");
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
    fn csrf_tokens_compare_exactly() {
        let s = session();
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches("x"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(axum::http::header::COOKIE, "a=1; tempovoice_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie_value(&headers), Some("xyz"));
    }
}
