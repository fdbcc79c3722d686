//! `latchkey xml ...`: canonicalize, sign and verify XML documents.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum XmlCommand {
    /// Print the exclusive canonical form of a document or of one element.
    C14n {
        /// The XML file.
        file: std::path::PathBuf,
    },
}

pub fn run(cmd: XmlCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        XmlCommand::C14n { file } => anyhow::bail!("not yet: {}", file.display()),
    }
}
