//! The simulator as a background process: `cluster up --provider sim` re-executes
//! the current binary as `cluster serve-sim` in a new session (stdio to a log file),
//! waits until it answers `/version`, and leaves a pid file, a state file and the
//! kubeconfig in the state directory (`$E2E_GATE_STATE_DIR`, else
//! `$XDG_RUNTIME_DIR/e2e-gate/clusters`, else `~/.cache/e2e-gate/clusters`, plus `/<name>`).

use super::super::provider::{
    ClusterError, ClusterHandle, ClusterProvider, ClusterSpec, ClusterStatus,
};
use super::topology::Topology;
use super::{kubeconfig_yaml, SimCluster, SimOptions};
use crate::process_control::{self, Signal};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a running simulator leaves in its state directory (`state.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct SimState {
    pub(crate) name: String,
    pub(crate) pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub(crate) api_url: String,
    /// Topology file (None = built-in default).
    pub(crate) topology: Option<PathBuf>,
}

/// Root directory of all cluster state directories.
pub(crate) fn state_root() -> PathBuf {
    if let Some(d) = std::env::var_os("E2E_GATE_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("e2e-gate/clusters");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/e2e-gate/clusters")
}

/// Whether a process is alive (signal 0). A zombie (exited, not yet reaped: the simulator is a
/// child of `e2e-gate gate`, which reaps it later) counts as gone.
pub fn alive(pid: u32) -> bool {
    crate::process_control::exists(pid) && !zombie(pid)
}

/// `/proc/<pid>/stat` says state `Z`. The state follows the command name in parentheses.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Whether `pid` is alive *and* is a simulator (`serve-sim` in its command line), so
/// a recycled pid of an unrelated process counts as stale and is never signalled.
pub(crate) fn sim_alive(pid: u32) -> bool {
    if !alive(pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmd) => cmd.split(|b| *b == 0).any(|arg| arg == b"serve-sim"),
        Err(_) => true, // no /proc: trust the pid
    }
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn read_state(dir: &Path) -> Option<SimState> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).ok()?).ok()
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ClusterError {
    move |e| ClusterError::Infra(format!("{context}: {e}"))
}

/// Answers `GET /version` with 200 (plain HTTP/1.0 over TCP).
pub(crate) async fn answers_version(api_url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(addr) = api_url.strip_prefix("http://") else {
        return false;
    };
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await
    else {
        return false;
    };
    if s.write_all(b"GET /version HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = vec![0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await, Ok(Ok(n)) if n > 12 && buf[..n].starts_with(b"HTTP/1.") && &buf[9..12] == b"200")
}

/// The `sim` provider (background processes).
#[derive(Debug, Clone)]
pub(crate) struct SimProvider {
    /// Root of the state directories.
    pub(crate) root: PathBuf,
    /// Real seconds per simulated second (None: from the topology).
    pub(crate) time_scale: Option<f64>,
}

impl Default for SimProvider {
    fn default() -> Self {
        Self {
            root: state_root(),
            time_scale: None,
        }
    }
}

/// The files a simulator writes in its state directory: all `down` ever deletes.
const STATE_FILES: &[&str] = &["pid", "state.json", "kubeconfig", "sim.log"];

impl SimProvider {
    /// The state directory of cluster `name`, always a direct child of the root.
    fn dir(&self, name: &str) -> Result<PathBuf, ClusterError> {
        super::super::validate_cluster_name(name).map_err(ClusterError::Config)?;
        Ok(self.root.join(name))
    }

    /// Names of all clusters with a state directory.
    pub(crate) fn names(&self) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let me = process_control::current_uid();
        let mut out: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("pid").exists())
            // A shared state root (E2E_GATE_STATE_DIR on a CI agent) holds other users'
            // clusters: only this user's are listed.
            .filter(|e| e.metadata().is_ok_and(|m| m.uid() == me))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| super::super::validate_cluster_name(n).is_ok())
            .collect();
        out.sort();
        out
    }

    /// The state directory and the pid of cluster `name` (NotFound without a pid file).
    fn dir_and_pid(&self, name: &str) -> Result<(PathBuf, u32), ClusterError> {
        let dir = self.dir(name)?;
        match read_pid(&dir) {
            Some(pid) => Ok((dir, pid)),
            None => Err(ClusterError::NotFound {
                name: name.to_string(),
                detail: format!("no pid file in {}", dir.display()),
            }),
        }
    }
}

/// Removes the state files a simulator wrote (and their temporary copies), then the directory
/// if nothing else is in it: a directory holding anything e2e-gate did not write stays.
fn remove_state(dir: &Path) -> std::io::Result<()> {
    for f in STATE_FILES {
        for p in [dir.join(f), dir.join(format!(".{f}.tmp"))] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "state directory kept: {e} (it holds files e2e-gate did not write)");
            Ok(())
        }
    }
}

#[async_trait]
impl ClusterProvider for SimProvider {
    async fn up(&self, spec: &ClusterSpec) -> Result<ClusterHandle, ClusterError> {
        let name = &spec.name;
        let dir = self.dir(name)?;
        if let Some(pid) = read_pid(&dir) {
            if sim_alive(pid) {
                return Err(ClusterError::AlreadyRunning {
                    name: name.clone(),
                    pid,
                    state_dir: dir.display().to_string(),
                });
            }
            tracing::warn!(cluster = %name, pid, dir = %dir.display(), "stale pid file: process {pid} is gone or is not a simulator; removing the old state");
            let _ = remove_state(&dir);
        }
        if let Some(t) = &spec.topology {
            Topology::load(t).map_err(|e| ClusterError::Config(e.to_string()))?;
        }
        std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let log_path = dir.join("sim.log");
        let log = std::fs::File::create(&log_path)
            .map_err(io(format!("cannot create {}", log_path.display())))?;
        let exe =
            std::env::current_exe().map_err(io("cannot find the current executable".into()))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["cluster", "serve-sim", "--name", name, "--state-dir"])
            .arg(&dir);
        if let Some(t) = &spec.topology {
            cmd.arg("--topology")
                .arg(std::path::absolute(t).unwrap_or_else(|_| t.clone()));
        }
        if let Some(v) = &spec.kubernetes_version {
            cmd.args(["--kubernetes-version", v]);
        }
        if let Some(t) = self.time_scale {
            cmd.args(["--time-scale", &t.to_string()]);
        }
        use std::os::unix::process::CommandExt;
        cmd.stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(io("log file".into()))?)
            .stderr(log)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(io("cannot start the simulator process".into()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(ClusterError::Infra(format!(
                    "the simulator exited during start-up ({status}); log {}:\n{}",
                    log_path.display(),
                    tail.trim()
                )));
            }
            if let Some(st) = read_state(&dir) {
                if answers_version(&st.api_url).await {
                    return Ok(ClusterHandle {
                        name: name.clone(),
                        kubeconfig: dir.join("kubeconfig"),
                        kubeconfig_internal: dir.join("kubeconfig"),
                        network: None,
                        api_url: st.api_url,
                    });
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(ClusterError::Infra(format!(
                    "the simulator did not answer /version within 30 s; log {}",
                    log_path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn down(&self, name: &str) -> Result<(), ClusterError> {
        let (dir, pid) = self.dir_and_pid(name)?;
        if sim_alive(pid) {
            // The simulator we started: pid from our state dir, command line checked by
            // `sim_alive`.
            process_control::send(pid, Signal::Term);
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(pid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if alive(pid) {
                // As above; it ignored SIGTERM for 10 s.
                process_control::send(pid, Signal::Kill);
            }
        } else {
            tracing::warn!(cluster = %name, pid, "stale pid file: process {pid} was already gone (or is not a simulator)");
        }
        remove_state(&dir).map_err(io(format!("cannot remove {}", dir.display())))?;
        Ok(())
    }

    async fn status(&self, name: &str) -> Result<ClusterStatus, ClusterError> {
        let (dir, pid) = self.dir_and_pid(name)?;
        let api_url = read_state(&dir).map(|s| s.api_url);
        let (running, detail) = if !sim_alive(pid) {
            (false, format!("stale pid file: process {pid} is gone or is not a simulator (run `e2e-gate cluster down --name {name}` to clean up)"))
        } else if let Some(u) = api_url.as_deref() {
            match answers_version(u).await {
                true => (true, "answering /version".into()),
                false => (false, "process alive but /version does not answer".into()),
            }
        } else {
            (false, "starting".into())
        };
        Ok(ClusterStatus {
            name: name.to_string(),
            provider: "sim".into(),
            running,
            api_url,
            pid: Some(pid),
            detail,
        })
    }
}

/// Body of the hidden `cluster serve-sim` subcommand: serves until SIGTERM/SIGINT.
pub(crate) async fn serve(
    name: &str,
    state_dir: &Path,
    topology: Option<&Path>,
    kubernetes_version: Option<String>,
    opts: SimOptions,
) -> Result<(), ClusterError> {
    let mut topo = match topology {
        Some(p) => Topology::load(p).map_err(|e| ClusterError::Config(e.to_string()))?,
        None => Topology::default_topology(),
    };
    if let Some(v) = kubernetes_version {
        topo.sim.kubernetes_version = v;
    }
    std::fs::create_dir_all(state_dir)
        .map_err(io(format!("cannot create {}", state_dir.display())))?;
    let sim = SimCluster::start(topo, opts)
        .await
        .map_err(io("cannot start the API server".into()))?;
    let url = sim.url();
    let pid = std::process::id();
    let write = |file: &str, text: String| {
        let p = state_dir.join(file);
        crate::atomic_write::write_atomically(&p, text.as_bytes())
            .map_err(io(format!("cannot write {}", p.display())))
    };
    write("kubeconfig", kubeconfig_yaml(name, &url))?;
    write("pid", format!("{pid}\n"))?;
    let st = SimState {
        name: name.to_string(),
        pid,
        api_url: url.clone(),
        topology: topology.map(Path::to_path_buf),
    };
    write(
        "state.json",
        serde_json::to_string_pretty(&st).unwrap_or_default(),
    )?;
    tracing::info!(cluster = %name, url = %url, pid, "simulated cluster serving");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("cannot install the SIGTERM handler".into()))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!(cluster = %name, "shutting down");
    sim.shutdown().await;
    Ok(())
}
