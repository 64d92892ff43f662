//! A suite file (`suites/<name>.toml`) as read and validated: what the runner uses. Pure.

use super::error::SuiteError;
use super::file::{Contract, GinkgoVersion};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Defaults for keys a suite file leaves out.
pub(crate) mod defaults {
    use std::time::Duration;
    /// One in-process attempt: no ginkgo retry.
    pub(crate) fn flake_attempts() -> u32 {
        1
    }
    /// Serial.
    pub(crate) fn parallel() -> u32 {
        1
    }
    /// Three hours: conformance takes 1–2 h on a small cluster.
    pub(crate) const TIMEOUT: Duration = Duration::from_secs(3 * 3600);
    /// Thirty minutes without a finished spec: the longest real conformance specs take ~15 min.
    pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    /// The conformance image's `e2e.test` path.
    pub(crate) fn command() -> Vec<String> {
        vec!["/usr/local/bin/e2e.test".to_string()]
    }
}

/// A suite ready to run: one suite file as written (see README "Suite files" for every key;
/// unknown keys are rejected), validated by [`SuiteSpec::validate`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    /// Suite name; what `--suite NAME` selects.
    pub(crate) name: String,
    /// Where it was loaded from (for messages).
    #[serde(skip)]
    pub(crate) source: PathBuf,
    /// One line saying what the suite checks (shown by `suites list`).
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Local image reference, e.g. `registry.k8s.io/conformance:v1.32.0`.
    pub(crate) image: String,
    /// How to drive the image.
    pub(crate) contract: Contract,
    /// ginkgo major version in the image. Left out (`None`), it is detected from the first
    /// container's output, and flags are spelled the way both versions accept.
    #[serde(default)]
    pub(crate) ginkgo: Option<GinkgoVersion>,
    /// Focus regexes (ORed), validated. Empty = the image's default.
    #[serde(default)]
    pub(crate) focus: Vec<String>,
    /// Skip regexes (ORed), validated.
    #[serde(default)]
    pub(crate) skip: Vec<String>,
    /// In-process ginkgo attempts per spec (≥ 1; 1 = no retry).
    #[serde(default = "defaults::flake_attempts")]
    pub(crate) flake_attempts: u32,
    /// Fresh containers that re-run only the specs that failed.
    #[serde(default)]
    pub(crate) reruns: u32,
    /// ginkgo parallel processes (≥ 1; 1 = serial).
    #[serde(default = "defaults::parallel")]
    pub(crate) parallel: u32,
    /// `timeout` as written, e.g. `90m`: parsed into [`SuiteSpec::timeout`].
    #[serde(default, rename = "timeout")]
    timeout_text: Option<String>,
    /// `stall_timeout` as written, e.g. `15m`: parsed into [`SuiteSpec::stall_timeout`].
    #[serde(default, rename = "stall_timeout")]
    stall_timeout_text: Option<String>,
    /// GitHub status context as written: see [`SuiteSpec::status_context`].
    #[serde(default)]
    status_context: Option<String>,
    /// Command for `ginkgo-binary` (default `["/usr/local/bin/e2e.test"]`).
    #[serde(default = "defaults::command")]
    pub(crate) command: Vec<String>,
    /// Arguments for the test binary (after `--` for the conformance image).
    #[serde(default)]
    pub(crate) extra_args: Vec<String>,
    /// Extra ginkgo arguments (before the binary for the conformance image).
    #[serde(default)]
    pub(crate) extra_ginkgo_args: Vec<String>,
    /// Extra environment for the container.
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    /// Hard limit for one container.
    #[serde(skip)]
    pub(crate) timeout: Duration,
    /// Stop the container when no spec finished for this long.
    #[serde(skip)]
    pub(crate) stall_timeout: Duration,
}

/// Command-line overrides; `None` keeps the suite file's value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// Replaces `focus` when non-empty.
    pub(crate) focus: Vec<String>,
    /// Replaces `skip` when non-empty.
    pub(crate) skip: Vec<String>,
    /// Replaces `flake_attempts`.
    pub(crate) flake_attempts: Option<u32>,
    /// Replaces `reruns`.
    pub(crate) reruns: Option<u32>,
    /// Replaces `parallel`.
    pub(crate) parallel: Option<u32>,
    /// Replaces `timeout`.
    pub(crate) timeout: Option<Duration>,
    /// Replaces `stall_timeout`.
    pub(crate) stall_timeout: Option<Duration>,
}

impl SuiteSpec {
    /// Validates a parsed file and fills in what derives from it. `source` names the file in
    /// every error.
    pub(crate) fn validate(mut self, source: &Path) -> Result<SuiteSpec, SuiteError> {
        let invalid = |field: &str, message: String| SuiteError::Invalid {
            file: source.to_path_buf(),
            field: field.into(),
            message,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(invalid(
                "name",
                format!(
                    "{:?} is not a valid suite name; use lowercase letters, digits, '-' and '_'",
                    self.name
                ),
            ));
        }
        if self.image.trim().is_empty() {
            return Err(invalid("image", "must not be empty".into()));
        }
        for (field, list) in [("focus", &self.focus), ("skip", &self.skip)] {
            for (i, re) in list.iter().enumerate() {
                regex::Regex::new(re).map_err(|e| {
                    invalid(
                        &format!("{field}[{i}]"),
                        format!("invalid regex {re:?}: {e}"),
                    )
                })?;
            }
        }
        for (field, v) in [
            ("flake_attempts", self.flake_attempts),
            ("parallel", self.parallel),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be at least 1".into()));
            }
        }
        if self.parallel > 1 && self.contract == Contract::GinkgoBinary {
            return Err(invalid(
                "parallel",
                "parallel > 1 needs the ginkgo CLI; use contract = \"conformance-image\" or parallel = 1".into(),
            ));
        }
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
        self.timeout = duration("timeout", &self.timeout_text, defaults::TIMEOUT)?;
        self.stall_timeout = duration(
            "stall_timeout",
            &self.stall_timeout_text,
            defaults::STALL_TIMEOUT,
        )?;
        if self.command.is_empty() {
            return Err(invalid("command", "must name the test binary".into()));
        }
        for key in self.env.keys() {
            if key.is_empty() || key.contains('=') {
                return Err(invalid(
                    "env",
                    format!("{key:?} is not a valid environment variable name"),
                ));
            }
        }
        self.source = source.to_path_buf();
        Ok(self)
    }

    /// The GitHub status context: as written, by default `e2e-gate/<name>`.
    pub(crate) fn status_context(&self) -> String {
        self.status_context
            .clone()
            .unwrap_or_else(|| format!("e2e-gate/{}", self.name))
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
