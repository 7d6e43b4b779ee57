//! Two `egret serve` processes on one PostgreSQL database, driven through their own
//! proxies and control planes: what one does, the other serves and refuses; the
//! database holds only ciphertext; the change listener recovers; `vault migrate`.
//! Each test has a database of its own (`harness::postgres`).

use std::path::Path;
use std::time::{Duration, Instant};

use egret_test_support::upstream::{Offer, TestCa, Upstream};

use super::harness::NAMES;
use super::harness::binary::{EGRET, Egret, KEY, OPENAI, config, stdout};
use super::harness::postgres::TestDb;
use super::harness::wait::{polling, until, until_some};

const ADMIN_TOKEN: &str = "replica-admin-token-0123456789abcdef";

/// The policy of one replica: the binary harness's, with the vault on `db.url` (a file
/// beside the replicas' folders, as a secret reference) and the admin token and master
/// key the replicas share.
fn replica_config(connectors: &str) -> String {
    config(connectors)
        .replace(
            r#"vault: { path: data/egret.redb, master_key: "${file:data/master.key}" }"#,
            r#"vault: { backend: postgres, url: "${file:../db.url}", master_key: "${file:../master.key}" }"#,
        )
        .replace(
            r#"admin_token: "${env:EGRET_E2E_TOKEN_UNSET}""#,
            r#"admin_token: "${file:../admin.token}""#,
        )
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Two replicas' folders under `root` (`a`, `b`) on `db`, with `connectors`.
fn prepare(root: &Path, db: &TestDb, ca: &TestCa, connectors: &str) {
    write_private(&root.join("db.url"), &db.url);
    write_private(&root.join("admin.token"), ADMIN_TOKEN);
    for name in ["a", "b"] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("upstream-ca.pem"), &ca.pem).expect("write");
        std::fs::write(dir.join("egret.yaml"), replica_config(connectors)).expect("write");
    }
}

/// Polls `url` through `egret` with `auth` (every 10 ms) until the answer is not 200;
/// how long that took. Fails once `bound` has passed.
async fn refused_after(egret: &Egret, auth: &str, url: &str, bound: Duration) -> Duration {
    let started = Instant::now();
    let what = format!("{url} to be refused (still served after {bound:?})");
    polling(what, bound, Duration::from_millis(10), || async {
        let (_, code) = egret
            .curl(&["-H", auth, "-o", "/dev/null", "-w", "%{http_code}"], url)
            .await;
        (code != "200").then(|| started.elapsed())
    })
    .await
}

async fn status(egret: &Egret, auth: &str, url: &str) -> String {
    egret
        .curl(&["-H", auth, "-o", "/dev/null", "-w", "%{http_code}"], url)
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_connections_and_refuse_together() {
    let db = TestDb::create().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    prepare(root.path(), &db, &ca, OPENAI);
    let a = Egret::start(&root.path().join("a"), "egret.log").await;
    let b = Egret::start(&root.path().join("b"), "egret.log").await;
    // One CA for both: a sandbox balanced to either trusts the same root.
    assert_eq!(a.export_ca().await, b.export_ca().await);

    // Made through A, used through B.
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let mut placeholders = Vec::new();
    for _ in 0..5 {
        placeholders.push(a.key_and_placeholder("openai", "org", KEY).await);
    }
    let auth = |p: &str| format!("Authorization: Bearer {p}");
    assert_eq!(status(&b, &auth(&placeholders[0]), &url).await, "200");
    let seen = upstream.seen().last().cloned().expect("seen");
    assert_eq!(seen["headers"]["authorization"], format!("Bearer {KEY}"));
    let listed = stdout(
        &b.cli(&["connection", "list", "--output", "json"], None)
            .await,
    );
    assert!(listed.contains("\"openai\""), "{listed}");

    // The database holds only ciphertext: no key, no placeholder, no CA key.
    let client = db.client().await;
    let rows = client
        .query("SELECT tbl, key, value FROM egret_records", &[])
        .await
        .expect("read the records");
    assert!(rows.len() >= 7, "records: {}", rows.len());
    let mut everything = Vec::new();
    for r in &rows {
        everything.extend_from_slice(r.get::<_, String>(0).as_bytes());
        everything.extend_from_slice(r.get::<_, String>(1).as_bytes());
        everything.extend_from_slice(&r.get::<_, Vec<u8>>(2));
    }
    for line in client
        .query("SELECT lines FROM egret_audit", &[])
        .await
        .expect("read the audit log")
    {
        everything.extend_from_slice(line.get::<_, String>(0).as_bytes());
    }
    let text = String::from_utf8_lossy(&everything);
    assert!(!text.contains(KEY), "the key is sealed");
    assert!(!text.contains("PRIVATE KEY"), "the CA key is sealed");
    for p in &placeholders {
        assert!(
            !text.contains(p.as_str()),
            "only placeholders' hashes are stored"
        );
    }

    // Signed in to the web UI on A, the same cookie works on B (no sticky sessions);
    // signed out on B, it is refused on A.
    let login = tokio::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "-H"])
        .arg(format!("Origin: http://{}", a.control))
        .args(["--data-urlencode", &format!("token={ADMIN_TOKEN}")])
        .arg(format!("http://{}/ui/login", a.control))
        .output()
        .await
        .expect("curl");
    let head = String::from_utf8_lossy(&login.stdout).into_owned();
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("a session cookie: {head}"))
        .to_owned();
    let page = |egret: &Egret, path: &str| {
        let (cookie, url) = (cookie.clone(), format!("http://{}{path}", egret.control));
        async move {
            let out = tokio::process::Command::new("curl")
                .args([
                    "-s",
                    "-w",
                    "\n%{http_code}",
                    "-H",
                    &format!("Cookie: {cookie}"),
                    &url,
                ])
                .output()
                .await
                .expect("curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let on_b = page(&b, "/ui/connectors").await;
    assert!(on_b.ends_with("200") && on_b.contains("openai"), "{on_b}");
    let csrf = on_b
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Cookie: {cookie}"))
        .arg("-H")
        .arg(format!("Origin: http://{}", b.control))
        .args(["--data-urlencode", &format!("csrf={csrf}")])
        .arg(format!("http://{}/ui/logout", b.control))
        .output()
        .await
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "303");
    let on_a = page(&a, "/ui/connectors").await;
    assert!(on_a.ends_with("303"), "signed out everywhere: {on_a}");

    // Revoked on A: refused on B within a second.
    let out = a
        .cli(&["placeholder", "revoke", &placeholders[0]], None)
        .await;
    stdout(&out);
    let took = refused_after(&b, &auth(&placeholders[0]), &url, Duration::from_secs(1)).await;
    eprintln!("revocation on A refused on B after {took:?}");

    // The listening connection ended by the database: B hears the next change anyway.
    let ended = db.terminate("egret-listen").await;
    assert!(ended >= 2, "both listeners ended: {ended}");
    stdout(
        &a.cli(&["placeholder", "revoke", &placeholders[1]], None)
            .await,
    );
    let took = refused_after(&b, &auth(&placeholders[1]), &url, Duration::from_secs(3)).await;
    eprintln!("revocation after the listener was cut, refused on B after {took:?}");

    // Every connection ended (what a database restart does): both keep serving from
    // memory, and recover by themselves.
    let ended = db.terminate("%").await;
    assert!(ended >= 2, "connections ended: {ended}");
    assert_eq!(status(&b, &auth(&placeholders[2]), &url).await, "200");
    assert_eq!(status(&a, &auth(&placeholders[2]), &url).await, "200");
    until(
        "A to write again once the database is back",
        Duration::from_secs(5),
        || async {
            a.cli(&["placeholder", "revoke", &placeholders[2]], None)
                .await
                .status
                .success()
        },
    )
    .await;
    let took = refused_after(&b, &auth(&placeholders[2]), &url, Duration::from_secs(3)).await;
    eprintln!("revocation after a database restart, refused on B after {took:?}");

    // Disconnect on B: A refuses the remaining placeholders.
    stdout(
        &b.cli(&["connection", "remove", "openai", "--owner", "org"], None)
            .await,
    );
    let took = refused_after(&a, &auth(&placeholders[3]), &url, Duration::from_secs(1)).await;
    eprintln!("disconnect on B refused on A after {took:?}");

    // A connector created through A's API is in force on B; deleted on A (the kill
    // switch), B refuses at once.
    let entry = root.path().join("crm.json");
    std::fs::write(
        &entry,
        r#"{"id": "crm", "auth": "api_key", "egress": ["other.test.local"]}"#,
    )
    .expect("write");
    stdout(
        &a.cli(&["connector", "create", &entry.to_string_lossy()], None)
            .await,
    );
    let crm = format!("https://other.test.local:{}/echo", upstream.addr.port());
    // B learns of the connector from A's notification.
    let set = ["connection", "set-key", "crm", "--owner", "org"];
    until(
        "the connector created on A in force on B",
        Duration::from_secs(3),
        || async { b.cli(&set, Some("crm-key-1")).await.status.success() },
    )
    .await;
    let p = stdout(
        &b.cli(&["placeholder", "mint", "crm", "--owner", "org"], None)
            .await,
    );
    assert_eq!(status(&b, &auth(&p), &crm).await, "200");
    // Disabled on A: B takes no new connection to it at once; what is connected works.
    stdout(&a.cli(&["connector", "disable", "crm"], None).await);
    let started = Instant::now();
    for i in 0.. {
        // A new owner each time: a connection made before B heard must not hide it.
        let owner = format!("user:t{i}");
        let set = ["connection", "set-key", "crm", "--owner", &owner];
        let out = b.cli(&set, Some("crm-key-2")).await;
        if String::from_utf8_lossy(&out.stderr).contains("disabled") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still connects a disabled connector"
        );
    }
    eprintln!(
        "connector disabled on A, refused on B after {:?}",
        started.elapsed()
    );
    assert_eq!(status(&b, &auth(&p), &crm).await, "200");
    stdout(&a.cli(&["connector", "remove", "crm"], None).await);
    let took = refused_after(&b, &auth(&p), &crm, Duration::from_secs(1)).await;
    eprintln!("connector deleted on A refused on B after {took:?}");

    let (la, lb) = (a.stop().await, b.stop().await);
    for log in [&la, &lb] {
        assert!(!log.contains(KEY), "the key is never logged");
        assert!(
            !log.contains(&db.url) || !db.url.contains('@'),
            "no database URL"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_or_an_unreachable_database_stops_start_up_and_changes_nothing() {
    let db = TestDb::create().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    prepare(root.path(), &db, &ca, OPENAI);
    let a = Egret::start(&root.path().join("a"), "egret.log").await;
    a.key_and_placeholder("openai", "org", KEY).await;
    let before = db_dump(&db).await;

    // B with another master key.
    let b_dir = root.path().join("b");
    let other = b_dir.join("other.key");
    {
        use secrecy::ExposeSecret as _;
        let key = egret_vault::MasterKey::generate().encode();
        write_private(&other, key.expose_secret());
    }
    let yaml = std::fs::read_to_string(b_dir.join("egret.yaml")).expect("read");
    std::fs::write(
        b_dir.join("egret.yaml"),
        yaml.replace("${file:../master.key}", "${file:other.key}"),
    )
    .expect("write");
    let out = serve_once(&b_dir).await;
    assert!(
        out.contains("does not open the vault") && out.contains("nothing was changed"),
        "{out}"
    );
    assert_eq!(db_dump(&db).await, before, "the database is as it was");

    // B pointed at a database that does not answer.
    std::fs::write(
        b_dir.join("egret.yaml"),
        yaml.replace("${file:../db.url}", "${file:nowhere.url}"),
    )
    .expect("write");
    write_private(
        &b_dir.join("nowhere.url"),
        "postgres://postgres@127.0.0.1:1/none?connect_timeout=2",
    );
    let out = serve_once(&b_dir).await;
    assert!(
        out.contains("cannot reach postgres") && out.contains("127.0.0.1:1"),
        "{out}"
    );
    a.stop().await;
}

/// `egret serve` in `dir` that must fail at start: its stderr.
async fn serve_once(dir: &Path) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(EGRET)
            .args(["serve", "--config"])
            .arg(dir.join("egret.yaml"))
            .env_remove("EGRET_ADMIN_TOKEN")
            .output(),
    )
    .await
    .expect("start-up ends")
    .expect("runs");
    assert!(!out.status.success(), "egret must not start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every record and audit event, for comparing a database before and after.
async fn db_dump(db: &TestDb) -> Vec<(String, String, Vec<u8>, i64)> {
    let client = db.client().await;
    let mut out: Vec<(String, String, Vec<u8>, i64)> = client
        .query(
            "SELECT tbl, key, value, version FROM egret_records ORDER BY tbl, key",
            &[],
        )
        .await
        .expect("records")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let audit: i64 = client
        .query_one("SELECT count(*) FROM egret_audit", &[])
        .await
        .expect("audit")
        .get(0);
    out.push(("audit".to_owned(), String::new(), Vec::new(), audit));
    out
}

/// The replicas' policy for the real authorization server: the `generic` template,
/// short-lived tokens renewed 3 s before expiry, a 3 s token endpoint timeout (so a
/// renewal lease runs 8 s).
fn oauth_connectors(port: u16) -> String {
    format!(
        r#"  - id: vendor
    template: generic
    settings: {{ issuer: "https://auth.test.local:{port}" }}
    oauth:
      client_id: egret
      client_secret: ${{file:../client.secret}}
      scopes: [openid, offline_access, read]
      extra_params: {{ prompt: consent }}
      refresh_skew: 3s
      timeout: 3s
    egress: ["api.test.local:{port}"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_happens_once_across_replicas_and_survives_a_killed_holder() {
    use egret_test_support::browser::{Browser, Choice};
    use egret_test_support::oauth_server::OAuthServer;

    let db = TestDb::create().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let clients = super::harness::oauth::loopback_client("replica-client-secret");
    let server = OAuthServer::start(&ca, &clients, 6).await;
    let port = server.port;
    prepare(root.path(), &db, &ca, &oauth_connectors(port));
    for name in ["a", "b"] {
        let yaml = root.path().join(name).join("egret.yaml");
        let text = std::fs::read_to_string(&yaml).expect("read");
        std::fs::write(
            &yaml,
            text.replace(
                "api.test.local: 127.0.0.1",
                "api.test.local: 127.0.0.1, auth.test.local: 127.0.0.1",
            ),
        )
        .expect("write");
    }
    write_private(
        &root.path().join("client.secret"),
        "replica-client-secret\n",
    );
    let a = Egret::start(&root.path().join("a"), "a1.log").await;
    let b = Egret::start(&root.path().join("b"), "b.log").await;
    a.export_ca().await;
    b.export_ca().await;

    // The user signs in through A; the vendor's redirect back lands on B (behind one
    // address, a load balancer may send it to either): the sign-in A started, B finishes.
    let url = stdout(
        &a.cli(
            &["connection", "connect", "vendor", "--owner", "user:alice"],
            None,
        )
        .await,
    );
    let mut browser = Browser::new(&ca.pem);
    let vendor_url = browser
        .continue_to_vendor(&url)
        .await
        .expect("the link's page, continued");
    let page = browser
        .authorize(&vendor_url, Choice::Allow)
        .await
        .expect("sign-in");
    assert_eq!(page.status, 200, "{}", page.body);
    let p = stdout(
        &b.cli(
            &["placeholder", "mint", "vendor", "--owner", "user:alice"],
            None,
        )
        .await,
    );
    let auth = format!("authorization: Bearer {p}");
    let api = format!("https://api.test.local:{port}/resource");

    // The token expires; 80 requests at once, half through each replica: every one is
    // answered, and the server sees one renewal (its refresh tokens are single-use:
    // a second renewal with the same one would revoke the grant).
    // A real wait: the burst must find the token expired (its lifetime is the real
    // authorization server's), not renew it one by one ahead of that.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut calls = Vec::new();
    for i in 0..80 {
        let (egret, auth, api) = (if i % 2 == 0 { &a } else { &b }, auth.clone(), api.clone());
        calls.push(async move { egret.curl(&["-H", &auth], &api).await });
    }
    let burst = Instant::now();
    let answers = futures_util::future::join_all(calls).await;
    let took = burst.elapsed();
    for (code, body) in &answers {
        assert_eq!(*code, 0, "{body}");
        assert!(body.contains("\"sub\":\"alice\""), "{body}");
    }
    // Once per time the token fell due: no refresh token was ever sent twice (the
    // server refuses a reused one, and counts it), and no more renewals than the token
    // fell due — once, unless the burst itself outlasted a token (6 s, renewed 3 s
    // before: due again every 3 s) on a machine that made 80 curl processes slow.
    let stats = server.stats().await;
    assert_eq!(
        stats["refresh_token_refused"], 0,
        "a refresh token was reused: {stats}"
    );
    let due = 1 + took.as_secs() / 3;
    let renewals = stats["refresh_token"].as_u64().unwrap_or(0);
    assert!(
        (1..=due).contains(&renewals),
        "{renewals} renewals in a {took:?} burst (at most {due}): {stats}"
    );

    // A is killed while it holds a renewal (the server is slow to answer): B takes
    // over when A's lease runs out, and the grant survives.
    // A real wait: A must be killed inside a renewal, so the token must be due again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.token_mode("slow").await;
    a.kill_during(&["-H", &auth], &api, Duration::from_millis(1500))
        .await;
    server.token_mode("ok").await;
    let started = Instant::now();
    let (code, body) = b.curl(&["-H", &auth], &api).await;
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("\"sub\":\"alice\""), "{body}");
    eprintln!(
        "B renewed after A was killed holding the lease, in {:?}",
        started.elapsed()
    );
    let stats = server.stats().await;
    assert_eq!(stats["refresh_token"], renewals + 1, "{stats}");
    assert_eq!(stats["refresh_token_refused"], 0, "{stats}");
    // The grant is alive: the next renewal works too, once the token is due again;
    // every request meanwhile is served.
    until("one more renewal", Duration::from_secs(10), || async {
        let (code, body) = b.curl(&["-H", &auth], &api).await;
        assert!(code == 0 && body.contains("\"sub\":\"alice\""), "{body}");
        server.stats().await["refresh_token"] == renewals + 2
    })
    .await;
    let log = b.stop().await;
    assert!(!log.contains(&p), "the placeholder is never logged");
    assert!(!log.contains("replica-client-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_migrate_copies_a_redb_vault_and_every_placeholder_works_on_postgres() {
    let db = TestDb::create().await;
    let (dir, _ca, upstream) = super::harness::binary::setup().await;
    let egret = Egret::start(dir.path(), "redb.log").await;
    let mut placeholders = Vec::new();
    for owner in ["org", "user:alice", "user:bob"] {
        placeholders.push(egret.key_and_placeholder("openai", owner, KEY).await);
    }
    let ca_before = egret.export_ca().await;
    let audit_before = stdout(
        &egret
            .cli(&["audit", "tail", "--output", "json"], None)
            .await,
    );
    egret.stop().await;

    let cfg = dir.path().join("egret.yaml");
    let out = migrate(&cfg, &db.url).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("3 connections") && said.contains("verified"),
        "{said}"
    );
    // A second copy into the same database is refused.
    let out = migrate(&cfg, &db.url).await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("already holds"),
        "{said}"
    );

    // The same folder, now on PostgreSQL: every placeholder works, with the same CA.
    write_private(&dir.path().join("db.url"), &db.url);
    let yaml = std::fs::read_to_string(&cfg).expect("read");
    std::fs::write(
        &cfg,
        yaml.replace(
            "vault: { path: data/egret.redb,",
            r#"vault: { backend: postgres, url: "${file:db.url}","#,
        ),
    )
    .expect("write");
    std::fs::rename(
        dir.path().join("data/egret.redb"),
        dir.path().join("data/moved.redb"),
    )
    .expect("move the redb file away");
    let egret = Egret::start(dir.path(), "postgres.log").await;
    assert_eq!(
        egret.export_ca().await,
        ca_before,
        "the CA moved with the vault"
    );
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    for p in &placeholders {
        let auth = format!("Authorization: Bearer {p}");
        assert_eq!(status(&egret, &auth, &url).await, "200");
        let seen = upstream.seen().last().cloned().expect("seen");
        assert_eq!(seen["headers"]["authorization"], format!("Bearer {KEY}"));
    }
    let audit_after = stdout(
        &egret
            .cli(&["audit", "tail", "--output", "json"], None)
            .await,
    );
    // Every event as it was, numbers included, then those of the new start.
    assert!(audit_before.lines().count() >= 6, "{audit_before}");
    assert!(
        audit_after.starts_with(&audit_before),
        "the audit log came along:\n{audit_after}"
    );
    egret.stop().await;
}

/// GET `path` on the control plane; (status code, body).
/// `egret vault migrate --to TO` with the policy `cfg`.
async fn migrate(cfg: &Path, to: &str) -> std::process::Output {
    tokio::process::Command::new(EGRET)
        .args(["vault", "migrate", "--to", to, "--config"])
        .arg(cfg)
        .output()
        .await
        .expect("migrate runs")
}

async fn control_get(egret: &Egret, path: &str) -> (String, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg(format!("http://{}{path}", egret.control))
        .output()
        .await
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (code.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_served_through_and_recovered_from() {
    use super::harness::postgres::Relay;
    let db = TestDb::create().await;
    let relay = Relay::start().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    prepare(root.path(), &db, &ca, OPENAI);
    write_private(&root.path().join("db.url"), &relay.url_for(&db));
    let a = Egret::start(&root.path().join("a"), "egret.log").await;
    let b = Egret::start(&root.path().join("b"), "egret.log").await;
    a.export_ca().await;
    b.export_ca().await;
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let p1 = a.key_and_placeholder("openai", "org", KEY).await;
    let p2 = stdout(
        &a.cli(&["placeholder", "mint", "openai", "--owner", "org"], None)
            .await,
    );
    let auth = |p: &str| format!("Authorization: Bearer {p}");
    assert_eq!(status(&b, &auth(&p1), &url).await, "200");
    assert_eq!(control_get(&a, "/readyz").await.0, "200");

    // The database goes away, for longer than the listener's bound.
    relay.cut();
    // A real wait: what is tested is a database away for longer than the listener's
    // bound (`DEAF_BOUND`, 3 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Requests that need nothing new are served from memory, without waiting.
    for egret in [&a, &b] {
        let started = Instant::now();
        assert_eq!(status(egret, &auth(&p1), &url).await, "200");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // Readiness says why not; a write fails with a clear error.
    let (code, body) = control_get(&a, "/readyz").await;
    assert_eq!(code, "503", "{body}");
    assert!(body.contains("database"), "{body}");
    let out = a
        .cli(&["placeholder", "mint", "openai", "--owner", "org"], None)
        .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("database"), "{said}");
    let metrics = control_get(&a, "/metrics").await.1;
    assert!(
        metrics.contains("egret_vault_change_listener_up 0"),
        "{metrics}"
    );

    // Back: both recover by themselves, and hear changes again.
    relay.restore();
    for egret in [&a, &b] {
        until(
            "ready again once the database is back",
            Duration::from_secs(10),
            || async { control_get(egret, "/readyz").await.0 == "200" },
        )
        .await;
    }
    stdout(&a.cli(&["placeholder", "revoke", &p2], None).await);
    let took = refused_after(&b, &auth(&p2), &url, Duration::from_secs(1)).await;
    eprintln!("after the database came back, a revocation on A was refused on B after {took:?}");
    let metrics = control_get(&b, "/metrics").await.1;
    assert!(
        metrics.contains("egret_vault_change_listener_up 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("egret_vault_database_errors_total"),
        "{metrics}"
    );
    a.stop().await;
    b.stop().await;
}

/// `vault migrate` into a database reached over TLS trusts `vault.ca_file` (the CA of the
/// database's certificate): without it the copy is refused for the certificate, with it
/// the copy is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_migrate_trusts_vault_ca_file() {
    let admin = super::harness::postgres::admin().await;
    let show = |what: &'static str| {
        let admin = &admin;
        async move {
            let row = admin.query_one(what, &[]).await.expect("show");
            row.get::<_, String>(0)
        }
    };
    let (ssl, cert) = (show("SHOW ssl").await, show("SHOW ssl_cert_file").await);
    if ssl != "on" || std::fs::read(&cert).is_err() {
        eprintln!("skipped: the test server serves no TLS whose certificate is readable here");
        return;
    }
    let db = TestDb::create().await;
    let (dir, _ca, _upstream) = super::harness::binary::setup().await;
    let egret = Egret::start(dir.path(), "redb.log").await;
    egret.key_and_placeholder("openai", "org", KEY).await;
    egret.stop().await;
    let cfg = dir.path().join("egret.yaml");
    // Debian's certificate names `localhost`.
    let to = format!(
        "{}?sslmode=require",
        db.url.replacen("127.0.0.1", "localhost", 1)
    );
    let out = migrate(&cfg, &to).await;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && said.contains("certificate"),
        "{said}"
    );
    let yaml = std::fs::read_to_string(&cfg).expect("read");
    std::fs::write(
        &cfg,
        yaml.replace(
            "vault: { path: data/egret.redb,",
            &format!("vault: {{ ca_file: \"{cert}\", path: data/egret.redb,"),
        ),
    )
    .expect("write");
    let out = migrate(&cfg, &to).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.contains("verified"), "{said}");
}

/// Issue 24, item 6: someone who can write the database but has no master key forges
/// placeholder rows — a genuine row's value (and MAC) moved under a placeholder of their
/// choosing, and the bare record as egret wrote it before MACs — and a sandbox identity.
/// A restart does not fail; the forged placeholders are unknown to the proxy, the genuine
/// one works, and each forged row is audited and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_forged_in_the_database_grant_nothing_and_are_reported() {
    let db = TestDb::create().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    prepare(root.path(), &db, &ca, OPENAI);
    let a = Egret::start(&root.path().join("a"), "a1.log").await;
    let genuine = a.key_and_placeholder("openai", "org", KEY).await;
    let client = db.client().await;
    let row: Vec<u8> = client
        .query_one(
            "SELECT value FROM egret_records WHERE tbl = 'placeholders' AND key = $1",
            &[&egret_vault::sha256_hex(&genuine)],
        )
        .await
        .expect("the genuine row")
        .get(0);
    let chosen = |tag: &str| format!("egp_{tag:A<40}");
    let (moved, bare) = (chosen("Moved"), chosen("Bare"));
    let content = row[4 + 32..].to_vec();
    let sandbox = serde_json::json!({
        "id": "sbx-forged", "created_at": 0, "expires_at": null,
        "secret_sha256": egret_vault::sha256_hex("egs_chosen"),
    })
    .to_string()
    .into_bytes();
    for (tbl, key, value) in [
        ("placeholders", egret_vault::sha256_hex(&moved), row.clone()),
        ("placeholders", egret_vault::sha256_hex(&bare), content),
        ("sandboxes", "sbx-forged".to_owned(), sandbox),
    ] {
        client
            .execute(
                "INSERT INTO egret_records (tbl, key, value) VALUES ($1, $2, $3)",
                &[&tbl, &key, &value],
            )
            .await
            .expect("forge a row");
    }
    a.stop().await;
    let a = Egret::start(&root.path().join("a"), "a2.log").await;
    a.export_ca().await;
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let auth = |p: &str| format!("Authorization: Bearer {p}");
    assert_eq!(status(&a, &auth(&genuine), &url).await, "200");
    for forged in [&moved, &bare] {
        assert_eq!(status(&a, &auth(forged), &url).await, "403", "{forged}");
    }
    let metrics = super::harness::api::metrics(a.control).await;
    assert!(
        metrics.contains("egret_vault_forged_rows_total 3"),
        "{metrics}"
    );
    let audit = stdout(&a.cli(&["audit", "tail", "-o", "json"], None).await);
    assert_eq!(audit.matches("vault.row_forged").count(), 3, "{audit}");
    assert!(!audit.contains(&moved) && !audit.contains(&bare), "{audit}");
    a.stop().await;
}

/// Issue 25, items 4 and 5: switching a vault on file to PostgreSQL never replaces the CA
/// sandboxes trust. A `ca.dir` holding a CA while the database has none, or holding
/// another CA than the database's, refuses the start with the way forward and leaves the
/// files as they were; the same certificate there already (a replica sharing `ca.dir`)
/// is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_in_ca_dir_is_never_replaced_by_the_vault_databases() {
    let db = TestDb::create().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    prepare(root.path(), &db, &ca, OPENAI);
    let certs = root.path().join("a").join("certs");
    egret_tls::CertificateAuthority::create_for(&certs, &[]).expect("a CA on file");
    let read = |name: &str| std::fs::read(certs.join(name)).expect("read");
    let (cert, key) = (read("ca.pem"), read("ca-key.pem"));
    let out = serve_once(&root.path().join("a")).await;
    assert!(
        out.contains("holds a CA that sandboxes may trust")
            && out.contains("egret vault migrate")
            && out.contains("Nothing was changed"),
        "{out}"
    );
    assert_eq!((read("ca.pem"), read("ca-key.pem")), (cert.clone(), key));

    // B starts on the database and creates its CA; A's ca.dir still holds the other one.
    let b = Egret::start(&root.path().join("b"), "b.log").await;
    let out = serve_once(&root.path().join("a")).await;
    assert!(
        out.contains("holds another CA than the one in the vault database"),
        "{out}"
    );
    assert_eq!(read("ca.pem"), cert, "never overwritten");
    // Moved away, as the message says: A writes the vault's certificate, and starts again
    // over it (the same file is accepted).
    std::fs::remove_dir_all(&certs).expect("move the old CA away");
    let a = Egret::start(&root.path().join("a"), "a1.log").await;
    assert_eq!(a.export_ca().await, b.export_ca().await);
    a.stop().await;
    let a = Egret::start(&root.path().join("a"), "a2.log").await;
    let log = a.stop().await;
    assert!(
        log.contains("loaded the interception CA from the vault database"),
        "{log}"
    );
    b.stop().await;
}

/// A request held for approval on replica A is released by an approval made through
/// replica B (the approval lives in the database; A reads it within its poll), within
/// a second of the decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_held_on_one_replica_is_released_by_approval_through_the_other() {
    let db = TestDb::create().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    prepare(
        root.path(),
        &db,
        &ca,
        "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n    rules:\n      - { methods: [POST], path: \"/**\", action: approve, reason: \"a person approves posts\" }\n    approvals: { hold: 20s }\n",
    );
    let a = Egret::start(&root.path().join("a"), "egret.log").await;
    let b = Egret::start(&root.path().join("b"), "egret.log").await;
    a.export_ca().await;
    let p = a.key_and_placeholder("openai", "org", KEY).await;
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let auth = format!("Authorization: Bearer {p}");
    let args = [
        "-X",
        "POST",
        "-H",
        &auth,
        "-d",
        "{}",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ];
    let held = a.curl(&args, &url);
    let approving = async {
        let id = until_some(
            "the approval, seen through B",
            Duration::from_secs(15),
            || async {
                let listed = stdout(&b.cli(&["approval", "list", "--output", "json"], None).await);
                let v: serde_json::Value = serde_json::from_str(&listed).ok()?;
                v["approvals"][0]["id"].as_str().map(str::to_owned)
            },
        )
        .await;
        assert!(upstream.seen().is_empty(), "nothing sent while held");
        let out = b.cli(&["approval", "approve", &id], None).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Instant::now()
    };
    let ((_, code), approved_at) = tokio::join!(held, approving);
    let released_after = approved_at.elapsed();
    assert_eq!(code, "200");
    assert_eq!(upstream.seen().len(), 1);
    assert!(
        released_after <= Duration::from_secs(1),
        "released {released_after:?} after the approval through B"
    );
    a.stop().await;
    b.stop().await;
}

/// A connection's budget is shared by replicas: requests served by A and by B count
/// against one window (each replica adds what it counted to the database every second),
/// and once the budget is spent both refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_counted_once_across_replicas() {
    let db = TestDb::create().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    prepare(
        root.path(),
        &db,
        &ca,
        "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n    limits: { requests: 4, per: 1h }\n",
    );
    let a = Egret::start(&root.path().join("a"), "egret.log").await;
    let b = Egret::start(&root.path().join("b"), "egret.log").await;
    a.export_ca().await;
    b.export_ca().await;
    let p = a.key_and_placeholder("openai", "org", KEY).await;
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let auth = format!("Authorization: Bearer {p}");
    for egret in [&a, &a, &b, &b] {
        assert_eq!(status(egret, &auth, &url).await, "200");
    }
    // Within two flushes (a second each) both replicas know all four; a request before
    // that may overshoot (documented), so the test waits them out.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(status(&a, &auth, &url).await, "429");
    assert_eq!(status(&b, &auth, &url).await, "429");
    assert_eq!(
        upstream.seen().len(),
        4,
        "the budget held: four requests went out"
    );
    a.stop().await;
    b.stop().await;
}

/// A scoped API token made through replica A works on B, and once revoked through B is
/// refused (401) by both at once: tokens are read from the database on each use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_api_token_is_refused_by_every_replica() {
    let db = TestDb::create().await;
    let root = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    prepare(root.path(), &db, &ca, OPENAI);
    let a = Egret::start(&root.path().join("a"), "egret.log").await;
    let b = Egret::start(&root.path().join("b"), "egret.log").await;
    let made = a
        .cli(
            &["token", "create", "agent-platform", "--role", "platform"],
            None,
        )
        .await;
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let token = stdout(&made).trim().to_owned();
    let get = |egret: &Egret| {
        let (url, token) = (
            format!("http://{}/v1/connections", egret.control),
            token.clone(),
        );
        async move {
            let out = tokio::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
                .arg(format!("Authorization: Bearer {token}"))
                .arg(url)
                .output()
                .await
                .expect("curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    assert_eq!(get(&a).await, "200");
    assert_eq!(get(&b).await, "200");
    let revoked = b.cli(&["token", "revoke", "agent-platform"], None).await;
    assert!(revoked.status.success());
    assert_eq!(get(&a).await, "401", "refused at once on the other replica");
    assert_eq!(get(&b).await, "401");
    a.stop().await;
    b.stop().await;
}
