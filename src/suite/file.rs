//! The enumerated values of a suite file's keys.

use serde::Deserialize;

/// How e2e-gate talks to the test image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Contract {
    /// The upstream conformance image: `E2E_FOCUS`, `E2E_SKIP`, `E2E_PARALLEL`, `E2E_EXTRA_ARGS`,
    /// `E2E_EXTRA_GINKGO_ARGS`, `E2E_DRYRUN`, `RESULTS_DIR`, `KUBECONFIG`; results in `RESULTS_DIR`.
    ConformanceImage,
    /// An `e2e.test`-style binary: `--ginkgo.*` flags, `--report-dir`, `--kubeconfig`.
    GinkgoBinary,
}

/// The ginkgo major version inside the image; flag spellings and focus matching differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub(crate) enum GinkgoVersion {
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
