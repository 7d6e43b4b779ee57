//! `aws.assume_role`: the temporary keys of a role, taken with a connection's stored
//! keys (STS `AssumeRole`, signed with SigV4) and kept until 5 minutes before they
//! expire.

use std::collections::HashMap;
use std::sync::Mutex;

use egret_oauth::HttpClient;
use egret_policy::AssumeRole;
use egret_signing::sigv4::{Keys, sign_new};
use secrecy::SecretString;

use crate::SourceError;

const SOURCE: &str = "sts";
/// Keys are taken again this long before they expire.
const MARGIN: i64 = 300;

/// Temporary keys: key id, secret, session token.
pub type TemporaryKeys = (String, SecretString, SecretString);

#[derive(Default)]
pub(crate) struct Roles {
    /// (role, stored key id) -> the keys and their expiry (unix seconds).
    held: Mutex<HashMap<(String, String), (TemporaryKeys, i64)>>,
    flight: tokio::sync::Mutex<()>,
}

impl Roles {
    pub(crate) async fn keys(
        &self,
        client: &HttpClient,
        role: &AssumeRole,
        region: &str,
        stored: &Keys<'_>,
        now_unix: i64,
    ) -> Result<TemporaryKeys, SourceError> {
        let key = (role.role_arn.clone(), stored.access_key_id.to_owned());
        let held = |roles: &Self| {
            let map = roles.held.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&key)
                .filter(|(_, expires)| now_unix + MARGIN < *expires)
                .map(|(k, _)| k.clone())
        };
        if let Some(k) = held(self) {
            return Ok(k);
        }
        let _one = self.flight.lock().await;
        if let Some(k) = held(self) {
            return Ok(k);
        }
        let (keys, expires) = assume(client, role, region, stored).await?;
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (keys.clone(), expires));
        Ok(keys)
    }
}

async fn assume(
    client: &HttpClient,
    role: &AssumeRole,
    region: &str,
    stored: &Keys<'_>,
) -> Result<(TemporaryKeys, i64), SourceError> {
    let mut form = vec![
        ("Action", "AssumeRole".to_owned()),
        ("Version", "2011-06-15".to_owned()),
        ("RoleArn", role.role_arn.clone()),
        ("RoleSessionName", "egret".to_owned()),
        ("DurationSeconds", "3600".to_owned()),
    ];
    if let Some(id) = &role.external_id {
        form.push(("ExternalId", id.clone()));
    }
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::sources::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let url = format!("{}/", role.sts_url.trim_end_matches('/'));
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let req = crate::sources::request(
        http::Method::POST,
        &url,
        &[
            ("host", host.as_str()),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ],
        body.into_bytes(),
        SOURCE,
    )?;
    let (mut parts, body) = req.into_parts();
    sign_new(
        &mut parts,
        &body,
        stored,
        region,
        "sts",
        &crate::amz_date_now(),
    )
    .map_err(|e| SourceError::new(SOURCE, e.to_string()))?;
    let answer = client
        .send(http::Request::from_parts(parts, body))
        .await
        .map_err(|e| SourceError::new(SOURCE, e.to_string()))?;
    let status = answer.status();
    let text = String::from_utf8_lossy(answer.body()).into_owned();
    if !status.is_success() {
        let code = element(&text, "Code").unwrap_or_default();
        return Err(SourceError::new(
            SOURCE,
            format!(
                "AssumeRole of {} was refused (HTTP {status} {code})",
                role.role_arn
            ),
        ));
    }
    let missing =
        |what: &str| SourceError::new(SOURCE, format!("the AssumeRole answer has no {what}"));
    let akid = element(&text, "AccessKeyId").ok_or_else(|| missing("AccessKeyId"))?;
    let secret = element(&text, "SecretAccessKey").ok_or_else(|| missing("SecretAccessKey"))?;
    let token = element(&text, "SessionToken").ok_or_else(|| missing("SessionToken"))?;
    let expiration = element(&text, "Expiration").ok_or_else(|| missing("Expiration"))?;
    let expires =
        time::OffsetDateTime::parse(&expiration, &time::format_description::well_known::Rfc3339)
            .map_err(|_| missing("readable Expiration"))?
            .unix_timestamp();
    Ok((
        (akid, SecretString::from(secret), SecretString::from(token)),
        expires,
    ))
}

/// The text of the first `<name>…</name>` (STS answers are flat XML without entities in
/// these fields).
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::element;

    #[test]
    fn reads_the_credentials_of_an_assume_role_answer() {
        let xml = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2026-12-07T18:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";
        assert_eq!(element(xml, "AccessKeyId").as_deref(), Some("ASIAX"));
        assert_eq!(
            element(xml, "Expiration").as_deref(),
            Some("2026-12-07T18:00:00Z")
        );
        assert_eq!(element(xml, "Nothing"), None);
    }
}
