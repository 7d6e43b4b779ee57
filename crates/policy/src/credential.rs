//! The credential kinds beyond one bearer value: named inputs (`inputs:`), AWS SigV4
//! (`auth: aws_sigv4`, `aws:`) and HMAC request signing (`auth: hmac`, `hmac:`).

use serde::Deserialize;

pub use egret_signing::hmac::Recipe as HmacRecipe;
use egret_signing::hmac::{Algorithm, Encoding, Part, Place, TimeUnit, Timestamp};

use crate::raw::S;

/// One named value of a connection (`inputs: [{name, inject}]`): each gets its own
/// placeholder, swapped only into its own field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub inject: InputField,
    /// May be left empty when the connection is made (an AWS session token).
    pub optional: bool,
}

/// Where an input's placeholder stands on a request, and its value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputField {
    /// The header (lower case), the whole value or after a scheme (`Bearer …`).
    Header(String),
    /// The query parameter.
    Query(String),
    /// The user part of `Authorization: Basic`.
    BasicUser,
    /// The password part of `Authorization: Basic`.
    BasicPassword,
    /// Never on the wire: egret signs with it (AWS keys, an HMAC secret). For HMAC its
    /// placeholder may stand where the signature goes, naming the connection.
    Sign,
}

impl InputField {
    /// How the policy and pages write it.
    pub fn describe(&self) -> String {
        match self {
            Self::Header(h) => format!("header {h}"),
            Self::Query(q) => format!("query parameter {q}"),
            Self::BasicUser => "Basic user".to_owned(),
            Self::BasicPassword => "Basic password".to_owned(),
            Self::Sign => "signs requests".to_owned(),
        }
    }
}

/// `auth: aws_sigv4`: requests signed by the sandbox's SDK with placeholder keys are
/// checked and signed again with the connection's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// What `sandbox-env` sets as `AWS_REGION`.
    pub region: String,
    /// Requests are signed with a role's temporary keys, taken with the stored ones.
    pub assume_role: Option<AssumeRole>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    /// The STS endpoint (`https://sts.<region>.amazonaws.com` unless given).
    pub sts_url: String,
}

/// The inputs of an AWS connection.
pub fn aws_inputs() -> Vec<Input> {
    let sign = |name: &str, optional| Input {
        name: name.to_owned(),
        inject: InputField::Sign,
        optional,
    };
    vec![
        sign("access_key_id", false),
        sign("secret_access_key", false),
        sign("session_token", true),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInput {
    pub name: S<String>,
    pub inject: Option<S<RawInputInject>>,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInputInject {
    pub header: Option<String>,
    pub query: Option<String>,
    /// `username` or `password`.
    pub basic: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAws {
    pub region: Option<S<String>>,
    pub assume_role: Option<S<RawAssumeRole>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAssumeRole {
    pub role_arn: S<String>,
    pub external_id: Option<String>,
    pub sts_url: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHmac {
    /// A built-in recipe (`binance`, `github_webhook`); the fields below change it.
    pub recipe: Option<S<String>>,
    pub algorithm: Option<S<String>>,
    pub encoding: Option<S<String>>,
    pub key_encoding: Option<S<String>>,
    pub string_to_sign: Option<Vec<S<String>>>,
    pub separator: Option<String>,
    pub timestamp: Option<S<RawHmacPlace>>,
    pub signature: Option<S<RawHmacPlace>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHmacPlace {
    pub header: Option<String>,
    pub query: Option<String>,
    #[serde(default)]
    pub prefix: String,
    /// For a timestamp: `s` (default) or `ms`.
    pub unit: Option<String>,
}

/// The built-in HMAC recipes, by name.
pub fn hmac_recipe(name: &str) -> Option<HmacRecipe> {
    match name {
        "binance" => Some(egret_signing::hmac::recipes::binance()),
        "github_webhook" => Some(egret_signing::hmac::recipes::github_webhook()),
        _ => None,
    }
}

pub(crate) const HMAC_RECIPES: &str = "binance, github_webhook";

/// `hmac:` as written -> a recipe, starting from the named built-in one (or SHA-256,
/// hex, raw key, no parts).
pub(crate) fn hmac(raw: &RawHmac) -> Result<HmacRecipe, (Option<&S<String>>, String)> {
    let mut recipe = match &raw.recipe {
        Some(name) => hmac_recipe(&name.value).ok_or_else(|| {
            (
                Some(name),
                format!(
                    "unknown hmac recipe `{}`; built-in: {HMAC_RECIPES}",
                    name.value
                ),
            )
        })?,
        None => HmacRecipe {
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            key_encoding: Encoding::Raw,
            parts: Vec::new(),
            separator: String::new(),
            timestamp: None,
            signature: Place::Header {
                name: String::new(),
                prefix: String::new(),
            },
        },
    };
    if let Some(a) = &raw.algorithm {
        recipe.algorithm = match a.value.as_str() {
            "sha256" | "hmac-sha256" => Algorithm::Sha256,
            "sha512" | "hmac-sha512" => Algorithm::Sha512,
            _ => {
                return Err((
                    Some(a),
                    "unknown algorithm; expected `sha256` or `sha512`".into(),
                ));
            }
        };
    }
    if let Some(e) = &raw.encoding {
        recipe.encoding = match e.value.as_str() {
            "hex" => Encoding::Hex,
            "base64" => Encoding::Base64,
            _ => {
                return Err((
                    Some(e),
                    "unknown encoding; expected `hex` or `base64`".into(),
                ));
            }
        };
    }
    if let Some(e) = &raw.key_encoding {
        recipe.key_encoding = match e.value.as_str() {
            "raw" => Encoding::Raw,
            "base64" => Encoding::Base64,
            _ => {
                return Err((
                    Some(e),
                    "unknown key_encoding; expected `raw` (the key's bytes) or `base64`".into(),
                ));
            }
        };
    }
    if let Some(parts) = &raw.string_to_sign {
        recipe.parts = parts
            .iter()
            .map(|p| part(&p.value).map_err(|m| (Some(p), m)))
            .collect::<Result<_, _>>()?;
    }
    if let Some(s) = &raw.separator {
        recipe.separator = s.replace("\\n", "\n");
    }
    if let Some(t) = &raw.timestamp {
        let unit = match t.value.unit.as_deref() {
            None | Some("s") => TimeUnit::Seconds,
            Some("ms") => TimeUnit::Milliseconds,
            Some(_) => return Err((None, "hmac.timestamp.unit must be `s` or `ms`".into())),
        };
        recipe.timestamp = Some(Timestamp {
            unit,
            place: place(&t.value, "timestamp")?,
        });
    }
    if let Some(s) = &raw.signature {
        recipe.signature = place(&s.value, "signature")?;
    }
    if matches!(&recipe.signature, Place::Header { name, .. } if name.is_empty()) {
        return Err((
            None,
            "`hmac` needs `signature: {header: NAME}` or `{query: NAME}` (or a `recipe`)".into(),
        ));
    }
    if recipe.parts.is_empty() {
        return Err((
            None,
            "`hmac` needs `string_to_sign`: a list of timestamp, method, path, query, path_and_query, body, body_sha256, header:NAME, text:TEXT".into(),
        ));
    }
    if recipe.parts.contains(&Part::Timestamp) && recipe.timestamp.is_none() {
        return Err((
            None,
            "`string_to_sign` has `timestamp` but `hmac.timestamp` does not say where it goes"
                .into(),
        ));
    }
    Ok(recipe)
}

fn part(text: &str) -> Result<Part, String> {
    Ok(match text {
        "timestamp" => Part::Timestamp,
        "method" => Part::Method,
        "path" => Part::Path,
        "query" => Part::Query,
        "path_and_query" => Part::PathAndQuery,
        "body" => Part::Body,
        "body_sha256" => Part::BodySha256,
        _ => {
            if let Some(h) = text.strip_prefix("header:") {
                Part::Header(h.trim().to_ascii_lowercase())
            } else if let Some(t) = text.strip_prefix("text:") {
                Part::Literal(t.to_owned())
            } else {
                return Err(format!(
                    "`{text}` is not a part of a string to sign; expected timestamp, method, path, query, path_and_query, body, body_sha256, header:NAME or text:TEXT"
                ));
            }
        }
    })
}

fn place<'a>(raw: &RawHmacPlace, what: &str) -> Result<Place, (Option<&'a S<String>>, String)> {
    match (&raw.header, &raw.query) {
        (Some(h), None) if valid_header(h) => Ok(Place::Header {
            name: h.to_ascii_lowercase(),
            prefix: raw.prefix.clone(),
        }),
        (None, Some(q)) if !q.is_empty() && !q.contains(['&', '=', '#', ' ']) => {
            Ok(Place::Query { name: q.clone() })
        }
        _ => Err((
            None,
            format!("hmac.{what} needs one of `header: NAME` or `query: NAME`"),
        )),
    }
}

pub(crate) fn valid_header(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !matches!(
            name.to_ascii_lowercase().as_str(),
            "host" | "proxy-authorization" | "cookie" | "set-cookie" | "content-length"
        )
}

/// `inputs:` as written -> inputs; `sign_default`: an input without `inject` signs
/// (HMAC) rather than being refused.
pub(crate) fn inputs(
    raw: &[S<RawInput>],
    sign_allowed: bool,
) -> Result<Vec<Input>, (&S<RawInput>, String)> {
    let mut out: Vec<Input> = Vec::new();
    for r in raw {
        let name = &r.value.name.value;
        let valid = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err((
                r,
                format!("input name `{name}` must be 1-40 of a-z, 0-9, `_`"),
            ));
        }
        if out.iter().any(|i| &i.name == name) {
            return Err((r, format!("input `{name}` is listed twice")));
        }
        let inject = match r.value.inject.as_ref().map(|i| &i.value) {
            None if sign_allowed => InputField::Sign,
            None => {
                return Err((
                    r,
                    format!(
                        "input `{name}` has no `inject`; give `{{header: NAME}}`, `{{query: NAME}}` or `{{basic: username|password}}`"
                    ),
                ));
            }
            Some(i) => match (&i.header, &i.query, i.basic.as_deref()) {
                (Some(h), None, None) if valid_header(h) => {
                    InputField::Header(h.to_ascii_lowercase())
                }
                (None, Some(q), None) if !q.is_empty() && !q.contains(['&', '=', '#', ' ']) => {
                    InputField::Query(q.clone())
                }
                (None, None, Some("username")) => InputField::BasicUser,
                (None, None, Some("password")) => InputField::BasicPassword,
                _ => {
                    return Err((
                        r,
                        format!(
                            "input `{name}`: `inject` takes one of `header: NAME`, `query: NAME`, `basic: username|password`"
                        ),
                    ));
                }
            },
        };
        if inject != InputField::Sign && out.iter().any(|i| i.inject == inject) {
            return Err((
                r,
                format!(
                    "input `{name}` goes where another input goes ({})",
                    inject.describe()
                ),
            ));
        }
        out.push(Input {
            name: name.clone(),
            inject,
            optional: r.value.optional,
        });
    }
    Ok(out)
}
