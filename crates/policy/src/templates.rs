//! Built-in vendor templates: a connector stanza names one (`template: databricks`) and
//! gives its `settings`; the template fills the OAuth endpoints, scopes and egress hosts,
//! and anything the stanza spells out itself wins.

use std::collections::BTreeMap;

use crate::model::{ClientAuth, Grant};

/// What a template fills in when the stanza leaves it out.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub grant: Option<Grant>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub issuer: Option<String>,
    pub revocation_url: Option<String>,
    pub scopes: Vec<String>,
    pub client_auth: Option<ClientAuth>,
    pub extra_params: BTreeMap<String, String>,
    pub egress: Vec<String>,
    /// The vendor's "who am I" request: `(method, url, field naming who)`.
    pub identity: Option<(&'static str, String, &'static str)>,
    /// The auth a template of another kind than OAuth gives (`aws_sigv4`, `hmac`).
    pub auth: Option<&'static str>,
    /// `aws_sigv4`: the region requests are signed for.
    pub aws_region: Option<String>,
    /// `hmac`: how requests are signed.
    pub hmac: Option<crate::HmacRecipe>,
    /// Named inputs the template declares.
    pub inputs: Vec<crate::Input>,
    /// The variables `sandbox-env` sets, when the template names them.
    pub env: Vec<(String, crate::EnvValue)>,
}

pub struct Template {
    pub name: &'static str,
    /// The vendor's name as people write it ("Databricks").
    pub title: &'static str,
    /// What the template fills in, in plain words (pages show it as it is).
    pub summary: &'static str,
    /// Where, in the vendor's console, the OAuth app is created (the Setup Guide).
    pub console: &'static str,
    /// Settings the stanza must give.
    pub settings: &'static [Setting],
    /// Whether the connector must list its own egress hosts (the template knows none).
    pub needs_egress: bool,
    /// An OAuth app (the web UI's "new connector" offers these); otherwise keys.
    pub oauth: bool,
    build: fn(&BTreeMap<String, String>) -> Result<Defaults, String>,
}

/// One setting a template asks for: its key in the policy file, a label for people, and
/// what to give.
#[derive(Debug)]
pub struct Setting {
    pub key: &'static str,
    pub label: &'static str,
    pub help: &'static str,
}

impl Template {
    /// The defaults for these settings, or why the settings do not fit.
    pub fn defaults(&self, settings: &BTreeMap<String, String>) -> Result<Defaults, String> {
        for key in settings.keys() {
            if !self.settings.iter().any(|s| s.key == key) {
                return Err(format!(
                    "template `{}` has no setting `{key}`; {}",
                    self.name,
                    self.expects()
                ));
            }
        }
        for Setting { key, help, .. } in self.settings {
            if !settings.contains_key(*key) {
                return Err(format!(
                    "template `{}` needs `settings: {{ {key}: ... }}` ({help})",
                    self.name
                ));
            }
        }
        (self.build)(settings)
    }

    fn expects(&self) -> String {
        if self.settings.is_empty() {
            "it takes no settings".to_owned()
        } else {
            let names: Vec<&str> = self.settings.iter().map(|s| s.key).collect();
            format!("it takes: {}", names.join(", "))
        }
    }
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "databricks",
        title: "Databricks",
        summary: "Databricks workspace (OAuth U2M): the workspace's /oidc/v1 endpoints, scopes all-apis and offline_access, PKCE",
        console: "In the Databricks account console: Settings → App connections → Add connection; give it the redirect URI below, tick \"Generate a client secret\", and the scopes all-apis and offline_access.",
        settings: &[Setting {
            key: "workspace_url",
            label: "Workspace URL",
            help: "the workspace URL, e.g. https://dbc-1234.cloud.databricks.com",
        }],
        needs_egress: false,
        oauth: true,
        build: databricks,
    },
    Template {
        name: "github",
        title: "GitHub",
        summary: "GitHub App or OAuth App user tokens; egress api.github.com, uploads.github.com",
        console: "On GitHub: Settings → Developer settings → GitHub Apps (or OAuth Apps) → New; set the callback URL to the redirect URI below, then generate a client secret.",
        settings: &[],
        needs_egress: false,
        oauth: true,
        build: |_| {
            Ok(Defaults {
                authorize_url: Some("https://github.com/login/oauth/authorize".into()),
                token_url: Some("https://github.com/login/oauth/access_token".into()),
                client_auth: Some(ClientAuth::Post),
                egress: vec!["api.github.com".into(), "uploads.github.com".into()],
                identity: Some(("GET", "https://api.github.com/user".into(), "login")),
                ..Defaults::default()
            })
        },
    },
    Template {
        name: "slack",
        title: "Slack",
        summary: "Slack (OAuth v2); egress slack.com, files.slack.com; give the bot scopes you need",
        console: "At api.slack.com/apps: Create New App → OAuth & Permissions; add the redirect URI below and the scopes you need, then copy the client id and secret from Basic Information.",
        settings: &[],
        needs_egress: false,
        oauth: true,
        build: |_| {
            Ok(Defaults {
                authorize_url: Some("https://slack.com/oauth/v2/authorize".into()),
                token_url: Some("https://slack.com/api/oauth.v2.access".into()),
                client_auth: Some(ClientAuth::Post),
                egress: vec!["slack.com".into(), "files.slack.com".into()],
                identity: Some(("POST", "https://slack.com/api/auth.test".into(), "user")),
                ..Defaults::default()
            })
        },
    },
    Template {
        name: "google",
        title: "Google",
        summary: "Google APIs: offline access (refresh tokens), revocation; egress *.googleapis.com; give the scopes you need",
        console: "In the Google Cloud console: APIs & Services → Credentials → Create credentials → OAuth client ID (Web application); add the redirect URI below as an authorized redirect URI.",
        settings: &[],
        needs_egress: false,
        oauth: true,
        build: |_| {
            Ok(Defaults {
                authorize_url: Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
                token_url: Some("https://oauth2.googleapis.com/token".into()),
                revocation_url: Some("https://oauth2.googleapis.com/revoke".into()),
                client_auth: Some(ClientAuth::Post),
                extra_params: params(&[("access_type", "offline"), ("prompt", "consent")]),
                egress: vec!["*.googleapis.com".into()],
                identity: Some((
                    "GET",
                    "https://www.googleapis.com/oauth2/v3/userinfo".into(),
                    "email",
                )),
                ..Defaults::default()
            })
        },
    },
    Template {
        name: "atlassian",
        title: "Atlassian",
        summary: "Atlassian Cloud (3LO): audience api.atlassian.com, offline_access; egress api.atlassian.com",
        console: "At developer.atlassian.com/console/myapps: Create → OAuth 2.0 integration; under Authorization add the callback URL below, under Permissions the APIs and scopes you need.",
        settings: &[],
        needs_egress: false,
        oauth: true,
        build: |_| {
            Ok(Defaults {
                authorize_url: Some("https://auth.atlassian.com/authorize".into()),
                token_url: Some("https://auth.atlassian.com/oauth/token".into()),
                client_auth: Some(ClientAuth::Post),
                scopes: vec!["offline_access".into()],
                extra_params: params(&[("audience", "api.atlassian.com"), ("prompt", "consent")]),
                egress: vec!["api.atlassian.com".into()],
                identity: Some(("GET", "https://api.atlassian.com/me".into(), "email")),
                ..Defaults::default()
            })
        },
    },
    Template {
        name: "generic",
        title: "OpenID Connect",
        summary: "any OpenID Connect / RFC 8414 server: endpoints from the issuer's discovery document; give the egress domains",
        console: "In your identity provider: register a confidential web client with the redirect URI below; egret reads the endpoints from the issuer's discovery document.",
        settings: &[Setting {
            key: "issuer",
            label: "Issuer URL",
            help: "the issuer URL, e.g. https://login.example.com",
        }],
        needs_egress: true,
        oauth: true,
        build: |s| {
            Ok(Defaults {
                issuer: Some(issuer_url(&s["issuer"])?),
                ..Defaults::default()
            })
        },
    },
    Template {
        name: "aws",
        title: "AWS",
        summary: "AWS APIs signed with SigV4: the sandbox signs with placeholder keys, egret checks and signs again with the connection's keys; egress <service>.<region>.amazonaws.com (S3 also <bucket>.s3.<region>.amazonaws.com)",
        console: "In the AWS IAM console: create an access key for a user (or a role egret assumes with `aws.assume_role`) with only the permissions agents need.",
        settings: &[
            Setting {
                key: "region",
                label: "Region",
                help: "the AWS region, e.g. us-east-1",
            },
            Setting {
                key: "services",
                label: "Services",
                help: "the AWS services agents call, e.g. [bedrock-runtime, s3]",
            },
        ],
        needs_egress: false,
        oauth: false,
        build: aws,
    },
    Template {
        name: "binance",
        title: "Binance",
        summary: "Binance API keys: the key in X-MBX-APIKEY, SIGNED endpoints signed with HMAC-SHA256 over query + body (timestamp and signature set by egret); egress api.binance.com",
        console: "In Binance: Account → API Management → Create API (HMAC); copy the API key and the secret key.",
        settings: &[],
        needs_egress: false,
        oauth: false,
        build: |_| {
            Ok(Defaults {
                auth: Some("hmac"),
                hmac: crate::hmac_recipe("binance"),
                inputs: vec![
                    crate::Input {
                        name: "api_key".into(),
                        inject: crate::InputField::Header("x-mbx-apikey".into()),
                        optional: false,
                    },
                    crate::Input {
                        name: "secret_key".into(),
                        inject: crate::InputField::Sign,
                        optional: false,
                    },
                ],
                egress: vec!["api.binance.com".into()],
                env: vec![
                    (
                        "BINANCE_API_KEY".into(),
                        crate::EnvValue::Input("api_key".into()),
                    ),
                    (
                        "BINANCE_API_SECRET".into(),
                        crate::EnvValue::Input("secret_key".into()),
                    ),
                ],
                ..Defaults::default()
            })
        },
    },
    Template {
        name: "github-webhook",
        title: "Signed webhooks",
        summary: "Requests signed like GitHub webhooks: X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>; give the egress hosts of the receiver",
        console: "At the receiver: create the webhook secret it verifies with.",
        settings: &[],
        needs_egress: true,
        oauth: false,
        build: |_| {
            Ok(Defaults {
                auth: Some("hmac"),
                hmac: crate::hmac_recipe("github_webhook"),
                inputs: vec![crate::Input {
                    name: "secret".into(),
                    inject: crate::InputField::Sign,
                    optional: false,
                }],
                ..Defaults::default()
            })
        },
    },
];

/// `aws`: egress hosts from the region and services.
fn aws(s: &BTreeMap<String, String>) -> Result<Defaults, String> {
    let region = s["region"].trim().to_owned();
    let name_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !name_ok(&region) {
        return Err(format!(
            "`region: {region}` is not an AWS region; expected e.g. `us-east-1`"
        ));
    }
    let mut egress = Vec::new();
    for service in s["services"].split(',').map(str::trim) {
        if !name_ok(service) {
            return Err(format!(
                "`{service}` is not an AWS service endpoint name; expected e.g. `bedrock-runtime` or `s3`"
            ));
        }
        egress.push(format!("{service}.{region}.amazonaws.com"));
        if service == "s3" {
            egress.push(format!("*.s3.{region}.amazonaws.com"));
            if region == "us-east-1" {
                egress.push("s3.amazonaws.com".into());
                egress.push("*.s3.amazonaws.com".into());
            }
        }
    }
    Ok(Defaults {
        auth: Some("aws_sigv4"),
        aws_region: Some(region),
        egress,
        ..Defaults::default()
    })
}

pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

pub fn names() -> String {
    let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
    names.join(", ")
}

fn databricks(s: &BTreeMap<String, String>) -> Result<Defaults, String> {
    let ws = https_url("workspace_url", &s["workspace_url"])?;
    let host = ws
        .strip_prefix("https://")
        .unwrap_or(&ws)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(Defaults {
        authorize_url: Some(format!("{ws}/oidc/v1/authorize")),
        token_url: Some(format!("{ws}/oidc/v1/token")),
        scopes: vec!["all-apis".into(), "offline_access".into()],
        egress: vec![host],
        identity: Some((
            "GET",
            format!("{ws}/api/2.0/preview/scim/v2/Me"),
            "userName",
        )),
        ..Defaults::default()
    })
}

/// An `https://host[:port]` URL without a trailing slash, path, query or credentials.
fn https_url(key: &str, value: &str) -> Result<String, String> {
    let trimmed = value.trim().trim_end_matches('/');
    let host = trimmed.strip_prefix("https://").unwrap_or_default();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(format!(
            "`{key}: {value}` is not an https URL of a host; expected e.g. `https://dbc-1234.cloud.databricks.com`"
        ))
    }
}

/// An issuer may carry a path (`https://login.example.com/tenant/v2.0`).
fn issuer_url(value: &str) -> Result<String, String> {
    let trimmed = value.trim().trim_end_matches('/');
    if trimmed.starts_with("https://") && trimmed.len() > 8 && !trimmed.contains([' ', '?', '#']) {
        Ok(trimmed.to_owned())
    } else {
        Err(format!(
            "`issuer: {value}` is not an https URL; expected e.g. `https://login.example.com`"
        ))
    }
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
