//! The two JUnit readers (in-memory scanner for files that fit in memory, quick-xml
//! streaming for bigger ones) must read every document the same way: same specs, same
//! suite nodes, same verdict on damage. Checked on every JUnit of the corpus and of
//! `fixtures/results/`, on truncations of them, and on seeded byte mutations.

use e2e_gate::results::model::SuiteResult;
use e2e_gate::results::read::junit::{read_junit, read_junit_bytes};
use e2e_gate::results::read::ReadOptions;
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/results");

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            xml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "xml") {
            out.push(p);
        }
    }
}

fn all_junit() -> Vec<PathBuf> {
    let mut files = Vec::new();
    xml_files(Path::new(FIXTURES), &mut files);
    if Path::new(CORPUS).is_dir() {
        xml_files(Path::new(CORPUS), &mut files);
    } else {
        eprintln!("corpus folder {CORPUS} is absent: checking the fixtures only");
    }
    files.sort();
    assert!(files.len() >= 5, "fixtures found: {files:?}");
    files
}

fn both(bytes: &[u8], opts: &ReadOptions) -> (SuiteResult, SuiteResult) {
    let memory = read_junit_bytes(bytes, "x.xml", opts);
    // A tiny buffer makes quick-xml cross every buffer boundary it can.
    let streamed = read_junit(std::io::BufReader::with_capacity(61, bytes), "x.xml", opts);
    (memory, streamed)
}

fn assert_same(bytes: &[u8], what: &str, opts: &ReadOptions) {
    let (m, s) = both(bytes, opts);
    assert_eq!(
        m.incomplete.is_some(),
        s.incomplete.is_some(),
        "{what}: damage verdict differs: in-memory {:?}, streaming {:?}",
        m.incomplete,
        s.incomplete
    );
    assert_eq!(m.specs.len(), s.specs.len(), "{what}: spec count");
    for (a, b) in m.specs.iter().zip(&s.specs) {
        assert_eq!(a, b, "{what}: spec differs");
    }
    assert_eq!(m.suite_nodes, s.suite_nodes, "{what}: suite nodes");
    assert_eq!(m.dry_run, s.dry_run, "{what}: dry run");
    assert_eq!(m.properties, s.properties, "{what}: properties");
    assert_eq!(m.name, s.name, "{what}: name");
    assert_eq!(m.sources, s.sources, "{what}: format");
}

#[test]
fn whole_files_read_the_same() {
    for f in all_junit() {
        let bytes = std::fs::read(&f).expect("readable");
        let what = f.display().to_string();
        assert_same(&bytes, &what, &ReadOptions::default());
        // Small limits exercise the truncation of outputs and failure texts.
        let small = ReadOptions {
            max_output_bytes: 100,
            max_failure_bytes: 50,
            missing_as_not_run: false,
        };
        assert_same(&bytes, &format!("{what} (small limits)"), &small);
    }
}

#[test]
fn truncated_files_read_the_same() {
    for f in all_junit() {
        let bytes = std::fs::read(&f).expect("readable");
        // About 150 cut points per file, more for small files.
        let step = (bytes.len() / 150).max(1);
        let mut cut = 0;
        while cut < bytes.len() {
            assert_same(
                &bytes[..cut],
                &format!("{} cut at {cut}", f.display()),
                &ReadOptions::default(),
            );
            cut += step + (cut % 7);
        }
    }
}

/// xorshift: a deterministic sequence without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn mutated_files_read_the_same() {
    let seed: u64 = std::env::var("E2E_GATE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd);
    eprintln!("mutation seed {seed} (E2E_GATE_TEST_SEED replays it)");
    let mut rng = seed | 1;
    let small: Vec<PathBuf> = all_junit()
        .into_iter()
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() < 200_000))
        .collect();
    const SPECIAL: &[u8] = b"<>\"'/&;=![]-? \n\rx";
    for f in small {
        let bytes = std::fs::read(&f).expect("readable");
        if bytes.is_empty() {
            continue;
        }
        for _ in 0..60 {
            let mut m = bytes.clone();
            let at = (next(&mut rng) % m.len() as u64) as usize;
            let b = SPECIAL[(next(&mut rng) % SPECIAL.len() as u64) as usize];
            match next(&mut rng) % 3 {
                0 => m[at] = b,
                1 => m.insert(at, b),
                _ => {
                    m.remove(at);
                }
            }
            assert_same(
                &m,
                &format!("{} with byte {b:?} at {at}", f.display()),
                &ReadOptions::default(),
            );
        }
    }
}
