//! `e2e-gate status set`: post one commit status by hand.

use super::args::Format;
use super::github_args::AuthArgs;
use super::Exit;
use crate::exit_code;
use crate::status::target::{parse_repo, parse_sha};
use crate::status::{
    truncate_description, CommitStatus, GithubClient, GithubStatusReporter, RepoId, StatusError,
    StatusReporter, StatusState,
};
use clap::{Args, Subcommand, ValueEnum};
use std::collections::HashMap;
use std::sync::Arc;

/// `status` subcommands.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: StatusCommand,
}

/// `status` verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum StatusCommand {
    /// Post one commit status (skipped when the latest status of the context is identical).
    Set(StatusSetArgs),
}

/// Commit status state on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StateOpt {
    /// Running.
    Pending,
    /// Passed.
    Success,
    /// Tests failed.
    Failure,
    /// Infrastructure error or aborted.
    Error,
}

impl From<StateOpt> for StatusState {
    fn from(s: StateOpt) -> StatusState {
        match s {
            StateOpt::Pending => StatusState::Pending,
            StateOpt::Success => StatusState::Success,
            StateOpt::Failure => StatusState::Failure,
            StateOpt::Error => StatusState::Error,
        }
    }
}

/// Options of `status set`.
#[derive(Debug, Args)]
pub(crate) struct StatusSetArgs {
    /// Repository.
    #[arg(long, value_name = "OWNER/NAME", value_parser = parse_repo)]
    pub(crate) repo: RepoId,
    /// Full commit SHA (40 hex characters).
    #[arg(long, value_name = "SHA", value_parser = parse_sha)]
    pub(crate) sha: String,
    /// Status context, e.g. e2e-gate/conformance (case-insensitive on GitHub).
    #[arg(long, value_name = "CONTEXT")]
    pub(crate) context: String,
    /// State to set.
    #[arg(long, value_enum)]
    pub(crate) state: StateOpt,
    /// Description; cut to 140 characters [default: empty].
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub(crate) description: String,
    /// Link of the status [default: BUILD_URL].
    #[arg(long, value_name = "URL")]
    pub(crate) target_url: Option<String>,
    /// Result format (json goes to stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
    /// Credentials and API endpoint.
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

pub(crate) async fn run(args: StatusArgs) -> Result<u8, Exit> {
    let env: HashMap<String, String> = std::env::vars().collect();
    match args.command {
        StatusCommand::Set(a) => set(a, &env).await,
    }
}

async fn set(a: StatusSetArgs, env: &HashMap<String, String>) -> Result<u8, Exit> {
    if a.context.trim().is_empty() {
        return Err(Exit::usage("--context must not be empty"));
    }
    let client = Arc::new(GithubClient::new(&a.auth.client_config(env)?)?);
    let status = CommitStatus {
        context: a.context.trim().to_string(),
        state: a.state.into(),
        description: truncate_description(&a.description),
        target_url: a
            .target_url
            .clone()
            .or_else(|| env.get("BUILD_URL").cloned())
            .filter(|u| !u.trim().is_empty()),
    };
    let reporter = GithubStatusReporter::new(client, a.repo.clone(), a.sha.clone());
    let unchanged = match reporter.latest(&status.context).await {
        Ok(Some(latest)) => {
            latest.state == status.state && latest.description == status.description
        }
        Ok(None) => false,
        // GitHub unreachable: posting would fail the same way
        Err(e @ StatusError::Unavailable { .. }) => return Err(e.into()),
        Err(e) => {
            tracing::warn!("cannot read the latest status of {}: {e}", status.context);
            false
        }
    };
    let shown = format!("{}@{}: {}", a.repo, a.sha, status.context);
    let (state, description) = (status.state, &status.description);
    if unchanged {
        tracing::info!("{shown} is already {state} \"{description}\"; not posted again");
    } else {
        reporter.post(&status).await?;
        tracing::info!("{shown} = {state} \"{description}\"");
    }
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::json!({
                "repo": a.repo.to_string(), "sha": a.sha, "posted": !unchanged,
                "status": status,
            })
        );
    }
    Ok(exit_code::OK)
}
