//! The deterministic state machine: `apply(state, request, index) -> reply`.
//!
//! Entities live in maps by id, each written through to its own column family on every
//! change: the small catalogue in ordered maps, the tables that grow with sales (users,
//! accounts, holds, payments, orders, tickets, outbox, idempotency) in hash [`Table`]s whose
//! order nothing in `apply` depends on. Everything else (seat books, expiry and user indexes)
//! is *derived*: rebuilt from the entities on open and compared with a fresh rebuild by
//! [`Machine::check_invariants`].

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::backend::{Backend, StoreError, WriteSet};
use crate::columns::{column_family, KEY_CLUSTER_VERSION, KEY_LOG_TIME};
use crate::derived::{count_seats, Derived};
use crate::digest::StateDigest;
use crate::event_source::EventSource;
use crate::idempotency::{check_request_names, idempotency_key_bytes, Remembered};
use crate::limits::{IDEMPOTENCY_PRUNE_PER_APPLY_MAX, TIME_MS_MAX};
use crate::persist::{decode, encode, load, ById, PersistedVisit};
pub use crate::protocol::Reply;
use crate::protocol::{Outcome, Rejection, Request, Venue};
use crate::search::SearchIndex;
use crate::seats::{SeatBook, FREE, HELD, SOLD};
use crate::table::{HashMap, Table};
use crate::types::{
    Account, DeliveryRetry, Dt, DtStatus, Event, Hold, HoldStatus, Notification,
    NotificationStatus, Order, OrderStatus, Payment, ReconcileCursor, SeatRef, Seller, Ticket,
    TicketStatus, UnfinishedPayment, User, VenueLayout,
};

pub use crate::limits::IDEMPOTENCY_WINDOW_MS;

/// The ticket domain's state, held in memory and written through to a [`Backend`].
#[derive(Debug, Default)]
pub struct Machine {
    pub(crate) log_time_ms: i64,
    /// The cluster version once raised past [`crate::version::LEGACY`]; 0 before.
    pub(crate) cluster_version_raised: u32,
    pub(crate) venues: BTreeMap<String, Venue>,
    pub(crate) layouts: BTreeMap<String, VenueLayout>,
    pub(crate) sellers: BTreeMap<String, Seller>,
    pub(crate) events: BTreeMap<String, Event>,
    pub(crate) dts: BTreeMap<String, Dt>,
    pub(crate) users: Table<User>,
    /// By normalized email.
    pub(crate) accounts: Table<Account>,
    pub(crate) holds: Table<Hold>,
    pub(crate) payments: Table<Payment>,
    pub(crate) orders: Table<Order>,
    pub(crate) tickets: Table<Ticket>,
    pub(crate) outbox: Table<Notification>,
    /// Version 2: the reconciler's cursors by name.
    pub(crate) cursors: BTreeMap<String, ReconcileCursor>,
    /// Version 2: payments started and not yet seen settled, by payment ref.
    pub(crate) unfinished: BTreeMap<String, UnfinishedPayment>,
    /// Version 2: failed deliveries of pending notifications, by notification id.
    pub(crate) retries: BTreeMap<String, DeliveryRetry>,
    /// By `idempotency_key_bytes(client, key)`, the bytes it is persisted under.
    pub(crate) idempotency: HashMap<Vec<u8>, Box<Remembered>>,
    pub(crate) derived: Derived,
    /// Full-text index over events: derived, in RAM, never read by `apply`.
    pub(crate) search: SearchIndex,
}

/// What one apply works with besides the state: the entry's index and log time, the writes,
/// and counters for ids minted from the index.
pub(crate) struct ApplyContext<'a> {
    /// The entry's log index.
    pub index: u64,
    /// Log time as this request sees it: the largest stamp applied so far.
    pub now_ms: i64,
    /// Where every change to an entity is written through.
    pub writes: &'a mut WriteSet,
    /// Notifications minted in this entry so far, over its whole batch (their ids are
    /// `n-{index}-{k}`).
    pub notifications_minted: u32,
    /// Holds expired in this entry.
    pub holds_expired: u32,
    /// The dt this entry changed availability of, for the per-apply check.
    pub touched_dt: Option<String>,
}

impl Machine {
    /// Loads the state persisted in `backend`, rebuilds what is derived from it and checks
    /// every invariant: a state that breaks one is refused with [`StoreError::Invariant`].
    pub fn open(backend: &dyn Backend) -> Result<Self, StoreError> {
        let mut m = Machine::default();
        // First: a state of a later version may hold rows this binary cannot decode.
        if let Some(v) = backend.get(column_family::STATE, KEY_CLUSTER_VERSION)? {
            m.cluster_version_raised = decode(column_family::STATE, &v)?;
            if m.cluster_version_raised > crate::version::BINARY_VERSION {
                return Err(StoreError::VersionTooNew {
                    version: m.cluster_version_raised,
                });
            }
        }
        load(backend, column_family::VENUES, &mut m.venues)?;
        load(backend, column_family::LAYOUTS, &mut m.layouts)?;
        load(backend, column_family::SELLERS, &mut m.sellers)?;
        load(backend, column_family::EVENTS, &mut m.events)?;
        load(backend, column_family::DTS, &mut m.dts)?;
        load(backend, column_family::USERS, &mut m.users)?;
        load(backend, column_family::ACCOUNTS, &mut m.accounts)?;
        load(backend, column_family::HOLDS, &mut m.holds)?;
        load(backend, column_family::PAYMENTS, &mut m.payments)?;
        load(backend, column_family::ORDERS, &mut m.orders)?;
        load(backend, column_family::TICKETS, &mut m.tickets)?;
        load(backend, column_family::OUTBOX, &mut m.outbox)?;
        load(backend, column_family::CURSORS, &mut m.cursors)?;
        load(backend, column_family::UNFINISHED, &mut m.unfinished)?;
        load(backend, column_family::RETRIES, &mut m.retries)?;
        backend.scan(column_family::IDEMPOTENCY, &mut |k, v| {
            m.idempotency
                .insert(k.to_vec(), decode(column_family::IDEMPOTENCY, v)?);
            Ok(())
        })?;
        if let Some(t) = backend.get(column_family::STATE, KEY_LOG_TIME)? {
            m.log_time_ms = decode(column_family::STATE, &t)?;
        }
        m.derived = m.derive().map_err(StoreError::Invariant)?;
        m.check_invariants().map_err(StoreError::Invariant)?;
        // The search index starts empty with every event pending: the first search builds it.
        Ok(m)
    }

    /// Like [`Machine::open`], with every hash table seeded with `hash_seed` instead of the
    /// process's random seed: two machines of different seeds iterate their tables in different
    /// orders, and must still reach equal states (the determinism tests).
    pub fn open_with_hash_seed(backend: &dyn Backend, hash_seed: u64) -> Result<Self, StoreError> {
        crate::table::with_hash_seed(hash_seed, || Self::open(backend))
    }

    /// The order ids in the order table's own order, which depends on the hash seed; for the
    /// determinism tests, which check that two seeds really order the table differently.
    #[doc(hidden)]
    pub fn orders_in_hash_order(&self) -> Vec<String> {
        self.orders.unordered().map(|(id, _)| id.clone()).collect()
    }

    /// The log time: the largest stamp applied so far.
    pub fn log_time_ms(&self) -> i64 {
        self.log_time_ms
    }

    /// The cluster version: [`crate::version::LEGACY`] until a `SetClusterVersion` raised it.
    pub fn cluster_version(&self) -> u32 {
        self.cluster_version_raised.max(crate::version::LEGACY)
    }

    /// Sets the cluster version and writes it through.
    pub(crate) fn set_cluster_version_raw(&mut self, ws: &mut WriteSet, version: u32) {
        self.cluster_version_raised = version;
        ws.put(
            column_family::STATE,
            KEY_CLUSTER_VERSION.to_vec(),
            encode(&version),
        );
    }

    /// The dts of an event, by dt id.
    pub(crate) fn event_dts<'a>(&'a self, event_id: &str) -> impl Iterator<Item = &'a Dt> + 'a {
        self.derived
            .event_dts
            .get(event_id)
            .into_iter()
            .flatten()
            .filter_map(|dt_id| self.dts.get(dt_id))
    }

    /// Heap bytes of a dt's in-memory availability (the seat book), for capacity planning.
    pub fn seat_book_heap_bytes(&self, dt_id: &str) -> Option<usize> {
        self.derived.books.get(dt_id).map(|b| b.heap_bytes())
    }

    /// Applies one committed request at log `index`, recording its writes in `ws`: an entry
    /// whose batch holds only this request.
    pub fn apply(&mut self, index: u64, req: &Request, ws: &mut WriteSet) -> Reply {
        let (mut notes, log_time_before) = (0, self.log_time_ms);
        let reply = self.apply_one(index, 0, &mut notes, req, ws);
        self.persist_log_time(log_time_before, ws);
        reply
    }

    /// Applies the batch of requests of the committed entry at log `index`, in order, recording
    /// their writes in `ws`; one reply per request, the n-th with `seq` n. The requests are
    /// independent: each is checked against its own idempotency key and may be rejected alone.
    pub fn apply_batch(&mut self, index: u64, reqs: &[Request], ws: &mut WriteSet) -> Vec<Reply> {
        let (mut notes, log_time_before) = (0, self.log_time_ms);
        // A batch is far shorter than 2^32 requests (the client service takes 1,024 per call
        // and an entry is bounded in bytes); `seq` numbers them in order.
        let replies = (0u32..)
            .zip(reqs)
            .map(|(seq, req)| self.apply_one(index, seq, &mut notes, req, ws))
            .collect();
        self.persist_log_time(log_time_before, ws);
        replies
    }

    /// Writes log time once per entry, as it stands after the entry's last request, if the
    /// entry moved it.
    fn persist_log_time(&self, before: i64, ws: &mut WriteSet) {
        if self.log_time_ms != before {
            ws.put(
                column_family::STATE,
                KEY_LOG_TIME.to_vec(),
                encode(&self.log_time_ms),
            );
        }
    }

    /// Applies one request, the `seq`-th of the entry at `index`.
    ///
    /// Before the command itself, log time advances to the request's stamp, holds whose time is
    /// up expire, and a bounded number of forgotten idempotency keys are pruned: all functions
    /// of log time only, so every replica does the same.
    fn apply_one(
        &mut self,
        index: u64,
        seq: u32,
        notes: &mut u32,
        req: &Request,
        ws: &mut WriteSet,
    ) -> Reply {
        // Log time never passes TIME_MS_MAX, whatever a leader's clock says: every span added
        // to it below stays far inside i64.
        let stamp = req.stamped_at_ms.min(TIME_MS_MAX);
        if stamp > self.log_time_ms {
            self.log_time_ms = stamp;
        }
        let now = self.log_time_ms;
        let mut context = ApplyContext {
            index,
            now_ms: now,
            writes: ws,
            notifications_minted: *notes,
            holds_expired: 0,
            touched_dt: None,
        };
        self.expire_due(&mut context, now);
        self.prune_idempotency(&mut context);
        *notes = context.notifications_minted;

        if let Err(detail) = check_request_names(req) {
            // Not remembered: a key that cannot be stored names no write.
            return Reply {
                outcome: Outcome::Rejected {
                    code: Rejection::InvalidArgument,
                    detail,
                },
                index,
                seq,
                replayed: false,
            };
        }
        let digest: [u8; 32] = Sha256::digest(encode(&req.command)).into();
        let mut key = idempotency_key_bytes(&req.client_id, &req.idempotency_key);
        if let Some(prev) = self.idempotency.get(&key) {
            if now.saturating_sub(prev.applied_at_ms) <= IDEMPOTENCY_WINDOW_MS {
                if prev.command_digest != digest {
                    return Reply {
                        outcome: Outcome::Rejected {
                            code: Rejection::IdempotencyKeyReused,
                            detail: "idempotency key used before with a different command".into(),
                        },
                        index,
                        seq,
                        replayed: false,
                    };
                }
                return Reply {
                    outcome: prev.outcome.clone(),
                    index: prev.index,
                    seq: prev.seq,
                    replayed: true,
                };
            }
            let age = (prev.applied_at_ms, key);
            self.derived.idempotency_by_age.remove(&age);
            key = age.1;
        }
        let outcome = match self.execute(&mut context, &req.command) {
            Ok(done) => Outcome::Done(done),
            Err(r) => Outcome::Rejected {
                code: r.code,
                detail: r.detail,
            },
        };
        *notes = context.notifications_minted;
        #[cfg(debug_assertions)]
        if let Some(book) = context
            .touched_dt
            .as_ref()
            .and_then(|d| self.derived.books.get(d))
        {
            if let Err(e) = book.check_counts() {
                panic!("invariant broken by entry {index}: {e}");
            }
        }
        let remembered = Remembered {
            command_digest: digest,
            index,
            seq,
            applied_at_ms: now,
            outcome: outcome.clone(),
        };
        context
            .writes
            .put(column_family::IDEMPOTENCY, key.clone(), encode(&remembered));
        self.derived.idempotency_by_age.insert((now, key.clone()));
        self.idempotency.insert(key, Box::new(remembered));
        Reply {
            outcome,
            index,
            seq,
            replayed: false,
        }
    }

    /// Forgets a bounded number of idempotency keys older than the window.
    fn prune_idempotency(&mut self, context: &mut ApplyContext<'_>) {
        for _ in 0..IDEMPOTENCY_PRUNE_PER_APPLY_MAX {
            let Some(first) = self.derived.idempotency_by_age.first() else {
                return;
            };
            if context.now_ms.saturating_sub(first.0) <= IDEMPOTENCY_WINDOW_MS {
                return;
            }
            let Some((_, key)) = self.derived.idempotency_by_age.pop_first() else {
                return;
            };
            self.idempotency.remove(&key);
            context.writes.delete(column_family::IDEMPOTENCY, key);
        }
    }

    /// Visits every persisted key and value, column family by column family in the order of
    /// [`COLUMN_FAMILIES`], keys in order: exactly what the backend holds after every write set
    /// this machine produced was committed.
    pub fn visit_persisted(&self, f: &mut PersistedVisit<'_>) {
        fn each<T: Serialize>(f: &mut PersistedVisit<'_>, cf: &'static str, map: &impl ById<T>) {
            for (k, v) in map.sorted() {
                f(cf, k.as_bytes(), &encode(v));
            }
        }
        each(f, column_family::VENUES, &self.venues);
        each(f, column_family::LAYOUTS, &self.layouts);
        each(f, column_family::SELLERS, &self.sellers);
        each(f, column_family::EVENTS, &self.events);
        each(f, column_family::DTS, &self.dts);
        each(f, column_family::USERS, &self.users);
        each(f, column_family::ACCOUNTS, &self.accounts);
        each(f, column_family::HOLDS, &self.holds);
        each(f, column_family::PAYMENTS, &self.payments);
        each(f, column_family::ORDERS, &self.orders);
        each(f, column_family::TICKETS, &self.tickets);
        each(f, column_family::OUTBOX, &self.outbox);
        let mut remembered: Vec<_> = self.idempotency.iter().collect();
        remembered.sort_unstable_by_key(|(k, _)| *k);
        for (k, r) in remembered {
            f(column_family::IDEMPOTENCY, k, &encode(r));
        }
        if self.cluster_version_raised != 0 {
            f(
                column_family::STATE,
                KEY_CLUSTER_VERSION,
                &encode(&self.cluster_version_raised),
            );
        }
        if self.log_time_ms != 0 {
            f(
                column_family::STATE,
                KEY_LOG_TIME,
                &encode(&self.log_time_ms),
            );
        }
        each(f, column_family::CURSORS, &self.cursors);
        each(f, column_family::UNFINISHED, &self.unfinished);
        each(f, column_family::RETRIES, &self.retries);
    }

    /// When the outbox offers pending notification `n`: at its next attempt once a delivery
    /// failed, else when due.
    pub(crate) fn offered_at(&self, n: &Notification) -> i64 {
        self.retries
            .get(&n.notification_id)
            .map_or(n.due_at_ms, |r| r.next_at_ms)
    }

    /// Hex SHA-256 over every persisted key and value in a canonical order ([`StateDigest`]).
    pub fn digest(&self) -> String {
        let mut digest = StateDigest::default();
        self.visit_persisted(&mut |family, key, value| digest.record(family, key, value));
        digest.finish()
    }

    /// The seat books (every seat free) and dt indexes, from the dts and venue layouts.
    fn derive_from_dts(&self, derived: &mut Derived) -> Result<(), String> {
        for (id, dt) in &self.dts {
            let empty = Default::default();
            let map = self
                .layouts
                .get(&dt.venue_id)
                .map(|l| &l.seating_map)
                .unwrap_or(&empty);
            let specs: Vec<_> = dt.tiers.iter().map(|t| t.spec.clone()).collect();
            let book = SeatBook::build(map, &specs).map_err(|e| format!("dt {id}: {e}"))?;
            derived.books.insert(id.clone(), book);
            derived
                .event_dts
                .entry(dt.event_id.clone())
                .or_default()
                .insert(id.clone());
            derived.venue_dts.insert((dt.venue_id.clone(), id.clone()));
            if dt.status == DtStatus::Canceling {
                derived.canceling_dts.insert(id.clone());
            }
        }
        Ok(())
    }

    /// Rebuilds everything derived from the entities. Fails when two live holds or valid
    /// tickets claim one seat, or more than a GA area's capacity.
    pub(crate) fn derive(&self) -> Result<Derived, String> {
        let mut derived = Derived::default();
        self.derive_from_dts(&mut derived)?;
        let claim = |derived: &mut Derived, dt: &str, seat: SeatRef, to: u8, what: &str| {
            let book = derived
                .books
                .get_mut(dt)
                .ok_or_else(|| format!("{what} names unknown dt {dt}"))?;
            match book.lookup(seat) {
                Some((_, FREE)) => {
                    book.shift(seat, FREE, to);
                    Ok(())
                }
                other => Err(format!(
                    "{what}: {seat:?} of dt {dt} claimed twice or not for sale ({other:?})"
                )),
            }
        };
        for (_, h) in self.holds.unordered() {
            if h.status != HoldStatus::Live {
                continue;
            }
            for item in &h.items {
                claim(
                    &mut derived,
                    &h.dt_id,
                    item.seat,
                    HELD,
                    &format!("hold {}", h.hold_id),
                )?;
            }
            derived
                .live_by_expiry
                .insert((h.effective_expiry_ms(), h.hold_id.clone()));
            derived
                .dt_live_holds
                .insert((h.dt_id.clone(), h.hold_id.clone()));
            count_seats(&mut derived, &h.dt_id, &h.user_id, h.items.len());
        }
        for (_, t) in self.tickets.unordered() {
            if !matches!(t.status, TicketStatus::Valid | TicketStatus::Used { .. }) {
                continue;
            }
            claim(
                &mut derived,
                &t.dt_id,
                t.seat,
                SOLD,
                &format!("ticket {}", t.ticket_id),
            )?;
            count_seats(&mut derived, &t.dt_id, &t.user_id, 1);
        }
        for (_, o) in self.orders.unordered() {
            derived
                .user_orders
                .insert((o.user_id.clone(), o.order_id.clone()));
            if let Some(e) = self.events.get(&o.event_id) {
                derived
                    .seller_orders
                    .insert((e.seller_id.clone(), o.order_id.clone()));
            }
            if matches!(
                o.status,
                OrderStatus::Confirmed | OrderStatus::PartiallyRefunded
            ) {
                derived
                    .dt_open_orders
                    .insert((o.dt_id.clone(), o.order_id.clone()));
            }
        }
        for (_, n) in self.outbox.unordered() {
            derived
                .order_notes
                .insert((n.order_id.clone(), n.notification_id.clone()));
            if n.status == NotificationStatus::Pending {
                derived
                    .pending_outbox
                    .insert((self.offered_at(n), n.notification_id.clone()));
            }
        }
        for (k, seat) in &self.idempotency {
            derived
                .idempotency_by_age
                .insert((seat.applied_at_ms, k.clone()));
        }
        for (email, a) in self.accounts.unordered() {
            if let Some(other) = derived
                .account_of_user
                .insert(a.user_id.clone(), email.clone())
            {
                return Err(format!(
                    "user {} has two accounts: {other} and {email}",
                    a.user_id
                ));
            }
        }
        Ok(derived)
    }
}

impl EventSource for Machine {
    fn events(&self) -> &BTreeMap<String, Event> {
        &self.events
    }

    fn venue(&self, venue_id: &str) -> Option<&Venue> {
        self.venues.get(venue_id)
    }

    fn dts_of_event(&self, event_id: &str) -> Vec<&Dt> {
        self.event_dts(event_id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemBackend;
    use crate::protocol::Command;

    fn req(key: &str, venue: &str) -> Request {
        Request {
            client_id: "c1".into(),
            idempotency_key: key.into(),
            stamped_at_ms: 1_000,
            command: Command::CreateVenue {
                venue_id: venue.into(),
                name: "Arena".into(),
                city: "Oslo".into(),
            },
        }
    }

    #[test]
    fn duplicate_key_replays_first_outcome_and_survives_reload() {
        let backend = MemBackend::new();
        let mut m = Machine::open(&backend).unwrap();
        let mut ws = WriteSet::new();
        let first = m.apply(1, &req("k1", "v1"), &mut ws);
        backend.write(&ws).unwrap();
        assert!(matches!(first.outcome, Outcome::Done(_)));

        let mut m = Machine::open(&backend).unwrap();
        let mut ws = WriteSet::new();
        let again = m.apply(2, &req("k1", "v1"), &mut ws);
        assert!(again.replayed);
        assert_eq!(again.index, 1);
        assert_eq!(again.outcome, first.outcome);

        let reused = m.apply(3, &req("k1", "v2"), &mut ws);
        assert!(matches!(
            reused.outcome,
            Outcome::Rejected {
                code: Rejection::IdempotencyKeyReused,
                ..
            }
        ));
    }

    #[test]
    fn idempotency_keys_are_forgotten_after_the_window() {
        let backend = MemBackend::new();
        let mut m = Machine::open(&backend).unwrap();
        let mut ws = WriteSet::new();
        m.apply(1, &req("k1", "v1"), &mut ws);
        let mut late = req("k2", "v2");
        late.stamped_at_ms = 1_000 + IDEMPOTENCY_WINDOW_MS + 1;
        m.apply(2, &late, &mut ws);
        backend.write(&ws).unwrap();
        assert_eq!(m.idempotency.len(), 1, "k1 pruned, k2 remembered");
        assert_eq!(Machine::open(&backend).unwrap().digest(), m.digest());
    }
}
