//! XML canonicalization: Exclusive XML Canonicalization 1.0 (with and without comments,
//! with an InclusiveNamespaces PrefixList) and, for verification only, inclusive C14N 1.0.
//!
//! The input is always a document subset of one shape: an apex (an element, or the
//! document root) with all its descendants, minus at most one excluded subtree (the
//! enveloped signature). That is every node-set XML-DSig produces for same-document
//! references, so no general XPath node-set machinery is needed.
//!
//! The walk is iterative: nesting depth only costs heap (one entry per open element),
//! never stack, whatever depth limit the reader was given.
//!
//! # Security
//! The bytes produced here are what gets digested and signed, so they must match other
//! implementations exactly: the conformance vectors and a differential test against
//! libxml2 (through lxml) in `tests/` pin the output. Anything that C14N cannot render
//! unambiguously (relative namespace URIs, `xmlns:p=""`) is an error, not a guess.

mod escape;
mod namespace;

use std::cmp::Ordering;

use crate::tree::{Node, NodeType};

use crate::error::Error;
use namespace::Rendered;

/// The namespace `xml:` is bound to by definition; it is never declared in the output.
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// Why a document (or subset) cannot be canonicalized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum C14nError {
    /// The apex is a text, comment or PI node; only an element or the document root
    /// can head a subset.
    #[error("the canonicalization apex must be an element or the document root")]
    ApexNotElement,
    /// A namespace URI in scope of an output element is relative (or not a URI);
    /// C14N 1.0 requires failure here.
    #[error("relative namespace URI {uri:?} cannot be canonicalized")]
    RelativeNamespaceUri {
        /// The offending URI.
        uri: String,
    },
    /// `xmlns:p=""` (a Namespaces 1.1 undeclaration) is in scope of an output element.
    #[error("namespace prefix {prefix:?} is bound to the empty URI")]
    EmptyPrefixedNamespace {
        /// The prefix.
        prefix: String,
    },
}

/// Which canonicalization algorithm, by its XML-DSig URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `http://www.w3.org/2001/10/xml-exc-c14n#` (and `#WithComments`).
    Exclusive {
        /// Keep comments.
        with_comments: bool,
    },
    /// `http://www.w3.org/TR/2001/REC-xml-c14n-20010315` (and `#WithComments`).
    /// Accepted for verification only; we never produce it.
    Inclusive {
        /// Keep comments.
        with_comments: bool,
    },
}

impl Algorithm {
    /// Exclusive C14N without comments: what we sign with.
    pub const EXCLUSIVE: Algorithm = Algorithm::Exclusive {
        with_comments: false,
    };

    /// Maps an algorithm URI to the algorithm, or `None` if it is not one we support.
    pub fn from_uri(uri: &str) -> Option<Algorithm> {
        match uri {
            "http://www.w3.org/2001/10/xml-exc-c14n#" => Some(Algorithm::Exclusive {
                with_comments: false,
            }),
            "http://www.w3.org/2001/10/xml-exc-c14n#WithComments" => Some(Algorithm::Exclusive {
                with_comments: true,
            }),
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315" => Some(Algorithm::Inclusive {
                with_comments: false,
            }),
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments" => {
                Some(Algorithm::Inclusive {
                    with_comments: true,
                })
            }
            _ => None,
        }
    }

    /// The algorithm's URI.
    pub fn uri(self) -> &'static str {
        match self {
            Algorithm::Exclusive {
                with_comments: false,
            } => "http://www.w3.org/2001/10/xml-exc-c14n#",
            Algorithm::Exclusive {
                with_comments: true,
            } => "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
            Algorithm::Inclusive {
                with_comments: false,
            } => "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
            Algorithm::Inclusive {
                with_comments: true,
            } => "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
        }
    }
}

/// What to canonicalize and how.
#[derive(Debug, Clone, Default)]
pub struct Options<'p> {
    /// The InclusiveNamespaces PrefixList (exclusive mode only); `"#default"` names the
    /// default namespace.
    pub inclusive_prefixes: &'p [&'p str],
}

/// Canonicalizes `apex` and its descendants (a document subset: the apex element with
/// the namespace context of its ancestors), appending the bytes to `out`.
///
/// When `apex` is the document's root node (`doc.tree().root()`), the whole document is
/// canonicalized, including comments and PIs outside the document element.
///
/// `exclude`, when given, is an element whose whole subtree is left out: the
/// enveloped-signature transform passes the `ds:Signature` element here. If it is the
/// apex itself or one of its ancestors, the subset is empty and nothing is written.
///
/// On error `out` is left as it was.
pub fn canonicalize(
    apex: Node<'_, '_>,
    algorithm: Algorithm,
    options: &Options<'_>,
    exclude: Option<Node<'_, '_>>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let start = out.len();
    let result = Canonicalizer::new(algorithm, options, exclude, out).run(apex);
    if result.is_err() {
        out.truncate(start);
    }
    result.map_err(Error::from)
}

/// [`canonicalize`] into a fresh buffer.
pub fn canonicalize_to_vec(
    apex: Node<'_, '_>,
    algorithm: Algorithm,
    options: &Options<'_>,
    exclude: Option<Node<'_, '_>>,
) -> Result<Vec<u8>, Error> {
    // Sized by `canonicalize` itself.
    let mut out = Vec::new();
    canonicalize(apex, algorithm, options, exclude, &mut out)?;
    Ok(out)
}

/// One attribute as it will be written, with its sort key (namespace URI, local name).
#[derive(Debug, Clone, Copy)]
struct OutAttr<'a> {
    namespace: &'a str,
    local: &'a str,
    /// `""` when unprefixed.
    prefix: &'a str,
    qname: &'a str,
    value: &'a str,
}

/// State of one canonicalization run. The scratch vectors are reused for every
/// element, so after the first few elements the walk allocates nothing.
struct Canonicalizer<'o, 'p, 'x, 'xi> {
    out: &'o mut Vec<u8>,
    exclusive: bool,
    with_comments: bool,
    inclusive_prefixes: &'p [&'p str],
    exclude: Option<Node<'x, 'xi>>,
}

impl<'o, 'p, 'x, 'xi> Canonicalizer<'o, 'p, 'x, 'xi> {
    fn new(
        algorithm: Algorithm,
        options: &Options<'p>,
        exclude: Option<Node<'x, 'xi>>,
        out: &'o mut Vec<u8>,
    ) -> Self {
        let (exclusive, with_comments) = match algorithm {
            Algorithm::Exclusive { with_comments } => (true, with_comments),
            Algorithm::Inclusive { with_comments } => (false, with_comments),
        };
        Canonicalizer {
            out,
            exclusive,
            with_comments,
            inclusive_prefixes: options.inclusive_prefixes,
            exclude,
        }
    }

    fn is_excluded(&self, node: Node<'_, '_>) -> bool {
        self.exclude.is_some_and(|x| same_node(x, node))
    }

    fn run(&mut self, apex: Node<'_, '_>) -> Result<(), C14nError> {
        if apex.ancestors().any(|a| self.is_excluded(a)) {
            return Ok(());
        }
        // The canonical form is about the size of the source, a little more where empty
        // elements get end tags and inherited namespaces are declared (a signed
        // SignedInfo: 690 -> 736 bytes): one allocation, no regrowth, which would run
        // `realloc`'s code on every signature check.
        let source = apex.range().len();
        self.out.reserve(source + source / 4);
        match apex.node_type() {
            NodeType::Root => self.document(apex),
            NodeType::Element => {
                let mut walk = Walk::new();
                walk.subtree(self, apex)
            }
            NodeType::Text | NodeType::Comment | NodeType::PI => Err(C14nError::ApexNotElement),
        }
    }

    /// The whole document: the document element, and comments and PIs around it, each
    /// separated from the document element by one LF (C14N 1.0 §2.3, "Root Node").
    fn document(&mut self, root: Node<'_, '_>) -> Result<(), C14nError> {
        let mut walk = Walk::new();
        let mut after_element = false;
        for child in root.children() {
            match child.node_type() {
                // Before and after are positions in the document, so they hold even
                // when the document element itself is excluded.
                NodeType::Element => {
                    if !self.is_excluded(child) {
                        walk.subtree(self, child)?;
                    }
                    after_element = true;
                }
                _ if self.is_excluded(child) => {}
                NodeType::Comment | NodeType::PI => {
                    if child.is_comment() && !self.with_comments {
                        continue;
                    }
                    if after_element {
                        self.out.push(b'\n');
                    }
                    self.leaf(child);
                    if !after_element {
                        self.out.push(b'\n');
                    }
                }
                // The data model has no text outside the document element.
                NodeType::Text | NodeType::Root => {}
            }
        }
        Ok(())
    }

    /// Text, comment or PI inside the subset.
    fn leaf(&mut self, node: Node<'_, '_>) {
        match node.node_type() {
            NodeType::Text => escape::text(self.out, node.text().unwrap_or_default()),
            NodeType::Comment if self.with_comments => {
                self.out.extend_from_slice(b"<!--");
                escape::raw_with_line_ends(self.out, node.text().unwrap_or_default());
                self.out.extend_from_slice(b"-->");
            }
            NodeType::PI => {
                if let Some(pi) = node.pi() {
                    self.out.extend_from_slice(b"<?");
                    self.out.extend_from_slice(pi.target.as_bytes());
                    if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
                        self.out.push(b' ');
                        escape::raw_with_line_ends(self.out, value);
                    }
                    self.out.extend_from_slice(b"?>");
                }
            }
            NodeType::Comment | NodeType::Element | NodeType::Root => {}
        }
    }
}

/// `Node` equality without requiring both nodes to share lifetimes: same document
/// object, same node ID. (Two documents parsed from one string are still different
/// documents.)
fn same_node(a: Node<'_, '_>, b: Node<'_, '_>) -> bool {
    let doc_a: *const u8 = (a.document() as *const crate::tree::Document<'_>).cast();
    let doc_b: *const u8 = (b.document() as *const crate::tree::Document<'_>).cast();
    a.id() == b.id() && std::ptr::eq(doc_a, doc_b)
}

/// C14N attribute order: by namespace URI (none first), then local name, comparing
/// UTF-8 bytes (which orders like the code points the spec names). Written out so
/// short names do not each cost a `memcmp` call: sorting is the hottest part of a
/// SAML message's c14n otherwise.
fn attribute_order(a: &OutAttr<'_>, b: &OutAttr<'_>) -> Ordering {
    let namespace = if std::ptr::eq(a.namespace, b.namespace) {
        Ordering::Equal
    } else {
        bytewise(a.namespace.as_bytes(), b.namespace.as_bytes())
    };
    namespace.then_with(|| bytewise(a.local.as_bytes(), b.local.as_bytes()))
}

fn bytewise(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// An element's qualified name as written, and its prefix (`""` when unprefixed).
#[derive(Debug, Clone, Copy)]
struct QName<'i> {
    qname: &'i str,
    prefix: &'i str,
}

/// The element walk and the per-element work, over one document's nodes.
struct Walk<'a> {
    rendered: Rendered<'a>,
    /// Scratch: declarations the current element renders.
    declare: Vec<(&'a str, &'a str)>,
    /// Scratch: the current element's attributes.
    attrs: Vec<OutAttr<'a>>,
}

impl<'a> Walk<'a> {
    /// Room for a SAML message's depth and its widest element from the start: grown one
    /// push at a time, these vectors reallocated a dozen times per signature checked.
    fn new() -> Self {
        Walk {
            rendered: Rendered::with_capacity(16),
            declare: Vec::with_capacity(8),
            attrs: Vec::with_capacity(8),
        }
    }

    /// The apex element and everything under it, depth-first with an explicit cursor:
    /// `current` is the innermost open element, `cursor` the next node to visit.
    fn subtree<'n, 'i: 'a>(
        &mut self,
        c: &mut Canonicalizer<'_, '_, '_, '_>,
        apex: Node<'n, 'i>,
    ) -> Result<(), C14nError>
    where
        'n: 'a,
    {
        self.start_element(c, apex, true)?;
        let mut current = apex;
        let mut cursor = apex.first_child();
        loop {
            match cursor {
                Some(node) if c.is_excluded(node) => cursor = node.next_sibling(),
                Some(node) if node.is_element() => {
                    self.start_element(c, node, false)?;
                    current = node;
                    cursor = node.first_child();
                }
                Some(node) => {
                    c.leaf(node);
                    cursor = node.next_sibling();
                }
                None => {
                    self.end_element(c, current.qname());
                    if current == apex {
                        return Ok(());
                    }
                    cursor = current.next_sibling();
                    match current.parent() {
                        Some(parent) => current = parent,
                        None => return Ok(()),
                    }
                }
            }
        }
    }

    fn start_element<'n, 'i: 'a>(
        &mut self,
        c: &mut Canonicalizer<'_, '_, '_, '_>,
        node: Node<'n, 'i>,
        is_apex: bool,
    ) -> Result<(), C14nError>
    where
        'n: 'a,
    {
        let name = QName {
            qname: node.qname(),
            prefix: node.prefix(),
        };
        // Every namespace in scope is checked (as libxml2 does), but an element that
        // declares nothing shares its parent's list, which was checked already.
        let inherited = !is_apex
            && node
                .parent()
                .is_some_and(|p| node.shares_namespaces_with(&p));
        if !inherited {
            for ns in node.namespaces() {
                namespace::check_uri(ns.name(), ns.uri())?;
            }
        }
        self.attrs.clear();
        for attr in node.attributes() {
            self.attrs.push(OutAttr {
                namespace: attr.namespace().unwrap_or_default(),
                local: attr.name(),
                prefix: attr.prefix(),
                qname: attr.qname(),
                value: attr.value(),
            });
        }

        self.declare.clear();
        if c.exclusive {
            self.exclusive_declarations(c, node, name);
        } else {
            for ns in node.namespaces() {
                self.consider(ns.name().unwrap_or_default(), ns.uri());
            }
            if is_apex {
                self.inherit_xml_attributes(node)?;
            }
        }
        self.declare
            .sort_unstable_by(|a, b| bytewise(a.0.as_bytes(), b.0.as_bytes()));
        self.attrs.sort_unstable_by(attribute_order);

        let out = &mut *c.out;
        out.push(b'<');
        out.extend_from_slice(name.qname.as_bytes());
        for &(prefix, uri) in &self.declare {
            if prefix.is_empty() {
                out.extend_from_slice(b" xmlns=\"");
            } else {
                out.extend_from_slice(b" xmlns:");
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(b"=\"");
            }
            escape::attribute(out, uri);
            out.push(b'"');
        }
        for attr in &self.attrs {
            out.push(b' ');
            out.extend_from_slice(attr.qname.as_bytes());
            out.extend_from_slice(b"=\"");
            escape::attribute(out, attr.value);
            out.push(b'"');
        }
        out.push(b'>');

        self.rendered.push_level(&self.declare);
        Ok(())
    }

    /// The end tag of the innermost open element, whose qualified name the walk passes.
    fn end_element(&mut self, c: &mut Canonicalizer<'_, '_, '_, '_>, qname: &str) {
        self.rendered.pop_level();
        c.out.extend_from_slice(b"</");
        c.out.extend_from_slice(qname.as_bytes());
        c.out.push(b'>');
    }

    /// Exclusive C14N §3: only the namespaces the element visibly utilizes (its own
    /// prefix, or the default namespace when unprefixed, and its attributes' prefixes),
    /// plus those named in the InclusiveNamespaces PrefixList.
    /// Expects `self.attrs` to hold the element's own attributes.
    fn exclusive_declarations<'n, 'i: 'a>(
        &mut self,
        c: &Canonicalizer<'_, '_, '_, '_>,
        node: Node<'n, 'i>,
        name: QName<'a>,
    ) where
        'n: 'a,
    {
        let element_ns = node.tag_name().namespace().unwrap_or_default();
        if element_ns != XML_NAMESPACE {
            self.consider(name.prefix, element_ns);
        }
        for i in 0..self.attrs.len() {
            if let Some(&OutAttr {
                namespace, prefix, ..
            }) = self.attrs.get(i)
            {
                // Unprefixed attributes are in no namespace: they use nothing.
                if !prefix.is_empty() && namespace != XML_NAMESPACE {
                    self.consider(prefix, namespace);
                }
            }
        }
        for &prefix in c.inclusive_prefixes {
            if prefix == "#default" || prefix.is_empty() {
                let uri = node.lookup_namespace_uri(None).unwrap_or_default();
                self.consider("", uri);
            } else if let Some(ns) = node.namespaces().find(|ns| ns.name() == Some(prefix)) {
                // `ns.name()` borrows from the input, unlike the caller's prefix list.
                if let Some(p) = ns.name() {
                    self.consider(p, ns.uri());
                }
            }
        }
    }

    /// Queues `xmlns:prefix="uri"` unless the output already binds it so, or this
    /// element already queued the prefix.
    fn consider(&mut self, prefix: &'a str, uri: &'a str) {
        if self.rendered.is_new(prefix, uri)
            && !self
                .declare
                .iter()
                .any(|(p, _)| crate::scan::same(p.as_bytes(), prefix.as_bytes()))
        {
            self.declare.push((prefix, uri));
        }
    }

    /// C14N 1.0 §2.4: the apex of a document subset carries the `xml:*` attributes
    /// of its ancestors (the nearest one wins) unless it has its own.
    fn inherit_xml_attributes<'n, 'i: 'a>(&mut self, node: Node<'n, 'i>) -> Result<(), C14nError>
    where
        'n: 'a,
    {
        for ancestor in node.ancestors().skip(1).filter(|n| n.is_element()) {
            for attr in ancestor.attributes() {
                if attr.namespace() != Some(XML_NAMESPACE) {
                    continue;
                }
                let taken = self
                    .attrs
                    .iter()
                    .any(|a| a.namespace == XML_NAMESPACE && a.local == attr.name());
                if taken {
                    continue;
                }
                self.attrs.push(OutAttr {
                    namespace: XML_NAMESPACE,
                    local: attr.name(),
                    prefix: attr.prefix(),
                    qname: attr.qname(),
                    value: attr.value(),
                });
            }
        }
        Ok(())
    }
}
