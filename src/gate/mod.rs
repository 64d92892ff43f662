//! The gate: one command from cluster to verdict (cluster up → suites → cluster down, always),
//! with every step recorded in a runner testsuite.

pub(crate) mod availability;
mod orchestrator;
pub(crate) mod profile;
mod steps;
mod suites;
mod upgrade_step;

pub(crate) use orchestrator::KubeReadiness;
pub use orchestrator::{run_gate, GateInputs, GateReport, ReadyProbe, UPGRADE_CONTEXT};
pub use profile::{Profile, Provider};
pub use steps::{Step, StepOutcome, StepRecorder};
pub(crate) use suites::run_suites;
pub use upgrade_step::{failure_headline, UpgradeRunner};
