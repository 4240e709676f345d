//! Email over SMTP (lettre). Every message carries a stable `Message-ID`, so a redelivery after a
//! leader change is recognizable by the receiver and harmless.

use lettre::message::{header::ContentType, Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::SendError;

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
