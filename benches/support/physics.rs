//! The benchmarks' yardstick (`benches/upgrade.rs`, `benches/upgrade_aws.rs`; its arithmetic is
//! tested in `tests/physics_bound.rs`). Pure: a lower bound on how long a rolling upgrade must take, from facts the engine cannot
//! influence — how long a new node takes to serve (boot, kubelet and load-balancer readiness:
//! the cloud's or topology's figure), each PDB's pods, budget and pod startup time (the
//! workload's), and the window the options allow. Used to judge the engine: a bound timed on
//! the engine's own run moves with the engine and cannot show that it is slow.
//!
//! Two terms, the larger wins:
//! - **waves**: a pool of `n` nodes with a window of `w` (max-surge + max-unavailable) needs
//!   `ceil(n / w)` successive replacements per slot, each waiting for a new node to serve:
//!   `ceil(n / w) × boot`;
//! - **PDB chain**: a PDB with `k` pods on outdated nodes and a budget of `a` disruptions needs
//!   `ceil(k / a)` eviction rounds, each lasting at least its pods' startup time, and the first
//!   eviction can only follow the first new node: `boot + ceil(k / a) × startup`.

use e2e_gate::cluster::sim::topology::{IntOrPercent, Topology, WorkloadKind};

/// One pool's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolFacts {
    /// Outdated nodes.
    pub nodes: u64,
    /// `max-surge + max-unavailable` for the pool (the window the options allow).
    pub window: u64,
    /// Seconds from a launch to the new node serving (boot + kubelet + load balancer).
    pub boot_seconds: f64,
}

/// One PDB's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct PdbFacts {
    /// Pods it covers on outdated nodes.
    pub pods: u64,
    /// Disruptions it allows with every pod healthy (at least 1 counted).
    pub budget: u64,
    /// Seconds from a pod's creation to Ready.
    pub startup_seconds: f64,
    /// Seconds until a new node serves in the pool its pods move to.
    pub boot_seconds: f64,
}

/// The bound, with each term, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// Waves of replacements per slot.
    pub waves: f64,
    /// The longest PDB chain.
    pub pdb_chain: f64,
}

impl Bound {
    /// The bound itself: the larger term.
    pub fn seconds(&self) -> f64 {
        self.waves.max(self.pdb_chain)
    }
}

/// The lower bound for `pools` and `pdbs`.
pub fn lower_bound(pools: &[PoolFacts], pdbs: &[PdbFacts]) -> Bound {
    let waves = pools
        .iter()
        .filter(|p| p.nodes > 0)
        .map(|p| p.nodes.div_ceil(p.window.max(1)) as f64 * p.boot_seconds)
        .fold(0.0, f64::max);
    let pdb_chain = pdbs
        .iter()
        .filter(|b| b.pods > 0)
        .map(|b| b.boot_seconds + b.pods.div_ceil(b.budget.max(1)) as f64 * b.startup_seconds)
        .fold(0.0, f64::max);
    Bound { waves, pdb_chain }
}

/// The same bound with every pool's window as wide as the pool (everything at once).
pub fn widest(pools: &[PoolFacts], pdbs: &[PdbFacts]) -> Bound {
    let wide: Vec<PoolFacts> = pools
        .iter()
        .map(|p| PoolFacts {
            window: p.nodes.max(1),
            ..p.clone()
        })
        .collect();
    lower_bound(&wide, pdbs)
}

/// `--max-surge N` and `--max-unavailable M` of the engine's flags (defaults 1 and 0).
pub fn window(engine_args: &str) -> u64 {
    let words: Vec<&str> = engine_args.split_whitespace().collect();
    let flag = |name: &str, default: u64| {
        words
            .windows(2)
            .find(|w| w[0] == name)
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(default)
    };
    flag("--max-surge", 1) + flag("--max-unavailable", 0)
}

/// The physical facts of the topology (see the module doc): every node is
/// outdated, a new node serves after boot + kubelet + load-balancer readiness, and each PDB's
/// pods restart in their workload's startup time.
pub fn facts(t: &Topology, window: u64) -> (Vec<PoolFacts>, Vec<PdbFacts>) {
    let boot = |p: &e2e_gate::cluster::sim::topology::Pool| {
        p.boot_seconds + p.kubelet_ready_seconds + p.lb_health_seconds
    };
    let pools: Vec<PoolFacts> = t
        .pools
        .iter()
        .map(|p| PoolFacts {
            nodes: p.zones.len() as u64 * u64::from(p.size_per_zone),
            window,
            boot_seconds: boot(p),
        })
        .collect();
    let fastest_boot = t.pools.iter().map(boot).fold(f64::INFINITY, f64::min);
    let resolve = |v: &IntOrPercent, k: u64, up: bool| -> u64 {
        match v {
            IntOrPercent::Int(i) => (*i).max(0) as u64,
            IntOrPercent::Str(s) => {
                let p: u64 = s.trim_end_matches('%').parse().unwrap_or(0);
                if up {
                    (k * p).div_ceil(100)
                } else {
                    k * p / 100
                }
            }
        }
    };
    let pdbs = t
        .workloads
        .iter()
        .filter(|w| w.kind != WorkloadKind::DaemonSet)
        .filter_map(|w| {
            let pdb = w.pdb.as_ref()?;
            let k = u64::from(w.replicas);
            let budget = match (&pdb.min_available, &pdb.max_unavailable) {
                (Some(min), _) => k.saturating_sub(resolve(min, k, true)),
                (None, Some(max)) => resolve(max, k, true),
                (None, None) => k.saturating_sub(1),
            };
            Some(PdbFacts {
                pods: k,
                budget,
                startup_seconds: w.startup_seconds.unwrap_or(t.sim.pod_startup_seconds),
                boot_seconds: fastest_boot,
            })
        })
        .collect();
    (pools, pdbs)
}
