//! The command line, as clap structs. Every argument has a help line; a flag is offered
//! only on the commands it means something for (`--server` on those that talk to a
//! running egret, `--output` on those that list).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_CONFIG: &str = "config/egret.yaml";

#[derive(Parser)]
#[command(
    name = "egret",
    version,
    about = "Egress credential-injecting forward proxy for AI-agent sandboxes"
)]
pub struct Cli {
    /// Policy file. When the default path does not exist, `serve` runs the embedded default.
    #[arg(long, global = true, default_value = DEFAULT_CONFIG, env = "EGRET_CONFIG")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// How a command reaches a running egret.
#[derive(Args, Clone, Default)]
pub struct Remote {
    /// Control-plane URL of the running egret (default: http://<control.listen>, or
    /// EGRET_CONTROL_LISTEN when set).
    #[arg(long, global = true, env = "EGRET_SERVER")]
    pub server: Option<String>,
}

/// What a listing prints.
#[derive(ValueEnum, Clone, Copy, Default, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns with readable times, for people.
    #[default]
    Table,
    /// The API's JSON, field for field, for scripts.
    Json,
}

/// `--output table|json` on a listing command.
#[derive(Args, Clone, Copy, Default)]
pub struct Format {
    /// `table` (default) for people, `json` (the API's field names) for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy and the control plane (creates the CA, vault, master key and admin token on first start).
    Serve(ServeArgs),
    /// Is egret up, with which policy, vault and CA; connectors, connections by status,
    /// sandboxes; and what needs attention.
    Status {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        format: Format,
    },
    /// Exit 0 when the running egret answers /healthz, 1 otherwise (a container
    /// HEALTHCHECK; the image has no curl).
    Health {
        #[command(flatten)]
        remote: Remote,
    },
    /// The interception CA.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Connectors configured on the running server.
    Connector {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ConnectorCommand,
    },
    /// Users' connections (credentials) on the running server.
    Connection {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ConnectionCommand,
    },
    /// Placeholders handed to sandboxes.
    Placeholder {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: PlaceholderCommand,
    },
    /// Sandbox identities (`proxy.auth: basic`).
    Sandbox {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// Scoped API tokens (administrators): create, list, revoke.
    Token {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Requests held for a person's approval (rules with `action: approve`).
    Approval {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ApprovalCommand,
    },
    /// The audit log.
    Audit {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The vault file (run with `egret serve` stopped).
    #[command(subcommand)]
    Vault(VaultCommand),
    /// The web UI's sessions.
    #[command(subcommand)]
    Ui(UiCommand),
    /// Print the `export` lines a sandbox needs (proxy, CA bundle, one placeholder per
    /// connection of OWNER) and write the CA bundle they point to.
    SandboxEnv {
        #[command(flatten)]
        remote: Remote,
        /// `org` or `user:<id>`: whose connections the sandbox may use.
        #[arg(long)]
        owner: String,
        /// The sandbox's id (with `proxy.auth: basic`): issues its credentials and binds
        /// the placeholders to it. Default with proxy authentication: a new random id.
        #[arg(long)]
        sandbox: Option<String>,
        /// Lifetime of the minted placeholders (and of the sandbox credentials).
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Where to write the CA bundle (system roots + egret's CA).
        /// Default: `<ca.dir>/sandbox-ca-bundle.pem`.
        #[arg(long)]
        ca_bundle: Option<PathBuf>,
        /// The proxy URL as the sandbox reaches it. Default: `http://<proxy.listen>`.
        #[arg(long)]
        proxy_url: Option<String>,
    },
    /// Print a completion script for SHELL (e.g. `egret completions bash >
    /// /etc/bash_completion.d/egret`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Log format: `text` or `json`. Levels come from EGRET_LOG (default `info`).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Proxy worker threads, each an event loop with its own upstream pool
    /// (default: one per CPU; see the README's operations section).
    #[arg(long, env = "EGRET_WORKERS")]
    pub workers: Option<std::num::NonZeroUsize>,
    /// Where the proxy listens (`IP:PORT`), instead of the policy's `proxy.listen`.
    #[arg(long, env = "EGRET_PROXY_LISTEN", value_name = "IP:PORT")]
    pub proxy_listen: Option<SocketAddr>,
    /// Where the control plane listens (`IP:PORT`), instead of the policy's
    /// `control.listen`.
    #[arg(long, env = "EGRET_CONTROL_LISTEN", value_name = "IP:PORT")]
    pub control_listen: Option<SocketAddr>,
}

#[derive(Subcommand)]
pub enum UiCommand {
    /// Web UI sessions.
    #[command(subcommand)]
    Sessions(UiSessionsCommand),
}

#[derive(Subcommand)]
pub enum UiSessionsCommand {
    /// End every administrator's web UI session now, on every replica (after the admin
    /// token leaked, say; egret also does it by itself when it starts with a new token).
    /// With a redb vault, stop `egret serve` first.
    End,
}

#[derive(Subcommand)]
pub enum VaultCommand {
    /// Re-seal every record under a new master key, in one transaction, and replace the
    /// key file (`vault.master_key` must be `${file:PATH}`). Stop `egret serve` first.
    RotateKey,
    /// Copy this redb vault (every record, the CA from `ca.dir`, the audit log, webhook
    /// deliveries owed) into an empty PostgreSQL database, and verify the copy. Stop
    /// `egret serve` first; then point `vault` at the database (`backend: postgres`).
    Migrate {
        /// The target database, `postgres://user@host:5432/db` (`?sslmode=require` for TLS).
        #[arg(
            long,
            env = "EGRET_MIGRATE_TO",
            value_name = "URL",
            hide_env_values = true
        )]
        to: String,
    },
}

#[derive(Subcommand)]
pub enum CaCommand {
    /// Create the CA (ECDSA P-256; key file mode 0600). Refuses to overwrite one.
    Init {
        /// Directory for ca.pem and ca-key.pem (default: the policy's `ca.dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the CA certificate (PEM) for sandboxes to trust.
    Export,
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and summarize it; errors name file:line:col and what is
    /// expected, warnings name secrets that do not resolve now.
    Check {
        /// The file to check (default: `--config`).
        file: Option<PathBuf>,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum ConnectorCommand {
    /// List connectors (and those removed from the file whose connections are kept).
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Show one connector (secrets appear only as references, or masked).
    Get {
        /// The connector's id.
        id: String,
        #[command(flatten)]
        format: Format,
    },
    /// Create a connector from a JSON file holding one connector entry (secrets as
    /// values; they are stored sealed in the vault).
    Create {
        /// A JSON file with one connector entry, as in the policy file.
        file: PathBuf,
    },
    /// Enable a connector created through the control plane.
    Enable {
        /// The connector's id.
        id: String,
    },
    /// Disable it: no new connections; existing ones keep working.
    Disable {
        /// The connector's id.
        id: String,
    },
    /// Delete it: its connections, tokens and placeholders are erased at once.
    Remove {
        /// The connector's id.
        id: String,
    },
    /// Erase now what a connector removed from the policy file kept for its return
    /// (otherwise erased when `connectors_removed_retention` ends).
    Purge {
        /// The removed connector's id.
        id: String,
    },
    /// List the built-in vendor templates (`template:` in a connector) and their settings.
    Templates,
}

/// One connection: CONNECTOR, `--owner`, and `--name` when not `default`.
#[derive(Args)]
pub struct WhichConnection {
    /// The connector's id.
    pub connector: String,
    /// `org` or `user:<id>`.
    #[arg(long)]
    pub owner: String,
    /// Which of the owner's connections to the connector (`[a-z0-9_-]`); `default`
    /// when not given. Several need `multiple_connections: true` on the connector.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// List connections (never secrets).
    List {
        /// Only this connector's.
        #[arg(long)]
        connector: Option<String>,
        /// Only this owner's (`org` or `user:<id>`).
        #[arg(long)]
        owner: Option<String>,
        /// Only connections of this name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Connect an OAuth connection: prints the vendor's authorization URL to open in a
    /// browser (authorization code), or connects at once (client credentials).
    Connect {
        #[command(flatten)]
        which: WhichConnection,
    },
    /// Store a static key for CONNECTOR: typed at a prompt that does not echo, or piped
    /// on stdin (never on the command line). A connector with several inputs prompts for
    /// each (piped: one `INPUT=VALUE` per line).
    SetKey {
        #[command(flatten)]
        which: WhichConnection,
        /// Keep the value in an external secret store instead: `vault://MOUNT/PATH#FIELD`,
        /// `aws-sm://…`, `gcp-sm://…`, `op://…`; `INPUT=REFERENCE` for one input of
        /// several. Repeatable.
        #[arg(long = "ref", value_name = "[INPUT=]REFERENCE")]
        refs: Vec<String>,
    },
    /// Test a connection: one real, read-only request to the vendor with its credential
    /// (the connector's `test:`, or its template's identity request). Exit 1 when it
    /// fails.
    Test {
        #[command(flatten)]
        which: WhichConnection,
        #[command(flatten)]
        format: Format,
    },
    /// Change what people write on a connection: its description (shown to agents)
    /// and "connected as". An empty value clears it.
    Update {
        #[command(flatten)]
        which: WhichConnection,
        /// What the connection is for, e.g. "staging CRM, read only".
        #[arg(long)]
        description: Option<String>,
        /// Who or what it is connected as, when egret could not learn it.
        #[arg(long)]
        identity_label: Option<String>,
    },
    /// Print a single-use link that opens egret's Connections page as OWNER (for one
    /// connector when given), to send to the user.
    Link {
        /// Only this connector (default: every enabled connector).
        connector: Option<String>,
        /// `org` or `user:<id>`.
        #[arg(long)]
        owner: String,
        /// Only this connection name.
        #[arg(long)]
        name: Option<String>,
        /// How long the link works, e.g. `30m` (the default) or `2h`.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Disconnect: revokes an OAuth grant at the vendor where possible; the
    /// connection's placeholders stop working at once.
    Remove {
        #[command(flatten)]
        which: WhichConnection,
    },
}

#[derive(Subcommand)]
pub enum PlaceholderCommand {
    /// Mint a placeholder for a connection and print it.
    Mint {
        #[command(flatten)]
        which: WhichConnection,
        /// Lifetime such as `8h` or `30m`; at most `limits.max_ttl` (default 30 days).
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Bind to one sandbox: only its requests may use the placeholder (needs
        /// `proxy.auth: basic`).
        #[arg(long)]
        sandbox: Option<String>,
    },
    /// List live placeholders: their hint (`egp_AbCd…`), connection, sandbox and expiry.
    List {
        /// Only this connector's.
        #[arg(long)]
        connector: Option<String>,
        /// Only this owner's (`org` or `user:<id>`).
        #[arg(long)]
        owner: Option<String>,
        /// Only those bound to this sandbox.
        #[arg(long)]
        sandbox: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Revoke a placeholder at once.
    Revoke {
        /// The whole placeholder (`egp_…`).
        placeholder: String,
    },
}

#[derive(Subcommand)]
pub enum SandboxCommand {
    /// List sandbox identities (never their secrets).
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Revoke a sandbox: its credentials and the placeholders bound to it stop at once.
    Revoke {
        /// The sandbox's id.
        id: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once (keep it: egret stores only its hash).
    Create {
        /// Its name, as the audit log shows it (`token:<name>`).
        name: String,
        /// `admin`, `auditor`, `platform` or `user`.
        #[arg(long)]
        role: String,
        /// For a `user` token: the owner it acts for (`user:<id>`).
        #[arg(long)]
        owner: Option<String>,
        /// How long it lives, e.g. `90d`; without it, until revoked.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Revoke a token: refused by every replica at once.
    Revoke { name: String },
}

#[derive(Subcommand)]
pub enum ApprovalCommand {
    /// List approvals, newest first.
    List {
        /// `pending` (the default), `approved`, `denied`, `expired` or `all`.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Only this connector's.
        #[arg(long)]
        connector: Option<String>,
        /// Only this owner's (`org` or `user:<id>`).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Everything about one approval: the request (its body preview), the rule, the decision.
    Show {
        /// The approval's id (`apr_…`).
        id: String,
        #[command(flatten)]
        format: Format,
    },
    /// Approve a held request: it is sent (or its retry goes through).
    Approve {
        id: String,
        /// `once` (this request) or a duration such as `1h` (every request of the same
        /// rule, connection and sandbox until then).
        #[arg(long = "for", default_value = "once")]
        for_: String,
        /// A note for the audit log and the agent.
        #[arg(long)]
        note: Option<String>,
    },
    /// Deny a held request: the agent is told, with the note.
    Deny {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print audit events, oldest first.
    Tail {
        /// Keep printing new events as they arrive.
        #[arg(long)]
        follow: bool,
        /// Only events of this connector.
        #[arg(long)]
        connector: Option<String>,
        /// Only events of this owner.
        #[arg(long)]
        owner: Option<String>,
        /// `table` (default) or `json`: one JSON object per line, as the API has them.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}
