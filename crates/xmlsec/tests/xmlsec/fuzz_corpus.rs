#![allow(clippy::unwrap_used, clippy::panic)]
//! Replays every fuzz target's checked-in corpus (`fuzz/corpus/<target>/`) through the same
//! function the fuzzer runs, so a crash once found stays fixed.

use std::path::PathBuf;

use latchkey_xmlsec::fuzzing;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "corpus {} is empty", dir.display());
    for path in &entries {
        let data = std::fs::read(path).unwrap();
        run(&data);
    }
    eprintln!("{target}: replayed {} inputs", entries.len());
}

#[test]
fn reader_corpus() {
    replay("reader", fuzzing::reader);
}

#[test]
fn c14n_corpus() {
    replay("c14n", fuzzing::c14n);
}

#[test]
fn verify_corpus() {
    replay("verify", fuzzing::verify);
}
