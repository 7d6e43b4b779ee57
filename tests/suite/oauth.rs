//! OAuth connections against a real authorization server (`oidc-provider`, started per
//! test): the browser flow, the swap of a placeholder for the user's token, single-flight
//! renewal under load, failure states and recovery, client credentials, state checks,
//! upstream 401 retry, disconnect with revocation.

use std::time::Duration;

use egret_test_support::browser::{Browser, Choice, query_param};
use egret_test_support::client::{Proto, get};
use egret_test_support::upstream::TestCa;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::harness::api::connection_names;
use super::harness::oauth::{OAuthFixture, Options};
use super::harness::wait::{until, until_some};

#[tokio::test]
async fn browser_flow_connects_and_the_placeholder_reaches_the_api_as_the_users_token() {
    let f = OAuthFixture::new(Options::default()).await;
    let page = f.sign_in("user:alice", Choice::Allow).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // Whose account, for which owner.
    assert!(
        page.body.contains(
            "Connected the vendor account <strong>alice</strong> for <strong>user:alice</strong>. You can close this window."
        ),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("window.opener.postMessage"),
        "{}",
        page.body
    );
    assert!(page.body.contains("window.close()"), "{}", page.body);

    let conn = f.connection("vendor", "user:alice").await;
    assert_eq!(conn["status"], "connected");
    assert_eq!(conn["kind"], "oauth2");
    assert!(conn["expires_at"].as_i64().is_some());
    assert!(
        conn["scopes"].as_array().is_some_and(|s| !s.is_empty()),
        "{conn}"
    );
    let listed = conn.to_string();
    assert!(
        !listed.contains("token"),
        "no token in the listing: {listed}"
    );

    let p = f.mint("vendor", "user:alice").await;
    for proto in [Proto::H1, Proto::H2] {
        let (status, code, body) = f.call(&p, proto).await;
        assert_eq!(status, StatusCode::OK, "{code:?} {body}");
        // The API accepted a token it issued, for alice, through egret's client.
        assert_eq!(body["sub"], "alice");
        assert_eq!(body["client_id"], "egret");
    }
    let stats = f.server.stats().await;
    assert_eq!(stats["authorization_code"], 1);
    assert_eq!(stats["refresh_token"], 0);

    // The vault file holds neither the placeholder nor anything the API accepted.
    f.egret.shutdown().await;
}

#[tokio::test]
async fn fifty_concurrent_requests_after_expiry_share_exactly_one_refresh() {
    let f = OAuthFixture::new(Options {
        access_ttl: 8,
        skew: "5s",
        ..Options::default()
    })
    .await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    assert_eq!(f.call(&p, Proto::H1).await.0, StatusCode::OK);
    f.wait_until_due("user:alice", 5).await;

    let mut tasks = Vec::new();
    for i in 0..60 {
        let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let (proxy, ca, authority, p) = (
            f.egret.proxy_addr,
            f.egret.ca_pem.clone(),
            f.server.api_authority(),
            p.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let auth = format!("Bearer {p}");
            get(
                proxy,
                &ca,
                &authority,
                "/resource",
                &[("authorization", &auth)],
                proto,
            )
            .await
            .expect("request")
            .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::OK);
    }
    let stats = f.server.stats().await;
    assert_eq!(stats["refresh_token"], 1, "{stats}");
    assert_eq!(stats["resource_refused"], 0, "{stats}");
    let m = super::metrics::scrape(f.egret.control_addr).await;
    assert_eq!(
        m.get(r#"egret_token_refreshes_total{connector="vendor",result="ok"}"#),
        Some(&1.0),
        "{m:#?}"
    );
    assert_eq!(
        m.get("egret_token_refresh_duration_seconds_count"),
        Some(&1.0)
    );
    assert_eq!(
        m.get(r#"egret_swaps_total{connector="vendor"}"#),
        Some(&61.0)
    );
    let conn = f.connection("vendor", "user:alice").await;
    assert!(conn["refreshed_at"].as_i64().is_some(), "{conn}");
}

/// An `OAuthFixture` with access tokens living `access_ttl` seconds and renewed
/// `skew` before expiry, alice signed in, and a placeholder for her connection.
async fn alice_connected(access_ttl: u64, skew: &'static str) -> (OAuthFixture, String) {
    let f = OAuthFixture::new(Options {
        access_ttl,
        skew,
        ..Options::default()
    })
    .await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    (f, p)
}

#[tokio::test]
async fn token_endpoint_down_keeps_a_valid_token_then_answers_502_and_recovers() {
    let (f, p) = alice_connected(6, "4s").await;
    f.server.token_mode("down").await;
    // Inside the skew but not expired: the current token is still used.
    f.wait_until_due("user:alice", 4).await;
    let (status, code, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "{code:?}");
    // Expired: the sandbox is told the token endpoint failed.
    f.wait_until_due("user:alice", -1).await;
    let (status, code, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(code.as_deref(), Some("token_refresh_failed"));
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("token endpoint")),
        "{body}"
    );
    // Kept (only the vendor can say the grant is gone), and shown as failing.
    assert_eq!(
        f.connection("vendor", "user:alice").await["status"],
        "refresh_failing"
    );

    f.server.token_mode("ok").await;
    assert_eq!(f.until_ok(&p).await["sub"], "alice");
}

/// Recovery is prompt: after failures that would have grown the backoff to 8 s, the
/// first request made once the endpoint is back (a second after the last try) is served.
#[tokio::test]
async fn a_request_right_after_the_token_endpoint_recovers_is_served() {
    let (f, p) = alice_connected(3, "1s").await;
    f.server.token_mode("down").await;
    f.wait_until_due("user:alice", -1).await;
    for _ in 0..4 {
        let (status, code, body) = f.call(&p, Proto::H1).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(code.as_deref(), Some("token_refresh_failed"));
        // A real wait: each failure must come after the last one's backoff (a second),
        // so that four failures would have grown it to 8 s.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let refreshes = f.server.stats().await["refresh_token"].as_u64();
    f.server.token_mode("ok").await;
    let back = std::time::Instant::now();
    let (status, code, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "{code:?} {body}");
    assert_eq!(body["sub"], "alice");
    // The first request after recovery is served (the old backoff refused it for 8 s);
    // how long it took is reported, not asserted.
    eprintln!(
        "served {:?} after the token endpoint recovered",
        back.elapsed()
    );
    assert!(
        f.server.stats().await["refresh_token"].as_u64() > refreshes,
        "a real refresh at the vendor"
    );
}

/// A connection's health in its listing: `refresh_failing` with the vendor's error and
/// when egret tries again while renewal fails for a passing reason, `connected` again
/// once it succeeds; requests and last use counted.
#[tokio::test]
async fn a_failing_renewal_shows_as_refresh_failing_and_clears_when_it_succeeds() {
    let (f, p) = alice_connected(3, "1s").await;
    let (status, _, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK);
    let conn = f.connection("vendor", "user:alice").await;
    assert_eq!(conn["status"], "connected", "{conn}");
    assert_eq!(conn["requests_24h"], 1, "{conn}");
    assert!(conn["last_used_at"].as_i64().is_some(), "{conn}");
    assert_eq!(conn["missing_scopes"], json!([]), "{conn}");

    f.server.token_mode("down").await;
    f.wait_until_due("user:alice", -1).await;
    let (status, _, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let conn = f.connection("vendor", "user:alice").await;
    assert_eq!(conn["status"], "refresh_failing", "{conn}");
    assert!(
        conn["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{conn}"
    );
    assert!(conn["next_retry_at"].as_i64().is_some(), "{conn}");

    f.server.token_mode("ok").await;
    // Served again once the backoff (a second) has passed.
    until(
        "a request served again",
        Duration::from_secs(10),
        || async { f.call(&p, Proto::H1).await.0 == StatusCode::OK },
    )
    .await;
    let conn = f.connection("vendor", "user:alice").await;
    assert_eq!(conn["status"], "connected", "{conn}");
    assert_eq!(conn["last_error"], Value::Null, "{conn}");
    assert!(conn["last_refresh_at"].as_i64().is_some(), "{conn}");
    assert_eq!(
        conn["requests_24h"], 2,
        "a refused request is not the vendor's answer: {conn}"
    );
}

/// The platform hears of each turn of an OAuth connection from its webhook: connected,
/// renewal failing, recovered, and a grant the vendor revoked — and never a token.
#[tokio::test]
async fn webhooks_tell_of_connect_failing_renewal_recovery_and_a_revoked_grant() {
    let receiver = egret_test_support::receiver::Receiver::start(true).await;
    let f = OAuthFixture::new(Options {
        access_ttl: 3,
        skew: "1s",
        webhook: Some(receiver.url()),
        ..Options::default()
    })
    .await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    f.server.token_mode("down").await;
    f.wait_until_due("user:alice", -1).await;
    let (status, _, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    f.server.token_mode("ok").await;
    f.until_ok(&p).await;
    f.server.revoke_grants().await;
    f.wait_until_due("user:alice", -1).await;
    let (status, _, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let expected = [
        ("connection.connected", "connected"),
        ("connection.refresh_failing", "refresh_failing"),
        ("connection.recovered", "connected"),
        ("connection.needs_reauth", "needs_reauth"),
    ];
    let told = until_some(
        "every event at the receiver",
        Duration::from_secs(20),
        || async {
            let told: Vec<Value> = receiver
                .attempts()
                .iter()
                .map(|a| serde_json::from_str(&a.body).unwrap_or(Value::Null))
                .collect();
            (told.len() >= expected.len()).then_some(told)
        },
    )
    .await;
    let seen: Vec<(&str, &str)> = told
        .iter()
        .map(|b| {
            (
                b["type"].as_str().unwrap_or_default(),
                b["data"]["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(seen, expected, "{told:#?}");
    assert!(
        told[1]["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("503")),
        "{told:#?}"
    );
    // Tokens are long runs of base64url letters; no such run is in what was told.
    let text = format!("{told:?}");
    let longest = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest < 32, "{text}");
}

/// Scope drift: the vendor grants fewer scopes than the connector declares; the listing
/// names the missing ones (a reconnect is needed to get them) and the connection works.
#[tokio::test]
async fn scopes_the_vendor_did_not_grant_are_listed_as_missing() {
    let f = OAuthFixture::new(Options::default()).await;
    f.server.withhold_scope("read").await;
    f.sign_in("user:alice", Choice::Allow).await;
    let conn = f.connection("vendor", "user:alice").await;
    assert_eq!(conn["status"], "connected", "{conn}");
    assert_eq!(conn["missing_scopes"], json!(["read"]), "{conn}");
}

/// Testing an OAuth connection: a due token is renewed first (a real refresh at the
/// vendor), then one real request; a token the vendor no longer accepts fails the test.
#[tokio::test]
async fn testing_an_oauth_connection_renews_a_due_token_first_and_reports_a_refusal() {
    let (f, _) = alice_connected(3, "1s").await;
    f.wait_until_due("user:alice", -1).await;
    let refreshes = f.server.stats().await["refresh_token"].as_u64();
    let path = "/v1/connections/vendor/user:alice/test";
    let (status, body) = f.admin(Method::POST, path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    assert!(
        f.server.stats().await["refresh_token"].as_u64() > refreshes,
        "renewed first"
    );
    f.server.revoke_access_tokens().await;
    let (_, body) = f.admin(Method::POST, path, None).await;
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(body["status"], 401, "{body}");
    assert_eq!(
        f.connection("vendor", "user:alice").await["last_test"]["ok"],
        false
    );
}

/// An ID token that names only a subject: the userinfo endpoint (from discovery) says
/// who signed in, and its email wins as "connected as".
#[tokio::test]
async fn the_userinfo_endpoint_names_who_signed_in_when_the_id_token_does_not() {
    let f = OAuthFixture::new(Options {
        scopes: "openid, offline_access, email, read",
        ..Options::default()
    })
    .await;
    f.sign_in("user:alice", Choice::Allow).await;
    let conn = f.connection("vendor", "user:alice").await;
    assert_eq!(conn["identity_label"], "alice@example.test", "{conn}");
    assert_eq!(conn["missing_scopes"], json!([]), "{conn}");
}

/// Named connections end to end: one user connects the same vendor twice, as two
/// accounts; two placeholders carry two real tokens, each its own account's.
#[tokio::test]
async fn two_named_oauth_connections_carry_two_real_tokens() {
    let f = OAuthFixture::new(Options {
        multiple_connections: true,
        ..Options::default()
    })
    .await;
    for (name, login) in [(None, "alice"), (Some("work"), "alice-work")] {
        let url = f
            .authorization_url_named("vendor", "user:alice", name)
            .await;
        let page = Browser::new(&f.ca.pem)
            .login_as(login)
            .authorize(&url, Choice::Allow)
            .await
            .expect("browser flow");
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    }
    let (_, list) = f
        .admin(Method::GET, "/v1/connections?connector=vendor", None)
        .await;
    assert_eq!(connection_names(&list), ["default", "work"], "{list}");

    let mut subjects = Vec::new();
    for name in [None, Some("work")] {
        let (status, minted) = f
            .admin(
                Method::POST,
                "/v1/placeholders",
                Some(json!({ "connector": "vendor", "owner": "user:alice", "name": name })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{minted}");
        let p = minted["placeholder"].as_str().expect("placeholder");
        let (status, code, body) = f.call(p, Proto::H1).await;
        assert_eq!(status, StatusCode::OK, "{code:?} {body}");
        subjects.push(body["sub"].clone());
    }
    // Each placeholder reached the API with a token the vendor issued to its account.
    assert_eq!(subjects, [json!("alice"), json!("alice-work")]);
    assert_eq!(f.server.stats().await["authorization_code"], 2);

    // Without multiple_connections: two sign-ins started before either finished, the
    // second to finish connects nothing; a third is refused before the vendor.
    let single = OAuthFixture::new(Options::default()).await;
    let first = single.authorization_url("vendor", "user:alice").await;
    let second = single
        .authorization_url_named("vendor", "user:alice", Some("work"))
        .await;
    for (url, expected) in [(first, StatusCode::OK), (second, StatusCode::CONFLICT)] {
        let page = Browser::new(&single.ca.pem)
            .authorize(&url, Choice::Allow)
            .await
            .expect("browser flow");
        assert_eq!(page.status, expected, "{}", page.body);
    }
    let (_, list) = single.admin(Method::GET, "/v1/connections", None).await;
    assert_eq!(
        list["connections"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    let (status, body) = single
        .admin(
            Method::POST,
            "/v1/connections/vendor/user:alice/authorize?name=work",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "one_connection_per_owner");
}

/// Without an ID token (client credentials), "connected as" comes from the connector's
/// identity request, asked right after the connect.
#[tokio::test]
async fn without_an_id_token_the_identity_request_says_who_is_connected() {
    let f = OAuthFixture::new(Options::default()).await;
    let (status, body) = f
        .admin(Method::POST, "/v1/connections/ci/org/authorize", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let label = until_some("who is connected", Duration::from_secs(5), || async {
        let label = f.connection("ci", "org").await["identity_label"].clone();
        (!label.is_null()).then_some(label)
    })
    .await;
    assert_eq!(label, "egret-ci");
}

#[tokio::test]
async fn slow_token_endpoint_times_out_with_504_and_recovers() {
    let f = OAuthFixture::new(Options {
        access_ttl: 3,
        skew: "1s",
        timeout: "1s",
        ..Options::default()
    })
    .await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    f.server.token_mode("slow").await;
    f.wait_until_due("user:alice", -1).await;
    let (status, code, body) = f.call(&p, Proto::H2).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(code.as_deref(), Some("token_refresh_failed"));
    f.server.token_mode("ok").await;
    assert_eq!(f.until_ok(&p).await["sub"], "alice");
}

#[tokio::test]
async fn invalid_grant_needs_reauth_and_reconnecting_keeps_the_placeholder() {
    let f = OAuthFixture::new(Options {
        access_ttl: 4,
        skew: "2s",
        ..Options::default()
    })
    .await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    f.server.revoke_grants().await;
    f.wait_until_due("user:alice", 2).await;
    let (status, code, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code.as_deref(), Some("connection_needs_reauth"));
    assert_eq!(body["connector"], "vendor");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("egret connection connect vendor --owner user:alice")),
        "{body}"
    );
    assert_eq!(
        f.connection("vendor", "user:alice").await["status"],
        "needs_reauth"
    );
    // Asking again does not go back to the vendor.
    let before = f.server.stats().await["refresh_token"].clone();
    assert_eq!(f.call(&p, Proto::H1).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(f.server.stats().await["refresh_token"], before);

    // The user connects again: the same placeholder works.
    let page = f.sign_in("user:alice", Choice::Allow).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        f.connection("vendor", "user:alice").await["status"],
        "connected"
    );
    let (status, _, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn client_credentials_connect_at_once_and_renew_by_asking_again() {
    let f = OAuthFixture::new(Options {
        access_ttl: 4,
        skew: "2s",
        ..Options::default()
    })
    .await;
    let (status, body) = f
        .admin(Method::POST, "/v1/connections/ci/org/authorize", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "connected");
    let p = f.mint("ci", "org").await;
    let (status, _, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], "egret-ci");
    f.wait_until_due_of("ci", "org", 2).await;
    let (status, _, _) = f.call(&p, Proto::H2).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.server.stats().await["client_credentials"], 2);
}

/// A user from a connect link connects an OAuth service on egret's Connections page:
/// Connect, sign in and consent at the vendor, back on a page that links to the list,
/// which shows the connection as the account that signed in; its placeholder works.
#[tokio::test]
async fn a_user_connects_from_the_connections_page_with_a_connect_link() {
    let f = OAuthFixture::new(Options::default()).await;
    let (status, link) = f
        .admin(
            Method::POST,
            "/v1/connect-links",
            Some(json!({ "owner": "user:alice", "connector": "vendor" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let url = link["url"].as_str().expect("url");
    let mut browser = Browser::new(&f.ca.pem);
    let opened = browser
        .request(Method::POST, url, Some(&[]))
        .await
        .expect("continue");
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let list_url = opened.location.clone().expect("to the list");
    let page = browser
        .request(Method::GET, &list_url, None)
        .await
        .expect("list");
    assert!(page.body.contains("Connect"), "{}", page.body);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf")
        .to_owned();
    let connect_url = list_url.replace("/ui/connections", "/ui/connections/vendor/connect");
    let started = browser
        .request(
            Method::POST,
            &connect_url,
            Some(&[("csrf", &csrf), ("name", "default")]),
        )
        .await
        .expect("connect");
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    // Bound to this browser from the start: straight to the vendor, no sign-in link.
    let vendor_url = started.location.clone().expect("the vendor's URL");
    assert!(!vendor_url.contains("/oauth/start"), "{vendor_url}");
    assert!(query_param(&vendor_url, "state").is_some(), "{vendor_url}");
    // Anywhere else (the URL copied to a colleague) it is refused, saying why, and spends
    // nothing.
    let elsewhere = Browser::new(&f.ca.pem)
        .login_as("colleague")
        .authorize(&vendor_url, Choice::Allow)
        .await
        .expect("the colleague's sign-in");
    assert_eq!(
        elsewhere.status,
        StatusCode::BAD_REQUEST,
        "{}",
        elsewhere.body
    );
    assert!(
        elsewhere.body.contains("different browser"),
        "{}",
        elsewhere.body
    );
    let done = browser
        .authorize(&vendor_url, Choice::Allow)
        .await
        .expect("signed in");
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("Back to your connections"),
        "{}",
        done.body
    );
    assert!(done.body.contains("window.location.origin") && !done.body.contains("\"*\""));
    let page = browser
        .request(Method::GET, &list_url, None)
        .await
        .expect("list");
    assert!(page.body.contains("<h3>vendor</h3>"), "{}", page.body);
    assert!(page.body.contains(">Connected<"), "{}", page.body);
    let p = f.mint("vendor", "user:alice").await;
    let (status, _, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sub"], "alice");
}

/// The vendor refusing the app itself (`invalid_client`: a client secret rotated at the
/// vendor but not in egret) is permanent, like a revoked grant: `needs_reauth`, not a
/// renewal retried for ever.
#[tokio::test]
async fn invalid_client_is_permanent_and_needs_reauth() {
    let f = OAuthFixture::new(Options {
        access_ttl: 4,
        skew: "2s",
        ..Options::default()
    })
    .await;
    let (status, body) = f
        .admin(Method::POST, "/v1/connections/ci/org/authorize", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let p = f.mint("ci", "org").await;
    std::fs::write(f.egret.dir.path().join("ci-secret"), "rotated-elsewhere").expect("secret");
    f.wait_until_due_of("ci", "org", -1).await;
    let (status, code, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code.as_deref(), Some("connection_needs_reauth"));
    assert_eq!(f.connection("ci", "org").await["status"], "needs_reauth");
    let (_, audit) = f
        .admin(Method::GET, "/v1/audit?connector=ci&limit=100", None)
        .await;
    assert!(
        audit["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| {
                e["event"] == "connection.needs_reauth"
                    && e["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("invalid_client"))
            })),
        "{audit}"
    );
}

#[tokio::test]
async fn state_reuse_forgery_and_denial_are_refused_and_change_nothing() {
    let f = OAuthFixture::new(Options::default()).await;
    let start = f.authorization_url("vendor", "user:alice").await;
    // egret's start link binds the sign-in to this browser and sends it to the vendor.
    let mut browser = Browser::new(&f.ca.pem);
    let url = browser
        .continue_to_vendor(&start)
        .await
        .expect("start link");
    let state = query_param(&url, "state").expect("state");
    assert!(
        state.len() >= 22,
        "state carries at least 128 bits: {state}"
    );
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query_param(&url, "prompt").as_deref(), Some("consent"));

    let page = browser.authorize(&url, Choice::Allow).await.expect("flow");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let callback = page.url.clone();
    let p = f.mint("vendor", "user:alice").await;
    let connected_at = f.connection("vendor", "user:alice").await["connected_at"].clone();

    // The same callback again: the state was spent.
    let again = browser.open(&callback).await.expect("replay");
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("used already"), "{}", again.body);
    // A forged state.
    let forged = callback.replace(&format!("state={state}"), "state=forged-state-value");
    let page = browser.open(&forged).await.expect("forged");
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // No state at all.
    let base = format!("http://{}/oauth/callback?code=abc", f.egret.control_addr);
    assert_eq!(
        browser.open(&base).await.expect("no state").status,
        StatusCode::BAD_REQUEST
    );

    // The user presses "Deny" on a new authorization.
    let url = f.authorization_url("vendor", "user:alice").await;
    let page = Browser::new(&f.ca.pem)
        .authorize(&url, Choice::Deny)
        .await
        .expect("deny flow");
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("access_denied"), "{}", page.body);

    // Nothing changed: same connection, placeholder still works.
    let conn = f.connection("vendor", "user:alice").await;
    assert_eq!(conn["status"], "connected");
    assert_eq!(conn["connected_at"], connected_at);
    assert_eq!(f.call(&p, Proto::H1).await.0, StatusCode::OK);
    assert_eq!(f.server.stats().await["authorization_code"], 1);
}

#[tokio::test]
async fn an_upstream_401_gets_one_forced_refresh_and_one_retry() {
    let f = OAuthFixture::new(Options::default()).await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    assert_eq!(f.call(&p, Proto::H1).await.0, StatusCode::OK);
    f.server.revoke_access_tokens().await;
    let (status, _, body) = f.call(&p, Proto::H2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = f.server.stats().await;
    assert_eq!(stats["refresh_token"], 1, "{stats}");
    assert_eq!(stats["resource_refused"], 1, "{stats}");
}

/// An endpoint that answers 401 to every token must not let a sandbox drive renewals
/// at its request rate: one forced renewal per connection per 30 s, and a 401 to a token
/// just renewed goes back to the sandbox as it is.
#[tokio::test]
async fn repeated_401s_force_at_most_one_renewal() {
    let f = OAuthFixture::new(Options::default()).await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    for _ in 0..10 {
        let (status, code, body) = f.call_path(&p, "/refuse-all", Proto::H1).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(code, None, "the vendor's own 401, not egret's");
    }
    let stats = f.server.stats().await;
    assert_eq!(stats["refresh_token"], 1, "{stats}");
    // The token itself is fine: the API that accepts it still does.
    assert_eq!(f.call(&p, Proto::H1).await.0, StatusCode::OK);
    // (That another forced renewal may come after the interval is the broker's unit
    // test `forced_renewals_after_401s_are_spaced_by_the_interval`, on paused time.)
}

#[tokio::test]
async fn disconnect_revokes_the_grant_at_the_vendor_and_stops_the_placeholder() {
    let f = OAuthFixture::new(Options::default()).await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    let (status, body) = f
        .admin(Method::DELETE, "/v1/connections/vendor/user:alice", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["vendor_revocation"], "revoked");
    assert_eq!(f.server.stats().await["revocations"], 1);
    let (status, code, _) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code.as_deref(), Some("placeholder_unknown"));
}

#[tokio::test]
async fn authorize_refuses_disabled_static_and_unknown_connectors() {
    let f = OAuthFixture::new(Options::default()).await;
    let (status, body) = f
        .admin(Method::POST, "/v1/connections/nope/org/authorize", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = f
        .admin(
            Method::POST,
            "/v1/connections/vendor/bad-owner/authorize",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A static-key connector cannot be "connected" through OAuth, nor an OAuth one keyed.
    let (status, body) = f
        .admin(
            Method::PUT,
            "/v1/connections/vendor/org/key",
            Some(json!({"key": "k"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "wrong_auth_kind");
}

#[tokio::test]
async fn background_renewal_refreshes_recently_used_tokens_before_they_come_due() {
    let f = OAuthFixture::new(Options {
        access_ttl: 8,
        skew: "2s",
        ..Options::default()
    })
    .await;
    f.sign_in("user:alice", Choice::Allow).await;
    f.sign_in("user:bob", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    assert_eq!(f.call(&p, Proto::H1).await.0, StatusCode::OK);
    // A round every 1 s renews what expires within skew + 2 rounds = 4 s.
    let every = Duration::from_secs(1);
    f.egret.broker.renew_due(every).await;
    assert_eq!(f.server.stats().await["refresh_token"], 0, "not due yet");
    f.wait_until_due("user:alice", 4).await;
    f.egret.broker.renew_due(every).await;
    // alice was used recently and is renewed; bob never used egret and is left alone.
    assert_eq!(f.server.stats().await["refresh_token"], 1);
    assert!(f.connection("vendor", "user:alice").await["refreshed_at"].is_i64());
    assert!(f.connection("vendor", "user:bob").await["refreshed_at"].is_null());
    // The request after it needs no renewal of its own.
    assert_eq!(f.call(&p, Proto::H2).await.0, StatusCode::OK);
    assert_eq!(f.server.stats().await["refresh_token"], 1);
}

#[tokio::test]
async fn an_api_connector_keeps_its_client_secret_sealed_and_masked() {
    let f = OAuthFixture::new(Options::default()).await;
    let port = f.server.port;
    let secret = "ci-secret";
    let (status, body) = f
        .admin(
            Method::POST,
            "/v1/connectors",
            Some(json!({
                "id": "ci-api",
                "auth": "oauth2",
                "grant": "client_credentials",
                "oauth": {
                    "token_url": format!("https://auth.test.local:{port}/token"),
                    "client_id": "egret-ci",
                    "client_secret": secret,
                    "client_auth": "post",
                    "scopes": ["read"],
                },
                "egress": [format!("api.test.local:{port}")],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["oauth"]["client_secret"], "••••");
    let (_, listed) = f.admin(Method::GET, "/v1/connectors", None).await;
    for c in listed["connectors"].as_array().expect("list") {
        assert_ne!(c["oauth"]["client_secret"], secret, "{c}");
    }
    let (status, body) = f
        .admin(Method::POST, "/v1/connections/ci-api/org/authorize", None)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("connected")),
        "{body}"
    );
    let p = f.mint("ci-api", "org").await;
    let (status, _, body) = f.call(&p, Proto::H1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], "egret-ci");
    let vault = std::fs::read(f.egret.dir.path().join("egret.redb")).expect("vault");
    assert!(
        !vault.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "sealed at rest"
    );
}

/// Login CSRF: someone starts a sign-in for their own owner, takes the vendor URL
/// egret's link leads to, and gets a victim to finish it. The callback completes only
/// in the browser that opened egret's link: the victim's account is bound to nobody.
#[tokio::test]
async fn a_sign_in_finished_in_another_browser_connects_nothing() {
    let f = OAuthFixture::new(Options::default()).await;
    let start = f.authorization_url("vendor", "user:mallory").await;
    let mut attacker = Browser::new(&f.ca.pem);
    let vendor_url = attacker
        .continue_to_vendor(&start)
        .await
        .expect("start link");
    // The start link is followed once: a second browser cannot be bound to it either.
    let again = Browser::new(&f.ca.pem).open(&start).await.expect("again");
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert!(again.body.contains("followed already"), "{}", again.body);
    // The victim signs in at the vendor URL they were handed.
    let page = Browser::new(&f.ca.pem)
        .login_as("victim")
        .authorize(&vendor_url, Choice::Allow)
        .await
        .expect("victim's sign-in");
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("different browser"), "{}", page.body);
    let (_, listed) = f
        .admin(Method::GET, "/v1/connections?owner=user:mallory", None)
        .await;
    assert_eq!(listed["connections"], json!([]), "nothing was connected");
    assert_eq!(
        f.server.stats().await["authorization_code"],
        0,
        "no code was exchanged"
    );
    // The refused callback spent nothing: the browser that started the sign-in still
    // finishes it.
    let page = attacker
        .authorize(&vendor_url, Choice::Allow)
        .await
        .expect("the starter's sign-in");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("for <strong>user:mallory</strong>"),
        "{}",
        page.body
    );
}

/// A sign-in link made by the API (or the CLI) opens a page that names the connector and
/// the owner; only Continue — a POST carrying a token derived from the browser's binding
/// cookie — goes on to the vendor. Opening the link (a link previewer, a cross-site
/// `window.open`) spends and binds nothing.
#[tokio::test]
async fn a_sign_in_link_names_the_connector_and_owner_and_opening_it_advances_nothing() {
    let f = OAuthFixture::new(Options::default()).await;
    let start = f.authorization_url("vendor", "user:alice").await;
    let (mut first, mut second) = (Browser::new(&f.ca.pem), Browser::new(&f.ca.pem));
    let mut pages = Vec::new();
    for browser in [&mut first, &mut second] {
        let page = browser.open(&start).await.expect("the link's page");
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.location.is_none(),
            "a GET never redirects to the vendor"
        );
        assert!(
            page.body.contains(
                "You are connecting <em>your</em> <strong>vendor</strong> account for <strong>user:alice</strong>"
            ),
            "{}",
            page.body
        );
        assert!(page.body.contains("Continue to vendor"), "{}", page.body);
        pages.push(page);
    }
    let fields = |page: &egret_test_support::browser::Page| {
        egret_test_support::browser::hidden_inputs(&page.body)
    };
    let target = format!("http://{}/oauth/start", f.egret.control_addr);
    async fn post(
        target: &str,
        browser: &mut Browser,
        form: Vec<(String, String)>,
    ) -> egret_test_support::browser::Page {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        browser
            .request(Method::POST, target, Some(&form))
            .await
            .expect("post")
    }
    // The form without the browser's cookie (another site's POST), and one browser's
    // form sent from the other: refused, and nothing is bound.
    let no_cookie = post(&target, &mut Browser::new(&f.ca.pem), fields(&pages[0])).await;
    assert_eq!(
        no_cookie.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_cookie.body
    );
    assert!(
        no_cookie.body.contains("same browser"),
        "{}",
        no_cookie.body
    );
    let crossed = post(&target, &mut second, fields(&pages[0])).await;
    assert_eq!(crossed.status, StatusCode::BAD_REQUEST, "{}", crossed.body);
    // Continue in the first browser: on to the vendor, once.
    let went = post(&target, &mut first, fields(&pages[0])).await;
    assert_eq!(went.status, StatusCode::SEE_OTHER, "{}", went.body);
    let vendor_url = went.location.clone().expect("the vendor's URL");
    assert!(
        query_param(&vendor_url, "code_challenge").is_some(),
        "{vendor_url}"
    );
    let late = post(&target, &mut second, fields(&pages[1])).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.body);
    assert!(late.body.contains("followed already"), "{}", late.body);
    let page = first
        .authorize(&vendor_url, Choice::Allow)
        .await
        .expect("sign-in");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

/// Who signed in at the vendor is recorded ("connected as", from the ID token), shown
/// on the callback page, listed and audited; with `identity_match` a sign-in as someone
/// else than the link's owner connects nothing.
#[tokio::test]
async fn the_vendor_identity_is_recorded_and_can_be_required_to_match_the_owner() {
    let f = OAuthFixture::new(Options {
        identity_match: Some("sub"),
        ..Options::default()
    })
    .await;
    // The test browser signs in as `alice`.
    let page = f.sign_in("user:alice", Choice::Allow).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("the vendor account <strong>alice</strong> for <strong>user:alice</strong>"),
        "{}",
        page.body
    );
    let conn = f.connection("vendor", "user:alice").await;
    assert_eq!(conn["identity_label"], "alice", "{conn}");
    f.egret.audit.flush(Duration::from_secs(5));
    let (_, audit) = f
        .admin(Method::GET, "/v1/audit?connector=vendor", None)
        .await;
    let connect = audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["event"] == "connection.connect")
        .cloned()
        .unwrap_or_default();
    assert_eq!(connect["data"]["identity"], "alice", "{audit}");

    // A link for bob, finished by someone signed in at the vendor as alice.
    let page = f.sign_in("user:bob", Choice::Allow).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(
        page.body.contains("as alice") && page.body.contains("user:bob"),
        "{}",
        page.body
    );
    let (_, listed) = f
        .admin(Method::GET, "/v1/connections?owner=user:bob", None)
        .await;
    assert_eq!(
        listed["connections"],
        json!([]),
        "nothing was connected for bob"
    );
}

/// An OAuth app's client secret kept in Vault (`client_secret: vault://…`): egret fetches
/// it while it runs, and uses it for the client-credentials grant; the policy and every
/// answer hold only the reference.
#[tokio::test]
async fn a_client_secret_kept_in_vault_is_fetched_and_used() {
    use egret_test_support::secret_stores::{HOST, SecretStores, VAULT_TOKEN};
    let stores_ca = TestCa::new();
    let stores = SecretStores::start(&stores_ca).await;
    stores.set_vault("secret/ci", "client_secret", "ci-secret");
    let files = tempfile::tempdir().expect("tempdir");
    let token = files.path().join("vault-token");
    std::fs::write(&token, VAULT_TOKEN).expect("token");
    let ca_file = files.path().join("stores-ca.pem");
    std::fs::write(&ca_file, &stores_ca.pem).expect("ca");
    let top = format!(
        "secret_sources:\n  vault: {{ address: \"{}\", token: \"${{file:{}}}\", ca_file: \"{}\" }}\n",
        stores.url(),
        token.display(),
        ca_file.display()
    );
    let f = OAuthFixture::new(Options {
        ci_client_secret: "vault://secret/ci#client_secret".to_owned(),
        top,
        resolve: format!(", {HOST}: 127.0.0.1"),
        ..Options::default()
    })
    .await;
    // Fetched within a second of the policy being installed.
    let body = until_some(
        "the client-credentials grant with the fetched secret",
        Duration::from_secs(10),
        || async {
            let (status, body) = f
                .admin(Method::POST, "/v1/connections/ci/org/authorize", None)
                .await;
            (status == StatusCode::OK).then_some(body)
        },
    )
    .await;
    assert_eq!(body["status"], "connected");
    let (_, connector) = f.admin(Method::GET, "/v1/connectors/ci", None).await;
    assert!(
        !connector.to_string().contains("ci-secret\""),
        "{connector}"
    );
    assert!(stores.reads() >= 1);
}
