//! One client of the sale workload: a buyer, or a scanner at its own gate, and what it
//! remembers of its holds and orders.

use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ticketd_store::command::{Done, GaPick};
use ticketd_store::{Command, Outcome, Query, Rejection};

use ticketd_checker::history::{Call, Cons};

use crate::seen::Seen;
use crate::setup::{dt_id, users_of, SECTION_A, SECTION_B, TIERS};
use crate::shared::Shared;

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
