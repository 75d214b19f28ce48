//! Pointing an agent's Twilio number at it when its deployment becomes active, and
//! giving the number its previous routing back when the agent is deleted or moves to
//! another number (`telephony.configure_number`).
//!
//! Pointing a number:
//! 1. a binding the agent holds of another number is given back first;
//! 2. the number must not be held by another agent (the `number_bindings` table),
//!    nor route to another live agent of this control plane (its voice URL);
//! 3. the number is looked up in the agent's Twilio account (IncomingPhoneNumbers);
//!    one on an Elastic SIP trunk is refused (the trunk routes it, not its URL);
//! 4. the binding is written, with the routing found, before Twilio is asked to
//!    change anything: a crash in between leaves the previous routing on record;
//! 5. the number gets `VoiceUrl` (POST), the status callback, and no TwiML app.
//!
//! Giving it back restores the recorded routing, unless someone has re-pointed the
//! number since (then it is left alone, and the event says so).

use agent_spec::api::DeploymentError;
use agent_spec::{AgentId, AgentSecrets, TenantId};

use super::worker::store_error;
use crate::settings::Settings;
use crate::store::Store;
use crate::store::numbers::{NewBinding, NumberBinding};
use crate::twilio::{TwilioApi, TwilioError, VoiceRouting};

/// The deployment step these errors and events carry.
pub const STEP: &str = "twilio_number";

/// What an agent needs pointed: its number, account and credentials, and where.
pub struct Target<'a> {
    pub tenant: &'a TenantId,
    pub agent: &'a AgentId,
    pub account_sid: &'a str,
    pub phone_number: &'a str,
    pub secrets: &'a AgentSecrets,
    pub voice_url: &'a str,
    pub status_callback: &'a str,
}

pub struct Numbers<'a> {
    pub store: &'a Store,
    /// `None`: this control plane does not manage numbers (`TEMPOVOICE_TWILIO_API_BASE=off`).
    pub twilio: Option<&'a TwilioApi>,
    pub settings: &'a Settings,
}

const OFF: &str = "this control plane does not point numbers (TEMPOVOICE_TWILIO_API_BASE=off)";

fn error(retryable: bool, code: &str, message: String) -> DeploymentError {
    super::worker::step_error(STEP, retryable, code, message)
}

/// A Twilio failure, worded for the tenant (it is their account).
fn twilio_error(e: &TwilioError, account_sid: &str, what: &str) -> DeploymentError {
    match e {
        TwilioError::Unauthorized { .. } => error(
            false,
            "twilio_credentials",
            format!(
                "Twilio refused the credentials of account {account_sid} while {what}: check \
                 telephony.twilio_account_sid and secrets.twilio_auth_token"
            ),
        ),
        TwilioError::Rejected { code, .. } => {
            let code = code.map(|c| format!("twilio_{c}")).unwrap_or_else(|| "twilio_rejected".into());
            error(e.retryable(), &code, format!("{what}: {e}"))
        }
        TwilioError::Unreachable(_) => error(true, "twilio_unreachable", format!("{what}: {e}")),
    }
}

fn shown(url: &str) -> &str {
    if url.is_empty() { "no voice URL" } else { url }
}

impl Numbers<'_> {
    /// Points the agent's number at it (or, with `configure_number` off, only gives
    /// back a number it held), adding what it did to `events` (also when it fails
    /// half-way).
    pub async fn point(
        &self,
        target: &Target<'_>,
        configure: bool,
        events: &mut Vec<String>,
    ) -> Result<(), DeploymentError> {
        let existing = self.store.number_binding(target.tenant, target.agent).await.map_err(store_error)?;
        let same_number =
            |b: &NumberBinding| b.account_sid == target.account_sid && b.phone_number == target.phone_number;
        if let Some(binding) = existing.as_ref().filter(|b| !same_number(b)) {
            events.push(self.give_back(binding).await?);
        }
        let Some(twilio) = self.twilio.filter(|_| configure) else {
            if !configure {
                if let Some(binding) = existing.as_ref().filter(|b| same_number(b)) {
                    self.store.remove_number_binding(target.tenant, target.agent).await.map_err(store_error)?;
                    events.push(format!(
                        "{} is no longer managed (telephony.configure_number is off): left routing to {}",
                        binding.phone_number, binding.voice_url
                    ));
                } else {
                    events.push(format!(
                        "{} left as it is (telephony.configure_number is off): point its voice URL at {} in Twilio",
                        target.phone_number, target.voice_url
                    ));
                }
            } else {
                events.push(format!(
                    "{} not pointed at the agent: {OFF}; point its voice URL at {} in Twilio",
                    target.phone_number, target.voice_url
                ));
            }
            return Ok(());
        };

        if let Some((holder_tenant, holder)) =
            self.store.number_holder(target.account_sid, target.phone_number).await.map_err(store_error)?
        {
            if &holder != target.agent {
                return Err(in_use(target, (&holder_tenant == target.tenant).then_some(&holder)));
            }
        }
        let token = &target.secrets.twilio_auth_token;
        let looking = format!("looking up {} in account {}", target.phone_number, target.account_sid);
        let number = twilio
            .find(target.account_sid, token, target.phone_number)
            .await
            .map_err(|e| twilio_error(&e, target.account_sid, &looking))?
            .ok_or_else(|| {
                error(
                    false,
                    "number_not_in_account",
                    format!(
                        "{} is not a number of Twilio account {}: buy or port it into that account, or correct \
                         telephony.call_phone_number or telephony.twilio_account_sid",
                        target.phone_number, target.account_sid
                    ),
                )
            })?;
        if !number.trunk_sid.is_empty() {
            return Err(error(
                false,
                "number_on_sip_trunk",
                format!(
                    "{} belongs to Elastic SIP trunk {}, which routes its calls instead of a voice URL: remove it \
                     from the trunk in Twilio, or set telephony.configure_number to false",
                    target.phone_number, number.trunk_sid
                ),
            ));
        }
        if let Some(other) = self.settings.agent_of_voice_url(&number.voice_url).filter(|a| a != target.agent) {
            if let Some(other_tenant) = self.store.agent_tenant(&other).await.map_err(store_error)? {
                return Err(in_use(target, (&other_tenant == target.tenant).then_some(&other)));
            }
        }

        // What to give back one day: what was there before this agent, kept across
        // re-deploys; nothing when the number already routes here with no record.
        let previous = match existing.as_ref().filter(|b| same_number(b)) {
            Some(b) => b.previous.clone(),
            None if number.voice_url == target.voice_url => VoiceRouting::default(),
            None => number.routing(),
        };
        let saved = self
            .store
            .save_number_binding(
                target.tenant,
                target.agent,
                NewBinding {
                    account_sid: target.account_sid,
                    phone_number: target.phone_number,
                    number_sid: &number.sid,
                    secrets: target.secrets,
                    voice_url: target.voice_url,
                    previous: &previous,
                },
            )
            .await
            .map_err(store_error)?;
        if saved.is_err() {
            return Err(in_use(target, None));
        }

        let wanted = VoiceRouting {
            voice_url: target.voice_url.to_owned(),
            voice_method: "POST".into(),
            voice_application_sid: String::new(),
            status_callback: target.status_callback.to_owned(),
            status_callback_method: "POST".into(),
        };
        if number.routing() == wanted {
            events.push(format!("{} already routes to {}", target.phone_number, target.voice_url));
            return Ok(());
        }
        let pointing = format!("pointing {} at the agent", target.phone_number);
        let now = twilio
            .route(target.account_sid, token, &number.sid, &wanted)
            .await
            .map_err(|e| twilio_error(&e, target.account_sid, &pointing))?;
        if now.voice_url != target.voice_url {
            return Err(error(
                true,
                "not_applied",
                format!(
                    "Twilio accepted the change of {} but still routes it to {}",
                    target.phone_number,
                    shown(&now.voice_url)
                ),
            ));
        }
        let was = if number.voice_application_sid.is_empty() {
            shown(&number.voice_url).to_owned()
        } else {
            format!("TwiML app {}", number.voice_application_sid)
        };
        events.push(format!("{} now routes to {} (was {was})", target.phone_number, target.voice_url));
        Ok(())
    }

    /// Gives `binding`'s number its previous routing back and forgets the binding.
    /// Only a failure worth retrying is an error: one that would never succeed
    /// (the credentials were revoked, say) is told in the returned event, and the
    /// binding is forgotten, so a delete is never held up by it.
    pub async fn give_back(&self, binding: &NumberBinding) -> Result<String, DeploymentError> {
        let message = match self.restore(binding).await {
            Ok(message) => message,
            Err(e) if e.retryable => return Err(e),
            Err(e) => format!("{} could not be given its previous routing back: {}", binding.phone_number, e.message),
        };
        self.store.remove_number_binding(&binding.tenant_id, &binding.agent_id).await.map_err(store_error)?;
        Ok(message)
    }

    async fn restore(&self, binding: &NumberBinding) -> Result<String, DeploymentError> {
        let Some(twilio) = self.twilio else {
            return Ok(format!(
                "{} could not be given its previous routing back: {OFF}; it still routes to {}",
                binding.phone_number, binding.voice_url
            ));
        };
        let token = &binding.secrets.twilio_auth_token;
        let account = binding.account_sid.as_str();
        let what = format!("giving {} back its previous routing", binding.phone_number);
        let Some(number) =
            twilio.find(account, token, &binding.phone_number).await.map_err(|e| twilio_error(&e, account, &what))?
        else {
            return Ok(format!("{} is no longer in account {account}: nothing to give back", binding.phone_number));
        };
        if number.voice_url != binding.voice_url {
            return Ok(format!(
                "{} was re-pointed to {} since: left as it is",
                binding.phone_number,
                shown(&number.voice_url)
            ));
        }
        let previous = &binding.previous;
        twilio.route(account, token, &number.sid, previous).await.map_err(|e| twilio_error(&e, account, &what))?;
        let to = if previous.voice_application_sid.is_empty() {
            shown(&previous.voice_url).to_owned()
        } else {
            format!("TwiML app {}", previous.voice_application_sid)
        };
        Ok(format!("{} given back its previous routing: {to}", binding.phone_number))
    }
}

fn in_use(target: &Target<'_>, same_tenant_agent: Option<&AgentId>) -> DeploymentError {
    let whom = match same_tenant_agent {
        Some(agent) => format!("your agent {agent}"),
        None => "another TempoVoice agent".into(),
    };
    error(
        false,
        "number_in_use",
        format!(
            "{} is already pointed at {whom}: delete that agent or move it to another number first, or set \
             telephony.configure_number to false",
            target.phone_number
        ),
    )
}

/// How long a live look at one number may take (a page of numbers waits for the slowest).
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What is needed to look at one agent's number.
pub struct Look<'a> {
    pub agent: &'a crate::store::agents::StoredAgent,
    pub token: &'a secrecy::SecretString,
    /// The agent's voice URL, once it is placed.
    pub voice_url: Option<&'a str>,
    pub previous_voice_url: Option<String>,
}

impl Numbers<'_> {
    /// Where the agent's number routes now, read from Twilio.
    pub async fn look(&self, look: Look<'_>) -> agent_spec::api::NumberStatus {
        use agent_spec::api::{NumberRouting, NumberState};
        let t = &look.agent.config.telephony;
        let (account, phone) = (t.twilio_account_sid.as_str(), t.call_phone_number.as_str());
        let routing = |state: NumberState, detail: Option<String>| NumberRouting {
            state,
            voice_url: None,
            voice_application_sid: None,
            routes_to_agent: None,
            detail,
        };
        let routing = match self.twilio {
            None => routing(NumberState::NotChecked, Some(OFF.to_owned())),
            Some(twilio) => match tokio::time::timeout(CHECK_TIMEOUT, twilio.find(account, look.token, phone)).await {
                Err(_) => routing(
                    NumberState::Unreachable,
                    Some(format!("Twilio did not answer within {} s", CHECK_TIMEOUT.as_secs())),
                ),
                Ok(Err(TwilioError::Unauthorized { .. })) => routing(
                    NumberState::CredentialsRefused,
                    Some(format!("Twilio refused the credentials of account {account}")),
                ),
                Ok(Err(e)) => routing(NumberState::Unreachable, Some(e.to_string())),
                Ok(Ok(None)) => routing(
                    NumberState::NotInAccount,
                    Some(format!("{phone} is not a number of Twilio account {account}")),
                ),
                Ok(Ok(Some(number))) => self.judge(&look, &number).await,
            },
        };
        agent_spec::api::NumberStatus {
            phone_number: phone.to_owned(),
            account_sid: account.to_owned(),
            agent_id: look.agent.id.clone(),
            agent_name: look.agent.config.name.clone(),
            configure_number: t.configure_number,
            voice_url: look.voice_url.map(str::to_owned),
            routing,
            previous_voice_url: look.previous_voice_url,
        }
    }

    async fn judge(&self, look: &Look<'_>, number: &crate::twilio::IncomingNumber) -> agent_spec::api::NumberRouting {
        use agent_spec::api::{NumberRouting, NumberState};
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        // Another agent of this tenant, named; another tenant's is not.
        let mut routes_to_agent = self.settings.agent_of_voice_url(&number.voice_url);
        if let Some(other) = routes_to_agent.as_ref().filter(|a| **a != look.agent.id) {
            let theirs = self.store.agent_tenant(other).await.ok().flatten();
            if theirs.as_ref() != Some(&look.agent.tenant_id) {
                routes_to_agent = None;
            }
        }
        let (state, detail) = if !number.trunk_sid.is_empty() {
            (NumberState::Drifted, Some(format!("Elastic SIP trunk {} routes the number", number.trunk_sid)))
        } else if !number.voice_application_sid.is_empty() {
            (NumberState::Drifted, Some(format!("TwiML app {} routes the number", number.voice_application_sid)))
        } else {
            match look.voice_url {
                None => (NumberState::NotDeployed, Some("the agent has no voice URL until it is deployed".into())),
                Some(url) if url == number.voice_url => (NumberState::Matches, None),
                Some(_) => (NumberState::Drifted, Some(format!("the number routes to {}", shown(&number.voice_url)))),
            }
        };
        NumberRouting {
            state,
            voice_url: non_empty(&number.voice_url),
            voice_application_sid: non_empty(&number.voice_application_sid),
            routes_to_agent,
            detail,
        }
    }
}
