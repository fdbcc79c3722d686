//! `latchkey`: the identity provider, its admin commands, and XML/SAML debugging tools.
#![forbid(unsafe_code)]

mod admin;
mod bench_cmd;
mod catalog_cmd;
#[cfg(test)]
mod codes_doc;
mod config_cmd;
mod demo;
mod demo_app;
mod keys_cmd;
mod logging;
mod saml_cmd;
mod serve;
mod sp_cmd;
mod stdout;
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
        // The one place a closed stdout is handled: the reader (`| head`) has what it wanted.
        Err(err) if stdout::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One clear line, never a backtrace: the chain of causes joined with ": ".
            eprintln!("error: {err:#}");
            ExitCode::from(Exit::of(&err) as u8)
        }
    }
}

/// The exit status by class, so a script can tell "no" from "wrong" from "try later"
/// without reading the message (documented in `docs/error-codes.md`). Usage errors exit 2
/// through clap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Exit {
    /// Refused: the input was understood and a rule or the current state said no (a
    /// signature that does not verify, a duplicate, an unknown name).
    Refused = 1,
    /// Bad input or usage: an option, a file or a value cannot be used as given.
    BadInput = 2,
    /// Unavailable: the database, the audit log, the disk, the network or a busy server
    /// failed; the same command may work later.
    Unavailable = 3,
}

impl Exit {
    /// Every failure status, for the generated table.
    #[cfg(test)]
    const ALL: [Exit; 3] = [Exit::Refused, Exit::BadInput, Exit::Unavailable];

    /// What the status tells a script, for the generated table.
    #[cfg(test)]
    fn meaning(self) -> &'static str {
        match self {
            Exit::Refused => {
                "Refused: the input was understood and a rule or the current state said no \
                 (a signature that does not verify, a duplicate, an unknown name)."
            }
            Exit::BadInput => {
                "Bad input or usage: an option, a file or a value cannot be used as given."
            }
            Exit::Unavailable => {
                "Unavailable: the database, the audit log, the disk, the network or a busy \
                 server failed; the same command may work later."
            }
        }
    }

    /// The class of the first typed error in the chain; an error of the CLI's own (a
    /// `bail!` about options or files) is bad input.
    fn of(err: &anyhow::Error) -> Exit {
        use latchkey_idp::Class;
        for cause in err.chain() {
            if let Some(e) = cause.downcast_ref::<latchkey_idp::Error>() {
                return match e.code().class() {
                    Class::Refused => Exit::Refused,
                    Class::BadInput => Exit::BadInput,
                    Class::Unavailable => Exit::Unavailable,
                };
            }
            if let Some(e) = cause.downcast_ref::<latchkey_idp::provisioning::ProvisioningError>()
                && !matches!(e, latchkey_idp::provisioning::ProvisioningError::Key(_))
            {
                // (a key error is classed by its own cause, next in the chain)
                return match e.code().class() {
                    Class::Refused => Exit::Refused,
                    Class::BadInput => Exit::BadInput,
                    Class::Unavailable => Exit::Unavailable,
                };
            }
            if let Some(e) = cause.downcast_ref::<latchkey_idp::keys::KeyError>() {
                use latchkey_idp::keys::KeyError as K;
                return match e {
                    K::NoActiveKey
                    | K::NoNextKey
                    | K::NextKeyExists(_)
                    | K::TooSoon { .. }
                    | K::ImportTargetNotEmpty { .. } => Exit::Refused,
                    K::Store(inner) => match inner.code().class() {
                        Class::Refused => Exit::Refused,
                        Class::BadInput => Exit::BadInput,
                        Class::Unavailable => Exit::Unavailable,
                    },
                    K::KekMissing
                    | K::KekInvalid { .. }
                    | K::WrongKek { .. }
                    | K::InsecurePermissions { .. } => Exit::BadInput,
                    K::Io { source, .. } => Exit::of_io(source),
                    _ => Exit::Unavailable,
                };
            }
            if let Some(e) = cause.downcast_ref::<latchkey_sp::Error>() {
                return match e {
                    latchkey_sp::Error::Settings(_) | latchkey_sp::Error::Contract(_) => {
                        Exit::BadInput
                    }
                    e if e.is_internal() => Exit::Unavailable,
                    _ => Exit::Refused,
                };
            }
            if let Some(e) = cause.downcast_ref::<latchkey_saml::Error>() {
                return match e.rule() {
                    "xml" | "schema" | "binding" | "build" => Exit::BadInput,
                    _ => Exit::Refused,
                };
            }
            if let Some(e) = cause.downcast_ref::<latchkey_xmlsec::Error>() {
                return match e {
                    latchkey_xmlsec::Error::Read(_) | latchkey_xmlsec::Error::C14n(_) => {
                        Exit::BadInput
                    }
                    _ => Exit::Refused,
                };
            }
            if cause
                .downcast_ref::<latchkey_idp::mail::MailError>()
                .is_some()
            {
                return Exit::Unavailable;
            }
            if let Some(e) = cause.downcast_ref::<std::io::Error>() {
                return Exit::of_io(e);
            }
        }
        Exit::BadInput
    }

    /// A file the command was pointed at that is missing or unreadable is bad input; one
    /// that exists where it must not is a refusal; anything else is the machine's.
    fn of_io(e: &std::io::Error) -> Exit {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound | K::InvalidInput | K::InvalidData | K::PermissionDenied => Exit::BadInput,
            K::AlreadyExists => Exit::Refused,
            _ => Exit::Unavailable,
        }
    }
}
