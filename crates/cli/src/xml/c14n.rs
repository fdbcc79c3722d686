//! `latchkey xml c14n`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use latchkey_xmlsec::c14n::{self, Algorithm, Options};
use latchkey_xmlsec::reader::{self, Limits};

use super::{find_by_id, read_input};

pub fn c14n_command(
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
