//! Reading settings from variables, collecting every error before failing.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

/// A variable's value by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads settings through `lookup` (usually the process environment). Values are
/// trimmed and an empty one counts as unset. Each reader returns a usable value
/// (the default) even when the variable is wrong, and records the error; [`finish`]
/// then fails with all of them.
///
/// [`finish`]: Settings::finish
pub struct Settings<'a> {
    lookup: Lookup<'a>,
    errors: Vec<String>,
}

impl<'a> Settings<'a> {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self { lookup: Box::new(lookup), errors: Vec::new() }
    }

    /// The variable's value, if set and not blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Records an error (for checks the readers here do not cover).
    pub fn error(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// A whole number in `range`.
    pub fn number(&mut self, name: &str, default: u64, range: RangeInclusive<u64>) -> u64 {
        match self.get(name) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    self.error(format!("{name}: {v:?} is not a number in {}..={}", range.start(), range.end()));
                    default
                }
            },
        }
    }

    /// A setting with two words: `yes` (true) or `no` (false).
    pub fn switch(&mut self, name: &str, yes: &str, no: &str, default: bool) -> bool {
        match self.get(name) {
            None => default,
            Some(v) if v == yes => true,
            Some(v) if v == no => false,
            Some(v) => {
                self.error(format!("{name}: {v:?} is not {yes} or {no}"));
                default
            }
        }
    }

    /// A socket address (`127.0.0.1:8080`, `[::]:8080`).
    pub fn address(&mut self, name: &str, default: SocketAddr) -> SocketAddr {
        match self.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.error(format!("{name}: {v:?} is not an address like 127.0.0.1:8080"));
                default
            }),
        }
    }

    /// `TEMPOVOICE_LOG_FORMAT`: `json` or `text`.
    pub fn log_format(&mut self, default: crate::logging::LogFormat) -> crate::logging::LogFormat {
        match self.get("TEMPOVOICE_LOG_FORMAT") {
            None => default,
            Some(v) => crate::logging::LogFormat::parse(&v).unwrap_or_else(|| {
                self.error(format!("TEMPOVOICE_LOG_FORMAT: {v:?} is not json or text"));
                default
            }),
        }
    }

    /// Refuses a variable that was renamed, naming the new one, so an old deployment
    /// fails loudly instead of quietly running on a default.
    pub fn renamed(&mut self, old: &str, new: &str) {
        if self.get(old).is_some() {
            self.error(format!("{old} was renamed {new}: set {new} instead"));
        }
    }

    #[cfg(feature = "http")]
    /// The [`Limits`](crate::Limits) of [`crate::serve`]: `TEMPOVOICE_HEADER_TIMEOUT_SECS`,
    /// `TEMPOVOICE_IDLE_TIMEOUT_SECS`, `TEMPOVOICE_REQUEST_TIMEOUT_SECS` and
    /// `TEMPOVOICE_MAX_CONNECTIONS`.
    pub fn limits(&mut self, defaults: crate::Limits) -> crate::Limits {
        let secs = |d: std::time::Duration| d.as_secs();
        crate::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.number(
                "TEMPOVOICE_HEADER_TIMEOUT_SECS",
                secs(defaults.header_read_timeout),
                1..=300,
            )),
            idle_timeout: std::time::Duration::from_secs(self.number(
                "TEMPOVOICE_IDLE_TIMEOUT_SECS",
                secs(defaults.idle_timeout),
                1..=86_400,
            )),
            request_timeout: std::time::Duration::from_secs(self.number(
                "TEMPOVOICE_REQUEST_TIMEOUT_SECS",
                secs(defaults.request_timeout),
                1..=3_600,
            )),
            max_connections: self.number("TEMPOVOICE_MAX_CONNECTIONS", defaults.max_connections as u64, 1..=1_000_000)
                as usize,
        }
    }

    /// Every error recorded, or none.
    pub fn finish(self) -> Result<(), Vec<String>> {
        if self.errors.is_empty() { Ok(()) } else { Err(self.errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_collected_and_defaults_stand_in() {
        let vars = [
            ("N", "12"),
            ("BAD_N", "lots"),
            ("FAR_N", "99"),
            ("S", "on"),
            ("BAD_S", "maybe"),
            ("A", "127.0.0.1:9"),
            ("BAD_A", "localhost"),
            ("OLD", "x"),
            ("BLANK", "  "),
        ];
        let mut s = Settings::new(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()));
        assert_eq!(s.number("N", 1, 1..=20), 12);
        assert_eq!(s.number("BAD_N", 1, 1..=20), 1);
        assert_eq!(s.number("FAR_N", 1, 1..=20), 1);
        assert_eq!(s.number("BLANK", 7, 1..=20), 7, "blank is unset");
        assert!(s.switch("S", "on", "off", false));
        assert!(s.switch("BAD_S", "on", "off", true));
        assert_eq!(s.address("A", ([0, 0, 0, 0], 1).into()), ([127, 0, 0, 1], 9).into());
        s.address("BAD_A", ([0, 0, 0, 0], 1).into());
        s.renamed("OLD", "NEW");
        let errors = s.finish().unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:#?}");
        for name in ["BAD_N", "FAR_N", "BAD_S", "BAD_A", "OLD was renamed NEW"] {
            assert!(errors.iter().any(|e| e.starts_with(name)), "{name}: {errors:#?}");
        }
    }
}
