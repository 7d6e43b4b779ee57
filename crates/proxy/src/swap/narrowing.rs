//! An owner's narrowing of their connection (`PATCH /v1/connections/C/O {"rules": …}`,
//! "read only" and "ask me first" on the Connections page): rules decided after the
//! connector's, so a request must pass both. Sealed with the credential in the vault;
//! read here from its JSON once per distinct text and kept.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use egret_policy::{Action, Connector, Narrowing, Verdict};
use egret_vault::Credential;

use super::Asked;
use crate::refusal::Refusal;

/// Narrowings read, by their text; cleared when it grows past a bound.
static READ: LazyLock<Mutex<HashMap<Arc<str>, Arc<Narrowing>>>> = LazyLock::new(Default::default);

const KEEP: usize = 4096;

/// The owner's narrowing of the connection `credential` belongs to, if any. A text that
/// cannot be read (written by a newer egret, say) narrows to nothing allowed.
pub(crate) fn of(credential: &Credential) -> Option<Arc<Narrowing>> {
    let text = credential.narrowed.as_ref()?;
    let mut read = READ.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = read.get(text) {
        return Some(n.clone());
    }
    let parsed = serde_json::from_str(text)
        .map_err(|e| e.to_string())
        .and_then(|v| Narrowing::read(&v))
        .unwrap_or_else(|why| {
            tracing::warn!(%why, "a connection's narrowing could not be read; its requests are refused");
            Narrowing {
                access: egret_policy::Access {
                    default: Action::Deny,
                    ..egret_policy::Access::default()
                },
                budget: None,
            }
        });
    if read.len() >= KEEP {
        read.clear();
    }
    let n = Arc::new(parsed);
    read.insert(text.clone(), n.clone());
    Some(n)
}

/// The owner's rules on this request, as the connector's are decided: `Ok(Err(verdict))`
/// when it must be approved first. Their refusals name the rule as `owner:<rule>`.
pub(crate) fn decide(
    connector: &Connector,
    narrowing: &Narrowing,
    asked: &Asked<'_>,
) -> Result<Result<(), Verdict>, Refusal> {
    let id = connector.id.as_str();
    let allowed = || {
        format!(
            "The connection's owner allows: {}",
            narrowing.access.allowed_sentence()
        )
    };
    match asked {
        Asked::Unjudgeable(why) => Err(Refusal::request_denied(id, "path", why, &allowed())),
        Asked::Facts(facts) => match narrowing.access.decide(facts) {
            Ok(()) => Ok(Ok(())),
            Err(v) => {
                let verdict = Verdict {
                    action: v.action,
                    rule: format!("owner:{}", v.rule),
                    reason: format!("the connection's owner narrowed it: {}", v.reason),
                };
                if verdict.action == Action::Approve {
                    Ok(Err(verdict))
                } else {
                    Err(Refusal::request_denied(
                        id,
                        &verdict.rule,
                        &verdict.reason,
                        &allowed(),
                    ))
                }
            }
        },
    }
}
