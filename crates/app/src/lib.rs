//! The composition root: builds a running egret — the proxy and the control plane,
//! sharing one policy, vault, token broker, metrics registry, audit writer and clock —
//! and keeps its policy file in force.
//!
//! `running` assembles both planes from their parts ([`assemble`]) and starts and stops
//! them on their listeners ([`Running`]); `reload` watches the policy file (and SIGHUP)
//! and installs each new version through the control plane's `Lifecycle`. `egret serve`
//! and the test harness both start egret through here, so the tests run what ships.
//!
//! It owns no behaviour of its own: no request handling, no routes, no storage. It must
//! not read the environment or the command line (that is `crates/cli`).

mod reload;
mod running;

pub use reload::watch;
pub use running::{AssembleError, Assembled, Parts, Running, assemble};
