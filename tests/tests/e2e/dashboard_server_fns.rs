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

/// A browser without JavaScript: a cookie jar, no automatic redirects.
struct Browser {
    url: String,
    http: reqwest::Client,
    /// Cookies by name, as the server set them.
    cookies: std::collections::BTreeMap<String, String>,
}

struct Reply {
    status: u16,
    location: String,
    /// Every `Set-Cookie` header, one per line.
    set_cookie: String,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new(platform: &Platform) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { url: platform.url.clone(), http, cookies: Default::default() }
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let set_cookie: Vec<&str> =
            response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
        let set_cookie = set_cookie.join("\n");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Reply { status, location, set_cookie, headers, body: response.text().await.unwrap() }
    }

    /// Keeps the cookies a reply set, and forgets those it removed (`Max-Age=0`).
    fn keep(&mut self, reply: &Reply) {
        for line in reply.set_cookie.lines().filter(|l| !l.is_empty()) {
            let (name, value) = line.split(';').next().unwrap().split_once('=').unwrap();
            if line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> Reply {
        let mut request = self.http.get(format!("{}{path}", self.url)).header("accept", "text/html");
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        let reply = Self::reply(request.send().await.unwrap()).await;
        self.keep(&reply);
        reply
    }

    async fn post(&mut self, function: &str, form: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(format!("{}/api/{function}", self.url))
            .header("accept", "text/html")
            .header("origin", &self.url)
            .form(form);
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        let reply = Self::reply(request.send().await.unwrap()).await;
        self.keep(&reply);
        reply
    }

    /// Opens the sign-in page (which sets the form's token cookie) and posts it.
    async fn sign_in_as(&mut self, key: &str, next: &str) -> Reply {
        let csrf = self.csrf("/sign-in").await;
        self.post("sign_in", &[("csrf", &csrf), ("api_key", key), ("next", next)]).await
    }

    async fn sign_in(&mut self, key: &str) {
        let reply = self.sign_in_as(key, "/").await;
        assert_eq!((reply.status, reply.location.as_str()), (302, "/"), "sign in");
        assert!(self.cookies.contains_key("tempovoice_session"), "{}", reply.set_cookie);
    }

    /// The CSRF token the page at `path` puts in its forms.
    async fn csrf(&mut self, path: &str) -> String {
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
        ("agent[voicemail_message]", "Sorry we missed you. We will call again."),
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
        ("agent[min_tasks]", "1"),
        ("agent[max_tasks]", "3"),
        ("agent[calls_per_task]", "40"),
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

    // A wrong key: back to the form with the reason, no session cookie.
    let reply = browser.sign_in_as("tvk_nope_nope", "/").await;
    assert_eq!(reply.status, 302);
    assert!(reply.location.starts_with("/sign-in?error=invalid"), "{}", reply.location);
    assert!(!reply.set_cookie.contains("tempovoice_session"));
    let page = browser.get(&reply.location).await;
    assert!(page.body.contains("That API key was not accepted"), "{}", page.body);

    let reply = browser.sign_in_as(&key, "/agents/new").await;
    assert_eq!((reply.status, reply.location.as_str()), (302, "/agents/new"));
    let cookie = reply.set_cookie.lines().find(|l| l.starts_with("tempovoice_session=")).expect("the session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=7200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure") && !cookie.contains("Domain"), "plain http on loopback: {cookie}");
    assert!(!cookie.contains(&key[4..]), "the key is not in the cookie: {cookie}");
    assert!(reply.set_cookie.contains("tempovoice_sign_in=; "), "the form's token is spent: {}", reply.set_cookie);
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
    let mut forged = Browser::new(&platform);
    forged.cookies = browser.cookies.clone();
    forged.cookies.get_mut("tempovoice_session").unwrap().insert(0, 'A');
    assert_eq!(forged.get("/").await.status, 302);

    // Sign-out needs the session's token; then the cookie is removed.
    let reply = browser.post("sign_out", &[("csrf", "wrong")]).await;
    assert!(!reply.set_cookie.contains("tempovoice_session"), "a forged sign-out changes nothing");
    let csrf = browser.csrf("/").await;
    let reply = browser.post("sign_out", &[("csrf", &csrf)]).await;
    assert_eq!(reply.location, "/sign-in?signed_out=1");
    assert!(reply.set_cookie.contains("tempovoice_session=; ") && reply.set_cookie.contains("Max-Age=0"));

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
async fn a_session_cookie_copied_before_sign_out_is_refused_after_it() {
    let platform = Platform::start(&[]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let agent = platform.create_agent(&key, agent_body("Front desk", "+14155550100")).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&platform);
    browser.sign_in(&key).await;
    let recording = format!("/agents/{id}/calls/CA0123456789abcdef0123456789abcdef/recording.wav");

    // Someone copies the cookie (a shared computer, a stolen backup, malware), and
    // reads a form's token while the session lasts.
    let copied = browser.cookies.clone();
    let mut thief = Browser::new(&platform);
    thief.cookies = copied.clone();
    let thief_csrf = thief.csrf(&format!("/agents/{id}")).await;

    let csrf = browser.csrf("/").await;
    let reply = browser.post("sign_out", &[("csrf", &csrf)]).await;
    assert_eq!(reply.location, "/sign-in?signed_out=1");

    // The session ended in the API: the copy is worthless, on every page and form.
    let reply = thief.get(&format!("/agents/{id}")).await;
    assert_eq!(reply.status, 302);
    assert!(
        reply.location.starts_with("/sign-in?next=") && reply.location.contains("error=expired"),
        "{}",
        reply.location
    );
    let page = thief.get(&reply.location).await;
    assert!(page.body.contains("Your session ended"), "the sign-in page: {}", page.body);
    for path in ["/".to_owned(), format!("/agents/{id}/edit"), recording.clone()] {
        let mut thief = Browser::new(&platform);
        thief.cookies = copied.clone();
        let status = thief.get(&path).await.status;
        assert!(status == 302 || status == 401, "{path}: {status}");
    }
    let mut thief = Browser::new(&platform);
    thief.cookies = copied.clone();
    assert_eq!(thief.get(&recording).await.status, 401);
    let reply = thief.post("redeploy_agent", &[("csrf", &thief_csrf), ("id", &id)]).await;
    assert!(reply.location.starts_with("/sign-in?error=expired"), "{}", reply.location);
    let (_, deployments) = platform.api_get(&format!("/v1/agents/{id}/deployments"), &key).await;
    assert_eq!(deployments["deployments"].as_array().unwrap().len(), 1, "nothing done with the copy");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_requires_its_forms_token_and_a_same_origin_post() {
    let platform = Platform::start(&[]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let mut browser = Browser::new(&platform);
    let csrf = browser.csrf("/sign-in").await;
    assert!(browser.cookies.contains_key("tempovoice_sign_in"), "rendering the form sets its token cookie");
    let url = platform.url.clone();
    let http = browser.http.clone();
    let post = |origin: Option<&str>, referer: Option<&str>, cookie: Option<String>, token: &str| {
        let mut request = http.post(format!("{url}/api/sign_in")).header("accept", "text/html").form(&[
            ("csrf", token),
            ("api_key", key.as_str()),
            ("next", "/"),
        ]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(referer) = referer {
            request = request.header("referer", referer);
        }
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        async move { Browser::reply(request.send().await.unwrap()).await }
    };
    let jar = Some(browser.cookie_header());
    let signed_in = |reply: &Reply| reply.set_cookie.contains("tempovoice_session=") && reply.location == "/";

    // Login CSRF: a page elsewhere posting the attacker's key into the visitor's browser.
    let reply = post(Some("http://evil.example"), None, jar.clone(), &csrf).await;
    assert_eq!(reply.status, 403, "another site's origin");
    // Saying nothing of where it comes from is refused too.
    let reply = post(None, None, jar.clone(), &csrf).await;
    assert_eq!(reply.status, 403, "no Origin and no Referer");
    assert!(reply.body.contains("Origin"), "{}", reply.body);
    let reply = post(Some("null"), None, jar.clone(), &csrf).await;
    assert_eq!(reply.status, 403, "an opaque origin");
    let reply = post(None, Some("http://evil.example/page"), jar.clone(), &csrf).await;
    assert_eq!(reply.status, 403, "another site's referer");
    // Same origin but without the form's token, or another one: nothing happens.
    for (cookie, token) in [(None, csrf.as_str()), (jar.clone(), "forged"), (jar.clone(), ""), (None, "")] {
        let reply = post(Some(&url), None, cookie.clone(), token).await;
        assert!(reply.location.starts_with("/sign-in?error=form"), "{cookie:?} {token:?}: {}", reply.location);
        assert!(!reply.set_cookie.contains("tempovoice_session="), "no session");
    }
    // Another browser's form token does not serve this one's cookie.
    let mut elsewhere = Browser::new(&platform);
    let other_token = elsewhere.csrf("/sign-in").await;
    let reply = post(Some(&url), None, jar.clone(), &other_token).await;
    assert!(reply.location.starts_with("/sign-in?error=form"), "{}", reply.location);
    let page = browser.get("/sign-in?error=form").await;
    assert!(page.body.contains("could not be verified"), "{}", page.body);

    // The form as rendered, from the dashboard's origin (or, with no Origin, its referer): signed in.
    let reply = post(Some(&url), None, jar.clone(), &csrf).await;
    assert!(signed_in(&reply), "{} {}", reply.location, reply.set_cookie);
    let reply = post(None, Some(&format!("{url}/sign-in")), jar.clone(), &csrf).await;
    assert!(signed_in(&reply), "{} {}", reply.location, reply.set_cookie);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sign_in_the_browser_only_goes_to_the_dashboards_own_pages() {
    let platform = Platform::start(&[]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let agent = platform.create_agent(&key, agent_body("Front desk", "+14155550100")).await;
    let id = agent["id"].as_str().unwrap().to_owned();
    for attack in [
        "/%09/evil.com",
        "/\t/evil.com",
        "/\n/evil.com",
        "/\r\n/evil.com",
        "//evil.com",
        "///evil.com",
        "/\\evil.com",
        "\\/evil.com",
        "/%5Cevil.com",
        "/%2F%2Fevil.com",
        "https:evil.com",
        "https://evil.com/",
        "http:/evil.com",
        "javascript:alert(1)",
        "/sign-in?next=//evil.com",
        "/agents/new/../../evil.com",
    ] {
        let mut browser = Browser::new(&platform);
        let reply = browser.sign_in_as(&key, attack).await;
        assert_eq!((reply.status, reply.location.as_str()), (302, "/"), "{attack:?}");
        // The sign-in page a visitor is sent to with it does not carry it either.
        let page = browser
            .get(&format!(
                "/sign-in?error=expired&next={}",
                url::form_urlencoded::byte_serialize(attack.as_bytes()).collect::<String>()
            ))
            .await;
        assert!(page.body.contains(r#"name="next" value="/""#), "{attack:?}");
    }
    let mut browser = Browser::new(&platform);
    let page = format!("/agents/{id}/calls?cursor=abc");
    let reply = browser.sign_in_as(&key, &page).await;
    assert_eq!(reply.location, page, "a page of the dashboard is where the browser goes");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_with_the_host_prefix_and_https_is_told_to_stay() {
    let platform = Platform::start(&[]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let url = platform.url.clone();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let https_origin = url.replace("http://", "https://");

    // Plain http on loopback: no Secure, no prefix, no HSTS (local development).
    let mut local = Browser::new(&platform);
    let page = local.get("/sign-in").await;
    assert!(page.set_cookie.starts_with("tempovoice_sign_in=") && !page.set_cookie.contains("Secure"));
    assert!(!page.headers.contains_key("strict-transport-security"));

    // Behind TLS termination (the load balancer says https): Secure, __Host-, HSTS.
    let page = Browser::reply(
        http.get(format!("{url}/sign-in"))
            .header("accept", "text/html")
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.headers["strict-transport-security"], "max-age=63072000; includeSubDomains");
    let sign_in_cookie = page.set_cookie.split(';').next().unwrap().to_owned();
    assert!(sign_in_cookie.starts_with("__Host-tempovoice_sign_in="), "{}", page.set_cookie);
    assert!(
        page.set_cookie.contains("; Secure")
            && page.set_cookie.contains("Path=/")
            && !page.set_cookie.contains("Domain")
    );
    let at = page.body.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = page.body[at..][..page.body[at..].find('"').unwrap()].to_owned();
    let sign_in = |origin: String, cookie: String| {
        http.post(format!("{url}/api/sign_in"))
            .header("accept", "text/html")
            .header("x-forwarded-proto", "https")
            .header("origin", origin)
            .header("cookie", cookie)
            .form(&[("csrf", csrf.as_str()), ("api_key", key.as_str()), ("next", "/")])
            .send()
    };
    // Over https, a post from the plain-http origin of the same host is another origin.
    let reply = sign_in(url.clone(), sign_in_cookie.clone()).await.unwrap();
    assert_eq!(reply.status(), 403);
    // The form's token cookie without its prefix (as a sibling host could plant it) is not read.
    let unprefixed = sign_in_cookie.replace("__Host-", "");
    let reply = Browser::reply(sign_in(https_origin.clone(), unprefixed).await.unwrap()).await;
    assert!(reply.location.starts_with("/sign-in?error=form"), "{}", reply.location);
    let reply = Browser::reply(sign_in(https_origin.clone(), sign_in_cookie.clone()).await.unwrap()).await;
    assert_eq!(reply.location, "/");
    let session = reply.set_cookie.lines().find(|l| l.contains("tempovoice_session=")).expect("session cookie");
    assert!(session.starts_with("__Host-tempovoice_session="), "{session}");
    assert!(session.contains("; Secure") && session.contains("Path=/") && !session.contains("Domain"), "{session}");
    assert_eq!(reply.headers["strict-transport-security"], "max-age=63072000; includeSubDomains");
    // The API's own responses over https carry it too.
    let api = http.get(format!("{url}/v1/health")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert_eq!(api.headers()["strict-transport-security"], "max-age=63072000; includeSubDomains");
    let api = http.get(format!("{url}/v1/health")).send().await.unwrap();
    assert!(!api.headers().contains_key("strict-transport-security"));

    // A host that is not loopback, even over plain http: Secure with the prefix.
    let page = Browser::reply(
        http.get(format!("{url}/sign-in"))
            .header("accept", "text/html")
            .header("host", "app.example.com")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        page.set_cookie.starts_with("__Host-tempovoice_sign_in=") && page.set_cookie.contains("; Secure"),
        "{}",
        page.set_cookie
    );
    assert!(!page.headers.contains_key("strict-transport-security"), "plain http is not https");
    platform.stop().await;

    // Configured as served over https only: HSTS on every page, Secure even on loopback.
    let platform = Platform::start(&[("TEMPOVOICE_DASHBOARD_SECURE_COOKIES", "true")]).await;
    let mut browser = Browser::new(&platform);
    let page = browser.get("/sign-in").await;
    assert_eq!(page.headers["strict-transport-security"], "max-age=63072000; includeSubDomains");
    assert!(page.set_cookie.starts_with("__Host-tempovoice_sign_in="), "{}", page.set_cookie);
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
        .header("cookie", browser.cookie_header())
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
    // Scaling from the form: the blank target is 70 % of the calls per task.
    let sizing = &agent["sizing"];
    assert_eq!(
        (&sizing["min_tasks"], &sizing["max_tasks"], &sizing["calls_per_task"], &sizing["target_calls_per_task"]),
        (&serde_json::json!(1), &serde_json::json!(3), &serde_json::json!(40), &serde_json::json!(28))
    );
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
    let mut anonymous = Browser::new(&platform);
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
    let vars = [("TEMPOVOICE_LISTEN", "127.0.0.1:0"), ("TEMPOVOICE_API_URL", platform.url.as_str())];
    let settings = dashboard::standalone::Settings::from_lookup(|k| {
        vars.iter().find(|(name, _)| *name == k).map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    let app = dashboard::standalone::App::build(settings).await.unwrap();
    let url = format!("http://{}", app.local_addr());
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));

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
    stop.cancel();
    server.await.unwrap().unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_posts_keep_the_store_within_its_bounds_and_huge_posts_are_refused() {
    // The standalone dashboard, so the test can read its flash store's accounting.
    let platform = Platform::start(&[("TEMPOVOICE_DASHBOARD", "off")]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let api = dashboard::api::ControlPlane::http(url::Url::parse(&platform.url).unwrap());
    let app = dashboard::Dashboard::new(api, &dashboard::DashboardSettings::default()).unwrap();
    let router = dashboard::router(app.clone()).fallback(|| async { dashboard::not_found() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, service).await });

    let posts: usize = std::env::var("TEMPOVOICE_FLASH_POSTS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let sessions = 50;
    let mut browsers = Vec::new();
    for _ in 0..sessions {
        let mut browser = Browser { url: url.clone(), ..Browser::new(&platform) };
        browser.sign_in(&key).await;
        let csrf = browser.csrf("/agents/new").await;
        browsers.push((browser, csrf));
    }
    // Invalid input (kept for the form) with a large prompt: each post is a flash entry.
    let prompt = "p".repeat(64 * 1024);
    let mut peak = 0;
    for i in 0..posts {
        let (browser, csrf) = &mut browsers[i % sessions];
        let form = agent_form(csrf, &[("agent[max_conversation_turns]", "lots"), ("agent[system_prompt]", &prompt)]);
        let reply = browser.post("save_agent", &form).await;
        assert!(reply.location.starts_with("/agents/new?flash="), "post {i}: {}", reply.location);
        let usage = app.flash.usage();
        peak = peak.max(usage.bytes);
        assert!(usage.bytes <= dashboard::flash::MAX_TOTAL_BYTES, "post {i}: {usage:?}");
        assert!(usage.entries <= dashboard::flash::CAPACITY, "post {i}: {usage:?}");
    }
    assert!(
        peak > dashboard::flash::MAX_TOTAL_BYTES - 2 * dashboard::flash::MAX_ENTRY_BYTES,
        "the store filled up to its bound: peak {peak}"
    );
    // The newest entry of a session is still there, with the input.
    let (browser, csrf) = &mut browsers[0];
    let form = agent_form(csrf, &[("agent[max_conversation_turns]", "lots"), ("agent[name]", "Kept desk")]);
    let reply = browser.post("save_agent", &form).await;
    assert!(browser.get(&reply.location).await.body.contains(r#"value="Kept desk""#));

    // A post larger than the dashboard takes is refused before it is read.
    let huge = "p".repeat(dashboard::MAX_POST_BYTES + 1);
    let form = agent_form(csrf, &[("agent[system_prompt]", &huge)]);
    let reply = browser.post("save_agent", &form).await;
    assert_eq!(reply.status, 413);
    server.abort();
    platform.stop().await;
}
