//! Metadata: every sample parses, signed samples verify with their configured key (and
//! only with it), and what we generate reads back equal.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use latchkey_saml::Error;
use latchkey_saml::assertion::name_id_format;
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::metadata::{
    ContactPerson, Endpoint, EntityDescriptor, IdpSsoDescriptor, IndexedEndpoint, KeyDescriptor,
    KeyUse, Metadata, MetadataOptions, Organization, SpSsoDescriptor, parse_metadata,
};
use latchkey_xmlsec::crypto::{Certificate, SigningKey, VerifyingKey};
use latchkey_xmlsec::dsig::{SignatureError, VerifyOptions};
use time::macros::datetime;

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/metadata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn unsigned(name: &str) -> EntityDescriptor {
    match parse_metadata(&data(name), &MetadataOptions::default()).unwrap() {
        Metadata::Entity(e) => *e,
        other => panic!("expected one entity, got {other:?}"),
    }
}

#[test]
fn every_sample_parses() {
    for name in [
        "idp_metadata.xml",
        "idp_ecdsa_metadata.xml",
        "sp_metadata.xml",
        "edugain_sp_signed.xml",
        "wsfederation_metadata.xml",
    ] {
        let e = unsigned(name);
        assert!(!e.entity_id.is_empty(), "{name}");
        assert!(
            e.idp.is_some() || e.sp.is_some(),
            "{name} has no SAML 2.0 role"
        );
    }
}

#[test]
fn samael_idp() {
    let e = unsigned("idp_metadata.xml");
    assert_eq!(e.entity_id, "https://sso.example.org/idp");
    assert_eq!(e.valid_until, Some(datetime!(2017-08-30 19:10:29 UTC)));
    let idp = e.idp.as_ref().unwrap();
    assert_eq!(e.idp_signing_keys().len(), 1);
    assert_eq!(
        idp.sso_services,
        [
            Endpoint {
                binding: binding_uri::HTTP_REDIRECT.into(),
                location: "https://idp.example.org/SAML2/SSO/Redirect".into(),
                response_location: None
            },
            Endpoint {
                binding: binding_uri::HTTP_POST.into(),
                location: "https://idp.example.org/SAML2/SSO/POST".into(),
                response_location: None
            }
        ]
    );
    // Expired metadata is refused once a clock is given.
    let opts = MetadataOptions {
        now: Some(datetime!(2026-11-28 14:00:00 UTC)),
        ..MetadataOptions::default()
    };
    assert_eq!(
        parse_metadata(&data("idp_metadata.xml"), &opts),
        Err(Error::MetadataExpired {
            valid_until: "2017-08-30T19:10:29Z".into()
        })
    );
}

#[test]
fn samael_ecdsa_idp() {
    let e = unsigned("idp_ecdsa_metadata.xml");
    assert_eq!(
        e.entity_id,
        "https://fujifish.github.io/samling/samling.html"
    );
    let keys = e.idp_signing_keys();
    assert_eq!(keys.len(), 1);
    assert!(matches!(
        keys[0].kind(),
        latchkey_xmlsec::crypto::KeyKind::Ec { .. }
    ));
}

#[test]
fn samael_sp() {
    let e = unsigned("sp_metadata.xml");
    assert_eq!(e.entity_id, "https://sp.example.com");
    assert_eq!(e.cache_duration, Some(time::Duration::seconds(604_800)));
    let sp = e.sp.as_ref().unwrap();
    assert!(sp.authn_requests_signed);
    assert!(!sp.want_assertions_signed);
    assert_eq!(sp.assertion_consumer_services.len(), 1);
    assert_eq!(sp.acs(None).unwrap().location, "https://sp.example.com/acs");
    assert_eq!(sp.acs(Some(1)).unwrap().index, 1);
    assert!(sp.acs(Some(2)).is_none());
    assert_eq!(e.sp_signing_keys().len(), 1);
    assert!(
        sp.keys
            .iter()
            .any(|k| k.key_use == Some(KeyUse::Encryption))
    );
}

fn pem_key(name: &str) -> VerifyingKey {
    VerifyingKey::from_pem(&data(name)).unwrap()
}

#[test]
fn edugain_signed_verifies_with_its_key_under_sha1_opt_in() {
    let key = [pem_key("edugain_sp_signed.pem")];
    let opts = MetadataOptions {
        trusted_keys: &key,
        verify: VerifyOptions::legacy(),
        ..MetadataOptions::default()
    };
    let m = parse_metadata(&data("edugain_sp_signed.xml"), &opts).unwrap();
    let e = m.find("https://login.offcampuspartners.com").unwrap();
    assert!(e.sp.is_some());
    // Without the SHA-1 opt-in, it is refused.
    let strict = MetadataOptions {
        trusted_keys: &key,
        ..MetadataOptions::default()
    };
    assert!(matches!(
        parse_metadata(&data("edugain_sp_signed.xml"), &strict),
        Err(Error::Xml(latchkey_xmlsec::Error::Signature(
            SignatureError::Sha1NotAllowed
        )))
    ));
}

#[test]
fn wsfed_signed_verifies_with_its_key_only() {
    let key = [pem_key("wsfederation_metadata.pem")];
    let opts = MetadataOptions {
        trusted_keys: &key,
        ..MetadataOptions::default()
    };
    let m = parse_metadata(&data("wsfederation_metadata.xml"), &opts).unwrap();
    let e = &m.entities()[0];
    assert_eq!(
        e.entity_id,
        "https://sts.windows.net/8bd6e98d-e212-4022-b13f-a244fab4c253/"
    );
    assert!(!e.idp.as_ref().unwrap().sso_services.is_empty());
    // The wrong key fails.
    let wrong = [pem_key("edugain_sp_signed.pem")];
    let opts = MetadataOptions {
        trusted_keys: &wrong,
        verify: VerifyOptions::legacy(),
        ..MetadataOptions::default()
    };
    assert!(parse_metadata(&data("wsfederation_metadata.xml"), &opts).is_err());
    // A changed byte fails.
    let original = data("wsfederation_metadata.xml");
    let tampered = original.replacen(
        "https://login.windows.net/",
        "https://login.evil.example/",
        1,
    );
    assert_ne!(tampered, original);
    let opts = MetadataOptions {
        trusted_keys: &key,
        ..MetadataOptions::default()
    };
    assert!(parse_metadata(&tampered, &opts).is_err());
}

fn test_identity() -> (SigningKey, Certificate) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["idp.example.org".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    (
        SigningKey::from_pem(&pair.serialize_pem()).unwrap(),
        Certificate::from_der(cert.der()).unwrap(),
    )
}

fn full_entity(cert: &Certificate) -> EntityDescriptor {
    let keys = vec![
        KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: vec![cert.clone()],
            encryption_methods: Vec::new(),
        },
        KeyDescriptor {
            key_use: Some(KeyUse::Encryption),
            certificates: vec![cert.clone()],
            encryption_methods: Vec::new(),
        },
    ];
    EntityDescriptor {
        entity_id: "https://both.example.org/<&>".into(),
        id: Some("_md1".into()),
        valid_until: Some(datetime!(2027-01-01 00:00:00 UTC)),
        cache_duration: Some(time::Duration::hours(6)),
        idp: Some(IdpSsoDescriptor {
            want_authn_requests_signed: true,
            keys: keys.clone(),
            name_id_formats: vec![
                name_id_format::PERSISTENT.into(),
                name_id_format::EMAIL.into(),
            ],
            sso_services: vec![
                Endpoint {
                    binding: binding_uri::HTTP_REDIRECT.into(),
                    location: "https://both.example.org/sso?a=1&b=2".into(),
                    response_location: None,
                },
                Endpoint {
                    binding: binding_uri::HTTP_POST.into(),
                    location: "https://both.example.org/sso".into(),
                    response_location: None,
                },
            ],
            slo_services: vec![Endpoint {
                binding: binding_uri::HTTP_REDIRECT.into(),
                location: "https://both.example.org/slo".into(),
                response_location: Some("https://both.example.org/slo/return".into()),
            }],
        }),
        sp: Some(SpSsoDescriptor {
            authn_requests_signed: true,
            want_assertions_signed: true,
            keys,
            name_id_formats: vec![name_id_format::TRANSIENT.into()],
            assertion_consumer_services: vec![
                IndexedEndpoint {
                    binding: binding_uri::HTTP_POST.into(),
                    location: "https://both.example.org/acs".into(),
                    index: 0,
                    is_default: Some(true),
                },
                IndexedEndpoint {
                    binding: binding_uri::HTTP_POST.into(),
                    location: "https://both.example.org/acs2".into(),
                    index: 7,
                    is_default: None,
                },
            ],
            slo_services: vec![],
        }),
        organization: Some(Organization {
            name: "Example & Co".into(),
            display_name: "Example".into(),
            url: "https://example.org".into(),
            lang: "en".into(),
        }),
        contacts: vec![ContactPerson {
            contact_type: "technical".into(),
            company: Some("Example".into()),
            given_name: Some("Ada".into()),
            surname: Some("Lovelace".into()),
            email_addresses: vec!["mailto:ada@example.org".into()],
            telephone_numbers: vec!["+1 555 0100".into()],
        }],
    }
}

#[test]
fn generated_metadata_round_trips() {
    let (_, cert) = test_identity();
    let e = full_entity(&cert);
    let xml = e.to_xml().unwrap();
    let parsed = parse_metadata(&xml, &MetadataOptions::default()).unwrap();
    assert_eq!(parsed, Metadata::Entity(Box::new(e.clone())));
    assert_eq!(e.sp.as_ref().unwrap().acs(None).unwrap().index, 0);
    assert_eq!(
        e.sp.as_ref().unwrap().acs(Some(7)).unwrap().location,
        "https://both.example.org/acs2"
    );
}

#[test]
fn generated_metadata_signed_verifies_and_tamper_fails() {
    let (key, cert) = test_identity();
    let mut e = full_entity(&cert);
    e.id = None;
    let xml = e.to_signed_xml(&key, Some(&cert)).unwrap();
    let trusted = [key.verifying_key().clone()];
    let opts = MetadataOptions {
        trusted_keys: &trusted,
        ..MetadataOptions::default()
    };
    let Metadata::Entity(parsed) = parse_metadata(&xml, &opts).unwrap() else {
        panic!("expected an entity")
    };
    assert!(parsed.id.as_deref().unwrap().starts_with('_'));
    e.id = parsed.id.clone();
    assert_eq!(*parsed, e);
    let tampered = xml.replace("https://both.example.org/acs2", "https://evil.example/acs");
    assert!(parse_metadata(&tampered, &opts).is_err());
    // Unsigned metadata is refused when a key is configured.
    assert!(matches!(
        parse_metadata(&e.to_xml().unwrap(), &opts),
        Err(Error::Xml(latchkey_xmlsec::Error::Signature(
            SignatureError::SignatureCount { found: 0 }
        )))
    ));
}

#[test]
fn aggregate_sets_aside_broken_and_expired_entities() {
    let (_, cert) = test_identity();
    let good = full_entity(&cert).to_xml().unwrap();
    let strip_ns = |s: &str| {
        s.replacen(
        " xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"",
        "",
        1,
    )
    };
    let mut expired = full_entity(&cert);
    expired.entity_id = "https://old.example.org".into();
    expired.valid_until = Some(datetime!(2020-01-01 00:00:00 UTC));
    let xml = format!(
        r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Name="fed" validUntil="2027-06-01T00:00:00Z" cacheDuration="PT1H"><md:EntitiesDescriptor Name="inner">{}</md:EntitiesDescriptor><md:EntityDescriptor entityID="https://broken.example.org"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="b" Location="l"/></md:SPSSODescriptor></md:EntityDescriptor>{}</md:EntitiesDescriptor>"#,
        strip_ns(&good),
        strip_ns(&expired.to_xml().unwrap()),
    );
    let opts = MetadataOptions {
        now: Some(datetime!(2026-11-28 14:00:00 UTC)),
        ..MetadataOptions::default()
    };
    let Metadata::Entities(agg) = parse_metadata(&xml, &opts).unwrap() else {
        panic!("expected an aggregate")
    };
    assert_eq!(agg.name.as_deref(), Some("fed"));
    assert_eq!(agg.cache_duration, Some(time::Duration::hours(1)));
    assert_eq!(agg.entities.len(), 1);
    assert_eq!(agg.entities[0].entity_id, "https://both.example.org/<&>");
    assert_eq!(agg.skipped.len(), 2);
    assert_eq!(
        agg.skipped[0].0.as_deref(),
        Some("https://broken.example.org")
    );
    assert!(matches!(
        agg.skipped[0].1,
        Error::MissingAttribute {
            attribute: "index",
            ..
        }
    ));
    assert_eq!(agg.skipped[1].0.as_deref(), Some("https://old.example.org"));
    assert!(matches!(agg.skipped[1].1, Error::MetadataExpired { .. }));
}
