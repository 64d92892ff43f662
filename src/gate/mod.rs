//! The gate: one command from cluster to verdict (cluster up → suites → cluster down, always),
//! with every step recorded in a runner testsuite.

pub(crate) mod availability;
mod orchestrator;
pub(crate) mod profile;
mod steps;
mod suites;
mod upgrade_step;

pub use orchestrator::{
    run_gate, GateInputs, GateReport, KubeReadiness, ReadyProbe, UPGRADE_CONTEXT,
};
pub use profile::{Profile, Provider};
pub use steps::{Step, StepOutcome, StepRecorder, RUNNER_SUITE};
pub(crate) use suites::run_suites;
pub use upgrade_step::{failure_headline, judge, UpgradeRunner};
