//! Interop with pysaml2 (tests/interop/saml_pysaml2.py) and python3-saml
//! (tests/interop/saml_onelogin.py), software nobody on this project wrote: pysaml2 loads
//! our metadata, sends us signed AuthnRequests (redirect and POST) that we verify, parse
//! and accept, answers our SP with signed Responses (and signed-then-encrypted
//! assertions, encrypted for the key our SP metadata names) that our profile accepts,
//! and accepts ours; python3-saml, in strict mode, accepts the IdP builder's Responses.
//!
//! The oracle is found through LATCHKEY_PYTHON (scripts/test points it at the venv),
//! falling back to `python3`; if pysaml2 cannot run, these tests FAIL with the reason.
// The crate takes `now` as a parameter; talking to the Python oracles, which stamp their
// messages by the wall clock, these tests pass the wall clock's.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::path::{Path, PathBuf};
use std::process::Command;

use latchkey_saml::assertion::name_id_format;
use latchkey_saml::authn_request::{AuthnRequest, binding_uri};
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, IndexedEndpoint, KeyDescriptor, KeyUse,
    SpSsoDescriptor,
};
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_xmlsec::crypto::{Certificate, SignatureAlgorithm};
use serde_json::Value;
use time::OffsetDateTime;

const IDP: &str = "https://idp.latchkey.test/saml";
const SSO_REDIRECT: &str = "https://idp.latchkey.test/saml/sso";
const SSO_POST: &str = "https://idp.latchkey.test/saml/sso/post";
const SLO: &str = "https://idp.latchkey.test/saml/slo";
const SP: &str = "https://sp.latchkey.test/saml";
const ACS: &str = "https://sp.latchkey.test/saml/acs";

struct Party {
    key_file: PathBuf,
    cert_file: PathBuf,
    cert: Certificate,
}

/// An RSA-2048 key and self-signed certificate, written where pysaml2 can read them.
fn party(dir: &Path, name: &str) -> Party {
    let pair = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let cert = rcgen::CertificateParams::new(vec![format!("{name}.latchkey.test")])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let key_file = dir.join(format!("{name}.key"));
    let cert_file = dir.join(format!("{name}.crt"));
    std::fs::write(&key_file, pair.serialize_pem()).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    Party {
        key_file,
        cert_file,
        cert: Certificate::from_der(cert.der()).unwrap(),
    }
}

fn signing(cert: &Certificate) -> Vec<KeyDescriptor> {
    vec![KeyDescriptor {
        key_use: Some(KeyUse::Signing),
        certificates: vec![cert.clone()],
        encryption_methods: Vec::new(),
    }]
}

fn idp_metadata(cert: &Certificate) -> EntityDescriptor {
    let mut e = EntityDescriptor::new(IDP);
    e.idp = Some(IdpSsoDescriptor {
        want_authn_requests_signed: true,
        keys: signing(cert),
        name_id_formats: vec![name_id_format::PERSISTENT.into()],
        sso_services: vec![
            Endpoint {
                binding: binding_uri::HTTP_REDIRECT.into(),
                location: SSO_REDIRECT.into(),
                response_location: None,
            },
            Endpoint {
                binding: binding_uri::HTTP_POST.into(),
                location: SSO_POST.into(),
                response_location: None,
            },
        ],
        slo_services: vec![Endpoint {
            binding: binding_uri::HTTP_REDIRECT.into(),
            location: SLO.into(),
            response_location: None,
        }],
    });
    e
}

fn sp_metadata(cert: &Certificate) -> EntityDescriptor {
    let mut e = EntityDescriptor::new(SP);
    e.sp = Some(SpSsoDescriptor {
        authn_requests_signed: true,
        want_assertions_signed: true,
        keys: signing(cert),
        name_id_formats: vec![name_id_format::PERSISTENT.into()],
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: binding_uri::HTTP_POST.into(),
            location: ACS.into(),
            index: 0,
            is_default: Some(true),
        }],
        slo_services: vec![],
    });
    e
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs the oracle script and parses its JSON output.
fn pysaml2<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Value {
    let (ok, stdout, stderr) = pysaml2_run(args);
    assert!(
        ok,
        "pysaml2 oracle failed (set LATCHKEY_PYTHON to the oracle venv, see scripts/test):\n{stderr}"
    );
    serde_json::from_str(&stdout).unwrap()
}

/// Runs the oracle script: (exit status ok, stdout, stderr). Panics if it cannot start
/// or if pysaml2 is not importable, so a missing oracle never passes silently.
fn pysaml2_run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    oracle_run("saml_pysaml2.py", args)
}

/// Runs python3-saml (OneLogin), the second oracle, and parses its JSON output.
fn onelogin<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Value {
    let (ok, stdout, stderr) = oracle_run("saml_onelogin.py", args);
    assert!(ok, "python3-saml oracle failed:\n{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn oracle_run<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> (bool, String, String) {
    let python = latchkey_testkit::oracle::python(&["saml2", "onelogin.saml2"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .join(script);
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the oracle {} with {python}: {e} (set LATCHKEY_PYTHON to the oracle venv, see scripts/test)", script.display()));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the oracle's Python packages are not installed for {python} (set LATCHKEY_PYTHON to the oracle venv, see scripts/test):\n{stderr}"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pysaml2_loads_our_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let sp = party(dir.path(), "sp");
    let idp_md = write(
        dir.path(),
        "idp.xml",
        &idp_metadata(&idp.cert).to_xml().unwrap(),
    );
    let sp_md = write(
        dir.path(),
        "sp.xml",
        &sp_metadata(&sp.cert).to_xml().unwrap(),
    );

    let seen = pysaml2(&["metadata", s(&idp_md)]);
    let e = &seen[IDP];
    assert_eq!(
        e["sso"],
        serde_json::json!([
            [binding_uri::HTTP_REDIRECT, SSO_REDIRECT],
            [binding_uri::HTTP_POST, SSO_POST]
        ])
    );
    assert_eq!(e["slo"], serde_json::json!([SLO]));
    assert_eq!(e["signing_certs"], 1);
    assert_eq!(
        e["name_id_formats"],
        serde_json::json!([name_id_format::PERSISTENT])
    );
    assert_eq!(e["want_authn_requests_signed"], "true");

    let seen = pysaml2(&["metadata", s(&sp_md)]);
    let e = &seen[SP];
    assert_eq!(e["acs"], serde_json::json!([[ACS, 0, "true"]]));
    assert_eq!(e["signing_certs"], 1);
    assert_eq!(e["authn_requests_signed"], "true");
    assert_eq!(e["want_assertions_signed"], "true");
}

#[test]
fn pysaml2_redirect_authn_request_verifies_and_parses() {
    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let sp = party(dir.path(), "sp");
    let idp_md = write(
        dir.path(),
        "idp.xml",
        &idp_metadata(&idp.cert).to_xml().unwrap(),
    );
    let out = pysaml2(&[
        "authn-request",
        "--idp-metadata",
        s(&idp_md),
        "--idp-entity-id",
        IDP,
        "--sp-entity-id",
        SP,
        "--acs",
        ACS,
        "--key",
        s(&sp.key_file),
        "--cert",
        s(&sp.cert_file),
        "--relay-state",
        "/after login?x=1&y=é",
    ]);
    let location = out["location"].as_str().unwrap();
    let (endpoint, query) = location.split_once('?').unwrap();
    assert_eq!(endpoint, SSO_REDIRECT);
    let msg = redirect::decode(query, &BindingLimits::default()).unwrap();
    assert_eq!(msg.kind, MessageKind::Request);
    assert_eq!(msg.relay_state.as_deref(), Some("/after login?x=1&y=é"));
    // The detached signature verifies with the SP's key only.
    let sp_key = [sp.cert.verifying_key().clone()];
    assert_eq!(
        msg.verify(&sp_key, &[SignatureAlgorithm::RsaSha256]),
        Ok(SignatureAlgorithm::RsaSha256)
    );
    let idp_key = [idp.cert.verifying_key().clone()];
    assert!(
        msg.verify(&idp_key, &[SignatureAlgorithm::RsaSha256])
            .is_err()
    );
    let req = AuthnRequest::parse(&msg.xml).unwrap();
    assert_eq!(req.id, out["request_id"].as_str().unwrap());
    assert_eq!(req.issuer.as_deref(), Some(SP));
    assert_eq!(req.destination.as_deref(), Some(SSO_REDIRECT));
    assert_eq!(req.assertion_consumer_service_url.as_deref(), Some(ACS));
    assert_eq!(
        req.protocol_binding.as_deref(),
        Some(binding_uri::HTTP_POST)
    );
    let sp_entity = pysaml2_sp_entity(&sp.cert);
    let requesting_sp = sp_entity.requesting_sp().unwrap();
    let accepted = latchkey_saml::profile::idp::accept_authn_request(
        &latchkey_saml::profile::idp::IdpSettings::new(IDP, SSO_REDIRECT),
        &requesting_sp,
        &req,
        true,
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert_eq!(accepted.acs_url, ACS);
    // A tampered query no longer verifies.
    let tampered = query.replace("RelayState=", "RelayState=x");
    let msg = redirect::decode(&tampered, &BindingLimits::default()).unwrap();
    assert!(
        msg.verify(&sp_key, &[SignatureAlgorithm::RsaSha256])
            .is_err()
    );
}

fn idp_response(sign_response: bool, sign_assertion: bool) -> (String, SpSettings) {
    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let sp = party(dir.path(), "sp");
    let sp_md = write(
        dir.path(),
        "sp.xml",
        &sp_metadata(&sp.cert).to_xml().unwrap(),
    );
    let mut args = vec![
        "idp-response",
        "--sp-metadata",
        s(&sp_md),
        "--sp-entity-id",
        SP,
        "--idp-entity-id",
        IDP,
        "--sso",
        SSO_REDIRECT,
        "--acs",
        ACS,
        "--request-id",
        "_req-interop-1",
        "--key",
        s(&idp.key_file),
        "--cert",
        s(&idp.cert_file),
    ];
    if sign_response {
        args.push("--sign-response");
    }
    if sign_assertion {
        args.push("--sign-assertion");
    }
    let out = pysaml2(&args);
    let settings = SpSettings::new(SP, ACS, IDP, vec![idp.cert.verifying_key().clone()]);
    (out["xml"].as_str().unwrap().to_owned(), settings)
}

fn accept(xml: &str, settings: &SpSettings) {
    // pysaml2 stamps the real time, so the check uses it too.
    let subject = validate_response(
        settings,
        xml,
        Some("_req-interop-1"),
        OffsetDateTime::now_utc(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(subject.issuer, IDP);
    assert_eq!(subject.name_id.value, "alice-pairwise-1");
    assert_eq!(
        subject.name_id.format.as_deref(),
        Some(name_id_format::PERSISTENT)
    );
    assert!(
        subject
            .attributes
            .iter()
            .any(|a| a.values.iter().any(|v| v == "alice@example.org")),
        "{:?}",
        subject.attributes
    );
    assert!(
        subject
            .attributes
            .iter()
            .any(|a| a.values == ["staff", "member"]),
        "{:?}",
        subject.attributes
    );
}

#[test]
fn pysaml2_signed_assertion_passes_profile() {
    let (xml, settings) = idp_response(false, true);
    accept(&xml, &settings);
}

#[test]
fn pysaml2_signed_response_passes_profile() {
    let (xml, settings) = idp_response(true, false);
    accept(&xml, &settings);
}

#[test]
fn pysaml2_both_signed_passes_profile_and_wrong_key_fails() {
    let (xml, settings) = idp_response(true, true);
    accept(&xml, &settings);
    let dir = tempfile::tempdir().unwrap();
    let stranger = party(dir.path(), "stranger");
    let wrong = SpSettings::new(SP, ACS, IDP, vec![stranger.cert.verifying_key().clone()]);
    assert!(
        validate_response(
            &wrong,
            &xml,
            Some("_req-interop-1"),
            OffsetDateTime::now_utc()
        )
        .is_err()
    );
}

/// A response built and signed by us, as the IdP crate will: a fresh, valid assertion.
fn our_response(idp: &Party, sign_response: bool, sign_assertion: bool) -> String {
    use latchkey_saml::assertion::{
        Assertion, Attribute, AuthnStatement, BEARER, Conditions, NameId, Subject,
        SubjectConfirmation, SubjectConfirmationData, attrname_format, authn_context,
    };
    use latchkey_saml::response::Response;
    use latchkey_saml::status::Status;
    use latchkey_xmlsec::crypto::SigningKey;
    use latchkey_xmlsec::dsig::{self, SignOptions};

    let key = SigningKey::from_pem(&std::fs::read_to_string(&idp.key_file).unwrap()).unwrap();
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::minutes(5);
    let assertion = Assertion {
        id: latchkey_saml::ids::new_id().unwrap(),
        issue_instant: now,
        issuer: IDP.into(),
        subject: Some(Subject {
            name_id: Some(NameId {
                value: "alice-pairwise-2".into(),
                format: Some(name_id_format::PERSISTENT.into()),
                name_qualifier: Some(IDP.into()),
                sp_name_qualifier: Some(SP.into()),
            }),
            confirmations: vec![SubjectConfirmation {
                method: BEARER.into(),
                data: Some(SubjectConfirmationData {
                    not_on_or_after: Some(later),
                    recipient: Some(ACS.into()),
                    in_response_to: Some("_req-interop-2".into()),
                    ..SubjectConfirmationData::default()
                }),
            }],
        }),
        conditions: Some(Conditions {
            not_before: Some(now - time::Duration::seconds(30)),
            not_on_or_after: Some(later),
            audience_restrictions: vec![vec![SP.into()]],
            one_time_use: false,
        }),
        authn_statements: vec![AuthnStatement {
            authn_instant: now,
            session_index: Some("_session-interop".into()),
            session_not_on_or_after: None,
            authn_context_class_ref: Some(authn_context::PASSWORD_PROTECTED_TRANSPORT.into()),
        }],
        attributes: vec![
            Attribute {
                name: "urn:oid:0.9.2342.19200300.100.1.3".into(),
                name_format: Some(attrname_format::URI.into()),
                friendly_name: Some("mail".into()),
                values: vec!["alice@example.org".into()],
            },
            Attribute {
                name: "urn:oid:1.3.6.1.4.1.5923.1.1.1.1".into(),
                name_format: Some(attrname_format::URI.into()),
                friendly_name: Some("eduPersonAffiliation".into()),
                values: vec!["staff".into(), "member & <more>".into()],
            },
        ],
    };
    let mut axml = assertion.to_xml().unwrap();
    if sign_assertion {
        axml = dsig::sign(
            &axml,
            &assertion.id,
            &key,
            Some(&idp.cert),
            &SignOptions::default(),
        )
        .unwrap();
    }
    let response = Response {
        id: latchkey_saml::ids::new_id().unwrap(),
        in_response_to: Some("_req-interop-2".into()),
        issue_instant: now,
        destination: Some(ACS.into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    };
    let mut xml = response.to_xml(Some(&axml)).unwrap();
    if sign_response {
        xml = dsig::sign(
            &xml,
            &response.id,
            &key,
            Some(&idp.cert),
            &SignOptions::default(),
        )
        .unwrap();
    }
    xml
}

fn pysaml2_accepts(sign_response: bool, sign_assertion: bool) {
    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let idp_md = write(
        dir.path(),
        "idp.xml",
        &idp_metadata(&idp.cert).to_xml().unwrap(),
    );
    let out = pysaml2(&sp_accept_args(
        &idp_md,
        &dir,
        &idp,
        sign_response,
        sign_assertion,
    ));
    assert_eq!(out["issuer"], IDP);
    assert_eq!(out["name_id"], "alice-pairwise-2");
    assert_eq!(out["name_id_format"], name_id_format::PERSISTENT);
    assert_eq!(out["session_index"], "_session-interop");
    assert_eq!(out["ava"]["mail"], serde_json::json!(["alice@example.org"]));
    assert_eq!(
        out["ava"]["eduPersonAffiliation"],
        serde_json::json!(["staff", "member & <more>"])
    );
}

#[test]
fn pysaml2_refuses_our_response_signed_by_a_key_not_in_metadata() {
    // Shows the oracle really checks: metadata names one key, the response uses another.
    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let stranger = party(dir.path(), "stranger");
    let idp_md = write(
        dir.path(),
        "idp.xml",
        &idp_metadata(&idp.cert).to_xml().unwrap(),
    );
    let (ok, stdout, _) = pysaml2_run(&sp_accept_args(&idp_md, &dir, &stranger, true, true));
    assert!(
        !ok,
        "pysaml2 accepted a response signed by an unknown key: {stdout}"
    );
}

fn sp_accept_args(
    idp_md: &Path,
    dir: &tempfile::TempDir,
    signer: &Party,
    sign_response: bool,
    sign_assertion: bool,
) -> Vec<String> {
    let response = write(
        dir.path(),
        "response.xml",
        &our_response(signer, sign_response, sign_assertion),
    );
    let mut args: Vec<String> = [
        "sp-accept",
        "--idp-metadata",
        s(idp_md),
        "--sp-entity-id",
        SP,
        "--acs",
        ACS,
        "--request-id",
        "_req-interop-2",
        "--response",
        s(&response),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    if sign_response {
        args.push("--want-response-signed".into());
    }
    if sign_assertion {
        args.push("--want-assertions-signed".into());
    }
    args
}

#[test]
fn pysaml2_accepts_our_signed_assertion() {
    pysaml2_accepts(false, true);
}

#[test]
fn pysaml2_accepts_our_signed_response() {
    pysaml2_accepts(true, false);
}

#[test]
fn pysaml2_accepts_our_doubly_signed_response() {
    pysaml2_accepts(true, true);
}

#[test]
fn pysaml2_accepts_the_idp_profile_builder_output() {
    use latchkey_saml::assertion::{Attribute, NameId, attrname_format, authn_context};
    use latchkey_saml::profile::idp::{
        IdpSettings, Issuance, ResponseTarget, SignedParts, build_response,
    };
    use latchkey_xmlsec::crypto::SigningKey;

    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let idp_md = write(
        dir.path(),
        "idp.xml",
        &idp_metadata(&idp.cert).to_xml().unwrap(),
    );
    let key = SigningKey::from_pem(&std::fs::read_to_string(&idp.key_file).unwrap()).unwrap();
    let now = OffsetDateTime::now_utc();
    let xml = build_response(
        &IdpSettings::new(IDP, SSO_REDIRECT),
        &ResponseTarget {
            sp_entity_id: SP.into(),
            acs_url: ACS.into(),
            in_response_to: Some("_req-interop-3".into()),
        },
        &Issuance {
            name_id: NameId::new("bob", name_id_format::PERSISTENT),
            session_index: "_session-3".into(),
            authn_instant: now,
            authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
            session_not_on_or_after: None,
            attributes: vec![Attribute {
                name: "urn:oid:0.9.2342.19200300.100.1.3".into(),
                name_format: Some(attrname_format::URI.into()),
                friendly_name: Some("mail".into()),
                values: vec!["bob@example.org".into()],
            }],
        },
        &key,
        Some(&idp.cert),
        SignedParts::Both,
        now,
    )
    .unwrap();
    let response = write(dir.path(), "response.xml", &xml);
    let out = pysaml2(&[
        "sp-accept",
        "--idp-metadata",
        s(&idp_md),
        "--sp-entity-id",
        SP,
        "--acs",
        ACS,
        "--request-id",
        "_req-interop-3",
        "--response",
        s(&response),
        "--want-response-signed",
        "--want-assertions-signed",
    ]);
    assert_eq!(out["name_id"], "bob");
    assert_eq!(out["session_index"], "_session-3");
    assert_eq!(out["ava"]["mail"], serde_json::json!(["bob@example.org"]));
}

/// Our view of pysaml2's SP, as the IdP would hold it in its metadata store.
fn pysaml2_sp_entity(cert: &Certificate) -> EntityDescriptor {
    sp_metadata(cert)
}

#[test]
fn pysaml2_post_authn_request_verifies_and_is_accepted_by_the_idp_profile() {
    use latchkey_saml::profile::idp::{IdpSettings, accept_authn_request};
    use latchkey_xmlsec::dsig::{self, VerifyOptions};
    use latchkey_xmlsec::reader::{self, Limits};

    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let sp = party(dir.path(), "sp");
    let idp_md = write(
        dir.path(),
        "idp.xml",
        &idp_metadata(&idp.cert).to_xml().unwrap(),
    );
    let out = pysaml2(&[
        "authn-request",
        "--post",
        "--idp-metadata",
        s(&idp_md),
        "--idp-entity-id",
        IDP,
        "--sp-entity-id",
        SP,
        "--acs",
        ACS,
        "--key",
        s(&sp.key_file),
        "--cert",
        s(&sp.cert_file),
    ]);
    let xml = out["xml"].as_str().unwrap();
    let doc = reader::parse(xml, &Limits::default()).unwrap();
    let sp_entity = pysaml2_sp_entity(&sp.cert);
    let keys = sp_entity.sp_signing_keys();
    let verified = dsig::verify_document_element(&doc, &keys, &VerifyOptions::default()).unwrap();
    let request = AuthnRequest::from_verified(&verified).unwrap();
    assert_eq!(request.id, out["request_id"].as_str().unwrap());
    assert_eq!(request.destination.as_deref(), Some(SSO_POST));
    let mut settings = IdpSettings::new(IDP, SSO_REDIRECT);
    settings.sso_urls.push(SSO_POST.into());
    let requesting_sp = sp_entity.requesting_sp().unwrap();
    let accepted = accept_authn_request(
        &settings,
        &requesting_sp,
        &request,
        true,
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert_eq!(accepted.acs_url, ACS);
    assert_eq!(accepted.request_id, request.id);
    // Signed by another key, the same request does not verify.
    let stranger = party(dir.path(), "stranger");
    let wrong = [stranger.cert.verifying_key().clone()];
    assert!(dsig::verify_document_element(&doc, &wrong, &VerifyOptions::default()).is_err());
}

/// A Response from the IdP profile builder, signed as `parts` says, by `signer`.
fn built_response(
    signer: &Party,
    parts: latchkey_saml::profile::idp::SignedParts,
    request_id: &str,
) -> String {
    use latchkey_saml::assertion::{Attribute, NameId, attrname_format, authn_context};
    use latchkey_saml::profile::idp::{IdpSettings, Issuance, ResponseTarget, build_response};
    use latchkey_xmlsec::crypto::SigningKey;

    let key = SigningKey::from_pem(&std::fs::read_to_string(&signer.key_file).unwrap()).unwrap();
    let now = OffsetDateTime::now_utc();
    build_response(
        &IdpSettings::new(IDP, SSO_REDIRECT),
        &ResponseTarget {
            sp_entity_id: SP.into(),
            acs_url: ACS.into(),
            in_response_to: Some(request_id.into()),
        },
        &Issuance {
            name_id: NameId::new("carol", name_id_format::PERSISTENT),
            session_index: "_session-4".into(),
            authn_instant: now,
            authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
            session_not_on_or_after: None,
            attributes: vec![Attribute {
                name: "mail".into(),
                name_format: Some(attrname_format::BASIC.into()),
                friendly_name: None,
                values: vec!["carol@example.org".into(), "c@example.org".into()],
            }],
        },
        &key,
        Some(&signer.cert),
        parts,
        now,
    )
    .unwrap()
}

fn onelogin_check(
    idp: &Party,
    signer: &Party,
    parts: latchkey_saml::profile::idp::SignedParts,
) -> Value {
    use latchkey_saml::profile::idp::SignedParts;
    let dir = tempfile::tempdir().unwrap();
    let response = write(
        dir.path(),
        "response.xml",
        &built_response(signer, parts, "_req-onelogin"),
    );
    let mut args = vec![
        "response",
        "--idp-cert",
        s(&idp.cert_file),
        "--idp-entity-id",
        IDP,
        "--sp-entity-id",
        SP,
        "--acs",
        ACS,
        "--request-id",
        "_req-onelogin",
        "--response",
        s(&response),
    ];
    if matches!(parts, SignedParts::Assertion | SignedParts::Both) {
        args.push("--want-assertions-signed");
    }
    if matches!(parts, SignedParts::Response | SignedParts::Both) {
        args.push("--want-messages-signed");
    }
    onelogin(&args)
}

#[test]
fn python3_saml_accepts_our_responses_strictly() {
    use latchkey_saml::profile::idp::SignedParts;
    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    for parts in [
        SignedParts::Assertion,
        SignedParts::Response,
        SignedParts::Both,
    ] {
        let out = onelogin_check(&idp, &idp, parts);
        assert_eq!(out["valid"], true, "{parts:?}: {out}");
        assert_eq!(out["name_id"], "carol");
        assert_eq!(out["name_id_format"], name_id_format::PERSISTENT);
        assert_eq!(out["session_index"], "_session-4");
        assert_eq!(
            out["attributes"]["mail"],
            serde_json::json!(["carol@example.org", "c@example.org"])
        );
    }
}

#[test]
fn python3_saml_refuses_our_response_signed_by_another_key() {
    use latchkey_saml::profile::idp::SignedParts;
    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let stranger = party(dir.path(), "stranger");
    let out = onelogin_check(&idp, &stranger, SignedParts::Both);
    assert_eq!(out["valid"], false, "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("Signature"),
        "{out}"
    );
}

/// Runs `xmlsec1 --verify` trusting only `cert_file`; returns whether it printed OK.
fn xmlsec1_verifies(cert_file: &Path, id_attr: &str, document: &Path) -> bool {
    let out = Command::new(latchkey_testkit::oracle::xmlsec1())
        .args([
            "--verify",
            "--enabled-key-data",
            "key-name",
            "--pubkey-cert-pem",
        ])
        .arg(cert_file)
        .args(["--id-attr:ID", id_attr])
        .arg(document)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run xmlsec1 ({e}); scripts/test installs it (Debian package xmlsec1)")
        });
    out.status.success()
}

#[test]
fn xmlsec1_verifies_our_signed_metadata_and_assertion() {
    use latchkey_saml::profile::idp::SignedParts;
    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let stranger = party(dir.path(), "stranger");
    let key = latchkey_xmlsec::crypto::SigningKey::from_pem(
        &std::fs::read_to_string(&idp.key_file).unwrap(),
    )
    .unwrap();
    let md = idp_metadata(&idp.cert)
        .to_signed_xml(&key, Some(&idp.cert))
        .unwrap();
    let md_file = write(dir.path(), "md.xml", &md);
    const ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor";
    assert!(xmlsec1_verifies(&idp.cert_file, ENTITY, &md_file));
    assert!(!xmlsec1_verifies(&stranger.cert_file, ENTITY, &md_file));
    let tampered = write(
        dir.path(),
        "md-tampered.xml",
        &md.replace(SSO_POST, "https://evil.example/sso"),
    );
    assert!(!xmlsec1_verifies(&idp.cert_file, ENTITY, &tampered));

    // A Response whose assertion we signed: xmlsec1 checks the assertion's signature.
    let response = built_response(&idp, SignedParts::Assertion, "_req-xmlsec1");
    let file = write(dir.path(), "response.xml", &response);
    assert!(xmlsec1_verifies(
        &idp.cert_file,
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        &file
    ));
}

/// A pysaml2 IdP Response whose assertion pysaml2 signed and then encrypted for the SP's
/// encryption certificate, which it found in our SP metadata (a `use="encryption"`
/// KeyDescriptor beside the signing one). `cipher` is the script's `--data-cipher`.
/// Returns the XML and settings holding the SP's decryption key.
fn encrypted_idp_response(cipher: &str, sign_response: bool) -> (String, SpSettings) {
    use latchkey_saml::encryption::DecryptionKey;

    let dir = tempfile::tempdir().unwrap();
    let idp = party(dir.path(), "idp");
    let sp = party(dir.path(), "sp");
    let sp_enc = party(dir.path(), "sp-enc");
    let mut md = sp_metadata(&sp.cert);
    md.sp.as_mut().unwrap().keys.push(KeyDescriptor {
        key_use: Some(KeyUse::Encryption),
        certificates: vec![sp_enc.cert.clone()],
        encryption_methods: Vec::new(),
    });
    let sp_md = write(dir.path(), "sp.xml", &md.to_xml().unwrap());
    let mut args = vec![
        "idp-response",
        "--sp-metadata",
        s(&sp_md),
        "--sp-entity-id",
        SP,
        "--idp-entity-id",
        IDP,
        "--sso",
        SSO_REDIRECT,
        "--acs",
        ACS,
        "--request-id",
        "_req-interop-1",
        "--key",
        s(&idp.key_file),
        "--cert",
        s(&idp.cert_file),
        "--sign-assertion",
        "--encrypt-assertion",
        "--data-cipher",
        cipher,
    ];
    if sign_response {
        args.push("--sign-response");
    }
    let out = pysaml2(&args);
    let mut settings = SpSettings::new(SP, ACS, IDP, vec![idp.cert.verifying_key().clone()]);
    let key_pem = std::fs::read_to_string(&sp_enc.key_file).unwrap();
    settings.decryption_keys = vec![DecryptionKey::from_pem(&key_pem).unwrap()];
    // pysaml2 encrypts with AES-128-CBC: the opt-in a deployment facing it would make.
    settings.decrypt_options = latchkey_saml::encryption::DecryptOptions::default();
    (out["xml"].as_str().unwrap().to_owned(), settings)
}

/// The `Algorithm` of every `EncryptionMethod` in `xml`, in document order: what
/// pysaml2 really used, so a test cannot pass on a cipher it did not exercise. Also
/// checks that no Assertion is left in clear beside the EncryptedAssertion.
fn encryption_methods(xml: &str) -> Vec<String> {
    use latchkey_xmlsec::reader::{self, Limits};
    let doc = reader::parse(xml, &Limits::default()).unwrap();
    let elements = || doc.tree().descendants().filter(|n| n.is_element());
    assert!(
        !elements().any(|n| n.tag_name().name() == "Assertion"),
        "an assertion in clear:\n{xml}"
    );
    elements()
        .filter(|n| n.tag_name().name() == "EncryptionMethod")
        .map(|n| n.attribute("Algorithm").unwrap().to_owned())
        .collect()
}

const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";

#[test]
fn pysaml2_signed_and_encrypted_assertion_passes_profile() {
    for (cipher, uri, sign_response) in [
        (
            "aes128-cbc",
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            false,
        ),
        (
            "aes128-cbc",
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            true,
        ),
        (
            "aes256-cbc",
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            false,
        ),
        (
            "aes128-gcm",
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            false,
        ),
        (
            "aes256-gcm",
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            false,
        ),
    ] {
        let (xml, settings) = encrypted_idp_response(cipher, sign_response);
        assert_eq!(encryption_methods(&xml), [uri, RSA_OAEP_MGF1P], "{cipher}");
        accept(&xml, &settings);
    }
}

#[test]
fn pysaml2_encrypted_assertion_with_another_sp_key_is_a_decryption_failure() {
    use latchkey_saml::Error;
    use latchkey_saml::encryption::DecryptionKey;
    use latchkey_xmlsec::xmlenc::EncryptionError;

    let (xml, mut settings) = encrypted_idp_response("aes128-cbc", false);
    let dir = tempfile::tempdir().unwrap();
    let stranger = party(dir.path(), "stranger");
    let stranger_pem = std::fs::read_to_string(&stranger.key_file).unwrap();
    settings.decryption_keys = vec![DecryptionKey::from_pem(&stranger_pem).unwrap()];
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        validate_response(&settings, &xml, Some("_req-interop-1"), now),
        Err(Error::Xml(EncryptionError::DecryptionFailed.into()))
    );
    settings.decryption_keys.clear();
    assert_eq!(
        validate_response(&settings, &xml, Some("_req-interop-1"), now),
        Err(Error::EncryptedAssertion)
    );
}

#[test]
fn pysaml2_encrypted_assertion_signed_by_another_idp_key_is_refused() {
    // The SP's key decrypts it, but the signature inside is checked against the IdP's
    // configured key, so a decrypted assertion is not trusted for being decryptable.
    let (xml, mut settings) = encrypted_idp_response("aes128-gcm", false);
    accept(&xml, &settings);
    let dir = tempfile::tempdir().unwrap();
    let stranger = party(dir.path(), "stranger");
    settings.idp_keys = vec![stranger.cert.verifying_key().clone()];
    let err = validate_response(
        &settings,
        &xml,
        Some("_req-interop-1"),
        OffsetDateTime::now_utc(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            latchkey_saml::Error::Xml(latchkey_xmlsec::Error::Signature(_))
        ),
        "{err:?}"
    );
}

/// pysaml2's IdP, left to itself, encrypts with 3DES (`tripledes-cbc`, hard-coded in
/// `sigver.pre_encryption_part` and its xmlsec1 call): a 64-bit block cipher we do not
/// implement on purpose, so the Response is refused by name, before any key is used.
#[test]
fn pysaml2_default_3des_encryption_is_refused_by_name() {
    use latchkey_saml::Error;
    use latchkey_xmlsec::xmlenc::EncryptionError;

    const TRIPLE_DES: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
    let (xml, settings) = encrypted_idp_response("pysaml2-default", false);
    assert_eq!(encryption_methods(&xml), [TRIPLE_DES, RSA_OAEP_MGF1P]);
    assert_eq!(
        validate_response(
            &settings,
            &xml,
            Some("_req-interop-1"),
            OffsetDateTime::now_utc()
        ),
        Err(Error::Xml(
            EncryptionError::UnknownDataAlgorithm {
                algorithm: TRIPLE_DES.into()
            }
            .into()
        ))
    );
}
