//! The web UI in real headless Chromium (Debian's `chromium` and `chromium-driver`)
//! against the real OAuth test server: a test binary of its own (`cargo test --test
//! browser`), so a machine without a browser still runs every other test. Without
//! Chromium these tests say so and pass, unless they are required (`CI` set, as CI
//! runs `.ci/run`, which installs the browser; or `EGRET_REQUIRE_BROWSER=1`).

#[path = "suite/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

use std::time::Duration;

use egret_test_support::chromium::{self, Chromium};
use egret_test_support::client::Proto;
use egret_test_support::proxy::ADMIN_TOKEN;
use harness::oauth::{OAuthFixture, Options};
use harness::wait::{until, until_some};
use http::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// One browser test at a time: each runs Chromium and the OAuth server, and two at once
/// on a small machine slow both past their timeouts.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The browser, or `None` (the test then passes) when it is not installed and not
/// required.
async fn browser() -> Option<Chromium> {
    if !chromium::available() {
        let required = std::env::var("EGRET_REQUIRE_BROWSER").as_deref() == Ok("1")
            || std::env::var_os("CI").is_some();
        assert!(
            !required,
            "the browser tests must run here (CI or EGRET_REQUIRE_BROWSER=1) but {} or {} is missing; install Debian's chromium and chromium-driver (.ci/run does)",
            chromium::CHROMIUM,
            chromium::CHROMEDRIVER
        );
        eprintln!("skipped: no Chromium here (apt-get install chromium chromium-driver)");
        return None;
    }
    Some(Chromium::start().await.expect("chromedriver starts"))
}

const HOSTS: &[&str] = &["auth.test.local", "api.test.local"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_and_a_user_set_up_and_connect_a_service_in_chromium() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(chromium) = browser().await else {
        return;
    };
    let f = OAuthFixture::new(Options::default()).await;
    let control = format!("http://127.0.0.1:{}", f.egret.control_addr.port());

    // The administrator signs in, adds a connector from the generic OpenID template
    // (the test server's issuer), disables and enables it, and makes a link for alice.
    let port = f.server.port;
    let admin_profile = tempfile::tempdir().expect("profile");
    let admin = chromium
        .session(admin_profile.path(), HOSTS)
        .await
        .expect("browser");
    admin.goto(&format!("{control}/ui/")).await.expect("open");
    admin
        .wait_for("input#token", WAIT)
        .await
        .expect("sign-in page");
    sign_in_as_admin(&admin).await;
    admin
        .click("a.button[href='/ui/connectors/new']")
        .await
        .expect("add");
    // The link is on the page the click opens: wait for it, not for a page that may
    // still be the old one.
    admin
        .wait_for("a[href='/ui/connectors/new?kind=generic']", WAIT)
        .await
        .expect("the templates");
    admin
        .click("a[href='/ui/connectors/new?kind=generic']")
        .await
        .expect("generic");
    admin
        .wait_for("aside.guide", WAIT)
        .await
        .expect("Setup Guide");
    let guide = admin.source().await.expect("page");
    assert!(
        guide.contains(&format!("{control}/oauth/callback")),
        "{guide}"
    );
    for (field, value) in [
        ("input#id", "crm".to_owned()),
        (
            "input#setting-issuer",
            format!("https://auth.test.local:{port}"),
        ),
        ("input#client_id", "egret".to_owned()),
        ("input#client_secret", "egret-secret".to_owned()),
        ("input#scopes", "openid offline_access read".to_owned()),
        ("input#egress", format!("api.test.local:{port}")),
        ("input#test_path", "/resource".to_owned()),
    ] {
        admin.type_into(field, &value).await.expect("type");
    }
    admin
        .click("form[action='/ui/connectors/new'] button")
        .await
        .expect("save");
    admin
        .wait_for("section.connector h2#c-crm", WAIT)
        .await
        .expect("listed");
    let page = admin.source().await.expect("page");
    let card = page
        .split("id=\"c-crm\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .expect("the crm card");
    assert!(
        !card.contains("egret-secret") && card.contains("sealed in egret's vault"),
        "the secret is never shown: {card}"
    );
    for (press, then) in [("false", "true"), ("true", "false")] {
        admin
            .click(&format!(
                "form[action='/ui/connectors/crm/enabled'] input[value={press}] + button"
            ))
            .await
            .expect("toggle");
        admin
            .wait_for(
                &format!("form[action='/ui/connectors/crm/enabled'] input[value={then}]"),
                WAIT,
            )
            .await
            .expect("toggled");
    }
    let link = make_link(&admin, "crm", "user:alice").await;
    // The script gives it a Copy button; pressing it says so.
    admin
        .click("code.copy + button")
        .await
        .expect("the Copy button");
    // The clipboard answers asynchronously: wait for the status it sets.
    let said = until_some("the Copy button's status", WAIT, || async {
        let text = admin
            .execute(
                "return document.querySelector('code.copy ~ [role=status]').textContent;",
                json!([]),
            )
            .await
            .ok()?;
        text.as_str()
            .filter(|t| !t.is_empty())
            .map(|_| text.clone())
    })
    .await;
    assert!(
        said.as_str()
            .is_some_and(|s| s.starts_with("Copied") || s.starts_with("Select")),
        "{said}"
    );

    // The user opens it in their own browser and connects in the vendor's popup.
    let user_profile = tempfile::tempdir().expect("profile");
    let user = chromium
        .session(user_profile.path(), HOSTS)
        .await
        .expect("browser");
    user.goto(&link).await.expect("open link");
    user.click("form button").await.expect("continue");
    user.wait_for("form[action='/ui/connections/crm/connect'] button", WAIT)
        .await
        .expect("available");
    let main = user.window().await.expect("window");
    user.click("form[action='/ui/connections/crm/connect'] button")
        .await
        .expect("connect");
    let popup = wait_for_popup(&user, &main).await;
    user.switch_to(&popup).await.expect("to the popup");
    user.wait_for("form[action$='/login'] button", WAIT)
        .await
        .expect("vendor login");
    user.click("form[action$='/login'] button")
        .await
        .expect("sign in");
    user.wait_for("form[action$='/consent'] button", WAIT)
        .await
        .expect("consent");
    user.click("form[action$='/consent'] button")
        .await
        .expect("allow");
    // The callback tells the page and closes the popup; the list shows the connection.
    until("the popup to close", WAIT, || async {
        user.windows().await.expect("windows").len() == 1
    })
    .await;
    user.switch_to(&main).await.expect("back");
    user.wait_for("section.connection .badge.ok", WAIT)
        .await
        .expect("connected");
    let page = user.source().await.expect("page");
    assert!(page.contains("<h3>crm</h3>"), "{page}");
    assert!(
        page.contains("<dt>Connected as</dt><dd>alice"),
        "who signed in at the vendor: {page}"
    );

    // Test, from the page: one real request to the vendor.
    user.click("form[action='/ui/connections/crm/test'] button")
        .await
        .expect("test");
    // Recorded on the connection once the page has made it.
    until("the test recorded on the connection", WAIT, || async {
        let (_, listed) = f
            .admin(Method::GET, "/v1/connections?connector=crm", None)
            .await;
        listed["connections"][0]["last_test"]["ok"] == true
    })
    .await;

    // Its placeholder works through the proxy as alice's token.
    let p = f.mint("crm", "user:alice").await;
    let (status, _, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sub"], "alice");

    // Disabled: still listed and working, no longer offered.
    let (status, _) = f
        .admin(
            Method::PATCH,
            "/v1/connectors/crm",
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    user.goto(&format!("{control}/ui/connections"))
        .await
        .expect("reload");
    user.wait_for("section.connection .badge.off", WAIT)
        .await
        .expect("marked disabled");
    let page = user.source().await.expect("page");
    assert!(
        !page.contains("action=\"/ui/connections/crm/connect\""),
        "not offered"
    );
    let (status, _, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "a disabled connector keeps working");

    // The kill switch, from Connector Settings: the page says what it erases, then
    // every connection to the connector stops at once.
    admin
        .goto(&format!("{control}/ui/connectors/crm/delete"))
        .await
        .expect("delete page");
    wait_for_text(&admin, "1 connection(s)").await;
    admin
        .click("form[action='/ui/connectors/crm/delete'] button")
        .await
        .expect("delete");
    admin
        .wait_for("section.connector", WAIT)
        .await
        .expect("back to the list");
    let (status, code, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{code:?}");
    admin.close().await.expect("close");

    // Another connection (a new link, for every connector), then Disconnect in the page
    // (it asks first): it stops.
    let (_, link) = f
        .admin(
            Method::POST,
            "/v1/connect-links",
            Some(json!({ "owner": "user:alice" })),
        )
        .await;
    user.goto(link["url"].as_str().expect("url"))
        .await
        .expect("open link");
    user.click("form button").await.expect("continue");
    wait_for_text(&user, "Nothing connected yet").await;
    user.click("form[action='/ui/connections/vendor/connect'] button")
        .await
        .expect("connect");
    finish_sign_in(&user, &main).await;
    user.wait_for("section.connection .badge.ok", WAIT)
        .await
        .expect("connected");
    let p = f.mint("vendor", "user:alice").await;
    let (status, _, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK);
    user.click("form[action='/ui/connections/vendor/remove'] button")
        .await
        .expect("disconnect");
    user.accept_dialog().await.expect("the page asks first");
    wait_for_text(&user, "Nothing connected yet").await;
    let (status, code, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{code:?}");
    user.close().await.expect("close");
}

/// In the popup that Connect opened: signs in and consents where the vendor asks (it
/// may remember both), until the popup closes; then back to `main`.
async fn finish_sign_in(s: &chromium::Session<'_>, main: &str) {
    let popup = wait_for_popup(s, main).await;
    s.switch_to(&popup).await.expect("popup");
    until("the popup to close", WAIT, || async {
        if s.windows().await.expect("windows").len() == 1 {
            return true;
        }
        for step in [
            "form[action$='/login'] button",
            "form[action$='/consent'] button",
        ] {
            let _ = s.click(step).await;
        }
        false
    })
    .await;
    s.switch_to(main).await.expect("back");
}

/// Waits until the page's HTML holds `text`.
async fn wait_for_text(s: &chromium::Session<'_>, text: &str) {
    let what = format!("`{text}` on the page");
    until(what, WAIT, || async {
        s.source().await.expect("page").contains(text)
    })
    .await;
}

/// Waits for a second window beside `main`.
async fn wait_for_popup(s: &chromium::Session<'_>, main: &str) -> String {
    until_some("a popup to open", WAIT, || async {
        let windows = s.windows().await.expect("windows");
        windows.into_iter().find(|w| w != main)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_consent_a_closed_popup_another_browser_and_old_or_used_links_each_say_so_in_chromium()
 {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(chromium) = browser().await else {
        return;
    };
    let f = OAuthFixture::new(Options::default()).await;
    let (status, link) = f
        .admin(
            Method::POST,
            "/v1/connect-links",
            Some(json!({ "owner": "user:alice", "connector": "vendor" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let link = link["url"].as_str().expect("url").to_owned();
    let profile = tempfile::tempdir().expect("profile");
    let user = chromium
        .session(profile.path(), HOSTS)
        .await
        .expect("browser");
    user.goto(&link).await.expect("open");
    user.click("form button").await.expect("continue");
    let main = user.window().await.expect("window");
    user.wait_for("form[action='/ui/connections/vendor/connect'] button", WAIT)
        .await
        .expect("the Connections page");
    user.click("form[action='/ui/connections/vendor/connect'] button")
        .await
        .expect("connect");
    let popup = wait_for_popup(&user, &main).await;
    user.switch_to(&popup).await.expect("popup");
    user.wait_for("form[action$='/login'] button", WAIT)
        .await
        .expect("login");
    user.click("form[action$='/login'] button")
        .await
        .expect("sign in");
    user.wait_for("form[action$='/deny'] button", WAIT)
        .await
        .expect("consent");
    user.click("form[action$='/deny'] button")
        .await
        .expect("deny");
    // The text of the page the click leads to (the vendor's page has an `h1` too).
    wait_for_text(&user, "access_denied").await;
    let page = user.source().await.expect("page");
    assert!(page.contains("Not connected"), "{page}");
    // Closing the popup showing the refusal takes the user back to the page.
    user.close_window().await.expect("close the popup");
    user.switch_to(&main).await.expect("back");
    let (_, listed) = f.admin(Method::GET, "/v1/connections", None).await;
    assert_eq!(listed["connections"], json!([]), "nothing connected");

    // A popup closed before the sign-in finished: the page says so, and the button
    // tries again.
    user.click("form[action='/ui/connections/vendor/connect'] button")
        .await
        .expect("connect again");
    let popup = wait_for_popup(&user, &main).await;
    user.switch_to(&popup).await.expect("popup");
    // Signed in at the vendor already: its consent page (every page has Deny).
    user.wait_for("form[action$='/deny'] button", WAIT)
        .await
        .expect("the vendor's page");
    user.close_window().await.expect("close the popup");
    user.switch_to(&main).await.expect("back");
    wait_for_text(&user, "closed before it finished").await;
    user.close().await.expect("close");

    // A sign-in link made by the API opens a page naming the connector and the owner;
    // Continue goes on to the vendor. Finished in another browser, the sign-in connects
    // nothing and says why — and the browser that continued still finishes it.
    let start = f.authorization_url("vendor", "user:alice").await;
    let starter_profile = tempfile::tempdir().expect("profile");
    let starter = chromium
        .session(starter_profile.path(), HOSTS)
        .await
        .expect("browser");
    starter.goto(&start).await.expect("open the link");
    wait_for_text(&starter, "account for <strong>user:alice</strong>").await;
    starter
        .click("form[action='/oauth/start'] button")
        .await
        .expect("continue");
    starter
        .wait_for("form[action$='/login'] button", WAIT)
        .await
        .expect("the vendor's login");
    starter.close().await.expect("close");
    // The same with egret's test browser, which hands over the vendor's URL as is.
    let start = f.authorization_url("vendor", "user:alice").await;
    let mut first = egret_test_support::browser::Browser::new(&f.ca.pem);
    let vendor_url = first
        .continue_to_vendor(&start)
        .await
        .expect("the link's page, continued");
    let thief_profile = tempfile::tempdir().expect("profile");
    let thief = chromium
        .session(thief_profile.path(), HOSTS)
        .await
        .expect("browser");
    thief.goto(&vendor_url).await.expect("open");
    thief
        .wait_for("form[action$='/login'] button", WAIT)
        .await
        .expect("login");
    thief
        .click("form[action$='/login'] button")
        .await
        .expect("sign in");
    thief
        .wait_for("form[action$='/consent'] button", WAIT)
        .await
        .expect("consent");
    thief
        .click("form[action$='/consent'] button")
        .await
        .expect("allow");
    wait_for_text(&thief, "different browser").await;
    let page = thief.source().await.expect("page");
    assert!(page.contains("Not connected"), "{page}");
    thief.close().await.expect("close");
    let (_, listed) = f.admin(Method::GET, "/v1/connections", None).await;
    assert_eq!(listed["connections"], json!([]), "nothing connected");
    let page = first
        .authorize(&vendor_url, egret_test_support::browser::Choice::Allow)
        .await
        .expect("the first browser finishes");
    assert!(
        page.body
            .contains("for <strong>user:alice</strong>. You can close this window."),
        "{}",
        page.body
    );
    let (_, listed) = f.admin(Method::GET, "/v1/connections", None).await;
    assert_eq!(connection_count(&listed), 1, "{listed}");
    f.admin(Method::DELETE, "/v1/connections/vendor/user:alice", None)
        .await;

    // An old link says so.
    let (_, old) = f
        .admin(
            Method::POST,
            "/v1/connect-links",
            Some(json!({ "owner": "user:alice", "ttl": "1s" })),
        )
        .await;
    f.egret.clock.skip(Duration::from_secs(2));
    let late_profile = tempfile::tempdir().expect("profile");
    let late = chromium
        .session(late_profile.path(), HOSTS)
        .await
        .expect("browser");
    late.goto(old["url"].as_str().expect("url"))
        .await
        .expect("open");
    late.click("form button").await.expect("continue");
    wait_for_text(&late, "This link has expired").await;
    late.close().await.expect("close");

    // The same link in a second browser: already used.
    let other_profile = tempfile::tempdir().expect("profile");
    let other = chromium
        .session(other_profile.path(), HOSTS)
        .await
        .expect("browser");
    other.goto(&link).await.expect("open");
    other.click("form button").await.expect("continue");
    wait_for_text(&other, "This link was already used").await;
    other.close().await.expect("close");
}

fn connection_count(listed: &serde_json::Value) -> usize {
    listed["connections"].as_array().map_or(0, Vec::len)
}

/// axe-core's `axe.min.js`, from the OAuth test server's npm packages (installed by the
/// fixture, from tests/oauth-server/package-lock.json).
fn axe_source() -> String {
    // A browser test may run before any that starts the OAuth server (which installs).
    egret_test_support::oauth_server::ensure_installed();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/oauth-server/node_modules/axe-core/axe.min.js"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}; npm ci installs it"))
}

/// Checks the page now shown at a desktop's and a phone's width; adds what is wrong to
/// `found`, named by the page.
async fn check_page(s: &chromium::Session<'_>, axe: &str, what: &str, found: &mut Vec<String>) {
    for width in [1280, 420] {
        s.resize(width, 900).await.expect("resize");
        let url = s.url().await.expect("url");
        for v in s.accessibility_violations(axe).await.expect("axe runs") {
            found.push(format!("{what} ({url}) at {width} px: {v}"));
        }
    }
    s.resize(1280, 900).await.expect("resize");
}

/// On Connector Settings: makes a connect link to `connector` for `owner`; its URL, as
/// the page shows it to copy.
async fn make_link(s: &chromium::Session<'_>, connector: &str, owner: &str) -> String {
    s.type_into(&format!("input#o-{connector}"), owner)
        .await
        .expect("owner");
    s.click(&format!(
        "form[action='/ui/connectors/{connector}/link'] button"
    ))
    .await
    .expect("make link");
    s.wait_for("code.copy + button", WAIT)
        .await
        .expect("the link, with its Copy button");
    let link = s
        .execute(
            "return document.querySelector('code.copy').textContent;",
            json!([]),
        )
        .await
        .expect("the link");
    link.as_str().expect("text").to_owned()
}

/// Types the admin token on the sign-in page shown and signs in, to Connector Settings.
async fn sign_in_as_admin(s: &chromium::Session<'_>) {
    s.type_into("input#token", ADMIN_TOKEN).await.expect("type");
    s.click("form[action='/ui/login'] button")
        .await
        .expect("sign in");
    s.wait_for("section.connector", WAIT)
        .await
        .expect("Connector Settings");
}

/// Opens each `(path, what)` under `control` and checks it as [`check_page`] does.
async fn check_pages(
    s: &chromium::Session<'_>,
    control: &str,
    axe: &str,
    pages: &[(&str, &str)],
    found: &mut Vec<String>,
) {
    for (path, what) in pages {
        s.goto(&format!("{control}{path}")).await.expect("open");
        s.wait_for("main h1", WAIT).await.expect("page");
        check_page(s, axe, what, found).await;
    }
}

/// Issue 25: every page of the web UI, an administrator's and a user's, error pages and a
/// form sent back with an error included, has no WCAG 2.1 A/AA violation that axe-core
/// finds, at 1280 px and at 420 px, and none scrolls sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_meets_wcag_2_1_aa_at_1280_and_420_pixels_in_chromium() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(chromium) = browser().await else {
        return;
    };
    let f = OAuthFixture::new(Options::default()).await;
    let axe = axe_source();
    let control = format!("http://127.0.0.1:{}", f.egret.control_addr.port());
    let mut found = Vec::new();

    let profile = tempfile::tempdir().expect("profile");
    let admin = chromium
        .session(profile.path(), HOSTS)
        .await
        .expect("browser");
    admin.goto(&format!("{control}/ui/")).await.expect("open");
    admin.wait_for("input#token", WAIT).await.expect("sign-in");
    check_page(&admin, &axe, "Sign in", &mut found).await;
    admin
        .type_into("input#token", "not-the-token")
        .await
        .expect("type");
    admin
        .click("form[action='/ui/login'] button")
        .await
        .expect("sign in");
    admin.wait_for("p.problem", WAIT).await.expect("refused");
    check_page(&admin, &axe, "Sign in, refused", &mut found).await;
    sign_in_as_admin(&admin).await;
    let admin_pages = [
        ("/ui/connectors", "Connector Settings"),
        ("/ui/connectors/new", "Add connector"),
        (
            "/ui/connectors/new?kind=databricks",
            "Add connector: Databricks",
        ),
        (
            "/ui/connectors/new?kind=generic",
            "Add connector: OpenID Connect",
        ),
        ("/ui/connectors/new?kind=api_key", "Add connector: API key"),
        ("/ui/connectors/vendor/delete", "Delete connector"),
        ("/ui/all-connections", "All connections"),
        (
            "/ui/all-connections?status=needs_reauth",
            "All connections, none match",
        ),
        ("/ui/approvals", "Approvals"),
        ("/ui/sandboxes", "Sandboxes"),
        ("/ui/tokens", "API tokens"),
        ("/ui/activity", "Activity"),
    ];
    check_pages(&admin, &control, &axe, &admin_pages, &mut found).await;
    // A form sent back with its error beside the field.
    admin
        .goto(&format!("{control}/ui/connectors/new?kind=api_key"))
        .await
        .expect("open");
    admin.wait_for("input#id", WAIT).await.expect("form");
    admin
        .type_into("input#id", "Not An Id")
        .await
        .expect("type");
    admin
        .type_into("input#egress", "api.example.com")
        .await
        .expect("type");
    admin
        .click("form[action='/ui/connectors/new'] button")
        .await
        .expect("save");
    admin.wait_for("[role=alert]", WAIT).await.expect("refused");
    check_page(&admin, &axe, "Add connector, refused", &mut found).await;
    // A connect link, shown to copy.
    admin
        .goto(&format!("{control}/ui/connectors"))
        .await
        .expect("open");
    let link = make_link(&admin, "vendor", "user:alice").await;
    check_page(&admin, &axe, "Connect link", &mut found).await;
    // The user: the link's page, their connections before and after connecting.
    let user_profile = tempfile::tempdir().expect("profile");
    let user = chromium
        .session(user_profile.path(), HOSTS)
        .await
        .expect("browser");
    user.goto(&link).await.expect("open link");
    user.wait_for("form button", WAIT)
        .await
        .expect("continue page");
    check_page(&user, &axe, "Connect link, continue", &mut found).await;
    user.click("form button").await.expect("continue");
    user.wait_for("form[action='/ui/connections/vendor/connect'] button", WAIT)
        .await
        .expect("the Connections page");
    check_page(&user, &axe, "Your connections, empty", &mut found).await;
    let main = user.window().await.expect("window");
    user.click("form[action='/ui/connections/vendor/connect'] button")
        .await
        .expect("connect");
    finish_sign_in(&user, &main).await;
    user.wait_for("section.connection .badge.ok", WAIT)
        .await
        .expect("connected");
    check_page(&user, &axe, "Your connections", &mut found).await;
    // An error page: the same link again.
    user.goto(&link).await.expect("open link");
    user.wait_for("main h1", WAIT).await.expect("page");
    if user.source().await.expect("page").contains("<form") {
        let _ = user.click("form button").await;
    }
    user.wait_for("p.problem", WAIT)
        .await
        .expect("the used link says so");
    check_page(&user, &axe, "A used connect link", &mut found).await;
    admin
        .goto(&format!("{control}/ui/all-connections"))
        .await
        .expect("open");
    admin
        .wait_for("table", WAIT)
        .await
        .expect("a connection listed");
    check_page(&admin, &axe, "All connections, one", &mut found).await;
    // The sign-in pages outside /ui: a sign-in link's Continue page, and a refused
    // callback.
    let start = f.authorization_url("vendor", "user:bob").await;
    user.goto(&start).await.expect("open the sign-in link");
    user.wait_for("form[action='/oauth/start'] button.primary", WAIT)
        .await
        .expect("the Continue page, styled");
    check_page(&user, &axe, "Sign-in link, continue", &mut found).await;
    user.goto(&format!("{control}/oauth/callback?state=nothing&code=x"))
        .await
        .expect("open");
    user.wait_for("main h1", WAIT).await.expect("the page");
    check_page(&user, &axe, "Sign-in callback, refused", &mut found).await;

    // Dark mode, where the system asks for it: the same checks on the administrator's
    // pages.
    let dark_profile = tempfile::tempdir().expect("profile");
    let dark = chromium
        .session_with(dark_profile.path(), HOSTS, &["--force-dark-mode"])
        .await
        .expect("browser");
    dark.goto(&format!("{control}/ui/")).await.expect("open");
    dark.wait_for("input#token", WAIT).await.expect("sign-in");
    let scheme = dark
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
            json!([]),
        )
        .await
        .expect("media");
    assert_eq!(scheme, json!(true), "the browser asks for dark");
    let light = found.len();
    check_page(&dark, &axe, "Sign in", &mut found).await;
    sign_in_as_admin(&dark).await;
    check_pages(&dark, &control, &axe, &admin_pages, &mut found).await;
    for problem in &mut found[light..] {
        problem.insert_str(0, "dark mode: ");
    }
    dark.close().await.expect("close");

    assert!(
        found.is_empty(),
        "{} accessibility problems:\n{}",
        found.len(),
        found.join("\n")
    );
    admin.close().await.expect("close");
    user.close().await.expect("close");
}

/// Issue 26: a request held for approval is released by its owner on their Connections
/// page in Chromium ("Pending approvals", a note, Approve once); the page passes axe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_approves_a_held_request_on_their_connections_page_in_chromium() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(chromium) = browser().await else {
        return;
    };
    let ca = egret_test_support::upstream::TestCa::new();
    let upstream = egret_test_support::upstream::Upstream::https(
        &ca,
        harness::NAMES,
        egret_test_support::upstream::Offer::Http2AndHttp1,
    )
    .await;
    let yaml = harness::policy_yaml().replace(
        "    egress: [api.test.local]\n",
        "    egress: [api.test.local]\n    rules:\n      - { name: pulls, methods: [POST], path: \"/v1/pulls/**\", action: approve, reason: \"a person approves pull requests\" }\n    approvals: { hold: 30s }\n",
    );
    let egret = egret_test_support::proxy::TestProxy::start(&yaml, &ca.pem).await;
    let f = harness::Fixture {
        ca,
        upstream,
        egret,
    };
    let control = format!("http://127.0.0.1:{}", f.egret.control_addr.port());
    let p = f
        .egret
        .key_and_placeholder("openai", "user:alice", "sk-alice-key");
    let (status, answer) = harness::api::admin(
        &f.egret,
        Method::POST,
        "/v1/connect-links",
        Some(json!({"owner": "user:alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let link = answer["url"].as_str().expect("url").to_owned();
    let profile = tempfile::tempdir().expect("profile");
    let user = chromium
        .session(profile.path(), HOSTS)
        .await
        .expect("browser");
    user.goto(&link).await.expect("open link");
    user.wait_for("form button", WAIT)
        .await
        .expect("continue page");
    user.click("form button").await.expect("continue");
    user.wait_for("section.connection", WAIT)
        .await
        .expect("the Connections page");

    let auth = format!("Bearer {p}");
    let sending = async {
        let at = f.at("api.test.local");
        let mut s = f.session("api.test.local", Proto::H2).await;
        let req = egret_test_support::client::request(
            "POST",
            &at,
            "/v1/pulls/new",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            egret_test_support::client::full(r#"{"title": "add tests"}"#.to_owned()),
            Proto::H2,
        )
        .expect("request");
        s.fetch(req).await.expect("answer")
    };
    let approving = async {
        until("the pending approval on alice's page", WAIT, || async {
            user.goto(&format!("{control}/ui/connections"))
                .await
                .is_ok()
                && user
                    .source()
                    .await
                    .is_ok_and(|s| s.contains("Pending approvals"))
        })
        .await;
        assert!(f.upstream.seen().is_empty(), "held, not sent");
        let page = user.source().await.expect("page");
        assert!(
            page.contains("POST api.test.local")
                && page.contains("a person approves pull requests")
        );
        assert!(!page.contains(&p) && !page.contains("sk-alice-key"));
        let mut found = Vec::new();
        check_page(
            &user,
            &axe_source(),
            "Your connections, an approval pending",
            &mut found,
        )
        .await;
        assert!(found.is_empty(), "{}", found.join("\n"));
        user.type_into("form.decide input[name=note]", "go ahead")
            .await
            .expect("note");
        user.click("form.decide button.primary")
            .await
            .expect("Approve once");
    };
    let (resp, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(sending, approving)
    })
    .await
    .expect("bounded");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(f.upstream.seen().len(), 1);
    let (_, listed) = harness::api::admin(&f.egret, Method::GET, "/v1/approvals", None).await;
    let a = &listed["approvals"][0];
    assert_eq!(a["status"], "approved");
    assert_eq!(a["decided_by"], "user:alice");
    assert_eq!(a["note"], "go ahead");
    // The approvals page, for the record, passes axe too.
    user.goto(&format!("{control}/ui/approvals"))
        .await
        .expect("open");
    user.wait_for("main h1", WAIT).await.expect("page");
    let mut found = Vec::new();
    check_page(&user, &axe_source(), "Approvals, one decided", &mut found).await;
    assert!(found.is_empty(), "{}", found.join("\n"));
    user.close().await.expect("close");
}

/// Issue 27: a person signs in with the organisation's identity provider in Chromium,
/// lands on their own connections without any link, and sees nobody else's; the
/// sign-in page with the provider's button passes axe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_the_identity_provider_in_chromium() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(chromium) = browser().await else {
        return;
    };
    use egret_test_support::idp::{CLIENT_ID, CLIENT_SECRET, TestIdp};
    let idp = TestIdp::start().await;
    let f = harness::Fixture::new().await;
    std::fs::write(f.egret.dir.path().join("idp-secret"), CLIENT_SECRET).expect("secret");
    let control = format!("http://{}", f.egret.control_addr);
    f.egret.reload(&format!(
        "{}control:\n  public_url: {control}\nui:\n  oidc:\n    issuer: {}\n    client_id: {CLIENT_ID}\n    client_secret: ${{file:idp-secret}}\n    name: Example SSO\n",
        harness::policy_yaml(),
        idp.issuer()
    ));
    f.egret
        .key_and_placeholder("openai", "user:carol@example.com", "sk-carol");
    f.egret
        .key_and_placeholder("weather", "user:dave@example.com", "sk-dave");
    idp.sign_in_as(json!({"email": "carol@example.com"}));
    let profile = tempfile::tempdir().expect("profile");
    let s = chromium
        .session(profile.path(), HOSTS)
        .await
        .expect("browser");
    s.goto(&format!("{control}/ui/")).await.expect("open");
    s.wait_for("a[href='/ui/oidc/start']", WAIT)
        .await
        .expect("the provider's button");
    let mut found = Vec::new();
    check_page(
        &s,
        &axe_source(),
        "Sign in, with an identity provider",
        &mut found,
    )
    .await;
    assert!(found.is_empty(), "{}", found.join("\n"));
    s.click("a[href='/ui/oidc/start']").await.expect("sign in");
    s.wait_for("section.connection", WAIT)
        .await
        .expect("their connections");
    let page = s.source().await.expect("page");
    assert!(
        page.contains("user:carol@example.com"),
        "signed in as carol"
    );
    assert!(!page.contains("dave"), "nothing of another person's");
    s.close().await.expect("close");
}
