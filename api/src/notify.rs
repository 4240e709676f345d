//! Sending messages: email over SMTP (lettre) and SMS through a provider interface. Every message
//! carries a stable id (`Message-ID` for email), so a redelivery after a leader change is
//! recognizable by the receiver and harmless.

use lettre::message::{header::ContentType, Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Whether the mailer upgrades its SMTP connection with STARTTLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartTls {
    /// When the server offers it (the default): a relay that offers it gets TLS, and its
    /// certificate is verified; one that does not gets plain text.
    #[default]
    Opportunistic,
    /// Always: a relay that does not offer it is not used.
    Required,
    /// Never (a relay on the same host only).
    Off,
}

/// How the mailer secures its connection.
#[derive(Debug, Clone, Default)]
pub struct SmtpTls {
    /// When to use STARTTLS.
    pub starttls: StartTls,
    /// PEM file of the CA(s) the relay's certificate must chain to, instead of the system's.
    pub ca: Option<std::path::PathBuf>,
}

/// One email to send.
#[derive(Debug, Clone)]
pub struct Email {
    /// Stable id of the message; the same notification always has the same id.
    pub id: String,
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// SVG attachments (e-tickets' QR codes): (file name, SVG).
    pub svg_attachments: Vec<(String, String)>,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message could not be built (bad address): retrying will not help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The server did not take it: retry later.
    #[error("delivery failed: {0}")]
    Transient(String),
}

/// Sends email over SMTP.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
    domain: String,
}

impl SmtpMailer {
    /// A mailer to the SMTP server at `host:port` with a timeout per message, upgrading the
    /// connection with STARTTLS as `tls` says (the relay's certificate verified for `host`).
    pub fn new(
        host: &str,
        port: u16,
        from: &str,
        timeout: std::time::Duration,
        tls: &SmtpTls,
    ) -> Result<Self, SendError> {
        let invalid = |x: &dyn std::fmt::Display| SendError::Invalid(x.to_string());
        let params = || -> Result<TlsParameters, SendError> {
            let mut b = TlsParameters::builder(host.to_string());
            if let Some(ca) = &tls.ca {
                let pem =
                    std::fs::read(ca).map_err(|e| invalid(&format!("{}: {e}", ca.display())))?;
                b = b
                    .certificate_store(lettre::transport::smtp::client::CertificateStore::None)
                    .add_root_certificate(Certificate::from_pem(&pem).map_err(|e| invalid(&e))?);
            }
            b.build_rustls().map_err(|e| invalid(&e))
        };
        let mode = match tls.starttls {
            StartTls::Opportunistic => Tls::Opportunistic(params()?),
            StartTls::Required => Tls::Required(params()?),
            StartTls::Off => Tls::None,
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(mode)
            .timeout(Some(timeout))
            .build();
        let domain = from
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| "ticketd.local".into());
        Ok(Self {
            transport,
            from: from.to_string(),
            domain,
        })
    }

    /// Sends one email.
    pub async fn send(&self, e: &Email) -> Result<(), SendError> {
        let invalid = |x: &dyn std::fmt::Display| SendError::Invalid(x.to_string());
        let builder = Message::builder()
            .message_id(Some(format!("<{}@{}>", e.id, self.domain)))
            .from(self.from.parse().map_err(|x| invalid(&x))?)
            .to(e.to.parse().map_err(|x| invalid(&x))?)
            .subject(e.subject.clone());
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(e.text.clone());
        let msg = if e.svg_attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let svg_type = ContentType::parse("image/svg+xml").map_err(|x| invalid(&x))?;
            let mut parts = MultiPart::mixed().singlepart(text);
            for (name, svg) in &e.svg_attachments {
                parts = parts
                    .singlepart(Attachment::new(name.clone()).body(svg.clone(), svg_type.clone()));
            }
            builder.multipart(parts)
        }
        .map_err(|x| invalid(&x))?;
        self.transport
            .send(msg)
            .await
            .map_err(|x| SendError::Transient(x.to_string()))?;
        metrics::counter!("ticketd_notifications_sent_total", "channel" => "email").increment(1);
        Ok(())
    }
}

/// One SMS to send.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Sms {
    /// Stable id of the message.
    pub id: String,
    /// Phone number, E.164.
    pub to: String,
    /// Text.
    pub text: String,
}

/// An SMS provider's HTTP API (`POST /v1/messages`, JSON, with the message id as the
/// idempotency key); the project's simulator implements it (`ticketd smssim`).
#[derive(Clone)]
pub struct HttpSms {
    base: String,
    target: crate::outbound::Outbound,
    http: reqwest::Client,
}

impl HttpSms {
    /// A client of the SMS provider at `target` (`host:port`, or an `https://` URL with its
    /// secret key and CA: see [`crate::outbound`]).
    pub fn new(
        target: impl Into<crate::outbound::Outbound>,
        timeout: std::time::Duration,
    ) -> Result<Self, SendError> {
        let target = target.into();
        let base = target.base_url().map_err(SendError::Invalid)?;
        let http = target
            .client(timeout, std::time::Duration::from_millis(500))
            .map_err(SendError::Invalid)?;
        Ok(Self { base, target, http })
    }

    /// Sends one SMS.
    pub async fn send(&self, m: &Sms) -> Result<(), SendError> {
        let resp = self
            .target
            .authorize(self.http.post(format!("{}/v1/messages", self.base)))
            .header("Idempotency-Key", &m.id)
            .json(m)
            .send()
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        match resp.status().as_u16() {
            200..=299 => {
                metrics::counter!("ticketd_notifications_sent_total", "channel" => "sms")
                    .increment(1);
                Ok(())
            }
            400..=499 => Err(SendError::Invalid(format!(
                "SMS provider answered {}",
                resp.status()
            ))),
            s => Err(SendError::Transient(format!("SMS provider answered {s}"))),
        }
    }
}

/// The SMS provider simulator (`ticketd smssim`): accepts messages, keeps each id once, lists
/// them for tests.
pub mod sms_sim {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use axum::{Json, Router};

    use super::Sms;

    /// Most messages kept.
    const MESSAGES_MAX: usize = 100_000;

    #[derive(Default)]
    struct Inbox {
        by_id: BTreeMap<String, Sms>,
        deliveries: u64,
    }

    /// The simulator's routes.
    pub fn router() -> Router {
        Router::new()
            .route("/v1/messages", post(accept).get(list))
            .with_state(Arc::new(Mutex::new(Inbox::default())))
    }

    async fn accept(
        State(inbox): State<Arc<Mutex<Inbox>>>,
        headers: HeaderMap,
        Json(m): Json<Sms>,
    ) -> StatusCode {
        let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
        if key != Some(m.id.as_str()) || !m.to.starts_with('+') || m.text.is_empty() {
            return StatusCode::BAD_REQUEST;
        }
        let mut inbox = inbox.lock().expect("inbox lock");
        inbox.deliveries += 1;
        if inbox.by_id.len() >= MESSAGES_MAX && !inbox.by_id.contains_key(&m.id) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        inbox.by_id.entry(m.id.clone()).or_insert(m);
        StatusCode::ACCEPTED
    }

    async fn list(State(inbox): State<Arc<Mutex<Inbox>>>) -> Json<serde_json::Value> {
        let inbox = inbox.lock().expect("inbox lock");
        Json(serde_json::json!({
            "deliveries": inbox.deliveries,
            "messages": inbox.by_id.values().collect::<Vec<_>>(),
        }))
    }
}
