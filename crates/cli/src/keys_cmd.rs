//! `latchkey key ...`: the IdP's signing keys, kept under `<data_dir>/keys`.
//!
//! Rollover is `key rotate` (a next key appears in the IdP metadata), wait until every
//! SP has refreshed the metadata, then `key activate` (the next key starts signing).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use latchkey_idp::Config;
use latchkey_idp::keys::{KeyAlgorithm, KeyInfo, KeyStore};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `latchkey key` with its options.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Configuration file (default: $LATCHKEY_CONFIG, else ./latchkey.toml, else built-in).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the signing keys: active, next and retired.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate the signing key if there is none yet (the server also does this on start).
    Init {
        /// Key algorithm.
        #[arg(long, value_enum, default_value_t = Alg::Rsa2048)]
        alg: Alg,
    },
    /// Generate a next key; it is published in metadata but does not sign yet.
    Rotate {
        /// Key algorithm.
        #[arg(long, value_enum, default_value_t = Alg::Rsa2048)]
        alg: Alg,
    },
    /// Make the next key the active one; the old active key is retired.
    Activate,
    /// Print a key's certificate (PEM); the active key's by default.
    Cert {
        /// Print the next key's certificate instead.
        #[arg(long)]
        next: bool,
    },
}

/// Key algorithms offered on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Alg {
    /// RSA 2048 / SHA-256: accepted by every SAML SP.
    #[value(name = "rsa2048")]
    Rsa2048,
    /// ECDSA P-256 / SHA-256: smaller; check the SPs support it first.
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
}

impl From<Alg> for KeyAlgorithm {
    fn from(a: Alg) -> Self {
        match a {
            Alg::Rsa2048 => KeyAlgorithm::Rsa2048,
            Alg::EcdsaP256 => KeyAlgorithm::EcdsaP256,
        }
    }
}

pub fn run(args: KeyArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    let dir = config.data_dir.join("keys");
    let mut store =
        KeyStore::open(&dir).with_context(|| format!("opening the key store {}", dir.display()))?;
    let now = OffsetDateTime::now_utc();
    let mut out = std::io::stdout().lock();
    let result = match args.command {
        KeyCommand::List { json } => list(&mut out, &store.list(), json),
        KeyCommand::Init { alg } => {
            let info = store.load_or_generate(alg.into(), now)?;
            line(
                &mut out,
                &format!("active key {} ({})", info.id, info.algorithm.as_str()),
            )
        }
        KeyCommand::Rotate { alg } => {
            let info = store.rotate(alg.into(), now)?;
            line(
                &mut out,
                &format!(
                    "next key {} ({}) generated and published in metadata; run `latchkey key \
                     activate` once every application has refreshed the IdP metadata",
                    info.id,
                    info.algorithm.as_str()
                ),
            )
        }
        KeyCommand::Activate => {
            let info = store.activate(now)?;
            line(&mut out, &format!("key {} is now active", info.id))
        }
        KeyCommand::Cert { next } => {
            let material = if next {
                store.next()?.context("there is no next key")?
            } else {
                store.active()?
            };
            write!(out, "{}", material.cert_pem).map_err(anyhow::Error::from)
        }
    };
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn line(out: &mut impl Write, text: &str) -> anyhow::Result<()> {
    writeln!(out, "{text}")?;
    Ok(())
}

fn when(t: Option<OffsetDateTime>) -> String {
    // Whole seconds: enough to tell keys apart, and the columns stay aligned.
    t.and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

fn list(out: &mut impl Write, keys: &[KeyInfo], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(keys)?)?;
        return Ok(());
    }
    if keys.is_empty() {
        return line(
            out,
            "no signing keys yet (run `latchkey key init` or start the server)",
        );
    }
    writeln!(
        out,
        "{:<16}  {:<7}  {:<10}  {:<20}  SHA-256 FINGERPRINT",
        "ID", "STATUS", "ALGORITHM", "CREATED"
    )?;
    for k in keys {
        let status = match k.status {
            latchkey_idp::keys::KeyStatus::Active => "active",
            latchkey_idp::keys::KeyStatus::Next => "next",
            latchkey_idp::keys::KeyStatus::Retired => "retired",
        };
        writeln!(
            out,
            "{:<16}  {:<7}  {:<10}  {:<20}  {}",
            k.id,
            status,
            k.algorithm.as_str(),
            when(Some(k.created_at)),
            k.fingerprint_sha256
        )?;
    }
    Ok(())
}
