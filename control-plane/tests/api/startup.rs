//! Start-up refuses a secrets key that cannot open the secrets already stored,
//! instead of failing every later update.

use std::collections::HashMap;
use std::path::Path;

use agent_spec::AgentDraft;
use base64::Engine;
use control_plane::open_store;
use control_plane::settings::Settings;

use crate::helpers::agent_body;

/// Local settings on `dir`, with `key` as TEMPOVOICE_SECRETS_KEY if given.
fn settings(dir: &Path, key: Option<String>) -> Settings {
    let mut map = HashMap::from([
        ("TEMPOVOICE_DATA_DIR".to_owned(), dir.display().to_string()),
        ("TEMPOVOICE_DEPLOYER".to_owned(), "off".to_owned()),
    ]);
    if let Some(key) = key {
        map.insert("TEMPOVOICE_SECRETS_KEY".to_owned(), key);
    }
    Settings::from_lookup(|k| map.get(k).cloned()).unwrap()
}

#[tokio::test]
async fn a_lost_or_wrong_secrets_key_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();

    // First run: the key is generated; store one agent.
    let store = open_store(&settings(dir.path(), None)).await.unwrap();
    let tenant = store.create_tenant("t").await.unwrap();
    let draft: AgentDraft = serde_json::from_value(agent_body("A")).unwrap();
    let (config, secrets) = draft.validate(None).unwrap();
    store
        .create_agent(
            &tenant.id,
            config,
            &secrets,
            control_plane::store::quotas::QuotaLimits {
                agents: 10,
                cpu_units: 1 << 20,
                listener_slots: 10,
                knowledge_bytes: 1 << 20,
            },
        )
        .await
        .unwrap();
    store.db.pool.close().await;

    // The same key opens them again.
    let again = open_store(&settings(dir.path(), None)).await.unwrap();
    again.db.pool.close().await;

    // A wrong key from the environment is refused.
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let err = open_store(&settings(dir.path(), Some(wrong))).await.unwrap_err();
    assert!(err.to_string().contains("does not open the agent secrets"), "{err:#}");

    // A lost key file is not silently replaced by a new key.
    let key_file = dir.path().join("secrets.key");
    let saved = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let err = open_store(&settings(dir.path(), None)).await.unwrap_err();
    assert!(err.to_string().contains("secrets.key is missing"), "{err:#}");
    assert!(!key_file.exists(), "no new key was generated");

    // Restoring it brings the server back.
    std::fs::write(&key_file, saved).unwrap();
    let restored = open_store(&settings(dir.path(), None)).await.unwrap();
    restored.db.pool.close().await;
}
