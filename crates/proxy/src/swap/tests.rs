use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use egret_policy::Policy;
use egret_vault::{ConnectionId, MasterKey, Owner, Placeholder, Vault, unix_now};
use secrecy::SecretString;

use super::*;

const POLICY: &str = r#"
version: 1
connectors:
  - id: openai
    auth: api_key
    egress: [api.openai.com]
  - id: weather
    auth: api_key
    egress: ["*.weather.example"]
    inject: { headers: [x-api-key], query: [appid] }
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    policy: Policy,
    vault: Vault,
    openai: Placeholder,
    weather: Placeholder,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = egret_policy::parse(POLICY, Path::new("t.yaml"), Path::new("/")).expect("policy");
    let vault = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("vault");
    let org = Owner::parse("org").expect("owner");
    vault
        .put_api_key(
            &ConnectionId::default_of("openai", &org),
            &SecretString::from("sk-REAL"),
        )
        .expect("put");
    vault
        .put_api_key(
            &ConnectionId::default_of("weather", &org),
            &SecretString::from("w e&ather"),
        )
        .expect("put");
    let (openai, _) = vault
        .mint_placeholder(&ConnectionId::default_of("openai", &org), None)
        .expect("mint");
    let (weather, _) = vault
        .mint_placeholder(&ConnectionId::default_of("weather", &org), None)
        .expect("mint");
    Fixture {
        _dir: dir,
        policy,
        vault,
        openai,
        weather,
    }
}

fn run(
    f: &Fixture,
    host: &str,
    uri: &str,
    headers: &[(&str, String)],
) -> Result<(Parts, SwapReport), Refusal> {
    let mut b = http::Request::builder().uri(uri);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let mut parts = b.body(()).expect("request").into_parts().0;
    let report = swap_parts(f, host, &mut parts)?;
    Ok((parts, report))
}

/// The swap of `parts` toward `host`:443 with the fixture's policy and vault.
fn swap_parts(f: &Fixture, host: &str, parts: &mut Parts) -> Result<SwapReport, Refusal> {
    let lookup = Lookup {
        policy: &f.policy,
        vault: &f.vault,
        now_unix: unix_now(),
        renewed: &[],
        sandbox: None,
        asked: None,
        approved: &[],
    };
    match swap_request(parts, Destination { host, port: 443 }, &lookup) {
        Ok(r) => Ok(r),
        Err(Halt::Refuse(r)) => Err(r),
        Err(Halt::Renew(_)) => panic!("static keys are never renewed"),
        Err(Halt::Approve(..)) => panic!("no rule asks for approval here"),
        Err(Halt::Fetch(_)) => panic!("no value is kept in an external store here"),
    }
}

fn code(r: Result<(Parts, SwapReport), Refusal>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    }
}

#[test]
fn bearer_is_swapped_toward_the_connector_host_and_marked_sensitive() {
    let f = fixture();
    let (parts, report) = run(
        &f,
        "api.openai.com",
        "/v1",
        &[("authorization", format!("Bearer {}", f.openai.expose()))],
    )
    .expect("swap");
    let v = &parts.headers["authorization"];
    assert_eq!(v, "Bearer sk-REAL");
    assert!(v.is_sensitive());
    assert_eq!(report.swapped.len(), 1);
    assert_eq!(report.swapped[0].connector(), "openai");
}

#[test]
fn other_schemes_and_bare_values_in_authorization_swap_too() {
    let f = fixture();
    let (p, _) = run(
        &f,
        "api.openai.com",
        "/",
        &[("authorization", format!("token {}", f.openai.expose()))],
    )
    .expect("swap");
    assert_eq!(p.headers["authorization"], "token sk-REAL");
    let (p, _) = run(
        &f,
        "api.openai.com",
        "/",
        &[("authorization", f.openai.expose().to_owned())],
    )
    .expect("swap");
    assert_eq!(p.headers["authorization"], "sk-REAL");
}

#[test]
fn basic_credentials_are_decoded_swapped_and_reencoded() {
    let f = fixture();
    let basic = STANDARD.encode(format!("x-token:{}", f.openai.expose()));
    let (p, _) = run(
        &f,
        "api.openai.com",
        "/",
        &[("authorization", format!("Basic {basic}"))],
    )
    .expect("swap");
    assert_eq!(
        p.headers["authorization"],
        format!("Basic {}", STANDARD.encode("x-token:sk-REAL"))
    );
    let basic = STANDARD.encode(format!("{}:", f.openai.expose()));
    let (p, _) = run(
        &f,
        "api.openai.com",
        "/",
        &[("authorization", format!("Basic {basic}"))],
    )
    .expect("swap");
    assert_eq!(
        p.headers["authorization"],
        format!("Basic {}", STANDARD.encode("sk-REAL:"))
    );
    // Toward another host the Basic placeholder is caught, not passed through.
    let basic = STANDARD.encode(format!("u:{}", f.openai.expose()));
    assert_eq!(
        code(run(
            &f,
            "api.weather.example",
            "/",
            &[("authorization", format!("Basic {basic}"))]
        )),
        "placeholder_wrong_host"
    );
}

#[test]
fn configured_header_and_query_fields_swap_with_the_right_encoding() {
    let f = fixture();
    let uri = format!("/data?q=paris&appid={}&units=metric", f.weather.expose());
    let (p, report) = run(
        &f,
        "api.weather.example",
        &uri,
        &[("x-api-key", f.weather.expose().to_owned())],
    )
    .expect("swap");
    assert_eq!(p.headers["x-api-key"], "w e&ather");
    assert_eq!(
        p.uri.to_string(),
        "/data?q=paris&appid=w%20e%26ather&units=metric"
    );
    assert_eq!(report.swapped.len(), 2);
}

#[test]
fn a_placeholder_toward_another_host_is_refused() {
    let f = fixture();
    let h = [("authorization", format!("Bearer {}", f.openai.expose()))];
    assert_eq!(
        code(run(&f, "api.weather.example", "/", &h)),
        "placeholder_wrong_host"
    );
    let h = [("x-api-key", f.openai.expose().to_owned())];
    assert_eq!(
        code(run(&f, "api.weather.example", "/", &h)),
        "placeholder_wrong_host"
    );
}

#[test]
fn a_placeholder_outside_injection_fields_is_misplaced() {
    let f = fixture();
    let p = f.openai.expose();
    for (uri, headers) in [
        (format!("/v1/{p}"), vec![]),
        (format!("/v1?key={p}"), vec![]),
        ("/v1".to_owned(), vec![("x-api-key", p.to_owned())]),
        ("/v1".to_owned(), vec![("cookie", format!("s={p}"))]),
        (
            "/v1".to_owned(),
            vec![("authorization", format!("Bearer {p} {p}"))],
        ),
        (
            "/v1".to_owned(),
            vec![("authorization", format!("Bearer x{p}"))],
        ),
    ] {
        assert_eq!(
            code(run(&f, "api.openai.com", &uri, &headers)),
            "placeholder_misplaced",
            "{uri} {headers:?}"
        );
    }
}

#[test]
fn unknown_revoked_and_malformed_placeholders() {
    let f = fixture();
    let unknown = format!("egp_{}", "Z".repeat(40));
    assert_eq!(
        code(run(
            &f,
            "api.openai.com",
            "/",
            &[("authorization", format!("Bearer {unknown}"))]
        )),
        "placeholder_unknown"
    );
    f.vault.revoke_placeholder(&f.openai).expect("revoke");
    assert_eq!(
        code(run(
            &f,
            "api.openai.com",
            "/",
            &[("authorization", format!("Bearer {}", f.openai.expose()))]
        )),
        "placeholder_unknown"
    );
    // Too short to be a placeholder: not ours, passes untouched.
    let (p, r) = run(
        &f,
        "api.openai.com",
        "/",
        &[("authorization", "Bearer egp_short".to_owned())],
    )
    .expect("passes");
    assert_eq!(p.headers["authorization"], "Bearer egp_short");
    assert!(r.swapped.is_empty());
}

#[test]
fn requests_without_placeholders_are_untouched() {
    let f = fixture();
    let (p, r) = run(
        &f,
        "api.openai.com",
        "/v1?x=1",
        &[
            ("authorization", "Bearer other-token".to_owned()),
            ("accept", "*/*".to_owned()),
        ],
    )
    .expect("ok");
    assert_eq!(p.headers["authorization"], "Bearer other-token");
    assert!(!p.headers["authorization"].is_sensitive());
    assert_eq!(p.uri, "/v1?x=1");
    assert!(r.swapped.is_empty());
}

#[test]
fn placeholder_ranges_finds_every_occurrence() {
    let p = format!("egp_{}", "a".repeat(32));
    let text = format!("x{p}-{p} egp_short");
    assert_eq!(placeholder_ranges(text.as_bytes()), vec![1..37, 38..74]);
}

#[test]
fn redacted_hides_placeholders_for_logs() {
    let p = format!("egp_{}", "a".repeat(32));
    assert_eq!(redacted(&format!("/v1/{p}/x")), "/v1/egp_…/x");
    assert_eq!(redacted("/v1/egp_short"), "/v1/egp_short");
}

/// Each way to disguise a placeholder: percent-encoded (once, twice, fully), JSON-escaped,
/// base64 (standard, URL-safe, at every alignment, inside other text).
fn disguises(p: &str) -> Vec<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let fully: String = p.bytes().map(|b| format!("%{b:02X}")).collect();
    vec![
        p.replacen('_', "%5F", 1),
        p.replacen('_', "%255F", 1),
        fully,
        p.replacen('_', "\\u005f", 1),
        format!("\\u0065{}", &p[1..]),
        STANDARD.encode(p),
        STANDARD.encode(format!("a{p}")),
        STANDARD.encode(format!("ab:{p}")),
        URL_SAFE_NO_PAD.encode(format!("{{\"token\":\"{p}\"}}")),
        format!(
            "session={}; theme=dark",
            STANDARD.encode(format!("user:{p}"))
        ),
    ]
}

#[test]
fn disguised_placeholders_toward_another_host_are_wrong_host() {
    let f = fixture();
    for disguise in disguises(f.openai.expose()) {
        for (where_, headers, uri) in [
            (
                "header",
                vec![("x-anything", disguise.clone())],
                "/".to_owned(),
            ),
            (
                "authorization",
                vec![("authorization", format!("Bearer {disguise}"))],
                "/".to_owned(),
            ),
            (
                "query",
                vec![],
                format!("/?q={}", disguise.replace(' ', "%20").replace(';', "%3B")),
            ),
        ] {
            let got = code(run(&f, "api.weather.example", &uri, &headers));
            assert_eq!(got, "placeholder_wrong_host", "{where_}: {disguise}");
        }
    }
}

#[test]
fn disguised_placeholders_toward_their_own_host_are_misplaced_never_swapped() {
    let f = fixture();
    for disguise in disguises(f.openai.expose()) {
        let headers = [("authorization", format!("Bearer {disguise}"))];
        let got = code(run(&f, "api.openai.com", "/", &headers));
        assert_eq!(got, "placeholder_misplaced", "{disguise}");
    }
    // An unknown placeholder in disguise is unknown, as it would be in the clear.
    let stranger = egret_vault::Placeholder::mint();
    let headers = [("x-a", STANDARD.encode(stranger.expose()))];
    assert_eq!(
        code(run(&f, "api.openai.com", "/", &headers)),
        "placeholder_unknown"
    );
}

#[test]
fn the_usual_encoded_headers_are_left_alone() {
    let f = fixture();
    let headers = [
        ("cookie", format!("sid={}", STANDARD.encode([7u8; 64]))),
        ("x-json", "{\"a\":\"\\u00e9\\/\"}".to_owned()),
        ("referer", "https://x.example/?q=a%20b%2Fc".to_owned()),
        (
            "authorization",
            format!(
                "Basic {}",
                STANDARD.encode(format!("u:{}", f.openai.expose()))
            ),
        ),
    ];
    let (p, _) = run(&f, "api.openai.com", "/a%2Fb?c=%41", &headers).expect("swap");
    assert_eq!(
        p.headers["authorization"],
        format!("Basic {}", STANDARD.encode("u:sk-REAL"))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Whatever bytes a sandbox puts in a header or the query, the swap answers (with a
    /// swap or a refusal) and never panics.
    #[test]
    fn the_swap_never_panics(
        value in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        query in "[ -~]{0,80}",
    ) {
        let f = fixture();
        let Ok(value) = http::HeaderValue::from_bytes(&value) else { return Ok(()) };
        let mut b = http::Request::builder();
        if let Ok(uri) = format!("/?{query}").parse::<http::Uri>() {
            b = b.uri(uri);
        }
        let mut parts = b.body(()).expect("request").into_parts().0;
        parts.headers.insert("x-fuzz", value.clone());
        parts.headers.insert("authorization", value);
        let _ = swap_parts(&f, "api.openai.com", &mut parts);
    }
}
