//! Runs suite containers: one attempt per container, reruns of failed specs, timeouts.

mod container;
mod docker;
pub mod invocation;
pub mod progress;
pub mod rerun;

pub use container::{
    BindMount, ContainerExit, ContainerRunner, ContainerSpec, RunnerError, StopSignal, LABEL_ATTEMPT, LABEL_RUN,
    LABEL_SUITE,
};
pub use docker::DockerRunner;
