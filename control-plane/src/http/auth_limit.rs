//! Failed-authentication limits. Every credential that does not authenticate costs
//! its client address one token, and, when it has the shape of an API key
//! (`tvk_{keyId}_{secret}`), its key id one token. A bucket refills evenly over the
//! window (`TEMPOVOICE_AUTH_FAILURE_WINDOW_SECS`) up to its limit
//! (`TEMPOVOICE_AUTH_FAILURES_PER_ADDRESS`, `…_PER_KEY`). While either bucket of a
//! request is empty, the request is answered 429 with `Retry-After` before its
//! credential is looked at, so a correct key is refused too: a guesser learns
//! nothing from a burst. Successful authentications cost nothing.
//!
//! Memory is bounded: each table tracks at most [`MAX_TRACKED`] addresses or key
//! ids, forgetting first the one whose last failure is oldest, and dropping buckets
//! that have refilled as it goes. An IPv6 client is counted by its /64 prefix (one
//! subscriber's network), so it cannot take fresh buckets by changing addresses.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses (and, separately, key ids) tracked at most: about 100 bytes each.
pub const MAX_TRACKED: usize = 100_000;

/// The limits, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimits {
    /// Failed authentications per client address per window.
    pub per_address: u32,
    /// Failed authentications per API key id per window.
    pub per_key: u32,
    pub window: Duration,
    /// Take the client address from the rightmost `X-Forwarded-For` entry (a load
    /// balancer we trust appends it) instead of the socket peer.
    pub trusted_proxy: bool,
}

impl Default for AuthLimits {
    fn default() -> Self {
        Self { per_address: 60, per_key: 30, window: Duration::from_secs(60), trusted_proxy: false }
    }
}

/// Who failed attempts are counted against: an IPv4 address, an IPv6 /64, or (no
/// address known, as for a request made in process without one) one shared bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    V4(u32),
    V6Prefix(u64),
    Unknown,
}

impl ClientKey {
    pub fn of(addr: Option<IpAddr>) -> Self {
        match addr.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(v4)) => Self::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            None => Self::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    burst: f64,
    per_sec: f64,
}

impl Rate {
    fn new(limit: u32, window: Duration) -> Self {
        let burst = f64::from(limit.max(1));
        Self { burst, per_sec: burst / window.as_secs_f64().max(0.001) }
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
    /// Its place in [`Buckets::by_age`].
    stamp: u64,
}

/// Token buckets by key, at most `cap` of them, oldest-touched forgotten first.
struct Buckets<K> {
    rate: Rate,
    cap: usize,
    map: HashMap<K, Bucket>,
    by_age: BTreeMap<u64, K>,
    next_stamp: u64,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(rate: Rate, cap: usize) -> Self {
        Self { rate, cap: cap.max(1), map: HashMap::new(), by_age: BTreeMap::new(), next_stamp: 0 }
    }

    fn tokens_at(&self, bucket: &Bucket, now: Instant) -> f64 {
        let refill = now.saturating_duration_since(bucket.updated).as_secs_f64() * self.rate.per_sec;
        (bucket.tokens + refill).min(self.rate.burst)
    }

    /// How long until `key` has a token again; `None` if it has one now.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let tokens = self.tokens_at(self.map.get(key)?, now);
        (tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / self.rate.per_sec))
    }

    /// Takes a token from `key`'s bucket; returns whether this emptied it.
    fn spend(&mut self, key: &K, now: Instant) -> bool {
        self.forget_refilled(now);
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let tokens = match self.map.get(key) {
            Some(bucket) => {
                let tokens = self.tokens_at(bucket, now);
                self.by_age.remove(&bucket.stamp);
                tokens
            }
            None => {
                while self.map.len() >= self.cap {
                    let Some((_, oldest)) = self.by_age.pop_first() else { break };
                    self.map.remove(&oldest);
                }
                self.rate.burst
            }
        };
        let left = (tokens - 1.0).max(0.0);
        self.map.insert(key.clone(), Bucket { tokens: left, updated: now, stamp });
        self.by_age.insert(stamp, key.clone());
        tokens >= 1.0 && left < 1.0
    }

    /// Drops the oldest-touched buckets that have filled up again (they hold no
    /// more than a missing one): a few per call, so the work is spread out.
    fn forget_refilled(&mut self, now: Instant) {
        for _ in 0..4 {
            let Some((&stamp, key)) = self.by_age.first_key_value() else { return };
            let full = self.map.get(key).is_none_or(|b| self.tokens_at(b, now) >= self.rate.burst);
            if !full {
                return;
            }
            if let Some(key) = self.by_age.remove(&stamp) {
                self.map.remove(&key);
            }
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The failed-authentication limiter one control-plane process shares.
pub struct FailedAuthLimiter {
    addresses: Mutex<Buckets<ClientKey>>,
    keys: Mutex<Buckets<String>>,
    /// Added to the clock: [`FailedAuthLimiter::advance`].
    skew: Mutex<Duration>,
}

impl std::fmt::Debug for FailedAuthLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailedAuthLimiter").field("tracked", &self.tracked()).finish()
    }
}

impl FailedAuthLimiter {
    pub fn new(limits: &AuthLimits) -> Self {
        Self::with_capacity(limits, MAX_TRACKED)
    }

    /// A limiter tracking at most `cap` addresses and `cap` key ids.
    pub fn with_capacity(limits: &AuthLimits, cap: usize) -> Self {
        Self {
            addresses: Mutex::new(Buckets::new(Rate::new(limits.per_address, limits.window), cap)),
            keys: Mutex::new(Buckets::new(Rate::new(limits.per_key, limits.window), cap)),
            skew: Mutex::new(Duration::ZERO),
        }
    }

    /// The limiter's clock: monotonic time, plus whatever [`Self::advance`] added.
    pub fn now(&self) -> Instant {
        Instant::now() + *self.skew.lock().expect("limiter lock")
    }

    /// Moves the limiter's clock forward (tests watch a window pass without
    /// waiting for it).
    pub fn advance(&self, by: Duration) {
        *self.skew.lock().expect("limiter lock") += by;
    }

    /// `Err(wait)` while `client` or `key_id` has no failed attempt left.
    pub fn check(&self, client: ClientKey, key_id: Option<&str>, now: Instant) -> Result<(), Duration> {
        let by_address = self.addresses.lock().expect("limiter lock").wait(&client, now);
        let by_key = key_id.and_then(|k| self.keys.lock().expect("limiter lock").wait(&k.to_owned(), now));
        match by_address.into_iter().chain(by_key).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed authentication. Returns which limits it used up (to log
    /// once, when a limit is reached, not at every refusal after).
    pub fn failed(&self, client: ClientKey, key_id: Option<&str>, now: Instant) -> Exhausted {
        let address = self.addresses.lock().expect("limiter lock").spend(&client, now);
        let key = key_id.is_some_and(|k| self.keys.lock().expect("limiter lock").spend(&k.to_owned(), now));
        Exhausted { address, key }
    }

    /// How many addresses and key ids are tracked now.
    pub fn tracked(&self) -> (usize, usize) {
        (self.addresses.lock().expect("limiter lock").len(), self.keys.lock().expect("limiter lock").len())
    }
}

/// Which limits a failure used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub address: bool,
    pub key: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: u32, per_key: u32, window_secs: u64) -> AuthLimits {
        AuthLimits { per_address, per_key, window: Duration::from_secs(window_secs), trusted_proxy: false }
    }

    fn v4(last: u8) -> ClientKey {
        ClientKey::of(Some(IpAddr::from([203, 0, 113, last])))
    }

    #[test]
    fn an_address_is_refused_after_its_limit_and_recovers_as_the_bucket_refills() {
        let limiter = FailedAuthLimiter::new(&limits(3, 100, 60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(v4(1), None, t0).is_ok());
            limiter.failed(v4(1), None, t0);
        }
        let wait = limiter.check(v4(1), None, t0).expect_err("limited after 3 failures");
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limiter.check(v4(2), None, t0).is_ok(), "another address is not limited");
        // One token back every 20 s: one more attempt, then refused again.
        let later = t0 + Duration::from_secs(20);
        assert!(limiter.check(v4(1), None, later).is_ok());
        limiter.failed(v4(1), None, later);
        assert!(limiter.check(v4(1), None, later).is_err());
        assert!(limiter.check(v4(1), None, t0 + Duration::from_secs(120)).is_ok());
    }

    #[test]
    fn a_key_id_is_refused_after_its_limit_from_any_address() {
        let limiter = FailedAuthLimiter::new(&limits(100, 2, 60));
        let t0 = Instant::now();
        limiter.failed(v4(1), Some("aaaaaaaaaaaa"), t0);
        assert_eq!(limiter.failed(v4(2), Some("aaaaaaaaaaaa"), t0), Exhausted { address: false, key: true });
        assert!(limiter.check(v4(3), Some("aaaaaaaaaaaa"), t0).is_err(), "a fresh address, the same key id");
        assert!(limiter.check(v4(3), Some("bbbbbbbbbbbb"), t0).is_ok(), "another key id");
        assert!(limiter.check(v4(3), None, t0).is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(a)), ClientKey::of(Some(b)));
        assert_ne!(ClientKey::of(Some(a)), ClientKey::of(Some(c)));
        let mapped: IpAddr = "::ffff:203.0.113.1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(mapped)), v4(1), "an IPv4-mapped address is its IPv4 address");
    }

    #[test]
    fn memory_is_bounded_by_the_number_of_tracked_keys() {
        let cap = 1_000;
        let limiter = FailedAuthLimiter::with_capacity(&limits(5, 5, 3600), cap);
        let t0 = Instant::now();
        for i in 0..50_000u32 {
            let client = ClientKey::V4(i);
            let key = format!("{i:012}");
            limiter.failed(client, Some(&key), t0 + Duration::from_millis(u64::from(i)));
        }
        let (addresses, keys) = limiter.tracked();
        assert!(addresses <= cap && keys <= cap, "{addresses} addresses, {keys} keys tracked");
        // The most recent are the ones kept.
        let now = t0 + Duration::from_secs(50);
        for _ in 0..4 {
            limiter.failed(ClientKey::V4(49_999), None, now);
        }
        assert!(limiter.check(ClientKey::V4(49_999), None, now).is_err());
    }

    #[test]
    fn refilled_buckets_are_forgotten() {
        let limiter = FailedAuthLimiter::new(&limits(5, 5, 1));
        let t0 = Instant::now();
        for i in 0..100 {
            limiter.failed(ClientKey::V4(i), None, t0);
        }
        assert_eq!(limiter.tracked().0, 100);
        let later = t0 + Duration::from_secs(5);
        for i in 1000..1030 {
            limiter.failed(ClientKey::V4(i), None, later);
        }
        assert!(limiter.tracked().0 < 100, "refilled buckets dropped: {:?}", limiter.tracked());
    }
}
