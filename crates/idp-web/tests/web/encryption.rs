//! Encrypted assertions end to end: an application that asks for them gets an
//! EncryptedAssertion (signed inside, encrypted to its certificate) that the SP profile
//! decrypts and accepts; one that asks without a usable certificate gets an error page,
//! never a clear assertion.

use latchkey_idp::Actor;

use super::sp_keys::*;
use super::support::*;

/// Removes the Response's own enveloped signature (the only one left in clear text once
/// the assertion is encrypted).
fn strip_response_signature(xml: &str) -> String {
    let close = "</ds:Signature>";
    assert_eq!(xml.matches(close).count(), 1, "one signature in clear text");
    let start = xml
        .find("<ds:Signature>")
        .or_else(|| xml.find("<ds:Signature "))
        .expect("a signed Response");
    let end = xml.find(close).unwrap() + close.len();
    format!("{}{}", &xml[..start], &xml[end..])
}

#[tokio::test]
async fn an_app_that_asks_for_encryption_gets_an_assertion_only_its_key_opens() {
    let idp = idp().await;
    let (key_pem, cert_pem) = sp_encryption_pair();
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;

    // The same login in the clear first, to compare what the SP learns.
    let request = authn_request(SP);
    let clear_xml = b.go(&redirect_uri(&request, None)).await.saml_response();
    let clear = sp_validate(&idp, SP, SP_ACS, &clear_xml, Some(&request.id)).unwrap();

    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.encryption_cert = Some(cert_pem.clone());
            a.encrypt_assertion = true;
        })
        .await
        .unwrap();
    let request = authn_request(SP);
    let xml = b.go(&redirect_uri(&request, None)).await.saml_response();
    assert!(xml.contains("EncryptedAssertion"));
    assert!(!xml.contains("<saml:Assertion"), "no clear assertion");
    for attribute in &clear.attributes {
        for value in &attribute.values {
            assert!(!xml.contains(value.as_str()), "{value} travels encrypted");
        }
    }
    // Without the key the SP cannot read it; with it, the profile accepts the same subject.
    assert_eq!(
        sp_validate(&idp, SP, SP_ACS, &xml, Some(&request.id)),
        Err(latchkey_saml::Error::EncryptedAssertion)
    );
    let subject = sp_decrypt_validate(&idp, SP, SP_ACS, &key_pem, &xml, &request.id).unwrap();
    assert_eq!(subject.issuer, clear.issuer);
    assert_eq!(subject.name_id.format, clear.name_id.format);
    assert_eq!(subject.attributes, clear.attributes);
    assert_eq!(subject.in_response_to.as_deref(), Some(request.id.as_str()));
    assert_ne!(subject.assertion_id, clear.assertion_id);

    // Another SP key opens nothing.
    let (other_key, _) = sp_encryption_pair();
    let err = sp_decrypt_validate(&idp, SP, SP_ACS, &other_key, &xml, &request.id).unwrap_err();
    assert_eq!(
        err,
        latchkey_saml::Error::Xml(
            latchkey_xmlsec::xmlenc::EncryptionError::DecryptionFailed.into()
        )
    );
}

#[tokio::test]
async fn an_encrypted_assertion_is_signed_even_when_the_app_asks_only_for_a_signed_response() {
    // The signed app is configured with sign_response = true, sign_assertion = false.
    let idp = idp().await;
    let (key_pem, cert_pem) = sp_encryption_pair();
    idp.store
        .apps()
        .update(&Actor::system(), idp.signed_app.id, |a| {
            a.encryption_cert = Some(cert_pem.clone());
            a.encrypt_assertion = true;
        })
        .await
        .unwrap();
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SIGNED_SP);
    let xml = b
        .go(&signed_redirect_uri(&request, &idp.sp_key))
        .await
        .saml_response();
    let subject =
        sp_decrypt_validate(&idp, SIGNED_SP, SIGNED_ACS, &key_pem, &xml, &request.id).unwrap();
    // Without the Response's signature, the assertion's own (inside the ciphertext) is
    // what the SP accepts.
    let unsigned = strip_response_signature(&xml);
    let again = sp_decrypt_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &key_pem,
        &unsigned,
        &request.id,
    )
    .unwrap();
    assert_eq!(again, subject);
}

#[tokio::test]
async fn encryption_without_a_usable_certificate_is_an_error_page_not_a_clear_assertion() {
    let idp = idp().await;
    // The registry refuses encryption without a certificate outright...
    let refused = idp
        .store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| a.encrypt_assertion = true)
        .await;
    assert!(refused.is_err());
    // ...and so is an X.509 certificate whose key cannot encrypt (ECDSA)...
    let ec = rcgen::generate_simple_self_signed(vec!["sp.example.com".to_string()])
        .unwrap()
        .cert
        .pem();
    let refused = idp
        .store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.encryption_cert = Some(ec.clone());
            a.encrypt_assertion = true;
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(latchkey_idp::Error::EncryptionKeyUnsupported { .. })
        ),
        "{refused:?}"
    );
    // ...but a row stored before that rule (written here behind the registry's back) is
    // refused again at SSO time.
    {
        use sqlx::Connection;
        let db = idp.key_dir.parent().unwrap().join("latchkey.db");
        let url = latchkey_idp::config::sqlite_url(&db);
        let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "UPDATE applications SET encryption_cert = ?1, encrypt_assertion = 1 WHERE id = ?2",
        )
        .bind(&ec)
        .bind(idp.app.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    }
    let legacy = idp.store.apps().get(idp.app.id).await.unwrap();
    assert!(legacy.settings.encrypt_assertion);
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let page = b.go(&redirect_uri(&authn_request(SP), None)).await;
    assert_eq!(page.error_code(), Some("SSO-ENCRYPTION"), "{}", page.body);
    assert!(page.field("SAMLResponse").is_none());
    assert!(page.status.is_client_error() || page.status.is_server_error());
}
