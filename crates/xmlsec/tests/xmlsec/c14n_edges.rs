//! Canonicalization edge cases, each with its expected bytes written out by hand from
//! the C14N 1.0 and Exclusive C14N specifications.

// Helpers outside `#[test]` functions: a failed step there is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use latchkey_xmlsec::Error;
use latchkey_xmlsec::c14n::{self, Algorithm, C14nError, Options};
use latchkey_xmlsec::reader::{self, Document, Limits};
use latchkey_xmlsec::tree::Node;

const EXC: Algorithm = Algorithm::Exclusive {
    with_comments: false,
};
const EXC_COMMENTS: Algorithm = Algorithm::Exclusive {
    with_comments: true,
};
const INC: Algorithm = Algorithm::Inclusive {
    with_comments: false,
};

fn parse(text: &str) -> Document<'_> {
    reader::parse(text, &Limits::default()).unwrap()
}

/// The first element with this local name.
fn find<'a, 'i>(doc: &'a Document<'i>, name: &str) -> Node<'a, 'i> {
    doc.tree()
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .unwrap_or_else(|| panic!("no <{name}>"))
}

fn c14n(
    apex: Node<'_, '_>,
    algorithm: Algorithm,
    prefixes: &[&str],
    exclude: Option<Node<'_, '_>>,
) -> String {
    let options = Options {
        inclusive_prefixes: prefixes,
    };
    let bytes = c14n::canonicalize_to_vec(apex, algorithm, &options, exclude).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Canonical form of the whole document.
fn whole(text: &str, algorithm: Algorithm) -> String {
    let doc = parse(text);
    c14n(doc.tree().root(), algorithm, &[], None)
}

/// Canonical form of the first element named `apex`.
fn subtree(text: &str, apex: &str, algorithm: Algorithm, prefixes: &[&str]) -> String {
    let doc = parse(text);
    c14n(find(&doc, apex), algorithm, prefixes, None)
}

fn c14n_error(text: &str, apex: &str) -> C14nError {
    let doc = parse(text);
    match c14n::canonicalize_to_vec(find(&doc, apex), EXC, &Options::default(), None) {
        Err(Error::C14n(e)) => e,
        other => panic!("expected a c14n error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Depth: the walk must not recurse.

#[test]
fn ten_thousand_deep_on_a_small_stack() {
    let depth = 10_000;
    let mut text = String::from("<r xmlns='urn:r' xmlns:p='urn:p'>");
    for i in 0..depth {
        text.push_str(if i % 2 == 0 { "<p:a x='1'>" } else { "<b>" });
    }
    text.push('t');
    for i in (0..depth).rev() {
        text.push_str(if i % 2 == 0 { "</p:a>" } else { "</b>" });
    }
    text.push_str("</r>");
    let limits = Limits {
        max_depth: depth + 1,
        ..Limits::default()
    };
    // 256 KiB of stack: a recursive walk needs far more for 10,000 levels.
    let worker = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let doc = reader::parse(&text, &limits).unwrap();
            let root = doc.root_element();
            let whole = c14n(doc.tree().root(), EXC, &[], None);
            let sub = c14n(root.first_child().unwrap(), EXC, &[], None);
            let inclusive = c14n(doc.tree().root(), INC, &[], None);
            (whole, sub, inclusive)
        });
    let (whole, sub, inclusive) = worker.unwrap().join().unwrap();

    // The first <p:a> declares p; the first <b> declares the default; nothing repeats.
    let mut inner = String::new();
    for i in 0..depth {
        inner.push_str(match i {
            0 => "<p:a xmlns:p=\"urn:p\" x=\"1\">",
            1 => "<b xmlns=\"urn:r\">",
            _ if i % 2 == 0 => "<p:a x=\"1\">",
            _ => "<b>",
        });
    }
    inner.push('t');
    for i in (0..depth).rev() {
        inner.push_str(if i % 2 == 0 { "</p:a>" } else { "</b>" });
    }
    assert_eq!(sub, inner);
    let expected_whole = format!(
        "<r xmlns=\"urn:r\">{}</r>",
        inner.replacen("<b xmlns=\"urn:r\">", "<b>", 1)
    );
    assert_eq!(whole, expected_whole);
    assert!(
        inclusive.starts_with("<r xmlns=\"urn:r\" xmlns:p=\"urn:p\"><p:a x=\"1\"><b><p:a x=\"1\">")
    );
    assert_eq!(inclusive.matches("xmlns").count(), 2);
}

// ---------------------------------------------------------------------------------------
// Exclusion (the enveloped-signature transform).

const ENVELOPED: &str =
    "<r ID='x' xmlns:ds='urn:ds'>a<ds:Signature><ds:SignedInfo/></ds:Signature>b<c/></r>";

#[test]
fn excluded_subtree_is_cut_out_but_its_neighbours_stay() {
    let doc = parse(ENVELOPED);
    let signature = find(&doc, "Signature");
    assert_eq!(
        c14n(doc.root_element(), EXC, &[], Some(signature)),
        "<r ID=\"x\">ab<c></c></r>"
    );
    assert_eq!(
        c14n(doc.tree().root(), INC, &[], Some(signature)),
        "<r xmlns:ds=\"urn:ds\" ID=\"x\">ab<c></c></r>"
    );
    // Without the exclusion the signature is there, and ds is declared where used.
    assert_eq!(
        c14n(doc.root_element(), EXC, &[], None),
        "<r ID=\"x\">a<ds:Signature xmlns:ds=\"urn:ds\"><ds:SignedInfo></ds:SignedInfo></ds:Signature>b<c></c></r>"
    );
}

#[test]
fn excluding_the_apex_or_an_ancestor_leaves_nothing() {
    let doc = parse(ENVELOPED);
    let signature = find(&doc, "Signature");
    let signed_info = find(&doc, "SignedInfo");
    assert_eq!(c14n(signature, EXC, &[], Some(signature)), "");
    assert_eq!(c14n(signed_info, EXC, &[], Some(signature)), "");
    assert_eq!(
        c14n(doc.tree().root(), EXC, &[], Some(doc.tree().root())),
        ""
    );
}

#[test]
fn excluding_the_document_element_keeps_the_prolog_and_epilogue() {
    let doc = parse("<?a?><!--c--><r/><!--d--><?b x?>");
    assert_eq!(
        c14n(
            doc.tree().root(),
            EXC_COMMENTS,
            &[],
            Some(doc.root_element())
        ),
        "<?a?>\n<!--c-->\n\n<!--d-->\n<?b x?>"
    );
}

#[test]
fn exclude_from_another_document_is_ignored() {
    let doc = parse(ENVELOPED);
    let other = parse(ENVELOPED);
    let foreign = find(&other, "Signature");
    assert!(c14n(doc.root_element(), EXC, &[], Some(foreign)).contains("Signature"));
}

// ---------------------------------------------------------------------------------------
// InclusiveNamespaces PrefixList.

#[test]
fn prefix_list_renders_namespaces_used_only_in_content() {
    // Like the Okta vector: xs appears only inside an attribute value.
    let text = "<s:A xmlns:s='urn:s' xmlns:xs='urn:xs' xmlns:xsi='urn:xsi'>\
                <s:V xsi:type='xs:string'>v</s:V></s:A>";
    assert_eq!(
        subtree(text, "V", EXC, &[]),
        "<s:V xmlns:s=\"urn:s\" xmlns:xsi=\"urn:xsi\" xsi:type=\"xs:string\">v</s:V>"
    );
    assert_eq!(
        subtree(text, "V", EXC, &["xs"]),
        "<s:V xmlns:s=\"urn:s\" xmlns:xs=\"urn:xs\" xmlns:xsi=\"urn:xsi\" xsi:type=\"xs:string\">v</s:V>"
    );
    // Listed prefixes render once, at the top, not again on descendants.
    assert_eq!(
        subtree(text, "A", EXC, &["xs"]),
        "<s:A xmlns:s=\"urn:s\" xmlns:xs=\"urn:xs\"><s:V xmlns:xsi=\"urn:xsi\" xsi:type=\"xs:string\">v</s:V></s:A>"
    );
    // Unknown prefixes and "xml" change nothing.
    assert_eq!(
        subtree(text, "V", EXC, &["nope", "xml"]),
        subtree(text, "V", EXC, &[])
    );
}

#[test]
fn prefix_list_default_renders_the_default_namespace_on_prefixed_elements() {
    let text = "<p:a xmlns:p='urn:p' xmlns='urn:d'><p:b/><p:c xmlns=''/></p:a>";
    assert_eq!(
        subtree(text, "a", EXC, &[]),
        "<p:a xmlns:p=\"urn:p\"><p:b></p:b><p:c></p:c></p:a>"
    );
    assert_eq!(
        subtree(text, "a", EXC, &["#default"]),
        "<p:a xmlns=\"urn:d\" xmlns:p=\"urn:p\"><p:b></p:b><p:c xmlns=\"\"></p:c></p:a>"
    );
}

// ---------------------------------------------------------------------------------------
// The default namespace and xmlns="".

#[test]
fn xmlns_empty_only_when_a_rendered_default_must_be_undone() {
    let text = "<a xmlns='urn:x'><b xmlns=''><c/></b><d/></a>";
    assert_eq!(
        whole(text, EXC),
        "<a xmlns=\"urn:x\"><b xmlns=\"\"><c></c></b><d></d></a>"
    );
    assert_eq!(whole(text, INC), whole(text, EXC));
    // As an apex, b has nothing to undo.
    assert_eq!(subtree(text, "b", EXC, &[]), "<b><c></c></b>");
    assert_eq!(subtree(text, "b", INC, &[]), "<b><c></c></b>");
}

#[test]
fn xmlns_empty_under_an_unrendered_default() {
    // Exclusive: the prefixed parent never renders the default, so b needs no xmlns="".
    let text = "<p:a xmlns:p='urn:p' xmlns='urn:x'><b xmlns=''/></p:a>";
    assert_eq!(whole(text, EXC), "<p:a xmlns:p=\"urn:p\"><b></b></p:a>");
    // Inclusive: the parent renders every in-scope namespace, so b must undo it.
    assert_eq!(
        whole(text, INC),
        "<p:a xmlns=\"urn:x\" xmlns:p=\"urn:p\"><b xmlns=\"\"></b></p:a>"
    );
}

#[test]
fn redeclared_prefix_is_rendered_again_only_when_its_uri_changes() {
    let text =
        "<p:a xmlns:p='urn:1'><p:b xmlns:p='urn:1'><p:c xmlns:p='urn:2'><p:d/></p:c></p:b></p:a>";
    assert_eq!(
        whole(text, EXC),
        "<p:a xmlns:p=\"urn:1\"><p:b><p:c xmlns:p=\"urn:2\"><p:d></p:d></p:c></p:b></p:a>"
    );
}

#[test]
fn two_prefixes_for_one_uri_keep_their_source_prefixes() {
    let text = "<a xmlns:p='urn:x' xmlns:q='urn:x'><q:b p:c='1' q:d='2'/></a>";
    assert_eq!(
        subtree(text, "b", EXC, &[]),
        "<q:b xmlns:p=\"urn:x\" xmlns:q=\"urn:x\" p:c=\"1\" q:d=\"2\"></q:b>"
    );
}

#[test]
fn the_xml_namespace_is_never_declared_nor_inherited_in_exclusive_mode() {
    let text = "<a xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en' xml:space='preserve'>\
                <b xml:lang='fr'><c/></b></a>";
    assert_eq!(
        whole(text, EXC),
        "<a xml:lang=\"en\" xml:space=\"preserve\"><b xml:lang=\"fr\"><c></c></b></a>"
    );
    assert_eq!(subtree(text, "c", EXC, &[]), "<c></c>");
    // Inclusive C14N 1.0 carries the nearest ancestors' xml:* onto the apex.
    assert_eq!(
        subtree(text, "c", INC, &[]),
        "<c xml:lang=\"fr\" xml:space=\"preserve\"></c>"
    );
    assert_eq!(
        subtree(text, "b", INC, &[]),
        "<b xml:lang=\"fr\" xml:space=\"preserve\"><c></c></b>"
    );
}

// ---------------------------------------------------------------------------------------
// Ordering and escaping.

#[test]
fn declarations_by_prefix_then_attributes_by_namespace_uri_and_local_name() {
    let text = "<e z='1' xmlns:b='urn:b' b:a='2' a='3' xml:lang='en' xmlns:c='urn:a' c:z='4' xmlns='urn:d'/>";
    assert_eq!(
        whole(text, EXC),
        "<e xmlns=\"urn:d\" xmlns:b=\"urn:b\" xmlns:c=\"urn:a\" a=\"3\" z=\"1\" xml:lang=\"en\" c:z=\"4\" b:a=\"2\"></e>"
    );
}

#[test]
fn character_references_for_cr_tab_and_lf_survive_parsing() {
    let text = "<a b='x&#xD;y&#9;z&#xA;w\tv\r\nu' c='&lt;&amp;&gt;&quot;&apos;'>1&#xD;2\r\n3&#13;\r\n4<![CDATA[<&>]]></a>";
    assert_eq!(
        whole(text, EXC),
        "<a b=\"x&#xD;y&#x9;z&#xA;w v u\" c=\"&lt;&amp;>&quot;'\">1&#xD;2\n3&#xD;\n4&lt;&amp;&gt;</a>"
    );
}

#[test]
fn ampersand_in_a_namespace_uri_is_escaped_as_the_spec_says() {
    // libxml2 writes the & raw here (not even well-formed); C14N 1.0 §2.3 escapes it.
    let text = "<p:a xmlns:p='http://example.com/?a=1&amp;b=2'/>";
    assert_eq!(
        whole(text, EXC),
        "<p:a xmlns:p=\"http://example.com/?a=1&amp;b=2\"></p:a>"
    );
}

#[test]
fn comments_and_pis_around_the_document_element() {
    let text = "<?xml version='1.0'?>\r\n<?a?>\n<!--c\r\n-->\n<r><!--in--><?p  d\r\n?></r>\n<!--d--><?b x?>\n";
    assert_eq!(
        whole(text, EXC_COMMENTS),
        "<?a?>\n<!--c\n-->\n<r><!--in--><?p d\n?></r>\n<!--d-->\n<?b x?>"
    );
    assert_eq!(whole(text, EXC), "<?a?>\n<r><?p d\n?></r>\n<?b x?>");
    // A subtree never includes what lies outside it.
    assert_eq!(
        subtree(text, "r", EXC_COMMENTS, &[]),
        "<r><!--in--><?p d\n?></r>"
    );
}

// ---------------------------------------------------------------------------------------
// Refusals.

#[test]
fn relative_namespace_uris_are_refused() {
    assert_eq!(
        c14n_error("<p:a xmlns:p='relative/path'/>", "a"),
        C14nError::RelativeNamespaceUri {
            uri: "relative/path".to_owned()
        }
    );
    // In scope is enough, even when exclusive c14n would not render it (as libxml2).
    assert!(matches!(
        c14n_error("<a xmlns:p='rel'><b/></a>", "b"),
        C14nError::RelativeNamespaceUri { .. }
    ));
}

#[test]
fn empty_prefixed_namespace_is_refused() {
    assert_eq!(
        c14n_error("<a xmlns:p=''><b/></a>", "b"),
        C14nError::EmptyPrefixedNamespace {
            prefix: "p".to_owned()
        }
    );
}

#[test]
fn apex_must_be_an_element_or_the_root() {
    let doc = parse("<a>t<!--c--></a>");
    for node in doc.root_element().children() {
        assert!(matches!(
            c14n::canonicalize_to_vec(node, EXC, &Options::default(), None),
            Err(Error::C14n(C14nError::ApexNotElement))
        ));
    }
}

#[test]
fn output_is_appended_and_left_alone_on_error() {
    let doc = parse("<a><b/></a>");
    let mut out = b"prefix:".to_vec();
    c14n::canonicalize(doc.root_element(), EXC, &Options::default(), None, &mut out).unwrap();
    assert_eq!(out, b"prefix:<a><b></b></a>");

    let bad = parse("<a><b xmlns:p='rel'/></a>");
    let mut out = b"prefix:".to_vec();
    let result = c14n::canonicalize(bad.root_element(), EXC, &Options::default(), None, &mut out);
    assert!(result.is_err());
    assert_eq!(out, b"prefix:");
}

#[test]
fn algorithm_uris_round_trip() {
    for algorithm in [
        EXC,
        EXC_COMMENTS,
        INC,
        Algorithm::Inclusive {
            with_comments: true,
        },
    ] {
        assert_eq!(Algorithm::from_uri(algorithm.uri()), Some(algorithm));
    }
    assert_eq!(
        Algorithm::from_uri("http://www.w3.org/2006/12/xml-c14n11"),
        None
    );
}
