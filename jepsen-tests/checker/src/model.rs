//! A single-threaded model of the ticket domain, written independently of `store::Machine`:
//! the replay checker applies every settled write to it in log-index order and compares every
//! answer the cluster gave with the model's.
//!
//! Modelled: venues, sellers, events, venue layouts, dts (create, publish), users (upsert), and
//! the seat sale: holds on chosen seats and GA places, best available (the cluster's pick is
//! checked for validity — free, in the tier, the quantity asked — and adopted, not predicted),
//! releases, hold expiry, payments started, purchases confirmed, orders canceled, dts canceled
//! (one cancellation step: its live holds, then its open orders, in id order), tickets refunded,
//! scans (answered by [`crate::scan_rules`], a table written from the product's rules), and the
//! outbox as far as its ids and states go: every notification minted (`n-{entry}-{k}`,
//! numbered in the order the store mints them over an entry's batch), voided or marked sent. Not
//! modelled (the replay reports them as unmodelled): sale-window changes, later cancellation
//! steps, failed payments, notification contents, accounts.
//!
//! Log time: the model does not know the leader's stamp of an entry. It learns it where an
//! answer reveals it (a placed hold's expiry is log time + the hold TTL, a started payment's pin
//! is log time + the pin time), and the checker decides hold expiry from bounds on log time
//! ([`Model::expiries_between`], [`Model::expire_through`]). Times in answers (`*_ms` fields) are
//! not compared ([`normalize_outcome`], [`normalize_result`]); everything else is.

use std::collections::{BTreeMap, BTreeSet};

use ticketd_store::command::{
    Done, GaAvailability, GaPick, OrderView, SeatMapView, TierAvailability, Venue,
};
use ticketd_store::limits::{
    CANCEL_ROWS_PER_ENTRY_MAX, HOLD_TTL_MS, PAYMENT_ATTEMPTS_PER_HOLD_MAX, PAYMENT_PIN_MS,
    REMINDER_LEAD_DEFAULT_MS, SCANS_PER_TICKET_MAX, SEATS_PER_HOLD_MAX, SEATS_PER_USER_PER_DT_MAX,
    TEXT_LEN_MAX,
};
use ticketd_store::types::{
    DtStatus, Hold, HoldItem, HoldStatus, Order, OrderStatus, ScanRecord, ScanVerdict, SeatRef,
    SeatingMap, Ticket, TicketStatus, TierSpec,
};
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::history::entry_of;
use crate::scan_rules::{self, Answer, Found};

/// A seat's state in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Free,
    Held,
    Sold,
    /// No tier covers it.
    Off,
}

/// One GA area of a dt.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ga {
    tier: Option<u8>,
    capacity: u32,
    held: u32,
    sold: u32,
}

/// A dt as the model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MDt {
    event_id: String,
    venue_id: String,
    status: DtStatus,
    starts_at_ms: i64,
    sale_starts_at_ms: i64,
    sale_ends_at_ms: i64,
    tiers: Vec<TierSpec>,
    seat_tier: Vec<Option<u8>>,
    seats: Vec<St>,
    ga: Vec<Ga>,
}

impl MDt {
    fn tier_counts(&self, t: u8) -> (u32, u32, u32) {
        let (mut cap, mut held, mut sold) = (0, 0, 0);
        for (i, s) in self.seats.iter().enumerate() {
            if self.seat_tier[i] == Some(t) {
                cap += 1;
                match s {
                    St::Held => held += 1,
                    St::Sold => sold += 1,
                    _ => {}
                }
            }
        }
        for g in &self.ga {
            if g.tier == Some(t) {
                cap += g.capacity;
                held += g.held;
                sold += g.sold;
            }
        }
        (cap, held, sold)
    }

    fn tier_of(&self, r: SeatRef) -> Option<u8> {
        match r {
            SeatRef::Seat(s) => self.seat_tier.get(s as usize).copied().flatten(),
            SeatRef::Ga(a) => self.ga.get(a as usize).and_then(|g| g.tier),
        }
    }

    /// Moves one seat or place between states (free -> held -> sold -> free).
    fn shift(&mut self, r: SeatRef, from: St, to: St) {
        match r {
            SeatRef::Seat(s) => {
                let st = &mut self.seats[s as usize];
                debug_assert_eq!(*st, from);
                *st = to;
            }
            SeatRef::Ga(a) => {
                let g = &mut self.ga[a as usize];
                match from {
                    St::Held => g.held -= 1,
                    St::Sold => g.sold -= 1,
                    _ => {}
                }
                match to {
                    St::Held => g.held += 1,
                    St::Sold => g.sold += 1,
                    _ => {}
                }
            }
        }
    }
}

/// A payment as the model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MPayment {
    hold_id: String,
    pending: bool,
}

/// A notification's state in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoteSt {
    Pending,
    Sent,
    Void,
}

/// A notification as the model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MNote {
    order_id: String,
    reminder: bool,
    status: NoteSt,
}

/// What a notification is about, as far as the model tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoteKind {
    Other,
    Reminder,
}

/// The model's state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Model {
    venues: BTreeMap<String, Venue>,
    /// (client, key) -> (command, first index, first outcome).
    idem: BTreeMap<(String, String), (Command, u64, Outcome)>,
    /// seller -> fee in basis points.
    sellers: BTreeMap<String, u32>,
    /// event -> seller.
    events: BTreeMap<String, String>,
    layouts: BTreeMap<String, SeatingMap>,
    users: BTreeSet<String>,
    dts: BTreeMap<String, MDt>,
    holds: BTreeMap<String, Hold>,
    payments: BTreeMap<String, MPayment>,
    orders: BTreeMap<String, Order>,
    tickets: BTreeMap<String, Ticket>,
    /// Seats held or owned (valid or used tickets) per (dt, user).
    user_seats: BTreeMap<(String, String), u32>,
    /// Live holds by (effective expiry, id).
    live: BTreeSet<(i64, String)>,
    /// The outbox, by notification id.
    notes: BTreeMap<String, MNote>,
    /// (entry, notifications minted in it so far): ids number over an entry's whole batch.
    minted: (u64, u32),
}

/// What the model answers to a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReply {
    /// Outcome.
    pub outcome: Outcome,
    /// Index of the first application of the key.
    pub effect_index: u64,
    /// The outcome is the remembered one.
    pub replayed: bool,
}

/// Outcomes compare by result and rejection code, not by human-readable detail, and not by log
/// times (which the model does not know).
pub fn same_outcome(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Done(_), Outcome::Done(_)) => normalize_outcome(a) == normalize_outcome(b),
        (Outcome::Rejected { code: x, .. }, Outcome::Rejected { code: y, .. }) => x == y,
        _ => false,
    }
}

fn zero_verdict_time(v: &mut ScanVerdict) {
    match v {
        ScanVerdict::AlreadyUsed { at_ms, .. }
        | ScanVerdict::Canceled { at_ms }
        | ScanVerdict::Refunded { at_ms } => *at_ms = 0,
        _ => {}
    }
}

/// The outcome with its log times zeroed.
pub fn normalize_outcome(o: &Outcome) -> Outcome {
    let mut o = o.clone();
    if let Outcome::Done(d) = &mut o {
        match d {
            Done::HoldPlaced { expires_at_ms, .. } => *expires_at_ms = 0,
            Done::PaymentStarted {
                pinned_until_ms, ..
            } => *pinned_until_ms = 0,
            Done::Scanned { verdict, .. } => zero_verdict_time(verdict),
            _ => {}
        }
    }
    o
}

fn normalize_hold(h: &mut Hold) {
    h.created_at_ms = 0;
    h.expires_at_ms = 0;
    h.pinned_until_ms = h.pinned_until_ms.map(|_| 0);
    match &mut h.status {
        HoldStatus::Released { at_ms } | HoldStatus::Expired { at_ms } => *at_ms = 0,
        _ => {}
    }
}

fn normalize_ticket(t: &mut Ticket) {
    t.created_at_ms = 0;
    t.updated_at_ms = 0;
    t.secret = [0; 32];
    match &mut t.status {
        TicketStatus::Used { at_ms, .. }
        | TicketStatus::Canceled { at_ms }
        | TicketStatus::Refunded { at_ms } => *at_ms = 0,
        TicketStatus::Valid => {}
    }
    for s in &mut t.scans {
        s.at_ms = 0;
        zero_verdict_time(&mut s.verdict);
    }
}

fn normalize_order(v: &mut OrderView) {
    v.order.created_at_ms = 0;
    for t in &mut v.tickets {
        normalize_ticket(t);
    }
}

/// A query answer with its log times (and ticket secrets, which derive from client-minted
/// bytes by a hash the model does not repeat) zeroed; a seat map keeps only availability.
pub fn normalize_result(r: &QueryResult) -> QueryResult {
    let mut r = r.clone();
    match &mut r {
        QueryResult::Hold(Some(h)) => normalize_hold(h),
        QueryResult::Order(Some(v)) => normalize_order(v),
        QueryResult::Ticket(Some(t)) => normalize_ticket(t),
        QueryResult::SeatMap(Some(m)) => {
            for t in &mut m.tiers {
                t.name.clear();
                t.price_minor = 0;
                t.fee_minor = 0;
                t.currency.clear();
            }
            m.seat_tiers.clear();
        }
        _ => {}
    }
    r
}

fn reject(code: Rejection) -> Outcome {
    Outcome::Rejected {
        code,
        detail: String::new(),
    }
}

fn bad(code: Rejection) -> Result<Done, Outcome> {
    Err(reject(code))
}

/// The platform fee on a price, rounded half up (the store's documented rule).
fn fee(price_minor: i64, fee_bps: u32) -> i64 {
    ((price_minor as i128 * fee_bps as i128 + 5_000) / 10_000) as i64
}

fn effective_expiry(h: &Hold) -> i64 {
    h.pinned_until_ms
        .map_or(h.expires_at_ms, |p| p.max(h.expires_at_ms))
}

/// Printable seat label: "section row seat-number".
fn seat_label(map: &SeatingMap, index: u32) -> String {
    let mut i = index as usize;
    for s in &map.sections {
        for r in &s.rows {
            if i < r.seats.len() {
                return format!("{} {} {}", s.section_id, r.label, r.seats[i].number);
            }
            i -= r.seats.len();
        }
    }
    String::new()
}

/// What an op's answer can depend on among the live holds: whether one of them has expired
/// changes its seats (in its dt), its user's count (in its dt) and itself, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No hold.
    Nothing,
    /// Every hold of this dt.
    Dt(String),
    /// This hold.
    Hold(String),
}

impl Scope {
    /// What a write can depend on.
    pub fn of_command(c: &Command) -> Self {
        match c {
            Command::HoldSeats { dt_id, .. }
            | Command::HoldBestAvailable { dt_id, .. }
            | Command::CancelDt { dt_id, .. } => Scope::Dt(dt_id.clone()),
            Command::ReleaseHold { hold_id, .. }
            | Command::StartPayment { hold_id, .. }
            | Command::ConfirmPurchase { hold_id, .. } => Scope::Hold(hold_id.clone()),
            _ => Scope::Nothing,
        }
    }

    /// What a read can depend on.
    pub fn of_query(q: &Query) -> Self {
        match q {
            Query::SeatMap { dt_id } => Scope::Dt(dt_id.clone()),
            Query::GetHold { hold_id } => Scope::Hold(hold_id.clone()),
            _ => Scope::Nothing,
        }
    }
}

/// Log time of an entry, as far as the checker knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Now {
    /// Exact, when the entry's own answer reveals it.
    pub exact: Option<i64>,
    /// A lower bound otherwise.
    pub lo: i64,
}

impl Now {
    fn get(&self) -> i64 {
        self.exact.unwrap_or(self.lo)
    }
}

/// The log time an outcome reveals for the entry that produced it (first application).
pub fn revealed_log_time(o: &Outcome) -> Option<i64> {
    match o {
        Outcome::Done(Done::HoldPlaced { expires_at_ms, .. }) => Some(expires_at_ms - HOLD_TTL_MS),
        Outcome::Done(Done::PaymentStarted {
            pinned_until_ms, ..
        }) => Some(pinned_until_ms - PAYMENT_PIN_MS),
        _ => None,
    }
}

impl Model {
    /// Applies a write at log `index`; `None` when the command is not modelled. `observed` is
    /// the cluster's answer when known: the model takes only a best-available pick from it
    /// (checked for validity first). The idempotency window (24 h of log time) is not
    /// modelled: a chaos run is far shorter, so a key is always remembered.
    pub fn apply(
        &mut self,
        index: u64,
        now: Now,
        client_id: &str,
        key: &str,
        cmd: &Command,
        observed: Option<&Outcome>,
    ) -> Option<ModelReply> {
        let k = (client_id.to_string(), key.to_string());
        if let Some((prev_cmd, first, outcome)) = self.idem.get(&k) {
            if prev_cmd != cmd {
                return Some(ModelReply {
                    outcome: reject(Rejection::IdempotencyKeyReused),
                    effect_index: index,
                    replayed: false,
                });
            }
            return Some(ModelReply {
                outcome: outcome.clone(),
                effect_index: *first,
                replayed: true,
            });
        }
        let outcome = self.execute(index, now, cmd, observed)?;
        self.idem.insert(k, (cmd.clone(), index, outcome.clone()));
        Some(ModelReply {
            outcome,
            effect_index: index,
            replayed: false,
        })
    }

    /// Whether the model knows the command.
    pub fn models(cmd: &Command) -> bool {
        matches!(
            cmd,
            Command::CreateVenue { .. }
                | Command::SetVenueLayout { .. }
                | Command::CreateSeller { .. }
                | Command::CreateEvent { .. }
                | Command::CreateDt { .. }
                | Command::PublishDt { .. }
                | Command::UpsertUser { .. }
                | Command::HoldSeats { .. }
                | Command::HoldBestAvailable { .. }
                | Command::ReleaseHold { .. }
                | Command::StartPayment { .. }
                | Command::ConfirmPurchase { .. }
                | Command::CancelOrder { .. }
                | Command::Scan { .. }
                | Command::CancelDt { .. }
                | Command::RefundTicket { .. }
                | Command::MarkNotificationSent { .. }
        )
    }

    /// `None` for commands the model does not know.
    fn execute(
        &mut self,
        index: u64,
        now: Now,
        cmd: &Command,
        observed: Option<&Outcome>,
    ) -> Option<Outcome> {
        if !Self::models(cmd) {
            return None;
        }
        let r = match cmd {
            Command::CreateVenue {
                venue_id,
                name,
                city,
            } => self.create_venue(index, venue_id, name, city),
            Command::SetVenueLayout {
                venue_id,
                seating_map,
                ..
            } => self.set_layout(venue_id, seating_map),
            Command::CreateSeller {
                seller_id, fee_bps, ..
            } => {
                if self.sellers.contains_key(seller_id) {
                    bad(Rejection::AlreadyExists)
                } else if *fee_bps > 5_000 {
                    bad(Rejection::InvalidArgument)
                } else {
                    self.sellers.insert(seller_id.clone(), *fee_bps);
                    Ok(Done::SellerCreated {
                        seller_id: seller_id.clone(),
                    })
                }
            }
            Command::CreateEvent {
                event_id,
                seller_id,
                ..
            } => {
                if self.events.contains_key(event_id) {
                    bad(Rejection::AlreadyExists)
                } else if !self.sellers.contains_key(seller_id) {
                    bad(Rejection::NotFound)
                } else {
                    self.events.insert(event_id.clone(), seller_id.clone());
                    Ok(Done::EventCreated {
                        event_id: event_id.clone(),
                    })
                }
            }
            Command::CreateDt {
                dt_id,
                event_id,
                venue_id,
                tiers,
                starts_at_ms,
                sale_starts_at_ms,
                sale_ends_at_ms,
                ..
            } => self.create_dt(
                dt_id,
                event_id,
                venue_id,
                tiers,
                *starts_at_ms,
                (*sale_starts_at_ms, *sale_ends_at_ms),
            ),
            Command::PublishDt { dt_id } => match self.dts.get_mut(dt_id) {
                None => bad(Rejection::NotFound),
                Some(d) if d.status == DtStatus::Canceled => bad(Rejection::DtCanceled),
                Some(d) if d.status != DtStatus::Draft => bad(Rejection::InvalidState),
                Some(d) => {
                    d.status = DtStatus::Published;
                    Ok(Done::DtPublished {
                        dt_id: dt_id.clone(),
                    })
                }
            },
            Command::UpsertUser { user_id, .. } => Ok(Done::UserSaved {
                user_id: user_id.clone(),
                created: self.users.insert(user_id.clone()),
            }),
            Command::HoldSeats {
                hold_id,
                dt_id,
                user_id,
                seats,
                ga,
                // The workloads never name a TTL: every hold has the default.
                hold_ttl_ms: _,
            } => self.hold_seats(now, hold_id, dt_id, user_id, seats, ga),
            Command::HoldBestAvailable {
                hold_id,
                dt_id,
                user_id,
                tier_id,
                quantity,
                hold_ttl_ms: _,
            } => self.hold_best(now, hold_id, dt_id, user_id, tier_id, *quantity, observed),
            Command::ReleaseHold { hold_id, user_id } => self.release(now, hold_id, user_id),
            Command::StartPayment {
                hold_id,
                user_id,
                payment_ref,
                amount_minor,
                currency,
            } => self.start_payment(now, hold_id, user_id, payment_ref, *amount_minor, currency),
            Command::ConfirmPurchase {
                hold_id,
                order_id,
                payment_ref,
                amount_minor,
                currency,
                secret_seed,
            } => self.confirm(
                index,
                now,
                hold_id,
                order_id,
                payment_ref,
                *amount_minor,
                currency,
                secret_seed.len(),
            ),
            Command::CancelOrder {
                order_id, user_id, ..
            } => self.cancel_order(index, order_id, user_id),
            Command::CancelDt { dt_id, reason } => self.cancel_dt(index, now, dt_id, reason),
            Command::RefundTicket { ticket_id, user_id } => {
                self.refund_ticket(index, ticket_id, user_id)
            }
            Command::MarkNotificationSent {
                notification_id,
                channel,
            } => self.mark_sent(notification_id, channel),
            Command::Scan {
                ticket_id,
                dt_id,
                gate,
            } => self.scan(now, ticket_id, dt_id, gate),
            _ => return None,
        };
        Some(match r {
            Ok(d) => Outcome::Done(d),
            Err(o) => o,
        })
    }

    fn create_venue(
        &mut self,
        index: u64,
        venue_id: &str,
        name: &str,
        city: &str,
    ) -> Result<Done, Outcome> {
        if venue_id.is_empty() || name.is_empty() {
            return bad(Rejection::InvalidArgument);
        }
        if self.venues.contains_key(venue_id) {
            return bad(Rejection::AlreadyExists);
        }
        self.venues.insert(
            venue_id.to_string(),
            Venue {
                venue_id: venue_id.to_string(),
                name: name.to_string(),
                city: city.to_string(),
                created_index: entry_of(index),
            },
        );
        Ok(Done::VenueCreated {
            venue_id: venue_id.to_string(),
        })
    }

    fn set_layout(&mut self, venue_id: &str, map: &SeatingMap) -> Result<Done, Outcome> {
        if !self.venues.contains_key(venue_id) {
            return bad(Rejection::NotFound);
        }
        if self.dts.values().any(|d| d.venue_id == venue_id) {
            return bad(Rejection::InvalidState);
        }
        let seat_count: usize = map
            .sections
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| r.seats.len())
            .sum();
        self.layouts.insert(venue_id.to_string(), map.clone());
        Ok(Done::VenueLayoutSet {
            venue_id: venue_id.to_string(),
            seat_count: seat_count as u32,
        })
    }

    fn create_dt(
        &mut self,
        dt_id: &str,
        event_id: &str,
        venue_id: &str,
        specs: &[TierSpec],
        starts_at_ms: i64,
        (sale_starts_at_ms, sale_ends_at_ms): (i64, i64),
    ) -> Result<Done, Outcome> {
        if self.dts.contains_key(dt_id) {
            return bad(Rejection::AlreadyExists);
        }
        if !self.events.contains_key(event_id) {
            return bad(Rejection::NotFound);
        }
        if !self.venues.contains_key(venue_id) {
            return bad(Rejection::NotFound);
        }
        if sale_starts_at_ms >= sale_ends_at_ms || specs.is_empty() {
            return bad(Rejection::InvalidArgument);
        }
        let map = self.layouts.get(venue_id).cloned().unwrap_or_default();
        // Seat index ranges of the sections, in map order.
        let mut sections: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut n = 0;
        for s in &map.sections {
            let start = n;
            n += s.rows.iter().map(|r| r.seats.len()).sum::<usize>();
            sections.insert(&s.section_id, (start, n));
        }
        let mut seat_tier: Vec<Option<u8>> = vec![None; n];
        let mut ga_tier: Vec<Option<u8>> = vec![None; map.ga_areas.len()];
        for (t, spec) in specs.iter().enumerate() {
            let mut ranges = Vec::new();
            for s in &spec.sections {
                match sections.get(s.as_str()) {
                    Some(r) => ranges.push(*r),
                    None => return bad(Rejection::InvalidArgument),
                }
            }
            for r in &spec.seat_ranges {
                if r.start >= r.end || r.end as usize > n {
                    return bad(Rejection::InvalidArgument);
                }
                ranges.push((r.start as usize, r.end as usize));
            }
            for (a, b) in ranges {
                for st in &mut seat_tier[a..b] {
                    if st.is_some() {
                        return bad(Rejection::InvalidArgument);
                    }
                    *st = Some(t as u8);
                }
            }
            for a in &spec.ga_areas {
                let Some(i) = map.ga_areas.iter().position(|g| &g.area_id == a) else {
                    return bad(Rejection::InvalidArgument);
                };
                if ga_tier[i].is_some() {
                    return bad(Rejection::InvalidArgument);
                }
                ga_tier[i] = Some(t as u8);
            }
        }
        let seats = seat_tier
            .iter()
            .map(|t| if t.is_some() { St::Free } else { St::Off })
            .collect();
        let ga: Vec<Ga> = map
            .ga_areas
            .iter()
            .zip(&ga_tier)
            .map(|(a, t)| Ga {
                tier: *t,
                capacity: a.capacity,
                held: 0,
                sold: 0,
            })
            .collect();
        let capacity = seat_tier.iter().filter(|t| t.is_some()).count() as u32
            + ga.iter()
                .filter(|g| g.tier.is_some())
                .map(|g| g.capacity)
                .sum::<u32>();
        self.dts.insert(
            dt_id.to_string(),
            MDt {
                event_id: event_id.to_string(),
                venue_id: venue_id.to_string(),
                status: DtStatus::Draft,
                starts_at_ms,
                sale_starts_at_ms,
                sale_ends_at_ms,
                tiers: specs.to_vec(),
                seat_tier,
                seats,
                ga,
            },
        );
        Ok(Done::DtCreated {
            dt_id: dt_id.to_string(),
            capacity,
        })
    }

    /// The checks both ways of holding share; returns the seller's fee.
    fn preflight(
        &self,
        now: Now,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        count: u64,
    ) -> Result<u32, Outcome> {
        if hold_id.is_empty() {
            return Err(reject(Rejection::InvalidArgument));
        }
        let dt = self.dts.get(dt_id).ok_or(reject(Rejection::NotFound))?;
        if matches!(dt.status, DtStatus::Canceled | DtStatus::Canceling) {
            return Err(reject(Rejection::DtCanceled));
        }
        let t = now.get();
        if dt.status != DtStatus::Published || t < dt.sale_starts_at_ms || t >= dt.sale_ends_at_ms {
            return Err(reject(Rejection::SaleNotOpen));
        }
        if !self.users.contains(user_id) {
            return Err(reject(Rejection::NotFound));
        }
        if self.holds.contains_key(hold_id) {
            return Err(reject(Rejection::AlreadyExists));
        }
        if count == 0 {
            return Err(reject(Rejection::InvalidArgument));
        }
        if count > SEATS_PER_HOLD_MAX as u64 {
            return Err(reject(Rejection::HoldLimitExceeded));
        }
        let have = self
            .user_seats
            .get(&(dt_id.to_string(), user_id.to_string()))
            .copied()
            .unwrap_or(0);
        if have as u64 + count > SEATS_PER_USER_PER_DT_MAX as u64 {
            return Err(reject(Rejection::UserLimitExceeded));
        }
        Ok(self.sellers[&self.events[&dt.event_id]])
    }

    fn hold_seats(
        &mut self,
        now: Now,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        seats: &[u32],
        ga: &[GaPick],
    ) -> Result<Done, Outcome> {
        let count = seats.len() as u64 + ga.iter().map(|g| g.quantity as u64).sum::<u64>();
        let fee_bps = self.preflight(now, hold_id, dt_id, user_id, count)?;
        let dt = &self.dts[dt_id];
        let mut picked = Vec::new();
        for (i, s) in seats.iter().enumerate() {
            if seats[..i].contains(s) {
                return bad(Rejection::InvalidArgument);
            }
            match dt.seats.get(*s as usize) {
                None | Some(St::Off) => return bad(Rejection::SeatNotForSale),
                Some(St::Held) => return bad(Rejection::SeatAlreadyHeld),
                Some(St::Sold) => return bad(Rejection::SeatTaken),
                Some(St::Free) => picked.push(SeatRef::Seat(*s)),
            }
        }
        let areas = &self.layouts[&dt.venue_id].ga_areas;
        for (i, g) in ga.iter().enumerate() {
            if g.quantity == 0 || ga[..i].iter().any(|o| o.area_id == g.area_id) {
                return bad(Rejection::InvalidArgument);
            }
            let Some(a) = areas.iter().position(|x| x.area_id == g.area_id) else {
                return bad(Rejection::SeatNotForSale);
            };
            let area = &dt.ga[a];
            if area.tier.is_none() {
                return bad(Rejection::SeatNotForSale);
            }
            if area.capacity - area.held - area.sold < g.quantity {
                return bad(Rejection::NotEnoughSeats);
            }
            picked.extend(std::iter::repeat_n(
                SeatRef::Ga(a as u16),
                g.quantity as usize,
            ));
        }
        Ok(self.place(now, hold_id, dt_id, user_id, picked, fee_bps))
    }

    #[allow(clippy::too_many_arguments)]
    fn hold_best(
        &mut self,
        now: Now,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        tier_id: &str,
        quantity: u32,
        observed: Option<&Outcome>,
    ) -> Result<Done, Outcome> {
        let fee_bps = self.preflight(now, hold_id, dt_id, user_id, quantity as u64)?;
        let dt = &self.dts[dt_id];
        let Some(tier) = dt.tiers.iter().position(|t| t.tier_id == tier_id) else {
            return bad(Rejection::NotFound);
        };
        let tier = tier as u8;
        let (cap, held, sold) = dt.tier_counts(tier);
        if cap - held - sold < quantity {
            return bad(Rejection::NotEnoughSeats);
        }
        // Enough is free: the pick is the cluster's, if it is a valid one.
        let valid = |picked: &[SeatRef]| -> bool {
            if picked.len() != quantity as usize {
                return false;
            }
            let mut ga_take: BTreeMap<u16, u32> = BTreeMap::new();
            for (i, r) in picked.iter().enumerate() {
                if dt.tier_of(*r) != Some(tier) {
                    return false;
                }
                match r {
                    SeatRef::Seat(s) => {
                        if dt.seats[*s as usize] != St::Free || picked[..i].contains(r) {
                            return false;
                        }
                    }
                    SeatRef::Ga(a) => *ga_take.entry(*a).or_default() += 1,
                }
            }
            ga_take.iter().all(|(a, n)| {
                let g = &dt.ga[*a as usize];
                g.capacity - g.held - g.sold >= *n
            })
        };
        let picked = match observed {
            Some(Outcome::Done(Done::HoldPlaced { seats, .. })) if valid(seats) => seats.clone(),
            // No valid pick to adopt: the model's own (the first free), which will differ.
            _ => {
                let mut p: Vec<SeatRef> = (0..dt.seats.len())
                    .filter(|s| dt.seat_tier[*s] == Some(tier) && dt.seats[*s] == St::Free)
                    .map(|s| SeatRef::Seat(s as u32))
                    .take(quantity as usize)
                    .collect();
                for (a, g) in dt.ga.iter().enumerate() {
                    if g.tier == Some(tier) {
                        let free = (g.capacity - g.held - g.sold) as usize;
                        let n = free.min(quantity as usize - p.len());
                        p.extend(std::iter::repeat_n(SeatRef::Ga(a as u16), n));
                    }
                }
                p
            }
        };
        Ok(self.place(now, hold_id, dt_id, user_id, picked, fee_bps))
    }

    fn place(
        &mut self,
        now: Now,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        picked: Vec<SeatRef>,
        fee_bps: u32,
    ) -> Done {
        let dt = self.dts.get_mut(dt_id).expect("checked");
        let mut items = Vec::new();
        for r in &picked {
            let tier = dt.tier_of(*r).expect("validated");
            dt.shift(*r, St::Free, St::Held);
            let price = dt.tiers[tier as usize].price_minor;
            items.push(HoldItem {
                seat: *r,
                tier,
                price_minor: price,
                fee_minor: fee(price, fee_bps),
            });
        }
        let subtotal: i64 = items.iter().map(|i| i.price_minor).sum();
        let fees: i64 = items.iter().map(|i| i.fee_minor).sum();
        let t = now.get();
        let hold = Hold {
            hold_id: hold_id.to_string(),
            dt_id: dt_id.to_string(),
            user_id: user_id.to_string(),
            items,
            subtotal_minor: subtotal,
            fee_minor: fees,
            total_minor: subtotal + fees,
            currency: dt.tiers[0].currency.clone(),
            created_at_ms: t,
            expires_at_ms: t + HOLD_TTL_MS,
            pinned_until_ms: None,
            payment_ref: None,
            payment_attempts: 0,
            status: HoldStatus::Live,
        };
        *self
            .user_seats
            .entry((dt_id.to_string(), user_id.to_string()))
            .or_default() += picked.len() as u32;
        let done = Done::HoldPlaced {
            hold_id: hold_id.to_string(),
            seats: picked,
            total_minor: hold.total_minor,
            currency: hold.currency.clone(),
            expires_at_ms: hold.expires_at_ms,
        };
        self.live
            .insert((effective_expiry(&hold), hold_id.to_string()));
        self.holds.insert(hold_id.to_string(), hold);
        done
    }

    fn uncount(&mut self, dt_id: &str, user_id: &str, n: u32) {
        let k = (dt_id.to_string(), user_id.to_string());
        if let Some(c) = self.user_seats.get_mut(&k) {
            *c -= n;
            if *c == 0 {
                self.user_seats.remove(&k);
            }
        }
    }

    /// A live hold of `user_id` (any user when `None`), or the rejection.
    fn live_hold(&self, hold_id: &str, user_id: Option<&str>) -> Result<Hold, Outcome> {
        let h = self.holds.get(hold_id).ok_or(reject(Rejection::NotFound))?;
        if user_id.is_some_and(|u| u != h.user_id) {
            return Err(reject(Rejection::NotOwner));
        }
        match h.status {
            HoldStatus::Live => Ok(h.clone()),
            HoldStatus::Expired { .. } => Err(reject(Rejection::HoldExpired)),
            _ => Err(reject(Rejection::HoldNotLive)),
        }
    }

    fn pending_payment(&self, h: &Hold) -> Option<String> {
        h.payment_ref
            .as_ref()
            .filter(|r| self.payments.get(*r).is_some_and(|p| p.pending))
            .cloned()
    }

    /// Ends a live hold: its seats go back, a pending payment fails.
    fn end_hold(&mut self, hold_id: &str, status: HoldStatus) {
        let mut h = self.holds[hold_id].clone();
        self.live
            .remove(&(effective_expiry(&h), hold_id.to_string()));
        let dt = self.dts.get_mut(&h.dt_id).expect("hold of a dt");
        for it in &h.items {
            dt.shift(it.seat, St::Held, St::Free);
        }
        self.uncount(&h.dt_id, &h.user_id, h.items.len() as u32);
        if let Some(p) = self.pending_payment(&h) {
            self.payments.get_mut(&p).expect("pending").pending = false;
        }
        h.pinned_until_ms = None;
        h.status = status;
        self.holds.insert(hold_id.to_string(), h);
    }

    fn release(&mut self, now: Now, hold_id: &str, user_id: &str) -> Result<Done, Outcome> {
        let h = self.live_hold(hold_id, Some(user_id))?;
        if self.pending_payment(&h).is_some() {
            return bad(Rejection::PaymentInProgress);
        }
        self.end_hold(hold_id, HoldStatus::Released { at_ms: now.get() });
        Ok(Done::HoldReleased {
            hold_id: hold_id.to_string(),
        })
    }

    fn start_payment(
        &mut self,
        now: Now,
        hold_id: &str,
        user_id: &str,
        payment_ref: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Done, Outcome> {
        let mut h = self.live_hold(hold_id, Some(user_id))?;
        if payment_ref.is_empty() {
            return bad(Rejection::InvalidArgument);
        }
        if self.pending_payment(&h).is_some() {
            return bad(Rejection::PaymentInProgress);
        }
        if self.payments.contains_key(payment_ref) {
            return bad(Rejection::AlreadyExists);
        }
        if h.payment_attempts >= PAYMENT_ATTEMPTS_PER_HOLD_MAX {
            return bad(Rejection::PaymentAttemptsExceeded);
        }
        if amount_minor != h.total_minor || currency != h.currency {
            return bad(Rejection::AmountMismatch);
        }
        let pinned = now.get() + PAYMENT_PIN_MS;
        self.live
            .remove(&(effective_expiry(&h), hold_id.to_string()));
        h.pinned_until_ms = Some(pinned);
        self.live
            .insert((effective_expiry(&h), hold_id.to_string()));
        h.payment_ref = Some(payment_ref.to_string());
        h.payment_attempts += 1;
        self.holds.insert(hold_id.to_string(), h);
        self.payments.insert(
            payment_ref.to_string(),
            MPayment {
                hold_id: hold_id.to_string(),
                pending: true,
            },
        );
        Ok(Done::PaymentStarted {
            hold_id: hold_id.to_string(),
            payment_ref: payment_ref.to_string(),
            pinned_until_ms: pinned,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn confirm(
        &mut self,
        index: u64,
        now: Now,
        hold_id: &str,
        order_id: &str,
        payment_ref: &str,
        amount_minor: i64,
        currency: &str,
        seed_len: usize,
    ) -> Result<Done, Outcome> {
        let mut h = self.live_hold(hold_id, None)?;
        if self.pending_payment(&h).as_deref() != Some(payment_ref) {
            return bad(Rejection::PaymentNotAuthorized);
        }
        if amount_minor != h.total_minor || currency != h.currency {
            return bad(Rejection::AmountMismatch);
        }
        if order_id.is_empty() {
            return bad(Rejection::InvalidArgument);
        }
        if self.orders.contains_key(order_id) {
            return bad(Rejection::AlreadyExists);
        }
        if !(16..=64).contains(&seed_len) {
            return bad(Rejection::InvalidArgument);
        }
        let dt = self.dts.get_mut(&h.dt_id).expect("hold of a dt");
        let map = self.layouts.get(&dt.venue_id).cloned().unwrap_or_default();
        let mut ticket_ids = Vec::new();
        for (k, it) in h.items.iter().enumerate() {
            dt.shift(it.seat, St::Held, St::Sold);
            let ticket_id = format!("{order_id}-{}", k + 1);
            let seat_label = match it.seat {
                SeatRef::Seat(s) => seat_label(&map, s),
                SeatRef::Ga(a) => map.ga_areas[a as usize].name.clone(),
            };
            self.tickets.insert(
                ticket_id.clone(),
                Ticket {
                    ticket_id: ticket_id.clone(),
                    order_id: order_id.to_string(),
                    event_id: dt.event_id.clone(),
                    dt_id: h.dt_id.clone(),
                    user_id: h.user_id.clone(),
                    seat: it.seat,
                    seat_label,
                    tier_id: dt.tiers[it.tier as usize].tier_id.clone(),
                    price_minor: it.price_minor,
                    fee_minor: it.fee_minor,
                    currency: h.currency.clone(),
                    secret: [0; 32],
                    status: TicketStatus::Valid,
                    scans: Vec::new(),
                    created_at_ms: 0,
                    updated_at_ms: 0,
                },
            );
            ticket_ids.push(ticket_id);
        }
        self.orders.insert(
            order_id.to_string(),
            Order {
                order_id: order_id.to_string(),
                user_id: h.user_id.clone(),
                event_id: dt.event_id.clone(),
                dt_id: h.dt_id.clone(),
                hold_id: hold_id.to_string(),
                payment_ref: payment_ref.to_string(),
                ticket_ids: ticket_ids.clone(),
                subtotal_minor: h.subtotal_minor,
                fee_minor: h.fee_minor,
                total_minor: h.total_minor,
                refunded_minor: 0,
                currency: h.currency.clone(),
                status: OrderStatus::Confirmed,
                created_at_ms: 0,
                created_index: entry_of(index),
            },
        );
        let starts_at_ms = self.dts[&h.dt_id].starts_at_ms;
        self.live
            .remove(&(effective_expiry(&h), hold_id.to_string()));
        h.pinned_until_ms = None;
        h.status = HoldStatus::Purchased {
            order_id: order_id.to_string(),
        };
        self.holds.insert(hold_id.to_string(), h);
        self.payments
            .get_mut(payment_ref)
            .expect("pending payment")
            .pending = false;
        // A confirmation, the e-tickets, and a reminder when the dt starts after the lead (the
        // workloads' users keep the default lead; their dts start in 2100).
        self.mint(index, order_id, NoteKind::Other);
        self.mint(index, order_id, NoteKind::Other);
        if starts_at_ms.saturating_sub(REMINDER_LEAD_DEFAULT_MS) > now.get() {
            self.mint(index, order_id, NoteKind::Reminder);
        }
        Ok(Done::PurchaseConfirmed {
            order_id: order_id.to_string(),
            ticket_ids,
            total_minor: amount_minor,
            currency: currency.to_string(),
        })
    }

    fn cancel_order(&mut self, index: u64, order_id: &str, user_id: &str) -> Result<Done, Outcome> {
        let o = self
            .orders
            .get(order_id)
            .ok_or(reject(Rejection::NotFound))?
            .clone();
        if o.user_id != user_id {
            return bad(Rejection::NotOwner);
        }
        if matches!(o.status, OrderStatus::Canceled | OrderStatus::Refunded)
            || o.ticket_ids
                .iter()
                .any(|t| matches!(self.tickets[t].status, TicketStatus::Used { .. }))
        {
            return bad(Rejection::OrderNotCancelable);
        }
        let refund = self.cancel_order_effects(index, order_id);
        Ok(Done::OrderCanceled {
            order_id: order_id.to_string(),
            refund_minor: refund,
        })
    }

    /// An order canceled (by its buyer or with its dt): its valid tickets canceled and their
    /// seats freed, their money owed back, a cancellation notice, a refund notice when money
    /// is owed, its pending reminders void. Returns the refund.
    fn cancel_order_effects(&mut self, index: u64, order_id: &str) -> i64 {
        let o = self.orders[order_id].clone();
        let mut refund = 0;
        for tid in &o.ticket_ids {
            let t = self.tickets.get_mut(tid).expect("ticket of an order");
            if t.status != TicketStatus::Valid {
                continue;
            }
            t.status = TicketStatus::Canceled { at_ms: 0 };
            refund += t.price_minor + t.fee_minor;
            let (dt_id, seat, user) = (t.dt_id.clone(), t.seat, t.user_id.clone());
            self.dts
                .get_mut(&dt_id)
                .expect("dt of a ticket")
                .shift(seat, St::Sold, St::Free);
            self.uncount(&dt_id, &user, 1);
        }
        let o = self.orders.get_mut(order_id).expect("checked");
        o.refunded_minor += refund;
        o.status = OrderStatus::Canceled;
        self.mint(index, order_id, NoteKind::Other);
        if refund > 0 {
            self.mint(index, order_id, NoteKind::Other);
        }
        self.void_reminders(order_id);
        refund
    }

    /// One cancellation step of a dt: its live holds released, then its open orders (confirmed
    /// or partly refunded) canceled, in id order, at most `CANCEL_ROWS_PER_ENTRY_MAX` rows; the
    /// dt canceled when none is left, still canceling otherwise.
    fn cancel_dt(
        &mut self,
        index: u64,
        now: Now,
        dt_id: &str,
        reason: &str,
    ) -> Result<Done, Outcome> {
        let dt = self.dts.get(dt_id).ok_or(reject(Rejection::NotFound))?;
        if matches!(dt.status, DtStatus::Canceled | DtStatus::Canceling) {
            return bad(Rejection::DtCanceled);
        }
        if reason.len() > TEXT_LEN_MAX {
            return bad(Rejection::InvalidArgument);
        }
        let live_of_dt = |m: &Model| -> Vec<String> {
            m.holds
                .values()
                .filter(|h| h.dt_id == dt_id && h.status == HoldStatus::Live)
                .map(|h| h.hold_id.clone())
                .collect()
        };
        let open_of_dt = |m: &Model| -> Vec<String> {
            m.orders
                .values()
                .filter(|o| {
                    o.dt_id == dt_id
                        && matches!(
                            o.status,
                            OrderStatus::Confirmed | OrderStatus::PartiallyRefunded
                        )
                })
                .map(|o| o.order_id.clone())
                .collect()
        };
        let holds: Vec<String> = live_of_dt(self)
            .into_iter()
            .take(CANCEL_ROWS_PER_ENTRY_MAX)
            .collect();
        for h in &holds {
            self.end_hold(h, HoldStatus::Released { at_ms: now.get() });
        }
        let room = CANCEL_ROWS_PER_ENTRY_MAX - holds.len();
        let orders: Vec<String> = open_of_dt(self).into_iter().take(room).collect();
        for o in &orders {
            self.cancel_order_effects(index, o);
        }
        let done = live_of_dt(self).is_empty() && open_of_dt(self).is_empty();
        self.dts.get_mut(dt_id).expect("checked").status = if done {
            DtStatus::Canceled
        } else {
            DtStatus::Canceling
        };
        Ok(Done::DtCanceled {
            dt_id: dt_id.to_string(),
            holds_released: holds.len() as u32,
            orders_canceled: orders.len() as u32,
        })
    }

    /// A valid ticket refunded by its owner: its seat freed, its price and fee owed back, its
    /// order refunded (every ticket refunded) or partly refunded, a refund notice, the order's
    /// reminders void when no valid ticket is left.
    fn refund_ticket(
        &mut self,
        index: u64,
        ticket_id: &str,
        user_id: &str,
    ) -> Result<Done, Outcome> {
        let t = self
            .tickets
            .get(ticket_id)
            .ok_or(reject(Rejection::NotFound))?
            .clone();
        if t.user_id != user_id {
            return bad(Rejection::NotOwner);
        }
        if t.status != TicketStatus::Valid {
            return bad(Rejection::TicketNotRefundable);
        }
        if !self.orders.contains_key(&t.order_id) {
            return bad(Rejection::NotFound);
        }
        self.dts
            .get_mut(&t.dt_id)
            .expect("dt of a ticket")
            .shift(t.seat, St::Sold, St::Free);
        self.uncount(&t.dt_id, &t.user_id, 1);
        let refund = t.price_minor + t.fee_minor;
        self.tickets.get_mut(ticket_id).expect("checked").status =
            TicketStatus::Refunded { at_ms: 0 };
        let statuses: Vec<TicketStatus> = self.orders[&t.order_id]
            .ticket_ids
            .iter()
            .map(|id| self.tickets[id].status.clone())
            .collect();
        let any_valid = statuses.contains(&TicketStatus::Valid);
        let all_refunded = statuses
            .iter()
            .all(|s| matches!(s, TicketStatus::Refunded { .. }));
        let o = self.orders.get_mut(&t.order_id).expect("checked");
        o.refunded_minor += refund;
        o.status = if all_refunded {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        };
        self.mint(index, &t.order_id, NoteKind::Other);
        if !any_valid {
            self.void_reminders(&t.order_id);
        }
        Ok(Done::TicketRefunded {
            ticket_id: ticket_id.to_string(),
            refund_minor: refund,
        })
    }

    /// Adds a notification to the outbox: its id numbers it within its entry's batch.
    fn mint(&mut self, index: u64, order_id: &str, kind: NoteKind) {
        let entry = entry_of(index);
        if self.minted.0 != entry {
            self.minted = (entry, 0);
        }
        self.minted.1 += 1;
        self.notes.insert(
            format!("n-{entry}-{}", self.minted.1),
            MNote {
                order_id: order_id.to_string(),
                reminder: kind == NoteKind::Reminder,
                status: NoteSt::Pending,
            },
        );
    }

    /// Voids the pending reminders of an order.
    fn void_reminders(&mut self, order_id: &str) {
        for n in self.notes.values_mut() {
            if n.order_id == order_id && n.reminder && n.status == NoteSt::Pending {
                n.status = NoteSt::Void;
            }
        }
    }

    /// A notification marked sent (again: the same answer); a void one refused.
    fn mark_sent(&mut self, notification_id: &str, channel: &str) -> Result<Done, Outcome> {
        if channel.is_empty() {
            return bad(Rejection::InvalidArgument);
        }
        let n = self
            .notes
            .get_mut(notification_id)
            .ok_or(reject(Rejection::NotFound))?;
        match n.status {
            NoteSt::Void => return bad(Rejection::InvalidState),
            NoteSt::Pending => n.status = NoteSt::Sent,
            NoteSt::Sent => {}
        }
        Ok(Done::NotificationSent {
            notification_id: notification_id.to_string(),
        })
    }

    /// The notification ids of the outbox, with whether each is still pending (for tests).
    pub fn outbox(&self) -> Vec<(String, bool)> {
        self.notes
            .iter()
            .map(|(id, n)| (id.clone(), n.status == NoteSt::Pending))
            .collect()
    }

    fn scan(
        &mut self,
        now: Now,
        ticket_id: &str,
        dt_id: &str,
        gate: &str,
    ) -> Result<Done, Outcome> {
        if gate.is_empty() {
            return bad(Rejection::InvalidArgument);
        }
        let ticket = self.tickets.get(ticket_id);
        let called_off = ticket
            .and_then(|t| self.dts.get(&t.dt_id))
            .is_some_and(|d| matches!(d.status, DtStatus::Canceling | DtStatus::Canceled));
        let found = match ticket {
            None => Found::NoSuchTicket,
            Some(t) if t.dt_id != dt_id => Found::OtherDt,
            Some(t) => match &t.status {
                TicketStatus::Valid => Found::Valid,
                TicketStatus::Used { .. } => Found::Used,
                TicketStatus::Canceled { .. } => Found::Canceled,
                TicketStatus::Refunded { .. } => Found::Refunded,
            },
        };
        let answer = scan_rules::answer(found, called_off);
        if answer == Answer::Unknown {
            return Ok(Done::Scanned {
                ticket_id: ticket_id.to_string(),
                verdict: ScanVerdict::Unknown,
            });
        }
        let t = self.tickets.get_mut(ticket_id).expect("found");
        let verdict = match (answer, &t.status) {
            (Answer::WrongDt, _) => ScanVerdict::WrongDt {
                dt_id: t.dt_id.clone(),
            },
            (Answer::Admit, _) => ScanVerdict::Admitted,
            (Answer::AlreadyUsed, TicketStatus::Used { at_ms, gate }) => ScanVerdict::AlreadyUsed {
                at_ms: *at_ms,
                gate: gate.clone(),
            },
            (Answer::CanceledAt, TicketStatus::Canceled { at_ms }) => {
                ScanVerdict::Canceled { at_ms: *at_ms }
            }
            (Answer::CanceledNow, _) => ScanVerdict::Canceled { at_ms: now.get() },
            (Answer::RefundedAt, TicketStatus::Refunded { at_ms }) => {
                ScanVerdict::Refunded { at_ms: *at_ms }
            }
            (answer, status) => unreachable!("scan answer {answer:?} for a ticket {status:?}"),
        };
        if verdict == ScanVerdict::Admitted {
            t.status = TicketStatus::Used {
                at_ms: now.get(),
                gate: gate.to_string(),
            };
        }
        if t.scans.len() >= SCANS_PER_TICKET_MAX {
            t.scans.remove(0);
        }
        t.scans.push(ScanRecord {
            at_ms: now.get(),
            gate: gate.to_string(),
            verdict: verdict.clone(),
        });
        Ok(Done::Scanned {
            ticket_id: ticket_id.to_string(),
            verdict,
        })
    }

    /// The distinct effective expiries, earliest first, of the live holds in `scope` whose
    /// expiry lies in `(after, upto]`: the holds an op in `scope` may find expired or not when
    /// log time is only known to lie there.
    pub fn expiries_between(&self, after: i64, upto: i64, scope: &Scope) -> Vec<i64> {
        if upto <= after || *scope == Scope::Nothing {
            return Vec::new();
        }
        let mut v: Vec<i64> = self
            .live
            .range((after.saturating_add(1), String::new())..)
            .take_while(|(e, _)| *e <= upto)
            .filter(|(_, id)| match scope {
                Scope::Nothing => false,
                Scope::Hold(h) => h == id,
                Scope::Dt(d) => self.holds.get(id).is_some_and(|h| &h.dt_id == d),
            })
            .map(|(e, _)| *e)
            .collect();
        v.dedup();
        v
    }

    /// Expires every live hold whose effective expiry is at or before `t` (log time reached
    /// `t`), earliest first. Returns how many.
    pub fn expire_through(&mut self, t: i64) -> usize {
        let due: Vec<(i64, String)> = self
            .live
            .iter()
            .take_while(|(e, _)| *e <= t)
            .cloned()
            .collect();
        for (e, id) in &due {
            self.end_hold(id, HoldStatus::Expired { at_ms: *e });
        }
        due.len()
    }

    /// Answers a query; `None` for queries the model does not know (the digest, browsing).
    /// Log times in the answer are zero: compare through [`normalize_result`].
    pub fn query(&self, q: &Query) -> Option<QueryResult> {
        Some(match q {
            Query::GetVenue { venue_id } => QueryResult::Venue(self.venues.get(venue_id).cloned()),
            Query::GetHold { hold_id } => QueryResult::Hold(self.holds.get(hold_id).cloned()),
            Query::GetTicket { ticket_id } => {
                QueryResult::Ticket(self.tickets.get(ticket_id).cloned())
            }
            Query::GetOrder { order_id } => {
                QueryResult::Order(self.orders.get(order_id).map(|o| {
                    OrderView {
                        order: o.clone(),
                        tickets: o
                            .ticket_ids
                            .iter()
                            .filter_map(|t| self.tickets.get(t).cloned())
                            .collect(),
                    }
                }))
            }
            Query::SeatMap { dt_id } => QueryResult::SeatMap(self.seat_map(dt_id)),
            _ => return None,
        })
    }

    fn seat_map(&self, dt_id: &str) -> Option<SeatMapView> {
        let dt = self.dts.get(dt_id)?;
        let tiers = dt
            .tiers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (capacity, held, sold) = dt.tier_counts(i as u8);
                TierAvailability {
                    tier_id: t.tier_id.clone(),
                    name: String::new(),
                    price_minor: 0,
                    fee_minor: 0,
                    currency: String::new(),
                    capacity,
                    available: capacity - held - sold,
                    held,
                    sold,
                }
            })
            .collect();
        let areas = self
            .layouts
            .get(&dt.venue_id)
            .map(|l| l.ga_areas.clone())
            .unwrap_or_default();
        let ga = areas
            .iter()
            .zip(&dt.ga)
            .map(|(a, g)| GaAvailability {
                area_id: a.area_id.clone(),
                tier_id: g.tier.map(|t| dt.tiers[t as usize].tier_id.clone()),
                capacity: g.capacity,
                available: if g.tier.is_some() {
                    g.capacity - g.held - g.sold
                } else {
                    0
                },
            })
            .collect();
        let seat_states = dt
            .seats
            .chunks(4)
            .map(|c| {
                c.iter().enumerate().fold(0u8, |acc, (k, s)| {
                    let b = match s {
                        St::Free => 0u8,
                        St::Held => 1,
                        St::Sold => 2,
                        St::Off => 3,
                    };
                    acc | b << (2 * k)
                })
            })
            .collect();
        Some(SeatMapView {
            dt_id: dt_id.to_string(),
            venue_id: dt.venue_id.clone(),
            tiers,
            ga,
            seat_count: dt.seats.len() as u32,
            seat_states,
            seat_tiers: Vec::new(),
        })
    }
}
