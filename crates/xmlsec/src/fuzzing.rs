//! Bodies of the fuzz targets in `fuzz/`, kept here so that `cargo test` can replay the
//! checked-in corpora through exactly the code the fuzzers ran.
//!
//! Each function must return normally for every input; a panic here is a finding.
#![doc(hidden)]

use crate::c14n::{self, Algorithm, Options};
use crate::reader::{self, Limits};

/// Elements canonicalized per input, so a large input cannot make one run quadratic.
const MAX_APEXES: usize = 8;

/// Reads arbitrary bytes through the hardened reader.
pub fn reader(data: &[u8]) {
    let _ = reader::parse_bytes(data, &small_limits());
}

/// Canonicalizes the document and a few of its elements with every algorithm, and checks
/// that canonical output is a fixed point: canonicalizing it again changes nothing.
pub fn c14n(data: &[u8]) {
    let Ok(doc) = reader::parse_bytes(data, &small_limits()) else {
        return;
    };
    let prefixes: Vec<&str> = doc
        .root_element()
        .namespaces()
        .filter_map(|ns| ns.name())
        .take(2)
        .chain(std::iter::once("#default"))
        .collect();
    let algorithms = [
        Algorithm::Exclusive {
            with_comments: false,
        },
        Algorithm::Exclusive {
            with_comments: true,
        },
        Algorithm::Inclusive {
            with_comments: false,
        },
        Algorithm::Inclusive {
            with_comments: true,
        },
    ];
    let apexes = std::iter::once(doc.tree().root())
        .chain(doc.tree().descendants().filter(|n| n.is_element()))
        .take(MAX_APEXES);
    for apex in apexes {
        let exclude = apex.first_element_child();
        for algorithm in algorithms {
            for list in [&[][..], &prefixes[..]] {
                let options = Options {
                    inclusive_prefixes: list,
                };
                let mut out = Vec::new();
                let _ = c14n::canonicalize(apex, algorithm, &options, exclude, &mut out);
            }
        }
    }
    let whole = doc.tree().root();
    let mut first = Vec::new();
    if c14n::canonicalize(whole, Algorithm::EXCLUSIVE, &Options::default(), None, &mut first)
        .is_ok()
    {
        let Ok(again) = reader::parse_bytes(&first, &small_limits()) else {
            panic_finding("canonical output does not parse again");
            return;
        };
        let mut second = Vec::new();
        let ok = c14n::canonicalize(
            again.tree().root(),
            Algorithm::EXCLUSIVE,
            &Options::default(),
            None,
            &mut second,
        );
        if ok.is_err() || first != second {
            panic_finding("canonical output is not a fixed point");
        }
    }
}

/// Reports a broken invariant as a crash, which is what the fuzzer looks for.
#[allow(clippy::panic)]
fn panic_finding(what: &str) {
    panic!("fuzz finding: {what}");
}

fn small_limits() -> Limits {
    Limits {
        max_bytes: 256 * 1024,
        max_nodes: 20_000,
        ..Limits::default()
    }
}
