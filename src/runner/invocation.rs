//! Pure: a suite plus one attempt → the container to create (env, args, mounts, labels).
//!
//! Speaks both contracts: the upstream conformance image's `E2E_*` environment, and
//! `e2e.test`-style `--ginkgo.*` flags.

use super::container::{BindMount, ContainerSpec, LABEL_ATTEMPT, LABEL_RUN, LABEL_SUITE};
use crate::suite::{Contract, GinkgoVersion, SuiteSpec};
use std::path::PathBuf;

/// Where the results directory is mounted inside the container (the conformance default).
pub(crate) const RESULTS_DIR: &str = "/tmp/results";
/// Where the kubeconfig is mounted inside the container.
pub(crate) const KUBECONFIG_PATH: &str = "/tmp/e2e-gate/kubeconfig";

/// What differs between the containers of one suite.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Attempt {
    /// 0 = the first run, 1.. = reruns of failed specs.
    pub(crate) container: u32,
    /// Replaces the suite's focus and drops its skip (reruns select exact spec names).
    pub(crate) focus_override: Option<String>,
    /// ginkgo dry run: list specs, run nothing.
    pub(crate) dry_run: bool,
}

/// Host-side facts for building the container.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// Identifies this e2e-gate run (label value, container name part).
    pub(crate) run_id: String,
    /// Host directory mounted at [`RESULTS_DIR`].
    pub(crate) results_dir: PathBuf,
    /// Host kubeconfig, mounted read-only, if any.
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Docker network mode.
    pub(crate) network: String,
}

/// Several regexes as one Go (RE2) regex that matches when any does.
pub(crate) fn or_regex(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [one] => one.clone(),
        many => many
            .iter()
            .map(|r| format!("(?:{r})"))
            .collect::<Vec<_>>()
            .join("|"),
    }
}

/// A flag's spelling for the image's ginkgo. Undeclared, the v1 spelling is used: ginkgo v2
/// still accepts it (as a deprecated alias, with a notice), while v1 rejects the v2 spelling and
/// would not start at all.
fn ginkgo_flag(v: Option<GinkgoVersion>, v1: &str, v2: &str) -> String {
    match v {
        Some(GinkgoVersion::V2) => v2.to_string(),
        Some(GinkgoVersion::V1) | None => v1.to_string(),
    }
}

/// The ginkgo arguments that carry retries (and nothing else the contract already carries).
fn flake_args(suite: &SuiteSpec, attempt: &Attempt) -> Vec<String> {
    // A rerun container runs each spec once: the point is a clean process, not more retries.
    if suite.flake_attempts > 1 && attempt.container == 0 && !attempt.dry_run {
        let name = ginkgo_flag(suite.ginkgo, "flakeAttempts", "flake-attempts");
        vec![format!("--{name}={}", suite.flake_attempts)]
    } else {
        Vec::new()
    }
}

/// Builds the container for one attempt of a suite.
pub(crate) fn container_for(suite: &SuiteSpec, attempt: &Attempt, host: &Host) -> ContainerSpec {
    let (focus, skip) = match &attempt.focus_override {
        Some(f) => (f.clone(), String::new()),
        None => (or_regex(&suite.focus), or_regex(&suite.skip)),
    };
    let mut env: Vec<(String, String)> = suite
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut mounts = vec![BindMount {
        host: host.results_dir.clone(),
        container: RESULTS_DIR.into(),
        read_only: false,
    }];
    if let Some(kc) = &host.kubeconfig {
        mounts.push(BindMount {
            host: kc.clone(),
            container: KUBECONFIG_PATH.into(),
            read_only: true,
        });
    }
    let (entrypoint, cmd) = match suite.contract {
        Contract::ConformanceImage => {
            let mut ginkgo_args = flake_args(suite, attempt);
            // Reruns stay serial: a failed spec gets a quiet, isolated process.
            let parallel = suite.parallel > 1 && attempt.container == 0;
            if parallel {
                ginkgo_args.push(format!("--nodes={}", suite.parallel));
            }
            ginkgo_args.extend(suite.extra_ginkgo_args.iter().cloned());
            env.push(("E2E_FOCUS".into(), focus));
            env.push(("E2E_SKIP".into(), skip));
            env.push((
                "E2E_PARALLEL".into(),
                if parallel { "y" } else { "n" }.into(),
            ));
            env.push(("E2E_EXTRA_GINKGO_ARGS".into(), ginkgo_args.join(" ")));
            env.push(("E2E_EXTRA_ARGS".into(), suite.extra_args.join(" ")));
            env.push(("E2E_EXTRA_ARGS_SEP".into(), " ".into()));
            if attempt.dry_run {
                env.push(("E2E_DRYRUN".into(), "true".into()));
            }
            env.push(("RESULTS_DIR".into(), RESULTS_DIR.into()));
            (None, None)
        }
        Contract::GinkgoBinary => {
            let mut args = vec![format!("--ginkgo.focus={focus}")];
            if !skip.is_empty() {
                args.push(format!("--ginkgo.skip={skip}"));
            }
            args.extend(
                flake_args(suite, attempt)
                    .into_iter()
                    .map(|a| a.replacen("--", "--ginkgo.", 1)),
            );
            if attempt.dry_run {
                args.push(ginkgo_flag(
                    suite.ginkgo,
                    "--ginkgo.dryRun",
                    "--ginkgo.dry-run",
                ));
            }
            args.push(ginkgo_flag(
                suite.ginkgo,
                "--ginkgo.noColor",
                "--ginkgo.no-color",
            ));
            args.extend(suite.extra_ginkgo_args.iter().cloned());
            args.push(format!("--report-dir={RESULTS_DIR}"));
            if host.kubeconfig.is_some() {
                args.push(format!("--kubeconfig={KUBECONFIG_PATH}"));
            }
            args.extend(suite.extra_args.iter().cloned());
            // extra command words after the binary (e.g. `e2e.test --` style wrappers) lead
            let (binary, words) = suite.command.split_at(1);
            (Some(binary.to_vec()), Some([words, &args].concat()))
        }
    };
    if host.kubeconfig.is_some() {
        env.push(("KUBECONFIG".into(), KUBECONFIG_PATH.into()));
    }
    let labels = [
        (LABEL_RUN.to_string(), host.run_id.clone()),
        (LABEL_SUITE.to_string(), suite.name.clone()),
        (LABEL_ATTEMPT.to_string(), attempt.container.to_string()),
    ]
    .into_iter()
    .collect();
    let kind = if attempt.dry_run { "dryrun" } else { "attempt" };
    ContainerSpec {
        name: format!(
            "e2e-gate-{}-{}-{kind}-{}",
            host.run_id, suite.name, attempt.container
        ),
        image: suite.image.clone(),
        entrypoint,
        cmd,
        env,
        mounts,
        labels,
        network: host.network.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::parse_suite;
    use std::path::Path;

    fn suite(extra: &str) -> SuiteSpec {
        parse_suite(
            &format!("name = \"s\"\nimage = \"img:1\"\ncontract = \"conformance-image\"\n{extra}"),
            Path::new("s.toml"),
        )
        .unwrap()
    }

    fn host(kc: bool) -> Host {
        Host {
            run_id: "r1".into(),
            results_dir: "/art/s/attempt-0/results".into(),
            kubeconfig: kc.then(|| PathBuf::from("/home/me/.kube/config")),
            network: "host".into(),
        }
    }

    fn env<'a>(c: &'a ContainerSpec, k: &str) -> Option<&'a str> {
        c.env
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    const FIRST: Attempt = Attempt {
        container: 0,
        focus_override: None,
        dry_run: false,
    };

    #[test]
    fn conformance_contract_env() {
        let s = suite(
            "focus = ['\\[Conformance\\]', '\\[Zalando\\]']\nskip = ['\\[Serial\\]']\nflake_attempts = 3\nparallel = 4\nextra_args = ['--allowed-not-ready-nodes=1']\n[env]\nFOO = 'bar'\n",
        );
        let c = container_for(&s, &FIRST, &host(true));
        assert_eq!(
            env(&c, "E2E_FOCUS"),
            Some(r"(?:\[Conformance\])|(?:\[Zalando\])")
        );
        assert_eq!(env(&c, "E2E_SKIP"), Some(r"\[Serial\]"));
        assert_eq!(env(&c, "E2E_PARALLEL"), Some("y"));
        // Undeclared ginkgo: the spelling both versions accept.
        assert_eq!(
            env(&c, "E2E_EXTRA_GINKGO_ARGS"),
            Some("--flakeAttempts=3 --nodes=4")
        );
        let v2 = suite("ginkgo = \"v2\"\nflake_attempts = 3\nparallel = 4\n");
        assert_eq!(
            env(
                &container_for(&v2, &FIRST, &host(true)),
                "E2E_EXTRA_GINKGO_ARGS"
            ),
            Some("--flake-attempts=3 --nodes=4")
        );
        assert_eq!(
            env(&c, "E2E_EXTRA_ARGS"),
            Some("--allowed-not-ready-nodes=1")
        );
        assert_eq!(env(&c, "RESULTS_DIR"), Some("/tmp/results"));
        assert_eq!(env(&c, "KUBECONFIG"), Some(KUBECONFIG_PATH));
        assert_eq!(env(&c, "FOO"), Some("bar"));
        assert_eq!(env(&c, "E2E_DRYRUN"), None);
        assert!(c.entrypoint.is_none() && c.cmd.is_none());
        assert!(c
            .mounts
            .iter()
            .any(|m| m.container == KUBECONFIG_PATH && m.read_only));
        assert!(c
            .mounts
            .iter()
            .any(|m| m.container == RESULTS_DIR && !m.read_only));
        assert_eq!(c.labels.get(LABEL_RUN).map(String::as_str), Some("r1"));
        assert_eq!(c.labels.get(LABEL_SUITE).map(String::as_str), Some("s"));
    }

    #[test]
    fn v1_flag_spelling_and_no_kubeconfig() {
        let s = suite("ginkgo = 'v1'\nflake_attempts = 2\n");
        let c = container_for(&s, &FIRST, &host(false));
        assert_eq!(env(&c, "E2E_EXTRA_GINKGO_ARGS"), Some("--flakeAttempts=2"));
        assert_eq!(env(&c, "KUBECONFIG"), None);
        assert_eq!(c.mounts.len(), 1);
    }

    #[test]
    fn rerun_focuses_exactly_drops_skip_runs_serially_once() {
        let s = suite("focus = ['a']\nskip = ['b']\nflake_attempts = 3\nparallel = 4\n");
        let a = Attempt {
            container: 1,
            focus_override: Some("^(?:x)$".into()),
            dry_run: false,
        };
        let c = container_for(&s, &a, &host(false));
        assert_eq!(env(&c, "E2E_FOCUS"), Some("^(?:x)$"));
        assert_eq!(env(&c, "E2E_SKIP"), Some(""));
        assert_eq!(env(&c, "E2E_PARALLEL"), Some("n"));
        assert_eq!(env(&c, "E2E_EXTRA_GINKGO_ARGS"), Some(""));
        assert!(c.name.ends_with("-attempt-1"));
    }

    #[test]
    fn dry_run_sets_contract_variable() {
        let s = suite("flake_attempts = 3\n");
        let a = Attempt {
            dry_run: true,
            ..FIRST
        };
        let c = container_for(&s, &a, &host(false));
        assert_eq!(env(&c, "E2E_DRYRUN"), Some("true"));
        assert_eq!(env(&c, "E2E_EXTRA_GINKGO_ARGS"), Some(""));
        assert!(c.name.contains("dryrun"));
    }

    #[test]
    fn ginkgo_binary_flags() {
        let s = parse_suite(
            "name = \"b\"\nimage = \"i\"\ncontract = \"ginkgo-binary\"\nginkgo = 'v1'\nfocus = ['x']\nskip = ['y']\nflake_attempts = 2\nextra_args = ['--provider=skeleton']\n",
            Path::new("b.toml"),
        )
        .unwrap();
        let c = container_for(&s, &FIRST, &host(true));
        assert_eq!(
            c.entrypoint,
            Some(vec!["/usr/local/bin/e2e.test".to_string()])
        );
        assert_eq!(
            c.cmd.unwrap(),
            vec![
                "--ginkgo.focus=x",
                "--ginkgo.skip=y",
                "--ginkgo.flakeAttempts=2",
                "--ginkgo.noColor",
                "--report-dir=/tmp/results",
                "--kubeconfig=/tmp/e2e-gate/kubeconfig",
                "--provider=skeleton",
            ]
        );
    }
}
