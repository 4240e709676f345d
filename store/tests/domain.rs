//! Stories of the domain, each a linear sequence of phases through the public commands and
//! queries. The harness checks the invariants and the write-through after every entry.

mod common;

use common::*;
use ticketd_store::command::{Done, EventFilter, Near, SeatMapView};
use ticketd_store::types::*;
use ticketd_store::{
    Backend, Command, Machine, MemBackend, Query, QueryResult, Rejection, StoreError, WriteSet,
};

fn state_of(v: &SeatMapView, seat: usize) -> u8 {
    (v.seat_states[seat / 4] >> (2 * (seat % 4))) & 3
}

#[test]
fn t10_purchase_turns_a_hold_into_an_order_and_tickets() {
    let mut h = H::show();

    // Hold two gold seats and one GA place: 2 x 100.00 + 50.00, plus 10 % fee.
    let Done::HoldPlaced {
        total_minor,
        expires_at_ms,
        seats,
        ..
    } = h.ok(Command::HoldSeats {
        hold_id: "h1".into(),
        dt_id: "d1".into(),
        user_id: "u1".into(),
        seats: vec![2, 3],
        ga: vec![ticketd_store::command::GaPick {
            area_id: "floor".into(),
            quantity: 1,
        }],
        hold_ttl_ms: None,
    })
    else {
        unreachable!()
    };
    assert_eq!(total_minor, 27_500);
    assert_eq!(expires_at_ms, T0 + 10 * MIN_MS);
    assert_eq!(
        seats,
        vec![SeatRef::Seat(2), SeatRef::Seat(3), SeatRef::Ga(0)]
    );
    let map = h.seat_map("d1");
    assert_eq!((state_of(&map, 2), state_of(&map, 4)), (1, 0));
    assert_eq!(map.tiers[0].held, 2);
    assert_eq!(map.ga[0].available, 4);

    // Pay and confirm: the exact amount, with the started payment's reference.
    h.ok(start_payment("h1", "u1", "pi-1", 27_500));
    let Done::PurchaseConfirmed { ticket_ids, .. } = h.ok(confirm("h1", "o1", "pi-1", 27_500))
    else {
        unreachable!()
    };
    assert_eq!(ticket_ids, vec!["o1-1", "o1-2", "o1-3"]);
    let map = h.seat_map("d1");
    assert_eq!(state_of(&map, 2), 2);
    assert_eq!((map.tiers[0].sold, map.tiers[0].available), (2, 8));
    let t = h.ticket("o1-1");
    assert_eq!(t.seat_label, "A 1 3");
    assert_eq!((t.price_minor, t.fee_minor), (10_000, 1_000));
    assert_ne!(t.secret, h.ticket("o1-2").secret);
    assert!(matches!(h.hold("h1").status, HoldStatus::Purchased { .. }));

    // The order is the user's; the outbox has a confirmation, the tickets and a reminder
    // three days before the show.
    let QueryResult::Orders(orders) = h.q(Query::UserOrders {
        user_id: "u1".into(),
        limit: 10,
    }) else {
        unreachable!()
    };
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].order.total_minor, 27_500);
    assert_eq!(orders[0].tickets.len(), 3);
    let QueryResult::Notifications(due) = h.q(Query::DueNotifications {
        up_to_ms: h.now,
        after: None,
        limit: 10,
    }) else {
        unreachable!()
    };
    let kinds: Vec<_> = due.iter().map(|n| n.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![NotificationKind::Confirmation, NotificationKind::ETickets]
    );
    let QueryResult::Notifications(all) = h.q(Query::DueNotifications {
        up_to_ms: i64::MAX,
        after: None,
        limit: 10,
    }) else {
        unreachable!()
    };
    assert_eq!(all[2].kind, NotificationKind::Reminder);
    assert_eq!(all[2].due_at_ms, T0 + 27 * DAY_MS);
    h.ok(Command::MarkNotificationSent {
        notification_id: due[0].notification_id.clone(),
        channel: "email".into(),
    });
    let QueryResult::Notifications(due) = h.q(Query::DueNotifications {
        up_to_ms: h.now,
        after: None,
        limit: 10,
    }) else {
        unreachable!()
    };
    assert_eq!(due.len(), 1);
    h.reopen();

    // The event got popular.
    let QueryResult::Event(Some(e)) = h.q(Query::GetEvent {
        event_id: "e1".into(),
    }) else {
        unreachable!()
    };
    assert_eq!(e.popularity, 3);
}

#[test]
fn t20_scan_admits_once_and_answers_with_when_and_where() {
    let mut h = H::show();
    let t = buy(&mut h, "h1", "u1", &[0, 1, 2]);
    let scan = |ticket: &str, dt: &str, gate: &str| Command::Scan {
        ticket_id: ticket.into(),
        dt_id: dt.into(),
        gate: gate.into(),
    };
    let verdict = |d: Done| match d {
        Done::Scanned { verdict, .. } => verdict,
        other => panic!("{other:?}"),
    };
    h.now += MIN_MS;
    let used_at = h.now;
    assert_eq!(
        verdict(h.ok(scan(&t[0], "d1", "north"))),
        ScanVerdict::Admitted
    );
    h.now += MIN_MS;
    assert_eq!(
        verdict(h.ok(scan(&t[0], "d1", "south"))),
        ScanVerdict::AlreadyUsed {
            at_ms: used_at,
            gate: "north".into()
        }
    );
    assert_eq!(
        verdict(h.ok(scan(&t[1], "d2", "north"))),
        ScanVerdict::WrongDt { dt_id: "d1".into() }
    );
    assert_eq!(
        verdict(h.ok(scan("nope", "d1", "north"))),
        ScanVerdict::Unknown
    );
    h.ok(Command::RefundTicket {
        ticket_id: t[2].clone(),
        user_id: "u1".into(),
    });
    assert_eq!(
        verdict(h.ok(scan(&t[2], "d1", "north"))),
        ScanVerdict::Refunded { at_ms: h.now }
    );
    let ticket = h.ticket(&t[0]);
    assert_eq!(ticket.scans.len(), 2);
    assert_eq!(ticket.scans[1].gate, "south");
    h.reopen();
}

#[test]
fn t31_a_hold_named_ttl_sets_its_expiry_within_bounds() {
    use ticketd_store::limits::{HOLD_TTL_MAX_MS, HOLD_TTL_MIN_MS};
    let mut h = H::show();
    let with_ttl = |id: &str, user: &str, seat: u32, ttl: i64| {
        let mut c = hold(id, user, &[seat]);
        if let Command::HoldSeats { hold_ttl_ms, .. } = &mut c {
            *hold_ttl_ms = Some(ttl);
        }
        c
    };
    // Out of bounds: refused, nothing held.
    assert_eq!(
        h.code(with_ttl("h0", "u1", 0, HOLD_TTL_MIN_MS - 1)),
        Rejection::InvalidArgument
    );
    assert_eq!(
        h.code(with_ttl("h0", "u1", 0, HOLD_TTL_MAX_MS + 1)),
        Rejection::InvalidArgument
    );
    h.ok(with_ttl("h1", "u1", 0, 5_000));
    assert_eq!(h.hold("h1").expires_at_ms, h.now + 5_000);
    // Not yet due a millisecond before; gone at its TTL, the seat free again.
    h.now += 4_999;
    h.ok(Command::ExpireHolds { up_to_ms: h.now });
    assert_eq!(h.hold("h1").status, HoldStatus::Live);
    h.now += 1;
    h.ok(Command::ExpireHolds { up_to_ms: h.now });
    assert!(matches!(h.hold("h1").status, HoldStatus::Expired { .. }));
    h.ok(hold("h2", "u2", &[0]));
    h.reopen();
}

#[test]
fn t30_holds_expire_in_log_time_unless_a_payment_pins_them() {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[0]));
    h.ok(hold("h2", "u2", &[1]));
    h.now += MIN_MS;
    h.ok(start_payment("h2", "u2", "pi-2", 11_000));

    // Ten minutes on: h1 lapses on the next entry, h2 is pinned by its payment.
    h.now += 9 * MIN_MS;
    let Done::HoldsExpired { count } = h.ok(Command::ExpireHolds { up_to_ms: h.now }) else {
        unreachable!()
    };
    assert_eq!(count, 1);
    assert_eq!(
        h.hold("h1").status,
        HoldStatus::Expired {
            at_ms: T0 + 10 * MIN_MS
        }
    );
    assert_eq!(h.hold("h2").status, HoldStatus::Live);
    // Seat 0 is free again; someone else can take it.
    h.ok(hold("h3", "u3", &[0]));

    // The payment fails after the hold's own expiry: the hold lapses at once.
    h.ok(Command::PaymentFailed {
        hold_id: "h2".into(),
        payment_ref: "pi-2".into(),
        reason: "declined".into(),
    });
    assert!(matches!(h.hold("h2").status, HoldStatus::Expired { .. }));
    assert!(matches!(
        h.q(Query::GetPayment {
            payment_ref: "pi-2".into()
        }),
        QueryResult::Payment(Some(Payment {
            status: PaymentStatus::Failed { .. },
            ..
        }))
    ));

    // A pinned hold whose pin runs out expires too, and its payment fails with it.
    h.ok(start_payment("h3", "u3", "pi-3", 11_000));
    h.now += 20 * MIN_MS;
    h.ok(Command::ExpireHolds { up_to_ms: h.now });
    assert!(matches!(h.hold("h3").status, HoldStatus::Expired { .. }));
    assert_eq!(
        h.code(confirm("h3", "o3", "pi-3", 11_000)),
        ticketd_store::Rejection::HoldExpired
    );
    h.reopen();
}

#[test]
fn t40_cancel_and_refund_give_seats_back_and_owe_money() {
    let mut h = H::show();
    let t = buy(&mut h, "h1", "u1", &[0, 1]);
    let Done::TicketRefunded { refund_minor, .. } = h.ok(Command::RefundTicket {
        ticket_id: t[0].clone(),
        user_id: "u1".into(),
    }) else {
        unreachable!()
    };
    assert_eq!(refund_minor, 11_000);
    let Done::OrderCanceled { refund_minor, .. } = h.ok(Command::CancelOrder {
        order_id: "o-h1".into(),
        user_id: "u1".into(),
        reason: "ill".into(),
    }) else {
        unreachable!()
    };
    assert_eq!(refund_minor, 11_000);
    let map = h.seat_map("d1");
    assert_eq!((state_of(&map, 0), state_of(&map, 1)), (0, 0));
    let QueryResult::Order(Some(o)) = h.q(Query::GetOrder {
        order_id: "o-h1".into(),
    }) else {
        unreachable!()
    };
    assert_eq!(o.order.status, OrderStatus::Canceled);
    assert_eq!(o.order.refunded_minor, 22_000);
    // The reminder is void; the refunds wait for the dispatcher.
    let QueryResult::Notifications(all) = h.q(Query::DueNotifications {
        up_to_ms: i64::MAX,
        after: None,
        limit: 50,
    }) else {
        unreachable!()
    };
    assert!(all.iter().all(|n| n.kind != NotificationKind::Reminder));
    let refunds: i64 = all
        .iter()
        .filter_map(|n| match &n.kind {
            NotificationKind::Refund { amount_minor, .. } => Some(*amount_minor),
            _ => None,
        })
        .sum();
    assert_eq!(refunds, 22_000);
    // Seats are for sale again.
    buy(&mut h, "h2", "u2", &[0, 1]);
}

#[test]
fn t50_canceling_a_dt_releases_holds_and_cancels_orders() {
    let mut h = H::show();
    buy(&mut h, "h1", "u1", &[0, 1]);
    h.ok(hold("h2", "u2", &[5]));
    h.ok(start_payment("h2", "u2", "pi-2", 11_000));
    let Done::DtCanceled {
        holds_released,
        orders_canceled,
        ..
    } = h.ok(Command::CancelDt {
        dt_id: "d1".into(),
        reason: "storm".into(),
    })
    else {
        unreachable!()
    };
    assert_eq!((holds_released, orders_canceled), (1, 1));
    let map = h.seat_map("d1");
    assert!(map.tiers.iter().all(|t| t.available == t.capacity));
    assert!(matches!(
        h.ticket("o-h1-1").status,
        TicketStatus::Canceled { .. }
    ));
    assert_eq!(
        h.code(confirm("h2", "o2", "pi-2", 11_000)),
        ticketd_store::Rejection::HoldNotLive
    );
    h.reopen();
}

#[test]
fn t60_best_available_picks_adjacent_seats_and_respects_bounds() {
    let mut h = H::show();
    h.ok(hold("h0", "u3", &[1]));
    // Row 1 (seats 0..5) has seat 1 held, so the first four adjacent seats are in row 2.
    let Done::HoldPlaced { seats, .. } = h.ok(best("h1", "u1", "gold", 4)) else {
        unreachable!()
    };
    assert_eq!(
        seats,
        vec![
            SeatRef::Seat(5),
            SeatRef::Seat(6),
            SeatRef::Seat(7),
            SeatRef::Seat(8)
        ]
    );
    let Done::HoldPlaced { seats, .. } = h.ok(best("h2", "u2", "gold", 3)) else {
        unreachable!()
    };
    assert_eq!(
        seats,
        vec![SeatRef::Seat(2), SeatRef::Seat(3), SeatRef::Seat(4)]
    );
    // Silver: five seats of B first, then the floor.
    let Done::HoldPlaced { seats, .. } = h.ok(best("h3", "u3", "silver", 7)) else {
        unreachable!()
    };
    assert_eq!(seats[5..], [SeatRef::Ga(0), SeatRef::Ga(0)]);
    h.reopen();
}

#[test]
fn t70_browse_by_place_category_and_dates() {
    let mut h = H::show();
    h.ok(Command::CreateVenue {
        venue_id: "v2".into(),
        name: "Grieghallen".into(),
        city: "Bergen".into(),
    });
    h.ok(Command::SetVenueLayout {
        venue_id: "v2".into(),
        address: "Edvard Griegs plass 1".into(),
        geo: GeoPoint {
            lat_e6: 60_389_000,
            lon_e6: 5_328_000,
        },
        seating_map: seating(&[("A", 1, 5)], &[]),
    });
    h.ok(event("e2", "s1", "opera"));
    let mut dt = dt_cmd("d2", "e2", "v2", T0 + 60 * DAY_MS);
    if let Command::CreateDt { tiers, .. } = &mut dt {
        tiers.truncate(1);
    }
    h.ok(dt);
    h.ok(Command::PublishDt { dt_id: "d2".into() });
    h.ok(event("e3", "s1", "concert"));
    buy(&mut h, "h1", "u1", &[0]);

    let browse = |h: &H, f: EventFilter| match h.q(Query::BrowseEvents(f)) {
        QueryResult::Events(hits) => hits
            .into_iter()
            .map(|e| e.event.event_id)
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    // e3 has no dt: never listed. e1 is more popular than e2.
    assert_eq!(
        browse(
            &h,
            EventFilter {
                limit: 10,
                ..Default::default()
            }
        ),
        vec!["e1", "e2"]
    );
    let oslo = GeoPoint {
        lat_e6: 59_913_900,
        lon_e6: 10_752_200,
    };
    let near = |radius_m| {
        Some(Near {
            point: oslo,
            radius_m,
        })
    };
    assert_eq!(
        browse(
            &h,
            EventFilter {
                near: near(50_000),
                limit: 10,
                ..Default::default()
            }
        ),
        vec!["e1"]
    );
    assert_eq!(
        browse(
            &h,
            EventFilter {
                near: near(400_000),
                category: Some("opera".into()),
                limit: 10,
                ..Default::default()
            }
        ),
        vec!["e2"]
    );
    assert_eq!(
        browse(
            &h,
            EventFilter {
                from_ms: Some(T0 + 45 * DAY_MS),
                limit: 10,
                ..Default::default()
            }
        ),
        vec!["e2"]
    );
    let QueryResult::Dts(dts) = h.q(Query::ListDts {
        event_id: "e2".into(),
    }) else {
        unreachable!()
    };
    assert_eq!(dts.len(), 1);
    assert_eq!(dts[0].time_zone, "Europe/Oslo");
}

#[test]
fn t80_open_refuses_a_state_that_sells_a_seat_twice() {
    let mut h = H::show();
    buy(&mut h, "h1", "u1", &[0]);
    // Forge a second ticket for seat 0 straight into the backend, as a bad snapshot would.
    let mut forged = h.ticket("o-h1-1");
    forged.ticket_id = "forged".into();
    let mut ws = WriteSet::new();
    ws.put(
        "sm_tickets",
        b"forged".to_vec(),
        postcard::to_stdvec(&forged).unwrap(),
    );
    h.backend.write(&ws).unwrap();
    match Machine::open(&h.backend) {
        Err(StoreError::Invariant(e)) => assert!(e.contains("claimed twice"), "{e}"),
        other => panic!("{:?}", other.map(|m| m.digest())),
    }
}

#[test]
fn t90_every_state_survives_a_restart() {
    let mut h = H::show();
    buy(&mut h, "h1", "u1", &[0, 1]);
    h.ok(hold("h2", "u2", &[5]));
    h.ok(start_payment("h2", "u2", "pi-2", 11_000));
    h.reopen();
    // The reopened machine keeps applying identically to one that never stopped.
    let twin_backend = MemBackend::new();
    let mut ws = WriteSet::new();
    h.m.visit_persisted(&mut |cf, k, v| ws.put(cf, k.to_vec(), v.to_vec()));
    twin_backend.write(&ws).unwrap();
    let twin = Machine::open(&twin_backend).unwrap();
    assert_eq!(twin.digest(), h.m.digest());
    assert_eq!(
        backend_contents(&twin_backend as &dyn Backend),
        backend_contents(&h.backend as &dyn Backend)
    );
}

// Search answers nothing in a build without its index.
#[cfg(feature = "search")]
#[test]
fn t75_full_text_search_over_title_performers_and_venue() {
    let mut h = H::show();
    h.ok(Command::CreateEvent {
        event_id: "e2".into(),
        seller_id: "s1".into(),
        title: "Carmen".into(),
        description: "Opera in four acts".into(),
        category: "opera".into(),
        performers: vec!["Oslo Philharmonic".into()],
    });
    let mut dt = dt_cmd("d2", "e2", "v1", T0 + 40 * DAY_MS);
    if let Command::CreateDt { tiers, .. } = &mut dt {
        tiers.truncate(1);
    }
    h.ok(dt);
    h.ok(Command::PublishDt { dt_id: "d2".into() });
    let search = |h: &H, text: &str| match h.q(Query::SearchEvents {
        text: text.into(),
        limit: 10,
    }) {
        QueryResult::Events(hits) => hits
            .into_iter()
            .map(|e| e.event.event_id)
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(search(&h, "carmen"), vec!["e2"]);
    assert_eq!(
        search(&h, "PHILHARM"),
        vec!["e2"],
        "prefix of the last word"
    );
    assert_eq!(search(&h, "the band"), vec!["e1"]);
    // Both play at the Arena in Oslo; "oslo" is a performer word of e2, so e2 ranks first.
    assert_eq!(search(&h, "oslo"), vec!["e2", "e1"]);
    assert_eq!(search(&h, "arena"), vec!["e1", "e2"], "equal score: by id");
    assert!(
        search(&h, "carmen band").is_empty(),
        "every word must match"
    );
    assert!(search(&h, "").is_empty() && search(&h, " - ").is_empty());

    // Folding: "bjork" finds "Björk"; a draft dt keeps its event out of answers until
    // published, although the index already holds it.
    h.ok(Command::CreateEvent {
        event_id: "e3".into(),
        seller_id: "s1".into(),
        title: "Homogenic Live".into(),
        description: String::new(),
        category: "concert".into(),
        performers: vec!["Björk".into()],
    });
    h.ok(dt_cmd("d3", "e3", "v1", T0 + 50 * DAY_MS));
    assert!(search(&h, "bjork").is_empty(), "no published dt yet");
    h.ok(Command::PublishDt { dt_id: "d3".into() });
    assert_eq!(search(&h, "BJÖRK"), vec!["e3"]);
    assert_eq!(search(&h, "bjo"), vec!["e3"]);

    // A dt at another venue makes the event findable by that venue's name and city.
    h.ok(Command::CreateVenue {
        venue_id: "v2".into(),
        name: "Vega".into(),
        city: "København".into(),
    });
    h.ok(Command::SetVenueLayout {
        venue_id: "v2".into(),
        address: "Enghavevej 40".into(),
        geo: GeoPoint {
            lat_e6: 55_667_700,
            lon_e6: 12_543_100,
        },
        seating_map: seating(&[("A", 1, 5), ("B", 1, 5)], &[("floor", 5)]),
    });
    assert!(search(&h, "vega").is_empty());
    h.ok(dt_cmd("d4", "e1", "v2", T0 + 60 * DAY_MS));
    assert_eq!(search(&h, "vega kobenhavn"), vec!["e1"]);
    let QueryResult::Events(hits) = h.q(Query::SearchEvents {
        text: "vega".into(),
        limit: 10,
    }) else {
        unreachable!()
    };
    assert_eq!(hits[0].dt_id, "d1", "the hit is the earliest published dt");

    // Equal scores go to the more popular event: selling e2's seats lifts it above e1.
    assert_eq!(search(&h, "arena"), vec!["e1", "e2", "e3"]);
    assert_eq!(search(&h, "arena").len(), 3);
    let Done::HoldPlaced { total_minor, .. } = h.ok(Command::HoldSeats {
        hold_id: "h2".into(),
        dt_id: "d2".into(),
        user_id: "u1".into(),
        seats: vec![0],
        ga: vec![],
        hold_ttl_ms: None,
    }) else {
        unreachable!()
    };
    h.ok(start_payment("h2", "u1", "pi-h2", total_minor));
    h.ok(confirm("h2", "o-h2", "pi-h2", total_minor));
    assert_eq!(search(&h, "arena"), vec!["e2", "e1", "e3"]);
    let QueryResult::Events(capped) = h.q(Query::SearchEvents {
        text: "arena".into(),
        limit: 2,
    }) else {
        unreachable!()
    };
    assert_eq!(capped.len(), 2);

    // The index built on open (recovery, snapshot install) answers like the one kept up to
    // date entry by entry.
    let queries = [
        "arena",
        "oslo",
        "the band",
        "bjo",
        "vega",
        "opera four",
        "a",
    ];
    let before: Vec<_> = queries.iter().map(|q| search(&h, q)).collect();
    h.reopen();
    let after: Vec<_> = queries.iter().map(|q| search(&h, q)).collect();
    assert_eq!(before, after);
}

#[test]
fn t95_sign_up_then_sign_in_by_email_with_a_role() {
    let mut h = H::show();
    let account = |h: &H, q: Query| match h.q(q) {
        QueryResult::Account(a) => a,
        other => panic!("{other:?}"),
    };
    let by_email = |h: &H, email: &str| {
        account(
            h,
            Query::AccountByEmail {
                email: email.into(),
            },
        )
    };

    // Sign-up: the account is keyed by the normalized email; the profile keeps it as typed.
    assert_eq!(
        h.ok(register("a1", " Ada.Lovelace@Example.ORG ", Role::User)),
        Done::UserRegistered {
            user_id: "a1".into(),
            email: "ada.lovelace@example.org".into(),
            role: Role::User,
        }
    );
    let a = by_email(&h, "ADA.LOVELACE@example.org").expect("found whatever the case");
    assert_eq!(
        (a.user_id.as_str(), a.role, a.password_hash.as_str()),
        ("a1", Role::User, HASH)
    );
    assert_eq!(
        account(
            &h,
            Query::GetAccount {
                user_id: "a1".into()
            }
        ),
        Some(a.clone())
    );
    let QueryResult::User(Some(u)) = h.q(Query::GetUser {
        user_id: "a1".into(),
    }) else {
        unreachable!()
    };
    assert_eq!(u.contact.email, "Ada.Lovelace@Example.ORG");
    assert_eq!(by_email(&h, "nobody@example.org"), None);
    assert_eq!(by_email(&h, "not an email"), None);

    // A registered user is a user like any other: they can hold seats.
    assert!(matches!(
        h.ok(hold("h1", "a1", &[0])),
        Done::HoldPlaced { .. }
    ));

    // One account per email and per user id; the hash must be a PHC argon2id string.
    assert_eq!(
        h.code(register("a2", "ada.lovelace@example.org", Role::User)),
        Rejection::EmailTaken
    );
    assert_eq!(
        h.code(register("u1", "u1-again@example.org", Role::User)),
        Rejection::AlreadyExists,
        "u1 has a profile already"
    );
    let mut plain = register("a3", "grace@example.org", Role::User);
    if let Command::RegisterUser { password_hash, .. } = &mut plain {
        *password_hash = "hunter2".into();
    }
    assert_eq!(h.code(plain), Rejection::InvalidArgument);
    for bad in [
        "",
        "grace",
        "@example.org",
        "grace@",
        "gr ace@example.org",
        "a@b@c",
    ] {
        assert_eq!(
            h.code(register("a3", bad, Role::User)),
            Rejection::InvalidArgument,
            "{bad:?}"
        );
    }

    // Roles change through an admin command; a profile-only user has no account to change.
    assert_eq!(
        h.ok(Command::SetUserRole {
            user_id: "a1".into(),
            role: Role::Seller,
        }),
        Done::UserRoleSet {
            user_id: "a1".into(),
            role: Role::Seller,
        }
    );
    assert_eq!(
        by_email(&h, "ada.lovelace@example.org").map(|a| a.role),
        Some(Role::Seller)
    );
    assert_eq!(
        h.code(Command::SetUserRole {
            user_id: "u1".into(),
            role: Role::Admin,
        }),
        Rejection::NotFound
    );

    // Editing the profile leaves the account alone.
    h.ok(user("a1"));
    assert_eq!(
        by_email(&h, "ada.lovelace@example.org").map(|a| (a.user_id, a.role)),
        Some(("a1".to_string(), Role::Seller))
    );
    h.ok(register("a3", "grace@example.org", Role::Scanner));
    h.reopen();
    assert_eq!(
        by_email(&h, "Grace@example.org").map(|a| (a.user_id, a.role)),
        Some(("a3".to_string(), Role::Scanner))
    );
}
