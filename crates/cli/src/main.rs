//! `latchkey`: the identity provider, its admin commands, and XML/SAML debugging tools.
#![forbid(unsafe_code)]

mod admin;
mod bench_cmd;
mod catalog_cmd;
mod config_cmd;
mod demo;
mod demo_app;
mod keys_cmd;
mod logging;
mod saml_cmd;
mod serve;
mod sp_cmd;
mod token_cmd;
mod xml;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Single sign-on over SAML 2.0 with just-in-time provisioning.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// XML security tools: canonicalize, sign and verify documents.
    #[command(subcommand)]
    Xml(xml::XmlCommand),
    /// SAML debugging tools: decode and verify messages.
    #[command(subcommand)]
    Saml(saml_cmd::SamlCommand),
    #[command(flatten)]
    Admin(admin::AdminCommand),
    /// Run the whole demo: the IdP and two JIT-provisioning apps, seeded and registered.
    Demo(demo::DemoArgs),
    /// Run the SSO server: sign-in, SAML endpoints, user portal and admin API.
    Serve(serve::ServeArgs),
    /// Check a configuration file, or print the reference of every key.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Run a demo application (wiki or helpdesk) built on the SP toolkit.
    DemoApp(demo_app::DemoAppArgs),
    /// SP toolkit tools (dry-run provisioning plans).
    #[command(subcommand)]
    Sp(sp_cmd::SpCommand),
    /// Connector templates shipped in the binary.
    #[command(subcommand)]
    Template(catalog_cmd::TemplateCommand),
    /// The IdP's signing keys (list, init, rotate, activate, retire-next, cert, import-files,
    /// new-kek, rewrap).
    Key(keys_cmd::KeyArgs),
    /// Admin API tokens (create, list, revoke).
    Token(token_cmd::TokenArgs),
    /// Load and memory benchmarks against a running or spawned latchkey serve.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Xml(cmd) => xml::run(cmd),
        Command::Saml(cmd) => saml_cmd::run(cmd),
        Command::Admin(cmd) => admin::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::DemoApp(args) => demo_app::run(args),
        Command::Sp(cmd) => sp_cmd::run(cmd),
        Command::Template(cmd) => catalog_cmd::run(cmd),
        Command::Key(args) => keys_cmd::run(args),
        Command::Token(args) => token_cmd::run(args),
        Command::Bench(cmd) => bench_cmd::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One clear line, never a backtrace: the chain of causes joined with ": ".
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
