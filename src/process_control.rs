//! The one place that talks to the kernel about processes directly (the crate denies
//! `unsafe` everywhere else): signal a process, ask whether it exists, who we are.

#![allow(unsafe_code)]

/// Signals a process may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Ask it to stop.
    Term,
    /// Stop it now.
    Kill,
}

/// Whether a process with `pid` exists and we may signal it (signal 0).
pub(crate) fn exists(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    pid > 0 && unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
}

/// Sends `signal` to `pid`; whether it was delivered.
pub(crate) fn send(pid: u32, signal: Signal) -> bool {
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill has no memory-safety preconditions; callers only signal processes they
    // started (their pid read from their own state and checked).
    pid > 0 && unsafe { libc::kill(pid as libc::pid_t, sig) } == 0
}

/// Kills the process group `pgid` leads (a child started with `process_group(0)`) and
/// everything in it; whether the signal was delivered.
pub(crate) fn kill_group(pgid: u32) -> bool {
    // SAFETY: as in `send`; a negative pid addresses the process group of a child we started.
    pgid > 1 && unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) } == 0
}

/// This process's real user id.
pub(crate) fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_exists_and_pid_zero_is_refused() {
        assert!(exists(std::process::id()));
        assert!(!exists(0));
        assert!(!send(0, Signal::Term));
        let _ = current_uid();
    }
}
