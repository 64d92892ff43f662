//! The availability probe on a real API server: watches (never polls) PDBs, EndpointSlices and
//! Nodes and feeds a [`Timeline`]. A watch that never delivered its initial list is reported
//! as an error, so "no disruption seen" never stands in for "could not look".

use super::timeline::{AvailabilityReport, Subject, Timeline};
use super::{AvailabilityWatch, RunningWatch};
use crate::cluster::ClusterHandle;
use futures::stream::{BoxStream, SelectAll, StreamExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Starts [`KubeWatchRun`]s with the cluster's kubeconfig.
pub(crate) struct KubeAvailabilityWatch;

#[async_trait::async_trait]
impl AvailabilityWatch for KubeAvailabilityWatch {
    async fn start(&self, cluster: &ClusterHandle) -> Result<Box<dyn RunningWatch>, String> {
        let kube =
            crate::upgrade::kube_cluster::KubeCluster::connect(Some(&cluster.kubeconfig), None)
                .await
                .map_err(|e| format!("availability probe: {e}"))?;
        Ok(Box::new(KubeWatchRun::start(kube.client())))
    }
}

enum Change {
    Pdb(Event<PodDisruptionBudget>),
    Slice(Event<EndpointSlice>),
    /// Boxed: a Node is much larger than the other objects.
    Node(Box<Event<Node>>),
    /// The initial list of this resource is complete.
    Synced(&'static str),
    Failed(&'static str, String),
}

/// The watch of every `K` in the cluster, each event (or error) as a [`Change`].
fn watch<K>(
    client: Client,
    what: &'static str,
    change: fn(Event<K>) -> Change,
) -> BoxStream<'static, Change>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher(Api::<K>::all(client), watcher::Config::default())
        .default_backoff()
        .map(move |r| match r {
            Ok(Event::InitDone) => Change::Synced(what),
            Ok(ev) => change(ev),
            Err(e) => Change::Failed(what, e.to_string()),
        })
        .boxed()
}

pub(crate) struct KubeWatchRun {
    stop: CancellationToken,
    task: JoinHandle<Timeline>,
    started: Instant,
}

impl KubeWatchRun {
    /// Starts watching with `client`; time 0 is now.
    pub(crate) fn start(client: Client) -> Self {
        let started = Instant::now();
        let stop = CancellationToken::new();
        let mut streams: SelectAll<BoxStream<'static, Change>> = SelectAll::new();
        streams.push(watch(client.clone(), "poddisruptionbudgets", Change::Pdb));
        streams.push(watch(client.clone(), "endpointslices", Change::Slice));
        streams.push(watch(client, "nodes", |ev| Change::Node(Box::new(ev))));
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut state = State::default();
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    next = streams.next() => match next {
                        Some(change) => state.apply(change, started.elapsed().as_secs_f64()),
                        None => break,
                    },
                }
            }
            state.finish()
        });
        KubeWatchRun {
            stop,
            task,
            started,
        }
    }
}

#[async_trait::async_trait]
impl RunningWatch for KubeWatchRun {
    async fn stop(self: Box<Self>) -> AvailabilityReport {
        let end = self.started.elapsed().as_secs_f64();
        self.stop.cancel();
        match self.task.await {
            Ok(timeline) => timeline.finish(end),
            Err(e) => {
                let mut t = Timeline::default();
                t.error(format!("availability probe task failed: {e}"));
                t.finish(end)
            }
        }
    }
}

#[derive(Default)]
struct State {
    timeline: Timeline,
    cordoned: BTreeSet<String>,
    /// (namespace, slice) → (service, ready endpoints).
    slices: BTreeMap<(String, String), (String, i64)>,
    synced: BTreeSet<&'static str>,
    last_error: BTreeMap<&'static str, String>,
}

fn pdb_subject(p: &PodDisruptionBudget) -> Subject {
    Subject::Pdb {
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
    }
}

fn ready_endpoints(s: &EndpointSlice) -> i64 {
    s.endpoints
        .iter()
        .filter(|e| {
            // The API's rule: a nil `ready` means ready.
            e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
        })
        .count() as i64
}

impl State {
    fn cordoned(&self) -> Vec<String> {
        self.cordoned.iter().cloned().collect()
    }

    fn apply(&mut self, change: Change, t: f64) {
        let cordoned = |n: &Node| {
            n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
        };
        match change {
            Change::Pdb(Event::Apply(p) | Event::InitApply(p)) => self.pdb(&p, t),
            Change::Pdb(Event::Delete(p)) => self.timeline.forget(&pdb_subject(&p), t),
            Change::Slice(Event::Apply(s) | Event::InitApply(s)) => self.slice(&s, false, t),
            Change::Slice(Event::Delete(s)) => self.slice(&s, true, t),
            Change::Node(ev) => match *ev {
                Event::Apply(n) | Event::InitApply(n) if cordoned(&n) => {
                    self.cordoned.insert(n.name_any());
                }
                Event::Apply(n) | Event::InitApply(n) | Event::Delete(n) => {
                    self.cordoned.remove(&n.name_any());
                }
                Event::Init | Event::InitDone => {}
            },
            // The start of an initial list (its end came as `Synced`).
            Change::Pdb(_) | Change::Slice(_) => {}
            Change::Synced(what) => {
                self.synced.insert(what);
            }
            Change::Failed(what, e) => {
                tracing::warn!(resource = what, error = %e, "availability watch error (retrying)");
                self.last_error.insert(what, e);
            }
        }
    }

    fn pdb(&mut self, p: &PodDisruptionBudget, t: f64) {
        let Some(status) = &p.status else { return };
        // A status the controller has not computed for the current spec says nothing yet.
        if status.observed_generation.is_none() {
            return;
        }
        let cordoned = self.cordoned();
        self.timeline.observe(
            &pdb_subject(p),
            t,
            i64::from(status.current_healthy),
            i64::from(status.desired_healthy),
            &cordoned,
        );
    }

    fn slice(&mut self, s: &EndpointSlice, deleted: bool, t: f64) {
        let ns = s.namespace().unwrap_or_default();
        let Some(service) = s.labels().get(SERVICE_NAME_LABEL).cloned() else {
            return;
        };
        let key = (ns.clone(), s.name_any());
        if deleted {
            self.slices.remove(&key);
        } else {
            self.slices
                .insert(key, (service.clone(), ready_endpoints(s)));
        }
        let mine: Vec<i64> = self
            .slices
            .iter()
            .filter(|((n, _), (svc, _))| *n == ns && *svc == service)
            .map(|(_, (_, ready))| *ready)
            .collect();
        let subject = Subject::Service {
            namespace: ns,
            name: service,
        };
        if mine.is_empty() {
            // The Service went away with its slices: not an outage the upgrade caused.
            self.timeline.forget(&subject, t);
        } else {
            let cordoned = self.cordoned();
            self.timeline
                .observe(&subject, t, mine.iter().sum(), 1, &cordoned);
        }
    }

    fn finish(mut self) -> Timeline {
        for what in ["poddisruptionbudgets", "endpointslices", "nodes"] {
            if !self.synced.contains(what) {
                let why = self
                    .last_error
                    .get(what)
                    .cloned()
                    .unwrap_or_else(|| "the initial list did not arrive".into());
                self.timeline.error(format!("watch {what}: {why}"));
            }
        }
        self.timeline
    }
}
