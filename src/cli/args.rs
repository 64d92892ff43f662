//! clap definitions. Help text is the doc comment; every flag says its default.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  e2e-gate gate                                the whole gate, embedded cluster (ci/gate.toml)
  e2e-gate gate --profile pr --no-upgrade      the gate against $KUBECONFIG's cluster
  e2e-gate --suite conformance                 run one suite (= e2e-gate run --suite ...)
  e2e-gate --suite conformance --suite custom --jobs 2
  e2e-gate --suite custom --focus 'DNS' --reruns 2 --format json > summary.json
  e2e-gate --suite custom --dry-run            list the specs that would run
  e2e-gate suites list
  e2e-gate report --format json artifacts/conformance   summarise existing results
  e2e-gate upgrade plan --kubeconfig K --target-version v1.34.1
  e2e-gate promote --repo org/cfg --from alpha --to beta --require e2e-gate --soak 24h
  e2e-gate completions bash                    shell completions (also: e2e-gate man)
";

const LOGS: &str = "\
Logs and progress go to stderr (filter with E2E_GATE_LOG, e.g. E2E_GATE_LOG=debug);
--format json prints the run summary on stdout.";

/// The epilogue of `--help`: examples, the exit-code table rendered from
/// [`crate::exit_code::TABLE`], where logs and machine output go.
fn after_help() -> String {
    format!("{EXAMPLES}\n{}\n{LOGS}", crate::exit_code::help_table())
}

/// clap value parser for durations: `90s`, `15m`, `1h30m`; a wrong value says how to write one
/// (humantime alone said "expected number at 0").
pub(crate) fn duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}; write a duration such as \"90s\", \"15m\" or \"1h30m\""))
}

/// A relative path that is not found from the working directory is looked for in its parents
/// (the way git finds `.git`), so `ci/gate.toml` and `suites/` are found from anywhere in the
/// repository; absolute paths and paths that exist are kept as given.
pub(crate) fn locate(path: &std::path::Path) -> std::path::PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let Ok(cwd) = std::env::current_dir() else {
        return path.to_path_buf();
    };
    cwd.ancestors()
        .skip(1)
        .map(|dir| dir.join(path))
        .find(|p| p.exists())
        .unwrap_or_else(|| path.to_path_buf())
}

/// e2e-gate: run Kubernetes e2e suites in Docker, read their results, and gate promotion.
#[derive(Debug, Parser)]
#[command(name = "e2e-gate", version = VERSION, about, after_help = after_help())]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(arg_required_else_help = true)]
pub(crate) struct Cli {
    /// Subcommand; without one, the arguments are those of `run`.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// `run` options when no subcommand is given.
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// `--version`: the crate version and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("E2E_GATE_COMMIT"),
    ")"
);

/// Shells `completions` writes a script for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Shell {
    /// bash: `source <(e2e-gate completions bash)`
    Bash,
    /// zsh: `e2e-gate completions zsh > "${fpath[1]}/_e2e-gate"`
    Zsh,
    /// fish: `e2e-gate completions fish > ~/.config/fish/completions/e2e-gate.fish`
    Fish,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run suites in Docker with focus, skip, flake retries and reruns (the default command).
    #[command(after_help = after_help())]
    Run(Box<RunArgs>),
    /// The whole gate: cluster up → ready → upgrade (with the availability probe watching) →
    /// suites → cluster down (always); one combined JUnit with a runner testsuite of the steps,
    /// GitHub statuses per suite plus `e2e-gate/gate`. Profiles come from ci/gate.toml.
    #[command(after_help = GATE_HELP)]
    Gate(Box<super::gate_cmd::GateArgs>),
    /// Inspect suite definitions.
    Suites(SuitesArgs),
    /// The built-in smoke suite: cluster health checks, and the image that runs them.
    Smoke(super::smoke_cmd::SmokeArgs),
    /// Post GitHub commit statuses by hand.
    Status(super::status_cmd::StatusArgs),
    /// Promote a channel branch (e.g. alpha → beta) when its required contexts are green.
    #[command(after_help = PROMOTE_HELP)]
    Promote(super::promote_cmd::PromoteArgs),
    /// Rolling node upgrade: plan, apply, abort.
    Upgrade(Box<super::upgrade_cmd::UpgradeArgs>),
    /// Bring clusters up and down (sim, kind, existing).
    Cluster(super::cluster_cmd::ClusterArgs),
    /// Read e2e results (ginkgo v1/v2 JUnit, e2e.log, JSON report, runner steps) into a
    /// summary (human, json) or one combined JUnit file. Files given directly form one suite;
    /// each directory forms one suite named after it. Exit: 0 passed, 1 failures, 3 incomplete.
    Report(super::report_cmd::ReportArgs),
    /// Print a shell completion script (bash, zsh, fish) on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff) on stdout: `e2e-gate man > e2e-gate.1 && man ./e2e-gate.1`.
    Man,
}

const GATE_HELP: &str = "\
Profiles (ci/gate.toml): default (embedded cluster, upgrade to v1.34.1, smoke suite),
pr (the cluster of $KUBECONFIG; smoke, conformance, statefulset), kind (a kind cluster).
Precedence: flags > E2E_GATE_* variables > the profile > the profiles it inherits.
Variables: E2E_GATE_PROFILE, E2E_GATE_FILE, E2E_GATE_PROVIDER, E2E_GATE_TOPOLOGY,
E2E_GATE_KUBERNETES_VERSION, E2E_GATE_TARGET_VERSION (empty: no upgrade), E2E_GATE_SUITES,
E2E_GATE_JOBS, E2E_GATE_KEEP_CLUSTER.

Examples:
  e2e-gate gate                                   profile default on the embedded cluster
  e2e-gate gate --profile pr --no-upgrade         the PR gate against $KUBECONFIG's cluster
  e2e-gate gate --suite smoke --keep-cluster      keep the cluster to look at it afterwards

Exit codes: 0 passed, 1 a step or spec failed, 2 usage, 3 infrastructure or incomplete,
4 verdict known but a status could not be posted, 130 interrupted.";

const PROMOTE_HELP: &str = "\
Examples:
  e2e-gate promote --repo org/cfg --from alpha --to beta --require e2e-gate/conformance --soak 24h
  e2e-gate promote --repo org/cfg --from beta --to stable --require e2e-gate --mode pull-request --dry-run

Exit codes: 0 promoted or nothing to do, 1 gate closed (reasons on stderr), 2 usage,
3 GitHub unreachable or rejected a call, 4 promoted but the promoted-to status was not posted.";

/// Output format of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum Format {
    /// Human text on stderr.
    #[default]
    Human,
    /// JSON on stdout (human text still on stderr).
    Json,
}

/// JUnit layout for flaky and rerun attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum JunitStyleOpt {
    /// One testcase per spec with `<flakyFailure>` / `<rerunFailure>` (Jenkins, Surefire).
    #[default]
    Jenkins,
    /// One testcase per attempt (TestGrid, Prow Spyglass).
    Testgrid,
}

/// Options of `run`.
#[derive(Debug, Args, Default)]
pub(crate) struct RunArgs {
    /// Suite to run (repeatable); see `e2e-gate suites list`.
    #[arg(long = "suite", value_name = "NAME", required = true)]
    pub(crate) suites: Vec<String>,
    /// Directory of suite files.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "suites",
        env = "E2E_GATE_SUITES_DIR"
    )]
    pub(crate) suites_dir: PathBuf,
    /// Kubeconfig mounted read-only into the test containers [default: $KUBECONFIG; none if unset].
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Focus regex replacing the suite's (repeatable; ORed).
    #[arg(long, value_name = "REGEX")]
    pub(crate) focus: Vec<String>,
    /// Skip regex replacing the suite's (repeatable; ORed).
    #[arg(long, value_name = "REGEX")]
    pub(crate) skip: Vec<String>,
    /// In-process ginkgo attempts per spec [default: from the suite file].
    #[arg(long, value_name = "N")]
    pub(crate) flake_attempts: Option<u32>,
    /// Fresh containers that re-run only failed specs [default: from the suite file].
    #[arg(long, value_name = "N")]
    pub(crate) reruns: Option<u32>,
    /// ginkgo parallel processes [default: from the suite file].
    #[arg(long, value_name = "N")]
    pub(crate) parallel: Option<u32>,
    /// Hard limit per container, e.g. 90m [default: from the suite file].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) timeout: Option<std::time::Duration>,
    /// Stop a container when no spec finished for this long [default: from the suite file].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) stall_timeout: Option<std::time::Duration>,
    /// Suites run concurrently, each in its own container.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) jobs: usize,
    /// List the specs that would run (ginkgo dry run in the same image); runs nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// JUnit layout for retried specs.
    #[arg(long, value_enum, default_value_t = JunitStyleOpt::Jenkins)]
    pub(crate) junit_style: JunitStyleOpt,
    /// Captured output kept per testcase in the combined JUnit, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub(crate) max_output_bytes: usize,
    /// Docker network for the test containers [default: host, so 127.0.0.1 servers are reachable].
    #[arg(long, value_name = "NAME")]
    pub(crate) network: Option<String>,
    /// Output, limits and images (shared with `gate`).
    #[command(flatten)]
    pub(crate) common: CommonRunArgs,
    /// GitHub commit statuses: one per suite plus the aggregate `e2e-gate` context.
    #[command(flatten)]
    pub(crate) github: super::github_args::GithubArgs,
}

/// Options `run` and `gate` share.
#[derive(Debug, Args, Default)]
pub(crate) struct CommonRunArgs {
    /// Where results go [default: $ARTIFACTS, else ./artifacts].
    #[arg(long, value_name = "DIR")]
    pub(crate) artifacts: Option<PathBuf>,
    /// Pull a missing image instead of failing (needs a reachable registry).
    #[arg(long)]
    pub(crate) pull: bool,
    /// Count flaky specs as failures (exit 1).
    #[arg(long)]
    pub(crate) fail_on_flaky: bool,
    /// Grace between SIGTERM and SIGKILL when e2e-gate stops a container (timeout, stall).
    /// Longer than ginkgo v2's own 30 s interrupt grace, so ginkgo can still write its JUnit.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub(crate) stop_grace: std::time::Duration,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
}

/// `suites` subcommands.
#[derive(Debug, Args)]
pub(crate) struct SuitesArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: SuitesCommand,
}

/// `suites` verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum SuitesCommand {
    /// List the suites in the suites directory.
    List {
        /// Directory of suite files.
        #[arg(
            long,
            value_name = "DIR",
            default_value = "suites",
            env = "E2E_GATE_SUITES_DIR"
        )]
        suites_dir: PathBuf,
        /// Output format (json goes to stdout).
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bare_suite_flag_means_run() {
        let cli = Cli::try_parse_from(["e2e-gate", "--suite", "a", "--suite", "b"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.suites, vec!["a", "b"]);
    }

    #[test]
    fn help_lists_exit_codes_matching_table() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for (code, meaning) in crate::exit_code::TABLE {
            let row = format!("{code:>3}  {meaning}");
            assert!(help.contains(&row), "help misses {row:?}");
        }
    }
}
