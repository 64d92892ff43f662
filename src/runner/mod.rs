//! Runs suite containers: one attempt per container, reruns of failed specs, timeouts.

mod attempt;
mod container;
mod detect;
mod docker;
pub(crate) mod invocation;
pub(crate) mod progress;
pub(crate) mod rerun;
mod suite_run;

pub use container::{
    BindMount, ContainerExit, ContainerRunner, ContainerSpec, RunnerError, StopSignal,
};
pub(crate) use docker::DockerRunner;
pub(crate) use suite_run::{dry_run_suite, run_suite, RunContext};
