//! The seat-sale invariants, from answers and final reads (no model).

use std::collections::BTreeMap;

use ticketd_store::command::{Done, SeatMapView};
use ticketd_store::types::{
    Hold, HoldStatus, OrderStatus, ScanVerdict, SeatRef, Ticket, TicketStatus,
};
use ticketd_store::{Command, Outcome, Query, QueryResult};

use crate::history::{entry_of, Call, History, Ret};
use crate::logical::logical_writes;
use crate::report::Report;

/// The latest final read of each query, by the query's debug form.
pub(crate) fn final_reads(h: &History) -> BTreeMap<String, (&Query, &QueryResult)> {
    let mut out = BTreeMap::new();
    for o in &h.ops {
        if let (
            Call::Read {
                query,
                final_read: true,
                ..
            },
            Some(Ret::Read { result }),
        ) = (&o.call, &o.ret)
        {
            out.insert(format!("{query:?}"), (query, result));
        }
    }
    out
}

/// The seat-sale invariants, from answers and final reads (no model).
///
/// - **one object per idempotency key**: no hold or order id is created by two keys, no hold
///   is purchased twice;
/// - **no seat sold twice**: in log-index order of the answers, a seat is sold again only after
///   the order that had it was canceled; after healing, no seat has two valid or used tickets
///   and no GA area more than its capacity;
/// - **conservation per tier**: every seat map read adds up (available + held + sold =
///   capacity, and the per-seat states and GA counts agree with the tier counts); after
///   healing, sold = the tier's valid and used tickets and held = the tier's places in live
///   holds;
/// - **acknowledged objects present after healing**: every acknowledged hold, order (at the
///   index it was acknowledged at, with its tickets), ticket, cancel and admission;
/// - **a ticket admitted at most once**: by the answers, and by each ticket's scan record.
pub fn sale_invariants(h: &History, r: &mut Report) {
    let mut scratch = Report::default();
    let logical = logical_writes(h, &mut scratch);
    let finals = final_reads(h);
    // (hold) -> (dt, seats, key, index) of the placing answer.
    type Placed<'a> = (&'a str, Vec<SeatRef>, (&'a str, &'a str), u64);
    let mut holds: BTreeMap<&str, Placed> = BTreeMap::new();
    // (order) -> (hold, tickets, key, index).
    type Purchase<'a> = (&'a str, Vec<String>, (&'a str, &'a str), u64);
    let mut orders: BTreeMap<&str, Purchase> = BTreeMap::new();
    let mut cancels: BTreeMap<&str, u64> = BTreeMap::new();
    // (ticket) -> index of the answered refund.
    let mut refunds: BTreeMap<&str, u64> = BTreeMap::new();
    // (dt) -> index of the answered call-off.
    let mut dt_cancels: BTreeMap<&str, u64> = BTreeMap::new();
    // (ticket) -> the (key, index) of every admitting answer.
    type Admits<'a> = Vec<((&'a str, &'a str), u64)>;
    let mut admits: BTreeMap<&str, Admits> = BTreeMap::new();
    // Every answered write counts: an answer says it took effect at its index, so it is
    // present after healing whoever was told.
    for (k, l) in &logical {
        let Some((i, Outcome::Done(d), _)) = &l.answer else {
            continue;
        };
        match (l.command, d) {
            (
                Command::HoldSeats { dt_id, .. } | Command::HoldBestAvailable { dt_id, .. },
                Done::HoldPlaced { hold_id, seats, .. },
            ) => {
                if let Some((_, _, k0, i0)) = holds.get(hold_id.as_str()) {
                    r.push(
                        "invariants",
                        "object-created-twice",
                        format!(
                            "hold {hold_id} placed by key {k0:?} at {i0} and by key {k:?} at {i}"
                        ),
                    );
                }
                holds.insert(hold_id, (dt_id, seats.clone(), *k, *i));
            }
            (
                Command::ConfirmPurchase { hold_id, .. },
                Done::PurchaseConfirmed {
                    order_id,
                    ticket_ids,
                    ..
                },
            ) => {
                if let Some((_, _, k0, i0)) = orders.get(order_id.as_str()) {
                    r.push(
                        "invariants",
                        "object-created-twice",
                        format!("order {order_id} confirmed by key {k0:?} at {i0} and by key {k:?} at {i}"),
                    );
                }
                if let Some((o, _)) = orders.iter().find(|(_, p)| p.0 == hold_id.as_str()) {
                    r.push(
                        "invariants",
                        "hold-purchased-twice",
                        format!("hold {hold_id} became order {o} and order {order_id}"),
                    );
                }
                orders.insert(order_id, (hold_id, ticket_ids.clone(), *k, *i));
            }
            (Command::CancelOrder { order_id, .. }, Done::OrderCanceled { .. }) => {
                cancels.insert(order_id, *i);
            }
            (Command::RefundTicket { ticket_id, .. }, Done::TicketRefunded { .. }) => {
                refunds.insert(ticket_id, *i);
            }
            (Command::CancelDt { dt_id, .. }, Done::DtCanceled { .. }) => {
                dt_cancels.insert(dt_id, *i);
            }
            (
                Command::Scan { ticket_id, .. },
                Done::Scanned {
                    verdict: ScanVerdict::Admitted,
                    ..
                },
            ) => admits.entry(ticket_id).or_default().push((*k, *i)),
            _ => {}
        }
    }

    // A ticket admitted at most once, by the answers.
    for (t, a) in &admits {
        if a.len() > 1 {
            r.push(
                "invariants",
                "ticket-admitted-twice",
                format!("ticket {t} admitted by {a:?}"),
            );
        }
    }

    // No seat sold twice, in log-index order: sales (confirmations) and returns (an order
    // canceled, a ticket refunded, a dt called off).
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Ev<'a> {
        Sale(&'a str),
        Cancel(&'a str),
        Refund(&'a str),
        CallOff(&'a str),
    }
    let mut timeline: Vec<(u64, Ev)> = Vec::new();
    for (o, (_, _, _, i)) in &orders {
        timeline.push((*i, Ev::Sale(o)));
    }
    for (o, i) in &cancels {
        timeline.push((*i, Ev::Cancel(o)));
    }
    for (t, i) in &refunds {
        timeline.push((*i, Ev::Refund(t)));
    }
    for (d, i) in &dt_cancels {
        timeline.push((*i, Ev::CallOff(d)));
    }
    timeline.sort();
    // The seat a ticket `{order}-{k}` is for: the k-th seat of the order's hold.
    let seat_of_ticket = |t: &str| -> Option<(&str, &str, u32)> {
        let (o, k) = t.rsplit_once('-')?;
        let k: usize = k.parse().ok()?;
        let (o, (hold, ..)) = orders.get_key_value(o)?;
        let (dt, seats, ..) = holds.get(hold)?;
        match seats.get(k.checked_sub(1)?)? {
            SeatRef::Seat(s) => Some((*o, *dt, *s)),
            SeatRef::Ga(_) => None,
        }
    };
    let mut owner: BTreeMap<(&str, u32), &str> = BTreeMap::new();
    for (i, ev) in timeline {
        let o = match ev {
            Ev::Sale(o) | Ev::Cancel(o) => o,
            Ev::Refund(t) => {
                if let Some((o, dt, s)) = seat_of_ticket(t) {
                    if owner.get(&(dt, s)) == Some(&o) {
                        owner.remove(&(dt, s));
                    }
                }
                continue;
            }
            Ev::CallOff(d) => {
                owner.retain(|(dt, _), _| *dt != d);
                continue;
            }
        };
        let sale = matches!(ev, Ev::Sale(_));
        let Some((hold, ..)) = orders.get(o) else {
            continue;
        };
        let Some((dt, seats, ..)) = holds.get(hold) else {
            continue;
        };
        for s in seats {
            let SeatRef::Seat(s) = s else { continue };
            if sale {
                if let Some(prev) = owner.insert((dt, *s), o) {
                    r.push(
                        "invariants",
                        "seat-sold-twice",
                        format!("{dt} seat {s}: sold to order {prev}, then to order {o} at index {i} without a cancel between"),
                    );
                }
            } else if owner.get(&(*dt, *s)) == Some(&o) {
                owner.remove(&(*dt, *s));
            }
        }
    }

    // Every seat map read adds up.
    for o in &h.ops {
        if let Some(Ret::Read {
            result: QueryResult::SeatMap(Some(m)),
        }) = &o.ret
        {
            if let Some(e) = seat_map_conservation(m) {
                r.push(
                    "invariants",
                    "conservation",
                    format!(
                        "op {} read of {} at index {:?}: {e}",
                        o.op, m.dt_id, o.index
                    ),
                );
            }
        }
    }

    // After healing.
    let mut final_tickets: Vec<&Ticket> = Vec::new();
    let mut final_live: Vec<&Hold> = Vec::new();
    let mut unread = 0;
    for (q, res) in finals.values() {
        match (q, res) {
            (Query::GetTicket { .. }, QueryResult::Ticket(Some(t))) => final_tickets.push(t),
            (Query::GetHold { .. }, QueryResult::Hold(Some(hd)))
                if hd.status == HoldStatus::Live =>
            {
                final_live.push(hd)
            }
            _ => {}
        }
    }
    let final_of = |q: &Query| finals.get(&format!("{q:?}")).map(|x| x.1);
    for (hold, (_, _, _, i)) in &holds {
        match final_of(&Query::GetHold {
            hold_id: hold.to_string(),
        }) {
            Some(QueryResult::Hold(Some(_))) => {}
            Some(QueryResult::Hold(None)) => r.push(
                "invariants",
                "acknowledged-hold-lost",
                format!("hold {hold} acknowledged at index {i}; after healing it does not exist"),
            ),
            Some(_) => {}
            None => unread += 1,
        }
    }
    for (order, (_, tickets, _, i)) in &orders {
        match final_of(&Query::GetOrder {
            order_id: order.to_string(),
        }) {
            Some(QueryResult::Order(Some(v))) => {
                if v.order.created_index != entry_of(*i) || &v.order.ticket_ids != tickets {
                    r.push(
                        "invariants",
                        "acknowledged-order-moved",
                        format!(
                            "order {order} confirmed at index {i} with tickets {tickets:?}; after healing it is from index {} with {:?}",
                            v.order.created_index, v.order.ticket_ids
                        ),
                    );
                }
                if let Some(ci) = cancels.get(order) {
                    if v.order.status != OrderStatus::Canceled {
                        r.push(
                            "invariants",
                            "acknowledged-cancel-lost",
                            format!("order {order} cancel acknowledged at index {ci}; after healing it is {:?}", v.order.status),
                        );
                    }
                }
            }
            Some(QueryResult::Order(None)) => r.push(
                "invariants",
                "acknowledged-order-lost",
                format!("order {order} confirmed at index {i}; after healing it does not exist"),
            ),
            Some(_) => {}
            None => unread += 1,
        }
        for t in tickets {
            match final_of(&Query::GetTicket {
                ticket_id: t.clone(),
            }) {
                Some(QueryResult::Ticket(Some(_))) => {}
                Some(QueryResult::Ticket(None)) => r.push(
                    "invariants",
                    "acknowledged-ticket-lost",
                    format!("ticket {t} of order {order} (index {i}) does not exist after healing"),
                ),
                Some(_) => {}
                None => unread += 1,
            }
        }
    }
    // A ticket as the final reads show it.
    let final_ticket = |t: &str| match final_of(&Query::GetTicket {
        ticket_id: t.to_string(),
    }) {
        Some(QueryResult::Ticket(Some(tk))) => Some(tk),
        _ => None,
    };
    for (t, a) in &admits {
        if let Some(tk) = final_ticket(t) {
            if !matches!(tk.status, TicketStatus::Used { .. }) {
                r.push(
                    "invariants",
                    "acknowledged-admission-lost",
                    format!(
                        "ticket {t} admitted at {a:?}; after healing it is {:?}",
                        tk.status
                    ),
                );
            }
        }
    }
    // An answered refund stays a refund; a called-off dt keeps no valid ticket and no live hold.
    for (t, i) in &refunds {
        if let Some(tk) = final_ticket(t) {
            if !matches!(tk.status, TicketStatus::Refunded { .. }) {
                r.push(
                    "invariants",
                    "acknowledged-refund-lost",
                    format!(
                        "ticket {t} refund acknowledged at {i}; after healing it is {:?}",
                        tk.status
                    ),
                );
            }
        }
    }
    for (d, i) in &dt_cancels {
        for t in final_tickets.iter().filter(|t| t.dt_id == *d) {
            if t.status == TicketStatus::Valid {
                r.push(
                    "invariants",
                    "valid-ticket-after-call-off",
                    format!(
                        "{d} called off at {i}; after healing ticket {} is still valid",
                        t.ticket_id
                    ),
                );
            }
        }
        for hd in final_live.iter().filter(|hd| hd.dt_id == *d) {
            r.push(
                "invariants",
                "live-hold-after-call-off",
                format!(
                    "{d} called off at {i}; after healing hold {} is live",
                    hd.hold_id
                ),
            );
        }
    }
    // Money owed back: an order's refunded amount is the price and fee of its tickets canceled
    // or refunded, no more, no less.
    for (q, res) in finals.values() {
        let (Query::GetOrder { order_id }, QueryResult::Order(Some(v))) = (q, res) else {
            continue;
        };
        let owed: i64 = v
            .tickets
            .iter()
            .filter(|t| {
                matches!(
                    t.status,
                    TicketStatus::Canceled { .. } | TicketStatus::Refunded { .. }
                )
            })
            .map(|t| t.price_minor + t.fee_minor)
            .sum();
        if v.order.refunded_minor != owed {
            r.push(
                "invariants",
                "refund-ledger-differs",
                format!(
                    "order {order_id}: refunded {} after healing, its canceled and refunded tickets come to {owed}",
                    v.order.refunded_minor
                ),
            );
        }
    }
    // A ticket admitted at most once, by its own scan record.
    for t in &final_tickets {
        let n = t
            .scans
            .iter()
            .filter(|s| s.verdict == ScanVerdict::Admitted)
            .count();
        if n > 1 {
            r.push(
                "invariants",
                "ticket-admitted-twice",
                format!("ticket {}: {n} admitting scans in its record", t.ticket_id),
            );
        }
    }
    // No seat with two valid or used tickets; no GA area over capacity.
    let mut seat_tickets: BTreeMap<(&str, SeatRef), Vec<&str>> = BTreeMap::new();
    for t in &final_tickets {
        if matches!(t.status, TicketStatus::Valid | TicketStatus::Used { .. }) {
            seat_tickets
                .entry((&t.dt_id, t.seat))
                .or_default()
                .push(&t.ticket_id);
        }
    }
    for ((dt, seat), ts) in &seat_tickets {
        let cap = match seat {
            SeatRef::Seat(_) => 1,
            SeatRef::Ga(a) => match final_of(&Query::SeatMap {
                dt_id: dt.to_string(),
            }) {
                Some(QueryResult::SeatMap(Some(m))) => {
                    m.ga.get(*a as usize).map_or(u32::MAX, |g| g.capacity) as usize
                }
                _ => usize::MAX,
            },
        };
        if ts.len() > cap {
            r.push(
                "invariants",
                "seat-sold-twice",
                format!("after healing {dt} {seat:?} has {} valid or used tickets (capacity {cap}): {ts:?}", ts.len()),
            );
        }
    }
    // Final seat maps agree with the final tickets and live holds, per tier.
    if unread == 0 {
        for (q, res) in finals.values() {
            let (Query::SeatMap { dt_id }, QueryResult::SeatMap(Some(m))) = (q, res) else {
                continue;
            };
            for t in &m.tiers {
                let sold = final_tickets
                    .iter()
                    .filter(|x| &x.dt_id == dt_id && x.tier_id == t.tier_id)
                    .filter(|x| matches!(x.status, TicketStatus::Valid | TicketStatus::Used { .. }))
                    .count() as u32;
                let tier_index = m.tiers.iter().position(|x| x.tier_id == t.tier_id);
                let held = final_live
                    .iter()
                    .filter(|x| &x.dt_id == dt_id)
                    .flat_map(|x| &x.items)
                    .filter(|it| Some(it.tier as usize) == tier_index)
                    .count() as u32;
                if t.sold != sold || t.held != held {
                    r.push(
                        "invariants",
                        "conservation",
                        format!(
                            "after healing {dt_id} tier {}: seat map says held {} sold {}, live holds have {held}, valid and used tickets {sold}",
                            t.tier_id, t.held, t.sold
                        ),
                    );
                }
            }
        }
    } else {
        r.inconclusive.push(format!(
            "sale: {unread} objects not read back after healing; final per-tier totals not compared"
        ));
    }
}

/// Why a seat map does not add up, if it does not.
pub fn seat_map_conservation(m: &SeatMapView) -> Option<String> {
    let seat_state =
        |s: usize| (m.seat_states.get(s / 4).copied().unwrap_or(0) >> (2 * (s % 4))) & 3;
    for (k, t) in m.tiers.iter().enumerate() {
        if t.available + t.held + t.sold != t.capacity {
            return Some(format!(
                "tier {}: available {} + held {} + sold {} != capacity {}",
                t.tier_id, t.available, t.held, t.sold, t.capacity
            ));
        }
        // Per-seat states of the tier's seats.
        let (mut free, mut busy, mut seats) = (0u32, 0u32, 0u32);
        for (first, len, tier) in &m.seat_tiers {
            if *tier as usize != k {
                continue;
            }
            for s in *first..first + len {
                seats += 1;
                match seat_state(s as usize) {
                    0 => free += 1,
                    1 | 2 => busy += 1,
                    _ => {
                        return Some(format!(
                            "tier {}: seat {s} is marked not for sale",
                            t.tier_id
                        ))
                    }
                }
            }
        }
        let (mut ga_cap, mut ga_free) = (0u32, 0u32);
        for g in &m.ga {
            if g.tier_id.as_deref() == Some(t.tier_id.as_str()) {
                ga_cap += g.capacity;
                ga_free += g.available;
            }
        }
        if seats + ga_cap != t.capacity
            || free + ga_free != t.available
            || busy + (ga_cap - ga_free.min(ga_cap)) != t.held + t.sold
        {
            return Some(format!(
                "tier {}: counts (capacity {}, available {}, held {}, sold {}) disagree with its seats ({seats} seats, {free} free, {busy} held or sold) and GA places ({ga_cap}, {ga_free} free)",
                t.tier_id, t.capacity, t.available, t.held, t.sold
            ));
        }
    }
    None
}
