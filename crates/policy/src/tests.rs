use std::path::Path;

use super::*;

fn parse_str(text: &str) -> Result<Policy, Located> {
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
        SecretRef::File("/x/config/../data/master.key".into())
    );
}

#[test]
fn contract_example_parses_its_oauth_fields() {
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
        Err(e) => e,
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
        ("version: 1\nproxy: { auth: basic }\n", "not available"),
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
