//! A [`Proxy`] for unit tests: a throwaway vault and CA in a temporary folder, no
//! listener. Steps that need the proxy's shared parts (metrics, limits, clock) run
//! against it without sockets.

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::{Limits, Proxy, Services};

pub(crate) struct TestProxy {
    proxy: Proxy,
    _dir: tempfile::TempDir,
}

impl Deref for TestProxy {
    type Target = Proxy;
    fn deref(&self) -> &Proxy {
        &self.proxy
    }
}

pub(crate) fn test_proxy() -> TestProxy {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = egret_policy::parse("version: 1\n", &dir.path().join("t.yaml"), dir.path())
        .expect("policy");
    let policy = Arc::new(ArcSwap::from_pointee(policy));
    let key = egret_vault::MasterKey::generate();
    let vault =
        Arc::new(egret_vault::Vault::open(&dir.path().join("v.redb"), &key).expect("vault"));
    let (ca, _) = egret_tls::CertificateAuthority::load_or_create(dir.path()).expect("ca");
    let leaves = Arc::new(egret_tls::LeafCache::new(ca, 16).expect("leaves"));
    let outbound = egret_outbound::Outbound::new(policy.clone()).expect("outbound");
    let metrics = Arc::new(egret_metrics::Metrics::new());
    let clock = egret_clock::Clock::for_tests();
    let http = egret_oauth::HttpClient::new(&outbound, std::time::Duration::from_secs(1));
    let vendor = Arc::new(egret_oauth::HttpVendor::new(http, clock.clone()));
    let broker = egret_oauth::Broker::new(
        policy.clone(),
        vault.clone(),
        vendor,
        metrics.clone(),
        clock.clone(),
        Arc::new(egret_webhooks::NoEvents),
    );
    let audit = egret_vault::AuditWriter::start(vault.clone(), metrics.audit_dropped.clone());
    let approvals = Arc::new(egret_approvals::Approvals::new(
        vault.clone(),
        policy.clone(),
        Arc::new(egret_webhooks::NoEvents),
        clock.clone(),
    ));
    let secrets = Arc::new(egret_secrets::Secrets::new(
        &outbound,
        metrics.clone(),
        egret_secrets::vault_aws_keys(vault.clone()),
    ));
    let services = Services {
        secrets,
        events: Arc::new(egret_webhooks::NoEvents),
        approvals,
        broker,
        metrics,
        audit,
        clock,
    };
    let proxy = Proxy::new(policy, vault, leaves, outbound, Limits::default(), services);
    TestProxy { proxy, _dir: dir }
}
