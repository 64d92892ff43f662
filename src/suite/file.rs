//! The raw TOML shape of a suite file (`suites/<name>.toml`). Unknown keys are rejected.

use serde::Deserialize;
use std::collections::BTreeMap;

/// How e2e-gate talks to the test image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Contract {
    /// The upstream conformance image: `E2E_FOCUS`, `E2E_SKIP`, `E2E_PARALLEL`, `E2E_EXTRA_ARGS`,
    /// `E2E_EXTRA_GINKGO_ARGS`, `E2E_DRYRUN`, `RESULTS_DIR`, `KUBECONFIG`; results in `RESULTS_DIR`.
    ConformanceImage,
    /// An `e2e.test`-style binary: `--ginkgo.*` flags, `--report-dir`, `--kubeconfig`.
    GinkgoBinary,
}

/// The ginkgo major version inside the image; flag spellings and focus matching differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum GinkgoVersion {
    /// ginkgo v1 (Kubernetes ≤ 1.24): `-flakeAttempts`, `-dryRun`, `-noColor`.
    #[serde(rename = "v1")]
    V1,
    /// ginkgo v2 (Kubernetes ≥ 1.25): `--flake-attempts`, `--dry-run`, `--no-color`.
    #[default]
    #[serde(rename = "v2")]
    V2,
}

impl GinkgoVersion {
    /// The word a suite file uses (`v1`, `v2`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GinkgoVersion::V1 => "v1",
            GinkgoVersion::V2 => "v2",
        }
    }
}

/// One suite file as written. See README "Suite files" for every key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuiteFile {
    /// Suite name; what `--suite NAME` selects.
    pub name: String,
    /// One line saying what the suite checks (shown by `suites list`).
    #[serde(default)]
    pub description: Option<String>,
    /// Local image reference, e.g. `registry.k8s.io/conformance:v1.32.0`.
    pub image: String,
    /// How to drive the image.
    pub contract: Contract,
    /// ginkgo major version in the image. Left out, it is detected from the first container's
    /// output, and flags are spelled the way both versions accept.
    #[serde(default)]
    pub ginkgo: Option<GinkgoVersion>,
    /// Focus regexes (ORed). Empty = the image's default.
    #[serde(default)]
    pub focus: Vec<String>,
    /// Skip regexes (ORed).
    #[serde(default)]
    pub skip: Vec<String>,
    /// In-process ginkgo attempts per spec (1 = no retry).
    #[serde(default)]
    pub flake_attempts: Option<u32>,
    /// Fresh containers that re-run only the specs that failed.
    #[serde(default)]
    pub reruns: Option<u32>,
    /// ginkgo parallel processes (1 = serial).
    #[serde(default)]
    pub parallel: Option<u32>,
    /// Hard limit for one container, e.g. `90m`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Stop the container when no spec finished for this long, e.g. `15m`.
    #[serde(default)]
    pub stall_timeout: Option<String>,
    /// GitHub status context (default `e2e-gate/<name>`).
    #[serde(default)]
    pub status_context: Option<String>,
    /// Command for `ginkgo-binary` (default `["/usr/local/bin/e2e.test"]`).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Arguments for the test binary (after `--` for the conformance image).
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// Extra ginkgo arguments (before the binary for the conformance image).
    #[serde(default)]
    pub extra_ginkgo_args: Vec<String>,
    /// Extra environment for the container.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}
