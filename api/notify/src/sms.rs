//! SMS through a provider's HTTP API, the message id as its idempotency key.

use crate::SendError;

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
/// idempotency key); the test kit's simulator implements it (`ticketd-sim sms`).
#[derive(Clone)]
pub struct HttpSms {
    base: String,
    target: ticketd_money::outbound::Outbound,
    http: reqwest::Client,
}

impl HttpSms {
    /// A client of the SMS provider at `target` (`host:port`, or an `https://` URL with its
    /// secret key and CA: see [`ticketd_money::outbound`]).
    pub fn new(
        target: impl Into<ticketd_money::outbound::Outbound>,
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
