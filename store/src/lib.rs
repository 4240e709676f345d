//! The ticket domain: commands, the deterministic `apply`, queries and invariants.
//!
//! This crate is the "engine" of ticketd: a pure state machine that every replica runs over the
//! same committed log and so reaches the same state. It knows nothing of Raft, networks or async
//! runtimes. The Raft runtime (`ticketd-raft`) hands it committed [`Request`]s with their log
//! index, collects the resulting writes in a [`WriteSet`], adds its own metadata (applied index,
//! membership) and commits the set atomically through a [`Backend`].
//!
//! Architecture invariants:
//! - `apply` reads no clock, draws no randomness and performs no I/O: time enters only as the
//!   leader-stamped `stamped_at_ms` in the request, ids are derived from the log index.
//! - Rejections (seat taken, hold expired, ...) are values with stable codes, not errors.

pub mod backend;
pub mod command;
pub mod machine;

#[cfg(feature = "rocksdb")]
pub use backend::RocksBackend;
pub use backend::{Backend, MemBackend, StoreError, WriteOp, WriteSet};
pub use command::{Command, Outcome, Query, QueryResult, Rejection, Request};
pub use machine::{Machine, COLUMN_FAMILIES};
