//! Step 3: the connector's `rate_limit`, taken before the swap so that a request over
//! the limit costs neither a token renewal nor an upstream call.

use egret_policy::Policy;
use tokio::time::Instant;

use crate::binding::Bound;
use crate::rate::RateLimiter;
use crate::refusal::Refusal;

pub(super) fn take(
    rate: &RateLimiter,
    policy: &Policy,
    bound: &Bound,
    now: Instant,
) -> Result<(), Refusal> {
    let limited = policy
        .connectors
        .iter()
        .find(|c| c.rate_limit.is_some() && c.serves(&bound.host, bound.port));
    let Some((connector, limit)) = limited.and_then(|c| Some((c, c.rate_limit?))) else {
        return Ok(());
    };
    rate.take(connector.id.as_str(), limit, now.into_std())
        .map_err(|wait| Refusal::rate_limited(connector.id.as_str(), wait))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::Code;

    #[test]
    fn only_the_limited_connectors_hosts_are_counted() {
        let yaml = "version: 1\nconnectors:\n  - id: slow\n    auth: api_key\n    egress: [slow.x.com]\n    rate_limit: {requests: 2, per: 1m}\n  - id: free\n    auth: api_key\n    egress: [free.x.com]\n";
        let policy = egret_policy::parse(
            yaml,
            std::path::Path::new("t.yaml"),
            std::path::Path::new("."),
        )
        .expect("policy");
        let rate = RateLimiter::default();
        let now = Instant::now();
        let slow = Bound::new("slow.x.com".into(), 443).expect("bound");
        let free = Bound::new("free.x.com".into(), 443).expect("bound");
        for _ in 0..5 {
            take(&rate, &policy, &free, now).expect("no limit");
        }
        take(&rate, &policy, &slow, now).expect("first");
        take(&rate, &policy, &slow, now).expect("second");
        let refused = take(&rate, &policy, &slow, now).expect_err("third");
        assert_eq!(refused.code, Code::RateLimited);
        assert_eq!(refused.retry_after, Some(30));
    }
}
