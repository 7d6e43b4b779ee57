use bytes::Bytes;
use futures_util::FutureExt;
use http::HeaderMap;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::Redactor;
use crate::swap::Echo;

const SECRET: &str = "sk-live/abc+123=xyz";
const PLACEHOLDER: &str = "egp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn echo(sent: &str, shown: &str) -> Echo {
    Echo {
        sent: Zeroizing::new(sent.as_bytes().to_vec()),
        shown: shown.as_bytes().to_vec(),
    }
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
    }
}
