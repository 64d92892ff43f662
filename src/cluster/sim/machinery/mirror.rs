//! A simulated cluster whose nodes mirror another cloud's instances (the moto test rig of
//! `--cloud aws`): every instance of the mirrored groups registers a Node after the pool's
//! boot time (NotReady, then Ready after the kubelet delay), gets pods, and goes away with
//! its pods when its instance leaves the group. The other cloud decides sizes; the sim only
//! adds what a look-alike cloud does not: boot and registration delays.

use super::super::clock::SimTime;
use super::super::SimState;
use super::cloud::Lifecycle;

/// One instance of a mirrored group, as the other cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredInstance {
    /// Its id (the Node's provider id ends in it).
    pub id: String,
    /// The simulated group it belongs to (`<pool>-<zone>`).
    pub group: String,
    /// The kubelet version its launch template boots.
    pub kubelet_version: String,
}

impl SimState {
    /// Brings the simulated instances in line with `seen`: new ones boot (or, `initial`, are
    /// up at once), missing ones are terminated with their Node and pods. Instances of groups
    /// the topology does not know are left out (and returned, for a warning).
    pub(crate) fn mirror(
        &mut self,
        seen: &[MirroredInstance],
        initial: bool,
        now: SimTime,
    ) -> Vec<String> {
        let mut unknown = Vec::new();
        for i in seen {
            if self.mach.cloud.instances.contains_key(&i.id) {
                continue;
            }
            if !self.mach.cloud.groups.contains_key(&i.group) {
                unknown.push(format!("{} ({})", i.id, i.group));
                continue;
            }
            let id = self.mach.cloud.launch_as(
                &i.group,
                i.id.clone(),
                i.kubelet_version.clone(),
                now,
                initial,
            );
            if initial {
                self.bring_up(&id, now);
            }
        }
        let gone: Vec<String> = self
            .mach
            .cloud
            .instances
            .values()
            .filter(|i| i.lifecycle != Lifecycle::Terminated)
            .filter(|i| !seen.iter().any(|s| s.id == i.id))
            .map(|i| i.id.clone())
            .collect();
        for id in gone {
            self.terminate_instance(&id, false);
        }
        // Desired sizes follow what runs, for `/sim/cloud` readers.
        let cloud = &mut self.mach.cloud;
        for g in cloud.groups.values_mut() {
            let live = cloud.instances.values().filter(|i| i.group == g.name);
            g.desired = live
                .filter(|i| i.lifecycle != Lifecycle::Terminated)
                .count() as u32;
        }
        unknown
    }
}
