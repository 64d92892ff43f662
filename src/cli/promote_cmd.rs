//! `e2e-gate promote`: move a channel branch when its required contexts are green.

use super::args::Format;
use super::github_args::AuthArgs;
use super::Exit;
use crate::exit_code;
use crate::promote::{audit, promote, Decision, GithubPromotionApi, Mode, Outcome, PromoteRequest};
use crate::status::target::parse_repo;
use crate::status::{GithubClient, RepoId, StatusError};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Options of `promote`.
#[derive(Debug, Args)]
pub(crate) struct PromoteArgs {
    /// Repository holding the channel branches.
    #[arg(long, value_name = "OWNER/NAME", value_parser = parse_repo)]
    pub(crate) repo: RepoId,
    /// Source branch whose head commit is promoted, e.g. alpha.
    #[arg(long, value_name = "BRANCH", value_parser = parse_branch)]
    pub(crate) from: String,
    /// Target branch, e.g. beta.
    #[arg(long, value_name = "BRANCH", value_parser = parse_branch)]
    pub(crate) to: String,
    /// Context that must be `success` on the source head (commit status or check run;
    /// repeatable; case-insensitive; missing counts as pending).
    #[arg(long = "require", value_name = "CONTEXT", required = true)]
    pub(crate) require: Vec<String>,
    /// Every required context must have been `success` for at least this long, e.g. 24h.
    #[arg(long, value_name = "DURATION", value_parser = super::args::duration)]
    pub(crate) soak: Option<std::time::Duration>,
    /// How the target moves.
    #[arg(long, value_enum, default_value_t = ModeArg::FastForward)]
    pub(crate) mode: ModeArg,
    /// Print the decision and the write calls it would make; make none.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Append one JSON line per decision to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) audit_log: Option<PathBuf>,
    /// Link of the promoted-to status [default: BUILD_URL].
    #[arg(long, value_name = "URL")]
    pub(crate) target_url: Option<String>,
    /// Decision format (json goes to stdout; the human text always goes to stderr).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
    /// Credentials and API endpoint.
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

/// `--mode`: the flag's spelling of [`Mode`] (clap stays in `cli/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ModeArg {
    /// Update the target ref to the tested commit (`force=false`): the promoted SHA is
    /// exactly the tested SHA.
    FastForward,
    /// Open, or update, one promotion PR from source to target (hotfixes on channels allowed).
    PullRequest,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::FastForward => Mode::FastForward,
            ModeArg::PullRequest => Mode::PullRequest,
        }
    }
}

fn parse_branch(s: &str) -> Result<String, String> {
    let s = s.trim();
    let bad = s.is_empty()
        || s.contains("..")
        || s.starts_with('/')
        || s.ends_with('/')
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad {
        Err(format!("{s:?} is not a valid branch name"))
    } else {
        Ok(s.strip_prefix("refs/heads/").unwrap_or(s).to_string())
    }
}

pub(crate) async fn run(a: PromoteArgs) -> Result<u8, Exit> {
    let env: HashMap<String, String> = std::env::vars().collect();
    if a.from == a.to {
        return Err(Exit::usage(format!(
            "--from and --to are both {:?}; they must differ",
            a.from
        )));
    }
    let required: Vec<String> = a
        .require
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if required.is_empty() {
        return Err(Exit::usage(
            "--require needs at least one non-empty context",
        ));
    }
    let client = Arc::new(GithubClient::new(&a.auth.client_config(&env)?)?);
    let api = GithubPromotionApi::new(client, a.repo.clone());
    let req = PromoteRequest {
        repo: a.repo.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        required,
        soak: a.soak,
        mode: a.mode.into(),
        dry_run: a.dry_run,
        target_url: a
            .target_url
            .clone()
            .or_else(|| env.get("BUILD_URL").cloned()),
    };
    let now = chrono::Utc::now();
    let outcome = promote(&api, &req, now).await.map_err(|e| infra(&a, &e))?;
    eprint!("{}", human(&outcome));
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string(&outcome).unwrap_or_else(|_| "{}".into())
        );
    }
    if let Some(path) = &a.audit_log {
        audit::append(path, &audit::line(&outcome, now)).map_err(|e| {
            Exit::infra(format!(
                "--audit-log: cannot append to {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok(match (&outcome.decision, &outcome.status_error) {
        (Decision::Closed { .. }, _) => exit_code::FAILED,
        (_, Some(_)) => exit_code::STATUS_POST_FAILED,
        _ => exit_code::OK,
    })
}

/// A promotion GitHub did not let finish (exit 3), also written to the audit log.
fn infra(a: &PromoteArgs, e: &StatusError) -> Exit {
    if let Some(path) = &a.audit_log {
        let line = serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "repo": a.repo.to_string(), "from": a.from, "to": a.to,
            "decision": "error", "error": e.to_string(), "dry_run": a.dry_run,
        });
        let _ = audit::append(path, &line.to_string());
    }
    Exit::infra(format!("promoting {} {} → {}: {e}", a.repo, a.from, a.to))
}

/// The human rendering of an outcome (stderr).
pub(crate) fn human(o: &Outcome) -> String {
    let short = &o.sha[..o.sha.len().min(12)];
    let head = format!("{} {} → {} at {short}", o.repo, o.from, o.to);
    let mut s = match &o.decision {
        Decision::Promote if o.dry_run => format!("dry run: would promote {head}\n"),
        Decision::Promote => match &o.pull_request {
            Some(pr) => format!("promotion pull request for {head}: {}\n", pr.url),
            None => format!("promoted {head}\n"),
        },
        Decision::NothingToDo { why } => format!("nothing to do for {head}: {why}\n"),
        Decision::Closed { reasons } => reasons
            .iter()
            .fold(format!("gate closed for {head}:\n"), |s, r| {
                s + &format!("  - {r}\n")
            }),
    };
    if !o.calls.is_empty() && matches!(o.decision, Decision::Promote) {
        s.push_str(if o.dry_run {
            "calls it would make:\n"
        } else {
            "calls made:\n"
        });
        for c in &o.calls {
            s.push_str(&format!("  {c}\n"));
        }
    }
    if let Some(e) = &o.status_error {
        s.push_str(&format!(
            "warning: the promoted-to status was not posted: {e}\n"
        ));
    }
    s
}
