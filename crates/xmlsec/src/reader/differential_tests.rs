//! The differential check ([`super::differential`]) over every XML file in the
//! repository and over generated documents, and the reader's deliberate refusals.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::Limits;
use super::differential::{check, fuzz_limits, old_reader};

/// The limits the readers are compared under: the defaults, the differential fuzz
/// target's, and tiny ones so that every limit is hit on ordinary inputs.
fn limit_sets() -> [Limits; 3] {
    [
        Limits::default(),
        fuzz_limits(),
        Limits {
            max_bytes: 64 * 1024,
            max_depth: 4,
            max_nodes: 40,
            max_attributes: 3,
            max_name_len: 8,
            max_text_len: 24,
        },
    ]
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every test vector of every crate (`crates/*/tests/data`, XML files) and every input
/// of every fuzz corpus.
fn repository_inputs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let mut data = Vec::new();
        files_under(&krate.path().join("tests/data"), &mut data);
        files.extend(data.into_iter().filter(|p| {
            p.extension()
                .is_some_and(|e| e == "xml" || e == "c14n" || e == "xsd")
        }));
    }
    files_under(&root.join("fuzz/corpus"), &mut files);
    files.sort();
    files
}

#[test]
fn every_repository_input_reads_as_roxmltree_reads_it() {
    let files = repository_inputs();
    assert!(files.len() > 1000, "only {} inputs found", files.len());
    let mut accepted = 0;
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        for limits in limit_sets() {
            match check(&data, &limits) {
                Ok(true) => accepted += 1,
                Ok(false) => {}
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The comparison must have had trees to compare, not only refusals (the fuzz
    // corpora are mostly malformed, and the tiny limits refuse most of the rest).
    assert!(accepted > 600, "only {accepted} accepted");
}

// ---- generated documents ----

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(items)
}

// Each vocabulary comes in a well-formed part and a part that breaks a rule (or comes
// close to one); the generator takes the first four times as often.
const NAMES: &[&str] = &[
    "a", "b", "p:a", "p:b", "q:a", "x-y.z", "_", "é", "A\u{300}", "ab",
];
const BAD_NAMES: &[&str] = &["xml:a", "xmlns:a", "a:", ":a", "1a", "p:q:r", "r:a", "-"];
const ATTR_NAMES: &[&str] = &["x", "y", "p:x", "q:y", "xml:lang", "xmlns", "xmlns:p", "ID"];
const BAD_ATTR_NAMES: &[&str] = &[
    "xmlns:xml",
    "xmlns:xmlns",
    "r:x",
    "p:xmlns",
    "q:x",
    "xmlns:q",
    "x",
    "1",
];
const VALUES: &[&str] = &[
    "v",
    "urn:p",
    "",
    "&amp;",
    "&lt;",
    "&#10;",
    "&#xD;",
    "&#13;",
    "\r\n",
    "\n",
    "\t",
    "'",
    "\"",
    "é",
    "]]>",
    "&#x20;",
    "&#9;",
    "&#60;",
    " ",
    "&quot;&apos;&gt;",
];
const BAD_VALUES: &[&str] = &[
    "\r",
    "<",
    "&",
    "&bad;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "\u{FFFE}",
    "\u{1}",
    "http://www.w3.org/XML/1998/namespace",
    "http://www.w3.org/2000/xmlns/",
    "&#x;",
    "&#X41;",
];
const TEXTS: &[&str] = &[
    "t",
    " ",
    "\n",
    "\r\n",
    "&amp;",
    "&#13;",
    "&#xD;\n",
    "&gt;",
    "]]",
    ">",
    "&#65;",
    "&#x1F600;",
    "é",
    "\t",
    "<![CDATA[c]]>",
    "<![CDATA[\r\n]]>",
    "<![CDATA[]]>",
    "<![CDATA[<&]]>",
    "<!-- c -->",
    "<!---->",
    "<!-- - -->",
    "<!--\r-->",
    "<?pi v?>",
    "<?pi?>",
    "<?p:i  v ?>",
    "<?pi \r\n?>",
];
const BAD_TEXTS: &[&str] = &[
    "\r",
    "]]>",
    "&",
    "\u{1}",
    "<![CDATA[\r]]>",
    "<!--a--b-->",
    "<!-- --->",
    "<?xml x?>",
    "<?XmL?>",
    "<!DOCTYPE a>",
    "<!doctype",
    "<!-- <!DOCTYPE -->",
    "</a>",
    "<",
    "&#xFFFE;",
];
const PROLOGS: &[&str] = &[
    "",
    "<?xml version=\"1.0\"?>",
    "<?xml version='1.0' encoding='UTF-8'?>\n",
    "<?xml version=\"1.0\" standalone=\"yes\"?>",
    "<?xml version=\"1.1\"  ?>",
    "<!-- c -->\n",
    " \n",
    "<?xml  version='1.0'?>",
    "<?pi x?>",
];
const BAD_PROLOGS: &[&str] = &[
    "\u{FEFF}",
    "<?xml version='x'?>",
    "<?xml?>",
    "<?xml version=\"1.0\"encoding=\"UTF-8\"?>",
    "<?xml\tversion='1.0'?>",
    "x",
    "<!DOCTYPE a>",
];
const EPILOGS: &[&str] = &["", " ", "<!-- e -->", "<?pi?>", "\r\n"];
const BAD_EPILOGS: &[&str] = &["x", "<a/>", "\r", "<!-- - - -->"];

fn pick2(
    good: &'static [&'static str],
    bad: &'static [&'static str],
) -> BoxedStrategy<&'static str> {
    prop_oneof![4 => pick(good), 1 => pick(bad)].boxed()
}

fn pieces(
    good: &'static [&'static str],
    bad: &'static [&'static str],
    max: usize,
) -> impl Strategy<Value = String> {
    prop::collection::vec(pick2(good, bad), 0..max).prop_map(|v| v.concat())
}

fn attributes() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            pick2(ATTR_NAMES, BAD_ATTR_NAMES),
            pick(&["'", "\""]),
            pieces(VALUES, BAD_VALUES, 3),
            pick(&[" ", " ", " ", "\n", "\t", " = ", ""]),
        ),
        0..3,
    )
    .prop_map(|attrs| {
        attrs
            .into_iter()
            .map(|(name, q, value, sep)| {
                let (lead, eq) = if sep == " = " {
                    (" ", " = ")
                } else {
                    (sep, "=")
                };
                format!("{lead}{name}{eq}{q}{value}{q}")
            })
            .collect()
    })
}

fn element() -> impl Strategy<Value = String> {
    let leaf = (
        pick2(NAMES, BAD_NAMES),
        attributes(),
        pick(&["/>", " />", ">"]),
    )
        .prop_map(|(n, a, end)| {
            if end == ">" {
                format!("<{n}{a}></{n}>")
            } else {
                format!("<{n}{a}{end}")
            }
        });
    leaf.prop_recursive(4, 32, 4, |inner| {
        (
            pick2(NAMES, BAD_NAMES),
            attributes(),
            prop::collection::vec(prop_oneof![inner, pieces(TEXTS, BAD_TEXTS, 3)], 0..4),
            pick(&["", "", " ", "\n"]),
        )
            .prop_map(|(n, a, kids, space)| format!("<{n}{a}>{}</{n}{space}>", kids.concat()))
    })
}

/// The document element, under a wrapper that declares the prefixes `p` and `q` (to one
/// URI, so that `p:x` and `q:x` are the same attribute) three times out of four.
fn root() -> impl Strategy<Value = String> {
    (element(), any::<u8>()).prop_map(|(e, coin)| match coin % 4 {
        0 => e,
        1 => format!("<r xmlns:p='urn:p' xmlns:q='urn:p'>{e}</r>"),
        2 => format!("<p:r xmlns:p='urn:p' xmlns='urn:d' xmlns:q=\"urn:q\">{e}</p:r>"),
        _ => format!("<r xmlns:p='urn:p' xmlns:q='urn:q'>{e}<q:s xmlns:p='urn:o'>{e}</q:s></r>"),
    })
}

/// A document, well-formed more often than not, then possibly one mutation: a piece of
/// markup or a character inserted at some character boundary.
fn document() -> impl Strategy<Value = String> {
    (
        pick2(PROLOGS, BAD_PROLOGS),
        root(),
        pick2(EPILOGS, BAD_EPILOGS),
        prop::option::weighted(0.2, (any::<prop::sample::Index>(), pick2(TEXTS, BAD_TEXTS))),
    )
        .prop_map(|(prolog, root, epilog, mutation)| {
            let mut doc = format!("{prolog}{root}{epilog}");
            if let Some((at, piece)) = mutation {
                let bounds: Vec<usize> = doc.char_indices().map(|(i, _)| i).collect();
                let at = bounds
                    .get(at.index(bounds.len().max(1)))
                    .copied()
                    .unwrap_or(0);
                doc.insert_str(at, piece);
            }
            doc
        })
}

#[test]
fn generated_documents_read_as_roxmltree_reads_them() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = document();
    let cases = 20_000;
    let mut accepted = 0;
    for _ in 0..cases {
        let doc = strategy.new_tree(&mut runner).unwrap().current();
        for limits in limit_sets() {
            match check(doc.as_bytes(), &limits) {
                Ok(true) => accepted += 1,
                Ok(false) => {}
                Err(e) => panic!("{doc:?}: {e}"),
            }
        }
    }
    // Mostly malformed inputs would test only the refusals.
    assert!(
        accepted > cases / 4,
        "only {accepted} of {} accepted",
        cases * 3
    );
}

proptest! {
    #![proptest_config(Config { cases: 2_000, ..Config::default() })]

    /// The same generator under proptest, so a disagreement shrinks to a small input.
    #[test]
    fn generated_documents_shrink_to_a_disagreement(doc in document()) {
        for limits in limit_sets() {
            prop_assert!(check(doc.as_bytes(), &limits).is_ok(), "{:?}", check(doc.as_bytes(), &limits));
        }
    }
}

// ---- where we are stricter than roxmltree, on purpose ----

fn old_accepts(text: &str) -> bool {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    // The old reader removed one byte-order mark before roxmltree saw the text.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    roxmltree::Document::parse_with_options(text, options).is_ok()
}

/// Each refusal listed in the reader's documentation: roxmltree (and the old reader's
/// checks, which look at none of these) accepts the input, we do not.
#[test]
fn deliberate_refusals_are_refusals_roxmltree_would_not_make() {
    let cases = [
        ("lone CR in CDATA after text", "<a>x<![CDATA[y\rz]]></a>"),
        ("surrogate character reference", "<a>&#xD800;</a>"),
        ("character reference above U+10FFFF", "<a b='&#x110000;'/>"),
        (
            "overlong character reference",
            "<a>&#0000000000000000000000000000065;</a>",
        ),
        ("PI target run into its value", "<a><?a\"b?></a>"),
        (
            "XML declaration with a bad version",
            "<?xml version='abc'?><a/>",
        ),
        (
            "XML declaration with a bad encoding",
            "<?xml version='1.0' encoding='-'?><a/>",
        ),
        (
            "XML declaration with a bad standalone",
            "<?xml version='1.0' standalone='maybe'?><a/>",
        ),
        (
            "default namespace declared twice",
            "<a xmlns='urn:x' xmlns='urn:y'/>",
        ),
        (
            "xmlns:xml given twice",
            "<a xmlns:xml='http://www.w3.org/XML/1998/namespace' xmlns:xml='http://www.w3.org/XML/1998/namespace'/>",
        ),
        ("xmlns prefix declared", "<a xmlns:xmlns='urn:x'/>"),
        (
            "prefixed attribute named xmlns",
            "<a xmlns:p='urn:p' p:xmlns='urn:x'/>",
        ),
        ("second byte-order mark", "\u{FEFF}\u{FEFF}<a/>"),
        ("attribute name starting with a colon", "<a :b='1'/>"),
        ("element name starting with a colon", "<:a/>"),
    ];
    for (what, text) in cases {
        assert!(old_accepts(text), "{what}: roxmltree refuses {text:?} too");
        let ours = super::parse(text, &Limits::default());
        assert!(ours.is_err(), "{what}: we accept {text:?}");
    }
}

/// The attribute limit counts every namespace declaration written on the element; the
/// old count (in-scope namespaces minus the parent's) missed a redeclared prefix.
#[test]
fn attribute_limit_counts_redeclarations_the_old_count_missed() {
    let limits = Limits {
        max_attributes: 1,
        ..Limits::default()
    };
    let text = "<r xmlns:p='urn:a'><a x='1' xmlns:p='urn:b'/></r>";
    assert!(old_reader(text, &limits).is_ok());
    assert!(matches!(
        super::parse(text, &limits),
        Err(crate::Error::Read(super::ReadError::TooManyAttributes {
            limit: 1,
            ..
        }))
    ));
}
