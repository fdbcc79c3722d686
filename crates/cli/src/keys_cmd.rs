//! `latchkey key ...`: the IdP's signing keys, under `<data_dir>/keys` or in the database
//! (`[keys] store`); the commands are the same for both.
//!
//! Rollover is `key rotate` (a next key appears in the IdP metadata), wait until every
//! SP has refreshed the metadata, then `key activate` (the next key starts signing). With
//! the database store, every node picks the change up within `[keys] refresh_seconds`.
//! `key activate` refuses until the next key has been published for the metadata's
//! cacheDuration (`[keys] metadata_cache_seconds`); `--force` skips the wait. Every change
//! is an audit event under the OS user's name.
//! Moving from files to the database: `key new-kek FILE`, `[keys] kek_file = FILE`,
//! `key import-files`, then `[keys] store = "database"` on every node. Replacing the KEK:
//! `key new-kek NEW`, `key rewrap --new-kek NEW`, then `kek_file = NEW` and a restart per node.

use latchkey_idp::{Clock as _, SystemClock};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use latchkey_idp::config::{KeyStoreKind, ProcessEnv};
use latchkey_idp::keys::{
    Activation, DatabaseKeyStore, Kek, KeyAlgorithm, KeyInfo, KeyStore, Keyring,
};
use latchkey_idp::{Config, Store};
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
    /// Make the next key the active one; the old active key is retired. Refused until the
    /// next key has been in the metadata for its cacheDuration ([keys] metadata_cache_seconds).
    Activate {
        /// Activate now: SPs holding an older copy of the metadata will refuse the new
        /// key's signatures until they fetch it again (for a leaked key).
        #[arg(long)]
        force: bool,
    },
    /// Retire the next key without activating it (abandon a rollover).
    RetireNext,
    /// Print a key's certificate (PEM); the active key's by default.
    Cert {
        /// Print the next key's certificate instead.
        #[arg(long)]
        next: bool,
    },
    /// Copy the keys under <data_dir>/keys into the (empty) database key store, roles and
    /// dates kept; then set `[keys] store = "database"`.
    ImportFiles,
    /// Write a new key-encryption key for the database store to FILE (mode 0600; refused
    /// if FILE exists).
    NewKek {
        /// Where to write it; name it in `[keys] kek_file`.
        file: PathBuf,
    },
    /// Re-seal every database key under the KEK in FILE (from `key new-kek`); then give
    /// every node that KEK and restart it. Until then nodes keep signing with loaded keys.
    Rewrap {
        /// The new key-encryption key; the current one comes from the configuration.
        #[arg(long, value_name = "FILE")]
        new_kek: PathBuf,
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(command(&config, args.command));
    result.map(|()| ExitCode::SUCCESS)
}

async fn command(config: &Config, command: KeyCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        KeyCommand::ImportFiles => return import_files(config, &mut out).await,
        KeyCommand::Rewrap { new_kek } => return rewrap(config, &new_kek, &mut out).await,
        KeyCommand::NewKek { file } => {
            let kek = Kek::create_file(&file)?;
            return line(
                &mut out,
                &format!(
                    "key-encryption key {} written to {}; keep a copy outside the database \
                     and give it to every node",
                    kek.id(),
                    file.display()
                ),
            );
        }
        _ => {}
    }
    let mut keys = Keyring::open(config, &ProcessEnv)
        .await
        .context("opening the key store")?;
    let now = SystemClock.now();
    let actor = crate::admin::cli_actor();
    let result = match command {
        KeyCommand::List { json } => list(&mut out, &keys.list().await?, json, &keys.describe()),
        KeyCommand::Init { alg } => {
            let info = keys.load_or_generate(&actor, alg.into(), now).await?;
            line(
                &mut out,
                &format!("active key {} ({})", info.id, info.algorithm.as_str()),
            )
        }
        KeyCommand::Rotate { alg } => {
            let info = keys.rotate(&actor, alg.into(), now).await?;
            line(
                &mut out,
                &format!(
                    "next key {} ({}) generated and published in metadata; `latchkey key \
                     activate` is possible from {} on, once every application has had time to \
                     refresh the IdP metadata",
                    info.id,
                    info.algorithm.as_str(),
                    when(Some(
                        Activation::for_config(&config.keys).earliest(info.created_at)
                    ))
                ),
            )
        }
        KeyCommand::Activate { force } => {
            let rule = if force {
                Activation::Forced
            } else {
                Activation::for_config(&config.keys)
            };
            let info = keys.activate(&actor, now, rule).await?;
            if force {
                eprintln!(
                    "warning: activated without waiting for the metadata's cacheDuration; \
                     applications holding an older copy of the IdP metadata refuse logins \
                     until they fetch it again"
                );
            }
            line(&mut out, &format!("key {} is now active", info.id))
        }
        KeyCommand::RetireNext => {
            let info = keys.retire_next(&actor, now).await?;
            line(
                &mut out,
                &format!("next key {} retired; the active key is unchanged", info.id),
            )
        }
        KeyCommand::Cert { next } => {
            let material = if next {
                keys.next().await?.context("there is no next key")?
            } else {
                keys.active().await?
            };
            write!(out, "{}", material.cert_pem).map_err(anyhow::Error::from)
        }
        KeyCommand::ImportFiles | KeyCommand::NewKek { .. } | KeyCommand::Rewrap { .. } => Ok(()),
    };
    keys.close().await;
    result
}

/// `key rewrap`: database store only (files have no KEK).
async fn rewrap(config: &Config, new_kek: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    if config.keys.store != KeyStoreKind::Database {
        anyhow::bail!("key rewrap needs [keys] store = \"database\"; file keys are not sealed");
    }
    let new = Kek::from_file(new_kek)?;
    let Keyring::Database(keys) = Keyring::open(config, &ProcessEnv)
        .await
        .context("opening the key store")?
    else {
        anyhow::bail!("key rewrap needs [keys] store = \"database\"; file keys are not sealed");
    };
    let result = keys.rewrap(&crate::admin::cli_actor(), &new).await;
    keys.store().close().await;
    let count = result?;
    line(
        out,
        &format!(
            "{count} key(s) re-sealed from key-encryption key {} to {}; set [keys] kek_file = \
             {:?} (or $LATCHKEY_KEK) on every node and restart it",
            keys.kek().id(),
            new.id(),
            new_kek.display().to_string()
        ),
    )
}

/// `key import-files`: works whatever `[keys] store` says, so the keys can be copied
/// before the nodes are switched over; needs the KEK the nodes will use.
async fn import_files(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = config.data_dir.join("keys");
    if !dir.join("state.json").is_file() {
        anyhow::bail!("no file key store in {}: nothing to import", dir.display());
    }
    let files =
        KeyStore::open(&dir).with_context(|| format!("opening the key store {}", dir.display()))?;
    let kek = Kek::resolve(&config.keys, &ProcessEnv)?;
    let store = Store::open(config).await?;
    let database = DatabaseKeyStore::new(store.clone(), kek);
    let result = database.import(&crate::admin::cli_actor(), &files).await;
    store.close().await;
    let imported = result?;
    line(
        out,
        &format!(
            "imported {} key(s) from {} into the {} database; set [keys] store = \"database\" \
             on every node",
            imported.len(),
            dir.display(),
            store.backend().name()
        ),
    )
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

fn list(out: &mut impl Write, keys: &[KeyInfo], as_json: bool, place: &str) -> anyhow::Result<()> {
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
    writeln!(out, "key store: {place}")?;
    writeln!(
        out,
        "{:<16}  {:<7}  {:<10}  {:<20}  SHA-256 FINGERPRINT",
        "ID", "STATUS", "ALGORITHM", "CREATED"
    )?;
    for k in keys {
        let status = k.status.as_str();
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
