//! Signing in with an API key.

use leptos::prelude::*;

use super::async_page;
use crate::app::actions::SignIn;
use crate::app::view::Page;
use crate::session::{self, SIGN_IN_LIFETIME, SignInToken};

#[component]
pub fn SignInPage() -> impl IntoView {
    async_page(|ctx| async move {
        let next = ctx.query("next").map(|n| crate::app::after_sign_in(&n)).unwrap_or_else(|| "/".into());
        if ctx.session.is_some() && ctx.query("error").is_none() {
            ctx.redirect(&next);
        }
        // The form's token: the one this browser holds if it has long enough to
        // live (so two open sign-in tabs both work), else a new one.
        let now = time::OffsetDateTime::now_utc();
        let token = match ctx.dashboard.sign_in_token(&ctx.parts.headers) {
            Some(token) if token.expires_at - now > SIGN_IN_LIFETIME / 2 => token,
            _ => {
                let token = SignInToken::new(now);
                let sealed = ctx.dashboard.sessions.seal_sign_in(&token);
                ctx.set_cookie(session::set_cookie(
                    session::SIGN_IN_COOKIE,
                    &sealed,
                    SIGN_IN_LIFETIME,
                    ctx.secure_cookies(),
                ));
                token
            }
        };
        let throttled = format!(
            "Too many failed sign-in attempts. Try again in {} seconds.",
            ctx.query("retry_after").and_then(|s| s.parse::<u64>().ok()).unwrap_or(60)
        );
        let message = match ctx.query("error").as_deref() {
            Some("invalid") => {
                Some(("notice error", "That API key was not accepted: check it, or ask for a new one.".to_owned()))
            }
            Some("expired") => Some(("notice error", "Your session ended. Sign in again to continue.".to_owned())),
            Some("unreachable") => {
                Some(("notice error", "The control plane could not be reached. Try again in a moment.".to_owned()))
            }
            Some("form") => Some((
                "notice error",
                "This sign-in form could not be verified (it may have been open too long). Nothing was sent: \
                 sign in again."
                    .to_owned(),
            )),
            Some("throttled") => Some(("notice error", throttled)),
            Some(_) => Some(("notice error", "Sign in to continue.".to_owned())),
            None if ctx.query("signed_out").is_some() => Some(("notice success", "You are signed out.".to_owned())),
            None => None,
        };
        let body = view! {
            <div class="signin">
                <h1>"Sign in"</h1>
                <p class="muted">"Use your tenant's API key (it starts with " <span class="mono">"tvk_"</span> ")."</p>
                {message.map(|(class, text)| view! { <div class=class role="alert">{text}</div> })}
                <div class="panel">
                    <ActionForm action={ServerAction::<SignIn>::new()}>
                        <input type="hidden" name="csrf" value=token.nonce/>
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
