#![no_main]
// The body is the reader's own differential module, included so that the fuzzer and
// `cargo test` (which replays this corpus through it) run the same code; it needs
// roxmltree, which the reader itself no longer depends on.
#[path = "../../crates/xmlsec/src/reader/differential.rs"]
mod differential;

libfuzzer_sys::fuzz_target!(|data: &[u8]| differential::fuzz(data));
