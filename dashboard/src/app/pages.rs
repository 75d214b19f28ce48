//! The pages. Each is a component that loads its data from the API inside a
//! `Suspense` (awaited before the response is sent) and renders it with the frame.

use agent_spec::api::{AgentResponse, DeploymentAction, DeploymentResponse, SecretState};
use agent_spec::calls::{CallMetadata, Role, Transcript};
use agent_spec::config::FARGATE_SIZES;
use agent_spec::{FieldError, SpeechProvider};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::actions::{DeleteAgent, RedeployAgent, SaveAgent, SignIn};
use super::view::{
    Input, Kind, Page, SecretInput, checkbox, duration, finish, input_id, notice, select, short_time, status_badge,
    when,
};
use super::{PageError, RequestContext};
use crate::api::{ApiFailure, TenantApi};
use crate::flash::Flash;
use crate::form::{AgentForm, DocumentForm};

/// Agents per page of the list.
pub const AGENTS_PER_PAGE: u32 = 50;
/// Calls per page of an agent's call list.
pub const CALLS_PER_PAGE: u32 = 50;
/// A search reads at most this many agents (in pages of 200).
pub const SEARCH_SCAN_MAX: usize = 5_000;
/// A deployment in progress reloads its page this often, in seconds.
pub const REFRESH_SECS: u32 = 2;

fn param(name: &str) -> String {
    use_params_map().with_untracked(|p| p.get(name)).unwrap_or_default()
}

/// Renders `load` inside a suspense that the server awaits.
fn async_page<F, Fut>(load: F) -> impl IntoView
where
    F: FnOnce(RequestContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page, PageError>> + Send + 'static,
{
    let ctx = RequestContext::current();
    view! {
        <Suspense fallback=|| ()>
            {Suspend::new(async move {
                let result = load(ctx.clone()).await;
                finish(&ctx, result)
            })}
        </Suspense>
    }
}

// ---------------------------------------------------------------------------------
// Sign in

#[component]
pub fn SignInPage() -> impl IntoView {
    async_page(|ctx| async move {
        let next = ctx.query("next").filter(|n| is_local_path(n)).unwrap_or_else(|| "/".into());
        if ctx.session.is_some() && ctx.query("error").is_none() {
            ctx.redirect(&next);
        }
        let message = match ctx.query("error").as_deref() {
            Some("invalid") => Some(("notice error", "That API key was not accepted: check it, or ask for a new one.")),
            Some("expired") => Some(("notice error", "Your session ended. Sign in again to continue.")),
            Some("unreachable") => {
                Some(("notice error", "The control plane could not be reached. Try again in a moment."))
            }
            Some(_) => Some(("notice error", "Sign in to continue.")),
            None if ctx.query("signed_out").is_some() => Some(("notice success", "You are signed out.")),
            None => None,
        };
        let body = view! {
            <div class="signin">
                <h1>"Sign in"</h1>
                <p class="muted">"Use your tenant's API key (it starts with " <span class="mono">"tvk_"</span> ")."</p>
                {message.map(|(class, text)| view! { <div class=class role="alert">{text}</div> })}
                <div class="panel">
                    <ActionForm action={ServerAction::<SignIn>::new()}>
                        <input type="hidden" name="next" value=next/>
                        <div class="field">
                            <label for="api-key">"API key"</label>
                            <input type="password" id="api-key" name="api_key" autocomplete="current-password" autofocus=true aria-required="true"/>
                        </div>
                        <button type="submit">"Sign in"</button>
                    </ActionForm>
                </div>
            </div>
        };
        Ok(Page { title: "Sign in".into(), refresh: None, body: body.into_any() })
    })
}

/// A path on this site (not `//host` or `https://…`), safe to redirect to.
pub(crate) fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\")
}

// ---------------------------------------------------------------------------------
// Agents list

#[component]
pub fn AgentsPage() -> impl IntoView {
    async_page(|ctx| async move {
        let api = ctx.api()?;
        let flash = ctx.flash();
        let q = ctx.query("q").map(|q| q.trim().to_owned()).unwrap_or_default();
        let cursor = ctx.query("cursor");
        let (agents, next, scanned) = if q.is_empty() {
            let page = api.list_agents(cursor.as_deref(), AGENTS_PER_PAGE).await?;
            (page.agents, page.next_cursor, None)
        } else {
            let (found, scanned) = search(&api, &q).await?;
            (found, None, Some(scanned))
        };
        let first_page = cursor.is_none();
        let body = if agents.is_empty() && q.is_empty() && first_page {
            view! {
                <div class="head"><h1>"Agents"</h1></div>
                {notice(flash.as_ref())}
                <div class="panel empty">
                    <h2>"No agents yet"</h2>
                    <p>
                        "An agent answers the calls to one Twilio phone number. To create one you need its name, "
                        "what it should do (the prompt), the Twilio number, and your Twilio account SID and auth token."
                    </p>
                    <a class="button" href="/agents/new">"Create your first agent"</a>
                </div>
            }
            .into_any()
        } else {
            let count = agents.len();
            let summary = match scanned {
                Some(scanned) => format!("{count} of {scanned} agents match “{q}”"),
                None => String::new(),
            };
            view! {
                <div class="head">
                    <h1>"Agents"</h1>
                    <a class="button" href="/agents/new">"New agent"</a>
                </div>
                {notice(flash.as_ref())}
                <form class="search" method="get" action="/" role="search">
                    <label class="sr-only" for="q">"Search agents"</label>
                    <input type="search" id="q" name="q" value=q.clone() placeholder="Search by name, phone number or id"/>
                    <button type="submit" class="secondary">"Search"</button>
                    {(!q.is_empty()).then(|| view! { <a class="button secondary" href="/">"Clear"</a> })}
                </form>
                {(!summary.is_empty()).then(|| view! { <p class="muted">{summary}</p> })}
                <div class="table-wrap">
                    <table>
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Phone number"</th>
                                <th scope="col">"Deployment"</th>
                                <th scope="col" class="hide-narrow">"Last change"</th>
                                <th scope="col" class="hide-narrow">"Calls"</th>
                            </tr>
                        </thead>
                        <tbody>{agents.iter().map(agent_row).collect_view()}</tbody>
                    </table>
                </div>
                <nav class="pager" aria-label="Pages">
                    <span>{(!first_page).then(|| view! { <a href="/">"← First page"</a> })}</span>
                    <span>
                        {next.map(|c| view! { <a href=format!("/?cursor={}", super::view::encode(&c))>"Next page →"</a> })}
                    </span>
                </nav>
            }
            .into_any()
        };
        Ok(Page { title: "Agents".into(), refresh: None, body })
    })
}

fn agent_row(agent: &AgentResponse) -> impl IntoView + use<> {
    let href = format!("/agents/{}", agent.id);
    let calls = format!("/agents/{}/calls", agent.id);
    let last_change = agent.deployment.as_ref().map(|d| d.updated_at.max(agent.updated_at)).unwrap_or(agent.updated_at);
    let description = truncate(&agent.config.description, 90);
    view! {
        <tr>
            <td>
                <a href=href>{agent.config.name.clone()}</a>
                {(!description.is_empty()).then(|| view! { <div class="muted">{description}</div> })}
            </td>
            <td class="mono">{agent.config.telephony.call_phone_number.to_string()}</td>
            <td>{status_badge(agent.deployment.as_ref())}</td>
            <td class="hide-narrow">{when(last_change)}</td>
            <td class="hide-narrow"><a href=calls>"Calls"</a></td>
        </tr>
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", text[..i].trim_end()),
        None => text.to_owned(),
    }
}

/// Agents whose name, number or id contains `q` (any case); reads every page.
async fn search(api: &TenantApi, q: &str) -> Result<(Vec<AgentResponse>, usize), PageError> {
    let needle = q.to_lowercase();
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = api.list_agents(cursor.as_deref(), 200).await?;
        scanned += page.agents.len();
        found.extend(page.agents.into_iter().filter(|a| {
            a.config.name.to_lowercase().contains(&needle)
                || a.config.telephony.call_phone_number.to_string().contains(&needle)
                || a.id.to_string().contains(&needle)
        }));
        match page.next_cursor {
            Some(next) if scanned < SEARCH_SCAN_MAX => cursor = Some(next),
            _ => break,
        }
    }
    Ok((found, scanned))
}

// ---------------------------------------------------------------------------------
// Create and edit

#[component]
pub fn NewAgentPage() -> impl IntoView {
    async_page(|ctx| async move {
        ctx.api()?;
        let flash = ctx.flash().filter(|f| !f.form.as_ref().is_some_and(AgentForm::is_edit));
        let body = agent_form(&ctx, None, flash);
        Ok(Page { title: "New agent".into(), refresh: None, body })
    })
}

#[component]
pub fn EditAgentPage() -> impl IntoView {
    let id = param("id");
    async_page(move |ctx| async move {
        let api = ctx.api()?;
        let agent = api.get_agent(&id).await.map_err(not_found("agent"))?;
        let flash = ctx.flash().filter(|f| f.form.as_ref().is_none_or(|f| f.id == id));
        let title = format!("Edit {}", agent.config.name);
        let body = agent_form(&ctx, Some(&agent), flash);
        Ok(Page { title, refresh: None, body })
    })
}

fn not_found(what: &'static str) -> impl Fn(ApiFailure) -> PageError {
    move |e| match e {
        ApiFailure::NotFound => PageError::NotFound(what),
        e => e.into(),
    }
}

/// Human names of the fields, for the error summary.
fn field_label(path: &str) -> String {
    let known = [
        ("name", "Name"),
        ("description", "Description"),
        ("language", "Language"),
        ("system_prompt", "System prompt"),
        ("greeting", "Greeting"),
        ("idle_prompt_after_secs", "Idle prompt after"),
        ("voice.provider", "Speech provider"),
        ("voice.model", "Model"),
        ("voice.voice_id", "Voice"),
        ("integrations.aws_region", "Provider region"),
        ("secrets.openai_api_key", "OpenAI API key"),
        ("knowledge_base", "Knowledge base"),
        ("guardrails.custom_rules", "Rules"),
        ("guardrails.max_conversation_turns", "Maximum turns"),
        ("guardrails.max_session_duration_secs", "Maximum call length"),
        ("guardrails.max_inappropriate_attempts", "Inappropriate turns allowed"),
        ("telephony.call_phone_number", "Phone number"),
        ("telephony.twilio_account_sid", "Twilio account SID"),
        ("secrets.twilio_auth_token", "Twilio auth token"),
        ("telephony.transfer_phone_number", "Transfer number"),
        ("telephony.summary_phone_number", "Summary number"),
        ("telephony.sip_endpoint", "SIP endpoint"),
        ("integrations.webhook_endpoint", "Event webhook"),
        ("integrations.transcript_webhook_url", "Transcript webhook"),
        ("integrations.pickup_webhook_url", "Pickup webhook"),
        ("integrations.make_endpoint", "Make.com endpoint"),
        ("secrets.webhook_signing_secret", "Webhook signing secret"),
        ("sizing.cpu", "CPU"),
        ("sizing.memory_mib", "Memory"),
        ("sizing.desired_count", "Tasks"),
    ];
    if let Some((_, label)) = known.iter().find(|(p, _)| *p == path) {
        return (*label).to_owned();
    }
    if let Some(rest) = path.strip_prefix("knowledge_base[") {
        if let Some((i, field)) = rest.split_once("].") {
            if let Ok(i) = i.parse::<usize>() {
                return format!("Document {} {field}", i + 1);
            }
        }
    }
    if let Some(rest) = path.strip_prefix("guardrails.custom_rules[") {
        if let Some(i) = rest.strip_suffix(']').and_then(|i| i.parse::<usize>().ok()) {
            return format!("Rule {}", i + 1);
        }
    }
    path.to_owned()
}

/// Where the error summary links to for a field: its input, or the list it is in.
fn field_anchor(path: &str) -> String {
    let base = if path.starts_with("guardrails.custom_rules[") { "guardrails.custom_rules" } else { path };
    format!("#{}", input_id(base))
}

fn agent_form(ctx: &RequestContext, agent: Option<&AgentResponse>, flash: Option<Flash>) -> AnyView {
    let csrf = ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default();
    let flash = flash.unwrap_or_default();
    let mut form = match (&flash.form, agent) {
        (Some(form), _) => form.clone(),
        (None, Some(agent)) => AgentForm::from_agent(agent),
        (None, None) => AgentForm::new_agent(),
    };
    let errors: Vec<FieldError> = flash.errors.clone();
    let kept = flash.secrets.clone();
    let stored = |pick: fn(&agent_spec::api::SecretsStatus) -> SecretState| {
        agent.is_some_and(|a| pick(&a.secrets) == SecretState::Set)
    };
    let editing = agent.is_some();
    // The empty slot a new document is typed into.
    form.knowledge.push(DocumentForm::default());
    let cancel = agent.map(|a| format!("/agents/{}", a.id)).unwrap_or_else(|| "/".into());
    let heading = agent.map(|a| format!("Edit {}", a.config.name)).unwrap_or_else(|| "New agent".into());
    let crumb = agent.map(|a| (format!("/agents/{}", a.id), a.config.name.clone()));
    let submit = if editing { "Save and deploy" } else { "Create agent and deploy" };

    let e = errors.as_slice();
    let text = |path: &'static str, name: &str, label, hint, value: &str, required| {
        Input { errors: e, path, name: name.into(), label, hint, value: value.into(), kind: Kind::Text, required }
            .render()
    };
    let typed = |path: &'static str, name: &str, label, hint, value: &str, kind, required| {
        Input { errors: e, path, name: name.into(), label, hint, value: value.into(), kind, required }.render()
    };
    let providers: Vec<(String, String)> = SpeechProvider::ALL
        .iter()
        .map(|p| {
            let label = match p {
                SpeechProvider::NovaSonic => "Amazon Nova Sonic",
                SpeechProvider::OpenaiRealtime => "OpenAI Realtime",
                SpeechProvider::Local => "Local (offline pipeline)",
            };
            (p.as_str().to_owned(), label.to_owned())
        })
        .collect();
    let architectures: Vec<(String, String)> =
        vec![("x86_64".to_owned(), "x86_64".to_owned()), ("arm64".to_owned(), "ARM64 (Graviton)".to_owned())];
    let cpus: Vec<(String, String)> = FARGATE_SIZES
        .iter()
        .map(|(cpu, _)| (cpu.to_string(), format!("{cpu} ({} vCPU)", f64::from(*cpu) / 1024.0)))
        .collect();

    let summary = (!errors.is_empty()).then(|| {
        view! {
            <div class="notice error" role="alert" id="errors">
                <strong>{format!("{} problem{} to fix before saving:", errors.len(), if errors.len() == 1 { "" } else { "s" })}</strong>
                <ul>
                    {errors
                        .iter()
                        .map(|err| {
                            view! { <li><a href=field_anchor(&err.field)>{field_label(&err.field)}</a> ": " {err.reason.clone()}</li> }
                        })
                        .collect_view()}
                </ul>
            </div>
        }
    });

    let documents = form
        .knowledge
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let title_path = format!("knowledge_base[{i}].title");
            let text_path = format!("knowledge_base[{i}].text");
            let blank = i + 1 == form.knowledge.len();
            view! {
                <div class="document">
                    <h3>{if blank { "Add a document".to_owned() } else { format!("Document {}", i + 1) }}</h3>
                    {Input {
                        errors: e,
                        path: &title_path,
                        name: format!("knowledge][{i}][title"),
                        label: "Title",
                        hint: None,
                        value: doc.title.clone(),
                        kind: Kind::Text,
                        required: false,
                    }
                        .render()}
                    {Input {
                        errors: e,
                        path: &text_path,
                        name: format!("knowledge][{i}][text"),
                        label: "Text",
                        hint: blank.then_some("Facts the agent may answer from: hours, prices, policies."),
                        value: doc.text.clone(),
                        kind: Kind::TextArea { tall: false },
                        required: false,
                    }
                        .render()}
                </div>
            }
        })
        .collect_view();

    let fields = view! {
            <fieldset>
                <legend>"Identity"</legend>
                {text("name", "name", "Name", Some("Shown in the dashboard and in call metadata."), &form.name, true)}
                {typed("description", "description", "Description", None, &form.description, Kind::TextArea { tall: false }, false)}
                {text("language", "language", "Language", Some("BCP 47 tag, e.g. en-US."), &form.language, true)}
            </fieldset>

            <fieldset>
                <legend>"Behaviour and prompt"</legend>
                {typed("system_prompt", "system_prompt", "System prompt", Some("Who the agent is, what it does and how it speaks."), &form.system_prompt, Kind::TextArea { tall: true }, true)}
                {text("greeting", "greeting", "Greeting", Some("The first words when the agent picks up."), &form.greeting, true)}
                {typed("idle_prompt_after_secs", "idle_prompt_after_secs", "Idle prompt after (seconds)", Some("Silence before the agent asks whether the caller is still there (3 to 300)."), &form.idle_prompt_after_secs, Kind::Number { min: 3, max: 300 }, true)}
                {checkbox("enable_transcription", "Keep transcripts", "Each call's transcript is written to the agent's bucket.", form.enable_transcription == "on")}
                {checkbox("enable_recording", "Record calls", "Each call's audio is written to the agent's bucket.", form.enable_recording == "on")}
            </fieldset>

            <fieldset>
                <legend>"Voice and speech provider"</legend>
                <div class="grid">
                    {select(e, "voice.provider", "provider", "Speech provider", None, providers, &form.provider)}
                    {text("integrations.aws_region", "aws_region", "Provider region", Some("AWS region of Amazon Bedrock, for Nova Sonic."), &form.aws_region, true)}
                    {text("voice.model", "model", "Model", Some("Blank: the provider's default."), &form.model, false)}
                    {text("voice.voice_id", "voice_id", "Voice", Some("Blank: the provider's default."), &form.voice_id, false)}
                </div>
                {SecretInput {
                    errors: e,
                    path: "secrets.openai_api_key",
                    name: "openai_api_key",
                    label: "OpenAI API key",
                    hint: "Needed for OpenAI Realtime.",
                    stored: stored(|s| s.openai_api_key),
                    kept: kept.openai_api_key.is_some(),
                    remove: Some("remove_openai_api_key"),
                    remove_checked: form.remove_openai_api_key == "on",
                    required: false,
                }
                    .render()}
            </fieldset>

            <fieldset id=input_id("knowledge_base")>
                <legend>"Knowledge base"</legend>
                <p class="hint">"Documents the agent answers from. Clear a document's title and text to remove it."</p>
                {e.iter().filter(|err| err.field == "knowledge_base").map(|err| view! { <span class="error">{err.reason.clone()}</span> }).collect_view()}
                {documents}
                <p>
                    <button type="submit" class="secondary" name="agent[add_document]" value="1">"Add another document"</button>
                </p>
            </fieldset>

            <fieldset>
                <legend>"Guardrails"</legend>
                {typed("guardrails.custom_rules", "custom_rules", "Rules", Some("One per line, e.g. “Never discuss pricing.”"), &form.custom_rules, Kind::TextArea { tall: false }, false)}
                <div class="grid">
                    {typed("guardrails.max_conversation_turns", "max_conversation_turns", "Maximum turns", Some("1 to 1000 caller turns."), &form.max_conversation_turns, Kind::Number { min: 1, max: 1000 }, true)}
                    {typed("guardrails.max_session_duration_secs", "max_session_duration_secs", "Maximum call length (seconds)", Some("30 to 3600: a deploy keeps a replaced task's calls for at most an hour."), &form.max_session_duration_secs, Kind::Number { min: 30, max: 3_600 }, true)}
                    {typed("guardrails.max_inappropriate_attempts", "max_inappropriate_attempts", "Inappropriate turns allowed", Some("1 to 20, then the call ends."), &form.max_inappropriate_attempts, Kind::Number { min: 1, max: 20 }, true)}
                </div>
            </fieldset>

            <fieldset>
                <legend>"Telephony"</legend>
                <div class="grid">
                    {typed("telephony.call_phone_number", "call_phone_number", "Phone number", Some("The Twilio number callers dial, E.164 (+14155550123)."), &form.call_phone_number, Kind::Tel, true)}
                    {text("telephony.twilio_account_sid", "twilio_account_sid", "Twilio account SID", Some("AC followed by 32 hex digits."), &form.twilio_account_sid, true)}
                </div>
                {SecretInput {
                    errors: e,
                    path: "secrets.twilio_auth_token",
                    name: "twilio_auth_token",
                    label: "Twilio auth token",
                    hint: "From the Twilio console; checks that webhooks come from Twilio.",
                    stored: stored(|s| s.twilio_auth_token),
                    kept: kept.twilio_auth_token.is_some(),
                    remove: None,
                    remove_checked: false,
                    required: true,
                }
                    .render()}
                <div class="grid">
                    {typed("telephony.transfer_phone_number", "transfer_phone_number", "Transfer number", Some("Where “talk to a person” goes."), &form.transfer_phone_number, Kind::Tel, false)}
                    {typed("telephony.summary_phone_number", "summary_phone_number", "Summary number", Some("Receives call summaries by SMS."), &form.summary_phone_number, Kind::Tel, false)}
                    {text("telephony.sip_endpoint", "sip_endpoint", "SIP endpoint", Some("sip:… URI, optional."), &form.sip_endpoint, false)}
                </div>
            </fieldset>

            <fieldset>
                <legend>"Integrations and webhooks"</legend>
                <div class="grid">
                    {typed("integrations.webhook_endpoint", "webhook_endpoint", "Event webhook", Some("https:// URL."), &form.webhook_endpoint, Kind::Url, false)}
                    {typed("integrations.transcript_webhook_url", "transcript_webhook_url", "Transcript webhook", Some("Receives the transcript when a call ends."), &form.transcript_webhook_url, Kind::Url, false)}
                    {typed("integrations.pickup_webhook_url", "pickup_webhook_url", "Pickup webhook", Some("Notified when a call is answered."), &form.pickup_webhook_url, Kind::Url, false)}
                    {typed("integrations.make_endpoint", "make_endpoint", "Make.com endpoint", Some("Receives scheduled callbacks."), &form.make_endpoint, Kind::Url, false)}
                </div>
                {SecretInput {
                    errors: e,
                    path: "secrets.webhook_signing_secret",
                    name: "webhook_signing_secret",
                    label: "Webhook signing secret",
                    hint: "Signs every webhook (X-TempoVoice-Signature); 32 characters or more.",
                    stored: stored(|s| s.webhook_signing_secret),
                    kept: kept.webhook_signing_secret.is_some(),
                    remove: Some("remove_webhook_signing_secret"),
                    remove_checked: form.remove_webhook_signing_secret == "on",
                    required: false,
                }
                    .render()}
            </fieldset>

            <fieldset>
                <legend>"Sizing"</legend>
                <div class="grid">
                    {select(e, "sizing.cpu", "cpu", "CPU", Some("Fargate CPU units per task."), cpus, &form.cpu)}
                    {typed("sizing.memory_mib", "memory_mib", "Memory (MiB)", Some("A Fargate size for the CPU: 512, 1024 or 2048 with 256 CPU."), &form.memory_mib, Kind::Number { min: 512, max: 122_880 }, true)}
                    {typed("sizing.desired_count", "desired_count", "Tasks", Some("0 to 20; 0 pauses the agent."), &form.desired_count, Kind::Number { min: 0, max: 20 }, true)}
                    {select(e, "sizing.cpu_architecture", "cpu_architecture", "CPU architecture", Some("ARM64 (Graviton) costs about 20 % less."), architectures, &form.cpu_architecture)}
                </div>
            </fieldset>

    }
    .into_any();
    let (id, version) = (form.id.clone(), form.version.clone());
    let resume = if kept.is_empty() { String::new() } else { ctx.query("flash").unwrap_or_default() };
    let body = view! {
        <div class="crumbs">
            <a href="/">"Agents"</a>
            {crumb.map(|(href, name)| view! { " / " <a href=href>{name}</a> })}
        </div>
        <div class="head"><h1>{heading}</h1></div>
        {notice(Some(&flash))}
        {summary}
        <ActionForm action={ServerAction::<SaveAgent>::new()} attr:novalidate=true attr:class="agent-form">
            <input type="hidden" name="csrf" value=csrf/>
            <input type="hidden" name="agent[id]" value=id/>
            <input type="hidden" name="agent[version]" value=version/>
            <input type="hidden" name="agent[resume]" value=resume/>

            {fields}
            <div class="actions">
                <button type="submit">{submit}</button>
                <a class="button secondary" href=cancel>"Cancel"</a>
            </div>
        </ActionForm>
    };
    body.into_any()
}

// ---------------------------------------------------------------------------------
// Agent

#[component]
pub fn AgentPage() -> impl IntoView {
    let id = param("id");
    async_page(move |ctx| async move {
        let api = ctx.api()?;
        let agent = api.get_agent(&id).await.map_err(not_found("agent"))?;
        let deployment = match &agent.deployment {
            Some(d) => Some(api.get_deployment(&id, d.id.as_ref()).await?),
            None => None,
        };
        let refresh = deployment.as_ref().filter(|d| !d.status.is_final()).map(|_| REFRESH_SECS);
        let flash = ctx.flash();
        let csrf = ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default();
        let title = agent.config.name.clone();
        let body = view! {
            <div class="crumbs"><a href="/">"Agents"</a></div>
            <div class="head">
                <h1>{agent.config.name.clone()}</h1>
                {status_badge(agent.deployment.as_ref())}
            </div>
            {notice(flash.as_ref())}
            <div class="two">
                <div>
                    {voice_url_panel(&agent)}
                    {deployment_panel(&agent, deployment.as_ref(), csrf)}
                    {config_panel(&agent)}
                </div>
                <div>
                    <div class="panel">
                        <h2>"Actions"</h2>
                        <div class="actions">
                            <a class="button" href=format!("/agents/{}/calls", agent.id)>"Calls"</a>
                            <a class="button secondary" href=format!("/agents/{}/edit", agent.id)>"Edit"</a>
                            <a class="button danger secondary" href=format!("/agents/{}/delete", agent.id)>"Delete"</a>
                        </div>
                    </div>
                    <div class="panel">
                        <h2>"Details"</h2>
                        <dl class="summary">
                            <dt>"Id"</dt><dd class="mono">{agent.id.to_string()}</dd>
                            <dt>"Version"</dt><dd>{agent.version}</dd>
                            <dt>"Created"</dt><dd>{when(agent.created_at)}</dd>
                            <dt>"Changed"</dt><dd>{when(agent.updated_at)}</dd>
                        </dl>
                    </div>
                </div>
            </div>
        };
        Ok(Page { title, refresh, body: body.into_any() })
    })
}

fn voice_url_panel(agent: &AgentResponse) -> AnyView {
    match &agent.voice_url {
        Some(url) => view! {
            <div class="panel">
                <h2>"Twilio voice URL"</h2>
                <p class="hint" id="voice-url-hint">
                    "In the Twilio console, open " <span class="mono">{agent.config.telephony.call_phone_number.to_string()}</span>
                    " and paste this as “A call comes in” (Webhook, HTTP POST)."
                </p>
                <div class="copy">
                    <input type="text" id="voice-url" readonly=true value=url.clone() aria-label="Twilio voice URL" aria-describedby="voice-url-hint"/>
                    <button type="button" data-copy="voice-url">"Copy"</button>
                </div>
            </div>
        }
        .into_any(),
        None => view! {
            <div class="panel">
                <h2>"Twilio voice URL"</h2>
                <p class="muted">
                    "The voice URL is shown once the agent is placed on a load balancer, at its first deploy. "
                    "If it stays empty, the listener it is placed on names no public host "
                    "(TEMPOVOICE_LISTENERS, listenerArn=capacity@host), and the deployment says so."
                </p>
            </div>
        }
        .into_any(),
    }
}

fn deployment_panel(agent: &AgentResponse, deployment: Option<&DeploymentResponse>, csrf: String) -> AnyView {
    let id = agent.id.to_string();
    let redeploy = view! {
        <ActionForm action={ServerAction::<RedeployAgent>::new()}>
            <input type="hidden" name="csrf" value=csrf/>
            <input type="hidden" name="id" value=id/>
            <button type="submit" class="secondary">"Redeploy"</button>
        </ActionForm>
    };
    let Some(d) = deployment else {
        return view! {
            <div class="panel">
                <h2>"Deployment"</h2>
                <p class="muted">"This agent has not been deployed."</p>
                {redeploy}
            </div>
        }
        .into_any();
    };
    let action = match d.action {
        DeploymentAction::Deploy => "Deploy",
        DeploymentAction::Delete => "Teardown",
    };
    let progress = (!d.status.is_final())
        .then(|| view! { <p class="muted" role="status">"In progress: this page refreshes itself."</p> });
    let error = d.error.as_ref().map(|err| {
        view! {
            <div class="notice error" role="alert">
                <strong>{format!("Failed{}", err.step.as_ref().map(|s| format!(" at {s}")).unwrap_or_default())}</strong>
                <div>{err.message.clone()}</div>
                <div class="muted mono">{err.error_type.clone()}</div>
            </div>
        }
    });
    let events = d
        .events
        .iter()
        .map(|ev| {
            let t = short_time(ev.at);
            let clock = t.get(11..16).unwrap_or(&t).to_owned();
            view! {
                <li>
                    <time datetime=agent_spec::api::timestamp::format(ev.at).unwrap_or_default()>{clock}</time>
                    <span>{ev.step.clone().unwrap_or_else(|| ev.kind.clone())}</span>
                    <span>{ev.message.clone()}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="panel" id="deployment">
            <h2>"Deployment"</h2>
            <dl class="summary">
                <dt>"Status"</dt>
                <dd><span class=format!("badge {}", d.status.as_str())>{d.status.as_str()}</span> " " {action}</dd>
                <dt>"Started"</dt><dd>{when(d.created_at)}</dd>
                <dt>"Attempts"</dt><dd>{d.attempts}</dd>
                {d.deployed_version.map(|v| view! { <dt>"Version deployed"</dt><dd>{v}</dd> })}
            </dl>
            {progress}
            {error}
            <h3>"Steps"</h3>
            <ol class="events">{events}</ol>
            <p></p>
            {redeploy}
        </div>
    }
    .into_any()
}

fn config_panel(agent: &AgentResponse) -> AnyView {
    let c = &agent.config;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    let secret = |s: SecretState| if s == SecretState::Set { "set" } else { "not set" };
    let yes = |b: bool| if b { "on" } else { "off" };
    let webhooks = [
        ("events", &c.integrations.webhook_endpoint),
        ("transcript", &c.integrations.transcript_webhook_url),
        ("pickup", &c.integrations.pickup_webhook_url),
        ("Make.com", &c.integrations.make_endpoint),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
    .collect::<Vec<_>>();
    let webhooks = if webhooks.is_empty() { "—".to_owned() } else { webhooks.join(" · ") };
    view! {
        <div class="panel">
            <h2>"Configuration"</h2>
            <dl class="summary">
                <dt>"Description"</dt><dd>{if c.description.is_empty() { "—".to_owned() } else { c.description.clone() }}</dd>
                <dt>"Language"</dt><dd>{c.language.to_string()}</dd>
                <dt>"Greeting"</dt><dd>{c.greeting.clone()}</dd>
                <dt>"System prompt"</dt><dd>{truncate(&c.system_prompt, 400)}</dd>
                <dt>"Speech"</dt><dd>{format!("{} · {} · voice {} · {}", c.voice.provider.as_str(), c.voice.model, c.voice.voice_id, c.integrations.aws_region)}</dd>
                <dt>"Knowledge base"</dt>
                <dd>{if c.knowledge_base.is_empty() { "—".to_owned() } else { c.knowledge_base.iter().map(|d| d.title.as_str()).collect::<Vec<_>>().join(", ") }}</dd>
                <dt>"Rules"</dt><dd>{if c.guardrails.custom_rules.is_empty() { "—".to_owned() } else { c.guardrails.custom_rules.join(" · ") }}</dd>
                <dt>"Limits"</dt>
                <dd>{format!("{} turns · {} · {} inappropriate turns · idle prompt after {} s", c.guardrails.max_conversation_turns, duration(f64::from(c.guardrails.max_session_duration_secs)), c.guardrails.max_inappropriate_attempts, c.idle_prompt_after_secs)}</dd>
                <dt>"Transcripts / recording"</dt><dd>{format!("{} / {}", yes(c.enable_transcription), yes(c.enable_recording))}</dd>
                <dt>"Phone number"</dt><dd class="mono">{c.telephony.call_phone_number.to_string()}</dd>
                <dt>"Twilio account"</dt><dd class="mono">{c.telephony.twilio_account_sid.to_string()}</dd>
                <dt>"Transfer / summary"</dt>
                <dd>{format!("{} / {}", opt(c.telephony.transfer_phone_number.as_ref().map(|v| v.to_string())), opt(c.telephony.summary_phone_number.as_ref().map(|v| v.to_string())))}</dd>
                <dt>"Webhooks"</dt>
                <dd>{webhooks}</dd>
                <dt>"Secrets"</dt>
                <dd>{format!("Twilio auth token {} · OpenAI key {} · webhook signing {}", secret(agent.secrets.twilio_auth_token), secret(agent.secrets.openai_api_key), secret(agent.secrets.webhook_signing_secret))}</dd>
                <dt>"Sizing"</dt><dd>{format!("{} CPU · {} MiB · {} task(s) · {}", c.sizing.cpu, c.sizing.memory_mib, c.sizing.desired_count, c.sizing.cpu_architecture.as_str())}</dd>
                <dt>"Runtime image"</dt><dd class="mono">{agent.runtime_image.clone().unwrap_or_else(|| "none running yet".to_owned())}</dd>
            </dl>
        </div>
    }
    .into_any()
}

// ---------------------------------------------------------------------------------
// Delete

#[component]
pub fn DeleteAgentPage() -> impl IntoView {
    let id = param("id");
    async_page(move |ctx| async move {
        let api = ctx.api()?;
        let agent = api.get_agent(&id).await.map_err(not_found("agent"))?;
        let flash = ctx.flash();
        let csrf = ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default();
        let title = format!("Delete {}", agent.config.name);
        let (id, version) = (agent.id.to_string(), agent.version.to_string());
        let cancel = format!("/agents/{}", agent.id);
        let body = view! {
            <div class="crumbs"><a href="/">"Agents"</a> " / " <a href=format!("/agents/{}", agent.id)>{agent.config.name.clone()}</a></div>
            <div class="head"><h1>{title.clone()}</h1></div>
            {notice(flash.as_ref())}
            <div class="panel">
                <p>
                    "The agent stops answering calls: its ECS service, task definition, load balancer rule and target group are removed. "
                    "Calls to " <span class="mono">{agent.config.telephony.call_phone_number.to_string()}</span> " will fail until the number points elsewhere."
                </p>
                <ActionForm action={ServerAction::<DeleteAgent>::new()}>
                    <input type="hidden" name="csrf" value=csrf/>
                    <input type="hidden" name="id" value=id/>
                    <input type="hidden" name="version" value=version/>
                    <fieldset>
                        <legend>"Call data (transcripts and recordings)"</legend>
                        <div class="field">
                            <label class="check" for="keep">
                                <input type="radio" id="keep" name="call_data" value="keep" checked=true/>
                                <span>"Keep it " <span class="hint">"The bucket stays, tagged retired; its calls can still be read from S3."</span></span>
                            </label>
                            <label class="check" for="purge">
                                <input type="radio" id="purge" name="call_data" value="purge"/>
                                <span>"Delete it too " <span class="hint">"Every transcript and recording of this agent is erased. This cannot be undone."</span></span>
                            </label>
                        </div>
                    </fieldset>
                    <div class="actions">
                        <button type="submit" class="danger">"Delete agent"</button>
                        <a class="button secondary" href=cancel>"Cancel"</a>
                    </div>
                </ActionForm>
            </div>
        };
        Ok(Page { title, refresh: None, body: body.into_any() })
    })
}

// ---------------------------------------------------------------------------------
// Calls

#[component]
pub fn CallsPage() -> impl IntoView {
    let id = param("id");
    async_page(move |ctx| async move {
        let api = ctx.api()?;
        let agent = api.get_agent(&id).await.map_err(not_found("agent"))?;
        let cursor = ctx.query("cursor");
        let page = api.list_calls(&id, cursor.as_deref(), CALLS_PER_PAGE).await?;
        let title = format!("Calls · {}", agent.config.name);
        let base = format!("/agents/{}/calls", agent.id);
        let rows = page
            .calls
            .iter()
            .map(|call| {
                let href = format!("{base}/{}", call.call_sid);
                view! {
                    <tr>
                        <td><a href=href>{call.started_at.map(short_time).unwrap_or_else(|| "unknown".into())}</a></td>
                        <td class="mono">{call.from.clone().unwrap_or_else(|| "—".into())}</td>
                        <td>{call.duration_secs.map(duration).unwrap_or_else(|| "—".into())}</td>
                        <td>{call.end_reason.clone().unwrap_or_else(|| "—".into()).replace('_', " ")}</td>
                        <td class="mono hide-narrow">{call.call_sid.to_string()}</td>
                    </tr>
                }
            })
            .collect_view();
        let empty = page.calls.is_empty() && cursor.is_none();
        let body = view! {
            <div class="crumbs"><a href="/">"Agents"</a> " / " <a href=format!("/agents/{}", agent.id)>{agent.config.name.clone()}</a></div>
            <div class="head"><h1>"Calls"</h1></div>
            {if empty {
                view! {
                    <div class="panel empty">
                        <h2>"No calls yet"</h2>
                        <p>"Each call appears here when it ends, with its transcript and, if recording is on, its audio."</p>
                    </div>
                }
                .into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table>
                            <thead>
                                <tr>
                                    <th scope="col">"Started"</th>
                                    <th scope="col">"Caller"</th>
                                    <th scope="col">"Duration"</th>
                                    <th scope="col">"Ended by"</th>
                                    <th scope="col" class="hide-narrow">"Call SID"</th>
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                    <nav class="pager" aria-label="Pages">
                        <span>{cursor.is_some().then(|| view! { <a href=base.clone()>"← Newest calls"</a> })}</span>
                        <span>{page.next_cursor.map(|c| view! { <a href=format!("{base}?cursor={}", super::view::encode(&c))>"Older calls →"</a> })}</span>
                    </nav>
                }
                .into_any()
            }}
        };
        Ok(Page { title, refresh: None, body: body.into_any() })
    })
}

#[component]
pub fn CallPage() -> impl IntoView {
    let id = param("id");
    let sid = param("sid");
    async_page(move |ctx| async move {
        let api = ctx.api()?;
        // The agent, the metadata and the transcript are independent reads.
        let (agent, metadata, transcript) =
            futures::join!(api.get_agent(&id), api.metadata(&id, &sid), api.transcript(&id, &sid));
        let agent = agent.map_err(not_found("agent"))?;
        let metadata = match metadata {
            Ok(m) => m,
            Err(ApiFailure::NotFound) => return Err(PageError::NotFound("call")),
            Err(ApiFailure::Status { status, .. }) if status.as_u16() == 422 => {
                return Err(PageError::NotFound("call"));
            }
            Err(e) => return Err(e.into()),
        };
        let transcript = match transcript {
            Ok(t) => Some(t),
            Err(ApiFailure::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let title = format!("Call from {}", metadata.from.clone().unwrap_or_else(|| "unknown".into()));
        let recording =
            metadata.recording.then(|| format!("/agents/{}/calls/{}/recording.wav", agent.id, metadata.call_sid));
        let body = view! {
            <div class="crumbs">
                <a href="/">"Agents"</a> " / " <a href=format!("/agents/{}", agent.id)>{agent.config.name.clone()}</a>
                " / " <a href=format!("/agents/{}/calls", agent.id)>"Calls"</a>
            </div>
            <div class="head"><h1>{title.clone()}</h1></div>
            <div class="two">
                <div>
                    {recording.map(|src| {
                        let download = src.clone();
                        view! {
                        <div class="panel">
                            <h2>"Recording"</h2>
                            <audio controls=true preload="metadata" src=src>
                                <a href=download>"Download the recording"</a>
                            </audio>
                        </div>
                    }})}
                    <div class="panel">
                        <h2>"Transcript"</h2>
                        {conversation(transcript.as_ref())}
                    </div>
                </div>
                <div>{metadata_panel(&metadata)}</div>
            </div>
        };
        Ok(Page { title, refresh: None, body: body.into_any() })
    })
}

/// `m:ss` from the start of the call.
fn offset(ms: u64) -> String {
    format!("{}:{:02}", ms / 60_000, ms / 1000 % 60)
}

fn conversation(transcript: Option<&Transcript>) -> AnyView {
    let Some(t) = transcript else {
        return view! { <p class="muted">"No transcript was kept for this call."</p> }.into_any();
    };
    if t.turns.is_empty() && t.dtmf.is_empty() {
        return view! { <p class="muted">"Nothing was said on this call."</p> }.into_any();
    }
    // Turns and key presses, in the order they happened.
    enum Item<'a> {
        Turn(&'a agent_spec::calls::Turn),
        Dtmf(&'a agent_spec::calls::DtmfRecord),
    }
    let mut items: Vec<(u64, Item)> = t.turns.iter().map(|turn| (turn.start_ms, Item::Turn(turn))).collect();
    items.extend(t.dtmf.iter().map(|d| (d.at_ms, Item::Dtmf(d))));
    items.sort_by_key(|(at, _)| *at);
    let rendered = items
        .into_iter()
        .map(|(at, item)| match item {
            Item::Turn(turn) => {
                let (class, who) = match turn.role {
                    Role::Agent => ("turn agent", "Agent"),
                    Role::Caller => ("turn caller", "Caller"),
                };
                let tools = turn
                    .tool_calls
                    .iter()
                    .map(|tool| {
                        let detail = match &tool.call {
                            agent_spec::calls::ToolCall::ScheduleCallback { requested_time } => format!(" ({requested_time})"),
                            _ => String::new(),
                        };
                        let failed = if tool.result == "ok" { String::new() } else { format!(" — {}", tool.result) };
                        view! { <span class="tag tool">{format!("tool: {}{detail}{failed}", tool.call.name())}</span> }
                    })
                    .collect_view();
                view! {
                    <li class=class>
                        <header>
                            <strong>{who}</strong>
                            <time>{offset(at)}</time>
                            {turn.interrupted.then(|| view! { <span class="tag interrupted">"interrupted"</span> })}
                            {tools}
                        </header>
                        <p>{if turn.text.is_empty() { "(nothing recognized)".to_owned() } else { turn.text.clone() }}</p>
                    </li>
                }
                .into_any()
            }
            Item::Dtmf(d) => view! {
                <li class="turn dtmf">
                    <time>{offset(at)}</time> " Caller pressed " <strong class="mono">{d.digit.clone()}</strong>
                </li>
            }
            .into_any(),
        })
        .collect_view();
    view! { <ol class="conversation" aria-label="Conversation">{rendered}</ol> }.into_any()
}

fn metadata_panel(m: &CallMetadata) -> AnyView {
    let latency = if m.turn_latency_ms.is_empty() {
        "—".to_owned()
    } else {
        let mut sorted = m.turn_latency_ms.clone();
        sorted.sort_unstable();
        format!("median {} ms over {} replies", sorted[sorted.len() / 2], sorted.len())
    };
    let webhooks = m
        .webhooks
        .iter()
        .map(|w| {
            let outcome = if w.delivered {
                format!("delivered ({} attempt{})", w.attempts, if w.attempts == 1 { "" } else { "s" })
            } else {
                format!("not delivered after {} attempts: {}", w.attempts, w.error.clone().unwrap_or_default())
            };
            view! { <dt>{format!("Webhook {}", w.kind)}</dt><dd>{outcome}</dd> }
        })
        .collect_view();
    let started = time::OffsetDateTime::parse(&m.started_at, &time::format_description::well_known::Rfc3339)
        .map(when)
        .unwrap_or_else(|_| m.started_at.clone().into_any());
    let errors = (!m.errors.is_empty()).then(|| view! { <dt>"Errors"</dt><dd>{m.errors.join(" · ")}</dd> });
    view! {
        <div class="panel">
            <h2>"Call"</h2>
            <dl class="summary">
                <dt>"From"</dt><dd class="mono">{m.from.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"To"</dt><dd class="mono">{m.to.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Started"</dt><dd>{started}</dd>
                <dt>"Duration"</dt><dd>{duration(m.duration_secs)}</dd>
                <dt>"Ended by"</dt><dd>{m.end_reason.replace('_', " ")}</dd>
                <dt>"Turns"</dt><dd>{format!("{} caller · {} agent · {} interruptions", m.caller_turns, m.agent_turns, m.interruptions)}</dd>
                <dt>"Reply latency"</dt><dd>{latency}</dd>
                <dt>"Speech"</dt><dd>{m.provider.clone()}</dd>
                <dt>"Voicemail"</dt><dd>{if m.voicemail { "left" } else { "—" }}</dd>
                {webhooks}
                {errors}
                <dt>"Call SID"</dt><dd class="mono">{m.call_sid.clone()}</dd>
            </dl>
        </div>
    }
    .into_any()
}
