use secrecy::{ExposeSecret, SecretString};

use super::*;

fn owner(s: &str) -> Owner {
    Owner::parse(s).expect("owner")
}

#[test]
fn stores_resolves_and_survives_reopen_without_plaintext_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    let key = MasterKey::generate();
    let secret = "sk-live-THIS-IS-THE-REAL-KEY-0123456789";
    let p = {
        let v = Vault::open(&path, &key).expect("open");
        v.put_api_key("openai", &owner("org"), &SecretString::from(secret))
            .expect("put");
        let (p, _) = v
            .mint_placeholder("openai", &owner("org"), None)
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
    assert_eq!(v.audit_since(0, 10).expect("audit").len(), 1);
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
        v.mint_placeholder("x", &o, None),
        Err(VaultError::NoConnection { .. })
    ));
    v.put_api_key("x", &o, &SecretString::from("k1"))
        .expect("put");
    let (p, _) = v.mint_placeholder("x", &o, None).expect("mint");
    let (short, info) = v
        .mint_placeholder("x", &o, Some(std::time::Duration::from_secs(60)))
        .expect("mint");
    let exp = info.expires_at.expect("expiry");
    assert!(v.resolve(&short.hash(), exp - 1).is_some());
    assert!(v.resolve(&short.hash(), exp).is_none());
    // Replacing the key keeps placeholders working with the new value.
    v.put_api_key("x", &o, &SecretString::from("k2"))
        .expect("replace");
    let r = v.resolve(&p.hash(), unix_now()).expect("still resolves");
    assert_eq!(r.credential.secret.expose_secret(), "k2");
    assert!(v.remove_connection("x", &o).expect("remove"));
    assert!(v.resolve(&p.hash(), unix_now()).is_none());
    assert!(!v.remove_connection("x", &o).expect("second remove"));
    assert!(v.put_api_key("x", &o, &SecretString::from("a\nb")).is_err());
}

#[test]
fn revoke_is_immediate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open");
    v.put_api_key("x", &owner("org"), &SecretString::from("k"))
        .expect("put");
    let (p, _) = v.mint_placeholder("x", &owner("org"), None).expect("mint");
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
