//! The vault over a store other processes share, with the sharing simulated: a redb
//! store behind a wrapper that says whether memory is current, lets a test write behind
//! the vault's back (another replica), and can lose a renewal's fence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::SecretString;

use crate::store::{
    AuditFrom, AuditLog, Change, ChangeFeed, Leases, Outbox, Records, RedbStore, StoreError, Table,
};
use crate::{ConnectionId, MasterKey, Owner, TokenSet, TokenUpdate, Vault, VaultError};

struct Shared {
    inner: Arc<RedbStore>,
    current: Arc<AtomicBool>,
    lose_fence: Arc<AtomicBool>,
}

impl Records for Shared {
    fn describe(&self) -> String {
        "shared test store".to_owned()
    }
    fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping()
    }
    fn get(&self, t: Table, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(t, k)
    }
    fn scan(&self, t: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan(t)
    }
    fn commit(&self, c: Vec<Change>) -> Result<(), StoreError> {
        self.inner.commit(c)
    }
    fn put_if_absent(&self, t: Table, k: &str, v: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.inner.put_if_absent(t, k, v)
    }
    fn take(&self, t: Table, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.take(t, k)
    }
    fn swap(&self, t: Table, k: &str, e: &[u8], n: &[u8]) -> Result<bool, StoreError> {
        self.inner.swap(t, k, e, n)
    }
}

impl Leases for Shared {
    fn claim_renewal(&self, k: &str, h: &str, l: Duration) -> Result<Option<u64>, StoreError> {
        self.inner.claim_renewal(k, h, l)
    }
    fn commit_renewal(&self, k: &str, h: &str, v: u64, val: &[u8]) -> Result<bool, StoreError> {
        if self.lose_fence.load(Ordering::SeqCst) {
            return Ok(false);
        }
        self.inner.commit_renewal(k, h, v, val)
    }
    fn release_renewal(&self, k: &str, h: &str) -> Result<(), StoreError> {
        self.inner.release_renewal(k, h)
    }
    fn lead(&self, t: &str, h: &str, l: Duration) -> Result<bool, StoreError> {
        self.inner.lead(t, h, l)
    }
}

impl AuditLog for Shared {
    fn append_row(
        &self,
        lines: &[u8],
        count: u64,
        at: i64,
        durable: bool,
    ) -> Result<(u64, Vec<u8>), StoreError> {
        self.inner.append_row(lines, count, at, durable)
    }
    fn rows(&self, from: AuditFrom, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.rows(from, max)
    }
    fn prune(&self, through: u64, at: i64, newest: u64, max: usize) -> Result<(), StoreError> {
        self.inner.prune(through, at, newest, max)
    }
}

impl Outbox for Shared {
    fn outbox_push(&self, rows: Vec<Vec<u8>>, cap: usize) -> Result<usize, StoreError> {
        self.inner.outbox_push(rows, cap)
    }
    fn outbox_rows(&self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.outbox_rows(max)
    }
    fn outbox_update(&self, seq: u64, row: Option<&[u8]>) -> Result<(), StoreError> {
        self.inner.outbox_update(seq, row)
    }
    fn outbox_len(&self) -> Result<u64, StoreError> {
        self.inner.outbox_len()
    }
}

impl ChangeFeed for Shared {
    fn memory_current(&self) -> bool {
        self.current.load(Ordering::SeqCst)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    vault: Vault,
    /// The same store, as another replica writes to it.
    other: Arc<RedbStore>,
    current: Arc<AtomicBool>,
    lose_fence: Arc<AtomicBool>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = Arc::new(RedbStore::open(&dir.path().join("v.redb")).expect("store"));
    let current = Arc::new(AtomicBool::new(true));
    let lose_fence = Arc::new(AtomicBool::new(false));
    let store = Shared {
        inner: inner.clone(),
        current: current.clone(),
        lose_fence: lose_fence.clone(),
    };
    let vault = Vault::open_store(Box::new(store), &MasterKey::generate()).expect("vault");
    Fixture {
        _dir: dir,
        vault,
        other: inner,
        current,
        lose_fence,
    }
}

/// A key stored for `org`'s openai connection, and a placeholder for it.
fn keyed_placeholder(f: &Fixture) -> crate::Placeholder {
    let id = org("openai");
    f.vault
        .put_api_key(&id, &SecretString::from("sk-1"))
        .expect("key");
    f.vault.mint_placeholder(&id, None).expect("mint").0
}

fn org(connector: &str) -> ConnectionId {
    ConnectionId::default_of(connector, &Owner::parse("org").expect("owner"))
}

#[test]
fn memory_is_trusted_while_current_and_read_through_when_not() {
    let f = fixture();
    let p = keyed_placeholder(&f);
    let now = crate::unix_now();
    // Another replica revokes it; this one has not heard.
    f.other
        .commit(vec![Change::remove(Table::Placeholders, p.hash().hex())])
        .expect("revoke elsewhere");
    assert!(
        f.vault.resolve(&p.hash(), now).is_some(),
        "hearing changes: memory answers, and the notification would follow"
    );
    // Deaf for too long: the lookup reads the database and refuses.
    f.current.store(false, Ordering::SeqCst);
    assert!(f.vault.resolve(&p.hash(), now).is_none());
    // The same for a sandbox revoked elsewhere.
    let (sbx, secret) = f.vault.issue_sandbox(Some("s1"), None).expect("sandbox");
    use secrecy::ExposeSecret as _;
    let issue = f
        .vault
        .authenticate_sandbox(&sbx.id, secret.expose_secret(), now)
        .expect("authenticates");
    f.other
        .commit(vec![Change::remove(Table::Sandboxes, "s1")])
        .expect("revoke elsewhere");
    assert!(!f.vault.sandbox_still_valid("s1", &issue, now));
    assert!(
        f.vault
            .authenticate_sandbox("s1", secret.expose_secret(), now)
            .is_none()
    );
}

#[test]
fn a_renewal_that_lost_its_fence_leaves_the_newer_tokens_in_force() {
    let f = fixture();
    let id = org("vendor");
    let tokens = |access: &str, refresh: &str| TokenSet {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: Some(SecretString::from(refresh.to_owned())),
        expires_at: Some(crate::unix_now() + 3600),
        scopes: Vec::new(),
        identity: None,
    };
    f.vault
        .put_oauth_tokens(&id, tokens("at-1", "rt-1"), TokenUpdate::Authorized)
        .expect("connect");
    assert!(
        f.vault
            .claim_renewal(&id, Duration::from_secs(10))
            .expect("claim")
    );
    // Meanwhile another replica committed its renewal (this one's fence is lost).
    f.lose_fence.store(true, Ordering::SeqCst);
    let result =
        f.vault
            .put_oauth_tokens(&id, tokens("at-mine", "rt-mine"), TokenUpdate::Refreshed);
    assert!(
        matches!(result, Err(VaultError::Superseded(_))),
        "{result:?}"
    );
    use secrecy::ExposeSecret as _;
    let now = f.vault.credential(&id).expect("credential");
    assert_eq!(
        now.secret.expose_secret(),
        "at-1",
        "this replica's tokens never landed"
    );
}

/// A change notification is a hint, never data: it only names a row, which the vault
/// reads from the store itself. A notification that names a row the store does not hold
/// (forged, say, by someone who can NOTIFY) makes nothing appear, and one that names a
/// live row leaves it as the store has it.
#[test]
fn a_notification_is_a_hint_and_carries_no_data() {
    let f = fixture();
    let p = keyed_placeholder(&f);
    let now = crate::unix_now();
    let forged =
        crate::placeholder::PlaceholderHash::of(b"egp_forged0000000000000000000000000000000");
    f.vault
        .reread(Table::Placeholders, &forged.hex())
        .expect("reread");
    assert!(f.vault.resolve(&forged, now).is_none(), "nothing appears");
    f.vault
        .reread(Table::Placeholders, &p.hash().hex())
        .expect("reread");
    assert!(
        f.vault.resolve(&p.hash(), now).is_some(),
        "as the store has it"
    );
    f.vault
        .reread(Table::Sandboxes, "never-issued")
        .expect("reread");
    assert!(f.vault.sandboxes().is_empty());
}

/// Issue 24, item 6: someone who can write the store but has no master key adds rows
/// that would grant a credential — a placeholder for a connection (its hash is all it
/// takes to name one), a sandbox identity with a secret of their choosing, a connect
/// link — as they are written now (a MAC of their own making, or one moved from another
/// row) and as they were written before MACs. None is loaded, answered or used, through
/// a full read, a change notification or a read-through; each is audited and counted
/// once, and the start does not fail.
#[test]
fn rows_written_without_the_master_key_grant_nothing() {
    let f = fixture();
    let p = keyed_placeholder(&f);
    let genuine = f
        .other
        .get(Table::Placeholders, &p.hash().hex())
        .expect("get")
        .expect("the genuine row");
    let now = crate::unix_now();
    let content = &genuine[4 + 32..];
    let placeholder =
        |name: &str| crate::placeholder::PlaceholderHash::of(format!("egp_{name:0<40}").as_bytes());
    let (moved, legacy, own_mac) = (
        placeholder("moved"),
        placeholder("legacy"),
        placeholder("own"),
    );
    let attacker = crate::mac::RowMac::new(&MasterKey::generate());
    let sandbox = serde_json::json!({
        "id": "sbx-forged", "created_at": now, "expires_at": null,
        "secret_sha256": crate::sandboxes::sha256_hex("egs_chosen"),
    })
    .to_string();
    let link = serde_json::json!({
        "owner": "user:victim", "connector": null, "name": null,
        "expires_at": now + 600, "used": false,
    })
    .to_string();
    f.other
        .commit(vec![
            // The genuine row's MAC under another key: moved.
            Change::put(Table::Placeholders, moved.hex(), genuine.clone()),
            Change::put(Table::Placeholders, legacy.hex(), content.to_vec()),
            Change::put(
                Table::Placeholders,
                own_mac.hex(),
                attacker.wrap(Table::Placeholders, &own_mac.hex(), content),
            ),
            Change::put(Table::Sandboxes, "sbx-forged", sandbox.into_bytes()),
            Change::put(
                Table::ConnectLinks,
                crate::sandboxes::sha256_hex("ticket-chosen"),
                link.into_bytes(),
            ),
        ])
        .expect("write behind the vault");
    // A change notification for each row, then a full read (a restart, or a resync).
    for key in [moved.hex(), legacy.hex(), own_mac.hex()] {
        f.vault.reread(Table::Placeholders, &key).expect("reread");
    }
    f.vault
        .reread(Table::Sandboxes, "sbx-forged")
        .expect("reread");
    f.vault.resync().expect("a full read does not fail");
    // Read-through, as a replica whose memory is not current does.
    f.current.store(false, Ordering::SeqCst);
    for forged in [&moved, &legacy, &own_mac] {
        assert!(
            f.vault.resolve(forged, now).is_none(),
            "a forged placeholder resolves"
        );
    }
    assert!(
        f.vault.resolve(&p.hash(), now).is_some(),
        "the genuine one still does"
    );
    assert!(
        f.vault
            .authenticate_sandbox("sbx-forged", "egs_chosen", now)
            .is_none(),
        "a forged sandbox identity passes"
    );
    assert!(f.vault.sandboxes().is_empty());
    assert_eq!(
        f.vault.use_connect_link("ticket-chosen").expect("link"),
        crate::LinkUse::Expired,
        "a forged connect link opens"
    );
    assert_eq!(f.vault.forged_rows(), 5, "each forged row counted once");
    let audited = f
        .vault
        .audit_latest(50, 1000, |e| e.event == "vault.row_forged")
        .expect("audit")
        .len();
    assert_eq!(audited, 5, "each forged row audited once");
}

/// Rows written before MACs existed are authenticated once, at the first start that
/// knows MACs; a row without one written after that is forged.
#[test]
fn rows_from_before_macs_are_authenticated_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.redb");
    let key = MasterKey::generate();
    let id = org("openai");
    let (p, legacy_row) = {
        let v = Vault::open(&path, &key).expect("vault");
        v.put_api_key(&id, &SecretString::from("sk-1"))
            .expect("key");
        let (p, _) = v.mint_placeholder(&id, None).expect("mint");
        let row = v
            .store()
            .get(Table::Placeholders, &p.hash().hex())
            .expect("get")
            .expect("row");
        // As an older egret wrote it: the content alone, and no upgrade flag.
        let content = row[4 + 32..].to_vec();
        v.store()
            .commit(vec![
                Change::put(Table::Placeholders, p.hash().hex(), content.clone()),
                Change::remove(Table::Meta, crate::mac::UPGRADED),
            ])
            .expect("downgrade");
        (p, content)
    };
    let v = Vault::open(&path, &key).expect("the upgrade");
    let now = crate::unix_now();
    assert!(v.resolve(&p.hash(), now).is_some(), "an old row is kept");
    assert_eq!(v.forged_rows(), 0);
    let late =
        crate::placeholder::PlaceholderHash::of(b"egp_late000000000000000000000000000000000");
    v.store()
        .commit(vec![Change::put(
            Table::Placeholders,
            late.hex(),
            legacy_row,
        )])
        .expect("write behind");
    drop(v);
    let v = Vault::open(&path, &key).expect("reopen");
    assert!(v.resolve(&late, now).is_none(), "no second upgrade");
    assert!(v.resolve(&p.hash(), now).is_some());
    assert_eq!(v.forged_rows(), 1);
}
