//! The rules an application definition must satisfy before it is stored.

use std::collections::HashSet;

use latchkey_saml::encryption::{DataAlgorithm, KeyTransport};
use latchkey_xmlsec::crypto::{Certificate, Curve, KeyKind};

use super::model::{Binding, NameIdFormat, NameIdSource, NewApplication};
use crate::directory::validate;
use crate::error::{Error, Result};

/// Longest entity ID (SAML core limits `entityID` to 1024 characters).
pub const MAX_ENTITY_ID: usize = 1024;
/// Longest RelayState (SAML bindings: 80 bytes).
pub const MAX_RELAY_STATE: usize = 80;

/// An absolute http(s) URL without credentials or fragment.
pub(crate) fn http_url(field: &'static str, raw: &str) -> Result<String> {
    let value = raw.trim();
    let url = url::Url::parse(value)
        .map_err(|e| Error::invalid(field, format!("{value:?} is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::invalid(
            field,
            format!("{value:?} must be an http(s) URL"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(field, format!("{value:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            field,
            format!("{value:?} must not carry credentials"),
        ));
    }
    if url.fragment().is_some() {
        return Err(Error::invalid(
            field,
            format!("{value:?} must not have a #fragment"),
        ));
    }
    Ok(value.to_string())
}

/// Longest tile login URL kept (browsers and proxies cope with far more; a sign-in start
/// page needs far less).
pub const MAX_LOGIN_URL: usize = 2048;

/// A tile's login URL: the portal puts it in an `href` for every assigned user to click, so
/// it must be a web page on the SP and nothing a browser would run or read locally
/// (`javascript:`, `data:`, a relative path the IdP would serve itself). On top of
/// [`http_url`] (absolute, a host, no credentials, no fragment): `https://`, with plain
/// `http://` only on a loopback host, where development SPs run and nothing crosses a
/// network; no whitespace or control characters, which URL parsers drop silently, so what
/// is stored is exactly what was checked.
pub fn login_url(raw: &str) -> Result<String> {
    const FIELD: &str = "login_url";
    let value = raw.trim();
    if value.len() > MAX_LOGIN_URL {
        return Err(Error::invalid(
            FIELD,
            format!("must be at most {MAX_LOGIN_URL} bytes"),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            FIELD,
            format!("{value:?} contains whitespace or control characters"),
        ));
    }
    let value = http_url(FIELD, value)?;
    let url = url::Url::parse(&value)
        .map_err(|e| Error::invalid(FIELD, format!("{value:?} is not an absolute URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() != "https" && !loopback {
        return Err(Error::invalid(
            FIELD,
            format!("{value:?} must be https:// (plain http:// only on localhost)"),
        ));
    }
    Ok(value)
}

/// PEM text holding one or more certificates and nothing else.
pub(crate) fn certificates(field: &'static str, pem_text: &str) -> Result<String> {
    let blocks =
        pem::parse_many(pem_text).map_err(|e| Error::invalid(field, format!("not PEM: {e}")))?;
    if blocks.is_empty() {
        return Err(Error::invalid(field, "no PEM certificate found"));
    }
    for (i, block) in blocks.iter().enumerate() {
        if block.tag() != "CERTIFICATE" {
            return Err(Error::invalid(
                field,
                format!("expected CERTIFICATE blocks, found {:?}", block.tag()),
            ));
        }
        // Only a well-formed X.509 certificate is stored, so a paste error surfaces now
        // rather than as a signature failure at the first sign-in.
        match x509_parser::parse_x509_certificate(block.contents()) {
            Ok(([], _)) => {}
            Ok(_) => {
                return Err(Error::invalid(
                    field,
                    format!("certificate {} has trailing bytes", i + 1),
                ));
            }
            Err(e) => {
                return Err(Error::invalid(
                    field,
                    format!("certificate {} is not valid X.509: {e}", i + 1),
                ));
            }
        }
    }
    Ok(pem_text.trim().to_string() + "\n")
}

/// Most `md:EncryptionMethod` algorithms kept for an application (Shibboleth SP lists
/// about a dozen).
pub const MAX_ENCRYPTION_METHODS: usize = 32;
/// Longest algorithm URI kept.
pub const MAX_ALGORITHM_URI: usize = 256;

/// The encryption certificate's key must be one XML Encryption can wrap a content key for.
/// It is read the way SSO reads it, so what passes here encrypts there.
fn encryption_key(pem: &str) -> Result<()> {
    let cert = Certificate::from_pem(pem).map_err(|e| Error::EncryptionKeyUnsupported {
        key: format!("unreadable: {e}"),
    })?;
    match cert.verifying_key().kind() {
        KeyKind::Rsa { .. } => Ok(()),
        KeyKind::Ec(curve) => Err(Error::EncryptionKeyUnsupported {
            key: match curve {
                Curve::P256 => "ECDSA P-256",
                Curve::P384 => "ECDSA P-384",
                Curve::P521 => "ECDSA P-521",
            }
            .to_owned(),
        }),
    }
}

/// The URI an admin means by the short name of an algorithm we implement (the URI's
/// fragment: `aes128-cbc`, `rsa-oaep-mgf1p`...); anything else is taken as typed.
fn algorithm_uri(raw: &str) -> &str {
    let data = DataAlgorithm::ALL.map(DataAlgorithm::uri);
    let transport = KeyTransport::ALL.map(KeyTransport::uri);
    data.into_iter()
        .chain(transport)
        .find(|uri| uri.rsplit_once('#').is_some_and(|(_, name)| name == raw))
        .unwrap_or(raw)
}

/// Advertised algorithm URIs (or short names of ours), trimmed and without repeats. They
/// are not checked against what we implement (an SP may list anything; the choice skips
/// what we do not allow), only held to the shape of a URI so that nothing else is stored.
fn encryption_methods(raw: &[String]) -> Result<Vec<String>> {
    const FIELD: &str = "encryption_methods";
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for uri in raw.iter().map(|u| algorithm_uri(u.trim())) {
        if uri.is_empty()
            || uri.len() > MAX_ALGORITHM_URI
            || uri.chars().any(|c| c.is_whitespace() || c.is_control())
            || !uri.contains(':')
        {
            return Err(Error::invalid(
                FIELD,
                format!("{uri:?} is not an algorithm URI"),
            ));
        }
        if !out.iter().any(|u| u == uri) {
            out.push(uri.to_owned());
        }
    }
    if out.len() > MAX_ENCRYPTION_METHODS {
        return Err(Error::invalid(
            FIELD,
            format!("more than {MAX_ENCRYPTION_METHODS} algorithms"),
        ));
    }
    Ok(out)
}

/// Checks and normalises a definition.
/// Longest slug.
pub const MAX_SLUG: usize = 40;

/// A slug an admin chose: 1-[`MAX_SLUG`] lower-case ASCII letters, digits and single
/// hyphens, not at either end, and never something that reads as an internal ID (the launch
/// route takes either, and must not have to guess).
pub fn slug(raw: &str) -> Result<String> {
    let value = raw.trim();
    let ok = !value.is_empty()
        && value.len() <= MAX_SLUG
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if !ok {
        return Err(Error::invalid(
            "slug",
            format!("{value:?} must be 1-{MAX_SLUG} lower-case letters, digits and single hyphens"),
        ));
    }
    if value.parse::<uuid::Uuid>().is_ok() {
        return Err(Error::invalid(
            "slug",
            format!("{value:?} reads as an application ID"),
        ));
    }
    Ok(value.to_owned())
}

/// The slug an application's name suggests: its letters and digits, lower-cased, other runs
/// of characters as one hyphen, at most 32 characters; `app` when nothing is left.
pub fn derive_slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if out.len() >= 32 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    match slug(&out) {
        Ok(s) => s,
        Err(_) => "app".to_owned(),
    }
}

pub(crate) fn check(mut app: NewApplication) -> Result<NewApplication> {
    let entity_id = app.entity_id.trim().to_string();
    if entity_id.is_empty() || entity_id.chars().count() > MAX_ENTITY_ID {
        return Err(Error::invalid(
            "entity_id",
            format!("must be 1-{MAX_ENTITY_ID} characters"),
        ));
    }
    if entity_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "entity_id",
            format!("{entity_id:?} contains whitespace"),
        ));
    }
    app.entity_id = entity_id;
    app.name = validate::name("name", &app.name)?;
    if !app.slug.trim().is_empty() {
        app.slug = slug(&app.slug)?;
    }

    if app.acs.is_empty() {
        return Err(Error::invalid(
            "acs_url",
            "at least one ACS endpoint is required",
        ));
    }
    let mut indexes = HashSet::new();
    for acs in &mut app.acs {
        acs.url = http_url("acs_url", &acs.url)?;
        if !matches!(acs.binding, Binding::HttpPost | Binding::HttpArtifact) {
            return Err(Error::invalid(
                "acs_binding",
                format!(
                    "{} cannot carry assertions; use post or artifact",
                    acs.binding.uri()
                ),
            ));
        }
        if !indexes.insert(acs.index) {
            return Err(Error::invalid(
                "acs_index",
                format!("index {} is used twice", acs.index),
            ));
        }
    }
    if app.acs.iter().filter(|a| a.is_default).count() > 1 {
        return Err(Error::invalid(
            "acs_default",
            "only one ACS endpoint may be the default",
        ));
    }
    if let Some(slo) = &mut app.slo {
        slo.url = http_url("slo_url", &slo.url)?;
    }

    app.signing_certs = app
        .signing_certs
        .iter()
        .map(|c| certificates("signing_cert", c))
        .collect::<Result<_>>()?;
    app.encryption_cert = app
        .encryption_cert
        .as_deref()
        .map(|c| certificates("encryption_cert", c))
        .transpose()?;
    if app.encrypt_assertion {
        let Some(pem) = app.encryption_cert.as_deref() else {
            return Err(Error::invalid(
                "encrypt_assertion",
                "encryption needs an encryption certificate",
            ));
        };
        encryption_key(pem)?;
    }
    app.encryption_methods = encryption_methods(&app.encryption_methods)?;
    if !app.sign_response && !app.sign_assertion {
        return Err(Error::invalid(
            "sign_assertion",
            "at least one of the response and the assertion must be signed",
        ));
    }

    match (&app.name_id.format, &app.name_id.source) {
        (NameIdFormat::Persistent | NameIdFormat::Transient, _) => {}
        (_, NameIdSource::Pairwise) => {
            return Err(Error::invalid(
                "name_id_source",
                "pairwise identifiers need the persistent NameID format",
            ));
        }
        (NameIdFormat::EmailAddress, NameIdSource::Username) => {
            return Err(Error::invalid(
                "name_id_source",
                "the emailAddress format needs an e-mail source (email or attr:NAME)",
            ));
        }
        _ => {}
    }
    let mut seen = HashSet::new();
    app.name_id_formats.retain(|f| seen.insert(f.uri()));
    if !app.name_id_formats.is_empty() && !app.name_id_formats.contains(&app.name_id.format) {
        return Err(Error::invalid(
            "name_id_formats",
            format!(
                "the allowed NameID formats must include the application's own ({})",
                app.name_id.format.short()
            ),
        ));
    }

    let mut names = HashSet::new();
    for mapping in &app.attributes {
        mapping.validate()?;
        if !names.insert(mapping.name.as_str()) {
            return Err(Error::invalid(
                "attribute mapping",
                format!("attribute {:?} is mapped twice", mapping.name),
            ));
        }
    }

    app.tile.description = validate::optional_name("description", app.tile.description.as_deref())?;
    app.tile.icon_url = app
        .tile
        .icon_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| http_url("icon_url", u))
        .transpose()?;
    if let Some(rs) = &app.tile.default_relay_state
        && (rs.len() > MAX_RELAY_STATE || rs.chars().any(char::is_control))
    {
        return Err(Error::invalid(
            "relay_state",
            format!("must be at most {MAX_RELAY_STATE} bytes of text"),
        ));
    }
    app.tile.login_url = app
        .tile
        .login_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(login_url)
        .transpose()?;
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> NewApplication {
        NewApplication::new(
            "https://sp.example.org",
            "Wiki",
            "https://sp.example.org/acs",
        )
    }

    #[test]
    fn defaults_pass() {
        assert!(check(app()).is_ok());
    }

    #[test]
    fn certificates_must_be_x509() {
        let cert = rcgen::generate_simple_self_signed(vec!["sp.example.org".to_string()])
            .unwrap()
            .cert
            .pem();
        let mut a = app();
        a.signing_certs = vec![cert.clone(), format!("{cert}\n{cert}")];
        a.encryption_cert = Some(self::cert(&rcgen::PKCS_RSA_SHA256));
        a.encrypt_assertion = true;
        let checked = check(a).unwrap();
        assert_eq!(checked.signing_certs.len(), 2);

        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let mut a = app();
        a.signing_certs = vec![garbage.to_string()];
        let err = check(a).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidField { field: "signing_cert", reason } if reason.contains("X.509")),
            "{err}"
        );
    }

    fn cert(alg: &'static rcgen::SignatureAlgorithm) -> String {
        let pair = rcgen::KeyPair::generate_for(alg).unwrap();
        rcgen::CertificateParams::new(vec!["sp.example.org".to_string()])
            .unwrap()
            .self_signed(&pair)
            .unwrap()
            .pem()
    }

    #[test]
    fn encryption_needs_a_certificate_with_an_rsa_key() {
        let mut a = app();
        a.encrypt_assertion = true;
        a.encryption_cert = Some(cert(&rcgen::PKCS_RSA_SHA256));
        assert!(check(a).is_ok());
        for (alg, key) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, "ECDSA P-256"),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "ECDSA P-384"),
        ] {
            let mut a = app();
            a.encrypt_assertion = true;
            a.encryption_cert = Some(cert(alg));
            match check(a.clone()).unwrap_err() {
                Error::EncryptionKeyUnsupported { key: got } => assert_eq!(got, key),
                other => panic!("{other}"),
            }
            // Kept without encryption (it encrypts nothing), refused again when it would.
            a.encrypt_assertion = false;
            assert!(check(a).is_ok());
        }
    }

    #[test]
    fn encryption_methods_are_uris_kept_in_order_once() {
        let gcm = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
        let v15 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
        let mut a = app();
        a.encryption_methods = vec![
            format!(" {gcm} "),
            v15.into(),
            "aes256-cbc".into(),
            "rsa-oaep".into(),
            "rsa-oaep-mgf1p".into(),
            gcm.into(),
            "urn:example:vendor-cipher".into(),
        ];
        assert_eq!(
            check(a).unwrap().encryption_methods,
            [
                gcm,
                v15,
                "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
                "http://www.w3.org/2009/xmlenc11#rsa-oaep",
                "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
                "urn:example:vendor-cipher",
            ]
        );
        for bad in [
            "",
            "   ",
            "aes-fast",
            "http://x/a b",
            "http://x/\u{7}",
            &"x:".repeat(200),
        ] {
            let mut a = app();
            a.encryption_methods = vec![bad.to_string()];
            assert!(
                matches!(
                    check(a),
                    Err(Error::InvalidField {
                        field: "encryption_methods",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let mut a = app();
        a.encryption_methods = (0..=MAX_ENCRYPTION_METHODS)
            .map(|i| format!("urn:example:{i}"))
            .collect();
        assert!(check(a).is_err());
    }

    #[test]
    fn rules_name_their_field() {
        let field_of = |a: NewApplication| match check(a).unwrap_err() {
            Error::InvalidField { field, .. } => field,
            other => panic!("{other}"),
        };
        let mut a = app();
        a.acs[0].url = "javascript:alert(1)".into();
        assert_eq!(field_of(a), "acs_url");
        let mut a = app();
        a.acs.clear();
        assert_eq!(field_of(a), "acs_url");
        let mut a = app();
        a.entity_id = " ".into();
        assert_eq!(field_of(a), "entity_id");
        let mut a = app();
        a.encrypt_assertion = true;
        assert_eq!(field_of(a), "encrypt_assertion");
        let mut a = app();
        a.signing_certs =
            vec!["-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into()];
        assert_eq!(field_of(a), "signing_cert");
        let mut a = app();
        a.name_id.format = NameIdFormat::EmailAddress;
        assert_eq!(field_of(a), "name_id_source");
        let mut a = app();
        a.tile.default_relay_state = Some("x".repeat(81));
        assert_eq!(field_of(a), "relay_state");
        let mut a = app();
        a.acs[0].binding = Binding::HttpRedirect;
        assert_eq!(field_of(a), "acs_binding");
    }

    fn login_url_of(url: &str) -> Result<Option<String>> {
        let mut a = app();
        a.tile.login_url = Some(url.to_owned());
        check(a).map(|a| a.tile.login_url)
    }

    fn refused(url: &str) -> String {
        match login_url_of(url) {
            Err(Error::InvalidField {
                field: "login_url",
                reason,
            }) => reason,
            other => panic!("{url:?} was not refused as login_url: {other:?}"),
        }
    }

    #[test]
    fn login_url_is_https_or_loopback_http() {
        for ok in [
            "https://sp.example.org/users/sign_in",
            "https://sp.example.org:8443/login?next=%2Fhome",
            "http://localhost:8081/login",
            "http://wiki.localhost/login",
            "http://127.0.0.1:8082/login",
            "http://[::1]/login",
        ] {
            assert_eq!(login_url_of(ok).unwrap().as_deref(), Some(ok), "{ok}");
        }
        // Trimmed; blank means none.
        assert_eq!(
            login_url_of("  https://sp.example.org/login \n")
                .unwrap()
                .as_deref(),
            Some("https://sp.example.org/login")
        );
        assert_eq!(login_url_of("   ").unwrap(), None);
        assert_eq!(check(app()).unwrap().tile.login_url, None);
    }

    #[test]
    fn login_url_refuses_script_and_data_urls() {
        assert!(refused("javascript:alert(1)").contains("http(s)"));
        assert!(refused("JavaScript:alert(document.cookie)").contains("http(s)"));
        assert!(refused("data:text/html,<script>alert(1)</script>").contains("http(s)"));
        assert!(refused("vbscript:msgbox(1)").contains("http(s)"));
        assert!(refused("file:///etc/passwd").contains("http(s)"));
    }

    #[test]
    fn login_url_refuses_relative_urls() {
        assert!(refused("/saml/login").contains("absolute"));
        assert!(refused("login").contains("absolute"));
        assert!(refused("//evil.example/login").contains("absolute"));
        assert!(refused("https://").contains("absolute"));
    }

    #[test]
    fn login_url_refuses_credentials() {
        assert!(refused("https://user@sp.example.org/login").contains("credentials"));
        assert!(refused("https://user:pw@sp.example.org/login").contains("credentials"));
        assert!(refused("https://sp.example.org@evil.example/login").contains("credentials"));
    }

    #[test]
    fn login_url_refuses_plain_http_off_loopback() {
        assert!(refused("http://sp.example.org/login").contains("https://"));
        assert!(refused("http://localhost.evil.example/login").contains("https://"));
        assert!(refused("http://127.0.0.1.nip.io/login").contains("https://"));
        assert!(refused("http://10.0.0.1/login").contains("https://"));
        assert!(refused("ftp://localhost/login").contains("http(s)"));
    }

    #[test]
    fn login_url_refuses_hidden_characters_fragments_and_length() {
        assert!(refused("https://sp.example.org/log\tin").contains("control"));
        assert!(refused("java\nscript:alert(1)").contains("control"));
        assert!(refused("https://sp.example.org/log in").contains("whitespace"));
        assert!(refused("https://sp.example.org/login#x").contains("fragment"));
        let long = format!("https://sp.example.org/{}", "a".repeat(MAX_LOGIN_URL));
        assert!(refused(&long).contains("at most"));
        let longest = format!(
            "https://sp.example.org/{}",
            "a".repeat(MAX_LOGIN_URL - "https://sp.example.org/".len())
        );
        assert_eq!(login_url_of(&longest).unwrap(), Some(longest));
    }
}
