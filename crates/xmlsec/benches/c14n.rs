//! Canonicalization throughput, on a parsed document (parsing is measured separately, to
//! show what c14n adds to it).
//!
//! Run: `cargo bench -p latchkey-xmlsec --bench c14n`. Inputs: a ~10 KB signed SAML
//! Response (exclusive C14N of the Response with its Signature excluded, as the
//! enveloped-signature transform does) and a ~1 MB generated metadata aggregate
//! (exclusive and inclusive C14N of the whole document). Throughput is in input bytes.
// Bench set-up works on fixed inputs; a failure there should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput};
use latchkey_xmlsec::c14n::{self, Algorithm, Options};
use latchkey_xmlsec::reader::{self, Limits};

const EXCLUSIVE: Algorithm = Algorithm::Exclusive {
    with_comments: false,
};
const INCLUSIVE: Algorithm = Algorithm::Inclusive {
    with_comments: false,
};

/// A signed SAML Response of about 10 KB: the shape an SP verifies on every login.
fn saml_response() -> String {
    let mut attributes = String::new();
    let mut i = 0;
    while attributes.len() < 7_000 {
        write!(
            attributes,
            "\n      <saml:Attribute Name=\"urn:oid:1.3.6.1.4.1.5923.1.1.1.{i}\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\" FriendlyName=\"attr{i}\">\
             <saml:AttributeValue xsi:type=\"xs:string\">value {i} &amp; more &lt;text&gt;</saml:AttributeValue></saml:Attribute>"
        )
        .unwrap();
        i += 1;
    }
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_resp1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" Destination="https://sp.example.org/saml/acs" InResponseTo="_req42">
  <saml:Issuer>https://idp.example.org/saml</saml:Issuer>
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
    <ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
      <ds:Reference URI="#_resp1">
        <ds:Transforms>
          <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
          <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
        </ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ds:DigestValue>q8Uo0x8m4zC7iA2n5wGk0qQ5wQh0X2vYxJm3b8o3m1Y=</ds:DigestValue>
      </ds:Reference>
    </ds:SignedInfo>
    <ds:SignatureValue>{sig}</ds:SignatureValue>
  </ds:Signature>
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
  <saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_assert1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
    <saml:Issuer>https://idp.example.org/saml</saml:Issuer>
    <saml:Subject>
      <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.org</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData NotOnOrAfter="2026-01-01T00:05:00Z" Recipient="https://sp.example.org/saml/acs" InResponseTo="_req42"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="2026-01-01T00:00:00Z" NotOnOrAfter="2026-01-01T00:05:00Z">
      <saml:AudienceRestriction><saml:Audience>https://sp.example.org/saml</saml:Audience></saml:AudienceRestriction>
    </saml:Conditions>
    <saml:AuthnStatement AuthnInstant="2026-01-01T00:00:00Z" SessionIndex="_sess1">
      <saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>
    </saml:AuthnStatement>
    <saml:AttributeStatement>{attributes}
    </saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>
"##,
        sig = "QUJD".repeat(86),
    )
}

/// A metadata aggregate of about 1 MB: many entities, several namespaces each, base64
/// certificates, localized UI strings.
fn metadata_aggregate() -> String {
    let cert = "MIIC".repeat(300);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
         xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" xmlns:mdui=\"urn:oasis:names:tc:SAML:metadata:ui\" \
         xmlns:shibmd=\"urn:mace:shibboleth:metadata:1.0\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         Name=\"urn:example:federation\" validUntil=\"2030-01-01T00:00:00Z\">\n",
    );
    let mut i = 0;
    while out.len() < 1_000_000 {
        write!(
            out,
            "  <md:EntityDescriptor entityID=\"https://idp{i}.example.org/idp\">\n\
             \x20   <md:Extensions><shibmd:Scope regexp=\"false\">idp{i}.example.org</shibmd:Scope></md:Extensions>\n\
             \x20   <md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n\
             \x20     <md:Extensions><mdui:UIInfo><mdui:DisplayName xml:lang=\"en\">Example &amp; Partners {i}</mdui:DisplayName>\
             <mdui:DisplayName xml:lang=\"de\">Beispiel {i}</mdui:DisplayName></mdui:UIInfo></md:Extensions>\n\
             \x20     <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n\
             \x20     <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"https://idp{i}.example.org/sso?a=1&amp;b=2\"/>\n\
             \x20     <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"https://idp{i}.example.org/sso\"/>\n\
             \x20   </md:IDPSSODescriptor>\n\
             \x20   <md:Organization><md:OrganizationName xml:lang=\"en\">Org {i}</md:OrganizationName></md:Organization>\n\
             \x20 </md:EntityDescriptor>\n"
        )
        .unwrap();
        i += 1;
    }
    out.push_str("</md:EntitiesDescriptor>\n");
    out
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut out = Vec::new();

    let response = saml_response();
    let doc = reader::parse(&response, &Limits::default()).unwrap();
    let signature = doc
        .tree()
        .descendants()
        .find(|n| n.tag_name().name() == "Signature")
        .unwrap();
    let mut group = c.benchmark_group("saml-response-10k");
    group.throughput(Throughput::Bytes(response.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| black_box(reader::parse(&response, &Limits::default()).unwrap()));
    });
    group.bench_function("exclusive-enveloped", |b| {
        b.iter(|| {
            out.clear();
            c14n::canonicalize(
                doc.root_element(),
                EXCLUSIVE,
                &Options::default(),
                Some(signature),
                &mut out,
            )
            .unwrap();
            black_box(&out);
        });
    });
    group.finish();

    let aggregate = metadata_aggregate();
    let limits = Limits::metadata();
    let doc = reader::parse(&aggregate, &limits).unwrap();
    let mut group = c.benchmark_group("metadata-1m");
    group.throughput(Throughput::Bytes(aggregate.len() as u64));
    group.sample_size(20);
    group.bench_function("parse", |b| {
        b.iter(|| black_box(reader::parse(&aggregate, &limits).unwrap()));
    });
    for (name, algorithm) in [("exclusive", EXCLUSIVE), ("inclusive", INCLUSIVE)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                c14n::canonicalize(
                    doc.tree().root(),
                    algorithm,
                    &Options::default(),
                    None,
                    &mut out,
                )
                .unwrap();
                black_box(&out);
            });
        });
    }
    group.finish();
    c.final_summary();
}
