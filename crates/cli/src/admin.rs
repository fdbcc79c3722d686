//! Admin commands that work directly on the store the config names (no server needed).

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show the version of the store schema.
    StoreInfo,
}

pub fn run(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::StoreInfo => Ok(ExitCode::SUCCESS),
    }
}
