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
        ApiFailure::Conflict(message) => format!("The agent could not be {action}: {message}"),
        e => {
            tracing::error!(error = %e, "control-plane call failed");
            format!("The agent could not be {action}: the control plane did not answer. Try again in a moment.")
        }
    }
}

/// Checks the API key by listing one agent; on success the session cookie is set
/// and the browser goes to `next`.
#[server(endpoint = "sign_in")]
pub async fn sign_in(api_key: String, next: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    let key = api_key.trim().to_owned();
    let back = |error: &str| format!("/sign-in?error={error}&next={}", super::view::encode(&next));
    if key.is_empty() {
        ctx.redirect(&back("invalid"));
        return Ok(());
    }
    let api = ctx.dashboard.api.tenant(SecretString::from(key.clone()));
    match api.list_agents(None, 1).await {
        Ok(_) => {
            let session = Session::new(SecretString::from(key), ctx.dashboard.session_lifetime);
            let sealed = ctx.dashboard.sessions.seal(&session);
            ctx.set_cookie(session::set_cookie(
                &sealed,
                ctx.dashboard.session_lifetime,
                ctx.dashboard.secure(&ctx.parts.headers),
            ));
            tracing::info!(key_id = session.key_id(), "signed in");
            let to = if super::pages::is_local_path(&next) { next } else { "/".to_owned() };
            ctx.redirect(&to);
        }
        Err(ApiFailure::Unauthorized) => ctx.redirect(&back("invalid")),
        Err(e) => {
            tracing::error!(error = %e, "sign-in could not reach the control plane");
            ctx.redirect(&back("unreachable"));
        }
    }
    Ok(())
}

#[server(endpoint = "sign_out")]
pub async fn sign_out(csrf: String) -> Result<(), ServerFnError> {
    let ctx = RequestContext::current();
    if authorized(&ctx, &csrf, "/").is_some() {
        ctx.clear_session();
        ctx.redirect("/sign-in?signed_out=1");
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
    let api = ctx.dashboard.api.tenant(session.api_key.clone());
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
    match ctx.dashboard.api.tenant(session.api_key.clone()).start_deployment(&id).await {
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
    match ctx.dashboard.api.tenant(session.api_key.clone()).delete_agent(&id, version, purge).await {
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
