//! Watch-fed caches (kube-runtime reflectors) for the apply loop: after the initial list,
//! state comes from the watch, never from a periodic LIST. Each cache bumps a
//! `tokio::sync::watch` counter on every event, so the engine wakes on change
//! (e.g. a PDB's `disruptionsAllowed` going up after a 429) instead of sleeping blindly.

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::watch as notify;
use tokio_util::task::AbortOnDropHandle;

/// A live cache of one resource kind.
pub struct Watched<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    changes: notify::Receiver<u64>,
    /// The watch: stops when the cache is dropped.
    _task: AbortOnDropHandle<()>,
}

impl<K> Watched<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    /// Starts the watch (with kube's default backoff on errors); optional label selector.
    pub fn spawn(api: Api<K>, label_selector: Option<&str>) -> Self {
        Self::spawn_observed(api, label_selector, |_: &K| {})
    }

    /// Like [`Self::spawn`], and calls `on_stored` with every object version once it is
    /// in the cache, in the watch's order. A snapshot ([`Self::objects`]) shows only the
    /// latest version; this sees each one (objects of a re-list once it is complete).
    pub fn spawn_observed(
        api: Api<K>,
        label_selector: Option<&str>,
        mut on_stored: impl FnMut(&K) + Send + 'static,
    ) -> Self {
        let (store, writer) = reflector::store();
        let (tx, changes) = notify::channel(0u64);
        let mut cfg = watcher::Config::default();
        if let Some(sel) = label_selector {
            cfg = cfg.labels(sel);
        }
        let stream = reflector::reflector(writer, watcher(api, cfg).default_backoff());
        let task = AbortOnDropHandle::new(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            // A re-list's objects reach the cache together, at InitDone.
            let mut relist: Vec<K> = Vec::new();
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::Apply(o)) => on_stored(&o),
                    Ok(watcher::Event::Init) => relist.clear(),
                    Ok(watcher::Event::InitApply(o)) => relist.push(o),
                    Ok(watcher::Event::InitDone) => relist.drain(..).for_each(|o| on_stored(&o)),
                    Ok(watcher::Event::Delete(_)) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "watch error; backing off");
                        continue;
                    }
                }
                tx.send_modify(|n| *n += 1);
            }
        }));
        Watched {
            store,
            changes,
            _task: task,
        }
    }

    /// Waits until the initial list has been received.
    pub async fn ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    /// The current objects.
    pub fn objects(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// Waits for the next event after the last one seen by this handle.
    pub async fn changed(&mut self) {
        let _ = self.changes.changed().await;
    }
}
