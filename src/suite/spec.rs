//! The resolved, validated suite: what the runner uses. Pure.

use super::error::SuiteError;
use super::file::{Contract, GinkgoVersion, SuiteFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Defaults for keys a suite file leaves out.
pub mod defaults {
    use std::time::Duration;
    /// One in-process attempt: no ginkgo retry.
    pub(crate) const FLAKE_ATTEMPTS: u32 = 1;
    /// No rerun containers.
    pub(crate) const RERUNS: u32 = 0;
    /// Serial.
    pub(crate) const PARALLEL: u32 = 1;
    /// Three hours: conformance takes 1–2 h on a small cluster.
    pub(crate) const TIMEOUT: Duration = Duration::from_secs(3 * 3600);
    /// Thirty minutes without a finished spec: the longest real conformance specs take ~15 min.
    pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    /// The conformance image's `e2e.test` path.
    pub(crate) const COMMAND: &str = "/usr/local/bin/e2e.test";
}

/// A suite ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteSpec {
    /// Suite name.
    pub name: String,
    /// Where it was loaded from (for messages).
    pub source: PathBuf,
    /// One-line description.
    pub description: Option<String>,
    /// Image reference.
    pub image: String,
    /// How to drive the image.
    pub contract: Contract,
    /// ginkgo major version as declared; `None` = detect it from the first container.
    pub ginkgo: Option<GinkgoVersion>,
    /// Focus regexes, validated.
    pub focus: Vec<String>,
    /// Skip regexes, validated.
    pub skip: Vec<String>,
    /// In-process attempts per spec (≥ 1).
    pub flake_attempts: u32,
    /// Rerun containers for failed specs.
    pub reruns: u32,
    /// ginkgo processes (≥ 1).
    pub parallel: u32,
    /// Hard limit per container.
    pub timeout: Duration,
    /// Stop when no spec finished for this long.
    pub stall_timeout: Duration,
    /// GitHub status context.
    pub status_context: String,
    /// Command for `ginkgo-binary`.
    pub command: Vec<String>,
    /// Extra test-binary arguments.
    pub extra_args: Vec<String>,
    /// Extra ginkgo arguments.
    pub extra_ginkgo_args: Vec<String>,
    /// Extra container environment.
    pub env: BTreeMap<String, String>,
}

/// Command-line overrides; `None` keeps the suite file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces `focus` when non-empty.
    pub focus: Vec<String>,
    /// Replaces `skip` when non-empty.
    pub skip: Vec<String>,
    /// Replaces `flake_attempts`.
    pub flake_attempts: Option<u32>,
    /// Replaces `reruns`.
    pub reruns: Option<u32>,
    /// Replaces `parallel`.
    pub parallel: Option<u32>,
    /// Replaces `timeout`.
    pub timeout: Option<Duration>,
    /// Replaces `stall_timeout`.
    pub stall_timeout: Option<Duration>,
}

impl SuiteSpec {
    /// Validates a parsed file. `source` names the file in every error.
    pub(crate) fn from_file(file: SuiteFile, source: &Path) -> Result<SuiteSpec, SuiteError> {
        let invalid = |field: &str, message: String| SuiteError::Invalid {
            file: source.to_path_buf(),
            field: field.into(),
            message,
        };
        if file.name.is_empty()
            || !file
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(invalid(
                "name",
                format!(
                    "{:?} is not a valid suite name; use lowercase letters, digits, '-' and '_'",
                    file.name
                ),
            ));
        }
        if file.image.trim().is_empty() {
            return Err(invalid("image", "must not be empty".into()));
        }
        for (field, list) in [("focus", &file.focus), ("skip", &file.skip)] {
            for (i, re) in list.iter().enumerate() {
                regex::Regex::new(re).map_err(|e| {
                    invalid(
                        &format!("{field}[{i}]"),
                        format!("invalid regex {re:?}: {e}"),
                    )
                })?;
            }
        }
        let at_least_one = |field: &str, v: Option<u32>, default: u32| match v.unwrap_or(default) {
            0 => Err(invalid(field, "must be at least 1".into())),
            v => Ok(v),
        };
        let duration = |field: &str, v: &Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(v) => humantime::parse_duration(v).map_err(|e| {
                invalid(
                    field,
                    format!(
                        "invalid duration {v:?} ({e}); use forms like \"90s\", \"15m\", \"1h30m\""
                    ),
                )
            }),
        };
        let flake_attempts = at_least_one(
            "flake_attempts",
            file.flake_attempts,
            defaults::FLAKE_ATTEMPTS,
        )?;
        let parallel = at_least_one("parallel", file.parallel, defaults::PARALLEL)?;
        if parallel > 1 && file.contract == Contract::GinkgoBinary {
            return Err(invalid(
                "parallel",
                "parallel > 1 needs the ginkgo CLI; use contract = \"conformance-image\" or parallel = 1".into(),
            ));
        }
        let timeout = duration("timeout", &file.timeout, defaults::TIMEOUT)?;
        let stall_timeout = duration(
            "stall_timeout",
            &file.stall_timeout,
            defaults::STALL_TIMEOUT,
        )?;
        let command = file
            .command
            .unwrap_or_else(|| vec![defaults::COMMAND.to_string()]);
        if command.is_empty() {
            return Err(invalid("command", "must name the test binary".into()));
        }
        for key in file.env.keys() {
            if key.is_empty() || key.contains('=') {
                return Err(invalid(
                    "env",
                    format!("{key:?} is not a valid environment variable name"),
                ));
            }
        }
        Ok(SuiteSpec {
            status_context: file
                .status_context
                .unwrap_or_else(|| format!("e2e-gate/{}", file.name)),
            name: file.name,
            source: source.to_path_buf(),
            description: file.description,
            image: file.image,
            contract: file.contract,
            ginkgo: file.ginkgo,
            focus: file.focus,
            skip: file.skip,
            flake_attempts,
            reruns: file.reruns.unwrap_or(defaults::RERUNS),
            parallel,
            timeout,
            stall_timeout,
            command,
            extra_args: file.extra_args,
            extra_ginkgo_args: file.extra_ginkgo_args,
            env: file.env,
        })
    }

    /// Applies command-line overrides; regexes are validated and errors name the flag.
    pub(crate) fn apply(mut self, o: &Overrides) -> Result<SuiteSpec, SuiteError> {
        let flag = |field: &str, message: String| SuiteError::Flag {
            flag: field.into(),
            message,
        };
        for (name, list) in [("--focus", &o.focus), ("--skip", &o.skip)] {
            for re in list {
                regex::Regex::new(re)
                    .map_err(|e| flag(name, format!("invalid regex {re:?}: {e}")))?;
            }
        }
        if !o.focus.is_empty() {
            self.focus = o.focus.clone();
        }
        if !o.skip.is_empty() {
            self.skip = o.skip.clone();
        }
        if let Some(v) = o.flake_attempts {
            if v == 0 {
                return Err(flag("--flake-attempts", "must be at least 1".into()));
            }
            self.flake_attempts = v;
        }
        self.reruns = o.reruns.unwrap_or(self.reruns);
        if let Some(v) = o.parallel {
            if v == 0 {
                return Err(flag("--parallel", "must be at least 1".into()));
            }
            if v > 1 && self.contract == Contract::GinkgoBinary {
                return Err(flag(
                    "--parallel",
                    format!(
                        "suite {} uses contract ginkgo-binary, which runs serially",
                        self.name
                    ),
                ));
            }
            self.parallel = v;
        }
        self.timeout = o.timeout.unwrap_or(self.timeout);
        self.stall_timeout = o.stall_timeout.unwrap_or(self.stall_timeout);
        Ok(self)
    }
}
