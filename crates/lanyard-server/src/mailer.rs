//! Sending one notification by SMTP (lettre), with its id as the Message-ID.
//!
//! The mailer remembers, for a while, the ids the SMTP server accepted. Delivery checks that
//! memory before sending, so a notification whose "sent" mark failed to commit is marked on the
//! next run, not sent again.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::config::Smtp;

/// How long the SMTP conversation of one message may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this many accepted-but-unmarked ids are remembered (each for an hour).
const ACCEPTED_MEMORY: u64 = 10_000;

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth a retry: the server is down, slow, or answered 4xx.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: a bad address, or the server answered 5xx.
    #[error("{0}")]
    Permanent(String),
}

#[derive(Debug)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// The domain of Message-IDs: the From address's.
    domain: String,
    accepted: moka::sync::Cache<Uuid, ()>,
}

impl Mailer {
    /// A mailer for `smtp`, or one that sends nothing when SMTP is not configured.
    pub fn new(smtp: Option<&Smtp>) -> anyhow::Result<Self> {
        let (transport, from) = match smtp {
            Some(smtp) => {
                let transport =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.expose_secret())?
                        .timeout(Some(SMTP_TIMEOUT))
                        .build();
                (Some(transport), smtp.from.clone())
            }
            None => (
                None,
                crate::config::DEFAULT_SMTP_FROM
                    .parse()
                    .expect("the default From address parses"),
            ),
        };
        Ok(Self {
            transport,
            domain: from.email.domain().to_string(),
            from,
            accepted: moka::sync::Cache::builder()
                .max_capacity(ACCEPTED_MEMORY)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        })
    }

    /// Whether SMTP is configured.
    pub fn enabled(&self) -> bool {
        self.transport.is_some()
    }

    /// Whether the server already accepted notification `id` from this process.
    pub fn accepted(&self, id: Uuid) -> bool {
        self.accepted.contains_key(&id)
    }

    /// The Message-ID of notification `id`.
    pub fn message_id(&self, id: Uuid) -> String {
        format!("<{id}@{}>", self.domain)
    }

    /// Sends notification `id` to `to`.
    pub async fn send(
        &self,
        id: Uuid,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), SendError> {
        let Some(transport) = &self.transport else {
            return Err(SendError::Permanent("SMTP is not configured".into()));
        };
        let to: Mailbox = to
            .parse()
            .map_err(|_| SendError::Permanent("the recipient is not a valid address".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(self.message_id(id)))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        match tokio::time::timeout(SMTP_TIMEOUT, transport.send(message)).await {
            Err(_) => Err(SendError::Transient(
                "the SMTP server did not answer in time".into(),
            )),
            Ok(Ok(_)) => {
                self.accepted.insert(id, ());
                Ok(())
            }
            Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(smtp_error(&e))),
            Ok(Err(e)) => Err(SendError::Transient(smtp_error(&e))),
        }
    }

    /// Forgets an id once its "sent" mark is stored.
    pub fn forget(&self, id: Uuid) {
        self.accepted.invalidate(&id);
    }
}

/// The server's code and a short reason; never the URL or its credentials.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("the SMTP server answered {code}"),
        None if e.is_timeout() => "the SMTP server did not answer in time".into(),
        None => "could not talk to the SMTP server".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailer_never_prints_its_smtp_password() {
        let smtp = Smtp {
            url: secrecy::SecretString::from("smtps://mailer:hunter2-secret@mail.example.com:465"),
            from: "Ops <ops@example.com>".parse().unwrap(),
        };
        let mailer = Mailer::new(Some(&smtp)).unwrap();
        let printed = format!("{mailer:?} {smtp:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(mailer.enabled());
        assert_eq!(
            mailer.message_id(Uuid::nil()),
            "<00000000-0000-0000-0000-000000000000@example.com>"
        );
    }
}
