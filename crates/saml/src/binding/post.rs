//! HTTP-POST binding (SAML bindings §3.5): base64 form fields and the page that posts
//! them on.
//!
//! The page submits itself with one fixed inline script, so a server can allow exactly
//! that script under a strict Content-Security-Policy: put [`SCRIPT_CSP_HASH`] in
//! `script-src` (or pass a nonce). The form also has a submit button inside `<noscript>`
//! for browsers without script. The server's CSP must allow the destination in
//! `form-action`.

use askama::Template;

use super::{BindingLimits, MessageKind, base64_decode, base64_encode, check_relay_state};
use crate::error::{Error, Result};

/// The inline script of the auto-submitting page, byte for byte.
pub const AUTO_SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

/// The CSP source expression that allows [`AUTO_SUBMIT_SCRIPT`] and nothing else, for a
/// `script-src` directive. A test recomputes it from the script.
pub const SCRIPT_CSP_HASH: &str = "'sha256-8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ='";

/// Base64 form value for `xml`.
pub fn encode(xml: &str) -> String {
    base64_encode(xml.as_bytes())
}

/// A message received through HTTP-POST, decoded but not yet trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostMessage {
    /// The XML text.
    pub xml: String,
    /// The RelayState field.
    pub relay_state: Option<String>,
}

/// Decodes the form fields of a POST (the web framework has already URL-decoded them):
/// `value` is the `SAMLRequest` or `SAMLResponse` field, as `kind` says.
pub fn decode(
    kind: MessageKind,
    value: &str,
    relay_state: Option<&str>,
    limits: &BindingLimits,
) -> Result<PostMessage> {
    if value.len() > limits.max_encoded {
        return Err(Error::EncodedTooLarge {
            size: value.len(),
            limit: limits.max_encoded,
        });
    }
    check_relay_state(relay_state, limits)?;
    let bytes = base64_decode(value, kind.param())?;
    if bytes.len() > limits.max_decoded {
        return Err(Error::DecodedTooLarge {
            limit: limits.max_decoded,
        });
    }
    Ok(PostMessage {
        xml: String::from_utf8(bytes).map_err(|_| Error::NotUtf8)?,
        relay_state: relay_state.map(str::to_owned),
    })
}

/// The auto-submitting HTML page that posts `xml` to `destination`.
///
/// Without a nonce, the server must send `script-src` [`SCRIPT_CSP_HASH`]; with one, the
/// script carries `nonce="…"` (which must be fresh per response and also in the header).
pub fn auto_submit_page(
    destination: &str,
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
    nonce: Option<&str>,
    limits: &BindingLimits,
) -> Result<String> {
    check_relay_state(relay_state, limits)?;
    // The action is a URL the browser will post an assertion to; anything but http(s)
    // (javascript:, data:) is refused even though it comes from metadata.
    let scheme_ok = ["https://", "http://"].iter().any(|p| {
        destination
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    });
    if !scheme_ok {
        return Err(Error::InvalidValue {
            element: "form",
            attribute: "action",
            value: destination.to_owned(),
        });
    }
    let page = AutoSubmitPage {
        destination,
        param: kind.param(),
        value: encode(xml),
        relay_state,
        nonce,
        script: AUTO_SUBMIT_SCRIPT,
    };
    let mut html = String::with_capacity(page.value.len() + 1024);
    page.render_into(&mut html)
        .map_err(|e| Error::InvalidValue {
            element: "html",
            attribute: "template",
            value: e.to_string(),
        })?;
    Ok(html)
}

/// `templates/auto_submit.html`: askama escapes every value (the script is the one
/// constant [`AUTO_SUBMIT_SCRIPT`], byte for byte, so that its hash holds).
#[derive(askama::Template)]
#[template(path = "auto_submit.html")]
struct AutoSubmitPage<'a> {
    destination: &'a str,
    param: &'a str,
    value: String,
    relay_state: Option<&'a str>,
    nonce: Option<&'a str>,
    script: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn csp_hash_matches_script() {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, AUTO_SUBMIT_SCRIPT.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        assert_eq!(SCRIPT_CSP_HASH, format!("'sha256-{b64}'"));
    }

    #[test]
    fn page_escapes_and_embeds_exact_script() {
        let limits = BindingLimits::default();
        let page = auto_submit_page(
            "https://sp.example.com/acs?a=1&b=\"><script>x</script>",
            MessageKind::Response,
            "<x/>",
            Some("'><img src=x>"),
            None,
            &limits,
        )
        .unwrap();
        assert!(page.contains("action=\"https://sp.example.com/acs?a=1&#38;b=&#34;&#62;&#60;script&#62;x&#60;/script&#62;\""));
        assert!(page.contains("name=\"RelayState\" value=\"&#39;&#62;&#60;img src=x&#62;\""));
        assert!(page.contains(&format!(
            "name=\"SAMLResponse\" value=\"{}\"",
            encode("<x/>")
        )));
        assert!(page.contains(&format!("<script>{AUTO_SUBMIT_SCRIPT}</script>")));
        assert_eq!(page.matches("<script").count(), 1);
        assert!(page.contains("<noscript><button type=\"submit\">"));
        let with_nonce = auto_submit_page(
            "https://a",
            MessageKind::Request,
            "<x/>",
            None,
            Some("n\"1"),
            &limits,
        )
        .unwrap();
        assert!(with_nonce.contains(&format!(
            "<script nonce=\"n&#34;1\">{AUTO_SUBMIT_SCRIPT}</script>"
        )));
        assert!(with_nonce.contains("name=\"SAMLRequest\""));
        assert!(!with_nonce.contains("RelayState"));
    }

    #[test]
    fn page_refuses_non_http_destinations() {
        let limits = BindingLimits::default();
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example/acs",
            "",
            "ftp://x",
        ] {
            assert!(
                matches!(
                    auto_submit_page(bad, MessageKind::Response, "<x/>", None, None, &limits),
                    Err(Error::InvalidValue {
                        attribute: "action",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(
            auto_submit_page(
                "HTTPS://sp/acs",
                MessageKind::Response,
                "<x/>",
                None,
                None,
                &limits
            )
            .is_ok()
        );
    }

    #[test]
    fn decode_round_trip_and_caps() {
        let limits = BindingLimits::default();
        let xml = "<samlp:Response/>";
        let wrapped: String = encode(xml)
            .as_bytes()
            .chunks(4)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let m = decode(MessageKind::Response, &wrapped, Some("rs"), &limits).unwrap();
        assert_eq!(m.xml, xml);
        assert_eq!(m.relay_state.as_deref(), Some("rs"));
        let unwrapped = decode(MessageKind::Response, &encode(xml), None, &limits).unwrap();
        assert_eq!(unwrapped.xml, xml);
        assert_eq!(
            decode(
                MessageKind::Response,
                &encode(xml),
                Some(&"r".repeat(81)),
                &limits
            ),
            Err(Error::RelayStateTooLong { len: 81, limit: 80 })
        );
        assert_eq!(
            decode(MessageKind::Request, "%%%", None, &limits),
            Err(Error::Base64("SAMLRequest"))
        );
        let small = BindingLimits {
            max_decoded: 4,
            ..limits
        };
        assert_eq!(
            decode(MessageKind::Response, &encode(xml), None, &small),
            Err(Error::DecodedTooLarge { limit: 4 })
        );
        let tiny = BindingLimits {
            max_encoded: 4,
            ..limits
        };
        assert!(matches!(
            decode(MessageKind::Response, &encode(xml), None, &tiny),
            Err(Error::EncodedTooLarge { .. })
        ));
    }
}
