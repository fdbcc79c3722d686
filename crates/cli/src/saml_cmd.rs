//! `latchkey saml ...`: look inside a SAML message and run the SP's profile rules on a
//! Response, for anyone debugging a login.
//!
//! `decode` only displays (nothing is verified); `verify` runs exactly
//! [`latchkey_saml::profile::validate_response`], the function every Latchkey SP runs, so a
//! verdict here is the verdict the ACS would give.

mod decode;
mod pretty;
pub(crate) mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

/// SAML debugging commands.
#[derive(Debug, Subcommand)]
pub enum SamlCommand {
    /// Print a SAML message as indented XML, with what it is (type, issuer, destination,
    /// signatures present; none of them verified).
    ///
    /// The input may be raw XML, an HTTP-POST base64 value, or an HTTP-Redirect URL or query
    /// string (deflated SAMLRequest or SAMLResponse).
    Decode {
        /// The file, or `-` for standard input.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Run the Web Browser SSO profile's rules on a Response, as an SP would.
    ///
    /// Exit 0 and the authenticated subject as JSON when every rule passes; exit 1 and
    /// `{"error": CODE, "rule": ..., "message": ...}` when one refuses; exit 2 when the
    /// command's own inputs (metadata, key, time) cannot be used.
    Verify(verify::VerifyArgs),
}

pub fn run(cmd: SamlCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SamlCommand::Decode { file } => decode::decode_command(&file),
        SamlCommand::Verify(args) => verify::verify_command(&args),
    }
}
