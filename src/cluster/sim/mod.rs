//! The embedded simulated Kubernetes cluster: an HTTP API server on 127.0.0.1 that
//! speaks real Kubernetes JSON, backed by an in-memory store and simulated
//! machinery (cloud, kubelet, scheduler, controllers, PDBs) on a scaled clock.
//!
//! Start it in-process with [`SimCluster::start`], or as a background process with
//! `e2e-gate cluster up --provider sim` (see [`process`]).

pub(crate) mod api;
pub(crate) mod clock;
pub(crate) mod cloud_api;
pub(crate) mod error;
pub(crate) mod machinery;
pub(crate) mod metrics;
pub(crate) mod patch;
pub mod process;

pub(crate) mod resources;
pub(crate) mod selector;
pub(crate) mod store;
pub mod topology;
mod workloads;

use clock::SimClock;
pub use machinery::mirror::MirroredInstance;
use machinery::Machinery;
use metrics::Metrics;
use parking_lot::Mutex;
use resources::id;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio_util::sync::CancellationToken;
pub use topology::Topology;

/// Where a mirrored cloud's instances come from (in the tests of `--cloud aws`, moto's groups
/// read through the AWS SDK by the test rig, never through the engine's adapter). Mirrored
/// Nodes carry `aws:///ZONE/ID` provider ids, the form the engine's AWS adapter reads.
#[async_trait::async_trait]
pub trait MirrorSource: std::fmt::Debug + Send + Sync {
    /// Every live instance of the mirrored groups now.
    async fn read(&self) -> Result<Vec<MirroredInstance>, String>;
}

/// Mutable simulator state: the store, the machinery and the counters.
pub struct SimState {
    pub(crate) store: Store,
    pub(crate) mach: Machinery,
    /// Introspection counters.
    pub metrics: Metrics,
    pub(crate) clock: SimClock,
    pub(crate) settings: topology::SimSettings,
}

/// The shared simulator.
pub struct Sim {
    /// State behind one lock (API handlers and the tick loop take it briefly).
    pub state: Mutex<SimState>,
    pub(crate) clock: SimClock,
    pub(crate) settings: topology::SimSettings,
    /// How often watch streams get a BOOKMARK (real time).
    pub(crate) bookmark_interval: Duration,
    /// Cancelled on shutdown: ends watch streams.
    pub(crate) shutdown: CancellationToken,
    /// `127.0.0.1:PORT` once bound.
    pub(crate) addr: Mutex<String>,
    /// Serialised JSON of object versions, keyed by their (globally unique)
    /// resourceVersion: LISTs and watch streams serialise each version once.
    pub(crate) json_cache: Mutex<std::collections::HashMap<u64, axum::body::Bytes>>,
    /// The store's resourceVersion the cache was last warmed at (nothing to do if unchanged).
    warmed_rv: AtomicU64,
}

/// Options of an in-process simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Overrides `sim.time_scale` of the topology.
    pub time_scale: Option<f64>,
    /// Port on 127.0.0.1 (0 = random).
    pub port: u16,
    /// Real time between machinery ticks.
    pub tick: Duration,
    /// Real time between watch bookmarks.
    pub bookmark_interval: Duration,
    /// Watch events kept for resuming watches from an older resourceVersion.
    pub history: usize,
    /// Nodes mirror these instances instead of the topology's own groups (the pools of the
    /// topology give the groups' names, node shapes and timings).
    pub mirror: Option<Arc<dyn MirrorSource>>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            time_scale: None,
            port: 0,
            tick: Duration::from_millis(20),
            bookmark_interval: Duration::from_secs(1),
            history: 5_000,
            mirror: None,
        }
    }
}

/// A running simulator: its URL and a way to stop it.
pub struct SimCluster {
    sim: Arc<Sim>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sim {
    /// Builds the simulator state from a topology (no server, no clock loop).
    pub(crate) fn new(topology: &Topology, opts: &SimOptions) -> Arc<Self> {
        let mut settings = topology.sim.clone();
        if let Some(ts) = opts.time_scale {
            settings.time_scale = ts;
        }
        let clock = SimClock::new(settings.time_scale);
        let mut state = SimState {
            store: Store::new(opts.history),
            mach: Machinery::default(),
            metrics: Metrics::default(),
            clock: clock.clone(),
            settings: settings.clone(),
        };
        let ts = state.ts(clock.now());
        let builtin = ["default", "kube-system", "kube-public", "kube-node-lease"];
        let workload_ns = topology.workloads.iter().map(|w| w.namespace.as_str());
        let mut seen = std::collections::BTreeSet::new();
        for ns in builtin
            .into_iter()
            .chain(workload_ns)
            .filter(|ns| seen.insert(*ns))
        {
            let obj = json!({"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            let _ = state.store.create(id::NAMESPACES, "", obj, &ts);
        }
        for p in &topology.pools {
            state.mach.cloud.add_pool(p);
        }
        state.mach.cloud.mirrored = opts.mirror.is_some();
        if !state.mach.cloud.mirrored {
            state.cloud_init();
        }
        for w in &topology.workloads {
            workloads::create(&mut state, w, &ts);
        }
        state.tick(0.0);
        Arc::new(Self {
            state: Mutex::new(state),
            clock,
            settings,
            bookmark_interval: opts.bookmark_interval,
            shutdown: CancellationToken::new(),
            addr: Mutex::new(String::new()),
            json_cache: Mutex::new(std::collections::HashMap::new()),
            warmed_rv: AtomicU64::new(0),
        })
    }

    /// Serialises every current object version that is not cached yet and drops
    /// cached versions that are no longer current, so LISTs are served from memory.
    fn warm_json_cache(&self) {
        let (rv, items) = {
            let st = self.state.lock();
            if st.store.rv() == self.warmed_rv.load(Ordering::Relaxed) {
                return;
            }
            let items: Vec<Arc<serde_json::Value>> = (0..resources::RESOURCES.len())
                .flat_map(|r| st.store.list(r, None))
                .collect();
            (st.store.rv(), items)
        };
        let mut live = std::collections::HashSet::with_capacity(items.len());
        for o in &items {
            if let Some(v) =
                store::meta_str(o, "resourceVersion").and_then(|r| r.parse::<u64>().ok())
            {
                live.insert(v);
            }
            self.object_json(o);
        }
        // Keep recent versions for watch streams still sending them.
        let floor = rv.saturating_sub(10_000);
        self.json_cache
            .lock()
            .retain(|v, _| live.contains(v) || *v > floor);
        self.warmed_rv.store(rv, Ordering::Relaxed);
    }

    /// The JSON bytes of an object version (cached by resourceVersion).
    pub(crate) fn object_json(&self, obj: &serde_json::Value) -> axum::body::Bytes {
        let rv = store::meta_str(obj, "resourceVersion").and_then(|r| r.parse::<u64>().ok());
        if let Some(rv) = rv {
            if let Some(b) = self.json_cache.lock().get(&rv) {
                return b.clone();
            }
        }
        let b = axum::body::Bytes::from(serde_json::to_vec(obj).unwrap_or_default());
        if let Some(rv) = rv {
            let mut c = self.json_cache.lock();
            if c.len() > 1_000_000 {
                c.clear(); // safety valve; the warmer prunes normally
            }
            c.insert(rv, b.clone());
        }
        b
    }
}

impl SimCluster {
    /// Starts the API server on 127.0.0.1 and the machinery loop.
    pub async fn start(topology: Topology, opts: SimOptions) -> std::io::Result<Self> {
        let sim = Sim::new(&topology, &opts);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        *sim.addr.lock() = listener.local_addr()?.to_string();
        let app = api::router(sim.clone());
        let token = sim.shutdown.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        let ticker = every(&sim, opts.tick, |sim| async move {
            let now = sim.clock.now();
            sim.state.lock().tick(now);
        });
        let warmer = every(&sim, Duration::from_millis(200), |sim| async move {
            let _ = tokio::task::spawn_blocking(move || sim.warm_json_cache()).await;
        });
        let mut tasks = vec![server, ticker, warmer];
        if let Some(m) = opts.mirror {
            tasks.push(start_mirror(&sim, m).await?);
        }
        Ok(Self { sim, tasks })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.sim.addr.lock())
    }

    /// The simulator (state, clock, metrics).
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// A kubeconfig (no auth) pointing at this server.
    pub fn kubeconfig(&self, name: &str) -> String {
        kubeconfig_yaml(name, &self.url())
    }

    /// Stops the server and the machinery.
    pub async fn shutdown(self) {
        self.sim.shutdown.cancel();
        // Open watch streams and keep-alive connections keep the server task alive; nothing
        // is lost by cutting them once the shutdown was signalled.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// Reads the mirrored groups once (their instances are up at once, as a cluster that was
/// running), then keeps following them.
async fn start_mirror(
    sim: &Arc<Sim>,
    source: Arc<dyn MirrorSource>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let first = source
        .read()
        .await
        .map_err(|e| std::io::Error::other(format!("mirror of {source:?}: {e}")))?;
    {
        let now = sim.clock.now();
        let mut st = sim.state.lock();
        let unknown = st.mirror(&first, true, now);
        if !unknown.is_empty() {
            tracing::warn!(
                ?unknown,
                "mirrored instances of groups the topology does not have"
            );
        }
        st.tick(now);
    }
    Ok(every(sim, Duration::from_millis(100), move |sim| {
        let source = source.clone();
        async move {
            match source.read().await {
                Ok(seen) => {
                    let now = sim.clock.now();
                    sim.state.lock().mirror(&seen, false, now);
                }
                Err(e) => tracing::warn!("mirror read failed: {e}"),
            }
        }
    }))
}

/// Runs `step` every `period` (real time; missed ticks are skipped) until shutdown.
fn every<F, Fut>(sim: &Arc<Sim>, period: Duration, mut step: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut(Arc<Sim>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let sim = sim.clone();
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(period);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = sim.shutdown.cancelled() => break,
                _ = iv.tick() => step(sim.clone()).await,
            }
        }
    })
}

/// A minimal kubeconfig for a plain-HTTP server without authentication.
pub(crate) fn kubeconfig_yaml(name: &str, server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {server}\n  name: {name}\ncontexts:\n- context:\n    cluster: {name}\n    user: {name}\n  name: {name}\ncurrent-context: {name}\npreferences: {{}}\nusers:\n- name: {name}\n  user: {{}}\n"
    )
}
