use bytes::Bytes;
use futures_util::FutureExt;
use http::HeaderMap;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use proptest::prelude::*;

use crate::{Echo, Redactor};

const SECRET: &str = "sk-live/abc+123=xyz";
const PLACEHOLDER: &str = "egp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn echo(sent: &str, shown: &str) -> Echo {
    Echo::new(sent.as_bytes(), shown.as_bytes())
}

fn redactor() -> std::sync::Arc<Redactor> {
    Redactor::new(&[
        echo(SECRET, PLACEHOLDER),
        // The Basic credential `user:SECRET` as sent, and as the sandbox sent it.
        echo("dXNlcjpzay1saXZlL2FiYysxMjM9eHl6", "dXNlcjplZ3BfQUFBQQ=="),
    ])
    .expect("patterns")
}

/// Streams `chunks` through the redactor and returns the whole output.
fn run(chunks: Vec<Vec<u8>>, trailers: Option<HeaderMap>) -> (Vec<u8>, Option<HeaderMap>) {
    let mut frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = chunks
        .into_iter()
        .map(|c| Ok(Frame::data(Bytes::from(c))))
        .collect();
    if let Some(t) = trailers {
        frames.push(Ok(Frame::trailers(t)));
    }
    let body = redactor().body(StreamBody::new(futures_util::stream::iter(frames)));
    let collected = body
        .collect()
        .now_or_never()
        .expect("all frames are ready")
        .expect("infallible");
    let trailers = collected.trailers().cloned();
    (collected.to_bytes().to_vec(), trailers)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn every_form_of_the_credential_is_replaced() {
    let body = format!(
        "raw={SECRET} url=sk-live%2Fabc%2B123%3Dxyz json=\"sk-live\\/abc+123=xyz\" \
         basic=dXNlcjpzay1saXZlL2FiYysxMjM9eHl6 end"
    );
    let (out, _) = run(vec![body.into_bytes()], None);
    let out = String::from_utf8(out).expect("utf8");
    assert_eq!(
        out,
        format!(
            "raw={PLACEHOLDER} url={PLACEHOLDER} json=\"{PLACEHOLDER}\" \
             basic=dXNlcjplZ3BfQUFBQQ== end"
        )
    );
}

#[test]
fn headers_and_trailers_are_replaced() {
    let mut headers = HeaderMap::new();
    headers.insert("x-echo", format!("Bearer {SECRET}").parse().expect("value"));
    headers.insert("x-other", "fine".parse().expect("value"));
    assert!(redactor().headers(&mut headers));
    assert_eq!(headers["x-echo"], format!("Bearer {PLACEHOLDER}").as_str());
    assert_eq!(headers["x-other"], "fine");

    let mut trailers = HeaderMap::new();
    trailers.insert("x-token", SECRET.parse().expect("value"));
    let (out, trailers) = run(vec![b"body".to_vec()], Some(trailers));
    assert_eq!(out, b"body");
    assert_eq!(trailers.expect("trailers")["x-token"], PLACEHOLDER);
}

#[test]
fn nothing_to_replace_passes_bytes_through() {
    let (out, _) = run(vec![b"hello ".to_vec(), b"world".to_vec()], None);
    assert_eq!(out, b"hello world");
    assert!(Redactor::new(&[]).is_none());
}

#[test]
fn only_a_tail_that_could_begin_a_credential_is_held_back() {
    let r = redactor();
    // Ends in bytes that begin no credential form: all of it goes on, not copied.
    let plain = Bytes::from_static(b"{\"data\": [1, 2, 3]}\n");
    let (out, covered) = r.replace(&plain, false);
    assert_eq!(covered, plain.len());
    assert_eq!(out.as_ptr(), plain.as_ptr(), "passed on without a copy");
    // Ends in the first bytes of the credential: exactly those wait for the next chunk.
    let split = Bytes::from_static(b"token: sk-liv");
    let (out, covered) = r.replace(&split, false);
    assert_eq!(&out[..], b"token: ");
    assert_eq!(&split[covered..], b"sk-liv");
    // Ends inside an escape that could be the credential's next character.
    let split = Bytes::from_static(b"token: sk-live%2");
    let (_, covered) = r.replace(&split, false);
    assert_eq!(&split[covered..], b"sk-live%2");
}

proptest! {
    /// A credential split across chunks at any point is still found, and the output is
    /// what a scan of the whole body gives.
    #[test]
    fn chunk_boundaries_do_not_matter(
        pieces in proptest::collection::vec(
            prop_oneof![
                "[a-z +/=%]{0,40}".prop_map(String::into_bytes),
                Just(SECRET.as_bytes().to_vec()),
                Just(b"sk-live%2Fabc%2B123%3Dxyz".to_vec()),
                Just(b"sk-live/abc+12".to_vec()),
                Just(b"SK-LIVE/ABC%2B123&#61;XYZ".to_vec()),
                Just(b"&#x73;k\\u002dlive%2fabc+123=xyz".to_vec()),
            ],
            0..12,
        ),
        cuts in proptest::collection::vec(0usize..400, 0..8),
    ) {
        let whole: Vec<u8> = pieces.concat();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(whole.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for c in cuts {
            chunks.push(whole[last..c].to_vec());
            last = c;
        }
        chunks.push(whole[last..].to_vec());
        let (streamed, _) = run(chunks, None);
        let (at_once, _) = run(vec![whole.clone()], None);
        prop_assert_eq!(&streamed, &at_once);
        prop_assert!(!contains(&streamed, SECRET));
        prop_assert!(!contains(&streamed, "sk-live%2Fabc%2B123%3Dxyz"));
        prop_assert!(!contains(&streamed, "ABC%2B123&#61;XYZ"));
        prop_assert!(!contains(&streamed, "\\u002dlive%2fabc"));
    }
}

/// Each character of the key in a form of its own: raw, `%XX` in either hex case,
/// `\u00XX`, `\/`, decimal and hex HTML references with and without leading zeros
/// (inside the key); the whole key as sent, upper- or lower-cased.
fn mixtures() -> Vec<String> {
    vec![
        // The case: `+` escaped, `/` and `=` left alone.
        "sk-live/abc%2B123=xyz".to_owned(),
        "sk-live%2fabc+123%3Dxyz".to_owned(),
        "sk\\u002dlive\\/abc+123=xyz".to_owned(),
        "sk-live&#47;abc&#x2B;123&#061;xyz".to_owned(),
        "&#115;k-li&#x76;e%2Fabc\\u002B123=x&#00121;z".to_owned(),
        "%73%6B-live/abc+123=xyz".to_owned(),
        "SK-LIVE/ABC%2B123=XYZ".to_owned(),
        "sk-live/abc&#43;123&#61;xyz".to_owned(),
    ]
}

#[test]
fn a_key_in_any_mixture_of_forms_is_replaced() {
    for mixed in mixtures() {
        let body = format!("{{\"echo\":\"{mixed}\"}}");
        let (out, _) = run(vec![body.clone().into_bytes()], None);
        let out = String::from_utf8(out).expect("utf8");
        assert!(!out.contains(&mixed), "{mixed} came back: {out}");
        assert!(
            out.contains("egp_AAAA") || out.contains("EGP_AAAA") || out.contains("egp_aaaa"),
            "{mixed}: the placeholder stands where the key was: {out}"
        );
        // A character at a time, too.
        let chunks = body.bytes().map(|b| vec![b]).collect();
        let (streamed, _) = run(chunks, None);
        assert_eq!(String::from_utf8(streamed).expect("utf8"), out, "{mixed}");
    }
}

#[test]
fn the_placeholder_is_written_the_way_the_key_was() {
    let r = Redactor::new(&[echo("sk/abc+def=ghij", "egp/XYZ+0")]).expect("patterns");
    let cases = [
        // Escaped in part: what a URL-encoder escapes is escaped, the same way.
        ("sk%2Fabc+def=ghij", "egp%2FXYZ+0"),
        ("sk%2fabc%2bdef%3dghij", "egp%2fXYZ%2b0"),
        // Every character escaped: every character of the placeholder too.
        (
            "%73%6B%2F%61%62%63%2B%64%65%66%3D%67%68%69%6A",
            "%65%67%70%2F%58%59%5A%2B%30",
        ),
        (
            "&#115;&#107;&#47;&#97;&#98;&#99;&#43;&#100;&#101;&#102;&#61;&#103;&#104;&#105;&#106;",
            "&#101;&#103;&#112;&#47;&#88;&#89;&#90;&#43;&#48;",
        ),
        ("sk\\/abc+def=ghij", "egp\\/XYZ+0"),
        // The case of the whole key.
        ("SK/ABC+DEF=GHIJ", "EGP/XYZ+0"),
    ];
    for (text, expected) in cases {
        assert_eq!(r.text(text), expected, "{text}");
    }
}

#[test]
fn text_that_only_resembles_the_key_is_left_alone() {
    let r = redactor();
    for text in [
        "sk-live/abc+123=xy",
        // Neither as sent, nor upper- nor lower-cased.
        "sk-live/abc+123=xyZ",
        "sk-live%2/abc",
        "%73k-live/abd+123=xyz",
        "&#115k-live/abc+123=xyz",
        "sk-live/abc 123=xyz",
    ] {
        let t = format!("{text} ");
        let out = r.text(&t);
        assert_eq!(out, t, "{text}");
    }
}

#[test]
fn many_credentials_sharing_a_prefix_are_each_found() {
    let echoes: Vec<Echo> = (0..500)
        .map(|i| echo(&format!("gho_{i:036}"), "egret-credential-withheld"))
        .collect();
    let r = Redactor::new(&echoes).expect("patterns");
    let text = format!(
        "see https://github.com/gho_x and gho_{:036} and gho%5F{:036}",
        417, 3
    );
    let out = r.text(&text);
    assert_eq!(
        out,
        "see https://github.com/gho_x and egret-credential-withheld and egret-credential-withheld"
    );
}
