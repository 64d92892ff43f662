//! Reads `suites/*.toml` into validated [`SuiteSpec`]s. Errors name the file and the field.

use super::error::SuiteError;
use super::file::SuiteFile;
use super::spec::SuiteSpec;
use std::path::Path;

/// Parses one suite file's text; `path` is only used in messages.
pub fn parse_suite(text: &str, path: &Path) -> Result<SuiteSpec, SuiteError> {
    let file: SuiteFile = toml::from_str(text).map_err(|e| SuiteError::Parse {
        file: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    SuiteSpec::from_file(file, path)
}

/// Loads every `*.toml` in `dir`, sorted by name. Duplicate names are an error.
pub fn load_all(dir: &Path) -> Result<Vec<SuiteSpec>, SuiteError> {
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
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| SuiteError::Parse {
            file: path.clone(),
            message: e.to_string(),
        })?;
        let suite = parse_suite(&text, &path)?;
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
    Ok(suites)
}

/// Picks the named suites, in the order asked, from `dir`.
pub fn select(dir: &Path, names: &[String]) -> Result<Vec<SuiteSpec>, SuiteError> {
    let all = load_all(dir)?;
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|s| &s.name == n)
                .cloned()
                .ok_or_else(|| SuiteError::Unknown {
                    name: n.clone(),
                    dir: dir.to_path_buf(),
                    known: all.iter().map(|s| s.name.clone()).collect(),
                })
        })
        .collect()
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
        assert_eq!(s.status_context, "e2e-gate/x");
        assert_eq!(s.contract, Contract::ConformanceImage);
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let e = parse_suite(
            "name = \"x\"\nimage = \"i\"\ncontract = \"conformance-image\"\nflake_atempts = 2\n",
            &p(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("suites/x.toml"), "{e}");
        assert!(e.contains("flake_atempts"), "{e}");
        assert!(e.contains("flake_attempts"), "should list valid keys: {e}");
    }

    #[test]
    fn invalid_regex_names_field_and_index() {
        let e = parse_suite(
            "name = \"x\"\nimage = \"i\"\ncontract = \"conformance-image\"\nskip = ['ok', '[Serial']\n",
            &p(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("suites/x.toml"), "{e}");
        assert!(e.contains("skip[1]"), "{e}");
    }

    #[test]
    fn bad_contract_lists_valid_values() {
        let e = parse_suite("name = \"x\"\nimage = \"i\"\ncontract = \"docker\"\n", &p())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("conformance-image") && e.contains("ginkgo-binary"),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_is_explained() {
        let e = parse_suite(
            "name = \"x\"\nimage = \"i\"\ncontract = \"conformance-image\"\ntimeout = \"soon\"\n",
            &p(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("timeout") && e.contains("\"soon\"") && e.contains("15m"),
            "{e}"
        );
    }

    #[test]
    fn zero_flake_attempts_rejected() {
        let e = parse_suite(
            "name = \"x\"\nimage = \"i\"\ncontract = \"conformance-image\"\nflake_attempts = 0\n",
            &p(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("flake_attempts") && e.contains("at least 1"),
            "{e}"
        );
    }

    #[test]
    fn parallel_needs_conformance_contract() {
        let e = parse_suite(
            "name = \"x\"\nimage = \"i\"\ncontract = \"ginkgo-binary\"\nparallel = 4\n",
            &p(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("parallel"), "{e}");
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
}
