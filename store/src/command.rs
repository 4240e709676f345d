//! What clients ask of the state machine and what it answers.
//!
//! These are the Raft log's payload types: their encoding is part of the on-disk format.

use serde::{Deserialize, Serialize};

/// A client write as it travels through the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Who sent it: together with `idempotency_key` it names the write for deduplication.
    pub client_id: String,
    /// Chosen by the client; a retry of the same write carries the same key.
    pub idempotency_key: String,
    /// Wall-clock time stamped by the leader when it proposed the entry: the only clock `apply`
    /// sees. Log time never goes backwards: `apply` uses the max of this and earlier stamps.
    pub stamped_at_ms: i64,
    /// The state change asked for.
    pub command: Command,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a venue.
    CreateVenue {
        /// Minted before proposing.
        venue_id: String,
        /// Display name.
        name: String,
        /// City, for browsing.
        city: String,
    },
}

/// Stable machine-readable rejection codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rejection {
    /// The same idempotency key was used before with a different command.
    IdempotencyKeyReused,
    /// An object with this id exists already.
    AlreadyExists,
    /// A field is out of its bounds.
    InvalidArgument,
    /// The object named does not exist.
    NotFound,
}

impl Rejection {
    /// The stable code string clients key off.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Rejection::AlreadyExists => "ALREADY_EXISTS",
            Rejection::InvalidArgument => "INVALID_ARGUMENT",
            Rejection::NotFound => "NOT_FOUND",
        }
    }
}

/// The answer to one applied [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The command took effect.
    Done(Done),
    /// The command was refused; nothing changed.
    Rejected {
        /// Stable code.
        code: Rejection,
        /// Human-readable detail.
        detail: String,
    },
}

/// What a successful command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Done {
    /// A venue was created.
    VenueCreated {
        /// Its id.
        venue_id: String,
    },
}

/// A read of the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// One venue by id.
    GetVenue {
        /// The venue id.
        venue_id: String,
    },
    /// A digest of the whole state, equal on replicas that applied the same log prefix.
    Digest,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryResult {
    /// A venue, or none.
    Venue(Option<Venue>),
    /// Hex SHA-256 over every persisted key and value.
    Digest(String),
}

/// A place where events happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Venue {
    /// Id.
    pub venue_id: String,
    /// Display name.
    pub name: String,
    /// City.
    pub city: String,
    /// Log index of the command that created it.
    pub created_index: u64,
}
