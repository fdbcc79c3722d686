//! `latchkey xml sign`: an enveloped signature over one element, as the IdP makes them.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use latchkey_xmlsec::reader::{self, Limits};

use super::read_input;

pub fn sign_command(
    key_path: &Path,
    cert_path: Option<&Path>,
    element_id: &str,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let key_pem = std::fs::read_to_string(key_path)
        .with_context(|| format!("cannot read {}", key_path.display()))?;
    let key = SigningKey::from_pem(&key_pem)
        .with_context(|| format!("cannot use the key in {}", key_path.display()))?;
    let cert = cert_path.map(read_certificate).transpose()?;
    let bytes = read_input(file)?;
    let limits = Limits::metadata();
    let text = reader::decode_utf8(&bytes, &limits)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let options = SignOptions {
        limits,
        ..SignOptions::default()
    };
    let signed = dsig::sign(text, element_id, &key, cert.as_ref(), &options)
        .with_context(|| format!("cannot sign element {element_id:?}"))?;
    std::io::stdout().write_all(signed.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a certificate in PEM or DER.
pub(crate) fn read_certificate(path: &Path) -> anyhow::Result<Certificate> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => Certificate::from_pem(text),
        _ => Certificate::from_der(&bytes),
    };
    parsed.with_context(|| format!("cannot use the certificate in {}", path.display()))
}
