use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::{ConnectLink, LinkUse, OutboxEntry};

fn owner(s: &str) -> Owner {
    Owner::parse(s).expect("owner")
}

/// The owner's default connection to `connector`.
fn conn(connector: &str, o: &str) -> ConnectionId {
    ConnectionId::default_of(connector, &owner(o))
}

#[test]
fn stores_resolves_and_survives_reopen_without_plaintext_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    let key = MasterKey::generate();
    let secret = "sk-live-THIS-IS-THE-REAL-KEY-0123456789";
    let p = {
        let v = Vault::open(&path, &key).expect("open");
        v.put_api_key(&conn("openai", "org"), &SecretString::from(secret))
            .expect("put");
        let (p, _) = v
            .mint_placeholder(&conn("openai", "org"), None)
            .expect("mint");
        v.audit("connection.set", Some("openai"), Some("org"), None)
            .expect("audit");
        p
    };
    let raw = std::fs::read(&path).expect("read file");
    let hay = String::from_utf8_lossy(&raw);
    assert!(
        !hay.contains(secret),
        "the key is in the vault file in plaintext"
    );
    assert!(
        !hay.contains(p.expose()),
        "the placeholder is stored in the clear"
    );

    let v = Vault::open(&path, &key).expect("reopen");
    let r = v
        .resolve(&p.hash(), unix_now())
        .expect("resolves after reopen");
    assert_eq!(r.credential.secret.expose_secret(), secret);
    assert_eq!(r.placeholder.info.connector, "openai");
    assert_eq!(v.audit_since(0, 10, None, None).expect("audit").len(), 1);
}

#[test]
fn wrong_master_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    Vault::open(&path, &MasterKey::generate()).expect("create");
    assert!(matches!(
        Vault::open(&path, &MasterKey::generate()),
        Err(VaultError::WrongKey)
    ));
}

#[test]
fn removing_a_connection_kills_its_placeholders_and_expiry_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open");
    let o = owner("user:alice");
    assert!(matches!(
        v.mint_placeholder(&ConnectionId::default_of("x", &o), None),
        Err(VaultError::NoConnection { .. })
    ));
    v.put_api_key(
        &ConnectionId::default_of("x", &o),
        &SecretString::from("k1"),
    )
    .expect("put");
    let (p, _) = v
        .mint_placeholder(&ConnectionId::default_of("x", &o), None)
        .expect("mint");
    let (short, info) = v
        .mint_placeholder(
            &ConnectionId::default_of("x", &o),
            Some(std::time::Duration::from_secs(60)),
        )
        .expect("mint");
    let exp = info.expires_at.expect("expiry");
    assert!(v.resolve(&short.hash(), exp - 1).is_some());
    assert!(v.resolve(&short.hash(), exp).is_none());
    // Replacing the key keeps placeholders working with the new value.
    v.put_api_key(
        &ConnectionId::default_of("x", &o),
        &SecretString::from("k2"),
    )
    .expect("replace");
    let r = v.resolve(&p.hash(), unix_now()).expect("still resolves");
    assert_eq!(r.credential.secret.expose_secret(), "k2");
    assert!(
        v.remove_connection(&ConnectionId::default_of("x", &o))
            .expect("remove")
    );
    assert!(v.resolve(&p.hash(), unix_now()).is_none());
    assert!(
        !v.remove_connection(&ConnectionId::default_of("x", &o))
            .expect("second remove")
    );
    assert!(
        v.put_api_key(
            &ConnectionId::default_of("x", &o),
            &SecretString::from("a\nb")
        )
        .is_err()
    );
}

#[test]
fn revoke_is_immediate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open");
    v.put_api_key(&conn("x", "org"), &SecretString::from("k"))
        .expect("put");
    let (p, _) = v.mint_placeholder(&conn("x", "org"), None).expect("mint");
    v.revoke_placeholder(&p).expect("revoke");
    assert!(v.resolve(&p.hash(), unix_now()).is_none());
    assert!(matches!(
        v.revoke_placeholder(&p),
        Err(VaultError::NoPlaceholder)
    ));
}

#[test]
fn owners_are_validated() {
    assert!(Owner::parse("org").is_ok());
    assert!(Owner::parse("user:alice@x.com").is_ok());
    assert!(Owner::parse("user:").is_err());
    assert!(Owner::parse("bob").is_err());
    assert!(Owner::parse("user:a/b").is_err());
}

#[test]
fn master_key_round_trips_and_rejects_garbage() {
    let k = MasterKey::generate();
    let text = k.encode();
    assert!(MasterKey::decode(text.expose_secret()).is_ok());
    assert!(MasterKey::decode("not base64!").is_err());
    assert!(MasterKey::decode("AAAA").is_err());
    assert!(!format!("{k:?}").contains(text.expose_secret()));
}

fn tokens(access: &str, refresh: Option<&str>, expires_at: i64) -> TokenSet {
    TokenSet {
        identity: None,
        access_token: SecretString::from(access),
        refresh_token: refresh.map(SecretString::from),
        expires_at: Some(expires_at),
        scopes: vec!["read".into()],
    }
}

#[test]
fn oauth_tokens_replace_in_place_survive_reopen_and_stay_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    let key = MasterKey::generate();
    let alice = owner("user:alice");
    let p = {
        let v = Vault::open(&path, &key).expect("open");
        v.put_oauth_tokens(
            &ConnectionId::default_of("db", &alice),
            tokens("at-ONE-secret", Some("rt-ONE-secret"), 100),
            TokenUpdate::Authorized,
        )
        .expect("authorize");
        let (p, _) = v
            .mint_placeholder(&ConnectionId::default_of("db", &alice), None)
            .expect("mint");
        let connected_at = v
            .connection(&ConnectionId::default_of("db", &alice))
            .expect("info")
            .connected_at;
        v.put_oauth_tokens(
            &ConnectionId::default_of("db", &alice),
            tokens("at-TWO-secret", Some("rt-TWO-secret"), 200),
            TokenUpdate::Refreshed,
        )
        .expect("refresh");
        let info = v
            .connection(&ConnectionId::default_of("db", &alice))
            .expect("info");
        assert_eq!(
            info.connected_at, connected_at,
            "a refresh keeps connected_at"
        );
        assert!(info.refreshed_at.is_some());
        assert_eq!(info.expires_at, Some(200));
        p
    };
    let raw = String::from_utf8_lossy(&std::fs::read(&path).expect("read")).into_owned();
    for secret in [
        "at-ONE-secret",
        "rt-ONE-secret",
        "at-TWO-secret",
        "rt-TWO-secret",
    ] {
        assert!(
            !raw.contains(secret),
            "{secret} is in the file in the clear"
        );
    }
    let v = Vault::open(&path, &key).expect("reopen");
    let r = v
        .resolve(&p.hash(), 150)
        .expect("placeholder still resolves");
    assert_eq!(r.credential.secret.expose_secret(), "at-TWO-secret");
    assert_eq!(
        r.credential
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        Some("rt-TWO-secret".to_owned())
    );
    assert!(r.credential.needs_renewal(150, 60));
    assert!(!r.credential.needs_renewal(100, 60));
    assert!(r.credential.usable_at(199) && !r.credential.usable_at(200));
}

#[test]
fn a_renewal_never_brings_back_a_removed_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open");
    let alice = owner("user:alice");
    v.put_oauth_tokens(
        &ConnectionId::default_of("db", &alice),
        tokens("a", Some("r"), 100),
        TokenUpdate::Authorized,
    )
    .expect("authorize");
    assert!(
        v.remove_connection(&ConnectionId::default_of("db", &alice))
            .expect("remove")
    );
    assert!(
        v.put_oauth_tokens(
            &ConnectionId::default_of("db", &alice),
            tokens("b", Some("r2"), 200),
            TokenUpdate::Refreshed
        )
        .is_err()
    );
    assert!(
        v.connection(&ConnectionId::default_of("db", &alice))
            .is_none()
    );
}

#[test]
fn needs_reauth_is_recorded_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    let key = MasterKey::generate();
    {
        let v = Vault::open(&path, &key).expect("open");
        v.put_oauth_tokens(
            &conn("db", "org"),
            tokens("a", Some("r"), 100),
            TokenUpdate::Authorized,
        )
        .expect("authorize");
        v.mark_needs_reauth(&conn("db", "org")).expect("mark");
    }
    let v = Vault::open(&path, &key).expect("reopen");
    let c = v.credential(&conn("db", "org")).expect("credential");
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
    assert!(!c.usable_at(0));
    assert!(
        c.refresh_token.is_none(),
        "a dead grant's refresh token is dropped"
    );
}

#[test]
fn a_pending_authorization_is_taken_once_and_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    let v = Vault::open(&path, &MasterKey::generate()).expect("open");
    let pending = |expires_at| PendingAuthorization {
        connector: "db".into(),
        owner: owner("user:bob"),
        name: ConnectionName::default(),
        pkce_verifier: Some(SecretString::from("verifier-SECRET-value")),
        redirect_uri: "http://127.0.0.1/oauth/callback".into(),
        expires_at,
        vendor_url: Some("https://id.example/authorize?state=x".into()),
        binding: None,
    };
    let state = SecretString::from("state-SECRET-value");
    v.put_authorization(&state, &pending(unix_now() + 600))
        .expect("put");
    let raw = String::from_utf8_lossy(&std::fs::read(&path).expect("read")).into_owned();
    assert!(!raw.contains("verifier-SECRET-value") && !raw.contains("state-SECRET-value"));
    // The start link binds the sign-in to one browser, once.
    let bound = v
        .bind_authorization("state-SECRET-value", "ab12")
        .expect("bind");
    assert_eq!(
        bound.as_deref(),
        Some("https://id.example/authorize?state=x")
    );
    let rebound = v
        .bind_authorization("state-SECRET-value", "cd34")
        .expect("bind");
    assert!(rebound.is_none(), "a start link binds once");
    assert!(
        v.bind_authorization("forged", "ab12")
            .expect("bind")
            .is_none()
    );
    let taken = v
        .take_authorization("state-SECRET-value")
        .expect("take")
        .expect("found");
    assert_eq!(taken.owner, owner("user:bob"));
    assert_eq!(taken.binding.as_deref(), Some("ab12"));
    assert_eq!(
        taken
            .pkce_verifier
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        Some("verifier-SECRET-value".to_owned())
    );
    assert!(
        v.take_authorization("state-SECRET-value")
            .expect("take")
            .is_none(),
        "used once"
    );
    assert!(v.take_authorization("forged").expect("take").is_none());

    let old = SecretString::from("old-state");
    v.put_authorization(&old, &pending(unix_now() - 1))
        .expect("put");
    assert!(
        v.take_authorization("old-state").expect("take").is_none(),
        "expired"
    );
}

#[test]
fn rotating_the_master_key_reseals_everything_and_retires_the_old_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    let (old, new) = (MasterKey::generate(), MasterKey::generate());
    let state = SecretString::from("state-abc");
    let p = {
        let v = Vault::open(&path, &old).expect("open");
        v.put_api_key(&conn("openai", "org"), &SecretString::from("sk-rotate-me"))
            .expect("put");
        v.put_api_connector("api-made", &serde_json::json!({"id": "api-made"}))
            .expect("connector");
        let pending = PendingAuthorization {
            connector: "gh".to_owned(),
            owner: owner("user:ann"),
            name: ConnectionName::default(),
            pkce_verifier: Some(SecretString::from("verifier-xyz")),
            redirect_uri: "http://127.0.0.1/cb".to_owned(),
            expires_at: unix_now() + 600,
            vendor_url: None,
            binding: None,
        };
        v.put_authorization(&state, &pending).expect("pending");
        v.mint_placeholder(&conn("openai", "org"), None)
            .expect("mint")
            .0
    };
    let rotated = rotate_key(&path, &old, &new).expect("rotate");
    assert_eq!(
        rotated,
        Rotated {
            connectors: 1,
            connections: 1,
            authorizations: 1,
            ui_sessions: 0,
            approvals: 0,
            // The placeholder's row, under the new key's MAC.
            authenticated: 1,
            forged_dropped: 0,
        }
    );
    assert!(matches!(
        Vault::open(&path, &old),
        Err(VaultError::WrongKey)
    ));
    assert!(matches!(
        rotate_key(&path, &old, &new),
        Err(VaultError::WrongKey)
    ));
    let v = Vault::open(&path, &new).expect("new key opens");
    let r = v
        .resolve(&p.hash(), unix_now())
        .expect("placeholder still resolves");
    assert_eq!(r.credential.secret.expose_secret(), "sk-rotate-me");
    assert_eq!(v.api_connectors().expect("connectors").len(), 1);
    let taken = v
        .take_authorization("state-abc")
        .expect("read")
        .expect("pending kept");
    assert_eq!(
        taken
            .pkce_verifier
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .as_deref(),
        Some("verifier-xyz")
    );
}

#[test]
fn a_removed_connector_note_survives_reopen_keeps_its_first_time_and_goes_with_an_erase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    let key = MasterKey::generate();
    {
        let v = Vault::open(&path, &key).expect("open");
        v.put_api_key(&conn("crm", "org"), &SecretString::from("k"))
            .expect("put");
        assert!(v.note_connector_removed("crm", 100).expect("note"));
        // A second removal (say, at the next start-up) keeps the first time.
        assert!(!v.note_connector_removed("crm", 200).expect("note"));
    }
    let v = Vault::open(&path, &key).expect("reopen");
    assert_eq!(v.removed_connectors(), vec![("crm".to_owned(), 100)]);
    assert_eq!(v.connections(Some("crm"), None).len(), 1, "kept");
    assert_eq!(v.erase_connector("crm").expect("erase"), 1);
    assert_eq!(v.connector_removed_at("crm"), None);
    assert_eq!(v.forget_connector_removed("crm").expect("forget"), None);
    drop(v);
    let v = Vault::open(&path, &key).expect("reopen");
    assert!(v.removed_connectors().is_empty());
}

#[test]
fn connection_names_are_checked_and_default_keeps_the_old_key() {
    for good in ["default", "work", "a-b_c", "x9", &"n".repeat(64)] {
        assert!(ConnectionName::parse(good).is_ok(), "{good}");
    }
    for bad in ["", "Work", "a b", "x/y", "x.y", &"n".repeat(65)] {
        assert!(ConnectionName::parse(bad).is_err(), "{bad:?}");
    }
    // Vaults written before names key connections `connector/owner`: the default
    // name keeps that key, so they open as they are.
    assert_eq!(conn("gh", "user:ann").key(), "gh/user:ann");
    let work = ConnectionId::new(
        "gh",
        &owner("user:ann"),
        &ConnectionName::parse("work").expect("name"),
    );
    assert_eq!(work.key(), "gh/user:ann/work");
    assert_eq!(work.name.env_var("GH_TOKEN"), "GH_TOKEN_WORK");
    assert_eq!(
        ConnectionName::default().env_var("GH_TOKEN"),
        "GH_TOKEN",
        "the default name keeps the connector's variable"
    );
    // A record without `name` reads as `default`.
    let old: ConnectionInfo = serde_json::from_value(serde_json::json!({
        "connector": "gh", "owner": "user:ann", "kind": "api_key", "status": "connected",
        "connected_at": 1, "expires_at": null
    }))
    .expect("old record");
    assert!(old.name.is_default());
}

#[test]
fn two_names_are_two_connections_with_their_own_placeholders() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("v.redb");
    let key = MasterKey::generate();
    let work = ConnectionId::new(
        "x",
        &owner("org"),
        &ConnectionName::parse("work").expect("name"),
    );
    let (p_default, p_work) = {
        let v = Vault::open(&path, &key).expect("open");
        v.put_api_key(&conn("x", "org"), &SecretString::from("k-default"))
            .expect("default");
        v.put_api_key(&work, &SecretString::from("k-work"))
            .expect("work");
        let (a, _) = v.mint_placeholder(&conn("x", "org"), None).expect("mint");
        let (b, _) = v.mint_placeholder(&work, None).expect("mint");
        (a, b)
    };
    // Reopened: each placeholder still resolves to its own connection's key.
    let v = Vault::open(&path, &key).expect("reopen");
    let now = v.clock().unix();
    let secret = |p: &Placeholder| {
        v.resolve(&p.hash(), now)
            .map(|r| r.credential.secret.expose_secret().to_owned())
    };
    assert_eq!(secret(&p_default).as_deref(), Some("k-default"));
    assert_eq!(secret(&p_work).as_deref(), Some("k-work"));
    assert!(v.remove_connection(&work).expect("remove"));
    assert_eq!(secret(&p_work), None);
    assert_eq!(secret(&p_default).as_deref(), Some("k-default"));
}

#[test]
fn webhook_deliveries_wait_in_the_outbox_across_a_reopen_and_the_oldest_go_beyond_the_cap() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("v.redb");
    let key = MasterKey::generate();
    let entry = |n: i64| OutboxEntry {
        id: format!("msg_{n}"),
        url: "http://127.0.0.1:9/hook".to_owned(),
        event: "connection.removed".to_owned(),
        body: format!("{{\"n\":{n}}}"),
        created_at: n,
        attempts: 0,
        next_at: n,
        last_error: None,
    };
    {
        let v = Vault::open(&path, &key).expect("open");
        let dropped = v
            .outbox_push(&[entry(1), entry(2), entry(3)], 2)
            .expect("push");
        assert_eq!(dropped, 1, "the oldest goes when the cap is passed");
    }
    let v = Vault::open(&path, &key).expect("reopen");
    assert_eq!(v.outbox_len().expect("len"), 2);
    let due = v.outbox_due(2, 10).expect("due");
    assert_eq!(due.len(), 1, "only what is due at 2");
    assert_eq!(due[0].1, entry(2));
    // A failed attempt waits; a delivered one is gone.
    let (k, mut e) = due[0].clone();
    e.attempts = 1;
    e.next_at = 100;
    v.outbox_update(k, Some(&e)).expect("retry");
    assert!(
        v.outbox_due(3, 10)
            .expect("due")
            .iter()
            .all(|(_, d)| d.id != "msg_2")
    );
    let (k3, _) = v.outbox_due(3, 10).expect("due")[0].clone();
    v.outbox_update(k3, None).expect("delivered");
    assert_eq!(v.outbox_len().expect("len"), 1);
    assert_eq!(v.outbox_due(100, 10).expect("due")[0].1.attempts, 1);
}

#[test]
fn a_connect_link_works_once_then_says_it_was_used_and_ends_with_its_ttl() {
    let dir = tempfile::tempdir().expect("dir");
    let clock = egret_clock::Clock::for_tests();
    let v = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate())
        .expect("open")
        .with_clock(clock.clone());
    let link = ConnectLink {
        owner: owner("user:ann"),
        connector: Some("gh".to_owned()),
        name: None,
        expires_at: clock.unix() + 60,
    };
    let ticket = SecretString::from("ticket-abc");
    v.put_connect_link(&ticket, &link).expect("put");
    assert_eq!(
        v.use_connect_link("ticket-abc").expect("use"),
        LinkUse::Fresh(link.clone())
    );
    assert_eq!(
        v.use_connect_link("ticket-abc").expect("again"),
        LinkUse::Used
    );
    assert_eq!(
        v.use_connect_link("forged").expect("unknown"),
        LinkUse::Expired
    );
    let later = SecretString::from("ticket-late");
    v.put_connect_link(&later, &link).expect("put");
    clock.skip(std::time::Duration::from_secs(61));
    assert_eq!(
        v.use_connect_link("ticket-late").expect("late"),
        LinkUse::Expired
    );
    // Only the hash is kept: the file does not hold the ticket.
    drop(v);
    let raw = std::fs::read(dir.path().join("v.redb")).expect("read");
    assert!(!raw.windows(10).any(|w| w == b"ticket-abc"));
}

/// Pending sign-ins are bounded per owner: one owner's new sign-ins drop its own oldest,
/// never another's; and making room reads the rows' clear headers only (a row that would
/// not unseal is left alone while it lives). A header changed in the store counts for
/// nothing: that row no longer opens.
#[test]
fn one_owners_pending_sign_ins_never_evict_anothers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open");
    let now = unix_now();
    let pending = |who: &str, expires_at| PendingAuthorization {
        connector: "db".into(),
        owner: owner(who),
        name: ConnectionName::default(),
        pkce_verifier: None,
        redirect_uri: "http://127.0.0.1/oauth/callback".into(),
        expires_at,
        vendor_url: Some("https://id.example/authorize".into()),
        binding: None,
    };
    let bobs = SecretString::from("bob-state");
    v.put_authorization(&bobs, &pending("user:bob", now + 600))
        .expect("bob");
    // Another process's row that this vault cannot unseal, live for ten minutes.
    let foreign = crate::pending::join(now + 600, "user:carol", b"not sealed by this key");
    v.store()
        .commit(vec![crate::store::Change::put(
            crate::store::Table::Authorizations,
            "foreign",
            foreign,
        )])
        .expect("foreign row");
    for i in 0..25 {
        let state = SecretString::from(format!("mallory-{i}"));
        v.put_authorization(&state, &pending("user:mallory", now + 100 + i))
            .expect("mallory");
    }
    let rows = v
        .store()
        .scan(crate::store::Table::Authorizations)
        .expect("scan");
    let of = |who: &str| {
        rows.iter()
            .filter(|(_, r)| crate::pending::split(r).is_some_and(|h| h.owner == who))
            .count()
    };
    assert_eq!(of("user:mallory"), 20, "mallory's own oldest went");
    assert_eq!(of("user:bob"), 1, "bob's is kept");
    assert_eq!(of("user:carol"), 1, "never unsealed, still there");
    // Mallory's oldest five are gone, the newest are there.
    assert!(v.take_authorization("mallory-0").expect("take").is_none());
    assert!(v.take_authorization("mallory-24").expect("take").is_some());
    // Bob's row with its header moved on (an attacker holding the store): it no longer opens.
    let key = crate::sandboxes::sha256_hex("bob-state");
    let row = v
        .store()
        .get(crate::store::Table::Authorizations, &key)
        .expect("get")
        .expect("bob's row");
    let r = crate::pending::split(&row).expect("header");
    let moved = crate::pending::join(r.expires_at + 3600, r.owner, r.sealed);
    v.store()
        .commit(vec![crate::store::Change::put(
            crate::store::Table::Authorizations,
            key.as_str(),
            moved,
        )])
        .expect("tamper");
    assert!(v.take_authorization("bob-state").expect("take").is_none());
}
