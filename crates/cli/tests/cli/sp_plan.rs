//! `latchkey sp plan`, run as the built binary: a recorded Response goes through the ACS checks
//! (clock pinned with --now) and the provisioning plan is printed, nothing applied.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use latchkey_saml::assertion::{
    Assertion, Attribute, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, name_id_format,
};
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, KeyDescriptor, KeyUse,
};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::macros::datetime;

const IDP: &str = "https://idp.example.org";
const SP: &str = "https://wiki.example.com/saml/metadata";
const ACS: &str = "https://wiki.example.com/saml/acs";

fn setup(dir: &Path) -> String {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["idp.example.org".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let key = SigningKey::from_pem(&kp.serialize_pem()).unwrap();
    let mut idp = EntityDescriptor::new(IDP);
    idp.idp = Some(IdpSsoDescriptor {
        keys: vec![KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: vec![Certificate::from_der(cert.der()).unwrap()],
            encryption_methods: Vec::new(),
        }],
        sso_services: vec![Endpoint {
            binding: binding_uri::HTTP_REDIRECT.into(),
            location: format!("{IDP}/sso"),
            response_location: None,
        }],
        ..IdpSsoDescriptor::default()
    });
    std::fs::write(dir.join("idp.xml"), idp.to_xml().unwrap()).unwrap();
    std::fs::write(
        dir.join("sp.toml"),
        format!(
            r#"entity_id = "{SP}"
acs_url = "{ACS}"

[idp]
metadata_file = "idp.xml"

[provisioning]
identity = {{ source = "persistent_name_id" }}
deny_when_no_role = true

[[provisioning.fields]]
attribute = "mail"
field = "email"
ownership = "idp"
required = true

[[provisioning.roles]]
grant = "editor"
when = {{ attribute = "groups", contains = "wiki-editors" }}
"#
        ),
    )
    .unwrap();
    let t0 = datetime!(2020-01-01 10:00:00 UTC);
    let assertion = Assertion {
        id: "_a1".into(),
        issue_instant: t0,
        issuer: IDP.into(),
        subject: Some(Subject {
            name_id: Some(NameId::new("p-42", name_id_format::PERSISTENT)),
            confirmations: vec![SubjectConfirmation {
                method: BEARER.into(),
                data: Some(SubjectConfirmationData {
                    not_before: None,
                    not_on_or_after: Some(t0 + time::Duration::minutes(5)),
                    recipient: Some(ACS.into()),
                    in_response_to: Some("_req1".into()),
                    address: None,
                }),
            }],
        }),
        conditions: Some(Conditions {
            not_before: Some(t0),
            not_on_or_after: Some(t0 + time::Duration::minutes(5)),
            audience_restrictions: vec![vec![SP.into()]],
            one_time_use: false,
        }),
        authn_statements: vec![AuthnStatement {
            authn_instant: t0,
            session_index: Some("_s1".into()),
            session_not_on_or_after: None,
            authn_context_class_ref: None,
        }],
        attributes: vec![
            Attribute {
                name: "mail".into(),
                name_format: None,
                friendly_name: None,
                values: vec!["ada@example.org".into()],
            },
            Attribute {
                name: "groups".into(),
                name_format: None,
                friendly_name: None,
                values: vec!["wiki-editors".into()],
            },
        ],
    };
    let signed = dsig::sign(
        &assertion.to_xml().unwrap(),
        "_a1",
        &key,
        None,
        &SignOptions::default(),
    )
    .unwrap();
    Response {
        id: "_r1".into(),
        in_response_to: Some("_req1".into()),
        issue_instant: t0,
        destination: Some(ACS.into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    }
    .to_xml(Some(&signed))
    .unwrap()
}

fn latchkey(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn plan_prints_the_create_plan_for_a_recorded_response() {
    let dir = tempfile::tempdir().unwrap();
    let xml = setup(dir.path());
    std::fs::write(dir.path().join("response.xml"), &xml).unwrap();
    use base64::Engine as _;
    std::fs::write(
        dir.path().join("response.b64"),
        base64::engine::general_purpose::STANDARD.encode(&xml),
    )
    .unwrap();
    for file in ["response.xml", "response.b64"] {
        let out = latchkey(
            dir.path(),
            &[
                "sp",
                "plan",
                "--config",
                "sp.toml",
                "--request-id",
                "_req1",
                "--now",
                "2020-01-01T10:01:00Z",
                file,
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file}: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["plan"]["action"], "create");
        assert_eq!(v["plan"]["fields"]["email"], "ada@example.org");
        assert_eq!(v["plan"]["roles"][0], "editor");
        assert_eq!(v["plan"]["identity"]["key"], "name_id:p-42");
        assert_eq!(v["login"]["assertion_id"], "_a1");
        assert_eq!(v["login"]["attributes"]["groups"][0], "wiki-editors");
    }
}

#[test]
fn plan_applies_the_acs_rules() {
    let dir = tempfile::tempdir().unwrap();
    let xml = setup(dir.path());
    std::fs::write(dir.path().join("response.xml"), xml).unwrap();
    // Without --now the recorded response has long expired.
    let out = latchkey(
        dir.path(),
        &[
            "sp",
            "plan",
            "--config",
            "sp.toml",
            "--request-id",
            "_req1",
            "response.xml",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EXPIRED"));
    // Answering a different request is refused.
    let out = latchkey(
        dir.path(),
        &[
            "sp",
            "plan",
            "--config",
            "sp.toml",
            "--request-id",
            "_other",
            "--now",
            "2020-01-01T10:01:00Z",
            "response.xml",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("IN_RESPONSE_TO_MISMATCH"));
}
