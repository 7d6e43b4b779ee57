//! Small vendor marks: one inline SVG per template (and one for a static key), drawn
//! here so the binary stays self-contained. They stand beside the vendor's name, never
//! instead of it, so they are hidden from assistive technology.

use egret_policy::{AuthKind, Connector};
use maud::{Markup, PreEscaped, html};

/// The mark of `template` (`None`: a connector with a static key or its own endpoints).
pub(crate) fn mark(template: Option<&str>) -> Markup {
    let (background, drawing) = match template {
        Some("databricks") => (
            "#ff3621",
            r##"<path d="M6 12l10-5 10 5-10 5zM6 17l10 5 10-5M6 22l10 5 10-5" fill="none" stroke="#fff" stroke-width="2.2" stroke-linejoin="round"/>"##,
        ),
        Some("github") => (
            "#24292f",
            r##"<circle cx="16" cy="15" r="8" fill="#fff"/><path d="M11 9l1.5 4h7L21 9l-1 5H12z" fill="#fff"/><circle cx="13.3" cy="15.5" r="1.3" fill="#24292f"/><circle cx="18.7" cy="15.5" r="1.3" fill="#24292f"/><path d="M14 23v4M18 23v4" stroke="#fff" stroke-width="2"/>"##,
        ),
        Some("slack") => (
            "#4a154b",
            r##"<g stroke-width="3.2" stroke-linecap="round"><path d="M12 8v9" stroke="#36c5f0"/><path d="M24 12h-9" stroke="#2eb67d"/><path d="M20 24v-9" stroke="#ecb22e"/><path d="M8 20h9" stroke="#e01e5a"/></g>"##,
        ),
        Some("google") => (
            "#ffffff",
            r##"<rect x="0.5" y="0.5" width="31" height="31" rx="6" fill="none" stroke="#d3d9e2"/><path d="M23.5 16.2c0-.6 0-1.1-.1-1.6H16v3.1h4.2a3.7 3.7 0 0 1-1.6 2.4v2h2.6c1.5-1.4 2.3-3.5 2.3-5.9z" fill="#4285f4"/><path d="M16 24c2.2 0 4-.7 5.2-1.9l-2.6-2c-.7.5-1.6.8-2.6.8-2 0-3.7-1.4-4.3-3.2H9v2.1A8 8 0 0 0 16 24z" fill="#34a853"/><path d="M11.7 17.7a4.8 4.8 0 0 1 0-3.4v-2.1H9a8 8 0 0 0 0 7.6z" fill="#fbbc05"/><path d="M16 11.1c1.1 0 2.2.4 3 1.2l2.3-2.3A8 8 0 0 0 9 12.2l2.7 2.1c.6-1.8 2.3-3.2 4.3-3.2z" fill="#ea4335"/>"##,
        ),
        Some("atlassian") => (
            "#0052cc",
            r##"<path d="M12.2 15.4c-.3-.4-.9-.3-1.1.1L7 24h7.3c.3 0 .6-.2.7-.5 1.3-2.6.4-6.2-2.8-8.1z" fill="#9ec2ff"/><path d="M15.7 7.6c-2.3 3.7-2.1 7.7-.3 11.2l2.6 5.2h7.5c.4 0 .7-.5.5-.9L16.7 7.6c-.2-.4-.8-.4-1 0z" fill="#fff"/>"##,
        ),
        Some(_) => (
            "#4b5563",
            r##"<circle cx="16" cy="13" r="5" fill="none" stroke="#fff" stroke-width="2.2"/><path d="M8 25c1.5-4 4.5-6 8-6s6.5 2 8 6" fill="none" stroke="#fff" stroke-width="2.2" stroke-linecap="round"/>"##,
        ),
        None => (
            "#4b5563",
            r##"<circle cx="12" cy="16" r="4.5" fill="none" stroke="#fff" stroke-width="2.2"/><path d="M16.5 16H26M22 16v4M25 16v3" fill="none" stroke="#fff" stroke-width="2.2" stroke-linecap="round"/>"##,
        ),
    };
    html! {
        svg.mark viewBox="0 0 32 32" aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg" {
            rect width="32" height="32" rx="6" fill=(background) {}
            (PreEscaped(drawing))
        }
    }
}

/// The vendor's name as people write it: the template's title, or what kind of
/// connector it is when it has no template.
pub(crate) fn vendor_name(c: &Connector) -> &'static str {
    match (
        c.template
            .as_deref()
            .and_then(egret_policy::templates::find),
        &c.auth,
    ) {
        (Some(t), _) => t.title,
        (None, AuthKind::OAuth2(_)) => "Custom OAuth 2.0",
        (None, AuthKind::AwsSigV4(_)) => "AWS",
        (None, AuthKind::Hmac(_)) => "Signed requests (HMAC)",
        (None, _) if !c.inputs.is_empty() => "API keys",
        (None, _) => "API key",
    }
}

/// The mark a connector shows: its template's, a generic OAuth one, or a key.
pub(crate) fn mark_of(c: &Connector) -> Option<&str> {
    match (&c.auth, c.template.as_deref()) {
        (_, Some(t)) => Some(t),
        (AuthKind::OAuth2(_), None) => Some("oauth"),
        _ => None,
    }
}
