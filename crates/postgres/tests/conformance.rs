//! The store seam's conformance suite: the same tests against both backends, the
//! embedded redb file and PostgreSQL (a database of its own per test). A backend that
//! passes behaves as the vault expects of any store; a test here names a behaviour, and
//! each runs twice, as `conformance_…::redb` and `conformance_…::postgres`.

mod common;

use std::time::Duration;

use egret_vault::store::{AuditFrom, Change, RedbStore, Retention, Store, Table, seq_of_line};

/// Runs `$body` against a fresh store of each backend.
macro_rules! conformance {
    ($name:ident, |$s:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn check($s: &dyn Store) $body

            #[test]
            fn redb() {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = RedbStore::open(&dir.path().join("v.redb")).expect("redb");
                check(&store);
            }

            #[test]
            fn postgres() {
                let db = common::Db::new(stringify!($name).trim_start_matches("conformance_"));
                let store = db.store();
                check(&store);
            }
        }
    };
}

fn put(table: Table, key: &str, value: &[u8]) -> Change {
    Change::put(table, key, value.to_vec())
}

/// `{"at":AT,"event":"e"}` lines, `n` of them.
fn events(n: usize, at: i64) -> Vec<u8> {
    vec![format!("{{\"at\":{at},\"event\":\"e\"}}"); n]
        .join("\n")
        .into_bytes()
}

fn seqs(lines: &[Vec<u8>]) -> Vec<u64> {
    lines.iter().filter_map(|l| seq_of_line(l)).collect()
}

conformance!(conformance_a_commit_puts_and_removes_together, |s| {
    s.commit(vec![
        put(Table::Connections, "a/org", b"one"),
        put(Table::Placeholders, "ff", b"p"),
    ])
    .expect("commit");
    assert_eq!(
        s.get(Table::Connections, "a/org").expect("get"),
        Some(b"one".to_vec())
    );
    s.commit(vec![
        Change::remove(Table::Placeholders, "ff"),
        put(Table::Connections, "a/org", b"two"),
    ])
    .expect("commit");
    assert_eq!(s.get(Table::Placeholders, "ff").expect("get"), None);
    assert_eq!(
        s.get(Table::Connections, "a/org").expect("get"),
        Some(b"two".to_vec())
    );
    // Removing what is not there is no error.
    s.commit(vec![Change::remove(Table::Placeholders, "none")])
        .expect("remove nothing");
});

conformance!(conformance_a_scan_is_one_table_in_key_order, |s| {
    s.commit(vec![
        put(Table::Sandboxes, "b", b"2"),
        put(Table::Sandboxes, "a", b"1"),
        put(Table::Sandboxes, "c", b"3"),
        put(Table::ConnectLinks, "a", b"other table"),
    ])
    .expect("commit");
    let rows = s.scan(Table::Sandboxes).expect("scan");
    let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(rows[0].1, b"1");
    assert!(s.scan(Table::UiSessions).expect("scan").is_empty());
});

conformance!(conformance_removed_connectors_keep_their_unix_times, |s| {
    s.commit(vec![put(Table::RemovedConnectors, "gone", b"1767225600")])
        .expect("commit");
    assert_eq!(
        s.get(Table::RemovedConnectors, "gone").expect("get"),
        Some(b"1767225600".to_vec())
    );
});

conformance!(conformance_put_if_absent_keeps_the_first_value, |s| {
    assert_eq!(
        s.put_if_absent(Table::Meta, "ca", b"first").expect("put"),
        b"first"
    );
    assert_eq!(
        s.put_if_absent(Table::Meta, "ca", b"second").expect("put"),
        b"first"
    );
    assert_eq!(
        s.get(Table::Meta, "ca").expect("get"),
        Some(b"first".to_vec())
    );
});

conformance!(conformance_take_gives_a_row_once, |s| {
    s.commit(vec![put(Table::Authorizations, "state", b"pending")])
        .expect("commit");
    assert_eq!(
        s.take(Table::Authorizations, "state").expect("take"),
        Some(b"pending".to_vec())
    );
    assert_eq!(s.take(Table::Authorizations, "state").expect("take"), None);
    assert_eq!(s.take(Table::Authorizations, "never").expect("take"), None);
});

conformance!(conformance_swap_replaces_only_the_expected_value, |s| {
    s.commit(vec![put(Table::ConnectLinks, "l", b"fresh")])
        .expect("commit");
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
            .expect("swap")
    );
    assert!(
        !s.swap(Table::ConnectLinks, "none", b"fresh", b"used")
            .expect("swap")
    );
    assert_eq!(
        s.get(Table::ConnectLinks, "l").expect("get"),
        Some(b"used".to_vec())
    );
});

conformance!(
    conformance_a_renewal_commits_only_over_a_connection_still_there,
    |s| {
        s.commit(vec![put(Table::Connections, "c/org", b"old tokens")])
            .expect("commit");
        let lease = Duration::from_secs(30);
        let version = s
            .claim_renewal("c/org", "me", lease)
            .expect("claim")
            .expect("granted to the only holder");
        assert!(
            s.commit_renewal("c/org", "me", version, b"new tokens")
                .expect("commit")
        );
        assert_eq!(
            s.get(Table::Connections, "c/org").expect("get"),
            Some(b"new tokens".to_vec())
        );
        // A renewal never brings back a connection removed while it ran.
        let version = s.claim_renewal("c/org", "me", lease).expect("claim");
        s.commit(vec![Change::remove(Table::Connections, "c/org")])
            .expect("remove");
        assert!(
            !s.commit_renewal("c/org", "me", version.unwrap_or(0), b"late")
                .expect("commit")
        );
        assert_eq!(s.get(Table::Connections, "c/org").expect("get"), None);
        s.release_renewal("c/org", "me").expect("release");
    }
);

conformance!(conformance_a_sole_holder_leads_a_task, |s| {
    let lease = Duration::from_secs(5);
    assert!(s.lead("purge", "me", lease).expect("lead"));
    assert!(s.lead("purge", "me", lease).expect("lead again"));
});

conformance!(
    conformance_audit_numbers_without_gaps_and_pages_both_ways,
    |s| {
        let keep = Retention {
            keep: 100_000,
            max_age_secs: 3600,
        };
        let (first, row) = s
            .audit_append(&events(3, 100), 100, true, keep)
            .expect("append");
        assert_eq!(first, 1);
        assert_eq!(
            seqs(
                &row.split(|b| *b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
            ),
            [1, 2, 3]
        );
        let (first, _) = s
            .audit_append(&events(2, 100), 100, false, keep)
            .expect("append");
        assert_eq!(first, 4);
        let all = s.audit_page(AuditFrom::After(0), 100).expect("page");
        assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
        // From the middle of a row, and bounded.
        assert_eq!(
            seqs(&s.audit_page(AuditFrom::After(2), 2).expect("page")),
            [3, 4]
        );
        // Newest first, from the middle of a row.
        assert_eq!(
            seqs(&s.audit_page(AuditFrom::Before(5), 3).expect("page")),
            [4, 3, 2]
        );
        assert_eq!(
            seqs(&s.audit_page(AuditFrom::Before(u64::MAX), 1).expect("page")),
            [5]
        );
        assert!(
            s.audit_page(AuditFrom::After(5), 10)
                .expect("page")
                .is_empty()
        );
        // Each stored line is the event with its number first.
        assert!(
            all[0].starts_with(b"{\"seq\":1,\"at\":100,"),
            "{}",
            String::from_utf8_lossy(&all[0])
        );
    }
);

conformance!(
    conformance_audit_retention_drops_whole_rows_past_the_count,
    |s| {
        let five = Retention {
            keep: 5,
            max_age_secs: 3600,
        };
        for _ in 0..3 {
            s.audit_append(&events(4, 100), 100, true, five)
                .expect("append");
        }
        // Rows of 4: the one holding 1..=4 is past the count; 5..=12 stay, whole.
        let kept = seqs(&s.audit_page(AuditFrom::After(0), 100).expect("page"));
        assert_eq!(kept, (5..=12).collect::<Vec<_>>());
        s.audit_append(&events(1, 100), 100, true, five)
            .expect("append");
        let kept = seqs(&s.audit_page(AuditFrom::After(0), 100).expect("page"));
        assert_eq!(kept, vec![9, 10, 11, 12, 13], "numbers go on, never reused");
    }
);

conformance!(
    conformance_audit_retention_by_age_keeps_the_newest_row,
    |s| {
        let keep = Retention {
            keep: 1000,
            max_age_secs: 3600,
        };
        s.audit_append(&events(2, 100), 100, true, keep)
            .expect("append");
        s.audit_append(&events(2, 200), 200, true, keep)
            .expect("append");
        // An hour and more later, everything before is past the age; the newest row stays.
        s.audit_append(&events(1, 4000), 4000, true, keep)
            .expect("append");
        let kept = seqs(&s.audit_page(AuditFrom::After(0), 100).expect("page"));
        assert_eq!(kept, vec![5]);
        let expired = Retention {
            keep: 1000,
            max_age_secs: -1,
        };
        s.audit_append(&events(1, 4000), 4000, true, expired)
            .expect("append");
        let kept = seqs(&s.audit_page(AuditFrom::After(0), 100).expect("page"));
        assert_eq!(kept, vec![6], "numbering never starts over");
    }
);

conformance!(conformance_the_outbox_keeps_order_and_its_cap, |s| {
    let rows: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("{{\"n\":{i}}}").into_bytes())
        .collect();
    assert_eq!(
        s.outbox_push(rows, 3).expect("push"),
        2,
        "two oldest dropped"
    );
    let kept = s.outbox_rows(10).expect("rows");
    assert_eq!(
        kept.iter().map(|(_, r)| r.as_slice()).collect::<Vec<_>>(),
        [b"{\"n\":2}".as_slice(), b"{\"n\":3}", b"{\"n\":4}"]
    );
    assert!(
        kept.windows(2).all(|w| w[0].0 < w[1].0),
        "numbered in order"
    );
    assert_eq!(s.outbox_rows(1).expect("rows").len(), 1);
    assert_eq!(s.outbox_len().expect("len"), 3);
});

conformance!(
    conformance_an_outbox_update_keeps_only_deliveries_still_there,
    |s| {
        s.outbox_push(vec![b"{\"a\":1}".to_vec(), b"{\"b\":1}".to_vec()], 10)
            .expect("push");
        let kept = s.outbox_rows(10).expect("rows");
        s.outbox_update(kept[0].0, Some(b"{\"a\":2}"))
            .expect("update");
        s.outbox_update(kept[1].0, None).expect("remove");
        s.outbox_update(9999, Some(b"{}"))
            .expect("a gone delivery stays gone");
        let left = s.outbox_rows(10).expect("rows");
        assert_eq!(left, vec![(kept[0].0, b"{\"a\":2}".to_vec())]);
        // Numbers are not reused after a removal.
        s.outbox_push(vec![b"{\"c\":1}".to_vec()], 10)
            .expect("push");
        let last = s.outbox_rows(10).expect("rows").last().map(|(n, _)| *n);
        assert!(last > Some(kept[1].0));
    }
);

conformance!(conformance_a_store_answers_and_says_where_it_is, |s| {
    s.ping().expect("ping");
    s.health().expect("healthy");
    assert!(s.memory_current());
    let place = s.describe();
    assert!(
        place.contains("redb") || place.contains("postgres"),
        "{place}"
    );
    assert!(!place.contains("password"), "{place}");
});
