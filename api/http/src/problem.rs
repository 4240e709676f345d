//! Errors as RFC 9457 `application/problem+json`, with a stable machine `code`.
//!
//! Every code the API can answer, and its HTTP status, is in [`status_of`]: the one catalogue.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use ticketd_raft::client::ClientError;

/// A problem detail.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (here a stable tag URI per code).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// Stable machine-readable code: clients key off this, never off text.
    pub code: String,
    /// Seconds to wait before retrying, when the outcome is unknown or the client is limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

/// The HTTP status of each code; unknown codes are 422 (a domain rejection).
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "BAD_REQUEST" | "INVALID_ARGUMENT" | "IDEMPOTENCY_KEY_MISSING" => StatusCode::BAD_REQUEST,
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "ALREADY_EXISTS"
        | "SEAT_ALREADY_HELD"
        | "SEAT_UNAVAILABLE"
        | "SEAT_TAKEN"
        | "NOT_ENOUGH_SEATS"
        | "EMAIL_TAKEN"
        | "ORDER_NOT_CANCELABLE"
        | "TICKET_NOT_REFUNDABLE" => StatusCode::CONFLICT,
        "IDEMPOTENCY_KEY_REUSED" => StatusCode::UNPROCESSABLE_ENTITY,
        "HOLD_EXPIRED" | "HOLD_NOT_LIVE" => StatusCode::GONE,
        "PAYMENT_DECLINED" | "PAYMENT_FAILED" => StatusCode::PAYMENT_REQUIRED,
        "PAYLOAD_TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
        "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "OUTCOME_UNKNOWN" | "UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        "TIMEOUT" | "PAYMENT_TIMEOUT" => StatusCode::GATEWAY_TIMEOUT,
        "INTERNAL" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl Problem {
    /// A problem with `code` and a detail; the status comes from the catalogue.
    pub fn new(code: &str, detail: impl Into<String>) -> Self {
        let status = status_of(code);
        Self {
            type_uri: format!("tag:ticketd,2026:problem:{}", code.to_ascii_lowercase()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            retry_after_s: None,
        }
    }

    /// A problem for a bare HTTP status (a framework rejection: malformed JSON, a wrong content
    /// type, a body too large, a timeout), with a code derived from the status.
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let code = match status.as_u16() {
            400 => "BAD_REQUEST",
            401 => "UNAUTHENTICATED",
            403 => "FORBIDDEN",
            404 => "NOT_FOUND",
            405 => "METHOD_NOT_ALLOWED",
            408 | 504 => "TIMEOUT",
            413 => "PAYLOAD_TOO_LARGE",
            415 => "UNSUPPORTED_MEDIA_TYPE",
            422 => "INVALID_ARGUMENT",
            429 => "RATE_LIMITED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        };
        Self {
            type_uri: format!("tag:ticketd,2026:problem:{}", code.to_ascii_lowercase()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            retry_after_s: None,
        }
    }

    /// Adds a Retry-After.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// 400 with a detail.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new("BAD_REQUEST", detail)
    }

    /// 404: also what another user's object answers, so ids cannot be probed.
    pub fn not_found() -> Self {
        Self::new("NOT_FOUND", "no such resource")
    }

    /// 401.
    pub fn unauthenticated() -> Self {
        Self::new("UNAUTHENTICATED", "a valid bearer token is required")
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new("FORBIDDEN", detail)
    }

    /// 500 for a failure of ours; the detail is logged, not shown.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new("INTERNAL", "internal error")
    }
}

impl From<ClientError> for Problem {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Unknown(detail) => Problem::new(
                "OUTCOME_UNKNOWN",
                format!(
                    "the outcome is not known yet; retry with the same Idempotency-Key ({detail})"
                ),
            )
            .retry_after(1),
            ClientError::Unreachable(detail) => {
                Problem::new("UNAVAILABLE", format!("cluster unavailable: {detail}")).retry_after(1)
            }
            ClientError::Rejected(detail) => Problem::bad_request(detail),
            ClientError::Server(detail) => Problem::internal(detail),
            // The cluster refused this API's certificate: a deployment error, never the user's.
            ClientError::Denied(detail) => {
                Problem::internal(format!("the cluster refused the API: {detail}"))
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after_s;
        let mut resp = (status, axum::Json(&self)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = retry {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_outcome_is_503_with_retry_after() {
        let p: Problem = ClientError::Unknown("leader changed".into()).into();
        assert_eq!(p.status, 503);
        assert_eq!(p.code, "OUTCOME_UNKNOWN");
        let resp = p.into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn domain_codes_map_to_statuses() {
        assert_eq!(status_of("SEAT_ALREADY_HELD"), StatusCode::CONFLICT);
        assert_eq!(status_of("HOLD_EXPIRED"), StatusCode::GONE);
        assert_eq!(status_of("SALE_NOT_OPEN"), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
