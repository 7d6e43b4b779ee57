//! The real binary against its own files: a wrong, missing, unreadable-by-policy or
//! corrupt master key, vault or CA key stops start-up with the fix in the message and
//! changes nothing; `vault rotate-key` re-seals in one step and survives interruption;
//! SIGKILL in the middle of writes and a reload loses nothing that was acknowledged.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::harness::binary::{Egret, setup, stdout};
use super::harness::wait::until;

const EGRET: &str = env!("CARGO_BIN_EXE_egret");

/// `egret serve` that must fail: its exit status and stderr.
async fn serve_fails(dir: &Path) -> String {
    let out = Command::new(EGRET)
        .args(["serve", "--config"])
        .arg(dir.join("egret.yaml"))
        .env_remove("EGRET_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("serve stops by itself")
        .expect("ran");
    assert!(!out.status.success(), "serve started where it must refuse");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_files_stop_startup_with_the_fix_and_change_nothing() {
    let (dir, _ca, _upstream) = setup().await;
    let d = dir.path();
    let egret = Egret::start(d, "first.log").await;
    let p = egret
        .key_and_placeholder("openai", "org", "sk-keep-me")
        .await;
    egret.stop().await;
    let (vault, key) = (d.join("data/egret.redb"), d.join("data/master.key"));
    let good_key = std::fs::read(&key).expect("key");

    // Another valid key.
    let other = egret_vault::MasterKey::generate();
    std::fs::write(&key, secrecy::ExposeSecret::expose_secret(&other.encode())).expect("write");
    let err = serve_fails(d).await;
    assert!(err.contains("does not open the vault"), "{err}");
    // Not a key at all.
    std::fs::write(&key, "not-a-key").expect("write");
    let err = serve_fails(d).await;
    assert!(err.contains("master key"), "{err}");
    // No key while the vault exists: never a new key for old data.
    std::fs::remove_file(&key).expect("rm");
    let err = serve_fails(d).await;
    assert!(err.contains("missing but the vault"), "{err}");
    assert!(!key.exists(), "no key was made up");
    // A key others may read.
    std::fs::write(&key, &good_key).expect("restore");
    chmod(&key, 0o644);
    let err = serve_fails(d).await;
    assert!(err.contains("chmod 600"), "{err}");
    chmod(&key, 0o600);
    // A CA key others may read.
    let ca_key = d.join("certs/ca-key.pem");
    chmod(&ca_key, 0o640);
    let err = serve_fails(d).await;
    assert!(err.contains("chmod 600"), "{err}");
    chmod(&ca_key, 0o600);
    // (redb rewrites its header on every open, so the bytes may differ; the data is
    // checked at the end: the same connection is there.)
    let vault_bytes = std::fs::read(&vault).expect("vault");
    // A corrupt vault is refused and left as it is for recovery.
    let mut corrupt = vault_bytes.clone();
    for b in corrupt.iter_mut().take(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&vault, &corrupt).expect("corrupt");
    let err = serve_fails(d).await;
    assert!(err.contains("cannot open the vault"), "{err}");
    assert!(
        std::fs::read(&vault).expect("vault") == corrupt,
        "never overwritten"
    );

    // Everything restored: the same placeholder works again.
    std::fs::write(&vault, &vault_bytes).expect("restore");
    let egret = Egret::start(d, "second.log").await;
    let listed = stdout(&egret.cli(&["connection", "list"], None).await);
    assert!(listed.contains("openai"), "{listed}");
    assert!(!listed.contains("sk-keep-me"));
    let _ = p;
    egret.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_reseals_and_an_interrupted_rotation_finishes_at_start() {
    let (dir, _ca, upstream) = setup().await;
    let d = dir.path();
    let egret = Egret::start(d, "first.log").await;
    let p = egret
        .key_and_placeholder("openai", "org", "sk-rotated")
        .await;
    // While serve holds the vault, rotation refuses and leaves no pending key behind.
    let busy = egret.cli(&["vault", "rotate-key"], None).await;
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("still running"));
    assert!(!d.join("data/master.key.new").exists());
    egret.stop().await;

    let key = d.join("data/master.key");
    let old_key = std::fs::read(&key).expect("key");
    let egret_cli = Command::new(EGRET)
        .args(["vault", "rotate-key", "--config"])
        .arg(d.join("egret.yaml"))
        .output()
        .await
        .expect("rotate");
    let said = stdout(&egret_cli);
    assert!(said.contains("re-sealed 1 connection,"), "{said}");
    let new_key = std::fs::read(&key).expect("key");
    assert_ne!(old_key, new_key);

    // Simulate a crash after the commit, before the rename: old key in place, new pending.
    std::fs::write(d.join("data/master.key.new"), &new_key).expect("pending");
    chmod(&d.join("data/master.key.new"), 0o600);
    std::fs::write(&key, &old_key).expect("old back");
    let egret = Egret::start(d, "second.log").await;
    assert!(
        egret
            .log_text()
            .contains("finished an interrupted master key rotation")
    );
    assert_eq!(std::fs::read(&key).expect("key"), new_key);
    let pem = stdout(&egret.cli(&["ca", "export"], None).await);
    std::fs::write(d.join("egret-ca.pem"), format!("{pem}\n")).expect("write");
    let url = format!("https://api.test.local:{}/", upstream.addr.port());
    let (code, body) = egret
        .curl(&["-H", &format!("Authorization: Bearer {p}")], &url)
        .await;
    assert_eq!(code, 0, "{body}");
    assert_eq!(
        upstream.seen().last().expect("request")["headers"]["authorization"],
        "Bearer sk-rotated"
    );
    egret.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_and_a_reload_loses_nothing_acknowledged() {
    let (dir, _ca, _upstream) = setup().await;
    let d = dir.path().to_owned();
    let mut egret = Egret::start(&d, "first.log").await;
    let control = egret.control;
    let token = std::fs::read_to_string(d.join("data/admin.token")).expect("token");
    // Writers: one key per owner through the API; each 200 is an acknowledgement.
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers = (0..4).map(|w| {
        let (token, acks) = (token.clone(), acks.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let owner = format!("user:w{w}n{i}");
                let out = Command::new("curl")
                    .args([
                        "-s",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "--max-time",
                        "5",
                    ])
                    .args([
                        "-X",
                        "PUT",
                        "-H",
                        &format!("Authorization: Bearer {}", token.trim()),
                    ])
                    .args(["-H", "content-type: application/json"])
                    .args(["--data-binary", &format!("{{\"key\":\"sk-{w}-{i}\"}}")])
                    .arg(format!(
                        "http://{control}/v1/connections/openai/{owner}/key"
                    ))
                    .output()
                    .await
                    .expect("curl");
                if String::from_utf8_lossy(&out.stdout) != "200" {
                    return acked;
                }
                acked.push(owner);
                acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            acked
        })
    });
    let writers: Vec<_> = writers.collect();
    // Mid-reload: the policy file changes while the writes run.
    until("writes under way", Duration::from_secs(10), || async {
        acks.load(std::sync::atomic::Ordering::SeqCst) >= 8
    })
    .await;
    let yaml = std::fs::read_to_string(d.join("egret.yaml")).expect("yaml");
    std::fs::write(
        d.join("egret.yaml"),
        format!("{yaml}  - {{ id: extra, auth: api_key, egress: [extra.test.local] }}\n"),
    )
    .expect("write");
    until(
        "the reload, with the writes still running",
        Duration::from_secs(10),
        || async { egret.log_text().contains("policy reloaded") },
    )
    .await;
    egret.child.start_kill().expect("SIGKILL");
    let _ = egret.child.wait().await;
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    assert!(
        !acked.is_empty(),
        "some writes were acknowledged before the kill"
    );

    let egret = Egret::start(&d, "second.log").await;
    let listed = stdout(
        &egret
            .cli(&["connection", "list", "--connector", "openai"], None)
            .await,
    );
    for owner in &acked {
        assert!(
            listed.contains(owner.as_str()),
            "{owner} was acknowledged but is gone"
        );
    }
    egret.stop().await;
}

/// A second `egret serve` on a vault that one already holds says exactly that, with
/// the first one's pid, and nothing about restoring or moving the vault away (advice
/// that would make a user throw away every stored key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_vault_names_the_running_egret() {
    let (dir, _ca, _upstream) = setup().await;
    let d = dir.path();
    let first = Egret::start(d, "first.log").await;
    let pid = first.child.id().expect("pid");
    let err = serve_fails(d).await;
    assert!(err.contains("already running with the vault"), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(
        !err.contains("move it away") && !err.contains("restore"),
        "{err}"
    );
    // The first one is untouched and still serves.
    let listed = stdout(&first.cli(&["connection", "list"], None).await);
    assert!(!listed.contains("error"), "{listed}");
    first.stop().await;
}
