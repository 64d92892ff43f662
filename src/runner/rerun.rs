//! Pure: the focus regexes that make a fresh container run exactly the specs that failed.
//!
//! ginkgo matches `--focus` against a text it builds itself, which is not the JUnit name:
//! - v1 matches `"<suite description> [Top Level] <spec text>"` (the description passed to
//!   `RunSpecs`, which v1 writes as the testcase `classname`, then its root container's text),
//!   checked against real ginkgo 1.16 in the v1 fixture image;
//! - v2 matches `"<suite description> <spec text>"` (ginkgo v2 `internal/focus.go`), and also
//!   writes the description as the `classname`; its JUnit name adds `[It] ` (removed by the
//!   reader). Suites that keep labels in JUnit names (` [label, …]`, which Kubernetes omits)
//!   cannot be told apart from names that end in brackets (`[Conformance]`), so only the exact
//!   text is selected; the runner checks that a rerun ran every spec it targeted.
//!
//! An anchor before the spec text alone therefore selects nothing in either version. Names are
//! quoted the way Go's `regexp.QuoteMeta` does, so `[]().+|*?` match literally.

use crate::suite::GinkgoVersion;

/// Longest regex put in one container (the environment/argv limit is 128 KiB per string).
pub(crate) const MAX_FOCUS_LEN: usize = 32 * 1024;

/// The text of ginkgo v1's root container, quoted.
const V1_ROOT: &str = r"\[Top Level\]";

/// A spec to rerun, as the results reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RerunTarget {
    /// The spec text (v2 `[It] ` prefix already removed).
    pub(crate) name: String,
    /// The JUnit classname; ginkgo (v1 and v2) writes the suite description there.
    pub(crate) classname: Option<String>,
}

/// How the ginkgo that ran the first container matches a focus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FocusRule {
    /// The major version detected from the first container (or declared by the suite file).
    pub(crate) ginkgo: GinkgoVersion,
    /// The suite description (`Running Suite: <description>`), used when a target has no
    /// classname.
    pub(crate) description: Option<String>,
}

/// Quotes every RE2 metacharacter, exactly like Go's `regexp.QuoteMeta`.
pub(crate) fn quote_meta(s: &str) -> String {
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

/// The alternative (unanchored, quoted) that selects one target: the whole text ginkgo matches.
fn alternative(t: &RerunTarget, rule: &FocusRule) -> String {
    let text = match rule.ginkgo {
        GinkgoVersion::V1 => format!(r"{V1_ROOT} {}", quote_meta(&t.name)),
        GinkgoVersion::V2 => quote_meta(&t.name),
    };
    let description = t
        .classname
        .as_deref()
        .or(rule.description.as_deref())
        .filter(|d| !d.is_empty());
    match description {
        Some(d) => format!("{} {text}", quote_meta(d)),
        // Without the description the start cannot be pinned; the rest still is, and the runner
        // keeps only the targets of whatever the rerun selects.
        None => format!(".* {text}"),
    }
}

/// Anchored focus regexes selecting exactly `targets`, each at most `max_len` bytes (a single
/// over-long name still gets its own chunk), each with the targets it selects. Duplicate names
/// collapse.
pub(crate) fn focus_chunks(
    targets: &[RerunTarget],
    rule: &FocusRule,
    max_len: usize,
) -> Vec<(String, Vec<RerunTarget>)> {
    let mut alts: Vec<(String, RerunTarget)> = Vec::new();
    for t in targets {
        let a = alternative(t, rule);
        if !alts.iter().any(|(seen, _)| *seen == a) {
            alts.push((a, t.clone()));
        }
    }
    let wrap = |parts: &[(String, RerunTarget)]| {
        let regex = format!(
            "^(?:{})$",
            parts
                .iter()
                .map(|(a, _)| a.as_str())
                .collect::<Vec<_>>()
                .join("|")
        );
        (regex, parts.iter().map(|(_, t)| t.clone()).collect())
    };
    // Per chunk: the bytes its alternatives take (each with its `|`), and the alternatives.
    let mut chunks: Vec<(usize, Vec<(String, RerunTarget)>)> = Vec::new();
    for (a, t) in alts {
        match chunks.last_mut() {
            Some((len, parts)) if *len + a.len() + 1 + 8 <= max_len => {
                *len += a.len() + 1;
                parts.push((a, t));
            }
            _ => chunks.push((a.len() + 1, vec![(a, t)])),
        }
    }
    chunks.iter().map(|(_, parts)| wrap(parts)).collect()
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

    fn rule(ginkgo: GinkgoVersion) -> FocusRule {
        FocusRule {
            ginkgo,
            description: None,
        }
    }

    const V2: GinkgoVersion = GinkgoVersion::V2;

    fn regexes(targets: &[RerunTarget], rule: &FocusRule, max: usize) -> Vec<String> {
        focus_chunks(targets, rule, max)
            .into_iter()
            .map(|(r, _)| r)
            .collect()
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
    fn v2_matches_description_space_text_and_selects_exactly_the_named_specs() {
        // Regression: `^(?:<text>)$` selected nothing, because ginkgo v2 matches
        // "<description> <text>" (internal/focus.go).
        let names = [
            "[sig-apps] StatefulSet should work (a+b) [x|y] *?. [Conformance]",
            "[sig-apps] StatefulSet should work",
        ];
        let chunks = regexes(&[t(names[0])], &rule(V2), MAX_FOCUS_LEN);
        assert_eq!(chunks.len(), 1);
        let re = Regex::new(&chunks[0]).unwrap();
        assert!(re.is_match(&format!("Fixture Suite {}", names[0])));
        assert!(
            !re.is_match(names[0]),
            "the bare text is not what ginkgo matches"
        );
        // the prefix of another spec and a longer name must not match
        assert!(!re.is_match(&format!("Fixture Suite {}", names[1])));
        assert!(!re.is_match(&format!("Fixture Suite {} extra", names[0])));
    }

    #[test]
    fn v2_description_from_the_run_when_no_classname() {
        let target = RerunTarget {
            name: "a (b)".into(),
            classname: None,
        };
        let with = FocusRule {
            ginkgo: V2,
            description: Some("Kubernetes e2e suite".into()),
        };
        let re =
            Regex::new(&regexes(std::slice::from_ref(&target), &with, MAX_FOCUS_LEN)[0]).unwrap();
        assert!(re.is_match("Kubernetes e2e suite a (b)"));
        assert!(!re.is_match("Other suite a (b)"));
        let re = Regex::new(&regexes(&[target], &rule(V2), MAX_FOCUS_LEN)[0]).unwrap();
        assert!(re.is_match("Anything a (b)"));
        assert!(!re.is_match("Anything a (b) more"));
    }

    #[test]
    fn v2_trailing_brackets_are_part_of_the_name() {
        let chunks = regexes(&[t("works [Conformance]")], &rule(V2), MAX_FOCUS_LEN);
        let re = Regex::new(&chunks[0]).unwrap();
        assert!(re.is_match("Fixture Suite works [Conformance]"));
        assert!(!re.is_match("Fixture Suite works"));
    }

    #[test]
    fn v1_carries_suite_description_prefix() {
        let chunks = regexes(
            &[t("Describe it (x)")],
            &rule(GinkgoVersion::V1),
            MAX_FOCUS_LEN,
        );
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
        let full = focus_chunks(&targets, &rule(V2), 1024);
        let covered: usize = full.iter().map(|(_, c)| c.len()).sum();
        assert_eq!(
            covered,
            targets.len(),
            "each chunk carries the targets it selects"
        );
        let chunks = regexes(&targets, &rule(V2), 1024);
        assert!(chunks.len() > 1);
        let res: Vec<_> = chunks.iter().map(|c| Regex::new(c).unwrap()).collect();
        for c in &chunks {
            assert!(c.len() <= 1024, "{}", c.len());
        }
        for target in &targets {
            let matched = format!("Fixture Suite {}", target.name);
            let hits = res.iter().filter(|r| r.is_match(&matched)).count();
            assert_eq!(hits, 1, "{}", target.name);
        }
        assert!(!res
            .iter()
            .any(|r| r.is_match("Fixture Suite spec number 1")));
    }

    #[test]
    fn duplicate_names_collapse() {
        let chunks = regexes(&[t("same"), t("same")], &rule(V2), MAX_FOCUS_LEN);
        assert_eq!(chunks, vec!["^(?:Fixture Suite same)$".to_string()]);
    }
}
