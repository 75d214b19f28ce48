//! Messages and kept input carried from a form post to the page it redirects to.
//!
//! A server function that cannot save (invalid fields, a version conflict, the API
//! down) stores what was entered and why it failed under a random id, and redirects
//! to the form with `?flash=<id>`; the form renders it back with each error next to
//! its input. Entries belong to the session that made them and expire after [`TTL`].
//! They live in this process: behind several replicas, use sticky sessions to keep
//! input across a failed submission (the message is lost otherwise, never the saved
//! data).
//!
//! The store is bounded in memory, counted in bytes as well as entries. Each entry
//! is accounted its strings' lengths plus a fixed overhead per string and per entry
//! ([`Flash::accounted_bytes`]), and the store holds at most:
//!
//! - [`MAX_ENTRY_BYTES`] per entry — above every form the dashboard accepts
//!   ([`crate::MAX_POST_BYTES`]); a larger one keeps its message and errors but not
//!   the entered values, and says so;
//! - [`MAX_SESSION_ENTRIES`] entries and [`MAX_SESSION_BYTES`] per session, the
//!   session's oldest dropped first, so one session cannot push out the others;
//! - [`CAPACITY`] entries and [`MAX_TOTAL_BYTES`] in all, the oldest dropped first.
//!
//! So the store never accounts more than [`MAX_TOTAL_BYTES`], whatever is posted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_spec::FieldError;
use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;
use secrecy::ExposeSecret;

use crate::form::{AgentForm, KeptSecrets};

pub const TTL: Duration = Duration::from_secs(30 * 60);
/// Entries held at most.
pub const CAPACITY: usize = 10_000;
/// Bytes held at most, all entries together.
pub const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;
/// Bytes one entry may hold: a form of the largest accepted post, its errors and message.
pub const MAX_ENTRY_BYTES: usize = crate::MAX_POST_BYTES + 128 * 1024;
/// Entries one session holds at most.
pub const MAX_SESSION_ENTRIES: usize = 32;
/// Bytes one session's entries hold at most.
pub const MAX_SESSION_BYTES: usize = 4 * MAX_ENTRY_BYTES;

/// Accounted for every entry besides its strings: the entry, its id and owner, the
/// map and queue slots that index it.
const ENTRY_OVERHEAD: usize = 512;
/// Accounted for every string besides its bytes.
const STRING_OVERHEAD: usize = std::mem::size_of::<String>();

const INPUT_NOT_KEPT: &str =
    "Your input was too large to keep, so it is not shown again. Nothing was saved: enter it again, shorter.";

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

    /// What this flash is accounted in the store: every string's length plus a
    /// fixed overhead per string, and [`ENTRY_OVERHEAD`].
    pub fn accounted_bytes(&self) -> usize {
        let text = |s: &str| s.len() + STRING_OVERHEAD;
        let notice = self.notice.as_ref().map_or(0, |(_, t)| text(t));
        let errors: usize = self.errors.iter().map(|e| text(&e.field) + text(&e.reason)).sum();
        let secrets: usize =
            [&self.secrets.twilio_auth_token, &self.secrets.openai_api_key, &self.secrets.webhook_signing_secret]
                .into_iter()
                .flatten()
                .map(|s| text(s.expose_secret()))
                .sum();
        let form = self.form.as_ref().map_or(0, AgentForm::accounted_bytes);
        ENTRY_OVERHEAD + notice + errors + secrets + form
    }

    /// This flash within [`MAX_ENTRY_BYTES`]: the entered values are dropped from one
    /// too large to keep (with a message saying so), never the message or errors.
    fn within_entry_limit(mut self) -> Self {
        if self.accounted_bytes() <= MAX_ENTRY_BYTES {
            return self;
        }
        self.form = None;
        self.secrets = KeptSecrets::default();
        let text = match self.notice.take() {
            Some((_, text)) => format!("{text} {INPUT_NOT_KEPT}"),
            None => INPUT_NOT_KEPT.to_owned(),
        };
        self.notice = Some((Level::Error, text));
        // Errors name fields and reasons the API and the form give: short. Should
        // they not be, keep the first ones that fit.
        while self.accounted_bytes() > MAX_ENTRY_BYTES && self.errors.pop().is_some() {}
        self
    }
}

struct Entry {
    owner: String,
    created: Instant,
    seq: u64,
    bytes: usize,
    flash: Flash,
}

/// One session's entries, oldest first.
#[derive(Default)]
struct Owned {
    ids: VecDeque<(u64, String)>,
    bytes: usize,
}

#[derive(Default)]
struct Entries {
    by_id: HashMap<String, Entry>,
    /// Every entry by age: insertion order is creation order.
    by_age: BTreeMap<u64, String>,
    by_owner: HashMap<String, Owned>,
    bytes: usize,
    next_seq: u64,
}

impl Entries {
    fn remove(&mut self, id: &str) {
        let Some(entry) = self.by_id.remove(id) else { return };
        self.by_age.remove(&entry.seq);
        self.bytes -= entry.bytes;
        if let Some(owned) = self.by_owner.get_mut(&entry.owner) {
            owned.ids.retain(|(seq, _)| *seq != entry.seq);
            owned.bytes -= entry.bytes;
            if owned.ids.is_empty() {
                self.by_owner.remove(&entry.owner);
            }
        }
    }

    fn remove_oldest(&mut self) -> bool {
        match self.by_age.first_key_value().map(|(_, id)| id.clone()) {
            Some(id) => {
                self.remove(&id);
                true
            }
            None => false,
        }
    }

    fn remove_expired(&mut self, now: Instant) {
        while let Some(id) = self.by_age.first_key_value().map(|(_, id)| id.clone()) {
            let expired = self.by_id.get(&id).is_none_or(|e| now.duration_since(e.created) >= TTL);
            if !expired {
                return;
            }
            self.remove(&id);
        }
    }

    /// Drops `owner`'s oldest entries until one more of `bytes` fits its share.
    fn make_room_for(&mut self, owner: &str, bytes: usize) {
        loop {
            let oldest = match self.by_owner.get(owner) {
                Some(owned) if owned.ids.len() >= MAX_SESSION_ENTRIES || owned.bytes + bytes > MAX_SESSION_BYTES => {
                    owned.ids.front().map(|(_, id)| id.clone())
                }
                _ => None,
            };
            match oldest {
                Some(id) => self.remove(&id),
                None => break,
            }
        }
        while (self.by_id.len() >= CAPACITY || self.bytes + bytes > MAX_TOTAL_BYTES) && self.remove_oldest() {}
    }
}

/// What the store holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub entries: usize,
    pub bytes: usize,
    pub sessions: usize,
}

#[derive(Clone, Default)]
pub struct FlashStore {
    entries: Arc<Mutex<Entries>>,
}

impl FlashStore {
    /// Stores `flash` for the session whose CSRF token is `owner`; returns its id.
    pub fn put(&self, owner: &str, flash: Flash) -> String {
        self.put_at(owner, flash, Instant::now())
    }

    fn put_at(&self, owner: &str, flash: Flash, now: Instant) -> String {
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let id = BASE64URL_NOPAD.encode(&raw);
        let flash = flash.within_entry_limit();
        let bytes = flash.accounted_bytes() + owner.len();
        let mut entries = self.entries.lock().expect("flash store lock");
        entries.remove_expired(now);
        entries.make_room_for(owner, bytes);
        let seq = entries.next_seq;
        entries.next_seq += 1;
        entries.by_age.insert(seq, id.clone());
        let owned = entries.by_owner.entry(owner.to_owned()).or_default();
        owned.ids.push_back((seq, id.clone()));
        owned.bytes += bytes;
        entries.bytes += bytes;
        entries.by_id.insert(id.clone(), Entry { owner: owner.to_owned(), created: now, seq, bytes, flash });
        id
    }

    /// The flash `id`, if it exists, has not expired and belongs to `owner`.
    pub fn get(&self, owner: &str, id: &str) -> Option<Flash> {
        let entries = self.entries.lock().expect("flash store lock");
        entries.by_id.get(id).filter(|e| e.owner == owner && e.created.elapsed() < TTL).map(|e| e.flash.clone())
    }

    /// Entries, accounted bytes and sessions held now.
    pub fn usage(&self) -> Usage {
        let entries = self.entries.lock().expect("flash store lock");
        Usage { entries: entries.by_id.len(), bytes: entries.bytes, sessions: entries.by_owner.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn large_form(bytes: usize) -> Flash {
        let form = AgentForm { system_prompt: "p".repeat(bytes), ..AgentForm::new_agent() };
        Flash {
            notice: None,
            form: Some(form),
            errors: vec![FieldError { field: "name".into(), reason: "is required".into() }],
            secrets: KeptSecrets::default(),
        }
    }

    #[test]
    fn a_flash_is_read_by_its_owner_only() {
        let store = FlashStore::default();
        let id = store.put("owner", Flash::success("saved"));
        assert_eq!(store.get("owner", &id).and_then(|f| f.notice).map(|n| n.1), Some("saved".to_owned()));
        assert!(store.get("someone else", &id).is_none());
        assert!(store.get("owner", "unknown").is_none());
    }

    #[test]
    fn ten_thousand_large_posts_stay_within_the_bounds() {
        let store = FlashStore::default();
        let t0 = Instant::now();
        let big = large_form(crate::MAX_POST_BYTES - 4096);
        let mut last = Vec::new();
        for i in 0..10_000usize {
            // 500 sessions, 20 posts each, interleaved.
            let owner = format!("session-{}", i % 500);
            let id = store.put_at(&owner, big.clone(), t0 + Duration::from_millis(i as u64));
            let usage = store.usage();
            assert!(usage.bytes <= MAX_TOTAL_BYTES, "post {i}: {usage:?}");
            assert!(usage.entries <= CAPACITY);
            if i >= 10_000 - 3 {
                last.push((owner, id));
            }
        }
        // The newest are kept and readable.
        for (owner, id) in last {
            let kept = store.get(&owner, &id).expect("the newest entries are kept");
            assert_eq!(kept.form.map(|f| f.system_prompt.len()), Some(crate::MAX_POST_BYTES - 4096));
        }
        let usage = store.usage();
        assert!(usage.bytes > MAX_TOTAL_BYTES - MAX_ENTRY_BYTES, "the store fills up to its bound: {usage:?}");
    }

    #[test]
    fn one_session_cannot_take_more_than_its_share() {
        let store = FlashStore::default();
        let t0 = Instant::now();
        let other = store.put_at("someone", Flash::error("kept"), t0);
        let big = large_form(crate::MAX_POST_BYTES - 4096);
        for i in 0..10_000u64 {
            store.put_at("attacker", big.clone(), t0 + Duration::from_millis(i));
            let usage = store.usage();
            assert!(usage.bytes <= MAX_SESSION_BYTES + 4096, "post {i}: {usage:?}");
        }
        let small = Flash::error("x");
        for i in 0..100u64 {
            store.put_at("chatty", small.clone(), t0 + Duration::from_secs(20 + i));
        }
        assert!(store.usage().entries <= 1 + MAX_SESSION_ENTRIES * 2, "{:?}", store.usage());
        assert!(store.get("someone", &other).is_some(), "another session's entry is untouched");
    }

    #[test]
    fn an_oversized_entry_keeps_its_message_and_errors_but_not_the_input() {
        let store = FlashStore::default();
        let id = store.put("owner", large_form(MAX_ENTRY_BYTES));
        let kept = store.get("owner", &id).expect("stored");
        assert!(kept.form.is_none());
        assert_eq!(kept.errors.len(), 1, "the errors are kept");
        let (level, text) = kept.notice.expect("a message");
        assert_eq!(level, Level::Error);
        assert!(text.contains("too large to keep"), "{text}");
        assert!(store.usage().bytes <= MAX_ENTRY_BYTES);
    }

    #[test]
    fn expired_entries_are_dropped_and_their_bytes_released() {
        let store = FlashStore::default();
        let t0 = Instant::now();
        store.put_at("a", large_form(100_000), t0);
        assert!(store.usage().bytes > 100_000);
        store.put_at("b", Flash::error("x"), t0 + TTL);
        let usage = store.usage();
        assert_eq!((usage.entries, usage.sessions), (1, 1));
        assert!(usage.bytes < 2_000, "{usage:?}");
    }
}
