//! Per-seat linearizability: every reserved seat of the history, checked on its own by the
//! WGL search ([`crate::wgl`]) against a three-state register, independently of the model
//! replay.
//!
//! A seat is free, held by a hold, or sold to an order. Its ops are projections of the
//! history's ops onto it: a placed hold takes it (free -> held by h), a release gives it back
//! (held by h -> free), a purchase sells it (held by h -> sold to o), an order's cancel or the
//! refund of its ticket frees it (sold to o -> free), its dt's call-off frees it whatever it was
//! unless its ticket was used (the dt sells nothing after); a linearizable seat-map read, and a hold refused because a named seat
//! was held or sold, see its state's kind. Projecting a linearizable history onto one object
//! keeps it linearizable, so a seat whose ops admit no linearization is a real anomaly.
//!
//! An op with an unknown outcome may take effect anywhere after its invocation or not at all;
//! which seats an unknown best-available hold took comes from the final reads.
//!
//! Holds lapse when log time passes their expiry, an effect no client op shows, and log time
//! is the leader's clock (which the clock-skew fault moves by minutes). So the check covers
//! only what happened on a dt before log time could reach the first expiry `E` of its holds
//! (see [`Clock::before`]): ops that completed before that moment, and ops whose own answer shows
//! a log time below `E`, are checked as answered; writes invoked before it but answered after
//! count as unknown; everything else is left out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ticketd_store::command::{Done, Outcome, Query, QueryResult, Rejection};
use ticketd_store::types::SeatRef;
use ticketd_store::Command;

use crate::history::{Call, Cons, History, Line, Op, OpType, Ret};
use crate::logical::write_parts;
use crate::model::revealed_log_time;
use crate::report::Report;
use crate::wgl::{self, Spec, Timed};

/// What a seat is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SeatState {
    /// In the pool.
    Free,
    /// Held by this hold.
    Held(String),
    /// Sold to this order.
    Sold(String),
}

/// The kind of a seat's state, as a seat map or a refusal shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free.
    Free,
    /// Held by some hold.
    Held,
    /// Sold to some order.
    Sold,
}

/// One op on one seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatOp {
    /// A hold took it.
    Hold(String),
    /// The hold gave it back.
    Release(String),
    /// The hold's purchase sold it to the order.
    Confirm(String, String),
    /// The order's cancel (or the refund of its ticket for the seat) freed it.
    Cancel(String),
    /// Its dt was called off: free, whoever had it.
    CallOff,
    /// Its state was of this kind.
    Is(Kind),
}

/// The sequential specification of one seat.
pub struct Seat;

impl Spec for Seat {
    type State = SeatState;
    type Op = SeatOp;

    fn init(&self) -> SeatState {
        SeatState::Free
    }

    fn step(&self, s: &SeatState, op: &SeatOp) -> Option<SeatState> {
        use SeatState::*;
        match (op, s) {
            (SeatOp::Hold(h), Free) => Some(Held(h.clone())),
            (SeatOp::Release(h), Held(x)) if x == h => Some(Free),
            (SeatOp::Confirm(h, o), Held(x)) if x == h => Some(Sold(o.clone())),
            (SeatOp::Cancel(o), Sold(x)) if x == o => Some(Free),
            (SeatOp::CallOff, _) => Some(Free),
            (SeatOp::Is(k), s) => (kind(s) == *k).then(|| s.clone()),
            _ => None,
        }
    }
}

fn kind(s: &SeatState) -> Kind {
    match s {
        SeatState::Free => Kind::Free,
        SeatState::Held(_) => Kind::Held,
        SeatState::Sold(_) => Kind::Sold,
    }
}

/// A seat of a dt.
type SeatKey = (String, u32);

/// The seat a hold refusal names: "seat N is held" or "seat N is sold".
fn named_seat(code: Rejection, detail: &str) -> Option<(u32, Kind)> {
    let kind = match code {
        Rejection::SeatAlreadyHeld => Kind::Held,
        Rejection::SeatTaken => Kind::Sold,
        _ => return None,
    };
    let rest = detail.strip_prefix("seat ")?;
    let (n, tail) = rest.split_once(' ')?;
    let expected = if kind == Kind::Held {
        "is held"
    } else {
        "is sold"
    };
    (tail == expected).then_some(())?;
    Some((n.parse().ok()?, kind))
}

/// The kind of seat `i` in a seat map's packed states (two bits a seat); `None` when the
/// seat is not for sale or out of range.
fn kind_in_map(states: &[u8], i: u32) -> Option<Kind> {
    let byte = *states.get(i as usize / 4)?;
    match (byte >> ((i % 4) * 2)) & 3 {
        0 => Some(Kind::Free),
        1 => Some(Kind::Held),
        2 => Some(Kind::Sold),
        _ => None,
    }
}

fn reserved(seats: &[SeatRef]) -> Vec<u32> {
    seats
        .iter()
        .filter_map(|s| match s {
            SeatRef::Seat(i) => Some(*i),
            SeatRef::Ga(_) => None,
        })
        .collect()
}

/// The answer an op gives about the state, by the replay rule of the per-object check: a
/// replayed answer counts only for the key's first op (its own earlier attempt's outcome).
enum Answer<'a> {
    /// Answered from the state.
    Known(&'a Outcome),
    /// Unknown: may have taken effect.
    Unknown,
    /// Nothing to check (failed for sure, or a resubmission's replay).
    Skip,
}

fn answer<'a>(o: &'a Op, first_of_key: bool) -> Answer<'a> {
    match (o.typ, &o.ret) {
        (OpType::Fail, _) => Answer::Skip,
        (
            OpType::Ok,
            Some(Ret::Write {
                outcome, replayed, ..
            }),
        ) if !*replayed || first_of_key => Answer::Known(outcome),
        (OpType::Ok, _) => Answer::Skip,
        (OpType::Info, _) => Answer::Unknown,
    }
}

/// What the history says about holds and orders, whoever's op placed them.
#[derive(Default)]
struct Facts {
    /// Reserved seats of each hold (from the placing answer or the final read), by dt.
    hold_seats: HashMap<String, (String, Vec<u32>)>,
    /// Holds the final reads found (placed, whatever happened to them since).
    holds_seen: BTreeSet<String>,
    /// The hold each order was bought from.
    order_hold: HashMap<String, String>,
    /// Per dt, the earliest log time at which one of its holds lapses.
    first_expiry: BTreeMap<String, i64>,
    /// The (dt, reserved seat, order) of each ticket the final reads found.
    ticket_seat: HashMap<String, (String, u32, String)>,
    /// Seats whose ticket the final reads found used: sold for good (a call-off leaves them).
    used_seats: BTreeSet<(String, u32)>,
    /// (order, seat) of the tickets the final reads found refunded: an order's cancel leaves
    /// them (it cancels valid tickets only, and a canceled ticket is never refunded).
    refunded: BTreeSet<(String, u32)>,
}

impl Facts {
    fn expiry_seen(&mut self, dt: &str, at: i64) {
        let e = self.first_expiry.entry(dt.to_string()).or_insert(at);
        *e = (*e).min(at);
    }

    /// The dt an op is about, when it is one the seat check uses.
    fn dt_of<'a>(&'a self, o: &'a Op) -> Option<&'a str> {
        let of_hold = |h: &str| self.hold_seats.get(h).map(|(dt, _)| dt.as_str());
        match &o.call {
            Call::Write { command, .. } => match command {
                Command::HoldSeats { dt_id, .. } | Command::HoldBestAvailable { dt_id, .. } => {
                    Some(dt_id)
                }
                Command::ReleaseHold { hold_id, .. } | Command::ConfirmPurchase { hold_id, .. } => {
                    of_hold(hold_id)
                }
                Command::CancelOrder { order_id, .. } => {
                    self.order_hold.get(order_id).and_then(|h| of_hold(h))
                }
                Command::RefundTicket { ticket_id, .. } => {
                    self.ticket_seat.get(ticket_id).map(|(dt, ..)| dt.as_str())
                }
                Command::CancelDt { dt_id, .. } => Some(dt_id),
                _ => None,
            },
            Call::Read {
                query: Query::SeatMap { dt_id },
                ..
            } => Some(dt_id),
            Call::Read { .. } => None,
        }
    }
}

fn facts(h: &History) -> Facts {
    let mut f = Facts::default();
    for o in &h.ops {
        match (&o.call, &o.ret) {
            (
                Call::Write {
                    command:
                        Command::HoldSeats {
                            hold_id,
                            dt_id,
                            seats,
                            ..
                        },
                    ..
                },
                _,
            ) => {
                f.hold_seats
                    .entry(hold_id.clone())
                    .or_insert_with(|| (dt_id.clone(), seats.clone()));
            }
            (
                Call::Write {
                    command: Command::HoldBestAvailable { hold_id, dt_id, .. },
                    ..
                },
                Some(Ret::Write {
                    outcome: Outcome::Done(Done::HoldPlaced { seats, .. }),
                    ..
                }),
            ) => {
                f.hold_seats
                    .insert(hold_id.clone(), (dt_id.clone(), reserved(seats)));
            }
            _ => {}
        }
        match (&o.call, &o.ret) {
            (
                Call::Write {
                    command:
                        Command::HoldSeats { dt_id, .. } | Command::HoldBestAvailable { dt_id, .. },
                    ..
                },
                Some(Ret::Write {
                    outcome: Outcome::Done(Done::HoldPlaced { expires_at_ms, .. }),
                    ..
                }),
            ) => f.expiry_seen(dt_id, *expires_at_ms),
            (
                Call::Write {
                    command:
                        Command::ConfirmPurchase {
                            hold_id, order_id, ..
                        },
                    ..
                },
                _,
            ) => {
                f.order_hold
                    .entry(order_id.clone())
                    .or_insert_with(|| hold_id.clone());
            }
            (
                Call::Read {
                    final_read: true, ..
                },
                Some(Ret::Read {
                    result: QueryResult::Ticket(Some(t)),
                }),
            ) => {
                if let SeatRef::Seat(seat) = t.seat {
                    match t.status {
                        ticketd_store::types::TicketStatus::Used { .. } => {
                            f.used_seats.insert((t.dt_id.clone(), seat));
                        }
                        ticketd_store::types::TicketStatus::Refunded { .. } => {
                            f.refunded.insert((t.order_id.clone(), seat));
                        }
                        _ => {}
                    }
                    f.ticket_seat.insert(
                        t.ticket_id.clone(),
                        (t.dt_id.clone(), seat, t.order_id.clone()),
                    );
                }
            }
            (
                Call::Read {
                    final_read: true, ..
                },
                Some(Ret::Read {
                    result: QueryResult::Hold(Some(hold)),
                }),
            ) => {
                f.holds_seen.insert(hold.hold_id.clone());
                f.expiry_seen(&hold.dt_id, hold.expires_at_ms);
                let seats: Vec<SeatRef> = hold.items.iter().map(|i| i.seat).collect();
                f.hold_seats
                    .entry(hold.hold_id.clone())
                    .or_insert_with(|| (hold.dt_id.clone(), reserved(&seats)));
            }
            _ => {}
        }
    }
    f
}

/// The log time an op's own (first, not replayed) answer shows it was applied at.
fn revealed(o: &Op) -> Option<i64> {
    match &o.ret {
        Some(Ret::Write {
            outcome,
            replayed: false,
            ..
        }) if o.typ == OpType::Ok => revealed_log_time(outcome),
        _ => None,
    }
}

/// True when the op's own answer shows it was applied at a log time below `expiry`.
fn reveals_before(o: &Op, expiry: i64) -> bool {
    revealed(o).is_some_and(|l| l < expiry)
}

/// What the history tells about log time against the harness's clock.
struct Clock {
    /// (log time, invocation) of every op whose own answer shows the log time it was applied
    /// at.
    revealed: Vec<(i64, u64)>,
    /// An upper bound of the wall clock (ms) at history time 0; `None` when the history has a
    /// clock-skew fault (log time may then run ahead of the harness's clock).
    wall0_ms: Option<i64>,
}

impl Clock {
    fn of(h: &History) -> Self {
        let revealed: Vec<(i64, u64)> = h
            .ops
            .iter()
            .filter_map(|o| revealed(o).map(|l| (l, o.invoke_ns)))
            .collect();
        let skewed = h
            .events
            .iter()
            .any(|e| matches!(e, Line::Fault { fault, .. } if fault.contains("skew")));
        let wall0_ms = if skewed {
            None
        } else {
            revealed
                .iter()
                .map(|(l, t)| l - (t / 1_000_000) as i64)
                .min()
        };
        Clock { revealed, wall0_ms }
    }

    /// A history time (ns) before which log time was surely below `expiry`, so no hold
    /// lapsing at `expiry` or later had lapsed: the larger of two bounds.
    ///
    /// - Answers: an op that completed before an op `B` was invoked, whose answer shows log
    ///   time `L_B` below the expiry, came before `B` in the log; so the invocation of the
    ///   last such `B` is such a time.
    /// - Clocks, only when the history has no clock-skew fault: log time is the largest stamp
    ///   of a leader's clock, and the cluster runs on the harness's machine, so at history
    ///   time `t` it is at most `wall0 + t`, where `wall0` (the wall clock at history time 0)
    ///   is at most `L_B - invoke(B)` for every `B` (a request is stamped after it is sent).
    ///   Log time cannot reach the expiry before `expiry - wall0`, less a second of margin.
    fn before(&self, expiry: i64) -> u64 {
        if expiry == i64::MAX {
            return u64::MAX;
        }
        let by_answers = self
            .revealed
            .iter()
            .filter(|(l, _)| *l < expiry)
            .map(|(_, t)| *t)
            .max()
            .unwrap_or(0);
        let by_clocks = self.wall0_ms.map_or(0, |w| {
            let ms = expiry.saturating_sub(w).saturating_sub(1_000);
            u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
        });
        by_answers.max(by_clocks)
    }
}

/// The per-seat histories of `h`.
fn seat_histories(h: &History) -> BTreeMap<SeatKey, Vec<Timed<SeatOp>>> {
    let f = facts(h);
    let mut per: BTreeMap<SeatKey, Vec<Timed<SeatOp>>> = BTreeMap::new();
    // Seats some write names, per dt: the seats a seat-map read is projected onto.
    let mut touched: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let clock = Clock::of(h);
    // Per dt: the first expiry of its holds, and the history time before which none lapsed.
    let cutoffs: HashMap<&str, (i64, u64)> = f
        .first_expiry
        .iter()
        .map(|(dt, e)| (dt.as_str(), (*e, clock.before(*e))))
        .collect();
    let mut seen_keys: std::collections::HashSet<(&str, &str)> = Default::default();
    let mut reads: Vec<(&Op, &str, &[u8])> = Vec::new();
    // Call-offs: (op, dt, answered in time), projected like the reads.
    let mut call_offs: Vec<(&Op, &str, Option<u64>)> = Vec::new();
    for o in &h.ops {
        let first_of_key = match write_parts(o) {
            Some((c, k, _)) => seen_keys.insert((c, k)),
            None => false,
        };
        let Some(dt) = f.dt_of(o) else { continue };
        let (expiry, cutoff) = cutoffs.get(dt).copied().unwrap_or((i64::MAX, u64::MAX));
        if o.invoke_ns >= cutoff && !reveals_before(o, expiry) {
            continue;
        }
        // Answered before log time could reach the dt's first expiry: checked as answered.
        let late = !(o.complete_ns.is_some_and(|t| t < cutoff) || reveals_before(o, expiry));
        let ret = |known: bool| {
            if known && !late && o.typ == OpType::Ok {
                o.complete_ns
            } else {
                None
            }
        };
        let mut push = |seats: &[u32], op: SeatOp, known: bool| {
            for s in seats {
                touched.entry(dt.to_string()).or_default().insert(*s);
                per.entry((dt.to_string(), *s)).or_default().push(Timed {
                    call: o.invoke_ns,
                    ret: ret(known),
                    op: op.clone(),
                });
            }
        };
        let seats_of = |hold_id: &str| f.hold_seats.get(hold_id).map(|(_, s)| s.as_slice());
        match &o.call {
            Call::Write { command, .. } => {
                let a = answer(o, first_of_key);
                match (command, a) {
                    (_, Answer::Skip) => {}
                    (
                        Command::HoldSeats { hold_id, .. }
                        | Command::HoldBestAvailable { hold_id, .. },
                        Answer::Known(Outcome::Done(Done::HoldPlaced { seats, .. })),
                    ) => {
                        push(&reserved(seats), SeatOp::Hold(hold_id.clone()), true);
                    }
                    (
                        Command::HoldSeats { seats, .. },
                        Answer::Known(Outcome::Rejected { code, detail }),
                    ) if !late => {
                        // Seats are checked in request order: those before the named one
                        // were free, the named one held or sold.
                        if let Some((n, k)) = named_seat(*code, detail) {
                            if let Some(pos) = seats.iter().position(|s| *s == n) {
                                push(&seats[..pos], SeatOp::Is(Kind::Free), true);
                                push(&[n], SeatOp::Is(k), true);
                            }
                        }
                    }
                    (
                        Command::HoldSeats { hold_id, .. }
                        | Command::HoldBestAvailable { hold_id, .. },
                        Answer::Unknown,
                    ) if f.holds_seen.contains(hold_id) => {
                        if let Some(seats) = seats_of(hold_id) {
                            push(seats, SeatOp::Hold(hold_id.clone()), false);
                        }
                    }
                    (
                        Command::ReleaseHold { hold_id, .. },
                        a @ (Answer::Known(Outcome::Done(Done::HoldReleased { .. }))
                        | Answer::Unknown),
                    ) => {
                        if let Some(seats) = seats_of(hold_id) {
                            let known = matches!(a, Answer::Known(_));
                            push(seats, SeatOp::Release(hold_id.clone()), known);
                        }
                    }
                    (
                        Command::ConfirmPurchase {
                            hold_id, order_id, ..
                        },
                        a @ (Answer::Known(Outcome::Done(Done::PurchaseConfirmed { .. }))
                        | Answer::Unknown),
                    ) => {
                        if let Some(seats) = seats_of(hold_id) {
                            let known = matches!(a, Answer::Known(_));
                            let op = SeatOp::Confirm(hold_id.clone(), order_id.clone());
                            push(seats, op, known);
                        }
                    }
                    (
                        Command::CancelOrder { order_id, .. },
                        a @ (Answer::Known(Outcome::Done(Done::OrderCanceled { .. }))
                        | Answer::Unknown),
                    ) => {
                        if let Some(seats) = f.order_hold.get(order_id).and_then(|h| seats_of(h)) {
                            let known = matches!(a, Answer::Known(_));
                            let seats: Vec<u32> = seats
                                .iter()
                                .copied()
                                .filter(|s| !f.refunded.contains(&(order_id.clone(), *s)))
                                .collect();
                            push(&seats, SeatOp::Cancel(order_id.clone()), known);
                        }
                    }
                    (
                        Command::RefundTicket { ticket_id, .. },
                        a @ (Answer::Known(Outcome::Done(Done::TicketRefunded { .. }))
                        | Answer::Unknown),
                    ) => {
                        if let Some((_, seat, order)) = f.ticket_seat.get(ticket_id) {
                            let known = matches!(a, Answer::Known(_));
                            push(&[*seat], SeatOp::Cancel(order.clone()), known);
                        }
                    }
                    (
                        Command::CancelDt { .. },
                        a @ (Answer::Known(Outcome::Done(Done::DtCanceled { .. }))
                        | Answer::Unknown),
                    ) => call_offs.push((o, dt, ret(matches!(a, Answer::Known(_))))),
                    _ => {}
                }
            }
            Call::Read {
                consistency: Cons::Linearizable,
                ..
            } if !late => {
                if let Some(Ret::Read {
                    result: QueryResult::SeatMap(Some(m)),
                }) = &o.ret
                {
                    reads.push((o, dt, &m.seat_states));
                }
            }
            _ => {}
        }
    }
    // Call-offs, projected onto every seat of their dt that some write names, but those of
    // used tickets (a call-off cancels valid tickets only).
    for (o, dt, ret) in call_offs {
        for s in touched.get(dt).into_iter().flatten() {
            if f.used_seats.contains(&(dt.to_string(), *s)) {
                continue;
            }
            per.entry((dt.to_string(), *s)).or_default().push(Timed {
                call: o.invoke_ns,
                ret,
                op: SeatOp::CallOff,
            });
        }
    }
    // Seat-map reads, projected onto the seats some write names.
    for (o, dt, states) in reads {
        for s in touched.get(dt).into_iter().flatten() {
            if let Some(k) = kind_in_map(states, *s) {
                per.entry((dt.to_string(), *s)).or_default().push(Timed {
                    call: o.invoke_ns,
                    ret: o.complete_ns,
                    op: SeatOp::Is(k),
                });
            }
        }
    }
    per
}

/// The WGL check of every reserved seat the history's writes name.
pub fn per_seat_linearizability(h: &History, r: &mut Report, max_steps: u64) {
    for ((dt, seat), ops) in seat_histories(h) {
        r.wgl_seats += 1;
        r.wgl_seat_ops += ops.len();
        let verdict = wgl::check(&Seat, &ops, max_steps);
        r.wgl_verdict("wgl-seat", format!("dt {dt} seat {seat}"), &ops, verdict);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wgl::Verdict;
    use ticketd_store::command::SeatMapView;

    fn t(call: u64, ret: Option<u64>, op: SeatOp) -> Timed<SeatOp> {
        Timed { call, ret, op }
    }

    #[test]
    fn the_seat_spec_follows_one_seat_through_a_sale() {
        let h = vec![
            t(0, Some(2), SeatOp::Hold("h1".into())),
            t(1, Some(3), SeatOp::Is(Kind::Free)),
            t(4, Some(5), SeatOp::Is(Kind::Held)),
            t(6, Some(8), SeatOp::Confirm("h1".into(), "o1".into())),
            t(7, Some(9), SeatOp::Is(Kind::Sold)),
            t(10, Some(11), SeatOp::Cancel("o1".into())),
            t(12, None, SeatOp::Hold("h2".into())),
            t(13, Some(14), SeatOp::Is(Kind::Free)),
        ];
        assert_eq!(wgl::check(&Seat, &h, 100_000), Verdict::Linearizable);
    }

    #[test]
    fn a_seat_held_twice_or_freed_by_the_wrong_hold_is_caught() {
        let twice = vec![
            t(0, Some(1), SeatOp::Hold("h1".into())),
            t(2, Some(3), SeatOp::Hold("h2".into())),
        ];
        assert!(matches!(
            wgl::check(&Seat, &twice, 100_000),
            Verdict::NotLinearizable { .. }
        ));
        let wrong = vec![
            t(0, Some(1), SeatOp::Hold("h1".into())),
            t(2, Some(3), SeatOp::Release("h2".into())),
        ];
        assert!(matches!(
            wgl::check(&Seat, &wrong, 100_000),
            Verdict::NotLinearizable { .. }
        ));
        let stale = vec![
            t(0, Some(1), SeatOp::Hold("h1".into())),
            t(2, Some(3), SeatOp::Is(Kind::Free)),
        ];
        assert!(matches!(
            wgl::check(&Seat, &stale, 100_000),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn refusals_name_their_seat() {
        assert_eq!(
            named_seat(Rejection::SeatAlreadyHeld, "seat 17 is held"),
            Some((17, Kind::Held))
        );
        assert_eq!(
            named_seat(Rejection::SeatTaken, "seat 3 is sold"),
            Some((3, Kind::Sold))
        );
        assert_eq!(named_seat(Rejection::SeatTaken, "seat 3 is held"), None);
        assert_eq!(
            named_seat(Rejection::NotEnoughSeats, "seat 3 is held"),
            None
        );
        // Seat 5 of a map: byte 1, bits 2-3.
        let states = [0b0000_0000, 0b0000_1000];
        assert_eq!(kind_in_map(&states, 5), Some(Kind::Sold));
        assert_eq!(kind_in_map(&states, 4), Some(Kind::Free));
        assert_eq!(kind_in_map(&states, 40), None);
    }

    fn op(id: u64, t0: u64, t1: u64, call: Call, ret: Ret) -> Op {
        Op {
            op: id,
            process: id,
            call,
            invoke_ns: t0,
            complete_ns: Some(t1),
            typ: OpType::Ok,
            ret: Some(ret),
            index: Some(id),
            error: None,
        }
    }

    fn write(key: &str, command: Command) -> Call {
        Call::Write {
            client_id: "c".into(),
            key: key.into(),
            command,
            via: None,
        }
    }

    fn done(d: Done) -> Ret {
        Ret::Write {
            outcome: Outcome::Done(d),
            effect_index: 0,
            replayed: false,
        }
    }

    fn hold(h: &str, seat: u32) -> Command {
        Command::HoldSeats {
            hold_id: h.into(),
            dt_id: "d".into(),
            user_id: "u".into(),
            seats: vec![seat],
            ga: vec![],
            hold_ttl_ms: None,
        }
    }

    fn placed(h: &str, seat: u32) -> Ret {
        done(Done::HoldPlaced {
            hold_id: h.into(),
            seats: vec![SeatRef::Seat(seat)],
            total_minor: 1,
            currency: "EUR".into(),
            expires_at_ms: 0,
        })
    }

    fn map_read(states: Vec<u8>) -> (Call, Ret) {
        (
            Call::Read {
                query: Query::SeatMap { dt_id: "d".into() },
                consistency: Cons::Linearizable,
                node: None,
                final_read: false,
            },
            Ret::Read {
                result: QueryResult::SeatMap(Some(SeatMapView {
                    dt_id: "d".into(),
                    venue_id: "v".into(),
                    tiers: vec![],
                    ga: vec![],
                    seat_count: 4,
                    seat_states: states,
                    seat_tiers: vec![],
                })),
            },
        )
    }

    #[test]
    fn a_history_that_sells_one_seat_twice_fails_and_its_fix_passes() {
        // Two holds of seat 2, one after the other, both placed: no linearization.
        let mut h = History::default();
        h.ops
            .push(op(1, 0, 10, write("k1", hold("h1", 2)), placed("h1", 2)));
        h.ops
            .push(op(2, 20, 30, write("k2", hold("h2", 2)), placed("h2", 2)));
        let mut r = Report::default();
        per_seat_linearizability(&h, &mut r, 100_000);
        assert_eq!(r.wgl_seats, 1);
        assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
        assert_eq!(r.anomalies[0].checker, "wgl-seat");

        // The second hold refused as held, and a map read in between that sees it held.
        let mut h = History::default();
        h.ops
            .push(op(1, 0, 10, write("k1", hold("h1", 2)), placed("h1", 2)));
        let (call, ret) = map_read(vec![0b0001_0000]);
        h.ops.push(op(2, 11, 12, call, ret));
        let refused = Ret::Write {
            outcome: Outcome::Rejected {
                code: Rejection::SeatAlreadyHeld,
                detail: "seat 2 is held".into(),
            },
            effect_index: 0,
            replayed: false,
        };
        h.ops
            .push(op(3, 20, 30, write("k2", hold("h2", 2)), refused));
        let mut r = Report::default();
        per_seat_linearizability(&h, &mut r, 100_000);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);

        // A map read after the hold that still sees the seat free: stale.
        let mut h = History::default();
        h.ops
            .push(op(1, 0, 10, write("k1", hold("h1", 2)), placed("h1", 2)));
        let (call, ret) = map_read(vec![0]);
        h.ops.push(op(2, 11, 12, call, ret));
        let mut r = Report::default();
        per_seat_linearizability(&h, &mut r, 100_000);
        assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
    }
}
