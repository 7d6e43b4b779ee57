//! Any bytes as a policy file: an error or a policy, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = egret_policy::parse(
            text,
            std::path::Path::new("fuzz.yaml"),
            std::path::Path::new("/"),
        );
        let _ = egret_policy::HostPattern::parse(text);
    }
});
