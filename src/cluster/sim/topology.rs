//! Topology files (TOML): node pools, workloads and faults of a simulated cluster.
//! Errors name the file, the field and what is allowed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The topology shipped for the quick start (`fixtures/sim/default.toml`).
pub(crate) const DEFAULT_TOPOLOGY: &str = include_str!("../../../fixtures/sim/default.toml");

/// A whole simulated cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Global settings and faults.
    #[serde(default)]
    pub sim: SimSettings,
    /// Node pools (auto-scaling groups, one per zone).
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// Workloads created at start.
    #[serde(default)]
    pub workloads: Vec<Workload>,
}

/// Global settings (a field left out takes its value from [`SimSettings::default`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimSettings {
    /// Real seconds per simulated second (0.001: a 90 s boot takes 90 ms).
    pub time_scale: f64,
    /// Fraction of API requests (0..1) answered with a 500 (fault injection).
    pub(crate) api_error_rate: f64,
    /// Pod startup delay when a workload sets none, in simulated seconds.
    pub pod_startup_seconds: f64,
    /// Region label of every node.
    pub(crate) region: String,
    /// Version reported by `/version`.
    pub(crate) kubernetes_version: String,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            api_error_rate: 0.0,
            pod_startup_seconds: 2.0,
            region: "sim-region-1".into(),
            kubernetes_version: k8s_version(),
        }
    }
}

fn k8s_version() -> String {
    "v1.34.1".into()
}

/// A node pool: one auto-scaling group per zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Pool name (DNS label).
    pub(crate) name: String,
    /// Availability zones; one group per zone.
    pub zones: Vec<String>,
    /// Desired instances per zone at start.
    #[serde(default = "one_u32")]
    pub size_per_zone: u32,
    /// Instance type label.
    #[serde(default = "instance_type")]
    pub(crate) instance_type: String,
    /// Allocatable CPU per node.
    #[serde(default = "cpu4")]
    pub(crate) cpu: String,
    /// Allocatable memory per node.
    #[serde(default = "mem16")]
    pub(crate) memory: String,
    /// Allocatable pods per node.
    #[serde(default = "max_pods")]
    pub(crate) max_pods: u32,
    /// Kubelet version of the launch template.
    #[serde(default = "k8s_version")]
    pub(crate) kubelet_version: String,
    /// Instance boot time (Pending → InService), simulated seconds.
    #[serde(default = "boot")]
    pub boot_seconds: f64,
    /// Node registration → Ready, simulated seconds.
    #[serde(default = "kubelet_ready")]
    pub kubelet_ready_seconds: f64,
    /// Node Ready → load-balancer target InService, simulated seconds.
    #[serde(default = "lb_health")]
    pub lb_health_seconds: f64,
    /// Extra node labels.
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    /// Node taints.
    #[serde(default)]
    pub(crate) taints: Vec<Taint>,
    /// Fault: nodes launched after start never become Ready.
    #[serde(default)]
    pub(crate) new_nodes_never_ready: bool,
}

fn one_u32() -> u32 {
    1
}
fn instance_type() -> String {
    "sim.large".into()
}
fn cpu4() -> String {
    "4".into()
}
fn mem16() -> String {
    "16Gi".into()
}
fn max_pods() -> u32 {
    110
}
fn boot() -> f64 {
    90.0
}
fn kubelet_ready() -> f64 {
    20.0
}
fn lb_health() -> f64 {
    10.0
}

/// A node taint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Taint {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: Option<String>,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub(crate) effect: String,
}

/// A pod toleration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Toleration {
    /// Key (empty with operator Exists: tolerate everything).
    #[serde(default)]
    pub(crate) key: Option<String>,
    /// Equal or Exists.
    #[serde(default)]
    pub(crate) operator: Option<String>,
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default)]
    pub(crate) effect: Option<String>,
}

/// Workload controller kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
}

/// An integer or a percentage ("50%").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrPercent {
    /// Absolute.
    Int(i64),
    /// Percentage string.
    Str(String),
}

/// A PodDisruptionBudget for a workload (exactly one field set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdbSpec {
    /// minAvailable.
    #[serde(default)]
    pub min_available: Option<IntOrPercent>,
    /// maxUnavailable.
    #[serde(default)]
    pub max_unavailable: Option<IntOrPercent>,
}

/// Topology spread of a workload's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Spread {
    /// Across `topology.kubernetes.io/zone`.
    Zone,
    /// Across nodes.
    Hostname,
}

/// A workload created at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Name (DNS label).
    pub name: String,
    /// Namespace (created if missing).
    #[serde(default = "default_ns")]
    pub(crate) namespace: String,
    /// Deployment, StatefulSet or DaemonSet.
    pub kind: WorkloadKind,
    /// Replicas (ignored for DaemonSets).
    #[serde(default = "one_u32")]
    pub replicas: u32,
    /// CPU request per pod.
    #[serde(default = "cpu100m")]
    pub(crate) cpu: String,
    /// Memory request per pod.
    #[serde(default = "mem64")]
    pub(crate) memory: String,
    /// PodDisruptionBudget.
    #[serde(default)]
    pub pdb: Option<PdbSpec>,
    /// Zonal volume size per replica (StatefulSet only).
    #[serde(default)]
    pub(crate) zonal_volume: Option<String>,
    #[serde(default)]
    pub(crate) spread: Option<Spread>,
    #[serde(default)]
    pub(crate) node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) tolerations: Vec<Toleration>,
    /// Pod startup (bind → Ready), simulated seconds.
    #[serde(default)]
    pub startup_seconds: Option<f64>,
    /// terminationGracePeriodSeconds.
    #[serde(default = "grace")]
    pub(crate) termination_grace_seconds: i64,
    /// Fault: pods ignore SIGTERM and take the whole grace period to stop.
    #[serde(default)]
    pub(crate) ignore_sigterm: bool,
    /// A Service of the same name selecting the pods (its EndpointSlice is kept by the sim).
    #[serde(default)]
    pub(crate) service: bool,
    /// Fault: the workload is broken by a kubelet version (a regression the gate must catch).
    #[serde(default)]
    pub(crate) unready_on_kubelet: Option<UnreadyOnKubelet>,
}

/// A pod on a node running `version` passes readiness, then fails it `after_seconds` later for
/// `for_seconds` (simulated), once: "the new node image breaks my app after warm-up".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnreadyOnKubelet {
    /// Kubelet version that breaks the workload (e.g. "v1.34.1").
    pub(crate) version: String,
    /// Seconds Ready before the readiness probe starts failing.
    pub(crate) after_seconds: f64,
    /// Seconds the pod stays NotReady.
    pub(crate) for_seconds: f64,
}

fn default_ns() -> String {
    "default".into()
}
fn cpu100m() -> String {
    "100m".into()
}
fn mem64() -> String {
    "64Mi".into()
}
fn grace() -> i64 {
    30
}

/// A topology file error: file, field, problem and what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct TopologyError {
    pub(crate) file: String,
    /// The field (`pools[0].zones`), or the parse position.
    pub(crate) field: String,
    /// What is wrong and what is allowed.
    pub(crate) message: String,
}

impl Topology {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|e| TopologyError {
            file: path.display().to_string(),
            field: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// The built-in default topology.
    pub(crate) fn default_topology() -> Self {
        Self::parse(DEFAULT_TOPOLOGY, Path::new("fixtures/sim/default.toml"))
            .expect("the shipped default topology is valid")
    }

    /// Parses and validates TOML text; `path` is used in errors only.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TopologyError> {
        let file = path.display().to_string();
        let topo: Topology = toml::from_str(text).map_err(|e| {
            let field = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}")
                }
                None => "(document)".into(),
            };
            TopologyError {
                file: file.clone(),
                field,
                message: e.message().to_string(),
            }
        })?;
        topo.validate().map_err(|(field, message)| TopologyError {
            file,
            field,
            message,
        })?;
        Ok(topo)
    }

    /// Semantic checks: `Err((field, message))`.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        use crate::quantity::{base_units, cpu_millis};
        let s = &self.sim;
        let ts = s.time_scale;
        ensure(ts > 0.0 && ts.is_finite(), "sim.time_scale".into(), || {
            format!("{ts} is not allowed: must be a number > 0 (real seconds per simulated second, e.g. 0.001)")
        })?;
        let rate = s.api_error_rate;
        ensure(
            (0.0..1.0).contains(&rate),
            "sim.api_error_rate".into(),
            || format!("{rate} is not allowed: must be in [0, 1)"),
        )?;
        let mut pool_names = Vec::new();
        for (i, p) in self.pools.iter().enumerate() {
            let f = |name: &str| format!("pools[{i}].{name}");
            check_name(&p.name).map_err(|m| (f("name"), m))?;
            ensure(!pool_names.contains(&&p.name), f("name"), || {
                format!(
                    "duplicate pool name {:?}: pool names must be unique",
                    p.name
                )
            })?;
            pool_names.push(&p.name);
            ensure(!p.zones.is_empty(), f("zones"), || {
                "is empty: list at least one zone, e.g. [\"eu-central-1a\"]".into()
            })?;
            for z in &p.zones {
                check_name(z).map_err(|m| (f("zones"), m))?;
            }
            let (cpu, memory, kubelet) = (&p.cpu, &p.memory, &p.kubelet_version);
            ensure(cpu_millis(cpu).is_ok_and(|c| c > 0), f("cpu"), || {
                format!("{cpu:?} is not a CPU quantity: use e.g. \"4\", \"3500m\"")
            })?;
            ensure(base_units(memory).is_ok_and(|c| c > 0), f("memory"), || {
                format!("{memory:?} is not a memory quantity: use e.g. \"16Gi\", \"512Mi\"")
            })?;
            ensure(kubelet.starts_with('v'), f("kubelet_version"), || {
                format!("{kubelet:?} is not allowed: use a version like \"v1.34.1\"")
            })?;
            for (name, v) in [
                ("boot_seconds", p.boot_seconds),
                ("kubelet_ready_seconds", p.kubelet_ready_seconds),
                ("lb_health_seconds", p.lb_health_seconds),
            ] {
                ensure(v >= 0.0 && v.is_finite(), f(name), || {
                    format!("{v} is not allowed: must be ≥ 0 seconds")
                })?;
            }
            for (j, t) in p.taints.iter().enumerate() {
                let effect = &t.effect;
                let known =
                    ["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect.as_str());
                ensure(known, format!("pools[{i}].taints[{j}].effect"), || {
                    format!(
                        "{effect:?} is not allowed: use NoSchedule, PreferNoSchedule or NoExecute"
                    )
                })?;
            }
        }
        let mut names = Vec::new();
        for (i, w) in self.workloads.iter().enumerate() {
            let f = |name: &str| format!("workloads[{i}].{name}");
            check_name(&w.name).map_err(|m| (f("name"), m))?;
            check_name(&w.namespace).map_err(|m| (f("namespace"), m))?;
            let (ns, name) = (&w.namespace, &w.name);
            ensure(!names.contains(&(ns, name)), f("name"), || {
                format!("duplicate workload {ns}/{name}: names must be unique per namespace")
            })?;
            names.push((ns, name));
            let (cpu, memory) = (&w.cpu, &w.memory);
            ensure(cpu_millis(cpu).is_ok(), f("cpu"), || {
                format!("{cpu:?} is not a CPU quantity: use e.g. \"100m\", \"1\"")
            })?;
            ensure(base_units(memory).is_ok(), f("memory"), || {
                format!("{memory:?} is not a memory quantity: use e.g. \"128Mi\"")
            })?;
            if let Some(v) = &w.zonal_volume {
                ensure(
                    w.kind == WorkloadKind::StatefulSet,
                    f("zonal_volume"),
                    || {
                        format!(
                            "is only allowed for kind = \"StatefulSet\" (this workload is a {:?})",
                            w.kind
                        )
                    },
                )?;
                ensure(
                    base_units(v).is_ok_and(|c| c > 0),
                    f("zonal_volume"),
                    || format!("{v:?} is not a storage size: use e.g. \"10Gi\""),
                )?;
            }
            if let Some(p) = &w.pdb {
                let (field, v) = match (&p.min_available, &p.max_unavailable) {
                    (Some(v), None) => ("pdb.min_available", v),
                    (None, Some(v)) => ("pdb.max_unavailable", v),
                    _ => {
                        let why = "set exactly one of min_available or max_unavailable";
                        return Err((f("pdb"), why.into()));
                    }
                };
                check_int_or_percent(v).map_err(|m| (f(field), m))?;
            }
            let grace = w.termination_grace_seconds;
            ensure(grace >= 0, f("termination_grace_seconds"), || {
                format!("{grace} is not allowed: must be ≥ 0")
            })?;
            if let Some(s) = w.startup_seconds {
                ensure(s >= 0.0 && s.is_finite(), f("startup_seconds"), || {
                    format!("{s} is not allowed: must be ≥ 0")
                })?;
            }
            if let Some(u) = &w.unready_on_kubelet {
                let version = &u.version;
                ensure(
                    version.starts_with('v'),
                    f("unready_on_kubelet.version"),
                    || format!("{version:?} is not a kubelet version: use e.g. \"v1.34.1\""),
                )?;
                for (name, v) in [
                    ("after_seconds", u.after_seconds),
                    ("for_seconds", u.for_seconds),
                ] {
                    let field = f(&format!("unready_on_kubelet.{name}"));
                    ensure(v >= 0.0 && v.is_finite(), field, || {
                        format!("{v} is not allowed: must be ≥ 0")
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// `Err((field, message()))` unless `ok`.
fn ensure(
    ok: bool,
    field: String,
    message: impl FnOnce() -> String,
) -> Result<(), (String, String)> {
    if ok {
        Ok(())
    } else {
        Err((field, message()))
    }
}

fn check_int_or_percent(v: &IntOrPercent) -> Result<(), String> {
    match v {
        IntOrPercent::Int(i) if *i >= 0 => Ok(()),
        IntOrPercent::Int(i) => Err(format!(
            "{i} is not allowed: must be ≥ 0 or a percentage like \"50%\""
        )),
        IntOrPercent::Str(s) => match s.strip_suffix('%').and_then(|n| n.parse::<u32>().ok()) {
            Some(p) if p <= 100 => Ok(()),
            _ => Err(format!(
                "{s:?} is not allowed: use an integer ≥ 0 or a percentage \"0%\"..\"100%\""
            )),
        },
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if crate::cluster::provider::is_dns_label(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not allowed: use a DNS label (lowercase letters, digits and '-', 1-63 characters)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Topology::parse(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn default_topology_is_valid() {
        let t = Topology::default_topology();
        assert!(!t.pools.is_empty());
        assert!(!t.workloads.is_empty());
    }

    #[test]
    fn shipped_fixtures_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sim");
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                Topology::load(&p).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[test]
    fn errors_name_file_field_and_allowed_values() {
        let e = err("[[workloads]]\nname = \"a\"\nkind = \"Job\"\n");
        assert!(e.starts_with("t.toml: line 3"), "{e}");
        assert!(e.contains("Deployment") && e.contains("StatefulSet"), "{e}");

        let e = err("[[pools]]\nname = \"p\"\nzones = []\n");
        assert!(
            e.contains("pools[0].zones") && e.contains("at least one zone"),
            "{e}"
        );

        let e = err("[[pools]]\nname = \"p\"\nzones = [\"a\"]\ncpu = \"lots\"\n");
        assert!(e.contains("pools[0].cpu") && e.contains("\"lots\""), "{e}");

        let e = err("[[workloads]]\nname = \"a\"\nkind = \"Deployment\"\nzonal_volume = \"1Gi\"\n");
        assert!(
            e.contains("workloads[0].zonal_volume") && e.contains("StatefulSet"),
            "{e}"
        );

        let e = err("[[workloads]]\nname = \"a\"\nkind = \"Deployment\"\npdb = { min_available = \"150%\" }\n");
        assert!(e.contains("workloads[0].pdb.min_available"), "{e}");

        let e = err("[sim]\ntime_scale = 0\n");
        assert!(e.contains("sim.time_scale") && e.contains("> 0"), "{e}");

        let e = err("[[pools]]\nname = \"p\"\nzones = [\"a\"]\nsize = 3\n");
        assert!(
            e.contains("unknown field `size`") && e.contains("size_per_zone"),
            "{e}"
        );
    }
}
