//! Suites as data: `suites/<name>.toml`, validated into [`SuiteSpec`].

mod error;
pub(crate) mod file;
mod load;
mod spec;

pub(crate) use error::SuiteError;
pub(crate) use file::{Contract, GinkgoVersion};
pub use load::parse_suite;
pub(crate) use load::{load_all, select};
pub(crate) use spec::Overrides;
pub use spec::SuiteSpec;
