//! Users' connections: store a static key, list, label, test, disconnect. Every route
//! names one by connector and owner in its path and by `?name=` (default `default`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use egret_service::{ConnectionFilter, ConnectionId, ConnectionName, GivenKey, Labels, Owner};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::auth::Who;
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct Filter {
    connector: Option<String>,
    owner: Option<String>,
    name: Option<String>,
}

/// `?name=`: which of an owner's connections to a connector a route is about.
#[derive(Deserialize)]
pub(crate) struct Which {
    pub(crate) name: Option<String>,
}

/// The connection a route names: its path's connector and owner, and `?name=`.
pub(crate) fn connection_id(
    connector: &str,
    owner: &str,
    which: &Which,
) -> Result<ConnectionId, ApiError> {
    let owner = parse_owner(owner)?;
    let name = match &which.name {
        Some(n) => ConnectionName::parse(n).map_err(ApiError::bad_request)?,
        None => ConnectionName::default(),
    };
    Ok(ConnectionId::new(connector, &owner, &name))
}

pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Query(f): Query<Filter>,
) -> Result<Json<Value>, ApiError> {
    let filter = ConnectionFilter {
        connector: f.connector,
        owner: f.owner.as_deref().map(parse_owner).transpose()?,
        // A name that cannot be one matches nothing.
        name: match f.name.as_deref() {
            Some(n) => match ConnectionName::parse(n) {
                Ok(n) => Some(n),
                Err(_) => return Ok(Json(json!({ "connections": [] }))),
            },
            None => None,
        },
        status: None,
    };
    let views = state.service.connections(&who, &filter)?;
    let usage = state
        .service
        .budget_use(views.iter().map(|c| c.info.id()).collect())
        .await?;
    let list: Vec<Value> = views
        .into_iter()
        .zip(usage)
        .map(|(c, usage)| {
            let mut v = json!(c.info);
            v["last_refresh_at"] = json!(c.info.refreshed_at);
            v["missing_scopes"] = json!(c.missing_scopes);
            for (k, value) in json!(c.health).as_object().into_iter().flatten() {
                if k != "refresh_failing" {
                    v[k.as_str()] = value.clone();
                }
            }
            v["status"] = json!(c.status);
            // The owner's narrowing, on top of the connector's rules.
            v["narrowing"] = json!(state.service.narrowing_json(&c.info.id()));
            // Use against the connector's budget (`limits`), shared by replicas.
            v["budget"] = json!(usage);
            v["used_24h"] = json!(usage.as_ref().map(|u| u.used_24h));
            if let Some(k) = state.service.policy.load().connector(&c.info.connector) {
                v["access"] = json!(k.access.summaries());
            }
            // Kept for the connector's return, refused meanwhile: until when.
            if let (Some(since), Some(purge_at)) = (c.connector_removed_at, c.purge_at) {
                v["connector_removed_at"] = json!(since);
                v["purge_at"] = json!(purge_at);
            }
            v
        })
        .collect();
    Ok(Json(json!({ "connections": list })))
}

/// `{"key": "…"}`, `{"ref": "vault://…"}`, or `{"values": {"api_key": "…", "app_key":
/// {"ref": "…"}}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyBody {
    key: Option<SecretString>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    values: Option<std::collections::BTreeMap<String, GivenValue>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum GivenValue {
    Value(SecretString),
    Ref {
        #[serde(rename = "ref")]
        reference: String,
    },
}

impl KeyBody {
    fn given(self) -> Result<Vec<(Option<String>, GivenKey)>, ApiError> {
        match (self.key, self.reference, self.values) {
            (Some(key), None, None) => Ok(vec![(None, GivenKey::Value(key))]),
            (None, Some(r), None) => Ok(vec![(None, GivenKey::Ref(r))]),
            (None, None, Some(values)) if !values.is_empty() => Ok(values
                .into_iter()
                .map(|(name, v)| {
                    let given = match v {
                        GivenValue::Value(s) => GivenKey::Value(s),
                        GivenValue::Ref { reference } => GivenKey::Ref(reference),
                    };
                    (Some(name), given)
                })
                .collect()),
            _ => Err(ApiError::bad_request(
                "expected one of {\"key\": \"…\"}, {\"ref\": \"vault://…\"} or {\"values\": {\"INPUT\": \"…\" or {\"ref\": \"…\"}}}".to_owned(),
            )),
        }
    }
}

pub(crate) async fn put_key(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
    body: Result<Json<KeyBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    // Whether a key may be stored is said before what is wrong with the body.
    state.service.may_store_key(&who, &conn)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"key\": \"...\"}} (or {{\"ref\"}}, or {{\"values\": {{…}}}}): {}",
            e.body_text()
        ))
    })?;
    let info = state.service.store_keys(&who, &conn, body.given()?).await?;
    Ok(Json(json!(info)))
}

/// Disconnects: revokes an OAuth grant at the vendor when it can, and erases the
/// connection and its placeholders in any case.
pub(crate) async fn remove(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    let revoked = state.service.disconnect(&who, &conn).await?;
    Ok(Json(
        json!({ "removed": true, "vendor_revocation": revoked }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelsBody {
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    identity_label: Option<Option<String>>,
}

/// A field that is present: `null` clears it, a string sets it.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /v1/connections/{connector}/{owner}`: `description` and `identity_label` (a
/// string sets, `null` clears), and the owner's narrowing of what agents may do with
/// it — `access`, `rules`, `default`, `limits` as a connector entry writes them, on top
/// of the connector's (all `null`: lifted). Any other field is a 400 naming it.
pub(crate) async fn update(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"description\"?, \"identity_label\"?, \"rules\"?, \"access\"?, \"default\"?, \"limits\"?}}: {}",
            e.body_text()
        ))
    })?;
    let Value::Object(mut fields) = body else {
        return Err(ApiError::bad_request("expected a JSON object"));
    };
    const NARROWING: [&str; 4] = ["access", "rules", "default", "limits"];
    if let Some(other) = fields.keys().find(|k| {
        !["description", "identity_label"].contains(&k.as_str()) && !NARROWING.contains(&k.as_str())
    }) {
        return Err(ApiError::bad_request(format!(
            "`{other}` cannot be changed here; only `description`, `identity_label` and the owner's narrowing (`access`, `rules`, `default`, `limits`) can"
        )));
    }
    let mut narrowing = serde_json::Map::new();
    let mut narrows = false;
    for k in NARROWING {
        if let Some(v) = fields.remove(k) {
            narrows = true;
            if !v.is_null() {
                narrowing.insert(k.to_owned(), v);
            }
        }
    }
    let mut info = None;
    if narrows {
        let set = (!narrowing.is_empty()).then_some(Value::Object(narrowing));
        info = Some(state.service.narrow(&who, &conn, set).await?);
    }
    if !fields.is_empty() || info.is_none() {
        let labels: LabelsBody = serde_json::from_value(Value::Object(fields)).map_err(|e| {
            ApiError::bad_request(format!(
                "`description` and `identity_label` are strings (or null to clear): {e}"
            ))
        })?;
        let labels = Labels {
            description: labels.description,
            identity_label: labels.identity_label,
        };
        info = Some(state.service.update_labels(&who, &conn, labels).await?);
    }
    let mut v = json!(info);
    v["narrowing"] = json!(state.service.narrowing_json(&conn));
    Ok(Json(v))
}

/// `POST /v1/connections/{connector}/{owner}/test`: one real, read-only request with
/// the connection's credential (renewed first when due); the outcome is audited and
/// kept for the listing.
pub(crate) async fn test(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    let outcome = state.service.test(&who, &conn).await?;
    Ok(Json(json!(outcome)))
}

pub(crate) fn parse_owner(text: &str) -> Result<Owner, ApiError> {
    Owner::parse(text).map_err(ApiError::bad_request)
}
