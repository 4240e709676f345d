//! Histories of chaos and simulation runs, the reference model, and the checkers that judge them.
//!
//! A run writes a [`history`]; the checkers below judge it, one file each.
//!
//! 1. **Replay** ([`replay`]): every write whose effect is known (an `ok` answer, or an unknown
//!    write settled by the final reads) is applied to the single-threaded [`model::Model`] in log-index
//!    order; every answer the cluster gave (write outcomes, and every read at the applied index
//!    it was served at, local reads included) must equal the model's. Then **real-time order**
//!    ([`realtime`]): if A completed before B was invoked, B's log position is after A's.
//! 2. **Per-object linearizability** ([`wgl`]): each venue id's ops ([`venues`]) through the WGL search, and
//!    each reserved seat's ops ([`seats`]: free, held by a hold, sold to an order).
//! 3. **Invariants** ([`invariants`], [`digests`]): every acknowledged write is present after healing, a failed
//!    write never takes effect, one idempotency key has one answer and one object, replicas that
//!    applied the same index have the same state digest.
//!
//! 4. **Money and messages** of a full-stack run ([`money`], [`messages`]): the payment
//!    provider's books against the store's orders and what buyers were told; the outbox
//!    against what the SMTP and SMS receivers got.
//!
//! Unknown (`info`) ops are never treated as failed: the final reads decide whether they took
//! effect.

pub mod history;
pub mod model;
pub mod scan_rules;
pub mod wgl;

pub mod digests;
pub mod invariants;
pub mod messages;
pub mod money;
pub mod realtime;
pub mod replay;
pub mod seats;
pub mod venues;

mod clock;
mod logical;
mod report;

#[cfg(test)]
mod tests;

pub use digests::digests;
pub use invariants::{sale_invariants, seat_map_conservation};
pub use realtime::realtime;
pub use replay::replay;
pub use report::{Anomaly, Report};
pub use venues::per_object_linearizability;

use history::{History, OpType};

/// Runs every checker.
pub fn check(h: &History) -> Report {
    let mut r = Report::default();
    for o in &h.ops {
        match o.typ {
            OpType::Ok => r.ok += 1,
            OpType::Fail => r.fail += 1,
            OpType::Info => r.info += 1,
        }
    }
    replay(h, &mut r);
    sale_invariants(h, &mut r);
    realtime(h, &mut r);
    per_object_linearizability(h, &mut r, 2_000_000);
    seats::per_seat_linearizability(h, &mut r, 500_000);
    digests(h, &mut r);
    r
}
