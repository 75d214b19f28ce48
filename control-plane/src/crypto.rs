//! Encryption of agent secrets at rest: AES-256-GCM with a random 96-bit nonce per
//! write, and the (tenant, agent) pair as associated data, so a sealed value copied
//! onto another agent's row fails to open.
//!
//! Sealed layout: `[format = 1][nonce: 12 bytes][ciphertext + 16-byte tag]`.
//!
//! The key comes from `TEMPOVOICE_SECRETS_KEY` (base64 of 32 bytes). For local runs
//! on SQLite without it, a key is generated once into `{data dir}/secrets.key`
//! (mode 0600); a PostgreSQL deployment must set the variable, since replicas have
//! to share one key.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use agent_spec::{AgentId, AgentSecrets, TenantId};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

const FORMAT: u8 = 1;
const NONCE_LEN: usize = 12;
pub const KEY_FILE: &str = "secrets.key";

#[derive(Clone)]
pub struct SecretsCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretsCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsCipher(AES-256-GCM, key redacted)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed secrets are malformed or were sealed for another agent or with another key")]
    Open,
}

/// The plaintext form, serialized from borrowed secrets into a zeroized buffer.
#[derive(Serialize)]
struct PlainRef<'a> {
    twilio_auth_token: &'a str,
    openai_api_key: Option<&'a str>,
    webhook_signing_secret: Option<&'a str>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    webhook_urls: std::collections::BTreeMap<&'a str, &'a str>,
}

/// The plaintext form when opening; its strings move straight into `SecretString`s.
#[derive(Deserialize)]
struct Plain {
    twilio_auth_token: String,
    openai_api_key: Option<String>,
    webhook_signing_secret: Option<String>,
    /// Absent in secrets sealed before webhook URLs could be secrets.
    #[serde(default)]
    webhook_urls: std::collections::BTreeMap<String, String>,
}

impl SecretsCipher {
    /// Parses a base64-encoded 32-byte key.
    pub fn from_base64(key: &SecretString) -> anyhow::Result<Self> {
        let bytes =
            Zeroizing::new(BASE64.decode(key.expose_secret().trim()).context("TEMPOVOICE_SECRETS_KEY must be base64")?);
        anyhow::ensure!(bytes.len() == 32, "TEMPOVOICE_SECRETS_KEY must decode to 32 bytes");
        let cipher = Aes256Gcm::new_from_slice(&bytes).expect("32-byte key");
        Ok(Self { cipher })
    }

    /// Reads `{dir}/secrets.key`, generating it (mode 0600) on first use.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("create data directory {}", dir.display()))?;
            let mut key = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(key.as_mut());
            let encoded = Zeroizing::new(BASE64.encode(key.as_ref()));
            match write_private(&path, encoded.as_bytes()) {
                Ok(()) => tracing::info!(path = %path.display(), "generated a new secrets encryption key"),
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("write {}", path.display())),
            }
        }
        let encoded =
            Zeroizing::new(std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?);
        Self::from_base64(&SecretString::from(encoded.trim().to_owned()))
    }

    pub fn seal(&self, tenant: &TenantId, agent: &AgentId, secrets: &AgentSecrets) -> Vec<u8> {
        let plain = PlainRef {
            twilio_auth_token: secrets.twilio_auth_token.expose_secret(),
            openai_api_key: secrets.openai_api_key.as_ref().map(|s| s.expose_secret()),
            webhook_signing_secret: secrets.webhook_signing_secret.as_ref().map(|s| s.expose_secret()),
            webhook_urls: secrets.webhook_urls.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect(),
        };
        let json = Zeroizing::new(serde_json::to_vec(&plain).expect("secrets serialize"));
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(tenant, agent);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &json, aad: aad.as_bytes() })
            .expect("AES-GCM encryption of a short message cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, tenant: &TenantId, agent: &AgentId, sealed: &[u8]) -> Result<AgentSecrets, CryptoError> {
        let (&format, rest) = sealed.split_first().ok_or(CryptoError::Open)?;
        if format != FORMAT || rest.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = associated_data(tenant, agent);
        let json = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
                .map_err(|_| CryptoError::Open)?,
        );
        let plain: Plain = serde_json::from_slice(&json).map_err(|_| CryptoError::Open)?;
        Ok(AgentSecrets {
            twilio_auth_token: SecretString::from(plain.twilio_auth_token),
            openai_api_key: plain.openai_api_key.map(SecretString::from),
            webhook_signing_secret: plain.webhook_signing_secret.map(SecretString::from),
            webhook_urls: plain.webhook_urls.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect(),
        })
    }
}

fn associated_data(tenant: &TenantId, agent: &AgentId) -> String {
    format!("tempovoice/agent-secrets/v1/{tenant}/{agent}")
}

/// Creates `path` with `bytes`, readable by the owner only, atomically: the bytes are
/// written to a temporary file that is then hard-linked into place, so a concurrent
/// reader never sees a partial key. Fails with `AlreadyExists` if `path` exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", rand::random::<u64>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> AgentSecrets {
        AgentSecrets {
            twilio_auth_token: SecretString::from("0123456789abcdef0123456789abcdef"),
            openai_api_key: None,
            webhook_signing_secret: Some(SecretString::from("w".repeat(40))),
            webhook_urls: [(
                "integrations.make_endpoint".to_owned(),
                SecretString::from("https://hook.eu1.make.com/key"),
            )]
            .into(),
        }
    }

    #[test]
    fn seal_open_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let cipher = SecretsCipher::load_or_generate(dir.path()).unwrap();
        let (t, a) = (TenantId::generate(), AgentId::generate());
        let sealed = cipher.seal(&t, &a, &secrets());
        assert!(!sealed.windows(8).any(|w| w == b"01234567"), "plaintext visible");
        assert!(cipher.open(&t, &a, &sealed).unwrap().same_values(&secrets()));
        // Bound to its row: another agent or tenant cannot open it.
        assert!(cipher.open(&t, &AgentId::generate(), &sealed).is_err());
        assert!(cipher.open(&TenantId::generate(), &a, &sealed).is_err());
        // Tampering is detected.
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(cipher.open(&t, &a, &bad).is_err());
        // The same key is read back from the file.
        let again = SecretsCipher::load_or_generate(dir.path()).unwrap();
        assert!(again.open(&t, &a, &sealed).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(SecretsCipher::from_base64(&SecretString::from("not base64!")).is_err());
        assert!(SecretsCipher::from_base64(&SecretString::from(BASE64.encode([0u8; 16]))).is_err());
    }
}
