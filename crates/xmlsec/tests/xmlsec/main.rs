//! latchkey-xmlsec integration tests, in one binary that needs nothing but cargo. The
//! comparisons against external programs (lxml, xmlsec1, pyca/cryptography) are in
//! `tests/oracles` (`cargo test -p latchkey-xmlsec --test oracles`, after `./scripts/test`).
//! Each module opens with what it covers.

mod c14n_edges;
mod c14n_vectors;
mod dsig_keys;
mod dsig_rules;
mod dsig_vectors;
mod fuzz_corpus;
mod xmlenc;
