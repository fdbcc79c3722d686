//! The `[smtp]` section: where invitation and password-reset mail goes.
//!
//! ```toml
//! [smtp]
//! host = "smtp.example.org"
//! port = 587                          # default: 587 for starttls, 465 for tls, 25 for none
//! security = "starttls"               # starttls | tls | none (none: loopback hosts only)
//! username = "latchkey"
//! # password = "..."                  # or $LATCHKEY_SMTP_PASSWORD
//! from = "Latchkey <idp@example.org>"
//! ```
//!
//! Without `host` no mail is sent: `latchkey user invite` prints the link instead.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No TLS: refused unless the host is a loopback address (a local relay or a test sink).
    None,
}

/// The `[smtp]` section as written.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The mail server; unset means no mail is sent.
    pub host: Option<String>,
    /// Its port; default by `security`.
    pub port: Option<u16>,
    /// STARTTLS, TLS or (loopback only) none.
    pub security: SmtpSecurity,
    /// The user to authenticate as, if the server wants one.
    pub username: Option<String>,
    /// The password (`$LATCHKEY_SMTP_PASSWORD` overrides); masked by `config check`.
    pub password: Option<String>,
    /// The sender, an address or `Name <address>`; required with `host`.
    pub from: Option<String>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .finish()
    }
}

/// Whether a host name is this machine (where an unencrypted connection leaks nothing).
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SmtpConfig {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }

    /// Whether mail is configured at all.
    pub fn enabled(&self) -> bool {
        self.host.is_some()
    }

    /// The rules `config check` and start-up enforce; `Err` is one line for the operator.
    pub fn check(&self) -> Result<(), String> {
        let Some(host) = &self.host else {
            return Ok(());
        };
        if host.trim().is_empty() {
            return Err("[smtp] host is empty; leave it out to send no mail".into());
        }
        if self.security == SmtpSecurity::None && !is_loopback(host) {
            return Err(format!(
                "[smtp] security = \"none\" is allowed only for a loopback host (localhost, \
                 127.0.0.1, ::1), not {host:?}: passwords and reset links would cross the \
                 network in clear text"
            ));
        }
        let Some(from) = &self.from else {
            return Err("[smtp] from is required when host is set".into());
        };
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "[smtp] from {from:?} is not an address or `Name <address>`"
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("[smtp] password is set but username is not".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(host: &str, security: SmtpSecurity) -> SmtpConfig {
        SmtpConfig {
            host: Some(host.into()),
            security,
            from: Some("Latchkey <idp@example.org>".into()),
            ..SmtpConfig::default()
        }
    }

    #[test]
    fn clear_text_only_to_this_machine() {
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.53"] {
            assert!(with(host, SmtpSecurity::None).check().is_ok(), "{host}");
        }
        for host in ["smtp.example.org", "10.0.0.1", "localhost.example.org"] {
            let err = with(host, SmtpSecurity::None).check().unwrap_err();
            assert!(err.contains("loopback"), "{err}");
            assert!(with(host, SmtpSecurity::Starttls).check().is_ok());
        }
    }

    #[test]
    fn a_sender_is_required_and_must_parse() {
        let mut c = with("smtp.example.org", SmtpSecurity::Tls);
        c.from = None;
        assert!(c.check().unwrap_err().contains("from"));
        c.from = Some("not an address".into());
        assert!(c.check().unwrap_err().contains("from"));
        assert_eq!(c.port(), 465);
        assert!(SmtpConfig::default().check().is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let mut c = with("smtp.example.org", SmtpSecurity::Starttls);
        c.password = Some("hunter2-secret".into());
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
