//! The command line: argument parsing, logging set-up and the composition root that
//! wires real adapters (Docker, GitHub, the cluster) into the library.

mod args;
mod artifacts;
mod cluster_cmd;
mod gate_cmd;
pub mod github_args;
mod output;
mod promote_cmd;
mod report_cmd;
mod run_cmd;
mod signals;
mod smoke_cmd;
mod status_cmd;
mod suites_cmd;
mod upgrade_cmd;

pub(crate) use args::{Cli, Command};

use crate::exit_code::{self, HasExitCode};
use clap::Parser;
use std::process::ExitCode;

/// Why a command stopped early: printed as `error: {message}`, the process ends with `code`.
/// Every layer's error converts with `?` (its code from [`HasExitCode`]).
pub(crate) struct Exit {
    code: u8,
    message: String,
}

impl Exit {
    /// Ends the process with `code` after `message`.
    pub(crate) fn new(code: u8, message: impl std::fmt::Display) -> Exit {
        let message = message.to_string();
        Exit { code, message }
    }

    /// A usage or configuration error (exit 2).
    pub(crate) fn usage(message: impl std::fmt::Display) -> Exit {
        Exit::new(exit_code::USAGE, message)
    }

    /// An infrastructure error (exit 3).
    pub(crate) fn infra(message: impl std::fmt::Display) -> Exit {
        Exit::new(exit_code::INFRA, message)
    }
}

impl<E: HasExitCode + std::fmt::Display> From<E> for Exit {
    fn from(e: E) -> Exit {
        Exit::new(e.exit_code(), e)
    }
}

/// A command's exit code; an [`Exit`] is printed first.
fn exit(result: Result<u8, Exit>) -> u8 {
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", e.message);
        e.code
    })
}

/// Entry point of the `e2e-gate` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit_code::INFRA);
        }
    };
    let code = runtime.block_on(dispatch(cli));
    ExitCode::from(code)
}

async fn dispatch(cli: Cli) -> u8 {
    exit(match cli.command {
        None => run_cmd::run(cli.run).await,
        Some(Command::Run(args)) => run_cmd::run(*args).await,
        Some(Command::Gate(args)) => gate_cmd::run(*args).await,
        Some(Command::Suites(args)) => suites_cmd::run(args),
        Some(Command::Smoke(args)) => smoke_cmd::run(args).await,
        Some(Command::Status(args)) => status_cmd::run(args).await,
        Some(Command::Promote(args)) => promote_cmd::run(args).await,
        Some(Command::Upgrade(args)) => upgrade_cmd::run(*args).await,
        Some(Command::Cluster(args)) => cluster_cmd::run(args).await,
        // Reading large result files is blocking work: off the async threads.
        Some(Command::Report(args)) => tokio::task::spawn_blocking(move || report_cmd::run(args))
            .await
            .unwrap_or(Ok(exit_code::INFRA)),
        Some(Command::Completions { shell }) => completions(shell),
        Some(Command::Man) => man_page(),
    })
}

/// Writes the completion script for `shell` to stdout.
fn completions(shell: args::Shell) -> Result<u8, Exit> {
    use clap::CommandFactory;
    let shell = match shell {
        args::Shell::Bash => clap_complete::Shell::Bash,
        args::Shell::Zsh => clap_complete::Shell::Zsh,
        args::Shell::Fish => clap_complete::Shell::Fish,
    };
    // Generated into memory: clap_complete panics on a write error (`… | head`).
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "e2e-gate", &mut buf);
    write_stdout(&buf, "the completion script")
}

/// Writes the man page to stdout.
fn man_page() -> Result<u8, Exit> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| Exit::infra(format!("cannot render the man page: {e}")))?;
    write_stdout(&buf, "the man page")
}

/// Writes `value` as pretty JSON and a newline to `path`, atomically.
fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    crate::atomic_write::write_atomically(path, (text + "\n").as_bytes())
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8], what: &str) -> Result<u8, Exit> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Exit::infra(format!("cannot write {what}: {e}")))
        }
        _ => Ok(exit_code::OK),
    }
}
