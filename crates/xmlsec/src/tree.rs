//! The parsed document: an arena of nodes, built only by [`crate::reader`], read
//! through [`Node`] handles.
//!
//! The API is roxmltree 0.21's (the parser the reader used before, and still the
//! reference its differential tests compare with) for the part of it this workspace
//! uses, with the same names and meanings, so code that walked roxmltree's tree walks
//! this one unchanged. Two additions: [`Node::prefix`] and [`Attribute::prefix`], the
//! prefixes as written, which C14N needs and roxmltree does not keep.
//!
//! Walks over it are iterative; nothing here panics or recurses on input.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;

/// Byte equality without a `memcmp` call, for names and URIs.
#[inline]
fn same(a: &str, b: &str) -> bool {
    crate::scan::same(a.as_bytes(), b.as_bytes())
}

/// The namespace the `xml` prefix is bound to by definition.
pub(crate) const NS_XML_URI: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of `xmlns` declarations, which may never be declared.
pub(crate) const NS_XMLNS_URI: &str = "http://www.w3.org/2000/xmlns/";

/// A node's index in its document (the root is 0; document order).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId(u32);

impl NodeId {
    #[inline]
    pub(crate) fn new(id: u32) -> Self {
        NodeId(id)
    }

    /// The index as a `u32`.
    #[inline]
    pub fn get(self) -> u32 {
        self.0
    }

    /// The index as a `usize`.
    #[inline]
    pub fn get_usize(self) -> usize {
        self.0 as usize
    }
}

/// What kind of node a [`Node`] is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NodeType {
    /// The document itself (parent of the document element).
    Root,
    /// An element.
    Element,
    /// A processing instruction.
    PI,
    /// A comment.
    Comment,
    /// Character data (text and CDATA sections, merged when adjacent).
    Text,
}

/// A processing instruction: its target and, when there is one, its value (the text
/// after the whitespace following the target, as written).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(clippy::upper_case_acronyms)]
pub struct PI<'input> {
    /// The target (its name).
    pub target: &'input str,
    /// The value, `None` when empty.
    pub value: Option<&'input str>,
}

#[derive(Debug)]
pub(crate) enum NodeKind<'input> {
    Root,
    Element {
        local: &'input str,
        /// `""` when unprefixed.
        prefix: &'input str,
        ns: Option<u16>,
        attrs: (u32, u32),
        namespaces: (u32, u32),
    },
    Pi(PI<'input>),
    Comment(&'input str),
    Text(Cow<'input, str>),
}

#[derive(Debug)]
pub(crate) struct NodeData<'input> {
    pub(crate) parent: Option<NodeId>,
    pub(crate) prev_sibling: Option<NodeId>,
    /// The next node in document order that is not a descendant of this one.
    pub(crate) next_subtree: Option<NodeId>,
    pub(crate) last_child: Option<NodeId>,
    pub(crate) kind: NodeKind<'input>,
    pub(crate) range: Range<usize>,
}

#[derive(Debug)]
pub(crate) struct AttributeData<'input> {
    pub(crate) local: &'input str,
    /// `""` when unprefixed.
    pub(crate) prefix: &'input str,
    pub(crate) ns: Option<u16>,
    pub(crate) value: Cow<'input, str>,
    pub(crate) range: Range<usize>,
    pub(crate) qname_len: u32,
    pub(crate) eq_len: u32,
}

/// A namespace binding: prefix (`None` for the default namespace) and URI.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Namespace<'input> {
    pub(crate) name: Option<&'input str>,
    pub(crate) uri: Cow<'input, str>,
}

impl<'input> Namespace<'input> {
    /// The prefix; `None` for the default namespace.
    #[inline]
    pub fn name(&self) -> Option<&'input str> {
        self.name
    }

    /// The namespace URI.
    #[inline]
    pub fn uri(&self) -> &str {
        &self.uri
    }
}

/// A parsed XML document. Only [`crate::reader`] makes one.
pub struct Document<'input> {
    pub(crate) text: &'input str,
    pub(crate) nodes: Vec<NodeData<'input>>,
    pub(crate) attrs: Vec<AttributeData<'input>>,
    /// Distinct (prefix, URI) bindings; index 0 is `xml`.
    pub(crate) ns_values: Vec<Namespace<'input>>,
    /// Each element's in-scope namespaces are a range of this list (its own
    /// declarations first, then what it inherits); an element that declares nothing
    /// shares its parent's range.
    pub(crate) ns_order: Vec<u16>,
}

impl fmt::Debug for Document<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl<'input> Document<'input> {
    /// The root node (the document itself, parent of the document element).
    #[inline]
    pub fn root<'a>(&'a self) -> Node<'a, 'input> {
        Node {
            id: NodeId(0),
            doc: self,
        }
    }

    /// The node with this ID, if the document has one.
    pub fn get_node<'a>(&'a self, id: NodeId) -> Option<Node<'a, 'input>> {
        (id.get_usize() < self.nodes.len()).then_some(Node { id, doc: self })
    }

    /// The document element. The reader refuses documents without one; the root node
    /// stands in only for a document built otherwise (there is none).
    #[inline]
    pub fn root_element<'a>(&'a self) -> Node<'a, 'input> {
        self.root()
            .first_element_child()
            .unwrap_or_else(|| self.root())
    }

    /// Every node in document order, the root first.
    #[inline]
    pub fn descendants(&self) -> Descendants<'_, 'input> {
        self.root().descendants()
    }

    /// The text the document was parsed from.
    #[inline]
    pub fn input_text(&self) -> &'input str {
        self.text
    }

    /// 1-based line and column (in characters) of a byte offset, for messages.
    pub fn text_pos_at(&self, pos: usize) -> TextPos {
        let before = self.text.get(..pos).unwrap_or(self.text);
        let row = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        TextPos {
            row: u32::try_from(row).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        }
    }

    #[inline]
    fn namespace(&self, idx: Option<u16>) -> Option<&Namespace<'input>> {
        idx.and_then(|i| self.ns_values.get(usize::from(i)))
    }
}

/// A line and column, both 1-based.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TextPos {
    /// Line.
    pub row: u32,
    /// Column, in characters.
    pub col: u32,
}

/// A namespace URI (if any) and a local name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ExpandedName<'a, 'b> {
    uri: Option<&'a str>,
    name: &'b str,
}

impl<'a, 'b> ExpandedName<'a, 'b> {
    /// The namespace URI.
    #[inline]
    pub fn namespace(&self) -> Option<&'a str> {
        self.uri
    }

    /// The local name.
    #[inline]
    pub fn name(&self) -> &'b str {
        self.name
    }
}

impl fmt::Debug for ExpandedName<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.uri {
            Some(ns) => write!(f, "{{{}}}{}", ns, self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

impl<'b> From<&'b str> for ExpandedName<'_, 'b> {
    fn from(name: &'b str) -> Self {
        ExpandedName { uri: None, name }
    }
}

impl<'a, 'b> From<(&'a str, &'b str)> for ExpandedName<'a, 'b> {
    fn from((uri, name): (&'a str, &'b str)) -> Self {
        ExpandedName {
            uri: Some(uri),
            name,
        }
    }
}

/// An attribute of an element (namespace declarations are not attributes; see
/// [`Node::namespaces`]).
#[derive(Clone, Copy)]
pub struct Attribute<'a, 'input> {
    doc: &'a Document<'input>,
    data: &'a AttributeData<'input>,
}

impl<'a, 'input> Attribute<'a, 'input> {
    /// The namespace URI, `None` for an unprefixed attribute.
    #[inline]
    pub fn namespace(&self) -> Option<&'a str> {
        self.doc.namespace(self.data.ns).map(Namespace::uri)
    }

    /// The local name.
    #[inline]
    pub fn name(&self) -> &'input str {
        self.data.local
    }

    /// The prefix as written, `""` when unprefixed.
    #[inline]
    pub fn prefix(&self) -> &'input str {
        self.data.prefix
    }

    /// The qualified name as written.
    #[inline]
    pub fn qname(&self) -> &'input str {
        self.doc
            .text
            .get(self.range_qname())
            .unwrap_or(self.data.local)
    }

    /// The normalized value (references expanded, whitespace characters as spaces).
    #[inline]
    pub fn value(&self) -> &'a str {
        &self.data.value
    }

    /// Where the whole attribute is in the input, from its name to its closing quote.
    #[inline]
    pub fn range(&self) -> Range<usize> {
        self.data.range.clone()
    }

    /// Where its qualified name is in the input.
    #[inline]
    pub fn range_qname(&self) -> Range<usize> {
        let start = self.data.range.start;
        start..start + self.data.qname_len as usize
    }

    /// Where its value is in the input, quotes excluded.
    #[inline]
    pub fn range_value(&self) -> Range<usize> {
        let start = self.data.range.start + (self.data.qname_len + self.data.eq_len) as usize + 1;
        start..self.data.range.end.saturating_sub(1)
    }

    #[inline]
    fn expanded(&self) -> ExpandedName<'a, 'input> {
        ExpandedName {
            uri: self.namespace(),
            name: self.data.local,
        }
    }
}

impl PartialEq for Attribute<'_, '_> {
    fn eq(&self, other: &Attribute<'_, '_>) -> bool {
        self.namespace() == other.namespace()
            && self.name() == other.name()
            && self.value() == other.value()
    }
}

impl fmt::Debug for Attribute<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Attribute {{ name: {:?}, value: {:?} }}",
            self.expanded(),
            self.value()
        )
    }
}

/// A handle to one node of a [`Document`].
#[derive(Clone, Copy)]
pub struct Node<'a, 'input> {
    id: NodeId,
    doc: &'a Document<'input>,
}

impl PartialEq for Node<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && std::ptr::eq(self.doc, other.doc)
    }
}

impl Eq for Node<'_, '_> {}

impl PartialOrd for Node<'_, '_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Node<'_, '_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let a: *const Document<'_> = self.doc;
        let b: *const Document<'_> = other.doc;
        (self.id, a).cmp(&(other.id, b))
    }
}

impl Hash for Node<'_, '_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        std::ptr::hash(self.doc, state);
    }
}

impl<'a, 'input: 'a> Node<'a, 'input> {
    #[inline]
    fn d(&self) -> &'a NodeData<'input> {
        // IDs come only from the document's own links, so the lookup always succeeds;
        // the root's data stands in rather than a panic.
        let doc: &'a Document<'input> = self.doc;
        match doc.nodes.get(self.id.get_usize()) {
            Some(d) => d,
            None => &doc.nodes[0],
        }
    }

    /// A node this one links to. Links are made only by the parser, between nodes of
    /// the same arena, so they are not checked again here ([`Node::d`] would still
    /// answer for a bad one without panicking).
    #[inline]
    fn at(&self, id: Option<NodeId>) -> Option<Self> {
        id.map(|id| Node { id, doc: self.doc })
    }

    /// The kind of node.
    #[inline]
    pub fn node_type(&self) -> NodeType {
        match self.d().kind {
            NodeKind::Root => NodeType::Root,
            NodeKind::Element { .. } => NodeType::Element,
            NodeKind::Pi(_) => NodeType::PI,
            NodeKind::Comment(_) => NodeType::Comment,
            NodeKind::Text(_) => NodeType::Text,
        }
    }

    /// Whether this is the root node.
    #[inline]
    pub fn is_root(&self) -> bool {
        self.node_type() == NodeType::Root
    }

    /// Whether this is an element.
    #[inline]
    pub fn is_element(&self) -> bool {
        matches!(self.d().kind, NodeKind::Element { .. })
    }

    /// Whether this is a processing instruction.
    #[inline]
    pub fn is_pi(&self) -> bool {
        self.node_type() == NodeType::PI
    }

    /// Whether this is a comment.
    #[inline]
    pub fn is_comment(&self) -> bool {
        self.node_type() == NodeType::Comment
    }

    /// Whether this is a text node.
    #[inline]
    pub fn is_text(&self) -> bool {
        self.node_type() == NodeType::Text
    }

    /// The document the node belongs to.
    #[inline]
    pub fn document(&self) -> &'a Document<'input> {
        self.doc
    }

    /// The element's expanded name; an empty local name for other nodes.
    #[inline]
    pub fn tag_name(&self) -> ExpandedName<'a, 'input> {
        match self.d().kind {
            NodeKind::Element { local, ns, .. } => ExpandedName {
                uri: self.doc.namespace(ns).map(Namespace::uri),
                name: local,
            },
            _ => ExpandedName {
                uri: None,
                name: "",
            },
        }
    }

    /// The element's prefix as written (`""` when unprefixed or not an element).
    #[inline]
    pub fn prefix(&self) -> &'input str {
        match self.d().kind {
            NodeKind::Element { prefix, .. } => prefix,
            _ => "",
        }
    }

    /// The element's qualified name as written (`""` for other nodes): what C14N
    /// writes, since the prefix is the author's choice.
    #[inline]
    pub fn qname(&self) -> &'input str {
        let d = self.d();
        match d.kind {
            NodeKind::Element { local, prefix, .. } => {
                let len = if prefix.is_empty() {
                    local.len()
                } else {
                    prefix.len() + 1 + local.len()
                };
                let start = d.range.start + 1;
                self.doc.text.get(start..start + len).unwrap_or(local)
            }
            _ => "",
        }
    }

    /// Whether two elements have the very same list of namespaces in scope (the second
    /// declares nothing of its own under the first, or they are one element): cheaper
    /// than comparing the lists, and never true when they differ.
    pub(crate) fn shares_namespaces_with(&self, other: &Node<'_, '_>) -> bool {
        let doc_a: *const u8 = (self.doc as *const Document<'_>).cast();
        let doc_b: *const u8 = (other.doc as *const Document<'_>).cast();
        match (&self.d().kind, &other.d().kind) {
            (NodeKind::Element { namespaces: a, .. }, NodeKind::Element { namespaces: b, .. }) => {
                a == b && std::ptr::eq(doc_a, doc_b)
            }
            _ => false,
        }
    }

    /// Whether the element has this name: the local name alone when `name` has no
    /// namespace, else the expanded name.
    #[inline]
    pub fn has_tag_name<'n, 'm, N>(&self, name: N) -> bool
    where
        N: Into<ExpandedName<'n, 'm>>,
    {
        let name = name.into();
        match self.d().kind {
            // The local name first: it is what usually differs.
            NodeKind::Element { local, ns, .. } => {
                same(local, name.name)
                    && match name.namespace() {
                        Some(uri) => self.doc.namespace(ns).is_some_and(|n| same(n.uri(), uri)),
                        None => true,
                    }
            }
            _ => false,
        }
    }

    /// The URI of the default namespace in scope.
    pub fn default_namespace(&self) -> Option<&'a str> {
        self.lookup_namespace_uri(None)
    }

    /// A prefix bound to `uri` in scope (`xml` for the XML namespace).
    pub fn lookup_prefix(&self, uri: &str) -> Option<&'input str> {
        if uri == NS_XML_URI {
            return Some("xml");
        }
        self.namespaces()
            .find(|ns| ns.uri() == uri)
            .and_then(|ns| ns.name)
    }

    /// The URI bound to `prefix` in scope (`None`: the default namespace).
    pub fn lookup_namespace_uri(&self, prefix: Option<&str>) -> Option<&'a str> {
        self.namespaces()
            .find(|ns| ns.name == prefix)
            .map(Namespace::uri)
    }

    /// The value of an attribute: matched by local name alone when `name` has no
    /// namespace, else by expanded name.
    #[inline]
    pub fn attribute<'n, 'm, N>(&self, name: N) -> Option<&'a str>
    where
        N: Into<ExpandedName<'n, 'm>>,
    {
        self.attribute_node(name).map(|a| a.value())
    }

    /// The attribute itself, matched as [`Node::attribute`] does.
    #[inline]
    pub fn attribute_node<'n, 'm, N>(&self, name: N) -> Option<Attribute<'a, 'input>>
    where
        N: Into<ExpandedName<'n, 'm>>,
    {
        let name = name.into();
        match name.namespace() {
            Some(_) => self.attributes().find(|a| a.expanded() == name),
            None => self.attributes().find(|a| same(a.data.local, name.name)),
        }
    }

    /// Whether the element has the attribute.
    #[inline]
    pub fn has_attribute<'n, 'm, N>(&self, name: N) -> bool
    where
        N: Into<ExpandedName<'n, 'm>>,
    {
        self.attribute_node(name).is_some()
    }

    /// The element's attributes in document order (no namespace declarations).
    #[inline]
    pub fn attributes(&self) -> Attributes<'a, 'input> {
        let doc: &'a Document<'input> = self.doc;
        let attrs = match self.d().kind {
            NodeKind::Element { attrs: (a, b), .. } => {
                doc.attrs.get(a as usize..b as usize).unwrap_or_default()
            }
            _ => &[],
        };
        Attributes {
            doc,
            attrs: attrs.iter(),
        }
    }

    /// The namespaces in scope: the element's own declarations in order, then the
    /// inherited ones it does not redeclare, in its parent's order (`xml` is not
    /// listed). An element that declares nothing yields its parent's very entries.
    #[inline]
    pub fn namespaces(&self) -> NamespaceIter<'a, 'input> {
        let doc: &'a Document<'input> = self.doc;
        let order = match self.d().kind {
            NodeKind::Element {
                namespaces: (a, b), ..
            } => doc.ns_order.get(a as usize..b as usize).unwrap_or_default(),
            _ => &[],
        };
        NamespaceIter {
            doc,
            order: order.iter(),
        }
    }

    /// A text node's text, a comment's text, or an element's first child's text when
    /// that child is a text node.
    #[inline]
    pub fn text(&self) -> Option<&'a str> {
        let d = self.d();
        match &d.kind {
            NodeKind::Element { .. } => match self.first_child().map(|c| &c.d().kind) {
                Some(NodeKind::Text(t)) => Some(t),
                _ => None,
            },
            NodeKind::Comment(t) => Some(t),
            NodeKind::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The text node right after this element, if any.
    #[inline]
    pub fn tail(&self) -> Option<&'a str> {
        if !self.is_element() {
            return None;
        }
        match self.next_sibling().map(|n| &n.d().kind) {
            Some(NodeKind::Text(t)) => Some(t),
            _ => None,
        }
    }

    /// The processing instruction, if this is one.
    #[inline]
    pub fn pi(&self) -> Option<PI<'input>> {
        match self.d().kind {
            NodeKind::Pi(pi) => Some(pi),
            _ => None,
        }
    }

    /// The parent node (`None` for the root).
    #[inline]
    pub fn parent(&self) -> Option<Self> {
        self.at(self.d().parent)
    }

    /// The nearest ancestor that is an element.
    pub fn parent_element(&self) -> Option<Self> {
        self.ancestors().skip(1).find(Node::is_element)
    }

    /// The previous sibling.
    #[inline]
    pub fn prev_sibling(&self) -> Option<Self> {
        self.at(self.d().prev_sibling)
    }

    /// The previous sibling that is an element.
    pub fn prev_sibling_element(&self) -> Option<Self> {
        self.prev_siblings().skip(1).find(Node::is_element)
    }

    /// The next sibling.
    #[inline]
    pub fn next_sibling(&self) -> Option<Self> {
        self.at(self.d().next_subtree)
            .filter(|n| n.d().prev_sibling == Some(self.id))
    }

    /// The next sibling that is an element.
    pub fn next_sibling_element(&self) -> Option<Self> {
        self.next_siblings().skip(1).find(Node::is_element)
    }

    /// The first child (children follow their parent directly in the arena).
    #[inline]
    pub fn first_child(&self) -> Option<Self> {
        self.d().last_child?;
        self.at(Some(NodeId(self.id.0 + 1)))
    }

    /// The first child that is an element.
    #[inline]
    pub fn first_element_child(&self) -> Option<Self> {
        self.children().find(Node::is_element)
    }

    /// The last child.
    #[inline]
    pub fn last_child(&self) -> Option<Self> {
        self.at(self.d().last_child)
    }

    /// The last child that is an element.
    pub fn last_element_child(&self) -> Option<Self> {
        self.children().rev().find(Node::is_element)
    }

    /// Whether the node has siblings.
    pub fn has_siblings(&self) -> bool {
        self.d().prev_sibling.is_some() || self.next_sibling().is_some()
    }

    /// Whether the node has children.
    #[inline]
    pub fn has_children(&self) -> bool {
        self.d().last_child.is_some()
    }

    /// This node, then its parent, up to the root.
    #[inline]
    pub fn ancestors(&self) -> AxisIter<'a, 'input> {
        AxisIter {
            node: Some(*self),
            next: Node::parent,
        }
    }

    /// This node, then its previous siblings.
    #[inline]
    pub fn prev_siblings(&self) -> AxisIter<'a, 'input> {
        AxisIter {
            node: Some(*self),
            next: Node::prev_sibling,
        }
    }

    /// This node, then its next siblings.
    #[inline]
    pub fn next_siblings(&self) -> AxisIter<'a, 'input> {
        AxisIter {
            node: Some(*self),
            next: Node::next_sibling,
        }
    }

    /// The children, in order.
    #[inline]
    pub fn children(&self) -> Children<'a, 'input> {
        Children {
            front: self.first_child(),
            back: self.last_child(),
        }
    }

    /// This node and everything under it, in document order.
    #[inline]
    pub fn descendants(&self) -> Descendants<'a, 'input> {
        let doc: &'a Document<'input> = self.doc;
        let from = self.id.get_usize();
        let until = self
            .d()
            .next_subtree
            .map_or(doc.nodes.len(), NodeId::get_usize);
        Descendants {
            doc,
            from,
            nodes: doc
                .nodes
                .get(from..until)
                .unwrap_or_default()
                .iter()
                .enumerate(),
        }
    }

    /// Where the node is in the input: an element from its `<` to the end of its end
    /// tag; a text node, the first piece of text or CDATA it was merged from.
    #[inline]
    pub fn range(&self) -> Range<usize> {
        self.d().range.clone()
    }

    /// The node's ID.
    #[inline]
    pub fn id(&self) -> NodeId {
        self.id
    }
}

impl fmt::Debug for Node<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.d().kind {
            NodeKind::Root => write!(f, "Root"),
            NodeKind::Element { .. } => write!(
                f,
                "Element {{ tag_name: {:?}, attributes: {:?}, namespaces: {:?} }}",
                self.tag_name(),
                self.attributes().collect::<Vec<_>>(),
                self.namespaces().collect::<Vec<_>>()
            ),
            NodeKind::Pi(pi) => {
                write!(f, "PI {{ target: {:?}, value: {:?} }}", pi.target, pi.value)
            }
            NodeKind::Comment(t) => write!(f, "Comment({t:?})"),
            NodeKind::Text(t) => write!(f, "Text({:?})", t.as_ref()),
        }
    }
}

/// An element's attributes.
#[derive(Clone, Debug)]
pub struct Attributes<'a, 'input> {
    doc: &'a Document<'input>,
    attrs: std::slice::Iter<'a, AttributeData<'input>>,
}

impl<'a, 'input> Iterator for Attributes<'a, 'input> {
    type Item = Attribute<'a, 'input>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let doc = self.doc;
        self.attrs.next().map(|data| Attribute { doc, data })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.attrs.size_hint()
    }
}

impl DoubleEndedIterator for Attributes<'_, '_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let doc = self.doc;
        self.attrs.next_back().map(|data| Attribute { doc, data })
    }
}

impl ExactSizeIterator for Attributes<'_, '_> {}

/// The namespaces in scope of an element.
#[derive(Clone, Debug)]
pub struct NamespaceIter<'a, 'input> {
    doc: &'a Document<'input>,
    order: std::slice::Iter<'a, u16>,
}

impl<'a, 'input> Iterator for NamespaceIter<'a, 'input> {
    type Item = &'a Namespace<'input>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let doc: &'a Document<'input> = self.doc;
        loop {
            let i = self.order.next()?;
            if let Some(ns) = doc.ns_values.get(usize::from(*i)) {
                return Some(ns);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

impl ExactSizeIterator for NamespaceIter<'_, '_> {}

/// Follows one axis from a node (the node first).
#[derive(Clone)]
pub struct AxisIter<'a, 'input> {
    node: Option<Node<'a, 'input>>,
    next: fn(&Node<'a, 'input>) -> Option<Node<'a, 'input>>,
}

impl<'a, 'input> Iterator for AxisIter<'a, 'input> {
    type Item = Node<'a, 'input>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let node = self.node.take();
        self.node = node.as_ref().and_then(self.next);
        node
    }
}

impl fmt::Debug for AxisIter<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AxisIter")
            .field("node", &self.node)
            .finish()
    }
}

/// A node's children.
#[derive(Clone, Debug)]
pub struct Children<'a, 'input> {
    front: Option<Node<'a, 'input>>,
    back: Option<Node<'a, 'input>>,
}

impl<'a, 'input> Iterator for Children<'a, 'input> {
    type Item = Node<'a, 'input>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            let node = self.front.take();
            self.back = None;
            node
        } else {
            let node = self.front.take();
            self.front = node.as_ref().and_then(Node::next_sibling);
            node
        }
    }
}

impl DoubleEndedIterator for Children<'_, '_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back == self.front {
            let node = self.back.take();
            self.front = None;
            node
        } else {
            let node = self.back.take();
            self.back = node.as_ref().and_then(Node::prev_sibling);
            node
        }
    }
}

/// A node and its descendants in document order.
#[derive(Clone, Debug)]
pub struct Descendants<'a, 'input> {
    doc: &'a Document<'input>,
    from: usize,
    nodes: std::iter::Enumerate<std::slice::Iter<'a, NodeData<'input>>>,
}

impl<'a, 'input> Iterator for Descendants<'a, 'input> {
    type Item = Node<'a, 'input>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (i, _) = self.nodes.next()?;
        Some(self.node(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.nodes.size_hint()
    }
}

impl<'a, 'input> Descendants<'a, 'input> {
    #[inline]
    fn node(&self, i: usize) -> Node<'a, 'input> {
        Node {
            id: NodeId(u32::try_from(self.from + i).unwrap_or(u32::MAX)),
            doc: self.doc,
        }
    }
}

impl DoubleEndedIterator for Descendants<'_, '_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let (i, _) = self.nodes.next_back()?;
        Some(self.node(i))
    }
}

impl ExactSizeIterator for Descendants<'_, '_> {}
