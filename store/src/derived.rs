//! What is derived from the entities: indexes and seat books, never persisted, rebuilt on open
//! and compared with a fresh rebuild by the invariant checker.

use std::collections::{BTreeMap, BTreeSet};

use crate::seats::SeatBook;
use crate::table::HashMap;

/// State derived from the entities: never persisted, rebuilt on open, compared with a fresh
/// rebuild by the invariant checker.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Derived {
    /// Availability per dt.
    pub books: BTreeMap<String, SeatBook>,
    /// Live holds by (effective expiry, hold id).
    pub live_by_expiry: BTreeSet<(i64, String)>,
    /// Live holds by (dt, hold id): what a dt's cancellation releases.
    pub dt_live_holds: BTreeSet<(String, String)>,
    /// Orders that can still be canceled (confirmed or partially refunded) by (dt, order id):
    /// what a dt's cancellation cancels.
    pub dt_open_orders: BTreeSet<(String, String)>,
    /// Dts by (venue, dt id): a venue's seats are frozen once it has one.
    pub venue_dts: BTreeSet<(String, String)>,
    /// Dts being canceled, whose cancellation the leader continues.
    pub canceling_dts: BTreeSet<String>,
    /// Seats held or owned (valid or used) per (dt, user).
    pub user_dt_seats: HashMap<(String, String), u32>,
    /// (user, order) pairs.
    pub user_orders: BTreeSet<(String, String)>,
    /// (seller, order) pairs: a seller's ledger.
    pub seller_orders: BTreeSet<(String, String)>,
    /// (order, notification) pairs.
    pub order_notes: BTreeSet<(String, String)>,
    /// Pending notifications by (due, id).
    pub pending_outbox: BTreeSet<(i64, String)>,
    /// Remembered outcomes by (applied at, `idempotency_key_bytes`), for pruning.
    pub idempotency_by_age: BTreeSet<(i64, Vec<u8>)>,
    /// Dts of each event that has some.
    pub event_dts: BTreeMap<String, BTreeSet<String>>,
    /// The account (normalized email) of each user that has one.
    pub account_of_user: BTreeMap<String, String>,
}

/// The second parts of the pairs of `index` whose first part is `first`, in order.
pub(crate) fn rows_of<'a>(
    index: &'a BTreeSet<(String, String)>,
    first: &'a str,
) -> impl Iterator<Item = String> + 'a {
    index
        .range((first.to_string(), String::new())..)
        .take_while(move |(f, _)| f == first)
        .map(|(_, second)| second.clone())
}

/// Adds `n` seats to what a user holds or owns of a dt (at most SEATS_PER_USER_PER_DT_MAX in
/// a state that keeps its invariants; saturating in one that does not, which the checker
/// reports).
pub(crate) fn count_seats(derived: &mut Derived, dt_id: &str, user_id: &str, n: usize) {
    let c = derived
        .user_dt_seats
        .entry((dt_id.to_string(), user_id.to_string()))
        .or_default();
    *c = c.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}
