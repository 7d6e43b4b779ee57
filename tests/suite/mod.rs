//! One module per concern. `harness` is what they stand on; the rest are tests, and
//! none imports another. Modules named `e2e*` drive the real `egret` binary; the
//! others run egret in-process (`harness::Fixture`).

/// Fixtures and clients: in-process egret, the real binary, the API, an OAuth server.
mod harness;

/// Approvals: a held request released or refused by a person, through the API.
mod approvals;
/// The audit log: what is recorded for each decision and change, and what never is.
mod audit;
/// AWS SigV4: the real boto3 through egret with placeholder keys, re-signed with the real ones.
mod aws;
/// Budgets per connection: requests per window and in flight, the webhook, the listing.
mod budgets;
/// CONNECT: refusals before a tunnel, tunnels to allowed hosts, timeouts, bad input.
mod connect;
/// Connectors created, changed and deleted through the control plane.
mod connectors;
/// The admin API: token, keys, placeholders, connections, bad input.
mod control;
/// `http://egret.internal/connections`: what placeholders stand for, asked through the proxy.
mod discovery;
/// The binary end to end: first start, curl over HTTP/1.1 and HTTP/2, reload, CLI.
mod e2e;
/// The binary's command line: flags, output formats, status, health, completions.
mod e2e_cli;
/// The binary's connector commands.
mod e2e_connectors;
/// The binary with trace logs: no secret in any output, log, metric, audit or file.
mod e2e_hygiene;
/// The container image: built from scratch, its entrypoint run under chroot.
mod e2e_image;
/// The binary with a real OAuth server: connect, refresh, SIGKILL, disconnect.
mod e2e_oauth;
/// `egret sandbox-env`: what a sandbox is given, and that it works as given.
mod e2e_sandbox_env;
/// The binary's vault: permissions, wrong keys, crash safety, key rotation.
mod e2e_vault;
/// Hostile upstreams: compressed, renamed and malformed answers never bring a key back.
mod hostile;
/// Several values per connection and HMAC signing: each input in its own field.
mod inputs;
/// Interception: the swap, host binding, HTTP/1.1 and HTTP/2, pooling, policy changes.
mod intercept;
/// Nothing leaks back: echoed credentials replaced in answers, disguised placeholders.
mod leaks;
/// Start, graceful shutdown and the vault at rest.
mod lifecycle;
/// Limits: head size, header count, connections, rate limits.
mod limits;
/// Many requests over many connections without an error.
mod load;
/// An MCP server's tools: calls decided by name, lists filtered, bad bodies refused.
mod mcp;
/// Prometheus metrics.
mod metrics;
/// Named connections: several per owner where a connector allows it, one elsewhere.
mod named;
/// OAuth connections against a real authorization server.
mod oauth;
/// OAuth failure states: token endpoint down, slow, revoked grants.
mod oauth_failures;
/// Two replicas on one PostgreSQL database: shared state, changes heard, renewal once.
mod replicas;
/// A connector's request settings: base headers, user agent, timeout, retries.
mod request_settings;
/// Request rules: read-only connectors, method/path/query/body rules, refused unsent.
mod rules;
/// Proxy authentication: sandbox identities and bound placeholders.
mod sandboxes;
/// External secret stores: Vault KV v2, AWS Secrets Manager, Google Secret Manager, 1Password.
mod secret_sources;
/// Sign-in with the organisation's identity provider: roles, refusals that say why.
mod sign_in;
/// No SSRF: IP literals, private ranges, DNS answers checked where they are dialled.
mod ssrf;
/// Big bodies stream both ways with flat memory (measured in the egret process).
mod streaming;
/// Scoped API tokens and roles: each role's routes, 403 naming the role, revocation.
mod tokens;
/// The web UI's pages over HTTP: sign-in, Connector Settings, headers, CSRF.
mod ui;
/// Webhooks: signed events about connections, delivered at least once.
mod webhooks;
/// WebSocket upgrades through the swap.
mod websocket;
