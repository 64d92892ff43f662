//! Suites as data: `suites/<name>.toml`, validated into [`SuiteSpec`].

mod error;
pub(crate) mod file;
mod load;
mod spec;

pub(crate) use error::SuiteError;
pub(crate) use file::{Contract, GinkgoVersion};
pub use load::{load_all, parse_suite, select};
pub use spec::{defaults, Overrides, SuiteSpec};
