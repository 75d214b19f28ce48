//! Signing in with an API key.

use leptos::prelude::*;

use super::async_page;
use crate::app::actions::SignIn;
use crate::app::view::Page;

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
