//! What a cloud provider is told about the agent: its instructions (the system
//! prompt, how to use the knowledge base, the guardrail rules, how to end and hand
//! over calls) and its tools.
//!
//! A knowledge base of up to [`INLINE_KNOWLEDGE_MAX_CHARS`] characters goes into the
//! instructions whole (the model sees every fact, at no round trip); a larger one
//! stays out and backs a `search_knowledge_base` tool, answered by the runtime from
//! its BM25 index of the documents.

use agent_spec::AgentConfig;
use serde_json::{Value, json};

use super::ToolCall;

/// Largest knowledge base (characters of titles and texts) put in the instructions.
pub const INLINE_KNOWLEDGE_MAX_CHARS: usize = 12_000;

/// The tool a large knowledge base is searched with.
pub const SEARCH_TOOL: &str = "search_knowledge_base";

/// One tool a provider may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// The instructions and tools of one agent.
#[derive(Debug, Clone)]
pub struct AgentBrief {
    pub instructions: String,
    pub tools: Vec<ToolSpec>,
    /// Whether the knowledge base is searched through [`SEARCH_TOOL`].
    pub search_tool: bool,
}

impl AgentBrief {
    pub fn new(config: &AgentConfig) -> Self {
        let kb_chars: usize = config.knowledge_base.iter().map(|d| d.title.len() + d.text.len()).sum();
        let inline = kb_chars <= INLINE_KNOWLEDGE_MAX_CHARS;
        let mut s = String::new();
        s.push_str(config.system_prompt.trim());
        s.push_str("\n\nYou are speaking with a caller on the phone. Keep every answer short and spoken: ");
        s.push_str("no lists, no markup, no links. Speak in the language of the caller ");
        s.push_str(&format!("(the agent's language is {}).", config.language));
        if config.knowledge_base.is_empty() {
            s.push_str("\n\nAnswer only from what you were told here; if you do not know, say so.");
        } else if inline {
            s.push_str(
                "\n\nAnswer questions from the knowledge base below only. If it does not hold the answer, say you \
                 do not know rather than guessing.\n\nKnowledge base:",
            );
            for d in &config.knowledge_base {
                s.push_str(&format!("\n\n## {}\n{}", d.title.trim(), d.text.trim()));
            }
        } else {
            s.push_str(&format!(
                "\n\nFor any question about the business, call the {SEARCH_TOOL} tool with the caller's question \
                 and answer from what it returns only. If it returns nothing useful, say you do not know."
            ));
        }
        if !config.guardrails.custom_rules.is_empty() {
            s.push_str("\n\nRules you must always follow:");
            for rule in &config.guardrails.custom_rules {
                s.push_str(&format!("\n- {}", rule.trim()));
            }
        }
        s.push_str(
            "\n\nWhen the caller says goodbye or has nothing more, say a short goodbye and call end_call. \
             If the caller wants to leave a message, call voicemail. If the caller asks to be called back, \
             call schedule_callback with the time they asked for.",
        );
        let transfer = config.telephony.transfer_phone_number.is_some();
        if transfer {
            s.push_str(" If the caller asks for a person, say you are transferring them and call transfer_call.");
        }
        let mut tools = vec![
            ToolSpec {
                name: "end_call",
                description: "End the call, after you have said goodbye.",
                parameters: json!({"type": "object", "properties": {}, "required": []}),
            },
            ToolSpec {
                name: "voicemail",
                description: "Let the caller leave a voice message after a beep.",
                parameters: json!({"type": "object", "properties": {}, "required": []}),
            },
            ToolSpec {
                name: "schedule_callback",
                description: "Have the caller called back. The result says when the callback is scheduled \
                              (or why it could not be): tell the caller.",
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "requested_time": {"type": "string", "description": "When, in the caller's words (\"tomorrow at 3 pm\", \"in two hours\")."},
                        "at": {"type": "string", "description": "Only if the caller named a full date and time: it as an RFC 3339 timestamp with their UTC offset. Otherwise leave it out."}
                    },
                    "required": ["requested_time"]
                }),
            },
        ];
        if transfer {
            tools.push(ToolSpec {
                name: "transfer_call",
                description: "Transfer the caller to a person.",
                parameters: json!({"type": "object", "properties": {}, "required": []}),
            });
        }
        if !inline {
            tools.push(ToolSpec {
                name: SEARCH_TOOL,
                description: "Search the business's knowledge base; returns the best matching passage.",
                parameters: json!({
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "The caller's question."}},
                    "required": ["query"]
                }),
            });
        }
        Self { instructions: s, tools, search_tool: !inline }
    }
}

/// A provider's tool call as one of the call actions, or why it is not one.
pub fn parse_tool(name: &str, arguments: &str) -> Result<ToolCall, String> {
    let args: Value = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments).map_err(|e| format!("{name}: arguments are not JSON: {e}"))?
    };
    match name {
        "end_call" => Ok(ToolCall::EndCall),
        "transfer_call" => Ok(ToolCall::TransferCall),
        "voicemail" => Ok(ToolCall::Voicemail),
        "schedule_callback" => {
            let requested_time = args
                .get("requested_time")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .unwrap_or("as soon as possible");
            let at = args.get("at").and_then(Value::as_str).map(str::trim).filter(|a| !a.is_empty());
            Ok(ToolCall::ScheduleCallback {
                requested_time: requested_time.chars().take(200).collect(),
                at: at.map(|a| a.chars().take(64).collect()),
            })
        }
        other => Err(format!("unknown tool {other:?}")),
    }
}

/// The query of a [`SEARCH_TOOL`] call.
pub fn search_query(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get("query").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}
