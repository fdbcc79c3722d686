//! `latchkey bench protocol issue|validate`: the SAML protocol layer on the user's own
//! files, beside the raw signature operation of the same key in the same run.
//!
//! Other SAML stacks can be measured on the same files; what compares across stacks and
//! machines is the ratio of each figure to the raw primitive measured alongside it, not
//! the rate itself. All figures come from this one thread (one core), interleaved in
//! slices of about a millisecond so that a change in the machine's load weighs on every
//! figure alike.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use latchkey_idp::{Clock as _, SystemClock};
use latchkey_saml::profile::idp::{IdpSettings, ResponseTarget, SignedParts, build_response};
use latchkey_saml::profile::validate_response;
use latchkey_xmlsec::c14n::{self, Algorithm};
use latchkey_xmlsec::crypto::{
    Certificate, Curve, KeyKind, LegacyPolicy, SignatureAlgorithm, SigningKey, VerifyingKey,
};
use latchkey_xmlsec::dsig::{self, SignOptions};
use latchkey_xmlsec::reader::{self, Limits};
use serde::Serialize;

use crate::saml_cmd::verify::{VerifyArgs, VerifySetup};
use crate::stdout::outln;
use crate::xml::read_input;

const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// What to measure.
#[derive(Debug, Subcommand)]
pub enum ProtocolCommand {
    /// Issuance: sign an assertion with the given key, against the raw signing rate of
    /// that key.
    ///
    /// With `--template`, the template's first `saml:Assertion` is signed as it stands
    /// (enveloped, exclusive C14N, the key's algorithm, the certificate in KeyInfo): the
    /// work any IdP does on the same bytes. Without it, the built-in issuance builds a
    /// Response with six attributes and signs its assertion (`build_response`, what
    /// `latchkey serve` runs).
    Issue(IssueArgs),
    /// Validation: the SP's whole profile (`validate_response`, what `latchkey saml
    /// verify` and every Latchkey SP run) on a given signed Response, against the raw
    /// verification of that Response's own signature.
    Validate(ValidateArgs),
}

/// How long and how to print.
#[derive(Debug, Args)]
pub struct Run {
    /// Seconds to measure for (after a short warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// One JSON object per figure, one per line.
    #[arg(long)]
    json: bool,
}

/// Options of `latchkey bench protocol issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The signing key (PEM: PKCS#8, or PKCS#1 for RSA).
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// Its certificate (PEM), placed in KeyInfo.
    #[arg(long, value_name = "CERT.pem")]
    cert: PathBuf,
    /// An unsigned Response (or a bare Assertion) whose first Assertion is signed.
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,
    #[command(flatten)]
    run: Run,
}

/// Options of `latchkey bench protocol validate`: those of `latchkey saml verify`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    verify: VerifyArgs,
    #[command(flatten)]
    run: Run,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Figure {
    /// `issue`, `validate`, `raw_sign`, `raw_verify`, `ratio` or `peak_rss`.
    figure: &'static str,
    /// The key type (`RSA-2048`, `P-256`, ...).
    key: String,
    /// For a rate, what was measured; for a ratio, `a / b`.
    what: String,
    /// Operations per second of this thread, a dimensionless ratio, or KiB.
    value: f64,
    /// `per_second`, `ratio` or `KiB`.
    unit: &'static str,
}

pub fn run(cmd: ProtocolCommand) -> anyhow::Result<()> {
    let figures = match &cmd {
        ProtocolCommand::Issue(args) => issue(args)?,
        ProtocolCommand::Validate(args) => validate(args)?,
    };
    let run = match &cmd {
        ProtocolCommand::Issue(a) => &a.run,
        ProtocolCommand::Validate(a) => &a.run,
    };
    if run.json {
        for f in &figures {
            outln!("{}", serde_json::to_string(f)?)?;
        }
    } else {
        super::print_load()?;
        for f in &figures {
            match f.unit {
                "per_second" => outln!(
                    "{:<11} {:<9} {:>12.1}/s {:>10.1} µs  {}",
                    f.figure,
                    f.key,
                    f.value,
                    1e6 / f.value.max(1e-9),
                    f.what
                )?,
                "ratio" => outln!(
                    "{:<11} {:<9} {:>12.3}    {}",
                    f.figure,
                    f.key,
                    f.value,
                    f.what
                )?,
                _ => outln!(
                    "{:<11} {:<9} {:>12.1} MiB  {}",
                    f.figure,
                    f.key,
                    f.value / 1024.0,
                    f.what
                )?,
            }
        }
    }
    Ok(())
}

fn issue(args: &IssueArgs) -> anyhow::Result<Vec<Figure>> {
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read {}", args.key.display()))?;
    let key =
        SigningKey::from_pem(&pem).with_context(|| format!("--key {}", args.key.display()))?;
    let cert_pem = std::fs::read_to_string(&args.cert)
        .with_context(|| format!("cannot read {}", args.cert.display()))?;
    let cert = Certificate::from_pem(&cert_pem)
        .with_context(|| format!("--cert {}", args.cert.display()))?;
    if cert.verifying_key() != key.verifying_key() {
        bail!("--cert is not the certificate of --key");
    }
    let algorithm = key.default_algorithm();
    let kind = key_name(key.kind());

    let (what, mut op): (String, Box<dyn FnMut() -> anyhow::Result<String>>) = match &args.template
    {
        Some(path) => {
            let bytes = read_input(path)?;
            let template = String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
            let id = first_assertion_id(&template)
                .with_context(|| format!("--template {}", path.display()))?;
            let options = SignOptions::default();
            let key = &key;
            let cert = &cert;
            (
                format!("sign the template's Assertion {id}"),
                Box::new(move || Ok(dsig::sign(&template, &id, key, Some(cert), &options)?)),
            )
        }
        None => {
            let now = SystemClock.now();
            let settings = IdpSettings::new(
                "https://idp.example.org/saml",
                "https://idp.example.org/saml/sso",
            );
            let target = ResponseTarget {
                sp_entity_id: "https://sp.example.com/saml".into(),
                acs_url: "https://sp.example.com/saml/acs".into(),
                in_response_to: Some("_req-42".into()),
            };
            let issuance = super::raw::bench_issuance(now);
            let key = &key;
            let cert = &cert;
            (
                "build_response: a Response with 6 attributes, its assertion signed".into(),
                Box::new(move || {
                    Ok(build_response(
                        &settings,
                        &target,
                        &issuance,
                        key,
                        Some(cert),
                        SignedParts::Assertion,
                        now,
                    )?)
                }),
            )
        }
    };
    // The raw operation signs what issuance signs: the canonical SignedInfo it produced.
    let signed = op()?;
    let message = signatures(&signed)?
        .into_iter()
        .find(|s| s.on_assertion)
        .context("the issued document carries no signature on its Assertion")?
        .message;
    let raw = || -> anyhow::Result<Vec<u8>> { Ok(key.sign(algorithm, &message)?) };
    let rates = interleaved(
        &mut [&mut || op().map(drop), &mut || raw().map(drop)],
        Duration::from_secs_f64(args.run.seconds.max(0.1)),
    )?;
    Ok(vec![
        rate("issue", &kind, what, rates[0]),
        rate(
            "raw_sign",
            &kind,
            format!("{} over SignedInfo", algorithm.uri()),
            rates[1],
        ),
        ratio(&kind, "issue / raw_sign", rates[0] / rates[1]),
        peak_rss(&kind)?,
    ])
}

fn validate(args: &ValidateArgs) -> anyhow::Result<Vec<Figure>> {
    let VerifySetup { settings, now, xml } = args.verify.prepare()?;
    let request_id = args.verify.request_id();
    if let Err(e) = validate_response(&settings, &xml, request_id, now) {
        bail!(
            "the Response does not validate, so there is nothing to measure: {} ({}; try `latchkey saml verify` with the same options)",
            e,
            e.code().as_str()
        );
    }
    // The raw operation verifies the Response's own signature (the first one a trusted
    // key verifies), so both figures use the same key, algorithm and message.
    let found = signatures(&xml)?;
    let count = found.len();
    let (
        key,
        Signature {
            algorithm,
            message,
            value,
            ..
        },
    ) = found
        .into_iter()
        .find_map(|s| {
            let key = settings.idp_keys.iter().find(|k| {
                k.verify(s.algorithm, &s.message, &s.value, LegacyPolicy::default())
                    .is_ok()
            })?;
            Some((key.clone(), s))
        })
        .context("no signature in the Response verifies with the metadata's keys")?;
    let kind = key_name(key.kind());
    let rates = interleaved(
        &mut [
            &mut || {
                validate_response(&settings, &xml, request_id, now)
                    .map(drop)
                    .map_err(anyhow::Error::from)
            },
            &mut || raw_verify(&key, algorithm, &message, &value),
        ],
        Duration::from_secs_f64(args.run.seconds.max(0.1)),
    )?;
    Ok(vec![
        rate(
            "validate",
            &kind,
            format!("validate_response: every rule, {count} signature(s) verified"),
            rates[0],
        ),
        rate(
            "raw_verify",
            &kind,
            format!("{} over SignedInfo", algorithm.uri()),
            rates[1],
        ),
        ratio(&kind, "validate / raw_verify", rates[0] / rates[1]),
        peak_rss(&kind)?,
    ])
}

fn raw_verify(
    key: &VerifyingKey,
    algorithm: SignatureAlgorithm,
    message: &[u8],
    value: &[u8],
) -> anyhow::Result<()> {
    Ok(key.verify(algorithm, message, value, LegacyPolicy::default())?)
}

/// Runs the operations round-robin, each for about a millisecond a round, until `total`
/// has passed (after a warm-up of a tenth of it); returns operations per second of each.
fn interleaved(
    ops: &mut [&mut dyn FnMut() -> anyhow::Result<()>],
    total: Duration,
) -> anyhow::Result<Vec<f64>> {
    let slice = Duration::from_millis(1);
    let warm_up = total / 10 / u32::try_from(ops.len()).unwrap_or(1).max(1);
    let mut batch = Vec::with_capacity(ops.len());
    for op in ops.iter_mut() {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < warm_up || n == 0 {
            black_box(op())?;
            n += 1;
        }
        let each = start.elapsed().as_secs_f64() / f64::from(n);
        batch.push(
            (slice.as_secs_f64() / each.max(1e-9))
                .ceil()
                .clamp(1.0, 1e6) as u32,
        );
    }
    let mut spent = vec![Duration::ZERO; ops.len()];
    let mut calls = vec![0u64; ops.len()];
    let deadline = Instant::now() + total;
    while Instant::now() < deadline {
        for (i, op) in ops.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..batch[i] {
                black_box(op())?;
            }
            spent[i] += start.elapsed();
            calls[i] += u64::from(batch[i]);
        }
    }
    Ok(spent
        .iter()
        .zip(&calls)
        .map(|(t, n)| *n as f64 / t.as_secs_f64().max(1e-9))
        .collect())
}

/// A `ds:Signature` of a document, as the raw operation needs it.
struct Signature {
    /// Whether it is the enveloped signature of a `saml:Assertion`.
    on_assertion: bool,
    algorithm: SignatureAlgorithm,
    /// The canonical SignedInfo: what the signature value signs.
    message: Vec<u8>,
    value: Vec<u8>,
}

/// Every `ds:Signature` of the document, in document order.
fn signatures(xml: &str) -> anyhow::Result<Vec<Signature>> {
    let doc = reader::parse(xml, &Limits::default())?;
    let dsig = |n: &latchkey_xmlsec::tree::Node<'_, '_>, local: &str| {
        n.is_element() && n.tag_name().namespace() == Some(DSIG_NS) && n.tag_name().name() == local
    };
    let mut found = Vec::new();
    for signature in doc.tree().descendants().filter(|n| dsig(n, "Signature")) {
        let signed_info = signature
            .children()
            .find(|n| dsig(n, "SignedInfo"))
            .context("a Signature without SignedInfo")?;
        let method = |local: &str| {
            signed_info
                .children()
                .find(|n| dsig(n, local))
                .and_then(|n| n.attribute("Algorithm"))
        };
        let c14n = method("CanonicalizationMethod")
            .and_then(Algorithm::from_uri)
            .context("an unsupported CanonicalizationMethod")?;
        let algorithm = method("SignatureMethod")
            .and_then(SignatureAlgorithm::from_uri)
            .context("an unsupported SignatureMethod")?;
        let message = c14n::canonicalize_to_vec(signed_info, c14n, &Default::default(), None)?;
        let text: String = signature
            .children()
            .find(|n| dsig(n, "SignatureValue"))
            .context("a Signature without SignatureValue")?
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .flat_map(|t| t.chars())
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let value = base64::engine::general_purpose::STANDARD
            .decode(text)
            .context("a SignatureValue that is not base64")?;
        let on_assertion = signature.parent_element().is_some_and(|p| {
            p.tag_name().namespace() == Some(ASSERTION_NS) && p.tag_name().name() == "Assertion"
        });
        found.push(Signature {
            on_assertion,
            algorithm,
            message,
            value,
        });
    }
    Ok(found)
}

fn first_assertion_id(xml: &str) -> anyhow::Result<String> {
    let doc = reader::parse(xml, &Limits::default())?;
    let assertion = doc
        .tree()
        .descendants()
        .find(|n| {
            n.is_element()
                && n.tag_name().namespace() == Some(ASSERTION_NS)
                && n.tag_name().name() == "Assertion"
        })
        .context("no saml:Assertion in the template")?;
    if assertion
        .children()
        .any(|n| n.tag_name().namespace() == Some(DSIG_NS) && n.tag_name().name() == "Signature")
    {
        bail!("the template's Assertion is already signed");
    }
    Ok(assertion
        .attribute("ID")
        .context("the template's Assertion has no ID")?
        .to_owned())
}

fn key_name(kind: KeyKind) -> String {
    match kind {
        KeyKind::Rsa { bits } => format!("RSA-{bits}"),
        KeyKind::Ec(Curve::P256) => "P-256".into(),
        KeyKind::Ec(Curve::P384) => "P-384".into(),
        KeyKind::Ec(Curve::P521) => "P-521".into(),
    }
}

fn rate(figure: &'static str, key: &str, what: String, value: f64) -> Figure {
    Figure {
        figure,
        key: key.into(),
        what,
        value,
        unit: "per_second",
    }
}

fn ratio(key: &str, what: &str, value: f64) -> Figure {
    Figure {
        figure: "ratio",
        key: key.into(),
        what: what.into(),
        value,
        unit: "ratio",
    }
}

/// The process's peak resident set (`VmHWM`), which includes the files read.
fn peak_rss(key: &str) -> anyhow::Result<Figure> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(Figure {
        figure: "peak_rss",
        key: key.into(),
        what: "VmHWM of this process".into(),
        value: kib,
        unit: "KiB",
    })
}
