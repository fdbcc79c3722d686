//! `latchkey saml decode` and `latchkey saml verify`, run as the built binary on messages
//! built and signed here (the IdP's key, certificate and metadata are made per test).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use latchkey_saml::assertion::{Attribute, NameId, authn_context, name_id_format};
use latchkey_saml::authn_request::{AuthnRequest, binding_uri};
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use latchkey_saml::encryption::{self, EncryptOptions};
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, KeyDescriptor, KeyUse,
};
use latchkey_saml::profile::idp::{
    IdpSettings, Issuance, ResponseTarget, SignedParts, build_response,
};
use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use time::OffsetDateTime;
use time::macros::datetime;

const IDP: &str = "https://idp.example.org";
const SP: &str = "https://wiki.example.com/saml/metadata";
const ACS: &str = "https://wiki.example.com/saml/acs";
const REQUEST: &str = "_req-7";
const T0: OffsetDateTime = datetime!(2026-03-01 09:00:00 UTC);
/// One minute after issue: inside the five-minute window.
const NOW: &str = "2026-03-01T09:01:00Z";

struct Idp {
    key: SigningKey,
    cert: Certificate,
}

fn idp() -> Idp {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["idp.example.org".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    Idp {
        key: SigningKey::from_pem(&kp.serialize_pem()).unwrap(),
        cert: Certificate::from_der(cert.der()).unwrap(),
    }
}

fn metadata(entity_id: &str, cert: &Certificate) -> String {
    let mut md = EntityDescriptor::new(entity_id);
    md.idp = Some(IdpSsoDescriptor {
        keys: vec![KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: vec![cert.clone()],
            encryption_methods: Vec::new(),
        }],
        sso_services: vec![Endpoint {
            binding: binding_uri::HTTP_REDIRECT.into(),
            location: format!("{IDP}/sso"),
            response_location: None,
        }],
        ..IdpSsoDescriptor::default()
    });
    md.to_xml().unwrap()
}

fn attributes() -> Vec<Attribute> {
    [
        ("mail", &["ada@example.org"][..]),
        ("givenName", &["Ada"]),
        ("sn", &["Lovelace"]),
        ("displayName", &["Ada <Countess> & Lovelace"]),
        ("groups", &["staff", "wiki-editors"]),
        ("employeeNumber", &["1815"]),
    ]
    .into_iter()
    .map(|(name, values)| Attribute {
        name: name.into(),
        name_format: None,
        friendly_name: None,
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    })
    .collect()
}

fn response(idp: &Idp, in_response_to: Option<&str>) -> String {
    build_response(
        &IdpSettings::new(IDP, format!("{IDP}/sso")),
        &ResponseTarget {
            sp_entity_id: SP.into(),
            acs_url: ACS.into(),
            in_response_to: in_response_to.map(str::to_owned),
        },
        &Issuance {
            name_id: NameId::new("ada@example.org", name_id_format::EMAIL),
            session_index: "_session-1".into(),
            authn_instant: T0,
            authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
            session_not_on_or_after: None,
            attributes: attributes(),
        },
        &idp.key,
        Some(&idp.cert),
        SignedParts::Assertion,
        T0,
    )
    .unwrap()
}

/// The ID attribute of the saml:Assertion element in `xml`.
fn assertion_id(xml: &str) -> String {
    let doc = latchkey_xmlsec::reader::parse(xml, &Default::default()).unwrap();
    let assertion = doc
        .tree()
        .descendants()
        .find(|n| n.tag_name().name() == "Assertion")
        .unwrap();
    assertion.attribute("ID").unwrap().to_owned()
}

fn latchkey(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The `Name: value` line of decode's summary.
fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
        .trim()
}

/// `latchkey saml decode FILE | head -1`: the reader is gone before the output is written.
/// Before, `println!` panicked (exit 101) on the closed pipe in most runs.
#[test]
fn decode_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.xml"), response(&idp(), Some(REQUEST))).unwrap();
    for _ in 0..5 {
        // The read end is closed before the command starts, so every write meets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["saml", "decode", "r.xml"])
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
    }
}

#[test]
fn decode_xml_shows_what_it_is_and_indents() {
    let dir = tempfile::tempdir().unwrap();
    let idp = idp();
    // On one line, as it was built; decode must lay it out.
    let xml = response(&idp, Some(REQUEST));
    assert!(!xml.contains("\n  <saml:Issuer>"));
    std::fs::write(dir.path().join("r.xml"), &xml).unwrap();
    let out = latchkey(dir.path(), &["saml", "decode", "r.xml"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert_eq!(field(&text, "Binding"), "none (XML)");
    assert_eq!(field(&text, "Message"), "samlp:Response");
    assert_eq!(field(&text, "Issuer"), IDP);
    assert_eq!(field(&text, "Destination"), ACS);
    assert_eq!(field(&text, "InResponseTo"), REQUEST);
    let signature = field(&text, "Signature");
    assert!(
        signature.starts_with("present, not verified: on saml:Assertion (ID _"),
        "{signature}"
    );
    assert!(!signature.contains("samlp:Response"), "{signature}");
    assert!(
        text.contains("\n  <saml:Issuer>https://idp.example.org</saml:Issuer>\n"),
        "{text}"
    );
    assert!(
        text.contains("\n    <ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\n")
    );
    // Values are escaped again, and the printed XML reads back with the same values.
    assert!(text.contains("Ada &lt;Countess&gt; &amp; Lovelace"));
    let printed = &text[text.find("<samlp:Response").unwrap()..];
    let doc = latchkey_xmlsec::reader::parse(printed, &Default::default()).unwrap();
    let values: Vec<_> = doc
        .tree()
        .descendants()
        .filter(|n| n.tag_name().name() == "AttributeValue")
        .filter_map(|n| n.text())
        .collect();
    assert!(values.contains(&"Ada <Countess> & Lovelace"), "{values:?}");
}

#[test]
fn decode_base64_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let xml = response(&idp(), None);
    // Line-wrapped, as POST bodies often are.
    let b64 = base64::engine::general_purpose::STANDARD.encode(&xml);
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let out = latchkey(
        dir.path(),
        &["saml", "decode", "-"],
        Some(&wrapped.join("\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert_eq!(field(&text, "Binding"), "HTTP-POST (base64)");
    assert_eq!(field(&text, "Message"), "samlp:Response");
    assert_eq!(field(&text, "Issuer"), IDP);
    assert!(!text.contains("InResponseTo:"));
}

#[test]
fn decode_redirect_url_inflates_and_reports_relay_state_and_query_signature() {
    let dir = tempfile::tempdir().unwrap();
    let mut request = AuthnRequest::new(SP, &format!("{IDP}/sso"), T0).unwrap();
    request.assertion_consumer_service_url = Some(ACS.into());
    let xml = request.to_xml().unwrap();
    let limits = BindingLimits::default();
    let query = redirect::encode(MessageKind::Request, &xml, Some("back/to?x=1"), &limits).unwrap();
    let url = redirect::url(&format!("{IDP}/sso"), &query);
    std::fs::write(dir.path().join("url.txt"), format!("{url}\n")).unwrap();
    let out = latchkey(dir.path(), &["saml", "decode", "url.txt"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert_eq!(
        field(&text, "Binding"),
        "HTTP-Redirect (SAMLRequest, DEFLATE + base64)"
    );
    assert_eq!(field(&text, "Message"), "samlp:AuthnRequest");
    assert_eq!(field(&text, "ID"), request.id);
    assert_eq!(field(&text, "Issuer"), SP);
    assert_eq!(field(&text, "Destination"), format!("{IDP}/sso"));
    assert_eq!(field(&text, "Signature"), "none");
    assert_eq!(field(&text, "RelayState"), "back/to?x=1");
    assert!(!text.contains("Query signature:"));
    assert!(text.contains(&format!("AssertionConsumerServiceURL=\"{ACS}\"")));

    // A signed query string alone (no URL): the SigAlg is reported, unverified.
    let sp = SigningKey::from_pem(
        &rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem(),
    )
    .unwrap();
    let signed = redirect::encode_signed(
        MessageKind::Request,
        &xml,
        None,
        &sp,
        sp.default_algorithm(),
        &limits,
    )
    .unwrap();
    let out = latchkey(dir.path(), &["saml", "decode"], Some(&signed));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert_eq!(
        field(&text, "Query signature"),
        format!("present, not verified: {}", sp.default_algorithm().uri())
    );
}

#[test]
fn decode_refuses_what_is_not_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = latchkey(
        dir.path(),
        &["saml", "decode", "-"],
        Some("not base64 at all!"),
    );
    // Bad input (2): what was given cannot be read as a message (1 before exit statuses
    // had classes).
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("base64"));
    let dtd = "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>";
    let out = latchkey(dir.path(), &["saml", "decode", "-"], Some(dtd));
    assert_eq!(out.status.code(), Some(2));
}

struct Verify {
    dir: tempfile::TempDir,
}

impl Verify {
    /// A directory with IdP metadata (`entity_id`, `cert`) and the Response, as XML and
    /// as base64.
    fn new(cert: &Certificate, entity_id: &str, response: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("idp.xml"), metadata(entity_id, cert)).unwrap();
        std::fs::write(dir.path().join("response.xml"), response).unwrap();
        std::fs::write(
            dir.path().join("response.b64"),
            base64::engine::general_purpose::STANDARD.encode(response),
        )
        .unwrap();
        Verify { dir }
    }

    /// Runs `saml verify` with the defaults (our SP, ACS and clock) unless `extra`
    /// overrides them; the input is `response.xml` unless `extra` names one.
    fn run(&self, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
        let mut args = vec!["saml", "verify", "--idp-metadata", "idp.xml"];
        for (flag, value) in [("--sp-entity-id", SP), ("--acs-url", ACS), ("--now", NOW)] {
            if !extra.contains(&flag) {
                args.extend_from_slice(&[flag, value]);
            }
        }
        args.extend_from_slice(extra);
        if !extra.iter().any(|a| a.starts_with("response.")) {
            args.push("response.xml");
        }
        let out = latchkey(self.dir.path(), &args, None);
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), json)
    }

    fn refused(&self, extra: &[&str]) -> (String, String) {
        let (code, json) = self.run(extra);
        assert_eq!(code, Some(1), "{json:#}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
        (
            json["error"].as_str().unwrap().to_owned(),
            json["rule"].as_str().unwrap().to_owned(),
        )
    }
}

#[test]
fn verify_accepts_a_signed_response_and_prints_the_subject() {
    let idp = idp();
    let xml = response(&idp, Some(REQUEST));
    let v = Verify::new(&idp.cert, IDP, &xml);
    for input in ["response.xml", "response.b64"] {
        let (code, json) = v.run(&["--request-id", REQUEST, input]);
        assert_eq!(code, Some(0), "{input}: {json:#}");
        assert_eq!(json["issuer"], IDP);
        assert_eq!(json["name_id"], "ada@example.org");
        assert_eq!(json["name_id_format"], name_id_format::EMAIL);
        assert_eq!(json["session_index"], "_session-1");
        assert_eq!(json["not_on_or_after"], "2026-03-01T09:05:00Z");
        assert_eq!(json["assertion_id"], assertion_id(&xml));
        let attributes = json["attributes"].as_object().unwrap();
        assert_eq!(attributes.len(), 6);
        assert_eq!(
            json["attributes"]["groups"],
            serde_json::json!(["staff", "wiki-editors"])
        );
        assert_eq!(
            json["attributes"]["displayName"][0],
            "Ada <Countess> & Lovelace"
        );
    }
}

#[test]
fn verify_unsolicited_needs_the_flag() {
    let idp = idp();
    let v = Verify::new(&idp.cert, IDP, &response(&idp, None));
    let (error, rule) = v.refused(&[]);
    assert_eq!(
        (error.as_str(), rule.as_str()),
        ("UNSOLICITED_NOT_ALLOWED", "in_response_to")
    );
    let (code, json) = v.run(&["--allow-unsolicited"]);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["name_id"], "ada@example.org");
}

#[test]
fn verify_refuses_each_broken_rule_with_its_code() {
    let idp = idp();
    let v = Verify::new(&idp.cert, IDP, &response(&idp, Some(REQUEST)));
    let refused = |extra: &[&str]| {
        let mut args = vec!["--request-id", REQUEST];
        args.extend_from_slice(extra);
        v.refused(&args)
    };
    // We are not the SP it was issued to.
    assert_eq!(
        refused(&["--sp-entity-id", "https://other.example.com"]),
        ("AUDIENCE_MISMATCH".into(), "audience".into())
    );
    // Posted to another ACS than ours.
    assert_eq!(
        refused(&["--acs-url", "https://wiki.example.com/other-acs"]),
        ("DESTINATION_MISMATCH".into(), "destination".into())
    );
    // Ten minutes after issue: beyond the five-minute window and the skew.
    assert_eq!(
        refused(&["--now", "2026-03-01T09:10:00Z"]),
        ("CONFIRMATION_EXPIRED".into(), "subject_confirmation".into())
    );
    // Two minutes before issue: beyond the skew.
    assert_eq!(
        refused(&["--now", "2026-03-01T08:58:00Z"]),
        ("NOT_YET_VALID".into(), "conditions".into())
    );
    // The skew is honoured: thirty seconds past the window, with sixty of skew.
    let (code, json) = v.run(&[
        "--request-id",
        REQUEST,
        "--now",
        "2026-03-01T09:05:30Z",
        "--skew",
        "60",
    ]);
    assert_eq!(code, Some(0), "{json:#}");
    // ... and not with none.
    assert_eq!(
        refused(&["--now", "2026-03-01T09:05:30Z", "--skew", "0"]).0,
        "CONFIRMATION_EXPIRED"
    );
    // It answers a request that is not ours.
    let (code, json) = v.run(&["--request-id", "_another"]);
    assert_eq!(code, Some(1));
    assert_eq!(json["error"], "IN_RESPONSE_TO_MISMATCH");
    assert_eq!(json["rule"], "in_response_to");
}

#[test]
fn verify_refuses_another_issuer_another_key_and_tampering() {
    let idp = idp();
    let other = self::idp();
    let xml = response(&idp, Some(REQUEST));
    // The metadata names another IdP with the same key: the Issuer does not match.
    let v = Verify::new(&idp.cert, "https://other-idp.example.org", &xml);
    let (error, rule) = v.refused(&["--request-id", REQUEST]);
    assert_eq!(
        (error.as_str(), rule.as_str()),
        ("ISSUER_MISMATCH", "issuer")
    );
    // The right IdP, but its metadata holds another key: the signature does not verify.
    let v = Verify::new(&other.cert, IDP, &xml);
    let (error, rule) = v.refused(&["--request-id", REQUEST]);
    assert_eq!(
        (error.as_str(), rule.as_str()),
        ("SIGNATURE_INVALID", "signature")
    );
    // A changed attribute value: the digest no longer matches.
    let tampered = xml.replace(">staff<", ">admins<");
    assert_ne!(tampered, xml);
    let v = Verify::new(&idp.cert, IDP, &tampered);
    let (error, rule) = v.refused(&["--request-id", REQUEST]);
    assert_eq!(
        (error.as_str(), rule.as_str()),
        ("DIGEST_MISMATCH", "signature")
    );
}

#[test]
fn verify_reports_unusable_inputs_apart_from_refusals() {
    let idp = idp();
    let v = Verify::new(&idp.cert, IDP, &response(&idp, Some(REQUEST)));
    for bad in [
        &["--now", "yesterday"][..],
        &["--skew", "3600"],
        &["--idp-metadata", "missing.xml"],
    ] {
        let mut args = vec![
            "saml",
            "verify",
            "--idp-metadata",
            "idp.xml",
            "--sp-entity-id",
            SP,
            "--acs-url",
            ACS,
        ];
        args.extend_from_slice(bad);
        args.push("response.xml");
        let out = latchkey(v.dir.path(), &args, None);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    }
    // A Response that is not base64 (nor XML) is a refusal of the Response, as JSON.
    std::fs::write(v.dir.path().join("response.b64"), "%%%").unwrap();
    let (error, rule) = v.refused(&["response.b64"]);
    assert_eq!(
        (error.as_str(), rule.as_str()),
        ("BASE64_INVALID", "binding")
    );
}

#[test]
fn verify_decrypts_an_encrypted_assertion_with_the_sp_key() {
    let idp = idp();
    let sp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let sp_cert = rcgen::CertificateParams::new(vec!["wiki.example.com".into()])
        .unwrap()
        .self_signed(&sp)
        .unwrap();
    let sp_cert = Certificate::from_der(sp_cert.der()).unwrap();
    let xml = response(&idp, Some(REQUEST));
    // The signed assertion, as a document of its own, encrypted for the SP, in place.
    let doc = latchkey_xmlsec::reader::parse(&xml, &Default::default()).unwrap();
    let assertion = doc
        .root_element()
        .children()
        .find(|n| n.tag_name().name() == "Assertion")
        .unwrap();
    let encrypted = encryption::encrypt_assertion(
        &xml[assertion.range()],
        &sp_cert,
        &EncryptOptions::default(),
    )
    .unwrap();
    let xml = format!(
        "{}{}{}",
        &xml[..assertion.range().start],
        encrypted,
        &xml[assertion.range().end..]
    );
    assert!(!xml.contains("ada@example.org"));
    let v = Verify::new(&idp.cert, IDP, &xml);
    std::fs::write(v.dir.path().join("sp.pem"), sp.serialize_pem()).unwrap();
    let (error, rule) = v.refused(&["--request-id", REQUEST]);
    assert_eq!(
        (error.as_str(), rule.as_str()),
        ("ENCRYPTED_ASSERTION", "encryption")
    );
    let (code, json) = v.run(&["--request-id", REQUEST, "--sp-key", "sp.pem"]);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["name_id"], "ada@example.org");
    assert_eq!(json["attributes"]["groups"][1], "wiki-editors");
    // Another SP's key cannot decrypt it.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    std::fs::write(v.dir.path().join("other.pem"), other.serialize_pem()).unwrap();
    let (error, rule) = v.refused(&["--request-id", REQUEST, "--sp-key", "other.pem"]);
    assert_eq!(
        (error.as_str(), rule.as_str()),
        ("DECRYPTION_FAILED", "encryption")
    );
}

/// The JSON lines of `latchkey bench protocol ... --json`, by figure name.
fn figures(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn figure<'a>(all: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    all.iter()
        .find(|f| f["figure"] == name)
        .unwrap_or_else(|| panic!("no {name} in {all:?}"))
}

/// The ratio printed is the quotient of the two rates printed beside it, and every rate is
/// a real measurement (positive, finite) of the key in the files.
fn assert_consistent(all: &[serde_json::Value], protocol: &str, raw: &str, key: &str) {
    assert_eq!(all.len(), 4, "{all:?}");
    for f in all {
        assert_eq!(f["key"], key, "{f}");
        let v = f["value"].as_f64().unwrap();
        assert!(v.is_finite() && v > 0.0, "{f}");
    }
    let (p, r) = (
        figure(all, protocol)["value"].as_f64().unwrap(),
        figure(all, raw)["value"].as_f64().unwrap(),
    );
    let ratio = figure(all, "ratio");
    assert_eq!(ratio["what"], format!("{protocol} / {raw}"));
    assert!((ratio["value"].as_f64().unwrap() - p / r).abs() < 1e-9 * (p / r));
    assert_eq!(figure(all, "peak_rss")["unit"], "KiB");
}

/// `bench protocol validate` takes `saml verify`'s options: it measures a Response that
/// validates under them, beside its own signature's raw verification with the metadata's
/// key, and refuses to measure one that does not validate.
#[test]
fn bench_protocol_validate_measures_a_given_response_against_its_own_signature() {
    let dir = tempfile::tempdir().unwrap();
    let idp = idp();
    std::fs::write(dir.path().join("idp.xml"), metadata(IDP, &idp.cert)).unwrap();
    let xml = response(&idp, Some(REQUEST));
    std::fs::write(dir.path().join("response.xml"), &xml).unwrap();
    std::fs::write(
        dir.path().join("tampered.xml"),
        xml.replace("ada@example.org", "eve@example.org"),
    )
    .unwrap();
    let args = |file: &'static str| {
        [
            "bench",
            "protocol",
            "validate",
            "--idp-metadata",
            "idp.xml",
            "--sp-entity-id",
            SP,
            "--acs-url",
            ACS,
            "--request-id",
            REQUEST,
            "--now",
            NOW,
            "--seconds",
            "0.2",
            "--json",
            file,
        ]
    };
    let all = figures(&latchkey(dir.path(), &args("response.xml"), None));
    assert_consistent(&all, "validate", "raw_verify", "P-256");
    assert!(
        figure(&all, "raw_verify")["what"]
            .as_str()
            .unwrap()
            .starts_with("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"),
        "{all:?}"
    );

    let refused = latchkey(dir.path(), &args("tampered.xml"), None);
    assert!(!refused.status.success());
    assert!(stdout(&refused).is_empty());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("does not validate"), "{err}");
}

/// `bench protocol issue` signs the given template's Assertion with the given key (or
/// builds the built-in Response), beside that key's raw signing; it refuses a certificate
/// of another key and a template whose Assertion is already signed.
#[test]
fn bench_protocol_issue_signs_a_template_or_the_built_in_response() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["idp.example.org".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    std::fs::write(dir.path().join("key.pem"), pair.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    let other = idp();
    std::fs::write(dir.path().join("other.pem"), other.cert.to_pem()).unwrap();
    let signed = response(&other, Some(REQUEST));
    let start = signed.find("<ds:Signature").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let template = format!("{}{}", &signed[..start], &signed[end..]);
    std::fs::write(dir.path().join("template.xml"), &template).unwrap();
    std::fs::write(dir.path().join("signed.xml"), &signed).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "protocol",
            "issue",
            "--key",
            "key.pem",
            "--seconds",
            "0.2",
            "--json",
        ];
        args.extend_from_slice(extra);
        latchkey(dir.path(), &args, None)
    };

    let all = figures(&run(&["--cert", "cert.pem", "--template", "template.xml"]));
    assert_consistent(&all, "issue", "raw_sign", "RSA-2048");
    assert_eq!(
        figure(&all, "issue")["what"],
        format!("sign the template's Assertion {}", assertion_id(&template))
    );
    let all = figures(&run(&["--cert", "cert.pem"]));
    assert_consistent(&all, "issue", "raw_sign", "RSA-2048");
    assert!(
        figure(&all, "issue")["what"]
            .as_str()
            .unwrap()
            .starts_with("build_response"),
        "{all:?}"
    );

    for (extra, says) in [
        (&["--cert", "other.pem"][..], "not the certificate"),
        (
            &["--cert", "cert.pem", "--template", "signed.xml"],
            "already signed",
        ),
    ] {
        let out = run(extra);
        assert!(!out.status.success(), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}
