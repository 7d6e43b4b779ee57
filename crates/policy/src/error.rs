use std::fmt;
use std::path::PathBuf;

/// A policy the proxy cannot run: where it is wrong and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: cannot read the policy file: {source}; check the path and its permissions", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Problems),
}

/// Every problem found in a policy file, in file order; never empty. Shown one per line,
/// each with its own `file:line:col:`, so a person fixes them all in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(Vec<Located>);

impl Problems {
    /// `found` in file order; `None` when nothing was found.
    pub(crate) fn new(mut found: Vec<Located>) -> Option<Self> {
        found.sort_by_key(|l| (l.line, l.column));
        found.dedup();
        (!found.is_empty()).then_some(Self(found))
    }

    pub(crate) fn one(problem: Located) -> Self {
        Self(vec![problem])
    }

    /// The first problem in the file.
    pub fn first(&self) -> &Located {
        &self.0[0]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Located> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// One refusal with its place in the file (`file:line:col: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}
