use std::path::Path;

use super::*;

fn access_of(yaml_rules: &str) -> Access {
    let text = format!(
        "version: 1\nconnectors:\n  - id: gh\n    auth: api_key\n    egress: [api.github.com]\n{yaml_rules}"
    );
    let policy =
        crate::parse(&text, Path::new("p.yaml"), Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
    policy.connector("gh").expect("gh").access.clone()
}

fn facts<'a>(method: &'a str, path: &'a str, query: Option<&'a str>) -> RequestFacts<'a> {
    RequestFacts {
        method,
        path,
        query,
        body: None,
    }
}

#[test]
fn paths_glob_by_segment() {
    let g = PathGlob::parse("/repos/*/*/pulls/**").expect("glob");
    assert!(g.matches("/repos/o/r/pulls"));
    assert!(g.matches("/repos/o/r/pulls/1/merge"));
    assert!(!g.matches("/repos/o/pulls/1"), "`*` is exactly one segment");
    assert!(!g.matches("/repos/o/r/issues/1"));
    let g = PathGlob::parse("/v1/*.json").expect("glob");
    assert!(g.matches("/v1/a.json") && !g.matches("/v1/a.xml"));
    assert!(PathGlob::parse("repos").is_err());
    assert!(PathGlob::parse("/a**").is_err());
}

#[test]
fn the_first_matching_rule_decides_and_the_default_the_rest() {
    let access = access_of(
        r#"    rules:
      - { methods: [DELETE], path: "/repos/**", action: deny, reason: "agents never delete repositories" }
      - { name: reads, methods: [GET], path: "/**", action: allow }
      - { methods: [POST], path: "/repos/*/*/issues", query: { draft: "true" }, action: allow }
    default: deny
"#,
    );
    assert_eq!(access.decide(&facts("GET", "/repos/o/r", None)), Ok(()));
    let refused = access
        .decide(&facts("delete", "/repos/o/r", None))
        .expect_err("deleted");
    assert_eq!(refused.rule, "#1");
    assert_eq!(refused.reason, "agents never delete repositories");
    assert_eq!(
        access.decide(&facts("POST", "/repos/o/r/issues", Some("a=1&draft=true"))),
        Ok(())
    );
    let other = access
        .decide(&facts("POST", "/repos/o/r/issues", Some("draft=false")))
        .expect_err("default");
    assert_eq!(
        (other.rule.as_str(), other.action),
        ("default", Action::Deny)
    );
    assert!(
        access.allowed_sentence().contains("GET /**"),
        "{}",
        access.allowed_sentence()
    );
}

#[test]
fn read_only_allows_reads_and_graphql_queries_only() {
    let access = access_of("    access: read_only\n");
    assert!(access.needs_body());
    for m in ["GET", "HEAD", "OPTIONS"] {
        assert_eq!(access.decide(&facts(m, "/user", None)), Ok(()), "{m}");
    }
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        let v = access.decide(&facts(m, "/user", None)).expect_err(m);
        assert_eq!(v.rule, "read_only");
    }
    let graphql = |q: &str| serde_json::json!({ "query": q });
    for (doc, ok) in [
        ("query { viewer { login } }", true),
        ("{ viewer { login } }", true),
        (
            "query Q($a: Int) { a(x: $a) { b } } fragment F on T { c }",
            true,
        ),
        ("mutation { deleteRepository(id: 1) { x } }", false),
        ("query { a } mutation { b }", false),
        (
            "# mutation in a comment\nquery { a(s: \"mutation\") }",
            true,
        ),
        ("subscription { a }", false),
        ("", false),
    ] {
        let body = graphql(doc);
        let req = RequestFacts {
            method: "POST",
            path: "/graphql",
            query: None,
            body: Some(&body),
        };
        assert_eq!(access.decide(&req).is_ok(), ok, "{doc}");
    }
}

#[test]
fn body_rules_match_json_pointers() {
    let access = access_of(
        r#"    rules:
      - { methods: [POST], path: "/graphql", body: { "/operationName": "DeleteRepo" }, action: deny }
"#,
    );
    assert!(access.needs_body());
    let delete = serde_json::json!({ "operationName": "DeleteRepo" });
    let other = serde_json::json!({ "operationName": "ListRepos" });
    let on = |body| RequestFacts {
        method: "POST",
        path: "/graphql",
        query: None,
        body: Some(body),
    };
    assert!(access.decide(&on(&delete)).is_err());
    assert_eq!(access.decide(&on(&other)), Ok(()));
}

#[test]
fn paths_that_rules_cannot_judge_safely_are_not_normalized() {
    assert_eq!(
        normalized_path("/repos//o/%72/"),
        Some("/repos/o/r".to_owned())
    );
    assert_eq!(normalized_path("/"), Some("/".to_owned()));
    for bad in [
        "/repos/../admin",
        "/a/./b",
        "/a%2Fb",
        "/a%2e%2e/b/..",
        "/a\\b",
        "/%00",
        "/%ff",
    ] {
        assert_eq!(normalized_path(bad), None, "{bad}");
    }
}

#[test]
fn bad_rules_are_refused_at_load_with_their_place() {
    for (rules, says) in [
        (
            "    rules:\n      - { methods: [FETCH], action: deny }\n",
            "not an HTTP method",
        ),
        (
            "    rules:\n      - { path: repos, action: deny }\n",
            "starts with `/`",
        ),
        (
            "    rules:\n      - { action: dney }\n",
            "did you mean `deny`?",
        ),
        (
            "    mcp: { tools: { allow: [\"bad tool\"] } }\n",
            "not a tool name pattern",
        ),
        ("    limits: { requests: 10 }\n", "needs `per`"),
        ("    limits: { concurrent: 0 }\n", "from 1"),
        ("    approvals: { hold: 0s }\n", "above zero"),
        (
            "    rules:\n      - { body: { operationName: x }, action: deny }\n",
            "JSON pointer",
        ),
        ("    access: readonly\n", "expected `read_only`"),
    ] {
        let text = format!(
            "version: 1\nconnectors:\n  - id: gh\n    auth: api_key\n    egress: [api.github.com]\n{rules}"
        );
        let e = crate::parse(&text, Path::new("p.yaml"), Path::new("/")).expect_err(rules);
        assert!(e.to_string().contains(says), "{rules}: {e}");
        assert!(e.first().line >= 6, "located: {e}");
    }
}
