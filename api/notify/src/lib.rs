//! Notifications: the SMTP and SMS transports, the text of each message, the rotating e-ticket
//! codes they carry, and the leader's outbox dispatcher.
//!
//! Every message carries a stable id (`Message-ID` for email, the notification id for SMS), so a
//! redelivery after a leader change is recognizable by the receiver and harmless.
//!
//! Architecture invariant: this crate serves no HTTP and links neither RocksDB nor openraft; it
//! reads the node's state only through the [`dispatcher::LocalReads`] it is handed.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

pub mod dispatcher;
pub mod email;
pub mod message;
pub mod sms;
pub mod tickets;

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
