//! `latchkey xml ...`: canonicalize, sign and verify XML documents, for anyone debugging a
//! signature. Each command reads through the same hardened reader the server uses, so what
//! it refuses here the server refuses too.

mod c14n;
mod keygen;
mod sign;
mod verify;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use latchkey_xmlsec::reader;
use latchkey_xmlsec::tree::Node;

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
    /// Sign one element with an enveloped signature (exc-c14n; RSA-SHA256 or ECDSA by key type).
    Sign {
        /// The private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
        #[arg(long)]
        key: PathBuf,
        /// The certificate to put in KeyInfo (PEM or DER); informational for the receiver.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// The value of the ID attribute of the element to sign.
        #[arg(long, value_name = "ID")]
        element_id: String,
        /// The XML file, or `-` for standard input.
        file: PathBuf,
    },
    /// Verify every enveloped signature in a document with the given certificate(s) only.
    ///
    /// Exit status 0 and the verified element(s) on success; 1 and the reason otherwise.
    Verify {
        /// A trusted certificate (PEM or DER) or public key (PEM); repeat for several.
        #[arg(long, required = true)]
        cert: Vec<PathBuf>,
        /// Accept SHA-1 digests and RSA-SHA1 signatures (and 1024-bit RSA) from legacy signers.
        #[arg(long)]
        allow_sha1: bool,
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
        } => c14n::c14n_command(
            with_comments,
            prefix_list.as_deref(),
            element_id.as_deref(),
            &file,
        ),
        XmlCommand::Sign {
            key,
            cert,
            element_id,
            file,
        } => sign::sign_command(&key, cert.as_deref(), &element_id, &file),
        XmlCommand::Verify {
            cert,
            allow_sha1,
            file,
        } => verify::verify_command(&cert, allow_sha1, &file),
        XmlCommand::Keygen {
            key,
            cert,
            common_name,
            ecdsa,
            days,
        } => keygen::keygen_command(&key, &cert, &common_name, ecdsa, days),
    }
}

/// ID attribute names tried, in SAML's and XML-DSig's spellings.
pub(crate) const ID_ATTRIBUTES: [&str; 3] = ["ID", "Id", "AssertionID"];

/// Finds the one element carrying `id`; two elements with the same ID is an error, as it
/// is for the verifier (the classic signature-wrapping set-up).
pub(crate) fn find_by_id<'a, 'i>(
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

pub(crate) fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
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
