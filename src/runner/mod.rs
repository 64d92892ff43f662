//! Runs suite containers: one attempt per container, reruns of failed specs, timeouts.

mod attempt;
mod container;
mod detect;
mod docker;
pub mod invocation;
pub mod progress;
pub mod rerun;
mod suite_run;

pub use attempt::{AttemptOutcome, Limits, StopReason};
pub use container::{
    BindMount, ContainerExit, ContainerRunner, ContainerSpec, RunnerError, StopSignal,
    LABEL_ATTEMPT, LABEL_RUN, LABEL_SUITE,
};
pub use docker::DockerRunner;
pub use suite_run::{dry_run_suite, run_suite, RunContext};
