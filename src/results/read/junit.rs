//! Streaming JUnit reader (quick-xml): ginkgo v1, ginkgo v2, runner steps and our own
//! Surefire-style output. Counts attributes are ignored; everything comes from testcases.

use super::naming::{split_it_prefix, IT_PREFIX};
use super::{is_suite_node, push_suite_node, BoundedText, ReadOptions};
use crate::results::model::{
    Attempt, AttemptState, SourceFormat, Spec, SuiteNode, SuiteResult, DRY_RUN_KIND,
};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use std::borrow::Cow;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

/// Which child element a testcase outcome came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Child {
    #[default]
    None,
    Failure,
    Error,
    Skipped,
}

/// One run as a testcase records it: the testcase's own, or a failed one inside it
/// (`flakyFailure`, `rerunFailure`, …).
#[derive(Debug, Default)]
struct Run {
    /// A `flaky…` element: a failure before the testcase's pass.
    flaky: bool,
    time: Option<f64>,
    ty: Option<String>,
    message: Option<String>,
    /// The failure's text (a rerun element's own text and its `stackTrace`).
    text: Option<String>,
    output: Option<String>,
}

/// A testcase as read, before attempts are grouped into specs.
#[derive(Debug, Default)]
struct RawCase {
    name: Option<String>,
    /// `name` had ginkgo v2's `[It] ` prefix, removed from `name`.
    it_prefix: bool,
    classname: Option<Arc<str>>,
    status: Option<String>,
    child: Child,
    run: Run,
    reruns: Vec<Run>,
}

/// Where text events currently go (with the text gathered so far).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dest {
    Failure,
    Output,
    Rerun,
    RerunOutput,
}

type Target = Option<(Dest, BoundedText)>;

/// The text gathered for `dest`, when that is where text went (the target is then cleared).
fn take(target: &mut Target, dest: Dest) -> Option<Option<String>> {
    target.take_if(|(d, _)| *d == dest).map(|(_, t)| t.finish())
}

/// Everything the reader gathered from one file.
#[derive(Debug, Default)]
struct Gathered {
    /// The suite built so far: testcases are turned into specs as they close, so memory
    /// holds the model only, never the raw testcases.
    suite: SuiteResult,
    source: String,
    cases: usize,
    all_runner_class: bool,
    prev_failed: bool,
    unnamed: usize,
    suite_name: Option<String>,
    root_testsuites: bool,
    saw_status: bool,
    saw_rerun_elements: bool,
    time: Option<f64>,
    properties: Vec<(String, String)>,
    /// The classname of the previous testcase: usually every testcase has the same one.
    classname: Option<Arc<str>>,
}

impl Gathered {
    /// One shared copy of a classname the previous testcase also had.
    fn classname(&mut self, c: &str) -> Arc<str> {
        match &self.classname {
            Some(last) if **last == *c => last.clone(),
            _ => {
                let new: Arc<str> = Arc::from(c);
                self.classname = Some(new.clone());
                new
            }
        }
    }
}

/// The values of the wanted attributes of a start tag (the first of each name), entities
/// decoded and blanks normalised. quick-xml's iterator skips what it cannot read and keeps
/// the rest; a value it cannot decode is kept raw.
fn attrs<const N: usize>(e: &BytesStart<'_>, keys: [&str; N]) -> [Option<String>; N] {
    let mut out = std::array::from_fn(|_| None);
    for a in e.attributes().flatten() {
        if let Some(i) = keys.iter().position(|k| k.as_bytes() == a.key.as_ref()) {
            out[i].get_or_insert_with(|| {
                a.normalized_value(XmlVersion::Implicit1_0)
                    .map(Cow::into_owned)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned())
            });
        }
    }
    out
}

/// A numeric attribute (`time="1.5"`), `None` when absent or not a number.
fn to_f64(v: Option<String>) -> Option<f64> {
    v?.trim().parse().ok()
}

/// Reads one JUnit document (a file, or bytes in memory) into a suite. Malformed or truncated XML sets
/// [`SuiteResult::incomplete`] naming `source` and the byte position; what was read
/// before the damage is kept.
pub fn read_junit<R: BufRead>(input: R, source: &str, opts: &ReadOptions) -> SuiteResult {
    let mut g = Gathered {
        source: source.to_string(),
        all_runner_class: true,
        ..Gathered::default()
    };
    let damage = gather(input, &mut g, opts).err();
    let mut suite = finish(g, source);
    if let Some(d) = damage {
        suite.mark_damaged(format!("{source}: {d}"));
    }
    suite
}

/// Parser position: element depth, the open testcase and where text goes.
#[derive(Default)]
struct Cursor {
    depth: usize,
    saw_root: bool,
    case: Option<RawCase>,
    target: Target,
    rerun: Option<Run>,
}

/// The driver: quick-xml events, bounded memory whatever the file size.
fn gather<R: BufRead>(input: R, g: &mut Gathered, opts: &ReadOptions) -> Result<(), String> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut cur = Cursor::default();
    loop {
        // Whitespace between elements is noise: skip it unless text is being captured.
        reader.config_mut().trim_text_start = cur.target.is_none();
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.error_position()))?;
        match ev {
            Event::Start(e) => {
                cur.depth += 1;
                cur.open(&e, false, g, opts);
            }
            Event::Empty(e) => cur.open(&e, true, g, opts),
            Event::End(e) => {
                cur.depth = cur.depth.saturating_sub(1);
                cur.close(e.local_name().as_ref(), g);
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => cur.text(ev),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let position = reader.buffer_position();
    if cur.depth > 0 || cur.case.is_some() {
        return Err(format!(
            "unexpected end of file at byte {position} ({} element(s) left open)",
            cur.depth
        ));
    }
    if !cur.saw_root {
        return Err("no XML elements (empty or not JUnit)".to_string());
    }
    Ok(())
}

/// A character or predefined entity reference, resolved; unknown ones are dropped.
fn push_reference(text: &mut BoundedText, r: &BytesRef<'_>) {
    if r.is_char_ref() {
        if let Ok(Some(c)) = r.resolve_char_ref() {
            text.push_char(c);
        }
    } else if let Ok(name) = r.decode() {
        if let Some(v) = quick_xml::escape::resolve_predefined_entity(&name) {
            text.push(v);
        }
    }
}

impl Cursor {
    /// Text, CDATA or a reference, into the current target.
    fn text(&mut self, ev: Event<'_>) {
        let Some((_, text)) = self.target.as_mut().filter(|(_, t)| t.wants()) else {
            return;
        };
        match ev {
            Event::Text(t) => {
                if let Ok(s) = t.xml10_content() {
                    text.push(&s);
                }
            }
            Event::CData(t) => {
                if let Ok(s) = t.decode() {
                    text.push(&s);
                }
            }
            Event::GeneralRef(r) => push_reference(text, &r),
            _ => {}
        }
    }

    fn open(&mut self, e: &BytesStart<'_>, empty: bool, g: &mut Gathered, opts: &ReadOptions) {
        self.saw_root = true;
        let name = e.local_name();
        let name = name.as_ref();
        match name {
            b"testsuites" => g.root_testsuites = true,
            b"testsuite" => {
                let [name, time] = attrs(e, ["name", "time"]);
                g.suite_name = g.suite_name.take().or(name.filter(|n| !n.is_empty()));
                if let Some(t) = to_f64(time) {
                    g.time = Some(g.time.unwrap_or(0.0) + t);
                }
            }
            b"property" if self.case.is_none() => {
                if let [Some(n), Some(v)] = attrs(e, ["name", "value"]) {
                    if !g.properties.iter().any(|(k, _)| *k == n) {
                        g.properties.push((n, v));
                    }
                }
            }
            b"testcase" => {
                let [name, classname, time, status] =
                    attrs(e, ["name", "classname", "time", "status"]);
                g.saw_status |= status.is_some();
                let (name, it_prefix) = match name {
                    Some(n) if status.is_some() => {
                        let (n, p) = split_it_prefix(n);
                        (Some(n), p.is_some())
                    }
                    n => (n, false),
                };
                let c = RawCase {
                    name,
                    it_prefix,
                    classname: classname.map(|c| g.classname(&c)),
                    status,
                    run: Run {
                        time: to_f64(time),
                        ..Run::default()
                    },
                    ..RawCase::default()
                };
                if empty {
                    push_case(g, c);
                } else {
                    self.case = Some(c);
                }
            }
            b"failure" | b"error" | b"skipped" => {
                // <failure> nested in a rerun is not a shape we know; ignore.
                let Some(c) = self.case.as_mut().filter(|_| self.rerun.is_none()) else {
                    return;
                };
                let kind = match name {
                    b"failure" => Child::Failure,
                    b"error" => Child::Error,
                    _ => Child::Skipped,
                };
                // failure/error beat skipped when both appear
                if c.child == Child::None || kind != Child::Skipped {
                    c.child = kind;
                    [c.run.ty, c.run.message] = attrs(e, ["type", "message"]);
                }
                if !empty {
                    self.target = (kind != Child::Skipped)
                        .then(|| (Dest::Failure, BoundedText::head(opts.max_failure_bytes)));
                }
            }
            b"flakyFailure" | b"flakyError" | b"rerunFailure" | b"rerunError" => {
                if let Some(c) = self.case.as_mut() {
                    g.saw_rerun_elements = true;
                    let [message, ty, time] = attrs(e, ["message", "type", "time"]);
                    let r = Run {
                        flaky: name.starts_with(b"flaky"),
                        message,
                        ty,
                        time: to_f64(time),
                        ..Run::default()
                    };
                    if empty {
                        c.reruns.push(r);
                    } else {
                        self.rerun = Some(r);
                        self.target =
                            Some((Dest::Rerun, BoundedText::head(opts.max_failure_bytes)));
                    }
                }
            }
            b"stackTrace" if self.rerun.is_some() && !empty => {
                self.target = Some((Dest::Rerun, BoundedText::head(opts.max_failure_bytes)));
            }
            b"system-out" | b"system-err" if self.case.is_some() && !empty => {
                let dest = match self.rerun {
                    Some(_) => Dest::RerunOutput,
                    None => Dest::Output,
                };
                self.target = Some((dest, BoundedText::tail(opts.max_output_bytes)));
            }
            _ => {}
        }
    }

    fn close(&mut self, name: &[u8], g: &mut Gathered) {
        let Cursor {
            case,
            target,
            rerun,
            ..
        } = self;
        match name {
            b"testcase" => {
                if let Some(c) = case.take() {
                    push_case(g, c);
                }
                *target = None;
                *rerun = None;
            }
            // A failure, output or stack trace sets its target only inside its testcase/rerun.
            b"failure" | b"error" => {
                if let (Some(c), Some(t)) = (case.as_mut(), take(target, Dest::Failure)) {
                    c.run.text = join_text(c.run.text.take(), t);
                }
            }
            b"system-out" | b"system-err" => {
                if let (Some(c), Some(t)) = (case.as_mut(), take(target, Dest::Output)) {
                    c.run.output = join_text(c.run.output.take(), t);
                } else if let (Some(r), Some(t)) = (rerun.as_mut(), take(target, Dest::RerunOutput))
                {
                    r.output = join_text(r.output.take(), t);
                }
            }
            b"stackTrace" => {
                if let (Some(r), Some(t)) = (rerun.as_mut(), take(target, Dest::Rerun)) {
                    r.text = join_text(r.text.take(), t);
                }
            }
            b"flakyFailure" | b"flakyError" | b"rerunFailure" | b"rerunError" => {
                if let Some(mut r) = rerun.take() {
                    if let Some(t) = take(target, Dest::Rerun).flatten() {
                        if !r.text.as_ref().is_some_and(|s| s.contains(t.trim())) {
                            r.text = join_text(r.text.take(), Some(t));
                        }
                    }
                    if let Some(c) = case.as_mut() {
                        c.reruns.push(r);
                    }
                }
            }
            _ => {}
        }
    }
}

fn join_text(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
        (a, b) => a.or(b),
    }
}

/// Splits a ginkgo v1 failure body (`file.go:NN\nmessage…`) into (location, text).
fn split_location(text: &str) -> (Option<String>, String) {
    let trimmed = text.trim();
    if let Some((first, rest)) = trimmed.split_once('\n') {
        if looks_like_location(first.trim()) && !rest.trim().is_empty() {
            return (Some(first.trim().to_string()), rest.trim().to_string());
        }
    }
    (find_v2_location(trimmed), trimmed.to_string())
}

fn looks_like_location(s: &str) -> bool {
    !s.contains(' ')
        && s.rsplit_once(':').is_some_and(|(f, l)| {
            f.ends_with(".go") && !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())
        })
}

/// v2 timelines say `In [It] at: /path/file.go:123 @ …`.
fn find_v2_location(text: &str) -> Option<String> {
    let i = text.find(" at: ")?;
    let rest = &text[i + 5..];
    let loc = rest.split_whitespace().next()?;
    looks_like_location(loc).then(|| loc.to_string())
}

fn duration(t: Option<f64>) -> Option<Duration> {
    t.filter(|t| t.is_finite() && *t >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Maps known ginkgo properties to the names the writer uses; keeps our own names as is.
fn map_property(name: &str, value: &str, suite: &mut SuiteResult) {
    let key = match name {
        "FocusStrings" => "focus",
        "SkipStrings" => "skip",
        "FlakeAttempts" => "flake_attempts",
        "ParallelTotal" => "parallel",
        "RandomSeed" => "random_seed",
        "LabelFilter" => "label_filter",
        "DryRun" | "dry_run" => {
            suite.dry_run |= value == "true";
            return;
        }
        "kubernetes_version" => {
            suite.kubernetes_version = Some(value.to_string());
            return;
        }
        "incomplete" => return,
        n if n.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => return,
        n => n,
    };
    if !value.is_empty() {
        suite.properties.push((key.to_string(), value.to_string()));
    }
}

/// A failed attempt from a run's failure `message` and text (`file.go:NN\ntext…`): the
/// message leads the text unless the text already holds it. Its kind is the testcase's
/// `status` when it has one, else the failure's `type`; its output moves into it.
fn failed_attempt(r: &mut Run, status: &str) -> Attempt {
    let (location, text) = match r.text.as_deref().map(split_location) {
        Some((loc, t)) => (loc, Some(t).filter(|t| !t.is_empty())),
        None => (None, None),
    };
    let message = r.message.as_deref().filter(|m| !m.trim().is_empty());
    let failure = match (message, text) {
        (Some(m), Some(t)) if t.contains(m.trim()) => Some(t),
        (Some(m), Some(t)) => Some(format!("{m}\n{t}")),
        (m, t) => m.map(str::to_string).or(t),
    };
    let ty = r.ty.as_deref().filter(|t| !t.is_empty());
    Attempt {
        state: AttemptState::Failed,
        failure_kind: Some(status)
            .filter(|s| !s.is_empty())
            .or(ty)
            .map(str::to_string),
        duration: duration(r.time),
        failure,
        location,
        output: r.output.take(),
        ..Attempt::default()
    }
}

/// The attempt a testcase's own outcome describes (its output moves into it).
fn main_attempt(c: &mut RawCase) -> Attempt {
    let status = c.status.as_deref().unwrap_or("");
    let message = &c.run.message;
    match (status, c.child) {
        ("skipped", _) | ("", Child::Skipped) => {
            let dry = message.as_deref().is_some_and(|m| m.starts_with("dry run"));
            let state = if message.as_deref() == Some("pending") {
                AttemptState::Pending
            } else {
                AttemptState::Skipped
            };
            Attempt {
                state,
                failure_kind: dry.then(|| DRY_RUN_KIND.to_string()),
                failure: message
                    .as_deref()
                    .filter(|m| !dry && !m.is_empty() && *m != "skipped")
                    .map(str::to_string),
                ..Attempt::default()
            }
        }
        ("pending", _) => Attempt::new(AttemptState::Pending),
        ("passed", _) | ("", Child::None) => Attempt {
            state: AttemptState::Passed,
            duration: duration(c.run.time),
            output: c.run.output.take(),
            ..Attempt::default()
        },
        (_, Child::Error) if c.run.ty.as_deref() == Some("not-run") => Attempt {
            state: AttemptState::NotRun,
            failure_kind: c.run.ty.clone(),
            failure: c.run.message.clone(),
            ..Attempt::default()
        },
        (s, _) => failed_attempt(&mut c.run, s),
    }
}

fn is_runner_class(c: &RawCase) -> bool {
    matches!(
        c.classname.as_deref(),
        Some("e2e.go" | "kubetest" | "kubetest2" | "runner")
    )
}

/// Turns one closed testcase into attempts of a spec (or of a suite node).
fn push_case(g: &mut Gathered, mut c: RawCase) {
    g.cases += 1;
    g.all_runner_class &= is_runner_class(&c);
    let suite = &mut g.suite;
    let junit_name = match c.name.take().filter(|n| c.it_prefix || !n.is_empty()) {
        Some(n) => n,
        None => {
            g.unnamed += 1;
            format!("(unnamed testcase {} in {})", g.unnamed, g.source)
        }
    };
    if c.child == Child::Error && c.run.ty.as_deref() == Some("incomplete") {
        let reason = c
            .run
            .message
            .take()
            .unwrap_or_else(|| format!("{}: marked incomplete", g.source));
        suite.mark_incomplete(reason);
        return;
    }
    let main = main_attempt(&mut c);
    let rerun = |r: &mut Run| failed_attempt(r, "");
    let mut attempts: Vec<Attempt> = Vec::with_capacity(1 + c.reruns.len());
    attempts.extend(c.reruns.iter_mut().filter(|r| r.flaky).map(rerun));
    attempts.push(main);
    attempts.extend(c.reruns.iter_mut().filter(|r| !r.flaky).map(rerun));
    for (i, a) in attempts.iter_mut().enumerate() {
        a.origin.in_process = i as u32;
    }
    let last_failed = attempts
        .last()
        .is_some_and(|a| a.state == AttemptState::Failed);
    if !c.it_prefix && is_suite_node(&junit_name) {
        for a in attempts {
            push_suite_node(
                suite,
                SuiteNode {
                    name: junit_name.clone(),
                    attempt: a,
                },
            );
        }
        g.prev_failed = false;
        return;
    }
    let v2 = c.status.is_some();
    // v1 (and our testgrid style) write one testcase per attempt.
    let continues =
        !v2 && g.prev_failed && suite.specs.last().is_some_and(|s| s.name == junit_name);
    g.prev_failed = last_failed;
    if continues {
        if let Some(spec) = suite.specs.last_mut() {
            let base = spec.attempts.len() as u32;
            spec.attempts.extend(attempts.into_iter().map(|mut a| {
                a.origin.in_process += base;
                a
            }));
        }
    } else {
        suite.specs.push(Spec {
            name: junit_name,
            junit_prefix: c.it_prefix.then_some(Cow::Borrowed(IT_PREFIX)),
            classname: c.classname.take(),
            location: None,
            attempts,
        });
    }
}

fn finish(g: Gathered, source: &str) -> SuiteResult {
    let runner = !g.saw_status
        && g.cases > 0
        && (g.suite_name.as_deref() == Some("kubetest2") || g.all_runner_class);
    let mut suite = g.suite;
    suite.name = g.suite_name.clone().unwrap_or_default();
    suite.duration = duration(g.time);
    for (n, v) in &g.properties {
        map_property(n, v, &mut suite);
    }
    let format = if runner {
        SourceFormat::RunnerSteps
    } else if g.saw_status {
        SourceFormat::GinkgoV2Junit
    } else if g.root_testsuites || g.saw_rerun_elements {
        SourceFormat::Junit
    } else {
        SourceFormat::GinkgoV1Junit
    };
    suite.sources.push(format);
    suite.dry_run = suite.dry_run || looks_like_dry_run(&suite);
    if suite.dry_run {
        mark_dry_run(&mut suite);
    }
    let prop = |k: &str| {
        g.properties
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let succeeded = prop("SuiteSucceeded").map(|v| v == "true");
    let reasons: Vec<String> = prop("SpecialSuiteFailureReason").into_iter().collect();
    super::apply_suite_verdict(&mut suite, succeeded, &reasons, source);
    suite
}

/// v1 dry runs write every selected spec as a passing testcase with `time="0"`.
fn looks_like_dry_run(suite: &SuiteResult) -> bool {
    let mut ran = 0usize;
    for a in suite.specs.iter().flat_map(|s| s.attempts.iter()) {
        match a.state {
            AttemptState::Passed if a.duration == Some(Duration::ZERO) && a.output.is_none() => {
                ran += 1
            }
            AttemptState::Passed | AttemptState::Failed | AttemptState::NotRun => return false,
            _ => {}
        }
    }
    ran > 0 && !suite.is_runner_steps()
}

/// Turns the "passes" of a dry run into dry-run listings (never passes).
pub(crate) fn mark_dry_run(suite: &mut SuiteResult) {
    suite.dry_run = true;
    for a in suite.specs.iter_mut().flat_map(|s| s.attempts.iter_mut()) {
        if a.state == AttemptState::Passed {
            a.state = AttemptState::Skipped;
            a.failure_kind = Some(DRY_RUN_KIND.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::model::SpecOutcome;

    fn read(xml: &str) -> SuiteResult {
        read_junit(xml.as_bytes(), "t.xml", &ReadOptions::default())
    }

    const V1: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
  <testsuite tests="3" failures="0" errors="0" time="12.5">
      <testcase name="a flaky spec" classname="Kubernetes e2e suite" time="1.5">
          <failure type="Failure">/x/test/e2e/a.go:12&#xA;boom happened&#xA;more</failure>
          <system-out>out &amp; about</system-out>
      </testcase>
      <testcase name="a flaky spec" classname="Kubernetes e2e suite" time="2"></testcase>
      <testcase name="same" classname="Kubernetes e2e suite" time="1"></testcase>
      <testcase name="same" classname="Kubernetes e2e suite" time="1"></testcase>
      <testcase name="broken" classname="Kubernetes e2e suite" time="3">
          <failure type="Timeout">/x/b.go:1&#xA;timed out</failure>
      </testcase>
      <testcase name="skipped one" classname="Kubernetes e2e suite" time="0"><skipped></skipped></testcase>
      <testcase name="BeforeSuite" classname="Kubernetes e2e suite" time="0"><failure type="Failure">x.go:1&#xA;setup died</failure></testcase>
  </testsuite>"#;

    #[test]
    fn v1_attempts_names_and_suite_nodes() {
        let s = read(V1);
        assert_eq!(s.sources, vec![SourceFormat::GinkgoV1Junit]);
        assert_eq!(s.specs.len(), 5);
        let f = &s.specs[0];
        assert_eq!(f.outcome(), SpecOutcome::Flaky);
        assert_eq!(f.attempts[1].origin.in_process, 1);
        assert_eq!(
            f.attempts[0].location.as_deref(),
            Some("/x/test/e2e/a.go:12")
        );
        assert_eq!(f.attempts[0].message(), "boom happened");
        assert_eq!(f.attempts[0].output.as_deref(), Some("out & about"));
        // same-named passing specs stay distinct
        assert_eq!(s.specs[1].name, "same");
        assert_eq!(s.specs[2].name, "same");
        assert_eq!(
            s.specs[3].attempts[0].failure_kind.as_deref(),
            Some("Timeout")
        );
        let c = s.counts();
        assert_eq!((c.passed, c.flaky, c.failed, c.skipped), (2, 1, 1, 1));
        assert!(s.suite_node_failed());
        assert!(s.incomplete.is_none());
        assert!(!s.dry_run);
    }

    const V2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
  <testsuites tests="5" disabled="1" errors="0" failures="1" time="10">
      <testsuite name="Kubernetes e2e suite" package="/usr/local/bin" tests="5" time="10" timestamp="2025-03-14T13:01:29">
          <properties>
              <property name="FocusStrings" value="\[Conformance\]"></property>
              <property name="FlakeAttempts" value="3"></property>
              <property name="SuiteSucceeded" value="false"></property>
          </properties>
          <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="1"></testcase>
          <testcase name="[It] [sig-a] works" classname="Kubernetes e2e suite" status="passed" time="2"></testcase>
          <testcase name="[It] [sig-a] fails" classname="Kubernetes e2e suite" status="timedout" time="3">
              <failure message="" type="timedout">[TIMEDOUT] A suite timeout occurred&#xA;In [It] at: k8s.io/e2e/a.go:10 @ 01/01/25</failure>
              <system-err>timeline</system-err>
          </testcase>
          <testcase name="[It] [sig-a] skip" classname="Kubernetes e2e suite" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>
          <testcase name="[It] [sig-a] pend" classname="Kubernetes e2e suite" status="pending" time="0"><skipped message="pending"></skipped></testcase>
          <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="failed" time="1"><failure message="x" type="failed">bad</failure></testcase>
          <testcase name="[ReportAfterSuite] Kubernetes e2e suite report" classname="Kubernetes e2e suite" status="passed" time="0"></testcase>
      </testsuite>
  </testsuites>"#;

    /// Regression: the shared classname follows every change, also past an attribute
    /// quick-xml cannot read.
    #[test]
    fn classname_cache_follows_every_change() {
        let xml = r#"<testsuite>
            <testcase name="t1" classname="A" status="passed" time="0.5"></testcase>
            <testcase name="t2" classname="B" odd=bare time="1"></testcase>
            <testcase name="t3" classname="A" status="passed" time="0"></testcase>
            <testcase name="t4" classname="A&amp;B" status="timedout" time="2e0"></testcase>
        </testsuite>"#;
        let s = read(xml);
        let got: Vec<(&str, Option<&str>, Option<Duration>)> = s
            .specs
            .iter()
            .map(|sp| {
                (
                    sp.name.as_str(),
                    sp.classname.as_deref(),
                    sp.attempts[0].duration,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("t1", Some("A"), Some(Duration::from_millis(500))),
                ("t2", Some("B"), Some(Duration::from_secs(1))),
                ("t3", Some("A"), Some(Duration::ZERO)),
                ("t4", Some("A&B"), Some(Duration::from_secs(2))),
            ]
        );
        assert_eq!(
            s.specs[3].attempts[0].failure_kind.as_deref(),
            Some("timedout")
        );
    }

    #[test]
    fn v2_statuses_prefix_and_dedup() {
        let s = read(V2);
        assert_eq!(s.sources, vec![SourceFormat::GinkgoV2Junit]);
        assert_eq!(s.name, "Kubernetes e2e suite");
        assert_eq!(s.specs.len(), 4);
        assert_eq!(s.specs[0].name, "[sig-a] works");
        assert_eq!(s.specs[0].junit_prefix.as_deref(), Some("[It] "));
        let fail = &s.specs[1].attempts[0];
        assert_eq!(fail.failure_kind.as_deref(), Some("timedout"));
        assert_eq!(fail.message(), "[TIMEDOUT] A suite timeout occurred");
        assert_eq!(fail.location.as_deref(), Some("k8s.io/e2e/a.go:10"));
        assert_eq!(s.specs[3].outcome(), SpecOutcome::Pending);
        assert_eq!(s.suite_nodes.len(), 2);
        assert!(s.suite_node_failed(), "a failing copy is kept");
        assert!(s
            .properties
            .contains(&("focus".into(), "\\[Conformance\\]".into())));
        assert!(s
            .properties
            .contains(&("flake_attempts".into(), "3".into())));
    }

    /// quick-xml's buffer boundaries (a 16-byte buffer crosses every one it can) change
    /// nothing: a file read through a `BufReader` reads like the same bytes in memory.
    #[test]
    fn buffer_boundaries_change_nothing() {
        for xml in [V1, V2, &V1[..V1.find("broken").unwrap_or(0)]] {
            let a = read(xml);
            let b = read_junit(
                std::io::BufReader::with_capacity(16, xml.as_bytes()),
                "t.xml",
                &ReadOptions::default(),
            );
            assert_eq!(a.specs, b.specs);
            assert_eq!(a.suite_nodes, b.suite_nodes);
            assert_eq!(a.incomplete.is_some(), b.incomplete.is_some());
        }
    }

    #[test]
    fn attribute_scanner() {
        let xml = r#"<testsuite><testcase  name = 'a &amp; b&#xA;c'
            classname="k" time="1.5" weird="x>y"/><testcase name="z" odd=noquote/>
            <testcase name="t&#9;a	b"/></testsuite>"#;
        let s = read(xml);
        assert_eq!(s.specs[0].name, "a & b\nc");
        assert_eq!(s.specs[0].classname.as_deref(), Some("k"));
        assert_eq!(
            s.specs[0].attempts[0].duration,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            s.specs[1].name, "z",
            "an odd attribute does not lose the name"
        );
        // literal blanks are normalised, a character reference is kept
        assert_eq!(s.specs[2].name, "t\ta b");
    }

    #[test]
    fn v2_special_failure_reason() {
        let s = read(
            r#"<testsuites><testsuite name="K"><properties>
            <property name="SuiteSucceeded" value="false"></property>
            <property name="SpecialSuiteFailureReason" value="Interrupted by User"></property>
            </properties>
            <testcase name="[It] a" status="passed" time="1"></testcase></testsuite></testsuites>"#,
        );
        assert!(s.incomplete.unwrap().reason.contains("Interrupted by User"));
    }

    #[test]
    fn truncated_is_incomplete_and_keeps_what_was_read() {
        let cut = &V1[..V1.find("broken").unwrap()];
        let s = read(cut);
        let r = s.incomplete.expect("incomplete");
        assert!(r.reason.starts_with("t.xml: "), "{}", r.reason);
        assert_eq!(s.specs.len(), 3);
        let s = read("");
        assert!(s.incomplete.is_some());
        let s = read("<testsuite><testcase name=\"a\"></testsuit>");
        assert!(s.incomplete.unwrap().reason.contains("malformed"));
    }

    #[test]
    fn v1_dry_run_is_not_passes() {
        let s = read(
            r#"<testsuite tests="2" failures="0" time="0.01">
            <testcase name="a" classname="K" time="0"></testcase>
            <testcase name="b" classname="K" time="0"><skipped></skipped></testcase></testsuite>"#,
        );
        assert!(s.dry_run);
        assert_eq!(s.counts().passed, 0);
        assert_eq!(s.dry_run_specs(), 1);
    }

    #[test]
    fn runner_steps() {
        let s = read(
            r#"<testsuite failures="1" tests="3" time="6">
            <testcase classname="e2e.go" name="Up" time="1"/>
            <testcase classname="e2e.go" name="Node Tests" time="5"><failure>error during go run</failure></testcase>
            <testcase classname="e2e.go" name="Timeout" time="3900"/></testsuite>"#,
        );
        assert!(s.is_runner_steps());
        let c = s.counts();
        assert_eq!((c.passed, c.failed), (2, 1));
        assert_eq!(s.specs[1].attempts[0].message(), "error during go run");
    }

    #[test]
    fn surefire_flaky_and_rerun_elements() {
        let s = read(
            r#"<testsuites name="r"><testsuite name="s" tests="3">
            <testcase name="f" time="2"><flakyFailure message="m1" type="failed" time="1"><stackTrace>trace</stackTrace><system-out>o</system-out></flakyFailure></testcase>
            <testcase name="x"><failure message="first" type="failed">first&#xA;more</failure><rerunFailure message="second" type="failed">second</rerunFailure></testcase>
            <testcase name="n"><error message="not run: stopped" type="not-run"/></testcase>
            </testsuite></testsuites>"#,
        );
        assert_eq!(s.specs[0].outcome(), SpecOutcome::Flaky);
        assert_eq!(s.specs[0].attempts[0].message(), "m1");
        assert_eq!(s.specs[0].attempts[0].output.as_deref(), Some("o"));
        assert_eq!(s.specs[1].outcome(), SpecOutcome::Failed);
        assert_eq!(s.specs[1].attempts.len(), 2);
        assert_eq!(s.specs[1].attempts[1].message(), "second");
        assert_eq!(s.specs[2].outcome(), SpecOutcome::NotRun);
    }
}
