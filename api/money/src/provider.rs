//! Payments through a provider shaped like Stripe's payment intents: create (authorize) with an
//! idempotency key and metadata, capture, cancel (void), refund (partial, with an idempotency
//! key), retrieve, list by metadata and list those created since a time (paged).
//!
//! Card data never reaches ticketd: the browser gives the provider's payment-method token, which
//! the API passes on. [`HttpProvider`] speaks the provider's HTTP API; the test kit's simulator
//! (`ticketd-sim pay`, in `jepsen-tests/testkit`) speaks it too, for development and tests.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// State of a payment intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Authorized: money reserved, not yet taken.
    RequiresCapture,
    /// Captured.
    Succeeded,
    /// Voided before capture, or declined.
    Canceled,
    /// Captured, then refunded in full (a partial refund leaves it `Succeeded`).
    Refunded,
}

/// A payment intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Provider id.
    pub id: String,
    /// Amount in minor units.
    pub amount: i64,
    /// ISO currency code.
    pub currency: String,
    /// Status.
    pub status: IntentStatus,
    /// Caller's metadata (ticketd puts `hold_id`, `user_id`, `dt_id` here).
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Amount refunded so far.
    pub amount_refunded: i64,
    /// Amount captured (0 until captured).
    #[serde(default)]
    pub amount_captured: i64,
    /// When the provider created it, Unix ms.
    #[serde(default)]
    pub created_ms: i64,
}

impl Intent {
    /// Captured and not refunded: what the provider holds for the merchant.
    pub fn net_captured(&self) -> i64 {
        self.amount_captured - self.amount_refunded
    }
}

/// One page of [`PaymentProvider::list_created_since`], oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentPage {
    /// The intents.
    pub data: Vec<Intent>,
    /// More follow: ask again with `starting_after` = the last id.
    pub has_more: bool,
}

/// A refund request (`POST /v1/refunds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The intent to refund.
    pub payment_intent: String,
    /// Amount in minor units (at most what is captured and not yet refunded).
    pub amount: i64,
}

/// Most intents one list call returns.
pub const LIST_LIMIT_MAX: u32 = 100;

/// What to authorize.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateIntent {
    /// Amount in minor units.
    pub amount: i64,
    /// ISO currency code.
    pub currency: String,
    /// The provider's payment-method token.
    pub payment_method: String,
    /// Metadata to find the intent by.
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// How a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was declined: definitely no money moved.
    #[error("declined: {0}")]
    Declined(String),
    /// No answer in time, or a failure after the provider may have acted: the outcome is
    /// unknown until the intent is looked up (by idempotency key or metadata).
    #[error("payment outcome unknown: {0}")]
    Unknown(String),
    /// The provider refused the request (wrong state, bad input).
    #[error("payment rejected: {0}")]
    Rejected(String),
}

/// A payment provider.
#[allow(async_fn_in_trait)]
pub trait PaymentProvider: Send + Sync {
    /// Creates and authorizes an intent; the same `idempotency_key` returns the same intent.
    async fn authorize(
        &self,
        idempotency_key: &str,
        req: &CreateIntent,
    ) -> Result<Intent, PaymentError>;
    /// Captures an authorized intent (idempotent).
    async fn capture(&self, intent_id: &str) -> Result<Intent, PaymentError>;
    /// Voids an authorized intent (idempotent).
    async fn cancel(&self, intent_id: &str) -> Result<Intent, PaymentError>;
    /// Refunds `amount` of a captured intent; the same `idempotency_key` refunds once.
    async fn refund(
        &self,
        intent_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> Result<Intent, PaymentError>;
    /// One intent.
    async fn retrieve(&self, intent_id: &str) -> Result<Intent, PaymentError>;
    /// Intents whose metadata has `key` = `value`.
    async fn list_by_metadata(&self, key: &str, value: &str) -> Result<Vec<Intent>, PaymentError>;
    /// Intents created at or after `created_gte_ms`, oldest first, after the intent
    /// `starting_after` (for the next page), at most `limit` (capped at [`LIST_LIMIT_MAX`]).
    async fn list_created_since(
        &self,
        created_gte_ms: i64,
        starting_after: Option<&str>,
        limit: u32,
    ) -> Result<IntentPage, PaymentError>;
}

/// The provider's HTTP API.
#[derive(Clone)]
pub struct HttpProvider {
    base: String,
    target: crate::outbound::Outbound,
    http: reqwest::Client,
}

impl HttpProvider {
    /// A client of the provider at `target` (`host:port`, or an `https://` URL with its secret
    /// key and CA: see [`crate::outbound`]), each call bounded by `timeout`.
    pub fn new(
        target: impl Into<crate::outbound::Outbound>,
        timeout: Duration,
    ) -> Result<Self, PaymentError> {
        let target = target.into();
        let base = target.base_url().map_err(PaymentError::Rejected)?;
        let http = target
            .client(timeout, Duration::from_millis(500))
            .map_err(PaymentError::Rejected)?;
        Ok(Self { base, target, http })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, PaymentError> {
        let (status, body) = self.send(method, path, key, body).await?;
        match status {
            200..=299 => Ok(body),
            402 => Err(PaymentError::Declined(
                String::from_utf8_lossy(&body).into_owned(),
            )),
            400..=499 => Err(PaymentError::Rejected(
                String::from_utf8_lossy(&body).into_owned(),
            )),
            _ => Err(PaymentError::Unknown(format!("provider answered {status}"))),
        }
    }

    /// The intent `intent_id`, or `None` when the provider says it has none (404).
    pub async fn find(&self, intent_id: &str) -> Result<Option<Intent>, PaymentError> {
        let path = format!("/v1/payment_intents/{}", encode_component(intent_id));
        match self.send(reqwest::Method::GET, &path, None, None).await? {
            (404, _) => Ok(None),
            (200..=299, body) => Self::decode(&body).map(Some),
            (status @ 400..=499, body) => Err(PaymentError::Rejected(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body)
            ))),
            (status, _) => Err(PaymentError::Unknown(format!("provider answered {status}"))),
        }
    }

    /// One request: the answer's status and body.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), PaymentError> {
        let mut req = self
            .target
            .authorize(self.http.request(method, format!("{}{path}", self.base)));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| PaymentError::Unknown(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| PaymentError::Unknown(e.to_string()))?
            .to_vec();
        Ok((status, body))
    }

    fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, PaymentError> {
        serde_json::from_slice(b)
            .map_err(|e| PaymentError::Unknown(format!("unreadable provider answer: {e}")))
    }
}

fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl PaymentProvider for HttpProvider {
    async fn authorize(
        &self,
        idempotency_key: &str,
        req: &CreateIntent,
    ) -> Result<Intent, PaymentError> {
        let body = serde_json::to_vec(req).map_err(|e| PaymentError::Rejected(e.to_string()))?;
        Self::decode(
            &self
                .call(
                    reqwest::Method::POST,
                    "/v1/payment_intents",
                    Some(idempotency_key),
                    Some(body),
                )
                .await?,
        )
    }

    async fn capture(&self, intent_id: &str) -> Result<Intent, PaymentError> {
        let path = format!(
            "/v1/payment_intents/{}/capture",
            encode_component(intent_id)
        );
        Self::decode(&self.call(reqwest::Method::POST, &path, None, None).await?)
    }

    async fn cancel(&self, intent_id: &str) -> Result<Intent, PaymentError> {
        let path = format!("/v1/payment_intents/{}/cancel", encode_component(intent_id));
        Self::decode(&self.call(reqwest::Method::POST, &path, None, None).await?)
    }

    async fn refund(
        &self,
        intent_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> Result<Intent, PaymentError> {
        let body = serde_json::to_vec(&RefundRequest {
            payment_intent: intent_id.to_string(),
            amount,
        })
        .map_err(|e| PaymentError::Rejected(e.to_string()))?;
        Self::decode(
            &self
                .call(
                    reqwest::Method::POST,
                    "/v1/refunds",
                    Some(idempotency_key),
                    Some(body),
                )
                .await?,
        )
    }

    async fn retrieve(&self, intent_id: &str) -> Result<Intent, PaymentError> {
        let path = format!("/v1/payment_intents/{}", encode_component(intent_id));
        Self::decode(&self.call(reqwest::Method::GET, &path, None, None).await?)
    }

    async fn list_by_metadata(&self, key: &str, value: &str) -> Result<Vec<Intent>, PaymentError> {
        let path = format!(
            "/v1/payment_intents/search?key={}&value={}",
            encode_component(key),
            encode_component(value)
        );
        Self::decode(&self.call(reqwest::Method::GET, &path, None, None).await?)
    }

    async fn list_created_since(
        &self,
        created_gte_ms: i64,
        starting_after: Option<&str>,
        limit: u32,
    ) -> Result<IntentPage, PaymentError> {
        let mut path = format!(
            "/v1/payment_intents?created_gte={created_gte_ms}&limit={}",
            limit.clamp(1, LIST_LIMIT_MAX)
        );
        if let Some(after) = starting_after {
            path.push_str(&format!("&starting_after={}", encode_component(after)));
        }
        Self::decode(&self.call(reqwest::Method::GET, &path, None, None).await?)
    }
}
