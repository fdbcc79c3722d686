//! XML canonicalization: Exclusive XML Canonicalization 1.0 (with and without comments,
//! with an InclusiveNamespaces PrefixList) and, for verification only, inclusive C14N 1.0.
//!
//! STUB: the signatures below are the agreed API; the implementation is being written.

use roxmltree::Node;

use crate::error::Error;

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
/// enveloped-signature transform passes the `ds:Signature` element here.
pub fn canonicalize(
    apex: Node<'_, '_>,
    algorithm: Algorithm,
    options: &Options<'_>,
    exclude: Option<Node<'_, '_>>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let _ = (apex, algorithm, options, exclude, out);
    Err(Error::Unsupported("c14n not yet implemented"))
}
