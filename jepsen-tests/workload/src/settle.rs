//! The end of a history: the writes whose fate is unknown, and the final reads.

use std::collections::BTreeSet;

use ticketd_store::command::Done;
use ticketd_store::{Command, Outcome, Query};

use ticketd_checker::history::{Call, Line, Ret};

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
