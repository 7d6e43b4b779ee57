//! Leaf certificates for intercepted hosts: issued by the CA, cached per host (bounded),
//! one issuance per host however many connections miss at once.

use std::sync::Arc;
use std::time::Duration;

// tokio's instant: a test that pauses tokio's clock ages leaves with it.
use tokio::time::Instant;

use quick_cache::sync::Cache;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use egret_metrics::Counter;

use crate::ca::CertificateAuthority;
use crate::error::TlsError;
use crate::provider;

/// The provider with its AES-128-GCM suites first, for the sandbox side.
///
/// Why: a sandbox opens many short connections, and each handshake's key schedule is a
/// few dozen HMACs. rustls clients (and most others) put AES-256-GCM-SHA384 first, whose
/// SHA-384 has no instructions of its own on x86: it was 14 % of egret's time with a new
/// connection per request, SHA-256 (SHA-NI) a fraction of that. AES-128-GCM is what
/// browsers prefer; every suite stays on offer for a client that has no other.
fn sandbox_side_suites(base: &CryptoProvider) -> CryptoProvider {
    let mut suites = base.cipher_suites.clone();
    let first = [
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    // A stable sort: the others keep the provider's order.
    suites.sort_by_key(|s| !first.contains(&s.suite()));
    CryptoProvider {
        cipher_suites: suites,
        ..base.clone()
    }
}

/// How long a leaf is valid, and when the cache re-issues it.
const LEAF_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
const LEAF_RENEW_AFTER: Duration = Duration::from_secs(20 * 24 * 3600);

#[derive(Clone)]
struct Leaf {
    config: Arc<ServerConfig>,
    renew_at: Instant,
}

/// Issues and caches one TLS server configuration per intercepted host.
pub struct LeafCache {
    ca: CertificateAuthority,
    /// One key for every leaf: a miss costs one signature, not a key generation.
    leaf_key: KeyPair,
    signing_key: Arc<dyn SigningKey>,
    provider: Arc<CryptoProvider>,
    cache: Cache<String, Leaf>,
    hits: Counter,
    misses: Counter,
}

impl LeafCache {
    pub fn new(ca: CertificateAuthority, capacity: usize) -> Result<Self, TlsError> {
        let provider = Arc::new(sandbox_side_suites(&provider()));
        let leaf_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| TlsError::Issue {
                host: "leaf key".into(),
                reason: e.to_string(),
            })?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing_key = provider.key_provider.load_private_key(der)?;
        Ok(Self {
            ca,
            leaf_key,
            signing_key,
            provider,
            cache: Cache::new(capacity.max(1)),
            hits: Counter::default(),
            misses: Counter::default(),
        })
    }

    /// Counts cache hits and issuances into these counters (the metrics registry's).
    pub fn with_counters(mut self, hits: Counter, misses: Counter) -> Self {
        self.hits = hits;
        self.misses = misses;
        self
    }

    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The server configuration for `host` (already normalized), from the cache or freshly
    /// issued. Concurrent misses for one host wait for a single issuance.
    pub async fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, TlsError> {
        if let Some(leaf) = self.cache.get(host) {
            if leaf.renew_at > Instant::now() {
                self.hits.inc();
                return Ok(leaf.config);
            }
            self.cache.remove(host);
        }
        let leaf = self
            .cache
            .get_or_insert_async(host, async { self.issue(host) })
            .await?;
        Ok(leaf.config)
    }

    /// The hot path of a cache hit, exposed for benchmarks.
    pub fn cached(&self, host: &str) -> Option<Arc<ServerConfig>> {
        self.cache.get(host).map(|l| l.config)
    }

    /// Issues a leaf for `host`, bypassing the cache (benchmarks and tests).
    pub fn issue_uncached(&self, host: &str) -> Result<Arc<ServerConfig>, TlsError> {
        self.issue(host).map(|l| l.config)
    }

    fn issue(&self, host: &str) -> Result<Leaf, TlsError> {
        self.misses.inc();
        let fail = |e: rcgen::Error| TlsError::Issue {
            host: host.to_owned(),
            reason: e.to_string(),
        };
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(fail)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + LEAF_VALIDITY;
        let cert = params
            .signed_by(&self.leaf_key, &self.ca.issuer)
            .map_err(fail)?;
        let ca_der = CertificateDer::from(self.ca.issuer_der()?);
        let chain = vec![cert.der().clone(), ca_der];
        let certified = Arc::new(CertifiedKey::new(chain, self.signing_key.clone()));
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // egret's order, not the client's: AES-128-GCM with SHA-256 first (see
        // `sandbox_side_suites`).
        config.ignore_client_order = true;
        Ok(Leaf {
            config: Arc::new(config),
            renew_at: Instant::now() + LEAF_RENEW_AFTER,
        })
    }
}
