//! Pieces every page is built from: the frame (head, top bar, sign-out), error
//! pages, status badges, times, and the labelled form inputs with their errors.

use agent_spec::FieldError;
use agent_spec::api::DeploymentSummary;
use axum::http::{HeaderValue, StatusCode, header};
use leptos::prelude::*;
use time::OffsetDateTime;

use super::actions::SignOut;
use super::{PageError, RequestContext, errors_for};
use crate::api::ApiFailure;
use crate::assets::{CSS_URL, JS_URL};
use crate::flash::{Flash, Level};

/// A rendered page body and what its frame needs.
pub(crate) struct Page {
    pub title: String,
    /// Reload the page after this many seconds (a deployment in progress).
    pub refresh: Option<u32>,
    pub body: AnyView,
}

/// The page, or what to show instead when it failed.
pub(crate) fn finish(ctx: &RequestContext, result: Result<Page, PageError>) -> AnyView {
    match result {
        Ok(page) => frame(ctx, page),
        Err(PageError::SignIn) => {
            let mut to = format!("/sign-in?next={}", encode(&ctx.here()));
            if ctx.session.is_some() {
                // The cookie was valid but the API refused its key (revoked).
                ctx.clear_session();
                to.push_str("&error=expired");
            }
            ctx.redirect(&to);
            ().into_any()
        }
        Err(PageError::NotFound(what)) => {
            ctx.response.set_status(StatusCode::NOT_FOUND);
            let body = view! {
                <div class="panel empty">
                    <h1>{format!("No such {what}")}</h1>
                    <p>"It does not exist, was deleted, or belongs to another tenant."</p>
                    <a class="button" href="/">"Go to your agents"</a>
                </div>
            };
            frame(ctx, Page { title: "Not found".into(), refresh: None, body: body.into_any() })
        }
        Err(PageError::Api(e)) => {
            // The API's own words when it gave a reason (a 5xx reason is generic);
            // otherwise the cause is logged here and the page stays general.
            let (status, message) = match &e {
                ApiFailure::Status { status, message } if *status == StatusCode::SERVICE_UNAVAILABLE => {
                    (StatusCode::SERVICE_UNAVAILABLE, message.clone())
                }
                ApiFailure::Status { message, .. } => (StatusCode::BAD_GATEWAY, message.clone()),
                ApiFailure::TooManyAttempts { retry_after } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many failed sign-in attempts from your address. Try again in {retry_after} seconds."),
                ),
                _ => (StatusCode::BAD_GATEWAY, "The page could not be loaded. Try again in a moment.".to_owned()),
            };
            tracing::error!(error = %e, path = %ctx.parts.uri.path(), "page could not be rendered");
            ctx.response.set_status(status);
            let body = view! {
                <div class="panel empty">
                    <h1>"The control plane could not answer"</h1>
                    <p>{message}</p>
                    <a class="button" href=ctx.here()>"Try again"</a>
                </div>
            };
            frame(ctx, Page { title: "Unavailable".into(), refresh: None, body: body.into_any() })
        }
    }
}

/// The document: head, top bar with the signed-in key and sign-out, and `main`.
pub(crate) fn frame(ctx: &RequestContext, page: Page) -> AnyView {
    if let Ok(policy) = HeaderValue::from_str(&crate::content_security_policy(ctx.nonce.as_deref())) {
        ctx.response.insert_header(header::CONTENT_SECURITY_POLICY, policy);
    }
    let signed_in = ctx.session.as_ref().map(|s| (s.key_id().to_owned(), s.csrf.clone()));
    view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>{format!("{} · TempoVoice", page.title)}</title>
                <link rel="stylesheet" href=CSS_URL/>
                <script src=JS_URL defer=true></script>
                {page.refresh.map(|secs| view! { <meta http-equiv="refresh" content=secs.to_string()/> })}
            </head>
            <body>
                <a class="skip" href="#main">"Skip to content"</a>
                <header class="top">
                    <a class="brand" href="/">"TempoVoice"</a>
                    {signed_in
                        .map(|(key_id, csrf)| {
                            let here = ctx.parts.uri.path().to_owned();
                            let current = move |section: &str| {
                                let on = if section == "/" { here != "/numbers" } else { here == section };
                                on.then_some("page")
                            };
                            view! {
                                <nav aria-label="Sections">
                                    <a href="/" aria-current=current("/")>"Agents"</a>
                                    <a href="/numbers" aria-current=current("/numbers")>"Numbers"</a>
                                </nav>
                                <span class="who">"API key " <span class="mono">{key_id}</span></span>
                                <ActionForm action={ServerAction::<SignOut>::new()}>
                                    <input type="hidden" name="csrf" value=csrf/>
                                    <button type="submit">"Sign out"</button>
                                </ActionForm>
                            }
                        })}
                </header>
                <main id="main">{page.body}</main>
            </body>
        </html>
    }
    .into_any()
}

/// The message a form post left for this page, if any.
pub(crate) fn notice(flash: Option<&Flash>) -> Option<AnyView> {
    let (level, text) = flash?.notice.clone()?;
    let class = match level {
        Level::Success => "notice success",
        Level::Error => "notice error",
    };
    let role = if level == Level::Error { "alert" } else { "status" };
    Some(view! { <div class=class role=role>{text}</div> }.into_any())
}

pub(crate) fn status_badge(deployment: Option<&DeploymentSummary>) -> AnyView {
    match deployment {
        None => view! { <span class="badge none">"not deployed"</span> }.into_any(),
        Some(d) => {
            let status = d.status.as_str();
            let shown = status.replace('_', " ");
            view! { <span class=format!("badge {status}")>{shown}</span> }.into_any()
        }
    }
}

/// `2026-11-21 09:28 UTC`, in a `<time>` element.
pub(crate) fn when(t: OffsetDateTime) -> AnyView {
    let iso = agent_spec::api::timestamp::format(t).unwrap_or_default();
    let shown = short_time(t);
    view! { <time datetime=iso>{shown}</time> }.into_any()
}

pub(crate) fn short_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(format).unwrap_or_default()
}

/// `1:05` for 65 seconds; `1:02:03` past an hour.
pub(crate) fn duration(secs: f64) -> String {
    let total = secs.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

pub(crate) fn encode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// The id of the input for an API field path (`telephony.call_phone_number` →
/// `f-telephony-call_phone_number`).
pub(crate) fn input_id(path: &str) -> String {
    let mut id = String::from("f-");
    for c in path.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            id.push(c);
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    id.trim_end_matches('-').to_owned()
}

/// How an input is drawn.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Text,
    Tel,
    Url,
    Number {
        min: u32,
        max: u32,
    },
    /// A number from 0 to 1 in hundredths.
    Fraction,
    TextArea {
        tall: bool,
    },
}

/// One labelled input: label, hint, input, errors (announced and linked).
pub(crate) struct Input<'a> {
    pub errors: &'a [FieldError],
    /// The API's field path, which errors are keyed by.
    pub path: &'a str,
    /// The form key inside `agent[…]`.
    pub name: String,
    pub label: &'static str,
    pub hint: Option<&'static str>,
    pub value: String,
    pub kind: Kind,
    pub required: bool,
}

impl Input<'_> {
    pub fn render(self) -> AnyView {
        let id = input_id(self.path);
        let problems = errors_for(self.errors, self.path);
        let invalid = !problems.is_empty();
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let described = [self.hint.map(|_| hint_id.clone()), invalid.then(|| error_id.clone())]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let described = (!described.is_empty()).then_some(described);
        let name = format!("agent[{}]", self.name);
        let required = self.required.then_some("true");
        let invalid_attr = invalid.then_some("true");
        let control = match self.kind {
            Kind::TextArea { tall } => view! {
                <textarea
                    id=id.clone()
                    name=name
                    class=if tall { "tall" } else { "" }
                    aria-describedby=described
                    aria-invalid=invalid_attr
                    aria-required=required
                >
                    {self.value}
                </textarea>
            }
            .into_any(),
            kind => {
                let (input_type, min, max, mode) = match kind {
                    Kind::Tel => ("tel", None, None, None),
                    Kind::Url => ("url", None, None, None),
                    Kind::Number { min, max } => {
                        ("number", Some(min.to_string()), Some(max.to_string()), Some("numeric"))
                    }
                    Kind::Fraction => ("number", Some("0".to_owned()), Some("1".to_owned()), Some("decimal")),
                    _ => ("text", None, None, None),
                };
                let step = matches!(kind, Kind::Fraction).then_some("0.01");
                view! {
                    <input
                        type=input_type
                        id=id.clone()
                        name=name
                        value=self.value
                        min=min
                        max=max
                        step=step
                        inputmode=mode
                        aria-describedby=described
                        aria-invalid=invalid_attr
                        aria-required=required
                    />
                }
                .into_any()
            }
        };
        view! {
            <div class="field">
                <label for=id>{self.label} {self.required.then_some(" (required)")}</label>
                {self.hint.map(|h| view! { <span class="hint" id=hint_id>{h}</span> })}
                {control}
                {invalid.then(|| view! { <span class="error" id=error_id>{problems.join("; ")}</span> })}
            </div>
        }
        .into_any()
    }
}

/// A checkbox (posted as `on` when ticked).
pub(crate) fn checkbox(name: &str, label: &'static str, hint: &'static str, checked: bool) -> AnyView {
    let id = input_id(name);
    let label_for = id.clone();
    let name = format!("agent[{name}]");
    view! {
        <div class="field">
            <label class="check" for=label_for>
                <input type="checkbox" id=id name=name checked=checked/>
                <span>{label} <span class="hint">{hint}</span></span>
            </label>
        </div>
    }
    .into_any()
}

/// A select of `(value, label)` options.
pub(crate) fn select(
    errors: &[FieldError],
    path: &str,
    name: &str,
    label: &'static str,
    hint: Option<&'static str>,
    options: Vec<(String, String)>,
    selected: &str,
) -> AnyView {
    let id = input_id(path);
    let problems = errors_for(errors, path);
    let invalid = !problems.is_empty();
    let error_id = format!("{id}-error");
    let name = format!("agent[{name}]");
    let selected = selected.to_owned();
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            {hint.map(|h| view! { <span class="hint">{h}</span> })}
            <select id=id name=name aria-invalid=invalid.then_some("true")>
                {options
                    .into_iter()
                    .map(|(value, text)| {
                        let is = value == selected;
                        view! { <option value=value selected=is>{text}</option> }
                    })
                    .collect_view()}
            </select>
            {invalid.then(|| view! { <span class="error" id=error_id>{problems.join("; ")}</span> })}
        </div>
    }
    .into_any()
}

/// What the form knows of a write-only secret.
#[derive(Clone, Copy)]
pub(crate) struct SecretInput<'a> {
    pub errors: &'a [FieldError],
    pub path: &'a str,
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    /// The agent has a stored value.
    pub stored: bool,
    /// A value typed into an earlier submission is kept on the server.
    pub kept: bool,
    /// The name of the "remove" checkbox, for optional secrets.
    pub remove: Option<&'static str>,
    pub remove_checked: bool,
    pub required: bool,
}

impl SecretInput<'_> {
    pub fn render(self) -> AnyView {
        let id = input_id(self.path);
        let problems = errors_for(self.errors, self.path);
        let invalid = !problems.is_empty();
        let error_id = format!("{id}-error");
        let hint_id = format!("{id}-hint");
        let (state, placeholder) = match (self.kept, self.stored) {
            (true, _) => ("entered, kept", "Leave blank to use what you entered"),
            (false, true) => ("set", "Leave blank to keep the stored value"),
            (false, false) => ("not set", ""),
        };
        let action = if self.stored { "replace" } else { "set" };
        let remove = self.remove.filter(|_| self.stored).map(|name| {
            let remove_id = input_id(name);
            let label_for = remove_id.clone();
            let name = format!("agent[{name}]");
            view! {
                <label class="check" for=label_for>
                    <input type="checkbox" id=remove_id name=name checked=self.remove_checked/>
                    <span>"Remove the stored value"</span>
                </label>
            }
        });
        view! {
            <div class="field">
                <label for=id.clone()>
                    {self.label}
                    {(self.required && !self.stored).then_some(" (required)")}
                    <span class=format!("badge secret-state {}", if self.stored || self.kept { "active" } else { "none" })>
                        {state}
                    </span>
                </label>
                <span class="hint" id=hint_id.clone()>{self.hint} {format!(" Write-only: type a value to {action} it.")}</span>
                <input
                    type="password"
                    id=id
                    name=format!("agent[{}]", self.name)
                    autocomplete="new-password"
                    placeholder=placeholder
                    aria-describedby=if invalid { format!("{hint_id} {error_id}") } else { hint_id.clone() }
                    aria-invalid=invalid.then_some("true")
                />
                {remove}
                {invalid.then(|| view! { <span class="error" id=error_id>{problems.join("; ")}</span> })}
            </div>
        }
        .into_any()
    }
}
