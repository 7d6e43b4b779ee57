//! Every refusal egret gives, one constructor each: its status, its code and the
//! sentence that says what happened and what to do.

use http::StatusCode;

use super::{Code, Refusal};

impl Refusal {
    /// A host the policy does not let out. The sandbox is not handed the list of
    /// allowed hosts; it is told which connector names the host on another port, if
    /// one does, else where the operator allows hosts.
    pub fn egress_denied(host: &str, port: u16, policy: &egret_policy::Policy) -> Self {
        let elsewhere = policy.allows_elsewhere(host, port);
        let hint = match elsewhere {
            Some((c, entry)) => format!(
                "connector {} allows {entry}, not port {port}; use that port, or ask the operator to add {host}:{port} to its egress",
                c.id
            ),
            None => "if the sandbox needs it, ask the operator to add it to network.allow (tunneled untouched) or to a connector's egress (credentials injected)".to_owned(),
        };
        let mut r = Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!("egret does not allow traffic to {host}:{port}; {hint}."),
        )
        .with("host", host)
        .short(format!("{host} is not an allowed host"));
        if let Some((c, _)) = elsewhere {
            r = r.with("connector", c.id.as_str());
        }
        r
    }

    /// The destination is egret itself: its proxy, or its control plane and web UI.
    pub fn own_address(host: &str, own: &egret_outbound::OwnAddress) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!(
                "egret does not allow traffic to {host}: {own}. A sandbox may never reach egret's own control plane or proxy, whatever network.allow or upstream.resolve say."
            ),
        )
        .with("host", host)
        .short(format!("{host} is egret itself"))
    }

    pub fn ip_literal(host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!("egret does not allow connections to the IP address {host}; connect by host name to a host the policy allows, or ask the operator to add the address or its CIDR block to network.allow."),
        )
        .with("host", host)
    }

    pub fn private_address(host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!("{host} resolves to a private, loopback or link-local address, which egret refuses (network.deny_private_ranges); use a public host, or have the operator map it in upstream.resolve."),
        )
        .with("host", host)
    }

    pub fn host_mismatch(expected: &str, got: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::HostMismatch,
            format!("this tunnel was opened to {expected} but the request names {got}; send each request through a tunnel to its own host (CONNECT, TLS SNI and Host must agree)."),
        )
        .with("host", expected)
    }

    pub fn placeholder_unknown() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderUnknown,
            "the placeholder on this request is unknown, expired or revoked; ask for a new one (egret placeholder mint) and use it instead.".to_owned(),
        )
        .about_connection()
    }

    /// The placeholder's connector left the policy; its connections are kept, refused,
    /// until it returns or its retention ends.
    pub fn connector_removed(connector: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::ConnectorRemoved,
            format!("connector {connector} is no longer in egret's policy, so its credential is not sent; ask the operator to restore the connector (its connections are kept for a while) or to give you another one."),
        )
        .with("connector", connector)
        .short(format!("connector {connector} was removed from the policy"))
        .about_connection()
    }

    pub fn placeholder_wrong_host(connector: &str, host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderWrongHost,
            format!("the placeholder belongs to connector {connector}, which may not send its credential to {host}; send it only to that connector's egress hosts."),
        )
        .with("connector", connector)
        .with("host", host)
        .about_connection()
    }

    pub fn placeholder_misplaced(connector: &str, field: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderMisplaced,
            format!("a placeholder of connector {connector} was found in {field}, where egret does not put credentials; send it in the Authorization header (or the connector's configured header or query parameter)."),
        )
        .with("connector", connector)
        .about_connection()
    }

    pub fn placeholder_plain_http() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderPlainHttp,
            "this plain-http request carries a placeholder, and egret never puts credentials on unencrypted requests; use https:// for this host.".to_owned(),
        )
    }

    pub fn https_only(host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!("{host} is a connector host and egret reaches it over https only; use https://{host}/ instead."),
        )
        .with("host", host)
    }

    pub fn bad_request(what: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Code::BadRequest,
            format!(
                "{what}; send an absolute-form http:// request or CONNECT host:port to this proxy."
            ),
        )
    }

    pub fn upstream_unreachable(host: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::UpstreamUnreachable,
            format!(
                "egret could not reach {host} ({why}); check that the host is up, or retry later."
            ),
        )
        .with("host", host)
    }

    pub fn upstream_timeout(host: &str, what: &str) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            Code::UpstreamTimeout,
            format!("{host} did not {what} in time; retry later or check the upstream."),
        )
        .with("host", host)
    }

    /// The upstream compressed an answer to a request that carried a credential, though
    /// egret asked for `identity`: it cannot be scanned for an echoed credential.
    pub fn response_unscannable(host: &str, encoding: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::ResponseUnscannable,
            format!("{host} answered with a {encoding}-encoded body although egret asked for an uncompressed one; egret must check answers to requests that carry a credential and cannot check this one, so it withheld it. Ask the operator to report the upstream, or send the request without a placeholder."),
        )
        .with("host", host)
    }

    /// An MCP server's list of tools egret must filter (to the tools a call could pass)
    /// but cannot: not JSON-RPC it can read, or too big.
    pub fn tools_list_unfilterable(host: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::ResponseUnscannable,
            format!("{host} answered a tools/list request with {why}; egret shows an agent only the tools its connector allows and cannot filter this answer, so it withheld it. Ask the operator to check the MCP server."),
        )
        .with("host", host)
    }

    /// An upgrade egret cannot watch: a protocol other than WebSocket, or WebSocket with
    /// an extension (compression) the upstream took though egret did not offer it.
    pub fn upgrade_unscannable(host: &str, what: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::ResponseUnscannable,
            format!("the upgrade to {host} {what}, which egret cannot scan; egret must check what comes back to requests that carry a credential (or to a connector host that scans all answers), so it refused the upgrade. Send it without a placeholder, or ask the operator about the connector's scan_answers."),
        )
        .with("host", host)
    }

    /// The connector's `rate_limit` is used up for now.
    pub fn rate_limited(connector: &str, retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let mut r = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::RateLimited,
            format!("connector {connector} allows only so many requests at a time and this one is over its rate limit; retry after {seconds} s."),
        )
        .with("connector", connector)
        .with("retry_after", seconds);
        r.retry_after = Some(seconds);
        r
    }

    /// The proxy holds as many sandbox connections as it may (`limits.max_client_connections`).
    pub fn too_many_connections() -> Self {
        let mut r = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::TooManyConnections,
            "egret is serving as many connections as it is configured for; close idle connections or retry in a moment.".to_owned(),
        );
        r.retry_after = Some(1);
        r
    }

    /// Proxy authentication is on and the sandbox did not present valid credentials.
    pub fn proxy_auth_required(why: &str) -> Self {
        Self::new(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Code::ProxyAuthRequired,
            format!(
                "{why}; send Proxy-Authorization: Basic <sandbox-id>:<secret> (the proxy URL `egret sandbox-env --sandbox ID` prints carries it)."
            ),
        )
    }

    /// A placeholder bound to one sandbox, sent from another (or from none).
    pub fn placeholder_wrong_sandbox(connector: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderWrongSandbox,
            format!("this {connector} placeholder belongs to another sandbox and was not used; mint one for this sandbox (`egret sandbox-env --sandbox ID`)."),
        )
        .with("connector", connector)
        .about_connection()
    }

    /// The user's grant is gone (revoked, expired refresh token): only they can fix it.
    pub fn connection_needs_reauth(conn: &egret_vault::ConnectionId) -> Self {
        let (connector, owner) = (&conn.connector, conn.owner.as_str());
        let which = if conn.name.is_default() {
            String::new()
        } else {
            format!(" (`{}`)", conn.name)
        };
        let flag = conn.name.flag();
        let refusal = Self::new(
            StatusCode::UNAUTHORIZED,
            Code::ConnectionNeedsReauth,
            format!("the connection of {owner} to {connector}{which} is no longer authorized by the vendor; the user must connect again (`egret connection connect {connector} --owner {owner}{flag}`), then retry."),
        )
        .with("connector", connector.as_str())
        .with("owner", owner);
        let refusal = if conn.name.is_default() {
            refusal
        } else {
            refusal.with("name", conn.name.as_str())
        };
        refusal.about_connection()
    }

    /// The vendor's token endpoint failed while the token had to be renewed.
    pub fn token_refresh_failed(connector: &str, timed_out: bool, why: &str) -> Self {
        let status = if timed_out {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::BAD_GATEWAY
        };
        Self::new(
            status,
            Code::TokenRefreshFailed,
            format!("the access token for {connector} expired and the vendor's token endpoint failed to renew it ({why}); the request was not sent. Retry in a little while."),
        )
        .with("connector", connector)
        .about_connection()
    }

    /// A renewed token could not be stored (full disk, vault error): egret's own failure,
    /// not the vendor's, and the request was not sent.
    pub fn credentials_not_stored(connector: &str, why: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            format!("egret renewed the access token for {connector} but could not store it ({why}), so the request was not sent. This is a fault in egret's vault, not at the vendor: retry shortly, and ask the operator to check egret's log and the vault's disk."),
        )
        .with("connector", connector)
    }

    /// A request to an AWS connector's host signed otherwise than with the placeholder
    /// keys egret gave, or a signature or signed body egret cannot read.
    pub fn signature_invalid(connector: &str, why: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::SignatureInvalid,
            format!("the request to connector {connector} cannot be signed by egret: {why}. Nothing was sent."),
        )
        .with("connector", connector)
        .about_connection()
    }

    /// A value kept in an external secret store could not be fetched, and no earlier
    /// value may stand in for it. Names the source, never its token.
    pub fn secret_source_failed(connector: &str, source: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::SecretSourceFailed,
            format!("the credential of connector {connector} is kept in the secret source `{source}`, which egret could not read ({why}); nothing was sent. Retry later, or ask the operator to check the source."),
        )
        .with("connector", connector)
        .with("source", source)
        .about_connection()
    }

    /// The connection has no value for the input this placeholder stands for.
    pub fn input_missing(connector: &str, input: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderUnknown,
            format!("the connection of connector {connector} holds no value for its input `{input}`; its owner must store the key again with every input."),
        )
        .with("connector", connector)
        .with("input", input)
        .about_connection()
    }

    /// egret failed at something of its own (its store, a task): not the sandbox's fault
    /// nor the vendor's, and nothing was sent.
    pub fn internal(what: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            format!(
                "egret could not finish this request: {what}. Nothing was sent; retry shortly, and ask the operator to check egret's log if it persists."
            ),
        )
    }

    /// The connector's request rules (or `access: read_only`) do not let this request
    /// use its credential. Says which rule, why, and what is allowed, so an agent can
    /// correct itself.
    pub fn request_denied(connector: &str, rule: &str, reason: &str, allowed: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::RequestDenied,
            format!("connector {connector} does not let an agent make this request: {reason} (rule {rule}). {allowed} Nothing was sent."),
        )
        .with("connector", connector)
        .with("rule", rule)
        .with("reason", reason)
        .with("allowed", allowed)
    }

    /// A rule holds the request for a person's approval and nobody decided within the
    /// hold. The agent shows its user `approval_url` and retries the same request.
    pub fn approval_pending(
        connector: &str,
        id: &str,
        retry_after: u64,
        url: &str,
        reason: &str,
    ) -> Self {
        let mut r = Self::new(
            StatusCode::FORBIDDEN,
            Code::ApprovalPending,
            format!("connector {connector} needs a person's approval for this request ({reason}) and it was not given yet; ask the user to approve it at {url}, then send the same request again (after {retry_after} s). Nothing was sent."),
        )
        .with("connector", connector)
        .with("approval_id", id)
        .with("approval_url", url)
        .with("reason", reason)
        .with("retry_after", retry_after);
        r.retry_after = Some(retry_after);
        r
    }

    /// A person denied the request held for approval.
    pub fn approval_denied(
        connector: &str,
        id: &str,
        by: Option<&str>,
        note: Option<&str>,
    ) -> Self {
        let who = by.unwrap_or("the approver");
        let why = note.map(|n| format!(": \"{n}\"")).unwrap_or_default();
        Self::new(
            StatusCode::FORBIDDEN,
            Code::ApprovalDenied,
            format!("{who} denied this request on connector {connector}{why}. Do not send it again as it is. Nothing was sent."),
        )
        .with("connector", connector)
        .with("approval_id", id)
        .with("decided_by", who)
        .with("note", note.map(str::to_owned))
    }

    /// The connection used up its request budget for the window.
    pub fn budget_exhausted(connector: &str, limit: u64, window: &str, retry_after: u64) -> Self {
        let mut r = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::BudgetExhausted,
            format!("this connection to {connector} has used its budget of {limit} requests per {window}; it renews in {retry_after} s. Nothing was sent."),
        )
        .with("connector", connector)
        .with("budget", limit)
        .with("per", window)
        .with("retry_after", retry_after);
        r.retry_after = Some(retry_after);
        r
    }

    /// The connection has as many requests in flight as its connector allows.
    pub fn too_many_in_flight(connector: &str, concurrent: u32) -> Self {
        let mut r = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::TooManyInFlight,
            format!("this connection to {connector} already has {concurrent} requests in flight, as many as its connector allows; wait for one to finish. Nothing was sent."),
        )
        .with("connector", connector)
        .with("concurrent", concurrent);
        r.retry_after = Some(1);
        r
    }
}
