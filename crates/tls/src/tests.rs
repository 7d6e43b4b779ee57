use std::sync::Arc;

use super::*;

#[test]
fn creates_then_loads_the_same_ca_with_a_private_key_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, origin) = CertificateAuthority::load_or_create(dir.path()).expect("create");
    assert_eq!(origin, CaOrigin::Created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (again, origin) = CertificateAuthority::load_or_create(dir.path()).expect("load");
    assert_eq!(origin, CaOrigin::Loaded);
    assert_eq!(ca.cert_pem(), again.cert_pem());
}

#[cfg(unix)]
#[test]
fn a_ca_key_others_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    CertificateAuthority::create(dir.path()).expect("create");
    let key = dir.path().join(CA_KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = CertificateAuthority::load_or_create(dir.path()).expect_err("must refuse");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    CertificateAuthority::load_or_create(dir.path()).expect("loads once private");
}

#[test]
fn half_a_ca_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    CertificateAuthority::create(dir.path()).expect("create");
    std::fs::remove_file(dir.path().join(CA_KEY_FILE)).expect("rm");
    let err = CertificateAuthority::load_or_create(dir.path()).expect_err("must refuse");
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(dir.path().join(CA_CERT_FILE).exists(), "never overwritten");
}

#[tokio::test]
async fn concurrent_misses_issue_one_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::create(dir.path()).expect("ca");
    let cache = Arc::new(LeafCache::new(ca, 16).expect("cache"));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(
                async move { cache.server_config("api.example.com").await.expect("issue") },
            )
        })
        .collect();
    let mut configs = Vec::new();
    for t in tasks {
        configs.push(t.await.expect("join"));
    }
    assert!(
        configs.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])),
        "every waiter got the one issuance"
    );
    let other = cache
        .server_config("other.example.com")
        .await
        .expect("issue");
    assert!(!Arc::ptr_eq(&configs[0], &other));
}

#[test]
fn upstream_config_refuses_a_pem_without_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "nothing here").expect("write");
    assert!(upstream_client_config(&[&empty]).is_err());
    let ca = CertificateAuthority::create(&dir.path().join("ca")).expect("ca");
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, ca.cert_pem()).expect("write");
    assert!(upstream_client_config(&[&good]).is_ok());
}

/// A TLS handshake in memory: a client trusting only `ca` connects to `host` served
/// with a leaf from `cache`. True when the client accepts the certificate.
async fn client_accepts(cache: &LeafCache, host: &str) -> bool {
    let server = tokio_rustls::TlsAcceptor::from(cache.issue_uncached(host).expect("leaf"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::upstream::certs_from_pem(cache.ca().cert_pem()) {
        roots.add(cert).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = tokio_rustls::TlsConnector::from(Arc::new(config));
    let (a, b) = tokio::io::duplex(64 * 1024);
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).expect("name");
    let (client, _server) = tokio::join!(client.connect(name, a), server.accept(b));
    client.is_ok()
}

#[tokio::test]
async fn a_name_constrained_ca_is_trusted_only_for_its_domains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let permitted = vec!["api.example.com".to_owned(), "example.org".to_owned()];
    let (ca, _) = CertificateAuthority::load_or_create_for(dir.path(), &permitted).expect("ca");
    let cache = LeafCache::new(ca, 8).expect("cache");
    assert!(client_accepts(&cache, "api.example.com").await);
    assert!(client_accepts(&cache, "files.example.org").await);
    assert!(
        !client_accepts(&cache, "www.google.com").await,
        "outside the constraint"
    );
    assert!(
        !client_accepts(&cache, "example.com").await,
        "the parent of an exact host"
    );

    // Without constraints the same CA would vouch for anything.
    let open = tempfile::tempdir().expect("tempdir");
    let (ca, _) = CertificateAuthority::load_or_create(open.path()).expect("ca");
    let cache = LeafCache::new(ca, 8).expect("cache");
    assert!(client_accepts(&cache, "www.google.com").await);
}

/// The suite a client that puts AES-256-GCM-SHA384 first (rustls's own order) and one
/// that offers only it get from a leaf.
async fn negotiated_suite(cache: &LeafCache, only_aes256: bool) -> Option<rustls::CipherSuite> {
    let server = tokio_rustls::TlsAcceptor::from(cache.issue_uncached("api.x.com").expect("leaf"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::upstream::certs_from_pem(cache.ca().cert_pem()) {
        roots.add(cert).expect("root");
    }
    let mut provider = (*crate::provider()).clone();
    if only_aes256 {
        provider
            .cipher_suites
            .retain(|s| s.suite() == rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = tokio_rustls::TlsConnector::from(Arc::new(config));
    let (a, b) = tokio::io::duplex(64 * 1024);
    let name = rustls_pki_types::ServerName::try_from("api.x.com").expect("name");
    let (client, _server) = tokio::join!(client.connect(name, a), server.accept(b));
    let stream = client.ok()?;
    stream
        .get_ref()
        .1
        .negotiated_cipher_suite()
        .map(|s| s.suite())
}

#[tokio::test]
async fn sandboxes_get_aes_128_gcm_sha256_first_and_any_suite_they_need() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, _) = CertificateAuthority::load_or_create(dir.path()).expect("ca");
    let cache = LeafCache::new(ca, 8).expect("cache");
    let first = crate::provider().cipher_suites[0].suite();
    assert_eq!(
        first,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
        "the client's own order puts AES-256 first"
    );
    assert_eq!(
        negotiated_suite(&cache, false).await,
        Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
        "egret's order decides"
    );
    assert_eq!(
        negotiated_suite(&cache, true).await,
        Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384),
        "a client with only AES-256 still connects"
    );
}
