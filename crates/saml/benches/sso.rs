//! What an IdP pays to issue a Response and an SP to accept one, beside the raw signature
//! operation of the same key measured in the same run (the machine may be loaded; the
//! ratios are what compare).
//!
//! Run: `cargo bench -p latchkey-saml --bench sso`. Issuance is
//! `profile::idp::build_response` (build the assertion with 6 attributes, sign it, wrap it
//! in the Response); validation is `profile::validate_response` (parse, verify, read,
//! every rule). Both with RSA-2048 (RSA-SHA256) and ECDSA P-256 (ECDSA-SHA256). For the
//! RSA validation the stages are measured too (parse, exclusive C14N of the assertion and
//! of SignedInfo, SHA-256 digest, signature verification on a parsed document), so the
//! summary can say where the time goes.
//!
//! The summary at the end does not reuse criterion's figures, which are taken one
//! function after another: on a shared machine the load changes between them. It runs
//! every operation again, round-robin in slices of about a millisecond for
//! `SSO_INTERLEAVED_SECS` (default 20) seconds, so each ratio compares times taken under
//! the same load. Besides each mean it prints the ratios by the median slice, which a
//! slice shared with another process does not move: on a loaded machine, what keeps an
//! A/B comparison of two builds honest.
// Bench set-up works on fixed inputs; a failure there should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use latchkey_saml::assertion::{Assertion, Attribute, NameId, authn_context, name_id_format};
use latchkey_saml::profile::idp::{
    IdpSettings, Issuance, ResponseTarget, SignedParts, build_response,
};
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_xmlsec::c14n::{self, Algorithm, Options};
use latchkey_xmlsec::crypto::{LegacyPolicy, SignatureAlgorithm, SigningKey};
use latchkey_xmlsec::dsig::{self, VerifyOptions};
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::tree::Node;
use time::macros::datetime;

const IDP: &str = "https://idp.example.org/saml";
const SSO: &str = "https://idp.example.org/saml/sso";
const SP: &str = "https://sp.example.com/saml";
const ACS: &str = "https://sp.example.com/saml/acs";
const REQUEST: &str = "_req-42";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    IssueRsa,
    RawSignRsa,
    ValidateRsa,
    RawVerifyRsa,
    IssueEc,
    RawSignEc,
    ValidateEc,
    RawVerifyEc,
    Parse,
    C14nAssertion,
    C14nSignedInfo,
    Digest,
    VerifyParsed,
    ParseVerifyRead,
}

/// One measured operation.
struct Op<'a> {
    name: &'static str,
    slot: Slot,
    run: Box<dyn FnMut() + 'a>,
}

fn op<'a, R>(name: &'static str, slot: Slot, mut f: impl FnMut() -> R + 'a) -> Op<'a> {
    Op {
        name,
        slot,
        run: Box::new(move || {
            black_box(f());
        }),
    }
}

/// Runs every op round-robin, each for about `slice` per round, until `total` has passed;
/// returns the mean time per call of each, and the median over its slices: on a loaded
/// machine a slice in which another process ran is an outlier, which moves the mean and
/// not the median.
fn interleaved(
    ops: &mut [Op<'_>],
    estimates: &[Duration],
    slice: Duration,
    total: Duration,
) -> (Vec<f64>, Vec<f64>) {
    let batch: Vec<u32> = estimates
        .iter()
        .map(|e| {
            (slice.as_secs_f64() / e.as_secs_f64().max(1e-9))
                .ceil()
                .clamp(1.0, 1e6) as u32
        })
        .collect();
    let mut spent = vec![Duration::ZERO; ops.len()];
    let mut calls = vec![0u64; ops.len()];
    let mut slices = vec![Vec::new(); ops.len()];
    let deadline = Instant::now() + total;
    while Instant::now() < deadline {
        for (i, op) in ops.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..batch[i] {
                (op.run)();
            }
            let elapsed = start.elapsed();
            spent[i] += elapsed;
            calls[i] += u64::from(batch[i]);
            slices[i].push(elapsed.as_secs_f64() / f64::from(batch[i]));
        }
    }
    let means = spent
        .iter()
        .zip(&calls)
        .map(|(t, n)| t.as_secs_f64() / (*n).max(1) as f64)
        .collect();
    let medians = slices
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
        })
        .collect();
    (means, medians)
}

fn issuance() -> Issuance {
    let t = datetime!(2026-11-28 14:00:00 UTC);
    let attributes = [
        (
            "urn:oid:0.9.2342.19200300.100.1.3",
            "mail",
            "alice@example.org",
        ),
        ("urn:oid:2.5.4.42", "givenName", "Alice"),
        ("urn:oid:2.5.4.4", "sn", "Example"),
        (
            "urn:oid:2.16.840.1.113730.3.1.241",
            "displayName",
            "Alice Example",
        ),
        ("urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "isMemberOf", "staff"),
        ("urn:oid:2.16.840.1.113730.3.1.3", "employeeNumber", "1815"),
    ]
    .into_iter()
    .map(|(name, friendly, value)| Attribute {
        name: name.into(),
        name_format: Some("urn:oasis:names:tc:SAML:2.0:attrname-format:uri".into()),
        friendly_name: Some(friendly.into()),
        values: vec![value.into()],
    })
    .collect();
    Issuance {
        name_id: NameId::new("alice@example.org", name_id_format::EMAIL),
        session_index: "_session-1".into(),
        authn_instant: t,
        authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
        session_not_on_or_after: None,
        attributes,
    }
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, local: &str) -> Node<'a, 'i> {
    node.children()
        .find(|c| c.tag_name().namespace() == Some(ns) && c.tag_name().name() == local)
        .unwrap()
}

fn main() {
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa).unwrap();
    let rsa_key = SigningKey::from_der(pkcs8.as_ref()).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_key = SigningKey::from_pem(&ec.serialize_pem()).unwrap();

    let now = datetime!(2026-11-28 14:00:00 UTC);
    let check_at = datetime!(2026-11-28 14:01:00 UTC);
    let idp = IdpSettings::new(IDP, SSO);
    let target = ResponseTarget {
        sp_entity_id: SP.into(),
        acs_url: ACS.into(),
        in_response_to: Some(REQUEST.into()),
    };
    let issuance = issuance();
    let issue = |key: &SigningKey| {
        build_response(
            &idp,
            &target,
            &issuance,
            key,
            None,
            SignedParts::Assertion,
            now,
        )
        .unwrap()
    };
    let rsa_xml = issue(&rsa_key);
    let ec_xml = issue(&ec_key);
    let sp = |key: &SigningKey| SpSettings::new(SP, ACS, IDP, vec![key.verifying_key().clone()]);
    let (rsa_sp, ec_sp) = (sp(&rsa_key), sp(&ec_key));
    assert!(validate_response(&rsa_sp, &rsa_xml, Some(REQUEST), check_at).is_ok());
    assert!(validate_response(&ec_sp, &ec_xml, Some(REQUEST), check_at).is_ok());

    // The raw operations sign and verify a message the size of the canonical SignedInfo.
    let doc = reader::parse(&rsa_xml, &Limits::default()).unwrap();
    let assertion = child(
        doc.root_element(),
        "urn:oasis:names:tc:SAML:2.0:assertion",
        "Assertion",
    );
    let signature = child(assertion, DSIG_NS, "Signature");
    let signed_info = child(signature, DSIG_NS, "SignedInfo");
    let exc = Algorithm::Exclusive {
        with_comments: false,
    };
    let no_prefixes = Options::default();
    let canonical_signed_info =
        c14n::canonicalize_to_vec(signed_info, exc, &no_prefixes, None).unwrap();
    let canonical_assertion =
        c14n::canonicalize_to_vec(assertion, exc, &no_prefixes, Some(signature)).unwrap();
    let message = canonical_signed_info.clone();
    let raw = |key: &SigningKey, alg| (key.sign(alg, &message).unwrap(), alg);
    let (rsa_sig, rsa_alg) = raw(&rsa_key, SignatureAlgorithm::RsaSha256);
    let (ec_sig, ec_alg) = raw(&ec_key, SignatureAlgorithm::EcdsaSha256);
    let verify_options = VerifyOptions::default();
    let rsa_keys = [rsa_key.verifying_key().clone()];

    // `SSO_PROFILE_LOOP=<what> cargo bench ... --bench sso` runs one operation in a plain
    // loop instead, for `valgrind --tool=callgrind` on the bench binary.
    // `SSO_PROFILE_ITERS` (default 2,000) makes the loop long enough for `perf record`, where
    // the setup's key generation would otherwise dominate. `verify-rsa` (the raw verify)
    // and `read-rsa` (parse, verify, read the assertion: no rules) are the loops to hold a
    // validation's profile against.
    if let Ok(what) = std::env::var("SSO_PROFILE_LOOP") {
        let iterations = std::env::var("SSO_PROFILE_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2_000);
        for _ in 0..iterations {
            match what.as_str() {
                "validate-rsa" => {
                    black_box(
                        validate_response(&rsa_sp, &rsa_xml, Some(REQUEST), check_at).unwrap(),
                    );
                }
                "issue-ec" => {
                    black_box(issue(&ec_key));
                }
                "read-rsa" => {
                    let doc = reader::parse(&rsa_xml, &Limits::default()).unwrap();
                    let node = child(
                        doc.root_element(),
                        "urn:oasis:names:tc:SAML:2.0:assertion",
                        "Assertion",
                    );
                    let v = dsig::verify_element(&doc, node, &rsa_keys, &verify_options).unwrap();
                    black_box(Assertion::from_verified(&v).unwrap().attributes.len());
                }
                "verify-rsa" => {
                    rsa_keys[0]
                        .verify(
                            rsa_alg,
                            black_box(&message),
                            &rsa_sig,
                            LegacyPolicy::default(),
                        )
                        .unwrap();
                }
                other => panic!(
                    "SSO_PROFILE_LOOP: unknown {other:?} (validate-rsa, verify-rsa, read-rsa, issue-ec)"
                ),
            }
        }
        return;
    }

    let mut ops = vec![
        op("issue/RSA-2048", Slot::IssueRsa, || issue(&rsa_key)),
        op("raw/RSA-2048 sign", Slot::RawSignRsa, || {
            rsa_key.sign(rsa_alg, &message).unwrap()
        }),
        op("validate/RSA-2048", Slot::ValidateRsa, || {
            validate_response(&rsa_sp, &rsa_xml, Some(REQUEST), check_at).unwrap()
        }),
        op("raw/RSA-2048 verify", Slot::RawVerifyRsa, || {
            rsa_keys[0]
                .verify(rsa_alg, &message, &rsa_sig, LegacyPolicy::default())
                .unwrap()
        }),
        op("issue/P-256", Slot::IssueEc, || issue(&ec_key)),
        op("raw/P-256 sign", Slot::RawSignEc, || {
            ec_key.sign(ec_alg, &message).unwrap()
        }),
        op("validate/P-256", Slot::ValidateEc, || {
            validate_response(&ec_sp, &ec_xml, Some(REQUEST), check_at).unwrap()
        }),
        op("raw/P-256 verify", Slot::RawVerifyEc, || {
            ec_key
                .verifying_key()
                .verify(ec_alg, &message, &ec_sig, LegacyPolicy::default())
                .unwrap()
        }),
        op("stage/parse", Slot::Parse, || {
            reader::parse(&rsa_xml, &Limits::default())
                .unwrap()
                .root_element()
                .id()
        }),
        op("stage/c14n assertion", Slot::C14nAssertion, || {
            c14n::canonicalize_to_vec(assertion, exc, &no_prefixes, Some(signature)).unwrap()
        }),
        op("stage/c14n SignedInfo", Slot::C14nSignedInfo, || {
            c14n::canonicalize_to_vec(signed_info, exc, &no_prefixes, None).unwrap()
        }),
        op("stage/SHA-256 of the assertion", Slot::Digest, || {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &canonical_assertion)
        }),
        op("stage/verify parsed assertion", Slot::VerifyParsed, || {
            dsig::verify_element(&doc, assertion, &rsa_keys, &verify_options)
                .unwrap()
                .key_index()
        }),
        op(
            "stage/parse + verify + read the assertion (no rules)",
            Slot::ParseVerifyRead,
            || {
                let doc = reader::parse(&rsa_xml, &Limits::default()).unwrap();
                let node = child(
                    doc.root_element(),
                    "urn:oasis:names:tc:SAML:2.0:assertion",
                    "Assertion",
                );
                let v = dsig::verify_element(&doc, node, &rsa_keys, &verify_options).unwrap();
                Assertion::from_verified(&v).unwrap().attributes.len()
            },
        ),
    ];

    // Criterion's own report, one function after another.
    let mut c = Criterion::default().configure_from_args();
    let mut estimates = Vec::with_capacity(ops.len());
    for op in &mut ops {
        let mut total = (Duration::ZERO, 0u64);
        c.bench_function(op.name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    (op.run)();
                }
                let elapsed = start.elapsed();
                total.0 += elapsed;
                total.1 += iters;
                elapsed
            });
        });
        estimates.push(total.0 / u32::try_from(total.1.max(1)).unwrap_or(u32::MAX));
    }
    c.final_summary();
    // Only a full `cargo bench` run (not `cargo test --benches`, not a filtered run)
    // goes on to the interleaved summary.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let filtered = std::env::args().skip(1).any(|a| !a.starts_with('-'));
    if !bench_mode || filtered || estimates.iter().any(|e| e.is_zero()) {
        return;
    }
    let secs = std::env::var("SSO_INTERLEAVED_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!("\nInterleaved run ({secs} s, every operation in turn, ~1 ms slices)...");
    let (means, medians) = interleaved(
        &mut ops,
        &estimates,
        Duration::from_millis(1),
        Duration::from_secs(secs),
    );
    let mean = |slot: Slot| {
        ops.iter()
            .position(|o| o.slot == slot)
            .map_or(f64::NAN, |i| means[i])
    };
    let us = |slot: Slot| mean(slot) * 1e6;
    let rate = |slot: Slot| 1.0 / mean(slot);
    println!(
        "\nSSO profile over the raw signature (Response {} bytes, canonical assertion {} bytes, SignedInfo {} bytes):",
        rsa_xml.len(),
        canonical_assertion.len(),
        canonical_signed_info.len()
    );
    let rows = [
        (
            "RSA-2048 issuance",
            Slot::IssueRsa,
            Slot::RawSignRsa,
            Some(0.90),
        ),
        (
            "RSA-2048 validation",
            Slot::ValidateRsa,
            Slot::RawVerifyRsa,
            Some(0.55),
        ),
        ("P-256 issuance", Slot::IssueEc, Slot::RawSignEc, Some(0.60)),
        (
            "P-256 validation",
            Slot::ValidateEc,
            Slot::RawVerifyEc,
            None,
        ),
        (
            "P-256 validation",
            Slot::ValidateEc,
            Slot::RawVerifyRsa,
            None,
        ),
    ];
    for (name, op, raw, goal) in rows {
        let ratio = mean(raw) / mean(op);
        let verdict = match goal {
            None => String::new(),
            Some(g) if ratio >= g => format!("  (goal {:.0} %: met)", g * 100.0),
            Some(g) => format!("  (goal {:.0} %: NOT met)", g * 100.0),
        };
        let raw_name = match raw {
            Slot::RawSignRsa | Slot::RawVerifyRsa => "RSA",
            _ => "P-256",
        };
        println!(
            "  {name:<20} {:>7.1} us = {:>6.0}/s   raw {raw_name:<5} {:>6.1} us = {:>6.0}/s   -> {:>5.1} % of raw{verdict}",
            us(op),
            rate(op),
            us(raw),
            rate(raw),
            ratio * 100.0
        );
    }
    let median = |slot: Slot| {
        ops.iter()
            .position(|o| o.slot == slot)
            .map_or(f64::NAN, |i| medians[i])
    };
    println!("\nThe same by the median slice (what a loaded machine moves least):");
    for (name, op, raw, _) in rows {
        println!(
            "  {name:<20} {:>7.1} us   raw {:>6.1} us   -> {:>5.1} % of raw",
            median(op) * 1e6,
            median(raw) * 1e6,
            median(raw) / median(op) * 100.0
        );
    }
    let total = mean(Slot::ValidateRsa);
    let parse = mean(Slot::Parse);
    let verify = mean(Slot::VerifyParsed);
    let share = |t: f64| t / total * 100.0;
    println!("\nWhere RSA-2048 validation's {:.1} us go:", total * 1e6);
    println!(
        "  parse (hardened reader)          {:>6.1} us {:>5.1} %",
        parse * 1e6,
        share(parse)
    );
    println!(
        "  signature check on parsed doc    {:>6.1} us {:>5.1} %, of which:",
        verify * 1e6,
        share(verify)
    );
    let mut parts = 0.0;
    for (name, slot) in [
        ("    exc-c14n of the assertion", Slot::C14nAssertion),
        ("    SHA-256 of it", Slot::Digest),
        ("    exc-c14n of SignedInfo", Slot::C14nSignedInfo),
        ("    RSA verify (raw)", Slot::RawVerifyRsa),
    ] {
        parts += mean(slot);
        println!(
            "{name:<34} {:>6.1} us {:>5.1} %",
            us(slot),
            share(mean(slot))
        );
    }
    println!(
        "    the rest of dsig::verify       {:>6.1} us {:>5.1} %",
        (verify - parts) * 1e6,
        share(verify - parts)
    );
    let read = mean(Slot::ParseVerifyRead) - parse - verify;
    println!(
        "  read the assertion               {:>6.1} us {:>5.1} %",
        read * 1e6,
        share(read)
    );
    let rules = total - mean(Slot::ParseVerifyRead);
    println!(
        "  envelope + profile rules         {:>6.1} us {:>5.1} %",
        rules * 1e6,
        share(rules)
    );
}
