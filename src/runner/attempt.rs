//! One container attempt: output streamed live into `e2e.log`, progress on stderr, and the
//! watchdog that enforces `timeout`, `stall_timeout` and cancellation (Ctrl-C, Jenkins abort).

use super::container::{ContainerRunner, ContainerSpec, RunnerError, StopSignal};
use super::progress::{Progress, ProgressParser};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why e2e-gate stopped a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The suite's `timeout` elapsed.
    Timeout(Duration),
    /// No spec finished for `stall_timeout`; the last output line is kept.
    Stall {
        /// How long nothing finished.
        after: Duration,
        /// The last line the container printed.
        last_line: String,
    },
    /// e2e-gate was interrupted (SIGINT/SIGTERM).
    Interrupted,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Timeout(d) => write!(f, "timeout of {} reached", fmt_secs(*d)),
            StopReason::Stall { after, last_line } => write!(
                f,
                "no spec finished for {} (stall_timeout); last output: {last_line:?}",
                fmt_secs(*after)
            ),
            StopReason::Interrupted => write!(f, "interrupted"),
        }
    }
}

/// Limits for one attempt.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) stall_timeout: Duration,
    /// SIGTERM → SIGKILL grace when e2e-gate stops the container.
    pub(crate) stop_grace: Duration,
    /// How often a progress line is printed when nothing changes.
    pub(crate) heartbeat: Duration,
}

/// Progress lines are printed on change, but not more often than this (Jenkins consoles are long).
const MIN_PRINT_INTERVAL: Duration = Duration::from_secs(5);

struct Live {
    parser: ProgressParser,
    last_done_at: Instant,
}

fn fmt_secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn progress_line(
    label: &str,
    p: &Progress,
    elapsed: Duration,
    idle: Duration,
    last_line: &str,
) -> String {
    let total = p.selected.map(|n| format!("/{n}")).unwrap_or_default();
    let mut s = format!(
        "[{label}] {}{total} specs done, {} failed",
        p.done, p.failed
    );
    if p.flaky > 0 {
        s.push_str(&format!(", {} flaky", p.flaky));
    }
    s.push_str(&format!(" · {} elapsed", fmt_secs(elapsed)));
    if idle >= Duration::from_secs(60) {
        s.push_str(&format!(" · current spec running for {}", fmt_secs(idle)));
        if !last_line.is_empty() {
            s.push_str(&format!(" (last output: {last_line:?})"));
        }
    }
    s
}

/// Runs one container, writing its output to `log_path`. `label` prefixes progress lines.
/// Returns why e2e-gate stopped it, if it did.
pub(crate) async fn run_attempt(
    runner: &dyn ContainerRunner,
    spec: &ContainerSpec,
    log_path: &Path,
    label: &str,
    limits: &Limits,
    cancel: &CancellationToken,
) -> Result<Option<StopReason>, RunnerError> {
    let started = Instant::now();
    let mut log = tokio::fs::File::create(log_path)
        .await
        .map_err(|e| RunnerError::Engine {
            op: "log",
            target: log_path.display().to_string(),
            message: e.to_string(),
        })?;
    let live = Arc::new(Mutex::new(Live {
        parser: ProgressParser::default(),
        last_done_at: started,
    }));
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    let writer_live = live.clone();
    let writer = tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if let Err(e) = log.write_all(&chunk).await {
                tracing::warn!(error = %e, "cannot write e2e.log");
            }
            if let Ok(mut l) = writer_live.lock() {
                if l.parser.feed(&chunk) > 0 {
                    l.last_done_at = Instant::now();
                }
            }
        }
        let _ = log.flush().await;
    });

    let stop = StopSignal::default();
    let run = runner.run(spec, tx, stop.clone());
    tokio::pin!(run);
    let mut stopped: Option<StopReason> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_printed = (Progress::default(), started);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = cancel.cancelled(), if stopped.is_none() => {
                stopped = Some(StopReason::Interrupted);
                stop.fire(limits.stop_grace.min(Duration::from_secs(10)));
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let (p, idle, last_line) = match live.lock() {
                    Ok(l) => (l.parser.progress(), now - l.last_done_at, l.parser.last_line()),
                    Err(_) => continue,
                };
                if stopped.is_none() {
                    if now - started >= limits.timeout {
                        stopped = Some(StopReason::Timeout(limits.timeout));
                    } else if idle >= limits.stall_timeout {
                        stopped = Some(StopReason::Stall { after: idle, last_line: last_line.clone() });
                    }
                    if let Some(reason) = &stopped {
                        tracing::warn!(suite = label, %reason, "stopping container");
                        stop.fire(limits.stop_grace);
                    }
                }
                let since = now - last_printed.1;
                if (p != last_printed.0 && since >= MIN_PRINT_INTERVAL) || since >= limits.heartbeat {
                    eprintln!("{}", progress_line(label, &p, now - started, idle, &last_line));
                    last_printed = (p, now);
                }
            }
        }
    };
    // The sender is gone once `run` returns; the writer drains and exits.
    let _ = writer.await;
    // The verdict comes from the results; the exit code only helps whoever reads the log.
    let exit = result?;
    tracing::info!(suite = label, code = exit.code, elapsed = ?started.elapsed(), "container exited");
    Ok(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_mentions_long_running_spec() {
        let p = Progress {
            selected: Some(20),
            done: 12,
            failed: 1,
            flaky: 1,
            skipped: 0,
        };
        let s = progress_line(
            "custom",
            &p,
            Duration::from_secs(130),
            Duration::from_secs(75),
            "STEP: waiting",
        );
        assert_eq!(
            s,
            "[custom] 12/20 specs done, 1 failed, 1 flaky · 2m 10s elapsed · current spec running for 1m 15s (last output: \"STEP: waiting\")"
        );
        let quiet = progress_line(
            "c",
            &Progress::default(),
            Duration::from_secs(3),
            Duration::from_secs(3),
            "x",
        );
        assert_eq!(quiet, "[c] 0 specs done, 0 failed · 3s elapsed");
    }
}
