//! Creating and editing an agent: the form, drawn from [`crate::fields::FIELDS`].

use agent_spec::FieldError;
use agent_spec::api::{AgentResponse, SecretState};
use leptos::prelude::*;

use super::{async_page, not_found, param};
use crate::app::RequestContext;
use crate::app::actions::SaveAgent;
use crate::app::view::{Input, Kind, Page, SecretInput, checkbox, input_id, notice, select};
use crate::fields::{Control, FIELDS, Field, Group};
use crate::flash::Flash;
use crate::form::{AgentForm, DocumentForm, KeptSecrets};

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

/// Where the error summary links to for a field: its input, or the list it is in.
fn field_anchor(path: &str) -> String {
    let base = if path.starts_with("guardrails.custom_rules[") { "guardrails.custom_rules" } else { path };
    format!("#{}", input_id(base))
}

/// What drawing a field needs besides the field.
struct Drawing<'a> {
    form: &'a AgentForm,
    errors: &'a [FieldError],
    kept: &'a KeptSecrets,
    agent: Option<&'a AgentResponse>,
}

impl Drawing<'_> {
    fn field(&self, f: &'static Field) -> AnyView {
        let e = self.errors;
        let value = (f.value)(self.form).to_owned();
        let drawn = match f.control {
            Control::Input(kind) => Input {
                errors: e,
                path: f.path,
                name: f.name.into(),
                label: f.label,
                hint: f.hint,
                value,
                kind,
                required: f.required,
            }
            .render(),
            Control::Checkbox => checkbox(f.name, f.label, f.hint.unwrap_or_default(), value == "on"),
            Control::Select(options) => select(e, f.path, f.name, f.label, f.hint, options(), &value),
            Control::Secret(secret) => SecretInput {
                errors: e,
                path: f.path,
                name: f.name,
                label: f.label,
                hint: f.hint.unwrap_or_default(),
                stored: self.agent.is_some_and(|a| (secret.stored)(&a.secrets) == SecretState::Set),
                kept: (secret.kept)(self.kept),
                remove: secret.remove.map(|(name, _)| name),
                remove_checked: secret.remove.is_some_and(|(_, checked)| checked(self.form) == "on"),
                required: f.required,
            }
            .render(),
            Control::Documents => self.documents(f),
        };
        match f.provider {
            // Hidden by the stylesheet unless its provider is chosen (or it has an error).
            Some(p) => view! { <div class="for-provider" data-provider=p.as_str()>{drawn}</div> }.into_any(),
            None => drawn,
        }
    }

    fn documents(&self, f: &'static Field) -> AnyView {
        let e = self.errors;
        let count = self.form.knowledge.len();
        let documents = self
            .form
            .knowledge
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let title_path = format!("knowledge_base[{i}].title");
                let text_path = format!("knowledge_base[{i}].text");
                let blank = i + 1 == count;
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
        view! {
            <div id=input_id(f.path)>
                {f.hint.map(|h| view! { <p class="hint">{h}</p> })}
                {e.iter().filter(|err| err.field == f.path).map(|err| view! { <span class="error">{err.reason.clone()}</span> }).collect_view()}
                {documents}
                <p>
                    <button type="submit" class="secondary" name="agent[add_document]" value="1">"Add another document"</button>
                </p>
            </div>
        }
        .into_any()
    }

    /// A group's fields: runs of short inputs side by side in a grid, the rest
    /// full width.
    fn group(&self, group: Group) -> AnyView {
        let mut blocks: Vec<AnyView> = Vec::new();
        let mut run: Vec<AnyView> = Vec::new();
        for f in FIELDS.iter().filter(|f| f.group == group) {
            if f.control.is_short() {
                run.push(self.field(f));
                continue;
            }
            if !run.is_empty() {
                blocks.push(view! { <div class="grid">{std::mem::take(&mut run)}</div> }.into_any());
            }
            blocks.push(self.field(f));
        }
        if !run.is_empty() {
            blocks.push(view! { <div class="grid">{run}</div> }.into_any());
        }
        view! {
            <fieldset>
                <legend>{group.legend()}</legend>
                {blocks}
            </fieldset>
        }
        .into_any()
    }
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
    let editing = agent.is_some();
    // The empty slot a new document is typed into.
    form.knowledge.push(DocumentForm::default());
    let cancel = agent.map(|a| format!("/agents/{}", a.id)).unwrap_or_else(|| "/".into());
    let heading = agent.map(|a| format!("Edit {}", a.config.name)).unwrap_or_else(|| "New agent".into());
    let crumb = agent.map(|a| (format!("/agents/{}", a.id), a.config.name.clone()));
    let submit = if editing { "Save and deploy" } else { "Create agent and deploy" };

    let summary = (!errors.is_empty()).then(|| {
        view! {
            <div class="notice error" role="alert" id="errors">
                <strong>{format!("{} problem{} to fix before saving:", errors.len(), if errors.len() == 1 { "" } else { "s" })}</strong>
                <ul>
                    {errors
                        .iter()
                        .map(|err| {
                            view! { <li><a href=field_anchor(&err.field)>{crate::fields::label(&err.field)}</a> ": " {err.reason.clone()}</li> }
                        })
                        .collect_view()}
                </ul>
            </div>
        }
    });
    let drawing = Drawing { form: &form, errors: &errors, kept: &kept, agent };
    let fields: Vec<AnyView> = Group::ALL.iter().map(|g| drawing.group(*g)).collect();
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
