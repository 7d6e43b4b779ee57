//! Every timeout and size limit on untrusted input, named, in one place.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Limits {
    /// TLS handshake with the sandbox inside a CONNECT tunnel (slow-handshake guard).
    pub tls_handshake_timeout: Duration,
    /// Whenever nothing is in flight on a sandbox connection (new, or keep-alive between
    /// requests), a complete request head must arrive within this (slowloris and idle guard).
    pub request_head_timeout: Duration,
    /// TCP connect to an upstream.
    pub upstream_connect_timeout: Duration,
    /// From sending a request upstream to its response head (bodies then stream untimed).
    pub upstream_response_timeout: Duration,
    /// A tunnel (allowed host, or WebSocket) with no bytes either way for this long is closed.
    pub tunnel_idle_timeout: Duration,
    pub upstream_pool_idle: Duration,
    /// Largest request head accepted (HTTP/1.1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Sandbox connections served at once; one more is answered 503 and closed, never
    /// queued.
    pub max_client_connections: usize,
    pub leaf_cache_capacity: usize,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tls_handshake_timeout: Duration::from_secs(10),
            request_head_timeout: Duration::from_secs(30),
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_response_timeout: Duration::from_secs(300),
            tunnel_idle_timeout: Duration::from_secs(600),
            upstream_pool_idle: Duration::from_secs(90),
            max_header_bytes: 64 * 1024,
            max_headers: 128,
            max_client_connections: 4096,
            leaf_cache_capacity: 1024,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// These limits with the policy's `limits:` overrides applied.
    pub fn with_settings(mut self, s: &egret_policy::LimitSettings) -> Self {
        let set = |field: &mut Duration, v: Option<Duration>| *field = v.unwrap_or(*field);
        set(&mut self.tls_handshake_timeout, s.tls_handshake_timeout);
        set(&mut self.request_head_timeout, s.request_head_timeout);
        set(
            &mut self.upstream_connect_timeout,
            s.upstream_connect_timeout,
        );
        set(
            &mut self.upstream_response_timeout,
            s.upstream_response_timeout,
        );
        set(&mut self.tunnel_idle_timeout, s.tunnel_idle_timeout);
        self.max_header_bytes = s.max_header_bytes.unwrap_or(self.max_header_bytes);
        self.max_headers = s.max_headers.unwrap_or(self.max_headers);
        self.max_client_connections = s
            .max_client_connections
            .unwrap_or(self.max_client_connections);
        self
    }
}
