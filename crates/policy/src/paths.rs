//! Paths in the policy are relative to the policy file's folder. Joined and cleaned
//! lexically (`config/../data` is `data`), so every path egret prints reads as a person
//! would write it.

use std::path::{Component, Path, PathBuf};

/// `base` joined with `relative` (an absolute `relative` stands alone), without `.`
/// segments and with each `..` taking the segment before it.
pub(crate) fn joined(base: &Path, relative: impl AsRef<Path>) -> PathBuf {
    let mut out = PathBuf::new();
    for part in base.join(relative).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                let last = out.components().next_back();
                match last {
                    Some(Component::Normal(_)) => {
                        out.pop();
                    }
                    // `/..` is `/`; a relative path keeps leading `..`.
                    Some(Component::RootDir | Component::Prefix(_)) => {}
                    _ => out.push(".."),
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_and_cleaned() {
        let cases = [
            ("config", "../data/egret.redb", "data/egret.redb"),
            ("/etc/egret", "./certs", "/etc/egret/certs"),
            (
                "/etc/egret",
                "/var/lib/egret/v.redb",
                "/var/lib/egret/v.redb",
            ),
            ("../config", "../data", "../data"),
            ("/", "../x", "/x"),
            ("config", "..", "."),
        ];
        for (base, rel, expected) in cases {
            assert_eq!(
                joined(Path::new(base), rel),
                Path::new(expected),
                "{base} + {rel}"
            );
        }
    }
}
