//! `e2e-gate report`: read result files/directories, print a summary, write JUnit.

use super::args::JunitStyleOpt;
use super::run_cmd::{colour_stderr, junit_options_for};
use super::Exit;
use crate::exit_code::HasExitCode;
use crate::results::load::{is_suite_dir, load_dir, load_files, load_suite_dir};
use crate::results::model::SuiteResult;
use crate::results::read::ReadOptions;
use crate::results::summary::{render_human_styled, suite_summary, summarize_summaries};
use crate::results::write::junit::JunitStream;
use clap::ValueEnum;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `report` prints on stdout (or writes to `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum ReportFormat {
    /// Human text on stderr only.
    #[default]
    Human,
    /// The run summary as JSON.
    Json,
    /// One combined JUnit file.
    Junit,
}

/// Options of `report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// Output: human (stderr only), json or junit (stdout or -o). The human summary always goes to stderr.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub(crate) format: ReportFormat,
    /// Name of the suite formed by the files given directly.
    #[arg(long, value_name = "NAME", default_value = "e2e")]
    pub(crate) name: String,
    /// Write json/junit output to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// JUnit layout for retried specs.
    #[arg(long, value_enum, default_value_t = JunitStyleOpt::Jenkins)]
    pub(crate) junit_style: JunitStyleOpt,
    /// Captured output kept per testcase in the JUnit, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub(crate) max_output_bytes: usize,
    /// Count flaky specs as failures (exit 1).
    #[arg(long)]
    pub(crate) fail_on_flaky: bool,
    /// Result files (together one suite) and/or directories (one suite each, named after the directory).
    #[arg(value_name = "PATH", required = true)]
    pub(crate) paths: Vec<PathBuf>,
}

/// Where one suite of `report` comes from.
enum Source {
    /// Files given directly: together one suite.
    Files(Vec<PathBuf>, String),
    /// A suite directory of `run` / `gate` (its attempts, reruns merged).
    SuiteDir(PathBuf, String),
    /// Any other directory: its result files.
    Dir(PathBuf, String),
}

impl Source {
    fn load(&self, opts: &ReadOptions) -> SuiteResult {
        match self {
            Source::Files(files, name) => load_files(files, name, opts),
            Source::SuiteDir(d, name) => load_suite_dir(d, name, opts),
            Source::Dir(d, name) => load_dir(d, name, opts),
        }
    }
}

/// The suites PATHs name, in order (files given directly first), without reading any.
fn sources(paths: &[PathBuf], name: &str) -> Result<Vec<Source>, String> {
    let mut files = Vec::new();
    let mut out = Vec::new();
    let name_of = |p: &Path| {
        p.canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| p.display().to_string())
    };
    for p in paths {
        if p.is_dir() && is_suite_dir(p) {
            out.push(Source::SuiteDir(p.clone(), name_of(p)));
        } else if p.is_dir() {
            // An artifacts directory: one suite per suite directory. Its junit.xml and
            // summary.json are e2e-gate's own outputs, not more results.
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|d| d.is_dir() && is_suite_dir(d))
                .collect();
            dirs.sort();
            if dirs.is_empty() {
                out.push(Source::Dir(p.clone(), name_of(p)));
            }
            for d in dirs {
                let n = name_of(&d);
                out.push(Source::SuiteDir(d, n));
            }
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    if !files.is_empty() {
        out.insert(0, Source::Files(files, name.to_string()));
    }
    Ok(out)
}

pub(crate) fn run(args: ReportArgs) -> Result<u8, Exit> {
    let opts = ReadOptions {
        max_output_bytes: if args.format == ReportFormat::Junit {
            args.max_output_bytes
        } else {
            0
        },
        missing_as_not_run: true,
        ..ReadOptions::default()
    };
    let sources = sources(&args.paths, &args.name).map_err(Exit::usage)?;
    let junit_opts = junit_options_for(args.junit_style, args.max_output_bytes);
    let mut junit = match args.format {
        ReportFormat::Junit => Some(JunitStream::new(&junit_opts).map_err(|e| {
            Exit::infra(format!(
                "cannot create a temporary file for the JUnit report: {e}"
            ))
        })?),
        _ => None,
    };
    // One suite at a time: read, summarise, write out, drop. Holding them all took 3.8 GB
    // for 1,113 result directories; now memory is bounded by the largest suite.
    let mut summaries = Vec::with_capacity(sources.len());
    for source in &sources {
        let suite = source.load(&opts);
        summaries.push(suite_summary(&suite, args.fail_on_flaky));
        if let Some(j) = junit.as_mut() {
            j.add(&suite).map_err(|e| {
                Exit::infra(format!(
                    "cannot write the JUnit report's temporary file: {e}"
                ))
            })?;
        }
    }
    let summary = summarize_summaries(summaries);
    eprint!("{}", render_human_styled(&summary, colour_stderr()));
    let write = |w: &mut dyn Write| -> std::io::Result<()> {
        match (args.format, junit) {
            (ReportFormat::Json, _) => w.write_all((summary.to_json() + "\n").as_bytes()),
            (ReportFormat::Junit, Some(j)) => j.finish(w),
            _ => Ok(()),
        }
    };
    if args.format != ReportFormat::Human {
        match &args.output {
            Some(path) => crate::atomic_write::write_atomically_with(path, write)
                .map_err(|e| Exit::infra(format!("{}: cannot write: {e}", path.display())))?,
            None => {
                let mut out = std::io::stdout().lock();
                write(&mut out)
                    .and_then(|_| out.flush())
                    .map_err(|e| Exit::infra(format!("stdout: {e}")))?;
            }
        }
    }
    Ok(summary.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_path_is_named() {
        let Err(e) = sources(&[PathBuf::from("/nonexistent/x.xml")], "e2e") else {
            panic!("a missing path is an error");
        };
        assert!(e.contains("/nonexistent/x.xml"));
    }
}
