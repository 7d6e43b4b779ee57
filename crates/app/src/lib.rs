//! The composition root: the one place egret is assembled and started — the vault on
//! either backend, the CA, the proxy and the control plane sharing one policy, broker,
//! metrics registry, audit writer and clock, and every background task — and the
//! start-up commands that open the same things (`vault rotate-key`, `vault migrate`,
//! `ca init`).
//!
//! `start` is the entry ([`Egret::start`], [`Egret::stop`]) that `egret serve` and the
//! test harness both call, so the tests run what ships; `open` opens the vault, CA and
//! admin token (creating what a first start needs); `database` reaches the PostgreSQL
//! vault; `keys` reads and rotates the master
//! key; `secrets` reads what the policy's references point at; `assemble` wires both
//! planes from their parts; `tasks` starts and stops every background task the same way;
//! `reload` keeps the policy file in force; `migrate` moves a redb vault to PostgreSQL;
//! `ca` is the CA as commands see it; `ui_sessions` ends administrators' web UI
//! sessions when the admin token changes; `error` says why a start failed.
//!
//! It owns no behaviour of its own: no request handling, no routes, no storage format.
//! It must not read the environment or the command line (that is `crates/cli`).

mod assemble;
pub mod ca;
mod database;
mod error;
mod keys;
mod migrate;
mod open;
mod reload;
mod secrets;
mod start;
mod tasks;
mod ui_sessions;

pub use database::vault_place;
pub use error::AppError;
pub use keys::{Rotated, master_key, rotate_master_key};
pub use migrate::{Migrated, to_postgres};
pub use reload::watch;
pub use secrets::{configured_admin_token, read_secret, token_file};
pub use start::{Egret, Start};
pub use tasks::Stopped;
pub use ui_sessions::end_admin_sessions;
