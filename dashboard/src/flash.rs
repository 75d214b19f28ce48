//! Messages and kept input carried from a form post to the page it redirects to.
//!
//! A server function that cannot save (invalid fields, a version conflict, the API
//! down) stores what was entered and why it failed under a random id, and redirects
//! to the form with `?flash=<id>`; the form renders it back with each error next to
//! its input. Entries belong to the session that made them, expire after
//! [`TTL`], and the store holds at most [`CAPACITY`] (oldest dropped first). They live
//! in this process: behind several replicas, use sticky sessions to keep input across
//! a failed submission (the message is lost otherwise, never the saved data).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_spec::FieldError;
use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;

use crate::form::{AgentForm, KeptSecrets};

pub const TTL: Duration = Duration::from_secs(30 * 60);
pub const CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Success,
    Error,
}

#[derive(Clone, Default)]
pub struct Flash {
    pub notice: Option<(Level, String)>,
    pub form: Option<AgentForm>,
    pub errors: Vec<FieldError>,
    pub secrets: KeptSecrets,
}

impl Flash {
    pub fn success(text: impl Into<String>) -> Self {
        Self { notice: Some((Level::Success, text.into())), ..Self::default() }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self { notice: Some((Level::Error, text.into())), ..Self::default() }
    }
}

struct Entry {
    owner: String,
    created: Instant,
    flash: Flash,
}

#[derive(Clone, Default)]
pub struct FlashStore {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl FlashStore {
    /// Stores `flash` for the session whose CSRF token is `owner`; returns its id.
    pub fn put(&self, owner: &str, flash: Flash) -> String {
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let id = BASE64URL_NOPAD.encode(&raw);
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("flash store lock");
        entries.retain(|_, e| now.duration_since(e.created) < TTL);
        if entries.len() >= CAPACITY {
            if let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| k.clone()) {
                entries.remove(&oldest);
            }
        }
        entries.insert(id.clone(), Entry { owner: owner.to_owned(), created: now, flash });
        id
    }

    /// The flash `id`, if it exists, has not expired and belongs to `owner`.
    pub fn get(&self, owner: &str, id: &str) -> Option<Flash> {
        let entries = self.entries.lock().expect("flash store lock");
        entries.get(id).filter(|e| e.owner == owner && e.created.elapsed() < TTL).map(|e| e.flash.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_is_read_by_its_owner_only() {
        let store = FlashStore::default();
        let id = store.put("owner", Flash::success("saved"));
        assert_eq!(store.get("owner", &id).and_then(|f| f.notice).map(|n| n.1), Some("saved".to_owned()));
        assert!(store.get("someone else", &id).is_none());
        assert!(store.get("owner", "unknown").is_none());
    }
}
