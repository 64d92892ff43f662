//! Pure: live progress from a ginkgo output stream (v1 and v2, succinct or verbose).
//!
//! ginkgo prints `•` per finished spec and `S` per skipped one without a newline, and a header
//! line per failure (`• Failure [..]`, `• [FAILED] [..]`) or flaky pass (`↺ [FLAKEY TEST …`).
//! Denoter runs are counted as bytes arrive, so progress does not wait for a newline; a line that
//! turns out to be a header is reconciled when it ends.

use crate::results::read::log::strip_ansi;

/// Counts seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Specs selected (`Will run N of M specs`), when printed.
    pub(crate) selected: Option<usize>,
    /// Specs finished (passed, failed or flaky; v1 prints one per attempt).
    pub(crate) done: usize,
    /// Failure headers seen.
    pub(crate) failed: usize,
    /// Flaky passes seen (v2).
    pub(crate) flaky: usize,
    /// Runtime skips seen.
    pub(crate) skipped: usize,
}

/// Feeds bytes, yields progress.
#[derive(Debug, Default)]
pub(crate) struct ProgressParser {
    line: String,
    pending_utf8: Vec<u8>,
    /// Counted (done, skipped) on the current unfinished line.
    counted: (usize, usize),
    progress: Progress,
    last_line: String,
}

fn is_denoter_run(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().all(|c| matches!(c, '•' | 'S' | 'P' | ' ' | '\r'))
}

impl ProgressParser {
    pub(crate) fn progress(&self) -> Progress {
        self.progress
    }

    /// The last non-empty output, including an unfinished line (shown when a spec runs long).
    pub(crate) fn last_line(&self) -> String {
        let partial = strip_ansi(&self.line);
        let partial = partial.trim();
        if partial.is_empty() {
            self.last_line.clone()
        } else {
            partial.chars().take(200).collect()
        }
    }

    /// Feeds a chunk; returns how many specs finished in it.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> usize {
        let before = self.progress.done;
        self.pending_utf8.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending_utf8) {
            // An incomplete multi-byte character at the end: keep it for the next chunk.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            _ => self.pending_utf8.len(),
        };
        let text = String::from_utf8_lossy(&self.pending_utf8[..valid]).into_owned();
        self.pending_utf8.drain(..valid);
        for c in text.chars() {
            if c == '\n' {
                self.end_line();
            } else {
                self.line.push(c);
            }
        }
        self.count_partial();
        self.progress.done.saturating_sub(before)
    }

    fn count_partial(&mut self) {
        let clean = strip_ansi(&self.line);
        if is_denoter_run(&clean) {
            let done = clean.chars().filter(|&c| c == '•').count();
            let skipped = clean.chars().filter(|&c| c == 'S').count();
            self.progress.done += done.saturating_sub(self.counted.0);
            self.progress.skipped += skipped.saturating_sub(self.counted.1);
            self.counted = (done, skipped);
        }
    }

    fn end_line(&mut self) {
        self.count_partial();
        let clean = strip_ansi(&self.line).into_owned();
        let trimmed = clean.trim();
        if !is_denoter_run(&clean) {
            // Undo what an early look at this line counted as plain passes.
            self.progress.done -= self.counted.0.min(self.progress.done);
            self.progress.skipped -= self.counted.1.min(self.progress.skipped);
            self.classify(trimmed);
        }
        if !trimmed.is_empty() {
            self.last_line = trimmed.chars().take(200).collect();
        }
        self.line.clear();
        self.counted = (0, 0);
    }

    fn classify(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("Will run ") {
            if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                self.progress.selected = Some(n);
            }
        } else if [
            "• Failure",
            "• [FAILED]",
            "• [TIMEDOUT]",
            "• [PANICKED]",
            "• [INTERRUPTED]",
            "• [ABORTED]",
        ]
        .iter()
        .any(|p| line.starts_with(p))
        {
            self.progress.done += 1;
            self.progress.failed += 1;
        } else if line.starts_with("↺ [FLAKEY TEST") {
            self.progress.done += 1;
            self.progress.flaky += 1;
        } else if line.starts_with("• [SLOW TEST") || line == "•" || line.starts_with("• [PASSED]")
        {
            self.progress.done += 1;
        } else if line.starts_with("S [SKIPPING]") {
            self.progress.skipped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_dots_before_newline() {
        let mut p = ProgressParser::default();
        p.feed(b"Will run 5 of 9 specs\n");
        assert_eq!(p.progress().selected, Some(5));
        assert_eq!(p.feed("••".as_bytes()), 2);
        assert_eq!(p.feed("S•".as_bytes()), 1);
        assert_eq!(p.progress().skipped, 1);
        p.feed(b"\n");
        assert_eq!(p.progress().done, 3);
    }

    #[test]
    fn failure_header_is_reconciled_not_double_counted() {
        let mut p = ProgressParser::default();
        p.feed("------------------------------\n•".as_bytes());
        assert_eq!(p.progress().done, 1);
        p.feed(" Failure [0.538 seconds]\n".as_bytes());
        assert_eq!(
            p.progress(),
            Progress {
                selected: None,
                done: 1,
                failed: 1,
                flaky: 0,
                skipped: 0
            }
        );
    }

    #[test]
    fn v2_headers_and_ansi() {
        let mut p = ProgressParser::default();
        p.feed("\u{1b}[38;5;9m• [FAILED] [12.3 seconds]\u{1b}[0m\n".as_bytes());
        p.feed("↺ [FLAKEY TEST - TOOK 2 ATTEMPTS TO PASS] [13.5 seconds]\nspec name\n".as_bytes());
        p.feed("• [SLOW TEST:28.040 seconds]\n".as_bytes());
        let pr = p.progress();
        assert_eq!((pr.done, pr.failed, pr.flaky), (3, 1, 1));
        assert_eq!(p.last_line(), "• [SLOW TEST:28.040 seconds]");
        p.feed("••S".as_bytes());
        assert_eq!(
            p.last_line(),
            "••S",
            "an unfinished line is the latest output"
        );
    }

    #[test]
    fn split_utf8_bytes() {
        let mut p = ProgressParser::default();
        let dot = "•".as_bytes();
        p.feed(&dot[..1]);
        p.feed(&dot[1..]);
        assert_eq!(p.progress().done, 1);
    }

    #[test]
    fn text_with_s_is_not_a_skip() {
        let mut p = ProgressParser::default();
        p.feed(b"STEP: Creating a pod\nSS\n");
        assert_eq!(p.progress().skipped, 2);
        assert_eq!(p.progress().done, 0);
    }
}
