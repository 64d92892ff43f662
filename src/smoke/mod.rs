//! The built-in smoke suite: cluster health checks that matter after an upgrade, shipped as a
//! container image built locally from e2e-gate's own binary, speaking the conformance-image
//! contract like any other suite.

pub(crate) mod checks;
pub(crate) mod collect;
pub(crate) mod entry;
pub(crate) mod image;
pub(crate) mod report;

pub(crate) use checks::SmokeOptions;
pub(crate) use entry::SmokeRun;
