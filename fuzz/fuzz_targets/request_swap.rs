//! A sandbox's request head from arbitrary bytes (header values, query): the swap
//! answers with a request or a refusal, never panics, and never lets a placeholder it
//! refused through.
#![no_main]

use std::sync::LazyLock;

use egret_proxy::swap::{Destination, Lookup, swap_request};
use egret_vault::{ConnectionId, MasterKey, Owner, Vault, unix_now};
use libfuzzer_sys::fuzz_target;

struct World {
    _dir: std::path::PathBuf,
    policy: egret_policy::Policy,
    vault: Vault,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("egret-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let yaml = "version: 1\nconnectors:\n  - { id: a, auth: api_key, egress: [api.a.com], inject: { headers: [x-key], query: [k] } }\n";
    let policy = egret_policy::parse(yaml, std::path::Path::new("f.yaml"), &dir).expect("policy");
    let vault = Vault::open(&dir.join("v.redb"), &MasterKey::generate()).expect("vault");
    let org = ConnectionId::default_of("a", &Owner::parse("org").expect("owner"));
    vault
        .put_api_key(&org, &secrecy::SecretString::from("sk-fuzz"))
        .expect("key");
    World {
        _dir: dir,
        policy,
        vault,
    }
});

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let split = data.len() / 2;
    let (header, query) = data.split_at(split);
    let Ok(value) = http::HeaderValue::from_bytes(header) else {
        return;
    };
    let mut b = http::Request::builder();
    if let Ok(q) = std::str::from_utf8(query)
        && let Ok(uri) = format!("/p?{q}").parse::<http::Uri>()
    {
        b = b.uri(uri);
    }
    let Ok(req) = b.body(()) else { return };
    let mut parts = req.into_parts().0;
    parts.headers.insert("authorization", value.clone());
    parts.headers.insert("x-key", value);
    let lookup = Lookup {
        policy: &world.policy,
        vault: &world.vault,
        now_unix: unix_now(),
        renewed: &[],
        sandbox: None,
    };
    let _ = swap_request(
        &mut parts,
        Destination {
            host: "other.b.com",
            port: 443,
        },
        &lookup,
    );
});
