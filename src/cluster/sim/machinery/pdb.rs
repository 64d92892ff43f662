//! PodDisruptionBudget status (`currentHealthy`, `desiredHealthy`,
//! `disruptionsAllowed`) and the eviction subresource, with the answers of the real
//! API server (`pkg/registry/core/pod/storage/eviction.go`): 201, 429 when the budget
//! is exhausted, 500 when a pod is covered by more than one PDB.

use super::super::clock::SimTime;
use super::super::error::ApiError;
use super::super::resources::id;
use super::super::selector::LabelSelector;
use super::super::store::meta_str;
use super::super::SimState;
use super::{controller_of, deleting, pod_ready, terminal};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// An int-or-percent of `expected`, percentages rounded up (as the disruption controller does).
fn resolve(v: &Value, expected: i64) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => (p * expected + 99) / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

impl SimState {
    /// The status of a PDB, computed from the current pods (`lastTransitionTime`: `ts`).
    fn pdb_status(&self, pdb: &Value, ts: &str) -> Value {
        let ns = meta_str(pdb, "namespace").unwrap_or("");
        // The PDB's pods (none without a selector).
        let sel = LabelSelector::from_object(pdb["spec"].get("selector"));
        let mut pods = self.store.list(id::PODS, Some(ns));
        pods.retain(|p| sel.as_ref().is_some_and(|s| s.matches(p)) && !terminal(p));
        let spec = &pdb["spec"];
        let min = spec.get("minAvailable").filter(|v| !v.is_null());
        let max = spec.get("maxUnavailable").filter(|v| !v.is_null());
        let expected = if min.is_some_and(Value::is_number) {
            pods.len() as i64
        } else {
            // Scale of the controllers of the pods.
            let mut seen = HashSet::new();
            let mut total = 0;
            for p in &pods {
                match controller_of(p) {
                    Some((kind, name, uid)) if seen.insert(uid.to_string()) => {
                        let res = match kind {
                            "ReplicaSet" => id::REPLICASETS,
                            "StatefulSet" => id::STATEFULSETS,
                            _ => {
                                total += 1;
                                continue;
                            }
                        };
                        total += self
                            .store
                            .get(res, ns, name)
                            .and_then(|o| o["spec"]["replicas"].as_i64())
                            .unwrap_or(1);
                    }
                    Some(_) => {}
                    None => total += 1,
                }
            }
            total
        };
        let desired = match (min, max) {
            (Some(m), _) => resolve(m, expected),
            (None, Some(m)) => expected - resolve(m, expected),
            (None, None) => expected,
        }
        .max(0);
        let healthy = pods.iter().filter(|p| pod_ready(p) && !deleting(p)).count() as i64;
        let allowed = (healthy - desired).max(0);
        let generation = &pdb["metadata"]["generation"];
        json!({
            "observedGeneration": generation,
            "currentHealthy": healthy, "desiredHealthy": desired,
            "expectedPods": expected, "disruptionsAllowed": allowed,
            "conditions": [{"type": "DisruptionAllowed", "status": if allowed > 0 { "True" } else { "False" },
                            "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
                            "message": "", "observedGeneration": generation,
                            "lastTransitionTime": ts}],
        })
    }

    /// Writes every PDB's status when it changed.
    pub(crate) fn update_pdb_status(&mut self) {
        let ts = self.ts(self.mach.last_tick);
        for pdb in self.store.list(id::PDBS, None) {
            let mut status = self.pdb_status(&pdb, &ts);
            let old = &pdb["status"];
            if old["conditions"][0]["status"] == status["conditions"][0]["status"] {
                status["conditions"][0]["lastTransitionTime"] =
                    old["conditions"][0]["lastTransitionTime"].clone();
            }
            self.set_status(id::PDBS, &pdb, status);
        }
    }

    /// Adds `dt` simulated seconds of "below desiredHealthy" per PDB.
    pub(crate) fn account_availability(&mut self, dt: f64) {
        for ((ns, name), pdb) in self.store.iter(id::PDBS) {
            let key = format!("{ns}/{name}");
            let cur = pdb["status"]["currentHealthy"].as_i64().unwrap_or(0);
            let want = pdb["status"]["desiredHealthy"].as_i64().unwrap_or(0);
            let e = self.metrics.availability.entry(key).or_default();
            // Count only once the workload has been available (not during start-up).
            if !e.became_available {
                if cur >= want && pdb["status"].get("desiredHealthy").is_some() {
                    e.became_available = true;
                } else {
                    continue;
                }
            }
            e.min_healthy = Some(e.min_healthy.map_or(cur, |m| m.min(cur)));
            if cur < want {
                e.seconds_below_min += dt;
            }
        }
    }

    /// POST pods/<name>/eviction.
    pub(crate) fn evict(
        &mut self,
        ns: &str,
        name: &str,
        body: &Value,
        now: SimTime,
    ) -> Result<Value, ApiError> {
        let pod = self.store.found(id::PODS, ns, name)?;
        let opts = &body["deleteOptions"];
        if let Some(uid) = opts["preconditions"]["uid"].as_str() {
            if Some(uid) != meta_str(&pod, "uid") {
                return Err(ApiError::conflict("pods", name));
            }
        }
        let grace = opts["gracePeriodSeconds"].as_i64();
        let dry_run = opts["dryRun"].as_array().is_some_and(|a| !a.is_empty());
        let workload = workload_of(self, &pod);
        if let Err(e) = self.disrupt(&pod, dry_run, now) {
            self.metrics.eviction(&workload, false);
            return Err(e);
        }
        if !dry_run {
            self.delete_pod(ns, name, grace, now)?;
            self.metrics.eviction(&workload, true);
        }
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                  "code": 201}),
        )
    }

    /// Whether the PDB covering `pod` lets it go, and, unless `dry_run`, takes one disruption
    /// from that budget.
    fn disrupt(&mut self, pod: &Value, dry_run: bool, now: SimTime) -> Result<(), ApiError> {
        // Pods that can ignore PDBs: terminal, Pending, or already terminating.
        let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
        if terminal(pod) || phase == "Pending" || deleting(pod) {
            return Ok(());
        }
        let ns = meta_str(pod, "namespace").unwrap_or("");
        let pdbs: Vec<Arc<Value>> = self
            .store
            .list(id::PDBS, Some(ns))
            .into_iter()
            .filter(|pdb| {
                LabelSelector::from_object(pdb["spec"].get("selector"))
                    .is_some_and(|s| s.matches(pod))
            })
            .collect();
        if pdbs.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        let Some(pdb) = pdbs.first() else {
            return Ok(());
        };
        // Like the real API server, decide on the *stored* PDB status (kept current by the
        // disruption controller, i.e. the tick), not on a fresh count.
        let st = &pdb["status"];
        let pdb_name = meta_str(pdb, "name").unwrap_or("");
        let too_many = |message: String, retry: Option<u32>| {
            let mut e = ApiError::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            );
            e.retry_after = retry;
            let mut d = json!({"causes": [{"reason": "DisruptionBudget", "message": message}]});
            if let Some(r) = retry {
                d["retryAfterSeconds"] = json!(r);
            }
            e.details = Some(d);
            e
        };
        // The disruption controller has not processed the latest spec yet.
        let observed = st["observedGeneration"].as_i64().unwrap_or(0);
        if observed < pdb["metadata"]["generation"].as_i64().unwrap_or(1) {
            return Err(too_many(
                format!("The disruption budget {pdb_name} is still being processed by the server."),
                Some(10),
            ));
        }
        let current = st["currentHealthy"].as_i64().unwrap_or(0);
        let desired = st["desiredHealthy"].as_i64().unwrap_or(0);
        let allowed = st["disruptionsAllowed"].as_i64().unwrap_or(0);
        let always_allow = pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow";
        if !pod_ready(pod) && (always_allow || current >= desired) {
            return Ok(());
        }
        if allowed < 0 {
            return Err(ApiError::new(
                403,
                "Forbidden",
                "pdb disruptions allowed is negative",
            ));
        }
        if allowed == 0 {
            return Err(too_many(
                format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"),
                None,
            ));
        }
        if !dry_run {
            // Consume one disruption and remember the pod (DisruptedPods), as the real
            // eviction does, so concurrent evictions cannot overrun the budget.
            let pod_name = meta_str(pod, "name").unwrap_or("").to_string();
            let ts = self.ts(now);
            self.store.modify(id::PDBS, ns, pdb_name, |p| {
                p["status"]["disruptionsAllowed"] = json!(allowed - 1);
                if !p["status"]["disruptedPods"].is_object() {
                    p["status"]["disruptedPods"] = json!({});
                }
                p["status"]["disruptedPods"][&pod_name] = json!(ts);
            });
        }
        Ok(())
    }
}

/// `namespace/workload` of a pod (Deployment for ReplicaSet pods).
fn workload_of(state: &SimState, pod: &Value) -> String {
    let ns = meta_str(pod, "namespace").unwrap_or("");
    let name = match controller_of(pod) {
        Some(("ReplicaSet", rs, _)) => state
            .store
            .get(id::REPLICASETS, ns, rs)
            .and_then(|r| controller_of(&r).map(|(_, d, _)| d.to_string()))
            .unwrap_or_else(|| rs.to_string()),
        Some((_, n, _)) => n.to_string(),
        None => meta_str(pod, "name").unwrap_or("").to_string(),
    };
    format!("{ns}/{name}")
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use serde_json::json;

    #[test]
    fn int_or_percent_rounds_like_the_disruption_controller() {
        assert_eq!(resolve(&json!(2), 10), 2);
        assert_eq!(resolve(&json!("90%"), 4500), 4050);
        assert_eq!(resolve(&json!("10%"), 5), 1); // 0.5 rounds up
        assert_eq!(resolve(&json!("100%"), 3), 3);
    }
}
