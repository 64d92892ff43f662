//! Pure: what the first container showed about the image's ginkgo — its major version and the
//! suite description — which decide how a rerun's focus must be written.

use crate::results::read::log::LogSummary;
use crate::results::{SourceFormat, SuiteResult};
use crate::suite::GinkgoVersion;

/// What a run's output and reports say about the ginkgo that produced them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Detected {
    /// The major version, when any source shows one.
    pub(crate) ginkgo: Option<GinkgoVersion>,
    /// `Running Suite: <description>`, or the classname ginkgo gave its testcases.
    pub(crate) description: Option<String>,
}

fn version_of(format: SourceFormat) -> Option<GinkgoVersion> {
    match format {
        SourceFormat::GinkgoV2Junit
        | SourceFormat::GinkgoJsonReport
        | SourceFormat::GinkgoV2Log => Some(GinkgoVersion::V2),
        SourceFormat::GinkgoV1Junit | SourceFormat::GinkgoV1Log => Some(GinkgoVersion::V1),
        SourceFormat::Junit | SourceFormat::RunnerSteps => None,
    }
}

/// Reads the version and description from a container's results and console log. Reports
/// (JUnit, JSON) are trusted over the log: their shape differs more between versions.
pub(crate) fn detect(result: &SuiteResult, log: Option<&LogSummary>) -> Detected {
    let from_reports = result.sources.iter().copied().find_map(version_of);
    let from_log = log.and_then(|l| l.format).and_then(version_of);
    let description = log
        .and_then(|l| l.suite_description.clone())
        .filter(|d| !d.trim().is_empty())
        .or_else(|| {
            result
                .specs
                .iter()
                .find_map(|s| s.classname.as_deref().filter(|c| !c.is_empty()))
                .map(str::to_string)
        });
    Detected {
        ginkgo: from_reports.or(from_log),
        description,
    }
}

/// The version reruns use, and a warning when it contradicts the suite file.
pub(crate) fn settle(
    declared: Option<GinkgoVersion>,
    detected: Option<GinkgoVersion>,
) -> (GinkgoVersion, Option<String>) {
    match (declared, detected) {
        (Some(d), Some(found)) if d != found => (
            found,
            Some(format!(
                "the suite file says ginkgo = \"{}\" but the image ran ginkgo {f}; reruns use {f} \
                 (set ginkgo = \"{f}\" or leave the key out to detect it)",
                d.as_str(),
                f = found.as_str(),
            )),
        ),
        (_, Some(found)) => (found, None),
        (Some(d), None) => (d, None),
        // Nothing to go by: v2 is what every conformance image since Kubernetes 1.25 runs.
        (None, None) => (GinkgoVersion::V2, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::read::log::read_log_str;
    use crate::results::{AttemptState, Spec};

    #[test]
    fn v2_log_gives_version_and_description() {
        let log = read_log_str(
            "Running Suite: Kubernetes e2e suite - /usr/local/bin\n====\nRandom Seed: 1 - will randomize all specs\n\nWill run 2 of 3 specs\n••\nRan 2 of 3 Specs in 1.0 seconds\nSUCCESS! -- 2 Passed | 0 Failed | 0 Pending | 1 Skipped\n",
        );
        let d = detect(&SuiteResult::default(), Some(&log));
        assert_eq!(d.ginkgo, Some(GinkgoVersion::V2));
        assert_eq!(d.description.as_deref(), Some("Kubernetes e2e suite"));
    }

    #[test]
    fn reports_win_and_classname_is_the_description_fallback() {
        let mut spec = Spec::single("a", AttemptState::Passed);
        spec.classname = Some("My suite".into());
        let r = SuiteResult {
            specs: vec![spec],
            sources: vec![SourceFormat::GinkgoV1Junit],
            ..SuiteResult::default()
        };
        let d = detect(&r, None);
        assert_eq!(d.ginkgo, Some(GinkgoVersion::V1));
        assert_eq!(d.description.as_deref(), Some("My suite"));
        assert_eq!(detect(&SuiteResult::default(), None), Detected::default());
    }

    #[test]
    fn a_contradicted_suite_file_is_reported() {
        let (v, warn) = settle(Some(GinkgoVersion::V2), Some(GinkgoVersion::V1));
        assert_eq!(v, GinkgoVersion::V1);
        let warn = warn.unwrap();
        assert!(
            warn.contains("ginkgo = \"v2\"") && warn.contains("ran ginkgo v1"),
            "{warn}"
        );
        assert_eq!(
            settle(None, Some(GinkgoVersion::V1)),
            (GinkgoVersion::V1, None)
        );
        assert_eq!(
            settle(Some(GinkgoVersion::V1), None),
            (GinkgoVersion::V1, None)
        );
        assert_eq!(settle(None, None), (GinkgoVersion::V2, None));
    }
}
