//! Dev-only building blocks for egret's tests: a test CA and HTTPS upstreams on
//! 127.0.0.1:0 (`upstream`), an in-process egret with its own temporary CA and vault
//! (`proxy`), clients that CONNECT through it and trust its CA (`client`), the real OAuth
//! test server (`oauth_server`), an HTTP client that signs in on it as a browser would
//! (`browser`), real headless Chromium over WebDriver (`chromium`), a hostile upstream
//! that writes whatever raw answer a test scripts (`hostile`), and a webhook receiver
//! that keeps what it is sent (`receiver`), a small MCP server the upstream serves
//! (`mcp`), and an OpenID Connect identity provider for sign-in tests (`idp`).
//!
//! Everything binds loopback only and ends when dropped. It must never be a dependency
//! of the shipped binary, and never decides a test's outcome (assertions live in tests/).

pub mod aws;
pub mod browser;
pub mod chromium;
pub mod client;
pub mod hostile;
pub mod idp;
pub mod mcp;
pub mod oauth_server;
pub mod proxy;
pub mod receiver;
pub mod secret_stores;
pub mod upstream;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// Installs a test log subscriber once (level from `EGRET_TEST_LOG`, default off).
pub fn init_logs() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("EGRET_TEST_LOG").unwrap_or_else(|_| "off".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
