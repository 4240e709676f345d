//! The leader's jobs on the store itself (the money and notification jobs are `ticketd_money`'s
//! reconciler and `ticketd_notify`'s dispatcher): each a function one loop of the worker
//! (`worker.rs`) calls while the node leads.

pub mod cancellation;
pub mod digest;
pub mod expiry;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, Unix ms: the leader's jobs key their proposals by it.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or(0)
}
