//! Suite loading errors; every one names the file, field or flag and what would be valid.

use std::path::PathBuf;

/// A suite could not be loaded or an override is invalid.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SuiteError {
    /// The suites directory could not be read.
    #[error("cannot read suites directory {}: {message}", dir.display())]
    Dir {
        dir: PathBuf,
        /// The OS error.
        message: String,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("{}: {message}", file.display())]
    Parse {
        file: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A field has an invalid value.
    #[error("{}: field {field}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        /// The field, e.g. `skip[1]`.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A command-line override is invalid.
    #[error("{flag}: {message}")]
    Flag {
        /// The flag, e.g. `--focus`.
        flag: String,
        message: String,
    },
    /// No suite has that name.
    #[error("no suite named {name:?} in {}; known suites: {}", dir.display(), known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// Where we looked.
        dir: PathBuf,
        /// Suites that exist.
        known: Vec<String>,
    },
}
