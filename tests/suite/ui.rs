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
use super::harness::wait::until_some;

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

/// A form post from egret's own page, with the session `cookie`.
async fn post(f: &Fixture, path: &str, cookie: &str, form: &str) -> Page {
    visit(
        f,
        Method::POST,
        path,
        Some(cookie),
        Some(&origin(f)),
        Some(form),
    )
    .await
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

    let settings = page_at(&f, "/ui/connectors", &cookie).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert_secure_headers(&settings);
    let csrf = settings.csrf();
    // Signing out needs the form's token; then the cookie is worth nothing.
    let refused = post(&f, "/ui/logout", &cookie, "csrf=forged").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = post(&f, "/ui/logout", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .contains("Max-Age=0")
    );
    let after = page_at(&f, "/ui/connectors", &cookie).await;
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
    let page = page_at(&f, "/ui/connectors", &cookie).await;
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
            && crm.contains("Created here or through the API"),
        "{crm}"
    );
    // Only API connectors have a toggle.
    assert_eq!(
        page.texts("section.connector form[action$='/enabled'] button"),
        ["Disable"]
    );
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
    let forged = post(&f, path, &cookie, "csrf=x&enabled=false").await;
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

    let done = post(&f, path, &cookie, &format!("csrf={csrf}&enabled=false")).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let (_, crm) = admin(&f.egret, Method::GET, "/v1/connectors/crm", None).await;
    assert_eq!(crm["enabled"], false);
    let page = page_at(&f, "/ui/connectors", &cookie).await;
    assert_eq!(
        page.texts("section.connector form[action$='/enabled'] button"),
        ["Enable"]
    );
    // A policy connector cannot be toggled here: the page says why.
    let policy = post(
        &f,
        "/ui/connectors/openai/enabled",
        &cookie,
        &format!("csrf={csrf}&enabled=false"),
    )
    .await;
    assert_eq!(policy.status, StatusCode::CONFLICT);
    assert!(
        policy.texts("[role=alert]")[0].contains("policy"),
        "{}",
        policy.body
    );
    // The stylesheet and the one script are egret's own files; the script takes the
    // callback's message only from egret's own origin.
    let css = visit(&f, Method::GET, "/ui/egret.css", None, None, None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/css")
    );
    let js = visit(&f, Method::GET, "/ui/egret.js", None, None, None).await;
    assert!(
        js.headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );
    assert!(js.body.contains("event.origin !== origin"), "{}", js.body);
    let selector = Selector::parse("script").expect("selector");
    let scripts: Vec<String> = page
        .html()
        .select(&selector)
        .map(|e| e.value().attr("src").unwrap_or("inline").to_owned())
        .collect();
    assert_eq!(scripts, ["/ui/egret.js"], "no inline script");
}

/// Mints a connect link through the API; returns its path (`/ui/connect/…`).
/// Continues a connect link (`path`) from egret's own page; the user's session cookie.
/// `path` as the browser holding `cookie` opens it.
async fn page_at(f: &Fixture, path: &str, cookie: &str) -> Page {
    visit(f, Method::GET, path, Some(cookie), None, None).await
}

async fn open_link(f: &Fixture, path: &str) -> String {
    let opened = visit(f, Method::POST, path, None, Some(&origin(f)), None).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    opened.headers["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

async fn connect_link(f: &Fixture, body: serde_json::Value) -> String {
    let (status, answer) = admin(&f.egret, Method::POST, "/v1/connect-links", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let url = answer["url"].as_str().expect("url");
    let path = url
        .split_once("/ui/")
        .map(|(_, p)| format!("/ui/{p}"))
        .expect("a /ui/ link");
    assert!(path.starts_with("/ui/connect/"), "{url}");
    path
}

#[tokio::test]
async fn a_connect_link_opens_the_users_connections_once_and_they_connect_a_key() {
    let f = Fixture::new().await;
    // The API says what is wrong with a link request.
    for (body, status) in [
        (json!({ "owner": "bob" }), StatusCode::BAD_REQUEST),
        (
            json!({ "owner": "user:ann", "connector": "nope" }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "owner": "user:ann", "connector": "off" }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "owner": "user:ann", "ttl": "100y" }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, answer) = admin(&f.egret, Method::POST, "/v1/connect-links", Some(body)).await;
        assert_eq!(got, status, "{answer}");
    }
    let path = connect_link(&f, json!({ "owner": "user:ann" })).await;
    // Opening the link spends nothing (previews fetch links); continuing does.
    for _ in 0..2 {
        let page = visit(&f, Method::GET, &path, None, None, None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.texts("form button"), ["Continue"]);
    }
    let opened = visit(&f, Method::POST, &path, None, Some(&origin(&f)), None).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    assert_eq!(opened.headers["location"], "/ui/connections");
    let set = opened.headers["set-cookie"].to_str().expect("cookie");
    assert!(
        set.contains("Max-Age=3600") && set.contains("HttpOnly"),
        "{set}"
    );
    let cookie = set.split(';').next().expect("pair").to_owned();
    // A second browser with the same link is told it was used.
    let again = visit(&f, Method::POST, &path, None, Some(&origin(&f)), None).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(again.texts("h1"), ["This link was already used"]);
    // A user is not an administrator.
    let admin_page = page_at(&f, "/ui/connectors", &cookie).await;
    assert_eq!(admin_page.status, StatusCode::SEE_OTHER);

    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.texts("p.lead")[0].contains("user:ann"));
    assert_eq!(
        page.texts("section.offer h3"),
        ["openai", "weather", "dead"],
        "enabled connectors only"
    );
    assert_eq!(
        page.texts("main p.empty"),
        ["Nothing connected yet: connect a service below."]
    );
    assert_eq!(
        page.texts("main h2")[0],
        "Connected for user:ann (0)",
        "says whose"
    );
    let csrf = page.csrf();
    let form = format!("csrf={csrf}&name=default&key=sk-ui-typed-REAL");
    let stored = post(&f, "/ui/connections/openai/key", &cookie, &form).await;
    assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.body);
    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert_eq!(page.texts("section.connection h3"), ["openai"]);
    assert!(page.texts("section.connection .badge")[0].contains("Connected"));
    assert_eq!(
        page.texts("section.offer h3"),
        ["weather", "dead"],
        "one connection per owner"
    );
    assert!(
        !page.body.contains("sk-ui-typed-REAL"),
        "the key is never shown"
    );
    let (_, listed) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?owner=user:ann",
        None,
    )
    .await;
    assert_eq!(listed["connections"][0]["connector"], "openai", "{listed}");

    // A description for agents; a test the connector cannot make says why.
    let form = format!("csrf={csrf}&name=default&description=team+key");
    let saved = post(&f, "/ui/connections/openai/describe", &cookie, &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let (_, listed) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?owner=user:ann",
        None,
    )
    .await;
    assert_eq!(listed["connections"][0]["description"], "team key");
    let tested = post(
        &f,
        "/ui/connections/openai/test",
        &cookie,
        &format!("csrf={csrf}&name=default"),
    )
    .await;
    // The page offers no Test where the connector has no test request; posted anyway,
    // the user is told in words whom to ask, never the policy's syntax.
    assert!(
        !page.body.contains("/ui/connections/openai/test"),
        "no Test button for a connector without a test request"
    );
    assert_eq!(tested.status, StatusCode::CONFLICT);
    let said = &tested.texts("[role=alert]")[0];
    assert!(said.contains("ask your administrator"), "{said}");
    assert!(
        !said.contains("test:") && !said.contains('{'),
        "no policy YAML: {said}"
    );
    // Forms without the session's token change nothing.
    let forged = post(
        &f,
        "/ui/connections/openai/remove",
        &cookie,
        "csrf=x&name=default",
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Disconnect: the connection is gone.
    let removed = post(
        &f,
        "/ui/connections/openai/remove",
        &cookie,
        &format!("csrf={csrf}&name=default&confirm=yes"),
    )
    .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let (_, listed) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?owner=user:ann",
        None,
    )
    .await;
    assert_eq!(listed["connections"], json!([]));
}

#[tokio::test]
async fn a_link_for_one_connector_covers_only_that_one_and_an_old_link_has_expired() {
    let f = Fixture::new().await;
    let path = connect_link(&f, json!({ "owner": "user:ann", "connector": "weather" })).await;
    let cookie = open_link(&f, &path).await;
    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert_eq!(page.texts("section.offer h3"), ["weather"]);
    let form = format!("csrf={}&name=default&key=k", page.csrf());
    let other = post(&f, "/ui/connections/openai/key", &cookie, &form).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(other.texts("[role=alert]")[0].contains("does not cover"));

    let path = connect_link(&f, json!({ "owner": "user:ann", "ttl": "1s" })).await;
    f.egret.clock.skip(std::time::Duration::from_secs(2));
    let late = visit(&f, Method::POST, &path, None, Some(&origin(&f)), None).await;
    assert_eq!(late.status, StatusCode::GONE);
    assert_eq!(late.texts("h1"), ["This link has expired"]);
}

#[tokio::test]
async fn an_administrator_adds_a_connector_from_a_template_sends_a_link_and_deletes_it() {
    let f = Fixture::new().await;
    let cookie = sign_in(&f).await;
    let chooser = page_at(&f, "/ui/connectors/new", &cookie).await;
    assert_eq!(chooser.status, StatusCode::OK);
    // Vendors by name, each with its mark; no Markdown in the words.
    let kinds = chooser.texts("ul.choices a strong");
    assert!(
        kinds.contains(&"GitHub".to_owned()) && kinds.contains(&"API key".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(chooser.texts("ul.choices a svg.mark").len(), kinds.len());
    assert!(!chooser.texts("main")[0].contains('`'), "{}", chooser.body);
    // The template's form: its fields, the secret write-only, and the Setup Guide with
    // the redirect URI to register.
    let form = page_at(&f, "/ui/connectors/new?kind=databricks", &cookie).await;
    assert_eq!(form.texts("aside.guide h2"), ["Setup Guide"]);
    let guide = form.texts("aside.guide")[0].clone();
    assert!(
        guide.contains("/oauth/callback") && guide.contains("App connections"),
        "{guide}"
    );
    assert_eq!(form.texts("input#client_secret[type=password]").len(), 1);
    assert_eq!(form.texts("input#setting-workspace_url[required]").len(), 1);
    assert_eq!(
        form.texts("label[for=setting-workspace_url]")[0],
        "Workspace URL *",
        "a human label, not the key"
    );
    assert!(
        guide.contains("all-apis and offline_access") && !guide.contains("then enable it"),
        "the guide matches the product: {guide}"
    );
    // The generic template knows no egress: the form asks for it.
    let generic = page_at(&f, "/ui/connectors/new?kind=generic", &cookie).await;
    assert_eq!(generic.texts("input#egress[required]").len(), 1);
    let csrf = form.csrf();
    // Saved from the form as the API would; the secret is sealed and never shown.
    let body = format!(
        "csrf={csrf}&kind=databricks&id=dbx&setting.workspace_url=https%3A%2F%2Fdbc-1.cloud.databricks.com&client_id=app-1&client_secret=dbx-secret-VALUE&scopes=&egress="
    );
    let saved = post(&f, "/ui/connectors/new", &cookie, &body).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let (_, dbx) = admin(&f.egret, Method::GET, "/v1/connectors/dbx", None).await;
    assert_eq!(dbx["template"], "databricks", "{dbx}");
    assert_eq!(
        dbx["egress"],
        json!(["dbc-1.cloud.databricks.com"]),
        "{dbx}"
    );
    let page = page_at(&f, "/ui/connectors", &cookie).await;
    assert!(
        page.texts("section.connector h2")
            .contains(&"dbx".to_owned())
    );
    assert!(!page.body.contains("dbx-secret-VALUE"));
    // A bad entry is refused with the reason, and nothing is saved.
    let bad = format!("csrf={csrf}&kind=api_key&id=Bad+Id&egress=x.com");
    let refused = post(&f, "/ui/connectors/new", &cookie, &bad).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(!refused.texts("[role=alert]")[0].is_empty());
    // Issue 25: the same form comes back with what was typed, the problem beside its
    // field, and the navigation; a secret is never sent back, and the page says so.
    assert_eq!(refused.texts("nav a").len(), 6, "the navigation bar");
    assert_eq!(
        refused.texts("input#egress[value='x.com']").len(),
        1,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.texts("input#id[aria-invalid=true]").len(),
        1,
        "{}",
        refused.body
    );
    assert!(!refused.texts("p.field-error")[0].is_empty());
    let half = format!(
        "csrf={csrf}&kind=databricks&id=dbx2&setting.workspace_url=&client_id=app-2&client_secret=typed-SECRET-value"
    );
    let refused = post(&f, "/ui/connectors/new", &cookie, &half).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.texts("p.field-error"), ["Give the Workspace URL."]);
    assert_eq!(refused.texts("input#client_id[value='app-2']").len(), 1);
    assert!(
        !refused.body.contains("typed-SECRET-value"),
        "the secret is not sent back"
    );
    assert!(refused.texts("small#client_secret-help")[0].contains("Type the client secret again"));
    let key = format!("csrf={csrf}&kind=api_key&id=crm&egress=other.test.local&header=x-api-key");
    let saved = post(&f, "/ui/connectors/new", &cookie, &key).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);

    // An owner mistyped: Connector Settings again, the error beside the field, the
    // owner as typed.
    let mistyped = post(
        &f,
        "/ui/connectors/crm/link",
        &cookie,
        &format!("csrf={csrf}&owner=alice"),
    )
    .await;
    assert_eq!(
        mistyped.status,
        StatusCode::BAD_REQUEST,
        "{}",
        mistyped.body
    );
    assert_eq!(mistyped.texts("h1"), ["Connector Settings"]);
    assert_eq!(
        mistyped
            .texts("input#o-crm[value=alice][aria-invalid=true]")
            .len(),
        1,
        "{}",
        mistyped.body
    );
    assert!(
        mistyped.texts("p#o-crm-error")[0].contains("user:"),
        "{}",
        mistyped.body
    );
    assert!(!mistyped.body.contains('`'), "backticks become code");

    // A connect link for a user, shown to copy; it opens their page.
    let made = post(
        &f,
        "/ui/connectors/crm/link",
        &cookie,
        &format!("csrf={csrf}&owner=user%3Aann"),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let url = made.texts("code.copy")[0].clone();
    let path = url
        .split_once("/ui/")
        .map(|(_, p)| format!("/ui/{p}"))
        .expect("link");
    let opened = visit(&f, Method::POST, &path, None, Some(&origin(&f)), None).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);

    // Deleting says what it erases and needs the confirmation form.
    f.egret.key_and_placeholder("crm", "org", "crm-key");
    let confirm = page_at(&f, "/ui/connectors/crm/delete", &cookie).await;
    assert!(
        confirm.texts("[role=alert]")[0].contains("1 connection(s)"),
        "{}",
        confirm.body
    );
    let gone = post(
        &f,
        "/ui/connectors/crm/delete",
        &cookie,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    let (status, _) = admin(&f.egret, Method::GET, "/v1/connectors/crm", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, left) = admin(&f.egret, Method::GET, "/v1/connections?connector=crm", None).await;
    assert_eq!(left["connections"], json!([]));
    // Policy connectors cannot be deleted here.
    let policy = post(
        &f,
        "/ui/connectors/openai/delete",
        &cookie,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(policy.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn administrators_see_every_connection_and_what_the_proxy_refused() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-all-REAL");
    f.egret
        .key_and_placeholder("weather", "user:bob", "w-all-REAL");
    // A request to a host no policy allows: the activity page names it.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(f.egret.proxy_addr)
            .await
            .expect("tcp");
        s.write_all(b"CONNECT other.test.local:443 HTTP/1.1\r\nHost: other.test.local:443\r\n\r\n")
            .await
            .expect("write");
        let mut answer = [0u8; 64];
        let n = s.read(&mut answer).await.expect("read");
        assert!(
            String::from_utf8_lossy(&answer[..n]).contains("403"),
            "refused"
        );
    }
    // A refusal for another reason than where it went: listed apart.
    let unknown = f
        .get(
            "api.test.local",
            "/",
            &[(
                "authorization",
                "Bearer egp_UnknownUnknownUnknownUnknownUnknown0000",
            )],
            egret_test_support::client::Proto::H1,
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::FORBIDDEN);
    let cookie = sign_in(&f).await;
    let page = page_at(&f, "/ui/all-connections", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_secure_headers(&page);
    let rows = page.texts("tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let filtered = page_at(
        &f,
        "/ui/all-connections?owner=user%3Abob&status=connected",
        &cookie,
    )
    .await;
    let rows = filtered.texts("tbody tr");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("weather") && rows[0].contains("user:bob"),
        "{rows:?}"
    );
    for secret in ["sk-all-REAL", "w-all-REAL", p.as_str()] {
        assert!(!page.body.contains(secret), "{secret} in the page");
    }
    // A connect link for the owner, and Disconnect.
    let csrf = page.csrf();
    let link = post(
        &f,
        "/ui/all-connections/weather/link",
        &cookie,
        &format!("csrf={csrf}&owner=user%3Abob&name=default"),
    )
    .await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.body);
    assert!(link.texts("code.copy")[0].contains("/ui/connect/"));
    let gone = post(
        &f,
        "/ui/all-connections/weather/remove",
        &cookie,
        &format!("csrf={csrf}&owner=user%3Abob&name=default"),
    )
    .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    let (_, left) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?owner=user:bob",
        None,
    )
    .await;
    assert_eq!(left["connections"], json!([]));

    // Request refusals reach the audit log in batches (within a second).
    let blocked = until_some(
        "blocked requests on Activity",
        std::time::Duration::from_secs(5),
        || async {
            let activity = page_at(&f, "/ui/activity", &cookie).await;
            assert_eq!(activity.status, StatusCode::OK);
            let blocked = activity.texts("table.blocked tbody tr");
            (!blocked.is_empty()).then_some(blocked)
        },
    )
    .await;
    assert!(
        blocked
            .iter()
            .any(|r| r.contains("other.test.local") && r.contains("443")),
        "{blocked:?}"
    );
    assert!(
        !blocked.iter().any(|r| r.contains("api.test.local")),
        "only egress refusals are blocked egress: {blocked:?}"
    );
    let activity = page_at(&f, "/ui/activity", &cookie).await;
    let others = activity.texts("table.refusals tbody tr");
    assert!(
        others
            .iter()
            .any(|r| r.contains("placeholder_unknown") && r.contains("api.test.local")),
        "{others:?}"
    );
    let events = page_at(&f, "/ui/activity?event=connection.", &cookie).await;
    let log = events.texts("table.audit tbody tr");
    assert!(
        log.first().is_some_and(|r| r.contains("connection.remove")),
        "newest first: {log:?}"
    );
    assert!(log.iter().all(|r| r.contains("connection.")), "{log:?}");
}

#[tokio::test]
async fn sandboxes_and_placeholders_are_listed_by_hint_and_revoked_from_the_page() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-sbx-REAL");
    let (status, issued) = admin(
        &f.egret,
        Method::POST,
        "/v1/sandboxes",
        Some(json!({ "id": "sbx-1" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let secret = issued["secret"].as_str().expect("secret").to_owned();
    let cookie = sign_in(&f).await;
    let page = page_at(&f, "/ui/sandboxes", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    let tables = page.texts("table tbody tr");
    assert!(tables.iter().any(|r| r.contains("sbx-1")), "{tables:?}");
    assert!(
        tables
            .iter()
            .any(|r| r.contains("openai/org") && r.contains("egp_")),
        "{tables:?}"
    );
    for s in [p.as_str(), secret.as_str(), "sk-sbx-REAL"] {
        assert!(!page.body.contains(s), "{s} in the page");
    }
    // Revoke the placeholder from its row: the proxy refuses it at once.
    let selector = Selector::parse("form[action^='/ui/placeholders/']").expect("selector");
    let action = page
        .html()
        .select(&selector)
        .next()
        .and_then(|e| e.value().attr("action"))
        .expect("a revoke form")
        .to_owned();
    let csrf = page.csrf();
    let done = post(&f, &action, &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let resp = f
        .get(
            "api.test.local",
            "/",
            &[("authorization", &format!("Bearer {p}"))],
            egret_test_support::client::Proto::H1,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let done = post(
        &f,
        "/ui/sandboxes/sbx-1/revoke",
        &cookie,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let (_, left) = admin(&f.egret, Method::GET, "/v1/sandboxes", None).await;
    assert_eq!(left["sandboxes"], json!([]));
}

/// A GET with extra headers (the trusted-header mode's proxy sets one).
async fn visit_with(f: &Fixture, path: &str, cookie: Option<&str>, extra: (&str, &str)) -> Page {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .uri(format!("http://{}{path}", f.egret.control_addr))
        .header(extra.0, extra.1);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::new())).expect("request"))
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

#[tokio::test]
async fn behind_a_trusted_proxy_its_header_names_the_user_and_from_anyone_else_it_is_ignored() {
    let f = Fixture::new().await;
    let with_ui = |ui: &str| format!("{}ui: {ui}\n", super::harness::policy_yaml());
    f.egret.reload(&with_ui("{ user_header: X-Forwarded-Email, trusted_proxies: [127.0.0.0/8], frame_ancestors: [\"https://platform.example.com\"] }"));
    let page = visit_with(
        &f,
        "/ui/connections",
        None,
        ("x-forwarded-email", "ann@example.com"),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let cookie = page.headers["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let page = visit_with(
        &f,
        "/ui/connections",
        Some(&cookie),
        ("x-forwarded-email", "ann@example.com"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.texts("p.lead")[0].contains("user:ann@example.com"));
    // Embedding: only the listed platform may frame the pages.
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("frame-ancestors https://platform.example.com"),
        "{csp}"
    );
    assert!(page.headers.get("x-frame-options").is_none());
    // The proxy names someone else: their own session, not ann's.
    let other = visit_with(
        &f,
        "/ui/connections",
        Some(&cookie),
        ("x-forwarded-email", "bob@example.com"),
    )
    .await;
    assert_eq!(other.status, StatusCode::SEE_OTHER);
    assert_ne!(
        other.headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next(),
        Some(cookie.as_str())
    );

    // From a peer that is not a trusted proxy the header means nothing.
    f.egret.reload(&with_ui(
        "{ user_header: X-Forwarded-Email, trusted_proxies: [10.0.0.0/8] }",
    ));
    let page = visit_with(
        &f,
        "/ui/connections",
        None,
        ("x-forwarded-email", "ann@example.com"),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers["location"], "/ui/login");
    assert!(page.headers.get("set-cookie").is_none());

    // A header without the proxies that set it is refused at load.
    let dir = tempfile::tempdir().expect("dir");
    let e = egret_policy::parse(
        "version: 1\nui: { user_header: X-User }\n",
        &dir.path().join("p.yaml"),
        dir.path(),
    )
    .expect_err("refused");
    assert!(e.to_string().contains("trusted_proxies"), "{e}");
}

/// A UI session lives its lifetime on egret's clock: stamped and checked by the same
/// clock (it was stamped from the wall clock and checked against egret's, so a clock
/// ahead of the wall ended every session at once).
#[tokio::test]
async fn a_ui_session_lives_its_lifetime_on_egrets_clock() {
    let f = Fixture::new().await;
    f.egret
        .clock
        .skip(std::time::Duration::from_secs(24 * 3600));
    let cookie = sign_in(&f).await;
    let page = page_at(&f, "/ui/connectors", &cookie).await;
    assert_eq!(page.status, StatusCode::OK, "signed in: {}", page.body);
    // An administrator's session lasts 8 hours.
    f.egret
        .clock
        .skip(std::time::Duration::from_secs(8 * 3600 - 60));
    let page = page_at(&f, "/ui/connectors", &cookie).await;
    assert_eq!(page.status, StatusCode::OK, "still signed in");
    f.egret.clock.skip(std::time::Duration::from_secs(120));
    let page = page_at(&f, "/ui/connectors", &cookie).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "ended");
    assert_eq!(page.headers["location"], "/ui/login");
}

/// Wrong admin tokens from one address: five a minute, then 429 with `retry-after` (even
/// for the right token) until the minute is over.
#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address() {
    let f = Fixture::new().await;
    let attempt = |token: String| {
        let f = &f;
        async move {
            visit(
                f,
                Method::POST,
                "/ui/login",
                None,
                Some(&origin(f)),
                Some(&format!("token={token}")),
            )
            .await
        }
    };
    for _ in 0..5 {
        let page = attempt("wrong".to_owned()).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let held = attempt(egret_test_support::proxy::ADMIN_TOKEN.to_owned()).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = held.headers["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(held.texts("[role=alert]")[0].contains("Too many wrong admin tokens"));
    assert!(held.headers.get("set-cookie").is_none());
    f.egret.clock.skip(std::time::Duration::from_secs(61));
    let page = attempt(egret_test_support::proxy::ADMIN_TOKEN.to_owned()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "the minute is over");
}

/// Behind a trusted proxy, a request that names two users in its header (the proxy's and
/// one the client slipped in) is refused: neither is believed.
#[tokio::test]
async fn a_trusted_header_given_twice_is_refused() {
    let f = Fixture::new().await;
    f.egret.reload(&format!(
        "{}ui: {{ user_header: X-Forwarded-Email, trusted_proxies: [127.0.0.0/8] }}\n",
        super::harness::policy_yaml()
    ));
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::builder()
        .uri(format!("http://{}/ui/connections", f.egret.control_addr))
        .header("x-forwarded-email", "mallory@example.com")
        .header("x-forwarded-email", "ann@example.com")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = client.request(req).await.expect("answer");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("set-cookie").is_none(), "no session");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("header twice"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// A user who arrived by a connect link signs out like an administrator, and the sign-in
/// page sends a signed-in user to their own page (it sent them to Connector Settings,
/// which sent them back: a loop).
#[tokio::test]
async fn a_connect_link_user_signs_out_and_is_not_sent_round_in_circles() {
    let f = Fixture::new().await;
    let path = connect_link(&f, json!({ "owner": "user:ann" })).await;
    let opened = visit(&f, Method::POST, &path, None, Some(&origin(&f)), None).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let cookie = opened.headers["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let login = page_at(&f, "/ui/login", &cookie).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.headers["location"], "/ui/connections");
    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    let out = post(&f, "/ui/logout", &cookie, &format!("csrf={}", page.csrf())).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers["location"], "/ui/login");
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .contains("Max-Age=0"),
        "the cookie is cleared"
    );
    let after = page_at(&f, "/ui/connections", &cookie).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended");
    assert_eq!(after.headers["location"], "/ui/login");
}

/// A client-credentials connector is the organisation's app: a user (from a connect link)
/// is not offered it and cannot connect it for themselves, nor can the API connect it for
/// a user — unless the connector says `owners: [user]`; an administrator connects it for
/// `org`.
#[tokio::test]
async fn a_client_credentials_connector_is_the_organisations_own() {
    let f = Fixture::new().await;
    let cc = |owners: &str| {
        format!(
            "{}  - id: cc\n    auth: oauth2\n    grant: client_credentials\n    oauth: {{ token_url: \"https://127.0.0.1:1/token\", client_id: a, client_secret: \"${{env:EGRET_TEST_UNSET_SECRET}}\" }}\n    egress: [cc.test.local]\n{owners}",
            super::harness::policy_yaml()
        )
    };
    f.egret.reload(&cc(""));
    let (status, answer) = admin(
        &f.egret,
        Method::POST,
        "/v1/connections/cc/user:ann/authorize",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "forbidden");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("client credentials")),
        "{answer}"
    );
    // For `org` it is tried (and fails at the token endpoint, which is not there).
    let (status, answer) = admin(
        &f.egret,
        Method::POST,
        "/v1/connections/cc/org/authorize",
        None,
    )
    .await;
    assert_ne!(status, StatusCode::FORBIDDEN, "{answer}");

    let path = connect_link(&f, json!({ "owner": "user:ann" })).await;
    let cookie = open_link(&f, &path).await;
    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert!(
        !page.texts("section.offer h3").contains(&"cc".to_owned()),
        "not offered"
    );
    let form = format!("csrf={}&name=default", page.csrf());
    let refused = post(&f, "/ui/connections/cc/connect", &cookie, &form).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.texts("[role=alert]")[0].contains("client credentials"));

    // `owners: [user]`: each person connects their own.
    f.egret.reload(&cc("    owners: [user]\n"));
    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert!(
        page.texts("section.offer h3").contains(&"cc".to_owned()),
        "offered"
    );
    let (status, answer) = admin(
        &f.egret,
        Method::POST,
        "/v1/connections/cc/org/authorize",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only people's now: {answer}");
}

/// Served over https (`control.public_url`), the session cookie is a `__Host-` cookie:
/// `Secure`, `Path=/`, for this host alone; the plain name is not read then.
#[tokio::test]
async fn over_https_the_session_cookie_is_a_host_cookie() {
    let f = Fixture::new().await;
    f.egret.reload(&format!(
        "{}control:\n  public_url: https://egret.example\n",
        super::harness::policy_yaml()
    ));
    let form = format!("token={}", egret_test_support::proxy::ADMIN_TOKEN);
    let page = visit(
        &f,
        Method::POST,
        "/ui/login",
        None,
        Some("https://egret.example"),
        Some(&form),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let set = page.headers["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(set.starts_with("__Host-egret_ui="), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/;", "Secure"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let cookie = set.split(';').next().expect("pair").to_owned();
    let ok = page_at(&f, "/ui/connectors", &cookie).await;
    assert_eq!(ok.status, StatusCode::OK);
    let plain = cookie.replacen("__Host-", "", 1);
    let refused = visit(&f, Method::GET, "/ui/connectors", Some(&plain), None, None).await;
    assert_eq!(
        refused.status,
        StatusCode::SEE_OTHER,
        "the plain name is not read"
    );
}

/// Issue 25: an administrator with no connector sees a first-run page with the way to
/// add one; All connections with nobody connected says how people connect.
#[tokio::test]
async fn an_administrator_without_connectors_sees_the_first_run_page() {
    let ca = egret_test_support::upstream::TestCa::new();
    let upstream = egret_test_support::upstream::Upstream::https(
        &ca,
        &["api.test.local"],
        egret_test_support::upstream::Offer::Http2AndHttp1,
    )
    .await;
    let egret = egret_test_support::proxy::TestProxy::start("version: 1\n", &ca.pem).await;
    let f = Fixture {
        ca,
        upstream,
        egret,
    };
    let cookie = sign_in(&f).await;
    let page = page_at(&f, "/ui/connectors", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.texts("section.first-run h2"),
        ["Add your first connector"]
    );
    assert_eq!(
        page.texts("section.first-run a.button.primary[href='/ui/connectors/new']"),
        ["Add your first connector"]
    );
    assert!(page.texts("section.connector").is_empty());
    let all = page_at(&f, "/ui/all-connections", &cookie).await;
    assert!(
        all.texts("p.empty")[0].starts_with("Nobody has connected yet"),
        "{}",
        all.body
    );
}

/// Issue 26: Connector Settings shows what agents may do with each connector, and an
/// API connector's request rules are edited there (one rule per line); a line that is
/// not a rule changes nothing and says why. The proxy then decides by the new rules.
#[tokio::test]
async fn request_rules_are_shown_and_edited_on_connector_settings() {
    let f = Fixture::new().await;
    let (status, body) = admin(
        &f.egret,
        Method::POST,
        "/v1/connectors",
        Some(json!({"id": "crm", "auth": "api_key", "egress": ["other.test.local"], "limits": {"requests": 100, "per": "1d"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cookie = sign_in(&f).await;
    let page = page_at(&f, "/ui/connectors", &cookie).await;
    let crm = &page.texts("section.connector")[4];
    assert!(
        crm.contains("no request rules") && crm.contains("100 requests per 1day"),
        "{crm}"
    );
    let csrf = page.csrf();
    let bad = post(
        &f,
        "/ui/connectors/crm/rules",
        &cookie,
        &format!("csrf={csrf}&access=full&default=allow&rules=deny+DELETE"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.texts("[role=alert]")[0].contains("needs an action, methods and a path"));
    let rules = "deny DELETE /items/** agents never delete\nallow GET,POST /items/**";
    let form = format!(
        "csrf={csrf}&access=full&default=deny&rules={}",
        percent_encoding::utf8_percent_encode(rules, percent_encoding::NON_ALPHANUMERIC)
    );
    let done = post(&f, "/ui/connectors/crm/rules", &cookie, &form).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let (_, crm) = admin(&f.egret, Method::GET, "/v1/connectors/crm", None).await;
    assert_eq!(crm["access"]["default"], "deny", "{crm}");
    assert_eq!(
        crm["access"]["rules"][0]["reason"], "agents never delete",
        "{crm}"
    );
    let page = page_at(&f, "/ui/connectors", &cookie).await;
    let shown = &page.texts("section.connector")[4];
    assert!(
        shown.contains("deny DELETE /items/**") && shown.contains("otherwise deny"),
        "{shown}"
    );
    let p = f.egret.key_and_placeholder("crm", "org", "crm-key");
    let auth = format!("Bearer {p}");
    let r = f
        .get(
            "other.test.local",
            "/items/1",
            &[("authorization", &auth)],
            egret_test_support::client::Proto::H1,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = f
        .get(
            "other.test.local",
            "/other",
            &[("authorization", &auth)],
            egret_test_support::client::Proto::H1,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the default now denies");
}

/// Issue 26: on their Connections page an owner narrows a connection ("only read", "ask
/// me first") and lifts it; another owner's connection cannot be touched from there.
#[tokio::test]
async fn an_owner_narrows_a_connection_on_their_connections_page() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "user:ann", "sk-ann");
    f.egret.key_and_placeholder("openai", "user:bob", "sk-bob");
    let cookie = open_link(&f, &connect_link(&f, json!({ "owner": "user:ann" })).await).await;
    let page = page_at(&f, "/ui/connections", &cookie).await;
    let csrf = page.csrf();
    assert!(page.body.contains("ask me first"), "the choice is offered");
    let done = post(
        &f,
        "/ui/connections/openai/narrow",
        &cookie,
        &format!("csrf={csrf}&narrow=read_only"),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let (_, listed) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?owner=user:ann",
        None,
    )
    .await;
    assert_eq!(
        listed["connections"][0]["narrowing"],
        json!({"access": "read_only"})
    );
    let auth = format!("Bearer {p}");
    let r = f
        .get(
            "api.test.local",
            "/x",
            &[("authorization", &auth)],
            egret_test_support::client::Proto::H1,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "a GET still goes");
    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert!(
        page.body.contains("selected>only read")
            || page.body.contains("value=\"read_only\" selected"),
        "shown as chosen"
    );
    post(
        &f,
        "/ui/connections/openai/narrow",
        &cookie,
        &format!("csrf={csrf}&narrow=none"),
    )
    .await;
    let (_, listed) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?owner=user:ann",
        None,
    )
    .await;
    assert!(listed["connections"][0]["narrowing"].is_null());
    let bad = post(
        &f,
        "/ui/connections/openai/narrow",
        &cookie,
        &format!("csrf={csrf}&narrow=everything"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let (_, bob) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?owner=user:bob",
        None,
    )
    .await;
    assert!(bob["connections"][0]["narrowing"].is_null());
}

/// Issue 26, part 3: the Connections page shows a connection's use against its budget.
#[tokio::test]
async fn the_connections_page_shows_use_against_the_budget() {
    let yaml = super::rules::ruled_yaml("    limits: { requests: 5, per: 1h }\n");
    let f = Fixture::with_policy(&yaml).await;
    let p = f.egret.key_and_placeholder("openai", "user:ann", "sk-ann");
    let auth = format!("Bearer {p}");
    for _ in 0..2 {
        let r = f
            .get(
                "api.test.local",
                "/x",
                &[("authorization", &auth)],
                egret_test_support::client::Proto::H1,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let cookie = open_link(&f, &connect_link(&f, json!({ "owner": "user:ann" })).await).await;
    super::harness::wait::until(
        "the use, flushed",
        std::time::Duration::from_secs(10),
        || async {
            page_at(&f, "/ui/connections", &cookie)
                .await
                .body
                .contains("2 of 5 requests per 1h used")
        },
    )
    .await;
}

/// Issue 27: administrators make, list and revoke API tokens on a page of their own; the
/// token is shown once and never again.
#[tokio::test]
async fn administrators_make_and_revoke_api_tokens_on_their_page() {
    let f = Fixture::new().await;
    let cookie = sign_in(&f).await;
    let page = page_at(&f, "/ui/tokens", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let made = post(
        &f,
        "/ui/tokens",
        &cookie,
        &format!("csrf={csrf}&name=ci&role=platform&owner=&ttl=30d"),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let token = made.texts("code.copy")[0].clone();
    assert!(token.starts_with("egt_"), "{token}");
    let listed = page_at(&f, "/ui/tokens", &cookie).await;
    assert!(listed.body.contains("platform") && !listed.body.contains(&token));
    let (status, _) = super::harness::api::api(
        f.egret.control_addr,
        Method::GET,
        "/v1/connections",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let bad = post(
        &f,
        "/ui/tokens",
        &cookie,
        &format!("csrf={csrf}&name=x&role=user&owner=&ttl="),
    )
    .await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "a user token needs an owner"
    );
    let revoked = post(&f, "/ui/tokens/ci/revoke", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let (status, _) = super::harness::api::api(
        f.egret.control_addr,
        Method::GET,
        "/v1/connections",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A connector of several inputs offers one write-only field per input; what is typed is
/// stored as those inputs and never shown again; one left out is refused, naming it.
#[tokio::test]
async fn a_connector_of_several_inputs_takes_one_write_only_field_each() {
    let yaml = super::harness::policy_yaml()
        + "  - id: datadog\n    auth: api_key\n    egress: [other.test.local]\n    inputs:\n      - { name: api_key, inject: { header: DD-API-KEY } }\n      - { name: app_key, inject: { header: DD-APPLICATION-KEY } }\n";
    let f = Fixture::with_policy(&yaml).await;
    let path = connect_link(&f, json!({ "owner": "user:ann", "connector": "datadog" })).await;
    let cookie = open_link(&f, &path).await;
    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert_eq!(
        page.texts("section.offer small"),
        [
            "API keys",
            "Sends your credential only to other.test.local."
        ]
    );
    let html = page.html();
    let fields: Vec<(String, String)> = html
        .select(&scraper::Selector::parse("section.offer form input[name^='input.']").expect("css"))
        .map(|i| {
            (
                i.value().attr("name").unwrap_or_default().to_owned(),
                i.value().attr("type").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("input.api_key".to_owned(), "password".to_owned()),
            ("input.app_key".to_owned(), "password".to_owned())
        ]
    );
    let csrf = page.csrf();
    let missing = post(
        &f,
        "/ui/connections/datadog/key",
        &cookie,
        &format!("csrf={csrf}&name=default&input.api_key=dd-ui-REAL&input.app_key="),
    )
    .await;
    let back = page_at(&f, "/ui/connections", &cookie).await;
    assert!(
        missing.body.contains("app_key") || back.body.contains("app_key"),
        "the missing input is named: {}",
        missing.body
    );
    let stored = post(
        &f,
        "/ui/connections/datadog/key",
        &cookie,
        &format!("csrf={csrf}&name=default&input.api_key=dd-ui-REAL&input.app_key=dd-app-REAL"),
    )
    .await;
    assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.body);
    let page = page_at(&f, "/ui/connections", &cookie).await;
    assert_eq!(page.texts("section.connection h3"), ["datadog"]);
    assert!(!page.body.contains("dd-ui-REAL") && !page.body.contains("dd-app-REAL"));
    let credential = f
        .egret
        .vault
        .credential(&egret_vault::ConnectionId::default_of(
            "datadog",
            &egret_vault::Owner::parse("user:ann").expect("owner"),
        ))
        .expect("stored");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(credential.value(Some("app_key")).expect("app_key")),
        "dd-app-REAL"
    );
}
