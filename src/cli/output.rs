//! Logging: `tracing` to stderr, filtered by `E2E_GATE_LOG` (default `info`; octocrab's own
//! events are off by default, e2e-gate logs every failed GitHub call itself), no colour
//! when stderr is not a terminal (Jenkins console).

use std::io::IsTerminal;

/// Installs the global subscriber. Safe to call once per process.
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("E2E_GATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,octocrab=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .compact()
        .try_init();
}
