//! `latchkey xml keygen`: a key and certificate to sign with, for trying the tools out.

use latchkey_idp::{Clock as _, SystemClock};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub fn keygen_command(
    key_path: &Path,
    cert_path: &Path,
    common_name: &str,
    ecdsa: bool,
    days: u32,
) -> anyhow::Result<ExitCode> {
    let key = if ecdsa {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
    } else {
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
    }
    .context("key generation failed")?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = SystemClock.now();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
    let cert = params
        .self_signed(&key)
        .context("certificate generation failed")?;
    write_private(key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a private key readable by its owner only: created that way, and an existing file
/// is narrowed before the key is written into it.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
