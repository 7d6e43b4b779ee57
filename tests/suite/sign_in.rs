//! Sign-in with the organisation's identity provider (issue 27, part 1), against a test
//! provider over real HTTP: a user lands on their own connections and sees nobody else's;
//! an administrator by group gets Connector Settings; an auditor sees it and cannot change
//! anything; a forged or expired ID token, another audience, another nonce, an unverified
//! email and a callback in another browser are each refused with a page that says why.

use bytes::Bytes;
use egret_test_support::idp::{CLIENT_ID, CLIENT_SECRET, Misbehave, TestIdp};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::harness::api::admin;
use super::harness::{Fixture, policy_yaml};

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn fetch(
    url: &str,
    method: Method,
    cookies: &[String],
    form: Option<&str>,
    origin: Option<&str>,
) -> Page {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder().method(method).uri(url);
    if !cookies.is_empty() {
        req = req.header("cookie", cookies.join("; "));
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let body = match form {
        Some(f) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Bytes::from(f.to_owned())
        }
        None => Bytes::new(),
    };
    let resp = client
        .request(req.body(Full::new(body)).expect("request"))
        .await
        .expect("answer");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Page {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn cookie(p: &Page) -> Vec<String> {
    p.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter(|pair| !pair.ends_with('='))
        .map(str::to_owned)
        .collect()
}

fn location(p: &Page) -> String {
    p.headers["location"].to_str().expect("location").to_owned()
}

async fn fixture(idp: &TestIdp, token_login: bool) -> Fixture {
    let f = Fixture::new().await;
    std::fs::write(f.egret.dir.path().join("idp-secret"), CLIENT_SECRET).expect("secret");
    let control = format!("http://{}", f.egret.control_addr);
    f.egret.reload(&format!(
        "{}control:\n  public_url: {control}\nui:\n  admin_token_login: {token_login}\n  oidc:\n    issuer: {}\n    client_id: {CLIENT_ID}\n    client_secret: ${{file:idp-secret}}\n    name: Example SSO\n    admins: {{ groups_claim: groups, groups: [egret-admins] }}\n    auditors: {{ emails: [audit@example.com] }}\n",
        policy_yaml(),
        idp.issuer()
    ));
    f
}

/// Start → provider → callback, as a browser: the page the callback answers, and the
/// session cookie when it set one.
async fn sign_in(f: &Fixture) -> (Page, Vec<String>) {
    let control = format!("http://{}", f.egret.control_addr);
    let start = fetch(
        &format!("{control}/ui/oidc/start"),
        Method::GET,
        &[],
        None,
        None,
    )
    .await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let binding = cookie(&start);
    let at_idp = fetch(&location(&start), Method::GET, &[], None, None).await;
    assert_eq!(at_idp.status, StatusCode::FOUND, "{}", at_idp.body);
    let back = fetch(&location(&at_idp), Method::GET, &binding, None, None).await;
    let session = cookie(&back)
        .into_iter()
        .filter(|c| c.starts_with("egret_ui="))
        .collect();
    (back, session)
}

#[tokio::test]
async fn people_sign_in_with_the_identity_provider_and_get_their_role() {
    let idp = TestIdp::start().await;
    let f = fixture(&idp, false).await;
    let control = format!("http://{}", f.egret.control_addr);
    f.egret
        .key_and_placeholder("openai", "user:carol@example.com", "sk-carol");
    f.egret
        .key_and_placeholder("openai", "user:dave@example.com", "sk-dave");
    let login = fetch(&format!("{control}/ui/login"), Method::GET, &[], None, None).await;
    assert!(
        login.body.contains("Sign in with Example SSO"),
        "{}",
        login.body
    );
    assert!(
        !login.body.contains("Admin token"),
        "the admin token sign-in is off"
    );
    let refused = fetch(
        &format!("{control}/ui/login"),
        Method::POST,
        &[],
        Some("token=x"),
        Some(&control),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // A user: their own connections, nobody else's.
    idp.sign_in_as(json!({"email": "carol@example.com"}));
    let (back, session) = sign_in(&f).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(location(&back), "/ui/connections");
    let page = fetch(
        &format!("{control}/ui/connections"),
        Method::GET,
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("user:carol@example.com") && !page.body.contains("dave"),
        "{}",
        page.body
    );
    let settings = fetch(
        &format!("{control}/ui/connectors"),
        Method::GET,
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(
        settings.status,
        StatusCode::SEE_OTHER,
        "not an administrator's page"
    );
    // Signing out ends the session and offers the provider's single sign-out.
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf")
        .to_owned();
    let out = fetch(
        &format!("{control}/ui/logout"),
        Method::POST,
        &session,
        Some(&format!("csrf={csrf}")),
        Some(&control),
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert!(
        out.body.contains("Also sign out of Example SSO")
            && out.body.contains(&format!("{}/logout", idp.issuer())),
        "{}",
        out.body
    );
    let after = fetch(
        &format!("{control}/ui/connections"),
        Method::GET,
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended");

    // An administrator by group.
    idp.sign_in_as(json!({"email": "root@example.com", "groups": ["egret-admins", "staff"]}));
    let (back, session) = sign_in(&f).await;
    assert_eq!(location(&back), "/ui/connectors");
    let settings = fetch(
        &format!("{control}/ui/connectors"),
        Method::GET,
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(settings.body.contains("Connector Settings"));

    // An auditor sees it and changes nothing.
    idp.sign_in_as(json!({"email": "audit@example.com"}));
    let (back, session) = sign_in(&f).await;
    assert_eq!(location(&back), "/ui/connectors");
    // The pages hide what an auditor may not press.
    let settings = fetch(
        &format!("{control}/ui/connectors"),
        Method::GET,
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(
        !settings.body.contains("Make link") && !settings.body.contains("Add connector"),
        "{}",
        settings.body
    );
    assert!(
        !settings.body.contains("/ui/tokens"),
        "no API tokens page for an auditor"
    );
    let activity = fetch(
        &format!("{control}/ui/activity"),
        Method::GET,
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(activity.status, StatusCode::OK);
    let csrf = activity
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf")
        .to_owned();
    let link = fetch(
        &format!("{control}/ui/connectors/openai/link"),
        Method::POST,
        &session,
        Some(&format!("csrf={csrf}&owner=user%3Aeve")),
        Some(&control),
    )
    .await;
    assert_eq!(link.status, StatusCode::FORBIDDEN, "{}", link.body);
    assert!(link.body.contains("auditor"), "{}", link.body);

    let (_, audit) = admin(&f.egret, Method::GET, "/v1/audit", None).await;
    let by: Vec<String> = audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"] == "ui.sign_in")
        .filter_map(|e| e["by"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        by,
        [
            "user:carol@example.com",
            "user:root@example.com",
            "user:audit@example.com"
        ]
    );
}

#[tokio::test]
async fn a_sign_in_the_provider_cannot_vouch_for_is_refused_with_the_reason() {
    let idp = TestIdp::start().await;
    let f = fixture(&idp, true).await;
    for (how, says) in [
        (Misbehave::Forged, "forged"),
        (Misbehave::Expired, "expired"),
        (Misbehave::WrongAudience, "another application"),
        (Misbehave::WrongNonce, "nonce"),
        (Misbehave::UnverifiedEmail, "not verified"),
    ] {
        idp.sign_in_as(json!({"email": "mallory@example.com"}));
        idp.misbehave(how);
        let (back, session) = sign_in(&f).await;
        assert_eq!(back.status, StatusCode::FORBIDDEN, "{how:?}: {}", back.body);
        assert!(back.body.contains(says), "{how:?}: {}", back.body);
        assert!(session.is_empty(), "{how:?}: no session");
    }
    // The provider's answer arriving in another browser (no binding cookie).
    idp.sign_in_as(json!({"email": "carol@example.com"}));
    let control = format!("http://{}", f.egret.control_addr);
    let start = fetch(
        &format!("{control}/ui/oidc/start"),
        Method::GET,
        &[],
        None,
        None,
    )
    .await;
    let at_idp = fetch(&location(&start), Method::GET, &[], None, None).await;
    let elsewhere = fetch(&location(&at_idp), Method::GET, &[], None, None).await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);
    assert!(
        elsewhere.body.contains("another browser"),
        "{}",
        elsewhere.body
    );
    // The answer in another browser spent nothing: this browser still finishes, once.
    let binding = cookie(&start);
    let finished = fetch(&location(&at_idp), Method::GET, &binding, None, None).await;
    assert_eq!(finished.status, StatusCode::SEE_OTHER, "{}", finished.body);
    let again = fetch(&location(&at_idp), Method::GET, &binding, None, None).await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "a state works once: {}",
        again.body
    );
}

/// Against an independent implementation: the test OAuth server (the `oidc-provider`
/// package) as the organisation's identity provider — its login and consent pages, RS256
/// ID tokens, PKCE and nonce — signs alice in, owner from the `sub` claim.
#[tokio::test]
async fn the_test_oauth_server_signs_a_person_in_as_an_identity_provider() {
    use egret_test_support::browser::{Browser, Choice};
    use egret_test_support::oauth_server::OAuthServer;
    let f = Fixture::new().await;
    let control = format!("http://{}", f.egret.control_addr);
    let clients = json!([{
        "client_id": "egret-ui",
        "client_secret": "egret-ui-secret",
        "grant_types": ["authorization_code"],
        "redirect_uris": [format!("{control}/ui/oidc/callback")],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }]);
    let server = OAuthServer::start(&f.ca, &clients, 300).await;
    std::fs::write(f.egret.dir.path().join("ui-secret"), "egret-ui-secret").expect("secret");
    let yaml = policy_yaml().replace(
        "  resolve:\n",
        "  resolve:\n    auth.test.local: 127.0.0.1\n",
    );
    f.egret.reload(&format!(
        "{yaml}control:\n  public_url: {control}\nui:\n  oidc:\n    issuer: https://auth.test.local:{}\n    client_id: egret-ui\n    client_secret: ${{file:ui-secret}}\n    scopes: [openid]\n    owner_claim: sub\n",
        server.port
    ));
    f.egret
        .key_and_placeholder("openai", "user:alice", "sk-alice");
    f.egret.key_and_placeholder("openai", "user:bob", "sk-bob");
    let mut browser = Browser::new(&f.ca.pem);
    let page = browser
        .authorize(&format!("{control}/ui/oidc/start"), Choice::Allow)
        .await
        .expect("the sign-in");
    let landed = browser.follow(page).await.expect("followed");
    assert_eq!(landed.status, StatusCode::OK, "{}", landed.body);
    assert!(
        landed
            .body
            .contains("Signed in as <strong>user:alice</strong>"),
        "{}",
        landed.body
    );
    assert!(!landed.body.contains("user:bob"), "nobody else's");
}
