//! The ticket domain: commands, the deterministic `apply`, queries and invariants.
//!
//! This crate is the "engine" of ticketd: a pure state machine that every replica runs over the
//! same committed log and so reaches the same state. It knows nothing of Raft, networks or async
//! runtimes. The Raft runtime (`ticketd-raft`) hands it committed [`Request`]s with their log
//! index, collects the resulting writes in a [`WriteSet`], adds its own metadata (applied index,
//! membership) and commits the set atomically through a [`Backend`].
//!
//! Codemap:
//! - [`protocol`] (also reachable as `command`): the log's payload: writes ([`Request`],
//!   [`Command`]), what they answer ([`Outcome`], [`Done`], [`Reply`], [`Rejection`] codes),
//!   and reads ([`Query`], [`QueryResult`] and the views it carries).
//! - [`types`]: the entities (venues, sellers, events, dts, holds, payments, orders, tickets,
//!   users, the outbox).
//! - [`machine`]: [`Machine`] and its core: `open`, `apply` (log time, hold expiry,
//!   idempotency), the write-through, `visit_persisted` and `digest`, the rebuild of what is
//!   derived. Beside it: `columns` (where each table is persisted), `persist` (entity
//!   encoding), `derived` (the indexes and seat books), `idempotency` (the remembered
//!   outcome), `digest` ([`StateDigest`]).
//! - `exec`: the command handlers by family (`catalogue`, `holds`, `orders`, `users`), the
//!   checks of what commands carry (`validate`) and a handler's refusal (`refusal`).
//! - `money`: the money rule (fees, a hold's amounts, what a return gives back, a seller's
//!   payout), used by the handlers and the ledger query alike.
//! - [`query`]: reads; `invariants`: the checker.
//! - [`seats`]: one byte per seat availability of a dt, best-available search.
//! - [`search`]: full-text search over events: a tantivy index in RAM, derived from state,
//!   reading it through `event_source`.
//! - [`limits`]: every bound.
//! - [`version`]: the binary's version, the cluster version's rules, the version a command
//!   needs.
//!
//! Modules depend on each other without cycles (`scripts/house` checks it): a module uses
//! another's item by the path of the module that defines it, not through this file's
//! re-exports, which are for other crates.
//!
//! Architecture invariants:
//! - `apply` reads no clock, draws no randomness and performs no I/O: time enters only as the
//!   leader-stamped `stamped_at_ms` in the request, ids are minted by the client or derived
//!   from the log index. The tables that grow with sales are hash maps seeded at random per
//!   process, so two replicas iterate them in different orders. Their only iteration is by id
//!   (`sorted`) or `unordered`, the latter used only where the result cannot depend on the
//!   order (folds into ordered sets and sums, the invariant checks, and the hidden
//!   `orders_in_hash_order` by which the determinism tests see two seeds differ); so no hash
//!   order reaches the state, a write set or an answer, except in the fault-injection build
//!   `fault-hash-order`, which cancels a dt's orders in hash order to show that the
//!   determinism tests and the chaos checker catch it. Machines of different seeds are
//!   compared by the determinism tests.
//! - Rejections (seat taken, hold expired, ...) are values with stable codes, not errors.
//! - `apply` is total: no command can make it panic (see the lints below and `exec`).
//! - Every change to an entity is written through to the [`WriteSet`]; what is not written
//!   (seat books, indexes) is derived, rebuilt on open and checked against a rebuild.

// Apply is total (docs/ARCHITECTURE.md): nothing a command brings may make it panic. Outside
// tests, arithmetic that can overflow, indexing that can miss, unwraps and narrowing casts are
// refused; where one stays, an `#[allow]` on that one item says which validation makes it safe.
// No function outside tests is longer than 100 lines (clippy.toml), so each fits in one view.
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::cast_possible_truncation,
        clippy::too_many_lines,
    )
)]

pub mod backend;
mod columns;
mod derived;
mod digest;
mod event_source;
mod exec;
mod idempotency;
mod invariants;
pub mod limits;
pub mod machine;
mod money;
mod persist;
pub mod protocol;
pub mod query;
#[cfg_attr(not(feature = "search"), path = "search_none.rs")]
pub mod search;
pub mod seats;
mod table;
pub mod types;
pub mod version;

#[cfg(feature = "rocksdb")]
pub use backend::RocksBackend;
pub use backend::{Backend, MemBackend, StoreError, WriteOp, WriteSet};
pub use columns::COLUMN_FAMILIES;
pub use digest::StateDigest;
pub use machine::Machine;
/// The protocol under the name the other crates have always used for it.
pub use protocol as command;
pub use protocol::Reply;
pub use protocol::{Command, Done, Outcome, Query, QueryResult, Rejection, Request};
