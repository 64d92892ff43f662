//! The command line: argument parsing, logging set-up and the composition root that
//! wires real adapters (Docker, GitHub, the cluster) into the library.

mod args;
mod artifacts;
mod cluster_cmd;
mod gate_cmd;
pub mod github_args;
mod output;
mod promote_cmd;
pub mod report_cmd;
mod run_cmd;
mod signals;
mod smoke_cmd;
mod status_cmd;
mod suites_cmd;
mod upgrade_cmd;

pub use args::{Cli, Command};

use clap::Parser;
use std::process::ExitCode;

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
            return ExitCode::from(crate::exit_code::INFRA);
        }
    };
    let code = runtime.block_on(dispatch(cli));
    ExitCode::from(code)
}

async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
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
            .unwrap_or(crate::exit_code::INFRA),
        Some(Command::Completions { shell }) => completions(shell),
        Some(Command::Man) => man_page(),
    }
}

/// Writes the completion script for `shell` to stdout.
fn completions(shell: args::Shell) -> u8 {
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
fn man_page() -> u8 {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut buf) {
        eprintln!("error: cannot render the man page: {e}");
        return crate::exit_code::INFRA;
    }
    write_stdout(&buf, "the man page")
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8], what: &str) -> u8 {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Ok(()) => crate::exit_code::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::exit_code::OK,
        Err(e) => {
            eprintln!("error: cannot write {what}: {e}");
            crate::exit_code::INFRA
        }
    }
}
