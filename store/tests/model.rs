//! Property test: random command sequences (many users contending for the same seats, payments,
//! expiries, cancels, refunds, scans, duplicate and reused idempotency keys, restarts) against a
//! small independent reference model. After every entry the harness checks the invariants and
//! the write-through; the model checks every outcome. With the `rocksdb` feature the same log
//! is replayed onto RocksDB and must end with the same digest.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use ticketd_store::command::Done;
use ticketd_store::types::{ScanVerdict, SeatRef};
use ticketd_store::{Command, Outcome, Rejection, Reply};

const SEATS: u32 = 15;
const HOLD_IDS: u8 = 40;

#[derive(Debug, Clone)]
enum Op {
    Hold {
        h: u8,
        u: u8,
        seats: Vec<u32>,
    },
    Best {
        h: u8,
        u: u8,
        silver: bool,
        n: u32,
    },
    Release {
        h: u8,
        u: u8,
    },
    StartPay {
        h: u8,
        u: u8,
        attempt: u8,
        wrong: bool,
    },
    Confirm {
        h: u8,
        attempt: u8,
    },
    Fail {
        h: u8,
        attempt: u8,
    },
    Cancel {
        h: u8,
        u: u8,
    },
    Refund {
        h: u8,
        k: u8,
        u: u8,
    },
    Scan {
        h: u8,
        k: u8,
        gate: u8,
    },
    Advance {
        minutes: i64,
    },
    Replay {
        i: usize,
    },
    ReuseKey {
        i: usize,
        h: u8,
    },
    Reopen,
}

/// Ops are generated with selectors: `h` picks among existing holds (or purchased ones, for
/// ticket ops) and `u` 0 means "the owner", so that most ops reach deep into the state while
/// some still hit missing objects and other users. [`resolve`] turns selectors into ids.
fn op() -> impl Strategy<Value = Op> {
    let h = 0..HOLD_IDS;
    let u = prop_oneof![4 => Just(0u8), 1 => 1u8..4];
    prop_oneof![
        6 => (h.clone(), 1u8..4, prop::collection::btree_set(0..SEATS + 1, 1..4))
            .prop_map(|(h, u, s)| Op::Hold { h, u, seats: s.into_iter().collect() }),
        3 => (h.clone(), 1u8..4, any::<bool>(), 1u32..5)
            .prop_map(|(h, u, silver, n)| Op::Best { h, u, silver, n }),
        2 => (h.clone(), u.clone()).prop_map(|(h, u)| Op::Release { h, u }),
        6 => (h.clone(), u.clone(), 0u8..4, prop::bool::weighted(0.1))
            .prop_map(|(h, u, attempt, wrong)| Op::StartPay { h, u, attempt, wrong }),
        6 => (h.clone(), 0u8..4).prop_map(|(h, attempt)| Op::Confirm { h, attempt }),
        1 => (h.clone(), 0u8..4).prop_map(|(h, attempt)| Op::Fail { h, attempt }),
        1 => (h.clone(), u.clone()).prop_map(|(h, u)| Op::Cancel { h, u }),
        2 => (h.clone(), 0u8..4, u.clone()).prop_map(|(h, k, u)| Op::Refund { h, k, u }),
        3 => (h.clone(), 0u8..4, 0u8..2).prop_map(|(h, k, gate)| Op::Scan { h, k, gate }),
        2 => (0i64..12).prop_map(|minutes| Op::Advance { minutes }),
        2 => any::<usize>().prop_map(|i| Op::Replay { i }),
        1 => (any::<usize>(), h).prop_map(|(i, h)| Op::ReuseKey { i, h }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Seat {
    Free,
    Held,
    Sold,
}

#[derive(Debug, Clone, PartialEq)]
enum HState {
    Live,
    Released,
    Expired,
    Purchased,
}

#[derive(Debug, Clone)]
struct MHold {
    user: u8,
    items: Vec<SeatRef>,
    total: i64,
    expires: i64,
    pinned: Option<i64>,
    pending: Option<String>,
    attempts: u8,
    state: HState,
}

impl MHold {
    fn expiry(&self) -> i64 {
        self.pinned.map_or(self.expires, |p| p.max(self.expires))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TState {
    Valid,
    Used(i64, String),
    Canceled(i64),
    Refunded(i64),
}

#[derive(Debug, Clone)]
struct MTicket {
    user: u8,
    seat: SeatRef,
    state: TState,
}

#[derive(Debug, Clone, PartialEq)]
enum PState {
    Pending,
    Done,
    Failed,
}

/// The reference: seats, GA places, holds, payments, tickets, orders; nothing derived.
#[derive(Debug)]
struct Model {
    now: i64,
    seats: Vec<Seat>,
    floor_taken: u32,
    holds: BTreeMap<u8, MHold>,
    payments: BTreeMap<String, (u8, PState)>,
    orders: BTreeMap<u8, (u8, bool)>,
    tickets: BTreeMap<String, MTicket>,
}

fn gold(seat: u32) -> bool {
    seat < 10
}

fn price(r: SeatRef) -> i64 {
    match r {
        SeatRef::Seat(s) if gold(s) => 11_000,
        _ => 5_500,
    }
}

type Expect = Result<(), Rejection>;

impl Model {
    fn new() -> Self {
        Model {
            now: T0,
            seats: vec![Seat::Free; SEATS as usize],
            floor_taken: 0,
            holds: BTreeMap::new(),
            payments: BTreeMap::new(),
            orders: BTreeMap::new(),
            tickets: BTreeMap::new(),
        }
    }

    /// Sets a seat's state; for a GA place only a move back to free changes the count (a
    /// place is counted taken from hold to sale).
    fn set(&mut self, r: SeatRef, to: Seat) {
        match r {
            SeatRef::Seat(s) => self.seats[s as usize] = to,
            SeatRef::Ga(_) if to == Seat::Free => self.floor_taken -= 1,
            SeatRef::Ga(_) => {}
        }
    }

    fn user_seats(&self, u: u8) -> usize {
        let held: usize = self
            .holds
            .values()
            .filter(|h| h.user == u && h.state == HState::Live)
            .map(|h| h.items.len())
            .sum();
        let owned = self
            .tickets
            .values()
            .filter(|t| t.user == u && matches!(t.state, TState::Valid | TState::Used(..)))
            .count();
        held + owned
    }

    /// Expires due holds: what every entry does first. Returns how many.
    fn expire(&mut self) -> u32 {
        let due: Vec<u8> = self
            .holds
            .iter()
            .filter(|(_, h)| h.state == HState::Live && h.expiry() <= self.now)
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            self.end(*id, HState::Expired);
        }
        due.len() as u32
    }

    fn end(&mut self, id: u8, state: HState) {
        let h = self.holds.get_mut(&id).unwrap();
        h.state = state;
        h.pinned = None;
        let items = h.items.clone();
        if let Some(p) = h.pending.take() {
            self.payments.get_mut(&p).unwrap().1 = PState::Failed;
        }
        for r in items {
            self.set(r, Seat::Free);
        }
    }

    fn preflight(&self, h: u8, u: u8, n: usize) -> Expect {
        if self.holds.contains_key(&h) {
            return Err(Rejection::AlreadyExists);
        }
        if n > 10 {
            return Err(Rejection::HoldLimitExceeded);
        }
        if self.user_seats(u) + n > 10 {
            return Err(Rejection::UserLimitExceeded);
        }
        Ok(())
    }

    fn live(&self, h: u8, u: Option<u8>) -> Result<&MHold, Rejection> {
        let hold = self.holds.get(&h).ok_or(Rejection::NotFound)?;
        if u.is_some_and(|u| u != hold.user) {
            return Err(Rejection::NotOwner);
        }
        match hold.state {
            HState::Live => Ok(hold),
            HState::Expired => Err(Rejection::HoldExpired),
            _ => Err(Rejection::HoldNotLive),
        }
    }

    fn place(&mut self, h: u8, u: u8, items: Vec<SeatRef>) {
        for r in &items {
            match r {
                SeatRef::Seat(s) => self.seats[*s as usize] = Seat::Held,
                SeatRef::Ga(_) => self.floor_taken += 1,
            }
        }
        let total = items.iter().map(|r| price(*r)).sum();
        self.holds.insert(
            h,
            MHold {
                user: u,
                items,
                total,
                expires: self.now + 10 * MIN_MS,
                pinned: None,
                pending: None,
                attempts: 0,
                state: HState::Live,
            },
        );
    }

    /// Predicts (and applies) one op; `got` is the machine's outcome, needed where the model
    /// leaves a choice to the machine (which seats best-available picks).
    fn step(&mut self, op: &Op, got: &Outcome) -> Expect {
        match op {
            Op::Hold { h, u, seats } => {
                self.preflight(*h, *u, seats.len())?;
                for s in seats {
                    match self.seats.get(*s as usize) {
                        None => return Err(Rejection::SeatNotForSale),
                        Some(Seat::Held) => return Err(Rejection::SeatAlreadyHeld),
                        Some(Seat::Sold) => return Err(Rejection::SeatTaken),
                        Some(Seat::Free) => {}
                    }
                }
                self.place(*h, *u, seats.iter().map(|s| SeatRef::Seat(*s)).collect());
                Ok(())
            }
            Op::Best { h, u, silver, n } => {
                self.preflight(*h, *u, *n as usize)?;
                let free_seats = (0..SEATS)
                    .filter(|s| gold(*s) != *silver && self.seats[*s as usize] == Seat::Free)
                    .count() as u32;
                let free = free_seats + if *silver { 5 - self.floor_taken } else { 0 };
                if free < *n {
                    return Err(Rejection::NotEnoughSeats);
                }
                let Outcome::Done(Done::HoldPlaced { seats, .. }) = got else {
                    return Ok(()); // The comparison of codes reports the difference.
                };
                assert_eq!(seats.len(), *n as usize);
                for r in seats {
                    match r {
                        SeatRef::Seat(s) => {
                            assert_eq!(gold(*s), !silver, "seat {s} of another tier");
                            assert_eq!(self.seats[*s as usize], Seat::Free, "seat {s} not free");
                        }
                        SeatRef::Ga(_) => {
                            assert!(*silver);
                            // Places come only after every free seat of the tier.
                            assert!(seats.len() as u32 > free_seats);
                        }
                    }
                }
                self.place(*h, *u, seats.clone());
                Ok(())
            }
            Op::Release { h, u } => {
                let hold = self.live(*h, Some(*u))?;
                if hold.pending.is_some() {
                    return Err(Rejection::PaymentInProgress);
                }
                self.end(*h, HState::Released);
                Ok(())
            }
            Op::StartPay {
                h,
                u,
                attempt,
                wrong,
            } => {
                let pay = format!("p{h}-{attempt}");
                let hold = self.live(*h, Some(*u))?;
                if hold.pending.is_some() {
                    return Err(Rejection::PaymentInProgress);
                }
                if self.payments.contains_key(&pay) {
                    return Err(Rejection::AlreadyExists);
                }
                if hold.attempts >= 3 {
                    return Err(Rejection::PaymentAttemptsExceeded);
                }
                if *wrong {
                    return Err(Rejection::AmountMismatch);
                }
                let now = self.now;
                let hold = self.holds.get_mut(h).unwrap();
                hold.pinned = Some(now + 10 * MIN_MS);
                hold.pending = Some(pay.clone());
                hold.attempts += 1;
                self.payments.insert(pay, (*h, PState::Pending));
                Ok(())
            }
            Op::Confirm { h, attempt } => {
                let pay = format!("p{h}-{attempt}");
                let hold = self.live(*h, None)?.clone();
                if hold.pending.as_ref() != Some(&pay) {
                    return Err(Rejection::PaymentNotAuthorized);
                }
                for (k, r) in hold.items.iter().enumerate() {
                    if let SeatRef::Seat(s) = r {
                        self.seats[*s as usize] = Seat::Sold;
                    }
                    self.tickets.insert(
                        format!("o{h}-{}", k + 1),
                        MTicket {
                            user: hold.user,
                            seat: *r,
                            state: TState::Valid,
                        },
                    );
                }
                let m = self.holds.get_mut(h).unwrap();
                m.state = HState::Purchased;
                m.pending = None;
                m.pinned = None;
                self.payments.get_mut(&pay).unwrap().1 = PState::Done;
                self.orders.insert(*h, (hold.user, false));
                Ok(())
            }
            Op::Fail { h, attempt } => {
                let pay = format!("p{h}-{attempt}");
                let (ph, st) = self.payments.get(&pay).ok_or(Rejection::NotFound)?;
                if ph != h || *st != PState::Pending {
                    return Err(Rejection::InvalidState);
                }
                self.payments.get_mut(&pay).unwrap().1 = PState::Failed;
                let hold = self.holds.get_mut(h).unwrap();
                hold.pending = None;
                hold.pinned = None;
                self.expire();
                Ok(())
            }
            Op::Cancel { h, u } => {
                let (owner, canceled) = *self.orders.get(h).ok_or(Rejection::NotFound)?;
                if owner != *u {
                    return Err(Rejection::NotOwner);
                }
                let mine: Vec<String> = self
                    .tickets
                    .keys()
                    .filter(|t| t.starts_with(&format!("o{h}-")))
                    .cloned()
                    .collect();
                let all_refunded = mine
                    .iter()
                    .all(|t| matches!(self.tickets[t].state, TState::Refunded(_)));
                if canceled || all_refunded {
                    return Err(Rejection::OrderNotCancelable);
                }
                if mine
                    .iter()
                    .any(|t| matches!(self.tickets[t].state, TState::Used(..)))
                {
                    return Err(Rejection::OrderNotCancelable);
                }
                for t in mine {
                    let now = self.now;
                    let tk = self.tickets.get_mut(&t).unwrap();
                    if tk.state == TState::Valid {
                        tk.state = TState::Canceled(now);
                        let seat = tk.seat;
                        self.set(seat, Seat::Free);
                    }
                }
                self.orders.get_mut(h).unwrap().1 = true;
                Ok(())
            }
            Op::Refund { h, k, u } => {
                let id = format!("o{h}-{}", k + 1);
                let now = self.now;
                let t = self.tickets.get_mut(&id).ok_or(Rejection::NotFound)?;
                if t.user != *u {
                    return Err(Rejection::NotOwner);
                }
                if t.state != TState::Valid {
                    return Err(Rejection::TicketNotRefundable);
                }
                t.state = TState::Refunded(now);
                let seat = t.seat;
                self.set(seat, Seat::Free);
                Ok(())
            }
            Op::Scan { h, k, gate } => {
                let id = format!("o{h}-{}", k + 1);
                let gate = format!("g{gate}");
                let want = match self.tickets.get_mut(&id) {
                    None => ScanVerdict::Unknown,
                    Some(t) => match &t.state {
                        TState::Valid => {
                            t.state = TState::Used(self.now, gate);
                            ScanVerdict::Admitted
                        }
                        TState::Used(at, g) => ScanVerdict::AlreadyUsed {
                            at_ms: *at,
                            gate: g.clone(),
                        },
                        TState::Canceled(at) => ScanVerdict::Canceled { at_ms: *at },
                        TState::Refunded(at) => ScanVerdict::Refunded { at_ms: *at },
                    },
                };
                match got {
                    Outcome::Done(Done::Scanned { verdict, .. }) => assert_eq!(verdict, &want),
                    other => panic!("scan answered {other:?}"),
                }
                Ok(())
            }
            Op::Advance { .. } | Op::Replay { .. } | Op::ReuseKey { .. } | Op::Reopen => Ok(()),
        }
    }
}

fn command(op: &Op, m: &Model) -> Command {
    let hold_id = |h: &u8| format!("h{h}");
    let user = |u: &u8| format!("u{u}");
    match op {
        Op::Hold { h, u, seats } => hold(&hold_id(h), &user(u), seats),
        Op::Best { h, u, silver, n } => best(
            &hold_id(h),
            &user(u),
            if *silver { "silver" } else { "gold" },
            *n,
        ),
        Op::Release { h, u } => Command::ReleaseHold {
            hold_id: hold_id(h),
            user_id: user(u),
        },
        Op::StartPay {
            h,
            u,
            attempt,
            wrong,
        } => {
            let total = m.holds.get(h).map_or(0, |x| x.total);
            start_payment(
                &hold_id(h),
                &user(u),
                &format!("p{h}-{attempt}"),
                total + i64::from(*wrong),
            )
        }
        Op::Confirm { h, attempt } => {
            let total = m.holds.get(h).map_or(0, |x| x.total);
            confirm(
                &hold_id(h),
                &format!("o{h}"),
                &format!("p{h}-{attempt}"),
                total,
            )
        }
        Op::Fail { h, attempt } => Command::PaymentFailed {
            hold_id: hold_id(h),
            payment_ref: format!("p{h}-{attempt}"),
            reason: "declined".into(),
        },
        Op::Cancel { h, u } => Command::CancelOrder {
            order_id: format!("o{h}"),
            user_id: user(u),
            reason: "r".into(),
        },
        Op::Refund { h, k, u } => Command::RefundTicket {
            ticket_id: format!("o{h}-{}", k + 1),
            user_id: user(u),
        },
        Op::Scan { h, k, gate } => Command::Scan {
            ticket_id: format!("o{h}-{}", k + 1),
            dt_id: "d1".into(),
            gate: format!("g{gate}"),
        },
        Op::Advance { .. } => Command::ExpireHolds { up_to_ms: m.now },
        Op::Replay { .. } | Op::ReuseKey { .. } | Op::Reopen => unreachable!(),
    }
}

fn code(o: &Outcome) -> Result<(), Rejection> {
    match o {
        Outcome::Done(_) => Ok(()),
        Outcome::Rejected { code, .. } => Err(*code),
    }
}

/// Turns an op's selectors into ids against the model's state.
fn resolve(op: &Op, m: &Model, fresh: &mut u8) -> Op {
    // `want`: the state to prefer (most of the time), or None for any hold.
    let pick = |sel: u8, want: Option<HState>| -> u8 {
        let want = want.filter(|_| sel % 5 != 4);
        let ids: Vec<u8> = m
            .holds
            .iter()
            .filter(|(_, h)| want.as_ref().is_none_or(|w| &h.state == w))
            .map(|(id, _)| *id)
            .collect();
        match ids.len() {
            0 => 250,
            n if sel as usize % 8 == 7 => 250 - (n as u8 % 3),
            n => ids[sel as usize % n],
        }
    };
    let who = |h: u8, u: u8| -> u8 {
        match (u, m.holds.get(&h)) {
            (0, Some(hold)) => hold.user,
            (0, None) => 1,
            (u, _) => u,
        }
    };
    let new_hold = |sel: u8, fresh: &mut u8| -> u8 {
        // One in ten reuses an existing id (ALREADY_EXISTS).
        match sel % 10 {
            0 if !m.holds.is_empty() => pick(sel / 10, None),
            _ => {
                *fresh += 1;
                *fresh
            }
        }
    };
    match op.clone() {
        Op::Hold { h, u, seats } => Op::Hold {
            h: new_hold(h, fresh),
            u,
            seats,
        },
        Op::Best { h, u, silver, n } => Op::Best {
            h: new_hold(h, fresh),
            u,
            silver,
            n,
        },
        Op::Release { h, u } => {
            let h = pick(h, Some(HState::Live));
            Op::Release { h, u: who(h, u) }
        }
        Op::StartPay {
            h,
            u,
            attempt,
            wrong,
        } => {
            let h = pick(h, Some(HState::Live));
            let next = m.holds.get(&h).map_or(0, |x| x.attempts);
            Op::StartPay {
                h,
                u: who(h, u),
                attempt: if attempt == 0 { attempt } else { next },
                wrong,
            }
        }
        Op::Confirm { h, attempt } => {
            let h = pick(h, Some(HState::Live));
            let pending = m.holds.get(&h).and_then(|x| x.pending.clone());
            let attempt = match pending {
                Some(p) if attempt != 0 => p.rsplit('-').next().unwrap().parse().unwrap(),
                _ => attempt,
            };
            Op::Confirm { h, attempt }
        }
        Op::Fail { h, attempt } => {
            let h = pick(h, Some(HState::Live));
            let next = m.holds.get(&h).map_or(0, |x| x.attempts.saturating_sub(1));
            Op::Fail {
                h,
                attempt: if attempt == 0 { attempt } else { next },
            }
        }
        Op::Cancel { h, u } => {
            let h = pick(h, Some(HState::Purchased));
            Op::Cancel { h, u: who(h, u) }
        }
        Op::Refund { h, k, u } => {
            let h = pick(h, Some(HState::Purchased));
            Op::Refund { h, k, u: who(h, u) }
        }
        Op::Scan { h, k, gate } => Op::Scan {
            h: pick(h, Some(HState::Purchased)),
            k,
            gate,
        },
        other => other,
    }
}

/// Runs the ops; returns the harness for further checks.
fn run(ops: &[Op]) -> H {
    let mut h = H::show();
    let mut model = Model::new();
    // (client, key, command, first reply) of every modelled write.
    let mut sent: Vec<(String, Command, Reply)> = Vec::new();
    let mut fresh = 0u8;
    for (n, op) in ops.iter().enumerate() {
        let op = &resolve(op, &model, &mut fresh);
        match op {
            Op::Reopen => {
                h.reopen();
                continue;
            }
            Op::Replay { i } if !sent.is_empty() => {
                let (key, cmd, first) = sent[i % sent.len()].clone();
                let again = h.apply_as("prop", &key, cmd);
                assert!(again.replayed, "step {n}: {op:?}");
                assert_eq!(again.outcome, first.outcome, "step {n}: replay differs");
                assert_eq!(again.index, first.index);
                model.now = h.now;
                model.expire();
                continue;
            }
            Op::ReuseKey { i, h: hid } if !sent.is_empty() => {
                let (key, cmd, _) = sent[i % sent.len()].clone();
                let other = Command::ReleaseHold {
                    hold_id: format!("h{hid}"),
                    user_id: "u9".into(),
                };
                if other == cmd {
                    continue;
                }
                let r = h.apply_as("prop", &key, other);
                assert_eq!(code(&r.outcome), Err(Rejection::IdempotencyKeyReused));
                model.now = h.now;
                model.expire();
                continue;
            }
            Op::Replay { .. } | Op::ReuseKey { .. } => continue,
            Op::Advance { minutes } => h.now += minutes * MIN_MS,
            _ => {}
        }
        model.now = h.now;
        let expired = model.expire();
        let cmd = command(op, &model);
        let key = format!("key-{n}");
        let reply = h.apply_as("prop", &key, cmd.clone());
        let want = model.step(op, &reply.outcome);
        assert_eq!(
            code(&reply.outcome),
            want,
            "step {n}: {op:?} answered {:?}",
            reply.outcome
        );
        if let Op::Advance { .. } = op {
            assert_eq!(
                reply.outcome,
                Outcome::Done(Done::HoldsExpired { count: expired })
            );
        }
        sent.push((key, cmd, reply));
    }
    // The model's seats agree with the machine's seat map.
    let map = h.seat_map("d1");
    for s in 0..SEATS as usize {
        let st = (map.seat_states[s / 4] >> (2 * (s % 4))) & 3;
        let want = match model.seats[s] {
            Seat::Free => 0,
            Seat::Held => 1,
            Seat::Sold => 2,
        };
        assert_eq!(st, want, "seat {s}");
    }
    assert_eq!(map.ga[0].available, 5 - model.floor_taken);
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_match_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let h = run(&ops);
        h.m.check_invariants().unwrap();
    }
}

/// The log of `h` applied with several requests per entry (consecutive runs of the sizes in
/// `cuts`) gives every request the outcome it got alone in its entry, the same seats, the same
/// pending notifications (so none shares an id with another) and a state that passes every
/// invariant, also after a reload.
fn batched_like_single(h: &H, cuts: &[usize]) {
    use ticketd_store::{Backend, Machine, MemBackend, Query, QueryResult, WriteSet};
    let single = MemBackend::new();
    let mut one = Machine::open(&single).unwrap();
    let batched = MemBackend::new();
    let mut many = Machine::open(&batched).unwrap();
    let reqs: Vec<_> = h.log.iter().map(|(_, r)| r.clone()).collect();
    let mut at = 0;
    let mut index = 0;
    let mut cut = cuts.iter().cycle();
    while at < reqs.len() {
        let n = (*cut.next().unwrap()).min(reqs.len() - at);
        index += 1;
        let mut ws = WriteSet::new();
        let got = many.apply_batch(index, &reqs[at..at + n], &mut ws);
        batched.write(&ws).unwrap();
        assert_eq!(got.len(), n);
        for (seq, (req, b)) in reqs[at..at + n].iter().zip(&got).enumerate() {
            let mut ws = WriteSet::new();
            let a = one.apply((at + seq + 1) as u64, req, &mut ws);
            single.write(&ws).unwrap();
            assert_eq!(
                b.outcome,
                a.outcome,
                "request {} ({:?})",
                at + seq,
                req.command
            );
            if !b.replayed {
                assert_eq!((b.index, b.seq), (index, seq as u32));
            }
        }
        at += n;
    }
    many.check_invariants().unwrap();
    Machine::open(&batched).unwrap().check_invariants().unwrap();
    let q = Query::SeatMap { dt_id: "d1".into() };
    assert_eq!(
        format!("{:?}", many.query(&q)),
        format!("{:?}", one.query(&q))
    );
    let due = Query::DueNotifications {
        up_to_ms: i64::MAX,
        after: None,
        limit: 10_000,
    };
    let ids = |m: &Machine| match m.query(&due) {
        QueryResult::Notifications(v) => v.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ids(&many), ids(&one), "pending notifications");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn entries_of_many_requests_apply_like_entries_of_one(
        ops in prop::collection::vec(op(), 1..80),
        cuts in prop::collection::vec(1usize..8, 1..16),
    ) {
        let h = run(&ops);
        batched_like_single(&h, &cuts);
    }
}

#[cfg(feature = "rocksdb")]
mod rocks {
    use super::*;
    use std::sync::Arc;
    use ticketd_store::{Backend, Machine, RocksBackend, WriteSet, COLUMN_FAMILIES};

    fn open(dir: &std::path::Path) -> RocksBackend {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&opts, dir, COLUMN_FAMILIES).unwrap();
        RocksBackend::new(Arc::new(db))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn rocksdb_and_memory_end_in_the_same_state(ops in prop::collection::vec(op(), 1..80)) {
            let h = run(&ops);
            let dir = tempfile::tempdir().unwrap();
            {
                let rocks = open(dir.path());
                let mut m = Machine::open(&rocks).unwrap();
                for (index, req) in &h.log {
                    let mut ws = WriteSet::new();
                    m.apply(*index, req, &mut ws);
                    rocks.write(&ws).unwrap();
                }
                prop_assert_eq!(m.digest(), h.m.digest());
                prop_assert_eq!(backend_contents(&rocks), backend_contents(&h.backend));
            }
            // And after a restart on RocksDB.
            let rocks = open(dir.path());
            prop_assert_eq!(Machine::open(&rocks).unwrap().digest(), h.m.digest());
        }
    }
}
