use std::path::Path;

use super::*;

fn parse_str(text: &str) -> Result<Policy, Problems> {
    parse(text, Path::new("p.yaml"), Path::new("/base"))
}

#[test]
fn embedded_default_is_valid() {
    let p = parse(
        EMBEDDED_DEFAULT,
        Path::new("egret.yaml"),
        Path::new("/x/config"),
    )
    .expect("default policy");
    assert_eq!(p.proxy.listen.to_string(), "127.0.0.1:3128");
    assert_eq!(p.route("api.openai.com", 443), Route::Intercept);
    assert_eq!(p.route("files.pythonhosted.org", 443), Route::Tunnel);
    assert_eq!(p.route("example.com", 443), Route::Deny);
    assert_eq!(
        p.vault.master_key,
        SecretRef::File("/x/data/master.key".into()),
        "paths are printed as a person writes them, without `config/..`"
    );
}

#[test]
fn the_readme_example_parses_its_oauth_fields() {
    let text = r#"
version: 1
connectors:
  - id: github
    auth: oauth2
    oauth:
      authorize_url: https://github.com/login/oauth/authorize
      token_url: https://github.com/login/oauth/access_token
      client_id: abc
      client_secret: ${env:GITHUB_CLIENT_SECRET}
      scopes: [repo]
      pkce: true
      client_auth: post
      refresh_skew: 90s
    egress: [api.github.com, uploads.github.com]
  - id: internal-ci
    auth: oauth2
    grant: client_credentials
    oauth: { token_url: "https://ci.example.com/token", client_id: x, client_secret: "${env:CI_SECRET}", scopes: [read] }
    egress: ["*.ci.example.com"]
    enabled: false
"#;
    let p = parse_str(text).expect("valid");
    let AuthKind::OAuth2(o) = &p.connectors[0].auth else {
        panic!("oauth2")
    };
    assert_eq!(o.client_auth, ClientAuth::Post);
    assert_eq!(o.refresh_skew.as_secs(), 90);
    assert_eq!(
        o.client_secret,
        Some(SecretRef::Env("GITHUB_CLIENT_SECRET".into()))
    );
    let AuthKind::OAuth2(ci) = &p.connectors[1].auth else {
        panic!("oauth2")
    };
    assert_eq!(ci.grant, Grant::ClientCredentials);
    assert!(!p.connectors[1].enabled);
    assert_eq!(
        p.route("a.ci.example.com", 443),
        Route::Intercept,
        "disabled connectors are still intercepted"
    );
}

fn error_of(text: &str) -> Located {
    match parse_str(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.first().clone(),
    }
}

#[test]
fn errors_point_at_line_and_column() {
    let e = error_of(
        "version: 1\nconnectors:\n  - id: x\n    auth: api_key\n    egress: [\"127.0.0.1\"]\n",
    );
    assert_eq!((e.line, e.column), (5, 14), "{e}");
    assert!(e.message.contains("IP address"), "{e}");
    assert!(e.to_string().starts_with("p.yaml:5:14: "), "{e}");

    let e = error_of("version: 1\ncontrol:\n  admin_token: hunter2\n");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("never literal"), "{e}");
}

#[test]
fn refuses_bad_input_with_what_is_expected() {
    for (text, needle) in [
        ("version: 2\n", "version: 1"),
        ("version: 1\nproxy: { listen: nowhere }\n", "IP:PORT"),
        ("version: 1\nbogus: 1\n", "bogus"),
        (
            "version: 1\nconnectors:\n  - { id: Bad, auth: api_key, egress: [a.com] }\n",
            "connector id",
        ),
        (
            "version: 1\nconnectors:\n  - { id: a, auth: api_key }\n",
            "egress",
        ),
        (
            "version: 1\nconnectors:\n  - { id: a, auth: magic, egress: [a.com] }\n",
            "api_key",
        ),
        (
            "version: 1\nconnectors:\n  - { id: a, auth: oauth2, egress: [a.com] }\n",
            "oauth",
        ),
        (
            "version: 1\nconnectors:\n  - { id: a, auth: api_key, egress: [a.com] }\n  - { id: a, auth: api_key, egress: [b.com] }\n",
            "twice",
        ),
        (
            "version: 1\nconnectors:\n  - { id: a, auth: api_key, egress: [a.com], inject: { headers: [host] } }\n",
            "cannot carry",
        ),
        (
            "version: 1\nupstream: { resolve: { a.com: nope } }\n",
            "IP address",
        ),
        (
            "version: 1\nproxy: { auth: digest }\n",
            "expected `none` or `basic`",
        ),
        ("version: 1\nversion: 1\n", "uplicate"),
        ("version: [1\n", ""),
    ] {
        let e = error_of(text);
        assert!(e.message.contains(needle), "{needle:?} not in {e}");
        assert!(!e.message.is_empty());
    }
}

#[test]
fn relative_paths_resolve_against_the_file() {
    let p = parse_str(
        "version: 1\nca: { dir: c }\nvault: { path: d/v.redb }\nupstream: { extra_ca: [x.pem] }\n",
    )
    .expect("valid");
    assert_eq!(p.ca.dir, Path::new("/base/c"));
    assert_eq!(p.vault.path, Path::new("/base/d/v.redb"));
    assert_eq!(
        p.vault.master_key,
        SecretRef::File("/base/d/master.key".into())
    );
    assert_eq!(p.upstream.extra_ca[0], Path::new("/base/x.pem"));
}

#[test]
fn connector_hosts_win_over_allow() {
    let p = parse_str("version: 1\nnetwork: { allow: [\"*.x.com\"] }\nconnectors:\n  - { id: a, auth: api_key, egress: [api.x.com] }\n").expect("valid");
    assert_eq!(p.route("api.x.com", 443), Route::Intercept);
    assert_eq!(p.route("www.x.com", 443), Route::Tunnel);
    assert_eq!(p.route("x.com", 443), Route::Deny);
}

fn oauth_of(p: &Policy, id: &str) -> OAuthSettings {
    match &p.connector(id).expect("connector").auth {
        AuthKind::OAuth2(o) => (**o).clone(),
        _ => panic!("{id} is not oauth2"),
    }
}

#[test]
fn databricks_template_resolves_to_the_workspace_endpoints() {
    let p = parse_str(
        r#"
version: 1
connectors:
  - id: databricks
    template: databricks
    settings: { workspace_url: "https://dbc-1234.cloud.databricks.com/" }
    oauth: { client_id: abc, client_secret: "${env:DATABRICKS_CLIENT_SECRET}" }
"#,
    )
    .expect("policy");
    let o = oauth_of(&p, "databricks");
    assert_eq!(
        o.authorize_url.as_deref(),
        Some("https://dbc-1234.cloud.databricks.com/oidc/v1/authorize")
    );
    assert_eq!(
        o.token_url.as_deref(),
        Some("https://dbc-1234.cloud.databricks.com/oidc/v1/token")
    );
    assert_eq!(o.scopes, ["all-apis", "offline_access"]);
    assert!(o.pkce);
    assert_eq!(o.grant, Grant::AuthorizationCode);
    assert_eq!(
        p.route("dbc-1234.cloud.databricks.com", 443),
        Route::Intercept
    );
    assert_eq!(p.route("dbc-9999.cloud.databricks.com", 443), Route::Deny);
    // The unquoted form of the same line is broken YAML; the error says how to fix it.
    let e = parse_str(
        "version: 1\nconnectors:\n  - id: d\n    oauth: { client_id: abc, client_secret: ${env:X} }\n",
    )
    .expect_err("flow mapping");
    assert!(e.to_string().contains("in quotes"), "{e}");
}

#[test]
fn the_stanza_overrides_what_a_template_fills() {
    let p = parse_str(
        r#"
version: 1
connectors:
  - id: google
    template: google
    oauth:
      client_id: abc
      scopes: [https://www.googleapis.com/auth/drive.readonly]
      extra_params: { prompt: select_account }
      pkce: false
    egress: [www.googleapis.com]
"#,
    )
    .expect("policy");
    let o = oauth_of(&p, "google");
    assert_eq!(o.scopes, ["https://www.googleapis.com/auth/drive.readonly"]);
    assert_eq!(o.extra_params["prompt"], "select_account");
    assert_eq!(o.extra_params["access_type"], "offline");
    assert!(!o.pkce);
    assert_eq!(
        o.revocation_url.as_deref(),
        Some("https://oauth2.googleapis.com/revoke")
    );
    assert_eq!(p.route("www.googleapis.com", 443), Route::Intercept);
    assert_eq!(p.route("storage.googleapis.com", 443), Route::Deny);
}

#[test]
fn every_template_resolves_and_bad_template_input_is_located() {
    for t in templates::TEMPLATES.iter().filter(|t| t.oauth) {
        let settings: Vec<String> = t
            .settings
            .iter()
            .map(|s| format!("{}: https://x.example.com", s.key))
            .collect();
        let sample = t
            .settings
            .iter()
            .map(|s| (s.key.to_owned(), "https://x.example.com".to_owned()))
            .collect();
        let defaults = t.defaults(&sample).expect("defaults");
        assert_eq!(
            t.needs_egress,
            defaults.egress.is_empty(),
            "{}: the form marks egress required exactly when the template knows none",
            t.name
        );
        assert!(
            !t.summary.contains('`'),
            "plain words in pages: {}",
            t.summary
        );
        assert!(
            !t.console.contains('`'),
            "plain words in pages: {}",
            t.console
        );
        let egress = if t.needs_egress {
            "\n    egress: [api.example.com]"
        } else {
            ""
        };
        let text = format!(
            "version: 1\nconnectors:\n  - id: c\n    template: {}\n    settings: {{ {} }}\n    oauth: {{ client_id: abc }}{egress}\n",
            t.name,
            settings.join(", ")
        );
        let p = parse_str(&text).unwrap_or_else(|e| panic!("{}: {e}", t.name));
        let o = oauth_of(&p, "c");
        assert!(o.token_url.is_some() || o.issuer.is_some(), "{}", t.name);
    }
    let e = parse_str(
        "version: 1\nconnectors:\n  - id: c\n    template: nope\n    oauth: { client_id: a }\n",
    )
    .expect_err("unknown template");
    assert!(e.to_string().contains("4:15"), "{e}");
    assert!(e.to_string().contains("databricks, github"), "{e}");
    let e = parse_str(
        "version: 1\nconnectors:\n  - id: c\n    template: databricks\n    oauth: { client_id: a }\n",
    )
    .expect_err("missing setting");
    assert!(e.to_string().contains("workspace_url"), "{e}");
    let e = parse_str(
        "version: 1\nconnectors:\n  - id: c\n    template: databricks\n    settings: { workspace_url: http://plain.example.com }\n    oauth: { client_id: a }\n",
    )
    .expect_err("plain http");
    assert!(e.to_string().contains("https"), "{e}");
    let e = parse_str(
        "version: 1\nconnectors:\n  - id: c\n    template: generic\n    settings: { issuer: https://id.example.com }\n    oauth: { client_id: a }\n",
    )
    .expect_err("generic needs egress");
    assert!(e.to_string().contains("egress"), "{e}");
}

#[test]
fn network_allow_takes_addresses_and_cidr_blocks() {
    let p = parse_str(
        "version: 1\nnetwork:\n  allow: [pypi.org, 10.0.0.0/8, \"fd00::/8\", 192.168.1.7, \"[::1]\"]\n",
    )
    .expect("policy");
    assert_eq!(p.network.allow.len(), 1);
    let allows = |ip: &str| p.network.allows_ip(ip.parse().expect("ip"));
    assert!(allows("10.200.0.1") && allows("::ffff:10.0.0.1") && allows("fd12::1"));
    assert!(allows("192.168.1.7") && !allows("192.168.1.8") && allows("::1"));
    assert!(!allows("11.0.0.1"));
    assert_eq!(p.route("10.200.0.1", 5432), Route::Tunnel);
    assert_eq!(p.route("[::1]", 443), Route::Tunnel);
    assert_eq!(p.route("11.0.0.1", 443), Route::Deny);
    let e = error_of("version: 1\nnetwork:\n  allow: [10.0.0.0/33]\n");
    assert_eq!((e.line, e.column), (3, 11), "{e}");
    assert!(e.message.contains("CIDR"), "{e}");
    let e = error_of("version: 1\nnetwork:\n  allow: [\"10.0.0.1:443\"]\n");
    assert!(e.message.contains("network.allow as an address"), "{e}");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
    }

    fn domain() -> impl Strategy<Value = String> {
        proptest::collection::vec(label(), 2..4).prop_map(|l| l.join("."))
    }

    proptest! {
        /// `*.d` matches every subdomain of `d`, never `d` itself, and never a name that
        /// merely ends with the same characters (`evild.com` against `*.d.com`).
        #[test]
        fn wildcards_match_subdomains_only(d in domain(), sub in label(), junk in label()) {
            let p = HostPattern::parse(&format!("*.{d}")).expect("pattern");
            let sub_host = format!("{sub}.{d}");
            let glued = format!("{junk}{d}");
            prop_assert!(p.matches(&sub_host, 443));
            prop_assert!(!p.matches(&d, 443));
            prop_assert!(!p.matches(&glued, 443));
            let exact = HostPattern::parse(&d).expect("pattern");
            prop_assert!(exact.matches(&d, 443));
            prop_assert!(!exact.matches(&sub_host, 443));
            let with_port = HostPattern::parse(&format!("{d}:8443")).expect("pattern");
            prop_assert!(with_port.matches(&d, 8443) && !with_port.matches(&d, 443));
        }

        /// Any text at all: the parsers answer (a pattern or an error), never panic.
        #[test]
        fn parsers_never_panic(text in "\\PC{0,300}") {
            let _ = HostPattern::parse(&text);
            let _ = crate::host::parse_ip_rule(&text);
            let _ = parse_str(&text);
            let _ = parse_str(&format!("version: 1\nconnectors:\n  - {text}\n"));
        }

        /// A policy written out as YAML reads back as the same connectors.
        #[test]
        fn generated_policies_round_trip(
            connectors in proptest::collection::vec(
                ("[a-z][a-z0-9_-]{0,12}", proptest::collection::vec(domain(), 1..3), proptest::option::of(label()), any::<bool>()),
                1..5,
            ),
        ) {
            let mut seen = std::collections::HashSet::new();
            let connectors: Vec<_> = connectors.into_iter().filter(|c| seen.insert(c.0.clone())).collect();
            let mut yaml = String::from("version: 1\nconnectors:\n");
            for (id, egress, header, enabled) in &connectors {
                yaml.push_str(&format!("  - id: {id}\n    auth: api_key\n    enabled: {enabled}\n    egress: [{}]\n", egress.join(", ")));
                if let Some(h) = header {
                    yaml.push_str(&format!("    inject: {{ headers: [x-{h}] }}\n"));
                }
            }
            let policy = parse_str(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
            prop_assert_eq!(policy.connectors.len(), connectors.len());
            for (c, (id, egress, header, enabled)) in policy.connectors.iter().zip(&connectors) {
                prop_assert_eq!(c.id.as_str(), id.as_str());
                prop_assert_eq!(c.enabled, *enabled);
                let hosts: Vec<String> = c.egress.iter().map(ToString::to_string).collect();
                prop_assert_eq!(&hosts, egress);
                let headers: Vec<String> = header.iter().map(|h| format!("x-{h}")).collect();
                prop_assert_eq!(&c.inject.headers, &headers);
                for host in egress {
                    prop_assert!(c.serves(host, 443));
                }
            }
        }
    }
}

#[test]
fn limits_and_rate_limits_refuse_zero_and_non_durations() {
    let e = error_of("version: 1\nlimits:\n  request_head_timeout: 0s\n");
    assert!(
        e.message
            .contains("`request_head_timeout` must be above zero"),
        "{e}"
    );
    let e = error_of("version: 1\nlimits:\n  tunnel_idle_timeout: soon\n");
    assert!(e.message.contains("is not a duration"), "{e}");
    let e = error_of(
        "version: 1\nconnectors:\n  - { id: a, auth: api_key, egress: [a.com], rate_limit: { requests: 5, per: 0s } }\n",
    );
    assert!(e.message.contains("`per` must be above zero"), "{e}");
}

#[test]
fn a_test_request_comes_from_the_template_or_the_stanza_and_stays_on_the_egress() {
    let p = parse_str(
        "version: 1\nconnectors:\n  - { id: gh, template: github, oauth: { client_id: a, client_secret: \"${env:X}\" } }\n  - { id: k, auth: api_key, egress: [\"*.x.com\", api.x.com], test: { path: /v1/me, expect: 204 } }\n",
    )
    .expect("policy");
    let gh = p
        .connector("gh")
        .and_then(|c| c.test.clone())
        .expect("template test");
    assert_eq!(gh.url, "https://api.github.com/user");
    assert_eq!(gh.identity_field.as_deref(), Some("login"));
    let k = p
        .connector("k")
        .and_then(|c| c.test.clone())
        .expect("own test");
    assert_eq!(
        (k.method.as_str(), k.url.as_str(), k.expect),
        ("GET", "https://api.x.com/v1/me", 204)
    );
    for (test, says) in [
        (
            "{ url: \"https://evil.example/\" }",
            "not one of the connector's egress hosts",
        ),
        ("{ method: DELETE, path: /x }", "must be GET, HEAD or POST"),
        ("{ path: x }", "needs `path: /…`"),
    ] {
        let e = parse_str(&format!(
            "version: 1\nconnectors:\n  - {{ id: k, auth: api_key, egress: [api.x.com], test: {test} }}\n"
        ))
        .expect_err("refused");
        assert!(e.to_string().contains(says), "{e}");
    }
}

/// A test url whose host is not plainly the one before the path is refused: a user and
/// password (`https://api.x.com:x@evil/`), or a host after `?` or `#`, could make the
/// checked host and the host a client reads differ.
#[test]
fn a_test_url_with_userinfo_or_a_hidden_host_is_refused() {
    for url in [
        "https://api.x.com:x@evil.example/",
        "https://api.x.com@evil.example/",
        "https://evil.example?@api.x.com/",
        "https://evil.example#@api.x.com/",
        "https://api.x.com?x=1",
        "https://api.x.com\\\\@evil.example/",
    ] {
        let e = parse_str(&format!(
            "version: 1\nconnectors:\n  - {{ id: k, auth: api_key, egress: [api.x.com], test: {{ url: \"{url}\" }} }}\n"
        ))
        .expect_err(url);
        assert!(
            e.to_string()
                .contains("no user, password, query or fragment"),
            "{url}: {e}"
        );
    }
    parse_str(
        "version: 1\nconnectors:\n  - { id: k, auth: api_key, egress: [\"api.x.com:8443\"], test: { url: \"https://api.x.com:8443/v1/me?x=1\" } }\n",
    )
    .expect("a plain host, a port and a query after the path");
}

/// `owners` says whose connections a connector takes; a client-credentials app is the
/// organisation's unless it says otherwise.
#[test]
fn owners_default_to_everyone_but_the_organisation_alone_for_client_credentials() {
    let p = parse_str(
        "version: 1\nconnectors:\n  - { id: k, auth: api_key, egress: [api.x.com] }\n  - { id: cc, auth: oauth2, grant: client_credentials, oauth: { token_url: \"https://x.com/t\", client_id: a, client_secret: \"${env:X}\" }, egress: [api.x.com] }\n  - { id: u, auth: api_key, egress: [api.y.com], owners: [user] }\n",
    )
    .expect("policy");
    let owners = |id: &str| p.connector(id).expect("connector").owners;
    assert!(owners("k").org && owners("k").user);
    assert!(owners("cc").org && !owners("cc").user);
    assert!(!owners("u").org && owners("u").user);
    assert!(owners("u").allow("user:ann") && !owners("u").allow("org"));
    for (owners, says) in [
        ("[team]", "expected `org` and/or `user`"),
        ("[]", "is empty"),
    ] {
        let e = parse_str(&format!(
            "version: 1\nconnectors:\n  - {{ id: k, auth: api_key, egress: [api.x.com], owners: {owners} }}\n"
        ))
        .expect_err("refused");
        assert!(e.to_string().contains(says), "{e}");
    }
}

/// Issue 25, item 6: the shipped connectors can be tested as they are.
#[test]
fn the_shipped_connectors_have_test_requests() {
    let policy = crate::parse(
        crate::EMBEDDED_DEFAULT,
        std::path::Path::new("<embedded>"),
        std::path::Path::new("config"),
    )
    .expect("the embedded default parses");
    for (id, url) in [
        ("openai", "https://api.openai.com/v1/models"),
        ("github", "https://api.github.com/user"),
    ] {
        let probe = policy
            .connector(id)
            .and_then(|c| c.test.as_ref())
            .unwrap_or_else(|| panic!("{id} has a test request"));
        assert_eq!(probe.url, url, "{id}");
        assert_eq!(probe.method, "GET", "{id}");
    }
    let github = policy.connector("github").and_then(|c| c.test.as_ref());
    assert_eq!(
        github.and_then(|p| p.identity_field.as_deref()),
        Some("login")
    );
}

/// Issue 25: every problem in the file at once, each with one location and in file
/// order; a connector's problem does not hide the next connector's.
#[test]
fn every_problem_in_a_file_is_reported_at_once() {
    let text = "version: 1
proxy:
  listen: 127.0.0.1:99999
  auth: nne
network:
  allow: [\"bad host!\", pypi.org]
limits:
  max_ttl: soon
connectors:
  - id: openai
    auth: api_key
    egress: [api.openai.com]
  - id: x
    auth: apikey
    egress: [a.com]
  - id: openai
    auth: api_key
    egress: [api.openai.com]
";
    let problems = parse_str(text).expect_err("refused");
    let at: Vec<(u64, u64)> = problems.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(
        at,
        [(3, 11), (4, 9), (6, 11), (8, 12), (14, 11), (16, 9)],
        "{problems}"
    );
    let shown = problems.to_string();
    assert_eq!(shown.lines().count(), 6, "one line per problem: {shown}");
    for line in shown.lines() {
        assert!(
            line.starts_with("p.yaml:"),
            "each line has one location: {line}"
        );
        assert!(!line.contains("error"), "no `error:` inside: {line}");
    }
    assert!(shown.contains("did you mean `api_key`?"), "{shown}");
    assert!(shown.contains("used twice"), "{shown}");
}

/// A misspelt key is a YAML-shape problem: it stops the reading, once located, with the
/// key meant.
#[test]
fn a_misspelt_key_says_which_key_was_meant() {
    let e = error_of("version: 1\nconnectors:\n  - id: a\n    auth: api_key\n    egres: [a.com]\n");
    assert_eq!((e.line, e.column), (5, 5), "{e}");
    assert!(e.message.starts_with("unknown field `egres`"), "{e}");
    assert!(e.message.ends_with("did you mean `egress`?"), "{e}");
    assert!(
        !e.message.contains("line 5"),
        "the location is said once: {e}"
    );
    let e = error_of("version: 1\nproxy: [\n");
    assert!(!e.message.contains("error:"), "{e}");
}

#[test]
fn the_aws_template_gives_egress_per_service_and_the_aws_inputs() {
    let p = parse_str(
        "version: 1\nconnectors:\n  - id: aws\n    template: aws\n    settings: { region: eu-west-1, services: [bedrock-runtime, s3] }\n",
    )
    .expect("aws");
    let c = p.connector("aws").expect("connector");
    let egress: Vec<String> = c.egress.iter().map(ToString::to_string).collect();
    assert_eq!(
        egress,
        [
            "bedrock-runtime.eu-west-1.amazonaws.com",
            "s3.eu-west-1.amazonaws.com",
            "*.s3.eu-west-1.amazonaws.com"
        ]
    );
    assert!(matches!(&c.auth, AuthKind::AwsSigV4(a) if a.region == "eu-west-1"));
    let names: Vec<&str> = c.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["access_key_id", "secret_access_key", "session_token"]
    );
    let env: Vec<&str> = c.env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        env,
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION"
        ]
    );
    let e = parse_str(
        "version: 1\nconnectors:\n  - id: aws\n    template: aws\n    settings: { region: \"us east\", services: [s3] }\n",
    )
    .expect_err("bad region");
    assert!(e.to_string().contains("not an AWS region"), "{e}");
}

#[test]
fn inputs_and_hmac_recipes_are_checked_with_what_to_write() {
    for (stanza, says) in [
        (
            "auth: api_key\n    egress: [x.com]\n    inputs: [{ name: a, inject: { header: X-A } }, { name: a, inject: { header: X-B } }]",
            "listed twice",
        ),
        (
            "auth: api_key\n    egress: [x.com]\n    inputs: [{ name: a, inject: { header: X-A } }, { name: b, inject: { header: x-a } }]",
            "goes where another input goes",
        ),
        (
            "auth: api_key\n    egress: [x.com]\n    inputs: [{ name: a }]",
            "has no `inject`",
        ),
        (
            "auth: api_key\n    egress: [x.com]\n    inputs: [{ name: Bad, inject: { header: X-A } }]",
            "must be 1-40 of a-z",
        ),
        (
            "auth: hmac\n    egress: [x.com]\n    inputs: [{ name: s }]",
            "no `hmac:` block",
        ),
        (
            "auth: hmac\n    egress: [x.com]\n    inputs: [{ name: s }]\n    hmac: { string_to_sign: [body, nonsense], signature: { header: X-Sig } }",
            "not a part of a string to sign",
        ),
        (
            "auth: hmac\n    egress: [x.com]\n    inputs: [{ name: s }]\n    hmac: { string_to_sign: [timestamp, body], signature: { header: X-Sig } }",
            "does not say where it goes",
        ),
        (
            "auth: hmac\n    egress: [x.com]\n    inputs: [{ name: s }, { name: t }]\n    hmac: { recipe: binance }",
            "exactly one input without `inject`",
        ),
        (
            "auth: oauth2\n    egress: [x.com]\n    oauth: { client_id: a, token_url: https://t }\n    grant: client_credentials\n    inputs: [{ name: a, inject: { header: X-A } }]",
            "an OAuth connection holds one token",
        ),
        (
            "auth: aws_sigv4\n    egress: [x.com]",
            "needs `aws: {region",
        ),
    ] {
        let text = format!("version: 1\nconnectors:\n  - id: c\n    {stanza}\n");
        let e = parse_str(&text).expect_err(stanza);
        assert!(e.to_string().contains(says), "{stanza}: {e}");
    }
    let p = parse_str(
        "version: 1\nconnectors:\n  - id: c\n    auth: hmac\n    egress: [x.com]\n    inputs: [{ name: key, inject: { header: X-Key } }, { name: secret }]\n    hmac: { algorithm: sha512, encoding: base64, key_encoding: base64, string_to_sign: [timestamp, method, path_and_query, body], timestamp: { header: X-Ts, unit: ms }, signature: { header: X-Sig } }\n",
    )
    .expect("a custom recipe");
    let c = p.connector("c").expect("c");
    assert!(matches!(&c.auth, AuthKind::Hmac(r) if r.parts.len() == 4));
    let env: Vec<&str> = c.env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(env, ["C_KEY", "C_SECRET"]);
}
