//! The dashboard's server functions, posted as a browser posts its forms (urlencoded,
//! `Accept: text/html`), against the control plane serving the dashboard with the API
//! and deploying into moto: each one requires a session and its CSRF token, acts only
//! on the signed-in tenant's agents, and sends invalid input back to the form with
//! every error and the entered values.

use crate::common;

use common::{AUTH_TOKEN, Platform, agent_body};
use serde_json::Value;

/// A Twilio auth token typed into the form.
const TYPED_TOKEN: &str = "s3cr3tT0kens3cr3tT0kens3cr3tT0ke";

/// A browser without JavaScript: one cookie, no automatic redirects.
struct Browser {
    url: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Reply {
    status: u16,
    location: String,
    set_cookie: String,
    body: String,
}

impl Browser {
    fn new(platform: &Platform) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { url: platform.url.clone(), http, cookie: None }
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        let status = response.status().as_u16();
        Reply { status, location, set_cookie, body: response.text().await.unwrap() }
    }

    async fn get(&self, path: &str) -> Reply {
        let mut request = self.http.get(format!("{}{path}", self.url)).header("accept", "text/html");
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        Self::reply(request.send().await.unwrap()).await
    }

    async fn post(&self, function: &str, form: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(format!("{}/api/{function}", self.url))
            .header("accept", "text/html")
            .header("origin", &self.url)
            .form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        Self::reply(request.send().await.unwrap()).await
    }

    async fn sign_in(&mut self, key: &str) {
        let reply = self.post("sign_in", &[("api_key", key), ("next", "/")]).await;
        assert_eq!((reply.status, reply.location.as_str()), (302, "/"), "sign in");
        self.cookie = Some(reply.set_cookie.split(';').next().unwrap().to_owned());
    }

    /// The CSRF token the page at `path` puts in its forms.
    async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await;
        let at = page.body.find(r#"name="csrf" value=""#).expect("a form with a CSRF token");
        let rest = &page.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

fn agent_form<'a>(csrf: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("csrf", csrf),
        ("agent[name]", "Front desk"),
        ("agent[language]", "en-US"),
        ("agent[system_prompt]", "You answer the phone for Rosa's Bakery."),
        ("agent[greeting]", "Hello, Rosa's Bakery."),
        ("agent[idle_prompt_after_secs]", "10"),
        ("agent[enable_transcription]", "on"),
        ("agent[provider]", "local"),
        ("agent[aws_region]", "us-east-1"),
        ("agent[knowledge][0][title]", "Opening hours"),
        ("agent[knowledge][0][text]", "Open Tuesday to Sunday, seven to three."),
        ("agent[knowledge][1][title]", ""),
        ("agent[knowledge][1][text]", ""),
        ("agent[custom_rules]", "Never discuss pricing.\n\nNever give medical advice."),
        ("agent[max_conversation_turns]", "50"),
        ("agent[max_session_duration_secs]", "1800"),
        ("agent[max_inappropriate_attempts]", "3"),
        ("agent[call_phone_number]", "+14155550100"),
        ("agent[twilio_account_sid]", common::ACCOUNT_SID),
        ("agent[cpu]", "256"),
        ("agent[memory_mib]", "512"),
        ("agent[desired_count]", "1"),
    ];
    for (k, v) in extra {
        match form.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v,
            None => form.push((k, v)),
        }
    }
    form
}

async fn agents(platform: &Platform, key: &str) -> Vec<Value> {
    let (_, page) = platform.api_get("/v1/agents", key).await;
    page["agents"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_protected_expiring_cookie_and_pages_require_it() {
    let platform = Platform::start(&[("TEMPOVOICE_DASHBOARD_SESSION_HOURS", "2")]).await;
    let (tenant_id, key) = platform.tenant("Rosa's Bakery").await;
    let mut browser = Browser::new(&platform);

    // Every page sends a visitor without a session to sign in, and back after.
    for path in ["/", "/agents/new", "/agents/00000000-0000-0000-0000-000000000000/calls"] {
        let reply = browser.get(path).await;
        assert_eq!(reply.status, 302, "{path}");
        assert!(reply.location.starts_with("/sign-in?next="), "{path}: {}", reply.location);
    }

    // A wrong key: back to the form with the reason, no cookie.
    let reply = browser.post("sign_in", &[("api_key", "tvk_nope_nope"), ("next", "/")]).await;
    assert_eq!(reply.status, 302);
    assert!(reply.location.starts_with("/sign-in?error=invalid"), "{}", reply.location);
    assert!(reply.set_cookie.is_empty());
    let page = browser.get(&reply.location).await;
    assert!(page.body.contains("That API key was not accepted"), "{}", page.body);

    // Somewhere off-site is never a destination.
    let reply = browser.post("sign_in", &[("api_key", &key), ("next", "//evil.example/x")]).await;
    assert_eq!(reply.location, "/");

    let reply = browser.post("sign_in", &[("api_key", &key), ("next", "/agents/new")]).await;
    assert_eq!((reply.status, reply.location.as_str()), (302, "/agents/new"));
    let cookie = &reply.set_cookie;
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=7200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http on loopback: {cookie}");
    assert!(!cookie.contains(&key[8..]), "the key is sealed, not readable: {cookie}");
    browser.cookie = Some(cookie.split(';').next().unwrap().to_owned());
    let page = browser.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No agents yet"), "{}", page.body);

    // Unknown pages get the dashboard's 404 page; unknown API routes stay JSON.
    let missing = browser.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page not found"));
    let missing = browser.get("/v1/no/such/route").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("route_not_found"), "{}", missing.body);

    // A cookie that was changed is no session.
    let tampered = browser.cookie.clone().unwrap().replace('=', "=A");
    let forged = Browser { cookie: Some(tampered), ..Browser::new(&platform) };
    assert_eq!(forged.get("/").await.status, 302);

    // Behind TLS termination the cookie is Secure.
    let secure = browser
        .http
        .post(format!("{}/api/sign_in", browser.url))
        .header("accept", "text/html")
        .header("x-forwarded-proto", "https")
        .form(&[("api_key", key.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert!(secure.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));

    // Sign-out needs the session's token; then the cookie is removed.
    let reply = browser.post("sign_out", &[("csrf", "wrong")]).await;
    assert!(reply.set_cookie.is_empty(), "a forged sign-out changes nothing");
    let csrf = browser.csrf("/").await;
    let reply = browser.post("sign_out", &[("csrf", &csrf)]).await;
    assert_eq!(reply.location, "/sign-in?signed_out=1");
    assert!(reply.set_cookie.contains("Max-Age=0"), "{}", reply.set_cookie);

    // A revoked key ends its sessions at the next page.
    let mut browser = Browser::new(&platform);
    browser.sign_in(&key).await;
    let key_id = key.split('_').nth(1).unwrap();
    let status = platform
        .http
        .delete(format!("{}/v1/admin/tenants/{tenant_id}/api-keys/{key_id}", platform.url))
        .bearer_auth(&platform.admin)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "revoke: {status}");
    let reply = browser.get("/").await;
    assert_eq!(reply.status, 302);
    assert!(reply.location.contains("error=expired"), "{}", reply.location);
    assert!(reply.set_cookie.contains("Max-Age=0"));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_agent_requires_a_session_and_its_token_and_keeps_invalid_input() {
    let platform = Platform::start(&[]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let mut browser = Browser::new(&platform);

    // No session: to sign in, nothing created.
    let anonymous = browser.post("save_agent", &agent_form("x", &[("agent[twilio_auth_token]", AUTH_TOKEN)])).await;
    assert_eq!(anonymous.status, 302);
    assert!(anonymous.location.starts_with("/sign-in"), "{}", anonymous.location);

    browser.sign_in(&key).await;
    // A session but a wrong token (a forged cross-site post): nothing created.
    let forged = browser.post("save_agent", &agent_form("forged", &[("agent[twilio_auth_token]", AUTH_TOKEN)])).await;
    assert!(forged.location.starts_with("/agents/new?flash="), "{}", forged.location);
    assert!(browser.get(&forged.location).await.body.contains("could not be verified"));
    assert!(agents(&platform, &key).await.is_empty());

    // A post from another site is refused before it reaches the function.
    let csrf = browser.csrf("/agents/new").await;
    let cross = browser
        .http
        .post(format!("{}/api/save_agent", browser.url))
        .header("accept", "text/html")
        .header("origin", "http://evil.example")
        .header("cookie", browser.cookie.clone().unwrap())
        .form(&agent_form(&csrf, &[("agent[twilio_auth_token]", AUTH_TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(agents(&platform, &key).await.is_empty());

    // Invalid fields: back to the form with each error and the input kept; the
    // secret typed is kept on the server, not written into the page.
    let invalid = browser
        .post(
            "save_agent",
            &agent_form(
                &csrf,
                &[
                    ("agent[name]", ""),
                    ("agent[call_phone_number]", "555-0100"),
                    ("agent[max_conversation_turns]", "lots"),
                    ("agent[memory_mib]", "4096"),
                    ("agent[transcript_webhook_url]", "http://hooks.example.com/t"),
                    ("agent[twilio_auth_token]", TYPED_TOKEN),
                ],
            ),
        )
        .await;
    assert!(invalid.location.starts_with("/agents/new?flash="), "{}", invalid.location);
    assert!(agents(&platform, &key).await.is_empty(), "nothing saved");
    let form = browser.get(&invalid.location).await.body;
    for (id, reason) in [
        ("f-name", "is required"),
        ("f-telephony-call_phone_number", "E.164"),
        ("f-guardrails-max_conversation_turns", "must be a whole number"),
        ("f-sizing-memory_mib", "is not a Fargate memory size"),
        ("f-integrations-transcript_webhook_url", "https"),
    ] {
        let error = format!(r#"id="{id}-error""#);
        let at = form.find(&error).unwrap_or_else(|| panic!("no error next to {id}"));
        assert!(form[at..at + 300].contains(reason), "{id}: {}", &form[at..at + 300]);
        assert!(form.contains(&format!(r#"id="{id}""#)), "{id} input");
    }
    assert!(form.contains(r#"value="555-0100""#), "entered phone kept");
    assert!(form.contains(r#"value="lots""#), "entered number kept");
    assert!(form.contains("Never give medical advice."), "rules kept");
    assert!(form.contains(r#"value="Opening hours""#), "document kept");
    assert!(!form.contains(TYPED_TOKEN), "the secret is not in the page");
    assert!(form.contains("entered, kept"));
    let resume = invalid.location.split("flash=").nth(1).unwrap().to_owned();

    // Fixed, with the secret left blank: the kept one is used; the agent is created.
    let saved = browser
        .post(
            "save_agent",
            &agent_form(
                &csrf,
                &[("agent[resume]", &resume), ("agent[memory_mib]", "1024"), ("agent[enable_recording]", "on")],
            ),
        )
        .await;
    assert!(saved.location.starts_with("/agents/"), "{}", saved.location);
    let list = agents(&platform, &key).await;
    assert_eq!(list.len(), 1);
    let agent = &list[0];
    assert_eq!(agent["secrets"]["twilio_auth_token"], "set");
    assert_eq!(agent["sizing"]["memory_mib"], 1024);
    assert_eq!(agent["enable_recording"], true);
    assert_eq!(agent["knowledge_base"].as_array().unwrap().len(), 1, "the blank document slot is dropped");
    assert_eq!(
        agent["guardrails"]["custom_rules"],
        serde_json::json!(["Never discuss pricing.", "Never give medical advice."])
    );
    let id = agent["id"].as_str().unwrap().to_owned();
    assert!(saved.location.starts_with(&format!("/agents/{id}?flash=")));
    assert!(browser.get(&saved.location).await.body.contains("Its deployment has started"));

    // Edit: a stale version is refused with the input kept; the current one saves.
    let csrf = browser.csrf(&format!("/agents/{id}/edit")).await;
    let edit = |version: &'static str, name: &'static str| {
        let mut form = agent_form(&csrf, &[("agent[id]", &id), ("agent[version]", version), ("agent[name]", name)]);
        form.push(("agent[enable_recording]", "on"));
        form
    };
    let stale = browser.post("save_agent", &edit("7", "Renamed desk")).await;
    assert!(stale.location.starts_with(&format!("/agents/{id}/edit?flash=")), "{}", stale.location);
    let page = browser.get(&stale.location).await.body;
    assert!(page.contains("changed by someone else") && page.contains(r#"value="Renamed desk""#));
    let ok = browser.post("save_agent", &edit("1", "Renamed desk")).await;
    assert!(ok.location.starts_with(&format!("/agents/{id}?flash=")), "{}", ok.location);
    let (_, agent) = platform.api_get(&format!("/v1/agents/{id}"), &key).await;
    assert_eq!((agent["name"].as_str(), agent["version"].as_i64()), (Some("Renamed desk"), Some(2)));
    assert_eq!(agent["secrets"]["twilio_auth_token"], "set", "a blank secret keeps the stored one");

    // "Add another document" saves nothing and shows one more empty document.
    let more = browser
        .post(
            "save_agent",
            &agent_form(&csrf, &[("agent[id]", &id), ("agent[version]", "2"), ("agent[add_document]", "1")]),
        )
        .await;
    assert!(more.location.contains("flash="), "{}", more.location);
    let page = browser.get(more.location.split('#').next().unwrap()).await.body;
    assert!(page.contains(r#"name="agent[knowledge][1][title]""#), "a second slot");
    let (_, agent) = platform.api_get(&format!("/v1/agents/{id}"), &key).await;
    assert_eq!(agent["version"], 2, "nothing saved");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_function_acts_on_the_signed_in_tenants_agents_only() {
    let platform = Platform::start(&[]).await;
    let (_, owner_key) = platform.tenant("Rosa's Bakery").await;
    let (_, other_key) = platform.tenant("Someone else").await;
    let agent = platform.create_agent(&owner_key, agent_body("Front desk", "+14155550100")).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&owner_key, &id).await, "active");

    let mut other = Browser::new(&platform);
    other.sign_in(&other_key).await;
    let csrf = other.csrf("/").await;

    // Another tenant's agent is a 404 page, everywhere.
    for path in [
        format!("/agents/{id}"),
        format!("/agents/{id}/edit"),
        format!("/agents/{id}/delete"),
        format!("/agents/{id}/calls"),
        format!("/agents/{id}/calls/CA0123456789abcdef0123456789abcdef"),
    ] {
        let page = other.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.body.contains("No such agent"), "{path}");
    }
    assert_eq!(
        other.get(&format!("/agents/{id}/calls/CA0123456789abcdef0123456789abcdef/recording.wav")).await.status,
        404
    );
    assert_eq!(
        Browser::new(&platform)
            .get(&format!("/agents/{id}/calls/CA0123456789abcdef0123456789abcdef/recording.wav"))
            .await
            .status,
        401
    );

    // Its server functions refuse it, and change nothing.
    let save = other
        .post(
            "save_agent",
            &agent_form(&csrf, &[("agent[id]", &id), ("agent[version]", "1"), ("agent[name]", "Hijacked")]),
        )
        .await;
    let redeploy = other.post("redeploy_agent", &[("csrf", &csrf), ("id", &id)]).await;
    let delete =
        other.post("delete_agent", &[("csrf", &csrf), ("id", &id), ("version", "1"), ("call_data", "purge")]).await;
    for reply in [&save, &redeploy, &delete] {
        assert!(reply.location.starts_with("/?flash="), "{}", reply.location);
        assert!(other.get(&reply.location).await.body.contains("No such agent"));
    }
    let (status, agent) = platform.api_get(&format!("/v1/agents/{id}"), &owner_key).await;
    assert_eq!((status, agent["name"].as_str(), agent["version"].as_i64()), (200, Some("Front desk"), Some(1)));
    let (_, deployments) = platform.api_get(&format!("/v1/agents/{id}/deployments"), &owner_key).await;
    assert_eq!(deployments["deployments"].as_array().unwrap().len(), 1, "no deployment started by the other tenant");

    // Without a session, or with a wrong token, they do nothing either.
    let anonymous = Browser::new(&platform);
    for (function, form) in [
        ("redeploy_agent", vec![("csrf", "x"), ("id", id.as_str())]),
        ("delete_agent", vec![("csrf", "x"), ("id", id.as_str()), ("version", "1"), ("call_data", "keep")]),
        ("sign_out", vec![("csrf", "x")]),
    ] {
        let reply = anonymous.post(function, &form).await;
        assert!(reply.location.starts_with("/sign-in"), "{function}: {}", reply.location);
    }
    let mut owner = Browser::new(&platform);
    owner.sign_in(&owner_key).await;
    let wrong = owner.post("redeploy_agent", &[("csrf", "forged"), ("id", &id)]).await;
    assert!(owner.get(&wrong.location).await.body.contains("could not be verified"));
    let wrong =
        owner.post("delete_agent", &[("csrf", "forged"), ("id", &id), ("version", "1"), ("call_data", "keep")]).await;
    assert!(owner.get(&wrong.location).await.body.contains("could not be verified"));
    let (status, _) = platform.api_get(&format!("/v1/agents/{id}"), &owner_key).await;
    assert_eq!(status, 200);

    // The owner: redeploy starts a deployment; delete validates its choice and version.
    let csrf = owner.csrf(&format!("/agents/{id}")).await;
    let reply = owner.post("redeploy_agent", &[("csrf", &csrf), ("id", &id)]).await;
    assert!(owner.get(&reply.location).await.body.contains("Deployment started"));
    let (_, deployments) = platform.api_get(&format!("/v1/agents/{id}/deployments"), &owner_key).await;
    assert_eq!(deployments["deployments"].as_array().unwrap().len(), 2);
    let reply =
        owner.post("delete_agent", &[("csrf", &csrf), ("id", &id), ("version", "1"), ("call_data", "maybe")]).await;
    assert!(owner.get(&reply.location).await.body.contains("keep or delete"));
    let reply =
        owner.post("delete_agent", &[("csrf", &csrf), ("id", &id), ("version", "9"), ("call_data", "keep")]).await;
    assert!(owner.get(&reply.location).await.body.contains("was not deleted"));
    let reply =
        owner.post("delete_agent", &[("csrf", &csrf), ("id", &id), ("version", "1"), ("call_data", "purge")]).await;
    assert!(reply.location.starts_with("/?flash="), "{}", reply.location);
    assert!(owner.get(&reply.location).await.body.contains("call data are being removed"));
    let (status, _) = platform.api_get(&format!("/v1/agents/{id}"), &owner_key).await;
    assert_eq!(status, 404);
    let (_, deployments) = platform.api_get(&format!("/v1/agents/{id}/deployments"), &owner_key).await;
    let latest = &deployments["deployments"][0];
    assert_eq!((latest["action"].as_str(), latest["purge_transcripts"].as_bool()), (Some("delete"), Some(true)));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_dashboard_reaches_the_api_over_http() {
    // The control plane without its own dashboard, and the dashboard alone in front
    // of it, as the `dashboard` binary runs it.
    let platform = Platform::start(&[("TEMPOVOICE_DASHBOARD", "off")]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    platform.create_agent(&key, agent_body("Front desk", "+14155550100")).await;
    let api = dashboard::api::ControlPlane::http(url::Url::parse(&platform.url).unwrap());
    let app = dashboard::Dashboard::new(api, &dashboard::DashboardSettings::default()).unwrap();
    let router = dashboard::router(app).fallback(|| async { dashboard::not_found() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let mut browser = Browser { url: url.clone(), ..Browser::new(&platform) };
    assert_eq!(browser.get("/").await.status, 302);
    browser.sign_in(&key).await;
    let page = browser.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Front desk") && page.body.contains("+14155550100"), "{}", page.body);
    assert_eq!(browser.get("/no/such/page").await.status, 404);
    // The API itself answers pages with its JSON 404 when its dashboard is off.
    let reply = Browser { url: platform.url.clone(), ..Browser::new(&platform) }.get("/").await;
    assert_eq!(reply.status, 404);
    assert!(reply.body.contains("route_not_found"), "{}", reply.body);
    server.abort();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_say_why_when_the_api_cannot_serve_them() {
    // A control plane without AWS stores agents but cannot deploy them or read calls.
    let platform = Platform::start(&[("TEMPOVOICE_DEPLOYER", "off")]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let agent = platform.create_agent(&key, agent_body("Front desk", "+14155550100")).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&platform);
    browser.sign_in(&key).await;

    let page = browser.get(&format!("/agents/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("has not been deployed"), "{}", page.body);
    let calls = browser.get(&format!("/agents/{id}/calls")).await;
    assert_eq!(calls.status, 503);
    assert!(calls.body.contains("no AWS access") || calls.body.contains("TEMPOVOICE_DEPLOYER"), "{}", calls.body);
    let csrf = browser.csrf(&format!("/agents/{id}")).await;
    let reply = browser.post("redeploy_agent", &[("csrf", &csrf), ("id", &id)]).await;
    let page = browser.get(&reply.location).await;
    assert!(page.body.contains("could not be deployed"), "{}", page.body);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deployment_shows_its_step_and_error_on_the_agent_page() {
    // Agents are placed on a listener that does not exist: the listener rule fails.
    let listener =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/gone/0123456789abcdef/0123456789abcdef";
    let platform =
        Platform::start(&[("TEMPOVOICE_LISTENERS", listener), ("TEMPOVOICE_DEPLOY_MAX_ATTEMPTS", "1")]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let agent = platform.create_agent(&key, agent_body("Front desk", "+14155550100")).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &id).await, "failed");
    let (_, agent) = platform.api_get(&format!("/v1/agents/{id}"), &key).await;
    let deployment = agent["deployment"]["id"].as_str().unwrap();
    let (_, deployment) = platform.api_get(&format!("/v1/agents/{id}/deployments/{deployment}"), &key).await;
    let error = &deployment["error"];

    let mut browser = Browser::new(&platform);
    browser.sign_in(&key).await;
    let page = browser.get(&format!("/agents/{id}")).await.body;
    assert!(page.contains(r#"<span class="badge failed">failed</span>"#), "{page}");
    let step = error["step"].as_str().expect("the failed step");
    assert!(page.contains(&format!("Failed at {step}")), "{step}: {page}");
    assert!(page.contains(error["error_type"].as_str().unwrap()), "{page}");
    assert!(!page.contains(r#"http-equiv="refresh""#), "a finished deployment does not refresh");
    // Every event is listed, the failure included.
    for event in deployment["events"].as_array().unwrap() {
        let message = event["message"].as_str().unwrap();
        let shown = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        assert!(page.contains(message) || page.contains(&shown), "event {message:?} shown");
    }
    platform.stop().await;
}
