//! Sending invitation and password-reset links by e-mail (`[smtp]`, [`crate::config::smtp`]).
//!
//! Messages are plain text with the link. [`Mailer::send`] makes a few attempts, each under a
//! timeout, and says how it ended; [`Mailer::queue`] hands a message to a bounded queue served
//! by one background task (which calls `send`), for request paths that must not wait for
//! a mail server: a full queue or a failing server is logged and counted
//! (`latchkey_mail_total{outcome}`), never waited for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

use crate::config::{SmtpConfig, SmtpSecurity};
use crate::enrollment::reset::LinkSink;
use crate::enrollment::{IssuedLink, LinkKind};

/// Messages waiting for the sender task, per node.
pub const QUEUE: usize = 256;
/// Attempts per message before it counts as failed.
pub const ATTEMPTS: u32 = 3;
/// How long one attempt (connect, TLS, the SMTP dialogue) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait before the second attempt; it doubles for each further one.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `[smtp]` names no host.
    #[error("no [smtp] host is configured")]
    NotConfigured,
    /// The address or the message cannot be built (a recipient address SMTP cannot carry).
    #[error("cannot build the message: {0}")]
    Message(String),
    /// Every attempt failed; the last reason.
    #[error("the mail server did not take the message after {attempts} attempts: {reason}")]
    Failed {
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The queue is full; the message was dropped.
    #[error("the mail queue is full")]
    QueueFull,
}

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The text.
    pub body: String,
}

impl Mail {
    /// The message that carries a link, in words for the person receiving it.
    pub fn for_link(link: &IssuedLink, url: &str) -> Mail {
        let expires = link
            .expires_at
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_else(|_| link.expires_at.to_string());
        let (subject, intro) = match link.kind {
            LinkKind::Invitation => (
                "Your account invitation",
                "You have been invited to an account. Open this link to choose your password:",
            ),
            LinkKind::Reset => (
                "Reset your password",
                "Someone asked to reset the password of your account. If it was you, open this \
                 link to choose a new one; if not, ignore this message (your password is \
                 unchanged):",
            ),
        };
        Mail {
            to: link.user.email.clone(),
            subject: subject.into(),
            body: format!(
                "Hello {name},\n\n{intro}\n\n{url}\n\nThe link works once, until {expires}.\n\
                 Your username is {user}.\n",
                name = link.user.shown_name(),
                user = link.user.username,
            ),
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct MailStats {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl MailStats {
    /// Messages the server took.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    /// Messages given up on after every attempt.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The SMTP client of this node.
#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Option<Mailbox>,
    stats: Arc<MailStats>,
    queue: Arc<std::sync::OnceLock<mpsc::Sender<Mail>>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("configured", &self.transport.is_some())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `config`; with no host, one that sends nothing ([`Mailer::configured`]
    /// is false and [`Mailer::send`] says [`MailError::NotConfigured`]).
    pub fn new(config: &SmtpConfig) -> Result<Mailer, MailError> {
        let stats = Arc::new(MailStats::default());
        let queue = Arc::new(std::sync::OnceLock::new());
        let Some(host) = config.host.as_deref() else {
            return Ok(Mailer {
                transport: None,
                from: None,
                stats,
                queue,
            });
        };
        config.check().map_err(MailError::Message)?;
        let bad = |e: lettre::transport::smtp::Error| MailError::Message(e.to_string());
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut builder = match config.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(bad)?,
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(bad)?
            }
            // Allowed only for loopback hosts (`SmtpConfig::check`).
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        builder = builder.port(config.port()).timeout(Some(ATTEMPT_TIMEOUT));
        if let Some(user) = &config.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                config.password.clone().unwrap_or_default(),
            ));
        }
        let from = config
            .from
            .as_deref()
            .unwrap_or_default()
            .parse::<Mailbox>()
            .map_err(|e| MailError::Message(format!("[smtp] from: {e}")))?;
        Ok(Mailer {
            transport: Some(builder.build()),
            from: Some(from),
            stats,
            queue,
        })
    }

    /// A mailer that sends nothing (no `[smtp]`).
    pub fn disabled() -> Mailer {
        Mailer {
            transport: None,
            from: None,
            stats: Arc::new(MailStats::default()),
            queue: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Whether `[smtp]` names a server.
    pub fn configured(&self) -> bool {
        self.transport.is_some()
    }

    /// The counters.
    pub fn stats(&self) -> &MailStats {
        &self.stats
    }

    /// The counters, shared, for `/metrics` to read at each scrape.
    pub fn stats_handle(&self) -> Arc<MailStats> {
        Arc::clone(&self.stats)
    }

    /// Sends now, with up to [`ATTEMPTS`] attempts (1 s, then 2 s apart); counts the outcome.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let (Some(transport), Some(from)) = (&self.transport, &self.from) else {
            return Err(MailError::NotConfigured);
        };
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|e| MailError::Message(format!("recipient {:?}: {e}", mail.to)))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Message(e.to_string()))?;
        let mut wait = FIRST_RETRY;
        let mut reason = String::new();
        for attempt in 1..=ATTEMPTS {
            match transport.send(message.clone()).await {
                Ok(_) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) => {
                    reason = e.to_string();
                    // A permanent refusal (5xx: no such mailbox) will not change on retry.
                    if e.is_permanent() || attempt == ATTEMPTS {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        Err(MailError::Failed {
            attempts: ATTEMPTS,
            reason,
        })
    }

    /// Hands `mail` to the background sender (started on first use, on the current Tokio
    /// runtime) and returns at once. A full queue drops the message, logs and counts it.
    pub fn queue(&self, mail: Mail) -> Result<(), MailError> {
        if !self.configured() {
            return Err(MailError::NotConfigured);
        }
        let sender = self.queue.get_or_init(|| {
            let (tx, mut rx) = mpsc::channel::<Mail>(QUEUE);
            let mailer = self.clone();
            tokio::spawn(async move {
                while let Some(mail) = rx.recv().await {
                    if let Err(e) = mailer.send(&mail).await {
                        tracing::warn!(error = %e, subject = %mail.subject, "mail not sent");
                    }
                }
            });
            tx
        });
        sender.try_send(mail).map_err(|_| {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("mail queue full: message dropped");
            MailError::QueueFull
        })
    }
}

/// The reset desk hands its links to the mail queue.
impl LinkSink for Mailer {
    fn deliver(&self, link: &IssuedLink, url: &str) {
        if let Err(e) = self.queue(Mail::for_link(link, url)) {
            tracing::warn!(error = %e, user = %link.user.id, "reset link not mailed");
        }
    }
}
