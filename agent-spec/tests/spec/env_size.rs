//! The encoded environment stays well inside the ECS 64 KiB task-definition limit:
//! a config over the budget is refused at validation, naming the field to shorten.

use crate::common;

use common::valid_draft;

use agent_spec::draft::KnowledgeDocumentDraft;
use agent_spec::env::{ENV_BUDGET_BYTES, EnvironmentSize};
use agent_spec::{AgentId, AgentSpec, TenantId};

fn documents(count: usize, chars: usize) -> Vec<KnowledgeDocumentDraft> {
    // Quotes and newlines double in size when JSON-encoded twice; count them.
    let text: String = "Opening hours: \"9 to 5\".\n".chars().cycle().take(chars).collect();
    (0..count).map(|i| KnowledgeDocumentDraft { title: format!("Document {i}"), text: text.clone() }).collect()
}

/// The size the task definition's `environment` array really takes, as ECS sees it.
fn ecs_environment_json_len(spec: &AgentSpec) -> usize {
    let env = spec.to_env();
    let entries: Vec<serde_json::Value> =
        env.vars.iter().map(|(k, v)| serde_json::json!({"name": k, "value": v})).collect();
    serde_json::to_string(&entries).unwrap().len()
}

#[test]
fn a_large_knowledge_base_is_refused_naming_it() {
    let mut draft = valid_draft();
    draft.knowledge_base = documents(3, 12_000);
    let errors = draft.validate(None).unwrap_err();
    assert_eq!(errors.fields().len(), 1, "{errors}");
    let reason = errors.reason_for("knowledge_base").expect("knowledge_base named");
    assert!(reason.contains("too large to deploy"), "{reason}");
    assert!(reason.contains(&ENV_BUDGET_BYTES.to_string()), "{reason}");
}

#[test]
fn a_long_prompt_over_budget_names_the_prompt() {
    let mut draft = valid_draft();
    // 16,000 characters that double when JSON-encoded, beside a small knowledge base.
    draft.system_prompt = "\"q\"\n".repeat(4_000);
    draft.knowledge_base = vec![KnowledgeDocumentDraft { title: "Hours".into(), text: "9 to 5. ".repeat(600) }];
    let errors = draft.validate(None).unwrap_err();
    assert_eq!(errors.fields().len(), 1, "{errors}");
    assert!(errors.reason_for("system_prompt").unwrap().contains("too large to deploy"));
}

#[test]
fn the_estimate_matches_the_encoded_environment_and_the_budget_holds() {
    // Grow the knowledge base until just under the budget.
    let mut draft = valid_draft();
    let mut chars = 1_000;
    let mut last_ok = None;
    loop {
        draft.knowledge_base = documents(2, chars);
        match draft.validate(None) {
            Ok(ok) => last_ok = Some(ok),
            Err(_) => break,
        }
        chars += 500;
    }
    let (config, secrets) = last_ok.expect("a knowledge base of 2 x 1000 characters fits");
    let estimate = EnvironmentSize::of(&config).total;
    assert!(estimate <= ENV_BUDGET_BYTES);

    let spec = AgentSpec { agent_id: AgentId::generate(), tenant_id: TenantId::generate(), config, secrets };
    let real = ecs_environment_json_len(&spec);
    // The estimate covers the plain entries exactly plus an allowance for secret references.
    assert!(real <= estimate, "estimate {estimate} < real {real}");
    assert!(estimate - real <= 3 * 200 + 16, "estimate {estimate} far above real {real}");
    // Well inside the ECS limit, leaving room for the rest of the task definition.
    assert!(real < 64 * 1024 / 2 + 1);
}
