//! One connector entry -> [`Connector`]: its template, auth, egress, injection, test
//! request and OAuth settings, each check pointing at its line.

use std::path::Path;
use std::time::Duration;

use super::Validator;
use crate::error::Located;
use crate::host::{HostPattern, normalize_host};
use crate::model::*;
use crate::raw::*;
use crate::secret_ref::SecretRef;
use crate::templates::{self, Defaults};
use crate::{AssumeRole, AwsSettings};

impl Validator<'_> {
    pub(super) fn connector(&self, c: RawConnector, base: &Path) -> Result<Connector, Located> {
        let id = ConnectorId::parse(&c.id.value).map_err(|m| self.at(&c.id, &m))?;
        let defaults = match &c.template {
            Some(t) => {
                let template = templates::find(&t.value).ok_or_else(|| {
                    self.at(
                        t,
                        &format!(
                            "unknown template `{}`; built-in templates: {}",
                            t.value,
                            templates::names()
                        ),
                    )
                })?;
                let settings = c
                    .settings
                    .iter()
                    .map(|(k, v)| (k.clone(), v.text()))
                    .collect();
                Some(template.defaults(&settings).map_err(|m| self.at(t, &m))?)
            }
            None if !c.settings.is_empty() => {
                return Err(self.at(
                    &c.id,
                    "`settings` only applies with `template`; name a template or remove `settings`",
                ));
            }
            None => None,
        };
        // A template is a vendor's OAuth app unless it says otherwise (`aws`, `binance`),
        // and the stanza's own `auth` wins.
        let auth_name = c
            .auth
            .as_ref()
            .map(|a| a.value.as_str())
            .or(defaults.as_ref().map(|d| d.auth.unwrap_or("oauth2")));
        let auth_name = match auth_name {
            Some(name @ ("api_key" | "aws_sigv4" | "hmac")) => {
                if let Some(o) = &c.oauth {
                    return Err(self.at(o, &format!("`oauth` is set but `auth` is `{name}`; set `auth: oauth2` or remove `oauth`")));
                }
                if let Some(g) = &c.grant {
                    return Err(self.at(g, "`grant` only applies to `auth: oauth2`"));
                }
                Some(name)
            }
            other => other,
        };
        if let Some(a) = c.aws.as_ref().filter(|_| auth_name != Some("aws_sigv4")) {
            return Err(self.at(a, "`aws` only applies to `auth: aws_sigv4`"));
        }
        if let Some(h) = c.hmac.as_ref().filter(|_| auth_name != Some("hmac")) {
            return Err(self.at(h, "`hmac` only applies to `auth: hmac`"));
        }
        let mut inputs = match crate::credential::inputs(&c.inputs, auth_name == Some("hmac")) {
            Ok(list) => list,
            Err((at, message)) => return Err(self.at(at, &message)),
        };
        if inputs.is_empty()
            && let Some(d) = &defaults
        {
            inputs = d.inputs.clone();
        }
        let auth = match auth_name {
            Some("api_key") => AuthKind::ApiKey,
            Some("aws_sigv4") => {
                if let Some(i) = c.inputs.first() {
                    return Err(self.at(i, "an AWS connector's inputs are fixed (access_key_id, secret_access_key, session_token); remove `inputs`"));
                }
                inputs = crate::aws_inputs();
                AuthKind::AwsSigV4(Box::new(self.aws(&c, defaults.as_ref())?))
            }
            Some("hmac") => {
                let recipe = match (&c.hmac, defaults.as_ref().and_then(|d| d.hmac.clone())) {
                    (Some(h), _) => {
                        crate::credential::hmac(&h.value).map_err(|(at, m)| match at {
                            Some(at) => self.at(at, &m),
                            None => self.at(h, &m),
                        })?
                    }
                    (None, Some(recipe)) => recipe,
                    (None, None) => {
                        return Err(self.at(&c.id, &format!("connector `{id}` has `auth: hmac` but no `hmac:` block; give `recipe` or `string_to_sign` and `signature`")));
                    }
                };
                let signing = inputs
                    .iter()
                    .filter(|i| i.inject == crate::InputField::Sign)
                    .count();
                if signing != 1 {
                    return Err(self.at(&c.id, &format!("connector `{id}`: `auth: hmac` needs exactly one input without `inject` (the signing secret), e.g. `inputs: [{{name: secret}}]`")));
                }
                AuthKind::Hmac(Box::new(recipe))
            }
            Some("oauth2") => {
                let oauth = c.oauth.as_ref().ok_or_else(|| {
                    self.at(&c.id, &format!("connector `{id}` has `auth: oauth2` but no `oauth:` block; add client_id, client_secret and token_url"))
                })?;
                AuthKind::OAuth2(Box::new(self.oauth(
                    oauth,
                    c.grant.as_ref(),
                    base,
                    defaults.as_ref(),
                )?))
            }
            Some(_) => {
                let mut message =
                    "unknown auth; expected `api_key`, `oauth2`, `aws_sigv4` or `hmac`".to_owned();
                let typed = c.auth.as_ref().map_or("", |a| a.value.as_str());
                if let Some(near) =
                    crate::closest(typed, ["api_key", "oauth2", "aws_sigv4", "hmac"])
                {
                    message.push_str(&format!("; did you mean `{near}`?"));
                }
                return Err(match c.auth.as_ref() {
                    Some(a) => self.at(a, &message),
                    None => self.at(&c.id, &message),
                });
            }
            None => {
                return Err(self.at(
                    &c.id,
                    &format!(
                        "connector `{id}` has no `auth`; expected `auth: api_key`, `oauth2`, `aws_sigv4` or `hmac`"
                    ),
                ));
            }
        };
        let egress = if c.egress.is_empty() {
            let from_template = defaults
                .as_ref()
                .map(|d| d.egress.as_slice())
                .unwrap_or_default();
            if from_template.is_empty() {
                return Err(self.at(&c.id, &format!("connector `{id}` has no `egress` hosts; list the hosts its credential may be sent to")));
            }
            from_template
                .iter()
                .map(|h| HostPattern::parse(h).map_err(|m| self.at(&c.id, &m)))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            c.egress
                .iter()
                .map(|h| self.host(h))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut headers = Vec::new();
        for h in &c.inject.headers {
            let name = h.value.to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid
                || matches!(
                    name.as_str(),
                    "host" | "proxy-authorization" | "cookie" | "set-cookie"
                )
            {
                return Err(self.at(h, &format!("`{}` cannot carry a credential; expected a header name such as `x-api-key`", h.value)));
            }
            if name != "authorization" {
                headers.push(name);
            }
        }
        let mut query = Vec::new();
        for q in &c.inject.query {
            if q.value.is_empty() || q.value.contains(['&', '=', '#', ' ']) {
                return Err(self.at(q, &format!("`{}` is not a query parameter name", q.value)));
            }
            query.push(q.value.clone());
        }
        if matches!(auth, AuthKind::OAuth2(_)) && !inputs.is_empty() {
            return Err(self.at(&c.id, "`inputs` are for keys (`auth: api_key` or `hmac`); an OAuth connection holds one token"));
        }
        let env = if c.env.is_empty() {
            match defaults.as_ref().map(|d| &d.env).filter(|e| !e.is_empty()) {
                Some(env) => env.clone(),
                None => default_env(
                    id.as_str(),
                    c.template.as_ref().map(|t| t.value.as_str()),
                    &auth,
                    &inputs,
                ),
            }
        } else {
            let mut env = Vec::new();
            for (name, what) in &c.env {
                let valid = name.bytes().enumerate().all(|(i, b)| {
                    b.is_ascii_uppercase() || b == b'_' || (i > 0 && b.is_ascii_digit())
                }) && !name.is_empty();
                if !valid {
                    return Err(self.at(what, &format!("`{name}` is not an environment variable name; expected e.g. `DATABRICKS_TOKEN`")));
                }
                let value = match what.value.as_str() {
                    "placeholder" => EnvValue::Placeholder,
                    "url" => EnvValue::Url,
                    other => {
                        if let Some(input) = other.strip_prefix("input:") {
                            if !inputs.iter().any(|i| i.name == input) {
                                return Err(self.at(
                                    what,
                                    &format!(
                                        "there is no input `{input}`; the connector's inputs: {}",
                                        inputs
                                            .iter()
                                            .map(|i| i.name.as_str())
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    ),
                                ));
                            }
                            EnvValue::Input(input.to_owned())
                        } else if let Some(text) = other.strip_prefix("text:") {
                            EnvValue::Fixed(text.to_owned())
                        } else {
                            return Err(self.at(what, "expected `placeholder` (the connection's placeholder), `input:NAME` (an input's placeholder), `url` (https:// + the first egress host) or `text:VALUE`"));
                        }
                    }
                };
                env.push((name.clone(), value));
            }
            env
        };
        let rate_limit = c
            .rate_limit
            .as_ref()
            .map(|r| self.rate_limit(r))
            .transpose()?;
        let test =
            match &c.test {
                Some(t) => Some(self.probe(t, &egress)?),
                None => defaults.as_ref().and_then(|d| d.identity.as_ref()).map(
                    |(method, url, field)| Probe {
                        method: (*method).to_owned(),
                        url: url.clone(),
                        expect: 200,
                        header: None,
                        identity_field: Some((*field).to_owned()),
                    },
                ),
            };
        let request = c
            .request
            .as_ref()
            .map(|r| self.request_settings(r, &headers))
            .transpose()?
            .unwrap_or_default();
        let access = self.access(
            c.access.as_ref(),
            &c.rules,
            c.default.as_ref(),
            c.mcp.as_ref(),
        )?;
        let approval_hold = c
            .approvals
            .as_ref()
            .and_then(|a| a.value.hold.as_ref())
            .map(|h| self.positive_duration(h, "hold"))
            .transpose()?;
        let budget = c.limits.as_ref().map(|b| self.budget(b)).transpose()?;
        let client_credentials =
            matches!(&auth, AuthKind::OAuth2(o) if o.grant == Grant::ClientCredentials);
        let owners = match &c.owners {
            None => Owners {
                org: true,
                user: !client_credentials,
            },
            Some(list) => {
                let mut owners = Owners {
                    org: false,
                    user: false,
                };
                for kind in &list.value {
                    match kind.as_str() {
                        "org" => owners.org = true,
                        "user" => owners.user = true,
                        other => {
                            return Err(self.at(
                                list,
                                &format!("`owners` lists `{other}`; expected `org` and/or `user`"),
                            ));
                        }
                    }
                }
                if !owners.org && !owners.user {
                    return Err(self.at(list, "`owners` is empty; give `org`, `user` or both"));
                }
                owners
            }
        };
        Ok(Connector {
            test,
            id,
            env,
            rate_limit,
            source: Source::Policy,
            template: c.template.as_ref().map(|t| t.value.clone()),
            auth,
            egress,
            inject: Injection { headers, query },
            enabled: c.enabled,
            scan_answers: c.scan_answers,
            multiple_connections: c.multiple_connections,
            owners,
            request,
            access,
            approval_hold,
            budget,
            inputs,
        })
    }

    /// `aws:` (or the `aws` template's settings) -> the region and the role.
    fn aws(&self, c: &RawConnector, defaults: Option<&Defaults>) -> Result<AwsSettings, Located> {
        let raw = c.aws.as_ref().map(|a| &a.value);
        let region = match raw.and_then(|a| a.region.as_ref()) {
            Some(r) => r.value.clone(),
            None => defaults
                .and_then(|d| d.aws_region.clone())
                .ok_or_else(|| self.at(&c.id, "`auth: aws_sigv4` needs `aws: {region: …}` (or `template: aws` with `settings: {region, services}`)"))?,
        };
        let assume_role = match raw.and_then(|a| a.assume_role.as_ref()) {
            None => None,
            Some(r) => {
                let arn = &r.value.role_arn;
                if !arn.value.starts_with("arn:") || arn.value.contains(char::is_whitespace) {
                    return Err(self.at(
                        arn,
                        "`role_arn` is not an ARN; expected `arn:aws:iam::123456789012:role/NAME`",
                    ));
                }
                let sts_url = match &r.value.sts_url {
                    Some(u) => self.url(u)?,
                    None => format!("https://sts.{region}.amazonaws.com"),
                };
                Some(AssumeRole {
                    role_arn: arn.value.clone(),
                    external_id: r.value.external_id.clone(),
                    sts_url,
                })
            }
        };
        Ok(AwsSettings {
            region,
            assume_role,
        })
    }

    /// A connector's own `test:`: to one of its egress hosts, over https.
    fn probe(&self, t: &S<RawProbe>, egress: &[HostPattern]) -> Result<Probe, Located> {
        let raw = &t.value;
        let method = raw
            .method
            .clone()
            .unwrap_or_else(|| "GET".to_owned())
            .to_uppercase();
        if !["GET", "HEAD", "POST"].contains(&method.as_str()) {
            return Err(self.at(
                t,
                "`test.method` must be GET, HEAD or POST (a test must not change anything)",
            ));
        }
        let url = match (&raw.path, &raw.url) {
            (Some(path), None) if path.starts_with('/') => {
                let host = egress
                    .iter()
                    .map(ToString::to_string)
                    .find(|h| !h.starts_with('*'))
                    .ok_or_else(|| self.at(t, "every egress host has a wildcard; give `test.url` with the host to test"))?;
                format!("https://{host}{path}")
            }
            (None, Some(url)) if url.starts_with("https://") => url.clone(),
            _ => {
                return Err(self.at(t, "`test` needs `path: /…` (to the first egress host) or `url: https://…`, not both"));
            }
        };
        // Up to the path: a user, a query or a fragment there would make the host that
        // is checked here differ from the one a client reads.
        let host = url
            .strip_prefix("https://")
            .and_then(|r| r.split('/').next())
            .unwrap_or_default();
        if host.is_empty() || host.contains(['@', '?', '#', '\\', ' ']) {
            return Err(self.at(
                t,
                &format!(
                    "`test` url {url} must be `https://host[:port]/path`, with no user, password, query or fragment before the path"
                ),
            ));
        }
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().unwrap_or(0)),
            None => (host, 443),
        };
        if !egress
            .iter()
            .any(|e| e.matches(&normalize_host(name), port))
        {
            return Err(self.at(
                t,
                &format!("`test` goes to {host}, which is not one of the connector's egress hosts"),
            ));
        }
        Ok(Probe {
            method,
            url,
            expect: raw.expect.unwrap_or(200),
            header: raw.header.as_ref().map(|h| h.to_ascii_lowercase()),
            identity_field: raw.identity.clone(),
        })
    }

    fn oauth(
        &self,
        o: &S<RawOAuth>,
        grant: Option<&S<String>>,
        base: &Path,
        defaults: Option<&Defaults>,
    ) -> Result<OAuthSettings, Located> {
        let none = Defaults::default();
        let d = defaults.unwrap_or(&none);
        let grant = match grant.map(|g| (g, g.value.as_str())) {
            None => d.grant.unwrap_or(Grant::AuthorizationCode),
            Some((_, "authorization_code")) => Grant::AuthorizationCode,
            Some((_, "client_credentials")) => Grant::ClientCredentials,
            Some((g, _)) => {
                return Err(self.at(
                    g,
                    "unknown grant; expected `authorization_code` or `client_credentials`",
                ));
            }
        };
        let raw = &o.value;
        let opt_url = |u: &Option<S<String>>| u.as_ref().map(|u| self.url(u)).transpose();
        let authorize_url = opt_url(&raw.authorize_url)?.or_else(|| d.authorize_url.clone());
        let token_url = opt_url(&raw.token_url)?.or_else(|| d.token_url.clone());
        let issuer = opt_url(&raw.issuer)?.or_else(|| d.issuer.clone());
        let revocation_url = opt_url(&raw.revocation_url)?.or_else(|| d.revocation_url.clone());
        if token_url.is_none() && issuer.is_none() {
            return Err(self.at(o, "`oauth` needs `token_url` (or `issuer` for discovery)"));
        }
        if grant == Grant::AuthorizationCode && authorize_url.is_none() && issuer.is_none() {
            return Err(self.at(
                o,
                "the authorization-code grant needs `authorize_url` (or `issuer` for discovery)",
            ));
        }
        let client_id = raw
            .client_id
            .as_ref()
            .filter(|c| !c.value.is_empty())
            .ok_or_else(|| self.at(o, "`oauth` needs `client_id`"))?
            .value
            .clone();
        // The one policy secret that may live in an external store: egret fetches it
        // while it runs (see `egret-secrets`).
        let client_secret = raw
            .client_secret
            .as_ref()
            .map(|s| SecretRef::parse_or_external(&s.value, base).map_err(|m| self.at(s, &m)))
            .transpose()?;
        if let (Some(SecretRef::External(e)), Some(at)) = (&client_secret, &raw.client_secret) {
            let scheme = e.reference.scheme;
            if !self.sources_configured.borrow().contains(&scheme) {
                let source = scheme.source();
                return Err(self.at(at, &format!("oauth.client_secret names the secret source `{source}`, which this file does not configure; add `secret_sources.{source}`")));
            }
        }
        let client_auth = match raw.client_auth.as_ref().map(|c| (c, c.value.as_str())) {
            None => d.client_auth.unwrap_or(ClientAuth::Basic),
            Some((_, "basic")) => ClientAuth::Basic,
            Some((_, "post")) => ClientAuth::Post,
            Some((c, _)) => {
                return Err(self.at(c, "unknown client_auth; expected `basic` or `post`"));
            }
        };
        let refresh_skew = match &raw.refresh_skew {
            Some(s) => self.duration(s)?,
            None => Duration::from_secs(60),
        };
        let timeout = match &raw.timeout {
            Some(s) => self.positive_duration(s, "timeout")?,
            None => Duration::from_secs(10),
        };
        let identity_match = match raw.identity_match.as_ref().map(|c| (c, c.value.as_str())) {
            None => None,
            Some((_, "email")) => Some(IdentityClaim::Email),
            Some((_, "preferred_username")) => Some(IdentityClaim::PreferredUsername),
            Some((_, "sub")) => Some(IdentityClaim::Sub),
            Some((c, _)) => {
                return Err(self.at(
                    c,
                    "unknown identity_match; expected `email`, `preferred_username` or `sub`",
                ));
            }
        };
        Ok(OAuthSettings {
            identity_match,
            grant,
            authorize_url,
            token_url,
            issuer,
            revocation_url,
            client_id,
            client_secret,
            scopes: if raw.scopes.is_empty() {
                d.scopes.clone()
            } else {
                raw.scopes.clone()
            },
            pkce: raw.pkce.unwrap_or(true),
            client_auth,
            refresh_skew,
            timeout,
            extra_params: d
                .extra_params
                .iter()
                .chain(&raw.extra_params)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

/// The variables a vendor's own SDK reads, by template or well-known connector id;
/// otherwise `<ID>_TOKEN` (`<ID>_<INPUT>` for each input of a connector with several).
fn default_env(
    id: &str,
    template: Option<&str>,
    auth: &AuthKind,
    inputs: &[crate::Input],
) -> Vec<(String, EnvValue)> {
    let p = |n: &str| (n.to_owned(), EnvValue::Placeholder);
    let u = |n: &str| (n.to_owned(), EnvValue::Url);
    let upper = |s: &str| s.to_ascii_uppercase().replace('-', "_");
    if let AuthKind::AwsSigV4(aws) = auth {
        return vec![
            (
                "AWS_ACCESS_KEY_ID".to_owned(),
                EnvValue::Input("access_key_id".to_owned()),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                EnvValue::Input("secret_access_key".to_owned()),
            ),
            ("AWS_REGION".to_owned(), EnvValue::Fixed(aws.region.clone())),
            // botocore (boto3, the AWS CLI) reads only this one.
            (
                "AWS_DEFAULT_REGION".to_owned(),
                EnvValue::Fixed(aws.region.clone()),
            ),
        ];
    }
    if !inputs.is_empty() {
        return inputs
            .iter()
            .map(|i| {
                (
                    format!("{}_{}", upper(id), upper(&i.name)),
                    EnvValue::Input(i.name.clone()),
                )
            })
            .collect();
    }
    match template.unwrap_or(id) {
        "databricks" => vec![u("DATABRICKS_HOST"), p("DATABRICKS_TOKEN")],
        "github" => vec![p("GITHUB_TOKEN"), p("GH_TOKEN")],
        "openai" => vec![p("OPENAI_API_KEY")],
        "anthropic" => vec![p("ANTHROPIC_API_KEY")],
        "slack" => vec![p("SLACK_TOKEN")],
        "atlassian" => vec![p("ATLASSIAN_TOKEN")],
        "google" => vec![p("GOOGLE_OAUTH_ACCESS_TOKEN")],
        _ => vec![p(&format!(
            "{}_TOKEN",
            id.to_ascii_uppercase().replace('-', "_")
        ))],
    }
}
