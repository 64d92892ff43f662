//! The static table of resources the simulated API server serves.

/// One served resource (group/version/plural) with its discovery data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResourceDef {
    /// API group ("" for core).
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    /// Plural resource name (URL segment).
    pub(crate) plural: &'static str,
    /// Kind, CamelCase (its lowercase is the singular name).
    pub(crate) kind: &'static str,
    pub(crate) namespaced: bool,
    pub(crate) short_names: &'static [&'static str],
    /// Has a `/status` subresource (main-resource writes keep the stored status).
    pub(crate) has_status: bool,
    /// Bumps `metadata.generation` when the spec changes.
    pub(crate) generation: bool,
    /// Has an `autoscaling/v1` `/scale` subresource (`spec.replicas`).
    pub(crate) scalable: bool,
    /// `spec.selector` is a `metav1.LabelSelector` (checked on admission).
    pub(crate) selecting: bool,
    /// In the `all` discovery category (`kubectl get all`).
    pub(crate) in_all: bool,
}

impl ResourceDef {
    /// `apiVersion` string ("v1", "apps/v1").
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// Human name used in Status messages ("pods", "deployments.apps").
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Flags of [`def`] (one bit per boolean of [`ResourceDef`]).
const NS: u8 = 1;
const STATUS: u8 = 2;
const GEN: u8 = 4;
const SCALE: u8 = 8;
const SELECTOR: u8 = 16;
const ALL: u8 = 32;

/// A resource served at `v1` (every resource of the simulator is).
const fn def(
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    short_names: &'static [&'static str],
    flags: u8,
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        plural,
        kind,
        namespaced: flags & NS != 0,
        short_names,
        has_status: flags & STATUS != 0,
        generation: flags & GEN != 0,
        scalable: flags & SCALE != 0,
        selecting: flags & SELECTOR != 0,
        in_all: flags & ALL != 0,
    }
}

/// Every served resource. Indices into this table are the store's resource ids.
/// Columns: group, plural, kind, short names, flags.
pub(crate) const RESOURCES: &[ResourceDef] = &[
    def("", "namespaces", "Namespace", &["ns"], STATUS),
    def("", "nodes", "Node", &["no"], STATUS),
    def("", "pods", "Pod", &["po"], NS | STATUS | ALL),
    def("", "events", "Event", &["ev"], NS),
    def("", "persistentvolumes", "PersistentVolume", &["pv"], STATUS),
    def(
        "",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        &["pvc"],
        NS | STATUS | ALL,
    ),
    def("", "services", "Service", &["svc"], NS | STATUS | ALL),
    def("", "configmaps", "ConfigMap", &["cm"], NS | ALL),
    def(
        "apps",
        "deployments",
        "Deployment",
        &["deploy"],
        NS | STATUS | GEN | SCALE | SELECTOR | ALL,
    ),
    def(
        "apps",
        "replicasets",
        "ReplicaSet",
        &["rs"],
        NS | STATUS | GEN | SCALE | SELECTOR | ALL,
    ),
    def(
        "apps",
        "statefulsets",
        "StatefulSet",
        &["sts"],
        NS | STATUS | GEN | SCALE | SELECTOR | ALL,
    ),
    def(
        "apps",
        "daemonsets",
        "DaemonSet",
        &["ds"],
        NS | STATUS | GEN | SELECTOR | ALL,
    ),
    def(
        "policy",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        &["pdb"],
        NS | STATUS | GEN | SELECTOR | ALL,
    ),
    def("coordination.k8s.io", "leases", "Lease", &[], NS),
    def(
        "storage.k8s.io",
        "volumeattachments",
        "VolumeAttachment",
        &[],
        STATUS,
    ),
    def(
        "discovery.k8s.io",
        "endpointslices",
        "EndpointSlice",
        &[],
        NS,
    ),
];

/// Resource ids of the resources the machinery touches.
pub(crate) mod id {
    pub(crate) const NAMESPACES: usize = 0;
    pub(crate) const NODES: usize = 1;
    pub(crate) const PODS: usize = 2;
    pub(crate) const EVENTS: usize = 3;
    pub(crate) const PVS: usize = 4;
    pub(crate) const PVCS: usize = 5;
    pub(crate) const SERVICES: usize = 6;
    pub(crate) const DEPLOYMENTS: usize = 8;
    pub(crate) const REPLICASETS: usize = 9;
    pub(crate) const STATEFULSETS: usize = 10;
    pub(crate) const DAEMONSETS: usize = 11;
    pub(crate) const PDBS: usize = 12;
    pub(crate) const VOLUMEATTACHMENTS: usize = 14;
    pub(crate) const ENDPOINTSLICES: usize = 15;
}

/// Finds a resource by group, version and plural.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Group/versions served, in discovery order: `(group, version)`.
pub(crate) fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ids_match_table() {
        assert_eq!(RESOURCES[id::PODS].plural, "pods");
        assert_eq!(RESOURCES[id::NODES].plural, "nodes");
        assert_eq!(RESOURCES[id::PDBS].plural, "poddisruptionbudgets");
        assert_eq!(RESOURCES[id::VOLUMEATTACHMENTS].plural, "volumeattachments");
        assert_eq!(RESOURCES[7].plural, "configmaps");
        assert_eq!(RESOURCES[13].plural, "leases");
        assert_eq!(find("apps", "v1", "daemonsets"), Some(id::DAEMONSETS));
        assert_eq!(
            find("discovery.k8s.io", "v1", "endpointslices"),
            Some(id::ENDPOINTSLICES)
        );
    }
}
