//! AWS's own documented examples, reproduced byte for byte, and the re-signing round trip.

use secrecy::SecretString;

use super::chunks::ChunkResigner;
use super::*;

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request").into_parts().0
}

fn keys<'a>(akid: &'a str, secret: &'a SecretString) -> Keys<'a> {
    Keys {
        access_key_id: akid,
        secret_access_key: secret,
        session_token: None,
    }
}

/// The S3 documentation's "GET Object" example (Signature Calculations for the
/// Authorization Header: Transferring Payload in a Single Chunk).
#[test]
fn s3_get_object_documented_example() {
    let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned());
    let parts = request(
        "GET",
        "/test.txt",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            (
                "x-amz-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("x-amz-date", "20130524T000000Z"),
        ],
    );
    let signed = Signed {
        placement: Placement::Header,
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        date: "20130524".into(),
        region: "us-east-1".into(),
        service: "s3".into(),
        amz_date: "20130524T000000Z".into(),
        signed_headers: ["host", "range", "x-amz-content-sha256", "x-amz-date"]
            .map(String::from)
            .to_vec(),
        signature: String::new(),
    };
    let payload = payload(&parts, &signed).expect("payload");
    let canonical = canonical_request(&parts, &signed, payload.literal(None).expect("literal"))
        .expect("canonical");
    let key = signing_key(&secret, &signed);
    assert_eq!(
        signature(&key, &signed.amz_date, &signed.scope(), &canonical),
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    let _ = keys("AKIAIOSFODNN7EXAMPLE", &secret);
}

/// The SigV4 test suite's `get-vanilla` case (service `service`, 2015-08-30).
#[test]
fn sigv4_test_suite_get_vanilla() {
    let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned());
    let parts = request(
        "GET",
        "/",
        &[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ],
    );
    let signed = read(&parts).expect("read").expect("signed");
    assert_eq!(signed.access_key_id, "AKIDEXAMPLE");
    assert_eq!(
        payload(&parts, &signed).expect("payload"),
        Payload::BodyHash
    );
    let canonical = canonical_request(&parts, &signed, &crate::sha256_hex(b"")).expect("c");
    let key = signing_key(&secret, &signed);
    assert_eq!(
        signature(&key, &signed.amz_date, &signed.scope(), &canonical),
        signed.signature
    );
}

/// A request signed with placeholder keys verifies, and its re-signed form verifies
/// with the real keys (and no longer with the placeholder's).
#[test]
fn a_placeholder_signature_is_checked_then_replaced_with_the_real_one() {
    let fake = SecretString::from("placeholder-secret".to_owned());
    let real = SecretString::from("real-secret".to_owned());
    let mut parts = request(
        "POST",
        "/model/x/invoke?b=2&a=1",
        &[
            ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
            ("x-amz-date", "20261207T101010Z"),
            ("content-type", "application/json"),
        ],
    );
    let body_hash = crate::sha256_hex(b"{}");
    let mut signed = Signed {
        placement: Placement::Header,
        access_key_id: "AKIAPLACEHOLDER00000".into(),
        date: "20261207".into(),
        region: "us-east-1".into(),
        service: "bedrock".into(),
        amz_date: "20261207T101010Z".into(),
        signed_headers: ["content-type", "host", "x-amz-date"]
            .map(String::from)
            .to_vec(),
        signature: String::new(),
    };
    let canonical = canonical_request(&parts, &signed, &body_hash).expect("c");
    signed.signature = signature(
        &signing_key(&fake, &signed),
        &signed.amz_date,
        &signed.scope(),
        &canonical,
    );
    let token = SecretString::from("session-token".to_owned());
    let real_keys = Keys {
        access_key_id: "AKIAREAL000000000000",
        secret_access_key: &real,
        session_token: Some(&token),
    };
    // A wrong placeholder secret is refused.
    let wrong = SecretString::from("other".to_owned());
    let err = resign(
        &mut parts.clone_head(),
        &signed,
        &Payload::BodyHash,
        Some(&body_hash),
        &keys("x", &wrong),
        &real_keys,
    )
    .err();
    assert_eq!(err, Some(SignError::Mismatch));
    resign(
        &mut parts,
        &signed,
        &Payload::BodyHash,
        Some(&body_hash),
        &keys("x", &fake),
        &real_keys,
    )
    .expect("resigned");
    let again = read(&parts).expect("read").expect("signed");
    assert_eq!(again.access_key_id, "AKIAREAL000000000000");
    assert!(
        again
            .signed_headers
            .contains(&"x-amz-security-token".to_owned())
    );
    assert_eq!(parts.headers["x-amz-security-token"], "session-token");
    let canonical = canonical_request(&parts, &again, &body_hash).expect("c");
    assert_eq!(
        signature(
            &signing_key(&real, &again),
            &again.amz_date,
            &again.scope(),
            &canonical
        ),
        again.signature
    );
}

trait CloneHead {
    fn clone_head(&self) -> Parts;
}

impl CloneHead for Parts {
    fn clone_head(&self) -> Parts {
        let mut b = http::Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone());
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(()).expect("request").into_parts().0
    }
}

/// The S3 documentation's chunked upload example (Transferring Payload in Multiple
/// Chunks): 64 KiB + 1 KiB of `a`, seed signature and chunk signatures as printed.
#[test]
fn s3_chunked_upload_documented_example() {
    let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned());
    let parts = request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", STREAMING_SIGNED),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
        ],
    );
    let signed = Signed {
        placement: Placement::Header,
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        date: "20130524".into(),
        region: "us-east-1".into(),
        service: "s3".into(),
        amz_date: "20130524T000000Z".into(),
        signed_headers: [
            "content-encoding",
            "content-length",
            "host",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-decoded-content-length",
            "x-amz-storage-class",
        ]
        .map(String::from)
        .to_vec(),
        signature: String::new(),
    };
    let canonical = canonical_request(&parts, &signed, STREAMING_SIGNED).expect("c");
    let key = signing_key(&secret, &signed);
    let seed = signature(&key, &signed.amz_date, &signed.scope(), &canonical);
    assert_eq!(
        seed,
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    );
    // Re-sign the documented body from the documented key to itself: every chunk
    // signature must verify, and come out as documented.
    let resigned = Resigned {
        amz_date: signed.amz_date.clone(),
        scope: signed.scope(),
        placeholder_seed: seed.clone(),
        real_seed: seed,
        placeholder_key: key.clone(),
        real_key: key,
    };
    let mut body = Vec::new();
    body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
    body.extend_from_slice(&[b'a'; 65536]);
    body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
    body.extend_from_slice(&[b'a'; 1024]);
    body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
    assert_eq!(body.len(), 66824);
    let mut resigner = ChunkResigner::new(&resigned, false, 1 << 20);
    let mut out = Vec::new();
    // Fed in odd pieces, as a network delivers it.
    for piece in body.chunks(7777) {
        out.extend_from_slice(&resigner.push(piece).expect("chunk"));
    }
    resigner.finish().expect("complete");
    assert_eq!(out, body);
}

#[test]
fn a_chunk_signed_with_other_keys_is_refused_and_a_cut_body_is_an_error() {
    let key = signing_key(
        &SecretString::from("k".to_owned()),
        &Signed {
            placement: Placement::Header,
            access_key_id: String::new(),
            date: "20261207".into(),
            region: "r".into(),
            service: "s3".into(),
            amz_date: "20261207T000000Z".into(),
            signed_headers: vec![],
            signature: String::new(),
        },
    );
    let resigned = Resigned {
        amz_date: "20261207T000000Z".into(),
        scope: "20261207/r/s3/aws4_request".into(),
        placeholder_seed: "0".repeat(64),
        real_seed: "1".repeat(64),
        placeholder_key: key.clone(),
        real_key: key,
    };
    let mut r = ChunkResigner::new(&resigned, false, 1 << 20);
    let bad = format!("3;chunk-signature={}\r\nabc\r\n", "f".repeat(64));
    assert_eq!(r.push(bad.as_bytes()).err(), Some(SignError::Mismatch));
    let mut r = ChunkResigner::new(&resigned, false, 4);
    let big = format!("10;chunk-signature={}\r\n", "f".repeat(64));
    assert_eq!(
        r.push(big.as_bytes()).err(),
        Some(SignError::ChunkTooLarge(4))
    );
    let r = ChunkResigner::new(&resigned, false, 4);
    assert!(matches!(r.finish(), Err(SignError::BadChunk(_))));
}

/// A long signed body passes with at most one chunk held at any time: memory does not
/// grow with the body (64 chunks of 64 KiB, fed in 10 000-byte pieces).
#[test]
fn a_long_chunked_body_is_resigned_holding_at_most_one_chunk() {
    let signed = Signed {
        placement: Placement::Header,
        access_key_id: String::new(),
        date: "20261207".into(),
        region: "us-east-1".into(),
        service: "s3".into(),
        amz_date: "20261207T000000Z".into(),
        signed_headers: vec![],
        signature: String::new(),
    };
    let placeholder_key = signing_key(&SecretString::from("placeholder".to_owned()), &signed);
    let real_key = signing_key(&SecretString::from("real".to_owned()), &signed);
    let seed = "a".repeat(64);
    let scope = signed.scope();
    // The body as a sandbox signs it with the placeholder key, built with the same
    // chain the resigner checks (the AWS-documented vectors above pin the chain itself).
    let mut chain = ChunkResigner::new(
        &Resigned {
            amz_date: signed.amz_date.clone(),
            scope: scope.clone(),
            placeholder_seed: seed.clone(),
            real_seed: seed.clone(),
            placeholder_key: placeholder_key.clone(),
            real_key: placeholder_key.clone(),
        },
        false,
        1 << 20,
    );
    let chunk = vec![b'x'; 64 * 1024];
    let mut body = Vec::new();
    let mut previous = seed.clone();
    for data in std::iter::repeat_n(chunk.as_slice(), 64).chain([&b""[..]]) {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{scope}\n{previous}\n{}\n{}",
            signed.amz_date,
            crate::sha256_hex(b""),
            crate::sha256_hex(data)
        );
        previous = crate::hex(&mac(&placeholder_key, to_sign.as_bytes()));
        body.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", data.len()).as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    // Sanity: the same chain verifies it.
    assert_eq!(chain.push(&body).expect("verifies").len(), body.len());
    let mut resigner = ChunkResigner::new(
        &Resigned {
            amz_date: signed.amz_date.clone(),
            scope,
            placeholder_seed: seed.clone(),
            real_seed: seed,
            placeholder_key,
            real_key,
        },
        false,
        1 << 20,
    );
    let mut sent = 0;
    let mut most = 0;
    for piece in body.chunks(10_000) {
        sent += resigner.push(piece).expect("chunk").len();
        most = most.max(resigner.buffered());
    }
    resigner.finish().expect("complete");
    assert_eq!(sent, body.len(), "lengths are kept");
    assert!(most <= 64 * 1024 + 100, "held {most} bytes at most");
}
