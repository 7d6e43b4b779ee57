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
use http::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

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
    let Some(chromium) = browser().await else {
        return;
    };
    let f = OAuthFixture::new(Options::default()).await;
    let control = format!("http://127.0.0.1:{}", f.egret.control_addr.port());

    // The administrator signs in, adds a static-key connector, and makes a link.
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
    admin
        .type_into("input#token", ADMIN_TOKEN)
        .await
        .expect("type");
    admin
        .click("form[action='/ui/login'] button")
        .await
        .expect("sign in");
    admin
        .wait_for("section.connector", WAIT)
        .await
        .expect("Connector Settings");
    admin
        .click("a.button[href='/ui/connectors/new']")
        .await
        .expect("add");
    admin
        .click("a[href='/ui/connectors/new?kind=api_key']")
        .await
        .expect("static key");
    admin.wait_for("input#egress", WAIT).await.expect("form");
    admin.type_into("input#id", "notes").await.expect("id");
    admin
        .type_into("input#egress", "notes.test.local")
        .await
        .expect("egress");
    admin
        .click("form[action='/ui/connectors/new'] button")
        .await
        .expect("save");
    admin
        .wait_for("section.connector h2#c-notes", WAIT)
        .await
        .expect("listed");
    admin
        .click("form[action='/ui/connectors/notes/enabled'] button")
        .await
        .expect("disable");
    admin
        .wait_for(
            "section.connector form[action='/ui/connectors/notes/enabled'] input[value=true]",
            WAIT,
        )
        .await
        .expect("disabled");
    admin
        .type_into("input#o-vendor", "user:alice")
        .await
        .expect("owner");
    admin
        .click("form[action='/ui/connectors/vendor/link'] button")
        .await
        .expect("make link");
    admin.wait_for("code.copy", WAIT).await.expect("link shown");
    let page = admin.source().await.expect("page");
    let link = page
        .split("<code class=\"copy\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the link")
        .to_owned();
    admin.close().await.expect("close");

    // The user opens it in their own browser and connects in the vendor's popup.
    let user_profile = tempfile::tempdir().expect("profile");
    let user = chromium
        .session(user_profile.path(), HOSTS)
        .await
        .expect("browser");
    user.goto(&link).await.expect("open link");
    user.click("form button").await.expect("continue");
    user.wait_for("form[action='/ui/connections/vendor/connect'] button", WAIT)
        .await
        .expect("available");
    let page = user.source().await.expect("page");
    assert!(
        !page.contains("notes"),
        "a disabled connector is not offered: {page}"
    );
    let main = user.window().await.expect("window");
    user.click("form[action='/ui/connections/vendor/connect'] button")
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
    let deadline = tokio::time::Instant::now() + WAIT;
    while user.windows().await.expect("windows").len() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the popup did not close"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    user.switch_to(&main).await.expect("back");
    user.wait_for("section.connection .badge.ok", WAIT)
        .await
        .expect("connected");
    let page = user.source().await.expect("page");
    assert!(page.contains("<h3>vendor</h3>"), "{page}");

    // Its placeholder works through the proxy as alice's token.
    let p = f.mint("vendor", "user:alice").await;
    let (status, _, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sub"], "alice");

    // Disconnect in the page: the placeholder stops.
    user.click("form[action='/ui/connections/vendor/remove'] button")
        .await
        .expect("disconnect");
    user.accept_dialog().await.expect("the page asks first");
    user.wait_for("section.offer form[action='/ui/connections/vendor/connect'] button", WAIT)
        .await
        .expect("offered again");
    let (status, code, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{code:?}");
    user.close().await.expect("close");
}

/// Waits for a second window beside `main`.
async fn wait_for_popup(s: &chromium::Session<'_>, main: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let windows = s.windows().await.expect("windows");
        if let Some(w) = windows.into_iter().find(|w| w != main) {
            return w;
        }
        assert!(tokio::time::Instant::now() < deadline, "no popup opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_consent_and_a_used_link_each_say_so_in_chromium() {
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
    user.wait_for("h1", WAIT).await.expect("callback page");
    let page = user.source().await.expect("page");
    assert!(
        page.contains("Not connected") && page.contains("access_denied"),
        "{page}"
    );
    user.switch_to(&main).await.expect("back");
    let (_, listed) = f.admin(Method::GET, "/v1/connections", None).await;
    assert_eq!(listed["connections"], json!([]), "nothing connected");
    user.close().await.expect("close");

    // The same link in a second browser: already used.
    let other_profile = tempfile::tempdir().expect("profile");
    let other = chromium
        .session(other_profile.path(), HOSTS)
        .await
        .expect("browser");
    other.goto(&link).await.expect("open");
    other.click("form button").await.expect("continue");
    other.wait_for("h1", WAIT).await.expect("page");
    let page = other.source().await.expect("page");
    assert!(page.contains("This link was already used"), "{page}");
    other.close().await.expect("close");
}
