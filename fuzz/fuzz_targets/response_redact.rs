//! An upstream answer from arbitrary bytes, cut into arbitrary chunks: the streamed
//! redaction gives exactly what a scan of the whole body gives, and no credential.
#![no_main]

use bytes::Bytes;
use egret_proxy::redact::Redactor;
use egret_proxy::swap::Echo;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;

fn run(chunks: Vec<Bytes>) -> Vec<u8> {
    let echoes = [Echo::new(b"sk-fuzz/key", b"egp_FUZZFUZZFUZZFUZZFUZZFUZZFUZZFUZZ")];
    let frames = chunks
        .into_iter()
        .map(|c| Ok::<_, std::convert::Infallible>(http_body::Frame::data(c)));
    let body = Redactor::new(&echoes)
        .expect("patterns")
        .body(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )));
    let out = body
        .collect()
        .now_or_never()
        .expect("ready")
        .expect("infallible");
    out.to_bytes().to_vec()
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(cut).max(1);
    let chunks: Vec<Bytes> = body.chunks(step).map(Bytes::copy_from_slice).collect();
    let streamed = run(chunks);
    let whole = run(vec![Bytes::copy_from_slice(body)]);
    assert_eq!(streamed, whole);
    assert!(!streamed.windows(11).any(|w| w == b"sk-fuzz/key"));
});
