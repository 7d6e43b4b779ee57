//! Holding and deciding over a real redb vault; two `Approvals` over one vault stand in
//! for two replicas (the one that decides never woke the holder: it reads the store).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_vault::{ConnectionId, MasterKey, Owner, Vault};
use egret_webhooks::{Event, EventSink};

use super::*;

#[derive(Default)]
struct Told(Mutex<Vec<Event>>);

impl EventSink for Told {
    fn emit(&self, event: Event) {
        self.0.lock().expect("lock").push(event);
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    a: Arc<Approvals>,
    b: Arc<Approvals>,
    told: Arc<Told>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("dir");
    let vault =
        Arc::new(Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("vault"));
    let policy = Arc::new(ArcSwap::from_pointee(
        egret_policy::parse("version: 1\n", std::path::Path::new("p.yaml"), dir.path())
            .expect("policy"),
    ));
    let told = Arc::new(Told::default());
    let make = |events: Arc<dyn EventSink>| {
        Arc::new(Approvals::new(
            vault.clone(),
            policy.clone(),
            events,
            Clock::system(),
        ))
    };
    Fixture {
        a: make(told.clone()),
        b: make(Arc::new(egret_webhooks::NoEvents)),
        told,
        _dir: dir,
    }
}

fn ask(path: &str, body: &str) -> Ask {
    Ask {
        connection: ConnectionId::default_of("github", &Owner::parse("user:alice").expect("owner")),
        sandbox: Some("sb1".into()),
        method: "POST".into(),
        host: "api.github.com".into(),
        path: path.into(),
        query: None,
        body: body.as_bytes().to_vec(),
        rule: "pulls".into(),
        reason: "a person approves pull requests".into(),
    }
}

fn pending_id(f: &Fixture) -> String {
    let list = f.a.list().expect("list");
    list.iter()
        .find(|a| a.status == ApprovalStatus::Pending)
        .map(|a| a.id.clone())
        .expect("a pending approval")
}

#[tokio::test]
async fn a_held_request_is_released_by_a_decision_on_another_replica() {
    let f = fixture();
    let a = f.a.clone();
    let held = tokio::spawn(async move {
        a.hold(ask("/repos/o/r/pulls", "{}"), Duration::from_secs(10))
            .await
    });
    let id = loop {
        if let Ok(list) = f.b.list()
            && let Some(p) = list.first()
        {
            break p.id.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let decision = Decision::Approve {
        grant: Grant::Once,
        note: Some("ok".into()),
    };
    let approved =
        f.b.decide(&id, decision.clone(), "user:alice")
            .expect("decide");
    assert_eq!(approved.status, ApprovalStatus::Approved);
    let outcome = tokio::time::timeout(Duration::from_secs(2), held)
        .await
        .expect("within POLL")
        .expect("task");
    assert_eq!(outcome.expect("held"), Held::Granted { id: id.clone() });
    // Spent: the same request again asks anew.
    let again =
        f.a.hold(ask("/repos/o/r/pulls", "{}"), Duration::from_millis(50))
            .await
            .expect("held");
    assert!(
        matches!(again, Held::Pending { id: ref other, .. } if *other != id),
        "{again:?}"
    );
    // Deciding twice is refused.
    let twice = f.a.decide(&id, decision, "admin").expect_err("settled");
    assert!(twice.to_string().contains("approved already"), "{twice}");
    let kinds: Vec<&str> = f
        .told
        .0
        .lock()
        .expect("lock")
        .iter()
        .map(|e| e.kind.name())
        .collect();
    assert_eq!(
        kinds,
        ["approval.requested", "approval.requested"],
        "b told the decision: its sink is NoEvents"
    );
}

#[tokio::test]
async fn after_the_hold_the_retry_of_an_approved_request_goes_once() {
    let f = fixture();
    let first =
        f.a.hold(ask("/p", "{\"a\":1}"), Duration::from_millis(50))
            .await
            .expect("held");
    let Held::Pending { id, retry_after } = first else {
        panic!("{first:?}")
    };
    assert!((1..=30).contains(&retry_after));
    // The same request while pending waits on the same approval.
    let again =
        f.a.hold(ask("/p", "{\"a\":1}"), Duration::from_millis(50))
            .await
            .expect("held");
    assert!(
        matches!(&again, Held::Pending { id: same, .. } if *same == id),
        "{again:?}"
    );
    assert_eq!(f.a.list().expect("list").len(), 1);
    f.a.decide(
        &id,
        Decision::Approve {
            grant: Grant::Once,
            note: None,
        },
        "admin",
    )
    .expect("decide");
    // Another body is another request.
    let other =
        f.a.hold(ask("/p", "{\"a\":2}"), Duration::from_millis(10))
            .await
            .expect("held");
    assert!(matches!(other, Held::Pending { .. }), "{other:?}");
    let retry =
        f.a.hold(ask("/p", "{\"a\":1}"), Duration::from_millis(10))
            .await
            .expect("held");
    assert_eq!(retry, Held::Granted { id: id.clone() });
    let third =
        f.a.hold(ask("/p", "{\"a\":1}"), Duration::from_millis(10))
            .await
            .expect("held");
    assert!(
        matches!(third, Held::Pending { .. }),
        "once is once: {third:?}"
    );
}

#[tokio::test]
async fn a_grant_for_an_hour_covers_the_rule_and_a_denial_carries_its_note() {
    let f = fixture();
    f.a.hold(ask("/p/1", ""), Duration::from_millis(10))
        .await
        .expect("held");
    let id = pending_id(&f);
    f.a.decide(
        &id,
        Decision::Approve {
            grant: Grant::parse("1h").expect("1h"),
            note: None,
        },
        "user:alice",
    )
    .expect("decide");
    let other =
        f.a.hold(ask("/p/2", "x"), Duration::from_millis(10))
            .await
            .expect("held");
    assert_eq!(
        other,
        Held::Granted { id },
        "same rule, connection and sandbox"
    );
    let mut elsewhere = ask("/p/2", "x");
    elsewhere.sandbox = Some("sb2".into());
    let held =
        f.a.hold(elsewhere, Duration::from_millis(10))
            .await
            .expect("held");
    let Held::Pending { id: other_id, .. } = held else {
        panic!("{held:?}")
    };
    f.a.decide(
        &other_id,
        Decision::Deny {
            note: Some("  not from that sandbox ".into()),
        },
        "admin",
    )
    .expect("deny");
    let mut retried = ask("/p/2", "x");
    retried.sandbox = Some("sb2".into());
    let denied =
        f.a.hold(retried, Duration::from_millis(10))
            .await
            .expect("held");
    assert_eq!(
        denied,
        Held::Denied {
            id: other_id,
            by: Some("admin".into()),
            note: Some("not from that sandbox".into())
        }
    );
    assert!(Grant::parse("forever").is_err() && Grant::parse("31d").is_err());
}
