//! What clients ask of the state machine and what it answers.
//!
//! These are the Raft log's payload types: their encoding is part of the on-disk format.
//! Variants are only ever appended (postcard, in the remembered outcomes and command digests,
//! numbers them in order), and fields only ever added, with `#[serde(default)]`.
//!
//! - `writes`: [`Request`] and its [`Command`]; `outcome`: what applying one answers
//!   ([`Outcome`], [`Done`], [`Reply`]); `rejection`: the catalogue of [`Rejection`] codes.
//! - `reads`: [`Query`] and its filters; `answers`: [`QueryResult`]; `views` and `ledger`: the
//!   shapes those answers carry.

mod answers;
mod ledger;
mod outcome;
mod reads;
mod rejection;
mod views;
mod writes;

pub use answers::QueryResult;
pub use ledger::{LedgerEntry, LedgerTotals, SellerLedger};
pub use outcome::{Done, Outcome, Reply};
pub use reads::{EventFilter, Near, Query};
pub use rejection::Rejection;
pub use views::{EventHit, GaAvailability, OrderView, SeatMapView, TierAvailability};
pub use writes::{Command, GaPick, Request};

pub use crate::types::Venue;
