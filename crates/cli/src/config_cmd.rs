//! `latchkey config check [FILE]` and `latchkey config reference`.
//!
//! `check` loads a file exactly as `serve` and the admin commands do (the same resolution
//! order, the same environment overrides, the same checks), so "check says ok" means "serve
//! starts with this"; it then prints the effective configuration with its secrets masked, so
//! what an environment variable changed is visible. The reference page is rendered from the
//! table in [`reference`], which its tests hold to the configuration types.

mod reference;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use latchkey_idp::Config;
use latchkey_idp::config::ServerSettings;
use latchkey_idp::config::{Environment, ProcessEnv};
use latchkey_idp::keys::KEK_ENV;
use latchkey_idp::store::Backend;

/// `latchkey config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a latchkey.toml and print the effective configuration (secrets masked).
    ///
    /// Without FILE: $LATCHKEY_CONFIG, else ./latchkey.toml, else the built-in defaults.
    /// Environment overrides are applied as `latchkey serve` applies them. An unknown key is
    /// named with its line and the nearest valid key.
    Check {
        /// The file to check.
        file: Option<PathBuf>,
    },
    /// Print the configuration reference (every key, its type, default and environment
    /// override) as Markdown: the text of docs/configuration.md.
    Reference,
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ConfigCommand::Check { file } => check(file.as_deref(), &ProcessEnv, &mut out)?,
        ConfigCommand::Reference => out.write_all(reference::render().as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads and checks the configuration as `serve` would, and writes it out masked.
fn check(file: Option<&Path>, env: &dyn Environment, out: &mut dyn Write) -> anyhow::Result<()> {
    let source = match Config::locate(file, env) {
        Some(path) => path.display().to_string(),
        None => "built-in defaults (no file)".into(),
    };
    let mut config = Config::load_with(file, env)?;
    config.server = config.server.with_env(env)?;
    ServerSettings::check(config.server.clone())?;
    Backend::from_url(&config.database_url())?;
    let text = config
        .redacted()
        .to_toml()
        .map_err(anyhow::Error::msg)
        .context("cannot print the configuration")?;
    writeln!(
        out,
        "# {source}: valid. Effective configuration, secrets masked:"
    )?;
    if env.var(KEK_ENV).is_some() {
        writeln!(
            out,
            "# ${KEK_ENV} is set (not shown); it takes precedence over [keys] kek_file"
        )?;
    }
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn run_check(text: &str, env: &[(&'static str, &'static str)]) -> anyhow::Result<String> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("latchkey.toml");
        std::fs::write(&file, text)?;
        let mut out = Vec::new();
        let env: HashMap<&str, &str> = env.iter().copied().collect();
        check(Some(&file), &env, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn prints_the_effective_configuration_with_secrets_masked() {
        let shown = run_check(
            "[database]\nurl = \"postgres://idp:db-s3cret@db/idp\"\n\
             [server]\nmetrics_token = \"file-t0ken\"\n",
            &[
                ("LATCHKEY_BASE_URL", "https://idp.example.org"),
                ("LATCHKEY_KEK", "a2VrLXMzY3JldA=="),
            ],
        )
        .unwrap();
        assert!(shown.contains("valid"), "{shown}");
        // The environment override is what is shown, since it is what serve would use.
        assert!(
            shown.contains("base_url = \"https://idp.example.org\""),
            "{shown}"
        );
        assert!(shown.contains("postgres://idp:***@db/idp"), "{shown}");
        assert!(shown.contains("metrics_token = \"***\""), "{shown}");
        assert!(shown.contains("$LATCHKEY_KEK is set"), "{shown}");
        for secret in ["db-s3cret", "file-t0ken", "a2VrLXMzY3JldA=="] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }

    #[test]
    fn a_misspelt_key_is_refused_with_the_nearest_valid_one() {
        let err = run_check("[server]\ntrust_forwarded = true\n", &[]).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("did you mean `trust_forwarded_for`?"), "{err}");
    }

    #[test]
    fn serve_help_points_to_the_reference() {
        use clap::Args as _;
        let help = crate::serve::ServeArgs::augment_args(clap::Command::new("serve"))
            .render_long_help()
            .to_string();
        assert!(help.contains("docs/configuration.md"), "{help}");
        assert!(help.contains("latchkey config check"), "{help}");
        let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        assert!(page.is_file());
    }

    #[test]
    fn what_serve_would_refuse_is_refused() {
        let err = run_check("[server]\nassertion_validity_seconds = 5\n", &[]).unwrap_err();
        assert!(
            format!("{err:#}").contains("assertion_validity_seconds"),
            "{err:#}"
        );
        let err = run_check("", &[("LATCHKEY_COOKIE_SECURE", "maybe")]).unwrap_err();
        assert!(
            format!("{err:#}").contains("LATCHKEY_COOKIE_SECURE"),
            "{err:#}"
        );
        let err = run_check("[database]\nurl = \"mysql://x@y/z\"\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("mysql"), "{err:#}");
    }
}
