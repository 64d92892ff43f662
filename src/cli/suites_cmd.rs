//! `e2e-gate suites list`.

use super::args::{SuitesArgs, SuitesCommand};
use crate::exit_code;
use crate::suite;

/// Runs `suites …`.
pub fn run(args: SuitesArgs) -> u8 {
    match args.command {
        SuitesCommand::List { suites_dir, format } => {
            let suites = match suite::load_all(&suites_dir) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit_code::USAGE;
                }
            };
            if format == super::args::Format::Json {
                let rows: Vec<_> = suites
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "image": s.image, "description": s.description,
                            "focus": s.focus, "skip": s.skip, "flake_attempts": s.flake_attempts,
                            "reruns": s.reruns, "parallel": s.parallel,
                            "timeout_seconds": s.timeout.as_secs(), "status_context": s.status_context,
                            "file": s.source.display().to_string(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for s in &suites {
                    println!(
                        "{:<14} {:<40} {}",
                        s.name,
                        s.image,
                        s.description.as_deref().unwrap_or("")
                    );
                }
            }
            exit_code::OK
        }
    }
}
