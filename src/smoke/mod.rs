//! The built-in smoke suite: cluster health checks that matter after an upgrade, shipped as a
//! container image built locally from e2e-gate's own binary, speaking the conformance-image
//! contract like any other suite.

pub mod checks;
pub mod collect;
pub mod entry;
pub mod image;
pub mod report;

pub use checks::{ClusterState, SmokeOptions, CHECK_NAMES};
pub use entry::SmokeRun;
