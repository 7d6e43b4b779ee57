//! Why a value could not be had from a secret source.

/// A failed read, naming the source (`vault`, `aws_sm`, …) and what went wrong — never
/// the source's token, never a value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("secret source `{source_name}`: {why}")]
pub struct SourceError {
    pub source_name: &'static str,
    pub why: String,
}

impl SourceError {
    pub fn new(source: &'static str, why: impl Into<String>) -> Self {
        Self {
            source_name: source,
            why: why.into(),
        }
    }
}
