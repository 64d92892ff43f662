//! Reads `suites/*.toml` into validated [`SuiteSpec`]s. Errors name the file and the field.

use super::error::SuiteError;
use super::spec::SuiteSpec;
use std::path::{Path, PathBuf};

/// Parses one suite file's text; `path` is only used in messages.
pub fn parse_suite(text: &str, path: &Path) -> Result<SuiteSpec, SuiteError> {
    let file: SuiteSpec = toml::from_str(text).map_err(|e| SuiteError::Parse {
        file: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    file.validate(path)
}

/// Loads every `*.toml` in `dir`, sorted by name. Duplicate names are an error.
pub(crate) fn load_all(dir: &Path) -> Result<Vec<SuiteSpec>, SuiteError> {
    let (suites, broken) = load_lenient(dir)?;
    match broken.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(suites),
    }
}

/// Suite files that do not load, each with its error.
type Broken = Vec<(PathBuf, SuiteError)>;

/// Every suite file of `dir` that parses, and the files that do not (with their errors).
/// A directory that cannot be read, or two files defining one name, are still errors.
fn load_lenient(dir: &Path) -> Result<(Vec<SuiteSpec>, Broken), SuiteError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SuiteError::Dir {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut suites: Vec<SuiteSpec> = Vec::new();
    let mut broken = Vec::new();
    for path in paths {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| SuiteError::Parse {
                file: path.clone(),
                message: e.to_string(),
            })
            .and_then(|text| parse_suite(&text, &path));
        let suite = match parsed {
            Ok(s) => s,
            Err(e) => {
                broken.push((path, e));
                continue;
            }
        };
        if let Some(other) = suites.iter().find(|s| s.name == suite.name) {
            return Err(SuiteError::Invalid {
                file: path.clone(),
                field: "name".into(),
                message: format!(
                    "suite {:?} is already defined in {}",
                    suite.name,
                    other.source.display()
                ),
            });
        }
        suites.push(suite);
    }
    suites.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((suites, broken))
}

/// The suites named, in the order given. A broken file of another suite does not stop them
/// (it is logged); a broken file named like a wanted suite is that suite's error.
pub(crate) fn select(dir: &Path, names: &[String]) -> Result<Vec<SuiteSpec>, SuiteError> {
    let (all, broken) = load_lenient(dir)?;
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let mut out = Vec::new();
    for n in names {
        match all.iter().find(|s| &s.name == n) {
            Some(s) => out.push(s.clone()),
            None => {
                // The wanted suite may be the one that does not parse: say so (the file
                // named like it first).
                let own = broken.iter().find(|(p, _)| stem(p).as_deref() == Some(n));
                if let Some((_, e)) = own.or(broken.first()) {
                    return Err(e.clone());
                }
                return Err(SuiteError::Unknown {
                    name: n.clone(),
                    dir: dir.to_path_buf(),
                    known: all.iter().map(|s| s.name.clone()).collect(),
                });
            }
        }
    }
    for (path, e) in &broken {
        tracing::warn!(file = %path.display(), "suite file skipped (not selected, and it does not load): {e}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::file::Contract;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("suites/x.toml")
    }

    #[test]
    fn minimal_suite_gets_defaults() {
        let s = parse_suite(
            "name = \"x\"\nimage = \"img:1\"\ncontract = \"conformance-image\"\n",
            &p(),
        )
        .unwrap();
        assert_eq!(s.flake_attempts, 1);
        assert_eq!(s.reruns, 0);
        assert_eq!(s.parallel, 1);
        assert_eq!(s.status_context(), "e2e-gate/x");
        assert_eq!(s.contract, Contract::ConformanceImage);
    }

    #[test]
    fn invalid_files_are_explained() {
        // (keys after `name` and `image`, what the error must say)
        let cases: [(&str, &[&str]); 6] = [
            // an unknown key names the file and the key, and lists the valid keys
            (
                "contract = \"conformance-image\"\nflake_atempts = 2\n",
                &["suites/x.toml", "flake_atempts", "flake_attempts"],
            ),
            // an invalid regex names the field and its index
            (
                "contract = \"conformance-image\"\nskip = ['ok', '[Serial']\n",
                &["suites/x.toml", "skip[1]"],
            ),
            // a bad contract lists the valid values
            (
                "contract = \"docker\"\n",
                &["conformance-image", "ginkgo-binary"],
            ),
            // a bad duration is explained
            (
                "contract = \"conformance-image\"\ntimeout = \"soon\"\n",
                &["timeout", "\"soon\"", "15m"],
            ),
            // zero flake attempts are rejected
            (
                "contract = \"conformance-image\"\nflake_attempts = 0\n",
                &["flake_attempts", "at least 1"],
            ),
            // parallel needs the conformance contract
            (
                "contract = \"ginkgo-binary\"\nparallel = 4\n",
                &["parallel"],
            ),
        ];
        for (keys, says) in cases {
            let e = parse_suite(&format!("name = \"x\"\nimage = \"i\"\n{keys}"), &p())
                .unwrap_err()
                .to_string();
            for want in says {
                assert!(e.contains(want), "{keys}: {e}");
            }
        }
    }

    #[test]
    fn overrides_replace_and_validate() {
        let s = parse_suite(
            "name = \"x\"\nimage = \"i\"\ncontract = \"conformance-image\"\nfocus = ['a']\n",
            &p(),
        )
        .unwrap();
        let o = crate::suite::Overrides {
            focus: vec!["b".into()],
            reruns: Some(2),
            ..Default::default()
        };
        let s2 = s.clone().apply(&o).unwrap();
        assert_eq!(s2.focus, vec!["b".to_string()]);
        assert_eq!(s2.reruns, 2);
        let bad = crate::suite::Overrides {
            skip: vec!["(".into()],
            ..Default::default()
        };
        let e = s.apply(&bad).unwrap_err().to_string();
        assert!(e.contains("--skip"), "{e}");
    }

    #[test]
    fn shipped_suites_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
        let all = load_all(&dir).unwrap();
        let names: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
        for want in ["conformance", "statefulset", "custom"] {
            assert!(names.contains(&want), "{names:?}");
        }
        let sts = all.iter().find(|s| s.name == "statefulset").unwrap();
        assert!(sts.focus.iter().any(|f| f == r"\[StatefulSetBasic\]"));
        assert!(sts
            .focus
            .iter()
            .any(|f| f == r"\[Feature:StatefulSet\]\s\[Slow\].*redis"));
    }

    #[test]
    fn unknown_suite_lists_known() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
        let e = select(&dir, &["nope".into()]).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("conformance"), "{e}");
    }

    #[test]
    fn a_broken_file_stops_only_its_own_suite() {
        // Regression: one broken suite file stopped every suite from running.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("good.toml"),
            "name = \"good\"\nimage = \"i:1\"\ncontract = \"conformance-image\"\n",
        )
        .unwrap();
        std::fs::write(d.path().join("bad.toml"), "name = \"bad\"\nimage = 3\n").unwrap();
        let got = select(d.path(), &["good".into()]).unwrap();
        assert_eq!(got[0].name, "good");
        let e = select(d.path(), &["bad".into()]).unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "the wanted suite's own error: {e}");
        assert!(load_all(d.path()).is_err(), "listing all still reports it");
    }
}
