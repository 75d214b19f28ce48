//! Identifiers. Agent and tenant ids are 16 lowercase base32 characters (80 random
//! bits): safe in URLs, DNS labels and every AWS resource name, and short enough
//! that `{prefix}-{agentId}` fits a 32-character target group name with a prefix of
//! up to 15 characters.

use crate::values::{InvalidValue, string_value};

/// Length of an agent or tenant id.
pub const ID_LEN: usize = 16;

const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const BASE32_ID_PATTERN: &str = "[a-z2-7]{16}";

fn random_base32_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..ID_LEN).map(|_| char::from(BASE32_LOWER[rng.gen_range(0..32)])).collect()
}

fn check_base32_id(raw: &str) -> Result<(), InvalidValue> {
    let ok = raw.len() == ID_LEN && raw.bytes().all(|b| BASE32_LOWER.contains(&b));
    if !ok {
        return Err(InvalidValue(format!("must be {ID_LEN} characters of lowercase base32 (a-z, 2-7)")));
    }
    Ok(())
}

string_value!(
    /// Identifies one agent across the control plane, AWS resource names and URLs.
    AgentId,
    description = "Agent id: 16 lowercase base32 characters",
    example = "k3v7q2mxa9bd4fhe",
    pattern = BASE32_ID_PATTERN,
    parse = check_base32_id,
);

string_value!(
    /// Identifies one tenant (a customer of the operator).
    TenantId,
    description = "Tenant id: 16 lowercase base32 characters",
    example = "t5fz2qhw7nca3mde",
    pattern = BASE32_ID_PATTERN,
    parse = check_base32_id,
);

string_value!(
    /// Identifies one deployment of an agent.
    DeploymentId,
    description = "Deployment id: 16 lowercase base32 characters",
    example = "d2xq7mfa4kzn3bce",
    pattern = BASE32_ID_PATTERN,
    parse = check_base32_id,
);

string_value!(
    /// A Twilio call SID: `CA` followed by 32 lowercase hex digits. Validated before
    /// it is ever used to build a storage key.
    CallSid,
    description = "Twilio call SID: CA followed by 32 lowercase hex digits",
    example = "CA0123456789abcdef0123456789abcdef",
    pattern = "CA[0-9a-f]{32}",
    parse = |raw| {
        let ok = raw.len() == 34
            && raw.starts_with("CA")
            && raw[2..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return Err(InvalidValue::new(
                "must be a Twilio call SID: CA followed by 32 lowercase hex digits",
            ));
        }
        Ok(())
    },
);

impl AgentId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(random_base32_id())
    }
}

impl TenantId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(random_base32_id())
    }
}

impl DeploymentId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(random_base32_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = AgentId::generate();
        assert_eq!(AgentId::parse(a.as_str()).unwrap(), a);
        assert_ne!(AgentId::generate(), a);
        assert!(TenantId::parse(TenantId::generate().as_str()).is_ok());
    }

    #[test]
    fn id_rules() {
        for bad in ["", "abc", "ABCDEFGHIJKLMNOP", "abcdefghijklmno1", "abcdefghijklmnopq", "abcd/fghijklmnop"] {
            assert!(AgentId::parse(bad).is_err(), "{bad}");
        }
        assert!(CallSid::parse("CA0123456789abcdef0123456789abcdef").is_ok());
        assert!(CallSid::parse("CA0123456789ABCDEF0123456789abcdef").is_err());
        assert!(CallSid::parse("../../etc/passwd").is_err());
    }
}
