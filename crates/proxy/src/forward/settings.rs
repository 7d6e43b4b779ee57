//! Step 5: the connector's request settings on a request that carries its credential —
//! its base headers (where the sandbox did not set them) and its user agent — and the
//! plan for sending it (step 6): the connector's response timeout and retries.

use std::time::Duration;

use std::sync::Arc;

use egret_policy::{Policy, RequestSettings, Retries};
use egret_vault::{ConnectionId, PlaceholderEntry};
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::request::Parts;

use crate::swap::SwapReport;

/// How step 6 sends a request.
pub(super) struct Plan {
    /// From sending to the response head.
    pub(super) timeout: Duration,
    pub(super) retries: Option<Retries>,
    /// The placeholder whose credential it carries (shared, not copied): its connection
    /// is named in retry audit events.
    pub(super) carried: Option<Arc<PlaceholderEntry>>,
}

impl Plan {
    /// The plan for a request that carries no credential: the proxy's own timeout, no
    /// retries.
    pub(super) fn plain(default_timeout: Duration) -> Self {
        Self {
            timeout: default_timeout,
            retries: None,
            carried: None,
        }
    }

    pub(super) fn connection(&self) -> Option<&ConnectionId> {
        self.carried.as_ref().map(|e| &e.connection)
    }
}

/// Applies the settings of the connector whose credential the request carries (the
/// first swapped), and returns how to send it.
pub(super) fn apply(
    policy: &Policy,
    report: &SwapReport,
    parts: &mut Parts,
    default_timeout: Duration,
) -> Plan {
    let Some(first) = report.swapped.first() else {
        return Plan::plain(default_timeout);
    };
    let carried = Some(first.placeholder.clone());
    let Some(settings) = policy
        .connector(first.connector())
        .map(|c| &c.request)
        .filter(|s| **s != RequestSettings::default())
    else {
        return Plan {
            carried,
            ..Plan::plain(default_timeout)
        };
    };
    add_headers(parts, settings);
    Plan {
        timeout: settings.timeout.unwrap_or(default_timeout),
        retries: settings.retries.clone(),
        carried,
    }
}

fn add_headers(parts: &mut Parts, settings: &RequestSettings) {
    for (name, value) in &settings.headers {
        // Validated by the policy; a value http refuses is skipped rather than sent wrong.
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        if !parts.headers.contains_key(&name) {
            parts.headers.insert(name, value);
        }
    }
    if let Some(ua) = settings
        .user_agent
        .as_deref()
        .and_then(|ua| HeaderValue::from_str(ua).ok())
    {
        parts.headers.insert(USER_AGENT, ua);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_headers_fill_in_and_the_user_agent_replaces() {
        let settings = RequestSettings {
            headers: vec![
                ("notion-version".into(), "2022-06-28".into()),
                ("x-team".into(), "data".into()),
            ],
            user_agent: Some("acme-agent/1.0".into()),
            ..RequestSettings::default()
        };
        let req = http::Request::get("/v1/pages")
            .header("x-team", "the sandbox's own")
            .header("user-agent", "curl/8");
        let (mut parts, ()) = req.body(()).expect("request").into_parts();
        add_headers(&mut parts, &settings);
        assert_eq!(parts.headers["notion-version"], "2022-06-28");
        assert_eq!(parts.headers["x-team"], "the sandbox's own");
        assert_eq!(parts.headers["user-agent"], "acme-agent/1.0");
        assert_eq!(parts.headers.get_all("user-agent").iter().count(), 1);
    }
}
