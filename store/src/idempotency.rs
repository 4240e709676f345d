//! Idempotency: the outcome remembered for a client's key, the bytes it is remembered under,
//! and which names a request may use.

use serde::{Deserialize, Serialize};

use crate::limits::ID_LEN_MAX;
use crate::protocol::{Outcome, Request};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Remembered {
    pub command_digest: [u8; 32],
    pub index: u64,
    pub seq: u32,
    pub applied_at_ms: i64,
    pub outcome: Outcome,
}

pub(crate) fn idempotency_key_bytes(client_id: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(client_id.len().saturating_add(key.len()).saturating_add(1));
    k.extend_from_slice(client_id.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// A request's client id and idempotency key: ids (1..=ID_LEN_MAX bytes without NUL, which
/// separates them in the key the outcome is remembered under).
pub(crate) fn check_request_names(req: &Request) -> Result<(), String> {
    for (field, v) in [
        ("client_id", &req.client_id),
        ("idempotency_key", &req.idempotency_key),
    ] {
        if v.is_empty() || v.len() > ID_LEN_MAX || v.contains('\0') {
            return Err(format!(
                "{field} must be 1..={ID_LEN_MAX} bytes without NUL"
            ));
        }
    }
    Ok(())
}
