//! Deterministic names for one agent's resources, all within AWS limits (checked
//! by tests for the longest prefix). The same agent always maps to the same names,
//! so every step can find what an earlier, interrupted deploy made.

use agent_spec::{AgentId, TenantId};

/// Tag keys on every resource the deployer makes.
pub mod tags {
    pub const MANAGED_BY: &str = "tempovoice:managed-by";
    pub const MANAGED_BY_VALUE: &str = "tempovoice-deployer";
    pub const PREFIX: &str = "tempovoice:prefix";
    pub const TENANT: &str = "tempovoice:tenant";
    pub const AGENT: &str = "tempovoice:agent";
    /// Set on a transcript bucket kept after its agent was deleted.
    pub const RETIRED: &str = "tempovoice:retired";
}

/// The agent whose resource carries these tags, if it is one of this deployer's
/// (`tempovoice:managed-by` and `tempovoice:prefix` match): how sweep recognizes
/// what is ours, rather than by names alone.
pub fn agent_of_tags<'a>(prefix: &str, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<AgentId> {
    let (mut managed, mut ours, mut agent) = (false, false, None);
    for (k, v) in tags {
        match k {
            tags::MANAGED_BY => managed = v == tags::MANAGED_BY_VALUE,
            tags::PREFIX => ours = v == prefix,
            tags::AGENT => agent = AgentId::parse(v).ok(),
            _ => {}
        }
    }
    agent.filter(|_| managed && ours)
}

/// The name of the runtime's container in every task definition.
pub const CONTAINER_NAME: &str = "agent-runtime";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentNames {
    pub agent_id: AgentId,
    pub prefix: String,
    /// S3 bucket (≤ 63, lowercase): `{prefix}-transcripts-{agentId}`.
    pub bucket: String,
    /// Secrets Manager secret: `{prefix}/agents/{agentId}`.
    pub secret: String,
    /// Task definition family and ECS service: `{prefix}-agent-{agentId}`.
    pub family: String,
    pub service: String,
    /// The agent's own IAM task role (≤ 64): `{prefix}-agent-{agentId}`.
    pub task_role: String,
    /// Target group (≤ 32): `{prefix}-{agentId}`.
    pub target_group: String,
    /// The listener rule's path pattern.
    pub path_pattern: String,
}

impl AgentNames {
    pub fn new(prefix: &str, agent: &AgentId) -> Self {
        Self {
            agent_id: agent.clone(),
            prefix: prefix.to_owned(),
            bucket: format!("{prefix}-transcripts-{agent}"),
            secret: format!("{prefix}/agents/{agent}"),
            family: format!("{prefix}-agent-{agent}"),
            service: format!("{prefix}-agent-{agent}"),
            task_role: format!("{prefix}-agent-{agent}"),
            target_group: format!("{prefix}-{agent}"),
            path_pattern: format!("/agent/{agent}/*"),
        }
    }

    /// The agent of a service (or task definition family, or task role) name
    /// `{prefix}-agent-{agentId}`: the reverse of [`AgentNames::new`].
    pub fn agent_of_service(prefix: &str, name: &str) -> Option<AgentId> {
        name.strip_prefix(prefix)?.strip_prefix("-agent-").and_then(|id| AgentId::parse(id).ok())
    }

    /// The agent a listener rule's path pattern `/agent/{agentId}/*` routes to.
    pub fn agent_of_path(path_pattern: &str) -> Option<AgentId> {
        path_pattern.strip_prefix("/agent/")?.strip_suffix("/*").and_then(|id| AgentId::parse(id).ok())
    }

    /// The tags every resource of this agent carries.
    pub fn tags(&self, tenant: &TenantId) -> Vec<(&'static str, String)> {
        vec![
            (tags::MANAGED_BY, tags::MANAGED_BY_VALUE.to_owned()),
            (tags::PREFIX, self.prefix.clone()),
            (tags::TENANT, tenant.to_string()),
            (tags::AGENT, self.agent_id.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::PREFIX_MAX;

    #[test]
    fn names_fit_aws_limits_with_the_longest_prefix() {
        let prefix = "p".repeat(PREFIX_MAX);
        let names = AgentNames::new(&prefix, &AgentId::generate());
        assert!(names.target_group.len() <= 32, "{}", names.target_group);
        assert!(names.bucket.len() <= 63 && names.bucket.len() >= 3);
        assert!(names.bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        assert!(names.family.len() <= 255 && names.service.len() <= 255);
        assert!(names.secret.len() <= 512);
        assert!(names.task_role.len() <= 64);
    }

    #[test]
    fn names_map_back_to_their_agent_and_tags_to_ours_only() {
        let id = AgentId::generate();
        let names = AgentNames::new("tv", &id);
        assert_eq!(AgentNames::agent_of_service("tv", &names.service), Some(id.clone()));
        assert_eq!(AgentNames::agent_of_service("tv2", &names.service), None);
        assert_eq!(AgentNames::agent_of_path(&names.path_pattern), Some(id.clone()));
        assert_eq!(AgentNames::agent_of_path("/agent/nope/*"), None);
        let tenant = TenantId::generate();
        let tags = names.tags(&tenant);
        let pairs = || tags.iter().map(|(k, v)| (*k, v.as_str()));
        assert_eq!(agent_of_tags("tv", pairs()), Some(id.clone()));
        assert_eq!(agent_of_tags("other", pairs()), None, "another deployer's prefix");
        assert_eq!(agent_of_tags("tv", pairs().filter(|(k, _)| *k != tags::MANAGED_BY)), None);
    }

    #[test]
    fn names_are_deterministic() {
        let id = AgentId::generate();
        assert_eq!(AgentNames::new("tv", &id), AgentNames::new("tv", &id));
        assert_ne!(AgentNames::new("tv", &id), AgentNames::new("tv", &AgentId::generate()));
    }
}
