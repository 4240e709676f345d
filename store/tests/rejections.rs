//! One case per rejection code: each builds the smallest story that earns the code.

mod common;

use std::collections::BTreeSet;

use common::*;
use ticketd_store::command::Done;
use ticketd_store::types::{Role, SellerPlan};
use ticketd_store::{Command, Outcome, Rejection};

fn idempotency_key_reused() -> Rejection {
    let mut h = H::show();
    h.apply_as("c", "same", hold("h1", "u1", &[0]));
    match h.apply_as("c", "same", hold("h2", "u1", &[1])).outcome {
        Outcome::Rejected { code, .. } => code,
        other => panic!("{other:?}"),
    }
}

fn already_exists() -> Rejection {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[0]));
    h.code(hold("h1", "u2", &[1]))
}

fn invalid_argument() -> Rejection {
    let mut h = H::new();
    h.code(Command::CreateSeller {
        seller_id: "s".into(),
        name: "S".into(),
        fee_bps: 6_000,
        plan: SellerPlan::Vip,
    })
}

fn not_found() -> Rejection {
    let mut h = H::show();
    h.code(hold("h1", "nobody", &[0]))
}

fn invalid_state() -> Rejection {
    let mut h = H::show();
    h.code(Command::PublishDt { dt_id: "d1".into() })
}

fn sale_not_open() -> Rejection {
    let mut h = H::show();
    h.ok(Command::ChangeSaleWindow {
        dt_id: "d1".into(),
        sale_starts_at_ms: T0 + DAY_MS,
        sale_ends_at_ms: T0 + 2 * DAY_MS,
    });
    h.code(hold("h1", "u1", &[0]))
}

fn dt_canceled() -> Rejection {
    let mut h = H::show();
    h.ok(Command::CancelDt {
        dt_id: "d1".into(),
        reason: "storm".into(),
    });
    h.code(hold("h1", "u1", &[0]))
}

fn seat_not_for_sale() -> Rejection {
    let mut h = H::show();
    h.code(hold("h1", "u1", &[15]))
}

fn seat_already_held() -> Rejection {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[3]));
    h.code(hold("h2", "u2", &[4, 3]))
}

fn seat_taken() -> Rejection {
    let mut h = H::show();
    buy(&mut h, "h1", "u1", &[3]);
    h.code(hold("h2", "u2", &[3]))
}

fn not_enough_seats() -> Rejection {
    let mut h = H::show();
    h.ok(hold_ga("h1", "u1", "floor", 4));
    h.code(hold_ga("h2", "u2", "floor", 2))
}

fn hold_limit_exceeded() -> Rejection {
    let mut h = H::show();
    h.code(hold("h1", "u1", &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
}

fn user_limit_exceeded() -> Rejection {
    let mut h = H::show();
    buy(&mut h, "h1", "u1", &[0, 1, 2, 3, 4, 5]);
    h.ok(hold("h2", "u1", &[10, 11, 12]));
    h.code(hold("h3", "u1", &[13, 14]))
}

fn hold_expired() -> Rejection {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[0]));
    h.now += 10 * MIN_MS;
    h.code(start_payment("h1", "u1", "pi", 11_000))
}

fn hold_not_live() -> Rejection {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[0]));
    h.ok(Command::ReleaseHold {
        hold_id: "h1".into(),
        user_id: "u1".into(),
    });
    h.code(start_payment("h1", "u1", "pi", 11_000))
}

fn not_owner() -> Rejection {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[0]));
    h.code(Command::ReleaseHold {
        hold_id: "h1".into(),
        user_id: "u2".into(),
    })
}

fn payment_in_progress() -> Rejection {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[0]));
    h.ok(start_payment("h1", "u1", "pi", 11_000));
    h.code(Command::ReleaseHold {
        hold_id: "h1".into(),
        user_id: "u1".into(),
    })
}

fn payment_not_authorized() -> Rejection {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[0]));
    h.code(confirm("h1", "o1", "pi-never-started", 11_000))
}

fn payment_attempts_exceeded() -> Rejection {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[0]));
    for i in 0..3 {
        let pay = format!("pi{i}");
        h.ok(start_payment("h1", "u1", &pay, 11_000));
        h.ok(Command::PaymentFailed {
            hold_id: "h1".into(),
            payment_ref: pay,
            reason: "card declined".into(),
        });
    }
    h.code(start_payment("h1", "u1", "pi3", 11_000))
}

fn amount_mismatch() -> Rejection {
    let mut h = H::show();
    // 100.00 EUR plus a 10 % fee: 110.00, not 100.00.
    h.ok(hold("h1", "u1", &[0]));
    h.code(start_payment("h1", "u1", "pi", 10_000))
}

fn order_not_cancelable() -> Rejection {
    let mut h = H::show();
    let t = buy(&mut h, "h1", "u1", &[0, 1]);
    let Done::Scanned { .. } = h.ok(Command::Scan {
        ticket_id: t[0].clone(),
        dt_id: "d1".into(),
        gate: "g1".into(),
    }) else {
        unreachable!()
    };
    h.code(Command::CancelOrder {
        order_id: "o-h1".into(),
        user_id: "u1".into(),
        reason: "changed my mind".into(),
    })
}

fn ticket_not_refundable() -> Rejection {
    let mut h = H::show();
    let t = buy(&mut h, "h1", "u1", &[0]);
    h.ok(Command::RefundTicket {
        ticket_id: t[0].clone(),
        user_id: "u1".into(),
    });
    h.code(Command::RefundTicket {
        ticket_id: t[0].clone(),
        user_id: "u1".into(),
    })
}

fn email_taken() -> Rejection {
    let mut h = H::new();
    h.ok(register("a1", "ada@example.org", Role::User));
    h.code(register("a2", "  ADA@Example.ORG ", Role::Seller))
}

/// A code and the story that should earn it.
type Case = (Rejection, fn() -> Rejection);

#[test]
fn every_rejection_code_has_a_story() {
    let cases: &[Case] = &[
        (Rejection::IdempotencyKeyReused, idempotency_key_reused),
        (Rejection::AlreadyExists, already_exists),
        (Rejection::InvalidArgument, invalid_argument),
        (Rejection::NotFound, not_found),
        (Rejection::InvalidState, invalid_state),
        (Rejection::SaleNotOpen, sale_not_open),
        (Rejection::DtCanceled, dt_canceled),
        (Rejection::SeatNotForSale, seat_not_for_sale),
        (Rejection::SeatAlreadyHeld, seat_already_held),
        (Rejection::SeatTaken, seat_taken),
        (Rejection::NotEnoughSeats, not_enough_seats),
        (Rejection::HoldLimitExceeded, hold_limit_exceeded),
        (Rejection::UserLimitExceeded, user_limit_exceeded),
        (Rejection::HoldExpired, hold_expired),
        (Rejection::HoldNotLive, hold_not_live),
        (Rejection::NotOwner, not_owner),
        (Rejection::PaymentInProgress, payment_in_progress),
        (Rejection::PaymentNotAuthorized, payment_not_authorized),
        (
            Rejection::PaymentAttemptsExceeded,
            payment_attempts_exceeded,
        ),
        (Rejection::AmountMismatch, amount_mismatch),
        (Rejection::OrderNotCancelable, order_not_cancelable),
        (Rejection::TicketNotRefundable, ticket_not_refundable),
        (Rejection::EmailTaken, email_taken),
    ];
    for (want, case) in cases {
        assert_eq!(case(), *want, "case for {}", want.code());
    }
    let covered: BTreeSet<&str> = cases.iter().map(|(r, _)| r.code()).collect();
    let all: BTreeSet<&str> = Rejection::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(covered, all, "every code has a case");
}

#[test]
fn codes_are_stable_screaming_snake_and_unique() {
    let mut seen = BTreeSet::new();
    for r in Rejection::ALL {
        let c = r.code();
        assert!(
            c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{c}"
        );
        assert!(seen.insert(c), "{c} twice");
    }
    assert_eq!(Rejection::SeatAlreadyHeld.code(), "SEAT_ALREADY_HELD");
    assert_eq!(Rejection::HoldExpired.code(), "HOLD_EXPIRED");
    assert_eq!(Rejection::SaleNotOpen.code(), "SALE_NOT_OPEN");
}

#[test]
fn a_rejection_changes_no_entity() {
    let mut h = H::show();
    h.ok(hold("h1", "u1", &[3]));
    let before = h.seat_map("d1");
    assert_eq!(
        h.code(hold("h2", "u2", &[4, 3])),
        Rejection::SeatAlreadyHeld
    );
    assert_eq!(
        h.seat_map("d1"),
        before,
        "seat 4 was not taken by the refused hold"
    );
}
