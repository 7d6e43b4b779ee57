//! 1Password Connect: `op://VAULT/ITEM/FIELD` finds the vault by name
//! (`GET /v1/vaults?filter=name eq "VAULT"`), the item by title in it, and the field by
//! label (or id) in the item (`GET /v1/vaults/{id}/items/{id}`), with the Connect token.

use egret_oauth::HttpClient;
use egret_policy::OpSource;
use http::Method;
use secrecy::{ExposeSecret, SecretString};

use super::{json, request, token, transport};
use crate::SourceError;

const SOURCE: &str = "op";

pub(crate) async fn fetch(
    client: &HttpClient,
    source: &OpSource,
    path: &str,
) -> Result<SecretString, SourceError> {
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let (Some(vault), Some(item), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SourceError::new(
            SOURCE,
            "the reference is not op://VAULT/ITEM/FIELD",
        ));
    };
    let token = token(SOURCE, &source.token)?;
    let bearer = format!("Bearer {}", token.expose_secret());
    let get = |url: String, what: String| {
        let bearer = bearer.clone();
        async move {
            let req = request(
                Method::GET,
                &url,
                &[("authorization", &bearer)],
                Vec::new(),
                SOURCE,
            )?;
            let answer = client.send(req).await.map_err(|e| transport(SOURCE, e))?;
            json(SOURCE, &what, answer)
        }
    };
    let filter = |key: &str, value: &str| {
        let text = format!("{key} eq \"{value}\"");
        percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let vaults = get(
        format!(
            "{}/v1/vaults?filter={}",
            source.address,
            filter("name", vault)
        ),
        format!("vault {vault}"),
    )
    .await?;
    let vault_id = first_id(&vaults)
        .ok_or_else(|| SourceError::new(SOURCE, format!("there is no vault named {vault}")))?;
    let items = get(
        format!(
            "{}/v1/vaults/{}/items?filter={}",
            source.address,
            super::encode(&vault_id),
            filter("title", item)
        ),
        format!("item {item}"),
    )
    .await?;
    let item_id = first_id(&items).ok_or_else(|| {
        SourceError::new(SOURCE, format!("vault {vault} has no item titled {item}"))
    })?;
    let full = get(
        format!(
            "{}/v1/vaults/{}/items/{}",
            source.address,
            super::encode(&vault_id),
            super::encode(&item_id)
        ),
        format!("item {item}"),
    )
    .await?;
    let fields = full
        .get("fields")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| SourceError::new(SOURCE, format!("item {item} has no fields")))?;
    let found = fields.iter().find(|f| {
        f.get("label").and_then(serde_json::Value::as_str) == Some(name)
            || f.get("id").and_then(serde_json::Value::as_str) == Some(name)
    });
    match found
        .and_then(|f| f.get("value"))
        .and_then(serde_json::Value::as_str)
    {
        Some(v) if !v.is_empty() => Ok(SecretString::from(v.to_owned())),
        _ => Err(SourceError::new(
            SOURCE,
            format!("item {item} has no field {name} with a value"),
        )),
    }
}

fn first_id(list: &serde_json::Value) -> Option<String> {
    list.as_array()?
        .first()?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}
