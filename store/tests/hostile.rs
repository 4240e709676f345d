//! Apply is total: commands carrying values at and past every bound are refused with a typed
//! rejection and change nothing, and the work of one entry stays bounded however much history
//! a dt has. Each case below was once able to halt, or overload, every replica.

mod common;

use common::*;
use ticketd_store::command::{Done, GaPick};
use ticketd_store::limits::{CANCEL_ROWS_PER_ENTRY_MAX, TIME_MS_MAX};
use ticketd_store::types::*;
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

/// A second venue with two GA areas of `capacity` places each, and an event of seller s1 to
/// put a dt there.
fn two_areas(h: &mut H, capacity: u32) -> Outcome {
    h.ok(Command::CreateVenue {
        venue_id: "v2".into(),
        name: "Field".into(),
        city: "Oslo".into(),
    });
    h.run(Command::SetVenueLayout {
        venue_id: "v2".into(),
        address: "Somewhere".into(),
        geo: GeoPoint::default(),
        seating_map: seating(&[], &[("north", capacity), ("south", capacity)]),
    })
}

#[test]
fn t10_ga_capacities_past_the_counters_are_refused_at_the_layout() {
    let mut h = H::show();
    // Two areas that add up past u32::MAX: once, the dt's capacity sum overflowed on apply.
    let outcome = two_areas(&mut h, u32::MAX / 2 + 1);
    assert!(
        matches!(
            &outcome,
            Outcome::Rejected {
                code: Rejection::InvalidArgument,
                ..
            }
        ),
        "{outcome:?}"
    );
    h.ok(event("e2", "s1", "festival"));
    let mut dt = dt_cmd("d2", "e2", "v2", T0 + 60 * DAY_MS);
    if let Command::CreateDt { tiers, .. } = &mut dt {
        *tiers = vec![tier("field", 1_000, &[], &["north", "south"])];
    }
    assert_eq!(h.code(dt), Rejection::InvalidArgument, "no layout, no dt");
    // The cluster goes on selling.
    h.ok(hold("h1", "u1", &[0]));
}

#[test]
fn t20_instants_off_the_calendar_are_refused() {
    let mut h = H::show();
    h.ok(event("e2", "s1", "concert"));
    for (starts, sale_ends) in [
        (i64::MAX, i64::MAX),
        (-1, T0),
        (T0, i64::MIN),
        (TIME_MS_MAX + 1, T0),
    ] {
        let mut dt = dt_cmd("d2", "e2", "v1", starts);
        if let Command::CreateDt {
            sale_ends_at_ms, ..
        } = &mut dt
        {
            *sale_ends_at_ms = sale_ends;
        }
        assert_eq!(
            h.code(dt),
            Rejection::InvalidArgument,
            "{starts} {sale_ends}"
        );
    }
    let window = Command::ChangeSaleWindow {
        dt_id: "d1".into(),
        sale_starts_at_ms: i64::MIN,
        sale_ends_at_ms: i64::MAX,
    };
    assert_eq!(h.code(window), Rejection::InvalidArgument);
    let lead = Command::UpsertUser {
        user_id: "u1".into(),
        profile: Profile::default(),
        contact: Contact::default(),
        reminder: ReminderPreference {
            lead_ms: i64::MAX,
            email: true,
            sms: false,
        },
        payment_token_sealed: None,
    };
    assert_eq!(h.code(lead), Rejection::InvalidArgument);
}

#[test]
fn t30_a_leader_stamp_at_the_end_of_time_moves_log_time_to_its_bound_only() {
    let mut h = H::show();
    h.now = i64::MAX;
    // A hold adds its TTL to log time; a payment its pin; neither may overflow.
    let reply = h.apply_as("c", "k-late", hold("h1", "u1", &[0]));
    assert!(matches!(
        reply.outcome,
        Outcome::Rejected {
            code: Rejection::SaleNotOpen,
            ..
        }
    ));
    assert_eq!(h.m.log_time_ms(), TIME_MS_MAX);
    h.run(Command::ExpireHolds { up_to_ms: i64::MIN });
    h.run(Command::ExpireHolds { up_to_ms: i64::MAX });
    h.reopen();
}

#[test]
fn t40_geo_points_and_password_hash_costs_are_held_to_their_bounds() {
    let mut h = H::show();
    let layout = |lat_e6: i32, lon_e6: i32| Command::SetVenueLayout {
        venue_id: "v1".into(),
        address: "Street".into(),
        geo: GeoPoint { lat_e6, lon_e6 },
        seating_map: seating(&[("A", 1, 1)], &[]),
    };
    h.ok(Command::CreateVenue {
        venue_id: "v9".into(),
        name: "Empty".into(),
        city: "Oslo".into(),
    });
    for (lat, lon) in [
        (i32::MIN, 0),
        (0, i32::MIN),
        (90_000_001, 0),
        (0, 180_000_001),
    ] {
        let mut c = layout(lat, lon);
        if let Command::SetVenueLayout { venue_id, .. } = &mut c {
            *venue_id = "v9".into();
        }
        assert_eq!(h.code(c), Rejection::InvalidArgument, "{lat} {lon}");
    }
    // Four GiB of memory for every log-in against this account.
    let mut greedy = register("u9", "greedy@example.org", Role::User);
    if let Command::RegisterUser { password_hash, .. } = &mut greedy {
        *password_hash = HASH.replace("m=19456", "m=4194304");
    }
    assert_eq!(h.code(greedy), Rejection::InvalidArgument);
    h.ok(register("u9", "fine@example.org", Role::User));
}

#[test]
fn t50_request_names_that_cannot_be_remembered_are_refused_unremembered() {
    let mut h = H::show();
    for (client, key) in [("c\0x", "k"), ("c", ""), ("c", &"k".repeat(129)[..])] {
        let reply = h.apply_as(client, key, hold("h1", "u1", &[0]));
        assert!(
            matches!(
                reply.outcome,
                Outcome::Rejected {
                    code: Rejection::InvalidArgument,
                    ..
                }
            ),
            "{client:?} {key:?}: {reply:?}"
        );
    }
    h.ok(hold("h1", "u1", &[0]));
}

#[test]
fn t60_a_hold_with_a_million_empty_ga_picks_is_refused_at_once() {
    let mut h = H::show();
    let picks = (0..1_000_000)
        .map(|i| GaPick {
            area_id: format!("a{i}"),
            quantity: 0,
        })
        .collect();
    let started = std::time::Instant::now();
    let code = h.code(Command::HoldSeats {
        hold_id: "h1".into(),
        dt_id: "d1".into(),
        user_id: "u1".into(),
        seats: vec![],
        ga: picks,
        hold_ttl_ms: None,
    });
    assert_eq!(code, Rejection::InvalidArgument);
    // Linear in the list, not quadratic: far under the seconds a square would take.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// A venue with one GA area of `capacity`, dt d2 on sale there, and `buyers` users who each
/// bought one place, plus `holders` users holding one place each.
fn crowded_dt(buyers: usize, holders: usize) -> H {
    let mut h = H::show();
    h.ok(Command::CreateVenue {
        venue_id: "v2".into(),
        name: "Field".into(),
        city: "Oslo".into(),
    });
    h.ok(Command::SetVenueLayout {
        venue_id: "v2".into(),
        address: "Somewhere".into(),
        geo: GeoPoint::default(),
        seating_map: seating(&[], &[("field", 10_000)]),
    });
    h.ok(event("e2", "s1", "festival"));
    let mut dt = dt_cmd("d2", "e2", "v2", T0 + 60 * DAY_MS);
    if let Command::CreateDt { tiers, .. } = &mut dt {
        *tiers = vec![tier("field", 1_000, &[], &["field"])];
    }
    h.ok(dt);
    h.ok(Command::PublishDt { dt_id: "d2".into() });
    for i in 0..buyers.saturating_add(holders) {
        let u = format!("b{i}");
        h.ok(user(&u));
        let hold_id = format!("hb{i}");
        let Done::HoldPlaced { total_minor, .. } = h.ok(Command::HoldSeats {
            hold_id: hold_id.clone(),
            dt_id: "d2".into(),
            user_id: u.clone(),
            seats: vec![],
            ga: vec![GaPick {
                area_id: "field".into(),
                quantity: 1,
            }],
            hold_ttl_ms: None,
        }) else {
            unreachable!()
        };
        if i < buyers {
            let pay = format!("pi-{i}");
            h.ok(start_payment(&hold_id, &u, &pay, total_minor));
            h.ok(confirm(&hold_id, &format!("o{i:04}"), &pay, total_minor));
        }
    }
    h
}

fn dt_status(h: &H, dt: &str) -> DtStatus {
    match h.q(Query::GetDt { dt_id: dt.into() }) {
        QueryResult::Dt(Some(d)) => d.status,
        other => panic!("{other:?}"),
    }
}

#[test]
fn t70_a_dt_with_more_rows_than_an_entry_does_is_canceled_in_bounded_steps() {
    let (buyers, holders) = (CANCEL_ROWS_PER_ENTRY_MAX + 40, 10);
    let mut h = crowded_dt(buyers, holders);
    let Done::DtCanceled {
        holds_released,
        orders_canceled,
        ..
    } = h.ok(Command::CancelDt {
        dt_id: "d2".into(),
        reason: "flood".into(),
    })
    else {
        unreachable!()
    };
    assert_eq!(holds_released as usize, holders, "holds first");
    assert_eq!(
        holds_released as usize + orders_canceled as usize,
        CANCEL_ROWS_PER_ENTRY_MAX
    );
    assert_eq!(dt_status(&h, "d2"), DtStatus::Canceling);
    match h.q(Query::CancelingDts { limit: 10 }) {
        QueryResult::Dts(d) => assert_eq!(d.len(), 1),
        other => panic!("{other:?}"),
    }
    // Canceling: nothing is sold, held or started meanwhile.
    assert_eq!(
        h.code(Command::HoldBestAvailable {
            hold_id: "late".into(),
            dt_id: "d2".into(),
            user_id: "u1".into(),
            tier_id: "field".into(),
            quantity: 1,
            hold_ttl_ms: None,
        }),
        Rejection::DtCanceled
    );
    let Done::DtCanceled {
        holds_released,
        orders_canceled,
        ..
    } = h.ok(Command::ContinueCancelDt { dt_id: "d2".into() })
    else {
        unreachable!()
    };
    assert_eq!(
        (holds_released as usize, orders_canceled as usize),
        (0, buyers + holders - CANCEL_ROWS_PER_ENTRY_MAX)
    );
    assert_eq!(dt_status(&h, "d2"), DtStatus::Canceled);
    assert_eq!(
        h.code(Command::ContinueCancelDt { dt_id: "d2".into() }),
        Rejection::InvalidState
    );
    // Every buyer is owed their money back.
    for i in 0..buyers {
        match h.q(Query::GetOrder {
            order_id: format!("o{i:04}"),
        }) {
            QueryResult::Order(Some(o)) => {
                assert_eq!(o.order.status, OrderStatus::Canceled);
                assert_eq!(o.order.refunded_minor, o.order.total_minor);
            }
            other => panic!("{other:?}"),
        }
    }
    h.reopen();
}

#[test]
fn t80_a_ticket_of_a_dt_being_canceled_is_not_admitted() {
    let mut h = crowded_dt(CANCEL_ROWS_PER_ENTRY_MAX + 1, 0);
    h.ok(Command::CancelDt {
        dt_id: "d2".into(),
        reason: "flood".into(),
    });
    // Orders are canceled in id order: the last one is still valid.
    let last = format!("o{:04}-1", CANCEL_ROWS_PER_ENTRY_MAX);
    assert_eq!(h.ticket(&last).status, TicketStatus::Valid);
    let Done::Scanned { verdict, .. } = h.ok(Command::Scan {
        ticket_id: last.clone(),
        dt_id: "d2".into(),
        gate: "g1".into(),
    }) else {
        unreachable!()
    };
    assert!(
        matches!(verdict, ScanVerdict::Canceled { .. }),
        "{verdict:?}"
    );
    h.ok(Command::ContinueCancelDt { dt_id: "d2".into() });
    assert!(matches!(
        h.ticket(&last).status,
        TicketStatus::Canceled { .. }
    ));
}
