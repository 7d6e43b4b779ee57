//! The web UI's pages as a browser meets them over HTTP, parsed as HTML: signing in and
//! out, Connector Settings, the security headers on every page, forms refused without
//! their CSRF token or from another origin, and no secret in any page.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use scraper::{Html, Selector};
use serde_json::json;

use super::harness::Fixture;
use super::harness::api::admin;

/// An answer: status, headers, body.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// The text of every element `css` selects.
    fn texts(&self, css: &str) -> Vec<String> {
        let selector = Selector::parse(css).expect("selector");
        self.html()
            .select(&selector)
            .map(|e| e.text().collect::<String>().trim().to_owned())
            .collect()
    }

    /// The `value` of the first hidden `csrf` input.
    fn csrf(&self) -> String {
        let selector = Selector::parse("input[name=csrf]").expect("selector");
        self.html()
            .select(&selector)
            .next()
            .and_then(|e| e.value().attr("value"))
            .expect("a csrf field")
            .to_owned()
    }
}

/// A browser's request to the control listener: `cookie`, an `Origin`, a form body.
async fn visit(
    f: &Fixture,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: Option<&str>,
) -> Page {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", f.egret.control_addr));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let body = match form {
        Some(text) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Bytes::from(text.to_owned())
        }
        None => Bytes::new(),
    };
    let resp = client
        .request(req.body(Full::new(body)).expect("request"))
        .await
        .expect("the control plane answers");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Page {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn origin(f: &Fixture) -> String {
    format!("http://{}", f.egret.control_addr)
}

/// Signs in with the admin token; returns the session cookie (`name=value`).
async fn sign_in(f: &Fixture) -> String {
    let form = format!("token={}", egret_test_support::proxy::ADMIN_TOKEN);
    let page = visit(
        f,
        Method::POST,
        "/ui/login",
        None,
        Some(&origin(f)),
        Some(&form),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let set = page.headers["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    set.split(';').next().expect("pair").to_owned()
}

fn assert_secure_headers(page: &Page) {
    let h = |n: &str| {
        page.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = h("content-security-policy");
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "same-origin");
    assert_eq!(h("cache-control"), "no-store");
}

#[tokio::test]
async fn an_administrator_signs_in_with_the_token_and_out_again() {
    let f = Fixture::new().await;
    let page = visit(&f, Method::GET, "/ui/", None, None, None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers["location"], "/ui/login");
    let login = visit(&f, Method::GET, "/ui/login", None, None, None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_secure_headers(&login);
    assert_eq!(login.texts("h1"), ["Sign in"]);
    assert_eq!(login.texts("label[for=token]"), ["Admin token"]);
    assert_eq!(login.texts("input#token[type=password]").len(), 1);

    // From another site, or with a wrong token: refused, with what to do.
    let form = format!("token={}", egret_test_support::proxy::ADMIN_TOKEN);
    let forged = visit(
        &f,
        Method::POST,
        "/ui/login",
        None,
        Some("http://evil.example"),
        Some(&form),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.headers.get("set-cookie").is_none());
    let wrong = visit(
        &f,
        Method::POST,
        "/ui/login",
        None,
        Some(&origin(&f)),
        Some("token=nope"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.texts("[role=alert]")[0].contains("not the admin token"));

    // The token becomes a cookie the page's scripts cannot read; never a URL.
    let page = visit(
        &f,
        Method::POST,
        "/ui/login",
        None,
        Some(&origin(&f)),
        Some(&form),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers["location"], "/ui/connectors");
    let set = page.headers["set-cookie"].to_str().expect("cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age="] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    assert!(!set.contains(egret_test_support::proxy::ADMIN_TOKEN));
    let cookie = set.split(';').next().expect("pair").to_owned();

    let settings = visit(&f, Method::GET, "/ui/connectors", Some(&cookie), None, None).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert_secure_headers(&settings);
    let csrf = settings.csrf();
    // Signing out needs the form's token; then the cookie is worth nothing.
    let refused = visit(
        &f,
        Method::POST,
        "/ui/logout",
        Some(&cookie),
        Some(&origin(&f)),
        Some("csrf=forged"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = visit(
        &f,
        Method::POST,
        "/ui/logout",
        Some(&cookie),
        Some(&origin(&f)),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .contains("Max-Age=0")
    );
    let after = visit(&f, Method::GET, "/ui/connectors", Some(&cookie), None, None).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.headers["location"], "/ui/login");
}

#[tokio::test]
async fn connector_settings_lists_every_connector_and_toggles_api_connectors() {
    let f = Fixture::new().await;
    f.egret.key_and_placeholder("openai", "org", "sk-ui-REAL");
    let (status, body) = admin(
        &f.egret,
        Method::POST,
        "/v1/connectors",
        Some(json!({
            "id": "crm", "auth": "oauth2", "egress": ["other.test.local"],
            "oauth": { "authorize_url": "https://other.test.local/a", "token_url": "https://other.test.local/t",
                       "client_id": "crm-app", "client_secret": "crm-client-secret-VALUE" }
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cookie = sign_in(&f).await;
    let page = visit(&f, Method::GET, "/ui/connectors", Some(&cookie), None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.texts("h1"), ["Connector Settings"]);
    let names = page.texts("section.connector h2");
    assert_eq!(names, ["openai", "weather", "off", "dead", "crm"]);
    // The egress domains, read-only policy connectors, counts by status.
    let openai = &page.texts("section.connector")[0];
    assert!(openai.contains("api.test.local"), "{openai}");
    assert!(openai.contains("Policy file (read-only)"), "{openai}");
    assert!(openai.contains("1 connected"), "{openai}");
    assert!(page.texts("section.connector")[2].contains("Disabled"));
    let crm = &page.texts("section.connector")[4];
    assert!(
        crm.contains("OAuth 2.0, each user signs in")
            && crm.contains("Created through the control plane"),
        "{crm}"
    );
    // Only API connectors have a toggle.
    assert_eq!(page.texts("section.connector form button"), ["Disable"]);
    for secret in [
        "crm-client-secret-VALUE",
        "sk-ui-REAL",
        egret_test_support::proxy::ADMIN_TOKEN,
    ] {
        assert!(!page.body.contains(secret), "{secret} in the page");
    }

    // Without the form's token, or from another origin: nothing changes.
    let csrf = page.csrf();
    let path = "/ui/connectors/crm/enabled";
    let forged = visit(
        &f,
        Method::POST,
        path,
        Some(&cookie),
        Some(&origin(&f)),
        Some("csrf=x&enabled=false"),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.texts("[role=alert]")[0].contains("nothing was changed"));
    let elsewhere = visit(
        &f,
        Method::POST,
        path,
        Some(&cookie),
        Some("http://evil.example"),
        Some(&format!("csrf={csrf}&enabled=false")),
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let (_, crm) = admin(&f.egret, Method::GET, "/v1/connectors/crm", None).await;
    assert_eq!(crm["enabled"], true);

    let done = visit(
        &f,
        Method::POST,
        path,
        Some(&cookie),
        Some(&origin(&f)),
        Some(&format!("csrf={csrf}&enabled=false")),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let (_, crm) = admin(&f.egret, Method::GET, "/v1/connectors/crm", None).await;
    assert_eq!(crm["enabled"], false);
    let page = visit(&f, Method::GET, "/ui/connectors", Some(&cookie), None, None).await;
    assert_eq!(page.texts("section.connector form button"), ["Enable"]);
    // A policy connector cannot be toggled here: the page says why.
    let policy = visit(
        &f,
        Method::POST,
        "/ui/connectors/openai/enabled",
        Some(&cookie),
        Some(&origin(&f)),
        Some(&format!("csrf={csrf}&enabled=false")),
    )
    .await;
    assert_eq!(policy.status, StatusCode::CONFLICT);
    assert!(
        policy.texts("[role=alert]")[0].contains("policy"),
        "{}",
        policy.body
    );
    // The stylesheet is egret's own file.
    let css = visit(&f, Method::GET, "/ui/egret.css", None, None, None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/css")
    );
}
