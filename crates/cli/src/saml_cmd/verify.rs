//! `latchkey saml verify`: the SP's verdict on a Response, as JSON.
//!
//! The keys come from the IdP metadata file named on the command line, never from the
//! message. Two kinds of failure are kept apart: a Response that a rule refuses (exit 1,
//! JSON on stdout naming the rule, for scripts and bug reports) and inputs of the command
//! itself that cannot be used (exit 2, one line on stderr).

use latchkey_idp::{Clock as _, SystemClock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use latchkey_saml::binding::{BindingLimits, MessageKind, post};
use latchkey_saml::metadata::{Metadata, MetadataOptions, parse_metadata};
use latchkey_saml::profile::{AuthenticatedSubject, MAX_CLOCK_SKEW, SpSettings, validate_response};
use latchkey_xmlsec::xmlenc::DecryptionKey;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::stdout::outln;
use crate::xml::read_input;

/// Options of `latchkey saml verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The IdP's metadata (an EntityDescriptor, or an aggregate): its entity ID is the
    /// expected Issuer and its signing certificates the only trusted keys.
    #[arg(long, value_name = "FILE")]
    idp_metadata: PathBuf,
    /// Which IdP of an aggregate (needed only when the metadata holds several).
    #[arg(long, value_name = "ENTITY_ID")]
    idp_entity_id: Option<String>,
    /// Our entity ID: the audience the assertion must name.
    #[arg(long, value_name = "ID")]
    sp_entity_id: String,
    /// Our ACS URL: the Destination and Recipient the Response must name.
    #[arg(long, value_name = "URL")]
    acs_url: String,
    /// The AuthnRequest ID it answers (omit for an IdP-initiated response).
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
    /// Accept a response that answers no request (IdP-initiated login).
    #[arg(long)]
    allow_unsolicited: bool,
    /// Check as of this instant instead of now (RFC 3339), for recorded responses.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// Allowed clock difference with the IdP, in seconds (at most 300).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    skew: u32,
    /// Our private key (PEM), to decrypt an EncryptedAssertion. Without it, a Response
    /// that carries one is refused (ENCRYPTED_ASSERTION).
    #[arg(long, value_name = "KEY.pem")]
    sp_key: Option<PathBuf>,
    /// Also accept AES-CBC content encryption (the SP toolkit's `allow_cbc`): off by default,
    /// as in the toolkit, because unauthenticated CBC is a timing-oracle risk.
    #[arg(long)]
    allow_cbc: bool,
    /// The Response: a file (`-` for stdin) holding its XML or its base64 POST value.
    response: PathBuf,
}

/// What `verify` checks against, with the Response read: shared with `latchkey bench
/// protocol validate`, so that what is measured is what is verified here.
pub(crate) struct VerifySetup {
    pub settings: SpSettings,
    pub now: OffsetDateTime,
    pub xml: String,
}

impl VerifyArgs {
    /// The settings, the instant and the Response's XML; an error means the command's own
    /// inputs cannot be used (not that the Response is refused).
    pub(crate) fn prepare(&self) -> anyhow::Result<VerifySetup> {
        let (settings, now) = setup(self)?;
        let text =
            String::from_utf8(read_input(&self.response)?).context("RESPONSE is not UTF-8 text")?;
        let xml = response_xml(&text).map_err(|e| anyhow!("{e} ({})", e.code()))?;
        Ok(VerifySetup { settings, now, xml })
    }

    pub(crate) fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

pub fn verify_command(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let (settings, now) = match setup(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let text = match read_input(&args.response)
        .and_then(|b| String::from_utf8(b).context("RESPONSE is not UTF-8 text"))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let outcome = response_xml(&text)
        .and_then(|xml| validate_response(&settings, &xml, args.request_id.as_deref(), now));
    match outcome {
        Ok(subject) => {
            outln!("{}", success_json(&subject, &settings))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let out =
                json!({ "error": e.code().as_str(), "rule": e.rule(), "message": e.to_string() });
            outln!("{out:#}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The Response as XML: as given, or decoded from its HTTP-POST base64 value (the only
/// binding the profile allows for a Response).
fn response_xml(text: &str) -> Result<String, latchkey_saml::Error> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('<') {
        return Ok(text.to_owned());
    }
    Ok(post::decode(
        MessageKind::Response,
        trimmed,
        None,
        &BindingLimits::default(),
    )?
    .xml)
}

fn setup(args: &VerifyArgs) -> anyhow::Result<(SpSettings, OffsetDateTime)> {
    let now = match &args.now {
        Some(t) => OffsetDateTime::parse(t, &Rfc3339)
            .with_context(|| format!("--now {t:?} is not an RFC 3339 time"))?,
        None => SystemClock.now(),
    };
    let skew = Duration::seconds(i64::from(args.skew));
    if skew > MAX_CLOCK_SKEW {
        bail!(
            "--skew {} is over the profile's maximum of {} seconds",
            args.skew,
            MAX_CLOCK_SKEW.whole_seconds()
        );
    }
    let (idp_entity_id, keys) =
        idp_from_metadata(&args.idp_metadata, args.idp_entity_id.as_deref(), now)?;
    let mut settings = SpSettings::new(&args.sp_entity_id, &args.acs_url, idp_entity_id, keys);
    settings.allow_unsolicited = args.allow_unsolicited;
    settings.clock_skew = skew;
    if let Some(path) = &args.sp_key {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        settings.decryption_keys = vec![
            DecryptionKey::from_pem(&pem)
                .with_context(|| format!("--sp-key {}", path.display()))?,
        ];
    }
    if args.allow_cbc {
        settings.decrypt_options = latchkey_saml::encryption::DecryptOptions::default();
    }
    Ok((settings, now))
}

/// The IdP's entity ID and signing keys. The file is trusted as the administrator's
/// choice (as a metadata file in the SP's settings is); expired metadata is refused.
fn idp_from_metadata(
    path: &Path,
    entity_id: Option<&str>,
    now: OffsetDateTime,
) -> anyhow::Result<(String, Vec<latchkey_xmlsec::crypto::VerifyingKey>)> {
    let bytes = read_input(path)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    let options = MetadataOptions {
        now: Some(now),
        ..MetadataOptions::default()
    };
    let metadata: Metadata = parse_metadata(&text, &options)
        .map_err(|e| anyhow!("{e} ({})", e.code()))
        .with_context(|| format!("cannot use the IdP metadata {}", path.display()))?;
    let idps: Vec<_> = metadata
        .entities()
        .iter()
        .filter(|e| e.idp.is_some())
        .filter(|e| entity_id.is_none_or(|want| e.entity_id == want))
        .collect();
    let idp = match (idps.as_slice(), entity_id) {
        ([one], _) => *one,
        ([], Some(want)) => bail!("{} has no IdP {want:?}", path.display()),
        ([], None) => bail!("{} describes no IdP", path.display()),
        (_, _) => bail!(
            "{} describes {} IdPs; choose one with --idp-entity-id",
            path.display(),
            idps.len()
        ),
    };
    let keys = idp.idp_signing_keys();
    if keys.is_empty() {
        bail!("the IdP {:?} has no signing certificate", idp.entity_id);
    }
    Ok((idp.entity_id.clone(), keys))
}

fn success_json(subject: &AuthenticatedSubject, settings: &SpSettings) -> String {
    let mut attributes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for a in &subject.attributes {
        attributes
            .entry(a.name.as_str())
            .or_default()
            .extend(a.values.iter().map(String::as_str));
    }
    // The profile reports when a replay-cache entry may go (the earliest NotOnOrAfter,
    // plus the skew); the assertion's own bound is that minus the skew.
    let skew = settings.clock_skew.clamp(Duration::ZERO, MAX_CLOCK_SKEW);
    let not_on_or_after = (subject.replay_expiry - skew)
        .format(&Rfc3339)
        .unwrap_or_default();
    let out = json!({
        "issuer": subject.issuer,
        "name_id": subject.name_id.value,
        "name_id_format": subject.name_id.format,
        "session_index": subject.session_index,
        "attributes": attributes,
        "assertion_id": subject.assertion_id,
        "not_on_or_after": not_on_or_after,
    });
    format!("{out:#}")
}
