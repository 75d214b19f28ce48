//! An agent's page (voice URL, deployment, configuration) and its deletion.

use agent_spec::api::{AgentResponse, Callback, CallbackStatus, DeploymentAction, DeploymentResponse, SecretState};
use leptos::prelude::*;

use super::{REFRESH_SECS, async_page, not_found, param, truncate};
use crate::app::actions::{CancelCallback, DeleteAgent, PlaceCall, RedeployAgent};
use crate::app::view::{Page, duration, notice, short_time, status_badge, when};

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
        // The page shows what it can without them: a failed list says so in its panel.
        let callbacks = api.list_callbacks(&id).await.map(|l| l.callbacks).map_err(|e| e.to_string());
        // Before the first deploy there is no bucket, so no calls to chart.
        let stats = match agent.deployment {
            Some(_) => Some(api.call_stats(&id, 30).await.map_err(|e| e.to_string())),
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
                    {stats.map(crate::app::chart::panel)}
                    {deployment_panel(&agent, deployment.as_ref(), csrf.clone())}
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
                    {call_panel(&agent, csrf.clone())}
                    {callbacks_panel(&agent, callbacks, csrf)}
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

/// "Call a number": the agent calls out, from its number (once it is deployed).
fn call_panel(agent: &AgentResponse, csrf: String) -> AnyView {
    let number = agent.config.telephony.call_phone_number.to_string();
    if agent.voice_url.is_none() {
        return view! {
            <div class="panel">
                <h2>"Call a number"</h2>
                <p class="muted">"Once the agent is deployed, it can call a number from " <span class="mono">{number}</span> "."</p>
            </div>
        }
        .into_any();
    }
    let id = agent.id.to_string();
    view! {
        <div class="panel">
            <h2>"Call a number"</h2>
            <ActionForm action={ServerAction::<PlaceCall>::new()} attr:id="call-form">
                <input type="hidden" name="csrf" value=csrf/>
                <input type="hidden" name="id" value=id/>
                <div class="field">
                    <label for="call-to">"Number to call"</label>
                    <input type="tel" id="call-to" name="to" required=true placeholder="+14155550123" autocomplete="off" aria-describedby="call-to-hint"/>
                    <p class="hint" id="call-to-hint">
                        "E.164. The agent calls from " <span class="mono">{number}</span>
                        "; an answering machine gets its voicemail message."
                    </p>
                </div>
                <button type="submit">"Call"</button>
            </ActionForm>
        </div>
    }
    .into_any()
}

/// The callbacks callers asked for: those to come (cancellable), then the latest done.
fn callbacks_panel(agent: &AgentResponse, callbacks: Result<Vec<Callback>, String>, csrf: String) -> AnyView {
    let callbacks = match callbacks {
        Ok(list) => list,
        Err(e) => {
            return view! {
                <div class="panel" id="callbacks">
                    <h2>"Callbacks"</h2>
                    <p class="error">"The callbacks could not be loaded: " {e}</p>
                </div>
            }
            .into_any();
        }
    };
    if callbacks.is_empty() {
        return view! {
            <div class="panel" id="callbacks">
                <h2>"Callbacks"</h2>
                <p class="muted">"When a caller asks to be called back, the agent calls them at the time they asked for; the callback shows here."</p>
            </div>
        }
        .into_any();
    }
    let id = agent.id.to_string();
    let rows = callbacks
        .into_iter()
        .take(20)
        .map(|cb| {
            let status = cb.status.as_str();
            let cancellable = cb.status == CallbackStatus::Scheduled;
            let (csrf, id, cb_id) = (csrf.clone(), id.clone(), cb.id.clone());
            let placed = cb.placed_call_sid.as_ref().map(|sid| {
                view! { <a class="mono" href=format!("/agents/{id}/calls/{sid}")>"the call"</a> }
            });
            view! {
                <li class="callback" id=format!("callback-{}", cb.id)>
                    <div class="callback-head">
                        <span class="mono">{cb.to.clone()}</span>
                        <span class=format!("badge {status}")>{status}</span>
                    </div>
                    <div>{when(cb.due_at)} <span class="muted">" · asked: “" {cb.requested_time.clone()} "”"</span></div>
                    {placed}
                    {cb.error.clone().map(|e| view! { <div class="muted">{e}</div> })}
                    {cancellable.then(|| view! {
                        <ActionForm action={ServerAction::<CancelCallback>::new()}>
                            <input type="hidden" name="csrf" value=csrf/>
                            <input type="hidden" name="id" value=id/>
                            <input type="hidden" name="callback" value=cb_id/>
                            <button type="submit" class="secondary">"Cancel"</button>
                        </ActionForm>
                    })}
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="panel" id="callbacks">
            <h2>"Callbacks"</h2>
            <ul class="callbacks">{rows}</ul>
        </div>
    }
    .into_any()
}

fn voice_url_panel(agent: &AgentResponse) -> AnyView {
    match &agent.voice_url {
        Some(url) => view! {
            <div class="panel">
                <h2>"Twilio voice URL"</h2>
                {if agent.config.telephony.configure_number {
                    view! {
                        <p class="hint" id="voice-url-hint">
                            "Each deploy points " <span class="mono">{agent.config.telephony.call_phone_number.to_string()}</span>
                            " at this URL in your Twilio account; the deployment's Twilio number step says what it changed."
                        </p>
                    }.into_any()
                } else {
                    view! {
                        <p class="hint" id="voice-url-hint">
                            "In the Twilio console, open " <span class="mono">{agent.config.telephony.call_phone_number.to_string()}</span>
                            " and paste this as “A call comes in” (Webhook, HTTP POST)."
                        </p>
                    }.into_any()
                }}
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

/// `nova-sonic · amazon.nova-2-sonic-v1:0 · voice tiffany · us-east-1 · endpointing
/// medium · temperature 0.7`: the provider, model, voice and the provider's settings.
fn speech_summary(c: &agent_spec::AgentConfig) -> String {
    let v = &c.voice;
    let mut parts = vec![v.provider.as_str().to_owned(), v.model.to_string(), format!("voice {}", v.voice_id)];
    if v.provider == agent_spec::SpeechProvider::NovaSonic {
        parts.push(c.integrations.aws_region.to_string());
    }
    if let Some(t) = v.turn_detection {
        parts.push(match v.eagerness {
            Some(e) => format!("{} (eagerness {})", t.as_str(), e.as_str()),
            None => t.as_str().to_owned(),
        });
    }
    if let Some(e) = v.endpointing_sensitivity {
        parts.push(format!("endpointing {}", e.as_str()));
    }
    if let Some(t) = v.temperature {
        parts.push(format!("temperature {t}"));
    }
    parts.join(" · ")
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
                <dt>"Speech"</dt><dd>{speech_summary(c)}</dd>
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
                <dt>"Sizing"</dt><dd>{format!("{} CPU · {} MiB · {} · {}", c.sizing.cpu, c.sizing.memory_mib, tasks_line(&c.sizing), c.sizing.cpu_architecture.as_str())}</dd>
                <dt>"Runtime image"</dt><dd class="mono">{agent.runtime_image.clone().unwrap_or_else(|| "none running yet".to_owned())}</dd>
            </dl>
        </div>
    }
    .into_any()
}

/// "2 tasks", "paused", or "1–4 tasks, scaling at 35 of 50 calls each".
fn tasks_line(s: &agent_spec::config::Sizing) -> String {
    if s.min_tasks == 0 {
        "paused".to_owned()
    } else if s.scales() {
        format!(
            "{}–{} tasks, scaling at {} of {} calls each",
            s.min_tasks, s.max_tasks, s.target_calls_per_task, s.calls_per_task
        )
    } else {
        format!("{} task(s) of {} calls each", s.min_tasks, s.calls_per_task)
    }
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
                    {if agent.config.telephony.configure_number {
                        view! {
                            <span>"Its number " <span class="mono">{agent.config.telephony.call_phone_number.to_string()}</span>
                            " gets back the voice URL it had before the agent took it, unless it was re-pointed since."</span>
                        }.into_any()
                    } else {
                        view! {
                            <span>"Calls to " <span class="mono">{agent.config.telephony.call_phone_number.to_string()}</span> " will fail until the number points elsewhere."</span>
                        }.into_any()
                    }}
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
