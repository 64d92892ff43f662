//! e2e-gate: decides whether a Kubernetes cluster configuration may move forward.
//!
//! The folder tree is the architecture:
//! - [`cli`] parses arguments and is the only place that wires real adapters;
//! - [`cluster`] brings clusters under test up and down (`sim`: the embedded simulated
//!   cluster, `kind`, `existing`);
//! - [`suite`] loads suite definitions (TOML under `suites/`) and builds container arguments;
//! - [`runner`] runs suite containers through a [`runner::ContainerRunner`] with retries;
//! - [`results`] reads every ginkgo result shape into one model and writes JUnit and summaries;
//! - [`status`] posts GitHub commit statuses; [`promote`] moves channel branches;
//! - [`upgrade`] plans and applies rolling node upgrades (`e2e-gate upgrade plan|apply|abort`).
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub(crate) mod atomic_write;
pub mod cli;
pub mod cluster;
pub mod exit_code;
pub mod gate;
pub(crate) mod kube_time;
pub(crate) mod process_control;
pub mod promote;
pub(crate) mod quantity;
pub mod results;
pub mod runner;
pub(crate) mod smoke;
pub mod status;
pub mod suite;
pub mod upgrade;

/// mimalloc instead of the system allocator: reading results builds one small allocation
/// per spec name and attempt (tens of thousands per suite) and frees them together, the
/// pattern glibc's malloc handles worst; it was an eighth of `report`'s time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The first line of a message (all of a one-line message; empty for an empty one).
pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// An error with its causes, each once ("client error (Connect): tcp connect error: Connection
/// refused"): the outermost message alone rarely says what to fix. `part` picks what of each
/// message is kept (all of it, or its first line).
pub(crate) fn error_chain(e: &dyn std::error::Error, part: fn(&str) -> &str) -> String {
    let mut text = part(&e.to_string()).to_string();
    for cause in std::iter::successors(e.source(), |c| c.source()) {
        let next = cause.to_string();
        if !text.contains(part(&next)) {
            text = format!("{text}: {}", part(&next));
        }
    }
    text
}
