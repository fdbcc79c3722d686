//! `latchkey app ...`

use latchkey_idp::{Clock as _, SystemClock};
use latchkey_idp_web::api::apps::AppDto;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use latchkey_idp::apps::{
    AcsEndpoint, Application, AttributeMapping, Binding, Endpoint, NameIdFormat, NewApplication,
    SpMetadata, SpMetadataOptions,
};
use serde::Serialize;

use super::Context;
use super::output::outln;
use super::output::{self, opt};

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application from explicit fields, or from a connector template.
    Add {
        #[command(flatten)]
        fields: AppFields,
        /// Start from this connector template (see the catalogue); explicit options win.
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
        /// A value for one of the template's URL placeholders, e.g. host=wiki.example.org.
        #[arg(long = "param", value_name = "KEY=VALUE", requires = "template")]
        params: Vec<String>,
        #[command(flatten)]
        metadata: MetadataArgs,
    },
    /// List the connector templates `app add --template` accepts (same as `latchkey template list`).
    Templates {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List applications.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one application (by entity ID, ID or name).
    Show {
        /// Entity ID, ID or name.
        app: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change an application.
    Set {
        /// Entity ID, ID or name.
        app: String,
        #[command(flatten)]
        fields: AppFields,
        /// Add one released attribute (see --attr).
        #[arg(long = "add-attr", value_name = "MAPPING")]
        add_attributes: Vec<String>,
        /// Stop releasing the attribute with this SAML name.
        #[arg(long = "remove-attr", value_name = "NAME")]
        remove_attributes: Vec<String>,
        /// Forget the encryption certificate and its algorithms (and stop encrypting).
        #[arg(long)]
        clear_encryption_cert: bool,
        /// Forget the advertised encryption algorithms (assertions then use the defaults).
        #[arg(long, conflicts_with = "encryption_methods")]
        clear_encryption_methods: bool,
        /// Whether every sign-in to the application needs a second factor.
        #[arg(long, value_name = "BOOL")]
        require_mfa: Option<bool>,
        /// The multi-factor AuthnContextClassRef its assertions state: refeds
        /// (https://refeds.org/profile/mfa, the default) or mobile_two_factor
        /// (MobileTwoFactorContract).
        #[arg(long, value_name = "CLASS")]
        mfa_class: Option<String>,
        #[command(flatten)]
        metadata: MetadataArgs,
    },
    /// Read the application's SP metadata again (e.g. after the SP rolled its keys) and take
    /// its endpoints and certificates; audited as app.metadata_refresh when something changed.
    RefreshMetadata {
        /// Entity ID, ID or name.
        app: String,
        /// The SP's metadata: a file or an http(s) URL.
        #[arg(value_name = "FILE|URL")]
        source: String,
        /// Use metadata whose validUntil has passed.
        #[arg(long)]
        allow_expired_metadata: bool,
    },
    /// Remove an application, its access policy and its pairwise identifiers.
    Remove {
        /// Entity ID, ID or name.
        app: String,
    },
    /// Let a group's members use the application.
    Assign {
        /// Entity ID, ID or name.
        app: String,
        /// Group name or ID.
        group: String,
    },
    /// Stop a group's members using the application.
    Unassign {
        /// Entity ID, ID or name.
        app: String,
        /// Group name or ID.
        group: String,
    },
    /// Push users to the application over SCIM 2.0: connect, show the delivery state,
    /// disconnect.
    Scim {
        #[command(subcommand)]
        command: super::scim::ScimCommand,
    },
    /// Compare the application's SCIM users with who should be there, show the difference
    /// (create, update, deactivate or delete) and apply it.
    Sync {
        /// Entity ID, ID or name.
        app: String,
        /// Only show the difference; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Registering from, or refreshing from, the SP's SAML metadata.
#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// The SP's metadata: a file, or an http(s) URL fetched now. It supplies entity ID, ACS
    /// and SLO endpoints and certificates (on `set`: replaces endpoints and certificates);
    /// --template supplies attribute release; explicit options win over both. In an
    /// aggregate, --entity-id chooses the SP.
    #[arg(long, value_name = "FILE|URL")]
    metadata: Option<String>,
    /// Use metadata whose validUntil has passed.
    #[arg(long, requires = "metadata")]
    allow_expired_metadata: bool,
}

/// Largest metadata file read (one SP's metadata is a few kilobytes; URL fetches have their
/// own cap).
const MAX_METADATA_FILE: u64 = 5 * 1024 * 1024;

impl MetadataArgs {
    /// Reads and maps the metadata, if asked for; the chosen entity is `entity_id` when given.
    async fn load(&self, entity_id: Option<&str>) -> anyhow::Result<Option<SpMetadata>> {
        let Some(source) = &self.metadata else {
            return Ok(None);
        };
        let text = if source.starts_with("https://") || source.starts_with("http://") {
            latchkey_sp::fetch::fetch_metadata(source).await?
        } else {
            let path = Path::new(source);
            let size = std::fs::metadata(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .len();
            if size > MAX_METADATA_FILE {
                bail!(
                    "{} is larger than {MAX_METADATA_FILE} bytes: not one SP's metadata",
                    path.display()
                );
            }
            read_pem(path)?
        };
        let options = SpMetadataOptions {
            entity_id: entity_id.map(str::to_owned),
            allow_expired: self.allow_expired_metadata,
            ..SpMetadataOptions::new(SystemClock.now())
        };
        let metadata = SpMetadata::parse(&text, &options)
            .with_context(|| format!("cannot use the metadata from {source}"))?;
        Ok(Some(metadata))
    }
}

/// Says what the metadata held that was left out, once the change is stored (a refused
/// change prints only its error).
fn print_warnings(metadata: Option<&SpMetadata>, app: &NewApplication) {
    let Some(metadata) = metadata else {
        return;
    };
    for warning in metadata.warnings.iter().chain(&metadata.mismatches(app)) {
        eprintln!("warning: {warning}");
    }
}

/// The fields shared by `app add` and `app set`; an absent option leaves the value alone.
#[derive(Debug, Args)]
pub struct AppFields {
    /// The SP's SAML entity ID.
    #[arg(long)]
    entity_id: Option<String>,
    /// Name shown to admins and on the portal tile.
    #[arg(long)]
    name: Option<String>,
    /// Short unique name for launch links (`/saml/init/SLUG`): lower-case letters, digits
    /// and hyphens. Derived from the name when an application is added without one.
    #[arg(long)]
    slug: Option<String>,
    /// ACS URL; repeat for several (indexes 0, 1, ... in order; the first is the default).
    /// Replaces the existing list.
    #[arg(long = "acs-url", value_name = "URL")]
    acs_urls: Vec<String>,
    /// Binding of the given ACS URLs: post (default) or artifact.
    #[arg(long, value_name = "BINDING")]
    acs_binding: Option<String>,
    /// Single-logout URL ("" removes it).
    #[arg(long, value_name = "URL")]
    slo_url: Option<String>,
    /// Binding of the single-logout URL: redirect (default), post or soap.
    #[arg(long, value_name = "BINDING")]
    slo_binding: Option<String>,
    /// PEM file with the SP's signing certificate (AuthnRequests and logout messages are
    /// checked with it); repeat for several. Replaces the existing list.
    #[arg(long = "signing-cert", value_name = "FILE")]
    signing_certs: Vec<PathBuf>,
    /// The SP signs its AuthnRequests (default true): with a signing certificate, unsigned
    /// AuthnRequests are then refused.
    #[arg(long, value_name = "BOOL")]
    authn_requests_signed: Option<bool>,
    /// Legacy opt-in (default false): believe the SP's unsigned LogoutRequests and
    /// LogoutResponses. An unsigned LogoutRequest then ends at most the browser's own
    /// session, and only when it signed in to this SP under the NameID it names.
    #[arg(long, value_name = "BOOL")]
    allow_unsigned_logout: Option<bool>,
    /// Opt-out (default false): IdP-initiated launch from another site's link signs in at
    /// once instead of asking the user to confirm (login-CSRF protection).
    #[arg(long, value_name = "BOOL")]
    launch_without_confirmation: Option<bool>,
    /// PEM file with the certificate to encrypt assertions to.
    #[arg(long, value_name = "FILE")]
    encryption_cert: Option<PathBuf>,
    /// An encryption algorithm the SP accepts, as its URI or our short name (aes256-gcm,
    /// aes128-gcm, aes256-cbc, aes128-cbc, rsa-oaep, rsa-oaep-mgf1p). Repeat for several;
    /// replaces the list. Assertions use the best of them this IdP allows.
    #[arg(long = "encryption-method", value_name = "ALGORITHM")]
    encryption_methods: Vec<String>,
    /// NameID format: persistent, transient, email or unspecified.
    #[arg(long, value_name = "FORMAT")]
    name_id_format: Option<String>,
    /// NameID source: pairwise, email, username or attr:NAME.
    #[arg(long, value_name = "SOURCE")]
    name_id_source: Option<String>,
    /// The NameID formats an SP's request may ask for, comma-separated (persistent,
    /// transient, email, unspecified); a request for another is answered
    /// InvalidNameIDPolicy. Must include --name-id-format. "" (and the default): any
    /// format this IdP makes.
    #[arg(long, value_name = "FORMATS", alias = "nameid-formats")]
    name_id_formats: Option<String>,
    /// Released attribute NAME[@basic|uri|unspecified]=SOURCE[|prefix:P|strip-prefix:P],
    /// SOURCE being id, username, email, given_name, family_name, display_name, attr:KEY,
    /// const:VALUE or groups. Repeat for several; replaces the existing list.
    #[arg(long = "attr", value_name = "MAPPING")]
    attributes: Vec<String>,
    /// Sign the Response.
    #[arg(long, value_name = "BOOL")]
    sign_response: Option<bool>,
    /// Sign the Assertion.
    #[arg(long, value_name = "BOOL")]
    sign_assertion: Option<bool>,
    /// Encrypt the assertion (needs --encryption-cert).
    #[arg(long, value_name = "BOOL")]
    encrypt: Option<bool>,
    /// Portal tile description ("" removes it).
    #[arg(long)]
    description: Option<String>,
    /// Portal tile icon URL ("" removes it).
    #[arg(long, value_name = "URL")]
    icon_url: Option<String>,
    /// RelayState for sign-in from the portal ("" removes it).
    #[arg(long, value_name = "STATE")]
    relay_state: Option<String>,
    /// Show the tile on the portal.
    #[arg(long, value_name = "BOOL")]
    visible: Option<bool>,
    /// The application's own sign-in page: the portal tile links there (SP-initiated)
    /// instead of to the IdP's /saml/init/ID. https://, or http:// on localhost only.
    #[arg(long, value_name = "URL")]
    tile_login_url: Option<String>,
    /// Forget the tile's login URL (the tile then signs in IdP-initiated).
    #[arg(long, conflicts_with = "tile_login_url")]
    clear_tile_login_url: bool,
}

fn read_pem(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn clearable(value: String) -> Option<String> {
    if value.trim().is_empty() {
        None
    } else {
        Some(value)
    }
}

impl AppFields {
    /// Writes the given options over an application definition.
    fn apply(self, app: &mut NewApplication) -> anyhow::Result<()> {
        if let Some(v) = self.entity_id {
            app.entity_id = v;
        }
        if let Some(v) = self.name {
            app.name = v;
        }
        let acs_binding = self
            .acs_binding
            .as_deref()
            .map(Binding::parse)
            .transpose()?;
        if !self.acs_urls.is_empty() {
            let binding = acs_binding.unwrap_or(Binding::HttpPost);
            app.acs = self
                .acs_urls
                .into_iter()
                .enumerate()
                .map(|(i, url)| {
                    Ok(AcsEndpoint {
                        url,
                        binding,
                        index: u16::try_from(i).context("too many ACS URLs")?,
                        is_default: i == 0,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
        } else if let Some(binding) = acs_binding {
            app.acs.iter_mut().for_each(|a| a.binding = binding);
        }
        let slo_binding = self
            .slo_binding
            .as_deref()
            .map(Binding::parse)
            .transpose()?;
        match (self.slo_url.map(clearable), slo_binding) {
            (Some(None), _) => app.slo = None,
            (Some(Some(url)), binding) => {
                app.slo = Some(Endpoint {
                    url,
                    binding: binding.unwrap_or(Binding::HttpRedirect),
                })
            }
            (None, Some(binding)) => match &mut app.slo {
                Some(slo) => slo.binding = binding,
                None => bail!("--slo-binding needs --slo-url"),
            },
            (None, None) => {}
        }
        if !self.signing_certs.is_empty() {
            app.signing_certs = self
                .signing_certs
                .iter()
                .map(|p| read_pem(p))
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(path) = self.encryption_cert {
            app.encryption_cert = Some(read_pem(&path)?);
        }
        if !self.encryption_methods.is_empty() {
            app.encryption_methods = self.encryption_methods;
        }
        if let Some(v) = self.name_id_format {
            app.name_id.format = NameIdFormat::parse(&v)?;
        }
        if let Some(v) = self.name_id_source {
            app.name_id.source = v.parse()?;
        }
        if let Some(v) = self.name_id_formats {
            app.name_id_formats = v
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(NameIdFormat::parse)
                .collect::<Result<_, _>>()?;
        }
        if !self.attributes.is_empty() {
            app.attributes = self
                .attributes
                .iter()
                .map(|a| a.parse::<AttributeMapping>())
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = self.authn_requests_signed {
            app.authn_requests_signed = v;
        }
        if let Some(v) = self.allow_unsigned_logout {
            app.allow_unsigned_logout = v;
        }
        if let Some(v) = self.launch_without_confirmation {
            app.launch_without_confirmation = v;
        }
        if let Some(v) = &self.slug {
            app.slug = v.clone();
        }
        if let Some(v) = self.sign_response {
            app.sign_response = v;
        }
        if let Some(v) = self.sign_assertion {
            app.sign_assertion = v;
        }
        if let Some(v) = self.encrypt {
            app.encrypt_assertion = v;
        }
        if let Some(v) = self.description {
            app.tile.description = clearable(v);
        }
        if let Some(v) = self.icon_url {
            app.tile.icon_url = clearable(v);
        }
        if let Some(v) = self.relay_state {
            app.tile.default_relay_state = clearable(v);
        }
        if let Some(v) = self.visible {
            app.tile.visible = v;
        }
        if let Some(v) = self.tile_login_url {
            app.tile.login_url = Some(v);
        }
        if self.clear_tile_login_url {
            app.tile.login_url = None;
        }
        Ok(())
    }
}

/// The starting definition for `app add`: the metadata's (with the template's policy), the
/// template's, or the explicit required fields.
fn base(
    fields: &AppFields,
    template: Option<&str>,
    params: &[String],
    metadata: Option<&SpMetadata>,
) -> anyhow::Result<NewApplication> {
    if let Some(metadata) = metadata {
        let template = template.map(latchkey_idp::catalog::get).transpose()?;
        return Ok(metadata.application(template.as_ref()));
    }
    let explicit = match (&fields.entity_id, fields.acs_urls.first()) {
        (Some(entity_id), Some(acs)) => Some(NewApplication::new(
            entity_id.clone(),
            fields.name.clone().unwrap_or_else(|| entity_id.clone()),
            acs.clone(),
        )),
        _ => None,
    };
    let Some(name) = template else {
        return match explicit {
            Some(app) => Ok(app),
            None if fields.entity_id.is_none() => bail!("missing --entity-id (or --template)"),
            None => bail!("missing --acs-url (or --template)"),
        };
    };
    let template = latchkey_idp::catalog::get(name)?;
    match explicit {
        Some(mut app) => {
            template.apply_to(&mut app);
            if fields.name.is_none() {
                app.name = template.display_name.clone();
            }
            Ok(app)
        }
        None => {
            let pairs: Vec<(&str, &str)> = params
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .with_context(|| format!("invalid --param {p:?}: expected KEY=VALUE"))
                })
                .collect::<anyhow::Result<_>>()?;
            Ok(template.application(&pairs)?)
        }
    }
}

#[derive(Serialize)]
struct AppWithAccess {
    /// The API's shape of an application (`GET /api/v1/apps/{app}`), so `--json` output and
    /// API answers parse alike.
    #[serde(flatten)]
    app: AppDto,
    access_groups: Vec<String>,
}

async fn access(ctx: &Context, app: &Application) -> anyhow::Result<Vec<String>> {
    Ok(ctx
        .store
        .apps()
        .access_groups(app.id)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect())
}

fn yes_no(v: bool) -> String {
    if v { "yes" } else { "no" }.to_string()
}

pub async fn run(ctx: &Context, cmd: AppCommand) -> anyhow::Result<()> {
    let apps = ctx.store.apps();
    match cmd {
        AppCommand::Add {
            fields,
            template,
            params,
            metadata,
        } => {
            let source = metadata.metadata.clone();
            let metadata = metadata.load(fields.entity_id.as_deref()).await?;
            let mut new = base(&fields, template.as_deref(), &params, metadata.as_ref())?;
            fields.apply(&mut new)?;
            let app = match (&metadata, &source) {
                (Some(m), Some(source)) => {
                    apps.create_from_metadata(&ctx.actor, new, m, source)
                        .await?
                }
                _ => apps.create(&ctx.actor, new).await?,
            };
            print_warnings(metadata.as_ref(), &app.settings);
            outln!(
                "registered application {} ({})",
                app.settings.entity_id,
                app.id
            )?;
            outln!("launch link: /saml/init/{}", app.settings.slug)?;
            // What the template knows the application needs: the groups to assign, the
            // attributes every user must have. Said now, not on the app's refusal page.
            if let Some(template) = template.as_deref() {
                let t = latchkey_idp::catalog::get(template)?;
                outln!("the application expects:")?;
                for line in t.expects.lines() {
                    outln!("  {line}")?;
                }
            }
        }
        AppCommand::Templates { json } => {
            crate::catalog_cmd::run(crate::catalog_cmd::TemplateCommand::List { json })?;
        }
        AppCommand::List { json } => {
            let all = apps.list().await?;
            let mut listed = Vec::with_capacity(all.len());
            for app in &all {
                listed.push((app, access(ctx, app).await?));
            }
            if json {
                let shaped: Vec<AppWithAccess> = listed
                    .into_iter()
                    .map(|(app, access_groups)| AppWithAccess {
                        app: AppDto::from(app.clone()),
                        access_groups,
                    })
                    .collect();
                return output::json(&shaped);
            }
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|(app, access_groups)| {
                    vec![
                        app.settings.name.clone(),
                        app.settings.slug.clone(),
                        app.settings.entity_id.clone(),
                        access_groups.join(","),
                        yes_no(app.settings.tile.visible),
                        app.id.to_string(),
                    ]
                })
                .collect();
            output::table(
                &["NAME", "SLUG", "ENTITY ID", "GROUPS", "TILE", "ID"],
                &rows,
            )?;
        }
        AppCommand::Show { app, json } => {
            let app = apps.lookup(&app).await?;
            let access_groups = access(ctx, &app).await?;
            if json {
                return output::json(&AppWithAccess {
                    app: AppDto::from(app),
                    access_groups,
                });
            }
            let s = &app.settings;
            let acs: Vec<String> = s
                .acs
                .iter()
                .map(|a| {
                    let default = if a.is_default { " (default)" } else { "" };
                    format!("[{}] {} {}{default}", a.index, a.url, a.binding.uri())
                })
                .collect();
            let attrs: Vec<String> = s.attributes.iter().map(ToString::to_string).collect();
            let scim = match ctx.store.provisioning().status(app.id).await? {
                Some(c) => format!(
                    "{} ({} queued; details: latchkey app scim show)",
                    c.base_url, c.queue_length
                ),
                None => "not connected".to_owned(),
            };
            output::fields(&[
                ("id", app.id.to_string()),
                ("entity id", s.entity_id.clone()),
                ("name", s.name.clone()),
                ("slug", s.slug.clone()),
                ("acs", acs.join("; ")),
                (
                    "slo",
                    s.slo
                        .as_ref()
                        .map(|e| format!("{} {}", e.url, e.binding.uri()))
                        .unwrap_or_default(),
                ),
                (
                    "name id",
                    format!("{} from {}", s.name_id.format.uri(), s.name_id.source),
                ),
                ("name id formats allowed", s.name_id_formats_text()),
                ("attributes", attrs.join("; ")),
                ("sign response", yes_no(s.sign_response)),
                ("sign assertion", yes_no(s.sign_assertion)),
                ("encrypt", yes_no(s.encrypt_assertion)),
                ("signing certs", s.signing_certs.len().to_string()),
                ("authn requests signed", yes_no(s.authn_requests_signed)),
                ("unsigned logout allowed", yes_no(s.allow_unsigned_logout)),
                (
                    "launch without confirmation",
                    yes_no(s.launch_without_confirmation),
                ),
                ("encryption cert", yes_no(s.encryption_cert.is_some())),
                ("encryption methods", s.encryption_methods.join(" ")),
                ("access groups", access_groups.join(", ")),
                ("scim", scim),
                ("tile shown", yes_no(s.tile.visible)),
                ("description", opt(&s.tile.description)),
                ("icon", opt(&s.tile.icon_url)),
                ("relay state", opt(&s.tile.default_relay_state)),
                ("tile login url", opt(&s.tile.login_url)),
                ("created", output::when(app.created_at)),
                ("updated", output::when(app.updated_at)),
            ])?;
        }
        AppCommand::Set {
            app,
            fields,
            add_attributes,
            remove_attributes,
            clear_encryption_cert,
            clear_encryption_methods,
            require_mfa,
            mfa_class,
            metadata,
        } => {
            let target = apps.lookup(&app).await?;
            let mfa_changed =
                super::mfa::set_app(ctx, &target, require_mfa, mfa_class.as_deref()).await?;
            let mut settings = target.settings.clone();
            let chosen = fields
                .entity_id
                .as_deref()
                .unwrap_or(&target.settings.entity_id);
            let metadata = metadata.load(Some(chosen)).await?;
            if let Some(metadata) = &metadata {
                metadata.apply_to(&mut settings);
            }
            fields.apply(&mut settings)?;
            for text in add_attributes {
                settings.attributes.push(text.parse()?);
            }
            for name in remove_attributes {
                let before = settings.attributes.len();
                settings.attributes.retain(|a| a.name != name);
                if settings.attributes.len() == before {
                    bail!("application releases no attribute named {name:?}");
                }
            }
            if clear_encryption_cert {
                settings.encryption_cert = None;
                settings.encryption_methods.clear();
                settings.encrypt_assertion = false;
            }
            if clear_encryption_methods {
                settings.encryption_methods.clear();
            }
            if settings == target.settings {
                if mfa_changed {
                    return Ok(());
                }
                bail!("nothing to change: give at least one option that differs (see --help)");
            }
            // The options were applied to the settings as read before the metadata was
            // fetched: a change committed meanwhile is refused, not written back over.
            let seen = target.settings.version();
            let updated = apps
                .update_if(
                    &ctx.actor,
                    target.id,
                    |now| now == seen,
                    move |s| {
                        *s = settings;
                        Ok(())
                    },
                )
                .await?;
            print_warnings(metadata.as_ref(), &updated.settings);
            outln!("updated application {}", updated.settings.entity_id)?;
        }
        AppCommand::RefreshMetadata {
            app,
            source,
            allow_expired_metadata,
        } => {
            let target = apps.lookup(&app).await?;
            let args = MetadataArgs {
                metadata: Some(source.clone()),
                allow_expired_metadata,
            };
            let Some(metadata) = args.load(Some(&target.settings.entity_id)).await? else {
                bail!("no metadata to read");
            };
            match apps
                .refresh_metadata(&ctx.actor, target.id, &metadata, &source)
                .await?
            {
                Some(updated) => {
                    print_warnings(Some(&metadata), &updated.settings);
                    outln!(
                        "refreshed application {} from {source}",
                        updated.settings.entity_id
                    )?;
                }
                None => outln!(
                    "application {} already matches {source}; nothing changed",
                    target.settings.entity_id
                )?,
            }
        }
        AppCommand::Remove { app } => {
            let app = apps.lookup(&app).await?;
            apps.delete(&ctx.actor, app.id).await?;
            outln!("removed application {}", app.settings.entity_id)?;
        }
        AppCommand::Assign { app, group } => {
            let app = apps.lookup(&app).await?;
            let group = ctx.store.groups().lookup(&group).await?;
            apps.assign(&ctx.actor, app.id, group.id).await?;
            outln!("assigned {} to {}", group.name, app.settings.entity_id)?;
        }
        AppCommand::Unassign { app, group } => {
            let app = apps.lookup(&app).await?;
            let group = ctx.store.groups().lookup(&group).await?;
            apps.unassign(&ctx.actor, app.id, group.id).await?;
            outln!("unassigned {} from {}", group.name, app.settings.entity_id)?;
        }
        AppCommand::Scim { command } => super::scim::run(ctx, command).await?,
        AppCommand::Sync { app, dry_run, json } => {
            super::scim::sync(ctx, &app, dry_run, json).await?;
        }
    }
    Ok(())
}
