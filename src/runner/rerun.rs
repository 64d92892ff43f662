//! Pure: the focus regexes that make a fresh container run exactly the specs that failed.
//!
//! ginkgo matches `--focus` against a text it builds itself, which is not the JUnit name:
//! - v1 matches `"<suite description> [Top Level] <spec text>"` (the description passed to
//!   `RunSpecs`, which v1 also writes as the testcase `classname`, then its root container's text),
//!   so the regex must carry that prefix (checked against real ginkgo 1.16 in the fixture image);
//! - v2 matches the spec text alone; its JUnit name adds `[It] ` (removed by the reader). Suites
//!   that keep labels in JUnit names (` [label, …]`, which Kubernetes omits) cannot be told apart
//!   from names that end in brackets (`[Conformance]`), so only the exact text is selected.
//!
//! Names are quoted the way Go's `regexp.QuoteMeta` does, so `[]().+|*?` match literally.

use crate::suite::GinkgoVersion;

/// Longest regex put in one container (the environment/argv limit is 128 KiB per string).
pub const MAX_FOCUS_LEN: usize = 32 * 1024;

/// The text of ginkgo v1's root container, quoted.
const V1_ROOT: &str = r"\[Top Level\]";

/// A spec to rerun, as the results reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerunTarget {
    /// The spec text (v2 `[It] ` prefix already removed).
    pub name: String,
    /// The JUnit classname; ginkgo v1 writes the suite description there.
    pub classname: Option<String>,
}

/// Quotes every RE2 metacharacter, exactly like Go's `regexp.QuoteMeta`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The alternatives (unanchored, quoted) that select one target.
fn alternatives(t: &RerunTarget, ginkgo: GinkgoVersion) -> Vec<String> {
    match ginkgo {
        GinkgoVersion::V1 => {
            let top = format!(r"{V1_ROOT} {}", quote_meta(&t.name));
            match t.classname.as_deref().filter(|c| !c.is_empty()) {
                Some(description) => vec![format!("{} {top}", quote_meta(description))],
                // Without the description the start cannot be pinned; the root marker still is.
                None => vec![format!(".* {top}")],
            }
        }
        GinkgoVersion::V2 => vec![quote_meta(&t.name)],
    }
}

/// Anchored focus regexes selecting exactly `targets`, each at most `max_len` bytes
/// (a single over-long name still gets its own chunk). Duplicate names collapse.
pub fn focus_chunks(targets: &[RerunTarget], ginkgo: GinkgoVersion, max_len: usize) -> Vec<String> {
    let mut alts: Vec<String> = Vec::new();
    for t in targets {
        for a in alternatives(t, ginkgo) {
            if !alts.contains(&a) {
                alts.push(a);
            }
        }
    }
    let wrap = |parts: &[String]| format!("^(?:{})$", parts.join("|"));
    let mut chunks = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut len = 0;
    for a in alts {
        if !current.is_empty() && len + a.len() + 1 + 8 > max_len {
            chunks.push(wrap(&current));
            current.clear();
            len = 0;
        }
        len += a.len() + 1;
        current.push(a);
    }
    if !current.is_empty() {
        chunks.push(wrap(&current));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn t(name: &str) -> RerunTarget {
        RerunTarget {
            name: name.into(),
            classname: Some("Fixture Suite".into()),
        }
    }

    #[test]
    fn quote_meta_matches_go() {
        assert_eq!(
            quote_meta(r"a.b+c*d?e(f)g|h[i]j{k}l^m$n\o"),
            r"a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o"
        );
        assert_eq!(quote_meta("plain - text #1 & ~"), "plain - text #1 & ~");
    }

    #[test]
    fn v2_selects_exactly_the_named_specs() {
        let names = [
            "[sig-apps] StatefulSet should work (a+b) [x|y] *?. [Conformance]",
            "[sig-apps] StatefulSet should work",
        ];
        let chunks = focus_chunks(&[t(names[0])], GinkgoVersion::V2, MAX_FOCUS_LEN);
        assert_eq!(chunks.len(), 1);
        let re = Regex::new(&chunks[0]).unwrap();
        assert!(re.is_match(names[0]));
        // the prefix of another spec and a longer name must not match
        assert!(!re.is_match(names[1]));
        assert!(!re.is_match(&format!("{} extra", names[0])));
    }

    #[test]
    fn v2_trailing_brackets_are_part_of_the_name() {
        let chunks = focus_chunks(
            &[t("works [Conformance]")],
            GinkgoVersion::V2,
            MAX_FOCUS_LEN,
        );
        let re = Regex::new(&chunks[0]).unwrap();
        assert!(re.is_match("works [Conformance]"));
        assert!(!re.is_match("works"));
    }

    #[test]
    fn v1_carries_suite_description_prefix() {
        let chunks = focus_chunks(&[t("Describe it (x)")], GinkgoVersion::V1, MAX_FOCUS_LEN);
        let re = Regex::new(&chunks[0]).unwrap();
        assert!(re.is_match("Fixture Suite [Top Level] Describe it (x)"));
        assert!(!re.is_match("Fixture Suite [Top Level] Outer Describe it (x)"));
        assert!(!re.is_match("Fixture Suite Describe it (x)"));
        assert!(!re.is_match("Describe it (x)"));
    }

    #[test]
    fn chunks_stay_under_limit_and_cover_all() {
        let targets: Vec<_> = (0..200)
            .map(|i| t(&format!("spec number {i} [Conformance]")))
            .collect();
        let chunks = focus_chunks(&targets, GinkgoVersion::V2, 1024);
        assert!(chunks.len() > 1);
        let res: Vec<_> = chunks.iter().map(|c| Regex::new(c).unwrap()).collect();
        for c in &chunks {
            assert!(c.len() <= 1024, "{}", c.len());
        }
        for target in &targets {
            let hits = res.iter().filter(|r| r.is_match(&target.name)).count();
            assert_eq!(hits, 1, "{}", target.name);
        }
        assert!(!res.iter().any(|r| r.is_match("spec number 1")));
    }

    #[test]
    fn duplicate_names_collapse() {
        let chunks = focus_chunks(&[t("same"), t("same")], GinkgoVersion::V2, MAX_FOCUS_LEN);
        assert_eq!(chunks, vec!["^(?:same)$".to_string()]);
    }
}
