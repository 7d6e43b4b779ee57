//! Step 2: the tunnel's host is still intercepted under the policy in force. A CONNECT
//! decided once; a reload (or a connector deleted) since must reach open tunnels.

use egret_policy::{Policy, Route};

use crate::binding::Bound;
use crate::refusal::Refusal;

pub(super) fn still_intercepted(policy: &Policy, bound: &Bound) -> Result<(), Refusal> {
    if policy.route(&bound.host, bound.port) == Route::Intercept {
        Ok(())
    } else {
        Err(Refusal::egress_denied(&bound.host, bound.port, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::Code;

    fn policy(egress: &str) -> Policy {
        let yaml = format!(
            "version: 1\nconnectors:\n  - id: api\n    auth: api_key\n    egress: [{egress}]\n"
        );
        egret_policy::parse(
            &yaml,
            std::path::Path::new("t.yaml"),
            std::path::Path::new("."),
        )
        .expect("policy")
    }

    #[test]
    fn a_host_that_left_the_policy_is_refused() {
        let bound = Bound::new("api.x.com".into(), 443).expect("bound");
        still_intercepted(&policy("api.x.com"), &bound).expect("still a connector host");
        let refused = still_intercepted(&policy("other.x.com"), &bound).expect_err("gone");
        assert_eq!(refused.code, Code::EgressDenied);
    }
}
