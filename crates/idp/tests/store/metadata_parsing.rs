//! SP metadata read without a store: aggregates and signed metadata (the store cases of
//! metadata import are in `storage/metadata_import.rs`, whose fixtures these use).

use latchkey_idp::apps::{Binding, ImportWarning, MetadataImportError, NameIdFormat, SpMetadata};

use crate::storage::metadata_import::*;

#[test]
fn aggregates_need_a_choice_and_bindings_are_filtered() {
    let cert = rsa_cert_b64();
    let xml = aggregate(&cert);
    let err = import_err(&xml, &options());
    match &err {
        MetadataImportError::AmbiguousEntity { choices } => assert_eq!(
            choices,
            &["https://one.example.net/sp", "https://two.example.net/sp"]
        ),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("https://two.example.net/sp"));

    let mut pick = options();
    pick.entity_id = Some("https://nope.example.net".into());
    assert!(matches!(
        import_err(&xml, &pick),
        MetadataImportError::UnknownEntity { choices, .. } if choices.len() == 2
    ));

    pick.entity_id = Some("https://one.example.net/sp".into());
    let m = SpMetadata::parse(&xml, &pick).unwrap();
    assert_eq!(m.display_name.as_deref(), Some("One"));
    // Artifact is dropped with a warning; the default falls to the first POST endpoint
    // not marked false.
    let urls: Vec<(&str, u16, bool)> = m
        .acs
        .iter()
        .map(|a| (a.url.as_str(), a.index, a.is_default))
        .collect();
    assert_eq!(
        urls,
        [
            ("https://one.example.net/acs", 1, false),
            ("https://one.example.net/acs2", 2, true)
        ]
    );
    assert!(m.warnings.contains(&ImportWarning::AcsBindingIgnored {
        url: "https://one.example.net/artifact".into(),
        binding: ARTIFACT.into(),
    }));
    // Redirect preferred for logout.
    let slo = m.slo.as_ref().unwrap();
    assert_eq!(
        (slo.url.as_str(), slo.binding),
        ("https://one.example.net/slo", Binding::HttpRedirect)
    );
    // A key with no `use` serves both.
    assert_eq!(m.signing_certs.len(), 1);
    assert!(m.encryption_cert.is_some());
    assert_eq!(m.name_id_format, Some(NameIdFormat::Transient));
    let app = m.application(None);
    assert_eq!(app.name, "One");
    assert!(app.sign_assertion);
    assert_eq!(app.name_id.format, NameIdFormat::Transient);

    // An ECDSA key serves signing only: XML-Enc key transport here is RSA.
    let ec = entity(
        "https://ec.example.net/sp",
        "AuthnRequestsSigned=\"true\"",
        &format!(
            "{}{}",
            key(None, &cert_b64()),
            acs(POST, "https://ec.example.net/acs", 0, None)
        ),
    );
    let m = SpMetadata::parse(&ec, &options()).unwrap();
    assert_eq!(m.signing_certs.len(), 1);
    assert_eq!(m.encryption_cert, None);

    // A single EntityDescriptor must match the entity ID when one is given.
    let single = entity(
        "https://three.example.net/sp",
        "",
        &acs(POST, "https://three.example.net/acs", 0, None),
    );
    assert!(matches!(
        import_err(&single, &pick),
        MetadataImportError::UnknownEntity { .. }
    ));
}

/// eduGAIN SP metadata signed with RSA-SHA1 by a 1024-bit key (from pyXMLSecurity via signxml;
/// provenance in crates/saml/tests/data/README.md).
const EDUGAIN_SP: &str = include_str!("../../../saml/tests/data/metadata/edugain_sp_signed.xml");
const EDUGAIN_KEY: &str = include_str!("../../../saml/tests/data/metadata/edugain_sp_signed.pem");

#[test]
fn signed_metadata_is_read_only_when_it_verifies() {
    let trusted = [latchkey_xmlsec::crypto::Certificate::from_pem(EDUGAIN_KEY)
        .unwrap()
        .verifying_key()
        .clone()];
    let mut legacy = options();
    legacy.trusted_keys = &trusted;
    // SHA-1 and 1024-bit RSA are refused unless opted in.
    assert!(matches!(
        import_err(EDUGAIN_SP, &legacy),
        MetadataImportError::Malformed(_)
    ));
    legacy.verify.allow_sha1 = true;
    legacy.verify.allow_rsa_1024 = true;
    let m = SpMetadata::parse(EDUGAIN_SP, &legacy).unwrap();
    assert_eq!(m.entity_id, "https://login.offcampuspartners.com");
    assert_eq!(m.acs.len(), 1);
    assert_eq!(m.acs[0].binding, Binding::HttpPost);
    assert!(m.acs[0].is_default);
    // SAML 1.x and Artifact endpoints are named in warnings, not registered.
    let ignored = m
        .warnings
        .iter()
        .filter(|w| matches!(w, ImportWarning::AcsBindingIgnored { .. }))
        .count();
    assert!(ignored >= 1, "{:?}", m.warnings);

    // The same bytes with one character of an endpoint changed no longer verify.
    let post = EDUGAIN_SP.find(POST).unwrap();
    let loc = post + EDUGAIN_SP[post..].find("Location=\"https://").unwrap() + 18;
    let mut tampered = EDUGAIN_SP.to_string();
    tampered.replace_range(loc..loc + 1, "X");
    assert!(matches!(
        import_err(&tampered, &legacy),
        MetadataImportError::Malformed(_)
    ));
    // And a key that did not sign it is refused.
    let other = rcgen::generate_simple_self_signed(vec!["other.example".to_string()]).unwrap();
    let wrong = [
        latchkey_xmlsec::crypto::Certificate::from_pem(&other.cert.pem())
            .unwrap()
            .verifying_key()
            .clone(),
    ];
    legacy.trusted_keys = &wrong;
    assert!(matches!(
        import_err(EDUGAIN_SP, &legacy),
        MetadataImportError::Malformed(_)
    ));
}

/// `app add --metadata` (and the API) warn when the definition about to be stored — the
/// metadata's, a template's and the admin's choices together — contradicts what the SP
/// says it needs.
#[test]
fn a_definition_that_contradicts_the_metadata_is_warned_about() {
    let cert = rsa_cert_b64();
    let mut pick = options();
    pick.entity_id = Some("https://one.example.net/sp".into());
    let m = SpMetadata::parse(&aggregate(&cert), &pick).unwrap();
    // As read: the SP's own first supported format (transient), assertions signed.
    let app = m.application(None);
    assert_eq!(m.mismatches(&app), []);
    // A template or an admin that sends persistent, unsigned assertions.
    let mut changed = app.clone();
    changed.name_id.format = NameIdFormat::Persistent;
    changed.sign_assertion = false;
    let warnings = m.mismatches(&changed);
    assert!(
        warnings.iter().any(|w| matches!(
            w,
            ImportWarning::NameIdFormatMismatch { configured, listed }
                if configured.ends_with(":persistent") && listed.len() == 2
        )),
        "{warnings:?}"
    );
    assert!(warnings.contains(&ImportWarning::AssertionsNotSigned));
    assert!(
        warnings
            .iter()
            .any(|w| w.to_string().contains("--name-id-format"))
    );
    // An allowed list without any format the SP lists (custom, transient): warned about,
    // naming both lists; with transient on it, or with no list, not.
    let mut narrowed = changed.clone();
    narrowed.name_id_formats = vec![NameIdFormat::Persistent, NameIdFormat::EmailAddress];
    let warnings = m.mismatches(&narrowed);
    let disallowed = warnings
        .iter()
        .find(|w| matches!(w, ImportWarning::NameIdFormatsDisallowed { .. }))
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert_eq!(
        disallowed,
        &ImportWarning::NameIdFormatsDisallowed {
            allowed: vec!["persistent".into(), "email-address".into()],
            listed: m.name_id_formats.clone(),
        }
    );
    assert!(disallowed.to_string().contains("--name-id-formats"));
    narrowed.name_id_formats.push(NameIdFormat::Transient);
    let quiet = |w: &ImportWarning| !matches!(w, ImportWarning::NameIdFormatsDisallowed { .. });
    assert!(m.mismatches(&narrowed).iter().all(quiet));
    assert!(m.mismatches(&changed).iter().all(quiet));
    // An SP that lists no formats, or `unspecified`, takes any.
    let second = SpMetadata::parse(&aggregate(&cert), &{
        let mut o = options();
        o.entity_id = Some("https://two.example.net/sp".into());
        o
    })
    .unwrap();
    let mut any = second.application(None);
    any.name_id.format = NameIdFormat::EmailAddress;
    assert_eq!(second.mismatches(&any), []);
}

/// An SP whose metadata says it signs only with algorithms this IdP refuses (SHA-1 here)
/// is warned about at registration; one that also lists an accepted algorithm, or that
/// says nothing, is not.
#[test]
fn an_sp_that_signs_only_with_refused_algorithms_is_warned_about() {
    const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    const SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    let cert = rsa_cert_b64();
    let sp = |methods: &[&str]| {
        let listed: String = methods
            .iter()
            .map(|m| {
                format!(
                    "<alg:SigningMethod xmlns:alg=\"urn:oasis:names:tc:SAML:metadata:algsupport\" \
                     Algorithm=\"{m}\"/>"
                )
            })
            .collect();
        let xml = entity(
            "https://legacy.example.net/sp",
            "AuthnRequestsSigned=\"true\"",
            &format!(
                "<md:Extensions>{listed}</md:Extensions>{}{}",
                key(Some("signing"), &cert),
                acs(POST, "https://legacy.example.net/acs", 0, None)
            ),
        );
        let m = SpMetadata::parse(&xml, &options()).unwrap();
        let warnings = m.mismatches(&m.application(None));
        (m, warnings)
    };
    let (m, warnings) = sp(&[SHA1]);
    assert_eq!(m.signing_methods, [SHA1]);
    let refused = warnings
        .iter()
        .find(|w| matches!(w, ImportWarning::SigningMethodsRefused { .. }))
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert_eq!(
        refused,
        &ImportWarning::SigningMethodsRefused {
            listed: vec![SHA1.into()]
        }
    );
    assert!(refused.to_string().contains(SHA1), "{refused}");
    let quiet = |w: &ImportWarning| !matches!(w, ImportWarning::SigningMethodsRefused { .. });
    for methods in [&[SHA1, SHA256][..], &[]] {
        let (_, warnings) = sp(methods);
        assert!(warnings.iter().all(quiet), "{methods:?}: {warnings:?}");
    }
}

/// An SP whose signing certificate holds an RSA key under 2048 bits gets a warning naming the
/// size (the IdP will refuse its signatures); a 2048-bit key gets none.
#[test]
fn a_weak_rsa_signing_key_is_named() {
    let weak_pem = include_str!("../data/sp-rsa1024-cert.pem");
    let weak: String = weak_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let sp = |cert: &str| {
        let xml = entity(
            "https://weak.example.net/sp",
            "AuthnRequestsSigned=\"true\"",
            &format!(
                "{}{}",
                key(Some("signing"), cert),
                acs(POST, "https://weak.example.net/acs", 0, None)
            ),
        );
        SpMetadata::parse(&xml, &options()).unwrap()
    };
    let m = sp(&weak);
    assert_eq!(
        m.signing_certs.len(),
        1,
        "still registered: logout checks use it"
    );
    let warning = m
        .warnings
        .iter()
        .find(|w| matches!(w, ImportWarning::WeakSigningKey { .. }))
        .unwrap_or_else(|| panic!("{:?}", m.warnings));
    assert_eq!(warning, &ImportWarning::WeakSigningKey { bits: 1024 });
    assert!(warning.to_string().contains("1024-bit"), "{warning}");

    let strong = sp(&rsa_cert_b64());
    assert!(
        !strong
            .warnings
            .iter()
            .any(|w| matches!(w, ImportWarning::WeakSigningKey { .. })),
        "{:?}",
        strong.warnings
    );
}
