//! `egret serve`: open everything, bind both listeners, reload on change, stop cleanly.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use egret_control::{ControlState, Running};
use egret_proxy::{Limits, Proxy};
use egret_tls::LeafCache;
use tokio::net::TcpListener;
use tracing::info;

use crate::args::DEFAULT_CONFIG;
use crate::config::load_policy;
use crate::setup::open_everything;

pub async fn run(config: &Path) -> Result<()> {
    let policy = load_policy(config)?;
    info!(source = %policy.source.display(), connectors = policy.connectors.len(), "policy loaded");
    let opened = open_everything(&policy)?;
    let limits = Limits::default();
    let metrics = Arc::new(egret_metrics::Metrics::new());
    let leaves = Arc::new(
        LeafCache::new(opened.ca, limits.leaf_cache_capacity)?
            .with_counters(metrics.leaf_hits.clone(), metrics.leaf_misses.clone()),
    );
    let upstream_tls = egret_tls::upstream_client_config(&policy.upstream.extra_ca)?;
    let proxy_addr = policy.proxy.listen;
    let control_addr = policy.control.listen;
    let proxy_listener = TcpListener::bind(proxy_addr).await.with_context(|| {
        format!("cannot listen on {proxy_addr} (proxy.listen); is another egret running?")
    })?;
    let control_listener = TcpListener::bind(control_addr)
        .await
        .with_context(|| format!("cannot listen on {control_addr} (control.listen)"))?;
    let vault = Arc::new(opened.vault);
    let policy = {
        let live = Arc::new(ArcSwap::from_pointee(policy.clone()));
        // API connectors join the file's; nothing is erased at start-up.
        egret_control::lifecycle::install(policy, &live, &vault, false)?;
        live
    };
    let oauth_http = egret_oauth::HttpClient::new(
        policy.clone(),
        upstream_tls.clone(),
        std::time::Duration::from_secs(10),
    );
    let audit = egret_vault::AuditWriter::start(vault.clone());
    let broker =
        egret_oauth::Broker::new(policy.clone(), vault.clone(), oauth_http, metrics.clone());
    let proxy = Arc::new(Proxy::new(
        policy.clone(),
        vault.clone(),
        leaves,
        upstream_tls,
        limits,
        egret_proxy::Services {
            broker: broker.clone(),
            metrics: metrics.clone(),
            audit: audit.clone(),
        },
    ));
    let control = Arc::new(ControlState {
        policy: policy.clone(),
        vault: vault.clone(),
        broker,
        metrics,
        admin_token: opened.admin_token,
    });

    let watched =
        (config != Path::new(DEFAULT_CONFIG) || config.exists()).then(|| config.to_owned());
    let reloader = tokio::spawn(crate::reload::watch(watched, policy, vault));
    let running = Running::start(proxy, proxy_listener, control, control_listener);
    info!(proxy = %proxy_addr, control = %control_addr, "egret is ready");

    shutdown_signal().await;
    info!("shutting down: no new connections; draining in-flight requests");
    reloader.abort();
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
