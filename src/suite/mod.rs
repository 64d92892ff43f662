//! Suites as data: `suites/<name>.toml`, validated into [`SuiteSpec`].

mod error;
pub mod file;
mod load;
mod spec;

pub use error::SuiteError;
pub use file::{Contract, GinkgoVersion};
pub use load::{load_all, parse_suite, select};
pub use spec::{defaults, Overrides, SuiteSpec};
