//! `e2e-gate suites list`.

use super::args::{SuitesArgs, SuitesCommand};
use super::Exit;
use crate::exit_code;
use crate::suite;

pub(crate) fn run(args: SuitesArgs) -> Result<u8, Exit> {
    match args.command {
        SuitesCommand::List { suites_dir, format } => {
            let suites = suite::load_all(&super::args::locate(&suites_dir))?;
            if format == super::args::Format::Json {
                let rows: Vec<_> = suites
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "image": s.image, "description": s.description,
                            "focus": s.focus, "skip": s.skip, "flake_attempts": s.flake_attempts,
                            "reruns": s.reruns, "parallel": s.parallel,
                            "timeout_seconds": s.timeout.as_secs(), "status_context": s.status_context(),
                            "file": s.source.display().to_string(),
                            "image_present": image_present(&s.image),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!("{:<14} {:<40} {:<8} DESCRIPTION", "NAME", "IMAGE", "IMAGE?");
                for s in &suites {
                    let present = match image_present(&s.image) {
                        Some(true) => "present",
                        Some(false) => "missing",
                        None => "unknown",
                    };
                    println!(
                        "{:<14} {:<40} {:<8} {}",
                        s.name,
                        s.image,
                        present,
                        s.description.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(exit_code::OK)
        }
    }
}

/// Whether the local Docker engine has `image` (`None`: Docker could not be asked), so a user
/// sees before a run which images still need `docker pull`, `docker load` or a build.
fn image_present(image: &str) -> Option<bool> {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .ok()?;
    if out.status.success() {
        return Some(true);
    }
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    err.contains("no such image").then_some(false)
}
