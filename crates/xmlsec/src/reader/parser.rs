//! The tokenizer and tree builder: one pass over the text that checks well-formedness,
//! namespaces and every limit of [`Limits`] as it goes, so no second walk is needed.
//!
//! It follows roxmltree 0.21 (what the reader used before) in every result it gives
//! for a document both accept: node kinds and order, names and namespaces, normalized
//! attribute values, merged text, ranges. Where roxmltree accepts what XML 1.0 or
//! Namespaces in XML do not, it refuses; the list is in the reader's documentation,
//! and the differential tests hold both claims.
//!
//! Byte runs (text, attribute values, names) are scanned against a class table, eight
//! bytes at a time where nothing special can be among them.

use std::borrow::Cow;
use std::ops::Range;

use super::Limits;
use crate::scan;
use crate::tree::{
    AttributeData, Document, NS_XML_URI, NS_XMLNS_URI, Namespace, NodeData, NodeId, NodeKind, PI,
};

/// Why parsing stopped, with the byte offset where it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fail {
    Malformed(&'static str, usize),
    Dtd(usize),
    TooManyNodes,
    TooDeep(usize),
    TooManyAttributes(usize),
    NameTooLong(usize),
    TextTooLong(usize),
    LoneCr(usize),
    ReservedPi(usize),
}

type R<T> = Result<T, Fail>;

// Byte classes.
const NS: u8 = 1; // name start (ASCII)
const NC: u8 = 2; // name char (ASCII)
const TX: u8 = 4; // stops a text run: < & \r > 0xEF controls
const AV: u8 = 8; // stops an attribute value run: " ' < & \t \n \r 0xEF controls
const CM: u8 = 16; // stops comment/PI/CDATA runs: - ? ] \r 0xEF controls
const SP: u8 = 32; // XML whitespace

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_alphabetic() || b == b'_' {
            c |= NS | NC;
        }
        if b.is_ascii_digit() || b == b'-' || b == b'.' {
            c |= NC;
        }

        if b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r' {
            c |= TX | AV | CM;
        }
        if b == 0xEF {
            c |= TX | AV | CM;
        }
        match b {
            b'<' | b'&' | b'\r' | b'>' => c |= TX,
            _ => {}
        }
        match b {
            b'"' | b'\'' | b'<' | b'&' | b'\t' | b'\n' | b'\r' => c |= AV,
            _ => {}
        }
        match b {
            b'-' | b'?' | b']' | b'\r' | b'<' => c |= CM,
            _ => {}
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => c |= SP,
            _ => {}
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

fn is_name_start_char(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return CLASS[u as usize] & NS != 0 || c == ':';
    }
    matches!(u,
        0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2FF | 0x370..=0x37D | 0x37F..=0x1FFF
        | 0x200C..=0x200D | 0x2070..=0x218F | 0x2C00..=0x2FEF | 0x3001..=0xD7FF
        | 0xF900..=0xFDCF | 0xFDF0..=0xFFFD | 0x10000..=0xEFFFF)
}

fn is_name_char(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return CLASS[u as usize] & NC != 0 || c == ':';
    }
    is_name_start_char(c) || matches!(u, 0xB7 | 0x300..=0x36F | 0x203F..=0x2040)
}

fn is_xml_char(c: char) -> bool {
    let u = c as u32;
    if u < 0x20 {
        return matches!(c, '\t' | '\n' | '\r');
    }
    !matches!(u, 0xFFFE | 0xFFFF)
}

/// A part of a qualified name starts with a NameStartChar other than `:`.
#[inline(always)]
fn name_starts_ok(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(&c) if c < 0x80 => CLASS[c as usize] & NS != 0,
        Some(_) => s.chars().next().is_some_and(is_name_start_char),
        None => false,
    }
}

struct Open<'i> {
    id: u32,
    qname: &'i str,
    depth: usize,
}

struct Parser<'i, 'l> {
    text: &'i str,
    b: &'i [u8],
    pos: usize,
    limits: &'l Limits,
    doc: Document<'i>,
    awaiting: Vec<u32>,
    open: Vec<Open<'i>>,
    /// The text node that a following text or CDATA chunk merges into.
    text_node: Option<u32>,
    /// Scratch for sorted namespace dedup.
    ns_sorted: Vec<u16>,
}

pub(super) fn parse<'i>(text: &'i str, limits: &Limits) -> R<Document<'i>> {
    let b = text.as_bytes();
    // Room for a typical message without regrowing; a large aggregate grows as it goes.
    let estimate = (b.len() / 32).min(4096);
    let mut p = Parser {
        text,
        b,
        pos: 0,
        limits,
        doc: Document {
            text,
            nodes: Vec::with_capacity(estimate + 1),
            attrs: Vec::with_capacity(estimate),
            ns_values: Vec::with_capacity(8),
            ns_order: Vec::with_capacity(32),
        },
        awaiting: Vec::with_capacity(16),
        open: Vec::with_capacity(16),
        text_node: None,
        ns_sorted: Vec::with_capacity(8),
    };
    p.doc.nodes.push(NodeData {
        parent: None,
        prev_sibling: None,
        next_subtree: None,
        last_child: None,
        kind: NodeKind::Root,
        range: 0..text.len(),
    });
    p.push_ns(Some("xml"), Cow::Borrowed(NS_XML_URI), 0)?;
    p.document()?;
    Ok(p.doc)
}

impl<'i, 'l> Parser<'i, 'l> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    #[inline]
    fn starts_with(&self, s: &[u8]) -> bool {
        self.b.get(self.pos..).is_some_and(|r| r.starts_with(s))
    }

    /// At a `<`: refuses `<!DOCTYPE` (any case) wherever it appears, even inside a
    /// comment, CDATA section or PI, as the reader always has: a false refusal is
    /// harmless, a missed DTD is not.
    #[inline]
    fn no_doctype_at(&self, at: usize) -> R<()> {
        if self.b.get(at + 1) == Some(&b'!')
            && self
                .b
                .get(at + 2..at + 9)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"doctype"))
        {
            return Err(Fail::Dtd(at));
        }
        Ok(())
    }

    /// Cold and out of line: the tokenizer's many refusals then sit apart from the
    /// accepting path, which is what a signed message takes.
    #[cold]
    #[inline(never)]
    fn err<T>(&self, what: &'static str, at: usize) -> R<T> {
        Err(Fail::Malformed(what, at))
    }

    #[inline]
    fn skip_spaces(&mut self) -> bool {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        while i < b.len() && CLASS[b[i] as usize] & SP != 0 {
            i += 1;
        }
        self.pos = i;
        i > start
    }

    fn document(&mut self) -> R<()> {
        self.declaration()?;
        self.misc()?;
        if self.peek() != Some(b'<') {
            return self.err("no root element", self.pos);
        }
        if self.starts_with(b"<!") {
            self.no_doctype_at(self.pos)?;
            return self.err("unexpected markup", self.pos);
        }
        self.content()?;
        self.misc()?;
        if self.pos < self.b.len() {
            return self.err("content after the root element", self.pos);
        }
        Ok(())
    }

    /// `<?xml version="1.x" (encoding="...")? (standalone="yes|no")? ?>`, only at the start.
    /// As in roxmltree, only `<?xml` followed by a space opens a declaration; any other
    /// `<?xml` is a PI with the reserved target, refused as such.
    fn declaration(&mut self) -> R<()> {
        if !self.starts_with(b"<?xml ") {
            return Ok(());
        }
        self.pos = 5;
        self.skip_spaces();
        let v = self.decl_attr(b"version")?;
        let ok = v.len() > 2
            && v.starts_with("1.")
            && v.as_bytes().iter().skip(2).all(u8::is_ascii_digit);
        if !ok {
            return self.err("bad version", self.pos);
        }
        let mut sp = self.skip_spaces();
        if self.starts_with(b"encoding") {
            if !sp {
                return self.err("space expected", self.pos);
            }
            let e = self.decl_attr(b"encoding")?;
            let eb = e.as_bytes();
            let ok = eb.first().is_some_and(u8::is_ascii_alphabetic)
                && eb
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
            if !ok {
                return self.err("bad encoding", self.pos);
            }
            sp = self.skip_spaces();
        }
        if self.starts_with(b"standalone") {
            if !sp {
                return self.err("space expected", self.pos);
            }
            let s = self.decl_attr(b"standalone")?;
            if s != "yes" && s != "no" {
                return self.err("bad standalone", self.pos);
            }
            self.skip_spaces();
        }
        if !self.starts_with(b"?>") {
            return self.err("?> expected", self.pos);
        }
        self.pos += 2;
        Ok(())
    }

    fn decl_attr(&mut self, name: &[u8]) -> R<&'i str> {
        if !self.starts_with(name) {
            return self.err("declaration attribute expected", self.pos);
        }
        self.pos += name.len();
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return self.err("= expected", self.pos);
        }
        self.pos += 1;
        self.skip_spaces();
        let q = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return self.err("quote expected", self.pos),
        };
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == q {
                let v = self.slice(start, self.pos);
                self.pos += 1;
                return Ok(v);
            }
            if !c.is_ascii() || c < 0x20 || c == b'<' || c == b'&' {
                return self.err("bad declaration value", self.pos);
            }
            self.pos += 1;
        }
        self.err("unexpected end", self.pos)
    }

    #[inline]
    fn slice(&self, a: usize, b: usize) -> &'i str {
        self.text.get(a..b).unwrap_or_default()
    }

    fn misc(&mut self) -> R<()> {
        loop {
            self.skip_spaces();
            if self.starts_with(b"<!--") {
                self.comment()?;
            } else if self.starts_with(b"<?") {
                self.pi()?;
            } else {
                return Ok(());
            }
        }
    }

    // ---- tree building ----

    fn parent_id(&self) -> u32 {
        self.open.last().map_or(0, |o| o.id)
    }

    fn append(&mut self, kind: NodeKind<'i>, range: Range<usize>) -> R<u32> {
        if self.doc.nodes.len() >= self.limits.max_nodes as usize {
            return Err(Fail::TooManyNodes);
        }
        let id = self.doc.nodes.len() as u32;
        let parent = self.parent_id();
        let is_element = matches!(kind, NodeKind::Element { .. });
        let prev = self
            .doc
            .nodes
            .get(parent as usize)
            .and_then(|p| p.last_child);
        self.doc.nodes.push(NodeData {
            parent: Some(NodeId::new(parent)),
            prev_sibling: prev,
            next_subtree: None,
            last_child: None,
            kind,
            range,
        });
        if let Some(p) = self.doc.nodes.get_mut(parent as usize) {
            p.last_child = Some(NodeId::new(id));
        }
        for &w in &self.awaiting {
            if let Some(n) = self.doc.nodes.get_mut(w as usize) {
                n.next_subtree = Some(NodeId::new(id));
            }
        }
        self.awaiting.clear();
        if !is_element {
            self.awaiting.push(id);
        }
        Ok(id)
    }

    fn push_ns(&mut self, name: Option<&'i str>, uri: Cow<'i, str>, at: usize) -> R<()> {
        let values = &self.doc.ns_values;
        let found = self.ns_sorted.binary_search_by(|&i| {
            let v = &values[i as usize];
            (v.name, v.uri.as_ref()).cmp(&(name, uri.as_ref()))
        });
        let idx = match found {
            Ok(k) => self.ns_sorted[k],
            Err(k) => {
                if self.doc.ns_values.len() > u16::MAX as usize {
                    return self.err("too many namespaces", at);
                }
                let idx = self.doc.ns_values.len() as u16;
                self.doc.ns_values.push(Namespace { name, uri });
                self.ns_sorted.insert(k, idx);
                idx
            }
        };
        self.doc.ns_order.push(idx);
        Ok(())
    }

    // ---- content ----

    /// From a `<` that starts the root element to the end of its end tag.
    fn content(&mut self) -> R<()> {
        if !self.start_tag()? {
            return Ok(());
        }
        while self.pos < self.b.len() {
            if self.b[self.pos] == b'<' {
                match self.at(self.pos + 1) {
                    Some(b'!') => {
                        if self.starts_with(b"<!--") {
                            self.comment()?;
                        } else if self.starts_with(b"<![CDATA[") {
                            self.cdata()?;
                        } else {
                            self.no_doctype_at(self.pos)?;
                            return self.err("unknown markup", self.pos);
                        }
                    }
                    Some(b'?') => self.pi()?,
                    Some(b'/') => {
                        self.end_tag()?;
                        if self.open.is_empty() {
                            return Ok(());
                        }
                    }
                    Some(_) => {
                        self.start_tag()?;
                    }
                    None => return self.err("unexpected end", self.pos),
                }
            } else {
                self.text()?;
            }
        }
        self.err("unclosed root element", self.pos)
    }

    #[inline]
    fn qname(&mut self) -> R<(&'i str, &'i str)> {
        let start = self.pos;
        let mut colon = None;
        let b = self.b;
        let mut i = self.pos;
        loop {
            while i < b.len() && CLASS[b[i] as usize] & NC != 0 {
                i += 1;
            }
            match b.get(i) {
                Some(b':') => {
                    // roxmltree reads `:a` as an unprefixed `a`; it is no QName.
                    if colon.is_some() || i == start {
                        return self.err("colon misplaced in a name", start);
                    }
                    colon = Some(i);
                    i += 1;
                }
                Some(&c) if c >= 0x80 => match self.text.get(i..).and_then(|s| s.chars().next()) {
                    Some(ch) if is_name_char(ch) => i += ch.len_utf8(),
                    _ => break,
                },
                _ => break,
            }
        }
        self.pos = i;
        let (prefix, local) = match colon {
            Some(k) => (self.slice(start, k), self.slice(k + 1, i)),
            None => (self.slice(start, start), self.slice(start, i)),
        };
        if (!prefix.is_empty() && !name_starts_ok(prefix)) || !name_starts_ok(local) {
            return self.err("invalid name", start);
        }
        Ok((prefix, local))
    }

    fn check_name_len(&self, s: &str, at: usize) -> R<()> {
        if s.len() > self.limits.max_name_len {
            return Err(Fail::NameTooLong(at));
        }
        Ok(())
    }

    /// Returns whether the element is open (not `/>`).
    fn start_tag(&mut self) -> R<bool> {
        self.text_node = None;
        let start = self.pos;
        self.pos += 1;
        let (prefix, local) = self.qname()?;
        let qname_end = self.pos;
        if prefix == "xmlns" {
            return self.err("xmlns prefix on an element", start + 1);
        }
        let depth = self.open.last().map_or(0, |o| o.depth) + 1;
        if depth > self.limits.max_depth {
            return Err(Fail::TooDeep(start));
        }
        self.check_name_len(local, start)?;
        let ns_start = self.doc.ns_order.len();
        // Attributes go straight into the document; their namespaces are resolved once
        // the element's own declarations (which may follow them) are all read.
        let a0 = self.doc.attrs.len();
        let mut n_attrs = 0usize;
        let mut default_declared = false;
        let mut xml_declared = false;
        let open;
        loop {
            let had_space = self.skip_spaces();
            let astart = self.pos;
            match self.peek() {
                Some(b'/') => {
                    if self.at(self.pos + 1) != Some(b'>') {
                        return self.err("> expected", self.pos + 1);
                    }
                    self.pos += 2;
                    open = false;
                    break;
                }
                Some(b'>') => {
                    self.pos += 1;
                    open = true;
                    break;
                }
                None => return self.err("unexpected end", self.pos),
                Some(_) => {
                    if !had_space {
                        return self.err("space expected", self.pos);
                    }
                    n_attrs += 1;
                    if n_attrs > self.limits.max_attributes {
                        return Err(Fail::TooManyAttributes(start));
                    }
                    let (ap, al) = self.qname()?;
                    let qname_len = (self.pos - astart) as u32;
                    let qend = self.pos;
                    self.skip_spaces();
                    if self.peek() != Some(b'=') {
                        return self.err("= expected", self.pos);
                    }
                    self.pos += 1;
                    self.skip_spaces();
                    let eq_len = (self.pos - qend) as u32;
                    let value = self.attr_value(start)?;
                    let range = astart..self.pos;
                    if ap == "xmlns" {
                        self.check_name_len(al, start)?;
                        if al == "xmlns" {
                            return self.err("xmlns prefix declared", astart);
                        }
                        let v = value.as_ref();
                        if v == NS_XMLNS_URI {
                            return self.err("xmlns namespace declared", astart);
                        }
                        let is_xml = v == NS_XML_URI;
                        if (al == "xml") != is_xml {
                            return self.err("xml namespace misused", astart);
                        }
                        let dup = self.doc.ns_order[ns_start..]
                            .iter()
                            .any(|&i| self.doc.ns_values[i as usize].name == Some(al));
                        if dup || (is_xml && xml_declared) {
                            return self.err("namespace declared twice", astart);
                        }
                        xml_declared |= is_xml;
                        if !is_xml {
                            self.push_ns(Some(al), value, astart)?;
                        }
                    } else if al == "xmlns" {
                        if !ap.is_empty() {
                            return self.err("prefixed xmlns attribute", astart);
                        }
                        let v = value.as_ref();
                        if v == NS_XML_URI || v == NS_XMLNS_URI {
                            return self.err("reserved namespace as default", astart);
                        }
                        if default_declared {
                            return self.err("default namespace declared twice", astart);
                        }
                        default_declared = true;
                        self.push_ns(None, value, astart)?;
                    } else {
                        self.check_name_len(al, start)?;
                        self.doc.attrs.push(AttributeData {
                            local: al,
                            prefix: ap,
                            ns: None,
                            value,
                            range,
                            qname_len,
                            eq_len,
                        });
                    }
                }
            }
        }
        let _ = qname_end;
        // Namespaces in scope.
        let parent = self.parent_id();
        let parent_ns = match self.doc.nodes.get(parent as usize).map(|n| &n.kind) {
            Some(NodeKind::Element { namespaces, .. }) => Some(*namespaces),
            _ => None,
        };
        let namespaces = if ns_start == self.doc.ns_order.len() {
            parent_ns.unwrap_or((ns_start as u32, ns_start as u32))
        } else {
            if let Some((a, b)) = parent_ns {
                for i in a as usize..b as usize {
                    let idx = self.doc.ns_order[i];
                    let name = self.doc.ns_values[idx as usize].name;
                    let shadowed = self.doc.ns_order[ns_start..]
                        .iter()
                        .any(|&j| self.doc.ns_values[j as usize].name == name);
                    if !shadowed {
                        self.doc.ns_order.push(idx);
                    }
                }
            }
            (ns_start as u32, self.doc.ns_order.len() as u32)
        };
        // Attributes: namespaces, duplicates (by expanded name), value lengths.
        for k in a0..self.doc.attrs.len() {
            let t = &self.doc.attrs[k];
            let ns = if t.prefix == "xml" {
                Some(0)
            } else if t.prefix.is_empty() {
                None
            } else {
                match self.lookup(namespaces, Some(t.prefix)) {
                    Some(i) => Some(i),
                    None => return self.err("unknown prefix", t.range.start),
                }
            };
            let values = &self.doc.ns_values;
            let dup = self.doc.attrs[a0..k].iter().any(|a| {
                eq_short(a.local, t.local)
                    && (a.ns == ns
                        || match (a.ns, ns) {
                            (Some(x), Some(y)) => values[x as usize].uri == values[y as usize].uri,
                            _ => false,
                        })
            });
            if dup {
                return self.err("duplicate attribute", t.range.start);
            }
            if t.value.len() > self.limits.max_text_len {
                return Err(Fail::TextTooLong(start));
            }
            self.doc.attrs[k].ns = ns;
        }
        let attrs = (a0 as u32, self.doc.attrs.len() as u32);
        let ns = if prefix.is_empty() {
            self.lookup(namespaces, None)
        } else {
            match self.lookup(namespaces, Some(prefix)) {
                Some(i) => Some(i),
                None => return self.err("unknown prefix", start + 1),
            }
        };
        let id = self.append(
            NodeKind::Element {
                local,
                prefix,
                ns,
                attrs,
                namespaces,
            },
            start..self.pos,
        )?;
        if open {
            self.open.push(Open {
                id,
                qname: self.slice(start + 1, qname_end),
                depth,
            });
        } else {
            self.awaiting.push(id);
        }
        Ok(open)
    }

    fn lookup(&self, range: (u32, u32), name: Option<&str>) -> Option<u16> {
        self.doc.ns_order[range.0 as usize..range.1 as usize]
            .iter()
            .copied()
            .find(|&i| eq_opt(self.doc.ns_values[i as usize].name, name))
    }

    fn attr_value(&mut self, elem: usize) -> R<Cow<'i, str>> {
        let q = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return self.err("quote expected", self.pos),
        };
        self.pos += 1;
        let start = self.pos;
        let mut plain = true;
        let b = self.b;
        loop {
            let mut i = scan::skip_ascii(b, self.pos, [b'"', b'\'', b'<', b'&']);
            while i < b.len() && CLASS[b[i] as usize] & AV == 0 {
                i += 1;
            }
            self.pos = i;
            let Some(&c) = b.get(i) else {
                return self.err("unexpected end", self.pos);
            };
            match c {
                _ if c == q => break,
                b'"' | b'\'' => self.pos += 1,
                b'<' => return self.err("< in attribute value", self.pos),
                b'&' | b'\t' | b'\n' | b'\r' => {
                    plain = false;
                    self.pos += 1;
                }
                0xEF => {
                    self.check_ef()?;
                    self.pos += 1;
                }
                _ => return self.err("illegal character", self.pos),
            }
        }
        let end = self.pos;
        self.pos += 1;
        let raw = self.slice(start, end);
        if plain {
            return Ok(Cow::Borrowed(raw));
        }
        let _ = elem;
        let mut out = String::with_capacity(raw.len());
        let rb = raw.as_bytes();
        let mut i = 0;
        let mut run = 0;
        while i < rb.len() {
            match rb[i] {
                b'&' => {
                    out.push_str(raw.get(run..i).unwrap_or_default());
                    let (ch, n) = self.reference(start + i)?;
                    out.push(ch);
                    i += n;
                    run = i;
                }
                b'\r' if rb.get(i + 1) == Some(&b'\n') => {
                    out.push_str(raw.get(run..i).unwrap_or_default());
                    i += 1;
                    run = i;
                }
                b'\t' | b'\n' | b'\r' => {
                    out.push_str(raw.get(run..i).unwrap_or_default());
                    out.push(' ');
                    i += 1;
                    run = i;
                }
                _ => i += 1,
            }
        }
        out.push_str(raw.get(run..).unwrap_or_default());
        Ok(Cow::Owned(out))
    }

    /// U+FFFE and U+FFFF (EF BF BE, EF BF BF) are not XML characters.
    #[inline]
    fn check_ef(&self) -> R<()> {
        if self.at(self.pos + 1) == Some(0xBF) && matches!(self.at(self.pos + 2), Some(0xBE | 0xBF))
        {
            return self.err("illegal character", self.pos);
        }
        Ok(())
    }

    /// A reference at byte `at` (the `&`): the character and the reference's length.
    fn reference(&self, at: usize) -> R<(char, usize)> {
        let rest = self.b.get(at + 1..).unwrap_or_default();
        let end = rest.iter().take(32).position(|&c| c == b';');
        let Some(end) = end else {
            return self.err("malformed reference", at);
        };
        let body = &rest[..end];
        let ch = match body {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"apos" => '\'',
            b"quot" => '"',
            [b'#', b'x', hex @ ..] if !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit) => {
                let s = std::str::from_utf8(hex).unwrap_or_default();
                u32::from_str_radix(s, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .filter(|&c| is_xml_char(c))
                    .ok_or(Fail::Malformed("bad character reference", at))?
            }
            [b'#', dec @ ..] if !dec.is_empty() && dec.iter().all(u8::is_ascii_digit) => {
                let s = std::str::from_utf8(dec).unwrap_or_default();
                s.parse::<u32>()
                    .ok()
                    .and_then(char::from_u32)
                    .filter(|&c| is_xml_char(c))
                    .ok_or(Fail::Malformed("bad character reference", at))?
            }
            _ => return self.err("unknown or malformed entity reference", at),
        };
        Ok((ch, end + 2))
    }

    fn text(&mut self) -> R<()> {
        let start = self.pos;
        let mut plain = true;
        let b = self.b;
        let n = b.len();
        loop {
            let mut i = scan::skip_ascii(b, self.pos, [b'<', b'&', b'>']);
            while i < n && CLASS[b[i] as usize] & TX == 0 {
                i += 1;
            }
            self.pos = i;
            let Some(&c) = b.get(i) else { break };
            match c {
                b'<' => break,
                b'&' => {
                    plain = false;
                    self.pos += 1;
                }
                b'\r' => {
                    if self.at(self.pos + 1) != Some(b'\n') {
                        return Err(Fail::LoneCr(start));
                    }
                    plain = false;
                    self.pos += 2;
                }
                b'>' => {
                    if self.pos >= start + 2 && &self.b[self.pos - 2..self.pos] == b"]]" {
                        return self.err("]]> in text", self.pos);
                    }
                    self.pos += 1;
                }
                0xEF => {
                    self.check_ef()?;
                    self.pos += 1;
                }
                _ => return self.err("illegal character", self.pos),
            }
        }
        let end = self.pos;
        let raw = self.slice(start, end);
        let value = if plain {
            Cow::Borrowed(raw)
        } else {
            let mut out = String::with_capacity(raw.len());
            let rb = raw.as_bytes();
            let (mut i, mut run) = (0, 0);
            while i < rb.len() {
                match rb[i] {
                    b'&' => {
                        out.push_str(raw.get(run..i).unwrap_or_default());
                        let (ch, k) = self.reference(start + i)?;
                        out.push(ch);
                        i += k;
                        run = i;
                    }
                    b'\r' => {
                        out.push_str(raw.get(run..i).unwrap_or_default());
                        i += 1;
                        run = i;
                    }
                    _ => i += 1,
                }
            }
            out.push_str(raw.get(run..).unwrap_or_default());
            Cow::Owned(out)
        };
        self.add_text(value, start..end)
    }

    fn add_text(&mut self, value: Cow<'i, str>, range: Range<usize>) -> R<()> {
        if let Some(id) = self.text_node {
            if let Some(NodeKind::Text(t)) =
                self.doc.nodes.get_mut(id as usize).map(|n| &mut n.kind)
            {
                t.to_mut().push_str(&value);
                if t.len() > self.limits.max_text_len {
                    return Err(Fail::TextTooLong(range.start));
                }
            }
            return Ok(());
        }
        if value.len() > self.limits.max_text_len {
            return Err(Fail::TextTooLong(range.start));
        }
        let id = self.append(NodeKind::Text(value), range)?;
        self.text_node = Some(id);
        Ok(())
    }

    fn cdata(&mut self) -> R<()> {
        let start = self.pos;
        self.pos += 9;
        let body = self.pos;
        let mut has_cr = false;
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return self.err("unclosed CDATA", start);
            };
            if CLASS[c as usize] & CM == 0 || c == b'-' || c == b'?' {
                self.pos += 1;
                continue;
            }
            match c {
                b']' => {
                    if self.at(self.pos + 1) == Some(b']') && self.at(self.pos + 2) == Some(b'>') {
                        break;
                    }
                    self.pos += 1;
                }
                b'\r' => {
                    if self.at(self.pos + 1) != Some(b'\n') {
                        return Err(Fail::LoneCr(start));
                    }
                    has_cr = true;
                    self.pos += 1;
                }
                b'<' => {
                    self.no_doctype_at(self.pos)?;
                    self.pos += 1;
                }
                0xEF => {
                    self.check_ef()?;
                    self.pos += 1;
                }
                _ => return self.err("illegal character", self.pos),
            }
        }
        let raw = self.slice(body, self.pos);
        self.pos += 3;
        let value = if has_cr {
            Cow::Owned(raw.replace("\r\n", "\n"))
        } else {
            Cow::Borrowed(raw)
        };
        self.add_text(value, start..self.pos)
    }

    fn comment(&mut self) -> R<()> {
        self.text_node = None;
        let start = self.pos;
        self.pos += 4;
        let body = self.pos;
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return self.err("unclosed comment", start);
            };
            if CLASS[c as usize] & CM == 0 || matches!(c, b'?' | b']' | b'\r') {
                self.pos += 1;
                continue;
            }
            match c {
                b'-' => {
                    if self.at(self.pos + 1) == Some(b'-') {
                        if self.at(self.pos + 2) == Some(b'>') {
                            break;
                        }
                        return self.err("-- in comment", start);
                    }
                    self.pos += 1;
                }
                b'<' => {
                    self.no_doctype_at(self.pos)?;
                    self.pos += 1;
                }
                0xEF => {
                    self.check_ef()?;
                    self.pos += 1;
                }
                _ => return self.err("illegal character", self.pos),
            }
        }
        let raw = self.slice(body, self.pos);
        if raw.ends_with('-') {
            return self.err("comment ends with -", start);
        }
        self.pos += 3;
        if raw.len() > self.limits.max_text_len {
            return Err(Fail::TextTooLong(start));
        }
        self.append(NodeKind::Comment(raw), start..self.pos)?;
        Ok(())
    }

    fn pi(&mut self) -> R<()> {
        self.text_node = None;
        let start = self.pos;
        self.pos += 2;
        let tstart = self.pos;
        // A Name, not a QName: colons are allowed in a PI target.
        while let Some(c) = self.peek() {
            if c < 0x80 {
                if CLASS[c as usize] & NC == 0 && c != b':' {
                    break;
                }
                self.pos += 1;
            } else {
                match self.text.get(self.pos..).and_then(|s| s.chars().next()) {
                    Some(ch) if is_name_char(ch) => self.pos += ch.len_utf8(),
                    _ => break,
                }
            }
        }
        let target = self.slice(tstart, self.pos);
        if !target.chars().next().is_some_and(is_name_start_char) {
            return self.err("invalid PI target", start);
        }
        if target.eq_ignore_ascii_case("xml") {
            return Err(Fail::ReservedPi(start));
        }
        let sp = self.skip_spaces();
        if !sp && !self.starts_with(b"?>") {
            return self.err("space expected after PI target", self.pos);
        }
        let vstart = self.pos;
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return self.err("unclosed PI", start);
            };
            if CLASS[c as usize] & CM == 0 || matches!(c, b'-' | b']' | b'\r') {
                self.pos += 1;
                continue;
            }
            match c {
                b'?' => {
                    if self.at(self.pos + 1) == Some(b'>') {
                        break;
                    }
                    self.pos += 1;
                }
                b'<' => {
                    self.no_doctype_at(self.pos)?;
                    self.pos += 1;
                }
                0xEF => {
                    self.check_ef()?;
                    self.pos += 1;
                }
                _ => return self.err("illegal character", self.pos),
            }
        }
        let value = self.slice(vstart, self.pos);
        self.pos += 2;
        let value = if value.is_empty() { None } else { Some(value) };
        self.append(NodeKind::Pi(PI { target, value }), start..self.pos)?;
        Ok(())
    }

    fn end_tag(&mut self) -> R<()> {
        self.text_node = None;
        let start = self.pos;
        self.pos += 2;
        let Some(open) = self.open.pop() else {
            return self.err("end tag without start", start);
        };
        // The open element's name was checked at its start tag; the end tag must repeat
        // it byte for byte and then stop (what follows may not continue a name).
        let q = open.qname.as_bytes();
        let same = self
            .b
            .get(self.pos..self.pos + q.len())
            .is_some_and(|t| scan::same(t, q));
        if !same {
            return self.err("mismatched end tag", start);
        }
        self.pos += q.len();
        self.skip_spaces();
        if self.peek() != Some(b'>') {
            return self.err("mismatched end tag", start);
        }
        self.pos += 1;
        if let Some(n) = self.doc.nodes.get_mut(open.id as usize) {
            n.range.end = self.pos;
        }
        self.awaiting.push(open.id);
        Ok(())
    }
}

/// Equality for the short strings names are, without a `memcmp` call.
#[inline]
fn eq_short(a: &str, b: &str) -> bool {
    scan::same(a.as_bytes(), b.as_bytes())
}

#[inline]
fn eq_opt(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => eq_short(a, b),
        _ => false,
    }
}
