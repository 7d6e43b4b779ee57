//! `egret serve`: open everything, bind both listeners, reload on change, stop cleanly.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use arc_swap::ArcSwap;
use egret_app::{Assembled, Parts, Running};
use egret_policy::ListenOverride;
use egret_proxy::Limits;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::args::{DEFAULT_CONFIG, ServeArgs};
use crate::config::load_policy;
use crate::setup::open_everything;

/// `args`: worker threads (one per CPU when not set) and listen addresses that replace
/// the file's.
pub async fn run(config: &Path, args: &ServeArgs) -> Result<()> {
    let mut policy = load_policy(config)?;
    let listen = ListenOverride {
        proxy: args.proxy_listen,
        control: args.control_listen,
    };
    policy.listen_at(listen);
    info!(source = %policy.source.display(), connectors = policy.connectors.len(), "policy loaded");
    for warning in policy.unresolved_secrets() {
        warn!("{warning}");
    }
    let opened = open_everything(&policy)?;
    let upstream_tls = egret_tls::upstream_client_config(&policy.upstream.extra_ca)?;
    let proxy_addr = policy.proxy.listen;
    let control_addr = policy.control.listen;
    let proxy_listener = bind(
        proxy_addr,
        "proxy.listen",
        "--proxy-listen",
        "EGRET_PROXY_LISTEN",
    )
    .await?;
    let control_listener = bind(
        control_addr,
        "control.listen",
        "--control-listen",
        "EGRET_CONTROL_LISTEN",
    )
    .await?;
    // A `:0` port is the system's choice: from here on egret says where it really is.
    let proxy_addr = proxy_listener.local_addr()?;
    let control_addr = control_listener.local_addr()?;
    policy.bound_to(proxy_addr, control_addr);
    let vault = Arc::new(opened.vault);
    let policy = Arc::new(ArcSwap::from_pointee(policy));
    let Assembled {
        proxy,
        control,
        audit,
        lifecycle,
    } = egret_app::assemble(Parts {
        policy: policy.clone(),
        vault: vault.clone(),
        ca: opened.ca,
        upstream_tls,
        limits: Limits::default().with_settings(&policy.load().limits),
        admin_token: opened.admin_token,
        clock: egret_clock::Clock::system(),
    })?;

    // Replicas sharing a database: another's change to the API connectors puts a new
    // policy in force here too, and every change reaches this replica's memory.
    let l = lifecycle.clone();
    vault.on_connectors_changed(move || {
        if let Err(e) = l.refresh() {
            warn!(error = %e, "cannot install another replica's connector change; it takes effect at the next change");
        }
    });
    vault.watch_changes();

    let watched =
        (config != Path::new(DEFAULT_CONFIG) || config.exists()).then(|| config.to_owned());
    let workers = args
        .workers
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN)
        .get();
    let mut running = Running::start(proxy, proxy_listener, workers, control, control_listener);
    running.watch_policy(watched, listen, lifecycle, vault);
    info!(proxy = %proxy_addr, control = %control_addr, workers, "egret is ready");

    shutdown_signal().await;
    info!("shutting down: no new connections; draining in-flight requests");
    running.stop().await;
    audit.flush(std::time::Duration::from_secs(5));
    info!("stopped");
    Ok(())
}

/// Binds `addr`; a failure names the setting, flag and variable that change it.
async fn bind(addr: SocketAddr, key: &str, flag: &str, var: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => "the port is in use (another egret, or another program)".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".to_owned(),
            std::io::ErrorKind::AddrNotAvailable => "no interface of this machine has that address".to_owned(),
            _ => e.to_string(),
        };
        anyhow::anyhow!(
            "cannot listen on {addr}: {why}; choose another address with `{key}` in the policy file, {flag}, or {var}"
        )
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
