//! Pure: a lower bound on how long a rolling upgrade must take, from facts the engine cannot
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(nodes: u64, window: u64) -> PoolFacts {
        PoolFacts {
            nodes,
            window,
            boot_seconds: 85.0,
        }
    }

    #[test]
    fn the_issue_s_bench_300_figures() {
        // 300 nodes, a new node serves after 85 s; the longest PDB chain is 10 rounds of 10 s:
        // at the widest window ≈ 185 s.
        let pdb = PdbFacts {
            pods: 10,
            budget: 1,
            startup_seconds: 10.0,
            boot_seconds: 85.0,
        };
        let b = widest(&[pool(300, 1)], std::slice::from_ref(&pdb));
        assert_eq!(b.seconds(), 185.0);
        // With one node at a time, 300 boots one after the other.
        assert_eq!(
            lower_bound(&[pool(300, 1)], std::slice::from_ref(&pdb)).seconds(),
            300.0 * 85.0
        );
        // A 10 % window: 10 waves.
        assert_eq!(lower_bound(&[pool(300, 30)], &[pdb]).seconds(), 850.0);
    }

    #[test]
    fn nothing_to_do_is_zero_and_a_zero_budget_counts_as_one() {
        assert_eq!(lower_bound(&[], &[]).seconds(), 0.0);
        let b = PdbFacts {
            pods: 3,
            budget: 0,
            startup_seconds: 2.0,
            boot_seconds: 0.0,
        };
        assert_eq!(lower_bound(&[pool(0, 1)], &[b]).seconds(), 6.0);
    }
}
