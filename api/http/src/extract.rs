//! Request parts every unsafe route needs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::problem::Problem;

/// Longest accepted `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;

/// The `Idempotency-Key` header: required on every unsafe request. A retry with the same key
/// returns the first answer; the same key with a different body is a 422.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let v = parts.headers.get("idempotency-key").ok_or_else(|| {
            Problem::new(
                "IDEMPOTENCY_KEY_MISSING",
                "the Idempotency-Key header is required",
            )
        })?;
        let s = v
            .to_str()
            .map_err(|_| Problem::bad_request("Idempotency-Key must be visible ASCII"))?;
        let s = s.trim().trim_matches('"');
        if s.is_empty() || s.len() > IDEMPOTENCY_KEY_BYTES_MAX {
            return Err(Problem::bad_request(format!(
                "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_BYTES_MAX} characters"
            )));
        }
        Ok(IdempotencyKey(s.to_string()))
    }
}
