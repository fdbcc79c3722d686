//! `latchkey template ...`: the connector catalogue shipped in the binary.
//!
//! Needs no store: the templates are compiled in.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use latchkey_idp::catalog::{self, Template};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the connector templates.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a template sets: NameID, attributes, URLs to fill in, SP-side settings.
    Show {
        /// Template name (see `latchkey template list`).
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: TemplateCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let result = match cmd {
        TemplateCommand::List { json } => list(&mut out, json),
        TemplateCommand::Show { name, json } => show(&mut out, &name, json),
    };
    result.map(|()| ExitCode::SUCCESS)
}

fn list(out: &mut impl Write, as_json: bool) -> anyhow::Result<()> {
    let all = catalog::templates().context("reading the connector catalogue")?;
    if as_json {
        let rows: Vec<_> = all.iter().map(summary).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    let width = all.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in &all {
        writeln!(out, "{:<width$}  {}", t.name, t.display_name)?;
    }
    Ok(())
}

fn summary(t: &Template) -> serde_json::Value {
    json!({
        "name": t.name,
        "display_name": t.display_name,
        "docs": t.docs,
        "name_id_format": t.name_id.format.uri(),
        "name_id_source": t.name_id.source.to_string(),
        "acs_url": t.acs_url.as_ref().map(|p| p.as_str()),
        "entity_id": t.entity_id.as_ref().map(|p| p.as_str()),
        "login_url": t.login_url.as_ref().map(|p| p.as_str()),
        "placeholders": t.placeholders(),
        "attributes": t.attributes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "required_attributes": t.required_attributes,
        "sp_settings": t.sp_settings.iter().map(|s| json!({"name": s.name, "value": s.value})).collect::<Vec<_>>(),
        "sign_response": t.sign_response,
        "sign_assertion": t.sign_assertion,
        "expects": t.expects,
        "notes": t.notes,
    })
}

fn show(out: &mut impl Write, name: &str, as_json: bool) -> anyhow::Result<()> {
    let t = catalog::get(name)?;
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(&summary(&t))?)?;
        return Ok(());
    }
    writeln!(out, "{} ({})", t.display_name, t.name)?;
    writeln!(out, "source:          {}", t.docs)?;
    writeln!(
        out,
        "NameID:          {} from {}",
        t.name_id.format.uri(),
        t.name_id.source
    )?;
    if let Some(acs) = &t.acs_url {
        writeln!(out, "ACS URL:         {}", acs.as_str())?;
    }
    if let Some(entity) = &t.entity_id {
        writeln!(out, "SP entity ID:    {}", entity.as_str())?;
    }
    if let Some(login) = &t.login_url {
        writeln!(out, "tile login URL:  {}", login.as_str())?;
    }
    let placeholders: Vec<String> = t.placeholders().into_iter().collect();
    if !placeholders.is_empty() {
        let params: Vec<String> = placeholders
            .iter()
            .map(|p| format!("--param {p}=..."))
            .collect();
        writeln!(out, "placeholders:    {}", params.join(" "))?;
    }
    writeln!(
        out,
        "signed:          response {}, assertion {}",
        yes_no(t.sign_response),
        yes_no(t.sign_assertion)
    )?;
    if !t.attributes.is_empty() {
        writeln!(out, "attributes:")?;
        for a in &t.attributes {
            let required = if t.required_attributes.contains(&a.name) {
                "  (required)"
            } else {
                ""
            };
            writeln!(out, "  {a}{required}")?;
        }
    }
    if !t.sp_settings.is_empty() {
        writeln!(out, "settings on the application's side:")?;
        for s in &t.sp_settings {
            writeln!(out, "  {} = {}", s.name, s.value)?;
        }
    }
    if !t.expects.is_empty() {
        writeln!(out, "expects:")?;
        for line in t.expects.lines() {
            writeln!(out, "  {line}")?;
        }
    }
    if !t.notes.is_empty() {
        writeln!(out, "notes:")?;
        for line in t.notes.lines() {
            writeln!(out, "  {line}")?;
        }
    }
    writeln!(
        out,
        "register with:   latchkey app add --template {}",
        t.name
    )?;
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
