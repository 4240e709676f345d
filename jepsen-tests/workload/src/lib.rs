//! What the clients of a chaos run (real processes or simulated) ask for.
//!
//! - **register**: a set-once register per venue id (`CreateVenue` on a sliding window of
//!   contended ids, reads of them).
//! - **sale**: the seat sale and the gate. A setup (seller, event, a venue with two seated
//!   sections and a GA floor, dts on sale, users) is written before the clients start. Buyers
//!   hold chosen seats on a small hot set, hold best-available seats and GA places, release,
//!   start a payment and confirm the purchase with the exact amount (sometimes a wrong one),
//!   cancel orders, refund single tickets, mark the outbox's notifications sent (several clients
//!   the same ones), resubmit earlier writes with the same idempotency key, and read seat maps,
//!   holds and orders (linearizable and local, through any or a chosen node). Scanners scan the
//!   newest tickets, so several scanners scan the same tickets at once. The dt on sale moves
//!   on through the run (`phase`), so each dt sees a sell-out and its aftermath; the first
//!   client is also the seller, who calls off the dt the sale just left (its orders, refunds,
//!   scans and late confirmations still under way) and now and then the one on sale.
//!
//! The generators are deterministic functions of their seeded RNG and of the answers they are
//! shown: the real-process runner and the simulation drive the same workload.

mod client;
mod kind;
mod seen;
mod settle;
mod setup;
mod shared;
#[cfg(test)]
mod tests;

pub use client::SaleClient;
pub use kind::Workload;
pub use seen::{effect_index, Seen};
pub use settle::{final_queries, unsettled_writes};
pub use setup::*;
pub use shared::{Shared, NOTES_KEPT};
