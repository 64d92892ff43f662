//! `e2e-gate report`: read result files/directories, print a summary, write JUnit.

use super::args::JunitStyleOpt;
use crate::exit_code;
use crate::results::load::{is_suite_dir, load_dir_with, load_files_with, load_suite_dir};
use crate::results::model::SuiteResult;
use crate::results::read::ReadOptions;
use crate::results::summary::{render_human_styled, summarize_with};
use crate::results::write::junit::{write_junit_string, JunitOptions, JunitStyle};
use clap::ValueEnum;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `report` prints on stdout (or writes to `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
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
pub struct ReportArgs {
    /// Output: human (stderr only), json or junit (stdout or -o). The human summary always goes to stderr.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    /// Name of the suite formed by the files given directly.
    #[arg(long, value_name = "NAME", default_value = "e2e")]
    pub name: String,
    /// Write json/junit output to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// JUnit layout for retried specs.
    #[arg(long, value_enum, default_value_t = JunitStyleOpt::Jenkins)]
    pub junit_style: JunitStyleOpt,
    /// Captured output kept per testcase in the JUnit, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub max_output_bytes: usize,
    /// Count flaky specs as failures (exit 1).
    #[arg(long)]
    pub fail_on_flaky: bool,
    /// Result files (together one suite) and/or directories (one suite each, named after the directory).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

/// Reads every PATH into suites: files given directly form one suite, each directory one.
pub fn load_paths(
    paths: &[PathBuf],
    name: &str,
    opts: &ReadOptions,
) -> Result<Vec<SuiteResult>, String> {
    let mut files = Vec::new();
    let mut suites = Vec::new();
    let name_of = |p: &Path| {
        p.canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| p.display().to_string())
    };
    for p in paths {
        if p.is_dir() && is_suite_dir(p) {
            // A suite directory of `run` / `gate`: its attempts, reruns merged.
            suites.push(load_suite_dir(p, &name_of(p), opts));
        } else if p.is_dir() && has_suite_dirs(p) {
            // An artifacts directory: one suite per suite directory. Its junit.xml and
            // summary.json are e2e-gate's own outputs, not more results.
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: cannot read: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|d| d.is_dir() && is_suite_dir(d))
                .collect();
            dirs.sort();
            for d in dirs {
                suites.push(load_suite_dir(&d, &name_of(&d), opts));
            }
        } else if p.is_dir() {
            suites.push(load_dir_with(p, &name_of(p), opts));
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    if !files.is_empty() {
        suites.insert(0, load_files_with(&files, name, opts));
    }
    Ok(suites)
}

/// Whether `dir` holds suite directories of `run` / `gate` (an artifacts directory).
fn has_suite_dirs(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .any(|e| e.path().is_dir() && is_suite_dir(&e.path()))
    })
}

/// Writes `content` to `path` atomically (see [`crate::atomic_write`]); errors name the path.
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), String> {
    crate::atomic_write::write_atomically(path, content)
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// Runs `report`.
pub fn run(args: ReportArgs) -> u8 {
    let opts = ReadOptions {
        max_output_bytes: if args.format == ReportFormat::Junit {
            args.max_output_bytes
        } else {
            0
        },
        missing_as_not_run: true,
        ..ReadOptions::default()
    };
    let suites = match load_paths(&args.paths, &args.name, &opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code::USAGE;
        }
    };
    let summary = summarize_with(&suites, args.fail_on_flaky);
    eprint!(
        "{}",
        render_human_styled(&summary, super::run_cmd::colour_stderr())
    );
    let payload = match args.format {
        ReportFormat::Human => None,
        ReportFormat::Json => Some(summary.to_json() + "\n"),
        ReportFormat::Junit => {
            let style = match args.junit_style {
                JunitStyleOpt::Jenkins => JunitStyle::Jenkins,
                JunitStyleOpt::Testgrid => JunitStyle::Testgrid,
            };
            Some(write_junit_string(
                &suites,
                &JunitOptions {
                    style,
                    max_output_bytes: args.max_output_bytes,
                    report_name: "e2e-gate".to_string(),
                },
            ))
        }
    };
    if let Some(text) = payload {
        match &args.output {
            Some(path) => {
                if let Err(e) = write_atomic(path, text.as_bytes()) {
                    eprintln!("error: {e}");
                    return exit_code::INFRA;
                }
            }
            None => {
                let mut out = std::io::stdout().lock();
                if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                    eprintln!("error: stdout: {e}");
                    return exit_code::INFRA;
                }
            }
        }
    }
    summary.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_names_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        // A missing directory is created, like every other artifact's.
        write_atomic(&d.path().join("missing/out.json"), b"x").unwrap();
        assert!(d.path().join("missing/out.json").is_file());
    }

    #[test]
    fn missing_path_is_named() {
        let e = load_paths(
            &[PathBuf::from("/nonexistent/x.xml")],
            "e2e",
            &ReadOptions::default(),
        )
        .unwrap_err();
        assert!(e.contains("/nonexistent/x.xml"));
    }
}
