//! e2e-gate: decides whether a Kubernetes cluster configuration may move forward.
//!
//! The folder tree is the architecture:
//! - [`cli`] parses arguments and is the only place that wires real adapters;
//! - [`cluster`] brings clusters under test up and down (`sim`: the embedded simulated
//!   cluster, `kind`, `existing`);
//! - [`suite`] loads suite definitions (TOML under `suites/`) and builds container arguments;
//! - [`runner`] runs suite containers through a [`runner::ContainerRunner`] with retries;
//! - [`results`] reads every ginkgo result shape into one model and writes JUnit and summaries;
//! - [`status`] posts GitHub commit statuses; [`promote`] moves channel branches.
#![warn(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod exit_code;
pub mod gate;
pub mod promote;
pub mod results;
pub mod runner;
pub mod smoke;
pub mod status;
pub mod suite;
