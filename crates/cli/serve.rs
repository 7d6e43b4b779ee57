//! `egret serve`: start egret (through `egret-app`, as the tests do) and stop it cleanly
//! on SIGTERM or Ctrl-C.

use std::num::NonZeroUsize;
use std::path::Path;

use anyhow::Result;
use egret_app::{Egret, Start};
use egret_policy::ListenOverride;
use tracing::info;

use crate::args::{DEFAULT_CONFIG, ServeArgs};
use crate::config::load_policy;

/// `args`: worker threads (one per CPU when not set) and listen addresses that replace
/// the file's.
pub async fn run(config: &Path, args: &ServeArgs) -> Result<()> {
    let policy = load_policy(config)?;
    info!(source = %policy.source.display(), connectors = policy.connectors.len(), "policy loaded");
    let listen = ListenOverride {
        proxy: args.proxy_listen,
        control: args.control_listen,
    };
    let workers = args
        .workers
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN)
        .get();
    let mut start = Start::new(policy).listen(listen).workers(workers);
    // The embedded default policy has no file to watch.
    if config != Path::new(DEFAULT_CONFIG) || config.exists() {
        start = start.watch(config.to_owned());
    }
    let egret = Egret::start(start).await?;
    info!(proxy = %egret.proxy_addr, control = %egret.control_addr, workers, "egret is ready");

    shutdown_signal().await;
    info!("shutting down: no new connections; draining in-flight requests");
    egret.stop().await;
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
