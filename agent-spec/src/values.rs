//! Validated value types. Each has a `parse` constructor that is the only way in;
//! after parsing, the rest of TempoVoice trusts the value.
//!
//! Every type serializes as a plain JSON string and re-validates when deserialized,
//! so a value read back from the database or the environment is as trustworthy as
//! one that came through the API.

use std::fmt;

/// Why a value was refused. The text is written for the person who typed the value
/// and never repeats the value itself (it may be a secret or personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl InvalidValue {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// Declares a validated string newtype: `parse`, `as_str`, `Display`, serde as a
/// string (validated on the way in) and an OpenAPI string schema.
macro_rules! string_value {
    (
        $(#[$meta:meta])*
        $name:ident,
        description = $description:expr,
        example = $example:expr,
        $(pattern = $pattern:expr,)?
        parse = $parse:expr $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `raw` (surrounding whitespace is trimmed) and wraps it.
            pub fn parse(raw: &str) -> Result<Self, $crate::values::InvalidValue> {
                let raw = raw.trim();
                let check: fn(&str) -> Result<(), $crate::values::InvalidValue> = $parse;
                check(raw)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::values::InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let schema = utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($description))
                    .examples([serde_json::Value::from($example)]);
                // The value as the API gives it (validated, trimmed).
                $(let schema = schema.pattern(Some(format!("^(?:{})$", $pattern)));)?
                schema.into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_value;

pub(crate) fn max_len(raw: &str, max: usize) -> Result<(), InvalidValue> {
    if raw.chars().count() > max {
        return Err(InvalidValue(format!("must be at most {max} characters")));
    }
    Ok(())
}

string_value!(
    /// A phone number in E.164 form: `+`, a country code that does not start with 0,
    /// and at most 15 digits in all.
    E164,
    description = "Phone number in E.164 form, e.g. +14155550123",
    example = "+14155550123",
    pattern = crate::openapi::E164,
    parse = |raw| {
        let digits = raw.strip_prefix('+').ok_or_else(|| {
            InvalidValue::new("must be an E.164 number starting with +, like +14155550123")
        })?;
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !ok {
            return Err(InvalidValue::new(
                "must be an E.164 number: + then 7 to 15 digits, no spaces, country code not starting with 0 (like +14155550123)",
            ));
        }
        Ok(())
    },
);

string_value!(
    /// An absolute `https://` URL with a host and no embedded credentials
    /// (credentials in a URL end up in logs and API responses).
    HttpsUrl,
    description = "Absolute https:// URL without embedded credentials",
    example = "https://hooks.example.com/tempovoice",
    parse = |raw| {
        max_len(raw, 2048)?;
        let url = url::Url::parse(raw)
            .map_err(|e| InvalidValue(format!("must be an absolute https:// URL ({e})")))?;
        if url.scheme() != "https" {
            return Err(InvalidValue::new("must use https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(InvalidValue::new("must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidValue::new(
                "must not contain a username or password; use the webhook signing secret instead",
            ));
        }
        Ok(())
    },
);

impl HttpsUrl {
    /// The parsed URL.
    pub fn url(&self) -> url::Url {
        url::Url::parse(self.as_str()).expect("an HttpsUrl was parsed when it was made")
    }
}

string_value!(
    /// A Twilio account SID: `AC` followed by 32 lowercase hex digits.
    TwilioAccountSid,
    description = "Twilio account SID: AC followed by 32 lowercase hex digits",
    example = "AC0123456789abcdef0123456789abcdef",
    pattern = crate::openapi::TWILIO_ACCOUNT_SID,
    parse = |raw| {
        let ok = raw.len() == 34
            && raw.starts_with("AC")
            && raw[2..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return Err(InvalidValue::new(
                "must be a Twilio account SID: AC followed by 32 lowercase hex digits",
            ));
        }
        Ok(())
    },
);

string_value!(
    /// An AWS region name such as `us-east-1`, `eu-west-2` or `us-gov-west-1`.
    AwsRegion,
    description = "AWS region name, e.g. us-east-1",
    example = "us-east-1",
    pattern = crate::openapi::AWS_REGION,
    parse = |raw| {
        let parts: Vec<&str> = raw.split('-').collect();
        let ok = (3..=4).contains(&parts.len())
            && parts.first().is_some_and(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[1..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts.last().is_some_and(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(InvalidValue::new("must be an AWS region name like us-east-1"));
        }
        Ok(())
    },
);

string_value!(
    /// A BCP 47 language tag of the common shape: language, optional script,
    /// optional region (`en`, `en-US`, `pt-BR`, `zh-Hans-CN`).
    LanguageTag,
    description = "BCP 47 language tag, e.g. en-US",
    example = "en-US",
    pattern = crate::openapi::LANGUAGE_TAG,
    parse = |raw| {
        let invalid = || InvalidValue::new("must be a language tag like en-US, en-GB or es");
        let mut parts = raw.split('-');
        let lang = parts.next().unwrap_or_default();
        if !(2..=3).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(invalid());
        }
        let rest: Vec<&str> = parts.collect();
        let mut rest = rest.as_slice();
        if let [script, tail @ ..] = rest {
            if script.len() == 4 {
                let mut b = script.bytes();
                let title = b.next().is_some_and(|c| c.is_ascii_uppercase()) && b.all(|c| c.is_ascii_lowercase());
                if !title {
                    return Err(invalid());
                }
                rest = tail;
            }
        }
        match rest {
            [] => Ok(()),
            [region] if region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase()) => Ok(()),
            [region] if region.len() == 3 && region.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
            _ => Err(invalid()),
        }
    },
);

string_value!(
    /// A SIP URI the agent can dial or be reached on: `sip:` or `sips:`, optional
    /// user, host, optional port and parameters.
    SipUri,
    description = "SIP URI, e.g. sip:frontdesk@pbx.example.com",
    example = "sip:frontdesk@pbx.example.com",
    pattern = crate::openapi::SIP_URI,
    parse = |raw| {
        max_len(raw, 255)?;
        let rest = raw
            .strip_prefix("sips:")
            .or_else(|| raw.strip_prefix("sip:"))
            .ok_or_else(|| InvalidValue::new("must be a SIP URI starting with sip: or sips:"))?;
        let host_part = rest.rsplit_once('@').map_or(rest, |(user, host)| {
            if user.is_empty() { "" } else { host }
        });
        let host = host_part.split([';', '?']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() { h } else { "" }
        });
        let ok = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
            && !raw.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
        if !ok {
            return Err(InvalidValue::new(
                "must be a SIP URI like sip:frontdesk@pbx.example.com (host required, no spaces)",
            ));
        }
        Ok(())
    },
);

string_value!(
    /// A speech provider's voice name: a lowercase token (`tiffany`, `alloy`, `en-us+f3`).
    VoiceId,
    description = "Voice name of the speech provider (lowercase letters, digits, - _ +)",
    example = "tiffany",
    pattern = crate::openapi::VOICE_ID,
    parse = |raw| {
        let ok = (1..=64).contains(&raw.len())
            && raw.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'+'));
        if !ok {
            return Err(InvalidValue::new(
                "must be 1 to 64 characters: a lowercase letter, then lowercase letters, digits, -, _ or +",
            ));
        }
        Ok(())
    },
);

string_value!(
    /// A speech model identifier such as `amazon.nova-2-sonic-v1:0` or `gpt-realtime`.
    ModelId,
    description = "Speech model identifier, e.g. amazon.nova-2-sonic-v1:0",
    example = "amazon.nova-2-sonic-v1:0",
    pattern = crate::openapi::MODEL_ID,
    parse = |raw| {
        let ok = (1..=128).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'));
        if !ok {
            return Err(InvalidValue::new(
                "must be 1 to 128 characters of letters, digits, and . _ : / -",
            ));
        }
        Ok(())
    },
);

/// Checks free text typed by a person: required or not, a maximum length in
/// characters, and no control characters other than newlines and tabs (which
/// prompts legitimately contain).
pub(crate) fn check_text(raw: &str, required: bool, max_chars: usize, multiline: bool) -> Result<(), InvalidValue> {
    if required && raw.trim().is_empty() {
        return Err(InvalidValue::new("is required"));
    }
    max_len(raw, max_chars)?;
    let bad_control = raw.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')));
    if bad_control {
        return Err(InvalidValue::new(if multiline {
            "must not contain control characters other than newlines and tabs"
        } else {
            "must be a single line without control characters"
        }));
    }
    Ok(())
}

/// A one-line name or label typed by a person (tenant names, key labels): trimmed,
/// required or not, at most `max_chars` characters, no control characters.
pub fn single_line(raw: &str, required: bool, max_chars: usize) -> Result<String, InvalidValue> {
    let trimmed = raw.trim();
    check_text(trimmed, required, max_chars, false)?;
    Ok(trimmed.to_owned())
}

impl fmt::Display for crate::config::SpeechProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sampling temperature from 0 to 1, held in hundredths so configs compare
/// exactly. JSON carries it as a number (`0.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Temperature(u8);

impl Temperature {
    pub const DEFAULT: Temperature = Temperature(70);

    /// `value` if it lies in 0–1 with at most two decimals.
    pub fn new(value: f64) -> Result<Self, InvalidValue> {
        if !value.is_finite() || !(0.0..=1.0).contains(&value) {
            return Err(InvalidValue::new("must be a number from 0 to 1"));
        }
        // Exactly one of 0.00, 0.01, … 1.00 as JSON reads them (the document lists them).
        let hundredths = (value * 100.0).round();
        if hundredths / 100.0 != value {
            return Err(InvalidValue::new("must have at most two decimals"));
        }
        Ok(Self(hundredths as u8))
    }

    /// A temperature as typed (`"0.7"`).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        raw.trim().parse::<f64>().map_err(|_| InvalidValue::new("must be a number from 0 to 1")).and_then(Self::new)
    }

    pub fn value(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value())
    }
}

impl serde::Serialize for Temperature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.value())
    }
}

impl<'de> serde::Deserialize<'de> for Temperature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Temperature {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .description(Some("Sampling temperature from 0 to 1, at most two decimals"))
            .minimum(Some(0.0))
            .maximum(Some(1.0))
            .examples([serde_json::Value::from(0.7)])
            .into()
    }
}

impl utoipa::ToSchema for Temperature {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_accepts_and_rejects() {
        for ok in ["+14155550123", "+442071838750", "+3312345", " +14155550123 "] {
            assert!(E164::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["14155550123", "+0123456789", "+1 415 555 0123", "+1234567890123456", "+", "+12a4567890", ""] {
            assert!(E164::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn https_url_rules() {
        assert!(HttpsUrl::parse("https://hooks.example.com/x?y=1").is_ok());
        for bad in ["http://hooks.example.com", "hooks.example.com", "https://user:pw@example.com/", "ftp://x", ""] {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2100));
        assert!(HttpsUrl::parse(&long).is_err());
    }

    #[test]
    fn region_language_sip_voice() {
        for ok in ["us-east-1", "eu-west-2", "us-gov-west-1", "ap-southeast-4"] {
            assert!(AwsRegion::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["US-EAST-1", "useast1", "us-east", "us-east-1a", "u-east-1"] {
            assert!(AwsRegion::parse(bad).is_err(), "{bad}");
        }
        for ok in ["en", "en-US", "pt-BR", "zh-Hans-CN", "es-419"] {
            assert!(LanguageTag::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["EN", "en_US", "english", "en-us", "en-US-x"] {
            assert!(LanguageTag::parse(bad).is_err(), "{bad}");
        }
        for ok in ["sip:frontdesk@pbx.example.com", "sips:pbx.example.com:5061", "sip:10.0.0.1;transport=tcp"] {
            assert!(SipUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["frontdesk@pbx.example.com", "sip:", "sip:@", "sip:a b@host"] {
            assert!(SipUri::parse(bad).is_err(), "{bad}");
        }
        assert!(VoiceId::parse("en-us+f3").is_ok());
        assert!(VoiceId::parse("Tiffany").is_err());
    }

    #[test]
    fn reasons_never_echo_the_value() {
        let secret_looking = "AC-not-a-sid-SECRETVALUE";
        let err = TwilioAccountSid::parse(secret_looking).unwrap_err();
        assert!(!err.0.contains("SECRETVALUE"));
    }
}
