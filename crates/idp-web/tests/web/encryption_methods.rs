//! The encryption algorithms an application advertised (`md:EncryptionMethod`, stored with
//! it) choose the content cipher and key transport of its EncryptedAssertion: the best of
//! them we allow, never RSA PKCS#1 v1.5 or 3DES, whatever it lists. The SP profile decrypts
//! every result.

use latchkey_idp::Actor;
use latchkey_idp::Clock;
use latchkey_idp::apps::{SpMetadata, SpMetadataOptions};
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::encryption::DecryptionKey;
use latchkey_saml::metadata::{
    EntityDescriptor, IndexedEndpoint, KeyDescriptor, KeyUse, SpSsoDescriptor,
};
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_xmlsec::crypto::Certificate;
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::tree::Node;

use super::support::*;

const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
const TRIPLEDES: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";

/// An RSA key pair for the SP: its private key PEM and certificate PEM.
fn sp_encryption_pair() -> (String, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sp.example.com".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap()
        .pem();
    (pair.serialize_pem(), cert)
}

/// The `Algorithm` of the EncryptionMethod directly under the first `xenc:{parent}`.
fn method_of(xml: &str, parent: &str) -> String {
    let doc = reader::parse(xml, &Limits::default()).unwrap();
    let element = doc
        .tree()
        .descendants()
        .find(|n| n.tag_name().namespace() == Some(XENC) && n.tag_name().name() == parent)
        .unwrap_or_else(|| panic!("no xenc:{parent} in {xml}"));
    element
        .children()
        .filter(Node::is_element)
        .find(|n| n.tag_name().name() == "EncryptionMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .unwrap()
        .to_owned()
}

/// Signs alice in at the Wiki, which encrypts to a fresh key and advertises `methods`;
/// returns (content cipher URI, key transport URI, the Response). The SP's profile must
/// decrypt and accept it.
async fn encrypted_with(methods: &[&str]) -> (String, String, String) {
    let idp = idp().await;
    let (key_pem, cert_pem) = sp_encryption_pair();
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.encryption_cert = Some(cert_pem.clone());
            a.encryption_methods = methods.iter().map(|m| (*m).to_owned()).collect();
            a.encrypt_assertion = true;
        })
        .await
        .unwrap();
    let (request_id, xml) = sign_in(&idp).await;
    accept(&idp, &key_pem, &xml, &request_id);
    (
        method_of(&xml, "EncryptedData"),
        method_of(&xml, "EncryptedKey"),
        xml,
    )
}

/// A fresh SP-initiated sign-in by alice at the Wiki: (request ID, Response).
async fn sign_in(idp: &Idp) -> (String, String) {
    let mut b = Browser::new(idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let xml = b.go(&redirect_uri(&request, None)).await.saml_response();
    assert!(xml.contains("EncryptedAssertion"), "{xml}");
    assert!(!xml.contains("<saml:Assertion"), "no clear assertion");
    (request.id, xml)
}

/// The SP's full profile check, holding its decryption key.
fn accept(idp: &Idp, key_pem: &str, xml: &str, request_id: &str) {
    let mut settings = SpSettings::new(
        SP,
        SP_ACS,
        idp.settings.entity_id.clone(),
        idp.idp_keys.clone(),
    );
    settings.decryption_keys = vec![DecryptionKey::from_pem(key_pem).unwrap()];
    // An SP that advertises CBC has opted in to reading it.
    settings.decrypt_options = latchkey_saml::encryption::DecryptOptions::default();
    let subject = validate_response(&settings, xml, Some(request_id), idp.clock.now());
    assert!(subject.is_ok(), "{subject:?}");
}

#[tokio::test]
async fn an_app_that_advertises_nothing_gets_aes256_gcm_under_rsa_oaep() {
    let (data, key, _) = encrypted_with(&[]).await;
    assert_eq!((data.as_str(), key.as_str()), (AES256_GCM, RSA_OAEP_MGF1P));
}

#[tokio::test]
async fn an_app_that_advertises_aes128_cbc_gets_aes128_cbc() {
    let (data, key, _) = encrypted_with(&[AES128_CBC]).await;
    assert_eq!((data.as_str(), key.as_str()), (AES128_CBC, RSA_OAEP_MGF1P));
}

#[tokio::test]
async fn the_best_advertised_algorithms_win_and_rsa_oaep_11_is_used_when_listed() {
    let (data, key, _) = encrypted_with(&[AES256_CBC, AES128_GCM, RSA_OAEP]).await;
    assert_eq!((data.as_str(), key.as_str()), (AES128_GCM, RSA_OAEP));
}

#[tokio::test]
async fn refused_algorithms_are_never_chosen_even_when_advertised() {
    // Only refused ones: the defaults.
    let (data, key, xml) = encrypted_with(&[RSA_1_5, TRIPLEDES]).await;
    assert_eq!((data.as_str(), key.as_str()), (AES256_GCM, RSA_OAEP_MGF1P));
    assert!(
        !xml.contains("rsa-1_5") && !xml.contains("tripledes"),
        "{xml}"
    );
    // Listed first, ahead of allowed ones: skipped for those.
    let (data, key, xml) = encrypted_with(&[TRIPLEDES, RSA_1_5, AES256_CBC]).await;
    assert_eq!((data.as_str(), key.as_str()), (AES256_CBC, RSA_OAEP_MGF1P));
    assert!(
        !xml.contains("rsa-1_5") && !xml.contains("tripledes"),
        "{xml}"
    );
}

#[tokio::test]
async fn algorithms_from_the_sps_metadata_reach_the_encrypted_assertion() {
    let idp = idp().await;
    let (key_pem, cert_pem) = sp_encryption_pair();
    let cert = Certificate::from_pem(&cert_pem).unwrap();
    // The SP's metadata: its encryption key lists AES-128-CBC (after 3DES); its signing
    // key (the same certificate here) lists AES-256-CBC, which is not for encryption.
    let mut md = EntityDescriptor::new(SP);
    md.sp = Some(SpSsoDescriptor {
        keys: vec![
            KeyDescriptor {
                key_use: Some(KeyUse::Signing),
                certificates: vec![cert.clone()],
                encryption_methods: vec![AES256_CBC.into()],
            },
            KeyDescriptor {
                key_use: Some(KeyUse::Encryption),
                certificates: vec![cert],
                encryption_methods: vec![TRIPLEDES.into(), AES128_CBC.into()],
            },
        ],
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: binding_uri::HTTP_POST.into(),
            location: SP_ACS.into(),
            index: 0,
            is_default: Some(true),
        }],
        ..SpSsoDescriptor::default()
    });
    let metadata = SpMetadata::parse(
        &md.to_xml().unwrap(),
        &SpMetadataOptions::new(idp.clock.now()),
    )
    .unwrap();
    assert_eq!(metadata.encryption_methods, [TRIPLEDES, AES128_CBC]);
    let app = idp
        .store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            metadata.apply_to(a);
            a.encrypt_assertion = true;
        })
        .await
        .unwrap();
    assert_eq!(app.settings.encryption_methods, [TRIPLEDES, AES128_CBC]);
    let (request_id, xml) = sign_in(&idp).await;
    accept(&idp, &key_pem, &xml, &request_id);
    assert_eq!(method_of(&xml, "EncryptedData"), AES128_CBC);
    assert_eq!(method_of(&xml, "EncryptedKey"), RSA_OAEP_MGF1P);
}
