//! An agent's secrets. They are kept apart from [`AgentConfig`](crate::AgentConfig)
//! everywhere: encrypted at rest by the control plane, delivered to the runtime
//! through a secrets store (`secrets`/`valueFrom` in the task definition) rather than
//! plain environment, never returned by the API, never in `Debug` output.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The secrets of one validated agent.
#[derive(Debug, Clone)]
pub struct AgentSecrets {
    /// Verifies `X-Twilio-Signature` and authenticates Twilio REST calls.
    pub twilio_auth_token: SecretString,
    /// Required when the speech provider is `openai-realtime`.
    pub openai_api_key: Option<SecretString>,
    /// Signs outgoing webhooks (HMAC-SHA256).
    pub webhook_signing_secret: Option<SecretString>,
    /// Webhook URLs that are credentials in themselves ([`crate::net::is_secret_url`]),
    /// by field (`integrations.make_endpoint`, …); the config holds them redacted.
    pub webhook_urls: std::collections::BTreeMap<String, SecretString>,
}

impl AgentSecrets {
    /// Compares the secret values. Deliberately not `PartialEq`, so that secrets are
    /// not compared by accident (and in variable time) in ordinary code.
    pub fn same_values(&self, other: &Self) -> bool {
        fn eq(a: &Option<SecretString>, b: &Option<SecretString>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
                _ => false,
            }
        }
        self.twilio_auth_token.expose_secret() == other.twilio_auth_token.expose_secret()
            && eq(&self.openai_api_key, &other.openai_api_key)
            && eq(&self.webhook_signing_secret, &other.webhook_signing_secret)
            && self.webhook_urls.len() == other.webhook_urls.len()
            && self
                .webhook_urls
                .iter()
                .all(|(k, v)| other.webhook_urls.get(k).is_some_and(|o| o.expose_secret() == v.expose_secret()))
    }

    /// `config` with its redacted webhook URLs replaced by the sealed ones: what the
    /// runtime calls, and what a deployment is given.
    pub fn with_webhook_urls(&self, config: &crate::AgentConfig) -> crate::AgentConfig {
        let mut config = config.clone();
        let i = &mut config.integrations;
        for (field, slot) in [
            ("integrations.webhook_endpoint", &mut i.webhook_endpoint),
            ("integrations.transcript_webhook_url", &mut i.transcript_webhook_url),
            ("integrations.pickup_webhook_url", &mut i.pickup_webhook_url),
            ("integrations.make_endpoint", &mut i.make_endpoint),
        ] {
            if let Some(real) =
                self.webhook_urls.get(field).and_then(|u| crate::values::HttpsUrl::parse(u.expose_secret()).ok())
            {
                *slot = Some(real);
            }
        }
        config
    }
}

/// A secret in a create or update request.
///
/// - field absent: keep the stored value (on create: not set);
/// - `null`: remove it (optional secrets only);
/// - a string: set it.
#[derive(Debug, Clone, Default)]
pub enum SecretPatch {
    #[default]
    Keep,
    Clear,
    Set(SecretString),
}

impl SecretPatch {
    pub fn set(value: impl Into<String>) -> Self {
        Self::Set(SecretString::from(value.into()))
    }

    pub fn is_keep(&self) -> bool {
        matches!(self, Self::Keep)
    }
}

impl<'de> Deserialize<'de> for SecretPatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<String>::deserialize(d)? {
            None => Self::Clear,
            Some(v) => Self::Set(SecretString::from(v)),
        })
    }
}

impl Serialize for SecretPatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // `Keep` fields are skipped by the containing struct; `null` is the
            // closest meaning if one is serialized on its own.
            Self::Keep | Self::Clear => s.serialize_none(),
            Self::Set(v) => s.serialize_str(v.expose_secret()),
        }
    }
}

impl utoipa::PartialSchema for SecretPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .write_only(Some(true))
            .description(Some(
                "Write-only secret. Omit to keep the stored value, null to remove it, a string to set it.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for SecretPatch {}
