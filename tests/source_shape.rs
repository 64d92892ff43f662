//! Keeps the upgrade engine readable: no function in `src/upgrade` longer than 300 lines
//! (the engine's loop once grew to 1,200 lines with observation, decisions and requests
//! interleaved; it is now observe → decide → act). Counts braces from a line that declares a
//! `fn` to the line that closes it, which is exact for rustfmt-formatted code whose string
//! literals balance their braces.

use std::path::{Path, PathBuf};

const LIMIT: usize = 300;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable source tree") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `(name, first line, lines)` of every function in `text`.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or(t.strip_prefix("pub(super) "))
            .unwrap_or(t);
        let t = t.strip_prefix("pub ").unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (mut depth, mut opened) = (0i64, false);
        for (j, l) in lines.iter().enumerate().skip(i) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if opened && depth <= 0 {
                out.push((name.clone(), i + 1, j - i + 1));
                break;
            }
            if !opened && l.trim_end().ends_with(';') {
                break;
            }
        }
    }
    out
}

#[test]
fn no_function_in_the_upgrade_engine_is_longer_than_300_lines() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/upgrade"),
        &mut files,
    );
    assert!(files.len() > 10, "found the engine's sources");
    let mut long = Vec::new();
    let mut longest = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable");
        for (name, line, n) in functions(&text) {
            longest = longest.max(n);
            if n > LIMIT {
                long.push(format!("{}:{line} fn {name}: {n} lines", f.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {LIMIT} lines:\n{}",
        long.join("\n")
    );
    assert!(
        longest > 50,
        "the counter sees function bodies (longest {longest})"
    );
}

#[test]
fn the_counter_measures_a_function() {
    let text =
        "fn a() {\n    let s = \"{x}\";\n}\n\npub async fn b(\n    x: u8,\n) -> u8 {\n    x\n}\n";
    assert_eq!(
        functions(text),
        vec![("a".to_string(), 1, 3), ("b".to_string(), 5, 5)]
    );
}
