//! Introspection for tests and benchmarks: API requests by verb and resource,
//! availability of every PDB-protected workload, evictions per workload.

use serde::Serialize;
use std::collections::BTreeMap;

/// Availability of one PDB over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Availability {
    /// Simulated seconds with `currentHealthy < desiredHealthy` after the workload
    /// first became available.
    pub seconds_below_min: f64,
    /// Lowest `currentHealthy` seen since the workload first became available.
    pub(crate) min_healthy: Option<i64>,
    /// `currentHealthy >= desiredHealthy` was reached once (accounting starts then).
    pub(crate) became_available: bool,
}

/// Evictions of one workload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evictions {
    /// 201s.
    pub allowed: u64,
    /// 429s and 500s.
    pub refused: u64,
}

/// All counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    /// `"<verb> <resource>"` → count (verbs: get, list, watch, create, update, patch,
    /// delete, deletecollection, evict; resource with subresource as `pods/status`).
    pub requests: BTreeMap<String, u64>,
    /// `"<namespace>/<pdb>"` → availability.
    pub availability: BTreeMap<String, Availability>,
    /// `"<namespace>/<workload>"` → evictions.
    pub evictions: BTreeMap<String, Evictions>,
    /// Injected API errors.
    pub injected_errors: u64,
    /// Watch streams ended, by reason (timeout, client_gone, lagged, shutdown).
    pub(crate) watch_closed: BTreeMap<String, u64>,
}

impl Metrics {
    /// Counts one request.
    pub(crate) fn request(&mut self, verb: &str, resource: &str) {
        *self
            .requests
            .entry(format!("{verb} {resource}"))
            .or_default() += 1;
    }
    /// Counts one eviction.
    pub(crate) fn eviction(&mut self, workload: &str, allowed: bool) {
        let e = self.evictions.entry(workload.to_string()).or_default();
        if allowed {
            e.allowed += 1;
        } else {
            e.refused += 1;
        }
    }
}
