//! `egret serve`: open everything, bind both listeners, reload on change, stop cleanly.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use egret_app::{Assembled, Parts, Running};
use egret_proxy::Limits;
use tokio::net::TcpListener;
use tracing::info;

use crate::args::DEFAULT_CONFIG;
use crate::config::load_policy;
use crate::setup::open_everything;

/// `workers`: proxy worker threads; one per CPU when not set.
pub async fn run(config: &Path, workers: Option<NonZeroUsize>) -> Result<()> {
    let mut policy = load_policy(config)?;
    info!(source = %policy.source.display(), connectors = policy.connectors.len(), "policy loaded");
    let opened = open_everything(&policy)?;
    let upstream_tls = egret_tls::upstream_client_config(&policy.upstream.extra_ca)?;
    let proxy_addr = policy.proxy.listen;
    let control_addr = policy.control.listen;
    let proxy_listener = TcpListener::bind(proxy_addr).await.with_context(|| {
        format!("cannot listen on {proxy_addr} (proxy.listen); is another egret running?")
    })?;
    let control_listener = TcpListener::bind(control_addr)
        .await
        .with_context(|| format!("cannot listen on {control_addr} (control.listen)"))?;
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

    let watched =
        (config != Path::new(DEFAULT_CONFIG) || config.exists()).then(|| config.to_owned());
    let workers = workers
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN)
        .get();
    let mut running = Running::start(proxy, proxy_listener, workers, control, control_listener);
    running.watch_policy(watched, lifecycle, vault);
    info!(proxy = %proxy_addr, control = %control_addr, workers, "egret is ready");

    shutdown_signal().await;
    info!("shutting down: no new connections; draining in-flight requests");
    running.stop().await;
    audit.flush(std::time::Duration::from_secs(5));
    info!("stopped");
    Ok(())
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
