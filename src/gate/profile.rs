//! Gate profiles (`ci/gate.toml`): typed, unknown keys rejected, `inherits` chains resolved,
//! then overridden by `E2E_GATE_*` variables and flags. Pure.

use crate::upgrade::options::UpgradeSettings;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Cluster providers a profile can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// The embedded simulated cluster.
    Sim,
    /// kind.
    Kind,
    /// An existing cluster (kubeconfig).
    Existing,
}

impl Provider {
    /// The name users write (`sim`, `kind`, `existing`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Provider::Sim => "sim",
            Provider::Kind => "kind",
            Provider::Existing => "existing",
        }
    }

    /// Parses a provider name (for `E2E_GATE_PROVIDER` and `--provider`).
    pub(crate) fn parse(s: &str) -> Option<Provider> {
        [Provider::Sim, Provider::Kind, Provider::Existing]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// One profile as written; every key optional so profiles can inherit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileFile {
    /// Profile to take unset keys from.
    pub(crate) inherits: Option<String>,
    pub(crate) provider: Option<Provider>,
    /// Topology (sim) or kind config (kind), relative to the gate file.
    pub(crate) topology: Option<PathBuf>,
    /// Kubernetes version of the cluster to bring up.
    pub(crate) kubernetes_version: Option<String>,
    /// Kubeconfig (existing).
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Suites to run (names in the suites directory).
    pub(crate) suites: Option<Vec<String>>,
    /// Suites run concurrently.
    pub(crate) jobs: Option<usize>,
    /// Contexts a promotion of this channel requires (used by the nightly job).
    pub(crate) required_contexts: Option<Vec<String>>,
    /// Keep the cluster after the gate (debugging).
    pub(crate) keep_cluster: Option<bool>,
    /// Count flaky specs as failures.
    pub(crate) fail_on_flaky: Option<bool>,
    /// Kubelet version to roll every node to (no upgrade when unset).
    pub(crate) target_version: Option<String>,
    /// Seconds PDB-protected workloads may spend below minAvailable during the upgrade.
    pub(crate) max_disruption_seconds: Option<f64>,
    /// Simulated cluster only: real seconds per simulated second (0.05 = 20× faster).
    pub(crate) time_scale: Option<f64>,
    /// The upgrade engine's options (`[profile.NAME.upgrade]`, as `upgrade apply`'s flags).
    pub(crate) upgrade: Option<UpgradeSettings>,
}

/// The gate file: `[profile.NAME]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GateFile {
    /// Profiles by name.
    #[serde(default)]
    pub(crate) profile: BTreeMap<String, ProfileFile>,
}

/// A resolved profile: what the gate runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// Cluster provider.
    pub provider: Provider,
    /// Topology or kind config, resolved against the gate file's directory.
    pub topology: Option<PathBuf>,
    /// Kubernetes version of the cluster to bring up.
    pub kubernetes_version: Option<String>,
    /// Kubeconfig (existing).
    pub kubeconfig: Option<PathBuf>,
    /// Suites to run.
    pub suites: Vec<String>,
    /// Suites run concurrently.
    pub jobs: usize,
    /// Contexts a promotion requires.
    pub required_contexts: Vec<String>,
    /// Keep the cluster after the gate.
    pub keep_cluster: bool,
    /// Count flaky specs as failures.
    pub fail_on_flaky: bool,
    /// Kubelet version to roll every node to.
    pub target_version: Option<String>,
    /// Allowed seconds below minAvailable during the upgrade (default 0: none).
    pub max_disruption_seconds: f64,
    /// Simulated cluster only: real seconds per simulated second.
    pub time_scale: Option<f64>,
    /// The upgrade engine's options, inherited key by key.
    pub upgrade: UpgradeSettings,
}

/// Reads a gate file; an error names the file (unknown keys included).
pub(crate) fn parse(text: &str, file: &Path) -> Result<GateFile, String> {
    toml::from_str(text).map_err(|e| format!("{}: {}", file.display(), e.to_string().trim_end()))
}

/// Resolves `name` through its `inherits` chain; relative paths are taken from `base_dir`.
/// An error names the file and the profile, what is wrong and what is valid.
pub(crate) fn resolve(file: &GateFile, name: &str, source: &Path) -> Result<Profile, String> {
    let invalid = |profile: &str, message: String| {
        format!("{} [profile.{profile}]: {message}", source.display())
    };
    let mut chain: Vec<(String, &ProfileFile)> = Vec::new();
    let mut next = Some(name.to_string());
    while let Some(n) = next {
        let Some(p) = file.profile.get(&n) else {
            let known: Vec<&str> = file.profile.keys().map(String::as_str).collect();
            return Err(invalid(
                &n,
                format!("no such profile; known profiles: {}", known.join(", ")),
            ));
        };
        if chain.iter().any(|(seen, _)| *seen == n) {
            return Err(invalid(&n, "inherits forms a cycle".into()));
        }
        next = p.inherits.clone();
        chain.push((n, p));
    }
    macro_rules! pick {
        ($field:ident) => {
            chain.iter().find_map(|(_, p)| p.$field.clone())
        };
    }
    let base_dir = source.parent().unwrap_or(Path::new("."));
    let suites = pick!(suites).unwrap_or_default();
    if suites.is_empty() {
        return Err(invalid(
            name,
            "suites: list at least one suite to run".into(),
        ));
    }
    let jobs = pick!(jobs).unwrap_or(1);
    if jobs == 0 {
        return Err(invalid(name, "jobs: must be at least 1".into()));
    }
    Ok(Profile {
        name: name.to_string(),
        provider: pick!(provider).unwrap_or(Provider::Sim),
        topology: pick!(topology).map(|p| base_dir.join(p)),
        kubernetes_version: pick!(kubernetes_version),
        kubeconfig: pick!(kubeconfig).map(|p| base_dir.join(p)),
        suites,
        jobs,
        required_contexts: pick!(required_contexts).unwrap_or_default(),
        keep_cluster: pick!(keep_cluster).unwrap_or(false),
        fail_on_flaky: pick!(fail_on_flaky).unwrap_or(false),
        target_version: pick!(target_version).filter(|v| !v.trim().is_empty()),
        max_disruption_seconds: {
            let v = pick!(max_disruption_seconds).unwrap_or(0.0);
            if v.is_nan() || v < 0.0 {
                return Err(invalid(
                    name,
                    format!("max_disruption_seconds: {v} must be 0 or more"),
                ));
            }
            v
        },
        time_scale: match pick!(time_scale) {
            Some(t) if t.is_nan() || t <= 0.0 => {
                return Err(invalid(
                    name,
                    format!("time_scale: {t} must be greater than 0"),
                ))
            }
            t => t,
        },
        upgrade: chain
            .iter()
            .rev()
            .filter_map(|(_, p)| p.upgrade.as_ref())
            .fold(UpgradeSettings::default(), |parent, child| {
                child.over(&parent)
            }),
    })
}

/// Applies `E2E_GATE_*` variables (lower precedence than flags, which the caller applies after);
/// an error names the variable.
pub(crate) fn apply_env(
    mut p: Profile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Profile, String> {
    if let Some(v) = env("E2E_GATE_PROVIDER") {
        p.provider = Provider::parse(&v)
            .ok_or_else(|| format!("E2E_GATE_PROVIDER: {v:?} is not sim, kind or existing"))?;
    }
    p.topology = env("E2E_GATE_TOPOLOGY").map(PathBuf::from).or(p.topology);
    p.kubernetes_version = env("E2E_GATE_KUBERNETES_VERSION").or(p.kubernetes_version);
    if let Some(v) = env("E2E_GATE_SUITES") {
        let suites: Vec<String> = v
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if suites.is_empty() {
            return Err("E2E_GATE_SUITES: list at least one suite (comma-separated)".into());
        }
        p.suites = suites;
    }
    if let Some(v) = env("E2E_GATE_JOBS") {
        let jobs = v.parse().ok().filter(|&n: &usize| n > 0);
        p.jobs = jobs.ok_or_else(|| format!("E2E_GATE_JOBS: {v:?} is not a positive number"))?;
    }
    if let Some(v) = env("E2E_GATE_TARGET_VERSION") {
        p.target_version = Some(v).filter(|v| !v.trim().is_empty());
    }
    if let Some(v) = env("E2E_GATE_KEEP_CLUSTER") {
        p.keep_cluster = matches!(v.as_str(), "1" | "true" | "yes");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[profile.default]
provider = "sim"
topology = "../fixtures/sim/default.toml"
suites = ["smoke"]
required_contexts = ["e2e-gate/gate"]

[profile.ci]
inherits = "default"
suites = ["smoke", "custom"]
jobs = 2
"#;

    fn gate() -> GateFile {
        parse(FILE, Path::new("ci/gate.toml")).unwrap()
    }

    #[test]
    fn the_shipped_aws_profile_rolls_through_auto_scaling_with_the_pr_checks() {
        let file = Path::new("ci/gate.toml");
        let shipped = parse(include_str!("../../ci/gate.toml"), file).unwrap();
        let p = resolve(&shipped, "aws", file).unwrap();
        let pr = resolve(&shipped, "pr", file).unwrap();
        assert_eq!(p.provider, Provider::Existing);
        assert_eq!(p.suites, pr.suites);
        assert_eq!(p.target_version.as_deref(), Some("v1.34.1"));
        let cloud = p
            .upgrade
            .cloud(|s| humantime::parse_duration(s).map_err(|e| e.to_string()))
            .unwrap();
        match cloud {
            Some(crate::upgrade::use_case::Cloud::Aws(a)) => {
                assert_eq!(a.cluster, "dev");
                assert_eq!(a.launch_template_version, "$Latest");
                assert_eq!(a.region, None, "the region comes from AWS_REGION");
            }
            other => panic!("{other:?}"),
        }
        // The engine options come from the default profile's upgrade table.
        assert_eq!(p.upgrade.new_node_timeout.as_deref(), Some("20m"));
    }

    #[test]
    fn inherits_fills_unset_keys_and_paths_are_relative_to_the_file() {
        let p = resolve(&gate(), "ci", Path::new("ci/gate.toml")).unwrap();
        assert_eq!(p.suites, vec!["smoke", "custom"]);
        assert_eq!(p.jobs, 2);
        assert_eq!(p.provider, Provider::Sim);
        assert_eq!(
            p.topology,
            Some(PathBuf::from("ci/../fixtures/sim/default.toml"))
        );
        assert_eq!(p.required_contexts, vec!["e2e-gate/gate"]);
    }

    #[test]
    fn unknown_key_and_unknown_profile_are_explained() {
        let e = parse("[profile.x]\nsuite = ['a']\n", Path::new("ci/gate.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ci/gate.toml") && e.contains("suite") && e.contains("suites"),
            "{e}"
        );
        let e = resolve(&gate(), "nightly", Path::new("ci/gate.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nightly") && e.contains("ci, default"), "{e}");
    }

    #[test]
    fn the_upgrade_table_is_inherited_key_by_key_and_checked_for_unknown_keys() {
        let g = parse(
            "[profile.a]\nsuites = ['s']\n[profile.a.upgrade]\nmax_surge = 2\ntimeout = '1h'\n\
             [profile.b]\ninherits = 'a'\n[profile.b.upgrade]\nmax_surge = '10%'\n",
            Path::new("g.toml"),
        )
        .expect("parses");
        let b = resolve(&g, "b", Path::new("g.toml")).expect("resolves");
        assert_eq!(
            b.upgrade.max_surge,
            Some(crate::upgrade::options::AmountList::One("10%".into()))
        );
        assert_eq!(b.upgrade.timeout.as_deref(), Some("1h"), "inherited from a");
        let e = parse(
            "[profile.a]\nsuites = ['s']\n[profile.a.upgrade]\nmax_surg = 1\n",
            Path::new("g.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("g.toml")
                && e.contains("max_surg")
                && e.contains("max_surge")
                && e.contains("max_unavailable"),
            "the valid keys are named: {e}"
        );
    }

    #[test]
    fn cycles_and_empty_suites_are_errors() {
        let g = parse(
            "[profile.a]\ninherits = 'b'\n[profile.b]\ninherits = 'a'\n",
            Path::new("g.toml"),
        )
        .unwrap();
        assert!(resolve(&g, "a", Path::new("g.toml"))
            .unwrap_err()
            .to_string()
            .contains("cycle"));
        let g = parse("[profile.a]\nprovider = 'kind'\n", Path::new("g.toml")).unwrap();
        assert!(resolve(&g, "a", Path::new("g.toml"))
            .unwrap_err()
            .to_string()
            .contains("suites"));
    }

    #[test]
    fn env_overrides_profile() {
        let p = resolve(&gate(), "default", Path::new("ci/gate.toml")).unwrap();
        let env = |k: &str| match k {
            "E2E_GATE_SUITES" => Some("a,b".to_string()),
            "E2E_GATE_PROVIDER" => Some("existing".to_string()),
            _ => None,
        };
        let p = apply_env(p, &env).unwrap();
        assert_eq!(p.suites, vec!["a", "b"]);
        assert_eq!(p.provider, Provider::Existing);
        let bad = |k: &str| (k == "E2E_GATE_PROVIDER").then(|| "docker".to_string());
        let e = apply_env(resolve(&gate(), "default", Path::new("g")).unwrap(), &bad).unwrap_err();
        assert!(e.to_string().contains("E2E_GATE_PROVIDER"), "{e}");
    }

    #[test]
    fn shipped_gate_file_resolves_every_profile() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/gate.toml"));
        let g = parse(&std::fs::read_to_string(path).unwrap(), path).unwrap();
        for name in g.profile.keys() {
            let p = resolve(&g, name, path).unwrap();
            if let Some(t) = &p.topology {
                assert!(
                    t.is_file(),
                    "profile {name}: topology {} missing",
                    t.display()
                );
            }
        }
    }
}
