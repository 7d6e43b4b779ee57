//! The command line, as clap structs.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Control-plane URL for client commands (default: http://<control.listen>).
    #[arg(long, global = true, env = "EGRET_SERVER")]
    pub server: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy and the control plane (creates the CA, vault, master key and admin token on first start).
    Serve {
        /// Log format: `text` or `json`. Levels come from EGRET_LOG (default `info`).
        #[arg(long, default_value = "text")]
        log_format: String,
        /// Proxy worker threads, each an event loop with its own upstream pool
        /// (default: one per CPU; see the README's operations section).
        #[arg(long, env = "EGRET_WORKERS")]
        workers: Option<std::num::NonZeroUsize>,
    },
    /// The interception CA.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Connectors configured on the running server.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Users' connections (credentials) on the running server.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Placeholders handed to sandboxes.
    #[command(subcommand)]
    Placeholder(PlaceholderCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The vault file (run with `egret serve` stopped).
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Print the `export` lines a sandbox needs (proxy, CA bundle, one placeholder per
    /// connection of OWNER) and write the CA bundle they point to.
    SandboxEnv {
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
}

#[derive(Subcommand)]
pub enum VaultCommand {
    /// Re-seal every record under a new master key, in one transaction, and replace the
    /// key file (`vault.master_key` must be `${file:PATH}`). Stop `egret serve` first.
    RotateKey,
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
    /// Validate a policy file and print its connectors as resolved (templates filled in);
    /// errors name file:line:col and what is expected.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
pub enum ConnectorCommand {
    /// List connectors.
    List,
    /// Show one connector (secrets appear only as references, or masked).
    Get { id: String },
    /// Create a connector from a JSON file holding one connector entry (secrets as
    /// values; they are stored sealed in the vault).
    Create { file: PathBuf },
    /// Enable a connector created through the control plane.
    Enable { id: String },
    /// Disable it: no new connections; existing ones keep working.
    Disable { id: String },
    /// Delete it: its connections, tokens and placeholders are erased at once.
    Remove { id: String },
    /// Erase now what a connector removed from the policy file kept for its return
    /// (otherwise erased when `connectors_removed_retention` ends).
    Purge { id: String },
    /// List the built-in vendor templates (`template:` in a connector) and their settings.
    Templates,
}

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// List connections (never secrets).
    List {
        #[arg(long)]
        connector: Option<String>,
        #[arg(long)]
        owner: Option<String>,
    },
    /// Connect an OAuth connection: prints the vendor's authorization URL to open in a
    /// browser (authorization code), or connects at once (client credentials).
    Connect {
        connector: String,
        /// `org` or `user:<id>`.
        #[arg(long)]
        owner: String,
    },
    /// Store a static key for CONNECTOR, read from stdin (never from the command line).
    SetKey {
        connector: String,
        /// `org` or `user:<id>`.
        #[arg(long)]
        owner: String,
    },
    /// Disconnect: revokes an OAuth grant at the vendor where possible; the
    /// connection's placeholders stop working at once.
    Remove {
        connector: String,
        #[arg(long)]
        owner: String,
    },
}

#[derive(Subcommand)]
pub enum PlaceholderCommand {
    /// Mint a placeholder for a connection and print it.
    Mint {
        connector: String,
        #[arg(long)]
        owner: String,
        /// Lifetime such as `8h` or `30m`; default: until revoked.
        #[arg(long)]
        ttl: Option<String>,
        /// Bind to one sandbox: only its requests may use the placeholder (needs
        /// `proxy.auth: basic`).
        #[arg(long)]
        sandbox: Option<String>,
    },
    /// Revoke a placeholder.
    Revoke { placeholder: String },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print audit events as JSON lines.
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
    },
}
