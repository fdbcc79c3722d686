//! `latchkey saml decode`: undo the binding, then show the message and what it is.
//!
//! Nothing here is verified: the summary reports which signatures are present, not
//! whether they hold (`latchkey saml verify` and `latchkey xml verify` do that).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::ns;
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::tree::Node;

use super::pretty::pretty;
use crate::stdout::{out, outln};
use crate::xml::read_input;

/// A message with its binding undone.
#[derive(Debug)]
pub struct Decoded {
    /// How it was carried, for the summary.
    pub binding: String,
    /// The XML text.
    pub xml: String,
    /// RelayState, when the input carried one.
    pub relay_state: Option<String>,
    /// The SigAlg of a signed redirect query.
    pub query_sig_alg: Option<String>,
}

pub fn decode_command(file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = read_input(file)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
    let decoded = decode_text(&text).context("cannot decode the message")?;
    let doc = reader::parse(&decoded.xml, &Limits::metadata())
        .context("the decoded message is not acceptable XML")?;
    out!("{}", summary(&decoded, doc.root_element()))?;
    outln!()?;
    out!("{}", pretty(&doc))?;
    Ok(ExitCode::SUCCESS)
}

/// Recognises the input: XML as is, a redirect URL or query string, or a base64 value
/// (POST, or a redirect value copied without its parameter name, which is deflated).
pub fn decode_text(text: &str) -> Result<Decoded, latchkey_saml::Error> {
    let limits = BindingLimits {
        // A debugging tool reads whatever RelayState a peer sent.
        max_relay_state: 64 * 1024,
        ..BindingLimits::default()
    };
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('<') {
        return Ok(Decoded {
            binding: "none (XML)".into(),
            xml: text.to_owned(),
            relay_state: None,
            query_sig_alg: None,
        });
    }
    if trimmed.contains("SAMLRequest=") || trimmed.contains("SAMLResponse=") {
        let query = trimmed.split_once('?').map_or(trimmed, |(_, q)| q);
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        let m = redirect::decode(query, &limits)?;
        return Ok(Decoded {
            binding: format!("HTTP-Redirect ({}, DEFLATE + base64)", m.kind.param()),
            query_sig_alg: m.sig_alg().map(str::to_owned),
            xml: m.xml,
            relay_state: m.relay_state,
        });
    }
    match post::decode(MessageKind::Response, trimmed, None, &limits) {
        Ok(m)
            if m.xml
                .trim_start_matches('\u{feff}')
                .trim_start()
                .starts_with('<') =>
        {
            Ok(Decoded {
                binding: "HTTP-POST (base64)".into(),
                xml: m.xml,
                relay_state: None,
                query_sig_alg: None,
            })
        }
        Ok(_) | Err(latchkey_saml::Error::NotUtf8) => {
            // Not XML once base64-decoded: try it as a deflated redirect value.
            let value: String = trimmed
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .flat_map(|c| match c {
                    '+' => "%2B".chars().collect::<Vec<_>>(),
                    '/' => "%2F".chars().collect(),
                    '=' => "%3D".chars().collect(),
                    c => vec![c],
                })
                .collect();
            let m = redirect::decode(&format!("SAMLRequest={value}"), &limits)?;
            Ok(Decoded {
                binding: "HTTP-Redirect value (DEFLATE + base64)".into(),
                xml: m.xml,
                relay_state: None,
                query_sig_alg: None,
            })
        }
        Err(e) => Err(e),
    }
}

/// What the message is, in `Name: value` lines.
fn summary(decoded: &Decoded, root: Node<'_, '_>) -> String {
    let mut lines = vec![
        ("Binding", decoded.binding.clone()),
        ("Message", describe(root)),
    ];
    if let Some(id) = root.attribute("ID") {
        lines.push(("ID", id.to_owned()));
    }
    let issuer = child(root, ns::ASSERTION, "Issuer")
        .and_then(|n| n.text())
        .map(str::trim)
        .or_else(|| root.attribute("entityID"));
    lines.push(("Issuer", issuer.unwrap_or("(none)").to_owned()));
    lines.push((
        "Destination",
        root.attribute("Destination").unwrap_or("(none)").to_owned(),
    ));
    if let Some(irt) = root.attribute("InResponseTo") {
        lines.push(("InResponseTo", irt.to_owned()));
    }
    if let Some(code) = child(root, ns::PROTOCOL, "Status")
        .and_then(|s| child(s, ns::PROTOCOL, "StatusCode"))
        .and_then(|c| c.attribute("Value"))
    {
        lines.push(("Status", code.to_owned()));
    }
    let signatures: Vec<String> = root
        .descendants()
        .filter(|n| is(*n, ns::DSIG, "Signature"))
        .map(|sig| match sig.parent_element() {
            Some(p) => match p.attribute("ID") {
                Some(id) => format!("on {} (ID {id})", describe(p)),
                None => format!("on {}", describe(p)),
            },
            None => "detached".to_owned(),
        })
        .collect();
    lines.push((
        "Signature",
        if signatures.is_empty() {
            "none".to_owned()
        } else {
            format!("present, not verified: {}", signatures.join("; "))
        },
    ));
    if let Some(alg) = &decoded.query_sig_alg {
        lines.push(("Query signature", format!("present, not verified: {alg}")));
    }
    let assertions = root
        .descendants()
        .filter(|n| is(*n, ns::ASSERTION, "Assertion"))
        .count();
    let encrypted = root
        .descendants()
        .filter(|n| is(*n, ns::ASSERTION, "EncryptedAssertion"))
        .count();
    if assertions + encrypted > 0 {
        lines.push((
            "Assertions",
            format!("{assertions} in the clear, {encrypted} encrypted"),
        ));
    }
    if let Some(r) = &decoded.relay_state {
        lines.push(("RelayState", r.clone()));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    lines
        .into_iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

/// `samlp:Response`, `saml:Assertion`, `md:EntityDescriptor`, or `{namespace}Name`.
fn describe(node: Node<'_, '_>) -> String {
    let name = node.tag_name();
    let prefix = match name.namespace() {
        Some(ns::PROTOCOL) => "samlp:",
        Some(ns::ASSERTION) => "saml:",
        Some(ns::METADATA) => "md:",
        Some(ns::DSIG) => "ds:",
        _ => "",
    };
    match (prefix, name.namespace()) {
        ("", Some(uri)) => format!("{{{uri}}}{}", name.name()),
        _ => format!("{prefix}{}", name.name()),
    }
}

fn is(node: Node<'_, '_>, namespace: &str, local: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(namespace)
        && node.tag_name().name() == local
}

fn child<'a, 'i>(node: Node<'a, 'i>, namespace: &str, local: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(*c, namespace, local))
}
