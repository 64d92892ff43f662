//! The benchmarks' lower bound (`benches/support/physics.rs`): the arithmetic of its two terms.

#[path = "../benches/support/physics.rs"]
#[allow(dead_code)] // facts() and window() are the benchmarks'
mod physics;

use physics::*;

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
