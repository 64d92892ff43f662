//! Availability during the upgrade, measured by the gate itself (not taken from the engine's
//! word): every PDB must keep `desiredHealthy`, every Service that had a ready endpoint must
//! keep one. [`timeline`] is the pure accounting, [`kube_watch`] the watches that feed it.

pub(crate) mod kube_watch;
pub(crate) mod timeline;

pub(crate) use timeline::{judge, AvailabilityReport};
