//! Differential test of C14N against libxml2 (through Python lxml): mostly exclusive,
//! some inclusive C14N 1.0.
//!
//! A seeded generator writes thousands of small, namespace-heavy documents: default and
//! prefixed namespaces declared, redeclared and undeclared at several depths, two
//! prefixes for one URI, `xml:*` attributes, every character C14N escapes (literal, as
//! character references, in CDATA), comments and PIs inside and around the document
//! element. Each is canonicalized by us and, in one batched Python process, by lxml,
//! on the whole document or a random subtree, with or without comments, with random
//! InclusiveNamespaces prefix lists and sometimes an excluded element. The bytes must
//! be equal.
//!
//! Environment: `LATCHKEY_C14N_SEED` (default below), `LATCHKEY_C14N_CASES` (default
//! 1,000), `LATCHKEY_PYTHON` (default `python3`; must import lxml, or the test fails).

// Helpers outside `#[test]` functions: a failed step there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use latchkey_xmlsec::c14n::{self, Algorithm, Options};
use latchkey_xmlsec::reader::{self, Limits};

const DEFAULT_SEED: u64 = 0x1a7c_4b3e_c14e_2026;
const DEFAULT_CASES: usize = 1_000;

#[test]
fn c14n_matches_lxml() {
    let seed = env_number("LATCHKEY_C14N_SEED").unwrap_or(DEFAULT_SEED);
    let count = env_number("LATCHKEY_C14N_CASES").map_or(DEFAULT_CASES, |n| n as usize);
    eprintln!("c14n differential test: LATCHKEY_C14N_SEED={seed} LATCHKEY_C14N_CASES={count}");

    let mut rng = Rng(seed);
    let cases: Vec<Case> = (0..count).map(|_| Case::generate(&mut rng)).collect();
    let oracle = run_oracle(&cases);
    assert_eq!(
        oracle.len(),
        cases.len(),
        "oracle answered {} of {} cases",
        oracle.len(),
        cases.len()
    );

    let mut failures = Vec::new();
    for (i, (case, theirs)) in cases.iter().zip(&oracle).enumerate() {
        let ours = case.canonicalize();
        if ours != *theirs {
            failures.push((i, case, ours, theirs));
        }
    }
    for (i, case, ours, theirs) in failures.iter().take(5) {
        eprintln!(
            "--- mismatch: case {i} of seed {seed}\napex element: {} exclude element: {} comments: {} inclusive: {} prefixes: {:?}\ndocument: {:?}\n    ours: {}\n    lxml: {}",
            case.apex,
            case.exclude,
            case.comments,
            case.inclusive,
            case.prefixes,
            case.doc,
            show(ours),
            show(theirs),
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases differ from lxml (seed {seed}); the first are printed above",
        failures.len()
    );
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={value:?}: {e}")))
}

fn show(result: &Result<Vec<u8>, String>) -> String {
    match result {
        Ok(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
        Err(e) => format!("error: {e}"),
    }
}

// ---------------------------------------------------------------------------------------
// The oracle: one Python process for the whole batch.

fn run_oracle(cases: &[Case]) -> Vec<Result<Vec<u8>, String>> {
    let python = latchkey_testkit::oracle::python(&["lxml"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/lxml_c14n.py");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.json");
    let output = dir.path().join("results.txt");
    let mut json = String::from("[");
    for (i, case) in cases.iter().enumerate() {
        if i > 0 {
            json.push_str(",\n");
        }
        case.write_json(&mut json);
    }
    json.push(']');
    std::fs::write(&input, json).unwrap();

    let run = Command::new(&python)
        .arg(&script)
        .arg(&input)
        .arg(&output)
        .output();
    let run = run.unwrap_or_else(|e| {
        panic!("cannot run the lxml oracle with {python:?} (set LATCHKEY_PYTHON to a Python with lxml): {e}")
    });
    assert!(
        run.status.success(),
        "the lxml oracle failed ({python:?}, status {}; set LATCHKEY_PYTHON to a Python with lxml, e.g. target/oracle-venv/bin/python):\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let results = std::fs::read_to_string(&output).unwrap();
    results
        .lines()
        .map(|line| match line.split_once(' ') {
            Some(("OK", hex)) => Ok(decode_hex(hex)),
            Some(("ERR", reason)) => Err(reason.to_owned()),
            _ if line == "OK" => Ok(Vec::new()),
            _ => panic!("bad oracle line {line:?}"),
        })
        .collect()
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// One test case and our side of it.

#[derive(Debug)]
struct Case {
    doc: String,
    /// Index of the apex among the elements in document order; -1 for the whole document.
    apex: i64,
    /// Index of the excluded element; -1 for none.
    exclude: i64,
    comments: bool,
    /// Inclusive C14N 1.0 instead of exclusive (then `prefixes` is empty).
    inclusive: bool,
    prefixes: Vec<&'static str>,
}

impl Case {
    fn generate(rng: &mut Rng) -> Case {
        let doc = Generator::new(rng).document();
        let parsed = reader::parse(&doc, &Limits::default())
            .unwrap_or_else(|e| panic!("generated document does not parse ({e}): {doc:?}"));
        let elements = parsed
            .tree()
            .descendants()
            .filter(|n| n.is_element())
            .count();
        let (apex, first, end) = if rng.chance(30) {
            (-1, 1, elements)
        } else {
            let apex = rng.below(elements);
            let node = parsed
                .tree()
                .descendants()
                .filter(|n| n.is_element())
                .nth(apex)
                .unwrap();
            let size = node.descendants().filter(|n| n.is_element()).count();
            (apex as i64, apex + 1, apex + size)
        };
        // lxml cannot remove the document element, so exclusion starts below the apex.
        let exclude = if end > first && rng.chance(30) {
            (first + rng.below(end - first)) as i64
        } else {
            -1
        };
        // Inclusive C14N 1.0 only for whole documents: lxml canonicalizes a subtree by
        // copying its apex into a fake document, and for inclusive C14N that copy makes
        // libxml2 emit spurious `xmlns=""` (the copied declarations are new pointers
        // that its namespace search no longer recognizes) and drop inherited `xml:*`
        // attributes. The conformance vectors cover inclusive subtrees.
        let inclusive = apex < 0 && rng.chance(30);
        let mut prefixes = Vec::new();
        if !inclusive && rng.chance(40) {
            if rng.chance(50) {
                prefixes.push("#default");
            }
            for _ in 0..rng.below(3) {
                let p = rng.pick(&["a", "b", "p", "q", "ns1", "#default", "zz", "xml"]);
                if !prefixes.contains(&p) {
                    prefixes.push(p);
                }
            }
        }
        Case {
            doc,
            apex,
            exclude,
            comments: rng.chance(50),
            inclusive,
            prefixes,
        }
    }

    fn canonicalize(&self) -> Result<Vec<u8>, String> {
        let doc = reader::parse(&self.doc, &Limits::default()).map_err(|e| e.to_string())?;
        let element = |i: i64| {
            doc.tree()
                .descendants()
                .filter(|n| n.is_element())
                .nth(usize::try_from(i).unwrap())
                .unwrap()
        };
        let apex = if self.apex < 0 {
            doc.tree().root()
        } else {
            element(self.apex)
        };
        let exclude = (self.exclude >= 0).then(|| element(self.exclude));
        let options = Options {
            inclusive_prefixes: &self.prefixes,
        };
        let algorithm = if self.inclusive {
            Algorithm::Inclusive {
                with_comments: self.comments,
            }
        } else {
            Algorithm::Exclusive {
                with_comments: self.comments,
            }
        };
        c14n::canonicalize_to_vec(apex, algorithm, &options, exclude).map_err(|e| e.to_string())
    }

    fn write_json(&self, out: &mut String) {
        out.push_str("{\"doc\":");
        json_string(out, &self.doc);
        write!(
            out,
            ",\"apex\":{},\"exclude\":{},\"comments\":{},\"inclusive\":{},\"prefixes\":[",
            self.apex, self.exclude, self.comments, self.inclusive
        )
        .unwrap();
        for (i, p) in self.prefixes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(out, p);
        }
        out.push_str("]}");
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------
// A small seeded RNG (SplitMix64): the same seed gives the same documents everywhere.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------
// The document generator.

const PREFIXES: &[&str] = &["a", "b", "p", "q", "ns1"];
/// Two prefixes often share `urn:dup`. No URI holds `&`: libxml2 writes it unescaped in
/// namespace declarations (not even well-formed), where C14N 1.0 §2.3 and we write
/// `&amp;`; a unit test in `c14n_edges.rs` pins our side.
const URIS: &[&str] = &[
    "urn:a",
    "urn:b",
    "urn:dup",
    "urn:dup",
    "http://example.com/c",
    "http://example.com/?q=1;r=2#f",
    "urn:x:y",
];
const LOCALS: &[&str] = &["e", "f", "Signature", "g-h", "i.j"];
const ATTR_LOCALS: &[&str] = &["id", "a", "b", "Z", "zz", "ID"];
const XML_ATTRS: &[&str] = &["lang", "space", "base", "foo"];
const SPACES: &[&str] = &[" ", " ", " ", "\n", "\t", "  ", "\r\n"];
const ATTR_PIECES: &[&str] = &[
    "v",
    "Z",
    "0",
    " ",
    "&amp;",
    "&lt;",
    ">",
    "&gt;",
    "&quot;",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "&#9;",
    "&#xA;",
    "&#xD;",
    "&#13;",
    "&#x20;",
    "\u{e9}",
    "\u{20ac}",
    "\u{1f600}",
    "&apos;",
    "&#x3C;",
];
/// No lone CR in text: roxmltree 0.21 (the reader's parser until 2026-12, still its
/// differential reference) mishandles a lone CR next to a reference (it keeps
/// `\r` where XML line-end handling gives `\n`), so the reader refuses lone CRs in text
/// (`ReadError::LoneCarriageReturn`). Lone CRs still appear in attribute values, comments
/// and PIs.
const TEXT_PIECES: &[&str] = &[
    "x",
    " ",
    "\n",
    "\t",
    "\r\n",
    "\r\n\r\n",
    "&amp;",
    "&lt;",
    ">",
    "&gt;",
    "\"",
    "'",
    "&#xD;",
    "&#13;",
    "&#9;",
    "\u{e9}",
    "\u{1f600}",
    "<![CDATA[ a<b&c>\"' ]]>",
    "<![CDATA[\r\n]]>",
    "<![CDATA[]]>",
    "]]&gt;",
    "&quot;",
    "&apos;",
    "&#x26;",
];
const COMMENT_PIECES: &[&str] = &["c", " ", "-", "\n", "\r\n", "\r", "<", "&", ">", "\u{e9}"];
const PI_PIECES: &[&str] = &["d", " ", "\n", "\r\n", "?", ">", "&", "<", "\u{e9}"];

struct Generator<'r> {
    rng: &'r mut Rng,
    out: String,
}

/// In-scope namespaces while generating: `(prefix, uri)`, `""` for the default.
type Scope = Vec<(&'static str, &'static str)>;

impl<'r> Generator<'r> {
    fn new(rng: &'r mut Rng) -> Self {
        Generator {
            rng,
            out: String::new(),
        }
    }

    fn document(mut self) -> String {
        if self.rng.chance(30) {
            self.out
                .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            self.doc_space();
        }
        self.misc();
        self.element(&Vec::new(), 0);
        self.misc();
        self.out
    }

    fn doc_space(&mut self) {
        if self.rng.chance(60) {
            let s = self.rng.pick(&["\n", "\r\n", " ", "\n\n"]);
            self.out.push_str(s);
        }
    }

    /// Comments and PIs outside the document element.
    fn misc(&mut self) {
        for _ in 0..self.rng.below(3) {
            if self.rng.chance(50) {
                self.comment();
            } else {
                self.pi();
            }
            self.doc_space();
        }
    }

    fn pieces(&mut self, pool: &[&'static str], max: usize) -> String {
        let mut s = String::new();
        for _ in 0..self.rng.below(max + 1) {
            s.push_str(self.rng.pick(pool));
        }
        s
    }

    fn comment(&mut self) {
        let mut text = self.pieces(COMMENT_PIECES, 6);
        while text.contains("--") {
            text = text.replace("--", "-x-");
        }
        if text.ends_with('-') {
            text.push('x');
        }
        write!(self.out, "<!--{text}-->").unwrap();
    }

    fn pi(&mut self) {
        let target = self.rng.pick(&["pi", "t", "xml-stylesheet", "p.i"]);
        let mut data = self.pieces(PI_PIECES, 5);
        while data.contains("?>") {
            data = data.replace("?>", "? >");
        }
        let sep = if data.is_empty() && self.rng.chance(50) {
            ""
        } else {
            " "
        };
        write!(self.out, "<?{target}{sep}{data}?>").unwrap();
    }

    fn element(&mut self, parent_scope: &Scope, depth: usize) {
        let mut scope = parent_scope.clone();
        // Source-order pieces of the start tag: declarations and attributes, shuffled.
        let mut items: Vec<String> = Vec::new();
        let mut declared: Vec<&str> = Vec::new();
        for _ in 0..self.rng.below(4) {
            let (prefix, uri) = if self.rng.chance(30) {
                (
                    "",
                    self.rng
                        .pick(&["urn:a", "urn:dup", "", "http://example.com/c"]),
                )
            } else {
                (self.rng.pick(PREFIXES), self.rng.pick(URIS))
            };
            if declared.contains(&prefix) {
                continue;
            }
            declared.push(prefix);
            let quote = if self.rng.chance(50) { '"' } else { '\'' };
            if prefix.is_empty() {
                items.push(format!("xmlns={quote}{uri}{quote}"));
            } else {
                items.push(format!("xmlns:{prefix}={quote}{uri}{quote}"));
            }
            scope.retain(|(p, _)| *p != prefix);
            scope.push((prefix, uri));
        }
        let prefixed: Vec<(&str, &str)> = scope
            .iter()
            .copied()
            .filter(|(p, _)| !p.is_empty())
            .collect();
        let qname = {
            let local = self.rng.pick(LOCALS);
            if !prefixed.is_empty() && self.rng.chance(55) {
                format!("{}:{local}", self.rng.pick(&prefixed).0)
            } else {
                local.to_owned()
            }
        };
        let mut names: Vec<(String, String)> = Vec::new();
        for _ in 0..self.rng.below(5) {
            let roll = self.rng.below(100);
            let (uri, qname) = if roll < 50 || (roll < 80 && prefixed.is_empty()) {
                let local = self.rng.pick(ATTR_LOCALS);
                (String::new(), local.to_owned())
            } else if roll < 80 {
                let (p, uri) = self.rng.pick(&prefixed);
                let local = self.rng.pick(ATTR_LOCALS);
                (format!("{uri}|{local}"), format!("{p}:{local}"))
            } else {
                let local = self.rng.pick(XML_ATTRS);
                (format!("xml|{local}"), format!("xml:{local}"))
            };
            let key = if uri.is_empty() { qname.clone() } else { uri };
            if names.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let quote = if self.rng.chance(50) { '"' } else { '\'' };
            let mut value = String::new();
            for _ in 0..self.rng.below(6) {
                let piece = self.rng.pick(ATTR_PIECES);
                match (piece, quote) {
                    (">", _) if self.rng.chance(50) => value.push_str("&gt;"),
                    ("&quot;", '\'') if self.rng.chance(50) => value.push('"'),
                    ("&apos;", '"') if self.rng.chance(50) => value.push('\''),
                    _ => value.push_str(piece),
                }
            }
            items.push(format!("{qname}={quote}{value}{quote}"));
            names.push((key, qname));
        }
        for i in (1..items.len()).rev() {
            let j = self.rng.below(i + 1);
            items.swap(i, j);
        }

        write!(self.out, "<{qname}").unwrap();
        for item in &items {
            let space = self.rng.pick(SPACES);
            self.out.push_str(space);
            self.out.push_str(item);
        }
        if self.rng.chance(30) {
            self.out.push_str(self.rng.pick(&[" ", "\n", "\r\n"]));
        }
        let children = if depth >= 6 { 0 } else { self.rng.below(5) };
        if children == 0 && self.rng.chance(50) {
            self.out.push_str("/>");
            return;
        }
        self.out.push('>');
        for _ in 0..children {
            match self.rng.below(10) {
                0..=4 => self.element(&scope, depth + 1),
                5..=7 => {
                    let text = self.pieces(TEXT_PIECES, 6);
                    self.out.push_str(&text);
                }
                8 => self.comment(),
                _ => self.pi(),
            }
        }
        write!(self.out, "</{qname}").unwrap();
        if self.rng.chance(20) {
            self.out.push_str(self.rng.pick(&[" ", "\n"]));
        }
        self.out.push('>');
    }
}
