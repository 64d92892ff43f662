//! The one table of process exit codes. README.md and `--help` list the same table.

/// Everything passed (flaky specs are allowed unless `--fail-on-flaky`); a promotion
/// was made or there was nothing to do.
pub const OK: u8 = 0;
/// A spec failed, the gate is closed, or an upgrade plan has blockers.
pub const FAILED: u8 = 1;
/// Usage or configuration error: bad flag, bad suite file, bad regex.
pub const USAGE: u8 = 2;
/// Infrastructure error (Docker gone, missing image, cluster or API unreachable)
/// or incomplete results (truncated JUnit, aborted run).
pub const INFRA: u8 = 3;
/// The tests' verdict is known, but a GitHub commit status could not be posted.
pub const STATUS_POST_FAILED: u8 = 4;
/// Interrupted by SIGINT or SIGTERM; results gathered so far were written.
pub const INTERRUPTED: u8 = 130;

/// Rows for the help text and README: `(code, meaning)`.
pub const TABLE: &[(u8, &str)] = &[
    (
        OK,
        "passed (flaky allowed unless --fail-on-flaky); promoted or nothing to do",
    ),
    (
        FAILED,
        "a spec failed; the promotion gate is closed; an upgrade plan has blockers",
    ),
    (
        USAGE,
        "usage or configuration error (flag, suite file, regex)",
    ),
    (
        INFRA,
        "infrastructure error (Docker, image, cluster, API) or incomplete results",
    ),
    (
        STATUS_POST_FAILED,
        "verdict known, but a GitHub status could not be posted",
    ),
    (
        INTERRUPTED,
        "interrupted by SIGINT/SIGTERM; partial results were written",
    ),
];

/// The table rendered for `--help` epilogues.
pub fn help_table() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, meaning) in TABLE {
        s.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    s
}
