//! The artifacts directory a run or gate writes, cleared of the previous run's results first:
//! Jenkins archives the whole directory, and an old `availability.json` or another suite's
//! results beside the new ones read as part of this run. Only what e2e-gate itself writes is
//! removed; anything else in the directory stays.

use super::Exit;
use std::path::Path;

/// Top-level files a run or a gate writes.
const RUN_FILES: &[&str] = &[
    "junit.xml",
    "summary.json",
    "availability.json",
    "upgrade-report.json",
];

/// Whether `dir` is a suite directory e2e-gate wrote: it holds `attempt-0/container.json` or
/// `dry-run/container.json`, the record of the container e2e-gate created.
fn is_suite_dir(dir: &Path) -> bool {
    ["attempt-0", "dry-run"]
        .iter()
        .any(|a| dir.join(a).join("container.json").is_file())
}

/// [`clear_previous`], logged; a failure stops the command (exit 3).
pub(crate) fn clear(artifacts: &Path) -> Result<(), Exit> {
    let removed = clear_previous(artifacts)
        .map_err(|e| Exit::infra(format!("cannot clear {}: {e}", artifacts.display())))?;
    if !removed.is_empty() {
        tracing::info!(artifacts = %artifacts.display(), ?removed, "previous results removed");
    }
    Ok(())
}

/// Removes the previous run's results from `artifacts`; returns what was removed.
fn clear_previous(artifacts: &Path) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(artifacts) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_file() && RUN_FILES.contains(&name.as_str()) {
            std::fs::remove_file(&path)?;
            removed.push(name);
        } else if path.is_dir() && is_suite_dir(&path) {
            std::fs::remove_dir_all(&path)?;
            removed.push(format!("{name}/"));
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_e2e_gate_wrote_goes() {
        // Regression: a `run` after a `gate` left the gate's availability.json (and other
        // suites' results) beside the new results, and Jenkins archived them together.
        let d = tempfile::tempdir().unwrap();
        for f in [
            "junit.xml",
            "summary.json",
            "availability.json",
            "notes.txt",
        ] {
            std::fs::write(d.path().join(f), "x").unwrap();
        }
        std::fs::create_dir_all(d.path().join("conformance/attempt-0")).unwrap();
        std::fs::write(d.path().join("conformance/attempt-0/container.json"), "{}").unwrap();
        std::fs::create_dir_all(d.path().join("mine/attempt-0")).unwrap();
        let removed = clear_previous(d.path()).unwrap();
        assert_eq!(
            removed,
            [
                "availability.json",
                "conformance/",
                "junit.xml",
                "summary.json"
            ]
        );
        assert!(d.path().join("notes.txt").exists(), "not ours: kept");
        assert!(d.path().join("mine").exists(), "no container record: kept");
        assert!(clear_previous(&d.path().join("missing"))
            .unwrap()
            .is_empty());
    }
}
