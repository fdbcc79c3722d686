//! `latchkey xml verify`: checks every enveloped signature in a document against the
//! certificates named on the command line, never against one carried in the document.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use latchkey_xmlsec::crypto::VerifyingKey;
use latchkey_xmlsec::dsig::{self, VerifyOptions};
use latchkey_xmlsec::reader::{self, Limits};

use super::read_input;
use crate::stdout::outln;

pub fn verify_command(
    cert_paths: &[std::path::PathBuf],
    allow_sha1: bool,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let keys = cert_paths
        .iter()
        .map(|p| read_key(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = read_input(file)?;
    let doc = reader::parse_bytes(&bytes, &Limits::metadata())
        .with_context(|| format!("cannot read {}", file.display()))?;
    let options = VerifyOptions {
        allow_sha1,
        allow_rsa_1024: allow_sha1,
        ..VerifyOptions::default()
    };
    match dsig::verify_document(&doc, &keys, &options) {
        Ok(verified) => {
            for v in &verified {
                let element = v.element();
                let pos = doc.position(element);
                let name = element.tag_name();
                outln!(
                    "OK: {}{} ID={} at {pos} ({}, digest {})",
                    name.namespace()
                        .map(|ns| format!("{{{ns}}}"))
                        .unwrap_or_default(),
                    name.name(),
                    v.id().unwrap_or("(whole document)"),
                    v.signature_algorithm().uri(),
                    v.digest_algorithm().uri(),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("FAIL: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A trusted key from a certificate (PEM or DER) or a bare public key (PEM).
fn read_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => VerifyingKey::from_pem(text),
        _ => latchkey_xmlsec::crypto::Certificate::from_der(&bytes)
            .map(|c| c.verifying_key().clone()),
    };
    parsed.with_context(|| format!("cannot use the key in {}", path.display()))
}
