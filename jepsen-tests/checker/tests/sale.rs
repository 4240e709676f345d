//! The checkers against seat-sale histories as a correct cluster would produce them (the real
//! state machine answers every op, the sale's workload sets it up), each broken in one way.

use ticketd_checker::history::{read_pos, write_pos, Call, Cons, FaultStatus, History, Line, Ret};
use ticketd_checker::{check, Report};
use ticketd_store::command::Done;
use ticketd_store::types::{OrderStatus, ScanVerdict, SeatRef, TicketStatus};
use ticketd_store::{Command, Outcome, Query, QueryResult};

/// Seat-sale histories as a correct cluster would produce them (the real state machine
/// answers every op), to be broken by the tests.
mod sale {
    use super::*;
    use ticketd_store::command::GaPick;
    use ticketd_store::{Machine, Request, WriteSet};
    use ticketd_workload::{dt_id, sale_setup, SETUP_CLIENT};

    pub(super) struct Real {
        pub m: Machine,
        pub index: u64,
        pub t: u64,
        pub now_ms: i64,
        pub lines: Vec<Line>,
        pub op: u64,
    }

    impl Real {
        /// A machine with the sale's setup (1 dt, 1 client) applied and recorded.
        pub fn new() -> Self {
            let mut r = Real {
                m: Machine::default(),
                index: 0,
                t: 0,
                now_ms: 1_000_000,
                lines: vec![Line::Meta {
                    time_ns: 0,
                    seed: 1,
                    config: serde_json::json!({ "start_unix_ms": 1_000_000 }),
                }],
                op: 0,
            };
            for (key, cmd) in sale_setup(1, 1) {
                r.write_as(SETUP_CLIENT, &key, cmd);
            }
            r
        }

        fn tick(&mut self) -> u64 {
            self.t += 1_000_000;
            self.now_ms = self.now_ms.max(1_000_000 + (self.t / 1_000_000) as i64);
            self.t
        }

        pub fn write_as(&mut self, client: &str, key: &str, cmd: Command) -> Outcome {
            self.index += 1;
            let t0 = self.tick();
            let reply = self.m.apply(
                self.index,
                &Request {
                    client_id: client.into(),
                    idempotency_key: key.into(),
                    stamped_at_ms: self.now_ms,
                    command: cmd.clone(),
                },
                &mut WriteSet::new(),
            );
            let call = Call::Write {
                client_id: client.into(),
                key: key.into(),
                command: cmd,
                via: None,
            };
            self.op += 1;
            self.lines.push(Line::Invoke {
                time_ns: t0,
                process: 0,
                op: self.op,
                f: "write".into(),
                call: call.clone(),
            });
            let t1 = self.tick();
            self.lines.push(Line::Ok {
                time_ns: t1,
                process: 0,
                op: self.op,
                f: "write".into(),
                call,
                ret: Ret::from_reply(&reply),
                index: write_pos(self.index, 0),
            });
            reply.outcome
        }

        pub fn write(&mut self, key: &str, cmd: Command) -> Outcome {
            self.write_as("c", key, cmd)
        }

        pub fn read(&mut self, query: Query, final_read: bool) -> QueryResult {
            let result = self.m.query(&query);
            let call = Call::Read {
                query,
                consistency: Cons::Linearizable,
                node: None,
                final_read,
            };
            let t0 = self.tick();
            self.op += 1;
            self.lines.push(Line::Invoke {
                time_ns: t0,
                process: 0,
                op: self.op,
                f: "read".into(),
                call: call.clone(),
            });
            let t1 = self.tick();
            self.lines.push(Line::Ok {
                time_ns: t1,
                process: 0,
                op: self.op,
                f: "read".into(),
                call,
                ret: Ret::Read {
                    result: result.clone(),
                },
                index: read_pos(self.index),
            });
            result
        }

        /// The final reads the runner makes.
        pub fn finish(&mut self) {
            let lines = self.lines.clone();
            for q in ticketd_workload::final_queries(&lines) {
                self.read(q, true);
            }
        }

        pub fn check(&self) -> Report {
            check(&History::from_lines(self.lines.clone()).unwrap())
        }
    }

    pub(super) fn hold(id: &str, seats: &[u32]) -> Command {
        Command::HoldSeats {
            hold_id: id.into(),
            dt_id: dt_id(0),
            user_id: "u0-0".into(),
            seats: seats.to_vec(),
            ga: Vec::new(),
            hold_ttl_ms: None,
        }
    }

    pub(super) fn hold_ga(id: &str, n: u32) -> Command {
        Command::HoldSeats {
            hold_id: id.into(),
            dt_id: dt_id(0),
            user_id: "u0-1".into(),
            seats: Vec::new(),
            ga: vec![GaPick {
                area_id: "floor".into(),
                quantity: n,
            }],
            hold_ttl_ms: None,
        }
    }

    /// Holds, pays and confirms; returns the ticket ids.
    pub(super) fn buy(r: &mut Real, n: &str, hold_cmd: Command) -> Vec<String> {
        let (user, hold_id) = match &hold_cmd {
            Command::HoldSeats {
                user_id, hold_id, ..
            }
            | Command::HoldBestAvailable {
                user_id, hold_id, ..
            } => (user_id.clone(), hold_id.clone()),
            _ => unreachable!("a hold"),
        };
        let out = r.write(&format!("kh{n}"), hold_cmd);
        let Outcome::Done(Done::HoldPlaced { total_minor, .. }) = out else {
            panic!("hold refused: {out:?}")
        };
        r.write(
            &format!("kp{n}"),
            Command::StartPayment {
                hold_id: hold_id.clone(),
                user_id: user,
                payment_ref: format!("p{n}"),
                amount_minor: total_minor,
                currency: "EUR".into(),
            },
        );
        let Outcome::Done(Done::PurchaseConfirmed { ticket_ids, .. }) = r.write(
            &format!("kc{n}"),
            Command::ConfirmPurchase {
                hold_id,
                order_id: format!("o{n}"),
                payment_ref: format!("p{n}"),
                amount_minor: total_minor,
                currency: "EUR".into(),
                secret_seed: vec![7; 16],
            },
        ) else {
            panic!("purchase refused")
        };
        ticket_ids
    }

    pub(super) fn scan(r: &mut Real, key: &str, ticket: &str, gate: &str) -> Outcome {
        r.write(
            key,
            Command::Scan {
                ticket_id: ticket.into(),
                dt_id: dt_id(0),
                gate: gate.into(),
            },
        )
    }

    /// A sale with contention, a release, purchases, cancels (one refused: a ticket was
    /// used), scans at two gates (one of a canceled ticket), a seat sold again after its
    /// order was canceled.
    pub(super) fn clean() -> Real {
        let mut r = Real::new();
        let t1 = buy(&mut r, "1", hold("h1", &[0, 1]));
        r.read(Query::SeatMap { dt_id: dt_id(0) }, false);
        // Contention on seat 1: refused.
        r.write("kcont", hold("hx", &[1, 2]));
        r.write("kh2", hold("h2", &[2]));
        r.write(
            "kr2",
            Command::ReleaseHold {
                hold_id: "h2".into(),
                user_id: "u0-0".into(),
            },
        );
        let t3 = buy(&mut r, "3", hold_ga("h3", 2));
        scan(&mut r, "ks1", &t1[0], "g1");
        scan(&mut r, "ks2", &t1[0], "g2");
        let cancel = |r: &mut Real, key: &str, order: &str, user: &str| {
            r.write(
                key,
                Command::CancelOrder {
                    order_id: order.into(),
                    user_id: user.into(),
                    reason: "x".into(),
                },
            )
        };
        cancel(&mut r, "kq1", "o1", "u0-0");
        cancel(&mut r, "kq3", "o3", "u0-1");
        scan(&mut r, "ks3", &t3[0], "g1");
        buy(&mut r, "5", hold("h5", &[9]));
        cancel(&mut r, "kq5", "o5", "u0-0");
        // Seat 9 is free again and sold to someone else.
        buy(&mut r, "4", hold("h4", &[9]));
        r.read(
            Query::GetOrder {
                order_id: "o1".into(),
            },
            false,
        );
        r
    }
    /// [`clean`], then the money and message paths: a ticket refunded (and refused a second
    /// time), notifications marked sent (one twice, one unknown), the dt called off with four
    /// open orders (one partly refunded, one with a used ticket), a void reminder refused, a
    /// hold and a scan after.
    pub(super) fn clean_with_call_off() -> Real {
        let mut r = clean();
        let t6 = buy(&mut r, "6", hold("h6", &[10, 11]));
        let e6 = r.index;
        let refund = |r: &mut Real, key: &str, t: &str| {
            r.write(
                key,
                Command::RefundTicket {
                    ticket_id: t.into(),
                    user_id: "u0-0".into(),
                },
            )
        };
        refund(&mut r, "kf6", &t6[0]);
        refund(&mut r, "kf6b", &t6[0]);
        let sent = |r: &mut Real, key: &str, id: String| {
            r.write(
                key,
                Command::MarkNotificationSent {
                    notification_id: id,
                    channel: "email".into(),
                },
            )
        };
        sent(&mut r, "kn1", format!("n-{e6}-1"));
        sent(&mut r, "kn1b", format!("n-{e6}-1"));
        sent(&mut r, "kn9", "n-999999-1".into());
        let t7 = buy(&mut r, "7", hold("h7", &[12]));
        let e7 = r.index;
        r.write("kh8", hold("h8", &[13]));
        let out = r.write(
            "kcd",
            Command::CancelDt {
                dt_id: dt_id(0),
                reason: "called off".into(),
            },
        );
        assert!(
            matches!(
                out,
                Outcome::Done(Done::DtCanceled {
                    holds_released: 1,
                    orders_canceled: 4,
                    ..
                })
            ),
            "{out:?}"
        );
        let e_cd = r.index;
        // The call-off cancels o1 (one ticket used), o4, o6 and o7 in id order, each with a
        // cancellation and a refund notice: o6's refund notice is the sixth; o7's reminder is
        // void.
        sent(&mut r, "kn2", format!("n-{e_cd}-6"));
        sent(&mut r, "kn3", format!("n-{e7}-3"));
        r.write("kh9", hold("h9", &[20]));
        scan(&mut r, "ks7", &t7[0], "g1");
        r.read(
            Query::GetOrder {
                order_id: "o6".into(),
            },
            false,
        );
        r.read(Query::SeatMap { dt_id: dt_id(0) }, false);
        r
    }
}

use sale::{buy, clean, clean_with_call_off, hold, scan, Real};
use ticketd_workload::dt_id;

fn has(r: &Report, kind: &str) -> bool {
    r.anomalies.iter().any(|a| a.kind == kind)
}

/// Replaces the answer of the write with key `key`.
fn set_outcome(lines: &mut [Line], key: &str, f: impl Fn(&mut Outcome)) {
    for l in lines {
        if let Line::Ok {
            call: Call::Write { key: k, .. },
            ret: Ret::Write { outcome, .. },
            ..
        } = l
        {
            if k == key {
                f(outcome);
            }
        }
    }
}

/// Replaces the answer of every final read of `query`.
fn set_final(lines: &mut [Line], query: &Query, result: QueryResult) {
    for l in lines {
        if let Line::Ok {
            call:
                Call::Read {
                    query: q,
                    final_read: true,
                    ..
                },
            ret: Ret::Read { result: res },
            ..
        } = l
        {
            if q == query {
                *res = result.clone();
            }
        }
    }
}

#[test]
fn a_clean_sale_has_no_anomaly_and_is_replayed() {
    let mut r = clean();
    r.finish();
    let rep = r.check();
    assert!(rep.anomalies.is_empty(), "{:#?}", rep.anomalies);
    assert!(rep.inconclusive.is_empty(), "{:?}", rep.inconclusive);
    assert!(rep.replayed_writes > 20, "{rep:?}");
    assert!(rep.checked_reads > 5, "{rep:?}");
    assert_eq!(rep.unmodelled_writes, 0);
}

#[test]
fn a_clean_call_off_with_refunds_and_notifications_is_replayed() {
    let mut r = clean_with_call_off();
    r.finish();
    let rep = r.check();
    assert!(rep.anomalies.is_empty(), "{:#?}", rep.anomalies);
    assert!(rep.inconclusive.is_empty(), "{:?}", rep.inconclusive);
    assert_eq!(rep.unmodelled_writes, 0);
    let answers: Vec<String> = r
        .lines
        .iter()
        .filter_map(|l| match l {
            Line::Ok {
                call: Call::Write { key, .. },
                ret: Ret::Write { outcome, .. },
                ..
            } => Some(format!("{key}: {outcome:?}")),
            _ => None,
        })
        .collect();
    let of = |k: &str| {
        answers
            .iter()
            .find(|a| a.starts_with(&format!("{k}: ")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(of("kf6").contains("TicketRefunded"), "{answers:#?}");
    assert!(of("kf6b").contains("TicketNotRefundable"), "{answers:#?}");
    assert!(of("kn1").contains("NotificationSent"), "{answers:#?}");
    assert!(of("kn1b").contains("NotificationSent"), "{answers:#?}");
    assert!(of("kn9").contains("NotFound"), "{answers:#?}");
    assert!(of("kn2").contains("NotificationSent"), "{answers:#?}");
    assert!(of("kn3").contains("InvalidState"), "{answers:#?}");
    assert!(of("kh9").contains("DtCanceled"), "{answers:#?}");
}

#[test]
fn a_notification_numbered_otherwise_is_caught_by_replay() {
    // A replica that numbered the call-off's notices in another order answers the mark of
    // a void reminder as sent.
    let mut r = clean_with_call_off();
    r.finish();
    let mut lines = r.lines.clone();
    set_outcome(&mut lines, "kn3", |o| {
        *o = Outcome::Done(Done::NotificationSent {
            notification_id: "x".into(),
        })
    });
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "write-answer-differs"), "{:#?}", rep.anomalies);
}

#[test]
fn a_lost_refund_a_valid_ticket_after_a_call_off_and_a_wrong_ledger_are_caught() {
    let mut r = clean_with_call_off();
    r.finish();
    let mut lines = r.lines.clone();
    // o6's first ticket: refunded, then shown valid; o7's: called off, then shown valid.
    for t in ["o6-1", "o7-1"] {
        let q = Query::GetTicket {
            ticket_id: t.into(),
        };
        let QueryResult::Ticket(Some(mut tk)) = r.m.query(&q) else {
            panic!("ticket {t}")
        };
        tk.status = TicketStatus::Valid;
        set_final(&mut lines, &q, QueryResult::Ticket(Some(tk)));
    }
    let q = Query::GetOrder {
        order_id: "o6".into(),
    };
    let QueryResult::Order(Some(mut v)) = r.m.query(&q) else {
        panic!("order")
    };
    v.order.refunded_minor += 1;
    set_final(&mut lines, &q, QueryResult::Order(Some(v)));
    let rep = check(&History::from_lines(lines).unwrap());
    for kind in [
        "acknowledged-refund-lost",
        "valid-ticket-after-call-off",
        "refund-ledger-differs",
    ] {
        assert!(has(&rep, kind), "{kind}: {:#?}", rep.anomalies);
    }
}

#[test]
fn a_replica_without_a_digest_after_healing_is_caught() {
    let mut r = clean();
    r.finish();
    let mut lines = r.lines.clone();
    let call = Call::Read {
        query: Query::Digest,
        consistency: Cons::Local,
        node: Some(2),
        final_read: true,
    };
    lines.push(Line::Invoke {
        time_ns: 1,
        process: 9,
        op: 999_999,
        f: "read".into(),
        call: call.clone(),
    });
    lines.push(Line::Fail {
        time_ns: 2,
        process: 9,
        op: 999_999,
        f: "read".into(),
        call,
        error: "digest of entry 40: unreachable".into(),
    });
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "replica-digests-missing"), "{:#?}", rep.anomalies);
}

#[test]
fn a_seat_sold_twice_is_caught() {
    let mut r = Real::new();
    buy(&mut r, "1", hold("h1", &[3]));
    // The cluster placed a second hold on the sold seat and sold it again: its answers
    // come from a machine that never saw the first sale.
    let mut r2 = Real::new();
    let setup = r2.lines.len();
    (r2.index, r2.t, r2.now_ms, r2.op) = (r.index, r.t, r.now_ms, r.op);
    buy(&mut r2, "2", hold("h2", &[3]));
    let mut lines = r.lines.clone();
    lines.extend(r2.lines.into_iter().skip(setup));
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "seat-sold-twice"), "{:#?}", rep.anomalies);
    assert!(has(&rep, "write-answer-differs"), "{:#?}", rep.anomalies);
}

#[test]
fn two_valid_tickets_on_one_seat_after_healing_are_caught() {
    let mut r = clean();
    r.finish();
    let mut lines = r.lines.clone();
    // o5's canceled ticket on seat 9 valid again next to o4's.
    let q = Query::GetTicket {
        ticket_id: "o5-1".into(),
    };
    let QueryResult::Ticket(Some(mut t)) = r.m.query(&q) else {
        panic!("ticket")
    };
    t.status = TicketStatus::Valid;
    set_final(&mut lines, &q, QueryResult::Ticket(Some(t)));
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "seat-sold-twice"), "{:#?}", rep.anomalies);
}

#[test]
fn a_seat_map_that_does_not_add_up_is_caught() {
    let mut r = clean();
    r.finish();
    let mut lines = r.lines.clone();
    for l in &mut lines {
        if let Line::Ok {
            ret: Ret::Read {
                result: QueryResult::SeatMap(Some(m)),
            },
            ..
        } = l
        {
            m.tiers[0].held += 1;
        }
    }
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "conservation"), "{:#?}", rep.anomalies);
}

#[test]
fn final_totals_that_disagree_with_tickets_are_caught() {
    let mut r = clean();
    r.finish();
    let mut lines = r.lines.clone();
    let q = Query::SeatMap {
        dt_id: ticketd_workload::dt_id(0),
    };
    let QueryResult::SeatMap(Some(mut m)) = r.m.query(&q) else {
        panic!("seat map")
    };
    // One more sold and one less available: adds up, but no ticket is behind it.
    m.tiers[1].sold += 1;
    m.tiers[1].available -= 1;
    let st = &mut m.seat_states[(ticketd_workload::SECTION_A / 4) as usize];
    *st = (*st & !3) | 2;
    set_final(&mut lines, &q, QueryResult::SeatMap(Some(m)));
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "conservation"), "{:#?}", rep.anomalies);
}

#[test]
fn an_acknowledged_order_lost_after_healing_is_caught() {
    let mut r = clean();
    r.finish();
    let mut lines = r.lines.clone();
    set_final(
        &mut lines,
        &Query::GetOrder {
            order_id: "o4".into(),
        },
        QueryResult::Order(None),
    );
    set_final(
        &mut lines,
        &Query::GetTicket {
            ticket_id: "o4-1".into(),
        },
        QueryResult::Ticket(None),
    );
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "acknowledged-order-lost"), "{:#?}", rep.anomalies);
    assert!(
        has(&rep, "acknowledged-ticket-lost"),
        "{:#?}",
        rep.anomalies
    );
}

#[test]
fn an_acknowledged_cancel_or_admission_lost_after_healing_is_caught() {
    let mut r = clean();
    r.finish();
    let mut lines = r.lines.clone();
    let q = Query::GetOrder {
        order_id: "o3".into(),
    };
    let QueryResult::Order(Some(mut v)) = r.m.query(&q) else {
        panic!("order")
    };
    v.order.status = OrderStatus::Confirmed;
    set_final(&mut lines, &q, QueryResult::Order(Some(v)));
    let q = Query::GetTicket {
        ticket_id: "o1-1".into(),
    };
    let QueryResult::Ticket(Some(mut t)) = r.m.query(&q) else {
        panic!("ticket")
    };
    t.status = TicketStatus::Valid;
    set_final(&mut lines, &q, QueryResult::Ticket(Some(t)));
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(
        has(&rep, "acknowledged-cancel-lost"),
        "{:#?}",
        rep.anomalies
    );
    assert!(
        has(&rep, "acknowledged-admission-lost"),
        "{:#?}",
        rep.anomalies
    );
}

#[test]
fn one_object_from_two_keys_is_caught() {
    let mut r = clean();
    // A second key's hold answered with h4's id.
    r.write("kdup", hold("h6", &[30]));
    r.finish();
    let mut lines = r.lines.clone();
    set_outcome(&mut lines, "kdup", |o| {
        if let Outcome::Done(Done::HoldPlaced { hold_id, .. }) = o {
            *hold_id = "h4".into();
        }
    });
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "object-created-twice"), "{:#?}", rep.anomalies);
}

#[test]
fn a_ticket_admitted_twice_is_caught() {
    let mut r = clean();
    r.finish();
    let mut lines = r.lines.clone();
    // The second gate was let in too.
    set_outcome(&mut lines, "ks2", |o| {
        if let Outcome::Done(Done::Scanned { verdict, .. }) = o {
            *verdict = ScanVerdict::Admitted;
        }
    });
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "ticket-admitted-twice"), "{:#?}", rep.anomalies);
    assert!(has(&rep, "write-answer-differs"), "{:#?}", rep.anomalies);
    // And by the ticket's own record.
    let mut r = clean();
    r.finish();
    let mut lines = r.lines.clone();
    let q = Query::GetTicket {
        ticket_id: "o1-1".into(),
    };
    let QueryResult::Ticket(Some(mut t)) = r.m.query(&q) else {
        panic!("ticket")
    };
    for s in &mut t.scans {
        s.verdict = ScanVerdict::Admitted;
    }
    set_final(&mut lines, &q, QueryResult::Ticket(Some(t)));
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "ticket-admitted-twice"), "{:#?}", rep.anomalies);
}

#[test]
fn a_stale_seat_map_is_caught_by_replay() {
    let mut r = Real::new();
    r.write("kh1", hold("h1", &[5]));
    let q = Query::SeatMap { dt_id: dt_id(0) };
    r.read(q.clone(), false);
    let mut lines = r.lines.clone();
    // The read claims the hold's index but shows seat 5 free.
    if let Some(Line::Ok {
        ret: Ret::Read {
            result: QueryResult::SeatMap(Some(m)),
        },
        ..
    }) = lines.last_mut()
    {
        m.seat_states[1] &= !(3 << 2);
        m.tiers[0].held -= 1;
        m.tiers[0].available += 1;
    }
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "read-differs-from-model"), "{:#?}", rep.anomalies);
}

#[test]
fn holds_expire_when_log_time_passes_them_and_not_before() {
    use ticketd_store::limits::HOLD_TTL_MS;
    // A hold lapses; later log time (a skewed leader) lets another user take the seat.
    let mut r = Real::new();
    r.write("kh1", hold("h1", &[6]));
    r.now_ms += HOLD_TTL_MS + 5_000;
    let out = r.write("kh2", hold("h2", &[6]));
    assert!(matches!(out, Outcome::Done(_)), "{out:?}");
    r.write(
        "kr1",
        Command::ReleaseHold {
            hold_id: "h1".into(),
            user_id: "u0-0".into(),
        },
    );
    // The skew that let log time run ahead of the harness's clock.
    r.lines.push(Line::Fault {
        time_ns: r.t,
        fault: "clock-skew".into(),
        phase: "start".into(),
        nodes: vec![1],
        status: FaultStatus::Installed,
        detail: "node 1 +900s".into(),
    });
    r.finish();
    let rep = r.check();
    assert!(rep.anomalies.is_empty(), "{:#?}", rep.anomalies);

    // A second hold on the seat answered 5 s (of log time, which its own answer reveals)
    // before the first could lapse: caught, skew or not.
    let mut r = Real::new();
    r.write("kh1", hold("h1", &[6]));
    r.now_ms += HOLD_TTL_MS - 5_000;
    r.write("kh2", hold("h2", &[7]));
    r.lines.push(Line::Fault {
        time_ns: r.t,
        fault: "clock-skew".into(),
        phase: "start".into(),
        nodes: vec![1],
        status: FaultStatus::Installed,
        detail: "node 1 +900s".into(),
    });
    r.finish();
    let mut lines = r.lines.clone();
    for l in &mut lines {
        match l {
            Line::Ok {
                call: Call::Write { key, command, .. },
                ret: Ret::Write { outcome, .. },
                ..
            } if key == "kh2" => {
                *command = hold("h2", &[6]);
                if let Outcome::Done(Done::HoldPlaced { seats, .. }) = outcome {
                    *seats = vec![SeatRef::Seat(6)];
                }
            }
            Line::Invoke {
                call: Call::Write { key, command, .. },
                ..
            } if key == "kh2" => *command = hold("h2", &[6]),
            _ => {}
        }
    }
    let rep = check(&History::from_lines(lines).unwrap());
    assert!(has(&rep, "write-answer-differs"), "{:#?}", rep.anomalies);
}

#[test]
fn an_expiry_no_answer_dates_is_decided_by_the_reads_within_the_clock_bounds() {
    use ticketd_store::limits::HOLD_TTL_MS;
    // Log time jumps past the hold's expiry at a write whose answer reveals no time (a
    // scan); a seat map then shows the seat free again.
    let run = |skewed: bool| {
        let mut r = Real::new();
        r.write("kh1", hold("h1", &[6]));
        r.now_ms += HOLD_TTL_MS + 5_000;
        scan(&mut r, "ks", "no-such-ticket", "g1");
        r.read(Query::SeatMap { dt_id: dt_id(0) }, false);
        if skewed {
            r.lines.push(Line::Fault {
                time_ns: r.t,
                fault: "clock-skew".into(),
                phase: "start".into(),
                nodes: vec![1],
                status: FaultStatus::Installed,
                detail: "node 1 +700s, node 2 -30s".into(),
            });
        }
        r.finish();
        r.check()
    };
    // A node's clock was 700 s ahead: log time may have passed the expiry.
    let rep = run(true);
    assert!(rep.anomalies.is_empty(), "{:#?}", rep.anomalies);
    // No clock was ahead of the harness's: log time cannot have run 10 minutes ahead, and
    // the seat map is wrong.
    let rep = run(false);
    assert!(has(&rep, "read-differs-from-model"), "{:#?}", rep.anomalies);
}
