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

use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use ticketd_store::command::{Done, GaPick};
use ticketd_store::types::{
    Contact, GaAreaDef, GeoPoint, Profile, ReminderPreference, RowDef, SeatDef, SeatingMap,
    SectionDef, SellerPlan, TierSpec,
};
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use ticketd_checker::history::{Call, Cons, Line, Ret};

/// Which workload a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Set-once registers (venues).
    Register,
    /// Seat sale and scans.
    Sale,
}

impl Workload {
    /// `register` or `sale`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Sale => "sale",
        }
    }

    /// Parses `register` or `sale`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "register" | "venues" => Ok(Workload::Register),
            "sale" | "seats" => Ok(Workload::Sale),
            other => anyhow::bail!("unknown workload {other:?} (register, sale)"),
        }
    }
}

/// The client id of the setup writes.
pub const SETUP_CLIENT: &str = "setup";
/// The sale's venue.
pub const VENUE: &str = "hall";
/// Users per client.
pub const USERS_PER_CLIENT: usize = 4;
/// Seats of section A (the hot set is its first row).
pub const SECTION_A: u32 = 16;
/// Seats of section B.
pub const SECTION_B: u32 = 30;
/// The GA floor's capacity.
pub const FLOOR: u32 = 20;
/// Tier ids, in dt order.
pub const TIERS: [&str; 3] = ["front", "back", "floor"];

/// The id of the `k`-th dt.
pub fn dt_id(k: usize) -> String {
    format!("dt{k}")
}

/// The users of client `idx`.
pub fn users_of(idx: usize) -> Vec<String> {
    (0..USERS_PER_CLIENT)
        .map(|j| format!("u{idx}-{j}"))
        .collect()
}

fn seating_map() -> SeatingMap {
    let row = |label: &str, n: u32| RowDef {
        label: label.into(),
        seats: (1..=n)
            .map(|i| SeatDef {
                number: i.to_string(),
                x: i as i32,
                y: 0,
            })
            .collect(),
    };
    SeatingMap {
        sections: vec![
            SectionDef {
                section_id: "A".into(),
                name: "Front".into(),
                rows: vec![row("1", 8), row("2", 8)],
            },
            SectionDef {
                section_id: "B".into(),
                name: "Back".into(),
                rows: vec![row("1", 10), row("2", 10), row("3", 10)],
            },
        ],
        ga_areas: vec![GaAreaDef {
            area_id: "floor".into(),
            name: "Floor".into(),
            capacity: FLOOR,
        }],
    }
}

fn tiers() -> Vec<TierSpec> {
    let t = |id: &str, price: i64, sections: &[&str], ga: &[&str]| TierSpec {
        tier_id: id.into(),
        name: id.into(),
        price_minor: price,
        currency: "EUR".into(),
        sections: sections.iter().map(|s| s.to_string()).collect(),
        seat_ranges: Vec::new(),
        ga_areas: ga.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        t(TIERS[0], 5_000, &["A"], &[]),
        t(TIERS[1], 3_000, &["B"], &[]),
        t(TIERS[2], 2_000, &[], &["floor"]),
    ]
}

/// The sale's setup, in order: (idempotency key, command). Sale windows are open for any
/// plausible log time (from 0 to the year 2100), so no clock decides whether a dt is on sale.
pub fn sale_setup(dts: usize, clients: usize) -> Vec<(String, Command)> {
    const Y2100_MS: i64 = 4_102_444_800_000;
    let mut out = vec![
        Command::CreateSeller {
            seller_id: "seller".into(),
            name: "Chaos Seller".into(),
            fee_bps: 250,
            plan: SellerPlan::Standard,
        },
        Command::CreateEvent {
            event_id: "show".into(),
            seller_id: "seller".into(),
            title: "The Chaos Show".into(),
            description: "Faults, nightly.".into(),
            category: "concert".into(),
            performers: vec!["The Nemesis".into()],
        },
        Command::CreateVenue {
            venue_id: VENUE.into(),
            name: "Chaos Hall".into(),
            city: "Chaos".into(),
        },
        Command::SetVenueLayout {
            venue_id: VENUE.into(),
            address: "1 Fault Line".into(),
            geo: GeoPoint::default(),
            seating_map: seating_map(),
        },
    ];
    for k in 0..dts {
        out.push(Command::CreateDt {
            dt_id: dt_id(k),
            event_id: "show".into(),
            venue_id: VENUE.into(),
            starts_at_ms: Y2100_MS,
            time_zone: "Europe/Oslo".into(),
            tiers: tiers(),
            sale_starts_at_ms: 0,
            sale_ends_at_ms: Y2100_MS,
        });
        out.push(Command::PublishDt { dt_id: dt_id(k) });
    }
    for c in 0..clients {
        for u in users_of(c) {
            out.push(Command::UpsertUser {
                user_id: u,
                profile: Profile::default(),
                contact: Contact::default(),
                reminder: ReminderPreference::default(),
                payment_token_sealed: None,
            });
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, c)| (format!("setup-{i}"), c))
        .collect()
}

/// What the clients of a sale share: the tickets every client has seen issued, oldest first, as
/// `(dt, ticket)`, and the ids of notifications the outbox may hold (minted by the entries of
/// answered purchases, cancellations and refunds; at most [`NOTES_KEPT`], newest last).
#[derive(Debug, Default, Clone)]
pub struct Shared {
    /// `(dt, ticket)`, oldest first.
    pub tickets: Vec<(String, String)>,
    /// Notification ids, newest last.
    pub notes: Vec<String>,
}

/// Notification ids kept in [`Shared::notes`].
pub const NOTES_KEPT: usize = 64;

/// Notifications an entry that confirms, cancels or refunds may mint per command: ids
/// `n-{entry}-1` up to this (more when the batch holds several such commands; the rest are
/// found or not, both are answers the model knows).
const NOTES_PER_ENTRY_GUESS: u32 = 3;

impl Shared {
    fn learn_notes(&mut self, index: u64) {
        let entry = ticketd_checker::history::entry_of(index);
        for k in 1..=NOTES_PER_ENTRY_GUESS {
            let id = format!("n-{entry}-{k}");
            if !self.notes.contains(&id) {
                self.notes.push(id);
            }
        }
        let over = self.notes.len().saturating_sub(NOTES_KEPT);
        self.notes.drain(..over);
    }
}

/// A hold a buyer knows it has.
#[derive(Debug, Clone)]
struct MyHold {
    hold_id: String,
    dt: String,
    user: String,
    total: i64,
    currency: String,
    /// The payment started on it, when known.
    payment: Option<String>,
}

/// An order a buyer knows it has.
#[derive(Debug, Clone)]
struct MyOrder {
    order_id: String,
    user: String,
    tickets: Vec<String>,
}

/// What an op ended with, as a client sees it.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// A write's outcome.
    Write(&'a Outcome),
    /// A read's answer.
    Read(&'a QueryResult),
    /// Definitely not applied.
    Failed,
    /// Unknown: may have been applied, may still be.
    Unknown,
}

impl<'a> Seen<'a> {
    /// From a completion line.
    pub fn of(line: &'a Line) -> Self {
        match line {
            Line::Ok {
                ret: Ret::Write { outcome, .. },
                ..
            } => Seen::Write(outcome),
            Line::Ok {
                ret: Ret::Read { result },
                ..
            } => Seen::Read(result),
            Line::Fail { .. } => Seen::Failed,
            _ => Seen::Unknown,
        }
    }
}

/// The position at which an answered write first took effect.
pub fn effect_index(line: &Line) -> Option<u64> {
    match line {
        Line::Ok {
            ret: Ret::Write { effect_index, .. },
            ..
        } => Some(*effect_index),
        _ => None,
    }
}

/// One client of the sale workload: a buyer, or a scanner at its own gate.
pub struct SaleClient {
    idx: usize,
    client_id: String,
    rng: ChaCha8Rng,
    scanner: bool,
    users: Vec<String>,
    n: u64,
    holds: Vec<MyHold>,
    /// Holds this client has had (for reads of ended holds).
    past_holds: Vec<String>,
    orders: Vec<MyOrder>,
    /// (hold, payment, amount) to confirm next.
    confirm: Option<(String, String, i64, String)>,
    past: Vec<(String, Command)>,
    /// The dts this client (the seller) has called off.
    canceled: BTreeSet<String>,
}

impl SaleClient {
    /// Client `idx` of `clients`; the last third of the clients (at least one when there are
    /// three or more) are scanners.
    pub fn new(idx: usize, clients: usize, seed: u64, client_id: String) -> Self {
        let scanners = if clients >= 3 { clients.div_ceil(3) } else { 0 };
        Self {
            idx,
            client_id,
            rng: ChaCha8Rng::seed_from_u64(
                seed.wrapping_add(1 + idx as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    ^ 0x5a1e,
            ),
            scanner: idx >= clients - scanners,
            users: users_of(idx),
            n: 0,
            holds: Vec::new(),
            past_holds: Vec::new(),
            orders: Vec::new(),
            confirm: None,
            past: Vec::new(),
            canceled: BTreeSet::new(),
        }
    }

    fn write(&mut self, command: Command, via: Option<u64>) -> Call {
        let key = format!("k{}-{}", self.idx, self.n);
        self.past.push((key.clone(), command.clone()));
        if self.past.len() > 32 {
            self.past.remove(0);
        }
        Call::Write {
            client_id: self.client_id.clone(),
            key,
            command,
            via,
        }
    }

    fn read(&mut self, query: Query, nodes: &[u64]) -> Call {
        let local = self.rng.random_bool(0.3);
        let node = (local || self.rng.random_bool(0.4))
            .then(|| nodes[self.rng.random_range(0..nodes.len())]);
        Call::Read {
            query,
            consistency: if local {
                Cons::Local
            } else {
                Cons::Linearizable
            },
            node,
            final_read: false,
        }
    }

    /// The seller's call-off, if this is the seller and one is due: the dt before `dt` soon
    /// after the sale moved on (late confirmations, refunds and scans of it still in flight),
    /// and rarely `dt` itself, mid-sale.
    fn call_off(&mut self, dt: &str, via: Option<u64>) -> Option<Call> {
        if self.idx != 0 {
            return None;
        }
        let k: usize = dt.strip_prefix("dt")?.parse().ok()?;
        let target = match k.checked_sub(1).map(dt_id) {
            Some(prev) if !self.canceled.contains(&prev) && self.rng.random_bool(0.05) => prev,
            _ if !self.canceled.contains(dt) && self.rng.random_bool(0.002) => dt.to_string(),
            _ => return None,
        };
        self.canceled.insert(target.clone());
        Some(self.write(
            Command::CancelDt {
                dt_id: target,
                reason: "the show is called off".into(),
            },
            via,
        ))
    }

    /// The next op on dt `dt`; `shared` is what every client has seen (tickets, notification
    /// ids); `nodes` the node ids to send through.
    pub fn next(&mut self, dt: &str, shared: &Shared, nodes: &[u64]) -> Call {
        let tickets = &shared.tickets;
        self.n += 1;
        let n = self.n;
        let idx = self.idx;
        let via = self
            .rng
            .random_bool(0.33)
            .then(|| nodes[self.rng.random_range(0..nodes.len())]);
        if self.scanner {
            let roll: f64 = self.rng.random();
            // Not the very newest tickets (their buyers may still cancel), but a few just
            // before them: every scanner hits the same ones.
            let window = tickets.len().saturating_sub(3);
            if window > 0 && roll < 0.7 {
                let k = if self.rng.random_bool(0.8) {
                    window - 1 - self.rng.random_range(0..window.min(6))
                } else {
                    self.rng.random_range(0..tickets.len())
                };
                let (tdt, ticket_id) = tickets[k].clone();
                return if roll < 0.45 {
                    self.write(
                        Command::Scan {
                            ticket_id,
                            dt_id: tdt,
                            gate: format!("g{idx}"),
                        },
                        via,
                    )
                } else {
                    self.read(Query::GetTicket { ticket_id }, nodes)
                };
            }
            return self.read(
                Query::SeatMap {
                    dt_id: dt.to_string(),
                },
                nodes,
            );
        }
        if let Some(c) = self.call_off(dt, via) {
            return c;
        }
        if let Some((hold_id, payment_ref, amount, currency)) = self.confirm.take() {
            let mut seed = [0u8; 16];
            self.rng.fill(&mut seed);
            return self.write(
                Command::ConfirmPurchase {
                    hold_id,
                    order_id: format!("o{idx}-{n}"),
                    payment_ref,
                    amount_minor: amount,
                    currency,
                    secret_seed: seed.to_vec(),
                },
                via,
            );
        }
        let roll: f64 = self.rng.random();
        let user = self.users[self.rng.random_range(0..self.users.len())].clone();
        let hold_id = format!("h{idx}-{n}");
        if roll < 0.20 {
            // Chosen seats, mostly on the hot front row.
            let k = self.rng.random_range(1..=2);
            let mut seats = BTreeSet::new();
            while seats.len() < k {
                seats.insert(if self.rng.random_bool(0.75) {
                    self.rng.random_range(0..SECTION_A / 2)
                } else {
                    self.rng.random_range(0..SECTION_A + SECTION_B)
                });
            }
            return self.write(
                Command::HoldSeats {
                    hold_id,
                    dt_id: dt.to_string(),
                    user_id: user,
                    seats: seats.into_iter().collect(),
                    ga: Vec::new(),
                    hold_ttl_ms: None,
                },
                via,
            );
        }
        if roll < 0.26 {
            let quantity = self.rng.random_range(1..=3);
            return self.write(
                Command::HoldSeats {
                    hold_id,
                    dt_id: dt.to_string(),
                    user_id: user,
                    seats: Vec::new(),
                    ga: vec![GaPick {
                        area_id: "floor".into(),
                        quantity,
                    }],
                    hold_ttl_ms: None,
                },
                via,
            );
        }
        if roll < 0.34 {
            let tier_id = TIERS[self.rng.random_range(0..TIERS.len())].into();
            let quantity = self.rng.random_range(1..=3);
            return self.write(
                Command::HoldBestAvailable {
                    hold_id,
                    dt_id: dt.to_string(),
                    user_id: user,
                    tier_id,
                    quantity,
                    hold_ttl_ms: None,
                },
                via,
            );
        }
        if roll < 0.42 && !self.holds.is_empty() {
            let h = self.holds[self.rng.random_range(0..self.holds.len())].clone();
            return self.write(
                Command::ReleaseHold {
                    hold_id: h.hold_id,
                    user_id: h.user,
                },
                via,
            );
        }
        if roll < 0.56 && !self.holds.is_empty() {
            let h = self.holds[self.rng.random_range(0..self.holds.len())].clone();
            // Now and then the wrong amount: refused, nothing pinned.
            let amount = if self.rng.random_bool(0.08) {
                h.total + 1
            } else {
                h.total
            };
            return self.write(
                Command::StartPayment {
                    hold_id: h.hold_id,
                    user_id: h.user,
                    payment_ref: format!("p{idx}-{n}"),
                    amount_minor: amount,
                    currency: h.currency,
                },
                via,
            );
        }
        if roll < 0.63 && !self.orders.is_empty() {
            // Mostly the newest order, before the gate sees its tickets.
            let k = if self.rng.random_bool(0.7) {
                self.orders.len() - 1
            } else {
                self.rng.random_range(0..self.orders.len())
            };
            let o = self.orders[k].clone();
            return self.write(
                Command::CancelOrder {
                    order_id: o.order_id,
                    user_id: o.user,
                    reason: "changed my mind".into(),
                },
                via,
            );
        }
        if roll < 0.655 && !self.orders.is_empty() {
            // One ticket of a recent order back, while the gate may be scanning it.
            let k = if self.rng.random_bool(0.7) {
                self.orders.len() - 1
            } else {
                self.rng.random_range(0..self.orders.len())
            };
            let o = &self.orders[k];
            if !o.tickets.is_empty() {
                let ticket_id = o.tickets[self.rng.random_range(0..o.tickets.len())].clone();
                let user_id = o.user.clone();
                return self.write(Command::RefundTicket { ticket_id, user_id }, via);
            }
        }
        if roll < 0.68 && !shared.notes.is_empty() {
            // The dispatcher's half: a notification sent, mostly a recent one (others mark the
            // same ones), now and then one of unknown existence.
            let k = shared.notes.len() - 1 - self.rng.random_range(0..shared.notes.len().min(8));
            return self.write(
                Command::MarkNotificationSent {
                    notification_id: shared.notes[k].clone(),
                    channel: "email".into(),
                },
                via,
            );
        }
        if roll < 0.71 && !self.past.is_empty() {
            // A resubmission: the same key and command again.
            let (key, command) = self.past[self.rng.random_range(0..self.past.len())].clone();
            return Call::Write {
                client_id: self.client_id.clone(),
                key,
                command,
                via: None,
            };
        }
        if roll < 0.86 {
            return self.read(
                Query::SeatMap {
                    dt_id: dt.to_string(),
                },
                nodes,
            );
        }
        if roll < 0.93 && !self.past_holds.is_empty() {
            let hold_id = self.past_holds[self.rng.random_range(0..self.past_holds.len())].clone();
            return self.read(Query::GetHold { hold_id }, nodes);
        }
        if !self.orders.is_empty() {
            let order_id = self.orders[self.rng.random_range(0..self.orders.len())]
                .order_id
                .clone();
            return self.read(Query::GetOrder { order_id }, nodes);
        }
        self.read(
            Query::SeatMap {
                dt_id: dt.to_string(),
            },
            nodes,
        )
    }

    /// Learns from how `call` ended: issued tickets go to `shared` as `(dt, ticket)`, the ids
    /// an answered purchase, cancellation or refund may have minted to its notifications.
    /// `index` is the position the write took effect at, when the answer tells it.
    pub fn observe(
        &mut self,
        call: &Call,
        seen: Seen<'_>,
        index: Option<u64>,
        shared: &mut Shared,
    ) {
        let Call::Write { command, .. } = call else {
            return;
        };
        if let (Some(i), Seen::Write(Outcome::Done(d))) = (index, seen) {
            if matches!(
                d,
                Done::PurchaseConfirmed { .. }
                    | Done::OrderCanceled { .. }
                    | Done::TicketRefunded { .. }
                    | Done::DtCanceled { .. }
            ) {
                shared.learn_notes(i);
            }
        }
        let tickets = &mut shared.tickets;
        let out = match seen {
            Seen::Write(o) => Some(o),
            _ => None,
        };
        let code = |o: Option<&Outcome>| match o {
            Some(Outcome::Rejected { code, .. }) => Some(*code),
            _ => None,
        };
        match command {
            Command::HoldSeats {
                hold_id,
                user_id,
                dt_id,
                ..
            }
            | Command::HoldBestAvailable {
                hold_id,
                user_id,
                dt_id,
                ..
            } => {
                if let Some(Outcome::Done(Done::HoldPlaced {
                    total_minor,
                    currency,
                    ..
                })) = out
                {
                    if !self.holds.iter().any(|h| &h.hold_id == hold_id) {
                        self.holds.push(MyHold {
                            hold_id: hold_id.clone(),
                            dt: dt_id.clone(),
                            user: user_id.clone(),
                            total: *total_minor,
                            currency: currency.clone(),
                            payment: None,
                        });
                        self.past_holds.push(hold_id.clone());
                        if self.past_holds.len() > 16 {
                            self.past_holds.remove(0);
                        }
                    }
                }
            }
            Command::ReleaseHold { hold_id, .. }
                if matches!(out, Some(Outcome::Done(_)))
                    || matches!(
                        code(out),
                        Some(Rejection::HoldExpired | Rejection::HoldNotLive | Rejection::NotFound)
                    ) =>
            {
                self.holds.retain(|h| &h.hold_id != hold_id);
            }
            Command::StartPayment {
                hold_id,
                payment_ref,
                ..
            } => {
                let Some(h) = self.holds.iter_mut().find(|h| &h.hold_id == hold_id) else {
                    return;
                };
                match out {
                    Some(Outcome::Done(_)) => {
                        h.payment = Some(payment_ref.clone());
                        self.confirm = Some((
                            h.hold_id.clone(),
                            payment_ref.clone(),
                            h.total,
                            h.currency.clone(),
                        ));
                    }
                    Some(Outcome::Rejected {
                        code: Rejection::PaymentInProgress,
                        ..
                    }) => {
                        if let Some(p) = h.payment.clone() {
                            self.confirm =
                                Some((h.hold_id.clone(), p, h.total, h.currency.clone()));
                        }
                    }
                    Some(Outcome::Rejected {
                        code:
                            Rejection::HoldExpired
                            | Rejection::HoldNotLive
                            | Rejection::PaymentAttemptsExceeded,
                        ..
                    }) => {
                        let id = h.hold_id.clone();
                        self.holds.retain(|h| h.hold_id != id);
                    }
                    Some(_) => {}
                    // Unknown: the payment may be in flight; confirming tells (or is refused).
                    None if matches!(seen, Seen::Unknown) && self.rng.random_bool(0.5) => {
                        h.payment = Some(payment_ref.clone());
                        self.confirm = Some((
                            h.hold_id.clone(),
                            payment_ref.clone(),
                            h.total,
                            h.currency.clone(),
                        ));
                    }
                    None => {}
                }
            }
            Command::ConfirmPurchase {
                hold_id,
                order_id,
                payment_ref,
                currency,
                ..
            } => {
                let h = self.holds.iter().find(|h| &h.hold_id == hold_id).cloned();
                match out {
                    Some(Outcome::Done(Done::PurchaseConfirmed { ticket_ids, .. })) => {
                        // A resubmission's replay finds the hold gone: its tickets are known.
                        if let Some(h) = &h {
                            self.orders.push(MyOrder {
                                order_id: order_id.clone(),
                                user: h.user.clone(),
                                tickets: ticket_ids.clone(),
                            });
                            for t in ticket_ids {
                                tickets.push((h.dt.clone(), t.clone()));
                            }
                        }
                        self.holds.retain(|x| &x.hold_id != hold_id);
                    }
                    // A wrong amount is retried with the right one.
                    Some(Outcome::Rejected {
                        code: Rejection::AmountMismatch,
                        ..
                    }) => {
                        if let Some(h) = h {
                            self.confirm =
                                Some((h.hold_id, payment_ref.clone(), h.total, currency.clone()));
                        }
                    }
                    _ => self.holds.retain(|x| &x.hold_id != hold_id),
                }
            }
            Command::CancelOrder { order_id, .. } if out.is_some() => {
                self.orders.retain(|o| &o.order_id != order_id);
            }
            Command::RefundTicket { ticket_id, .. } if out.is_some() => {
                for o in &mut self.orders {
                    o.tickets.retain(|t| t != ticket_id);
                }
                self.orders.retain(|o| !o.tickets.is_empty());
            }
            _ => {}
        }
    }
}

/// The writes whose fate is still unknown at the end of a history: every logical write (client,
/// key) with no answered op and at least one unknown op, as it was sent. Resubmitting them with
/// the same key settles them: the answer is the remembered outcome and the index it took effect
/// at, or (never applied) a first application now.
pub fn unsettled_writes(lines: &[Line]) -> Vec<Call> {
    use std::collections::BTreeMap;
    // (client, key) -> (call, answered, unknown)
    let mut w: BTreeMap<(String, String), (Call, bool, bool)> = BTreeMap::new();
    let mut calls: BTreeMap<u64, Call> = BTreeMap::new();
    for l in lines {
        match l {
            Line::Invoke { op, call, .. } => {
                if let Call::Write { client_id, key, .. } = call {
                    w.entry((client_id.clone(), key.clone())).or_insert((
                        call.clone(),
                        false,
                        false,
                    ));
                    calls.insert(*op, call.clone());
                }
            }
            Line::Ok { op, .. } | Line::Info { op, .. } | Line::Fail { op, .. } => {
                if let Some(Call::Write { client_id, key, .. }) = calls.remove(op) {
                    let e = w.get_mut(&(client_id, key)).expect("invoked");
                    match l {
                        Line::Ok { .. } => e.1 = true,
                        Line::Info { .. } => e.2 = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // Invoked and never completed: unknown too.
    for call in calls.into_values() {
        if let Call::Write { client_id, key, .. } = &call {
            if let Some(e) = w.get_mut(&(client_id.clone(), key.clone())) {
                e.2 = true;
            }
        }
    }
    w.into_values()
        .filter(|(_, answered, unknown)| !answered && *unknown)
        .map(|(call, _, _)| match call {
            Call::Write {
                client_id,
                key,
                command,
                ..
            } => Call::Write {
                client_id,
                key,
                command,
                via: None,
            },
            other => other,
        })
        .collect()
}

/// The final reads of a history: every venue id written (register); every dt's seat map, every
/// hold, order and ticket the history names (sale).
pub fn final_queries(lines: &[Line]) -> Vec<Query> {
    let mut venues = BTreeSet::new();
    let mut dts = BTreeSet::new();
    let mut holds = BTreeSet::new();
    let mut orders = BTreeSet::new();
    let mut tickets = BTreeSet::new();
    for l in lines {
        match l {
            Line::Invoke {
                call: Call::Write { command, .. },
                ..
            } => match command {
                Command::CreateVenue { venue_id, .. } => {
                    venues.insert(venue_id.clone());
                }
                Command::CreateDt { dt_id, .. } => {
                    dts.insert(dt_id.clone());
                }
                Command::HoldSeats { hold_id, .. } | Command::HoldBestAvailable { hold_id, .. } => {
                    holds.insert(hold_id.clone());
                }
                Command::ConfirmPurchase { order_id, .. } => {
                    orders.insert(order_id.clone());
                }
                Command::Scan { ticket_id, .. } | Command::RefundTicket { ticket_id, .. } => {
                    tickets.insert(ticket_id.clone());
                }
                _ => {}
            },
            Line::Ok {
                ret:
                    Ret::Write {
                        outcome: Outcome::Done(Done::PurchaseConfirmed { ticket_ids, .. }),
                        ..
                    },
                ..
            } => tickets.extend(ticket_ids.iter().cloned()),
            _ => {}
        }
    }
    let mut q: Vec<Query> = venues
        .into_iter()
        .map(|venue_id| Query::GetVenue { venue_id })
        .collect();
    q.extend(dts.into_iter().map(|dt_id| Query::SeatMap { dt_id }));
    q.extend(holds.into_iter().map(|hold_id| Query::GetHold { hold_id }));
    q.extend(
        orders
            .into_iter()
            .map(|order_id| Query::GetOrder { order_id }),
    );
    q.extend(
        tickets
            .into_iter()
            .map(|ticket_id| Query::GetTicket { ticket_id }),
    );
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketd_checker::model::{Model, Now};

    #[test]
    fn the_setup_is_valid_for_the_model() {
        let mut m = Model::default();
        for (i, (key, cmd)) in sale_setup(2, 3).iter().enumerate() {
            let r = m
                .apply(i as u64 + 1, Now::default(), SETUP_CLIENT, key, cmd, None)
                .expect("modelled");
            assert!(matches!(r.outcome, Outcome::Done(_)), "{cmd:?}: {r:?}");
        }
    }

    #[test]
    fn a_client_is_a_function_of_its_seed_and_answers() {
        let calls = |seed| {
            let mut c = SaleClient::new(0, 3, seed, "c".into());
            let mut t = Shared::default();
            (0..50)
                .map(|_| {
                    let call = c.next("dt1", &t, &[1, 2, 3]);
                    c.observe(&call, Seen::Unknown, None, &mut t);
                    call
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(calls(5), calls(5));
        assert_ne!(calls(5), calls(6));
    }
}
