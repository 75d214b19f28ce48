//! The server functions behind the dashboard's forms. Each is posted by a plain HTML
//! form (`ActionForm`), checks the session and its CSRF token, calls the API with the
//! tenant's key, and answers with a redirect: to the next page on success, or back
//! to the form with a flash holding the message, the errors and the entered values.

use agent_spec::FieldError;
use leptos::prelude::*;
use secrecy::SecretString;

use super::RequestContext;
use crate::api::ApiFailure;
use crate::flash::Flash;
use crate::form::{AgentForm, KeptSecrets, all_errors};
use crate::session::{self, Session};

const FORM_EXPIRED: &str =
    "This form could not be verified (it may be from an earlier session). Nothing was changed: submit it again.";
const NO_SUCH_AGENT: &str = "No such agent: it was deleted, or belongs to another tenant.";

/// The session a form post acts for, if its CSRF token matches. Without a session
/// the answer is a redirect to sign in; with a wrong token, to `back` with a message.
fn authorized(ctx: &RequestContext, csrf: &str, back: &str) -> Option<Session> {
    match &ctx.session {
        None => {
            ctx.redirect("/sign-in?error=expired");
            None
        }
        Some(session) if !session.csrf_matches(csrf) => {
            tracing::warn!(path = %ctx.parts.uri.path(), "form post with a wrong CSRF token refused");
            ctx.redirect(&ctx.with_flash(back, Flash::error(FORM_EXPIRED)));
            None
        }
        Some(session) => Some(session.clone()),
    }
}

/// What to tell the user when the API failed in a way they cannot fix in the form.
fn failure_message(action: &str, e: &ApiFailure) -> String {
    match e {
        ApiFailure::Status { message, .. } => format!("The agent could not be {action}: {message}"),
        ApiFailure::TooManyAttempts { retry_after } => {
            format!("The agent could not be {action}: too many failed attempts; try again in {retry_after} s.")
        }
        ApiFailure::Conflict(message) => format!("The agent could not be {action}: {message}"),
        e => {
            tracing::error!(error = %e, "control-plane call failed");
            format!("The agent could not be {action}: the control plane did not answer. Try again in a moment.")
        }
    }
}

/// Signs in: the form's own token must match its sealed cookie (set when the form
/// was rendered; the post's origin was checked before this runs), then the API key
/// is exchanged for an API session, whose token the session cookie carries. The
/// browser then goes to `next` if it is one of the dashboard's pages, else `/`.
#[server(endpoint = "sign_in")]
pub async fn sign_in(csrf: String, api_key: String, next: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let next = super::after_sign_in(&next);
    let back = |error: &str| format!("/sign-in?error={error}&next={}", super::view::encode(&next));
    if !ctx.dashboard.sign_in_token(&ctx.parts.headers).is_some_and(|token| token.matches(&csrf)) {
        tracing::warn!("sign-in post without its form's token refused");
        ctx.redirect(&back("form"));
        return Ok(());
    }
    let key = api_key.trim().to_owned();
    if key.is_empty() {
        ctx.redirect(&back("invalid"));
        return Ok(());
    }
    let api = ctx.dashboard.api_for(SecretString::from(key), &ctx.parts);
    match api.open_session(ctx.dashboard.session_lifetime).await {
        Ok(opened) => {
            let expires_at = opened.expires_at;
            let session = Session::new(opened.token, opened.key_id, expires_at);
            let sealed = ctx.dashboard.sessions.seal(&session);
            let secure = ctx.secure_cookies();
            // As long as the API's session, in whole seconds rounded up.
            let lifetime =
                time::Duration::seconds((expires_at - time::OffsetDateTime::now_utc()).as_seconds_f64().ceil() as i64);
            ctx.set_cookie(session::set_cookie(session::COOKIE, &sealed, lifetime, secure));
            // The form's token has done its work.
            ctx.set_cookie(session::clear_cookie(session::SIGN_IN_COOKIE, secure));
            tracing::info!(key_id = session.key_id(), "signed in");
            // A session this browser held before is ended, not left to expire.
            if let Some(previous) = &ctx.session {
                if let Err(e) = ctx.api_for(previous).end_session().await {
                    tracing::debug!(error = %e, "the previous session was not ended (it may have ended already)");
                }
            }
            ctx.redirect(&next);
        }
        Err(ApiFailure::Unauthorized) => ctx.redirect(&back("invalid")),
        Err(ApiFailure::TooManyAttempts { retry_after }) => {
            ctx.redirect(&format!("{}&retry_after={retry_after}", back("throttled")))
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in could not reach the control plane");
            ctx.redirect(&back("unreachable"));
        }
    }
    Ok(())
}

/// Signs out: the API ends the session (so a copy of the cookie is worthless from
/// now on), then the cookie is removed. If the API cannot be reached the session
/// stands, and the page says so rather than pretending.
#[server(endpoint = "sign_out")]
pub async fn sign_out(csrf: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let Some(session) = authorized(&ctx, &csrf, "/") else {
        return Ok(());
    };
    match ctx.api_for(&session).end_session().await {
        // Unauthorized: already ended (or its key revoked) — signed out either way.
        Ok(()) | Err(ApiFailure::Unauthorized) => {
            tracing::info!(key_id = session.key_id(), "signed out");
            ctx.clear_session();
            ctx.redirect("/sign-in?signed_out=1");
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-out could not reach the control plane");
            ctx.redirect(&ctx.with_flash(
                "/",
                Flash::error(
                    "You are still signed in: the control plane could not end the session. Try signing out again \
                     in a moment.",
                ),
            ));
        }
    }
    Ok(())
}

/// Creates or updates an agent (which starts its deployment). Invalid input comes
/// back to the form with every error next to its field and the input kept; secrets
/// typed in are kept on the server, never written into the page.
#[server(endpoint = "save_agent")]
pub async fn save_agent(csrf: String, agent: AgentForm) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let mut form = agent;
    let editing = form.is_edit();
    let back =
        if editing { format!("/agents/{}/edit", super::view::encode(&form.id)) } else { "/agents/new".to_owned() };
    let Some(session) = authorized(&ctx, &csrf, &back) else {
        return Ok(());
    };
    let kept = match form.resume.as_str() {
        "" => KeptSecrets::default(),
        id => ctx.dashboard.flash.get(&session.csrf, id).map(|f| f.secrets).unwrap_or_default(),
    };
    form.resume.clear();
    form.drop_blank_documents();
    let secrets = form.take_secrets(&kept);
    let add_document = std::mem::take(&mut form.add_document) == "1";
    let again = |form: AgentForm, secrets: KeptSecrets, errors: Vec<FieldError>, notice: Option<String>| {
        let flash =
            Flash { notice: notice.map(|n| (crate::flash::Level::Error, n)), form: Some(form), errors, secrets };
        let anchor = if add_document { "#f-knowledge_base" } else { "" };
        ctx.redirect(&format!("{}{anchor}", ctx.with_flash(&back, flash)));
    };
    if add_document {
        again(form, secrets, Vec::new(), None);
        return Ok(());
    }

    let (draft, local) = form.to_draft(&secrets);
    if !local.is_empty() {
        let errors = all_errors(&draft, local, editing);
        again(form, secrets, errors, None);
        return Ok(());
    }
    let api = ctx.api_for(&session);
    let saved = if editing {
        match form.version.trim().parse::<i64>() {
            Ok(version) => api.update_agent(&form.id, version, &draft).await,
            Err(_) => Err(ApiFailure::Invalid(vec![FieldError {
                field: "version".into(),
                reason: "is missing: open the agent again and redo the change".into(),
            }])),
        }
    } else {
        api.create_agent(&draft).await
    };
    match saved {
        Ok(agent) => {
            tracing::info!(agent_id = %agent.id, version = agent.version, "agent saved from the dashboard");
            let message = match &agent.deployment {
                Some(_) if editing => "Saved. The new configuration is being deployed.",
                Some(_) => "Agent created. Its deployment has started.",
                None => "Saved. (This control plane does not deploy agents.)",
            };
            ctx.redirect(&ctx.with_flash(&format!("/agents/{}", agent.id), Flash::success(message)));
        }
        Err(ApiFailure::Invalid(mut errors)) => {
            errors.sort_by_key(|e| crate::fields::position(&e.field));
            again(form, secrets, errors, None)
        }
        Err(ApiFailure::Unauthorized) => ctx.redirect("/sign-in?error=expired"),
        Err(ApiFailure::NotFound) => ctx.redirect(&ctx.with_flash("/", Flash::error(NO_SUCH_AGENT))),
        Err(ApiFailure::Conflict(_)) => again(
            form,
            secrets,
            Vec::new(),
            Some(
                "This agent was changed by someone else since you opened it, so nothing was saved. Your input is below; \
                 open the agent again to see the current version."
                    .into(),
            ),
        ),
        Err(e) => {
            let message = failure_message("saved", &e);
            again(form, secrets, Vec::new(), Some(message));
        }
    }
    Ok(())
}

/// Starts a new deployment of the agent's current configuration.
#[server(endpoint = "redeploy_agent")]
pub async fn redeploy_agent(csrf: String, id: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let page = format!("/agents/{}", super::view::encode(&id));
    let Some(session) = authorized(&ctx, &csrf, &page) else {
        return Ok(());
    };
    match ctx.api_for(&session).start_deployment(&id).await {
        Ok(_) => ctx.redirect(&ctx.with_flash(&page, Flash::success("Deployment started."))),
        Err(ApiFailure::Unauthorized) => ctx.redirect("/sign-in?error=expired"),
        Err(ApiFailure::NotFound) => ctx.redirect(&ctx.with_flash("/", Flash::error(NO_SUCH_AGENT))),
        Err(e) => ctx.redirect(&ctx.with_flash(&page, Flash::error(failure_message("deployed", &e)))),
    }
    Ok(())
}

/// Deletes the agent (if it is still the version shown) and tears its resources
/// down; `call_data` is `keep` or `purge` (transcripts and recordings).
#[server(endpoint = "delete_agent")]
pub async fn delete_agent(csrf: String, id: String, version: String, call_data: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let page = format!("/agents/{}/delete", super::view::encode(&id));
    let Some(session) = authorized(&ctx, &csrf, &page) else {
        return Ok(());
    };
    let purge = match call_data.as_str() {
        "keep" => false,
        "purge" => true,
        _ => {
            ctx.redirect(
                &ctx.with_flash(&page, Flash::error("Choose whether to keep or delete the agent's call data.")),
            );
            return Ok(());
        }
    };
    let Ok(version) = version.trim().parse::<i64>() else {
        ctx.redirect(&ctx.with_flash(&page, Flash::error(FORM_EXPIRED)));
        return Ok(());
    };
    match ctx.api_for(&session).delete_agent(&id, version, purge).await {
        Ok(()) => {
            tracing::info!(agent_id = %id, purge, "agent deleted from the dashboard");
            let message = if purge {
                "Agent deleted. Its resources and its call data are being removed."
            } else {
                "Agent deleted. Its resources are being removed; its call data is kept."
            };
            ctx.redirect(&ctx.with_flash("/", Flash::success(message)));
        }
        Err(ApiFailure::Unauthorized) => ctx.redirect("/sign-in?error=expired"),
        Err(ApiFailure::NotFound) => ctx.redirect(&ctx.with_flash("/", Flash::error(NO_SUCH_AGENT))),
        Err(ApiFailure::Conflict(_)) => ctx.redirect(&ctx.with_flash(
            &page,
            Flash::error(
                "The agent was changed since this page was opened, so it was not deleted. Review it and try again.",
            ),
        )),
        Err(e) => ctx.redirect(&ctx.with_flash(&page, Flash::error(failure_message("deleted", &e)))),
    }
    Ok(())
}

/// Points the agent's number at it again (a number that drifted), then back to the
/// numbers page with what happened.
#[server(endpoint = "repoint_number")]
pub async fn repoint_number(csrf: String, id: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let page = "/numbers";
    let Some(session) = authorized(&ctx, &csrf, page) else {
        return Ok(());
    };
    match ctx.api_for(&session).repoint_number(&id).await {
        Ok(done) => {
            let message = format!(
                "{} now routes to {}.",
                done.number.phone_number,
                done.number.voice_url.as_deref().unwrap_or("the agent")
            );
            ctx.redirect(&ctx.with_flash(page, Flash::success(message)));
        }
        Err(ApiFailure::Unauthorized) => ctx.redirect("/sign-in?error=expired"),
        Err(ApiFailure::NotFound) => ctx.redirect(&ctx.with_flash(page, Flash::error(NO_SUCH_AGENT))),
        Err(ApiFailure::Conflict(message) | ApiFailure::Status { message, .. }) => {
            ctx.redirect(&ctx.with_flash(page, Flash::error(format!("The number was not re-pointed: {message}"))))
        }
        Err(e) => {
            tracing::error!(error = %e, "control-plane call failed");
            ctx.redirect(&ctx.with_flash(
                page,
                Flash::error("The number was not re-pointed: the control plane did not answer. Try again in a moment."),
            ))
        }
    }
    Ok(())
}

/// Has the agent call `to`, then back to the agent's page with the call's sid (or
/// why it could not call).
#[server(endpoint = "place_call")]
pub async fn place_call(csrf: String, id: String, to: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let page = format!("/agents/{}", super::view::encode(&id));
    let Some(session) = authorized(&ctx, &csrf, &page) else {
        return Ok(());
    };
    let to = to.trim().to_owned();
    let message = match ctx.api_for(&session).place_call(&id, &to).await {
        Ok(placed) => {
            ctx.redirect(&ctx.with_flash(
                &page,
                Flash::success(format!("Calling {} from {} (call {}).", placed.to, placed.from, placed.call_sid)),
            ));
            return Ok(());
        }
        Err(ApiFailure::Unauthorized) => {
            ctx.redirect("/sign-in?error=expired");
            return Ok(());
        }
        Err(ApiFailure::NotFound) => {
            ctx.redirect(&ctx.with_flash("/", Flash::error(NO_SUCH_AGENT)));
            return Ok(());
        }
        Err(ApiFailure::Invalid(fields)) => {
            fields.iter().map(|f| format!("{}: {}", f.field, f.reason)).collect::<Vec<_>>().join("; ")
        }
        Err(ApiFailure::Conflict(message) | ApiFailure::Status { message, .. }) => message,
        Err(ApiFailure::TooManyAttempts { retry_after }) => {
            format!("too many failed attempts; try again in {retry_after} s")
        }
        Err(e) => {
            tracing::error!(error = %e, "control-plane call failed");
            "the control plane did not answer; try again in a moment".to_owned()
        }
    };
    ctx.redirect(&ctx.with_flash(&page, Flash::error(format!("The agent could not call {to}: {message}"))));
    Ok(())
}

/// Cancels a scheduled callback, then back to the agent's page.
#[server(endpoint = "cancel_callback")]
pub async fn cancel_callback(csrf: String, id: String, callback: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let page = format!("/agents/{}", super::view::encode(&id));
    let Some(session) = authorized(&ctx, &csrf, &page) else {
        return Ok(());
    };
    let flash = match ctx.api_for(&session).cancel_callback(&id, &callback).await {
        Ok(cancelled) => Flash::success(format!("The callback to {} is cancelled.", cancelled.to)),
        Err(ApiFailure::Unauthorized) => {
            ctx.redirect("/sign-in?error=expired");
            return Ok(());
        }
        Err(ApiFailure::NotFound) => Flash::error("No such callback: it may have been removed."),
        Err(ApiFailure::Conflict(message) | ApiFailure::Status { message, .. }) => {
            Flash::error(format!("The callback was not cancelled: {message}."))
        }
        Err(e) => {
            tracing::error!(error = %e, "control-plane call failed");
            Flash::error("The callback was not cancelled: the control plane did not answer. Try again in a moment.")
        }
    };
    ctx.redirect(&ctx.with_flash(&page, flash));
    Ok(())
}
