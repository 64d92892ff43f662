//! The audit log: one JSON line per promotion decision, appended.

use super::flow::Outcome;
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::Path;

/// The audit line for `outcome` at `now`.
pub(crate) fn line(outcome: &Outcome, now: DateTime<Utc>) -> String {
    let mut v = serde_json::to_value(outcome).unwrap_or_default();
    v["time"] = now
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .into();
    v.to_string()
}

/// Appends `line` and a newline to `path` (created if missing).
pub(crate) fn append(path: &Path, line: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(format!("{line}\n").as_bytes())
}
