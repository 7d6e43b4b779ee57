//! Policy reload on file change and on SIGHUP. A file that fails is refused whole and the
//! policy in force stays; the refusal is logged, audited (`policy.reload_refused`, with
//! `file:line:col`), counted (`egret_policy_reloads_total{result}`) and kept for `status`
//! and the Activity page until a reload succeeds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use egret_policy::ListenOverride;
use egret_service::Lifecycle;
use egret_vault::Vault;
use tracing::{error, info, warn};

/// How often the file's modification time and size are compared.
const POLL: Duration = Duration::from_secs(1);

/// Reloads the policy file at `path` whenever it changes (checked every second) or
/// SIGHUP arrives, until the task is dropped.
/// `listen` (flags, environment) is applied to every file read, as at start-up.
pub fn watch(
    path: PathBuf,
    listen: ListenOverride,
    lifecycle: Arc<Lifecycle>,
    vault: Arc<Vault>,
    metrics: Arc<egret_metrics::Metrics>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    // The file as it is now, before egret says it is ready: a change written the moment
    // after is seen (taken inside the task, it could be missed while the task waited to
    // be first polled).
    let mut seen = stamp(&path);
    // Listened for from here too: a SIGHUP right after the ready line reloads instead of
    // ending the process (its default action).
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP; reload on file change only");
            None
        }
    };
    async move {
        metrics.policy_applied(&file_hash(&path), vault.clock().unix(), false);
        loop {
            let by_signal = tokio::select! {
                () = tokio::time::sleep(POLL) => false,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            };
            let now = stamp(&path);
            if !by_signal && now == seen {
                continue;
            }
            seen = now;
            reload(
                &path,
                listen,
                &lifecycle,
                &vault,
                &metrics,
                if by_signal { "SIGHUP" } else { "file change" },
            );
        }
    }
}

fn reload(
    path: &std::path::Path,
    listen: ListenOverride,
    lifecycle: &Lifecycle,
    vault: &Arc<Vault>,
    metrics: &egret_metrics::Metrics,
    why: &str,
) {
    let refused = |e: String| {
        error!(
            reason = why,
            "policy reload refused, the previous policy stays in force: {e}"
        );
        metrics.policy_refused();
        lifecycle.reload_refused(e.clone());
        let vault = vault.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = vault.audit("policy.reload_refused", None, None, Some(e)) {
                warn!(error = %e, "cannot write the audit event");
            }
        });
    };
    match egret_policy::load(path) {
        Ok(mut new) => {
            new.listen_at(listen);
            let old = lifecycle.live().load();
            if new.moves_listeners(&old) {
                warn!("listen addresses changed; they take effect after a restart");
            }
            // Until then the policy in force says where egret really listens.
            new.bound_to(old.proxy.listen, old.control.listen);
            if new.upstream.extra_ca != old.upstream.extra_ca
                || new.ca.dir != old.ca.dir
                || new.vault.path != old.vault.path
            {
                warn!("ca, vault or upstream.extra_ca changed; they take effect after a restart");
            }
            let detail = match new.connectors.len() {
                1 => "1 connector in the file".to_owned(),
                n => format!("{n} connectors in the file"),
            };
            drop(old);
            // Connectors gone from the file are refused at once; their connections are
            // kept for the retention period (see `Lifecycle`).
            if let Err(e) = lifecycle.install(new, egret_service::Install::Reload) {
                refused(format!("{}: {e}", path.display()));
                return;
            }
            metrics.policy_applied(&file_hash(path), vault.clock().unix(), true);
            info!(path = %path.display(), reason = why, %detail, "policy reloaded");
            let vault = vault.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = vault.audit("policy.reload", None, None, Some(detail)) {
                    warn!(error = %e, "cannot write the audit event");
                }
            });
        }
        Err(e) => refused(e.to_string()),
    }
}

/// The SHA-256 of the policy file's text (which policy is in force, for the metric).
fn file_hash(path: &std::path::Path) -> String {
    std::fs::read(path)
        .map(|bytes| egret_vault::sha256_hex(&String::from_utf8_lossy(&bytes)))
        .unwrap_or_default()
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
