//! SIGINT/SIGTERM (Ctrl-C, a Jenkins abort): the first one stops containers gracefully and
//! still writes results; a third one exits at once without cleanup.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGINT or SIGTERM.
pub(crate) fn cancel_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let fired = token.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers; Ctrl-C will not clean up");
            return;
        };
        let mut count = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            count += 1;
            match count {
                1 => {
                    eprintln!("signal received: stopping containers and writing results (press Ctrl-C twice more to exit without cleanup)");
                    fired.cancel();
                }
                2 => eprintln!("still cleaning up: containers are being stopped and removed"),
                _ => {
                    eprintln!("exiting without cleanup; leftover containers: docker ps -a --filter label=e2e-gate.run");
                    std::process::exit(i32::from(crate::exit_code::INTERRUPTED));
                }
            }
        }
    });
    token
}
