//! The PostgreSQL store against a real server (`EGRET_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), a database of its own per test: every
//! `Store` method, two stores on one database standing for two replicas.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egret_postgres::PgStore;
use egret_vault::store::prelude::*;
use egret_vault::store::{AuditFrom, Change, ChangeSink, Retention, Table};

mod common;

use common::{Db, admin};

#[test]
fn records_commit_atomically_and_read_back() {
    let db = Db::new("records");
    let s = db.store();
    s.commit(vec![
        Change::put(Table::Connections, "a/org", b"one".to_vec()),
        Change::put(Table::Placeholders, "ff", b"p".to_vec()),
    ])
    .expect("commit");
    assert_eq!(
        s.get(Table::Connections, "a/org").expect("get"),
        Some(b"one".to_vec())
    );
    assert_eq!(s.scan(Table::Placeholders).expect("scan").len(), 1);
    s.commit(vec![Change::remove(Table::Placeholders, "ff")])
        .expect("remove");
    assert!(s.scan(Table::Placeholders).expect("scan").is_empty());
    // A commit that fails leaves nothing behind: a value that is not bytea-able cannot
    // be made here, so a key too long for an index stands in (PostgreSQL refuses it).
    let huge = "k".repeat(10_000);
    let failed = s.commit(vec![
        Change::put(Table::Sandboxes, "kept-out", b"x".to_vec()),
        Change::put(Table::Sandboxes, huge, b"x".to_vec()),
    ]);
    assert!(failed.is_err());
    assert_eq!(
        s.get(Table::Sandboxes, "kept-out").expect("get"),
        None,
        "all or nothing"
    );

    assert_eq!(
        s.put_if_absent(Table::Meta, "k", b"first").expect("put"),
        b"first"
    );
    assert_eq!(
        s.put_if_absent(Table::Meta, "k", b"second").expect("put"),
        b"first"
    );
    s.commit(vec![Change::put(
        Table::Authorizations,
        "st",
        b"pending".to_vec(),
    )])
    .expect("put");
    assert_eq!(
        s.take(Table::Authorizations, "st").expect("take"),
        Some(b"pending".to_vec())
    );
    assert_eq!(
        s.take(Table::Authorizations, "st").expect("take"),
        None,
        "once"
    );
    s.commit(vec![Change::put(
        Table::ConnectLinks,
        "l",
        b"fresh".to_vec(),
    )])
    .expect("put");
    assert!(
        !s.swap(Table::ConnectLinks, "l", b"other", b"used")
            .expect("swap")
    );
    assert!(
        s.swap(Table::ConnectLinks, "l", b"fresh", b"used")
            .expect("swap")
    );
    assert!(
        !s.swap(Table::ConnectLinks, "l", b"fresh", b"used")
            .expect("swap"),
        "once"
    );
}

#[test]
fn a_renewal_lease_is_held_by_one_replica_and_fenced() {
    let db = Db::new("lease");
    let (a, b) = (db.store(), db.store());
    a.commit(vec![Change::put(
        Table::Connections,
        "c/org",
        b"v1".to_vec(),
    )])
    .expect("put");
    let lease = Duration::from_secs(1);
    let v = a
        .claim_renewal("c/org", "A", lease)
        .expect("claim")
        .expect("granted");
    assert_eq!(
        b.claim_renewal("c/org", "B", lease).expect("claim"),
        None,
        "held by A"
    );
    // B writes the row meanwhile (a new sign-in): A's commit is fenced off.
    b.commit(vec![Change::put(
        Table::Connections,
        "c/org",
        b"v2".to_vec(),
    )])
    .expect("put");
    assert!(!a.commit_renewal("c/org", "A", v, b"v3").expect("commit"));
    assert_eq!(
        a.get(Table::Connections, "c/org").expect("get"),
        Some(b"v2".to_vec())
    );
    // After the lease runs out another holder claims it, and commits.
    std::thread::sleep(Duration::from_millis(1100));
    let v = b
        .claim_renewal("c/org", "B", lease)
        .expect("claim")
        .expect("granted after expiry");
    assert!(
        !a.commit_renewal("c/org", "A", v, b"x").expect("commit"),
        "not A's any more"
    );
    assert!(b.commit_renewal("c/org", "B", v, b"v4").expect("commit"));
    assert_eq!(
        a.get(Table::Connections, "c/org").expect("get"),
        Some(b"v4".to_vec())
    );
    // Released: claimable at once.
    let v = a
        .claim_renewal("c/org", "A", Duration::from_secs(30))
        .expect("claim")
        .expect("free");
    a.release_renewal("c/org", "A").expect("release");
    assert!(
        b.claim_renewal("c/org", "B", lease)
            .expect("claim")
            .is_some()
    );
    assert!(!a.commit_renewal("c/org", "A", v, b"y").expect("commit"));
    // No row, no claim.
    assert_eq!(
        a.claim_renewal("gone/org", "A", lease).expect("claim"),
        None
    );
}

#[test]
fn one_replica_leads_a_background_task_until_its_lease_ends() {
    let db = Db::new("lead");
    let (a, b) = (db.store(), db.store());
    let lease = Duration::from_secs(1);
    assert!(a.lead("webhooks", "A", lease).expect("lead"));
    assert!(
        a.lead("webhooks", "A", lease).expect("lead"),
        "renewed by its holder"
    );
    assert!(!b.lead("webhooks", "B", lease).expect("lead"));
    assert!(
        b.lead("purge", "B", lease).expect("lead"),
        "tasks are led apart"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert!(b.lead("webhooks", "B", lease).expect("lead"), "taken over");
}

#[test]
fn audit_events_are_numbered_once_across_replicas() {
    let db = Db::new("audit");
    // One numbers its batches from the counter as it last saw it, the other locks the
    // counter every time: both ways, side by side.
    let (a, b) = (
        Arc::new(db.store()),
        Arc::new(db.store().always_lock_audit_counter()),
    );
    let keep = Retention {
        keep: 100_000,
        max_age_secs: 3600,
    };
    let line = br#"{"at":1,"event":"x"}"#;
    let threads: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let lines = [line.as_slice(), line.as_slice()].join(&b'\n');
                    s.audit_append(&lines, 1, true, keep).expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let all = a.audit_page(AuditFrom::After(0), 1000).expect("page");
    let seqs: Vec<u64> = all
        .iter()
        .filter_map(|l| egret_vault::store::seq_of_line(l))
        .collect();
    assert_eq!(
        seqs,
        (1..=80).collect::<Vec<_>>(),
        "gap-free, no number twice"
    );
    let newest = b.audit_page(AuditFrom::Before(u64::MAX), 3).expect("page");
    let newest: Vec<u64> = newest
        .iter()
        .filter_map(|l| egret_vault::store::seq_of_line(l))
        .collect();
    assert_eq!(newest, vec![80, 79, 78]);
    // Taking turns: each finds the counter moved by the other since its last batch
    // (synced or not, as the request writer asks between its once-a-second syncs).
    let c = db.store();
    for (store, durable) in [(&*a, false), (&c, false), (&*a, true), (&c, true)] {
        store.audit_append(line, 1, durable, keep).expect("append");
    }
    let turns: Vec<u64> = c
        .audit_page(AuditFrom::After(80), 10)
        .expect("page")
        .iter()
        .filter_map(|l| egret_vault::store::seq_of_line(l))
        .collect();
    assert_eq!(turns, vec![81, 82, 83, 84]);
    // Retention by count: the newest `keep` stay once the next batch crosses a mark.
    let small = Retention {
        keep: 10,
        max_age_secs: 3600,
    };
    let many = vec![line.as_slice(); 600].join(&b'\n');
    a.audit_append(&many, 1, true, small).expect("append");
    let left = a.audit_page(AuditFrom::After(0), 10_000).expect("page");
    let first = left
        .first()
        .and_then(|l| egret_vault::store::seq_of_line(l));
    assert_eq!(
        (left.len(), first),
        (600, Some(85)),
        "whole rows go; the newest stays"
    );
}

#[test]
fn the_outbox_keeps_order_and_its_cap() {
    let db = Db::new("outbox");
    let s = db.store();
    let rows: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("{{\"n\":{i}}}").into_bytes())
        .collect();
    assert_eq!(
        s.outbox_push(rows, 3).expect("push"),
        2,
        "two oldest dropped"
    );
    let kept = s.outbox_rows(10).expect("rows");
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[0].1, b"{\"n\":2}");
    s.outbox_update(kept[0].0, Some(b"{\"n\":20}"))
        .expect("update");
    s.outbox_update(kept[1].0, None).expect("remove");
    s.outbox_update(9999, Some(b"{}"))
        .expect("a gone delivery stays gone");
    assert_eq!(s.outbox_len().expect("len"), 2);
    assert_eq!(s.outbox_rows(10).expect("rows")[0].1, b"{\"n\":20}");
}

#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl ChangeSink for Heard {
    fn changed(&self, table: Table, key: &str) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("{}:{key}", table.name()));
    }
    fn resync(&self) {
        self.0.lock().expect("lock").push("resync".to_owned());
    }
}

impl Heard {
    fn wait_for(&self, what: &str) -> Duration {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if self.0.lock().expect("lock").iter().any(|h| h == what) {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("never heard {what}: {:?}", self.0.lock().expect("lock"));
    }
}

#[test]
fn a_replica_hears_the_others_changes_not_its_own() {
    let db = Db::new("notify");
    let (a, b) = (db.store(), db.store());
    let heard = Arc::new(Heard::default());
    b.watch(heard.clone());
    let started = Instant::now();
    while !b.hearing().listening() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(b.memory_current());
    a.commit(vec![Change::put(Table::Placeholders, "ab", b"p".to_vec())])
        .expect("put");
    heard.wait_for("placeholders:ab");
    b.commit(vec![Change::remove(Table::Sandboxes, "own")])
        .expect("remove");
    a.commit(vec![Change::remove(Table::Sandboxes, "theirs")])
        .expect("remove");
    heard.wait_for("sandboxes:theirs");
    assert!(
        !heard
            .0
            .lock()
            .expect("lock")
            .iter()
            .any(|h| h == "sandboxes:own"),
        "its own change is not heard back"
    );
    // Tables nobody keeps in memory are not announced.
    a.commit(vec![Change::put(
        Table::Authorizations,
        "st",
        b"x".to_vec(),
    )])
    .expect("put");
    a.commit(vec![Change::put(Table::Placeholders, "cd", b"p".to_vec())])
        .expect("put");
    heard.wait_for("placeholders:cd");
    assert!(
        !heard
            .0
            .lock()
            .expect("lock")
            .iter()
            .any(|h| h.starts_with("authorizations"))
    );
    // A large commit says "read everything again" instead of each row.
    let many = (0..100)
        .map(|i| Change::put(Table::Placeholders, format!("{i:02x}x"), b"p".to_vec()))
        .collect();
    a.commit(many).expect("put");
    heard.wait_for("resync");
    let stats = b.stats().expect("stats");
    assert!(stats.listening && stats.changes_heard >= 3, "{stats:?}");
}

#[test]
fn replicas_starting_together_migrate_once() {
    let db = Db::new("migrate");
    let url = db.url.clone();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::connect(&url, None).map(drop))
        })
        .collect();
    for s in starts {
        s.join().expect("thread").expect("every replica starts");
    }
    let versions: i64 = on_db(&url, async |c| {
        c.query_one("SELECT count(*) FROM egret_schema", &[])
            .await
            .expect("schema")
            .get(0)
    });
    assert_eq!(versions, 1, "one schema version row");
}

/// Runs one query on the test's own database (not the server's default one).
fn on_db<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    admin(async |_| {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        f(&client).await
    })
}

#[test]
fn the_audit_log_is_compressed_with_lz4_also_in_a_database_from_before() {
    let db = Db::new("lz4");
    let compression = |url: &str| -> String {
        on_db(url, async |c| {
            c.query_one(
                "SELECT attcompression::text FROM pg_attribute
                 WHERE attrelid = 'egret_audit'::regclass AND attname = 'lines'",
                &[],
            )
            .await
            .expect("column")
            .get(0)
        })
    };
    let store = db.store();
    assert_eq!(compression(&db.url), "l", "a new database");
    // A database as schema version 1 left it (pglz), with a batch stored: the next
    // start migrates it and the batch reads back.
    let keep = Retention {
        keep: 100,
        max_age_secs: 3600,
    };
    store
        .audit_append(br#"{"at":1,"event":"x"}"#, 1, true, keep)
        .expect("append");
    drop(store);
    on_db(&db.url, async |c| {
        c.batch_execute(
            "ALTER TABLE egret_audit ALTER COLUMN lines SET COMPRESSION pglz;
             UPDATE egret_schema SET version = 1",
        )
        .await
        .expect("back to version 1")
    });
    assert_eq!(compression(&db.url), "p");
    let store = db.store();
    assert_eq!(compression(&db.url), "l", "migrated");
    let version: i32 = on_db(&db.url, async |c| {
        c.query_one("SELECT version FROM egret_schema", &[])
            .await
            .expect("version")
            .get(0)
    });
    assert_eq!(version, 2);
    let lines = store.audit_page(AuditFrom::After(0), 10).expect("page");
    assert_eq!(lines.len(), 1, "the batch from before reads back");
}

#[test]
fn sslmode_require_is_tls_with_the_certificate_verified() {
    // The server's own certificate (Debian's: `localhost`), when it serves TLS at all.
    let (ssl, cert_file): (String, String) = admin(async |c| {
        let ssl = c.query_one("SHOW ssl", &[]).await.expect("show ssl").get(0);
        let file = c
            .query_one("SHOW ssl_cert_file", &[])
            .await
            .expect("show ssl_cert_file")
            .get(0);
        (ssl, file)
    });
    let Ok(pem) = std::fs::read(&cert_file).map(|_| cert_file.clone()) else {
        eprintln!("skipped: the server's certificate {cert_file} is not readable here");
        return;
    };
    if ssl != "on" {
        eprintln!("skipped: the test server does not serve TLS (ssl = {ssl})");
        return;
    }
    let db = Db::new("tls");
    let url = format!(
        "{}?sslmode=require",
        db.url.replacen("127.0.0.1", "localhost", 1)
    );
    // Not trusted: refused, and why.
    let refused = PgStore::connect(&url, None)
        .err()
        .expect("an untrusted certificate is refused");
    assert!(refused.to_string().contains("certificate"), "{refused}");
    // Trusted through vault.ca_file: the connection is TLS.
    let store = PgStore::connect(&url, Some(std::path::Path::new(&pem))).expect("TLS connect");
    store.ping().expect("ping");
    let name = db.name.clone();
    let all_tls: bool = admin(async |c| {
        c.query_one(
            "SELECT bool_and(s.ssl) AND count(*) > 0 FROM pg_stat_ssl s
             JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND a.application_name = 'egret'",
            &[&name],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
    });
    assert!(all_tls, "egret's connections are TLS");
}
