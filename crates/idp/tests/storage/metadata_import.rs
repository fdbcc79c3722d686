//! Registering applications from SP metadata: real samples, our own SP toolkit's metadata,
//! aggregates, templates, refresh, and every refusal leaving the store unchanged.

use latchkey_idp::Error;
use latchkey_idp::apps::{
    Binding, ImportWarning, MetadataImportError, NameIdFormat, NameIdSource, NewApplication,
    SpMetadata, SpMetadataOptions,
};
use latchkey_idp::audit::AuditFilter;
use time::OffsetDateTime;
use time::macros::datetime;

use super::{admin, snapshot};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    samael_sample_registers_with_its_acs_and_keys,
    sp_toolkit_metadata_registers,
    refusals_leave_the_store_unchanged,
    duplicate_entity_id_is_refused,
    refresh_replaces_endpoints_and_keeps_policy,
    a_metadata_refresh_that_changes_something_is_audited_with_the_change,
    metadata_validity_is_kept_and_the_dashboard_warns_before_it_ends,
);

/// samael's `test_vectors/sp_metadata.xml` (MIT; provenance in crates/saml/tests/data/README.md).
pub(crate) const SAMAEL_SP: &str =
    include_str!("../../../saml/tests/data/metadata/sp_metadata.xml");
/// samael's `test_vectors/idp_metadata.xml`: an IdP, no SP role.
pub(crate) const SAMAEL_IDP: &str =
    include_str!("../../../saml/tests/data/metadata/idp_metadata.xml");

pub(crate) const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub(crate) const ARTIFACT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact";
pub(crate) const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub(crate) const PAOS: &str = "urn:oasis:names:tc:SAML:2.0:bindings:PAOS";
pub(crate) const SOAP: &str = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP";

pub(crate) fn now() -> OffsetDateTime {
    datetime!(2026-06-01 12:00 UTC)
}

pub(crate) fn options() -> SpMetadataOptions<'static> {
    SpMetadataOptions::new(now())
}

/// The RSA certificate of samael's SP sample, base64 DER (encryption needs an RSA key).
pub(crate) fn rsa_cert_b64() -> String {
    let start = SAMAEL_SP.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
    let len = SAMAEL_SP[start..].find('<').unwrap();
    SAMAEL_SP[start..start + len].trim().to_string()
}

/// A fresh self-signed ECDSA certificate as base64 DER, for `ds:X509Certificate`.
pub(crate) fn cert_b64() -> String {
    let pem = rcgen::generate_simple_self_signed(vec!["sp.example.net".to_string()])
        .unwrap()
        .cert
        .pem();
    latchkey_xmlsec::crypto::Certificate::from_pem(&pem)
        .unwrap()
        .to_base64()
}

pub(crate) fn key(use_attr: Option<&str>, cert: &str) -> String {
    let use_attr = use_attr
        .map(|u| format!(" use=\"{u}\""))
        .unwrap_or_default();
    format!(
        "<md:KeyDescriptor{use_attr}><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\
         <ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data>\
         </ds:KeyInfo></md:KeyDescriptor>"
    )
}

/// One EntityDescriptor with an SP role made of `role_body`.
pub(crate) fn entity(entity_id: &str, role_attrs: &str, role_body: &str) -> String {
    format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
         xmlns:mdui=\"urn:oasis:names:tc:SAML:metadata:ui\" entityID=\"{entity_id}\">\
         <md:SPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\" {role_attrs}>\
         {role_body}</md:SPSSODescriptor></md:EntityDescriptor>"
    )
}

pub(crate) fn acs(binding: &str, url: &str, index: u16, default: Option<bool>) -> String {
    let default = default
        .map(|d| format!(" isDefault=\"{d}\""))
        .unwrap_or_default();
    format!(
        "<md:AssertionConsumerService Binding=\"{binding}\" Location=\"{url}\" index=\"{index}\"{default}/>"
    )
}

pub(crate) fn import_err(xml: &str, options: &SpMetadataOptions<'_>) -> MetadataImportError {
    match SpMetadata::parse(xml, options) {
        Ok(m) => panic!("imported {m:?}"),
        Err(e) => e,
    }
}

async fn samael_sample_registers_with_its_acs_and_keys(t: TestStore) {
    // Its validUntil (2020) has passed: refused unless the admin allows it.
    let err = import_err(SAMAEL_SP, &options());
    assert!(
        matches!(&err, MetadataImportError::Expired { valid_until } if valid_until.starts_with("2020-03-10")),
        "{err}"
    );
    assert_eq!(err.field(), "valid_until");

    let mut allow = options();
    allow.allow_expired = true;
    let (new, warnings) = NewApplication::from_sp_metadata(SAMAEL_SP, &allow).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| matches!(w, ImportWarning::Expired { .. })),
        "{warnings:?}"
    );
    assert_eq!(new.entity_id, "https://sp.example.com");
    assert_eq!(new.name, "https://sp.example.com");
    assert_eq!(new.acs.len(), 1);
    assert_eq!(new.acs[0].url, "https://sp.example.com/acs");
    assert_eq!(new.acs[0].binding, Binding::HttpPost);
    assert_eq!(new.acs[0].index, 1);
    assert!(new.acs[0].is_default);
    // AuthnRequestsSigned="true" with a signing key: the key is registered, so this IdP
    // will insist on signed requests from it.
    assert_eq!(new.signing_certs.len(), 1);
    assert!(new.encryption_cert.is_some());
    assert!(!new.encrypt_assertion);
    // The unspecified NameID format it lists, with a source that fits it.
    assert_eq!(new.name_id.format, NameIdFormat::Unspecified);
    assert_eq!(new.name_id.source, NameIdSource::Username);
    // WantAssertionsSigned="false" does not turn off the safe default.
    assert!(new.sign_assertion && new.sign_response);

    let app = t.store.apps().create(&admin(), new).await.unwrap();
    let stored = t
        .store
        .apps()
        .get_by_entity_id("https://sp.example.com")
        .await
        .unwrap();
    assert_eq!(stored, app);
    assert_eq!(
        latchkey_saml::profile::idp::default_acs(&stored.settings.acs)
            .unwrap()
            .url,
        "https://sp.example.com/acs"
    );
    assert!(stored.settings.signing_certs[0].starts_with("-----BEGIN CERTIFICATE-----"));
}

pub(crate) fn toolkit_sp(sign_requests: bool) -> latchkey_sp::ServiceProvider {
    let config: latchkey_sp::settings::SpConfig = toml::from_str(
        r#"
        entity_id = "https://wiki.example.net/saml/metadata"
        acs_url = "https://wiki.example.net/saml/acs"
        name_id_format = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
        [idp]
        metadata_url = "https://idp.example.net/saml/metadata"
        "#,
    )
    .unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["wiki.example.net".to_string()]).unwrap();
    let key = latchkey_sp::settings::SpKey {
        key: latchkey_xmlsec::crypto::SigningKey::from_pem(&generated.signing_key.serialize_pem())
            .unwrap(),
        certificate: latchkey_xmlsec::crypto::Certificate::from_pem(&generated.cert.pem()).unwrap(),
        sign_requests,
    };
    let idp = latchkey_sp::idp::IdpTrust {
        entity_id: "https://idp.example.net".into(),
        sso_url: "https://idp.example.net/saml/sso".into(),
        slo_url: None,
        keys: Vec::new(),
        want_authn_requests_signed: false,
        cache_duration: None,
        valid_until: None,
    };
    latchkey_sp::ServiceProvider::new(&config, Some(key), idp).unwrap()
}

async fn sp_toolkit_metadata_registers(t: TestStore) {
    // An SP that signs its requests: its certificate is registered.
    let sp = toolkit_sp(true);
    let xml = sp.metadata_xml().unwrap();
    let (new, warnings) = NewApplication::from_sp_metadata(&xml, &options()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(new.entity_id, "https://wiki.example.net/saml/metadata");
    assert_eq!(new.acs.len(), 1);
    assert_eq!(new.acs[0].url, "https://wiki.example.net/saml/acs");
    assert!(new.acs[0].is_default);
    assert_eq!(new.signing_certs.len(), 1);
    assert_eq!(new.name_id.format, NameIdFormat::EmailAddress);
    assert_eq!(new.name_id.source, NameIdSource::Email);
    let app = t.store.apps().create(&admin(), new).await.unwrap();
    assert_eq!(
        latchkey_saml::profile::idp::default_acs(&app.settings.acs)
            .unwrap()
            .url,
        "https://wiki.example.net/saml/acs"
    );

    // With the template: the template's release policy, the metadata's endpoints.
    let sp = toolkit_sp(false);
    let xml = sp
        .metadata_xml()
        .unwrap()
        .replace("wiki.example.net", "wiki2.example.net");
    let metadata = SpMetadata::parse(&xml, &options()).unwrap();
    // It publishes a signing key but does not sign AuthnRequests: the key is registered
    // (its logout messages are checked with it), and its AuthnRequests may come unsigned.
    assert!(metadata.warnings.is_empty(), "{:?}", metadata.warnings);
    let template = latchkey_idp::catalog::get("latchkey-wiki").unwrap();
    let new = metadata.application(Some(&template));
    assert_eq!(new.signing_certs.len(), 1);
    assert!(!new.authn_requests_signed);
    assert!(!new.allow_unsigned_logout);
    assert_eq!(new.name, "Latchkey demo wiki");
    assert_eq!(new.attributes, template.attributes);
    assert_eq!(new.name_id, template.name_id);
    assert_eq!(new.acs[0].url, "https://wiki2.example.net/saml/acs");
    let app = t.store.apps().create(&admin(), new).await.unwrap();
    assert_eq!(app.settings.attributes.len(), template.attributes.len());
}

/// An aggregate of two SPs; the first has mixed bindings, a UI name and a no-`use` key.
pub(crate) fn aggregate(cert: &str) -> String {
    let first = entity(
        "https://one.example.net/sp",
        "AuthnRequestsSigned=\"true\" WantAssertionsSigned=\"true\"",
        &format!(
            "<md:Extensions><mdui:UIInfo><mdui:DisplayName xml:lang=\"de\">Eins</mdui:DisplayName>\
             <mdui:DisplayName xml:lang=\"en\">One</mdui:DisplayName></mdui:UIInfo></md:Extensions>\
             {}<md:SingleLogoutService Binding=\"{SOAP}\" Location=\"https://one.example.net/soap\"/>\
             <md:SingleLogoutService Binding=\"{POST}\" Location=\"https://one.example.net/slo-post\"/>\
             <md:SingleLogoutService Binding=\"{REDIRECT}\" Location=\"https://one.example.net/slo\"/>\
             <md:NameIDFormat>urn:example:custom</md:NameIDFormat>\
             <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>\
             {}{}{}",
            key(None, cert),
            acs(ARTIFACT, "https://one.example.net/artifact", 0, Some(true)),
            acs(POST, "https://one.example.net/acs", 1, Some(false)),
            acs(POST, "https://one.example.net/acs2", 2, None),
        ),
    );
    let second = entity(
        "https://two.example.net/sp",
        "",
        &acs(POST, "https://two.example.net/acs", 0, None),
    );
    let strip = |e: String| e.replace(" xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\"", "");
    format!(
        "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{}{}</md:EntitiesDescriptor>",
        strip(first),
        strip(second)
    )
}

async fn refusals_leave_the_store_unchanged(t: TestStore) {
    let before = snapshot(&t.store).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("not xml", "<md:EntityDescriptor".into(), "metadata"),
        (
            "DTD",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"/>".into(),
            "metadata",
        ),
        (
            "missing entityID",
            "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\"/>".into(),
            "metadata",
        ),
        ("IdP metadata", SAMAEL_IDP.into(), "SPSSODescriptor"),
        (
            "no POST ACS",
            entity(
                "https://x.example.net",
                "",
                &format!(
                    "{}{}",
                    acs(ARTIFACT, "https://x.example.net/a", 0, None),
                    acs(PAOS, "https://x.example.net/ecp", 1, None)
                ),
            ),
            "acs",
        ),
        (
            "expired",
            entity("https://x.example.net", "", &acs(POST, "https://x.example.net/acs", 0, None))
                .replace("entityID=", "validUntil=\"2026-01-01T00:00:00Z\" entityID="),
            "valid_until",
        ),
    ];
    let mut allow = options();
    allow.allow_expired = true;
    for (what, xml, field) in cases {
        // The IdP sample is expired too; allow that so its missing SP role is what fails.
        let opts = if what == "IdP metadata" {
            &allow
        } else {
            &options()
        };
        let err = import_err(&xml, opts);
        assert_eq!(err.field(), field, "{what}: {err}");
        if what == "no POST ACS" {
            assert!(
                matches!(&err, MetadataImportError::NoSupportedAcs { found, .. } if found == &[ARTIFACT, PAOS]),
                "{err}"
            );
        }
    }
    // Metadata that parses but holds a URL the registry refuses: refused at create, by field.
    let bad_url = entity(
        "https://x.example.net",
        "",
        &acs(POST, "javascript:alert(1)", 0, None),
    );
    let (new, _) = NewApplication::from_sp_metadata(&bad_url, &options()).unwrap();
    let err = t.store.apps().create(&admin(), new).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidField {
                field: "acs_url",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(snapshot(&t.store).await, before);
}

async fn duplicate_entity_id_is_refused(t: TestStore) {
    let xml = toolkit_sp(true).metadata_xml().unwrap();
    let (new, _) = NewApplication::from_sp_metadata(&xml, &options()).unwrap();
    t.store.apps().create(&admin(), new.clone()).await.unwrap();
    let before = snapshot(&t.store).await;
    let err = t.store.apps().create(&admin(), new).await.unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateEntityId { entity_id } if entity_id == "https://wiki.example.net/saml/metadata"),
        "{err}"
    );
    assert_eq!(snapshot(&t.store).await, before);
}

async fn refresh_replaces_endpoints_and_keeps_policy(t: TestStore) {
    let apps = t.store.apps();
    let first = entity(
        "https://r.example.net/sp",
        "",
        &acs(POST, "https://r.example.net/old-acs", 0, None),
    );
    let (mut new, _) = NewApplication::from_sp_metadata(&first, &options()).unwrap();
    new.attributes = vec!["mail=email".parse().unwrap()];
    new.name = "Refreshed".into();
    let app = apps.create(&admin(), new).await.unwrap();

    let cert = rsa_cert_b64();
    let second = entity(
        "https://r.example.net/sp",
        "AuthnRequestsSigned=\"true\"",
        &format!(
            "{}{}<md:SingleLogoutService Binding=\"{REDIRECT}\" Location=\"https://r.example.net/slo\"/>{}",
            key(Some("signing"), &cert),
            key(Some("encryption"), &cert),
            acs(POST, "https://r.example.net/acs", 3, None)
        ),
    );
    let m = SpMetadata::parse(&second, &options()).unwrap();
    let updated = apps
        .update(&admin(), app.id, |s| m.apply_to(s))
        .await
        .unwrap();
    let s = &updated.settings;
    assert_eq!(s.acs.len(), 1);
    assert_eq!(
        (s.acs[0].url.as_str(), s.acs[0].index),
        ("https://r.example.net/acs", 3)
    );
    assert_eq!(s.slo.as_ref().unwrap().url, "https://r.example.net/slo");
    assert_eq!(s.signing_certs.len(), 1);
    assert!(s.encryption_cert.is_some());
    assert_eq!(s.name, "Refreshed");
    assert_eq!(s.attributes, app.settings.attributes);
    assert_eq!(apps.get(app.id).await.unwrap(), updated);
}

async fn a_metadata_refresh_that_changes_something_is_audited_with_the_change(t: TestStore) {
    let apps = t.store.apps();
    let first = entity(
        "https://m.example.net/sp",
        "",
        &acs(POST, "https://m.example.net/old-acs", 0, None),
    );
    let (new, _) = NewApplication::from_sp_metadata(&first, &options()).unwrap();
    let app = apps.create(&admin(), new).await.unwrap();
    let refreshes = || async {
        t.store
            .audit()
            .list(&AuditFilter {
                action: Some("app.metadata_refresh".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap()
    };
    let source = "https://m.example.net/metadata";

    // The same metadata again: nothing changes, nothing is recorded.
    let same = SpMetadata::parse(&first, &options()).unwrap();
    let before = snapshot(&t.store).await;
    assert!(
        apps.refresh_metadata(&admin(), app.id, &same, source)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(snapshot(&t.store).await, before);

    // The SP moved its ACS: one event, by the actor, with the ACS before and after only.
    let moved = entity(
        "https://m.example.net/sp",
        "",
        &acs(POST, "https://m.example.net/acs", 0, None),
    );
    let moved = SpMetadata::parse(&moved, &options()).unwrap();
    let updated = apps
        .refresh_metadata(&admin(), app.id, &moved, source)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.settings.acs[0].url, "https://m.example.net/acs");
    assert_eq!(apps.get(app.id).await.unwrap(), updated);
    let events = refreshes().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.actor, admin().as_str());
    assert_eq!(
        event.target_id.as_deref(),
        Some(app.id.to_string().as_str())
    );
    let (old, new) = (
        event.before.as_ref().unwrap(),
        event.after.as_ref().unwrap(),
    );
    let mut keys: Vec<&String> = new.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["acs", "source"]);
    assert_eq!(new["source"], source);
    assert!(old["acs"].to_string().contains("old-acs"), "{old}");
    assert!(
        new["acs"].to_string().contains("m.example.net/acs"),
        "{new}"
    );
}

/// An SP's metadata valid until `until`, with one HTTP-POST ACS.
fn valid_until(entity_id: &str, until: OffsetDateTime) -> String {
    let until = until
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    entity(
        entity_id,
        "",
        &acs(POST, &format!("{entity_id}/acs"), 0, None),
    )
    .replacen("entityID=", &format!("validUntil=\"{until}\" entityID="), 1)
}

async fn metadata_validity_is_kept_and_the_dashboard_warns_before_it_ends(t: TestStore) {
    use latchkey_idp::console::overview::{METADATA_EXPIRY_WARNING, expiring_metadata};
    let apps = t.store.apps();
    let now = t.store.now();
    let read = |xml: &str| SpMetadata::parse(xml, &SpMetadataOptions::new(now)).unwrap();
    let soon = read(&valid_until(
        "https://soon.example.net",
        now + time::Duration::days(3),
    ));
    let later = read(&valid_until(
        "https://later.example.net",
        now + METADATA_EXPIRY_WARNING + time::Duration::days(30),
    ));
    assert!(soon.valid_until.is_some());
    let a = apps
        .create_from_metadata(
            &admin(),
            soon.application(None),
            &soon,
            "https://soon.example.net/md",
        )
        .await
        .unwrap();
    let b = apps
        .create_from_metadata(&admin(), later.application(None), &later, "later.xml")
        .await
        .unwrap();
    // An application added by hand has no metadata to expire.
    apps.create(
        &admin(),
        NewApplication::new(
            "https://hand.example.net",
            "Hand",
            "https://hand.example.net/acs",
        ),
    )
    .await
    .unwrap();
    let warned = expiring_metadata(&t.store).await.unwrap();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].entity_id, "https://soon.example.net");
    assert_eq!(warned[0].source, "https://soon.example.net/md");
    assert_eq!(Some(warned[0].valid_until), soon.valid_until);

    // A refresh with metadata valid for longer moves the date, even when nothing else changed.
    let renewed = read(&valid_until(
        "https://soon.example.net",
        now + time::Duration::days(90),
    ));
    let changed = apps
        .refresh_metadata(&admin(), a.id, &renewed, "https://soon.example.net/md2")
        .await
        .unwrap();
    assert!(changed.is_none());
    assert!(expiring_metadata(&t.store).await.unwrap().is_empty());

    // Removing an application forgets its metadata (the row goes with it, so the
    // entity can be registered again from its metadata).
    apps.delete(&admin(), a.id).await.unwrap();
    apps.create_from_metadata(&admin(), soon.application(None), &soon, "again.xml")
        .await
        .unwrap();
    let warned = expiring_metadata(&t.store).await.unwrap();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].source, "again.xml");
    apps.delete(&admin(), b.id).await.unwrap();
}
