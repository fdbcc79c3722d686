//! `latchkey xml ...`: canonicalize, sign and verify XML documents, for anyone debugging a
//! signature. Each command reads through the same hardened reader the server uses, so what
//! it refuses here the server refuses too.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use latchkey_xmlsec::c14n::{self, Algorithm, Options};
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::roxmltree::Node;

#[derive(Debug, Subcommand)]
pub enum XmlCommand {
    /// Print the exclusive canonical form (exc-c14n) of a document or of one element.
    C14n {
        /// Keep comments (xml-exc-c14n#WithComments).
        #[arg(long)]
        with_comments: bool,
        /// InclusiveNamespaces PrefixList, space-separated ("#default" names the default namespace).
        #[arg(long, value_name = "PREFIXES")]
        prefix_list: Option<String>,
        /// Canonicalize only the element whose ID (or Id, AssertionID) attribute has this value.
        #[arg(long, value_name = "ID")]
        element_id: Option<String>,
        /// The XML file, or `-` for standard input.
        file: PathBuf,
    },
    /// Generate a signing key and a self-signed certificate (PEM files; the key is mode 0600).
    Keygen {
        /// Where to write the private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// The certificate's subject common name.
        #[arg(long, default_value = "Latchkey")]
        common_name: String,
        /// ECDSA P-256 instead of RSA-2048.
        #[arg(long)]
        ecdsa: bool,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
}

pub fn run(cmd: XmlCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        XmlCommand::C14n {
            with_comments,
            prefix_list,
            element_id,
            file,
        } => c14n_command(with_comments, prefix_list.as_deref(), element_id.as_deref(), &file),
        XmlCommand::Keygen {
            key,
            cert,
            common_name,
            ecdsa,
            days,
        } => keygen_command(&key, &cert, &common_name, ecdsa, days),
    }
}

fn c14n_command(
    with_comments: bool,
    prefix_list: Option<&str>,
    element_id: Option<&str>,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let bytes = read_input(file)?;
    let doc = reader::parse_bytes(&bytes, &Limits::metadata())
        .with_context(|| format!("cannot read {}", file.display()))?;
    let apex = match element_id {
        Some(id) => find_by_id(&doc, id)?,
        None => doc.tree().root(),
    };
    let prefixes: Vec<&str> = prefix_list
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let options = Options {
        inclusive_prefixes: &prefixes,
    };
    let mut out = Vec::with_capacity(bytes.len());
    c14n::canonicalize(
        apex,
        Algorithm::Exclusive { with_comments },
        &options,
        None,
        &mut out,
    )
    .context("canonicalization failed")?;
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// ID attribute names tried, in SAML's and XML-DSig's spellings.
const ID_ATTRIBUTES: [&str; 3] = ["ID", "Id", "AssertionID"];

/// Finds the one element carrying `id`; two elements with the same ID is an error, as it
/// is for the verifier (the classic signature-wrapping set-up).
fn find_by_id<'a, 'i>(
    doc: &'a reader::Document<'i>,
    id: &str,
) -> anyhow::Result<Node<'a, 'i>> {
    let mut found = doc.tree().descendants().filter(|n| {
        n.is_element()
            && ID_ATTRIBUTES
                .iter()
                .any(|name| n.attribute(*name) == Some(id))
    });
    let Some(first) = found.next() else {
        bail!("no element has ID {id:?}");
    };
    if found.next().is_some() {
        bail!("ID {id:?} occurs more than once");
    }
    Ok(first)
}

fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
    }
}

fn keygen_command(
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
    let now = time::OffsetDateTime::now_utc();
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
